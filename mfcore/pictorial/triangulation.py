"""Triangulation baselines on heatmap maxima: the (confidence-weighted) DLT and exhaustive RANSAC over pairs of
views, and the root they estimate to centre the PSM grid without ground truth."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from .. import geometry, metrics, skeleton
from .views import _check_inputs, _clean, _project, usable_views

Tensor = torch.Tensor


def _argmax_weights(hm: Tensor, ok: Tensor, weighted: bool) -> tuple[Tensor, Tensor]:
    """Heatmap maxima (B, V, J, 2) and DLT weights (B, V, J) (0 for unusable views and empty channels).

    A joint with fewer than two non-empty channels falls back to equal weights over the usable views (finite, but
    unreliable: nothing better exists for it).
    """
    x = metrics.heatmap_argmax_px(hm)  # (B, V, J, 2)
    peak = hm.flatten(-2).amax(-1)  # (B, V, J)
    w = (peak * ok[..., None]) if weighted else ((peak > 0) & ok[..., None]).float()
    few = ((w > 0).sum(1, keepdim=True) < 2).expand_as(w)
    w = torch.where(few, ok[..., None].float().expand_as(w), w)
    return x, w


def triangulate_argmax(heatmaps: Tensor, projections_hm: Tensor, weighted: bool = False) -> Tensor:
    """DLT triangulation of the heatmap maxima, (B, V, J, h, w) → (B, J, 3) metres.

    ``weighted=True`` is the confidence-weighted DLT: each view's equations are scaled by its heatmap maximum.
    """
    _check_inputs(heatmaps, projections_hm)
    ok = usable_views(heatmaps)
    x, w = _argmax_weights(_clean(heatmaps, ok), ok, weighted)
    return geometry.triangulate_dlt(projections_hm.to(heatmaps.device), x, w)


def triangulate_ransac(heatmaps: Tensor, projections_hm: Tensor, threshold_px: float | None = None,
                       weighted: bool = False) -> Tensor:
    """RANSAC over views, per joint: (B, V, J, h, w) → (B, J, 3) metres. Exhaustive, hence deterministic.

    Every pair of usable views gives a hypothesis (two-view DLT of the maxima, in front of both cameras); its inliers
    are the views whose maximum lies within ``threshold_px`` heatmap pixels of its reprojection (default
    ``max(1.5, 0.04·w)``). The hypothesis with most inliers wins (ties: smallest inlier error), and the joint is
    re-triangulated from its inliers (confidence-weighted if ``weighted``).
    """
    _check_inputs(heatmaps, projections_hm)
    ok = usable_views(heatmaps)
    return _ransac(_clean(heatmaps, ok), ok, projections_hm.to(heatmaps.device), threshold_px, weighted)


def _ransac(hm: Tensor, ok: Tensor, P: Tensor, threshold_px: float | None, weighted: bool) -> Tensor:
    thr = max(1.5, 0.04 * hm.shape[-1]) if threshold_px is None else threshold_px
    x, w = _argmax_weights(hm, ok, weighted)
    return ransac_points(x, P, thr, w, weighted)


def ransac_points(x_px: Tensor, projections: Tensor, threshold_px: float, weights: Tensor | None = None,
                  weighted: bool = False) -> Tensor:
    """RANSAC triangulation of 2D points (B, V, J, 2) → (B, J, 3), per joint, exhaustive over pairs of views.

    ``weights`` (B, V, J) ≥ 0 (default 1) mark usable observations (> 0) and, with ``weighted``, scale the final DLT.
    Each pair of usable views gives a two-view DLT hypothesis, valid when in front of both cameras; a view is its inlier
    when its point lies within ``threshold_px`` of the hypothesis' reprojection. Most inliers wins (ties: smallest
    summed inlier error, then the first pair); the joint is re-triangulated from that hypothesis' inliers.
    """
    if x_px.dim() != 4 or x_px.shape[-1] != 2 or projections.shape != (x_px.shape[1], 3, 4):
        raise ValueError(f"need x_px (B, V, J, 2) and projections (V, 3, 4), got {tuple(x_px.shape)} and "
                         f"{tuple(projections.shape)}")
    B, V, J, _ = x_px.shape
    projections = projections.to(x_px.device)
    thr = float(threshold_px)
    if not thr > 0:
        raise ValueError(f"threshold_px must be positive, got {threshold_px!r}")
    w = torch.ones(x_px.shape[:-1], dtype=x_px.dtype, device=x_px.device) if weights is None else weights.to(x_px.dtype)
    if w.shape != x_px.shape[:-1] or (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError(f"weights must be finite, non-negative and (B, V, J) = {tuple(x_px.shape[:-1])}")
    has = w > 0
    if (has.sum(1) < 2).any():
        raise ValueError("every (frame, joint) needs at least 2 views with positive weight")
    x = x_px
    pairs = torch.tensor(list(itertools.combinations(range(V), 2)), device=x.device)  # (Q, 2)
    Q = pairs.shape[0]
    onehot = F.one_hot(pairs, V).sum(1).to(x.dtype)  # (Q, V)
    pair_w = onehot[None, :, :, None] * has[:, None].to(x.dtype)  # (B, Q, V, J)
    pair_ok = pair_w.sum(2) == 2  # (B, Q, J): both views usable for this joint
    pair_w = torch.where(pair_ok[:, :, None], pair_w, onehot[None, :, :, None].expand_as(pair_w))
    hyp = geometry.triangulate_dlt(projections, x[:, None].expand(B, Q, V, J, 2), pair_w)  # (B, Q, J, 3)
    uv, z = _project(projections.to(hyp.dtype), hyp.reshape(B * Q, J, 3))
    uv, z = uv.reshape(B, Q, V, J, 2), z.reshape(B, Q, V, J)
    err = (uv - x[:, None]).norm(dim=-1)  # (B, Q, V, J): reprojection error of each hypothesis in each view
    in_front = ((z > 0) | (onehot[None, :, :, None] == 0)).all(2)  # (B, Q, J): in front of the pair's cameras
    valid = pair_ok & in_front
    inlier = (err < thr) & has[:, None] & (z > 0) & valid[:, :, None]
    count = inlier.sum(2).to(err.dtype)  # (B, Q, J)
    spread = torch.where(inlier, err, torch.zeros((), dtype=err.dtype, device=err.device)).sum(2) / (thr * (V + 1))
    score = torch.where(valid, count - spread, torch.full_like(count, -1.0))
    best = score.argmax(1)  # (B, J)
    keep = inlier.gather(1, best[:, None, None, :].expand(B, 1, V, J))[:, 0]  # (B, V, J)
    good = keep.sum(1) >= 2  # (B, J); else no consistent pair: plain DLT of all usable views
    base = w if weighted else has.to(w.dtype)
    final_w = torch.where(good[:, None], keep.to(w.dtype) * base, base)
    return geometry.triangulate_dlt(projections, x, final_w)


def estimate_root_m(heatmaps: Tensor, projections_hm: Tensor, threshold_px: float | None = None,
                    root: int = skeleton.ROOT) -> Tensor:
    """The root joint triangulated by :func:`triangulate_ransac` from its heatmaps, (B, 3) metres: the PSM centre."""
    return triangulate_ransac(heatmaps[:, :, root:root + 1], projections_hm, threshold_px)[:, 0]
