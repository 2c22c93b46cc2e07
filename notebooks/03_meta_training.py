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
# # 3. Training MetaFuse: warm-up, meta-training, finetuning
#
# This chapter runs the pipeline of MetaFuse's Fig. 5 (Xie, Wang and Wang, CVPR 2020, Sec. 4.2-4.3) end to end:
#
# 1. **Warm-up**: the SimpleBaseline backbone (ResNet + three deconvolutions) learns single-view heatmaps by Adam on
#    the MSE to Gaussian targets, with the paper's step schedule; it is then frozen, and the heatmaps of every frame are
#    computed once and cached.
# 2. **Meta-training** (Eq. (4)-(6)): the factorised fusion model (one base map ω_base shared by all cameras, one
#    6-number affine θ_i per pixel) learns from tasks that are ordered pairs of the dome's 20 training cameras
#    (380 pairs), each with a small D_train (inner SGD step) and D_test (outer Adam step).
# 3. **Finetuning** (meta-testing, Sec. 4.3): on a new rig only θ moves; ω_base stays bit-identical.
#
# Then Fig. 6 of the paper: a joint whose initial heatmap peaks at the wrong place, its fused heatmap, and the
# heatmaps warped from the other views, which form epipolar lines.
#
# **All data are synthetic** (the book's capture studio: real motion capture rendered by simple bodies in synthetic
# rigs); no number on this page is one of the paper's, and the smoke profile's numbers are not meaningful at all.

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from mfcore import backbone, fewshot, fusion, maml, metrics, oracle, pretrained, skeleton, targets
from mfbook import chapter, plots

