"""Cross-view heatmap fusion: NaiveFuse and AffineFuse (MetaFuse Sec. 3-4.1), for any number of views.

Eq. (1) of MetaFuse, for every ordered pair of views (target ``t``, source ``s``), ``t != s``::

    fused_t(i) = x_t(i) + sum_s sum_p  W_{s->t}[i, p] * x_s(p)        i: pixel of view t, p: pixel of view s

with one weight matrix per ordered pair, shared by all joints (as in the Cross View Fusion code).

* **NaiveFuse** learns every ``W_{s->t}`` (Z1 x Z2 numbers per pair, Z = H*W).
* **AffineFuse** factorises it (Eq. (2)): one base map ``omega_base`` (H x W) shared by all pairs, and per pair and per
  target pixel ``i`` a 6-dof affine ``theta_i``; row ``i`` of ``W`` is ``omega_base`` warped by ``theta_i`` with bilinear
  sampling (spatial transformer). Parameters: ``Z2 + 6*Z1`` per pair, ``omega_base`` counted once.

Coordinate convention of theta (the spatial-transformer one, ``F.affine_grid(..., align_corners=False)``): the source
pixel ``p = (px, py)`` has normalised coordinates ``u = ((2*px + 1)/W - 1, (2*py + 1)/H - 1)`` in [-1, 1]; ``theta_i``
(2 x 3, ``[A | b]``) maps it to ``A u + b``, the normalised point of ``omega_base`` that is read (bilinear, zeros outside).
So ``W[i, p] = omega_base(A_i u_p + b_i)`` and the identity ``[[1,0,0],[0,1,0]]`` reproduces ``omega_base`` exactly.
Initialisation: theta = identity for every pixel and pair (no geometry; the paper learns theta), ``omega_base`` = 0, so
an untrained model is exactly NoFusion.

Speed. Materialising ``W`` with ``affine_grid`` + ``grid_sample`` writes and re-reads a 2-channel grid and a grid
gradient per weight and scatters the ``omega_base`` gradient through ``Z1`` private copies. The fast path
(:func:`affine_weight`) instead computes, per weight, the bilinear corner index and fractions in pixel units from a
3-term dot product, reads the 2x2 corner quad of ``omega_base`` with ONE gather from a precomputed (Np, 4) table, and in
the backward pass recomputes all of that (nothing of size Z1 x Z2 is saved but the incoming gradient), reduces the theta
gradient with a (Z2 x 3) matmul and accumulates the ``omega_base`` gradient as a weighted histogram (``bincount``, a
shared-memory histogram on the GPU) over the padded grid. Rows are processed in chunks to bound memory. In inference
the materialised weight is cached and reused until a parameter changes (:meth:`AffineFuse.freeze`).

Softmax. MetaFuse Sec. 5.1 applies a softmax with temperature T = 0.2 to every channel of the fused heatmap "to highlight
the maximum response". Here the training loss (Eq. (3), :func:`fusion_mse`) is the MSE between the *pre-softmax* fused
heatmap and the ground-truth Gaussian heatmap (peak 1), as in the Cross View Fusion code: a softmax output sums to one
over Z pixels and cannot match a peak-1 target, and normalising the target instead scales the loss by ~1/Z^2 and starves
the gradients. The softmax (:func:`sharpen`) is applied when heatmaps are read or drawn; it is monotone per channel, so
the argmax (and the JDR) is the same before and after it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_TEMPERATURE = 0.2  # Sec. 5.1 of MetaFuse
_CHUNK_ELEMENTS = 1 << 24  # rows of W processed together: chunk_rows * Z2 <= this (about 64 MB of float32)


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

def fuse(heatmaps: Tensor, weights: Tensor, pairs) -> Tensor:
    """Eq. (1) of MetaFuse for every ordered pair: ``fused_t = x_t + sum_(t,s) W_(s->t) x_s``, the same W for all joints.

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
    targets = torch.tensor([t for t, _ in pairs], device=heatmaps.device)
    sources = torch.tensor([s for _, s in pairs], device=heatmaps.device)
    x = heatmaps.reshape(b, v, j, z)
    x_src = x.index_select(1, sources).permute(1, 0, 2, 3).reshape(len(pairs), b * j, z)  # (P, B*J, Z2)
    contrib = torch.bmm(x_src, weights.transpose(1, 2))  # (P, B*J, Z1)
    contrib = contrib.reshape(len(pairs), b, j, z).permute(1, 0, 2, 3).to(x.dtype)  # (B, P, J, Z1)
    return x.index_add(1, targets, contrib).reshape(b, v, j, h, w)


