"""Eq. (2) of MetaFuse: the weights of AffineFuse, row i of a pair's W is ``omega_base`` warped by the affine ``theta_i``,
for one model or for M models at once (a leading *member* dimension: the tasks of a MAML step, seeds, few-shot
settings; :mod:`mfcore.training`).

Coordinate convention of theta (the spatial-transformer one, ``F.affine_grid(..., align_corners=False)``): the source
pixel ``p = (px, py)`` has normalised coordinates ``u = ((2*px + 1)/W - 1, (2*py + 1)/H - 1)`` in [-1, 1]; ``theta_i``
(2 x 3, ``[A | b]``) maps it to ``A u + b``, the normalised point of ``omega_base`` that is read (bilinear, zeros outside).
So ``W[i, p] = omega_base(A_i u_p + b_i)`` and the identity ``[[1,0,0],[0,1,0]]`` reproduces ``omega_base`` exactly.

Speed. Materialising ``W`` with ``affine_grid`` + ``grid_sample`` (:func:`affine_weight_reference`) writes and re-reads
a 2-channel grid and a grid gradient per weight and scatters the ``omega_base`` gradient through Z1 private copies of
the map (measured 23x a NaiveFuse fwd+bwd at 64², V=4, B=32 on an H200). The fast path (:func:`affine_weight`)
computes, per weight, the sample point in pixel units from three multiply-adds, reads the 2x2 corner quad of
``omega_base`` with one gather from a precomputed (M·Np, 4) table (every member's padded map, one after the other) and
blends it (two lerps). Its hand-written backward saves nothing of size Z1 x Z2 (it recomputes the sample points),
reduces the theta gradient row by row, and accumulates the ``omega_base`` gradient as a weighted histogram over each
member's padded grid (64 private copies per member against atomic-add collisions). On CUDA the three per-chunk kernels
are ``torch.compile``d into one fused pass each (measured 1.75x NaiveFuse fwd+bwd, 0.87x a full Adam training step,
see ``benchmarks/bench_fusion.py``); on the CPU they run eagerly. Rows are processed in chunks of a fixed size
(:func:`_chunks`), and the tables whose size grows with the members (corner quads, histograms) are padded to a power of
two of members, so a compiled kernel sees few distinct shapes whatever the number of members. Under autocast the weights are written in bf16
directly (the Eq. (1) matmul would cast them); the sample coordinates are always float32.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

_HIST_COPIES = int(os.environ.get("MFCORE_HIST_COPIES", 64))  # private copies of the omega-gradient histogram (GPU)
# entries of W processed together: chunk_rows * Z2 <= this. CPU: cache-sized; CUDA: 2^26 entries (16,384 rows of a
# 64² map) per kernel call, a fixed row count so that M members of 4096-row pairs leave at most four chunk shapes
_CHUNK_ELEMENTS = {"cpu": 1 << 16, "cuda": 1 << 26}


def identity_theta(num_pairs: int, num_pixels: int, *, device=None, dtype=torch.float32) -> Tensor:
    """theta = identity for every target pixel of every pair: (P, Z1, 2, 3)."""
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device, dtype=dtype)
    return eye.expand(num_pairs, num_pixels, 2, 3).clone()


def centred_theta(num_pairs: int, heatmap_px: int, *, device=None, dtype=torch.float32) -> Tensor:
    """theta that centres ``omega_base`` on every target pixel's own position, (P, Z1, 2, 3): ``[I | -u_i]`` with
    ``u_i`` pixel i's normalised coordinates, so row i of W reads ``omega_base(u_p - u_i)`` and the centred horizontal
    line of the line start passes through the source pixels on target pixel i's own row (a generic start that knows
    no camera: the epipolar line of two cameras at one height, looking the same way)."""
    if not isinstance(heatmap_px, int) or heatmap_px < 2:
        raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
    c = (2 * torch.arange(heatmap_px, dtype=dtype, device=device) + 1) / heatmap_px - 1  # pixel centres, normalised
    uy, ux = torch.meshgrid(c, c, indexing="ij")
    theta = identity_theta(num_pairs, heatmap_px * heatmap_px, device=device, dtype=dtype)
    theta[..., 0, 2] = -ux.reshape(-1)
    theta[..., 1, 2] = -uy.reshape(-1)
    return theta


def _check_affine_inputs(omega_base: Tensor, theta: Tensor) -> None:
    if omega_base.dim() not in (2, 3):
        raise ValueError(f"omega_base must be (H, W), or (M, H, W) for M members; got shape {tuple(omega_base.shape)}")
    if theta.dim() < 3 or theta.shape[-2:] != (2, 3):
        raise ValueError(f"theta must be (..., Z1, 2, 3); got shape {tuple(theta.shape)}")
    if omega_base.dim() == 3 and (theta.dim() < 4 or theta.shape[0] != omega_base.shape[0]):
        raise ValueError(f"with omega_base of M={omega_base.shape[0]} members, theta must be (M, ..., Z1, 2, 3); "
                         f"got shape {tuple(theta.shape)}")


def affine_weight_reference(omega_base: Tensor, theta: Tensor) -> Tensor:
    """Eq. (2) by the textbook spatial transformer (``affine_grid`` + ``grid_sample``): (H, W), (P, Z1, 2, 3) -> (P, Z1, Z2)
    (or member by member: (M, H, W), (M, P, Z1, 2, 3) -> (M, P, Z1, Z2)).

    Slow (writes a 2-channel grid per weight); kept as the reference the fast path is tested against.
    """
    _check_affine_inputs(omega_base, theta)
    if omega_base.dim() == 3:
        return torch.stack([affine_weight_reference(o, t) for o, t in zip(omega_base, theta)])
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


def _padded_cells(h: int, w: int) -> int:
    """Cells of one member's zero-padded grid, (H+3) x (W+3)."""
    return (h + 3) * (w + 3)


