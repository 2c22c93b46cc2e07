"""The pairwise term of the pictorial model: limb-length statistics of *training* motions, and the limb
compatibility ψ (flat inside a band, Gaussian outside it) on a grid of a given spacing."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import skeleton

Tensor = torch.Tensor


class LimbLengthStats(NamedTuple):
    """Mean and standard deviation of every limb's length in metres, (L,) each, limbs in ``skeleton.LIMBS`` order."""

    mean_m: Tensor
    std_m: Tensor


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


def _check_stats(stats: LimbLengthStats, parents) -> tuple[tuple[int, int], ...]:
    limbs = _limbs(parents)
    mean, std = stats
    if mean.shape != (len(limbs),) or std.shape != (len(limbs),):
        raise ValueError(f"limb stats must be ({len(limbs)},) each for these parents, got {tuple(mean.shape)} and "
                         f"{tuple(std.shape)}")
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (mean > 0).all() and (std >= 0).all()):
        raise ValueError("limb stats must be finite with mean > 0 and std >= 0")
    return limbs


def _limb_terms(stats: LimbLengthStats, spacing_m: float, min_std_m: float, device) -> tuple[Tensor, Tensor, Tensor]:
    """Per limb (L,): mean length μ, tolerated band 2σ + s/2 and fall-off σ_eff = √(σ² + s²/6), metres."""
    std = stats.std_m.to(device).float().clamp_min(min_std_m)
    return stats.mean_m.to(device).float(), 2.0 * std + spacing_m / 2.0, torch.sqrt(std**2 + spacing_m**2 / 6.0)


def _length_log_compat(d_m: Tensor, mean_m: Tensor, band_m: Tensor, sigma_m: Tensor) -> Tensor:
    """log ψ(d) = −½ (max(0, |d − μ| − band) / σ_eff)²: flat inside the band, Gaussian fall-off outside."""
    return -0.5 * (((d_m - mean_m).abs() - band_m).clamp_min(0.0) / sigma_m) ** 2
