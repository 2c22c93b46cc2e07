"""3D pose from multi-view 2D heatmaps: triangulation baselines, the Pictorial Structure Model (PSM) and the Recursive
PSM (RPSM) of Cross View Fusion (Qiu et al., ICCV 2019, Sec. 4), the 3D step behind MetaFuse Tables 2-3.

**Pixel frame.** Everything here works in *heatmap* pixels: pass projection matrices scaled to the heatmap resolution
(:func:`heatmap_projections` turns the (V, 3, 4) image-resolution matrices of a rig or a ``MultiViewBatch`` into them).
Heatmaps are (B, V, J, h, w) with pixel centres at integer coordinates; a 2D result in image pixels is
``geometry.scale_pixels(x_hm, heatmap_px, image_px)``. World points are metres, Z up.

**No ground truth at test time.** The public reference code centres its 3D grid on the ground-truth root and reads limb
lengths from the ground-truth pose of the test frame. Here the grid is centred on the root *estimated* from the heatmaps
(RANSAC triangulation, :func:`estimate_root_m`) and limb lengths are scored against statistics of *training* motions
(:func:`limb_length_stats`).

**Model.** A pose is a choice of one state (3D location) per joint; its log score is
``Σ_j log φ_j(X_j) + Σ_(p,c) log ψ_pc(|X_p − X_c|)``. The unary is ``φ_j(X) = Σ_views heatmap_vj(project_v(X))``
(bilinear sampling; a location outside a view, or behind it, contributes 0 for that view), used as
``log(φ + floor·max φ)`` so that a joint without evidence is not −∞. The limb compatibility is flat inside a band and
Gaussian outside it, ``log ψ(d) = −½ (max(0, |d − μ| − band) / σ_eff)²``, with μ and σ the training-motion mean and
spread of the limb's length, ``band = 2σ + s/2`` and ``σ_eff² = σ² + s²/6`` for a grid of spacing s (each end snapped
to a cell of side s moves the length by about s/√6). The flat band plays the role of the reference code's length
tolerance: a Gaussian alone would fight the unary over the quantisation of every limb and pull the whole skeleton
rigidly away from the evidence. The skeleton is a tree, so the best pose is found exactly by max-product (Viterbi)
message passing, leaves to root in log space, then back-tracking the argmax (:func:`max_product_tree`).

* PSM (stage 0): one cubic grid of ``grid_bins³`` cell centres, shared by all joints, over a ``cube_size_mm`` cube
  around the estimated root (:func:`psm_grid_m`). The book's grids are odd (15 at full, 7 at smoke), so that the cube
  centre, the estimated root, is a cell centre: on the paper's even 16³ grid it falls on a cell corner, and the
  pelvis can never be nearer than s·√3/2 (108 mm at 2 m / 16) to where the evidence puts it.
* RPSM (stages 1..T, Cross View Fusion Sec. 4: "for each joint, we discretize the space around its current location
  into a 2×2×2 grid", and the bounding volume of that grid shrinks by the number of bins every stage): every joint
  gets its own ``rpsm_bins³`` grid around its current estimate; all joints are refined together with the pairwise term
  recomputed on the fly from the current candidates. At stage t the candidates sit at ±s/2^t per axis around the
  estimate (s the PSM cell: a bounding volume of side s/2^(t−1), halved every stage, as the reference code's
  ``cur_grid_size / recur_nbins``), so T stages can move a joint by up to s (any point of its PSM cell and the
  neighbouring half cells) and resolve it to ``final_cell_mm = s / 2^(T−1)``. The paper runs T = 10 (the profiles'
  ``rpsm_stages``): 0.26 mm at 15³ over 2 m, far below any heatmap's resolution, so the 3D error is the evidence's,
  not the grid's. The limb band keeps the PSM's width at every stage (as
  the reference keeps its tolerance): the estimate of a stage is still off by up to a PSM cell, so a band that shrank
  with the grid would lock the skeleton before the unary has placed it.

**Reading heatmaps between pixels (two options beyond the paper).** ``antialias=True`` smooths every heatmap, per
frame and view, with a Gaussian of half the stage's grid spacing as projected into that view, before the grid reads it:
a grid much coarser than the heatmap peaks otherwise samples between them and sees only the floor (8 bins over 2 m
against σ = 1 px peaks at 40 mm/px: 0.6 m error without, 17 mm with, in ``tests/test_pictorial.py``). At the paper's
sizes (16 bins, σ = 2 px at 64²) it changes nothing measurable. ``interpolation="bicubic"`` reads sub-pixel peaks
that bilinear interpolation flattens onto pixel centres. Both default to the paper's unary (off, bilinear); the book's
profiles switch ``antialias`` on (``profile.pictorial.antialias``).

**Batched, and its memory.** B frames go through one set of tensor ops: the unary is (B, J, S) from one
``grid_sample`` over all views; the PSM pairwise never exists as (B, limbs, G³, G³) (3375² per limb and frame at
G = 15, 2.7 GiB per limb for B = 64). Every frame's PSM grid is the same lattice up to a translation, so the distance
between two cells depends only on their index offset: one table of squared integer offsets (G³, G³)
(:func:`lattice_sq_offsets`, int16, 22 MiB at G = 15) serves all frames, limbs and calls, built once per grid and
device and kept in a small LRU (it does not depend on the cameras); each limb's compatibility is a lookup in its table
of the ≤ 3(G−1)² + 1 possible values. Messages are exact max-plus products computed in chunks of parent cells, in
buffers allocated once per call, so the largest temporary is ``B × chunk × G³`` floats, bounded by ``chunk_elements``
(default 2²⁷ floats = 512 MiB; B = 64, G = 15 → chunks of 621 cells), plus the offset table. RPSM stages need only
(B, limbs, n³, n³) with n³ = 8. This module is the reference; :class:`mfcore.rpsm_solver.RPSMSolver` gives the same
poses with everything that depends only on the rig, the grid and the limb statistics built once, for live use one
frame per call (``benchmarks/bench_rpsm.py`` measures both, batched and one frame per call).

**Bad views.** A view whose heatmaps for a frame are all zero or contain NaN/inf is ignored with a warning (it never
turns into a NaN pose); a frame left with fewer than 2 usable views is a ``ValueError`` naming it.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from . import data, geometry, metrics, skeleton

Tensor = torch.Tensor

ESTIMATORS = ("triangulation", "weighted_triangulation", "ransac", "psm", "rpsm")
DEFAULT_CHUNK_ELEMENTS = 2**27  # floats in the largest max-plus temporary (512 MiB in float32)


class LimbLengthStats(NamedTuple):
    """Mean and standard deviation of every limb's length in metres, (L,) each, limbs in ``skeleton.LIMBS`` order."""

    mean_m: Tensor
    std_m: Tensor


