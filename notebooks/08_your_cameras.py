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
# # 8. Bring your own cameras: MetaFuse adapted to a rig file
#
# MetaFuse's promise (Xie, Wang and Wang, CVPR 2020, Sec. 4.3) is deployment: a fusion model meta-trained once on many
# camera pairs adapts to a *new* camera configuration from a few labelled frames, by finetuning the per-pixel affine
# θ only; the base map ω_base, shared by all camera configurations, does not move. This chapter runs that path for a rig
# described in a file, here `mfcore/rigs/ceiling5.yaml`: four cameras high on the walls looking down and one under the
# ceiling, unlike any rig the backbone or the meta-training has seen. One command does the same for your rig.
#
# What happens: the rig file is validated; labelled frames of training motions and test frames of unseen motions are
# rendered in the synthetic studio from its cameras and passed through the frozen warm-up backbone (chapter 3); the
# meta-trained MetaFuse model initialises every ordered pair of the rig; θ is finetuned by Adam on K frames; the Joint
# Detection Rate (half a head size, Sec. 5.1) of MetaFuse^K is compared with NoFusion on the test frames. Then the
# choice a user faces is measured on the same frames: no fusion, the epipolar fusion computed from the calibration alone
# (zero labelled frames), or MetaFuse^K, in 2D and in 3D after the RPSM, each with a paired interval; and the book's 2D
# detections of this rig are written as detection files and read back through `python -m mfbook.lift`, the command that
# turns your cameras' detections into 3D poses.
#
# **All data are synthetic** (the book's capture studio renders real motion capture from your cameras); no number on
# this page is one of the paper's, and the smoke profile's numbers are not meaningful at all.

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import contextlib
import inspect
import io
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Image, Markdown, display

from mfcore import adapt, data, detections, lift, maml, metrics, pictorial, pretrained, skeleton, studio
from mfbook import adapt as adapt_cli
from mfbook import chapter, plots
from mfbook import lift as lift_cli
from mfcore.files import atomic_write_bytes

ch = chapter.open_chapter("08_your_cameras", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.metafuse
SHOTS = list(sizes.shots[:3])  # the profile's smallest K values
RIG_FILE = Path("mfcore/rigs/ceiling5.yaml")  # relative to the repository root
sns.set_theme(style="whitegrid", context="notebook")
display(Markdown(f"K ∈ {SHOTS} labelled frames (out of a pool of {adapt.max_shots(ch.profile)}), "
                 f"{sizes.target_test_frames} test frames, {sizes.finetune_steps} finetuning steps of θ (Adam "
                 f"{sizes.finetune_lr:g}), images {ch.profile.studio.image_px}² px, heatmaps "
                 f"{ch.profile.studio.heatmap_px}² px."))

# %% [markdown]
# ## The rig file
#
# A rig file lists the cameras: per camera a name, the square image size, the intrinsics in pixels and the
# world-to-camera rotation R and translation t in metres, with `x_cam = R X + t` (the full format is on the page
# "Bring your own cameras" of this book). This is the file used here:

# %%
rig_text = (chapter.REPO_ROOT / RIG_FILE).read_text()
display(Markdown(f"`{RIG_FILE}`:\n\n```yaml\n{rig_text}```"))
rig = adapt.load_target_rig(chapter.REPO_ROOT / RIG_FILE, ch.profile)  # validated, at the profile's image size
file_rig = studio.load_rig(chapter.REPO_ROOT / RIG_FILE)  # as written (file resolution)

# %% [markdown]
# The validator accepts it: every camera sees the whole capture volume (a cylinder of radius 1.2 m and height 2.1 m on
# the floor at the origin). Per camera, its centre, how far it looks down (the angle of the optical axis below the
# horizontal) and its horizontal field of view:

# %%
rows = []
for cam in file_rig.cameras:
    centre = cam.center_m()
    axis = cam.R[2]  # optical axis in world coordinates
    fov = 2 * np.degrees(np.arctan(0.5 * cam.image_px / float(cam.K[0, 0])))
    rows.append(dict(camera=cam.name, x_m=float(centre[0]), y_m=float(centre[1]), height_m=float(centre[2]),
                     distance_m=float(centre[:2].norm()), looks_down_deg=float(np.degrees(np.arcsin(-float(axis[2])))),
                     fov_deg=fov, image_px=cam.image_px, volume_in_view=studio.volume_in_view(cam)[0]))
cameras = pd.DataFrame(rows)
ch.save_table(cameras, "cameras")
cameras.round(2)

# %%
def draw_camera(ax, cam, colour):
    """A frustum (mfbook.plots), its optical axis dotted, and the camera's name."""
    plots.draw_camera(ax, cam, colour, size=0.6, lw=0.9)
    C, Rt = cam.center_m().numpy(), cam.R.numpy().T
    ax.plot(*zip(C, C + 1.2 * Rt[:, 2]), color=colour, lw=0.5, ls=":")
    ax.text(*C, f" {cam.name}", fontsize=7, color=colour)


fig = plt.figure(figsize=(11, 4.8))
for i, (elev, azim, title) in enumerate(((22, -60, "perspective"), (90, -90, "seen from above"))):
    ax = fig.add_subplot(1, 2, i + 1, projection="3d")
    plots.draw_volume(ax)
    for v, cam in enumerate(file_rig.cameras):
        draw_camera(ax, cam, sns.color_palette("tab10")[v])
    ax.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m)", xlim=(-4, 4), ylim=(-4, 4), zlim=(0, 5))
    ax.set_box_aspect((8, 8, 5))
    ax.view_init(elev=elev, azim=azim)
    if elev == 90:  # from above: the height axis is edge-on
        ax.set(zticks=[], zlabel="")
    ax.set_title(title)