def _corner_quads(omega: Tensor) -> Tensor:
    """(M·Np, 4) table: for every cell of every member's zero-padded grid, its 2x2 quad (x0y0, x1y0, x0y1, x1y1).

    omega (M, H, W). Each padded grid is (H+3) x (W+3) = Np cells with omega at offset 1, so corners of any point
    clamped to [-1, W] x [-1, H] are inside it; member m's cells are rows m·Np .. (m+1)·Np - 1. Differentiable in omega.
    """
    m, h, w = omega.shape
    wp = w + 3
    pad = F.pad(omega, (1, 2, 1, 2)).reshape(m, -1)  # (M, Np)
    n = pad.shape[1]
    padded = F.pad(pad, (0, wp + 1))
    quads = torch.stack([padded[:, :n], padded[:, 1:n + 1], padded[:, wp:n + wp], padded[:, wp + 1:n + wp + 1]], dim=-1)
    return quads.reshape(m * n, 4)


def _bilinear_terms(theta: Tensor, h: int, w: int):
    """For affines theta (R, 2, 3): the bilinear reads of all Z2 source pixels as padded-grid corner index (R, Z2)
    long (within one member's grid), fractions fx, fy, masks of unclamped coordinates, and the source offsets dx, dy
    (1, Z2)."""
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
    """The 2x2 corner quads at table rows idx (R, Z2) -> (R, Z2, 4): plain indexing when compiled (fastest in the fused
    GPU kernels), else ``gather`` (its backward is a vectorised scatter-add, also on the CPU)."""
    if torch.compiler.is_compiling():
        return quads[idx]
    flat = (idx[..., None] * 4 + torch.arange(4, device=idx.device)).flatten()
    return torch.gather(quads.flatten(), 0, flat).reshape(*idx.shape, 4)


def _weight_rows(quads: Tensor, quad_base: Tensor, theta: Tensor, h: int, w: int, out_dtype: torch.dtype) -> Tensor:
    """Rows of W (Eq. (2)) for affines theta (R, 2, 3) whose member's quads start at table row quad_base (R,): one
    gather of the corner quad + two lerps, (R, Z2)."""
    idx, fx, fy, _, _, _, _ = _bilinear_terms(theta, h, w)
    q = _read_quads(quads, idx + quad_base[:, None])  # (R, Z2, 4)
    top = torch.lerp(q[..., 0], q[..., 1], fx)
    bottom = torch.lerp(q[..., 2], q[..., 3], fx)
    return torch.lerp(top, bottom, fy).to(out_dtype)


def _theta_grad_rows(quads: Tensor, quad_base: Tensor, theta: Tensor, grad_w: Tensor, h: int, w: int) -> Tensor:
    """Backward of :func:`_weight_rows` w.r.t. theta (R, 2, 3): row reductions of the incoming gradient (R, Z2)
    times the bilinear slopes and the source offsets."""
    idx, fx, fy, inx, iny, dx, dy = _bilinear_terms(theta, h, w)
    g = grad_w.to(theta.dtype)
    q = _read_quads(quads, idx + quad_base[:, None])
    d_dfx = torch.lerp(q[..., 1] - q[..., 0], q[..., 3] - q[..., 2], fy)
    d_dfy = torch.lerp(q[..., 2], q[..., 3], fx) - torch.lerp(q[..., 0], q[..., 1], fx)
    gsx = g * d_dfx * inx
    gsy = g * d_dfy * iny
    # d s_px / d theta: the pixel-affine scales of _pixel_affine
    return torch.stack([(gsx * dx).sum(-1), (gsx * dy).sum(-1) * (w / h), gsx.sum(-1) * (w / 2),
                        (gsy * dx).sum(-1) * (h / w), (gsy * dy).sum(-1), gsy.sum(-1) * (h / 2)],
                       dim=-1).reshape(-1, 2, 3)