# --------------------------------------------------------------------------------------------------------- helpers


def _limbs(parents) -> tuple[tuple[int, int], ...]:
    """(parent, child) edges of a tree given by ``parents``, in child order (the order of ``skeleton.LIMBS``)."""
    parents = tuple(int(p) for p in parents)
    roots = [j for j, p in enumerate(parents) if p < 0]
    if len(roots) != 1 or any(p >= j for j, p in enumerate(parents) if p >= 0):
        raise ValueError(f"parents must describe one tree with every parent before its child, got {parents}")
    return tuple((p, c) for c, p in enumerate(parents) if p >= 0)


def limb_length_stats(joints_3d_m: Tensor, parents=skeleton.PARENTS) -> LimbLengthStats:
    """Limb-length statistics of *training* poses (N, J, 3) metres → :class:`LimbLengthStats` of (L,) tensors.

    These replace the test frame's ground-truth limb lengths that the reference code uses for its pairwise term.
    """
    limbs = _limbs(parents)
    if joints_3d_m.dim() != 3 or joints_3d_m.shape[1:] != (len(parents), 3) or joints_3d_m.shape[0] < 2:
        raise ValueError(f"joints_3d_m must be (N >= 2, J={len(parents)}, 3), got {tuple(joints_3d_m.shape)}")
    p = torch.tensor([a for a, _ in limbs], device=joints_3d_m.device)
    c = torch.tensor([b for _, b in limbs], device=joints_3d_m.device)
    lengths = (joints_3d_m[:, c].double() - joints_3d_m[:, p].double()).norm(dim=-1)  # (N, L)
    if not torch.isfinite(lengths).all():
        raise ValueError("joints_3d_m contains NaN or inf")
    return LimbLengthStats(lengths.mean(0).float(), lengths.std(0).float())


def heatmap_projections(projections: Tensor, image_px: int, heatmap_px: int) -> Tensor:
    """Projection matrices (V, 3, 4) at image resolution → the same cameras at heatmap resolution.

    Pixel centres stay at integers: x_hm = (x_img + 0.5)·heatmap_px/image_px − 0.5 (``geometry.scale_pixels``).
    """
    if projections.dim() != 3 or projections.shape[1:] != (3, 4):
        raise ValueError(f"projections must be (V, 3, 4), got {tuple(projections.shape)}")
    if image_px <= 0 or heatmap_px <= 0:
        raise ValueError(f"image_px and heatmap_px must be positive, got {image_px} and {heatmap_px}")
    s = heatmap_px / image_px
    A = torch.tensor([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]],
                     dtype=projections.dtype, device=projections.device)
    return A @ projections


def final_cell_mm(cube_size_mm: float, grid_bins: int, stages: int) -> float:
    """Side of the last grid cell: the PSM cell ``cube/grid_bins``, divided by 2^(stages−1) after ``stages`` stages."""
    s0 = cube_size_mm / grid_bins
    return s0 if stages <= 0 else s0 / 2 ** (stages - 1)


def _project(P: Tensor, X: Tensor) -> tuple[Tensor, Tensor]:
    """P (V, 3, 4), X (B, N, 3) → pixels (B, V, N, 2) and depth (B, V, N).

    Written element-wise (no matmul) so that a frame's result does not depend on how many frames share the batch.
    """
    P = P.to(X.dtype)[None, :, None]  # (1, V, 1, 3, 4)
    Xe = X[:, None, :, None, :]  # (B, 1, N, 1, 3)
    h = Xe[..., 0] * P[..., 0] + Xe[..., 1] * P[..., 1] + Xe[..., 2] * P[..., 2] + P[..., 3]  # (B, V, N, 3)
    z = h[..., 2]
    return h[..., :2] / z[..., None], z


