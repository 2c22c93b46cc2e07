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
# # 5. From 2D heatmaps to 3D poses: triangulation, PSM and RPSM
#
# MetaFuse estimates 3D poses "by a pictorial structure model" (MetaFuse Sec. 5.2, citing Cross View Fusion) from the
# fused multi-view heatmaps, and reports MPJPE without alignment (Tables 2-3, and the Panoptic numbers of Sec. 5.4).
# This chapter builds that last step and measures it:
#
# 1. the estimators: DLT triangulation of the heatmap maxima, confidence-weighted DLT, RANSAC over views, the
#    Pictorial Structure Model (PSM) on a 3D grid, and the Recursive PSM (RPSM) of Cross View Fusion (`mfcore/pictorial.py`);
# 2. how much the grid's quantisation costs (PSM error against grid size, RPSM error against the number of stages);
# 3. how each estimator copes with misplaced heatmap peaks;
# 4. the 3D tables of MetaFuse on the synthetic studio's rigs.
#
# **What differs from the public Cross View Fusion code.** That code centres its 3D grid on the *ground-truth* root and
# scores limbs against the *ground-truth* limb lengths of the test frame. Here the grid is centred on the root
# triangulated from the heatmaps (RANSAC over views), and limb lengths are scored against statistics of *training*
# motions; nothing about a test frame's ground truth enters the estimate.
#
# **All data in this book are synthetic (the book's capture studio); no number on this page is one of the papers'.**

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from tqdm.auto import tqdm

from mfcore import book, metrics, motion, pictorial, skeleton, studio

ch = book.open_chapter("05_rpsm_3d", profile=profile, device=device, seed=seed, out_dir=out_dir)
S = ch.profile.pictorial
HM_PX, SIGMA_PX = ch.profile.studio.heatmap_px, ch.profile.studio.heatmap_sigma_px
print(f"heatmaps {HM_PX}² px, PSM grid {S.grid_bins}³ over {S.cube_size_mm:.0f} mm, RPSM {S.rpsm_stages} stages of "
      f"{S.rpsm_bins}³, device {ch.device}")

# %% [markdown]
# ## Limb lengths from training motions
#
# The pairwise term of the PSM scores each limb's length against its mean μ and spread σ over
# {glue:text}`stats_frames` training poses (augmented with bone-length jitter, as the studio's training data are).
# A limb is free inside a band of 2σ + s/2 around μ (s: the grid spacing) and penalised outside it; the test frame's own
# limb lengths are never used.

# %%
train_poses, _ = motion.sample_poses("train", S.stats_frames, seed)
stats = pictorial.limb_length_stats(train_poses)
limb_table = pd.DataFrame({
    "limb": [f"{skeleton.JOINT_NAMES[p]}–{skeleton.JOINT_NAMES[c]}" for p, c in skeleton.LIMBS],
    "mean_mm": (1000 * stats.mean_m).numpy(), "std_mm": (1000 * stats.std_m).numpy()})
ch.save_table(limb_table, "limb_stats")
ch.glue("stats_frames", f"{S.stats_frames:,}")
limb_table.round(1)

# %% [markdown]
# ## What the grid costs: quantisation on perfect heatmaps
#
# Perfect heatmaps (a Gaussian of σ = {glue:text}`sigma_px` px at every projected joint) of
# {glue:text}`quant_frames` test poses in the H36M-like rig of test subject S9. The PSM can only answer with a cell
# centre, so its error is bound to its cell ({glue:text}`psm_cell_mm` mm at {glue:text}`grid_bins`³ bins); each RPSM
# stage halves the spacing around every joint. Two ways of reading the heatmaps are compared: the paper's (bilinear
# values at each cell's projection) and ours, which first smooths each heatmap to the scale of the grid as projected
# into that view, so that a coarse grid cannot fall between narrow peaks. Triangulating the heatmap maxima is the
# reference: with perfect heatmaps only the heatmap's own pixel grid limits it.

# %%
rig9 = studio.get_rig("h36m_s9").at_resolution(HM_PX)
P9 = rig9.projections(device=ch.device)  # (V, 3, 4) at heatmap resolution
test_poses, _ = motion.sample_poses("test", S.test_frames, seed + 1)
test_poses = test_poses.to(ch.device)
perfect = pictorial.render_gaussian_heatmaps(test_poses, P9, HM_PX, SIGMA_PX)
UNARY = {"paper (bilinear read-out)": False, "smoothed to the grid (ours)": True}

rows = []
for G in tqdm(S.quant_grid_bins, desc="grid sizes"):
    for unary, antialias in UNARY.items():
        for b0 in range(0, len(test_poses), S.batch_frames):
            sl = slice(b0, b0 + S.batch_frames)
            stages = pictorial.rpsm(perfect[sl], P9, stats, G, S.cube_size_mm, S.quant_max_stages, S.rpsm_bins,
                                    antialias=antialias, return_stages=True)
            for t, est in enumerate(stages):
                err = metrics.mpjpe_mm(est.cpu(), test_poses[sl].cpu())
                rows += [dict(grid_bins=G, unary=unary, stages=t, mpjpe_mm=e) for e in err.tolist()]
