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
# # 4b. The epipolar oracle: is there anything for fusion to fix?
#
# A companion of chapter 4 (its file is `09_epipolar_oracle`: it runs after chapter 4, beside chapters 5, 6 and 8, so
# that the book's slowest chain of chapters stays short). Chapter 4 measured what the fusion methods of MetaFuse's
# Table 1 gain on the Fig. 7 target rigs; this chapter asks how much *any* fusion by Eq. (1) could gain there, with
# exact camera geometry instead of learned weights, and whether the loss of Eq. (3) rewards such weights (this
# diagnostic is the book's own addition: the paper has no such experiment). Its last section trains NaiveFuse<sup>full</sup>
# as the paper describes its upper bound, the backbone and the fusion layers together, end to end.
#
# It reads the same backbone heatmaps of the same test frames as Fig. 7, and chapter 4's finetuned models through
# their cache (`mfcore.fewshot.fused_test_heatmaps` and `setting_peaks`; rebuilt here if missing).
#
# **All data are synthetic** (the book's capture studio); no number on this page is one of the paper's, and the smoke
# profile's numbers are not meaningful at all.

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
from IPython.display import Markdown

import inspect

import torch

from mfcore import claims, endtoend, fewshot, fusion, stats, targets
from mfcore import oracle as epipolar_oracle
from mfbook import chapter, plots