fig.suptitle(f"{rig.name}: {rig.num_views} cameras, {cameras.height_m.min():.1f}-{cameras.height_m.max():.1f} m "
             f"high, all looking down at the capture volume (grey)")
ch.save_figure(fig, "rig")
plt.show()

# %% [markdown]
# One test frame as the five cameras see it (green dots: visible joints, red crosses: occluded). Seen from above, the
# body hides more of itself, which is where a second view helps.

# %%
frame = data.make_multiview(rig, "test", 1, ch.profile, seed=seed, device=ch.device)
fig, axes = plt.subplots(1, rig.num_views, figsize=(2.8 * rig.num_views, 3.0))
for v, ax in enumerate(axes):
    ax.imshow(frame.images[0, v].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
    xy, vis = frame.joints_2d_px[0, v].cpu(), frame.visible[0, v].cpu()
    for a, b in skeleton.LIMBS:
        ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="w", lw=0.5, alpha=0.6)
    ax.scatter(xy[vis, 0], xy[vis, 1], s=10, c="lime", edgecolors="k", linewidths=0.3)
    ax.scatter(xy[~vis, 0], xy[~vis, 1], s=14, c="red", marker="x")
    ax.set_xlim(-0.5, rig.image_px - 0.5)
    ax.set_ylim(rig.image_px - 0.5, -0.5)
    ax.axis("off")
    ax.set_title(f"{rig.cameras[v].name}: {int(vis.sum())}/{len(vis)} visible", fontsize=9)
visible_pct = 100 * float(frame.visible.float().mean())
fig.suptitle(f"One synthetic test frame in the {rig.num_views} views: {visible_pct:.0f}% of the joints visible")
ch.save_figure(fig, "views")
plt.show()

# %% [markdown]
# ## Adapt MetaFuse with K labelled frames
#
# `adapt.adapt_to_rig` renders the labelled pool and the test set once (cached under a hash of the cameras' numbers, so
# the later calls render nothing), takes the meta-trained MetaFuse model of chapter 3 (cached), and finetunes θ on K
# frames of the pool (a seeded draw per K).

# %%
results = [adapt.adapt_to_rig(chapter.REPO_ROOT / RIG_FILE, k, ch.profile, seed, ch.device) for k in SHOTS]
pretrained_model, _ = pretrained.pretrained_fusion(adapt.METHOD, ch.profile, seed, ch.device, progress=False)
omega_kept = all(torch.equal(r.model.omega_base.cpu(), pretrained_model.omega_base.detach().cpu()) for r in results)
jdr = pd.concat([r.mean_jdr() for r in results]).drop_duplicates(["rig", "method", "k", "joint"])
jdr = jdr.sort_values(["method", "k"], kind="stable", ascending=[False, True])[["rig", "method", "k", "joint", "jdr"]]
ch.save_table(jdr, "jdr")
labelled = jdr.method.where(jdr.method != "MetaFuse", "MetaFuse^" + jdr.k.astype(str))
wide = (jdr.assign(column=labelled).pivot(index="joint", columns="column", values="jdr")
        .reindex(list(adapt.TABLE_JOINTS))[["NoFusion", "EpipolarFusion", *[f"MetaFuse^{k}" for k in SHOTS]]])