def sharpen(heatmaps: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """Softmax with temperature over the pixels of every channel (MetaFuse Sec. 5.1): (..., H, W) -> (..., H, W).

    Monotone per channel: the argmax is unchanged.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")
    flat = heatmaps.flatten(-2).float()
    return torch.softmax(flat / temperature, dim=-1).reshape(heatmaps.shape)


def fusion_mse(fused: Tensor, target: Tensor, views=None) -> Tensor:
    """Eq. (3) of MetaFuse: MSE between pre-softmax fused heatmaps and ground-truth heatmaps, (B, V, J, H, W) each.

    ``views``: the view indices that enter the loss (the targets of the fused pairs); all views if None.
    """
    if fused.shape != target.shape:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} shapes differ")
    if views is not None:
        idx = torch.as_tensor(list(views), device=fused.device)
        fused, target = fused.index_select(1, idx), target.index_select(1, idx)
    return F.mse_loss(fused.float(), target.float())


# ----------------------------------------------------------------------------------------------------------------------
# Eq. (2): AffineFuse weights

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


def _source_grid(h: int, w: int, device, dtype) -> Tensor:
    """(3, Z2): rows ``px - cx``, ``py - cy``, 1 for the source pixels (row-major), c = centre of the grid."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
                            indexing="ij")
    return torch.stack([xs.flatten() - (w - 1) / 2, ys.flatten() - (h - 1) / 2, torch.ones(h * w, device=device,
                                                                                              dtype=dtype)])


def _pixel_affine(theta: Tensor, h: int, w: int) -> Tensor:
    """theta in normalised units (..., 2, 3) -> M (..., 2, 3) with ``s_px = M @ [px - cx, py - cy, 1]`` in ω pixels."""
    scale = theta.new_tensor([[1.0, w / h, w / 2], [h / w, 1.0, h / 2]])
    shift = theta.new_tensor([[0.0, 0.0, (w - 1) / 2], [0.0, 0.0, (h - 1) / 2]])
    return theta * scale + shift


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


def _bilinear_terms(m: Tensor, src: Tensor, h: int, w: int, wp: int):
    """For pixel-unit affines m (R, 2, 3) and source grid (3, Z2): corner index (R, Z2) long, fractions fx, fy,
    and the masks of unclamped coordinates."""
    s = torch.matmul(m, src)  # (R, 2, Z2)
    sx, sy = s[:, 0], s[:, 1]
    inx = (sx >= -1) & (sx <= w)
    iny = (sy >= -1) & (sy <= h)
    sx = sx.clamp(-1, w)
    sy = sy.clamp(-1, h)
    x0 = torch.floor(sx)
    y0 = torch.floor(sy)
    idx = ((y0 + 1) * wp + (x0 + 1)).long()
    return idx, sx - x0, sy - y0, inx, iny


def _weight_rows(quads: Tensor, m: Tensor, src: Tensor, h: int, w: int, wp: int) -> Tensor:
    idx, fx, fy, _, _ = _bilinear_terms(m, src, h, w, wp)
    q = quads[idx]  # (R, Z2, 4)
    top = torch.lerp(q[..., 0], q[..., 1], fx)
    bottom = torch.lerp(q[..., 2], q[..., 3], fx)
    return torch.lerp(top, bottom, fy)


