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
# **Choices** (details in `mfcore/trainable_fusion.py`): we use the slope α² in Eq. (3), as the authors' released code,
# so the sharpness can never turn negative and the weights always form an increasing step; the penalty stays λ/α².
# The image enters as a lossless space-to-depth rearrangement (3·4² channels at the heatmaps' resolution) so that image
# and confidence maps have the same size, as Eq. (1) requires. Each stream has L − 2 convolutional blocks and 2 fully
# connected layers; the fusion stream has the channels of both streams and the output layer L + 1. α starts at 0.1,
# β at L/2; Adam at 10⁻³ for the network, as the paper. One deliberate departure: α and β get their own Adam rate
# (`fusion_lr` of the profile). Adam moves a parameter by about its rate per step, and the paper trains for hundreds
# of times more steps than we can; at 10⁻³ our α would hardly leave 0.1 and the fusion would stay soft. Setting
# `fusion_lr` equal to `lr` in the profile gives the paper's setting exactly.

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
from mfcore import trainable_fusion as tf

ch = chapter.open_chapter("06_trainable_fusion", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.trainable_fusion
L = sizes.layers
sns.set_theme(style="whitegrid", context="notebook")

train = tf.make_monocular_samples(ch.profile, "train", sizes.train_frames, ch.seed, ch.device)
test = tf.make_monocular_samples(ch.profile, "test", sizes.test_frames, ch.seed, ch.device)
display(Markdown(
    f"{len(train)} training samples (training motions) and {len(test)} test samples (unseen test motions), "
    f"single views of the rigs {', '.join(tf.MONOCULAR_RIGS)}; images {ch.profile.studio.image_px}² px, confidence "
    f"maps {ch.profile.studio.heatmap_px}² px; L = {L} layers, {sizes.channels} channels per data stream, "
    f"{sizes.epochs} epochs of {sizes.batch_size}-sample minibatches, Adam {sizes.lr:g} (α, β: {sizes.fusion_lr:g}), "
    f"λ = {sizes.lambda_alpha}."))

# %%
fig, axs = plt.subplots(2, 4, figsize=(12, 6.2))
for k, ax in enumerate(axs.T):
    ax[0].imshow(test.images[k].permute(1, 2, 0).cpu().numpy())
    ax[0].set_title(f"test image {k}", fontsize=10)
    ax[1].imshow(test.confidence_maps[k].max(dim=0).values.cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    ax[1].set_title("max over the 17 confidence maps", fontsize=10)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
fig.suptitle("The two inputs of every network: the image and the 2D backbone's confidence maps (synthetic studio)")
fig.tight_layout()
ch.save_figure(fig, "inputs")
plt.show()

# %% [markdown]
# ## Table 5: single streams, hard-coded fusion and trainable fusion
#
# Every network is trained with the same seed, so layers they share start from the same weights and see the same
# minibatches. ImageOnly and CMOnly are one data stream and the output layer; EarlyFusion is the fusion stream alone
# on concat(image, maps) (β = 0); LateFusion runs both data streams to the end and concatenates them before the
# output layer (β = L); TrainableFusion learns α and β with Eq. (4).

# %%
TABLE5 = ("ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion")
nets, histories, rows, samples = {}, {}, [], []
for method in TABLE5:
    net, hist = tf.fit_fusion_method(method, train, ch.profile, ch.seed, ch.device)
    nets[method], histories[method] = net, hist
    errors = tf.evaluate_fusion_net_samples(net, test)  # per test sample: the units of the paired comparisons
    samples.append(pd.DataFrame(dict(method=method, sample=np.arange(len(errors["mpjpe_mm"])),
                                     **{name: e.numpy().round(2) for name, e in errors.items()})))
    rows.append(dict(method=method, **{name: float(e.mean()) for name, e in errors.items()},
                     params=tf.count_parameters(net),
                     fusion_layer=tf.fusion_layer(net) if method not in ("ImageOnly", "CMOnly") else np.nan))
ablation = pd.DataFrame(rows)
ch.save_table(ablation, "ablation")
ablation_samples = pd.concat(samples, ignore_index=True)
ch.save_table(ablation_samples, "ablation_samples")
by_method = {r["method"]: r for r in rows}  # each network's row, by name
display(ablation.round(2))

best = ablation.loc[ablation["mpjpe_mm"].idxmin(), "method"]
for r in rows:
    ch.glue(f"mpjpe_{r['method']}", round(r["mpjpe_mm"], 1))
    ch.glue(f"pa_mpjpe_{r['method']}", round(r["pa_mpjpe_mm"], 1))
ch.glue("best_method", best)
ch.glue("fusion_beats_single_streams",
        "yes" if ablation.set_index("method").loc[["EarlyFusion", "LateFusion", "TrainableFusion"], "mpjpe_mm"].max()
        < ablation.set_index("method").loc[["ImageOnly", "CMOnly"], "mpjpe_mm"].min() else "no")

fig, ax = plt.subplots(figsize=(10, 4.8))
long = (ablation.melt(id_vars="method", value_vars=["mpjpe_mm", "pa_mpjpe_mm"], var_name="metric", value_name="mm")
        .replace({"metric": {"mpjpe_mm": "MPJPE", "pa_mpjpe_mm": "PA-MPJPE"}}))
plots.grouped_bars(ax, long, "method", "metric", "mm", fmt="{:.1f}", rotation=0)
ax.set_ylabel("3D joint error (mm)")
ax.set_xlabel("")
ax.legend()
ax.set_title(f"Table 5 analog: {best} has the lowest MPJPE on the test motions\n"
             f"({by_method[best]['mpjpe_mm']:.1f} mm; synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "table5")
plt.show()

# %% [markdown]
# MPJPE on unseen test motions: ImageOnly {glue:text}`mpjpe_ImageOnly` mm, CMOnly {glue:text}`mpjpe_CMOnly` mm,
# EarlyFusion {glue:text}`mpjpe_EarlyFusion` mm, LateFusion {glue:text}`mpjpe_LateFusion` mm and TrainableFusion
# {glue:text}`mpjpe_TrainableFusion` mm (PA-MPJPE {glue:text}`pa_mpjpe_TrainableFusion` mm). The lowest is
# {glue:text}`best_method`; every fusion network beats both single streams: {glue:text}`fusion_beats_single_streams`.
# In the paper (Table 5, Human3.6M) the order is Image-only > CM-only > early > late > trainable.

# %% [markdown]
# ## Fusion fixed at every layer, beside the learned β
#
# The paper's argument for learning β: the best fusion layer depends on the problem, and training one network per β
# to find it is costly. Here we pay that cost once, for every β in 0..L (β = 0 and β = L are the early and late
# fusion networks above), and mark where trainable fusion's β ended.

# %%
sweep_rows = [dict(beta=0, **{k: by_method["EarlyFusion"][k] for k in ("mpjpe_mm", "pa_mpjpe_mm", "params")})]
for b in range(1, L):
    net, _ = tf.fit_fusion_method("FixedFusion", train, ch.profile, ch.seed, ch.device, beta=b)
    sweep_rows.append(dict(beta=b, **tf.evaluate_fusion_net(net, test), params=tf.count_parameters(net)))
sweep_rows.append(dict(beta=L, **{k: by_method["LateFusion"][k] for k in ("mpjpe_mm", "pa_mpjpe_mm", "params")}))
sweep = pd.DataFrame(sweep_rows)
ch.save_table(sweep, "beta_sweep")
learned_beta = float(nets["TrainableFusion"].beta.detach())
best_beta = int(sweep.loc[sweep["mpjpe_mm"].idxmin(), "beta"])
ch.glue("learned_beta", round(learned_beta, 2))
ch.glue("best_fixed_beta", best_beta)
ch.glue("best_fixed_mpjpe", round(float(sweep["mpjpe_mm"].min()), 1))

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(sweep["beta"], sweep["mpjpe_mm"], "o-", label="fusion fixed at β (MPJPE)")
ax.plot(sweep["beta"], sweep["pa_mpjpe_mm"], "s--", label="fusion fixed at β (PA-MPJPE)")
ax.axhline(by_method["TrainableFusion"]["mpjpe_mm"], color="crimson", lw=1,
           label="trainable fusion (MPJPE)")
ax.axvline(learned_beta, color="crimson", ls=":", label=f"learned β = {learned_beta:.2f}")
ax.set_xlabel("fusion layer β")
ax.set_ylabel("3D joint error (mm)")
ax.set_title(f"Best fixed fusion layer: β = {best_beta}; trainable fusion ends at β = {learned_beta:.2f}")
ax.legend(fontsize=8)
fig.tight_layout()
ch.save_figure(fig, "beta_sweep")
plt.show()

# %% [markdown]
# The best fixed fusion layer is β = {glue:text}`best_fixed_beta` ({glue:text}`best_fixed_mpjpe` mm); trainable fusion
# ended at β = {glue:text}`learned_beta`, starting from β = L/2.

# %% [markdown]
# ## Fig. 5: α, β and the fusion weights during training, with and without λ/α²
#
# The trainable network of Table 5 used λ = `lambda_alpha` of the profile. We train it again with λ = 0 (Eq. 2 only)
# from the same start. λ/α², whose gradient on α dominates the data term's, raises α steadily (Adam moves it by
# about `fusion_lr` per step while that gradient dominates); without it α follows the data term alone.

# %%
net_free, hist_free = tf.fit_fusion_method("TrainableFusion", train, ch.profile, ch.seed, ch.device, lambda_alpha=0.0)
runs = {f"λ = {sizes.lambda_alpha:g}": histories["TrainableFusion"], "λ = 0": hist_free}
params_long = pd.concat([h[["step", "alpha", "beta", "data_loss", "penalty"]].assign(run=name)
                         for name, h in runs.items()], ignore_index=True)
weights_long = pd.concat([h.melt(id_vars="step", value_vars=[f"w_{l}" for l in range(1, L + 1)], var_name="layer",
                                 value_name="w").assign(run=name) for name, h in runs.items()], ignore_index=True)
weights_long["layer"] = weights_long["layer"].str[2:].astype(int)
ch.save_table(params_long[["run", "step", "alpha", "beta", "data_loss", "penalty"]], "fusion_parameters")
ch.save_table(weights_long[["run", "step", "layer", "w"]], "fusion_weights")

final = {name: h.iloc[-1] for name, h in runs.items()}
ch.glue("alpha_final_with", round(float(final[f"λ = {sizes.lambda_alpha:g}"]["alpha"]), 3))
ch.glue("alpha_final_without", round(float(final["λ = 0"]["alpha"]), 3))
ch.glue("beta_final_with", round(float(final[f"λ = {sizes.lambda_alpha:g}"]["beta"]), 2))
ch.glue("beta_final_without", round(float(final["λ = 0"]["beta"]), 2))
ch.glue("train_steps", int(len(hist_free)))
start = {name: h.iloc[0] for name, h in runs.items()}


def direction(name, col):
    return "rose" if final[name][col] > start[name][col] else "fell"


ch.glue("alpha_direction_with", direction(f"λ = {sizes.lambda_alpha:g}", "alpha"))
ch.glue("alpha_direction_without", direction("λ = 0", "alpha"))
ch.glue("beta_direction_with", direction(f"λ = {sizes.lambda_alpha:g}", "beta"))

fig, axs = plt.subplots(2, 2, figsize=(12, 9))
for (name, h), colour, ls in zip(runs.items(), ("tab:blue", "tab:orange"), ("-", "--")):
    axs[0, 0].plot(h["step"], h["alpha"], color=colour, ls=ls, lw=2, label=name)
    axs[0, 1].plot(h["step"], h["beta"], color=colour, ls=ls, lw=2, label=name)
axs[0, 0].set(ylabel="α (sharpness: the slope is α²)", title="α: how sharp the fusion step is")
axs[0, 1].set(ylabel="β (fusion layer)", title="β: where the streams fuse")
for ax in axs[0]:
    ax.legend()
for ax, (name, h) in zip(axs[1], runs.items()):
    w = h[[f"w_{l}" for l in range(1, L + 1)]].to_numpy().T
    im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower",
                   extent=(h["step"].iloc[0] - 0.5, h["step"].iloc[-1] + 0.5, 0.5, L + 0.5))
    ax.set(ylabel="layer l", title=f"{name}: fusion weights w_l")
    fig.colorbar(im, ax=ax, label="w_l (1: fusion stream, 0: data streams)")
for ax in axs.flat:
    ax.set_xlabel("training step")
fig.suptitle(f"Fig. 5 analog: with λ/α² α rises to {final[f'λ = {sizes.lambda_alpha:g}']['alpha']:.3f}, "
             f"without it to {final['λ = 0']['alpha']:.3f} (synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "fig5_fusion_parameters")
plt.show()

# %% [markdown]
# After {glue:text}`train_steps` steps, α {glue:text}`alpha_direction_with` from 0.1 to {glue:text}`alpha_final_with`
# with the penalty and {glue:text}`alpha_direction_without` to {glue:text}`alpha_final_without` without it; with the
# penalty β {glue:text}`beta_direction_with` from L/2 to {glue:text}`beta_final_with` (without:
# {glue:text}`beta_final_without`). The paper reports α rising (its regulariser at work) and, typically, β rising:
# fusion moving to later layers. An α near 0 means w_l ≈ ½ at every layer: every layer of all three streams stays
# active, the over-parameterised mixture the penalty exists to avoid.
# The slope of the sigmoid is α², so the weights one layer from β are sigmoid(±α²): the pruning section below
# measures how far from binary they ended.

# %% [markdown]
# ## Fig. 7: are the two streams' features decorrelated?
#
# The squared Pearson correlation R² between every pair of channels of the image stream and of the confidence-map
# stream at the last convolutional layer of the trained trainable-fusion network, over 128 test images (each channel
# a variable, every image and position a sample). The paper finds the cross-stream blocks nearly empty: the two
# streams encode complementary information.

# %%
n_corr = min(128, len(test))
r2 = tf.stream_correlation_r2(nets["TrainableFusion"], test.images[:n_corr], test.confidence_maps[:n_corr]).cpu()
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
for name, net in ((f"λ = {sizes.lambda_alpha:g}", nets["TrainableFusion"]), ("λ = 0", net_free)):
    w = net.fusion_weights().detach().cpu()
    pruned = tf.prune_fusion_net(net)
    deviation = float((w - tf.indicator_fusion_weights(pruned.fixed_beta, L)).abs().max())
    for kind, model in (("unpruned", net), ("pruned", pruned)):
        prune_rows.append(dict(run=name, network=kind, fusion_layer=pruned.fixed_beta, max_w_rounding=deviation,
                               params=tf.count_parameters(model), **tf.evaluate_fusion_net(model, test)))
        timing_rows.append(dict(run=name, network=kind, device=str(ch.device), batch=batch,
                                ms_per_image=tf.inference_ms_per_image(model, im_b, cm_b, repeats=5)))
pruning = pd.DataFrame(prune_rows)
timings = pd.DataFrame(timing_rows)
ch.save_table(pruning, "pruning")
ch.save_timings(timings, "pruning_timings")
display(pruning.round(3))
display(timings.round(4))

main = pruning[pruning["run"] == f"λ = {sizes.lambda_alpha:g}"].set_index("network")
main_t = timings[timings["run"] == f"λ = {sizes.lambda_alpha:g}"].set_index("network")
ch.glue("pruned_params", int(main.loc["pruned", "params"]))
ch.glue("unpruned_params", int(main.loc["unpruned", "params"]))
ch.glue("param_ratio", round(float(main.loc["unpruned", "params"] / main.loc["pruned", "params"]), 2))
ch.glue("pruned_mpjpe", round(float(main.loc["pruned", "mpjpe_mm"]), 1))
ch.glue("unpruned_mpjpe", round(float(main.loc["unpruned", "mpjpe_mm"]), 1))
ch.glue("max_w_rounding", round(float(main.loc["pruned", "max_w_rounding"]), 3))
ch.glue("speedup", round(float(main_t.loc["unpruned", "ms_per_image"] / main_t.loc["pruned", "ms_per_image"]), 2))

fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, (col, label) in zip(axs, (("params", "parameters"), ("mpjpe_mm", "MPJPE on test motions (mm)"))):
    sns.barplot(data=pruning, x="run", y=col, hue="network", ax=ax)
    ax.set_ylabel(label)
    ax.set_xlabel("")
fig.suptitle(f"Pruning drops {100 * (1 - main.loc['pruned', 'params'] / main.loc['unpruned', 'params']):.0f}% of the "
             f"parameters; MPJPE {main.loc['unpruned', 'mpjpe_mm']:.1f} → {main.loc['pruned', 'mpjpe_mm']:.1f} mm "
             "(synthetic)")
fig.tight_layout()
ch.save_figure(fig, "pruning")
plt.show()

# %% [markdown]
# The pruned network (fusion at β = its number of layers with w_l < ½) has {glue:text}`pruned_params` parameters
# against {glue:text}`unpruned_params` ({glue:text}`param_ratio`× fewer) and runs {glue:text}`speedup`× faster per
# image here. Rounding the weights to 0/1 moved them by up to {glue:text}`max_w_rounding`, and the MPJPE from
# {glue:text}`unpruned_mpjpe` mm to {glue:text}`pruned_mpjpe` mm: the sharper the fusion at the end of training, the
# smaller that change (with binary weights the two networks compute the same function, a test of the book checks it).

# %% [markdown]
# ## Claims of this chapter
#
# The scorecard's rows that this chapter decides (chapter 7 collects every chapter's). Table 5's ordering pairs
# TrainableFusion with each other network on the same test samples (95 % bootstrap interval of the per-sample MPJPE
# difference; over seeds too where the table has several); α, β and the stream correlation are read from one
# training run. For each claim that is "no" or "tie", the evidence, written from the numbers by
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
# * Table 5 analog: TrainableFusion {glue:text}`mpjpe_TrainableFusion` mm, EarlyFusion
#   {glue:text}`mpjpe_EarlyFusion` mm, LateFusion {glue:text}`mpjpe_LateFusion` mm, CMOnly {glue:text}`mpjpe_CMOnly` mm,
#   ImageOnly {glue:text}`mpjpe_ImageOnly` mm; the lowest is {glue:text}`best_method`.
# * The best fixed fusion layer is β = {glue:text}`best_fixed_beta`; the learned β is {glue:text}`learned_beta`.
# * λ/α² raises α to {glue:text}`alpha_final_with` in {glue:text}`train_steps` steps (without it:
#   {glue:text}`alpha_final_without`).
# * Cross-stream R² {glue:text}`r2_image_cm` against {glue:text}`r2_image_image` / {glue:text}`r2_cm_cm` within the
#   streams.
# * Pruning: {glue:text}`param_ratio`× fewer parameters, MPJPE {glue:text}`unpruned_mpjpe` → {glue:text}`pruned_mpjpe`
#   mm.
#
# All data are synthetic and the networks tiny; these numbers test the paper's mechanisms, not its results.

# %%
ch.finish();
