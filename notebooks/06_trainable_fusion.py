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
# 1. Table 5: Image-only, CM-only, early, late and trainable fusion (MPJPE and PA-MPJPE), with ImageOnly's learning
#    curve over the size of the training set;
# 2. a sweep of fusion fixed at every layer β, beside the β the network learns;
# 3. Fig. 5: α, β and the weight vector over the whole training, with λ/α² and with λ = 0 (the control);
# 4. Fig. 7: squared Pearson correlation between the two streams' features at the last convolutional layer, against
#    the same architecture at its initial weights (the null);
# 5. pruning: parameters, inference time and accuracy of the pruned network against the unpruned one.
#
# **Everything here is synthetic.** Images are rendered by the book's studio from real motion capture, the confidence
# maps come from the book's small warmed-up SimpleBaseline, and the networks are far smaller than the paper's. No
# number on this page is one of the paper's.
#
# **Set-up, as the paper's protocol** (details in `mfcore/trainable_fusion/`): every sample is a **person crop**: the
# square window around the ground-truth 2D joints (1.25× their larger extent, as the H36M protocol's ground-truth
# boxes), applied to the image and to the 2D backbone's confidence maps alike. The target is the **root-relative pose
# in the camera frame, standardised** per joint and coordinate with the training poses' mean and spread (the loss of
# Eq. 2 is in those units; every table is in mm). The fully connected layers have **dropout** (the paper's regulariser;
# its rate is not given) and the studio's pose, placement and scene sampling is the data augmentation. **Adam at
# 10⁻³** for the network and for α and β, the paper's rate; Adam moves a parameter by at most about its rate per
# step, so the number of steps bounds how far α and β can travel (the set-up line below sets the two side by side:
# β may need L/2 layers to reach either end of 0..L). λ is chosen by the paper's rule:
# λ/α² at the start about the data term at the start ("comparable magnitudes"). Each configuration is trained with
# several **seeds** (initial weights, minibatch order, dropout masks): tables give the mean ± sd over seeds and the
# ordering claims pair the networks on the same test samples and seeds.
#
# **Choices**: we use the slope α² in Eq. (3), as the authors' released code, so the sharpness can never turn
# negative and the weights always form an increasing step; the penalty stays λ/α². The image enters as a lossless
# space-to-depth rearrangement (3·4² channels at the confidence maps' resolution) so that image and maps have the same
# size, as Eq. (1) requires. Each stream has L − 2 convolutional blocks and 2 fully connected layers; the fusion stream
# has the channels of both streams and the output layer L + 1. α starts at 0.1, β at L/2. Two context rows frame
# Table 5: **MeanPose**, the constant mean training pose (what a network that learned nothing from its input scores),
# and **Perfect2DLifter**, an MLP from the ground-truth 2D joints to 3D on the same samples (what the confidence-map
# stream could reach from perfect 2D).

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
from IPython.display import Markdown, display

from mfbook import chapter, plots
from mfcore import stats
from mfcore import trainable_fusion as tf

