"""Cross-view heatmap fusion: NaiveFuse and AffineFuse (MetaFuse Sec. 3-4.1), for any number of views.

Eq. (1) of MetaFuse, for every ordered pair of views (target ``t``, source ``s``), ``t != s``, with the mix of the
Cross View Fusion code::

    fused_t(i) = SELF_WEIGHT * x_t(i) + (1 - SELF_WEIGHT) / n_t * sum_s sum_p  W_{s->t}[i, p] * x_s(p)

i: pixel of view t, p: pixel of view s, n_t: the number of source views fused into t (V - 1 for every ordered pair of
V views), one weight matrix per ordered pair, shared by all joints. The mix is the reference's: the Cross View Fusion
code (microsoft/multiview-human-pose-estimation-pytorch, ``lib/models/multiview_pose_resnet.py``, ``Aggregation``)
fuses four views as ``0.4 * x_t + 0.2 * sum_s FC_s(x_s)`` (weights ``[0.4, 0.2, 0.2, 0.2]``), i.e. the own heatmap
0.4 and the three others sharing 0.6; for V views the others share 0.6 equally (:func:`source_weight`), so a pair
model (V = 2, the one source at 0.6) spread over a V-view rig by :func:`for_rig` keeps the same total source weight.
The paper's Eq. (1) writes the plain sum ``x_t + sum W x_s``; trained by Eq. (3) against peak-1 targets, the own
heatmap alone already matches the target and a line adds error at every pixel off the joint, while with the mix the
own heatmap alone reaches only 0.4 of the target and the loss can reward the other views' evidence. Chapter 4b draws
both objectives (and a softmax one) along the epipolar oracle's lines beside the JDR of the same maps. Views that are no pair's target are returned unchanged.

* **NaiveFuse** learns every ``W_{s->t}`` (Z1 x Z2 numbers per pair, Z = H*W).
* **AffineFuse** factorises it (Eq. (2)): one base map ``omega_base`` (H x W) shared by all pairs, and per pair and per
  target pixel ``i`` a 6-dof affine ``theta_i``; row ``i`` of ``W`` is ``omega_base`` warped by ``theta_i`` with bilinear
  sampling (spatial transformer). Parameters: ``Z2 + 6*Z1`` per pair, ``omega_base`` counted once.

Coordinate convention of theta (the spatial-transformer one, ``F.affine_grid(..., align_corners=False)``): the source
pixel ``p = (px, py)`` has normalised coordinates ``u = ((2*px + 1)/W - 1, (2*py + 1)/H - 1)`` in [-1, 1]; ``theta_i``
(2 x 3, ``[A | b]``) maps it to ``A u + b``, the normalised point of ``omega_base`` that is read (bilinear, zeros outside).
So ``W[i, p] = omega_base(A_i u_p + b_i)`` and the identity ``[[1,0,0],[0,1,0]]`` reproduces ``omega_base`` exactly.
Initialisation: theta = identity for every pixel and pair (no geometry; the paper learns theta). ``omega_base`` has two
starts (``AffineFuse(start=...)``). "uniform" (:func:`init_omega_base`): seeded uniform in [0, OMEGA_INIT_HIGH / Z2),
after the reference's FC init U(0, 0.1) divided by the source's pixel count Z2. "line" (:func:`line_omega_start`, what
the book's learned AffineFuse and MetaFuse start from): a centred horizontal line with the heatmaps' Gaussian profile
at the epipolar oracle's scale. With theta = identity every row of W is the same ``omega_base`` under either start, so
each source adds a constant per channel and the argmax (the JDR) is NoFusion's exactly. With ``omega_base`` = 0, W = 0
and dL/dtheta = 0 exactly: theta could never learn. The uniform start's dL/dtheta is not zero but tiny (its weights
are about 1e-5 and have no structure); the line's is that of a fusion weight (chapter 3 measures both).

Speed. Materialising ``W`` with ``affine_grid`` + ``grid_sample`` writes and re-reads a 2-channel grid and a grid
gradient per weight and scatters the ``omega_base`` gradient through Z1 private copies of the map (measured 23x a
NaiveFuse fwd+bwd at 64², V=4, B=32 on an H200). The fast path (:func:`affine_weight`) computes, per weight, the
sample point in pixel units from three multiply-adds, reads the 2x2 corner quad of ``omega_base`` with one gather
from a precomputed (Np, 4) table and blends it (two lerps). Its hand-written backward saves nothing of size Z1 x Z2
(it recomputes the sample points), reduces the theta gradient row by row, and accumulates the ``omega_base``
gradient as a weighted histogram over the padded grid (64 private copies against atomic-add collisions). On CUDA the
three per-chunk kernels are ``torch.compile``d into one fused pass each (measured 1.75x NaiveFuse fwd+bwd, 0.87x a
full Adam training step, see ``benchmarks/bench_fusion.py``); on the CPU they run eagerly. Under autocast the weights
are written in bf16 directly (the Eq. (1) matmul would cast them); the sample coordinates are always float32. In
inference the materialised weight is cached and reused until a parameter changes (:meth:`AffineFuse.freeze`).

Softmax. MetaFuse Sec. 5.1 applies a softmax with temperature T = 0.2 to every channel of the fused heatmap "to highlight
the maximum response". Here the training loss (Eq. (3), :func:`fusion_mse`) is the MSE between the *pre-softmax* mixed
fused heatmap and the ground-truth Gaussian heatmap (peak 1), as the Cross View Fusion code supervises it
(``lib/core/function.py``: the joints-MSE of the fused heatmaps, plus that of the per-view heatmaps, which are
frozen here). The candidate with the softmax inside the loss (:func:`softmax_mse`) is computed beside it along the
oracle's direction (chapter 4b) and not adopted. The softmax (:func:`sharpen`) is applied when heatmaps are read or
drawn; it is monotone per channel, so the argmax (and the JDR) is the same before and after it.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_TEMPERATURE = 0.2  # Sec. 5.1 of MetaFuse
SELF_WEIGHT = 0.4  # the own heatmap's share of a fused map (Cross View Fusion code, Aggregation weights [0.4, 0.2, 0.2, 0.2])
SOURCES_WEIGHT = 1.0 - SELF_WEIGHT  # the share of all source views together, split equally among them
OMEGA_INIT_HIGH = 0.1  # omega_base ~ U(0, OMEGA_INIT_HIGH / Z2): the reference's FC init U(0, 0.1) per source pixel
_HIST_COPIES = int(os.environ.get("MFCORE_HIST_COPIES", 64))  # private copies of the omega-gradient histogram (GPU)
_CHUNK_ELEMENTS = 1 << 16  # rows of W processed together on the CPU: chunk_rows * Z2 <= this (cache-sized); 4096x on GPU


# ----------------------------------------------------------------------------------------------------------------------
# pairs

def ordered_pairs(num_views: int) -> tuple[tuple[int, int], ...]:
    """All ordered pairs ``(target, source)`` of ``num_views`` views, target-major: (0,1), (0,2), …, (1,0), (1,2), …"""
    if not isinstance(num_views, int) or num_views < 2:
        raise ValueError(f"num_views must be an integer >= 2 (fusion needs another view); got {num_views!r}")
    return tuple((t, s) for t in range(num_views) for s in range(num_views) if s != t)


def _check_pairs(pairs, num_views: int) -> tuple[tuple[int, int], ...]:
    if pairs is None:
        return ordered_pairs(num_views)
    pairs = tuple((int(t), int(s)) for t, s in pairs)
    if not pairs:
        raise ValueError("pairs is empty; give at least one (target, source) pair")
    for t, s in pairs:
        if t == s or not (0 <= t < num_views and 0 <= s < num_views):
            raise ValueError(f"pair {(t, s)} is not an ordered pair of distinct views in 0..{num_views - 1}")
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"pairs {pairs} contain a duplicate")
    return pairs


# ----------------------------------------------------------------------------------------------------------------------
# Eq. (1): fusion with given pair weights

def source_weight(num_sources: int) -> float:
    """The mix's weight of each of ``num_sources`` source views fused into one target: ``SOURCES_WEIGHT / num_sources``
    (0.6 for a pair, 0.2 each for the reference's four views)."""
    if not isinstance(num_sources, int) or num_sources < 1:
        raise ValueError(f"num_sources must be an integer >= 1; got {num_sources!r}")
    return SOURCES_WEIGHT / num_sources


def mix_weights(pairs, num_views: int) -> tuple[Tensor, Tensor]:
    """The mix of Eq. (1) for ``pairs`` of ``num_views`` views: the own heatmap's weight per view (V,) (SELF_WEIGHT
    for a target view, 1 for a view that receives nothing) and the (V, P) matrix that sums the pairs' terms into
    their target views, entry :func:`source_weight` of the target's source count."""
    pairs = _check_pairs(pairs, num_views)
    counts = [sum(1 for t, _ in pairs if t == v) for v in range(num_views)]
    own = torch.tensor([SELF_WEIGHT if c else 1.0 for c in counts])
    to_view = torch.zeros(num_views, len(pairs))
    for k, (t, _) in enumerate(pairs):
        to_view[t, k] = source_weight(counts[t])
    return own, to_view


def fuse(heatmaps: Tensor, weights: Tensor, pairs) -> Tensor:
    """Eq. (1) of MetaFuse with the reference's mix, for every ordered pair:
    ``fused_t = SELF_WEIGHT x_t + SOURCES_WEIGHT / n_t sum_(t,s) W_(s->t) x_s`` (module docstring), the same W for all
    joints.

    heatmaps (B, V, J, H, W); weights (P, Z1, Z2) with Z = H*W, row = target pixel, column = source pixel;
    pairs: P (target, source) view indices. Returns the pre-softmax fused heatmaps (B, V, J, H, W); views that are no
    pair's target are returned unchanged.
    """
    if heatmaps.dim() != 5:
        raise ValueError(f"heatmaps must be (B, V, J, H, W); got shape {tuple(heatmaps.shape)}")
    b, v, j, h, w = heatmaps.shape
    pairs = _check_pairs(pairs, v)
    z = h * w
    if weights.shape != (len(pairs), z, z):
        raise ValueError(f"weights must be (P={len(pairs)}, Z1={z}, Z2={z}) for {v} views of {h}x{w}; "
                         f"got {tuple(weights.shape)}")
    sources = torch.tensor([s for _, s in pairs], device=heatmaps.device)
    x = heatmaps.reshape(b, v, j, z)
    x_src = x.index_select(1, sources).permute(1, 3, 0, 2).reshape(len(pairs), z, b * j)  # (P, Z2, B*J)
    # W @ x (not x @ W^T): the gradient of W then comes out contiguous, (P, Z1, Z2)
    contrib = torch.bmm(weights, x_src)  # (P, Z1, B*J)
    contrib = contrib.reshape(len(pairs), z, b, j).permute(2, 0, 3, 1).reshape(b, len(pairs), j * z)  # (B, P, J*Z1)
    # sum the pairs into their target views with the (V, P) mix matrix (a tiny matmul; index_add is slow on the CPU)
    own, to_view = _mix_on(pairs, v, x.device, x.dtype, contrib.dtype)
    mixed = torch.matmul(to_view, contrib).reshape(b, v, j, z).to(x.dtype)
    return (own * x + mixed).reshape(b, v, j, h, w)


_MIX_CACHE: dict = {}


def _mix_on(pairs, num_views: int, device, dtype, mix_dtype) -> tuple[Tensor, Tensor]:
    """:func:`mix_weights` on ``device`` (own as (1, V, 1, 1) in ``dtype``, the (V, P) matrix in ``mix_dtype``), made
    once per setting: a training step then copies nothing to the GPU for the mix."""
    key = (tuple(pairs), num_views, str(device), dtype, mix_dtype)
    if key not in _MIX_CACHE:
        own, to_view = mix_weights(pairs, num_views)
        _MIX_CACHE[key] = (own.to(device=device, dtype=dtype)[None, :, None, None],
                           to_view.to(device=device, dtype=mix_dtype))
    return _MIX_CACHE[key]


def fuse_pair(target: Tensor, source: Tensor, weights: Tensor) -> Tensor:
    """Eq. (1) for one ordered pair, ``x^t_i <- 0.4 x^t_i + 0.6 sum_j w_(j,i) x^s_j``: :func:`fuse` with the single pair
    (target, source). target, source (..., H, W) heatmaps of the two views; weights (H*W, H, W), row i = the map of
    target pixel i over the source view. Returns (..., H, W) in ``target``'s dtype."""
    *lead, h, w = target.shape
    if source.shape != target.shape:
        raise ValueError(f"target and source heatmaps must have one shape; got {tuple(target.shape)} and "
                         f"{tuple(source.shape)}")
    if weights.dim() != 3 or weights.shape != (h * w, h, w):
        raise ValueError(f"weights must be (H*W, H, W) = ({h * w}, {h}, {w}); got {tuple(weights.shape)}")
    x = torch.stack([target.reshape(-1, h, w), source.reshape(-1, h, w)], dim=1)[:, :, None].to(weights.dtype)
    fused = fuse(x, weights.reshape(1, h * w, h * w), ((0, 1),))[:, 0, 0]  # (B, H, W)
    return fused.reshape(*lead, h, w).to(target.dtype)


def contributions(heatmaps: Tensor, weights: Tensor, pairs) -> Tensor:
    """The terms of Eq. (1) one by one: ``W_(s->t) x_s`` for every pair, (B, P, J, H, W) (the heatmaps "warped" from
    each source view into its target view; Fig. 6 of MetaFuse), before the mix's :func:`source_weight`.
    heatmaps (B, V, J, H, W), weights (P, Z1, Z2)."""
    b, v, j, h, w = heatmaps.shape
    pairs = _check_pairs(pairs, v)
    sources = torch.tensor([s for _, s in pairs], device=heatmaps.device)
    x_src = heatmaps.reshape(b, v, j, h * w).index_select(1, sources)  # (B, P, J, Z2)
    return torch.einsum("pyz,bpjz->bpjy", weights.to(x_src.dtype), x_src).reshape(b, len(pairs), j, h, w)


def sharpen(heatmaps: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """Softmax with temperature over the pixels of every channel (MetaFuse Sec. 5.1): (..., H, W) -> (..., H, W).

    Monotone per channel: the argmax is unchanged.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")
    flat = heatmaps.flatten(-2).float()
    return torch.softmax(flat / temperature, dim=-1).reshape(heatmaps.shape)


def fusion_mse(fused: Tensor, target: Tensor, views=None) -> Tensor:
    """Eq. (3) of MetaFuse: MSE between the pre-softmax fused heatmaps (the mix of :func:`fuse`) and the ground-truth
    heatmaps (peak 1), (B, V, J, H, W) each: the book's one training objective (every learned method, the oracle).

    ``views``: the view indices that enter the loss (the targets of the fused pairs); all views if None.
    """
    if fused.shape != target.shape:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} shapes differ")
    if views is not None:
        idx = torch.as_tensor(list(views), device=fused.device)
        fused, target = fused.index_select(1, idx), target.index_select(1, idx)
    return F.mse_loss(fused.float(), target.float())


def softmax_mse(fused: Tensor, target: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """A candidate for Eq. (3), not adopted (chapter 4b): MetaFuse's softmax (Sec. 5.1, T = 0.2) inside the loss.
    Per channel, ``softmax(fused / T)`` over the pixels is compared with the sum-normalised target ``y / sum(y)``;
    both are scaled by the target's own sum, so the target stays the peak-1 Gaussian and the prediction is the
    softmax's distribution carrying the target's mass: ``mean((sum(y) * softmax(fused / T) - y)^2)``. (A channel
    with an all-zero target contributes 0.) Without the scale the loss is ~1/Z^2 smaller, which Adam ignores but
    the figure's ratios need not. fused, target (..., H, W)."""
    if fused.shape != target.shape:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} shapes differ")
    y = target.flatten(-2).float()
    mass = y.sum(-1, keepdim=True)
    return ((mass * sharpen(fused, temperature).flatten(-2) - y).square()).mean()


# ----------------------------------------------------------------------------------------------------------------------
# Eq. (2): AffineFuse weights

def init_omega_base(heatmap_px: int, seed: int = 0) -> Tensor:
    """The start of ``omega_base`` (H, W): uniform in [0, OMEGA_INIT_HIGH / Z2), Z2 = heatmap_px², drawn with
    ``seed``. The Cross View Fusion code starts its FC weights U(0, 0.1) (``ChannelWiseFC``); per source pixel, a row
    of W then adds at most 0.1 of the source map's mean. Not flat, so dL/dtheta != 0 at theta = identity."""
    if not isinstance(heatmap_px, int) or heatmap_px < 2:
        raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(heatmap_px, heatmap_px, generator=g) * (OMEGA_INIT_HIGH / heatmap_px ** 2)


LINE_START_GAIN = 1.0  # source peaks the line start adds per own peak under the model's mix: the oracle's calibration
OMEGA_STARTS = ("line", "uniform")


def line_omega_start(heatmap_px: int, sigma_px: float, num_views: int, gain: float = LINE_START_GAIN) -> Tensor:
    """The line start of ``omega_base`` (H, W) float32: a horizontal line through the map's centre with the heatmaps'
    own profile exp(−d²/2σ²), d the distance to the centre row in pixels, scaled as the epipolar oracle scales its lines
    (``gain · SELF_WEIGHT / source_weight(V − 1) / (√2·π·σ²)``, :func:`mfcore.oracle.epipolar_oracle_weights`): a
    source peak of 1 and spread σ lying on the line adds about ``gain`` own peaks under the mix of a ``num_views``
    model. No camera is involved; with θ = identity every target pixel reads the same line, so each source adds a
    constant per channel and the start has NoFusion's maxima. Unlike the uniform start, the map has a spatial gradient
    of the size of a fusion weight, so Eq. (3) moves θ (chapter 3 measures both starts)."""
    if not isinstance(heatmap_px, int) or heatmap_px < 2:
        raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
    if not (isinstance(sigma_px, (int, float)) and sigma_px > 0):
        raise ValueError(f"sigma_px must be a number > 0; got {sigma_px!r}")
    if not isinstance(num_views, int) or num_views < 2:
        raise ValueError(f"num_views must be an integer >= 2; got {num_views!r}")
    y = torch.arange(heatmap_px, dtype=torch.float32) - (heatmap_px - 1) / 2.0
    line = torch.exp(-y.square() / (2.0 * sigma_px ** 2))[:, None].expand(heatmap_px, heatmap_px).clone()
    mix = SELF_WEIGHT / source_weight(num_views - 1)
    return line * (gain * mix / (2.0 ** 0.5 * math.pi * sigma_px ** 2))


def identity_theta(num_pairs: int, num_pixels: int, *, device=None, dtype=torch.float32) -> Tensor:
    """theta = identity for every target pixel of every pair: (P, Z1, 2, 3)."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device, dtype=dtype)
    return eye.expand(num_pairs, num_pixels, 2, 3).clone()


def _check_affine_inputs(omega_base: Tensor, theta: Tensor) -> None:
    if omega_base.dim() != 2:
        raise ValueError(f"omega_base must be (H, W); got shape {tuple(omega_base.shape)}")
    if theta.dim() < 3 or theta.shape[-2:] != (2, 3):
        raise ValueError(f"theta must be (..., Z1, 2, 3); got shape {tuple(theta.shape)}")


def affine_weight_reference(omega_base: Tensor, theta: Tensor) -> Tensor:
    """Eq. (2) by the textbook spatial transformer (``affine_grid`` + ``grid_sample``): (H, W), (P, Z1, 2, 3) -> (P, Z1, Z2).

    Slow (writes a 2-channel grid per weight); kept as the reference the fast path is tested against.
    """
    _check_affine_inputs(omega_base, theta)
    h, w = omega_base.shape
    lead, z1 = theta.shape[:-3], theta.shape[-3]
    th = theta.reshape(-1, 2, 3)
    grid = F.affine_grid(th, [th.shape[0], 1, h, w], align_corners=False)
    base = omega_base.reshape(1, 1, h, w).expand(th.shape[0], 1, h, w)
    out = F.grid_sample(base, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(*lead, z1, h * w)


def _pixel_affine(theta: Tensor, h: int, w: int) -> Tensor:
    """theta (R, 2, 3) in normalised units -> M (R, 2, 3) in omega pixels: ``s_px = M @ [px - cx, py - cy, 1]``.

    With ``u = (p - c) * 2 / side`` and ``s_px = (s_norm + 1) * side / 2 - 1/2`` (align_corners=False); the identity
    theta gives ``s_px = p`` exactly in floating point (all terms are small half-integers)."""
    t = theta
    return torch.stack([t[:, 0, 0], t[:, 0, 1] * (w / h), t[:, 0, 2] * (w / 2) + (w - 1) / 2,
                        t[:, 1, 0] * (h / w), t[:, 1, 1], t[:, 1, 2] * (h / 2) + (h - 1) / 2], dim=-1).reshape(-1, 2, 3)


def _corner_quads(omega_base: Tensor) -> tuple[Tensor, int]:
    """(Np, 4) table: for every cell of the zero-padded grid, its 2x2 quad (x0y0, x1y0, x0y1, x1y1); and padded width.

    The padded grid is (H+3) x (W+3) with omega at offset 1, so corners of any point clamped to [-1, W] x [-1, H] are
    inside it.
    """
    h, w = omega_base.shape
    wp = w + 3
    pad = F.pad(omega_base, (1, 2, 1, 2)).flatten()  # ((H+3)*(W+3),)
    padded = F.pad(pad, (0, wp + 1))
    n = pad.numel()
    return torch.stack([padded[:n], padded[1:n + 1], padded[wp:n + wp], padded[wp + 1:n + wp + 1]], dim=-1), wp


def _bilinear_terms(theta: Tensor, h: int, w: int):
    """For affines theta (R, 2, 3): the bilinear reads of all Z2 source pixels as padded-grid corner index (R, Z2)
    long, fractions fx, fy, masks of unclamped coordinates, and the source offsets dx, dy (1, Z2)."""
    m = _pixel_affine(theta, h, w)
    wp = w + 3
    p = torch.arange(h * w, device=theta.device)
    dx = (p % w).to(theta.dtype)[None] - (w - 1) / 2  # (1, Z2)
    dy = (p // w).to(theta.dtype)[None] - (h - 1) / 2
    sx = m[:, 0, 0:1] * dx + m[:, 0, 1:2] * dy + m[:, 0, 2:3]  # (R, Z2) in omega pixels
    sy = m[:, 1, 0:1] * dx + m[:, 1, 1:2] * dy + m[:, 1, 2:3]
    inx = (sx >= -1) & (sx <= w)
    iny = (sy >= -1) & (sy <= h)
    sx = sx.clamp(-1, w)
    sy = sy.clamp(-1, h)
    x0 = torch.floor(sx)
    y0 = torch.floor(sy)
    idx = ((y0 + 1) * wp + (x0 + 1)).long()
    return idx, sx - x0, sy - y0, inx, iny, dx, dy


def _read_quads(quads: Tensor, idx: Tensor) -> Tensor:
    """The 2x2 corner quads at padded-grid cells idx (R, Z2) -> (R, Z2, 4): plain indexing when compiled (fastest in
    the fused GPU kernels), else ``gather`` (its backward is a vectorised scatter-add, also on the CPU)."""
    if torch.compiler.is_compiling():
        return quads[idx]
    flat = (idx[..., None] * 4 + torch.arange(4, device=idx.device)).flatten()
    return torch.gather(quads.flatten(), 0, flat).reshape(*idx.shape, 4)


def _weight_rows(omega_base: Tensor, theta: Tensor, out_dtype: torch.dtype) -> Tensor:
    """Rows of W (Eq. (2)) for affines theta (R, 2, 3): one gather of the corner quad + two lerps, (R, Z2)."""
    h, w = omega_base.shape
    quads, _ = _corner_quads(omega_base)
    idx, fx, fy, _, _, _, _ = _bilinear_terms(theta, h, w)
    q = _read_quads(quads, idx)  # (R, Z2, 4)
    top = torch.lerp(q[..., 0], q[..., 1], fx)
    bottom = torch.lerp(q[..., 2], q[..., 3], fx)
    return torch.lerp(top, bottom, fy).to(out_dtype)


def _theta_grad_rows(omega_base: Tensor, theta: Tensor, grad_w: Tensor) -> Tensor:
    """Backward of :func:`_weight_rows` w.r.t. theta (R, 2, 3): row reductions of the incoming gradient (R, Z2)
    times the bilinear slopes and the source offsets."""
    h, w = omega_base.shape
    quads, _ = _corner_quads(omega_base)
    idx, fx, fy, inx, iny, dx, dy = _bilinear_terms(theta, h, w)
    g = grad_w.to(theta.dtype)
    q = _read_quads(quads, idx)
    d_dfx = torch.lerp(q[..., 1] - q[..., 0], q[..., 3] - q[..., 2], fy)
    d_dfy = torch.lerp(q[..., 2], q[..., 3], fx) - torch.lerp(q[..., 0], q[..., 1], fx)
    gsx = g * d_dfx * inx
    gsy = g * d_dfy * iny
    # d s_px / d theta: the pixel-affine scales of _pixel_affine
    return torch.stack([(gsx * dx).sum(-1), (gsx * dy).sum(-1) * (w / h), gsx.sum(-1) * (w / 2),
                        (gsy * dx).sum(-1) * (h / w), (gsy * dy).sum(-1), gsy.sum(-1) * (h / 2)],
                       dim=-1).reshape(-1, 2, 3)


def _omega_grad_rows(theta: Tensor, grad_w: Tensor, h: int, w: int, copies: int) -> Tensor:
    """Backward of :func:`_weight_rows` w.r.t. omega (H, W): the bilinear weights times the incoming gradient added
    into the padded grid (a weighted histogram). Row r adds into private copy r % copies (fewer colliding atomic adds
    on the GPU); the copies are summed at the end."""
    wp = w + 3
    idx, fx, fy, _, _, _, _ = _bilinear_terms(theta, h, w)
    g = grad_w.to(theta.dtype)
    gx1 = g * fx
    gx0 = g - gx1
    size = (h + 3) * wp + wp + 1
    rows = torch.arange(theta.shape[0], device=theta.device)
    base = (idx + ((rows % copies) * size)[:, None]).flatten()
    hist = g.new_zeros(copies * size)
    # the quad of padded cell k holds cells k, k+1, k+wp, k+wp+1
    for off, val in ((0, gx0 - gx0 * fy), (1, gx1 - gx1 * fy), (wp, gx0 * fy), (wp + 1, gx1 * fy)):
        if torch.compiler.is_compiling():  # fused atomic adds in the compiled GPU kernel
            hist.index_add_(0, base + off, val.flatten())
        else:  # the CPU's index_add_ loops element by element; scatter_add_ is vectorised
            hist.scatter_add_(0, base + off, val.flatten())
    return hist.reshape(copies, size).sum(0)[:(h + 3) * wp].reshape(h + 3, wp)[1:h + 1, 1:w + 1]


def _chunks(rows: int, z2: int, device: torch.device):
    step = max(1, (_CHUNK_ELEMENTS * (4096 if device.type == "cuda" else 1)) // max(z2, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


_KERNELS: dict[str, object] = {}
_COMPILE = os.environ.get("MFCORE_COMPILE", "1") != "0"


def use_compiled_kernels(enabled: bool = True) -> None:
    """Whether the fast AffineFuse path runs its per-chunk kernels through ``torch.compile`` on CUDA (default: yes,
    unless ``MFCORE_COMPILE=0``). Compiled, each kernel is one fused pass over its (rows x Z2) weights; eager, the
    same code runs op by op (what the CPU always does)."""
    global _COMPILE
    _COMPILE = bool(enabled)
    _KERNELS.clear()


def _kernel(name: str, device: torch.device):
    fn = {"weight_rows": _weight_rows, "theta_grad_rows": _theta_grad_rows, "omega_grad_rows": _omega_grad_rows}[name]
    if device.type != "cuda" or not _COMPILE:
        return fn
    if name not in _KERNELS:
        # static shapes: one compilation per row count. Symbolic rows (one compilation for all) were tried and measured
        # slower on an H200: AffineFuse fwd+bwd 6.50 ms against 5.91 ms, and no shorter chapter 3 or 4.
        _KERNELS[name] = torch.compile(fn, dynamic=False)
    return _KERNELS[name]


class _AffineWeight(torch.autograd.Function):
    """Eq. (2) with a hand-written backward: recompute (nothing of size Z1 x Z2 is saved), row reductions for theta,
    a privatised weighted histogram for omega_base."""

    @staticmethod
    def forward(ctx, omega_base: Tensor, theta: Tensor, out_dtype: torch.dtype) -> Tensor:
        h, w = omega_base.shape
        lead = theta.shape[:-2]
        rows = theta.reshape(-1, 2, 3)
        kernel = _kernel("weight_rows", omega_base.device)
        chunks = list(_chunks(rows.shape[0], h * w, omega_base.device))
        if len(chunks) == 1:
            out = kernel(omega_base, rows, out_dtype)
        else:
            out = omega_base.new_empty(rows.shape[0], h * w, dtype=out_dtype)
            for sl in chunks:
                out[sl] = kernel(omega_base, rows[sl], out_dtype)
        ctx.save_for_backward(omega_base, theta)
        return out.reshape(*lead, h * w)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_w: Tensor):
        omega_base, theta = ctx.saved_tensors
        h, w = omega_base.shape
        dev = omega_base.device
        rows = theta.reshape(-1, 2, 3)
        g = grad_w.reshape(rows.shape[0], h * w)
        copies = _HIST_COPIES if dev.type == "cuda" else 1
        grad_omega = grad_theta = None
        with torch.autocast(dev.type, enabled=False):
            chunks = list(_chunks(rows.shape[0], h * w, dev))
            if ctx.needs_input_grad[1]:
                kernel = _kernel("theta_grad_rows", dev)
                grad_theta = torch.cat([kernel(omega_base, rows[sl], g[sl]) for sl in chunks]).reshape(theta.shape)
            if ctx.needs_input_grad[0]:
                kernel = _kernel("omega_grad_rows", dev)
                grad_omega = sum(kernel(rows[sl], g[sl], h, w, copies) for sl in chunks)
        return grad_omega, grad_theta, None


def affine_weight(omega_base: Tensor, theta: Tensor, *, higher_order: bool = False) -> Tensor:
    """Eq. (2) of MetaFuse: row i of each pair's weight is ``omega_base`` warped by ``theta_i``.

    omega_base (H, W); theta (P, Z1, 2, 3) (convention: module docstring) -> weights (P, Z1, Z2), Z2 = H*W.
    ``higher_order=True`` builds the weights from differentiable primitives (gather + lerp) so that gradients of
    gradients exist (second-order MAML); otherwise the fast once-differentiable path is used. Both equal
    :func:`affine_weight_reference`. Under autocast the weights are written in the autocast dtype (the matmul of
    Eq. (1) would cast them anyway); the sample coordinates are always float32.
    """
    _check_affine_inputs(omega_base, theta)
    dev = omega_base.device.type
    out_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else omega_base.dtype
    with torch.autocast(dev, enabled=False):
        if higher_order:
            h, w = omega_base.shape
            return _weight_rows(omega_base, theta.reshape(-1, 2, 3), out_dtype).reshape(*theta.shape[:-2], h * w)
        return _AffineWeight.apply(omega_base, theta, out_dtype)


# ----------------------------------------------------------------------------------------------------------------------
# modules

class PairFusion(nn.Module):
    """The base of both fusion models (NaiveFuse, AffineFuse): views, ordered pairs, Eq. (1) with the weights of
    :meth:`pair_weights` (which each model defines)."""

    def __init__(self, num_views: int, heatmap_px: int, pairs=None):
        super().__init__()
        if not isinstance(heatmap_px, int) or heatmap_px < 2:
            raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
        self.num_views = num_views
        self.pairs = _check_pairs(pairs, num_views)
        self.heatmap_px = heatmap_px

    @property
    def num_pixels(self) -> int:
        return self.heatmap_px * self.heatmap_px

    @property
    def target_views(self) -> tuple[int, ...]:
        """Views that receive fusion (and enter the loss)."""
        return tuple(sorted({t for t, _ in self.pairs}))

    def pair_weights(self) -> Tensor:  # (P, Z1, Z2)
        raise NotImplementedError

    def forward(self, heatmaps: Tensor) -> Tensor:
        """(B, V, J, H, W) backbone heatmaps -> (B, V, J, H, W) pre-softmax fused heatmaps (Eq. (1) with the mix of
        :func:`fuse`)."""
        if heatmaps.dim() != 5 or heatmaps.shape[1] != self.num_views or heatmaps.shape[-1] != self.heatmap_px \
                or heatmaps.shape[-2] != self.heatmap_px:
            raise ValueError(f"heatmaps must be (B, V={self.num_views}, J, {self.heatmap_px}, {self.heatmap_px}); "
                             f"got shape {tuple(heatmaps.shape)}")
        return fuse(heatmaps, self.pair_weights(), self.pairs)

    def freeze(self) -> "PairFusion":
        """No more gradients; eval mode. The weights are materialised once and reused (until a parameter changes)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def parameters_per_pair(self) -> int:
        raise NotImplementedError


class NaiveFuse(PairFusion):
    """NaiveFuse (MetaFuse Sec. 3, Cross View Fusion): a free Z1 x Z2 weight per ordered pair, zero at init (the own
    heatmap at SELF_WEIGHT: NoFusion's argmax; the gradient of Eq. (3) w.r.t. W is not zero there)."""

    def __init__(self, num_views: int, heatmap_px: int, pairs=None, *, device=None):
        super().__init__(num_views, heatmap_px, pairs)
        z = self.num_pixels
        # made on ``device`` directly: at 64² a 4-view rig's weights are 805 MB, and zeroing them on the CPU and
        # copying them to the GPU took about a second of every few-shot setting
        self.weight = nn.Parameter(torch.zeros(len(self.pairs), z, z, device=device))  # (P, Z1, Z2)

    def pair_weights(self) -> Tensor:
        return self.weight

    def parameters_per_pair(self) -> int:
        """Z1 * Z2."""
        return self.num_pixels ** 2


class AffineFuse(PairFusion):
    """AffineFuse / MetaFuse (Eq. (2)): a shared ``omega_base`` (H, W) and per pair a theta (Z1, 2, 3).

    Init: theta = identity; ``omega_base`` by ``start``: "uniform" (:func:`init_omega_base` with ``seed``, the
    reference's FC init; the default, for models whose weights are loaded or set afterwards) or "line"
    (:func:`line_omega_start` with ``sigma_px`` under this model's mix, what the book's learned AffineFuse and MetaFuse
    start from). Either way the start's argmax is NoFusion's. ``higher_order`` selects the twice-differentiable weight
    construction (set by second-order meta-training).
    """

    def __init__(self, num_views: int, heatmap_px: int, pairs=None, *, seed: int = 0, start: str = "uniform",
                 sigma_px: float | None = None, device=None):
        super().__init__(num_views, heatmap_px, pairs)
        if start not in OMEGA_STARTS:
            raise ValueError(f"unknown omega_base start {start!r}; choose one of {OMEGA_STARTS}")
        if start == "line" and sigma_px is None:
            raise ValueError("the line start needs sigma_px, the heatmaps' Gaussian σ in heatmap pixels")
        omega = (line_omega_start(heatmap_px, sigma_px, num_views) if start == "line"
                 else init_omega_base(heatmap_px, seed))  # drawn on the CPU (seeded)
        self.omega_base = nn.Parameter(omega.to(device))
        self.theta = nn.Parameter(identity_theta(len(self.pairs), self.num_pixels, device=device))
        self.higher_order = False
        self._cache: tuple | None = None

    def pair_weights(self) -> Tensor:
        omega, theta = self.omega_base, self.theta
        needs_graph = torch.is_grad_enabled() and (omega.requires_grad or theta.requires_grad)
        if needs_graph or self.training:
            return affine_weight(omega, theta, higher_order=self.higher_order)
        dev = omega.device.type
        out_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else omega.dtype
        key = (omega.data_ptr(), omega._version, theta.data_ptr(), theta._version, omega.device, out_dtype)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, affine_weight(omega, theta))
        return self._cache[1]

    def parameters_per_pair(self) -> int:
        """Z2 + 6 * Z1 (one pair with its own omega_base, as in Sec. 4.1)."""
        return self.num_pixels + 6 * self.num_pixels

    def train(self, mode: bool = True) -> "AffineFuse":
        """Switching mode drops the kept weights: they are kept only in eval mode, and only while ``omega_base`` and
        ``theta`` keep their storage and version. An optimiser step that writes the parameters without moving their
        version counter (seen with CUDA's fused Adam: scores between finetuning steps read the first step's weights)
        is caught because training loops switch to train mode before stepping."""
        self._cache = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._cache = None
        return super()._apply(fn, *args, **kwargs)