def _check_inputs(heatmaps: Tensor, projections_hm: Tensor) -> None:
    if heatmaps.dim() != 5:
        raise ValueError(f"heatmaps must be (B, V, J, h, w), got {tuple(heatmaps.shape)}")
    B, V, J, h, w = heatmaps.shape
    if B < 1 or J < 1 or h < 2 or w < 2:
        raise ValueError(f"heatmaps need B, J >= 1 and h, w >= 2, got {tuple(heatmaps.shape)}")
    if projections_hm.dim() != 3 or projections_hm.shape != (V, 3, 4):
        raise ValueError(f"projections_hm must be (V={V}, 3, 4) at heatmap resolution, "
                         f"got {tuple(projections_hm.shape)}")
    if V < 2:
        raise ValueError(f"3D estimation needs at least 2 views, got V={V}")


def usable_flags(heatmaps: Tensor) -> Tensor:
    """(B, V) bool: the view's heatmaps for that frame are finite and not all ≤ 0 (on the heatmaps' device, no sync)."""
    finite = torch.isfinite(heatmaps).flatten(2).all(-1)  # (B, V)
    signal = (heatmaps.nan_to_num(0.0, 0.0, 0.0) > 0).flatten(2).any(-1)
    return finite & signal


def report_unusable(ok: Tensor, stacklevel: int = 2) -> None:
    """Warn about the (frame, view) pairs that ``ok`` (B, V) rules out (``stacklevel`` as :func:`warnings.warn`'s); a
    ``ValueError`` naming the frames left with fewer than 2 usable views."""
    if not bool(ok.all()):
        bad = (~ok).nonzero().tolist()
        warnings.warn(f"pictorial: ignoring {len(bad)} view(s) with all-zero or non-finite heatmaps, as (frame, view): "
                      f"{bad[:12]}{' …' if len(bad) > 12 else ''}", RuntimeWarning, stacklevel=stacklevel)
        short = (ok.sum(1) < 2).nonzero().flatten().tolist()
        if short:
            raise ValueError(f"frame(s) {short[:12]}{' …' if len(short) > 12 else ''} have fewer than 2 usable views "
                             f"(the others are all-zero or NaN); 3D estimation needs at least 2")


def usable_views(heatmaps: Tensor) -> Tensor:
    """(B, V) bool: the view's heatmaps for that frame are finite and not all ≤ 0. Warns about the others.

    Raises ``ValueError`` naming the frames left with fewer than 2 usable views.
    """
    ok = usable_flags(heatmaps)
    report_unusable(ok, stacklevel=4)
    return ok


def _clean(heatmaps: Tensor, ok: Tensor) -> Tensor:
    """Float32 heatmaps with unusable views zeroed and negative responses clamped to 0."""
    hm = heatmaps.float()
    return torch.where(ok[:, :, None, None, None], hm, torch.zeros((), device=hm.device)).clamp_min(0.0)


# ------------------------------------------------------------------------------------------- synthetic heatmaps


def render_gaussian_heatmaps(joints_3d_m: Tensor, projections_hm: Tensor, heatmap_px: int, sigma_px: float,
                             jitter_px: float = 0.0, outlier_fraction: float = 0.0, seed: int = 0) -> Tensor:
    """Ideal heatmaps: a unit-peak Gaussian of ``sigma_px`` at every projected joint, (B, J, 3) → (B, V, J, h, h).

    For tests, benchmarks and the quantisation study. ``jitter_px`` moves each Gaussian by N(0, jitter²) per axis;
    ``outlier_fraction`` of the (frame, view, joint) channels put their peak at a uniformly random pixel instead
    (a detector failure). Joints behind a camera give an all-zero channel. Deterministic in ``seed``.
    """
    if sigma_px <= 0 or jitter_px < 0 or not 0.0 <= outlier_fraction <= 1.0 or heatmap_px < 2:
        raise ValueError(f"need sigma_px > 0, jitter_px >= 0, 0 <= outlier_fraction <= 1 and heatmap_px >= 2; got "
                         f"{sigma_px}, {jitter_px}, {outlier_fraction}, {heatmap_px}")
    dev = joints_3d_m.device
    x, z = _project(projections_hm.float().to(dev), joints_3d_m.float())  # (B, V, J, 2), (B, V, J)
    gen = torch.Generator().manual_seed(seed)
    if jitter_px > 0:
        x = x + jitter_px * torch.randn(x.shape, generator=gen).to(dev)
    if outlier_fraction > 0:
        swap = (torch.rand(z.shape, generator=gen) < outlier_fraction).to(dev)
        anywhere = (torch.rand(x.shape, generator=gen) * (heatmap_px - 1)).to(dev)
        x = torch.where(swap[..., None], anywhere, x)
    return data.gaussian_heatmaps(x, heatmap_px, sigma_px) * (z > 0)[..., None, None]


# ------------------------------------------------------------------------------------------------ triangulation


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