def _hist_size(h: int, w: int) -> int:
    """Bins of one private copy of the omega-gradient histogram: the padded grid and the slack of the quad offsets."""
    wp = w + 3
    return (h + 3) * wp + wp + 1


def _omega_grad_rows(theta: Tensor, grad_w: Tensor, hist_base: Tensor, hist: Tensor, h: int, w: int) -> Tensor:
    """Backward of :func:`_weight_rows` w.r.t. omega: the bilinear weights times the incoming gradient (R, Z2) added
    into ``hist`` (a weighted histogram over the padded grids), row r at offset hist_base[r] (its member's block and
    its private copy: fewer colliding atomic adds on the GPU). Returns ``hist``, added to in place."""
    wp = w + 3
    idx, fx, fy, _, _, _, _ = _bilinear_terms(theta, h, w)
    g = grad_w.to(theta.dtype)
    gx1 = g * fx
    gx0 = g - gx1
    base = (idx + hist_base[:, None]).flatten()
    # the quad of padded cell k holds cells k, k+1, k+wp, k+wp+1
    for off, val in ((0, gx0 - gx0 * fy), (1, gx1 - gx1 * fy), (wp, gx0 * fy), (wp + 1, gx1 * fy)):
        if torch.compiler.is_compiling():  # fused atomic adds in the compiled GPU kernel
            hist.index_add_(0, base + off, val.flatten())
        else:  # the CPU's index_add_ loops element by element; scatter_add_ is vectorised
            hist.scatter_add_(0, base + off, val.flatten())
    return hist


def _omega_grad(theta: Tensor, grad_w: Tensor, members: int, h: int, w: int, copies: int) -> Tensor:
    """The omega gradient (M, H, W) of rows theta (R, 2, 3) with incoming gradient (R, Z2), unchunked (R = M·rows per
    member, member-major): one histogram block of ``copies`` private copies per member, summed."""
    size = _hist_size(h, w)
    hist = grad_w.new_zeros(members * copies * size, dtype=theta.dtype)
    _omega_grad_rows(theta, grad_w, _hist_base(theta.shape[0], members, copies, size, theta.device), hist, h, w)
    return _reduce_hist(hist, members, copies, h, w)