display(Markdown(f"JDR (fraction) on {results[0].test_frames} test frames; ω_base bit-identical to the "
                 f"meta-trained one after every adaptation: **{omega_kept}**."))
wide.round(3)

# %% [markdown]
# The gain of MetaFuse^K over NoFusion on the same test frames, in JDR points, with its 95 % paired bootstrap interval
# over frames (`AdaptResult.gain_interval`, `mfcore.stats.paired_bootstrap`). An interval above zero is a gain on this
# rig; one that covers zero but excludes the paper's elbow gain (+2.6 points at K = 50) rules out a gain of the
# paper's size; one that holds both says that more test frames are needed.

# %%
COLORS = {"MetaFuse": "tab:red", "NoFusion": "grey"}
JOINTS = list(adapt.TABLE_JOINTS)
gains = pd.DataFrame([dict(k=r.k, joint=joint, **dict(zip(("gain_points", "ci_low", "ci_high", "frames"),
                                                            (iv.diff, iv.low, iv.high, iv.n))))
                      for r in results for joint in JOINTS for iv in [r.gain_interval(joint, seed=seed)]])
ch.save_table(gains, "gain_intervals")
fig, axes = plt.subplots(1, len(JOINTS), figsize=(3.1 * len(JOINTS), 3.3), sharex=True, sharey=True)
for ax, joint in zip(axes, JOINTS):
    g = gains[gains.joint == joint].sort_values("k")
    ax.errorbar(g.k, g.gain_points, yerr=[g.gain_points - g.ci_low, g.ci_high - g.gain_points], marker="o",
                color=COLORS["MetaFuse"], capsize=3, label="MetaFuse^K − NoFusion (95 % CI)")
    ax.axhline(0.0, color=COLORS["NoFusion"], ls="--", label="NoFusion")
    ax.set(xscale="log", xticks=SHOTS, xticklabels=[str(k) for k in SHOTS], title=joint,
           xlabel="K (labelled frames)", ylabel="JDR gain (points)" if joint == "mean" else "")
    ax.minorticks_off()
axes[-1].legend(fontsize=8, loc="best")
mean = jdr[jdr.joint == "mean"]
nofusion = float(mean[mean.method == "NoFusion"].jdr.iloc[0])  # (EpipolarFusion: the next section)
metafuse = mean[mean.method == "MetaFuse"].set_index("k").jdr
k_lo, k_hi = SHOTS[0], SHOTS[-1]
mean_gain = gains[gains.joint == "mean"]
above = int((mean_gain.ci_low > 0).sum())
below = int((mean_gain.ci_high < 0).sum())
fig.suptitle(f"{rig.name}: MetaFuse^K is above NoFusion ({nofusion:.3f}) in mean JDR for {above} of {len(SHOTS)} K "
             f"values and below it for {below} (95 % paired intervals; K = {k_lo}: {metafuse[k_lo]:.3f}, "
             f"K = {k_hi}: {metafuse[k_hi]:.3f})")
fig.tight_layout()
ch.save_figure(fig, "jdr_vs_k")
plt.show()
ch.glue("nofusion_mean_jdr", round(nofusion, 3))
ch.glue("metafuse_k_lo_mean_jdr", round(float(metafuse[k_lo]), 3))
ch.glue("metafuse_k_hi_mean_jdr", round(float(metafuse[k_hi]), 3))
ch.glue("k_lo", k_lo)
ch.glue("k_hi", k_hi)
ch.glue("k_above_nofusion", f"{above} of {len(SHOTS)}")
_ = ch.glue("k_below_nofusion", f"{below} of {len(SHOTS)}")

# %% [markdown]
# For the smallest K ({glue:text}`k_lo`), the mean JDR of MetaFuse^K is {glue:text}`metafuse_k_lo_mean_jdr` against
# {glue:text}`nofusion_mean_jdr` without fusion; at K = {glue:text}`k_hi` it is {glue:text}`metafuse_k_hi_mean_jdr`.
# MetaFuse^K is above NoFusion, its paired interval wholly above zero, for {glue:text}`k_above_nofusion` values of K,
# and below it for {glue:text}`k_below_nofusion`; for the others the difference is inside the noise of these test
# frames.