# -------------------------------------------------------------------------------------------------- max-product


MessageFn = Callable[[int, Tensor], tuple[Tensor, Tensor]]


def _dense_messages(log_pairwise: Tensor) -> MessageFn:
    """Messages from a dense (B, L, S_parent, S_child) log pairwise table."""
    def message(limb: int, energy_child: Tensor) -> tuple[Tensor, Tensor]:
        return (log_pairwise[:, limb] + energy_child[:, None, :]).max(-1)
    return message


def max_product_tree(log_unary: Tensor, log_pairwise: Tensor | MessageFn, parents=skeleton.PARENTS) -> Tensor:
    """Exact MAP states of a tree model by max-product in log space, (B, J, S) → (B, J) state indices.

    Maximises Σ_j log_unary[b, j, s_j] + Σ_l log_pairwise[b, l, s_parent, s_child] over all state choices, l running
    over the (parent, child) limbs of ``parents`` in child order. ``log_pairwise`` is a (B or 1, L, S, S) tensor or a
    function ``(limb, energy_child (B, S)) -> (max (B, S), argmax (B, S))`` that computes the message to the parent
    without the table. Messages go from the leaves to the root, then the argmax is back-tracked from the root.
    """
    limbs = _limbs(parents)
    if log_unary.dim() != 3 or log_unary.shape[1] != len(parents):
        raise ValueError(f"log_unary must be (B, J={len(parents)}, S), got {tuple(log_unary.shape)}")
    if isinstance(log_pairwise, Tensor):
        S = log_unary.shape[2]
        if log_pairwise.dim() != 4 or log_pairwise.shape[1:] != (len(limbs), S, S):
            raise ValueError(f"log_pairwise must be (B, L={len(limbs)}, S={S}, S={S}), got {tuple(log_pairwise.shape)}")
        message = _dense_messages(log_pairwise)
    else:
        message = log_pairwise
    J = log_unary.shape[1]
    energy = [log_unary[:, j] for j in range(J)]  # (B, S) each: unary + messages from the subtree
    back = {}
    for limb in reversed(range(len(limbs))):  # children after parents: reversed order is leaves first
        p, c = limbs[limb]
        best, arg = message(limb, energy[c])
        energy[p] = energy[p] + best
        back[c] = arg  # (B, S_parent): the child's best state for every parent state
    state = [None] * J
    root = next(j for j, p in enumerate(parents) if p < 0)
    state[root] = energy[root].argmax(-1)
    for p, c in limbs:
        state[c] = back[c].gather(1, state[p][:, None])[:, 0]
    return torch.stack(state, dim=1)


# ------------------------------------------------------------------------------------------------- PSM and RPSM


def _check_stats(stats: LimbLengthStats, parents) -> tuple[tuple[int, int], ...]:
    limbs = _limbs(parents)
    mean, std = stats
    if mean.shape != (len(limbs),) or std.shape != (len(limbs),):
        raise ValueError(f"limb stats must be ({len(limbs)},) each for these parents, got {tuple(mean.shape)} and "
                         f"{tuple(std.shape)}")
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (mean > 0).all() and (std >= 0).all()):
        raise ValueError("limb stats must be finite with mean > 0 and std >= 0")
    return limbs


def _log_unary(hm: Tensor, P: Tensor, points: Tensor, floor: float, mode: str = "bilinear",
               size: Tensor | None = None) -> Tensor:
    """log(φ + floor·max φ) at ``points`` (B, Jp, S, 3), Jp ∈ {1 (shared grid), J} → (B, J, S).

    φ_j(X) = Σ_v heatmap_vj(project_v(X)), read with ``mode`` ("bilinear" or "bicubic", clamped at 0); a point outside
    a view's window or behind it adds 0 for that view. One ``grid_sample`` for all frames, views and joints. The floor
    (relative to the best point) keeps log φ finite. ``size`` is ``[w − 1, h − 1]`` on the device when the caller has it
    (a CUDA graph cannot copy it from the host).
    """
    B, V, J, h, w = hm.shape
    Jp, S = points.shape[1], points.shape[2]
    uv, z = _project(P.float(), points.reshape(B, Jp * S, 3).float())  # (B, V, Jp·S, 2), (B, V, Jp·S)
    inside = (z > 0) & (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)
    if size is None:
        size = torch.tensor([w - 1, h - 1], dtype=uv.dtype, device=uv.device)
    grid = (2.0 * uv / size - 1.0).nan_to_num(0.0, 0.0, 0.0)
    if Jp == 1:  # one grid for all joints: sample every channel at the same points
        val = F.grid_sample(hm.reshape(B * V, J, h, w), grid.reshape(B * V, 1, S, 2), mode=mode,
                            padding_mode="border", align_corners=True).reshape(B, V, J, S)
        val = val * inside[:, :, None, :]
    else:  # a grid per joint: one single-channel image per (frame, view, joint)
        val = F.grid_sample(hm.reshape(B * V * J, 1, h, w), grid.reshape(B * V * J, 1, S, 2), mode=mode,
                            padding_mode="border", align_corners=True).reshape(B, V, J, S)
        val = val * inside.reshape(B, V, J, S)
    val = val.clamp_min(0.0)  # bicubic can undershoot next to a sharp peak
    phi = val[:, 0]
    for v in range(1, V):  # sum over views, element-wise (independent of the batch size)
        phi = phi + val[:, v]
    top = phi.amax(-1, keepdim=True)
    return torch.log(phi + floor * top + 1e-30)