def parameter_count(model: PairFusion) -> int:
    """Learnable numbers of a fusion model: NaiveFuse P*Z1*Z2; AffineFuse Z2 + P*6*Z1 (omega_base counted once)."""
    return sum(p.numel() for p in model.parameters())


def for_rig(pretrained: PairFusion, num_views: int, pairs=None) -> PairFusion:
    """A fusion model for a ``num_views`` rig initialised from ``pretrained``.

    A one-pair model initialises every ordered pair of the rig (the MetaFuse deployment); a model with exactly the rig's
    pairs is copied pair by pair. ``omega_base`` is shared as one copy. The model is made on ``pretrained``'s device
    and filled there (no round trip through the CPU: a 4-view NaiveFuse at 64² holds 805 MB of weights).
    """
    cls = type(pretrained)
    device = next(pretrained.parameters()).device
    model = cls(num_views, pretrained.heatmap_px, pairs, device=device)
    p_src, p_dst = len(pretrained.pairs), len(model.pairs)
    if p_src == 1:
        pick = torch.zeros(p_dst, dtype=torch.long)
    elif pretrained.pairs == model.pairs:
        pick = torch.arange(p_dst)
    else:
        raise ValueError(f"cannot initialise {p_dst} pairs {model.pairs} from a model with {p_src} pairs "
                         f"{pretrained.pairs}; give a one-pair model or one with the same pairs")
    pick = pick.to(device)
    with torch.no_grad():
        if isinstance(model, NaiveFuse):
            torch.index_select(pretrained.weight.detach(), 0, pick, out=model.weight)
        else:
            model.omega_base.copy_(pretrained.omega_base.detach())
            torch.index_select(pretrained.theta.detach(), 0, pick, out=model.theta)
    return model


def no_fusion(heatmaps: Tensor) -> Tensor:
    """The NoFusion baseline (Table 1): every view's heatmaps as the backbone produced them."""
    return heatmaps