# %% [markdown]
# ## Which fusion for this rig? The evidence, in 2D and in 3D
#
# A user of this rig has three choices, and the book measures all three on the same test frames: **NoFusion** (each
# view as the backbone saw it), the **epipolar fusion** (Eq. (1) with every pair's weights drawn from the calibration:
# each pixel's epipolar line in the other view, at the gain fixed before any number, `mfcore.lift.epipolar_fusion`;
# chapter 4b's oracle used as a method, zero labelled frames), and **MetaFuse^K** (above). Each is scored by the mean
# JDR and by the 3D error (MPJPE, mm) after the RPSM of chapter 5 (limb lengths of training motions), each against
# NoFusion with a paired 95 % bootstrap interval over the test frames (`AdaptResult.comparison`). The rule that picks
# one is stated in code before the numbers (`AdaptResult.recommendation`): among the fusions whose 3D interval lies
# wholly below NoFusion's error, the lowest error; NoFusion when none does. `python -m mfbook.adapt` prints the same
# table for your rig.

# %%
chapter.show_code(inspect.getsource(adapt.AdaptResult.recommendation), end="        table = self.comparison")
parts = [results[0].comparison(seed).iloc[:2]] + [r.comparison(seed).iloc[2:] for r in results]
comparison = pd.concat(parts, ignore_index=True)
comparison.insert(0, "rig", rig.name)
comparison.insert(3, "frames", results[0].test_frames)
ch.save_table(comparison, "fusion_comparison")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
fused = comparison[comparison.method != "NoFusion"]
for ax, (value, low, high, label) in zip(axes, (("jdr_gain_points", "jdr_ci_low", "jdr_ci_high",
                                                 "mean JDR − NoFusion (points)"),
                                                ("mpjpe_diff_mm", "mpjpe_ci_low", "mpjpe_ci_high",
                                                 "MPJPE − NoFusion (mm, RPSM)"))):
    x = np.arange(len(fused))
    ax.errorbar(x, fused[value], yerr=[fused[value] - fused[low], fused[high] - fused[value]], fmt="o", capsize=3,
                color="tab:red")
    ax.axhline(0.0, color="grey", ls="--", label="NoFusion")
    ax.set(xticks=x, xticklabels=list(fused.method), ylabel=label)
    ax.legend(fontsize=8)
recommended, why = results[-1].recommendation(seed)
fig.suptitle(f"{rig.name}, {results[0].test_frames} test frames (95 % paired intervals): with K = {SHOTS[-1]} "
             f"labelled frames the evidence recommends {recommended}")
fig.tight_layout()
ch.save_figure(fig, "fusion_comparison")
plt.show()
ch.glue("recommended", recommended)
ch.glue("recommended_why", why)
epi = comparison.set_index("method").loc["EpipolarFusion"]
ch.glue("epipolar_jdr_gain", f"{epi.jdr_gain_points:+.2f} [{epi.jdr_ci_low:+.2f}, {epi.jdr_ci_high:+.2f}]")
ch.glue("epipolar_mpjpe_diff", f"{epi.mpjpe_diff_mm:+.1f} [{epi.mpjpe_ci_low:+.1f}, {epi.mpjpe_ci_high:+.1f}]")
ch.glue("nofusion_mpjpe", f"{comparison.mpjpe_mm.iloc[0]:.1f}")
comparison.set_index("method")[["jdr", "jdr_gain_points", "jdr_ci_low", "jdr_ci_high", "mpjpe_mm", "mpjpe_diff_mm",
                                "mpjpe_ci_low", "mpjpe_ci_high"]].round(3)

# %% [markdown]
# Without fusion the RPSM's 3D error on these frames is {glue:text}`nofusion_mpjpe` mm. The epipolar fusion from the
# calibration changes the mean JDR by {glue:text}`epipolar_jdr_gain` points and the 3D error by
# {glue:text}`epipolar_mpjpe_diff` mm (95 % paired intervals). With K = {glue:text}`k_hi` labelled frames the rule
# recommends **{glue:text}`recommended`**: {glue:text}`recommended_why`.