quant = (pd.DataFrame(rows).groupby(["grid_bins", "unary", "stages"], as_index=False, sort=False).mpjpe_mm.mean()
         .assign(final_cell_mm=lambda d: [pictorial.final_cell_mm(S.cube_size_mm, g, t)
                                          for g, t in zip(d.grid_bins, d.stages)]))
tri_perfect = metrics.mpjpe_mm(pictorial.triangulate_argmax(perfect, P9).cpu(), test_poses.cpu()).mean().item()
ch.save_table(quant, "quantization")

fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2))
psm_only = quant[quant.stages == 0]
sns.lineplot(data=psm_only, x="grid_bins", y="mpjpe_mm", hue="unary", marker="o", ax=axes[0])
cells = psm_only.drop_duplicates("grid_bins")
axes[0].plot(cells.grid_bins, cells.final_cell_mm, "k:", label="cell side")
axes[0].axhline(tri_perfect, color="C2", ls="--", label="triangulation of maxima")
axes[0].set(xlabel="PSM bins per axis", ylabel="MPJPE (mm)", yscale="log", xticks=list(S.quant_grid_bins),
            title="PSM error falls with the grid's cell size")
axes[0].legend(fontsize=8)
at_grid = quant[quant.grid_bins == S.grid_bins]
sns.lineplot(data=at_grid, x="stages", y="mpjpe_mm", hue="unary", marker="o", ax=axes[1])
axes[1].plot(at_grid.stages.unique(), [pictorial.final_cell_mm(S.cube_size_mm, S.grid_bins, t)
                                       for t in at_grid.stages.unique()], "k:", label="last cell side")
axes[1].axhline(tri_perfect, color="C2", ls="--", label="triangulation of maxima")
axes[1].set(xlabel="RPSM refinement stages (0 = PSM)", ylabel="MPJPE (mm)", yscale="log",
            xticks=list(range(S.quant_max_stages + 1)),
            title=f"Each RPSM stage removes quantisation error ({S.grid_bins}³ PSM)")