ch = chapter.open_chapter("06_trainable_fusion", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.trainable_fusion
L = sizes.layers
AMP = ch.device.type == "cuda"  # bf16 autocast on the GPU
sns.set_theme(style="whitegrid", context="notebook")

SEEDS = list(range(ch.seed, ch.seed + sizes.seeds))  # network seeds; the samples are the chapter seed's
SWEEP_SEEDS = SEEDS[:sizes.sweep_seeds]
train = tf.make_monocular_samples(ch.profile, "train", sizes.train_frames, ch.seed, ch.device)
test = tf.make_monocular_samples(ch.profile, "test", sizes.test_frames, ch.seed, ch.device)
crop_px, crop_hm_px = tf.crop_sides_px(ch.profile)
n_test_clips = len(set(test.clips))
display(Markdown(
    f"{len(train):,} training samples (training motions) and {len(test):,} test samples (unseen test segments of "
    f"{n_test_clips} motion clips), single views of the rigs {', '.join(tf.MONOCULAR_RIGS)}; person crops of "
    f"{crop_px}² px (confidence maps {crop_hm_px}² px) from the {ch.profile.studio.image_px}² px studio views; L = {L} "
    f"layers, {sizes.channels} channels per data stream, dropout {sizes.dropout:g}; {sizes.steps:,} Adam steps of "
    f"{sizes.batch_size}-sample minibatches per network, rate {sizes.lr:g} (α, β: {sizes.fusion_lr:g}: they can "
    f"move by up to about {sizes.fusion_lr * sizes.steps:.2f}, against L/2 = {L / 2:g} layers from β's start to "
    f"either end), λ = {sizes.lambda_alpha:g}; seeds {SEEDS}."))

# %%
fig, axs = plt.subplots(2, 4, figsize=(12, 6.2))
for k, ax in enumerate(axs.T):
    ax[0].imshow(test.images[k].float().permute(1, 2, 0).cpu().numpy())
    ax[0].set_title(f"test image {k}", fontsize=10)
    ax[1].imshow(test.confidence_maps[k].float().max(dim=0).values.cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    ax[1].set_title("its 17 confidence maps (max)", fontsize=10)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
fig.suptitle("The two inputs of every network: the person crop of the image and of the 2D backbone's confidence maps")
fig.tight_layout()
ch.save_figure(fig, "inputs")
plt.show()

# %% [markdown]
# ## Training every network of the chapter: four batched programs
#
# On a GPU a training step of one of these small networks costs about what launching its kernels costs (measured on
# the H200: 3.5-9 ms whatever the batch from 128 to 512), so networks of one architecture are trained together as the
# *members* of one program: every layer holds the members' weights side by side and runs them in one grouped kernel
# (`mfcore/trainable_fusion/layers.py`; `benchmarks/bench_tekin_ensemble.py` times an ensemble against one network).
# A member's initial weights, minibatch order and dropout masks follow its seed alone, so it trains as it would alone
# (a test of the book compares the two).
# The paper's formalism makes one program enough for every two-stream network: early fusion, fusion at layer β and
# late fusion are the fusion weights w = 1[l > β] of the complete architecture (Sec. 3.1), whose inactive layers then
# contribute exactly nothing and receive no gradient. The four programs:
#
# * **the fusion networks**: per seed EarlyFusion (β = 0), LateFusion (β = L), TrainableFusion with λ/α² and its
#   control with λ = 0, plus, where the profile asks for it, the sweep of fusion fixed at β = 1..L−1 (the table below
#   lists the members);
# * **ImageOnly** per seed at every size of its learning curve; **CMOnly** per seed; **Perfect2DLifter** per seed.
#
# Members of the same seed see the same minibatches in every program (on the whole training set). Eq. (1) as the
# network computes it, every member at once:

# %%
chapter.show_code(inspect.getsource(tf.FusionNet.forward), "        w = self.fusion_weights()")

# %%
timings = []


def train_program(name, net, **kw):
    """Train every member of ``net`` with the profile's schedule; its wall time goes to training_timings.json."""
    t0 = time.perf_counter()
    history = tf.train_fusion_net(net, train, steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr,
                                  fusion_lr=sizes.fusion_lr, device=ch.device, amp=AMP,
                                  record_every=sizes.record_every, desc=name, **kw)
    seconds = time.perf_counter() - t0
    timings.append(dict(program=name, members=net.members, steps=sizes.steps, batch_size=sizes.batch_size,
                        seconds=seconds, ms_per_step=1000 * seconds / sizes.steps, device=str(ch.device)))
    return history


plan = tf.fusion_family_plan(SEEDS, SWEEP_SEEDS, L, sizes.lambda_alpha)
family = tf.build_fusion_family(ch.profile, plan.seed.tolist(), plan.beta.tolist())
family_history = train_program("fusion networks", family, lambda_alpha=plan.lambda_alpha.tolist())

CURVE_SIZES = [sizes.train_frames // 2**k for k in reversed(range(sizes.curve_points))]
image_plan = pd.DataFrame([dict(seed=s, train_samples=n) for n in CURVE_SIZES for s in SEEDS])
image_only = tf.build_fusion_net("ImageOnly", ch.profile, seeds=image_plan.seed.tolist())
image_subsets = [None if n == len(train) else n for n in image_plan.train_samples]  # None: the whole set, as Table 5
train_program("ImageOnly", image_only, train_samples=image_subsets, subset_seed=ch.seed)
cm_only = tf.build_fusion_net("CMOnly", ch.profile, seeds=SEEDS)
train_program("CMOnly", cm_only)
lifter = tf.build_perfect_lifter(ch.profile, SEEDS)
train_program("Perfect2DLifter", lifter)
timings = pd.DataFrame(timings)
ch.save_timings(timings, "training_timings")
display(plan.assign(beta=plan.beta.map(lambda b: "trainable" if b is None else b)))

# %% [markdown]
# ## Table 5: single streams, hard-coded fusion and trainable fusion
#
# ImageOnly and CMOnly are one data stream and the output layer; EarlyFusion is the fusion stream alone on
# concat(image, maps) (β = 0); LateFusion runs both data streams to the end and concatenates them before the output
# layer (β = L); TrainableFusion learns α and β with Eq. (4). MeanPose and Perfect2DLifter are the context rows.
# Paired differences are resampled by test clip (the clips are the independent units of the test set; every sample
# of a drawn clip comes with all seeds' networks).

# %%
TABLE5 = tf.TABLE5
CONTEXT = ("MeanPose", "Perfect2DLifter")
PAPER_RUN, FREE_RUN = f"λ = {sizes.lambda_alpha:g}", "λ = 0"
rows, samples = [], []
clip_of = np.asarray(test.clips)


def record(method, seed, errors, **extra):
    samples.append(pd.DataFrame(dict(method=method, seed=seed, sample=np.arange(len(errors["mpjpe_mm"])), clip=clip_of,
                                     **{name: e.numpy().round(2) for name, e in errors.items()})))
    rows.append(dict(method=method, seed=seed, **{name: float(e.mean()) for name, e in errors.items()},
                     steps=sizes.steps, **extra))


def column(errors, m):
    return {name: e[:, m] for name, e in errors.items()}


family_errors = tf.evaluate_members(family, test)
image_errors = tf.evaluate_members(image_only, test)
cm_errors = tf.evaluate_members(cm_only, test)
lifter_errors = tf.evaluate_members(lifter, test)
mean_pose = tf.mean_pose_errors(train, test)  # the same constant for every seed: one row per seed all the same
learned_layer = tf.fusion_layer(family)
params = {m: tf.count_parameters(tf.build_fusion_net(m, ch.profile)) for m in TABLE5}
in_table5 = plan[(plan.method != "FixedFusion") & (plan.run != FREE_RUN)]
for seed in SEEDS:
    full = image_plan.index[(image_plan.seed == seed) & (image_plan.train_samples == len(train))][0]
    record("ImageOnly", seed, column(image_errors, full), params=params["ImageOnly"], fusion_layer=np.nan,
           train_samples=len(train))
    record("CMOnly", seed, column(cm_errors, SEEDS.index(seed)), params=params["CMOnly"], fusion_layer=np.nan,
           train_samples=len(train))
    for _, r in in_table5[in_table5.seed == seed].iterrows():
        record(r.method, seed, column(family_errors, r.member), params=params[r.method],
               fusion_layer=learned_layer[r.member], train_samples=len(train))
    record("Perfect2DLifter", seed, column(lifter_errors, SEEDS.index(seed)), params=tf.count_parameters(lifter),
           fusion_layer=np.nan, train_samples=len(train))
    record("MeanPose", seed, mean_pose, params=0, fusion_layer=np.nan, train_samples=len(train))
ablation = pd.DataFrame(rows)
order = {m: k for k, m in enumerate(TABLE5 + CONTEXT)}
ablation = ablation.sort_values(["seed", "method"], key=lambda c: c.map(order) if c.name == "method" else c,
                                ignore_index=True)
ch.save_table(ablation, "ablation")
ablation_samples = pd.concat(samples, ignore_index=True)
ch.save_table(ablation_samples, "ablation_samples")
summary = ablation.groupby("method", sort=False)[["mpjpe_mm", "pa_mpjpe_mm"]].agg(["mean", "std"])
summary.columns = [f"{m}_{'sd' if a == 'std' else 'mean'}" for m, a in summary.columns]
summary = summary.reset_index().assign(seeds=len(SEEDS))
display(summary.round(1))

# paired over test samples and seeds, test clips resampled: the comparisons Table 5's claims rest on, MPJPE (mm)
err = ablation_samples.pivot_table(index=["seed", "sample"], columns="method", values="mpjpe_mm")
clips = clip_of[err.index.get_level_values("sample").to_numpy()]
FUSIONS, SINGLES = ("EarlyFusion", "LateFusion", "TrainableFusion"), ("ImageOnly", "CMOnly")
pairs = [("TrainableFusion", m) for m in TABLE5[:-1] + CONTEXT] + [(f, s) for f in FUSIONS for s in SINGLES
                                                                     if f != "TrainableFusion"]
interval_rows = []
for a, b in pairs:
    iv = stats.paired_bootstrap(err[a], err[b], clusters=clips)
    per_seed = (err[a] - err[b]).groupby(level="seed").mean()
    interval_rows.append(dict(comparison=f"{a} − {b}", diff_mm=iv.diff, ci_low_mm=iv.low, ci_high_mm=iv.high, n=iv.n,
                              clusters=iv.clusters, seed_min_mm=per_seed.min(), seed_max_mm=per_seed.max()))
intervals = pd.DataFrame(interval_rows)
ch.save_table(intervals, "table5_intervals")
display(intervals.round(2))

by_method = summary.set_index("method")
iv = intervals.set_index("comparison")
best = by_method.loc[list(TABLE5), "mpjpe_mm_mean"].idxmin()
for m in TABLE5 + CONTEXT:
    ch.glue(f"mpjpe_{m}", f"{by_method.loc[m, 'mpjpe_mm_mean']:.1f} ± {by_method.loc[m, 'mpjpe_mm_sd']:.1f}")
    ch.glue(f"pa_mpjpe_{m}", f"{by_method.loc[m, 'pa_mpjpe_mm_mean']:.1f} ± {by_method.loc[m, 'pa_mpjpe_mm_sd']:.1f}")
ch.glue("best_method", best)
ch.glue("n_seeds", len(SEEDS))
ch.glue("n_test_clips", n_test_clips)


def interval_text(comparison):
    r = iv.loc[comparison]
    side = "below 0" if r.ci_high_mm < 0 else "above 0" if r.ci_low_mm > 0 else "holding 0"
    return f"{r.diff_mm:+.1f} mm [{r.ci_low_mm:+.1f}, {r.ci_high_mm:+.1f}] ({side})"


for m in TABLE5[:-1]:
    ch.glue(f"trainable_minus_{m}", interval_text(f"TrainableFusion − {m}"))
order_rows = [f"TrainableFusion − {m}" for m in TABLE5[:-1]]
n_order = int((iv.loc[order_rows, "ci_high_mm"] < 0).sum())
ch.glue("order_reading", f"{n_order} of the 4 intervals lie below 0" + (
    ": trainable fusion is the most accurate network, as in the paper" if n_order == 4 else
    "; the paper's order (trainable fusion best) does not hold here in full"))
fusion_rows = [f"{f} − {s}" for f in FUSIONS for s in SINGLES]
n_fusion = int((iv.loc[fusion_rows, "ci_high_mm"] < 0).sum())
ch.glue("fusion_over_singles", f"{n_fusion} of the 6 fusion − single-stream intervals lie below 0"
        + (", as the paper reports" if n_fusion == 6 else ""))
image_vs_mean = by_method.loc["ImageOnly", "mpjpe_mm_mean"] / by_method.loc["MeanPose", "mpjpe_mm_mean"]
ch.glue("imageonly_over_meanpose", round(float(image_vs_mean), 2))

fig, ax = plt.subplots(figsize=(11, 4.8))
long = (ablation.melt(id_vars=["method", "seed"], value_vars=["mpjpe_mm", "pa_mpjpe_mm"], var_name="metric",
                      value_name="mm").replace({"metric": {"mpjpe_mm": "MPJPE", "pa_mpjpe_mm": "PA-MPJPE"}}))
sns.barplot(data=long, x="method", y="mm", hue="metric", order=list(TABLE5 + CONTEXT), errorbar="sd", capsize=0.1,
            ax=ax)
ax.set_ylabel("3D joint error (mm), mean ± sd over seeds")
ax.set_xlabel("")
ax.set_title(f"Table 5 analog: {best} has the lowest MPJPE on the test motions "
             f"({by_method.loc[best, 'mpjpe_mm_mean']:.1f} mm); ImageOnly is {image_vs_mean:.2f}× the mean pose\n"
             f"({len(SEEDS)} seeds, {sizes.steps:,} Adam steps each; MeanPose and Perfect2DLifter are context; "
             "synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "table5")
plt.show()

# %% [markdown]
# MPJPE on unseen test motions (mean ± sd over {glue:text}`n_seeds` seeds): ImageOnly {glue:text}`mpjpe_ImageOnly` mm,
# CMOnly {glue:text}`mpjpe_CMOnly` mm, EarlyFusion {glue:text}`mpjpe_EarlyFusion` mm, LateFusion
# {glue:text}`mpjpe_LateFusion` mm and TrainableFusion {glue:text}`mpjpe_TrainableFusion` mm (PA-MPJPE
# {glue:text}`pa_mpjpe_TrainableFusion` mm); the lowest is {glue:text}`best_method`. Context: the constant mean
# training pose scores {glue:text}`mpjpe_MeanPose` mm and the lifter from perfect 2D {glue:text}`mpjpe_Perfect2DLifter`
# mm. In the paper (Table 5, Human3.6M) the order is Image-only > CM-only > early > late > trainable.
#
# TrainableFusion minus each other network, paired on the same test samples and seeds (95 % interval, the
# {glue:text}`n_test_clips` test clips resampled): ImageOnly {glue:text}`trainable_minus_ImageOnly`, CMOnly
# {glue:text}`trainable_minus_CMOnly`, EarlyFusion {glue:text}`trainable_minus_EarlyFusion`, LateFusion
# {glue:text}`trainable_minus_LateFusion`: {glue:text}`order_reading`. Every fusion network against both single
# streams: {glue:text}`fusion_over_singles`. The scorecard's verdicts on these orderings are at the end of the page.

# %% [markdown]
# ### Does ImageOnly learn more from more samples?
#
# ImageOnly / mean pose is {glue:text}`imageonly_over_meanpose` here; on Human3.6M the paper's ImageOnly (124.1 mm) is
# about half a mean pose. Whether a larger training set would close that gap: ImageOnly trained on nested seeded
# subsets of the training samples, {glue:text}`curve_sizes` samples, each with every seed and the same number of Adam
# steps, against the mean pose of the same samples. The set is large enough once the last doubling gains less than
# 2 % of the error.

# %%
subsets = tf.member_subsets(len(train), image_subsets, len(image_plan), ch.seed)
curve_rows = []
for m, r in image_plan.iterrows():
    e = column(image_errors, m)
    poses = train.joints_3d_m[subsets[m].to(train.joints_3d_m.device)]  # the member's training poses
    floor = float(tf.mean_pose_errors(poses, test)["mpjpe_mm"].mean())
    curve_rows.append(dict(method="ImageOnly", seed=r.seed, fraction=r.train_samples / len(train),
                           train_samples=r.train_samples, steps=sizes.steps, mpjpe_mm=float(e["mpjpe_mm"].mean()),
                           pa_mpjpe_mm=float(e["pa_mpjpe_mm"].mean()), mean_pose_mpjpe_mm=floor,
                           over_mean_pose=float(e["mpjpe_mm"].mean()) / floor))
curve = pd.DataFrame(curve_rows)
ch.save_table(curve, "imageonly_training_size")
gain = tf.last_doubling_gain(curve)
curve_mean = curve.groupby("train_samples")[["mpjpe_mm", "over_mean_pose", "mean_pose_mpjpe_mm"]].agg(["mean", "std"])
ch.glue("curve_sizes", ", ".join(f"{n:,}" for n in CURVE_SIZES))
ch.glue("curve_gain", f"{100 * gain.relative_gain.mean():.1f} % (per seed {100 * gain.relative_gain.min():.1f} to "
                      f"{100 * gain.relative_gain.max():.1f} %)")
ch.glue("curve_last", f"{curve_mean[('over_mean_pose', 'mean')].iloc[-1]:.2f}")
flat = gain.relative_gain.mean() < 0.02
ch.glue("curve_reading", (
    f"flat: the set's size no longer holds ImageOnly back, which plateaus at "
    f"{curve_mean[('over_mean_pose', 'mean')].iloc[-1]:.2f} of the mean pose from about "
    f"{int(gain.from_samples.iloc[0]):,} samples" if flat else
    "still falling: a larger training set would lower ImageOnly's error further (this page does not extrapolate "
    "it; `trainable_fusion.train_frames` sets the pool)"))
fig, ax = plt.subplots(figsize=(7.2, 4.2))
x = curve_mean.index.to_numpy()
ax.errorbar(x, curve_mean[("mpjpe_mm", "mean")], yerr=curve_mean[("mpjpe_mm", "std")].fillna(0), fmt="o-",
            color="black", capsize=3, label="ImageOnly (mean ± sd over seeds)")
ax.plot(x, curve_mean[("mean_pose_mpjpe_mm", "mean")], "s--", color="grey", label="mean training pose")
ax.plot(x, 0.6 * curve_mean[("mean_pose_mpjpe_mm", "mean")], ":", color="tab:green",
        label="0.6 × mean pose (the paper's ratio, about)")
ax.set_xscale("log", base=2)
ax.set(xlabel="training samples (log₂)", ylabel="MPJPE on the test motions (mm)",
       title=f"ImageOnly / mean pose {curve_mean[('over_mean_pose', 'mean')].iloc[0]:.2f} at {x[0]:,} samples → "
             f"{curve_mean[('over_mean_pose', 'mean')].iloc[-1]:.2f} at {x[-1]:,};\nthe last doubling gains "
             f"{100 * gain.relative_gain.mean():.1f} % ({sizes.steps:,} steps at every size)")
ax.legend(fontsize=8)
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "imageonly_training_size")
plt.show()
curve_mean.round(3)

# %% [markdown]
# ImageOnly / mean pose at the largest set: {glue:text}`curve_last`. The last doubling lowers ImageOnly's MPJPE by
# {glue:text}`curve_gain`: {glue:text}`curve_reading`.

# %% [markdown]
# ## Fusion fixed at every layer, beside the learned β
#
# The paper's argument for learning β: the best fusion layer depends on the problem, and training one network per β
# to find it is costly. Where the profile asks for it (`trainable_fusion.sweep_seeds`, the line below the figure
# says), the fusion program pays that cost for every β in 0..L (β = 0 and β = L are the early and late fusion networks
# above) with the sweep's seeds, and we mark where trainable fusion's β ended.

# %%
sweep_rows = []
fixed = plan[plan.method.isin(["EarlyFusion", "LateFusion", "FixedFusion"]) & plan.seed.isin(SWEEP_SEEDS)]
for _, r in fixed.iterrows():
    e = column(family_errors, r.member)
    built = tf.build_fusion_net("FixedFusion", ch.profile, beta=int(r.beta))  # the pruned form: its parameters
    sweep_rows.append(dict(beta=int(r.beta), seed=r.seed, mpjpe_mm=float(e["mpjpe_mm"].mean()),
                           pa_mpjpe_mm=float(e["pa_mpjpe_mm"].mean()), params=tf.count_parameters(built)))
sweep = pd.DataFrame(sweep_rows, columns=["beta", "seed", "mpjpe_mm", "pa_mpjpe_mm", "params"])
sweep = sweep.sort_values(["beta", "seed"], ignore_index=True)
if len(sweep):
    ch.save_table(sweep, "beta_sweep")
trainable = plan[(plan.method == "TrainableFusion") & (plan.run == PAPER_RUN)]
learned = np.array([float(family.beta[m].detach()) for m in trainable.member])
ch.glue("learned_beta", f"{learned.mean():.2f} ± {learned.std(ddof=1) if len(learned) > 1 else 0.0:.2f}")
if len(sweep):
    sweep_mean = sweep.groupby("beta")[["mpjpe_mm", "pa_mpjpe_mm"]].agg(["mean", "std"])
    best_beta = int(sweep_mean[("mpjpe_mm", "mean")].idxmin())
    ch.glue("best_fixed_beta", best_beta)
    ch.glue("sweep_reading", f"the best fixed fusion layer (lowest MPJPE, {len(SWEEP_SEEDS)} seed(s)) is "
            f"β = {best_beta} ({sweep_mean.loc[best_beta, ('mpjpe_mm', 'mean')]:.1f} mm)")
    trainable_mm = ablation[ablation.method == "TrainableFusion"].mpjpe_mm
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    betas = sweep_mean.index.to_numpy()
    for col, marker, label in (("mpjpe_mm", "o-", "MPJPE"), ("pa_mpjpe_mm", "s--", "PA-MPJPE")):
        ax.errorbar(betas, sweep_mean[(col, "mean")], yerr=sweep_mean[(col, "std")].fillna(0), fmt=marker, capsize=3,
                    label=f"fusion fixed at β ({label})")
    ax.axhspan(trainable_mm.mean() - trainable_mm.std(), trainable_mm.mean() + trainable_mm.std(), color="crimson",
               alpha=0.15, label="trainable fusion MPJPE (mean ± sd)")
    ax.axvline(learned.mean(), color="crimson", ls=":", label=f"learned β = {learned.mean():.2f} (mean)")
    ax.set(xlabel="fusion layer β", ylabel="3D joint error (mm)",
           title=f"Best fixed fusion layer: β = {best_beta}; trainable fusion ends at β = {learned.mean():.2f}\n"
                 f"(sweep: {len(SWEEP_SEEDS)} seed(s); trainable: {len(SEEDS)} seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    ch.save_figure(fig, "beta_sweep")
    plt.show()
else:
    ch.glue("best_fixed_beta", "not measured")
    ch.glue("sweep_reading", "the sweep is off at this profile (`trainable_fusion.sweep_seeds` = 0)")

# %% [markdown]
# Sweep: {glue:text}`sweep_reading`; trainable fusion ended at β = {glue:text}`learned_beta` (mean ± sd over seeds),
# starting from β = L/2.

# %% [markdown]
# ## Fig. 5: α, β and the fusion weights over the whole training, with and without λ/α²
#
# Every seed's trainable network with λ/α² (the paper's Eq. 4) and its control with λ = 0 (Eq. 2 alone), from the same
# start and on the same minibatches, at the paper's rate. Both terms of Eq. (4) are drawn: λ was chosen so that they
# are comparable at the start. The last quarter of the training tells whether α and β have settled.

# %%
runs = plan[plan.method == "TrainableFusion"]
hist = family_history.merge(runs[["member", "run"]], on="member")
params_long = hist[["run", "seed", "step", "alpha", "beta", "data_loss", "penalty"]]
params_long = params_long.sort_values(["run", "seed", "step"], key=lambda c: c.map({PAPER_RUN: 0, FREE_RUN: 1})
                                      if c.name == "run" else c, ignore_index=True)
ch.save_table(params_long, "fusion_parameters")
weights_long = hist.melt(id_vars=["run", "seed", "step"], value_vars=[f"w_{l}" for l in range(1, L + 1)],
                         var_name="layer", value_name="w")
weights_long["layer"] = weights_long["layer"].str[2:].astype(int)
ch.save_table(weights_long.sort_values(["run", "seed", "step", "layer"], ignore_index=True), "fusion_weights")

T = params_long.step.max()
quarter = params_long.step[params_long.step <= 0.75 * T].max()  # the last record before the last quarter
settle_rows = []
for (run, s), g in params_long.groupby(["run", "seed"]):
    g = g.set_index("step")
    settle_rows.append(dict(run=run, seed=s, alpha_start=g.alpha.iloc[0], alpha_end=g.alpha.iloc[-1],
                            alpha_last_quarter=g.alpha.iloc[-1] - g.alpha[quarter], beta_start=g.beta.iloc[0],
                            beta_end=g.beta.iloc[-1], beta_last_quarter=g.beta.iloc[-1] - g.beta[quarter],
                            data_loss_start=g.data_loss.iloc[0], data_loss_end=g.data_loss.iloc[-1],
                            penalty_start=g.penalty.iloc[0], penalty_end=g.penalty.iloc[-1]))
settle = pd.DataFrame(settle_rows)
display(settle.round(3))


def span(run, col, fmt=".2f"):
    v = settle[settle.run == run][col]
    return f"{v.mean():{fmt}} (seeds {v.min():{fmt}} to {v.max():{fmt}})"


for key, run in (("with", PAPER_RUN), ("without", FREE_RUN)):
    for col in ("alpha_end", "beta_end", "alpha_last_quarter", "beta_last_quarter", "data_loss_end"):
        ch.glue(f"{col}_{key}", span(run, col, "+.3f" if "quarter" in col else ".2f"))
ch.glue("data_loss_start", f"{settle.data_loss_start.mean():.1f}")
ch.glue("penalty_start", f"{settle[settle.run == PAPER_RUN].penalty_start.mean():.1f}")
ch.glue("penalty_end", span(PAPER_RUN, "penalty_end", ".3g"))
ch.glue("train_steps", f"{T:,}")
ch.glue("max_move", f"{sizes.fusion_lr * (T - 1):.2f}")
paper = settle[settle.run == PAPER_RUN].set_index("seed")  # seed-indexed: the two runs compare seed by seed
free = settle[settle.run == FREE_RUN].set_index("seed")
alpha_rise, free_rise = (paper.alpha_end - paper.alpha_start), (free.alpha_end - free.alpha_start)
ch.glue("alpha_reading", (
    "α rises in every seed with the penalty" if (alpha_rise > 0).all() else
    "α does not rise in every seed with the penalty") + (
    "; in the λ = 0 control it falls in every seed" if (free_rise < 0).all() else
    "; in the λ = 0 control it rises less in every seed" if (free_rise < alpha_rise).all() else
    "; in the λ = 0 control it rises as much or more in some seed"))
ch.glue("alpha_control_reading", (
    "The control, same start and minibatches without λ/α², shows the data term alone "
    + ("lowering α: the rise is the penalty's doing" if (free_rise < 0).all() else
       "raising α less: most of the rise is the penalty's doing" if (free_rise < 0.5 * alpha_rise).all() else
       "raising α too: the data term also sharpens the fusion here")))
alpha_settled = (paper.alpha_last_quarter.abs() < 0.05 * alpha_rise.abs()).all()
ch.glue("alpha_settle", (
    "it has settled (less than 5 % of its rise falls in the last quarter): there the data term's pull on α balances "
    "the penalty's push" if alpha_settled else
    f"it is still rising (Adam at full rate would add {sizes.fusion_lr * 0.25 * (T - 1):.2f} over that quarter): the "
    "penalty's gradient, −2λ/α³, points up at every α, and α stops only where the data term's gradient balances it, "
    "which this training has not reached"))
beta_move = paper.beta_end - paper.beta_start
quarter_move = sizes.fusion_lr * (T - quarter)  # the most Adam moves a parameter over the last quarter
ch.glue("beta_reading", (
    f"β moves by {beta_move.mean():+.2f} layers (seeds {beta_move.min():+.2f} to {beta_move.max():+.2f}), "
    + ("later in every seed" if (beta_move > 0).all() else "earlier in every seed" if (beta_move < 0).all() else
       "not the same way in every seed")
    + f"; over the last quarter {paper.beta_last_quarter.mean():+.3f} layers, " + (
        f"too short a quarter to tell whether it settled (Adam could move it by at most {quarter_move:.2f})"
        if quarter_move < 0.5 else "settled (less than 0.1 layer in every seed)"
        if (paper.beta_last_quarter.abs() < 0.1).all() else "still moving")))
if len(sweep):
    gap = paper.beta_end.mean() - best_beta
    ch.glue("beta_vs_sweep", (
        f"The control for where the data would fuse, the sweep of fixed β, is best at β = {best_beta}: the learned β "
        + (f"ends within a layer of it ({gap:+.2f})" if abs(gap) <= 1 else
           f"ends {abs(gap):.2f} layers {'above' if gap > 0 else 'below'} it")
        + f" (the sweep has {len(SWEEP_SEEDS)} seed(s))"))
else:
    ch.glue("beta_vs_sweep", "The sweep of fixed β, the control for where the data would fuse, is off at this profile.")
ch.glue("beta_free_reading", f"{(free.beta_end - free.beta_start).mean():+.2f}")

fig, axs = plt.subplots(2, 3, figsize=(15, 8.5))
colours = {PAPER_RUN: "tab:blue", FREE_RUN: "tab:orange"}
for (run, s), g in params_long.groupby(["run", "seed"]):
    kw = dict(color=colours[run], lw=1.2, alpha=0.85, label=f"{run}" if s == SEEDS[0] else None)
    axs[0, 0].plot(g.step, g.alpha, **kw)
    axs[0, 1].plot(g.step, g.beta, **kw)
    axs[0, 2].plot(g.step, g.data_loss, **kw)
    if run == PAPER_RUN:
        axs[0, 2].plot(g.step, g.penalty, color="tab:green", lw=1.2, ls="--",
                       label="λ/α² (λ run)" if s == SEEDS[0] else None)
axs[0, 0].set(ylabel="α (the slope is α²)", title="α: how sharp the fusion step is")
axs[0, 1].set(ylabel="β (fusion layer)", title="β: where the streams fuse", ylim=(-0.2, L + 0.2))
axs[0, 2].set(ylabel="standardised units²", title="the two terms of Eq. (4)", yscale="log")
for ax in axs[0]:
    ax.legend(fontsize=8)
for ax, run in zip(axs[1, :2], (PAPER_RUN, FREE_RUN)):
    g = hist[(hist.run == run) & (hist.seed == SEEDS[0])]
    w = g[[f"w_{l}" for l in range(1, L + 1)]].to_numpy().T
    im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower",
                   extent=(g.step.iloc[0], g.step.iloc[-1], 0.5, L + 0.5))
    ax.set(ylabel="layer l", title=f"{run}: fusion weights w_l (seed {SEEDS[0]})")
    fig.colorbar(im, ax=ax, label="w_l (1: fusion stream, 0: data streams)")
final_w = hist[hist.step == T]
for run, g in final_w.groupby("run"):
    w = g[[f"w_{l}" for l in range(1, L + 1)]].to_numpy()
    axs[1, 2].plot(range(1, L + 1), w.mean(0), "o-", color=colours[run], label=f"{run} (mean over seeds)")
axs[1, 2].set(xlabel="layer l", ylabel="w_l at the last step", title="the weight vector at the end", ylim=(-0.05, 1.05))
axs[1, 2].legend(fontsize=8)
for ax in list(axs[0]) + list(axs[1, :2]):
    ax.set_xlabel("training step")
fig.suptitle(f"Fig. 5 analog: with λ/α² α goes 0.1 → {paper.alpha_end.mean():.2f} and β {paper.beta_start.mean():.1f} "
             f"→ {paper.beta_end.mean():.2f}; with λ = 0 α ends at {free.alpha_end.mean():.2f} "
             f"({len(SEEDS)} seeds, {T:,} steps at Adam {sizes.fusion_lr:g}; synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "fig5_fusion_parameters")
plt.show()

# %% [markdown]
# Over {glue:text}`train_steps` steps at the paper's rate (so α and β could move by up to about
# {glue:text}`max_move`): {glue:text}`alpha_reading`. With the penalty α ends at {glue:text}`alpha_end_with`, in the
# λ = 0 control at {glue:text}`alpha_end_without`. {glue:text}`alpha_control_reading`. Over the last quarter α moves
# {glue:text}`alpha_last_quarter_with`: {glue:text}`alpha_settle`. The two terms of Eq. (4) start comparable, data term
# {glue:text}`data_loss_start` and λ/α² {glue:text}`penalty_start` (the paper's rule for λ); at the end the data term
# is {glue:text}`data_loss_end_with` and λ/α² {glue:text}`penalty_end`.
#
# β: with the penalty {glue:text}`beta_reading`; it ends at {glue:text}`beta_end_with` (λ = 0 control: it moves
# {glue:text}`beta_free_reading` layers and ends at {glue:text}`beta_end_without`). {glue:text}`beta_vs_sweep`. The
# paper reports α rising (its regulariser at work) and, typically, β rising: fusion moving to later layers.

# %% [markdown]
# ## Fig. 7: are the two streams' features decorrelated?
#
# The squared Pearson correlation R² between every pair of channels of the image stream and of the confidence-map
# stream at the last convolutional layer of each seed's trained trainable-fusion network (λ/α² run), over the first
# {glue:text}`n_corr` test images (the paper: 128; each channel a variable, every image and position a sample). The paper finds the cross-stream blocks
# nearly empty. The null: the same architecture and seeds at their initial weights (untrained), on the same images.

# %%
n_corr = ch.glue("n_corr", min(128, len(test)))
members = trainable.member.tolist()
r2_trained = tf.stream_correlation_r2(tf.select_members(family, members), test.images[:n_corr],
                                      test.confidence_maps[:n_corr]).cpu()
untrained = tf.build_fusion_family(ch.profile, trainable.seed.tolist(), [None] * len(members)).to(ch.device)
r2_untrained = tf.stream_correlation_r2(untrained, test.images[:n_corr], test.confidence_maps[:n_corr]).cpu()
blocks = pd.DataFrame([dict(network=network, seed=s, block=block, mean_r2=value)
                       for network, r2 in (("trained", r2_trained), ("untrained", r2_untrained))
                       for s, matrix in zip(trainable.seed, r2)
                       for block, value in tf.correlation_blocks(matrix).items()])
ch.save_table(blocks, "stream_correlation")
block_mean = blocks.pivot_table(index="block", columns="network", values="mean_r2", aggfunc=["mean", "std"])
display(block_mean.round(4))
for network in ("trained", "untrained"):
    for block in tf.CORRELATION_BLOCKS:
        v = blocks[(blocks.network == network) & (blocks.block == block)].mean_r2
        ch.glue(f"r2_{network}_{block.replace('-', '_')}", f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}")
cross = blocks[blocks.block == "image-cm"].pivot_table(index="seed", columns="network", values="mean_r2")
ch.glue("decorrelation_reading", (
    "lower than the untrained network's in every seed: training decorrelates the streams"
    if (cross.trained < cross.untrained).all() else
    "higher than the untrained network's in every seed: training correlates the streams more than they start"
    if (cross.trained > cross.untrained).all() else "not on the same side of the untrained network's in every seed"))

C = r2_trained.shape[1] // 2
fig, axs = plt.subplots(1, 2, figsize=(12, 5.4))
for ax, (name, r2) in zip(axs, (("trained", r2_trained[0]), ("untrained (the null)", r2_untrained[0]))):
    sns.heatmap(r2.numpy(), vmin=0, vmax=1, cmap="viridis", square=True, ax=ax, cbar_kws=dict(label="R²"),
                xticklabels=False, yticklabels=False)
    ax.axhline(C, color="w", lw=1)
    ax.axvline(C, color="w", lw=1)
    ax.set_xlabel(f"channel: image stream (first {C}) | confidence-map stream", fontsize=10)
    ax.set_ylabel(f"channel: image stream (first {C}) | confidence-map stream", fontsize=10)
    b = tf.correlation_blocks(r2)
    ax.set_title(f"{name}, seed {SEEDS[0]}: cross-stream R² {b['image-cm']:.3f}, within "
                 f"{b['image-image']:.3f} / {b['cm-cm']:.3f}", fontsize=9)
fig.suptitle(f"Fig. 7 analog: mean cross-stream R² {cross.trained.mean():.3f} trained against "
             f"{cross.untrained.mean():.3f} untrained ({len(cross)} seeds; synthetic)")
fig.tight_layout()
ch.save_figure(fig, "fig7_stream_correlation")
plt.show()

# %% [markdown]
# Mean R² between distinct channels (mean ± sd over seeds), trained: {glue:text}`r2_trained_image_image` within the
# image stream, {glue:text}`r2_trained_cm_cm` within the confidence-map stream and {glue:text}`r2_trained_image_cm`
# across the two; untrained (the null): {glue:text}`r2_untrained_image_image`, {glue:text}`r2_untrained_cm_cm` and
# {glue:text}`r2_untrained_image_cm`. The trained cross-stream R² is {glue:text}`decorrelation_reading`.

# %% [markdown]
# ## Pruning after training
#
# A network with binary weights w can drop every fusion layer with w_l ≈ 0 and every data-stream layer with w_l ≈ 1
# (Sec. 3.1): what remains is the network fused at β (the number of layers with w_l < ½). When the weights are not
# binary, pruning rounds them to 0/1 and changes the function; we measure by how much, for both trainable runs.
# Inference time is per image, over one batch of test images, on this page's device (wall-clock times differ run to
# run, so they are kept out of the CSV tables and the figure: `pruning_timings.json`).

# %%
prune_rows, timing_rows = [], []
batch = min(len(test), sizes.batch_size)
im_b, cm_b = test.images[:batch].float(), test.confidence_maps[:batch].float()
for _, r in runs.iterrows():
    w = family.fusion_weights()[r.member].detach().cpu()
    pruned = tf.prune_fusion_net(family, r.member)
    deviation = float((w - tf.indicator_fusion_weights(pruned.fixed_beta, L)).abs().max())
    soft = {f"w_{l}": float(w[l - 1]) for l in range(1, L + 1)}  # the soft weights the pruning rounds to 0/1
    unpruned_e = column(family_errors, r.member)
    pruned_e = {k: v[:, 0] for k, v in tf.evaluate_members(pruned, test).items()}
    for kind, e, n_params in (("unpruned", unpruned_e, tf.count_parameters(family)),
                              ("pruned", pruned_e, tf.count_parameters(pruned))):
        prune_rows.append(dict(run=r.run, seed=r.seed, network=kind, fusion_layer=pruned.fixed_beta,
                               max_w_rounding=deviation, params=n_params, mpjpe_mm=float(e["mpjpe_mm"].mean()),
                               pa_mpjpe_mm=float(e["pa_mpjpe_mm"].mean()), **soft))
    if r.seed == SEEDS[0]:
        one = tf.select_members(family, [r.member])
        for kind, model in (("unpruned", one), ("pruned", pruned)):
            timing_rows.append(dict(run=r.run, network=kind, device=str(ch.device), batch=batch,
                                    ms_per_image=tf.inference_ms_per_image(model, im_b, cm_b, repeats=5)))
pruning = pd.DataFrame(prune_rows)
timings_prune = pd.DataFrame(timing_rows)
ch.save_table(pruning, "pruning")
ch.save_timings(timings_prune, "pruning_timings")
prune_summary = (pruning.groupby(["run", "network"], sort=False)
                 .agg(fusion_layer=("fusion_layer", "mean"), max_w_rounding=("max_w_rounding", "mean"),
                      params=("params", "mean"), mpjpe_mm=("mpjpe_mm", "mean"), mpjpe_mm_sd=("mpjpe_mm", "std")))
display(prune_summary.round(3))
display(timings_prune.round(4))

main, control = prune_summary.loc[PAPER_RUN], prune_summary.loc[FREE_RUN]
main_t = timings_prune[timings_prune["run"] == PAPER_RUN].set_index("network")
ch.glue("pruned_params", f"{main.loc['pruned', 'params']:,.0f}")
ch.glue("unpruned_params", f"{main.loc['unpruned', 'params']:,.0f}")
ch.glue("param_ratio", round(float(main.loc["unpruned", "params"] / main.loc["pruned", "params"]), 2))
for key, s in (("", main), ("free_", control)):
    ch.glue(f"{key}pruned_mpjpe", round(float(s.loc["pruned", "mpjpe_mm"]), 1))
    ch.glue(f"{key}unpruned_mpjpe", round(float(s.loc["unpruned", "mpjpe_mm"]), 1))
    ch.glue(f"{key}max_w_rounding", round(float(s.loc["pruned", "max_w_rounding"]), 3))
cost = {run: float(s.loc["pruned", "mpjpe_mm"] - s.loc["unpruned", "mpjpe_mm"]) for run, s in
        ((PAPER_RUN, main), (FREE_RUN, control))}
sharper = main.loc["pruned", "max_w_rounding"] < control.loc["pruned", "max_w_rounding"] - 0.05
ch.glue("prune_reading", f"pruning costs {cost[PAPER_RUN]:+.1f} mm of MPJPE with the penalty against "
                         f"{cost[FREE_RUN]:+.1f} mm in the λ = 0 control" + (
    ": the penalty's sharper fusion leaves less to round and less to lose"
    if sharper and cost[PAPER_RUN] < cost[FREE_RUN] - 1.0 else
    ", within 1 mm of each other" if abs(cost[PAPER_RUN] - cost[FREE_RUN]) <= 1.0 else ""))
ch.glue("speedup", round(float(main_t.loc["unpruned", "ms_per_image"] / main_t.loc["pruned", "ms_per_image"]), 2))

fig, axs = plt.subplots(1, 2, figsize=(12, 4))
for ax, (col, label) in zip(axs, (("params", "parameters"), ("mpjpe_mm", "MPJPE on test motions (mm), mean ± sd"))):
    sns.barplot(data=pruning, x="run", y=col, hue="network", errorbar="sd", capsize=0.1, ax=ax)
    ax.set_ylabel(label)
    ax.set_xlabel("")
fig.suptitle(f"Pruning rounds the learned weights (by up to {main.loc['pruned', 'max_w_rounding']:.2f} with λ/α²): "
             f"MPJPE {main.loc['unpruned', 'mpjpe_mm']:.1f} → {main.loc['pruned', 'mpjpe_mm']:.1f} mm "
             f"(λ = 0: {control.loc['unpruned', 'mpjpe_mm']:.1f} → {control.loc['pruned', 'mpjpe_mm']:.1f} mm)")
fig.tight_layout()
ch.save_figure(fig, "pruning")
plt.show()

# %% [markdown]
# With λ/α² the pruned network (fusion at β = its number of layers with w_l < ½) has {glue:text}`pruned_params`
# parameters against {glue:text}`unpruned_params` ({glue:text}`param_ratio`× fewer) and runs {glue:text}`speedup`×
# faster per image here. Rounding the learned weights (every seed's w_l are in `pruning.csv`) to 0/1 moved them by up
# to {glue:text}`max_w_rounding` (mean over seeds), and the MPJPE from {glue:text}`unpruned_mpjpe` mm to
# {glue:text}`pruned_mpjpe` mm. The λ = 0 control: rounding by up to {glue:text}`free_max_w_rounding`, MPJPE
# {glue:text}`free_unpruned_mpjpe` → {glue:text}`free_pruned_mpjpe` mm: {glue:text}`prune_reading`. (With binary
# weights the two networks compute the same function, a test of the book checks it.)

# %% [markdown]
# ## Claims of this chapter
#
# The scorecard's rows that this chapter decides (chapter 7 collects every chapter's), each decided by its paired
# interval against 0 and the margin stated with the claim. For each claim that does not hold, the evidence, written
# from the numbers by `mfcore.claims.claim_paragraph`.

# %%
from mfcore import claims

chapter_claims, chapter_claims_text = claims.claims_section({
    claims.ABLATION_SAMPLES: ablation_samples,
    **{c.evidence: pd.read_csv(ch.out / c.evidence.split("/")[1]) for c in claims.CLAIMS
       if c.evidence.startswith("06_") and c.evidence != claims.ABLATION_SAMPLES}})
display(chapter_claims[[c for c in ("claim_id", "claim", "our_value", "holds", "ci_low", "ci_high", "n", "unit")
                        if c in chapter_claims.columns]].round(2))
display(Markdown(chapter_claims_text))

# %% [markdown]
# ## Summary
#
# * Table 5 analog ({glue:text}`n_seeds` seeds): TrainableFusion {glue:text}`mpjpe_TrainableFusion` mm, EarlyFusion
#   {glue:text}`mpjpe_EarlyFusion` mm, LateFusion {glue:text}`mpjpe_LateFusion` mm, CMOnly {glue:text}`mpjpe_CMOnly` mm,
#   ImageOnly {glue:text}`mpjpe_ImageOnly` mm; the lowest is {glue:text}`best_method`; {glue:text}`order_reading`.
#   Context: MeanPose {glue:text}`mpjpe_MeanPose` mm, Perfect2DLifter {glue:text}`mpjpe_Perfect2DLifter` mm.
# * ImageOnly / MeanPose = {glue:text}`imageonly_over_meanpose`; its last doubling of the training set gains
#   {glue:text}`curve_gain`.
# * Fusion fixed at every β: {glue:text}`sweep_reading`; the learned β is {glue:text}`learned_beta`.
# * λ/α² raises α to {glue:text}`alpha_end_with` in {glue:text}`train_steps` steps at the paper's rate (λ = 0 control:
#   {glue:text}`alpha_end_without`); β ends at {glue:text}`beta_end_with`.
# * Cross-stream R² {glue:text}`r2_trained_image_cm` trained against {glue:text}`r2_untrained_image_cm` untrained.
# * Pruning: {glue:text}`param_ratio`× fewer parameters, MPJPE {glue:text}`unpruned_mpjpe` → {glue:text}`pruned_mpjpe`
#   mm.
#
# All data are synthetic and the networks small; these numbers test the paper's mechanisms, not its results.

# %%
ch.finish();
