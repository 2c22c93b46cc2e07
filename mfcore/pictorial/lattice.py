"""The PSM's shared cubic lattice: its cell centres, the table of squared integer offsets between its cells, and
exact max-plus messages on it computed in chunks of parent cells."""

from __future__ import annotations

import functools

import torch

from .limbs import _length_log_compat
from .tree import MessageFn

Tensor = torch.Tensor


DEFAULT_CHUNK_ELEMENTS = 2**27  # floats in the largest max-plus temporary (512 MiB in float32)


def final_cell_mm(cube_size_mm: float, grid_bins: int, stages: int) -> float:
    """Side of the last grid cell: the PSM cell ``cube/grid_bins``, divided by 2^(stages−1) after ``stages`` stages."""
    s0 = cube_size_mm / grid_bins
    return s0 if stages <= 0 else s0 / 2 ** (stages - 1)


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