def _chunks(rows: int, z2: int):
    step = max(1, _CHUNK_ELEMENTS // max(z2, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _backward_rows(quads: Tensor, m: Tensor, src: Tensor, gs: Tensor, h: int, w: int, wp: int):
    """Backward of :func:`_weight_rows` for one chunk: grad of m (R, 2, 3), corner index (R*Z2,) and the four
    bilinear corner weights times the incoming gradient (4, R*Z2)."""
    idx, fx, fy, inx, iny = _bilinear_terms(m, src, h, w, wp)
    q = quads[idx]
    d_dfx = torch.lerp(q[..., 1] - q[..., 0], q[..., 3] - q[..., 2], fy)
    d_dfy = torch.lerp(q[..., 2], q[..., 3], fx) - torch.lerp(q[..., 0], q[..., 1], fx)
    gsxy = torch.stack([gs * d_dfx * inx, gs * d_dfy * iny], dim=1)  # (R, 2, Z2)
    grad_m = torch.matmul(gsxy, src.t())  # (R, 2, 3)
    gx1 = gs * fx
    gx0 = gs - gx1
    vals = torch.stack([gx0 - gx0 * fy, gx1 - gx1 * fy, gx0 * fy, gx1 * fy]).flatten(1)
    return grad_m, idx.flatten(), vals


_KERNELS = {"weight_rows": _weight_rows, "backward_rows": _backward_rows}


def use_compiled_kernels(enabled: bool = True) -> None:
    """Swap the per-chunk kernels of the fast AffineFuse path for ``torch.compile``d ones (fused; for the GPU)."""
    if enabled:
        _KERNELS["weight_rows"] = torch.compile(_weight_rows, dynamic=False)
        _KERNELS["backward_rows"] = torch.compile(_backward_rows, dynamic=False)
    else:
        _KERNELS.update(weight_rows=_weight_rows, backward_rows=_backward_rows)


class _AffineWeight(torch.autograd.Function):
    """Eq. (2) with a hand-written backward (recompute, matmul-reduce for theta, histogram for omega_base)."""

    @staticmethod
    def forward(ctx, omega_base: Tensor, theta: Tensor) -> Tensor:
        h, w = omega_base.shape
        lead, z1 = theta.shape[:-3], theta.shape[-3]
        m = _pixel_affine(theta, h, w).reshape(-1, 2, 3)
        src = _source_grid(h, w, omega_base.device, omega_base.dtype)
        quads, wp = _corner_quads(omega_base)
        out = omega_base.new_empty(m.shape[0], h * w)
        for sl in _chunks(m.shape[0], h * w):
            out[sl] = _KERNELS["weight_rows"](quads, m[sl], src, h, w, wp)
        ctx.save_for_backward(omega_base, theta)
        return out.reshape(*lead, z1, h * w)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_w: Tensor):
        omega_base, theta = ctx.saved_tensors
        h, w = omega_base.shape
        m = _pixel_affine(theta, h, w).reshape(-1, 2, 3)
        src = _source_grid(h, w, omega_base.device, omega_base.dtype)
        quads, wp = _corner_quads(omega_base)
        g = grad_w.reshape(m.shape[0], h * w).to(omega_base.dtype)
        grad_m = torch.empty_like(m)
        np_ = quads.shape[0]
        hist = omega_base.new_zeros(4, np_)
        for sl in _chunks(m.shape[0], h * w):
            grad_m[sl], idx, vals = _KERNELS["backward_rows"](quads, m[sl], src, g[sl], h, w, wp)
            if ctx.needs_input_grad[0]:
                for k in range(4):  # a weighted histogram: shared-memory atomics on the GPU
                    hist[k] += torch.bincount(idx, weights=vals[k], minlength=np_)
        grad_omega = grad_theta = None
        if ctx.needs_input_grad[0]:
            # the quad of padded cell k holds cells k, k+1, k+wp, k+wp+1
            total = hist[0].clone()
            total[1:] += hist[1][:-1]
            total[wp:] += hist[2][:-wp]
            total[wp + 1:] += hist[3][:-wp - 1]
            grad_omega = total.reshape(h + 3, w + 3)[1:h + 1, 1:w + 1]
        if ctx.needs_input_grad[1]:
            scale = theta.new_tensor([[1.0, w / h, w / 2], [h / w, 1.0, h / 2]])
            grad_theta = (grad_m * scale).reshape(theta.shape)
        return grad_omega, grad_theta


def affine_weight(omega_base: Tensor, theta: Tensor, *, higher_order: bool = False) -> Tensor:
    """Eq. (2) of MetaFuse: row i of each pair's weight is ``omega_base`` warped by ``theta_i``.

    omega_base (H, W); theta (P, Z1, 2, 3) (convention: module docstring) -> weights (P, Z1, Z2), Z2 = H*W.
    ``higher_order=True`` builds the weights from differentiable primitives (gather + lerp) so that gradients of
    gradients exist (second-order MAML); otherwise the fast once-differentiable path is used. Both equal
    :func:`affine_weight_reference`.
    """
    _check_affine_inputs(omega_base, theta)
    if higher_order:
        h, w = omega_base.shape
        lead, z1 = theta.shape[:-3], theta.shape[-3]
        m = _pixel_affine(theta, h, w).reshape(-1, 2, 3)
        src = _source_grid(h, w, omega_base.device, omega_base.dtype)
        quads, wp = _corner_quads(omega_base)
        return _weight_rows(quads, m, src, h, w, wp).reshape(*lead, z1, h * w)
    return _AffineWeight.apply(omega_base, theta)


# ----------------------------------------------------------------------------------------------------------------------
# modules

