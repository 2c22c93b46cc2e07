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
# # 6. Learning where to fuse: Tekin et al.'s trainable fusion
#
# Tekin, Márquez-Neila, Salzmann and Fua (ICCV 2017) estimate a 3D pose from **one** image with two data streams, one
# reading the image and one reading the 2D detector's joint confidence maps, and a third *fusion stream* that, before
# each of its layers, reads a mixture of its own output and the concatenated data streams (Eq. 1):
#
# $$(1-w_l)\,\mathrm{concat}(I_l, X_l) + w_l\, Z_l, \qquad w_l = \frac{1}{1+e^{-\alpha^2 (l-\beta)}} \quad (3)$$
#
# With a sharp sigmoid the network fuses at layer β; α and β are learned with the network, and the loss
# $\sum_n \|f(i_n, x_n) - y_n\|^2 + \lambda/\alpha^2$ (Eq. 4) pushes the fusion to be sharp, so that inactive layers can
# be pruned after training. This chapter reproduces, at the book's scale:
#
# 1. Table 5: Image-only, CM-only, early, late and trainable fusion (MPJPE and PA-MPJPE);
# 2. a sweep of fusion fixed at every layer β, beside the β the network learns;
# 3. Fig. 5: α, β and the weight vector during training, with and without the λ/α² term;
# 4. Fig. 7: squared Pearson correlation between the two streams' features at the last convolutional layer;
# 5. pruning: parameters, inference time and accuracy of the pruned network against the unpruned one.
#
# **Everything here is synthetic.** Images are rendered by the book's studio from real motion capture, the confidence
# maps come from the book's small warmed-up SimpleBaseline, and the networks are far smaller and trained far shorter
# than the paper's. No number on this page is one of the paper's.
#
# **Set-up, as the paper's protocol** (details in `mfcore/trainable_fusion.py`): every sample is a **person crop**: the
# square window around the ground-truth 2D joints (1.25× their larger extent, as the H36M protocol's ground-truth
# boxes), applied to the image and to the 2D backbone's confidence maps alike. The target is the **root-relative pose
# in the camera frame, standardised** per joint and coordinate with the training poses' mean and spread (the loss of
# Eq. 2 is in those units; every table is in mm). The fully connected layers have **dropout** (the paper's regulariser;
# its rate is not given) and the studio's pose, placement and scene sampling is the data augmentation. Adam at 10⁻³
# for α and β, the paper's rate; the network's rate is scaled with our larger minibatch at the full profile. Each
# configuration is trained with several **seeds** (initial weights, minibatch order, dropout masks): tables give the
# mean ± sd over seeds and the ordering claims pair the networks on the same test samples and seeds.
#
# **Choices**: we use the slope α² in Eq. (3), as the authors' released code, so the sharpness can never turn
# negative and the weights always form an increasing step; the penalty stays λ/α². The image enters as a lossless
# space-to-depth rearrangement (3·4² channels at the confidence maps' resolution) so that image and maps have the same
# size, as Eq. (1) requires. Each stream has L − 2 convolutional blocks and 2 fully connected layers; the fusion stream
# has the channels of both streams and the output layer L + 1. α starts at 0.1, β at L/2. Two context rows frame
# Table 5: **MeanPose**, the constant mean training pose (what a network that learned nothing from its input scores),
# and **Perfect2DLifter**, an MLP from the ground-truth 2D joints to 3D on the same samples (what the confidence-map
# stream could reach from perfect 2D). One stated variant: α and β at a 30× faster rate (`fast_fusion_lr`), because
# our training is hundreds of times shorter than the paper's and Adam moves a parameter by about its rate per step.

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
import torch
from IPython.display import Markdown, display

from mfbook import chapter, plots
from mfcore import stats
from mfcore import trainable_fusion as tf