ANTIALIAS_FRACTION = 0.5  # σ of the smoothing, as a fraction of the projected grid spacing


def _smooth_to_grid(hm: Tensor, P: Tensor, centre_m: Tensor, spacing_m: float) -> Tensor:
    """Heatmaps low-pass filtered to the scale of a grid of ``spacing_m`` seen at ``centre_m`` (B, 3): (B, V, J, h, w).

    A grid much coarser than a heatmap's peak samples it between its cells and misses it (aliasing). Each (frame, view)
    gets a Gaussian blur of σ = ``ANTIALIAS_FRACTION`` × the projected spacing (RMS over the three axes, in heatmap
    px), truncated at 3σ per channel (so a frame's result does not depend on the batch); σ < 0.3 px leaves it as is.
    """
    sigma, radius = blur_sigma_px(P, centre_m, spacing_m, hm.shape[-2:])
    r = int(radius.max())
    return hm if r == 0 else blur(hm, sigma, radius, r)


def blur_sigma_px(P: Tensor, centre_m: Tensor, spacing_m, heatmap_hw) -> tuple[Tensor, Tensor]:
    """σ in heatmap px of :func:`_smooth_to_grid`'s blur for a grid of ``spacing_m`` at ``centre_m`` (B, 3), and its
    radius ``ceil(3σ)`` (0 where σ < 0.3 px: no blur): (B, V) each, or (B, T, V) for a sequence of T spacings."""
    h, w = int(heatmap_hw[0]), int(heatmap_hw[1])
    spacings = torch.tensor([spacing_m] if isinstance(spacing_m, (int, float)) else list(spacing_m),
                            dtype=torch.float32, device=centre_m.device)  # (T,)
    T, B = spacings.shape[0], centre_m.shape[0]
    steps = torch.eye(3, device=centre_m.device) * spacings[:, None, None]  # (T, 3, 3)
    c = centre_m.float()[:, None, None, :]  # (B, 1, 1, 3)
    pts = torch.cat([c.expand(B, T, 1, 3), c + steps[None]], 2)  # (B, T, 4, 3)
    uv, _ = _project(P.float(), pts.reshape(B, T * 4, 3))  # (B, V, T·4, 2)
    uv = uv.reshape(B, -1, T, 4, 2)
    foot = (uv[..., 1:, :] - uv[..., :1, :]).norm(dim=-1).pow(2).mean(-1).sqrt()  # (B, V, T) px
    sigma = (ANTIALIAS_FRACTION * foot).nan_to_num(0.0, 0.0, 0.0).clamp(0.0, float(max(h, w)))
    radius = torch.where(sigma < 0.3, torch.zeros_like(sigma), torch.ceil(3 * sigma))
    if isinstance(spacing_m, (int, float)):
        return sigma[..., 0], radius[..., 0]
    return sigma.transpose(1, 2), radius.transpose(1, 2)


def blur(hm: Tensor, sigma: Tensor, radius: Tensor, r: int) -> Tensor:
    """Separable Gaussian blur of (B, V, J, h, w) heatmaps, σ (B, V) px truncated at ``radius`` (B, V), in a kernel of
    ``2r + 1`` taps (r ≥ every radius; the taps beyond a channel's radius are 0)."""
    B, V, J, h, w = hm.shape
    x = torch.arange(-r, r + 1, device=hm.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma[..., None].clamp_min(1e-3)) ** 2) * (x.abs() <= radius[..., None])  # (B, V, K)
    k = (k / k.sum(-1, keepdim=True))[:, :, None].expand(B, V, J, 2 * r + 1).reshape(B * V * J, 1, 2 * r + 1)
    y = F.conv2d(hm.reshape(1, B * V * J, h, w), k[..., None], padding=(r, 0), groups=B * V * J)  # along y
    y = F.conv2d(y, k[:, :, None, :], padding=(0, r), groups=B * V * J)  # along x
    return y.reshape(B, V, J, h, w)


def _limb_terms(stats: LimbLengthStats, spacing_m: float, min_std_m: float, device) -> tuple[Tensor, Tensor, Tensor]:
    """Per limb (L,): mean length μ, tolerated band 2σ + s/2 and fall-off σ_eff = √(σ² + s²/6), metres."""
    std = stats.std_m.to(device).float().clamp_min(min_std_m)
    return stats.mean_m.to(device).float(), 2.0 * std + spacing_m / 2.0, torch.sqrt(std**2 + spacing_m**2 / 6.0)


def _length_log_compat(d_m: Tensor, mean_m: Tensor, band_m: Tensor, sigma_m: Tensor) -> Tensor:
    """log ψ(d) = −½ (max(0, |d − μ| − band) / σ_eff)²: flat inside the band, Gaussian fall-off outside."""
    return -0.5 * (((d_m - mean_m).abs() - band_m).clamp_min(0.0) / sigma_m) ** 2


