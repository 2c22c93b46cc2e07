"""The RPSM of :mod:`mfcore.pictorial` for live use: everything that depends only on the rig, the grid and the limb
statistics built once, then one frame (or a batch) solved with few kernel launches and at most one host sync.

:func:`mfcore.pictorial.rpsm` is the reference: it rebuilds its tables on every call, solves the tree one limb at a time
and reads every smoothing stage's blur radius back to the host, so one frame on a GPU is launch-bound: about 1,700
operations and 19 reads back per frame at 10 stages (28 frames/s one frame per call on an H200, 759 batched, at
09c2400). :class:`RPSMSolver` gives the same poses (the same arithmetic in the same order: bitwise equal on the CPU,
``tests/test_rpsm_solver.py``) in about 1,060 device operations and one read back, with

* **state built once per rig, grid and limb statistics**: the projection matrices on the device, the PSM's cell
  offsets (G³, 3), its log ψ tables (per limb, dense (L, G³, G³) where they fit in :data:`DENSE_TABLE_BYTES`, else
  looked up in the shared lattice table, :func:`mfcore.pictorial.lattice_sq_offsets`), every refinement stage's
  candidate offsets (n³, 3), the limb terms, index tensors;
* **the tree solved one depth at a time** (:func:`max_product_levels`): every limb whose child sits at one depth sends
  its message in one batched max-plus product (5 levels instead of 16 limbs for the 17-joint skeleton), the sums into
  each parent kept in the reference's order;
* **one host sync per call**: the views' usability, the root's heatmap maxima (for the RANSAC root) and nothing else
  come back to the host; the root and the blur σ of every stage are computed there (a few hundred floats) and go
  back in one copy. Everything after that, smoothing, PSM and all stages, is queued without a sync;
* **CUDA graphs** on a GPU (``cuda_graphs``, on by default there): the part after the sync has a fixed shape for a
  given batch size and blur radii, so the second call with that shape captures it once and every later call replays
  it (one launch instead of about a thousand). Graphs share one memory pool per solver (they never run at once); a
  capture that fails falls back to eager execution with a warning. On the CPU the same code runs eagerly.

A solver is keyed to its rig: heatmaps come with the projection matrices they were seen by, and a solver refuses any
other rig's (or another heatmap size or joint count) with a ``ValueError`` naming both. :func:`solver_for` keeps the
last few solvers (:data:`SOLVER_CACHE_SIZE`), and :func:`estimate_all` gives every estimator of
:data:`mfcore.pictorial.ESTIMATORS` on the same heatmaps, the PSM and the RPSM from one solve (the PSM is the RPSM's
stage 0). ``benchmarks/bench_rpsm.py`` measures both paths, batched and one frame per call.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable, NamedTuple

import torch

from . import pictorial, skeleton
from .cuda_graphs import LRU, GraphRunner
from .pictorial import LimbLengthStats

Tensor = torch.Tensor

DENSE_TABLE_BYTES = 3 * 2**28  # dense per-limb PSM tables (L·G⁶ floats) up to 768 MiB: G ≤ 15 for 16 limbs (729 MiB)
FULL_INDEX_CELLS = 2**26  # the lattice lookup's int32 index is converted once when G⁶ is at most this (G ≤ 20)
CPU_CHUNK_ELEMENTS = 2**20  # on a CPU, max-plus temporaries of 4 MiB stay in cache (20 % faster than 512 MiB ones)
GRAPH_CACHE_SIZE = 32  # captured graphs kept per solver (one per batch size and set of blur radii)
SOLVER_CACHE_SIZE = 4  # solvers kept by :func:`solver_for`


class TreeLevels(NamedTuple):
    """The limbs of a tree grouped by the depth of their child, deepest first; within a depth, decreasing child index
    (the order in which :func:`mfcore.pictorial.max_product_tree` adds messages into a parent)."""

    limbs: tuple[int, ...]  # limb indices (``pictorial._limbs`` order) in processing order
    parents: tuple[int, ...]  # parent joint of each limb, processing order
    children: tuple[int, ...]  # child joint of each limb, processing order
    bounds: tuple[tuple[int, int], ...]  # [start, end) of each depth in processing order
    root: int


def tree_levels(parents=skeleton.PARENTS) -> TreeLevels:
    """The limbs of the tree ``parents`` by depth of their child (deepest first): :class:`TreeLevels`."""
    limbs = pictorial._limbs(parents)
    depth = [0] * len(parents)
    for j, p in enumerate(parents):  # parents come before their children
        depth[j] = depth[p] + 1 if p >= 0 else 0
    order = sorted(range(len(limbs)), key=lambda i: (-depth[limbs[i][1]], -limbs[i][1]))
    bounds, start = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or depth[limbs[order[i]][1]] != depth[limbs[order[start]][1]]:
            bounds.append((start, i))
            start = i
    root = next(j for j, p in enumerate(parents) if p < 0)
    return TreeLevels(tuple(order), tuple(limbs[i][0] for i in order), tuple(limbs[i][1] for i in order),
                      tuple(bounds), root)


LevelMessageFn = Callable[[int, Tensor], tuple[Tensor, Tensor]]


def max_product_levels(log_unary: Tensor, level_message: LevelMessageFn, levels: TreeLevels) -> Tensor:
    """Exact MAP states of a tree model, (B, J, S) log unaries → (B, J) state indices, one depth of limbs at a time.

    ``level_message(k, energy_children (B, L_k, S))`` returns the max and argmax (B, L_k, S_parent) of the messages of
    the k-th depth's limbs. The sums into every parent run in :func:`mfcore.pictorial.max_product_tree`'s order, so the
    states are the same as its (bitwise, given the same messages).
    """
    J = log_unary.shape[1]
    energy = list(log_unary.unbind(1))  # (B, S) each: unary + messages from the subtree
    args = []
    for k, (a, b) in enumerate(levels.bounds):
        best, arg = level_message(k, torch.stack([energy[c] for c in levels.children[a:b]], 1))
        for i in range(b - a):  # decreasing child index within the depth: the reference's order of sums
            p = levels.parents[a + i]
            energy[p] = energy[p] + best[:, i]
        args.append(arg)
    state: list[Tensor | None] = [None] * J
    state[levels.root] = energy[levels.root].argmax(-1)
    for k in reversed(range(len(levels.bounds))):  # back-track from the root, one depth at a time
        a, b = levels.bounds[k]
        parent_states = torch.stack([state[p] for p in levels.parents[a:b]], 1)  # (B, L_k)
        child_states = args[k].gather(2, parent_states[..., None])[..., 0]
        for i, c in enumerate(levels.children[a:b]):
            state[c] = child_states[:, i]
    return torch.stack(state, dim=1)


def rig_key(projections_hm: Tensor) -> str:
    """A short fingerprint of a rig's (V, 3, 4) projection matrices, for messages and cache keys."""
    values = projections_hm.detach().to("cpu", torch.float64).contiguous()
    return f"V={values.shape[0]}:" + hashlib.sha1(values.numpy().tobytes()).hexdigest()[:12]


