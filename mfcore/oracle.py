"""The epipolar oracle: Eq. (1) with the calibrated cameras' exact epipolar lines (an upper-bound diagnostic, no
learning), NaiveFuse^full started from it (does Eq. (3) keep the lines?), MetaFuse's factorised model started from it
(can Eq. (2) hold the lines, and does meta-testing keep them?), and the Fig. 6 picker of a corrected joint.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import epipolar, fusion, geometry, metrics, pictorial
from .fewshot import select_shots
from .maml import fuse_frames, train_fusion
from .targets import _check_target, _check_trial, target_data

ORACLE_GAINS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # line weight, in units of one source peak (see epipolar_oracle_weights)
# the candidate objectives of epipolar_oracle_rows (columns): the book's Eq. (3) (the mix), the plain sum, the softmax
OBJECTIVES = ("mse", "mse_sum", "mse_softmax")


def epipolar_oracle_weights(projections_hm: Tensor, heatmap_px: int, sigma_px: float, gain: float = 1.0) -> Tensor:
    """Eq. (1) weights from the cameras themselves: for every ordered pair (target t, source s) of
    :func:`mfcore.fusion.ordered_pairs`, row i of ``W_(s->t)`` is the ideal map of target pixel i over the source view,
    exp(−d²/2σ²) of the distance d to its epipolar line, kept on the visible half-line
    (:func:`mfcore.epipolar.ideal_fusion_weights`), times ``gain / (√2·π·σ²)``: a source heatmap with a peak of 1 and
    spread σ centred on the line then adds about ``gain`` to the target pixel (the integral of the product of the
    two Gaussians), relative to the target's own heatmap. Under the mix of Eq. (1) (:func:`mfcore.fusion.fuse`: the own
    heatmap at ``SELF_WEIGHT``, each of the V − 1 sources at :func:`mfcore.fusion.source_weight`) the weights carry
    the factor ``SELF_WEIGHT / source_weight(V − 1)``, so the fused map is ``SELF_WEIGHT · (x_t + gain · Σ_s L_ts x_s)``
    with L the unit lines: the gain keeps its meaning (source peaks added per own peak) and the JDR at each gain is
    that of the plain sum. projections_hm (V, 3, 4) at heatmap resolution; returns (P, Z, Z) float32,
    Z = heatmap_px², on the projections' device. This is what NaiveFuse would hold if it learned the geometry exactly."""
    if projections_hm.dim() != 3 or projections_hm.shape[1:] != (3, 4):
        raise ValueError(f"projections_hm must be (V, 3, 4); got {tuple(projections_hm.shape)}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be > 0; got {sigma_px!r}")
    device = projections_hm.device
    cams = [geometry.camera_from_projection(P.cpu(), heatmap_px) for P in projections_hm]
    grid = epipolar.pixel_grid_px(heatmap_px, device=device)
    mix = fusion.SELF_WEIGHT / fusion.source_weight(len(cams) - 1)
    scale = gain * mix / (2.0 ** 0.5 * math.pi * sigma_px ** 2)
    pairs = fusion.ordered_pairs(len(cams))
    return torch.stack([epipolar.ideal_fusion_weights(cams[t], cams[s], grid, sigma_px).reshape(grid.shape[0], -1)
                        for t, s in pairs]) * scale


def placement_oracle_weights(projections_image: Tensor, profile, device, gain: float = 1.0) -> Tensor:
    """:func:`epipolar_oracle_weights` of one camera placement given at image resolution (V, 3, 4), at the profile's
    heatmap size and σ, on ``device``."""
    side = profile.studio.heatmap_px
    P_hm = pictorial.heatmap_projections(projections_image, profile.studio.image_px, side).to(device)
    return epipolar_oracle_weights(P_hm, side, profile.studio.heatmap_sigma_px, gain)


