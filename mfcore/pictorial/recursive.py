"""The PSM and the Recursive PSM (Cross View Fusion Sec. 4): the PSM stage on the shared lattice, the refinement
stages on a small grid around every joint's estimate, and the checks of their settings."""

from __future__ import annotations

import math

import torch

from .. import skeleton
from .lattice import DEFAULT_CHUNK_ELEMENTS, _grid_messages, psm_grid_m
from .limbs import LimbLengthStats, _check_stats, _length_log_compat, _limb_terms
from .tree import max_product_tree
from .triangulation import _ransac
from .unary import _log_unary, _smooth_to_grid
from .views import _check_inputs, _clean, usable_views

Tensor = torch.Tensor


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