OFFSET_CACHE_SIZE = 2  # lattices whose offset table is kept (the book uses one grid; the quantisation study sweeps)


@functools.lru_cache(maxsize=OFFSET_CACHE_SIZE)
def lattice_sq_offsets(grid_bins: int, device: str = "cpu") -> Tensor:
    """Squared integer offsets between every two cells of a ``grid_bins³`` lattice: (G³, G³) int16, built once per grid.

    Entry (a, c) is |i_a − i_c|² for the integer cell indices i (x slowest, z fastest, the order of the PSM grid);
    values are ≤ 3(G−1)² (588 at G = 15), so int16 holds them up to G = 105. Every frame's PSM grid is the same lattice
    up to a translation and the table does not depend on the cameras, so one table per (grid, device) serves every
    frame, limb and call: an LRU of :data:`OFFSET_CACHE_SIZE` tables (``lattice_sq_offsets.cache_info()``). Built by
    broadcasting three (G, G) per-axis tables, so the only full-size tensor is the int16 result (22 MiB at G = 15,
    32 MiB at G = 16, 364 MiB at the quantisation study's G = 24).
    """
    G = int(grid_bins)
    if G < 1 or 3 * (G - 1) ** 2 > torch.iinfo(torch.int16).max:
        raise ValueError(f"grid_bins must be in 1..105 for an int16 offset table, got {grid_bins!r}")
    i = torch.arange(G, device=device, dtype=torch.int16)
    d2 = (i[:, None] - i[None, :]) ** 2  # (G, G) per axis
    xy = d2[:, None, :, None] + d2[None, :, None, :]  # (G, G, G, G): (x_a, y_a, x_c, y_c)
    table = xy[:, :, None, :, :, None] + d2[None, None, :, None, None, :]  # (x_a, y_a, z_a, x_c, y_c, z_c)
    return table.reshape(G**3, G**3)