# %% [markdown]
# ## Your detections → 3D poses: `python -m mfbook.lift`
#
# What the chapter measured on rendered frames, the command `python -m mfbook.lift` does on a real recording: it reads
# your cameras' calibration and your 2D detector's output per camera (COCO-keypoints JSON, OpenPose JSON, heatmap
# arrays, or the book's own heatmaps), maps the detector's joints onto the book's 17 (pelvis = mid-hip, head top =
# mid-eyes for COCO-17, … `mfcore/detections/conventions.py`), fuses the views with the fusion chosen above
# (`--fusion none`, `epipolar`, or the file `mfbook.adapt` saved) and lifts every frame by RANSAC triangulation and the
# RPSM, with a confidence per joint. Here it reads the backbone's detections of the first {glue:text}`demo_frames` test
# frames of this rig, written as a detector would write them: the heatmap maxima as COCO-keypoints JSON with the book's
# joint names, the heatmaps as `.npy` per camera, and the maxima in COCO-17's layout (which has no pelvis, spine,
# thorax or head top of its own). The first two must give exactly the book's internal pipeline (`mfcore.pictorial` on
# the same heatmaps; for a keypoint file, on the keypoints' Gaussian heatmaps, all a keypoint file carries); the third
# measures what the layout mapping costs.

# %%
demo = ch.profile.lift.demo_frames
_, test = adapt.rig_heatmaps(rig, ch.profile, seed, ch.device)
pred, truth = test["pred"][:demo], test["joints_3d_m"][:demo].double()
S = ch.profile.studio
P_hm = pictorial.heatmap_projections(test["projections"], S.image_px, S.heatmap_px).to(ch.device)
stats = lift.limb_stats(ch.profile, seed)
internal = {e: lift.estimate_block(pred.to(ch.device), P_hm, stats, ch.profile.pictorial, (e,))[e].cpu().double()
            for e in lift.ESTIMATORS}
gaussians = detections.keypoint_heatmaps(metrics.heatmap_argmax_px(pred), pred.flatten(-2).amax(-1).clamp(max=1.0),
                                         S.heatmap_px, S.heatmap_sigma_px)
internal_kp = lift.estimate_block(gaussians.to(ch.device), P_hm, stats, ch.profile.pictorial, ("rpsm",))["rpsm"]
FORMATS = {"coco": "COCO-keypoints, the book's joints", "heatmaps": "heatmaps .npy", "coco17": "COCO-keypoints, COCO-17"}
rows = []
with tempfile.TemporaryDirectory() as tmp:
    written = detections.export(pred, rig, tmp, formats=tuple(FORMATS))
    for fmt, files in written.items():
        out = Path(tmp) / f"{fmt}.npz"
        layout = ["--layout", "h36m17"] if fmt == "heatmaps" else []  # 17 channels say no layout: the reader asks
        argv = [str(chapter.REPO_ROOT / RIG_FILE), *files, "-o", str(out), "--profile", ch.profile.name,
                "--device", ch.device.type, "--seed", str(seed), *layout]
        said = io.StringIO()
        with contextlib.redirect_stdout(said):  # the command's report (its progress bar goes to stderr)
            assert lift_cli.main(argv) == 0
        if fmt == "coco":
            print(f"$ python -m mfbook.lift {RIG_FILE} {files[0].replace(tmp + '/', '')} … ({len(files)} cameras) "
                  f"-o coco.npz --profile {ch.profile.name}\n{said.getvalue().replace(tmp + '/', '')}")
        z = np.load(out)
        for est in lift.ESTIMATORS:
            ref = internal_kp.cpu().double() if (est == "rpsm" and fmt == "coco") else internal[est]
            got = torch.from_numpy(z[f"{est}_3d_m"])
            err, err_ref = 1000 * (got - truth).norm(dim=-1), 1000 * (ref - truth).norm(dim=-1)
            ok = torch.isfinite(err)  # COCO-17 has no head top of its own: its RANSAC head top is not triangulated
            rows.append(dict(format=FORMATS[fmt], estimator=est, frames=demo, joints=int(ok.sum()),
                             mpjpe_mm=float(err[ok].mean()), internal_mpjpe_mm=float(err_ref[ok].mean()),
                             max_pose_diff_mm=float(1000 * (got - ref).norm(dim=-1)[ok].max())))
        if fmt == "coco":
            preview = (Path(tmp) / "coco_preview.png").read_bytes()