axes[1].legend(fontsize=8)
for ax in axes:
    ax.yaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(mticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
fig.tight_layout()
ch.save_figure(fig, "quantization")

ours = at_grid[at_grid.unary == "smoothed to the grid (ours)"].set_index("stages").mpjpe_mm
paper = at_grid[at_grid.unary == "paper (bilinear read-out)"].set_index("stages").mpjpe_mm
ch.glue("sigma_px", f"{SIGMA_PX:g}")
ch.glue("quant_frames", len(test_poses))
ch.glue("grid_bins", S.grid_bins)
ch.glue("psm_cell_mm", f"{S.cube_size_mm / S.grid_bins:.0f}")
ch.glue("quant_psm_mm", f"{ours.loc[0]:.1f}")
ch.glue("quant_rpsm_stages", S.quant_max_stages)
ch.glue("quant_rpsm_mm", f"{ours.loc[S.quant_max_stages]:.1f}")
ch.glue("quant_paper_psm_mm", f"{paper.loc[0]:.1f}")
ch.glue("quant_paper_rpsm_mm", f"{paper.loc[S.quant_max_stages]:.1f}")
ch.glue("quant_tri_mm", f"{tri_perfect:.1f}")

# %% [markdown]
# With {glue:text}`grid_bins`³ bins the PSM alone is off by {glue:text}`quant_psm_mm` mm (paper's read-out:
# {glue:text}`quant_paper_psm_mm` mm); after {glue:text}`quant_rpsm_stages` RPSM stages the error is
# {glue:text}`quant_rpsm_mm` mm ({glue:text}`quant_paper_rpsm_mm` mm). Triangulating the maxima of these perfect
# heatmaps gives {glue:text}`quant_tri_mm` mm: with nothing wrong in the heatmaps there is nothing for the pictorial
# model to correct, only quantisation to lose. The next section is where the model earns its keep.

# %% [markdown]
# ## Misplaced peaks: what each estimator does with a wrong detection
#
# The same test poses, with heatmaps jittered by {glue:text}`robust_jitter_px` px and a fraction of the
# (frame, view, joint) channels given their peak at a random pixel (a detector failure such as a left/right swap or an
# occluded joint). Triangulation trusts every maximum; RANSAC votes over views; the PSM and RPSM weigh all views'
# evidence at every candidate location against the skeleton's limb lengths.

# %%
ROBUST_JITTER_PX = 0.25 * HM_PX / 16  # a quarter heatmap pixel at the smoke size, scaled with the heatmap side
rows = []
for frac in tqdm(S.outlier_fractions, desc="outlier fractions"):
    noisy = pictorial.render_gaussian_heatmaps(test_poses, P9, HM_PX, SIGMA_PX, jitter_px=ROBUST_JITTER_PX,
                                               outlier_fraction=frac, seed=seed + 2)
    for est in pictorial.ESTIMATORS:
        pose = pictorial.estimate_3d(est, noisy, P9, stats, S)
        rows.append(dict(outlier_fraction=frac, estimator=est,
                         mpjpe_mm=metrics.mpjpe_mm(pose.cpu(), test_poses.cpu()).mean().item(),
                         pa_mpjpe_mm=metrics.pa_mpjpe_mm(pose.cpu(), test_poses.cpu()).mean().item()))
robust = pd.DataFrame(rows)
ch.save_table(robust, "robustness")

fig, ax = plt.subplots(figsize=(6.5, 4))
sns.lineplot(data=robust, x="outlier_fraction", y="mpjpe_mm", hue="estimator", marker="o", ax=ax)
worst = robust[robust.outlier_fraction == max(S.outlier_fractions)].set_index("estimator").mpjpe_mm
ax.set(xlabel="fraction of heatmap channels with a misplaced peak", ylabel="MPJPE (mm)", yscale="log",
       title=f"With misplaced peaks, {worst.idxmin()} degrades least")
ax.yaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
ax.yaxis.set_major_formatter(mticker.ScalarFormatter())
ax.yaxis.set_minor_formatter(mticker.NullFormatter())
fig.tight_layout()
ch.save_figure(fig, "robustness")
ch.glue("robust_jitter_px", f"{ROBUST_JITTER_PX:g}")
ch.glue("robust_worst_fraction", f"{100 * max(S.outlier_fractions):.0f}")
ch.glue("robust_best", worst.idxmin())
ch.glue("robust_best_mm", f"{worst.min():.1f}")
ch.glue("robust_tri_mm", f"{worst.loc['triangulation']:.1f}")
robust.pivot(index="outlier_fraction", columns="estimator", values="mpjpe_mm").round(1)

# %% [markdown]
# With {glue:text}`robust_worst_fraction`% of the channels misplaced, {glue:text}`robust_best` keeps the error at
# {glue:text}`robust_best_mm` mm where plain triangulation reaches {glue:text}`robust_tri_mm` mm.

# %% [markdown]
# ## The 3D tables of MetaFuse on the studio's rigs
#
# Each 2D method's heatmaps of the test frames go through every estimator; MPJPE is measured without alignment, as
# MetaFuse does, and PA-MPJPE (after a similarity alignment) beside it. Two references bracket the methods: the
# ground-truth Gaussian heatmaps (perfect 2D, so what remains is the 3D step's own error) and the backbone's heatmaps
# without fusion (NoFusion). The rigs: the H36M-like room for test subjects S9 and S11 (Table 2), the
# Total-Capture-like ring split by the motion type of the test clips (Table 3), and the dome's held-out cameras
# (Sec. 5.4).

# %%
from mfcore import backbone

TABLE_ESTIMATORS = ("triangulation", "ransac", "psm", "rpsm")
RIG_TESTS = {"h36m": ("h36m_s9", "h36m_s11"), "totalcapture": ("totalcapture",), "dome": ("dome",)}
HELDOUT = list(studio.DOME_HELDOUT_VIEWS)


def test_set(rig_name):
    """Cached backbone heatmaps of the test frames of one rig (the dome: its held-out cameras only)."""
    views = HELDOUT if rig_name == "dome" else None
    return backbone.cached_heatmaps(rig_name, "test", S.test_frames, ch.profile, seed + 10, ch.device, views=views,
                                    backbone_seed=seed)


def score(heatmaps, sample, estimators=TABLE_ESTIMATORS):
    """MPJPE and PA-MPJPE per frame of every estimator on (N, V, J, h, w) heatmaps of one test set."""
    P = pictorial.heatmap_projections(sample["projections"], ch.profile.studio.image_px, HM_PX).to(ch.device)
    gt = sample["joints_3d_m"]
    out = {}
    for est in estimators:
        pose = pictorial.estimate_3d(est, heatmaps.to(ch.device), P, stats, S).cpu()
        out[est] = (metrics.mpjpe_mm(pose, gt), metrics.pa_mpjpe_mm(pose, gt))
    return out


tests = {name: test_set(name) for rigs in RIG_TESTS.values() for name in rigs}
rows = []
for rig, names in tqdm(RIG_TESTS.items(), desc="rigs"):
    for method, key in (("GroundTruth2D", "target"), ("NoFusion", "pred")):
        per_est = {}
        for name in names:
            for est, (e, pa) in score(tests[name][key], tests[name]).items():
                per_est.setdefault(est, []).append((e, pa))
        for est, parts in per_est.items():
            e, pa = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            rows.append(dict(rig=rig, method=method, k=0, estimator=est, mpjpe_mm=e.mean().item(),
                             pa_mpjpe_mm=pa.mean().item(), frames=len(e)))
mpjpe = pd.DataFrame(rows)
ch.save_table(mpjpe, "mpjpe")
mpjpe.pivot_table(index=["rig", "method"], columns="estimator", values="mpjpe_mm", sort=False).round(1)

# %%
ch.finish()
