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
# # 1. The geometry of cross-view fusion
#
# MetaFuse (Xie, Wang and Wang, CVPR 2020) builds on one geometric fact: a pixel of view 1 can only correspond to
# pixels on its *epipolar line* in view 2. This chapter reproduces the argument of the paper's Sections 3 and 4.1:
#
# 1. the fusion rule of Eq. (1), on a tiny worked example;
# 2. the *ideal* fusion weights of one pixel: a thin ridge along its epipolar line;
# 3. why NaiveFuse is big (Z1·Z2 weights per camera pair) and the factorised model small (Z2 + 6·Z1);
# 4. evidence that the factorisation of Eq. (2) can hold the ideal weights: one shared base map ω_base, warped by one
#    6-number affine θ_i per pixel, against baselines;
# 5. Fig. 3/4 of the paper: moving camera 2 changes a line by an (approximately) affine transform;
# 6. an explorer of the lines of a 4-camera rig.
#
# **Everything here is synthetic**: the cameras are the book's synthetic studio cameras (metres, Z up, a
# person-sized capture volume about 2 m tall), the heatmaps are drawn from exact projections, and no number on this
# page is one of the paper's.

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

from mfcore import data, epipolar, fusion, geometry, metrics
from mfbook import chapter, plots, progress

ch = chapter.open_chapter("01_fusion_geometry", profile=profile, device=device, seed=seed, out_dir=out_dir)
sizes = ch.profile.geometry
side = sizes.heatmap_px
sigma = sizes.line_sigma_px
sns.set_theme(style="white", context="notebook")

cameras, rig_source = epipolar.chapter_cameras(side)
grid = epipolar.pixel_grid_px(side)  # (side², 2) every heatmap pixel, row-major
display(Markdown(f"Cameras: {rig_source}, {len(cameras)} views, at heatmap resolution {side}×{side} px."))

# %% [markdown]
# ## Eq. (1): fusing a heatmap of view 2 into view 1
#
# Cross-view fusion adds to each view-1 heatmap pixel a weighted sum of the heatmap of view 2:
#
# $$x^1_i \leftarrow x^1_i + \sum_{j} \omega_{j,i}\, x^2_j \qquad (1)$$
#
# The book computes it with the mix of the Cross View Fusion code (`mfcore.fusion.fuse`): the own heatmap weighted
# {glue:text}`self_weight_01` and the other views' sums sharing {glue:text}`sources_weight_01` (chapter 4b compares
# the two as training objectives); the weights below enter either way.
#
# With the *ideal* weights (next section) ω_{j,i} is large only for view-2 pixels j on the epipolar line of pixel i.
# A joint detected at Y² in view 2 therefore lights up every view-1 pixel whose epipolar line passes through Y²: a
# line through the joint's true position in view 1. Each further view adds another line, and the lines cross at the
# joint. The worked example below places a joint P in the capture volume, lets view 1's detector fire on a wrong
# point Q (the other wrist, say), and fuses the correct detections of views 2-4 into view 1.

# %%
P_m = torch.tensor([[0.15, -0.10, 1.25]], dtype=torch.float64)  # the joint (metres)
Q_m = torch.tensor([[-0.25, 0.15, 0.95]], dtype=torch.float64)  # where view 1's detector wrongly fired
proj = geometry.stack_projections(cameras, dtype=torch.float64)
P_px = geometry.project(proj, P_m)[:, 0]  # (V, 2) heatmap px
Q_px = geometry.project(proj, Q_m)[:, 0]

heatmaps = data.gaussian_heatmaps(P_px, side, sigma)  # (V, side, side) peak 1 at the joint
heatmaps[0] = data.gaussian_heatmaps(Q_px[0], side, sigma)  # view 1 is wrong
weights = {v: epipolar.ideal_fusion_weights(cameras[0], cameras[v], grid.to(ch.device), sigma)
           for v in range(1, len(cameras))}  # ω over view v for every view-1 pixel: (side², side, side)