round_trip = pd.DataFrame(rows).assign(diff_mm=lambda d: (d.mpjpe_mm - d.internal_mpjpe_mm).abs())
ch.save_table(round_trip, "lift_round_trip")
atomic_write_bytes(ch.out / "lift_preview.png", preview)  # the command's own figure (byte-stable)
display(Image(preview))
exact = round_trip[round_trip.format != FORMATS["coco17"]]
ch.glue("demo_frames", demo)
ch.glue("round_trip_max_diff_mm", f"{exact.diff_mm.max():.3f}")
ch.glue("round_trip_holds", "holds" if exact.diff_mm.max() <= 0.5 else "does not hold")
coco17 = round_trip[(round_trip.format == FORMATS["coco17"]) & (round_trip.estimator == "rpsm")].iloc[0]
ch.glue("coco17_cost_mm", f"{coco17.mpjpe_mm - coco17.internal_mpjpe_mm:+.1f}")
round_trip.round(3)

# %% [markdown]
# Read back through the command, the book's own detections give the internal pipeline's 3D error to within
# {glue:text}`round_trip_max_diff_mm` mm (the acceptance, 0.5 mm, {glue:text}`round_trip_holds`). The same maxima in
# COCO-17's layout, whose pelvis, spine, thorax and head top are made from the hips, shoulders and eyes (the backbone
# gives no eyes: the head top is missing and the RPSM places it by the limb lengths), change the RPSM's error by
# {glue:text}`coco17_cost_mm` mm: the price of a detector's layout. For your rig and detector:
#
# ```console
# $ python -m mfbook.lift path/to/calibration cam1=cam1.json cam2=cam2.json … -o poses.npz --fusion epipolar
# ```
#
# writes `poses.npz` (3D in your calibration's frame and units and in the book's metres, fused 2D per camera,
# confidences), `poses.csv` (one row per frame, joint and estimator) and `poses_preview.png`; the page "Bring your own
# cameras" lists every option and the conventions of every format.

# %% [markdown]
# ## Finetuning time
#
# Wall-clock seconds of finetuning θ for each K (timings differ run to run, so they are stored apart from the tables).
# Only θ moves: 6 numbers per heatmap pixel and ordered pair of cameras.

# %%
times = pd.DataFrame([dict(rig=rig.name, views=rig.num_views, pairs=len(r.model.pairs), k=r.k,
                           steps=sizes.finetune_steps, theta_numbers=r.model.theta.numel(),
                           finetune_s=r.mean_finetune_s, device=chapter.device_name(ch.device)) for r in results])
ch.save_timings(times, "finetune_times")
ch.glue("theta_numbers", f"{results[0].model.theta.numel():,}")
ch.glue("finetune_s_k_hi", f"{times.finetune_s.iloc[-1]:.1f}")
times.round(2)

# %% [markdown]
# ## Keep the adapted model
#
# The command below saves the adapted fusion parameters (ω_base and θ, {glue:text}`theta_numbers` numbers of θ for this
# rig) with `torch.save`; `adapt.load_adapted(path, rig)` reads them back (`torch.load(..., weights_only=True)`) into a
# frozen fusion model that gives the same fused heatmaps:

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = adapt.save_adapted(results[0].model, Path(tmp) / "adapted.pt")
    loaded = adapt.load_adapted(path, chapter.REPO_ROOT / RIG_FILE, device=ch.device)
    train, test = adapt.rig_heatmaps(rig, ch.profile, seed, ch.device)
    same = torch.equal(maml.fuse_frames(loaded, test["pred"][:4]), maml.fuse_frames(results[0].model, test["pred"][:4]))
display(Markdown(f"Reloaded model fuses the test heatmaps exactly as the adapted one: **{same}**."))

# %% [markdown]
# ## Your cameras
#
# Write your rig file in the format above (or copy `mfcore/rigs/example_rig.yaml`) and run, from the repository root:

# %%
command = adapt_cli.command_line("path/to/your_rig.yaml", SHOTS[0], profile=ch.profile.name, out="adapted.pt")
this_rig = adapt_cli.command_line(RIG_FILE, SHOTS[0], profile=ch.profile.name)
ch.glue("command", command)
display(Markdown(f"```console\n$ {command}\n```\n\nThis page's rig, at K = {SHOTS[0]}:\n\n"
                 f"```console\n$ {this_rig}\n```\n\nIt prints the JDR table of NoFusion and MetaFuse^K (mean and the "
                 f"joints above) and saves the adapted parameters; K can be any integer from 1 to the profile's pool "
                 f"({adapt.max_shots(ch.profile)} frames for profile `{ch.profile.name}`)."))

# %%
ch.finish();