def _hist_base(rows: int, members: int, copies: int, size: int, device) -> Tensor:
    r = torch.arange(rows, device=device)
    return (r // (rows // members) * copies + r % copies) * size


def _reduce_hist(hist: Tensor, members: int, copies: int, h: int, w: int) -> Tensor:
    """The members' omega gradients (M, H, W) from their histogram blocks (the first M of ``hist``'s blocks)."""
    wp = w + 3
    size = _hist_size(h, w)
    summed = hist[:members * copies * size].reshape(members, copies, size).sum(1)[:, :(h + 3) * wp].reshape(members, h + 3, wp)
    return summed[:, 1:h + 1, 1:w + 1]


def _chunks(rows: int, z2: int, device: torch.device):
    step = max(1, _CHUNK_ELEMENTS["cuda" if device.type == "cuda" else "cpu"] // max(z2, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


_KERNELS: dict[str, object] = {}
_COMPILE = os.environ.get("MFCORE_COMPILE", "1") != "0"
_RECOMPILE_LIMIT = 64  # kernel shapes one process may compile (full chunks, remainders, output dtypes)


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
        # static shapes: one compilation per chunk row count (a full chunk and at most a few remainders) and member
        # table size (powers of two, _table_members). Symbolic rows (one compilation for all) were tried and measured
        # slower on an H200: AffineFuse fwd+bwd 6.50 ms against 5.91 ms, and no shorter chapter 3 or 4.
        import torch._dynamo as dynamo

        for knob in ("recompile_limit", "cache_size_limit"):  # the name changed across torch versions
            if hasattr(dynamo.config, knob):
                setattr(dynamo.config, knob, max(getattr(dynamo.config, knob), _RECOMPILE_LIMIT))
        _KERNELS[name] = torch.compile(fn, dynamic=False)
    return _KERNELS[name]


def _table_members(members: int, compiled: bool) -> int:
    """Members the tables of a kernel call hold: all of them eagerly; for a compiled kernel the next power of two
    (the padding members are zeros, no row reads them), so that the kernels compile for a few table sizes whatever the
    number of members (static shapes, see :func:`_kernel`)."""
    return 1 << (members - 1).bit_length() if compiled else members


def _member_tables(omega: Tensor, rows: int, compiled: bool):
    """The corner-quad table of the members' maps omega (M, H, W) (padded to :func:`_table_members`) and, for
    ``rows`` rows (member-major), each row's first table row (its member's block)."""
    m, h, w = omega.shape
    padded = _table_members(m, compiled)
    if padded > m:
        omega = torch.cat([omega, omega.new_zeros(padded - m, h, w)])
    quads = _corner_quads(omega)
    r = torch.arange(rows, device=omega.device)
    return quads, r // (rows // m) * _padded_cells(h, w)


class _AffineWeight(torch.autograd.Function):
    """Eq. (2) with a hand-written backward, for M members: recompute (nothing of size Z1 x Z2 is saved), row
    reductions for theta, privatised weighted histograms (one block per member) for omega_base."""

    @staticmethod
    def forward(ctx, omega: Tensor, rows: Tensor, out_dtype: torch.dtype) -> Tensor:
        m, h, w = omega.shape
        dev = omega.device
        kernel = _kernel("weight_rows", dev)
        quads, quad_base = _member_tables(omega, rows.shape[0], kernel is not _weight_rows)
        chunks = list(_chunks(rows.shape[0], h * w, dev))
        if len(chunks) == 1:
            out = kernel(quads, quad_base, rows, h, w, out_dtype)
        else:
            out = omega.new_empty(rows.shape[0], h * w, dtype=out_dtype)
            for sl in chunks:
                out[sl] = kernel(quads, quad_base[sl], rows[sl], h, w, out_dtype)
        ctx.save_for_backward(omega, rows)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_w: Tensor):
        omega, rows = ctx.saved_tensors
        m, h, w = omega.shape
        dev = omega.device
        copies = _HIST_COPIES if dev.type == "cuda" else 1
        grad_omega = grad_theta = None
        with torch.autocast(dev.type, enabled=False):
            chunks = list(_chunks(rows.shape[0], h * w, dev))
            if ctx.needs_input_grad[1]:
                kernel = _kernel("theta_grad_rows", dev)
                quads, quad_base = _member_tables(omega, rows.shape[0], kernel is not _theta_grad_rows)
                grad_theta = torch.cat([kernel(quads, quad_base[sl], rows[sl], grad_w[sl], h, w) for sl in chunks])
            if ctx.needs_input_grad[0]:
                kernel = _kernel("omega_grad_rows", dev)
                size = _hist_size(h, w)
                hist = omega.new_zeros(_table_members(m, kernel is not _omega_grad_rows) * copies * size)
                hist_base = _hist_base(rows.shape[0], m, copies, size, dev)
                for sl in chunks:
                    kernel(rows[sl], grad_w[sl], hist_base[sl], hist, h, w)
                grad_omega = _reduce_hist(hist, m, copies, h, w)
        return grad_omega, grad_theta, None


def affine_weight(omega_base: Tensor, theta: Tensor, *, higher_order: bool = False) -> Tensor:
    """Eq. (2) of MetaFuse: row i of each pair's weight is ``omega_base`` warped by ``theta_i``.

    One model: omega_base (H, W); theta (P, Z1, 2, 3) (convention: module docstring) -> weights (P, Z1, Z2), Z2 = H*W.
    M members at once: omega_base (M, H, W); theta (M, P, Z1, 2, 3) -> (M, P, Z1, Z2), member m's rows read member
    m's map (one kernel call for all members). ``higher_order=True`` builds the weights from differentiable primitives
    (gather + lerp) so that gradients of gradients exist (second-order MAML); otherwise the fast once-differentiable
    path is used. Both equal :func:`affine_weight_reference`. Under autocast the weights are written in the autocast
    dtype (the matmul of Eq. (1) would cast them anyway); the sample coordinates are always float32.
    """
    _check_affine_inputs(omega_base, theta)
    dev = omega_base.device.type
    out_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else omega_base.dtype
    omega = omega_base if omega_base.dim() == 3 else omega_base[None]
    h, w = omega.shape[-2:]
    rows = theta.reshape(-1, 2, 3)
    with torch.autocast(dev, enabled=False):
        if higher_order:
            quads, quad_base = _member_tables(omega, rows.shape[0], compiled=False)
            out = _weight_rows(quads, quad_base, rows, h, w, out_dtype)
        else:
            out = _AffineWeight.apply(omega, rows, out_dtype)
    return out.reshape(*theta.shape[:-2], h * w)