_TABLES = LRU(2)  # dense PSM tables: they depend on the grid and the statistics, not on the rig


class _Slot(NamedTuple):
    """Static buffers of one batch size for the captured graphs (allocated outside them)."""

    heatmaps: Tensor  # (B, V, J, h, w) float32: the call's heatmaps
    clean: Tensor  # (B, V, J, h, w): unusable views zeroed, negatives clamped
    packed: Tensor  # (B, V, 4): usable flag, root maximum (x, y), root DLT weight
    upload: Tensor  # (B, 3 + 2·T'·V): the root, then blur σ and radius of every stage
    poses: Tensor  # (T + 1, B, J, 3)


class RPSMSolver:
    """The RPSM of one rig, grid and set of limb statistics: ``solver(heatmaps, projections_hm)`` → (B, J, 3) metres.

    Arguments as :func:`mfcore.pictorial.rpsm` (``stages = 0`` is the PSM), plus ``heatmap_hw`` (the (h, w) of the
    heatmaps it will get), ``device`` (default the projections' device) and ``cuda_graphs`` (default: on for a CUDA
    device; ``True`` on a CPU is an error). The grid is centred on the root estimated from the heatmaps (RANSAC over
    views of the root's maxima) unless a call passes ``centre_m``.
    """

    def __init__(self, projections_hm: Tensor, heatmap_hw, stats: LimbLengthStats, grid_bins: int,
                 cube_size_mm: float, stages: int, rpsm_bins: int = 2, *, parents=skeleton.PARENTS,
                 floor: float = 1e-3, min_std_m: float = 0.005,
                 chunk_elements: int = pictorial.DEFAULT_CHUNK_ELEMENTS, interpolation: str = "bilinear",
                 antialias: bool = False, device=None, cuda_graphs: bool | None = None):
        if not isinstance(projections_hm, Tensor) or projections_hm.dim() != 3 or projections_hm.shape[1:] != (3, 4):
            raise ValueError(f"projections_hm must be a (V, 3, 4) tensor, got "
                             f"{tuple(projections_hm.shape) if isinstance(projections_hm, Tensor) else projections_hm!r}")
        if projections_hm.shape[0] < 2 or not torch.isfinite(projections_hm).all():
            raise ValueError(f"projections_hm must hold V >= 2 finite cameras, got V={projections_hm.shape[0]}")
        hw = (heatmap_hw, heatmap_hw) if isinstance(heatmap_hw, int) else tuple(heatmap_hw)
        if len(hw) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < 2 for x in hw):
            raise ValueError(f"heatmap_hw must be an int >= 2 or (h, w) of ints >= 2, got {heatmap_hw!r}")
        pictorial.check_rpsm_settings(grid_bins, cube_size_mm, stages, rpsm_bins, floor, interpolation)
        limbs = pictorial._check_stats(stats, parents)
        if not isinstance(chunk_elements, int) or chunk_elements < 1:
            raise ValueError(f"chunk_elements must be a positive int, got {chunk_elements!r}")
        device = torch.device(device if device is not None else projections_hm.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device} asked for, but torch finds no CUDA GPU here; valid: cpu")
        if cuda_graphs and device.type != "cuda":
            raise ValueError(f"cuda_graphs=True needs a CUDA device, got {device}; valid here: None or False")

        self.device, self.heatmap_hw, self.stages, self.rpsm_bins = device, hw, stages, rpsm_bins
        self.grid_bins, self.cube_size_mm, self.parents = grid_bins, float(cube_size_mm), tuple(parents)
        self.floor, self.interpolation, self.antialias, self.chunk_elements = floor, interpolation, antialias, \
            chunk_elements
        self.V, self.J = projections_hm.shape[0], len(parents)
        self.levels = tree_levels(parents)
        self.rig_key = rig_key(projections_hm)
        self._P_source = (projections_hm, projections_hm._version)
        self._P_host = projections_hm.detach().to("cpu").clone()  # the caller's dtype: the RANSAC root's DLT
        self._P_host_f32 = self._P_host.float()
        self.P = projections_hm.detach().to(device).float()  # (V, 3, 4): the unary and the blur
        self._size = torch.tensor([hw[1] - 1, hw[0] - 1], dtype=torch.float32, device=device)
        self._zero = torch.zeros((), device=device)
        self._ransac_px = max(1.5, 0.04 * hw[1])  # pictorial._ransac's default threshold

        G = grid_bins
        s0 = cube_size_mm / 1000.0 / G  # the PSM cell: stage 1's spacing, and the limb band of every stage
        self._s0 = s0
        axis = (torch.arange(G, device=device, dtype=torch.float32) - (G - 1) / 2) * s0
        self._grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # (G³, 3)
        order = torch.tensor(self.levels.limbs, device=device)
        mean, band, sigma = (t[order] for t in pictorial._limb_terms(stats, s0, min_std_m, device))  # processing order
        self._stage_terms = (mean[:, None, None], band[:, None, None], sigma[:, None, None])
        self._limb_p = torch.tensor(self.levels.parents, device=device)
        self._limb_c = torch.tensor(self.levels.children, device=device)
        self._stage_offsets = []
        for t in range(1, stages + 1):
            spacing = s0 / 2 ** (t - 1)
            a = (torch.arange(rpsm_bins, device=device, dtype=torch.float32) - (rpsm_bins - 1) / 2) * spacing
            self._stage_offsets.append(torch.stack(torch.meshgrid(a, a, a, indexing="ij"), -1).reshape(-1, 3))
        self._psm_tables(G, s0, mean, band, sigma, stats, min_std_m, len(limbs))

        self._slots = LRU(2)  # batch sizes with static buffers (a loop of full batches and its last one)
        self._graphs = GraphRunner(device, cuda_graphs is not False, GRAPH_CACHE_SIZE)
        self.calls, self.host_seconds = 0, 0.0  # calls so far, and the seconds their host steps took

    @property
    def use_graphs(self) -> bool:
        """Whether calls run from CUDA graphs (on a CUDA device, unless turned off or a capture failed)."""
        return self._graphs.enabled

    @property
    def graphs_captured(self) -> int:
        return self._graphs.captured

    # ------------------------------------------------------------------------------------------------ built once

    def _psm_tables(self, G, s0, mean, band, sigma, stats, min_std_m, L) -> None:
        """log ψ of every limb (processing order) as a function of the squared integer offset between two cells, and
        either the dense (L, G³, G³) tables or the int32 lookup index."""
        S = G**3
        values = torch.arange(3 * (G - 1) ** 2 + 1, device=self.device, dtype=torch.float32)
        self._psi_values = pictorial._length_log_compat(s0 * values.sqrt()[None, :], mean[:, None], band[:, None],
                                                        sigma[:, None])  # (L, K)
        self._sq = pictorial.lattice_sq_offsets(G, str(self.device))  # (S, S) int16, shared
        self._dense = self._index = None
        if L * S * S * 4 <= DENSE_TABLE_BYTES:
            key = (G, s0, min_std_m, stats.mean_m.detach().cpu().numpy().tobytes(),
                   stats.std_m.detach().cpu().numpy().tobytes(), self.levels.limbs, str(self.device))
            self._dense = _TABLES.take(key)
            if self._dense is None:
                index = self._sq.reshape(-1).to(torch.int32)
                self._dense = _TABLES.put(key, torch.index_select(self._psi_values, 1, index).view(L, S, S))
        elif S * S <= FULL_INDEX_CELLS:
            self._index = self._sq.reshape(-1).to(torch.int32)

    def check_rig(self, projections_hm: Tensor) -> None:
        """A ``ValueError`` unless ``projections_hm`` are the (V, 3, 4) matrices this solver was built for."""
        src, version = self._P_source
        if projections_hm is src and projections_hm._version == version:
            return
        same = (isinstance(projections_hm, Tensor) and projections_hm.shape == self._P_host.shape
                and torch.equal(projections_hm.detach().to("cpu", self._P_host.dtype), self._P_host))
        if not same:
            other = rig_key(projections_hm) if isinstance(projections_hm, Tensor) and projections_hm.dim() == 3 \
                else repr(projections_hm)
            raise ValueError(f"this RPSMSolver was built for the rig {self.rig_key}; these heatmaps come with the "
                             f"projections {other}: build a solver for their rig (RPSMSolver or solver_for)")
        self._P_source = (projections_hm, projections_hm._version)

    # -------------------------------------------------------------------------------------------------- a call

    def __call__(self, heatmaps: Tensor, projections_hm: Tensor, centre_m: Tensor | None = None,
                 return_stages: bool = False) -> Tensor | list[Tensor]:
        """(B, V, J, h, w) heatmaps seen by ``projections_hm`` → (B, J, 3) metres on the solver's device (the list of
        the ``stages + 1`` poses with ``return_stages``, the PSM's first), as :func:`mfcore.pictorial.rpsm`."""
        if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 5 or heatmaps.shape[0] < 1 \
                or heatmaps.shape[1:] != (self.V, self.J, *self.heatmap_hw):
            got = tuple(heatmaps.shape) if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
            raise ValueError(f"this RPSMSolver takes heatmaps (B >= 1, V={self.V}, J={self.J}, "
                             f"{self.heatmap_hw[0]}, {self.heatmap_hw[1]}), got {got}")
        self.check_rig(projections_hm)
        B = heatmaps.shape[0]
        if centre_m is not None:
            centre_m = centre_m.detach().to("cpu", torch.float32)
            if centre_m.shape != (B, 3) or not torch.isfinite(centre_m).all():
                raise ValueError(f"centre_m must be a finite (B={B}, 3) tensor, got {tuple(centre_m.shape)}")
        with torch.no_grad():
            slot = self._slot(B) if self.use_graphs else None
            if slot is not None:
                slot.heatmaps.copy_(heatmaps)
                self._graphs.run(("clean", B), lambda: self._clean_into(slot))
                clean, packed = slot.clean, slot.packed
            else:
                clean, packed = self._clean(heatmaps.to(self.device, torch.float32))
            packed = packed.cpu()  # the call's one host sync
            t0 = time.perf_counter()
            upload, radii = self._host_step(packed, centre_m)
            self.calls, self.host_seconds = self.calls + 1, self.host_seconds + time.perf_counter() - t0
            if slot is not None:
                slot.upload.copy_(upload)
                self._graphs.run(("solve", B, radii), lambda: torch.stack(
                    self._solve(slot.clean, slot.upload, radii), out=slot.poses))
                poses = slot.poses.clone()
            else:
                poses = torch.stack(self._solve(clean, upload.to(self.device), radii))
        return list(poses.unbind(0)) if return_stages else poses[-1]

    def _clean(self, hm: Tensor) -> tuple[Tensor, Tensor]:
        """Unusable views zeroed and negatives clamped (as ``pictorial._clean``), and what the host needs: (B, V, 4)
        usable flag, the root's heatmap maximum (x, y) and its DLT weight (``pictorial._argmax_weights``)."""
        ok = pictorial.usable_flags(hm)
        clean = torch.where(ok[:, :, None, None, None], hm, self._zero).clamp_min(0.0)
        r = self.levels.root
        x, w = pictorial._argmax_weights(clean[:, :, r:r + 1], ok, False)  # (B, V, 1, 2), (B, V, 1)
        return clean, torch.cat([ok[..., None].float(), x[:, :, 0], w], -1)

    def _clean_into(self, slot: _Slot) -> None:
        clean, packed = self._clean(slot.heatmaps)
        slot.clean.copy_(clean)
        slot.packed.copy_(packed)

    def _host_step(self, packed: Tensor, centre_m: Tensor | None) -> tuple[Tensor, tuple[int, ...]]:
        """On the host: report unusable views, the RANSAC root (unless given), and the blur σ and radius of every
        stage → the (B, 3 + 2·T'·V) upload and the blur radius used at each stage (0: none), the graph's key."""
        ok = packed[..., 0] > 0.5
        pictorial.report_unusable(ok, stacklevel=4)
        if centre_m is None:
            centre_m = pictorial.ransac_points(packed[:, :, None, 1:3], self._P_host, self._ransac_px,
                                               packed[:, :, 3:4], False)[:, 0].float()
        spacings = [self._s0 / 2 ** (t - 1) for t in range(1, max(self.stages, 1) + 1)]
        B, T1 = centre_m.shape[0], len(spacings)
        if self.antialias:
            sig, rad = pictorial.blur_sigma_px(self._P_host_f32, centre_m, spacings, self.heatmap_hw)  # (B, T', V)
            radii, smoothing = [], True
            for t, r in enumerate(rad.amax((0, 2)).tolist(), start=1):
                use = int(r) if (t == 1 or smoothing) else 0
                if t > 1:  # as pictorial.rpsm: once a stage needs no blur, no later stage is blurred
                    smoothing = use > 0
                radii.append(use)
        else:
            sig = rad = torch.zeros(B, T1, self.V)
            radii = [0] * T1
        upload = torch.cat([centre_m, sig.flatten(1), rad.flatten(1)], 1)
        return upload, tuple(radii)

    def _solve(self, clean: Tensor, upload: Tensor, radii: tuple[int, ...]) -> list[Tensor]:
        """Smoothing, PSM and every stage on the device, no host sync: the ``stages + 1`` poses (B, J, 3)."""
        B, V, J = clean.shape[:3]
        T1 = len(radii)
        centre = upload[:, :3]
        sig = upload[:, 3:3 + T1 * V].view(B, T1, V)
        rad = upload[:, 3 + T1 * V:].view(B, T1, V)

        def smoothed(t):
            r = radii[t - 1]
            return clean if r == 0 else pictorial.blur(clean, sig[:, t - 1], rad[:, t - 1], r)

        hm_s = smoothed(1) if self.antialias else clean  # shared by the PSM and stage 1
        points = centre[:, None, :] + self._grid[None]  # (B, G³, 3): pictorial.psm_grid_m
        log_u = pictorial._log_unary(hm_s, self.P, points[:, None], self.floor, self.interpolation, self._size)
        states = max_product_levels(log_u, self._psm_messages(B), self.levels)  # (B, J)
        pose = points.gather(1, states[..., None].expand(B, J, 3))
        poses = [pose]
        mean, band, sigma = self._stage_terms
        for t in range(1, self.stages + 1):
            if self.antialias and t > 1:
                hm_s = smoothed(t)
            cand = pose[:, :, None, :] + self._stage_offsets[t - 1]  # (B, J, n³, 3)
            log_u = pictorial._log_unary(hm_s, self.P, cand, self.floor, self.interpolation, self._size)
            d = (cand[:, self._limb_p, :, None, :] - cand[:, self._limb_c, None, :, :]).norm(dim=-1)  # (B, L, n³, n³)
            log_pw = pictorial._length_log_compat(d, mean, band, sigma)

            def message(k, energy_children, log_pw=log_pw):
                a, b = self.levels.bounds[k]
                return (log_pw[:, a:b] + energy_children[:, :, None, :]).max(-1)

            states = max_product_levels(log_u, message, self.levels)
            pose = cand.gather(2, states[:, :, None, None].expand(B, J, 1, 3))[:, :, 0]
            poses.append(pose)
        return poses

    def _psm_messages(self, B: int) -> LevelMessageFn:
        """Messages on the PSM lattice for one depth of limbs, in chunks of parent cells that keep the max-plus
        temporary (B, L_k, chunk, G³) within ``chunk_elements`` floats (:data:`CPU_CHUNK_ELEMENTS` at most on a CPU);
        log ψ from the dense tables or the lookup."""
        S = self._grid.shape[0]
        budget = self.chunk_elements if self.device.type == "cuda" else min(self.chunk_elements, CPU_CHUNK_ELEMENTS)
        sizes = [(b - a, max(1, min(S, budget // max(1, B * (b - a) * S)))) for a, b in self.levels.bounds]
        scratch = torch.empty(max(B * Lk * n * S for Lk, n in sizes), device=self.device)
        index_buf = None
        if self._dense is None and self._index is None:
            index_buf = torch.empty(max(n for _, n in sizes) * S, dtype=torch.int32, device=self.device)

        def message(k: int, energy_children: Tensor) -> tuple[Tensor, Tensor]:
            a, b = self.levels.bounds[k]
            Lk, chunk = sizes[k]
            best, arg = [], []
            for c0 in range(0, S, chunk):
                n = min(chunk, S - c0)
                if self._dense is not None:
                    psi = self._dense[a:b, c0:c0 + n]  # (L_k, n, S)
                else:
                    if self._index is not None:
                        idx = self._index[c0 * S:(c0 + n) * S]
                    else:
                        idx = index_buf[:n * S]
                        idx.copy_(self._sq[c0:c0 + n].reshape(-1))
                    psi = torch.index_select(self._psi_values[a:b], 1, idx).view(Lk, n, S)
                total = scratch[:B * Lk * n * S].view(B, Lk, n, S)
                torch.add(psi[None], energy_children[:, :, None, :], out=total)
                m, i = total.max(-1)  # (B, L_k, n)
                best.append(m)
                arg.append(i)
            return (best[0], arg[0]) if len(best) == 1 else (torch.cat(best, 2), torch.cat(arg, 2))
        return message

    def _slot(self, B: int) -> _Slot:
        """The static buffers of batch size ``B`` (the last few sizes are kept; graphs of a dropped size go too)."""
        slot = self._slots.take(B)
        if slot is None:
            h, w = self.heatmap_hw
            e = dict(device=self.device, dtype=torch.float32)
            T1 = max(self.stages, 1)
            slot = self._slots.put(B, _Slot(torch.zeros(B, self.V, self.J, h, w, **e),
                                            torch.zeros(B, self.V, self.J, h, w, **e), torch.zeros(B, self.V, 4, **e),
                                            torch.zeros(B, 3 + 2 * T1 * self.V, **e),
                                            torch.zeros(self.stages + 1, B, self.J, 3, **e)))
            self._graphs.forget(lambda key: key[1] in self._slots and key[1] != B)  # their buffers are gone
        return slot


def solver_for(projections_hm: Tensor, heatmap_hw, stats: LimbLengthStats, sizes, *, stages: int | None = None,
               grid_bins: int | None = None, antialias: bool | None = None, device=None,
               cuda_graphs: bool | None = None) -> RPSMSolver:
    """The :class:`RPSMSolver` of a rig at the profile's pictorial ``sizes`` (``stages``, ``grid_bins``,
    ``antialias`` override them), reused while it is among the last :data:`SOLVER_CACHE_SIZE` asked for."""
    stages = sizes.rpsm_stages if stages is None else stages
    grid_bins = sizes.grid_bins if grid_bins is None else grid_bins
    antialias = sizes.antialias if antialias is None else antialias
    device = torch.device(device if device is not None else projections_hm.device)
    hw = (heatmap_hw, heatmap_hw) if isinstance(heatmap_hw, int) else tuple(int(x) for x in heatmap_hw)
    key = (rig_key(projections_hm), str(projections_hm.dtype), hw,
           stats.mean_m.detach().cpu().numpy().tobytes(), stats.std_m.detach().cpu().numpy().tobytes(),
           grid_bins, sizes.cube_size_mm, stages, sizes.rpsm_bins, antialias, str(device), cuda_graphs)
    return _SOLVERS.take(key) or _SOLVERS.put(key, RPSMSolver(
        projections_hm, hw, stats, grid_bins, sizes.cube_size_mm, stages, sizes.rpsm_bins,
        antialias=antialias, device=device, cuda_graphs=cuda_graphs))


_SOLVERS = LRU(SOLVER_CACHE_SIZE)


def estimate_all(estimators, heatmaps: Tensor, projections_hm: Tensor, stats: LimbLengthStats | None = None,
                 sizes=None, batch_frames: int | None = None) -> dict[str, Tensor]:
    """Every estimator named in ``estimators`` (of :data:`mfcore.pictorial.ESTIMATORS`) on (B, V, J, h, w) heatmaps →
    {estimator: (B, J, 3) metres}, as :func:`mfcore.pictorial.estimate_3d` gives them; the PSM and the RPSM come from
    one :class:`RPSMSolver` solve (the PSM is the RPSM's stage 0), in calls of ``batch_frames`` (default
    ``sizes.batch_frames``)."""
    estimators = tuple(estimators)
    unknown = [e for e in estimators if e not in pictorial.ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown estimator(s) {unknown}; valid: {', '.join(pictorial.ESTIMATORS)}")
    out = {e: pictorial.estimate_3d(e, heatmaps, projections_hm, stats, sizes, batch_frames)
           for e in estimators if e not in ("psm", "rpsm")}
    pictorial_ones = [e for e in estimators if e in ("psm", "rpsm")]
    if pictorial_ones:
        if stats is None or sizes is None:
            raise ValueError(f"estimator(s) {pictorial_ones} need limb-length stats and the profile's pictorial sizes")
        batch = batch_frames or sizes.batch_frames
        solver = solver_for(projections_hm, tuple(heatmaps.shape[-2:]), stats, sizes,
                            stages=sizes.rpsm_stages if "rpsm" in pictorial_ones else 0, device=heatmaps.device)
        calls = [solver(heatmaps[i:i + batch], projections_hm, return_stages=True)
                 for i in range(0, heatmaps.shape[0], batch)]
        if "psm" in pictorial_ones:
            out["psm"] = torch.cat([c[0] for c in calls])
        if "rpsm" in pictorial_ones:
            out["rpsm"] = torch.cat([c[-1] for c in calls])
    return {e: out[e] for e in estimators}