def _grid_messages(G: int, spacing_m: float, terms: tuple[Tensor, Tensor, Tensor], batch: int, chunk_elements: int,
                   device) -> MessageFn:
    """Exact messages on the shared PSM lattice without a (G³, G³) table per limb and frame.

    The squared integer distance between cells a and c, Δ(a, c) = |i_a − i_c|², takes ≤ 3(G−1)² + 1 values; each limb's
    log ψ is a lookup in its table of those values, done per chunk of parent cells. Δ comes from the cached
    :func:`lattice_sq_offsets`; the chunk's indices, log ψ and the (B, chunk, G³) max-plus temporary live in buffers
    allocated once per call and reused for every limb and chunk (a fresh 100 MB tensor per limb costs as much as the
    arithmetic on a CPU).
    """
    S = G**3
    values = torch.arange(3 * (G - 1) ** 2 + 1, device=device, dtype=torch.float32)
    mean, band, sigma = (t[:, None] for t in terms)
    tables = _length_log_compat(spacing_m * values.sqrt()[None, :], mean, band, sigma)  # (L, K)
    sq = lattice_sq_offsets(G, str(torch.device(device)))  # (S, S) int16, shared by all calls on this grid
    chunk = max(1, min(S, chunk_elements // max(1, batch * S)))
    index_buf = torch.empty(chunk * S, dtype=torch.int32, device=device)
    one_chunk = chunk == S  # (small batches): the int32 indices are converted once per call, not per limb
    if one_chunk:
        index_buf.copy_(sq.reshape(-1))
    psi_buf = torch.empty(chunk * S, dtype=torch.float32, device=device)
    sum_buf = torch.empty(batch * chunk * S, dtype=torch.float32, device=device)

    def message(limb: int, energy_child: Tensor) -> tuple[Tensor, Tensor]:
        B = energy_child.shape[0]
        best, arg = [], []
        for a in range(0, S, chunk):
            n = min(chunk, S - a)
            idx = index_buf[:n * S]
            if not one_chunk:
                idx.copy_(sq[a:a + n].reshape(-1))  # int16 -> int32 (index_select takes int32 or int64)
            if B == 1:  # one frame: look log ψ up straight into the sum and add in place
                total = sum_buf[:n * S]
                torch.index_select(tables[limb], 0, idx, out=total)
                total = total.view(1, n, S)
                total.add_(energy_child[:, None, :])
            else:
                log_psi = psi_buf[:n * S]
                torch.index_select(tables[limb], 0, idx, out=log_psi)
                total = sum_buf[:B * n * S].view(B, n, S)
                torch.add(log_psi.view(1, n, S), energy_child[:, None, :], out=total)
            m, i = total.max(-1)  # (B, n)
            best.append(m)
            arg.append(i)
        return torch.cat(best, 1), torch.cat(arg, 1)
    return message


def _prepare(heatmaps, projections_hm, stats, parents):
    _check_inputs(heatmaps, projections_hm)
    limbs = _check_stats(stats, parents)
    if heatmaps.shape[2] != len(parents):
        raise ValueError(f"heatmaps have J={heatmaps.shape[2]} joints but parents describe {len(parents)}")
    ok = usable_views(heatmaps)
    return _clean(heatmaps, ok), projections_hm.to(heatmaps.device), limbs


def _psm_stage(hm, P, stats, parents, grid_bins, cube_size_mm, centre_m, floor, min_std_m, chunk_elements, mode):
    """The PSM on ``hm`` (already smoothed to the grid where antialiasing is on) → (B, J, 3)."""
    B, V, J = hm.shape[:3]
    G = int(grid_bins)
    s = cube_size_mm / 1000.0 / G
    points = psm_grid_m(centre_m, G, cube_size_mm)  # (B, G³, 3): cell centres
    log_u = _log_unary(hm, P, points[:, None], floor, mode)  # (B, J, G³)
    message = _grid_messages(G, s, _limb_terms(stats, s, min_std_m, hm.device), B, chunk_elements, hm.device)
    states = max_product_tree(log_u, message, parents)  # (B, J)
    return points.gather(1, states[..., None].expand(B, J, 3))


def psm_grid_m(centre_m: Tensor, grid_bins: int, cube_size_mm: float) -> Tensor:
    """Cell centres of the PSM grid, (B, 3) centres → (B, G³, 3) metres, x slowest and z fastest.

    ``grid_bins`` cells of side s = cube/G per axis, centred on ``centre_m``: cell i sits at (i + ½ − G/2)·s. With an
    odd G the middle cell, index (G³ − 1)/2, is the centre itself (the estimated root is a state of the model); with
    an even G, as the paper's 16, the centre falls on a cell corner and the nearest state is s·√3/2 away from it.
    """
    G = int(grid_bins)
    s = cube_size_mm / 1000.0 / G
    axis = (torch.arange(G, device=centre_m.device, dtype=torch.float32) - (G - 1) / 2) * s
    offsets = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # (G³, 3)
    return centre_m.float()[:, None, :] + offsets[None]


def _rpsm_stage(hm, P, pose_m, limb_index, terms, parents, spacing_m, bins, floor, mode):
    """One RPSM stage on ``hm`` (already smoothed to this stage's spacing where antialiasing is on): every joint's
    ``bins³`` candidates at ±spacing/2 around its estimate, the tree solved again → (B, J, 3). ``limb_index`` (parent,
    child) index tensors and the limb ``terms`` are the same for every stage (built once per call)."""
    B, J = pose_m.shape[:2]
    axis = (torch.arange(bins, device=hm.device, dtype=torch.float32) - (bins - 1) / 2) * spacing_m
    offsets = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # (n³, 3)
    cand = pose_m[:, :, None, :] + offsets  # (B, J, n³, 3)
    log_u = _log_unary(hm, P, cand, floor, mode)  # (B, J, n³)
    p, c = limb_index
    d = (cand[:, p, :, None, :] - cand[:, c, None, :, :]).norm(dim=-1)  # (B, L, n³, n³), on the fly
    mean, band, sigma = (t[:, None, None] for t in terms)
    log_pw = _length_log_compat(d, mean, band, sigma)  # (B, L, n³, n³)
    states = max_product_tree(log_u, log_pw, parents)
    return cand.gather(2, states[:, :, None, None].expand(B, J, 1, 3))[:, :, 0]


def check_rpsm_settings(grid_bins, cube_size_mm, stages, rpsm_bins, floor, interpolation) -> None:
    """The RPSM's settings, each a ``ValueError`` naming the bad value and what is allowed."""
    if isinstance(grid_bins, bool) or not isinstance(grid_bins, int) or grid_bins < 2:
        raise ValueError(f"grid_bins must be an int >= 2, got {grid_bins!r}")
    if isinstance(rpsm_bins, bool) or not isinstance(rpsm_bins, int) or rpsm_bins < 2:
        raise ValueError(f"rpsm_bins must be an int >= 2, got {rpsm_bins!r}")
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
        raise ValueError(f"stages must be an int >= 0, got {stages!r}")
    if not (cube_size_mm > 0 and math.isfinite(cube_size_mm)):
        raise ValueError(f"cube_size_mm must be positive, got {cube_size_mm!r}")
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor!r}")
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}")


def psm(heatmaps: Tensor, projections_hm: Tensor, stats: LimbLengthStats, grid_bins: int, cube_size_mm: float,
        centre_m: Tensor | None = None, parents=skeleton.PARENTS, floor: float = 1e-3, min_std_m: float = 0.005,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, interpolation: str = "bilinear",
        antialias: bool = False) -> Tensor:
    """Pictorial Structure Model (Cross View Fusion Sec. 4): (B, V, J, h, w) heatmaps → (B, J, 3) metres.

    A ``grid_bins³`` lattice of cell centres over a ``cube_size_mm`` cube centred on ``centre_m`` (B, 3), by default
    the root estimated from the heatmaps (:func:`estimate_root_m`), never the ground truth. Exact MAP by max-product.
    ``floor`` is the unary floor relative to the best cell; ``min_std_m`` a lower bound on the limb-length spread;
    ``interpolation`` how heatmaps are read between pixels ("bilinear", as the paper, or "bicubic"); ``antialias``
    smooths the heatmaps to the scale of each stage's grid before reading them (not in the paper; it keeps a grid much
    coarser than the heatmap peaks from sampling between them).
    """
    return rpsm(heatmaps, projections_hm, stats, grid_bins, cube_size_mm, 0, centre_m=centre_m, parents=parents,
                floor=floor, min_std_m=min_std_m, chunk_elements=chunk_elements, interpolation=interpolation,
                antialias=antialias)