ch = chapter.open_chapter("03_meta_training", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes, studio_sizes, bb = ch.profile.metafuse, ch.profile.studio, ch.profile.backbone
image_px, side = studio_sizes.image_px, studio_sizes.heatmap_px
sns.set_theme(style="whitegrid", context="notebook")
display(Markdown(f"Backbone ResNet-{bb.resnet_depth} (width {bb.width}), images {image_px}² px, heatmaps "
                 f"{side}² px; meta-training on {sizes.pretrain_frames} dome frames, {sizes.meta_iterations} outer "
                 f"steps of {sizes.meta_tasks_per_step} tasks ({'first' if sizes.first_order else 'second'}-order)."))

# %% [markdown]
# ## Step 1: warm-up of the backbone
#
# Adam on the MSE between predicted and Gaussian target heatmaps over the training views of the three rigs
# (dome, H36M-like, Total-Capture-like). The paper trains 30 epochs at 1e-3, 1e-4 from epoch 15 and 1e-5 from
# epoch 25; the profile's epoch count keeps those proportions.

# %%
t0 = time.perf_counter()
net = backbone.warmup_backbone(ch.profile, seed, ch.device)
warmup_s = time.perf_counter() - t0
warmup = pd.DataFrame({"epoch": np.arange(1, len(net.warmup_history) + 1),
                       "lr": [backbone.warmup_lr(e, bb.warmup_epochs, bb.lr) for e in range(bb.warmup_epochs)],
                       "mse": net.warmup_history})
ch.save_table(warmup, "warmup_loss")
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(warmup.epoch, warmup.mse, marker="o")
for e, lr in zip(warmup.epoch, warmup.lr):
    ax.annotate(f"{lr:.0e}", (e, warmup.mse[e - 1]), textcoords="offset points", xytext=(0, 6), fontsize=7,
                ha="center")
ax.set(xlabel="epoch", ylabel="MSE to Gaussian targets", yscale="log",
       title=f"Warm-up: the heatmap MSE falls {warmup.mse.iloc[0] / warmup.mse.iloc[-1]:.1f}x over "
             f"{len(warmup)} epochs")
ch.save_figure(fig, "warmup_loss")
plt.show()
warmup_ratio = ch.glue("warmup_loss_ratio", round(float(warmup.mse.iloc[0] / warmup.mse.iloc[-1]), 2))
display(Markdown(f"Warm-up: the heatmap MSE falls by a factor of **{warmup_ratio}** from the first epoch to the last."))

# %% [markdown]
# ## Step 2: meta-training on the dome's 20 training cameras
#
# The backbone is frozen; its heatmaps of the dome frames are computed once (cached). MetaFuse meta-trains a *pair
# model* (ω_base and one θ field) on tasks that are ordered camera pairs; for comparison the same loop meta-trains a
# NaiveFuse pair model (the variant of Sec. 5.2), and the Table 1 baselines NaiveFuse<sup>K</sup> and AffineFuse<sup>K</sup> are
# pre-trained by plain Adam on 4 selected dome cameras.
#
# ### The MAML steps, as the library runs them
#
# A task is an ordered camera pair with a few frames, split into D_train and D_test. The **inner step** adapts the
# pair model to the task by one plain SGD step on D_train: Eq. (4) of MetaFuse for the affine field,
# θ' = θ − α ∇_θ L_{D_train}(θ, ω_base), and Eq. (5) for the base map, ω' = ω_base − α ∇_ω L_{D_train}. The loss is
# Eq. (3): the MSE of the fused heatmaps against the Gaussian targets, where a fused map mixes the view's own heatmap
# at {glue:text}`self_weight_03` with the other views' warped heatmaps sharing {glue:text}`sources_weight_03` (the
# Cross View Fusion code's mix, `mfcore.fusion.fuse`; chapter 4b shows why the book adopted it: with the plain sum
# `x_t + Σ W x_s` the loss rewards no fusion). `first_order` drops the second derivatives. This is the library's
# function (every task of an outer step at once), read from `mfcore` when this page ran:

# %%
ch.glue("self_weight_03", f"{fusion.SELF_WEIGHT:g}")
ch.glue("sources_weight_03", f"{fusion.SOURCES_WEIGHT:g}")

chapter.show_code(inspect.getsource(maml.inner_update_members))

# %% [markdown]
# The **outer step** (Eq. (6)): the loss of the *adapted* parameters on each task's D_test, averaged over the tasks of
# the step, is differentiated with respect to the parameters *before* adaptation (through the inner step, unless
# first-order) and drives one Adam step of the outer rate β. This is the loop of `meta_train_members` (all tasks of a
# step, and all seeds, in one program):

# %%
chapter.show_code(inspect.getsource(maml.meta_train_members), "        for step in runtime.progress(",
                  "    return {n: p.detach() for n, p in leaves.items()}, history.cpu()")

# %% [markdown]
# ### Where meta-training starts
#
# θ starts at the identity for every pixel (no geometry). ω_base cannot start at zero: then W ≡ 0, and since every
# entry of W is a bilinear read of ω_base, the gradient of the loss with respect to θ is exactly zero, so θ could never
# learn. Two starts are measured below, on one task of dome frames (D_train of the profile's size):
#
# * **uniform**, the Cross View Fusion code's start for its fusion weights (`ChannelWiseFC`, U(0, 0.1)): ω_base uniform
#   in [0, {glue:text}`omega_init_high` / Z2) with Z2 = H·W the source's pixels (seeded, `mfcore.fusion.init_omega_base`),
#   so that a row of W adds at most {glue:text}`omega_init_high` of the source map's mean pixel;
# * **line**, the book's start (`mfcore.fusion.line_omega_start`): a horizontal line through the centre with the
#   heatmaps' own Gaussian profile (σ = {glue:text}`line_sigma_px` heatmap px), scaled as the epipolar oracle scales its
#   lines (a source peak on it adds about one own peak under the pair's mix). It is the shape the factorised model
#   needs to hold epipolar lines (Fig. 4 of the paper draws ω_base as a line, and chapter 4b shows AffineFuse holding
#   the oracle's lines with exactly this ω_base); it places no line, since θ = identity gives every target pixel the
#   same centred line.
#
# With θ = identity every row of W is the same ω_base under either start, so each source adds a constant per channel
# and both starts have NoFusion's maxima. What differs is the gradient that reaches θ: it is the spatial gradient of
# ω_base times the evidence, so a map of weights of 1e-5 with no structure gives θ next to nothing.
#
# The paper's inner step (Eq. (4)-(5)) uses one α for θ and ω_base. The two live on unrelated scales (θ in image
# coordinates, ω_base in weights), and the table shows what one α does to θ. The book gives θ its own rate per task
# (`mfcore.maml.theta_inner_rate`): the one that moves the step's largest θ entry by one line width σ, the distance
# over which a line's gradient still points the right way (the gradient of a σ-wide line pulls θ most from 2σ and
# not at all from 8σ, pinned in `tests/test_fusion.py`). ω_base keeps α. These two choices, the line start and θ's
# capped rate, were fixed from these mechanisms before any result of chapters 4-5 was seen with them.

# %%
ch.glue("line_sigma_px", f"{ch.profile.studio.heatmap_sigma_px:g}")
dome = pretrained.meta_training_data(ch.profile, seed, ch.device)
x0, y0 = dome["pred"][:sizes.task_train, :2].to(ch.device), dome["target"][:sizes.task_train, :2].to(ch.device)
theta_cap_px = maml.THETA_INNER_STEP_SIGMAS * ch.profile.studio.heatmap_sigma_px
start_rows = []
for start_name, sigma_start in (("uniform", None), ("line", ch.profile.studio.heatmap_sigma_px)):
    start = maml.pair_model("affine", side, sigma_start).to(ch.device)
    params = dict(start.named_parameters())
    theta_grad = torch.autograd.grad(maml.eq3_loss(start, params, x0, y0), params["theta"])[0]
    for rate_name, cap in (("one α (Eq. (4))", None), ("θ capped at σ (the book's)", theta_cap_px)):
        step = maml.inner_update(start, params, x0, y0, sizes.inner_lr, first_order=True, theta_step_px=cap)
        moved = (step["theta"] - params["theta"]).detach()[..., 2].abs()  # translation, normalised units
        start_rows.append(dict(start=start_name, inner_rate=rate_name, omega_max=float(start.omega_base.detach().max()),
                               theta_grad_max=float(theta_grad.abs().max()), inner_lr=sizes.inner_lr,
                               inner_step_shift_px=float(moved.max()) * side / 2,
                               pixels_moved_over_tenth_px=float((moved * side / 2 > 0.1).float().mean())))
start_table = pd.DataFrame(start_rows)
ch.save_table(start_table, "meta_start")
ch.glue("omega_init_high", f"{fusion.OMEGA_INIT_HIGH:g}")
book_start = start_table[(start_table.start == "line") & (start_table.inner_rate.str.contains("book"))].iloc[0]
paper_start = start_table[(start_table.start == "uniform") & (start_table.inner_rate.str.contains("Eq"))].iloc[0]
ch.glue("uniform_shift_px", f"{paper_start.inner_step_shift_px:.1e}")
ch.glue("uniform_grad", f"{paper_start.theta_grad_max:.1e}")
ch.glue("line_grad", f"{book_start.theta_grad_max:.1e}")
ch.glue("line_moved_share", f"{book_start.pixels_moved_over_tenth_px:.0%}")
start_table

# %% [markdown]
# With one α the uniform start's inner step moves θ by {glue:text}`uniform_shift_px` heatmap pixels at most (the largest
# |∂L/∂θ| is {glue:text}`uniform_grad`): the inner step adapts nothing but ω_base, so meta-training can only learn a
# θ start shared by every pair as it is, not one that adapts. The line start raises the largest |∂L/∂θ| to
# {glue:text}`line_grad`, and θ's capped rate moves {glue:text}`line_moved_share` of the pixels' lines by more than a
# tenth of a pixel in one step: the pixels whose evidence lies within reach of the centred line.

# %% [markdown]
# With the two steps on the page, the training: MetaFuse and NaiveFuseMeta by `meta_train`, the Table 1 baselines by
# plain Adam.

# %%
FUSION_SEEDS = list(sizes.fusion_seeds)  # every fusion model once per training seed (one backbone)
losses, models = [], {}
for method in pretrained.PRETRAINED:  # the seeds of a method as one program (mfcore.pretrained)
    for fs, (model, history) in zip(FUSION_SEEDS, pretrained.pretrained_fusions(method, ch.profile, seed, ch.device,
                                                                                  fusion_seeds=FUSION_SEEDS)):
        models[method, fs] = model
        kind = "meta-training (D_test loss after the inner step)" if method in pretrained.META_METHODS \
            else "plain pre-training on 4 dome cameras"
        losses.append(pd.DataFrame({"method": method, "seed": fs, "phase": kind,
                                    "step": np.arange(1, len(history) + 1), "mse": history}))
losses = pd.concat(losses, ignore_index=True)
ch.save_table(losses, "pretraining_loss")
pretrained_models = {method: models[method, FUSION_SEEDS[0]] for method in pretrained.PRETRAINED}  # the first seed's
# the loss of zero fusion weights: the own heatmap at SELF_WEIGHT (NoFusion's maxima)
nofusion_mse = float(fusion.fusion_mse(fusion.SELF_WEIGHT * dome["pred"], dome["target"]))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, phase in zip(axes, losses.phase.unique()):
    part = losses[losses.phase == phase]
    for i, (method, by_method) in enumerate(part.groupby("method", sort=False)):
        for j, (fs, g) in enumerate(by_method.groupby("seed")):
            smooth = g.mse.rolling(max(1, len(g) // 20), min_periods=1).mean()
            ax.plot(g.step, smooth, color=f"C{i}", alpha=1.0 if j == 0 else 0.45, lw=1.2,
                    label=method if j == 0 else None)
    ax.axhline(nofusion_mse, color="grey", ls="--", label="zero weights = NoFusion (dome frames)")
    ax.set(xlabel="step", ylabel="Eq. (3) MSE (running mean)", title=f"{phase}\n({len(FUSION_SEEDS)} seeds per method)")
    ax.legend(fontsize=8)
meta_hist = losses[losses.method == "MetaFuse"].groupby("step").mse.mean().to_numpy()  # mean over the seeds
meta_end = float(meta_hist[-max(1, len(meta_hist) // 10):].mean())  # mean of the last tenth of the outer steps
change = meta_end / nofusion_mse - 1
fig.suptitle(f"MetaFuse's post-adaptation loss ends {abs(change):.1%} {'below' if change < 0 else 'above'} "
             "the NoFusion loss of the dome frames")
fig.tight_layout()
ch.save_figure(fig, "pretraining_loss")
plt.show()
meta_vs_nofusion = ch.glue("meta_loss_vs_nofusion", round(change, 4))
display(Markdown(f"MetaFuse's post-adaptation loss (mean of the last tenth of the outer steps) relative to the "
                 f"NoFusion loss of the dome frames: **{meta_vs_nofusion:+.2%}**."))

# %% [markdown]
# The learned base map ω_base: the weights connecting ONE pixel of the target view to every pixel of the source view
# before any affine warp (Sec. 4.1). Its structure is what every pair's θ field warps. Beside it, where it started
# (the line start), on the same colour scale, and the change.

# %%
omega = pretrained_models["MetaFuse"].omega_base.detach().float().cpu()
omega_start = fusion.line_omega_start(side, ch.profile.studio.heatmap_sigma_px, 2)
omega_change = float((omega - omega_start).norm() / omega_start.norm())
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
hi = float(max(omega.abs().max(), omega_start.abs().max()))
for ax, img, title in ((axes[0], omega_start, "start: the centred line"), (axes[1], omega, "meta-learned ω_base"),
                       (axes[2], omega - omega_start, "meta-learned − start")):
    im = ax.imshow(img, cmap="RdBu_r", vmin=-hi, vmax=hi)
    ax.set(title=title, xlabel="source x (heatmap px)")
    ax.grid(False)
axes[0].set_ylabel("source y (heatmap px)")
fig.colorbar(im, ax=axes, label="weight", shrink=0.85)
fig.suptitle(f"Meta-training moved ω_base by {omega_change:.0%} of the start line's norm (relative L2)")
ch.save_figure(fig, "omega_base")
plt.show()
ch.glue("omega_change", f"{omega_change:.0%}")
centre = (torch.arange(side) - (side - 1) / 2).abs() <= ch.profile.studio.heatmap_sigma_px  # rows within σ of the line
line_share = float(omega[centre].mean() / omega_start[centre].mean())
ch.glue("omega_line_start", f"{float(omega_start[centre].mean()):.3g}")
ch.glue("omega_line_learned", f"{float(omega[centre].mean()):.3g}")
ch.glue("omega_line_share", f"{line_share:.0%}")
first_ratio = float(meta_hist[0] / nofusion_mse)
ch.glue("meta_first_loss_ratio", f"{first_ratio:.1f}")
ch.glue("omega_reading", (
    f"The line's rows shrank to {line_share:.0%} of the start. That number cannot tell a rescaled line from an erased "
    "one: along the oracle's lines Eq. (3) is lowest at a small fraction of the line start's gain (chapter 4b's "
    "objective_candidates table), so a line kept in shape but scaled down to what the loss prefers reads the same "
    "here. Chapter 4c decides it with controls registered before its numbers: ω_base as an image with its line profile (amplitude, width, position), a free "
    "amplitude (variant (c)), the softmax reading of the objective (variant (b)), and the factorised model trained on "
    "the whole labelled pool (AffineFuse^full)"
    if line_share < 0.25 else
    "The line kept most of its height through meta-training; whether it sits on the evidence is what meta-testing's "
    "θ steps must then find (chapter 4), and chapter 4c's controls test"))

# %% [markdown]
# On the rows within σ of the centre line the meta-learned ω_base averages {glue:text}`omega_line_learned` against
# {glue:text}`omega_line_start` at the start ({glue:text}`omega_line_share` of it); MetaFuse's first outer step cost
# {glue:text}`meta_first_loss_ratio`× the NoFusion loss of the dome frames. {glue:text}`omega_reading`.

# %% [markdown]
# ## Parameters per camera pair
#
# NaiveFuse learns a Z1 × Z2 matrix per ordered pair; the factorised model Z2 + 6·Z1 (Sec. 4.1), and MetaFuse's
# finetuning touches only the 6·Z1 affine numbers (Sec. 4.3). Counted on real modules, at the book's heatmap sides.

# %%
rows = []
for s in sorted({16, 32, 64, side}):
    naive, affine = maml.pair_model("naive", s), maml.pair_model("affine", s)
    rows.append({"heatmap_px": s, "NaiveFuse": fusion.parameter_count(naive),
                 "AffineFuse": fusion.parameter_count(affine),
                 "MetaFuse_finetuned": affine.theta.numel()})
counts = pd.DataFrame(rows)
counts["ratio_naive_to_affine"] = counts.NaiveFuse / counts.AffineFuse
ch.save_table(counts, "param_counts")
display(counts)
ratio64 = float(counts.loc[counts.heatmap_px == 64, "ratio_naive_to_affine"].iloc[0])
ch.glue("param_ratio_64", round(ratio64, 1))
display(Markdown(f"At 64² heatmaps one NaiveFuse pair holds {ratio64:.0f}× the parameters of an AffineFuse pair."))

# %% [markdown]
# ## Step 3: finetuning on a new rig (meta-testing)
#
# The H36M-like 4-camera rig was never seen in (meta-)training. Every ordered pair of it starts from the pre-trained
# pair model; MetaFuse then finetunes θ only, by Adam at 5e-3 (Sec. 5.1), on K labelled frames, with ω_base frozen.

# %%
target = targets.target_rigs(ch.profile, seed, ch.device)[0]
train, test = target["train"], target["test"]
k_demo = max(sizes.shots)
shots = fewshot.select_shots(train["pred"].shape[0], k_demo, seed)
finetuned, ft_rows = {}, []
for method in ("MetaFuse", "AffineFuse", "NaiveFuse"):
    model = fusion.for_rig(pretrained_models[method], train["pred"].shape[1])
    omega_before = model.omega_base.detach().clone() if hasattr(model, "omega_base") else None
    t0 = time.perf_counter()
    hist = maml.finetune(model, train["pred"][shots], train["target"][shots], steps=sizes.finetune_steps,
                         lr=sizes.finetune_lr, batch_size=min(k_demo, sizes.batch_size), seed=seed)
    finetuned[method] = model
    ft_rows.append(pd.DataFrame({"method": method, "step": np.arange(1, len(hist) + 1), "mse": hist}))
    if method == "MetaFuse":
        omega_frozen = bool(torch.equal(omega_before, model.omega_base.detach()))
ft = pd.concat(ft_rows, ignore_index=True)
ch.save_table(ft, "finetune_loss")
ch.glue("omega_base_bit_identical", omega_frozen)
fig, ax = plt.subplots(figsize=(6, 3.4))
for method, g in ft.groupby("method", sort=False):
    ax.plot(g.step, g.mse, label=method)
ax.set(xlabel="finetuning step", ylabel="Eq. (3) MSE on the K frames",
       title=f"Finetuning on K={k_demo} frames of the H36M-like rig")
ax.legend()
ch.save_figure(fig, "finetune_loss")
plt.show()
display(Markdown(f"ω_base bit-identical after MetaFuse's finetuning: **{omega_frozen}**."))

# %% [markdown]
# ### Fig. 4: the base map and the adapted maps ω_i
#
# MetaFuse's Fig. 4: row i of a pair's weight matrix, ω_i, is ω_base warped by the affine θ_i of target pixel i. Below,
# the meta-learned ω_base and ω_i of three target pixels (on the image diagonal) for the first ordered pair of the
# H36M-like rig after MetaFuse's finetuning, all on one colour scale.

# %%
ft_model = finetuned["MetaFuse"]
pixels = [(side // 4, side // 4), (side // 2, side // 2), (3 * side // 4, 3 * side // 4)]  # (x, y), heatmap px
rows_i = torch.tensor([y * side + x for x, y in pixels], device=ft_model.theta.device)
with torch.no_grad():  # Eq. (2) for the three rows only (the whole rig's W is 12 x Z1 x Z2 numbers)
    rows_w = fusion.affine_weight(ft_model.omega_base.detach(), ft_model.theta.detach()[:1, rows_i])[0].float().cpu()
omega_img = ft_model.omega_base.detach().float().cpu()
maps = [omega_img] + [row.reshape(side, side) for row in rows_w]
titles = ["ω_base"] + [f"ω_i, target pixel ({x}, {y})" for x, y in pixels]
moved = float(np.mean([(m - omega_img).abs().mean() / omega_img.abs().mean().clamp_min(1e-12) for m in maps[1:]]))
vmax = float(max(m.abs().max() for m in maps))
fig, axes = plt.subplots(1, len(maps), figsize=(3.4 * len(maps), 3.6))
for ax, m, title in zip(axes, maps, titles):
    im = ax.imshow(m, cmap="magma", vmin=min(0.0, float(min(mm.min() for mm in maps))), vmax=vmax)
    ax.set(title=title, xlabel="source x (heatmap px)")
    ax.grid(False)
axes[0].set_ylabel("source y (heatmap px)")
fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="weight")
pair_name = ch.glue("fig4_pair", f"{ft_model.pairs[0][0]} ← {ft_model.pairs[0][1]}")
fig.suptitle(f"Fig. 4: the adapted maps ω_i of pair {pair_name} differ from ω_base by {moved:.0%} of its mean "
             "magnitude on average")
ch.save_figure(fig, "fig4_omega")
plt.show()
ch.glue("fig4_moved", f"{moved:.0%}")

# %%
jdr = []
jdr += metrics.jdr_rows(test["pred"], test, image_px, thresholds=("half_head",), method="NoFusion")
for method, model in finetuned.items():
    jdr += metrics.jdr_rows(maml.fuse_frames(model, test["pred"]), test, image_px, thresholds=("half_head",),
                         method=method)
jdr = pd.DataFrame(jdr)
jdr["k"] = k_demo
ch.save_table(jdr, "finetune_jdr")
table = jdr[jdr.joint.isin(["mean", *metrics.JOINT_GROUPS])].pivot(index="method", columns="joint", values="jdr")
display(table.round(3))
demo_jdr = {m: ch.glue(f"demo_jdr_{m.lower()}", round(float(table.loc[m, "mean"]), 3))
            for m in ("MetaFuse", "NoFusion")}
display(Markdown(f"Mean JDR on the test frames after finetuning on K={k_demo}: "
                 f"MetaFuse **{demo_jdr['MetaFuse']}**, NoFusion **{demo_jdr['NoFusion']}**."))

# %% [markdown]
# ## Fig. 6: how fusion moves a wrong maximum
#
# A test frame, view and joint picked automatically: the backbone's heatmap peaks at the wrong place (beyond half a
# head size), preferably one that MetaFuse's fused heatmap puts right. Shown: the ground truth, the initial heatmap,
# the fused heatmap (after the softmax with the temperature T of Sec. 5.1), and the terms of Eq. (1) contributed by
# each other view — the heatmap of that view warped by the learned weights, which should lie along epipolar lines
# through the joint.

# %%
model = finetuned["MetaFuse"]
fused = maml.fuse_frames(model, test["pred"])
n, v, j = oracle.pick_corrected_joint(test["pred"], fused, test, image_px)
with torch.no_grad():
    terms = fusion.contributions(test["pred"][n:n + 1].to(ch.device), model.pair_weights().float(),
                                 model.pairs)[0].cpu()
incoming = [(k, s) for k, (t, s) in enumerate(model.pairs) if t == v]
panels = [("ground truth", test["target"][n, v, j]), ("initial heatmap", test["pred"][n, v, j]),
          (f"fused (softmax T={fusion.DEFAULT_TEMPERATURE:g})", fusion.sharpen(fused[n, v, j]))]
panels += [(f"warped from view {s}", terms[k, j]) for k, s in incoming]
gt_hm = test["joints_2d_px"][n, v, j] * side / image_px + (side / image_px - 1) / 2  # image px -> heatmap px
fig, axes = plots.heatmap_panels([img for _, img in panels], [title for title, _ in panels], ncols=3,
                                 cmap="viridis", colorbar="heatmap value")
for ax, (title, img) in zip(axes, panels):
    peak = np.unravel_index(int(img.argmax()), img.shape)
    ax.plot(gt_hm[0], gt_hm[1], "w+", ms=12, mew=2)
    ax.plot(peak[1], peak[0], "rx", ms=10, mew=2)
joint_name = ch.glue("fig6_joint", skeleton.JOINT_NAMES[j])
fig.suptitle(f"Fig. 6: {joint_name} in view {v} (frame {n});\nwhite + = ground truth, red x = maximum")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "fig6_heatmaps")
plt.show()

# %% [markdown]
# ## Meta-training throughput: one task at a time and batched
#
# The outer loop of Algorithm 1 samples camera pairs (tasks); each task's inner step (Eq. (4)) and its $D_{test}$ loss
# are independent of the others until the meta-gradient is summed. Before batching, the book ran them one after
# another, a handful of small kernels per task — launch-bound on a GPU. `mfcore.maml.meta_train_members` runs all the
# tasks of an outer step, and all fusion seeds, as one program (`torch.func.vmap` over tasks and members).
# `mfbook.speed.meta_training_throughput` times both on this chapter's dome heatmaps; an outer step's time is the
# difference of a long and a one-step run, so compilation and start-up cancel. Wall time differs run to run, so the
# table lives in `meta_throughput.json`, not a CSV; `benchmarks/bench_meta.py` measures the same alone.

# %%
from mfbook import speed

throughput = pd.DataFrame(speed.meta_training_throughput(ch.profile, dome["pred"].to(ch.device),
                                                         dome["target"].to(ch.device), ch.device,
                                                         **({} if ch.device.type == "cuda" else  # CPU: a glance
                                                            dict(steps=1, settings=((8, 1), (8, 3))))))
ch.save_timings(throughput, "meta_throughput")
before = float(throughput.task_updates_per_s.iloc[0])
after = throughput.iloc[1:].set_index(["tasks", "seeds"]).task_updates_per_s
ch.glue("meta_updates_looped", f"{before:,.0f}")
ch.glue("meta_updates_batched", f"{after.max():,.0f}")
ch.glue("meta_batch_ratio", f"{after.max() / max(before, 1e-9):.1f}")
ch.glue("meta_throughput_device", chapter.device_name(ch.device))
throughput.round(2)

# %% [markdown]
# On this run's device ({glue:text}`meta_throughput_device`), meta-training ran {glue:text}`meta_updates_looped` task
# updates per second one task at a time and up to {glue:text}`meta_updates_batched` batched
# ({glue:text}`meta_batch_ratio`× the looped rate). On a CPU the batched program gains little (the cores are busy
# either way); the ratio that matters is the GPU's, in the full book.

# %%
# Compute time of each step, as measured when its cached result was built (on this run's device when the cache was
# cold, which a fresh GPU run is); `this_run_s` is what this run spent, cache loads included.
timings = pd.DataFrame([
    {"step": "warm-up: render the training images", "seconds": net.warmup_seconds["render_s"]},
    {"step": "warm-up: train the backbone", "seconds": net.warmup_seconds["train_s"]},
    *({"step": f"pre-training: {method}", "seconds": model.training_seconds} for method, model in pretrained_models.items()),
    {"step": "this run: warm-up or its cache load", "seconds": warmup_s},
])
ch.save_timings(timings, "timings")
display(timings.round(1))
ch.finish();