own = heatmaps[0].to(ch.device)
from_view2 = fusion.fuse_pair(torch.zeros_like(own), heatmaps[1].to(ch.device), weights[1])  # the line's term alone
into_view1 = tuple((0, v) for v in range(1, len(cameras)))  # the pairs (target view 1, source view v)
stacked = torch.stack([weights[v].reshape(side * side, side * side) for v in range(1, len(cameras))])
fused = fusion.fuse(heatmaps.to(ch.device)[None, :, None], stacked.to(own.dtype), into_view1)[0, 0, 0]
err_before = float((metrics.heatmap_argmax_px(own.cpu()[None])[0] - P_px[0]).norm())
err_after = float((metrics.heatmap_argmax_px(fused.cpu()[None])[0] - P_px[0]).norm())
ch.glue("example_error_before_px", round(err_before, 2))
ch.glue("self_weight_01", f"{fusion.SELF_WEIGHT:g}")
ch.glue("sources_weight_01", f"{fusion.SOURCES_WEIGHT:g}")
ch.glue("example_error_after_px", round(err_after, 2))

fig, axs = plots.heatmap_panels([heatmaps[1], own, from_view2, fused],
                                ["view 2 (correct)", "view 1 (wrong peak)", "from view 2 alone: a line",
                                 f"view 1 fused with views 2-{len(cameras)}"], ncols=2)
for ax in axs[1:]:
    ax.plot(*P_px[0].tolist(), "c+", ms=14, mew=2, label="true joint")
    ax.plot(*Q_px[0].tolist(), "wx", ms=10, mew=2, label="wrong detection")