ch = chapter.open_chapter("09_epipolar_oracle", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.metafuse
sns.set_theme(style="whitegrid", context="notebook")
RIG_TITLES = {"h36m": "H36M-like room (test subjects S9, S11)", "dome_heldout": "dome, held-out cameras"}

# %% [markdown]
# ## The references from chapter 4
#
# The mean JDR (half a head, averaged over the draws of cameras) of NoFusion, NaiveFuse<sup>full</sup> and MetaFuse at the
# largest K on the test frames of each target rig: chapter 4's own numbers, from the heatmap maxima it cached for
# every setting (`mfcore.fewshot.setting_peaks`, read by the function chapter 4 calls, `few_shot_curves`, for these
# three settings); run alone, this chapter computes them the same way from chapter 4's cached fused heatmaps.

# %%
k_top = max(sizes.shots)
REFERENCES = (("NoFusion", 0), ("NaiveFuseFull", sizes.target_train_frames), ("MetaFuse", k_top))
reference_frames = []  # their per-frame detections: the units of the paired intervals of the last section
rows = pd.DataFrame(fewshot.few_shot_curves(ch.profile, seed, ch.device, progress=False, settings=list(REFERENCES),
                                            frame_rows=reference_frames)[0])
rows = rows[(rows.split == "test") & (rows.subject == "all") & (rows.threshold == "half_head")]
mean = rows.groupby(["rig", "method", "k", "joint"], as_index=False, sort=False).jdr.mean()  # average over trials
mean[mean.joint == "mean"].pivot(index="rig", columns="method", values="jdr").round(3)

# %% [markdown]
# ## The epipolar oracle
#
# Every fusion method of this chapter adds, by Eq. (1), the other views' heatmaps carried along learned weights. How
# much *could* such a sum gain on these heatmaps? The oracle below uses the weights a perfect learner would find:
# for every ordered pair of views, row i of W is the exact epipolar line of target pixel i in the source view (the
# calibrated cameras, the visible half-line, a Gaussian profile of the heatmaps' own σ), scaled by a gain in units of
# one source peak (`mfcore.oracle.epipolar_oracle_weights`). Nothing is learned and nothing is finetuned: it reads the
# same backbone heatmaps of the same test frames as Fig. 7. Every gain is shown; the best one is picked on the test
# frames, so the best oracle JDR is an upper bound of Eq. (1) with exact geometry on these heatmaps, not a method.
# This diagnostic is the book's own addition (the paper has no such experiment).

# %%
oracle = pd.DataFrame([row for target in targets.FIG7_TARGETS for trial in range(targets.target_trials(target, ch.profile))
                       for row in epipolar_oracle.epipolar_oracle_rows(target, trial, ch.profile, seed, ch.device)])
ch.save_table(oracle, "epipolar_oracle")
oracle_mean = (oracle[(oracle.joint == "mean") & (oracle.threshold == "half_head")]
               .groupby(["rig", "gain"], as_index=False)[["jdr", "mse"]].mean())  # average over trials
fig, grid = plt.subplots(2, len(targets.FIG7_TARGETS), figsize=(5.6 * len(targets.FIG7_TARGETS), 6.4), sharex="col",
                         sharey="row")
oracle_summary = []
for ax, ax_mse, rig in zip(grid[0], grid[1], targets.FIG7_TARGETS):
    o = oracle_mean[oracle_mean.rig == rig]
    ref = mean[(mean.rig == rig) & (mean.joint == "mean")]
    nofusion = float(ref[ref.method == "NoFusion"].jdr.iloc[0])
    best = o.loc[o.jdr.idxmax()]
    oracle_summary.append(dict(rig=rig, nofusion=nofusion, oracle_best_gain=float(best.gain),
                               oracle_best=float(best.jdr),
                               naivefuse_full=float(ref[ref.method == "NaiveFuseFull"].jdr.iloc[0]),
                               metafuse_top_k=float(ref[(ref.method == "MetaFuse") & (ref.k == k_top)].jdr.iloc[0]),
                               mse_ratio=float(best.mse / o[o.gain == 0].mse.iloc[0])))
    ax.plot(o.gain, o.jdr, "o-", color="black", label="epipolar oracle")
    ax.axhline(nofusion, color="grey", ls="--", label="NoFusion")
    ax.axhline(oracle_summary[-1]["naivefuse_full"], color="grey", ls="-", label="NaiveFuse^full")
    ax.axhline(oracle_summary[-1]["metafuse_top_k"], color="tab:red", ls=":", label=f"MetaFuse^{k_top}")
    ax.set(ylabel="mean JDR (fraction)",
           title=f"{RIG_TITLES.get(rig, rig)}\noracle best {best.jdr:.3f} at gain {best.gain:g}")
    ax_mse.plot(o.gain, o.mse, "s-", color="black")
    ax_mse.axvline(best.gain, color="tab:green", ls=":", label="gain of the best JDR")
    ax_mse.set(ylabel="Eq. (3) loss (MSE; log)", yscale="log")
    plots.gain_axis(ax_mse, o.gain, "oracle gain (source peaks added on the line; symlog)")
grid[0, -1].legend(fontsize=8, loc="best")
grid[1, -1].legend(fontsize=8, loc="best")
gain_pts = max(100 * (r["oracle_best"] - r["nofusion"]) for r in oracle_summary)
learned_pts = max(100 * (max(r["naivefuse_full"], r["metafuse_top_k"]) - r["nofusion"]) for r in oracle_summary)
fig.suptitle(f"Exact epipolar fusion gains up to {gain_pts:+.1f} JDR points over NoFusion; "
             f"the best learned model {learned_pts:+.1f}")
fig.tight_layout()
ch.save_figure(fig, "epipolar_oracle")
plt.show()
oracle_summary = pd.DataFrame(oracle_summary)
for r in oracle_summary.itertuples():
    ch.glue(f"oracle_{r.rig}_best", round(r.oracle_best, 3))
    ch.glue(f"oracle_{r.rig}_gain_points", round(100 * (r.oracle_best - r.nofusion), 1))
    ch.glue(f"oracle_{r.rig}_best_gain", f"{r.oracle_best_gain:g}")
    ch.glue(f"naivefull_{r.rig}_gain_points", round(100 * (r.naivefuse_full - r.nofusion), 1))
    ch.glue(f"metafuse_top_{r.rig}_gain_points", round(100 * (r.metafuse_top_k - r.nofusion), 1))
    ch.glue(f"oracle_{r.rig}_mse_ratio", f"{r.mse_ratio:.2f}")
    ch.glue(f"oracle_{r.rig}_mse_reading", (
        "higher: Eq. (3) scores these joint-fixing weights worse than no fusion at all, so a model trained by it has "
        "no reason to move towards them"
        if r.mse_ratio > 1 else
        "not higher: Eq. (3) would reward these weights, so the learned models fall short for another reason "
        "(step counts, rates, or the optimisation itself)"))
ch.glue("oracle_top_k", k_top)


def oracle_verdict(r, margin=0.01):
    """Which reading the numbers support, with a margin of 1 JDR point (10x the printed precision of a JDR)."""
    learned = max(r.naivefuse_full, r.metafuse_top_k)
    if r.oracle_best - r.nofusion < margin:
        return "even the oracle gains less than 1 JDR point: there is little here that an Eq. (1) sum can fix"
    if r.oracle_best - learned >= margin:
        return ("the oracle gains at least 1 JDR point more than the best learned model: exact geometry would help, "
                "and the learned weights do not find it")
    return "the best learned model comes within 1 JDR point of the oracle"


for r in oracle_summary.itertuples():
    ch.glue(f"oracle_verdict_{r.rig}", oracle_verdict(r))
oracle_summary.round(3)

# %% [markdown]
# Mean JDR points over NoFusion, H36M-like room: the best oracle gains {glue:text}`oracle_h36m_gain_points` (gain
# {glue:text}`oracle_h36m_best_gain`), NaiveFuse<sup>full</sup> {glue:text}`naivefull_h36m_gain_points` and
# MetaFuse<sup>{glue:text}`oracle_top_k`</sup> {glue:text}`metafuse_top_h36m_gain_points`; dome's held-out cameras: oracle
# {glue:text}`oracle_dome_heldout_gain_points` (gain {glue:text}`oracle_dome_heldout_best_gain`), NaiveFuse<sup>full</sup>
# {glue:text}`naivefull_dome_heldout_gain_points`, MetaFuse<sup>{glue:text}`oracle_top_k`</sup>
# {glue:text}`metafuse_top_dome_heldout_gain_points`.
#
# How to read it. Where the oracle gains little, the errors the backbone makes on these images are mostly not of the
# kind a sum of epipolar lines repairs (a line adds evidence along its whole length; it can move a maximum only where
# a wrong peak is weak and the other views agree), and no learned Eq. (1) model can gain much either: MetaFuse and
# AffineFuse sitting on NoFusion is then what this studio allows, not a failure of meta-learning. Where the oracle
# gains clearly more than NaiveFuse<sup>full</sup> and MetaFuse, exact geometry would help and the learned models do not find
# it. Our hypothesis for that case, written before the lower panels were computed (when the book's Eq. (3) was the MSE
# of the plain sum `x_t + Σ_s W x_s`): the weights learned by it stay small, because an epipolar line adds the same
# amount to every pixel along it and raises the squared error at all the pixels that are not the joint. The next
# section compares that objective with the one the book uses now.
#
# At this profile, on the H36M-like room {glue:text}`oracle_verdict_h36m`; on the dome's held-out cameras
# {glue:text}`oracle_verdict_dome_heldout`. Chapter 7's scorecard records the Fig. 7 claims either way.
#
# The lower panels: the loss of Eq. (3) as the book now defines it (the MSE of the Cross View Fusion code's mix, next
# section), the objective every learned method here minimises, at each oracle gain. At the gain of the best JDR the loss is {glue:text}`oracle_h36m_mse_ratio`×
# NoFusion's on the H36M-like room and {glue:text}`oracle_dome_heldout_mse_ratio`× on the dome, that is
# {glue:text}`oracle_h36m_mse_reading` (H36M-like room; dome: {glue:text}`oracle_dome_heldout_mse_reading`).

# %% [markdown]
# ## Which Eq. (3)? The candidate objectives along the oracle's lines
#
# Every learned model here (pre-training, meta-training, finetuning, NaiveFuse<sup>full</sup>, the own-cameras path) minimises
# one loss, Eq. (3): the MSE between the fused heatmaps and the ground-truth Gaussians (peak 1). What that loss
# rewards depends on how Eq. (1) mixes the views, and the papers give two readings. MetaFuse's Eq. (1) writes the plain
# sum `x_t + Σ_s W x_s`; the Cross View Fusion code that MetaFuse builds on (`Aggregation` in the authors'
# `multiview_pose_resnet.py`) fuses four views as `0.4·x_t + 0.2·Σ_s FC(x_s)` and supervises that mix with the
# joints-MSE, and MetaFuse's Sec. 5.1 applies a softmax of temperature T = 0.2 to every fused channel. Three candidates,
# computed on the same fused maps as the figure above (`mfcore.oracle.epipolar_oracle_rows`, columns of the same
# rows; nothing is re-fused):
#
# * **the mix** (`mse`): `0.4·x_t + 0.6/(V−1)·Σ_s W x_s` (the reference's weights generalised to V views: the own
#   heatmap 0.4, the others sharing 0.6, so a pair model spread over a V-view rig keeps its total), MSE;
# * **the plain sum** (`mse_sum`): `x_t + Σ_s W x_s`, MSE (the book's Eq. (3) before this chapter);
# * **the softmax** (`mse_softmax`): the T = 0.2 softmax of the plain sum against the sum-normalised target, both
#   scaled by the target's mass (so the target is the peak-1 Gaussian again; `mfcore.fusion.softmax_mse`).
#
# The oracle's gain keeps its meaning under the mix: the oracle's weights carry the mix's ratio, so the mixed map is
# `0.4·(x_t + gain·Σ_s L x_s)` with L the unit lines, a source peak adds `gain` own peaks, and the JDR at every gain is
# the plain sum's (the argmax does not see the factor 0.4). Each loss is drawn relative to its own value at gain 0
# (NoFusion's maps), so the three scales compare; the gain that minimises each is marked beside the JDR of the same
# maps. The mix's and the plain sum's losses are exactly quadratic in the gain (the fused map is linear in it), so
# their minimum is read from the quadratic through the rows, not from the grid.

# %%
CANDIDATES = {"mse": f"the mix {fusion.SELF_WEIGHT:g}·x_t + {fusion.SOURCES_WEIGHT:g}/(V−1)·ΣWx_s (adopted)",
              "mse_sum": "the plain sum x_t + ΣWx_s",
              "mse_softmax": f"softmax (T = {fusion.DEFAULT_TEMPERATURE:g}) of the plain sum"}
ch.glue("self_weight", f"{fusion.SELF_WEIGHT:g}")
ch.glue("sources_weight", f"{fusion.SOURCES_WEIGHT:g}")
assert set(CANDIDATES) == set(epipolar_oracle.OBJECTIVES)
objective_mean = (oracle[(oracle.joint == "mean") & (oracle.threshold == "half_head")]
                  .groupby(["rig", "gain"], as_index=False)[["jdr", *CANDIDATES]].mean())  # average over trials


def loss_minimum(o, col):
    """The gain that minimises a candidate along the lines: the vertex of the quadratic through the rows for the two
    MSEs of a linear map (exact; clipped to the drawn gains), the best drawn gain for the softmax."""
    if col == "mse_softmax":
        return float(o.gain.iloc[int(o[col].to_numpy().argmin())])
    c2, c1, _ = np.polyfit(o.gain.to_numpy(), o[col].to_numpy(), 2)
    return float(np.clip(-c1 / (2 * c2), o.gain.min(), o.gain.max())) if c2 > 0 else float(o.gain.max())


fig, grid = plt.subplots(2, len(targets.FIG7_TARGETS), figsize=(5.6 * len(targets.FIG7_TARGETS), 6.4), sharex="col",
                         sharey="row")
objective_summary = []
for ax, ax_loss, r in zip(grid[0], grid[1], oracle_summary.itertuples()):
    o = objective_mean[objective_mean.rig == r.rig].sort_values("gain")
    ax.plot(o.gain, o.jdr, "o-", color="black", label="JDR of the fused maps")
    ax.axhline(r.nofusion, color="grey", ls="--", label="NoFusion")
    for (col, label), color in zip(CANDIDATES.items(), ("tab:green", "tab:orange", "tab:purple")):
        g_min = loss_minimum(o, col)
        near = o.iloc[int((o.gain - g_min).abs().to_numpy().argmin())]  # the drawn gain nearest the minimum
        objective_summary.append(dict(rig=r.rig, objective=col, loss_min_gain=g_min, jdr_at_min=float(near.jdr),
                                      nofusion=r.nofusion, oracle_best=r.oracle_best,
                                      oracle_best_gain=r.oracle_best_gain))
        ax_loss.plot(o.gain, o[col] / o[col].iloc[0], "s-", color=color, label=label)
        ax_loss.axvline(g_min, color=color, ls=":")
        ax.axvline(g_min, color=color, ls=":")
    ax.set(ylabel="mean JDR (fraction)", title=f"{RIG_TITLES.get(r.rig, r.rig)}\nJDR of the oracle's fused maps; "
                                               f"dotted: each loss's minimum")
    ax_loss.set(ylabel="loss / its value at gain 0 (log)", yscale="log")
    plots.gain_axis(ax_loss, o.gain, "oracle gain (source peaks per own peak; symlog)")
grid[0, -1].legend(fontsize=8, loc="best")
grid[1, -1].legend(fontsize=7, loc="best")
objective_summary = pd.DataFrame(objective_summary)
objective_summary["jdr_points_at_min"] = 100 * (objective_summary.jdr_at_min - objective_summary.nofusion)
ch.save_table(objective_summary, "objective_candidates")
adopted = objective_summary[objective_summary.objective == "mse"]
fig.suptitle("Where each candidate Eq. (3) is lowest along the exact lines: the adopted mix at gain "
             + ", ".join(f"{g:.2f}" for g in adopted.loss_min_gain) + " ("
             + ", ".join(f"{p:+.1f}" for p in adopted.jdr_points_at_min) + " JDR points at the nearest gain)")
fig.tight_layout()
ch.save_figure(fig, "objective_candidates")
plt.show()
for r in objective_summary.itertuples():
    ch.glue(f"objective_{r.objective}_{r.rig}_min_gain", f"{r.loss_min_gain:.2f}")
    ch.glue(f"objective_{r.objective}_{r.rig}_points", round(float(r.jdr_points_at_min), 1))


def objective_verdict(rig, margin_points=0.5):
    """Does the adopted mix's minimum reward fusion that fixes joints, and does the plain sum's? ``margin_points``:
    a gain under half a JDR point counts as barely above NoFusion (the smoke profile's test sets are small)."""
    part = objective_summary[objective_summary.rig == rig].set_index("objective")
    mix, plain = part.loc["mse"], part.loc["mse_sum"]
    if mix.jdr_points_at_min >= margin_points:
        mix_reading = "the mix's minimum lies on weights that fix joints (a JDR above NoFusion's)"
    elif mix.jdr_points_at_min > 0:
        mix_reading = "the mix's minimum lies on weights barely above NoFusion's JDR (under half a point)"
    else:
        mix_reading = "even the mix's minimum does not lie on weights that fix joints here (no JDR above NoFusion's)"
    plain_reading = ("the plain sum's minimum also gains JDR" if plain.jdr_points_at_min > 0 else
                     "the plain sum's minimum gains nothing: trained by it, a model is rewarded for no fusion")
    return f"{mix_reading}; {plain_reading}"


for rig in targets.FIG7_TARGETS:
    ch.glue(f"objective_verdict_{rig}", objective_verdict(rig))
objective_summary.round(3)

# %% [markdown]
# **The book's Eq. (3) is the mix** (`mfcore.fusion.SELF_WEIGHT` = {glue:text}`self_weight` for the own heatmap, the
# other views sharing `SOURCES_WEIGHT` = {glue:text}`sources_weight`; `mfcore.fusion.fuse`, used by every learned
# model, the oracle and the own-cameras path).
# It follows the papers' own code; whether its minimum lies where the lines fix joints is what the figure reads.
# Along the exact lines, the mix is lowest at gain {glue:text}`objective_mse_h36m_min_gain` on the
# H36M-like room ({glue:text}`objective_mse_h36m_points` JDR points over NoFusion at the nearest drawn gain) and
# {glue:text}`objective_mse_dome_heldout_min_gain` on the dome ({glue:text}`objective_mse_dome_heldout_points`
# points); the plain sum at gain {glue:text}`objective_mse_sum_h36m_min_gain`
# ({glue:text}`objective_mse_sum_h36m_points` points) and {glue:text}`objective_mse_sum_dome_heldout_min_gain`
# ({glue:text}`objective_mse_sum_dome_heldout_points` points); the softmax at gain
# {glue:text}`objective_mse_softmax_h36m_min_gain` ({glue:text}`objective_mse_softmax_h36m_points` points) and
# {glue:text}`objective_mse_softmax_dome_heldout_min_gain` ({glue:text}`objective_mse_softmax_dome_heldout_points`
# points). At this profile, on the H36M-like room {glue:text}`objective_verdict_h36m`; on the dome's held-out cameras
# {glue:text}`objective_verdict_dome_heldout`. Why the plain sum can reward no fusion: with it, the own heatmap alone
# already matches a peak-1 target, and a line adds error at every pixel off the joint; with the mix, the own heatmap
# alone reaches only {glue:text}`self_weight` of the target, and evidence from the other views that lands on the joint can lower the loss.
# The softmax candidate is not adopted whatever its curve: the papers' code does not put it in the loss, and its scale
# (a distribution against a peak-1 map) needs a choice of ours.

# %% [markdown]
# ## Does training by Eq. (3) keep the lines? NaiveFuse<sup>full</sup> started at the oracle
#
# The lower panels compare the loss at fixed weights. The direct test trains: NaiveFuse<sup>full</sup>'s recipe (the whole
# labelled pool, the same Adam steps, rate, mini-batches and seed as the NaiveFuse<sup>full</sup> curve of Fig. 7), started from
# the oracle's weights instead of zero (`mfcore.oracle.oracle_init_rows`). The start is the oracle at gain
# {glue:text}`oracle_init_gain`, its own calibration (a source peak adds about one), fixed before anything was run and
# not picked on the test frames; where a rig's pool has several camera placements (the H36M-like room: one per
# training subject), the start is the oracle weights of the placements averaged by their frame counts, the one weight
# tensor NaiveFuse can hold. At checkpoints along the training the test frames are fused and scored, and the
# *line share* measures how much of the starting lines the weights still hold (the projection of the weights on
# the starting weights, 1 at the start, 0 for NoFusion's zero weights). If Eq. (3) pulls the weights off the lines and
# the JDR back to NoFusion, the loss itself keeps the learned models on NoFusion; if the JDR stays up, the loss keeps
# good lines once it has them and the learned models fall short in finding them.

# %%
from_oracle = pd.DataFrame([row for target in targets.FIG7_TARGETS
                            for trial in range(targets.target_trials(target, ch.profile))
                            for row in epipolar_oracle.oracle_init_rows(target, trial, ch.profile, seed, ch.device)])
ch.save_table(from_oracle, "naivefuse_from_oracle")
fo = (from_oracle[(from_oracle.joint == "mean") & (from_oracle.threshold == "half_head")]
      .groupby(["rig", "step"], as_index=False)[["jdr", "mse", "line_share"]].mean())  # average over trials
fig, grid = plt.subplots(2, len(targets.FIG7_TARGETS), figsize=(5.6 * len(targets.FIG7_TARGETS), 6.4), sharex=True,
                         sharey="row")
init_summary = []
for ax, ax_share, r in zip(grid[0], grid[1], oracle_summary.itertuples()):
    f = fo[fo.rig == r.rig]
    start, end = f.iloc[0], f.iloc[-1]
    nofusion_mse = float(oracle_mean[(oracle_mean.rig == r.rig) & (oracle_mean.gain == 0)].mse.iloc[0])
    init_summary.append(dict(rig=r.rig, nofusion=r.nofusion, naivefuse_full=r.naivefuse_full, start=float(start.jdr),
                             end=float(end.jdr), line_share_end=float(end.line_share),
                             mse_start_ratio=float(start.mse / nofusion_mse), mse_end_ratio=float(end.mse / nofusion_mse)))
    ax.plot(f.step, f.jdr, "o-", color="black", label="NaiveFuse started at the oracle")
    ax.axhline(r.nofusion, color="grey", ls="--", label="NoFusion")
    ax.axhline(r.naivefuse_full, color="grey", ls="-", label="NaiveFuse^full (started at zero)")
    ax.set(ylabel="mean JDR (fraction)",
           title=f"{RIG_TITLES.get(r.rig, r.rig)}\nJDR {start.jdr:.3f} at the start, {end.jdr:.3f} after "
                 f"{int(end.step)} steps")
    ax_share.plot(f.step, f.line_share, "s-", color="tab:blue", label="line share (1 = the oracle's lines)")
    ax_share.plot(f.step, f.mse / nofusion_mse, "^-", color="tab:orange", label="Eq. (3) loss / NoFusion's")
    ax_share.axhline(1.0, color="grey", lw=0.6)
    ax_share.set(xlabel="Adam steps of NaiveFuse^full's recipe (symlog)", ylabel="ratio (log)", yscale="log")
    ax_share.set_xscale("symlog", linthresh=10)
grid[0, -1].legend(fontsize=8, loc="best")
grid[1, -1].legend(fontsize=8, loc="best")
init_summary = pd.DataFrame(init_summary)
if (init_summary.start > init_summary.nofusion).all():
    kept = (init_summary.end - init_summary.nofusion) / (init_summary.start - init_summary.nofusion)
    fig.suptitle(f"Trained by Eq. (3) from the oracle, NaiveFuse keeps {100 * kept.min():.0f}-{100 * kept.max():.0f}% "
                 f"of the oracle's JDR gain over NoFusion")
else:  # a start below NoFusion has no gain to keep (the smoke profile's 16² heatmaps)
    fig.suptitle(f"Trained by Eq. (3) from the oracle, NaiveFuse's mean JDR goes from {init_summary.start.mean():.3f} "
                 f"to {init_summary.end.mean():.3f} (NoFusion {init_summary.nofusion.mean():.3f})")
ch.save_figure(fig, "naivefuse_from_oracle")
ch.glue("oracle_init_gain", f"{epipolar_oracle.ORACLE_INIT_GAIN:g}")
ch.glue("oracle_init_steps", int(fo.step.max()))


def init_verdict(r):
    """Which reading the numbers support: the share of the oracle's JDR gain over NoFusion left after training."""
    gained = r.start - r.nofusion
    if gained <= 0:
        return "the oracle's start gains nothing over NoFusion here, so there is nothing for the training to keep"
    left = (r.end - r.nofusion) / gained
    if left < 0.5:
        return (f"training gives back {100 * (1 - left):.0f}% of the oracle's gain: the loss of Eq. (3) itself pulls "
                f"the weights off the joint-fixing lines, towards NoFusion")
    return (f"training keeps {100 * left:.0f}% of the oracle's gain: Eq. (3) does not undo good lines once the "
            f"weights hold them, so the learned models fall short in finding them (their start at zero, their steps)")


for r in init_summary.itertuples():
    ch.glue(f"init_verdict_{r.rig}", init_verdict(r))
    ch.glue(f"init_{r.rig}_line_share", f"{r.line_share_end:.2f}")
    ch.glue(f"init_{r.rig}_mse_end", f"{r.mse_end_ratio:.2f}")
init_summary.round(3)

# %% [markdown]
# After {glue:text}`oracle_init_steps` steps, on the H36M-like room {glue:text}`init_verdict_h36m` (line share
# {glue:text}`init_h36m_line_share`, test loss {glue:text}`init_h36m_mse_end`× NoFusion's); on the dome's held-out
# cameras {glue:text}`init_verdict_dome_heldout` (line share {glue:text}`init_dome_heldout_line_share`, test loss
# {glue:text}`init_dome_heldout_mse_end`× NoFusion's). The scorecard's Fig. 7 claims do not change: this is a
# diagnostic of why they hold or fail here, not a method of the paper.

# %% [markdown]
# ## Can MetaFuse's factorised model hold the lines? AffineFuse started at the oracle
#
# MetaFuse (Eq. (2)) draws every weight map as an affine warp of one base map, and its meta-testing moves only the
# warps θ. Can that model hold the oracle's lines, and does its meta-testing keep them? AffineFuse is started with
# ω_base the centred line (the oracle's profile and scale, gain {glue:text}`oracle_init_gain`) and θ that lays it on
# every target pixel's epipolar line (`mfcore.oracle.line_theta`: chapter 1's closed-form start, from the pool's
# camera placements, averaged by their frames where there are several), then finetuned exactly as MetaFuse<sup>K</sup> is in
# Fig. 7 (θ only, the same K = {glue:text}`affine_oracle_k` frames, steps, rate and mini-batches;
# `mfcore.oracle.affine_oracle_init_rows`). The start differs from the oracle in two ways the model imposes: whole
# lines instead of the visible half-lines, and a base map of finite extent (a rotated line can leave it). Why the
# start matters: the gradient of Eq. (3) reaches a pixel's θ only where its current line already lies within about
# four heatmap σ of the source evidence (`tests/test_fusion.py` pins this); from a generic start, a new camera
# pair's lines are mostly farther away than that. Started on the lines, that reach is not in the way, so what the
# finetuning does here is what Eq. (3) asks of lines that are already right.

# %%
from_lines = pd.DataFrame([row for target in targets.FIG7_TARGETS
                           for trial in range(targets.target_trials(target, ch.profile))
                           for row in epipolar_oracle.affine_oracle_init_rows(target, trial, ch.profile, seed,
                                                                              ch.device)])
ch.save_table(from_lines, "affinefuse_from_oracle")
fl = (from_lines[(from_lines.joint == "mean") & (from_lines.threshold == "half_head")]
      .groupby(["rig", "step"], as_index=False)[["jdr", "mse", "theta_shift"]].mean())  # average over trials
fig, axes = plt.subplots(1, len(targets.FIG7_TARGETS), figsize=(5.6 * len(targets.FIG7_TARGETS), 3.8), sharey=True)
affine_summary = []
for ax, r in zip(axes, oracle_summary.itertuples()):
    f = fl[fl.rig == r.rig]
    start, end = f.iloc[0], f.iloc[-1]
    affine_summary.append(dict(rig=r.rig, nofusion=r.nofusion, oracle_best=r.oracle_best,
                               metafuse_top_k=r.metafuse_top_k, start=float(start.jdr), end=float(end.jdr),
                               lowest=float(f.jdr.min()), theta_shift_end=float(end.theta_shift),
                               mse_start=float(start.mse), mse_end=float(end.mse)))
    ax.plot(f.step, f.jdr, "o-", color="black", label="AffineFuse started at the oracle's lines")
    # NoFusion as a wide pale band under the other lines: MetaFuse^K can sit on it (chapter 3), and both must show
    ax.axhline(r.nofusion, color="grey", lw=5, alpha=0.45, zorder=1, label=f"NoFusion ({r.nofusion:.3f})")
    ax.axhline(r.metafuse_top_k, color="tab:red", ls=":", lw=1.8, zorder=3,
               label=f"MetaFuse^{k_top}, meta-learned start ({r.metafuse_top_k:.3f})")
    ax.axhline(r.oracle_best, color="tab:green", ls="-.", zorder=2, label=f"best oracle ({r.oracle_best:.3f})")
    ax.set(xlabel="Adam steps of MetaFuse's meta-testing (symlog)", ylabel="mean JDR (fraction)",
           title=f"{RIG_TITLES.get(r.rig, r.rig)}\nJDR {start.jdr:.3f} at the start, {end.jdr:.3f} after "
                 f"{int(end.step)} steps")
    ax.set_xscale("symlog", linthresh=10)
    ax.legend(fontsize=7, loc="best")  # each panel its own: the labels carry that rig's values
affine_summary = pd.DataFrame(affine_summary)
fig.suptitle("MetaFuse's factorised model started at the oracle's lines: mean JDR "
             + ", ".join(f"{r.start:.3f} → {r.end:.3f}" for r in affine_summary.itertuples())
             + f" (MetaFuse^{k_top}: " + ", ".join(f"{r.metafuse_top_k:.3f}" for r in affine_summary.itertuples())
             + ")")
fig.tight_layout()
ch.save_figure(fig, "affinefuse_from_oracle")
plt.show()
ch.glue("affine_oracle_k", k_top)


def affine_verdict(r, margin=0.01):
    """Which reading the numbers support, with the oracle section's margin of 1 JDR point."""
    if r.start - r.nofusion < margin:
        return ("even started at the lines, the factorised model gains less than 1 JDR point over NoFusion: Eq. (2) "
                "with one base map does not hold what the oracle's weights hold here")
    if r.end < r.nofusion - margin:
        return (f"the factorised model holds the lines at the start ({r.start:.1%} against NoFusion's "
                f"{r.nofusion:.1%}), but MetaFuse's meta-testing takes them off the evidence: the JDR falls to "
                f"{r.lowest:.1%} and ends at {r.end:.1%}, below NoFusion, while Eq. (3) on the test frames falls from "
                f"{r.mse_start:.4f} to {r.mse_end:.4f}. Here ω_base is frozen at the oracle's scale, far above the "
                "gain at which Eq. (3) is lowest along these lines, so moving the lines away is the only way θ can "
                "lower the loss; "
                + ("the JDR is climbing back from its lowest point at the end, so this is a transient of the steps, "
                   "not where the training rests" if r.end > r.lowest + margin else
                   "the JDR has not climbed back by the end")
                + ". Whether Eq. (3) keeps the lines when their scale may move too is chapter 4c's free-amplitude "
                "variant (c), not a conclusion of this control")
    if r.end - r.metafuse_top_k >= margin:
        return ("started at the lines, the factorised model and its meta-testing end at least 1 JDR point above "
                "MetaFuse's meta-learned start: the model can hold the lines, and the start is what MetaFuse lacks")
    return (f"the factorised model holds the lines at the start ({r.start:.1%}) but its meta-testing ends at "
            f"{r.end:.1%}, within 1 JDR point of MetaFuse's meta-learned start ({r.metafuse_top_k:.1%})")


for r in affine_summary.itertuples():
    ch.glue(f"affine_verdict_{r.rig}", affine_verdict(r))
affine_summary.round(3)

# %% [markdown]
# On the H36M-like room {glue:text}`affine_verdict_h36m`; on the dome's held-out cameras
# {glue:text}`affine_verdict_dome_heldout`. This uses the cameras' calibration, which MetaFuse does not: it is a
# diagnostic of the model and its start, not a method of the paper.

# %% [markdown]
# ## NaiveFuse<sup>full</sup> end to end: is it the upper bound?
#
# MetaFuse (Sec. 3) calls NaiveFuse<sup>full</sup>, trained on all of a camera configuration's labelled frames, the upper bound of
# the fusion methods, and says the whole network "together with the FCL parameters, can be trained end-to-end by
# enforcing supervision on the fused heatmaps"; the Cross View Fusion code trains the backbone and the fusion layers
# together and sums one MSE per view's own heatmap and one per view's fused heatmap. Chapter 4's NaiveFuse<sup>full</sup> is the
# cheaper reading that the rest of Fig. 7 shares: the fusion layer alone, fitted on the frozen warm-up backbone's
# cached heatmaps of the {glue:text}`e2e_chapter4_pool`-frame pool. Here both parts train together
# (`mfcore.endtoend.end_to_end_peaks`), with these choices of ours, fixed before any number was seen:
#
# * **data**: {glue:text}`e2e_pool` frames of each target rig's training motions and cameras (for the H36M-like room
#   the five training subjects' placements), rendered on the device, every view of a frame in the same step;
# * **start**: the warm-up backbone (the paper starts from its own 2D network) and NaiveFuse's zero weights;
# * **loss**: the per-view MSE plus Eq. (3) (the mix of chapter 4b's first section), equally weighted as in the
#   reference code; the gradient of both reaches the backbone;
# * **optimiser**: Adam, {glue:text}`e2e_epochs` passes over the pool in steps of {glue:text}`e2e_batch` frames, the
#   backbone at {glue:text}`e2e_backbone_lr` (the warm-up's rate after its first drop: it starts trained), the fusion
#   weights at NaiveFuse<sup>full</sup>'s {glue:text}`e2e_fusion_lr`, both divided by 10 at half and at 5/6 of the passes.
#
# One network gives two rows: **E2EBackbone**, its backbone's own heatmaps without fusion (what training on the
# target's images buys with no fusion at all), and **NaiveFuseFullE2E**, its fused heatmaps. Every difference below
# is paired on the same test frames, with its 95 % bootstrap interval (frames, and camera draws as clusters on the
# dome). This is the training step, read from the library:

# %%
ch.glue("e2e_pool", f"{ch.profile.endtoend.pool_frames:,}")
ch.glue("e2e_chapter4_pool", f"{sizes.target_train_frames:,}")
ch.glue("e2e_epochs", ch.profile.endtoend.epochs)
ch.glue("e2e_batch", ch.profile.endtoend.batch_frames)
ch.glue("e2e_backbone_lr", f"{ch.profile.endtoend.backbone_lr:g}")
ch.glue("e2e_fusion_lr", f"{sizes.outer_lr:g}")
chapter.show_code(inspect.getsource(endtoend.train_end_to_end), "            x = backbone", "            history[")

# %%
e2e_frames = []
e2e = pd.DataFrame([row for target in targets.FIG7_TARGETS for trial in range(targets.target_trials(target, ch.profile))
                    for row in endtoend.end_to_end_rows(target, trial, ch.profile, seed, ch.device,
                                                        frame_rows=e2e_frames)])
ch.save_table(e2e, "naivefuse_end_to_end")
e2e_loss = pd.DataFrame([row for target in targets.FIG7_TARGETS
                         for trial in range(targets.target_trials(target, ch.profile))
                         for row in endtoend.losses(target, trial, ch.profile, seed, ch.device)])
ch.save_table(e2e_loss, "naivefuse_end_to_end_loss")
e2e_seconds = pd.DataFrame([endtoend.seconds(target, trial, ch.profile, seed, ch.device)
                            for target in targets.FIG7_TARGETS
                            for trial in range(targets.target_trials(target, ch.profile))])
ch.save_timings(e2e_seconds, "end_to_end_timings")
frames = pd.DataFrame(reference_frames + e2e_frames)
pool = sizes.target_train_frames
COMPARISONS = (  # (a, b, what a − b measures); (method, k) with k None for any
    (("NaiveFuseFullE2E", None), ("NoFusion", 0), "end to end − NoFusion"),
    (("E2EBackbone", None), ("NoFusion", 0), "its backbone alone − NoFusion"),
    (("NaiveFuseFullE2E", None), ("E2EBackbone", None), "its fusion − its backbone alone"),
    (("NaiveFuseFullE2E", None), ("NaiveFuseFull", pool), "end to end − chapter 4's NaiveFuse^full"),
    (("NaiveFuseFullE2E", None), ("MetaFuse", k_top), f"end to end − MetaFuse^{k_top}"),
)
gains = []
for rig in targets.FIG7_TARGETS:
    for a, b, text in COMPARISONS:
        iv, jdr_a, jdr_b = claims.paired_jdr(frames, rig, a, b)
        gains.append(dict(rig=rig, comparison=text, method_a=a[0], method_b=b[0], jdr_a=jdr_a, jdr_b=jdr_b,
                          gain_points=iv.diff, ci_low=iv.low, ci_high=iv.high, n=iv.n,
                          verdict=stats.verdict(iv, "greater", claims.UNPRINTED_JDR.margin)))
gains = pd.DataFrame(gains)
ch.save_table(gains, "end_to_end_gains")

fig, axes = plt.subplots(1, len(targets.FIG7_TARGETS) + 1, figsize=(5.2 * (len(targets.FIG7_TARGETS) + 1), 4.2))
for ax, rig in zip(axes, targets.FIG7_TARGETS):
    g = gains[gains.rig == rig].iloc[::-1]
    y = np.arange(len(g))
    ax.errorbar(g.gain_points, y, xerr=[g.gain_points - g.ci_low, g.ci_high - g.gain_points], fmt="o", color="black",
                capsize=3)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(y, g.comparison)
    ax.set(xlabel="difference of mean JDR (points), 95 % paired interval", title=RIG_TITLES.get(rig, rig))
ax = axes[-1]
smooth = max(1, int(e2e_loss.step.max()) // 50)  # a running mean over 2 % of the steps (mini-batch noise)
for (rig, trial), c in e2e_loss.groupby(["rig", "trial"]):
    line, = ax.plot(c.step, c.view_loss.rolling(smooth, min_periods=1).mean(), lw=0.8,
                    label=f"{rig} trial {trial}: per-view MSE")
    ax.plot(c.step, c.fused_loss.rolling(smooth, min_periods=1).mean(), lw=0.8, ls="--", color=line.get_color(),
            label=f"{rig} trial {trial}: Eq. (3)")
ax.set(xlabel="Adam step", ylabel=f"training loss (MSE, log; mean of {smooth} steps)", yscale="log",
       title="the two terms of the loss")
ax.legend(fontsize=7)
head = gains[gains.comparison == "end to end − NoFusion"]
fig.suptitle("NaiveFuse^full trained end to end: "
             + "; ".join(f"{RIG_TITLES.get(r.rig, r.rig).split(' (')[0]} {r.gain_points:+.1f} points over NoFusion "
                         f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]" for r in head.itertuples()))
fig.tight_layout()
ch.save_figure(fig, "naivefuse_end_to_end")
plt.show()

ch.glue("e2e_seconds", ", ".join(f"{r.rig} {r.trial}: {r.render_s:.1f} + {r.train_s:.1f}" for r in e2e_seconds.itertuples()))
READING = {"yes": "above (the whole interval above zero)",
           "no": f"not above by the scorecard's {claims.UNPRINTED_JDR.margin:g}-point margin (the whole interval below "
                 "zero or below that margin)",
           "inconclusive": f"undecided (the interval holds both zero and the {claims.UNPRINTED_JDR.margin:g}-point "
                           "margin)"}
for r in gains.itertuples():
    key = {"end to end − NoFusion": "vs_nofusion", "its backbone alone − NoFusion": "backbone",
           "its fusion − its backbone alone": "fusion", "end to end − chapter 4's NaiveFuse^full": "vs_frozen"}.get(
        r.comparison, "vs_metafuse")
    ch.glue(f"e2e_{r.rig}_{key}", f"{r.gain_points:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]")
    ch.glue(f"e2e_{r.rig}_{key}_reading", READING[r.verdict])
upper = gains[gains.comparison.isin([f"end to end − MetaFuse^{k_top}", "end to end − chapter 4's NaiveFuse^full"])]
ch.glue("e2e_upper_bound", Markdown(  # Markdown: NaiveFuse^full reads as a superscript on the page ({glue:md})
    "yes on both rigs: end to end, NaiveFuse^full is above chapter 4's NaiveFuse^full and above "
    f"MetaFuse^{k_top}, each with an interval above zero" if (upper.verdict == "yes").all() else
    "not on every rig: at least one of its differences with chapter 4's NaiveFuse^full or with "
    f"MetaFuse^{k_top} has an interval that covers zero or lies below it (table above)"))
gains.round(3)

# %% [markdown]
# Rendering each pool and training took {glue:text}`e2e_seconds` wall seconds per rig and camera draw on this page's
# device (`end_to_end_timings.json`; from the cache entry's build).
#
# Mean JDR points, paired 95 % intervals on the test frames. H36M-like room: end to end − NoFusion
# {glue:text}`e2e_h36m_vs_nofusion`; of which its backbone alone {glue:text}`e2e_h36m_backbone` and its fusion layer
# over that backbone {glue:text}`e2e_h36m_fusion` ({glue:text}`e2e_h36m_fusion_reading`); against chapter 4's
# NaiveFuse<sup>full</sup> {glue:text}`e2e_h36m_vs_frozen` and against MetaFuse<sup>{glue:text}`oracle_top_k`</sup>
# {glue:text}`e2e_h36m_vs_metafuse`. Dome's held-out cameras: end to end − NoFusion
# {glue:text}`e2e_dome_heldout_vs_nofusion`; its backbone alone {glue:text}`e2e_dome_heldout_backbone`; its fusion
# {glue:text}`e2e_dome_heldout_fusion` ({glue:text}`e2e_dome_heldout_fusion_reading`); against chapter 4's
# NaiveFuse<sup>full</sup> {glue:text}`e2e_dome_heldout_vs_frozen`; against MetaFuse<sup>{glue:text}`oracle_top_k`</sup>
# {glue:text}`e2e_dome_heldout_vs_metafuse`.
#
# Is end-to-end NaiveFuse<sup>full</sup> the upper bound of the methods of Fig. 7, as MetaFuse says? {glue:md}`e2e_upper_bound`.
# Two things differ from chapter 4's NaiveFuse<sup>full</sup> at once, the backbone that trains and the larger pool, and the
# E2EBackbone row separates them: the backbone's own gain is what training on the target rig's images buys without
# fusion, and "its fusion − its backbone alone" is what the fusion layer adds on top of it. The learned few-shot
# methods of Fig. 7 never train the backbone, so the fair comparison for them is chapter 4's NaiveFuse<sup>full</sup>; this
# section is the paper's upper bound as the paper trains it. The scorecard's Fig. 7 claims keep chapter 4's
# reference.

# %% [markdown]
# ### Does the end-to-end gain carry to 3D?
#
# Chapter 5 shows that a JDR gain need not lower the RPSM's 3D error: the RPSM sums the views' heatmap values at each
# cell's projections, so it reads the whole fused map, not its maxima (chapter 5 puts the oracle's and chapter 4's
# NaiveFuse^full's maps through it). The same test for the network trained end to end: its fused maps
# (NaiveFuseFullE2E) and its backbone's own (E2EBackbone), from the very training above
# (`mfcore.endtoend.end_to_end_heatmaps`), through chapter 5's RPSM on the same test frames, raw and sharpened the way
# the paper's T = 0.2 softmax sharpens a fused map (`mfcore.fusion.sharpen`: the maxima stay, the mass away from them
# all but vanishes). Each difference is paired on the frames against the reference treated alike.

# %%
from mfcore import metrics, motion, pictorial

P3 = ch.profile.pictorial
limb_stats = pictorial.limb_length_stats(motion.sample_poses("train", P3.stats_frames, seed)[0])  # chapter 5's
IMAGE_PX, HM_PX = ch.profile.studio.image_px, ch.profile.studio.heatmap_px
SHARPENED = f"softmax T={fusion.DEFAULT_TEMPERATURE:g}"


def rpsm_errors(heatmaps, sample):
    """Per-frame RPSM MPJPE (mm) of (N, V, J, h, w) heatmaps of a test set, each camera set with its own cameras."""
    err = torch.empty(heatmaps.shape[0], dtype=torch.float64)
    for idx, P_image, _ in metrics.camera_sets(sample):
        P = pictorial.heatmap_projections(P_image, IMAGE_PX, HM_PX).to(ch.device)
        pose = pictorial.estimate_3d("rpsm", heatmaps[idx].to(ch.device), P, limb_stats, P3).cpu()
        err[idx] = metrics.mpjpe_mm(pose, sample["joints_3d_m"][idx]).double()
    return err


e2e_3d_rows = []
for target in targets.FIG7_TARGETS:
    for trial in range(targets.target_trials(target, ch.profile)):
        sample = targets.target_data(target, trial, ch.profile, seed, ch.device)["test"]
        clip = motion.clip_labels(sample["clip_index"])
        trained = endtoend.end_to_end_heatmaps(target, trial, ch.profile, seed, ch.device)
        for label, maps in (("NoFusion", sample["pred"]), ("E2EBackbone", trained["views"]),
                            ("NaiveFuseFullE2E", trained["fused"])):
            for treatment in ("raw", SHARPENED):
                err = rpsm_errors(fusion.sharpen(maps) if treatment != "raw" else maps, sample)
                e2e_3d_rows += [dict(rig=target, method=label if treatment == "raw" else f"{label}, {treatment}",
                                     treatment=treatment, k=0, trial=trial, estimator="rpsm",
                                     smoothing="not a sequence", frame=i, clip=clip[i], mpjpe_mm=round(v, 2))
                                for i, v in enumerate(err.tolist())]
e2e_3d_frames = pd.DataFrame(e2e_3d_rows)
ch.save_table(e2e_3d_frames, "end_to_end_3d_frames")
E2E_3D = (("NaiveFuseFullE2E", "NoFusion", "end to end − NoFusion"),
          ("E2EBackbone", "NoFusion", "its backbone alone − NoFusion"),
          ("NaiveFuseFullE2E", "E2EBackbone", "its fusion − its backbone alone"))
e2e_3d = []
for rig in targets.FIG7_TARGETS:
    for a, b, text in E2E_3D:
        jdr = gains[(gains.rig == rig) & (gains.comparison == text)].iloc[0]
        row = dict(rig=rig, comparison=text, jdr_gain_points=jdr.gain_points, jdr_ci_low=jdr.ci_low,
                   jdr_ci_high=jdr.ci_high)
        for treatment in ("raw", SHARPENED):
            suffix = "" if treatment == "raw" else f", {treatment}"
            iv = claims.mm_interval(e2e_3d_frames, rig, (a + suffix, None), (b + suffix, None), k_column="k",
                                    seed=seed)
            key = "raw" if treatment == "raw" else "sharpened"
            row.update({f"change_{key}_mm": iv.diff, f"change_{key}_ci_low": iv.low, f"change_{key}_ci_high": iv.high})
        row["frames"] = iv.n
        e2e_3d.append(row)
e2e_3d = pd.DataFrame(e2e_3d)
ch.save_table(e2e_3d, "end_to_end_3d")


def e2e_3d_reading(r):
    """Whether a JDR difference of the table above carries to the RPSM's 3D error, raw or sharpened (from the numbers)."""
    def where(low, high):
        return "lower" if high < 0 else "higher" if low > 0 else "neither lower nor higher (the interval holds 0)"
    return (f"JDR {r.jdr_gain_points:+.2f} points [{r.jdr_ci_low:+.2f}, {r.jdr_ci_high:+.2f}]; 3D error "
            f"{r.change_raw_mm:+.2f} mm [{r.change_raw_ci_low:+.2f}, {r.change_raw_ci_high:+.2f}] from the raw maps "
            f"({where(r.change_raw_ci_low, r.change_raw_ci_high)}), {r.change_sharpened_mm:+.2f} mm "
            f"[{r.change_sharpened_ci_low:+.2f}, {r.change_sharpened_ci_high:+.2f}] sharpened "
            f"({where(r.change_sharpened_ci_low, r.change_sharpened_ci_high)})")


E2E_3D_KEYS = {"end to end − NoFusion": "e2e", "its backbone alone − NoFusion": "backbone",
               "its fusion − its backbone alone": "fusion"}
for r in e2e_3d.itertuples():
    ch.glue(f"e2e3d_{r.rig}_{E2E_3D_KEYS[r.comparison]}", e2e_3d_reading(r))
e2e_3d.round(2)

# %% [markdown]
# H36M-like room: end to end − NoFusion, {glue:text}`e2e3d_h36m_e2e`; its backbone alone − NoFusion,
# {glue:text}`e2e3d_h36m_backbone`; its fusion − its backbone alone, {glue:text}`e2e3d_h36m_fusion`.
# Dome's held-out cameras: end to end − NoFusion, {glue:text}`e2e3d_dome_heldout_e2e`; its backbone alone − NoFusion,
# {glue:text}`e2e3d_dome_heldout_backbone`; its fusion − its backbone alone, {glue:text}`e2e3d_dome_heldout_fusion`.
# Where a JDR gain comes with a higher 3D error from the raw maps but not from the sharpened ones, the RPSM is reading
# the mass the fusion spreads away from the maxima, not misplaced maxima (chapter 5 draws the same test for the
# oracle's and chapter 4's NaiveFuse^full's maps).

# %%
ch.finish();