def epipolar_oracle_rows(target: str, trial: int, profile, seed: int, device, *, gains=ORACLE_GAINS,
                         batch_frames: int = 32) -> list[dict]:
    """JDR rows (:func:`mfcore.metrics.peak_jdr_rows`; method "EpipolarOracle", column ``gain``) of the backbone's test heatmaps of
    a Fig. 7 target fused by Eq. (1) with :func:`epipolar_oracle_weights` at each of ``gains`` (σ = the studio's
    heatmap σ), each camera set of the test frames with its own cameras. Gain 0 is NoFusion. The gain is chosen by
    nobody: every gain is reported, and the best one is picked on the test frames, so the best row is an upper bound
    of what Eq. (1) with exact geometry gives on these heatmaps, not a method. Each row also carries the candidate
    objectives at that gain (all views; what a model trained by each would be rewarded for), from the same fused maps:

    * ``mse``: the book's Eq. (3), :func:`mfcore.fusion.fusion_mse` of the mixed map
      ``SELF_WEIGHT · (x_t + gain · Σ_s L_ts x_s)`` (:func:`mfcore.fusion.fuse`, the Cross View Fusion code's mix);
    * ``mse_sum``: the plain sum of the paper's Eq. (1), ``x_t + gain · Σ_s L_ts x_s``, MSE against the target (the
      book's Eq. (3) before this mix was adopted);
    * ``mse_softmax``: :func:`mfcore.fusion.softmax_mse` (T = 0.2 softmax of the plain sum inside the loss, against
      the sum-normalised target, both scaled by the target's mass).

    All three are sums over the same pixels divided by ``pred.numel()``."""
    _check_target(target)
    _check_trial(target, trial, profile)
    gains = tuple(float(g) for g in gains)
    if not gains or min(gains) < 0:
        raise ValueError(f"gains must be non-negative numbers; got {gains!r}")
    device = torch.device(device)
    image_px = profile.studio.image_px
    test = target_data(target, trial, profile, seed, device)["test"]
    pred = test["pred"]
    peaks = {g: torch.empty(*pred.shape[:3], 2) for g in gains}
    # Σ over pixels of each candidate's squared error, before averaging (see the docstring)
    squared = {(g, c): 0.0 for g in gains for c in OBJECTIVES}
    pairs = fusion.ordered_pairs(pred.shape[1])  # the order of epipolar_oracle_weights' pairs
    for idx, P_image, _ in metrics.camera_sets(test):
        weights = placement_oracle_weights(P_image, profile, device)
        for start in range(0, len(idx), batch_frames):
            sel = idx[start:start + batch_frames]
            x, y = pred[sel].to(device), test["target"][sel].to(device)
            added = fusion.fuse(x, weights, pairs) - fusion.SELF_WEIGHT * x  # SELF_WEIGHT · Σ_s L_ts x_s at gain 1
            for g in gains:
                fused = fusion.SELF_WEIGHT * x + g * added  # the mixed map of Eq. (1) at gain g
                plain = fused / fusion.SELF_WEIGHT  # x_t + g Σ_s L_ts x_s: the same argmax
                peaks[g][sel] = metrics.heatmap_peaks_px(fused, image_px).cpu()
                n = y.numel()
                squared[g, "mse"] += float((fused - y).square().sum())
                squared[g, "mse_sum"] += float((plain - y).square().sum())
                squared[g, "mse_softmax"] += float(fusion.softmax_mse(plain, y)) * n
    rows = []
    for g in gains:
        losses = {c: squared[g, c] / pred.numel() for c in OBJECTIVES}
        rows += metrics.peak_jdr_rows(peaks[g], test, image_px, rig=target, trial=trial, method="EpipolarOracle", gain=g,
                                      **losses)
    return rows