axs[0].plot(*P_px[1].tolist(), "c+", ms=14, mew=2)
axs[3].legend(loc="lower right")
fig.suptitle(f"Eq. (1) with ideal weights moves view 1's peak\nfrom {err_before:.1f} px to {err_after:.1f} px from "
             "the joint (synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "eq1_worked_example")
plt.show()

# %% [markdown]
# The peak of view 1 moves from {glue:text}`example_error_before_px` px to {glue:text}`example_error_after_px` px from
# the joint. One view alone only says "somewhere on this line" (third panel); several views pin the joint down. The
# fused values are not normalised: with the ideal weights below, each view adds its share of the mix times the line
# integral of its heatmap.
#
# ## The ideal fusion weights of one pixel
#
# For a pixel i of view 1 we define the ideal weight map over view 2 as
#
# $$\omega_i(j) = \exp\!\Big(-\frac{d(j, l_i)^2}{2\sigma^2}\Big),$$
#
# with l_i the epipolar line of i in view 2, d the pixel distance to it, and these choices (all in
# `mfcore.epipolar.ideal_fusion_weights`):
#
# * **σ = `profile.geometry.line_sigma_px` heatmap pixels** (1 px in both profiles): a line as thin as a heatmap
#   pixel allows;
# * **peak 1, not sum 1**: every pixel on the line gets weight 1. The affine warps of Eq. (2) resample a map and keep
#   its peak values, not its sum, so peak-normalised maps are the ones a warped base map can match;
# * **only the visible part of the line**: pixel j keeps its weight only if the point of the ray through i that j
#   sees lies in front of both cameras. The ray starts at camera 1's centre, so in view 2 it images as a half-line
#   starting at the epipole (the image of camera 1), when camera 1 is in front of camera 2.

# %%
pix_i = P_px[0].round()  # the view-1 pixel nearest the joint
# the view-1 camera's most distant partner faces it: there the ray's image is a half-line starting at the epipole
centres = torch.stack([c.center_m() for c in cameras])
opposite = int((centres - centres[0]).norm(dim=-1).argmax())
fig, axs = plt.subplots(2, 2, figsize=(11, 10))
axs = axs.ravel()
omega = [epipolar.ideal_fusion_weights(cameras[0], cameras[v], pix_i[None], sigma)[0] for v in (1, opposite)]
plots.heatmap_panels([np.zeros((side, side)), *omega],
                     [f"view 1: pixel i = ({int(pix_i[0])}, {int(pix_i[1])})", "view 2: ideal weights ω_i",
                      f"view {opposite + 1}: ideal weights ω_i (half-line)"], axes=axs[:3], vmin=0, vmax=1)
axs[0].plot(*pix_i.tolist(), "c+", ms=16, mew=2)
for ax, v in zip(axs[1:3], (1, opposite)):
    geo_i = epipolar.epipolar_geometry(cameras[0], cameras[v], pix_i[None])
    plots.draw_lines(ax, geo_i["line"], side, "c", lw=1, ls="--", label="epipolar line l_i")
    ax.plot(*P_px[v].tolist(), "g+", ms=14, mew=2, label="true match")
    e_h = geo_i["epipole_h"]
    if e_h[2] > 0 and ((e_h[:2] / e_h[2]) > -0.5).all() and ((e_h[:2] / e_h[2]) < side - 0.5).all():
        ax.plot(*(e_h[:2] / e_h[2]).tolist(), "wo", ms=7, label="epipole (camera 1)")
    ax.legend(loc="lower right", fontsize=10)
omega_1 = epipolar.ideal_fusion_weights(cameras[0], cameras[1], pix_i[None], sigma)[0]
line_1 = epipolar.epipolar_geometry(cameras[0], cameras[1], pix_i[None])["line"][0]
dist_px = (line_1[0] * grid[:, 0] + line_1[1] * grid[:, 1] + line_1[2]).numpy()
axs[3].scatter(dist_px, omega_1.flatten().numpy(), s=6)
axs[3].set_xlabel("signed distance to l_i in view 2 (heatmap px)")
axs[3].set_ylabel("weight ω_i(j)")
axs[3].set_xlim(-5 * sigma, 5 * sigma)
axs[3].set_title(f"across the line: Gaussian, σ = {sigma:g} px, peak 1")
fig.suptitle("A view-1 pixel's ideal fusion weights: a thin ridge on its epipolar line through the\ntrue match, "
             "cut at the epipole when the cameras face each other (synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "ideal_weights")
plt.show()

# %% [markdown]
# ## How many weights? NaiveFuse against the factorised model
#
# NaiveFuse stores ω_{j,i} for every pair of pixels: Z1·Z2 numbers per ordered camera pair (Z = heatmap pixels). The
# factorisation of Eq. (2), ω_i = T<sup>θ_i</sup>(ω_base), stores one shared base map (Z2) and six affine numbers per view-1
# pixel (6·Z1).

# %%
params = epipolar.param_count_table(sizes.param_count_sides_px)
ch.save_table(params, "param_counts")
wide = params.pivot(index="heatmap_px", columns="model", values="params")[["NaiveFuse", "Factorised"]]
wide["NaiveFuse / Factorised"] = (wide["NaiveFuse"] / wide["Factorised"]).round(1)
wide.index = [f"{s}×{s}" for s in wide.index]
wide.index.name = "heatmap"
display(wide.style.format({"NaiveFuse": "{:,}", "Factorised": "{:,}", "NaiveFuse / Factorised": "{:,.1f}"}))
for s in sizes.param_count_sides_px:
    ch.glue(f"params_naive_{s}", f"{epipolar.naive_fuse_param_count(s):,}")
    ch.glue(f"params_factorised_{s}", f"{epipolar.factorised_param_count(s):,}")
    ch.glue(f"params_ratio_{s}", round(epipolar.naive_fuse_param_count(s) / epipolar.factorised_param_count(s), 1))

# %% [markdown]
# At the paper's 64×64 heatmaps NaiveFuse needs {glue:text}`params_naive_64` weights per camera pair and the
# factorised model {glue:text}`params_factorised_64`, {glue:text}`params_ratio_64` times fewer. These counts are exact
# arithmetic, not measurements. Whether so few numbers *can* describe the weights is the next question.
#
# ## Can one warped base map hold every pixel's ideal weights?
#
# We fit Eq. (2) directly to the ideal maps: one base map ω_base shared by **every pixel of every ordered pair of the
# 4 cameras**, and one affine θ_i per (pair, pixel). T<sup>θ</sup> is the spatial-transformer warp (`affine_grid` +
# `grid_sample`, bilinear), the loss the mean squared error, the optimiser Adam, all maps in one batch. θ_i starts
# from the rigid map that lays a centred line on the pixel's true line (from the calibration), ω_base from that centred
# line; from a generic start a 1-pixel-wide line has no gradient towards a target it does not overlap. Methods:
#
# * **base+θ** (the factorisation): ω_base and all θ_i learned;
# * **line+θ**: ω_base frozen to the centred full line, only θ_i learned;
# * **closed-form θ**: the centred line laid on the true line, nothing learned;
# * **single map**: the best single map without θ (the mean of all targets).
#
# Measures per map: the relative L2 error ‖fit − ideal‖/‖ideal‖, and the line the fitted map draws (weighted PCA of
# its values) against the true epipolar line: angle (degrees) and the distance of the map's centroid to the line (px).

# %%
pairs = len(cameras) * (len(cameras) - 1)
per_pair = max(1, sizes.affine_fit_pixels // pairs)
fit = epipolar.factorisation_fit(cameras, per_pair, sizes.affine_fit_steps, sizes.affine_fit_lr, seed, sigma,
                                 device=ch.device)
affine = fit["table"]
ch.save_table(affine, "affine_fit")
n_maps = len(fit["targets"])
summary = (affine.groupby(["method", "measurement"]).value
           .agg(median="median", mean="mean", p90=lambda v: v.quantile(0.9)).unstack("measurement"))
order = ["base+theta", "line+theta", "closed_form_theta", "single_map"]
summary = summary.reindex(order)
display(Markdown(f"{n_maps} maps ({per_pair} view-1 pixels per ordered pair × {pairs} pairs), "
                 f"{sizes.affine_fit_steps} Adam steps, heatmaps {side}×{side} px."))
display(summary.round(3))
med = affine.groupby(["method", "measurement"]).value.median()
for m in order:
    key = m.replace("+", "_").replace("theta", "theta")
    ch.glue(f"fit_rel_l2_median_{key}", round(float(med[(m, "rel_l2")]), 3))
    ch.glue(f"fit_angle_median_deg_{key}", round(float(med[(m, "line_angle_deg")]), 2))
    ch.glue(f"fit_offset_median_px_{key}", round(float(med[(m, "line_offset_px")]), 2))
ch.glue("fit_maps", n_maps)

# lines cut at the epipole (less than 90 % of the in-image line visible) against whole lines
CUT_FRACTION = 0.9
by_type = (affine[affine.measurement == "rel_l2"]
           .assign(line=lambda d: np.where(d.visible_fraction < CUT_FRACTION, "cut at epipole", "whole"))
           .groupby(["method", "line"]).value.median().unstack("line").reindex(order))
display(Markdown("Median relative L2 error by kind of line:"))
display(by_type.round(3))
for m in ("base+theta", "line+theta"):
    for col, tag in (("cut at epipole", "cut"), ("whole", "whole")):
        if col in by_type:
            ch.glue(f"fit_rel_l2_median_{m.replace('+', '_')}_{tag}", round(float(by_type.loc[m, col]), 3))

# %%
rel = affine[affine.measurement == "rel_l2"]
fig, axs = plt.subplots(1, 2, figsize=(12, 4.8))
bins = np.linspace(0, max(1.2, float(rel.value.quantile(0.99))), 49)
for m, colour in zip(order, sns.color_palette("deep", 4)):
    axs[0].hist(rel[rel.method == m].value, bins=bins, histtype="step", lw=2, color=colour,
                label=f"{m} (median {med[(m, 'rel_l2')]:.3f})")
axs[0].set_xlabel("relative L2 error ‖fit − ideal‖ / ‖ideal‖ (ratio of px-map norms)")
axs[0].set_ylabel("maps (pair, pixel)")
axs[0].legend(fontsize=10)
axs[0].set_title("relative error per map")
for m, colour in zip(order, sns.color_palette("deep", 4)):
    if m in fit["loss"]:  # the two learned methods
        axs[1].plot(fit["loss"][m].numpy(), color=colour, label=m)
axs[1].set_yscale("log")
axs[1].set_xlabel("Adam step")
axs[1].set_ylabel("mean squared error (weight² per px)")
axs[1].legend(fontsize=10)
axs[1].set_title("fit loss")
fig.suptitle(f"One shared base map + a 6-number θ per pixel matches the ideal epipolar maps\n"
             f"(median error {med[('base+theta', 'rel_l2')]:.3f} vs {med[('single_map', 'rel_l2')]:.3f} "
             "without θ; synthetic)")
plots.legible(fig, 11)
fig.tight_layout()
ch.save_figure(fig, "affine_fit_hist")
plt.show()

# %%
# examples: the two longest lines cut at the epipole (half-lines) and the two longest full lines, from distinct pairs
mass = fit["targets"].cpu().flatten(1).sum(-1)
cut = fit["visible_fraction"] < CUT_FRACTION
show, used = [], set()
for want_cut in (True, True, False, False):
    for k in torch.argsort(mass, descending=True).tolist():
        if bool(cut[k]) == want_cut and int(fit["pairs"][k]) not in used:
            show.append(k), used.add(int(fit["pairs"][k]))
            break
images, titles = [fit["base"], epipolar.centred_line_map(side, sigma)], ["learned ω_base", "initial ω_base (line)"]
for k in show:  # one row per example: the ideal map and the two fits
    x, y = fit["pixels_px"][k].tolist()
    pname = fit["pair_names"][int(fit["pairs"][k])]
    images += [fit["targets"][k], fit["fits"]["base+theta"][k], fit["fits"]["line+theta"][k]]
    titles += [f"ideal: views {pname},\npixel ({x:.0f}, {y:.0f})", "base+θ", "line+θ"]
images.insert(2, np.zeros((side, side)))  # the first row holds the two base maps only
titles.insert(2, "")
top = max(1.0, float(fit["base"].max()))  # one colour scale for every panel
fig, axs = plots.heatmap_panels(images, titles, ncols=3, vmin=0, vmax=top, panel_in=3.3)
fig.colorbar(axs[0].images[0], ax=axs[2], fraction=0.5, label="weight")
axs[2].set_visible(False)  # the empty cell holds the colour bar only
fig.suptitle("Warping one learned base map reproduces each pixel's ideal weights,\nhalf-line ends included "
             "(synthetic)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "affine_fit_examples")
plt.show()

# %% [markdown]
# The shared base map warped by θ_i reaches a median relative error of
# {glue:text}`fit_rel_l2_median_base_theta`, against {glue:text}`fit_rel_l2_median_line_theta` with a frozen line,
# {glue:text}`fit_rel_l2_median_closed_form_theta` for the closed-form placement, and
# {glue:text}`fit_rel_l2_median_single_map` for the best single map without θ. The fitted maps draw the right line:
# median angle error {glue:text}`fit_angle_median_deg_base_theta`° and centroid offset
# {glue:text}`fit_offset_median_px_base_theta` px. Lines cut at the epipole are no obstacle once θ is learned: θ can
# slide an end of the base line onto each pixel's epipole (the closed-form placement, which keeps the line whole,
# fails on them). Learning ω_base lowers the error on both kinds of line (cut:
# {glue:text}`fit_rel_l2_median_line_theta_cut` → {glue:text}`fit_rel_l2_median_base_theta_cut`; whole:
# {glue:text}`fit_rel_l2_median_line_theta_whole` → {glue:text}`fit_rel_l2_median_base_theta_whole`). Relative L2 is a
# harsh measure for lines one pixel wide: shifting the Gaussian profile by half a pixel already costs 0.35.
#
# ## Moving camera 2 (Fig. 3 and 4 of the paper)
#
# MetaFuse's second use of affine maps: when camera 2 moves, the line of a view-1 pixel changes by an approximately
# affine transform, so the same base map can serve a new camera pair with new θ. Camera 2 is carried along a
# horizontal arc around the volume's vertical axis (from −arc to +arc degrees, `profile.geometry.camera_move_arc_deg`),
# and for each position and each of a sample of view-1 pixels we warp the map over the original camera 2 onto the map
# over the moved camera:
#
# * **per-pixel θ**: one affine per (position, pixel), started from the rigid line-to-line map and refined by Adam;
# * **shared θ**: one affine per position for all pixels, started from the least-squares affine between the two
#   cameras' images of the capture volume (an affine-camera approximation) and refined;
# * **identity**: the original map as is.

# %%
angles = np.linspace(-sizes.camera_move_arc_deg, sizes.camera_move_arc_deg, sizes.camera_moves).round(6).tolist()
move_pixels = epipolar.sample_line_pixels(cameras[0], cameras[1], sizes.camera_move_pixels, seed, sigma,
                                           device=ch.device)
moves = epipolar.camera_move_fit(cameras[0], cameras[1], move_pixels, angles, sizes.affine_fit_steps,
                                 sizes.affine_fit_lr, seed, sigma, device=ch.device)
mt = moves["table"]
ch.save_table(mt, "camera_moves")
per_move = (mt[mt.measurement.isin(["rel_l2", "volume_affine_rms_px", "line_angle_change_deg"])]
            .groupby(["arc_deg", "method", "measurement"]).value.median().unstack(["measurement", "method"]))
display(Markdown(f"{len(move_pixels)} view-1 pixels, camera 2 at {len(angles)} arc positions; medians over pixels."))
MEASURES = {"rel_l2": "relative L2 error", "line_angle_change_deg": "line turn (°)",
            "volume_affine_rms_px": "volume's affine RMS (px)"}
per_move.columns = [f"{MEASURES.get(meas, meas)}, {meth.replace('_', ' ')} θ" if meth != "identity"
                    else f"{MEASURES.get(meas, meas)}, identity" for meas, meth in per_move.columns]
per_move.index.name = "camera 2 arc (°)"
display(per_move.round(3))
far = max(angles, key=abs)
med_far = mt[(mt.arc_deg == far) & (mt.measurement == "rel_l2")].groupby("method").value.median()
ch.glue("move_far_arc_deg", abs(far))
for m in ("per_pixel", "shared", "identity"):
    ch.glue(f"move_rel_l2_median_{m}", round(float(med_far[m]), 3))
ch.glue("move_angle_change_median_deg", round(float(mt[(mt.arc_deg == far) &
                                                      (mt.measurement == "line_angle_change_deg")].value.median()), 1))
rms_far = float(mt[(mt.arc_deg == far) & (mt.measurement == "volume_affine_rms_px")].value.iloc[0])
_ = ch.glue("move_volume_rms_px", round(rms_far, 2))

# %%
k0 = int(torch.argmin((move_pixels - P_px[0].round()).norm(dim=-1)))  # the pixel nearest the joint
x0, y0 = move_pixels[k0].tolist()
mf = list(angles).index(far)
fig, axs = plt.subplots(1, 3, figsize=(12, 4.6))
plots.heatmap_panels([moves["targets"][mf, k0], moves["fits"]["per_pixel"][mf, k0]],
                     [f"ideal map, camera 2 at {far:+.0f}°", "T^θ(map at 0°), per-pixel θ"], axes=axs[1:],
                     vmin=0, vmax=1)
for ang, cam3, colour in zip(angles, moves["moved"], sns.color_palette("coolwarm", len(angles))):
    plots.draw_lines(axs[0], epipolar.epipolar_geometry(cameras[0], cam3, move_pixels[k0:k0 + 1])["line"], side,
                     colour, lw=2, label=f"{ang:+.0f}°")
plots.pixel_axes(axs[0], side)
axs[0].legend(title="camera 2 arc", fontsize=9)
axs[0].set_title(f"lines of view-1 pixel ({x0:.0f}, {y0:.0f})")
fig.suptitle("Moving camera 2 along an arc turns and shifts the line;\nan affine warp of the old map follows it "
             "(synthetic)")
plots.legible(fig, 11)
fig.tight_layout()
ch.save_figure(fig, "camera_moves_lines")
plt.show()

rel_m = (mt[mt.measurement == "rel_l2"].groupby(["method", "arc_deg"]).value
         .quantile([0.25, 0.5, 0.75]).unstack().rename(columns={0.25: "q25", 0.5: "median", 0.75: "q75"})
         .reset_index())
fig, ax = plt.subplots(figsize=(9, 5))
for method, colour in zip(["identity", "shared", "per_pixel"], sns.color_palette("deep", 3)):
    plots.curve_with_band(ax, rel_m[rel_m.method == method], "arc_deg", "median", "q25", "q75",
                          label=f"{method.replace('_', '-')} θ" if method != "identity" else method, color=colour,
                          marker="o")
ax.set_xlabel("camera 2 arc position (degrees)")
ax.set_ylabel("relative L2 error of the warped map\n(median over pixels, band: quartiles)")
ax.legend()
ax.set_title(f"A per-pixel affine follows the moved line (median {med_far['per_pixel']:.3f} at {far:+.0f}°);\n"
             f"one affine per camera does not ({med_far['shared']:.3f})")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "camera_moves_residual")
plt.show()

# %% [markdown]
# At {glue:text}`move_far_arc_deg`° the lines turn by a median {glue:text}`move_angle_change_median_deg`°; an affine
# map per pixel brings the old map onto the new one with a median relative error of
# {glue:text}`move_rel_l2_median_per_pixel` (identity: {glue:text}`move_rel_l2_median_identity`). One affine for the
# whole view does much worse ({glue:text}`move_rel_l2_median_shared`), although it maps the capture volume's image
# with an RMS error of only {glue:text}`move_volume_rms_px` px: a one-pixel error is already large for a one-pixel
# line. This is why MetaFuse keeps one θ *per pixel* and per camera pair, and learns them.
#
# ## Explorer: a pixel and its epipolar lines in a 4-camera rig
#
# The static figure shows a grid of view-1 pixels and their lines in the other views; every line of a view passes
# through that view's epipole (the image of camera 1's centre, often outside the image). In JupyterLab the widget
# below lets you pick the source view and the pixel with sliders.

# %%
ticks = torch.linspace(0.15 * (side - 1), 0.85 * (side - 1), sizes.explorer_grid).round()
gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
explorer_pixels = torch.stack([gx.flatten(), gy.flatten()], -1).double()
colours = sns.color_palette("husl", len(explorer_pixels))
fig, axs = plt.subplots(2, -(-len(cameras) // 2), figsize=(5 * -(-len(cameras) // 2), 10))
plots.epipolar_fans(axs.ravel()[:len(cameras)], cameras, 0, explorer_pixels, side, colours)
fig.suptitle(f"A {sizes.explorer_grid}×{sizes.explorer_grid} grid of view-1 pixels maps to fans of lines\nthrough "
             "each view's epipole (synthetic rig)")
plots.legible(fig)
fig.tight_layout()
ch.save_figure(fig, "explorer_static")
plt.show()

# %%
try:  # the explorer needs ipywidgets and a live front end: a batch run of the book (text_only) does not build it
    import ipywidgets as widgets
except ImportError:
    widgets = None
if progress.text_only():
    widgets = None
    display(Markdown("*Batch run: the explorer is built only in a live notebook (JupyterLab); the static figure above "
                     "shows the same lines for a grid of pixels.*"))

if widgets is not None:
    def explore(source_view=0, x_px=side // 2, y_px=side // 2):
        fig, axs = plt.subplots(2, -(-len(cameras) // 2), figsize=(4.5 * -(-len(cameras) // 2), 9))
        plots.epipolar_fans(axs.ravel()[:len(cameras)], cameras, source_view, [[x_px, y_px]], side, "crimson")
        fig.tight_layout()
        plt.show()

    widgets.interact(explore,
                     source_view=widgets.Dropdown(options=[(f"view {v + 1}", v) for v in range(len(cameras))],
                                                  value=0, description="source"),
                     x_px=widgets.IntSlider(value=side // 2, min=0, max=side - 1, description="x (px)"),
                     y_px=widgets.IntSlider(value=side // 2, min=0, max=side - 1, description="y (px)"))

# %% [markdown]
# ## Summary
#
# * Eq. (1) with ideal weights turns one view's detection into a line in another view; several views intersect at the
#   joint (worked example: {glue:text}`example_error_before_px` px → {glue:text}`example_error_after_px` px).
# * NaiveFuse needs {glue:text}`params_ratio_64`× more weights than the factorised model at 64×64 heatmaps.
# * One shared base map with a 6-number affine per pixel reproduces the ideal epipolar weights of all
#   {glue:text}`fit_maps` sampled (pair, pixel) maps with a median relative error of
#   {glue:text}`fit_rel_l2_median_base_theta` (best single map: {glue:text}`fit_rel_l2_median_single_map`).
# * A moved camera 2 changes each line by a near-affine map per pixel (median residual
#   {glue:text}`move_rel_l2_median_per_pixel` at {glue:text}`move_far_arc_deg`°), but not by one affine per camera.
#
# All cameras and maps are synthetic; these are checks of the paper's geometric argument, not its numbers.

# %%
ch.finish();