def rpsm(heatmaps: Tensor, projections_hm: Tensor, stats: LimbLengthStats, grid_bins: int, cube_size_mm: float,
         stages: int, rpsm_bins: int = 2, centre_m: Tensor | None = None, parents=skeleton.PARENTS,
         floor: float = 1e-3, min_std_m: float = 0.005, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
         interpolation: str = "bilinear", antialias: bool = False,
         return_stages: bool = False) -> Tensor | list[Tensor]:
    """Recursive PSM (Cross View Fusion Sec. 4): the PSM, then ``stages`` joint refinements, → (B, J, 3) metres.

    Stage t ≥ 1 gives each joint a ``rpsm_bins³`` grid of spacing ``cube/grid_bins/2^(t−1)`` (candidates at
    ±cube/grid_bins/2^t per axis for 2 bins) centred on its current estimate and solves the tree again over all joints at once, the limb terms recomputed from the new candidates.
    ``return_stages=True`` returns the list of the ``stages + 1`` poses (PSM first). Other arguments as :func:`psm`.
    """
    hm, P, limbs = _prepare(heatmaps, projections_hm, stats, parents)
    check_rpsm_settings(grid_bins, cube_size_mm, stages, rpsm_bins, floor, interpolation)
    B = hm.shape[0]
    if centre_m is None:
        root = next(j for j, p in enumerate(parents) if p < 0)
        ok = (hm.flatten(2) > 0).any(-1)  # the usable views (others were zeroed by _prepare)
        centre_m = _ransac(hm[:, :, root:root + 1], ok, P, None, False)[:, 0]
    elif centre_m.shape != (B, 3) or not torch.isfinite(centre_m).all():
        raise ValueError(f"centre_m must be a finite (B={B}, 3) tensor, got {tuple(centre_m.shape)}")
    centre_m = centre_m.to(hm.device)
    s0 = cube_size_mm / 1000.0 / grid_bins  # the PSM cell: stage 1's spacing, and the limb band of every stage
    hm_s = _smooth_to_grid(hm, P, centre_m, s0) if antialias else hm  # shared by the PSM and stage 1
    pose = _psm_stage(hm_s, P, stats, parents, grid_bins, cube_size_mm, centre_m, floor, min_std_m, chunk_elements,
                      interpolation)
    poses = [pose]
    limb_index = (torch.tensor([a for a, _ in limbs], device=hm.device),
                  torch.tensor([b for _, b in limbs], device=hm.device))
    terms = _limb_terms(stats, s0, min_std_m, hm.device)
    smoothing = antialias
    for t in range(1, stages + 1):
        spacing = s0 / 2 ** (t - 1)
        if smoothing and t > 1:
            hm_s = _smooth_to_grid(hm, P, centre_m, spacing)
            # the blur's σ shrinks with the spacing: once no (frame, view) needs one, no later stage does either, and
            # the stages skip the smoothing (and its device sync) from then on
            smoothing = hm_s is not hm
        pose = _rpsm_stage(hm_s, P, pose, limb_index, terms, parents, spacing, rpsm_bins, floor, interpolation)
        poses.append(pose)
    return poses if return_stages else pose


def estimate_3d(estimator: str, heatmaps: Tensor, projections_hm: Tensor, stats: LimbLengthStats | None = None,
                sizes=None, batch_frames: int | None = None) -> Tensor:
    """One of :data:`ESTIMATORS` on (B, V, J, h, w) heatmaps → (B, J, 3) metres; ``sizes`` is ``profile.pictorial``.

    ``stats`` and ``sizes`` are needed by "psm" and "rpsm" only. Frames go through in calls of ``batch_frames``
    (default ``sizes.batch_frames``, else all at once); the result does not depend on it.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if estimator in ("psm", "rpsm") and (stats is None or sizes is None):
        raise ValueError(f"estimator {estimator!r} needs limb-length stats and the profile's pictorial sizes")
    batch = batch_frames or (sizes.batch_frames if sizes is not None else heatmaps.shape[0])
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch_frames must be a positive int, got {batch_frames!r}")

    def one(hm: Tensor) -> Tensor:
        if estimator == "triangulation":
            return triangulate_argmax(hm, projections_hm)
        if estimator == "weighted_triangulation":
            return triangulate_argmax(hm, projections_hm, weighted=True)
        if estimator == "ransac":
            return triangulate_ransac(hm, projections_hm)
        stages = sizes.rpsm_stages if estimator == "rpsm" else 0
        return rpsm(hm, projections_hm, stats, sizes.grid_bins, sizes.cube_size_mm, stages, sizes.rpsm_bins,
                    antialias=sizes.antialias)

    return torch.cat([one(heatmaps[i:i + batch]) for i in range(0, heatmaps.shape[0], batch)])