ORACLE_INIT_GAIN = 1.0  # the oracle's own calibration (a source peak adds about 1), fixed beforehand, not picked on test frames
ORACLE_INIT_CHECKPOINTS = (0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # fractions of NaiveFuse^full's steps


def oracle_fused_heatmaps(test: dict[str, Tensor], profile, device, *, gain: float = ORACLE_INIT_GAIN,
                          batch_frames: int = 32) -> Tensor:
    """Eq. (1) with the calibrated cameras' exact epipolar lines (:func:`placement_oracle_weights` at ``gain``, the
    oracle's own calibration) applied to a test set of :func:`mfcore.targets.target_data` (its backbone heatmaps
    "pred"), each camera set with its own cameras: the mixed fused maps (N, V, J, h, w) float32 on the CPU, what
    NaiveFuse would output had it learned the geometry exactly (the maps chapter 5 puts through the RPSM)."""
    if not gain > 0:
        raise ValueError(f"gain must be > 0 (gain 0 is NoFusion's own maps); got {gain!r}")
    device = torch.device(device)
    pred = test["pred"]
    out = torch.empty(pred.shape, dtype=torch.float32)
    pairs = fusion.ordered_pairs(pred.shape[1])
    for idx, P_image, _ in metrics.camera_sets(test):
        weights = placement_oracle_weights(P_image, profile, device, gain)
        for start in range(0, len(idx), batch_frames):
            sel = idx[start:start + batch_frames]
            out[sel] = fusion.fuse(pred[sel].to(device), weights, pairs).float().cpu()
    return out


def pool_oracle_weights(pool: dict[str, Tensor], profile, device, gain: float = ORACLE_INIT_GAIN) -> Tensor:
    """One NaiveFuse weight tensor (P, Z, Z) for a labelled pool: :func:`epipolar_oracle_weights` of each camera
    placement of the pool (:func:`mfcore.metrics.camera_sets`; the H36M-like pool has one per training subject), averaged with the
    placements' frame counts as weights: what a single NaiveFuse model would hold if it learned the pool's geometry."""
    groups = metrics.camera_sets(pool)
    total = sum(len(idx) for idx, _, _ in groups)
    weights = None
    for idx, P_image, _ in groups:
        w = placement_oracle_weights(P_image, profile, device, gain) * (len(idx) / total)
        weights = w if weights is None else weights + w
    return weights


def oracle_init_rows(target: str, trial: int, profile, seed: int, device, *, gain: float = ORACLE_INIT_GAIN,
                     checkpoints=ORACLE_INIT_CHECKPOINTS, progress: bool = False) -> list[dict]:
    """Does the loss of Eq. (3) keep the oracle's epipolar lines? NaiveFuse^full's recipe (:func:`mfcore.fewshot.finetune_on_pool`
    with "NaiveFuseFull": :func:`mfcore.maml.train_fusion` on the whole labelled pool, ``full_steps`` Adam steps at ``outer_lr``,
    mini-batches of ``batch_size``, seed ``seed``), started from :func:`pool_oracle_weights` at ``gain`` instead of
    zero. At each checkpoint (a fraction of ``full_steps``; 0 is the oracle itself) the test frames are fused and
    scored: JDR rows (:func:`mfcore.metrics.peak_jdr_rows`, method "NaiveFuseFromOracle", columns ``step`` and ``steps``), each with
    ``mse`` (Eq. (3) on the test frames, all views) and ``line_share`` = <W, W0> / <W0, W0>, how much of the initial
    lines W0 the weights W still hold along W0 (1 at the start; 0 would be NoFusion's zero weights)."""
    _check_target(target)
    _check_trial(target, trial, profile)
    fractions = tuple(float(c) for c in checkpoints)
    if not fractions or any(not 0.0 <= c <= 1.0 for c in fractions):
        raise ValueError(f"checkpoints must be fractions of the training steps in [0, 1]; got {checkpoints!r}")
    if not gain > 0:
        raise ValueError(f"gain must be > 0 (gain 0 is NaiveFuse^full's own zero start); got {gain!r}")
    m, device = profile.metafuse, torch.device(device)
    data = target_data(target, trial, profile, seed, device)
    pool, test = data["train"], data["test"]
    image_px = profile.studio.image_px
    model = fusion.NaiveFuse(pool["pred"].shape[1], profile.studio.heatmap_px).to(device)
    with torch.no_grad():
        model.weight.copy_(pool_oracle_weights(pool, profile, device, gain))
    w0 = model.weight.detach().clone()
    w0_sq = float(w0.double().square().sum())
    at = sorted({round(c * m.full_steps) for c in fractions})
    rows = []

    def score(step: int) -> None:
        if step not in at:
            return
        fused = fuse_frames(model, test["pred"])
        mse = float(fusion.fusion_mse(fused, test["target"]))
        share = float((model.weight.detach().double() * w0.double()).sum()) / w0_sq
        rows.extend(metrics.peak_jdr_rows(metrics.heatmap_peaks_px(fused, image_px), test, image_px, rig=target, trial=trial,
                                  method="NaiveFuseFromOracle", step=step, steps=m.full_steps, gain=gain, mse=mse,
                                  line_share=share))

    score(0)
    train_fusion(model, pool["pred"], pool["target"], steps=m.full_steps, lr=m.outer_lr, batch_size=m.batch_size,
                 seed=seed, progress=progress, desc="NaiveFuse from the oracle", on_step=score)
    return rows


def line_theta(projections_hm: Tensor, heatmap_px: int) -> Tensor:
    """θ of Eq. (2) that lays the centred line (:func:`mfcore.epipolar.centred_line_map`) on the epipolar line of every
    target pixel, for every ordered pair (target t, source s) of :func:`mfcore.fusion.ordered_pairs`: the rigid
    :func:`mfcore.epipolar.line_frame_affine` of each pixel's line in the source view (chapter 1's closed-form start).
    projections_hm (V, 3, 4) at heatmap resolution; returns (P, Z, 2, 3) float32 (AffineFuse's ``theta``), Z =
    heatmap_px², on the projections' device. With ``omega_base`` the centred line, AffineFuse then holds the oracle's
    lines, whole lines rather than the visible half-lines of :func:`epipolar_oracle_weights`."""
    if projections_hm.dim() != 3 or projections_hm.shape[1:] != (3, 4):
        raise ValueError(f"projections_hm must be (V, 3, 4); got {tuple(projections_hm.shape)}")
    cams = [geometry.camera_from_projection(P.cpu(), heatmap_px) for P in projections_hm]
    grid = epipolar.pixel_grid_px(heatmap_px)
    thetas = []
    for t, s in fusion.ordered_pairs(len(cams)):
        geo = epipolar.epipolar_geometry(cams[t], cams[s], grid)
        thetas.append(epipolar.line_frame_affine(epipolar.line_to_normalised(geo["line"], heatmap_px), geo["direction"],
                                                 epipolar.CENTRED_LINE, epipolar.CENTRED_DIR))
    return torch.stack(thetas).float().to(projections_hm.device)


def pool_line_theta(pool: dict[str, Tensor], profile) -> Tensor:
    """:func:`line_theta` of a labelled pool's camera placements, averaged with their frame counts (as
    :func:`pool_oracle_weights`; the H36M-like pool has one placement per training subject): (P, Z, 2, 3) float32 on
    the CPU, the θ that lays the centred line on every target pixel's epipolar line of the pool's rig."""
    side, image_px = profile.studio.heatmap_px, profile.studio.image_px
    groups = metrics.camera_sets(pool)
    total = sum(len(idx) for idx, _, _ in groups)
    return sum(line_theta(pictorial.heatmap_projections(P_image.cpu(), image_px, side), side) * (len(idx) / total)
               for idx, P_image, _ in groups)


def line_omega_base(profile, gain: float = ORACLE_INIT_GAIN, num_views: int = 4) -> Tensor:
    """The centred line map at the studio's heatmap size and σ, scaled as :func:`epipolar_oracle_weights` scales its
    lines (``gain`` source peaks per own peak under the mix of a ``num_views`` rig): AffineFuse's ``omega_base`` that,
    with :func:`line_theta`, reproduces the oracle's lines. (H, W) float32 on the CPU."""
    return fusion.line_omega_start(profile.studio.heatmap_px, profile.studio.heatmap_sigma_px, num_views, gain)


def affine_oracle_init_rows(target: str, trial: int, profile, seed: int, device, *, k: int | None = None,
                            gain: float = ORACLE_INIT_GAIN, checkpoints=ORACLE_INIT_CHECKPOINTS,
                            progress: bool = False) -> list[dict]:
    """Can MetaFuse's factorised model (Eq. (2)) hold the oracle's lines, and does its meta-testing keep them? AffineFuse
    started at the lines instead of the meta-learned start: ``omega_base`` = :func:`line_omega_base`, ``theta`` =
    :func:`line_theta` of the pool's camera placements (averaged with their frame counts, as
    :func:`pool_oracle_weights`; the H36M-like pool has one placement per training subject), then MetaFuse^K's
    meta-testing recipe (:func:`mfcore.fewshot.finetune_on_pool`): θ only, ``finetune_steps`` Adam steps at
    ``finetune_lr`` on the same K frames as Fig. 7's trial (``k``: default the largest K of the profile), mini-batches
    of ``min(K, batch_size)`` with seed ``seed + K``. At each checkpoint (a fraction of the steps; 0 is the start) the
    test frames are fused and scored: JDR rows (method "AffineFuseFromOracle", columns ``step``, ``steps``, ``k``,
    ``gain``), each with ``mse`` (Eq. (3) on the test frames) and ``theta_shift`` (the mean |θ − θ_start| over the
    pairs' pixels, in normalised units: how far finetuning moved the lines)."""
    _check_target(target)
    _check_trial(target, trial, profile)
    fractions = tuple(float(c) for c in checkpoints)
    if not fractions or any(not 0.0 <= c <= 1.0 for c in fractions):
        raise ValueError(f"checkpoints must be fractions of the finetuning steps in [0, 1]; got {checkpoints!r}")
    if not gain > 0:
        raise ValueError(f"gain must be > 0; got {gain!r}")
    m, device = profile.metafuse, torch.device(device)
    k = max(m.shots) if k is None else k
    data = target_data(target, trial, profile, seed, device)
    pool, test = data["train"], data["test"]
    side, image_px = profile.studio.heatmap_px, profile.studio.image_px
    v = pool["pred"].shape[1]
    theta0 = pool_line_theta(pool, profile)
    model = fusion.AffineFuse(v, side, device=device)
    with torch.no_grad():
        model.omega_base.copy_(line_omega_base(profile, gain, v))
        model.theta.copy_(theta0)
    theta0 = theta0.to(device)
    at = sorted({round(c * m.finetune_steps) for c in fractions})
    rows = []

    def score(step: int) -> None:
        if step not in at:
            return
        fused = fuse_frames(model, test["pred"])
        rows.extend(metrics.peak_jdr_rows(
            metrics.heatmap_peaks_px(fused, image_px), test, image_px, rig=target, trial=trial,
            method="AffineFuseFromOracle", step=step, steps=m.finetune_steps, k=k, gain=gain,
            mse=float(fusion.fusion_mse(fused, test["target"])),
            theta_shift=float((model.theta.detach() - theta0).abs().mean())))

    score(0)
    shots = select_shots(pool["pred"].shape[0], k, seed + 100 * trial + k)
    train_fusion(model, pool["pred"][shots], pool["target"][shots], steps=m.finetune_steps, lr=m.finetune_lr,
                 batch_size=min(k, m.batch_size), seed=seed + k, trainable=("theta",), progress=progress,
                 desc="AffineFuse from the oracle", on_step=score)
    return rows


def pick_corrected_joint(pred: Tensor, fused: Tensor, labels: dict[str, Tensor], image_px: int) -> tuple[int, int, int]:
    """Fig. 6: a (frame, view, joint) whose initial heatmap has its maximum at the wrong place (beyond half a head
    size, :func:`mfcore.metrics.labels_threshold_px`) and, if any exists, whose fused heatmap puts it right; among those the largest initial error. pred, fused
    (N, V, J, h, w) with the labels of :func:`mfcore.backbone.cached_heatmaps`. Only joints inside the image count."""
    gt = labels["joints_2d_px"]
    thr = metrics.labels_threshold_px(labels)[..., None]

    def error(h):
        return (metrics.heatmap_peaks_px(h, image_px) - gt).norm(dim=-1)

    e0, e1 = error(pred), error(fused)
    inside = ((gt >= -0.5) & (gt <= image_px - 0.5)).all(-1)
    wrong = (e0 > thr) & inside
    candidates = wrong & (e1 <= thr)
    if not candidates.any():
        candidates = wrong if wrong.any() else inside
    score = torch.where(candidates, e0, torch.full_like(e0, -1.0))
    n, v, j = torch.unravel_index(score.argmax(), score.shape)
    return int(n), int(v), int(j)