class _PairFusion(nn.Module):
    """Shared plumbing: views, ordered pairs, Eq. (1) with the weights of :meth:`pair_weights`."""

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
        """(B, V, J, H, W) backbone heatmaps -> (B, V, J, H, W) pre-softmax fused heatmaps (Eq. (1))."""
        if heatmaps.dim() != 5 or heatmaps.shape[1] != self.num_views or heatmaps.shape[-1] != self.heatmap_px \
                or heatmaps.shape[-2] != self.heatmap_px:
            raise ValueError(f"heatmaps must be (B, V={self.num_views}, J, {self.heatmap_px}, {self.heatmap_px}); "
                             f"got shape {tuple(heatmaps.shape)}")
        return fuse(heatmaps, self.pair_weights(), self.pairs)

    def freeze(self) -> "_PairFusion":
        """No more gradients; eval mode. The weights are materialised once and reused (until a parameter changes)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def parameters_per_pair(self) -> int:
        raise NotImplementedError


class NaiveFuse(_PairFusion):
    """NaiveFuse (MetaFuse Sec. 3, Cross View Fusion): a free Z1 x Z2 weight per ordered pair, zero at init (= NoFusion)."""

    def __init__(self, num_views: int, heatmap_px: int, pairs=None):
        super().__init__(num_views, heatmap_px, pairs)
        z = self.num_pixels
        self.weight = nn.Parameter(torch.zeros(len(self.pairs), z, z))  # (P, Z1, Z2)

    def pair_weights(self) -> Tensor:
        return self.weight

    def parameters_per_pair(self) -> int:
        """Z1 * Z2."""
        return self.num_pixels ** 2


class AffineFuse(_PairFusion):
    """AffineFuse / MetaFuse (Eq. (2)): a shared ``omega_base`` (H, W) and per pair a theta (Z1, 2, 3).

    Init: ``omega_base`` = 0 (fusion starts as NoFusion), theta = identity. ``higher_order`` selects the
    twice-differentiable weight construction (set by second-order meta-training).
    """

    def __init__(self, num_views: int, heatmap_px: int, pairs=None):
        super().__init__(num_views, heatmap_px, pairs)
        self.omega_base = nn.Parameter(torch.zeros(heatmap_px, heatmap_px))
        self.theta = nn.Parameter(identity_theta(len(self.pairs), self.num_pixels))
        self.higher_order = False
        self._cache: tuple | None = None

    def pair_weights(self) -> Tensor:
        omega, theta = self.omega_base, self.theta
        needs_graph = torch.is_grad_enabled() and (omega.requires_grad or theta.requires_grad)
        if needs_graph:
            return affine_weight(omega, theta, higher_order=self.higher_order)
        key = (omega.data_ptr(), omega._version, theta.data_ptr(), theta._version, omega.device, omega.dtype)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, affine_weight(omega, theta))
        return self._cache[1]

    def parameters_per_pair(self) -> int:
        """Z2 + 6 * Z1 (one pair with its own omega_base, as in Sec. 4.1)."""
        return self.num_pixels + 6 * self.num_pixels

    def _apply(self, fn, *args, **kwargs):
        self._cache = None
        return super()._apply(fn, *args, **kwargs)


def parameter_count(model: _PairFusion) -> int:
    """Learnable numbers of a fusion model: NaiveFuse P*Z1*Z2; AffineFuse Z2 + P*6*Z1 (omega_base counted once)."""
    return sum(p.numel() for p in model.parameters())


def for_rig(pretrained: _PairFusion, num_views: int, pairs=None) -> _PairFusion:
    """A fusion model for a ``num_views`` rig initialised from ``pretrained``.

    A one-pair model initialises every ordered pair of the rig (the MetaFuse deployment); a model with exactly the rig's
    pairs is copied pair by pair. ``omega_base`` is shared as one copy.
    """
    cls = type(pretrained)
    model = cls(num_views, pretrained.heatmap_px, pairs)
    p_src, p_dst = len(pretrained.pairs), len(model.pairs)
    if p_src == 1:
        pick = torch.zeros(p_dst, dtype=torch.long)
    elif pretrained.pairs == model.pairs:
        pick = torch.arange(p_dst)
    else:
        raise ValueError(f"cannot initialise {p_dst} pairs {model.pairs} from a model with {p_src} pairs "
                         f"{pretrained.pairs}; give a one-pair model or one with the same pairs")
    with torch.no_grad():
        if isinstance(model, NaiveFuse):
            model.weight.copy_(pretrained.weight.detach()[pick.to(pretrained.weight.device)].to(model.weight))
        else:
            model.omega_base.copy_(pretrained.omega_base.detach())
            model.theta.copy_(pretrained.theta.detach()[pick.to(pretrained.theta.device)])
    model.higher_order = getattr(pretrained, "higher_order", False) if isinstance(model, AffineFuse) else False
    return model.to(next(pretrained.parameters()).device)


def no_fusion(heatmaps: Tensor) -> Tensor:
    """The NoFusion baseline (Table 1): every view's heatmaps as the backbone produced them."""
    return heatmaps