ch = chapter.open_chapter("06_trainable_fusion", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.trainable_fusion
L = sizes.layers
sns.set_theme(style="whitegrid", context="notebook")

SEEDS = list(range(ch.seed, ch.seed + sizes.seeds))  # network seeds; the samples are the chapter seed's
train = tf.make_monocular_samples(ch.profile, "train", sizes.train_frames, ch.seed, ch.device)
test = tf.make_monocular_samples(ch.profile, "test", sizes.test_frames, ch.seed, ch.device)
crop_px, crop_hm_px = tf.crop_sides_px(ch.profile)
display(Markdown(
    f"{len(train)} training samples (training motions) and {len(test)} test samples (unseen test motions), "
    f"single views of the rigs {', '.join(tf.MONOCULAR_RIGS)}; person crops of {crop_px}² px (confidence maps "
    f"{crop_hm_px}² px) from the {ch.profile.studio.image_px}² px studio views; L = {L} layers, {sizes.channels} "
    f"channels per data stream, dropout {sizes.dropout:g}, {sizes.epochs} epochs of {sizes.batch_size}-sample "
    f"minibatches, Adam {sizes.lr:g} (α, β: {sizes.fusion_lr:g}), λ = {sizes.lambda_alpha:g}; seeds {SEEDS}."))

# %%
fig, axs = plt.subplots(2, 4, figsize=(12, 6.2))
for k, ax in enumerate(axs.T):
    ax[0].imshow(test.images[k].permute(1, 2, 0).cpu().numpy())
    ax[0].set_title(f"test image {k}", fontsize=10)
    ax[1].imshow(test.confidence_maps[k].max(dim=0).values.cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    ax[1].set_title("its 17 confidence maps (max)", fontsize=10)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
fig.suptitle("The two inputs of every network: the person crop of the image and of the 2D backbone's confidence maps")
fig.tight_layout()
ch.save_figure(fig, "inputs")
plt.show()

# %% [markdown]
# ## Table 5: single streams, hard-coded fusion and trainable fusion
#
# For each seed every network starts from the same weights in the layers they share and sees the same minibatches.
# ImageOnly and CMOnly are one data stream and the output layer; EarlyFusion is the fusion stream alone on
# concat(image, maps) (β = 0); LateFusion runs both data streams to the end and concatenates them before the output
# layer (β = L); TrainableFusion learns α and β with Eq. (4). MeanPose and Perfect2DLifter are the context rows.

# %%
TABLE5 = ("ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion")
CONTEXT = ("MeanPose", "Perfect2DLifter")
nets, histories, rows, samples = {}, {}, [], []  # nets[(method, seed)]


def record(method, seed, errors, **extra):
    samples.append(pd.DataFrame(dict(method=method, seed=seed, sample=np.arange(len(errors["mpjpe_mm"])),
                                     **{name: e.numpy().round(2) for name, e in errors.items()})))
    rows.append(dict(method=method, seed=seed, **{name: float(e.mean()) for name, e in errors.items()}, **extra))


mean_pose = tf.mean_pose_errors(train, test)  # the same constant for every seed: one row per seed all the same
for seed in SEEDS:
    for method in TABLE5:
        net, hist = tf.fit_fusion_method(method, train, ch.profile, seed, ch.device)
        nets[method, seed], histories[method, seed] = net, hist
        record(method, seed, tf.evaluate_fusion_net_samples(net, test), params=tf.count_parameters(net),
               fusion_layer=tf.fusion_layer(net) if method not in ("ImageOnly", "CMOnly") else np.nan)
    lifter = tf.fit_perfect_lifter(train, ch.profile, seed, ch.device)
    record("Perfect2DLifter", seed, tf.perfect_lifter_errors(lifter, test), params=tf.count_parameters(lifter),
           fusion_layer=np.nan)
    record("MeanPose", seed, mean_pose, params=0, fusion_layer=np.nan)
ablation = pd.DataFrame(rows)
ch.save_table(ablation, "ablation")
ablation_samples = pd.concat(samples, ignore_index=True)
ch.save_table(ablation_samples, "ablation_samples")
summary = (ablation.groupby("method", sort=False)[["mpjpe_mm", "pa_mpjpe_mm"]].agg(["mean", "std"]))
summary.columns = [f"{m}_{'sd' if a == 'std' else 'mean'}" for m, a in summary.columns]
summary = summary.reset_index().assign(seeds=len(SEEDS))
display(summary.round(1))

# paired over test samples and seeds: TrainableFusion − each other network, MPJPE (mm)
err = ablation_samples.pivot_table(index=["seed", "sample"], columns="method", values="mpjpe_mm")
seed_of = err.index.get_level_values("seed").to_numpy()
intervals = pd.DataFrame([dict(comparison=f"TrainableFusion − {m}",
                               **vars(stats.paired_bootstrap(err["TrainableFusion"], err[m], clusters=seed_of)))
                          for m in TABLE5[:-1] + CONTEXT])[["comparison", "diff", "low", "high", "n", "clusters"]]
ch.save_table(intervals.rename(columns={"diff": "diff_mm", "low": "ci_low_mm", "high": "ci_high_mm"}),
              "table5_intervals")
display(intervals.round(1))

by_method = summary.set_index("method")
best = by_method.loc[list(TABLE5), "mpjpe_mm_mean"].idxmin()
for m in TABLE5 + CONTEXT:
    ch.glue(f"mpjpe_{m}", f"{by_method.loc[m, 'mpjpe_mm_mean']:.1f} ± {by_method.loc[m, 'mpjpe_mm_sd']:.1f}")
    ch.glue(f"pa_mpjpe_{m}", f"{by_method.loc[m, 'pa_mpjpe_mm_mean']:.1f} ± {by_method.loc[m, 'pa_mpjpe_mm_sd']:.1f}")
ch.glue("best_method", best)
ch.glue("n_seeds", len(SEEDS))
image_vs_mean = by_method.loc["ImageOnly", "mpjpe_mm_mean"] / by_method.loc["MeanPose", "mpjpe_mm_mean"]
ch.glue("imageonly_over_meanpose", round(float(image_vs_mean), 2))
ch.glue("imageonly_reading", (
    "at most 0.6, as on Human3.6M: the image stream learns far more than the average pose"
    if image_vs_mean <= 0.6 else
    "above the 0.6 that Human3.6M's numbers suggest (124.1 mm against a mean pose about twice that): the image "
    "stream learns less here than the paper's does. A likely reason, tested by the learning curve below: the "
    f"training set, {sizes.train_frames} single-view samples against Human3.6M's hundreds of thousands, from a few "
    "hundred motion clips, so the image network sees few poses per motion type"))
ch.glue("fusion_beats_single_streams",
        "yes" if by_method.loc[["EarlyFusion", "LateFusion", "TrainableFusion"], "mpjpe_mm_mean"].max()
        < by_method.loc[["ImageOnly", "CMOnly"], "mpjpe_mm_mean"].min() else "no")

fig, ax = plt.subplots(figsize=(11, 4.8))
order = list(TABLE5 + CONTEXT)
long = (ablation.melt(id_vars=["method", "seed"], value_vars=["mpjpe_mm", "pa_mpjpe_mm"], var_name="metric",
                      value_name="mm").replace({"metric": {"mpjpe_mm": "MPJPE", "pa_mpjpe_mm": "PA-MPJPE"}}))
sns.barplot(data=long, x="method", y="mm", hue="metric", order=order, errorbar="sd", capsize=0.1, ax=ax)
ax.set_ylabel("3D joint error (mm), mean ± sd over seeds")
ax.set_xlabel("")
ax.set_title(f"Table 5 analog: {best} has the lowest MPJPE on the test motions "
             f"({by_method.loc[best, 'mpjpe_mm_mean']:.1f} mm); ImageOnly is {image_vs_mean:.2f}× the mean pose\n"
             f"({len(SEEDS)} seeds; MeanPose and Perfect2DLifter are context; synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "table5")
plt.show()

# %% [markdown]
# MPJPE on unseen test motions (mean ± sd over {glue:text}`n_seeds` seeds): ImageOnly {glue:text}`mpjpe_ImageOnly` mm,
# CMOnly {glue:text}`mpjpe_CMOnly` mm, EarlyFusion {glue:text}`mpjpe_EarlyFusion` mm, LateFusion
# {glue:text}`mpjpe_LateFusion` mm and TrainableFusion {glue:text}`mpjpe_TrainableFusion` mm (PA-MPJPE
# {glue:text}`pa_mpjpe_TrainableFusion` mm). Context: the constant mean training pose scores
# {glue:text}`mpjpe_MeanPose` mm and the lifter from perfect 2D {glue:text}`mpjpe_Perfect2DLifter` mm; ImageOnly is
# {glue:text}`imageonly_over_meanpose`× the mean pose (the paper's ImageOnly, 124.1 mm on Human3.6M, is about half a
# mean pose there): {glue:text}`imageonly_reading`. The lowest of Table 5 is {glue:text}`best_method`; every fusion network beats both single streams:
# {glue:text}`fusion_beats_single_streams`. In the paper (Table 5, Human3.6M) the order is Image-only > CM-only >
# early > late > trainable. `table5_intervals.csv` holds each paired difference with its 95 % interval (test samples
# and seeds resampled).

# %% [markdown]
# ### Does ImageOnly learn more from more samples?
#
# The test of that reason: ImageOnly trained on {glue:text}`curve_fractions` of the training samples (a seeded
# subset, seed {glue:text}`curve_seed`), each at the same number of Adam steps (the epochs scaled by the inverse
# share), against the mean pose of the same samples (`mfcore.trainable_fusion.training_size_curve`). If the ratio to
# the mean pose still falls steeply at the full set, more samples would bring it towards the paper's; if it has
# flattened, the set's size is not what holds ImageOnly back.

# %%
curve = pd.DataFrame(tf.training_size_curve("ImageOnly", train, test, ch.profile, SEEDS[0], ch.device,
                                                full_net=nets["ImageOnly", SEEDS[0]]))
ch.save_table(curve, "imageonly_training_size")
ch.glue("curve_fractions", ", ".join(f"{f:g}" for f in curve.fraction))
ch.glue("curve_seed", SEEDS[0])
half, whole = curve.iloc[-2], curve.iloc[-1]
ch.glue("curve_half", f"{half.over_mean_pose:.2f}")
ch.glue("curve_whole", f"{whole.over_mean_pose:.2f}")
drop = half.over_mean_pose - whole.over_mean_pose
ch.glue("curve_reading", (
    f"doubling the samples from {int(half.train_samples):,} to {int(whole.train_samples):,} lowers the ratio by "
    f"{drop:.2f}: still falling, so a larger training set is a likely lever (this page does not extrapolate it)"
    if drop >= 0.02 else
    f"doubling the samples from {int(half.train_samples):,} to {int(whole.train_samples):,} changes the ratio by "
    f"{-drop:+.2f}: flat, so the training set's size does not explain the gap to the paper's ratio"))
fig, ax = plt.subplots(figsize=(6.4, 4.0))
ax.plot(curve.train_samples, curve.mpjpe_mm, "o-", color="black", label="ImageOnly")
ax.plot(curve.train_samples, curve.mean_pose_mpjpe_mm, "s--", color="grey", label="mean training pose")
ax.plot(curve.train_samples, 0.6 * curve.mean_pose_mpjpe_mm, ":", color="tab:green",
        label="0.6 × mean pose (the paper's ratio, about)")
ax.set_xscale("log", base=2)
ax.set(xlabel="training samples (log₂)", ylabel="MPJPE on the test motions (mm)",
       title=f"ImageOnly / mean pose: {curve.over_mean_pose.iloc[0]:.2f} at {int(curve.train_samples.iloc[0]):,} "
             f"samples → {whole.over_mean_pose:.2f} at {int(whole.train_samples):,}")
ax.legend(fontsize=8)
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "imageonly_training_size")
plt.show()
curve.round(3)

# %% [markdown]
# ImageOnly / mean pose: {glue:text}`curve_half` at half the samples, {glue:text}`curve_whole` at all of them;
# {glue:text}`curve_reading`. One seed: the curve reads a trend, not a paired difference.

# %% [markdown]
# ## Fusion fixed at every layer, beside the learned β
#
# The paper's argument for learning β: the best fusion layer depends on the problem, and training one network per β
# to find it is costly. Here we pay that cost once, for every β in 0..L and every seed (β = 0 and β = L are the early
# and late fusion networks above), and mark where trainable fusion's β ended.

# %%
sweep_rows = []
for seed in SEEDS:
    ends = {0: "EarlyFusion", L: "LateFusion"}
    for b in range(0, L + 1):
        if b in ends:
            r = ablation[(ablation.method == ends[b]) & (ablation.seed == seed)].iloc[0]
            sweep_rows.append(dict(beta=b, seed=seed, mpjpe_mm=r.mpjpe_mm, pa_mpjpe_mm=r.pa_mpjpe_mm, params=r.params))
            continue
        net, _ = tf.fit_fusion_method("FixedFusion", train, ch.profile, seed, ch.device, beta=b)
        sweep_rows.append(dict(beta=b, seed=seed, **tf.evaluate_fusion_net(net, test), params=tf.count_parameters(net)))
sweep = pd.DataFrame(sweep_rows).sort_values(["beta", "seed"], ignore_index=True)
ch.save_table(sweep, "beta_sweep")
sweep_mean = sweep.groupby("beta")[["mpjpe_mm", "pa_mpjpe_mm"]].agg(["mean", "std"])
learned = np.array([float(nets["TrainableFusion", s].beta.detach()) for s in SEEDS])
best_beta = int(sweep_mean[("mpjpe_mm", "mean")].idxmin())
ch.glue("learned_beta", f"{learned.mean():.2f} ± {learned.std(ddof=1) if len(learned) > 1 else 0.0:.2f}")
ch.glue("best_fixed_beta", best_beta)
ch.glue("best_fixed_mpjpe", f"{sweep_mean.loc[best_beta, ('mpjpe_mm', 'mean')]:.1f} ± "
                            f"{sweep_mean.loc[best_beta, ('mpjpe_mm', 'std')]:.1f}")
trainable_mm = ablation[ablation.method == "TrainableFusion"].mpjpe_mm

fig, ax = plt.subplots(figsize=(7.5, 3.8))
betas = sweep_mean.index.to_numpy()
for col, marker, label in (("mpjpe_mm", "o-", "MPJPE"), ("pa_mpjpe_mm", "s--", "PA-MPJPE")):
    ax.errorbar(betas, sweep_mean[(col, "mean")], yerr=sweep_mean[(col, "std")], fmt=marker, capsize=3,
                label=f"fusion fixed at β ({label}, mean ± sd)")
ax.axhspan(trainable_mm.mean() - trainable_mm.std(), trainable_mm.mean() + trainable_mm.std(), color="crimson",
           alpha=0.15, label="trainable fusion MPJPE (mean ± sd)")
ax.axvline(learned.mean(), color="crimson", ls=":", label=f"learned β = {learned.mean():.2f} (mean)")
ax.set_xlabel("fusion layer β")
ax.set_ylabel("3D joint error (mm)")
ax.set_title(f"Best fixed fusion layer: β = {best_beta}; trainable fusion ends at β = {learned.mean():.2f} "
             f"({len(SEEDS)} seeds)")
ax.legend(fontsize=8)
fig.tight_layout()
ch.save_figure(fig, "beta_sweep")
plt.show()

# %% [markdown]
# The best fixed fusion layer (lowest mean over seeds) is β = {glue:text}`best_fixed_beta`
# ({glue:text}`best_fixed_mpjpe` mm); trainable fusion ended at β = {glue:text}`learned_beta`, starting from β = L/2.

# %% [markdown]
# ## Fig. 5: α, β and the fusion weights during training, with and without λ/α²
#
# The trainable networks of Table 5 used λ = `lambda_alpha` of the profile and the paper's rate for α and β. We train
# them again, from the same starts, with λ = 0 (Eq. 2 only), and, as the stated variant, with λ and α, β at the
# faster rate `fast_fusion_lr`. λ/α², whose gradient on α dominates the data term's, raises α steadily (Adam moves it
# by about its rate per step while that gradient dominates); without it α follows the data term alone.

# %%
RUN_PAPER, RUN_FREE = f"λ = {sizes.lambda_alpha:g}", "λ = 0"
RUN_FAST = f"λ = {sizes.lambda_alpha:g}, α β at {sizes.fast_fusion_lr:g}"
run_nets = {(RUN_PAPER, s): nets["TrainableFusion", s] for s in SEEDS}
runs = {(RUN_PAPER, s): histories["TrainableFusion", s] for s in SEEDS}
for seed in SEEDS:
    run_nets[RUN_FREE, seed], runs[RUN_FREE, seed] = tf.fit_fusion_method(
        "TrainableFusion", train, ch.profile, seed, ch.device, lambda_alpha=0.0)
    run_nets[RUN_FAST, seed], runs[RUN_FAST, seed] = tf.fit_fusion_method(
        "TrainableFusion", train, ch.profile, seed, ch.device, fusion_lr=sizes.fast_fusion_lr)
RUNS = (RUN_PAPER, RUN_FREE, RUN_FAST)
runs = {(name, seed): runs[name, seed] for name in RUNS for seed in SEEDS}  # the paper's rate first (claims read it)
params_long = pd.concat([h[["step", "alpha", "beta", "data_loss", "penalty"]].assign(run=name, seed=seed)
                         for (name, seed), h in runs.items()], ignore_index=True)
weights_long = pd.concat([h.melt(id_vars="step", value_vars=[f"w_{l}" for l in range(1, L + 1)], var_name="layer",
                                 value_name="w").assign(run=name, seed=seed)
                          for (name, seed), h in runs.items()], ignore_index=True)
weights_long["layer"] = weights_long["layer"].str[2:].astype(int)
ch.save_table(params_long[["run", "seed", "step", "alpha", "beta", "data_loss", "penalty"]], "fusion_parameters")
ch.save_table(weights_long[["run", "seed", "step", "layer", "w"]], "fusion_weights")

per_step = params_long.groupby(["run", "step"])[["alpha", "beta", "data_loss"]].agg(["mean", "std"])
final = {name: per_step.loc[name].iloc[-1] for name in RUNS}
start = {name: per_step.loc[name].iloc[0] for name in RUNS}
for key, name in (("with", RUN_PAPER), ("without", RUN_FREE), ("fast", RUN_FAST)):
    ch.glue(f"alpha_final_{key}", f"{final[name][('alpha', 'mean')]:.3f} ± {final[name][('alpha', 'std')]:.3f}")
    ch.glue(f"beta_final_{key}", f"{final[name][('beta', 'mean')]:.2f} ± {final[name][('beta', 'std')]:.2f}")
ch.glue("train_steps", int(len(runs[RUN_FREE, SEEDS[0]])))


def direction(name, col):
    return "rose" if final[name][(col, "mean")] > start[name][(col, "mean")] else "fell"


ch.glue("alpha_direction_with", direction(RUN_PAPER, "alpha"))
ch.glue("alpha_direction_without", direction(RUN_FREE, "alpha"))
ch.glue("beta_direction_with", direction(RUN_PAPER, "beta"))

fig, axs = plt.subplots(2, 3, figsize=(15, 8.5))
for name, colour, ls in zip(RUNS, ("tab:blue", "tab:orange", "tab:green"), ("-", "--", "-.")):
    g = per_step.loc[name]
    for ax, col in zip(axs[0], ("alpha", "beta", "data_loss")):
        ax.plot(g.index, g[(col, "mean")], color=colour, ls=ls, lw=2, label=name)
        ax.fill_between(g.index, g[(col, "mean")] - g[(col, "std")], g[(col, "mean")] + g[(col, "std")],
                        color=colour, alpha=0.2)
axs[0, 0].set(ylabel="α (sharpness: the slope is α²)", title="α: how sharp the fusion step is")
axs[0, 1].set(ylabel="β (fusion layer)", title="β: where the streams fuse")
axs[0, 2].set(ylabel="data loss (standardised units²)", title="Eq. (2) on the minibatch", yscale="log")
for ax in axs[0]:
    ax.legend(fontsize=8)
for ax, name in zip(axs[1], RUNS):
    h = runs[name, SEEDS[0]]
    w = h[[f"w_{l}" for l in range(1, L + 1)]].to_numpy().T
    im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower",
                   extent=(h["step"].iloc[0] - 0.5, h["step"].iloc[-1] + 0.5, 0.5, L + 0.5))
    ax.set(ylabel="layer l", title=f"{name}: fusion weights w_l (seed {SEEDS[0]})")
    fig.colorbar(im, ax=ax, label="w_l (1: fusion stream, 0: data streams)")
for ax in axs.flat:
    ax.set_xlabel("training step")
fig.suptitle(f"Fig. 5 analog: with λ/α² α rises to {final[RUN_PAPER][('alpha', 'mean')]:.3f} at the paper's rate and "
             f"to {final[RUN_FAST][('alpha', 'mean')]:.3f} at the faster one; without it "
             f"{final[RUN_FREE][('alpha', 'mean')]:.3f} (mean ± sd over {len(SEEDS)} seeds; synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "fig5_fusion_parameters")
plt.show()

# %% [markdown]
# After {glue:text}`train_steps` steps (mean ± sd over seeds), α {glue:text}`alpha_direction_with` from 0.1 to
# {glue:text}`alpha_final_with` with the penalty at the paper's rate, to {glue:text}`alpha_final_fast` at the faster
# rate, and {glue:text}`alpha_direction_without` to {glue:text}`alpha_final_without` without the penalty; with the
# penalty β {glue:text}`beta_direction_with` from L/2 to {glue:text}`beta_final_with` (faster rate:
# {glue:text}`beta_final_fast`; without: {glue:text}`beta_final_without`). The paper reports α rising (its
# regulariser at work) and, typically, β rising: fusion moving to later layers. At the paper's rate α can move by
# only about 10⁻³ per step, so in our few hundred steps the fusion stays soft: every layer of all three streams stays
# partly active, the over-parameterised mixture the penalty exists to avoid; the pruning section measures what that
# costs. The slope of the sigmoid is α², so the weights one layer from β are sigmoid(±α²).

# %% [markdown]
# ## Fig. 7: are the two streams' features decorrelated?
#
# The squared Pearson correlation R² between every pair of channels of the image stream and of the confidence-map
# stream at the last convolutional layer of the trained trainable-fusion network (first seed), over 128 test images (each channel
# a variable, every image and position a sample). The paper finds the cross-stream blocks nearly empty: the two
# streams encode complementary information.

# %%
n_corr = min(128, len(test))
r2 = tf.stream_correlation_r2(nets["TrainableFusion", SEEDS[0]], test.images[:n_corr],
                              test.confidence_maps[:n_corr]).cpu()
C = r2.shape[0] // 2
off = ~torch.eye(C, dtype=torch.bool)
blocks = pd.DataFrame([
    dict(block="image-image", mean_r2=float(r2[:C, :C][off].mean())),
    dict(block="cm-cm", mean_r2=float(r2[C:, C:][off].mean())),
    dict(block="image-cm", mean_r2=float(r2[:C, C:].mean())),
])
ch.save_table(blocks, "stream_correlation")
for _, r in blocks.iterrows():
    ch.glue(f"r2_{r['block'].replace('-', '_')}", round(r["mean_r2"], 3))

fig, ax = plt.subplots(figsize=(6.4, 5.4))
sns.heatmap(r2.numpy(), vmin=0, vmax=1, cmap="viridis", square=True, ax=ax, cbar_kws=dict(label="R²"),
            xticklabels=False, yticklabels=False)
ax.axhline(C, color="w", lw=1)
ax.axvline(C, color="w", lw=1)
ax.set_xlabel(f"channel: image stream (first {C}) | confidence-map stream", fontsize=10)
ax.set_ylabel(f"channel: image stream (first {C}) | confidence-map stream", fontsize=10)
r2_by_block = blocks.set_index("block")["mean_r2"]
ax.set_title(f"Fig. 7 analog: mean cross-stream R² {r2_by_block['image-cm']:.3f}\n"
             f"against {r2_by_block[['image-image', 'cm-cm']].mean():.3f} within a stream (synthetic)", fontsize=10)
fig.tight_layout()
ch.save_figure(fig, "fig7_stream_correlation")
plt.show()

# %% [markdown]
# Mean R² between distinct channels: {glue:text}`r2_image_image` within the image stream,
# {glue:text}`r2_cm_cm` within the confidence-map stream and {glue:text}`r2_image_cm` across the two.

# %% [markdown]
# ## Pruning after training
#
# A network with binary weights w can drop every fusion layer with w_l ≈ 0 and every data-stream layer with w_l ≈ 1
# (Sec. 3.1): what remains is the network fused at β (the number of layers with w_l < ½). When the weights are not
# binary, pruning rounds them to 0/1 and changes the function; we measure by how much. Inference time is per image,
# over one batch of test images, on this page's device (wall-clock times differ run to run, so they are kept out of
# the CSV tables and the figure: `pruning_timings.json`).

# %%
prune_rows, timing_rows = [], []
batch = min(len(test), sizes.batch_size)
im_b, cm_b = test.images[:batch], test.confidence_maps[:batch]
for name, seed in ((name, seed) for name in RUNS for seed in SEEDS):
    net = run_nets[name, seed]
    w = net.fusion_weights().detach().cpu()
    pruned = tf.prune_fusion_net(net)
    deviation = float((w - tf.indicator_fusion_weights(pruned.fixed_beta, L)).abs().max())
    soft = {f"w_{l}": float(w[l - 1]) for l in range(1, L + 1)}  # the soft weights the pruning rounds to 0/1
    for kind, model in (("unpruned", net), ("pruned", pruned)):
        prune_rows.append(dict(run=name, seed=seed, network=kind, fusion_layer=pruned.fixed_beta,
                               max_w_rounding=deviation, params=tf.count_parameters(model),
                               **tf.evaluate_fusion_net(model, test), **soft))
        if seed == SEEDS[0]:
            timing_rows.append(dict(run=name, network=kind, device=str(ch.device), batch=batch,
                                    ms_per_image=tf.inference_ms_per_image(model, im_b, cm_b, repeats=5)))
pruning = pd.DataFrame(prune_rows)
timings = pd.DataFrame(timing_rows)
ch.save_table(pruning, "pruning")
ch.save_timings(timings, "pruning_timings")
prune_summary = (pruning.groupby(["run", "network"], sort=False)
                 .agg(fusion_layer=("fusion_layer", "mean"), max_w_rounding=("max_w_rounding", "mean"),
                      params=("params", "mean"), mpjpe_mm=("mpjpe_mm", "mean"), mpjpe_mm_sd=("mpjpe_mm", "std")))
display(prune_summary.round(3))
display(pruning[pruning.network == "unpruned"][["run", "seed", "fusion_layer"] + [f"w_{l}" for l in range(1, L + 1)]]
        .round(3))
display(timings.round(4))

main = prune_summary.loc[RUN_PAPER]
fast = prune_summary.loc[RUN_FAST]
main_t = timings[timings["run"] == RUN_PAPER].set_index("network")
ch.glue("pruned_params", int(main.loc["pruned", "params"]))
ch.glue("unpruned_params", int(main.loc["unpruned", "params"]))
ch.glue("param_ratio", round(float(main.loc["unpruned", "params"] / main.loc["pruned", "params"]), 2))
ch.glue("pruned_mpjpe", round(float(main.loc["pruned", "mpjpe_mm"]), 1))
ch.glue("unpruned_mpjpe", round(float(main.loc["unpruned", "mpjpe_mm"]), 1))
ch.glue("max_w_rounding", round(float(main.loc["pruned", "max_w_rounding"]), 3))
ch.glue("fast_pruned_mpjpe", round(float(fast.loc["pruned", "mpjpe_mm"]), 1))
ch.glue("fast_unpruned_mpjpe", round(float(fast.loc["unpruned", "mpjpe_mm"]), 1))
ch.glue("fast_max_w_rounding", round(float(fast.loc["pruned", "max_w_rounding"]), 3))
ch.glue("speedup", round(float(main_t.loc["unpruned", "ms_per_image"] / main_t.loc["pruned", "ms_per_image"]), 2))

fig, axs = plt.subplots(1, 2, figsize=(12, 4))
for ax, (col, label) in zip(axs, (("params", "parameters"), ("mpjpe_mm", "MPJPE on test motions (mm), mean ± sd"))):
    sns.barplot(data=pruning, x="run", y=col, hue="network", errorbar="sd", capsize=0.1, ax=ax)
    ax.set_ylabel(label)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=8)
fig.suptitle(f"Pruning rounds the soft weights (by up to {main.loc['pruned', 'max_w_rounding']:.2f} at the paper's "
             f"rate): MPJPE {main.loc['unpruned', 'mpjpe_mm']:.1f} → {main.loc['pruned', 'mpjpe_mm']:.1f} mm "
             f"(faster rate: {fast.loc['unpruned', 'mpjpe_mm']:.1f} → {fast.loc['pruned', 'mpjpe_mm']:.1f} mm)")
fig.tight_layout()
ch.save_figure(fig, "pruning")
plt.show()

# %% [markdown]
# At the paper's rate the pruned network (fusion at β = its number of layers with w_l < ½) has
# {glue:text}`pruned_params` parameters against {glue:text}`unpruned_params` ({glue:text}`param_ratio`× fewer; means
# over seeds) and runs {glue:text}`speedup`× faster per image here. Rounding the soft weights (every seed's w_l are in
# `pruning.csv`) to 0/1 moved them by up to {glue:text}`max_w_rounding` (mean over seeds), and the MPJPE from
# {glue:text}`unpruned_mpjpe` mm to {glue:text}`pruned_mpjpe` mm; at the faster rate by up to
# {glue:text}`fast_max_w_rounding`, {glue:text}`fast_unpruned_mpjpe` → {glue:text}`fast_pruned_mpjpe` mm: the sharper the fusion at the end of training, the
# smaller that change (with binary weights the two networks compute the same function, a test of the book checks it).

# %% [markdown]
# ## Claims of this chapter
#
# The scorecard's rows that this chapter decides (chapter 7 collects every chapter's). Table 5's ordering pairs
# TrainableFusion with each other network on the same test samples and seeds (95 % bootstrap interval of the
# per-sample MPJPE difference, seeds as clusters); α and β are the mean over seeds of the run with λ/α² at the
# paper's rate; the stream correlation is read from the first seed's network. For each claim that is "no" or "tie", the evidence, written from the numbers by
# `mfcore.claims.claim_paragraph`.

# %%
from IPython.display import Markdown

from mfcore import claims

chapter_claims, chapter_claims_text = claims.claims_section({
    claims.ABLATION_SAMPLES: ablation_samples,
    **{c.evidence: pd.read_csv(ch.out / c.evidence.split("/")[1]) for c in claims.CLAIMS
       if c.evidence.startswith("06_") and c.evidence != claims.ABLATION_SAMPLES}})
display(chapter_claims[["claim_id", "claim", "our_value", "holds", "ci_low", "ci_high", "n", "unit"]].round(2))
display(Markdown(chapter_claims_text))

# %% [markdown]
# ## Summary
#
# * Table 5 analog ({glue:text}`n_seeds` seeds): TrainableFusion {glue:text}`mpjpe_TrainableFusion` mm, EarlyFusion
#   {glue:text}`mpjpe_EarlyFusion` mm, LateFusion {glue:text}`mpjpe_LateFusion` mm, CMOnly {glue:text}`mpjpe_CMOnly` mm,
#   ImageOnly {glue:text}`mpjpe_ImageOnly` mm; the lowest is {glue:text}`best_method`. Context: MeanPose
#   {glue:text}`mpjpe_MeanPose` mm, Perfect2DLifter {glue:text}`mpjpe_Perfect2DLifter` mm; ImageOnly /
#   MeanPose = {glue:text}`imageonly_over_meanpose`.
# * The best fixed fusion layer is β = {glue:text}`best_fixed_beta`; the learned β is {glue:text}`learned_beta`.
# * λ/α² raises α to {glue:text}`alpha_final_with` in {glue:text}`train_steps` steps at the paper's rate
#   ({glue:text}`alpha_final_fast` at the faster rate; without the penalty: {glue:text}`alpha_final_without`).
# * Cross-stream R² {glue:text}`r2_image_cm` against {glue:text}`r2_image_image` / {glue:text}`r2_cm_cm` within the
#   streams.
# * Pruning: {glue:text}`param_ratio`× fewer parameters, MPJPE {glue:text}`unpruned_mpjpe` → {glue:text}`pruned_mpjpe`
#   mm.
#
# All data are synthetic and the networks tiny; these numbers test the paper's mechanisms, not its results.

# %%
ch.finish();
