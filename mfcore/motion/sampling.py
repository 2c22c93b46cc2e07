"""The seeded pose sampler: frames of one split drawn with the sources weighted equally, then augmented (bone-length
jitter, a turn about the vertical, a place in the capture disc)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..skeleton import FLIP_PERMUTATION, JOINT_INDEX, LIMBS, NUM_JOINTS, PARENTS
from .library import load_motion_library
from .splits import SPLITS

# The person's pelvis is placed uniformly in a disc of this radius around the origin: the person volume the built-in
# views are framed on (mfcore.studio.PERSON_VOLUME_RADIUS_M). 0.3 m: with a 1.9 m tall person volume, the H36M-like
# test views at the full profile get person_extent_fraction 0.67 (>= 0.6) and 31.5 mm per heatmap pixel (<= 35),
# with about 1 % of the joints outside the view (tools/framing_radii.py prints the candidates; 1.0 m gave 0.57, 37 mm).
CAPTURE_RADIUS_M = 0.3
BONE_JITTER_STD = 0.03  # each limb length is scaled by 1 + N(0, BONE_JITTER_STD²)


def _limb_classes() -> tuple[torch.Tensor, int]:
    """Class of every limb in LIMBS such that mirror limbs (left/right) share a class → ((16,) long, n_classes)."""
    keys = []
    for p, c in LIMBS:
        mirror = (FLIP_PERMUTATION[p], FLIP_PERMUTATION[c])
        keys.append(min((p, c), mirror))
    unique = sorted(set(keys))
    return torch.tensor([unique.index(k) for k in keys]), len(unique)


def jitter_bone_lengths(joints_3d_m: torch.Tensor, scale_per_limb: torch.Tensor) -> torch.Tensor:
    """Re-chain a pose from the root with every limb scaled: (B,17,3), (B,16) scales in LIMBS order → (B,17,3).

    Each child = new parent + scale · (old child − old parent), so limb directions are kept. The lowest ankle keeps its
    height, so feet stay on the floor.
    """
    out = joints_3d_m.clone()
    child_to_limb = {c: k for k, (_, c) in enumerate(LIMBS)}
    for c in range(1, NUM_JOINTS):  # PARENTS lists parents before children
        p = PARENTS[c]
        out[:, c] = out[:, p] + scale_per_limb[:, child_to_limb[c], None] * (joints_3d_m[:, c] - joints_3d_m[:, p])
    ankles = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]
    dz = joints_3d_m[:, ankles, 2].amin(1) - out[:, ankles, 2].amin(1)  # (B,)
    out[..., 2] += dz[:, None]
    return out


def _check_split_n(split: str, n: int) -> None:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split={split!r}: allowed values are {SPLITS}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r}: must be a positive integer")


@functools.lru_cache(maxsize=64)
def _frame_pools(split: str, motion_type: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frame indices of one split (and motion type), grouped by source → (all (M,), starts (S,), sizes (S,))."""
    lib = load_motion_library()
    if motion_type is not None and motion_type not in lib.motion_types:
        raise ValueError(f"motion_type={motion_type!r}: allowed values are None or {lib.motion_types}")
    in_split = lib.frame_split == SPLITS.index(split)  # (N,)
    wanted = [i for i, c in enumerate(lib.clips) if split in c.splits and motion_type in (None, c.motion_type)]
    if not wanted:
        available = sorted({c.motion_type for c in lib.clips if split in c.splits})
        raise ValueError(f"motion_type={motion_type!r} has no clip in split {split!r}; it has {available}")
    pools = []
    for source in sorted({lib.clips[i].source for i in wanted}):
        ids = torch.tensor([i for i in wanted if lib.clips[i].source == source])
        pools.append(torch.nonzero(torch.isin(lib.clip_index, ids) & in_split).squeeze(1))
    sizes = torch.tensor([len(p) for p in pools])
    return torch.cat(pools), torch.cumsum(sizes, 0) - sizes, sizes


def sample_poses(
    split: str, n: int, seed: int, augment: bool = True, motion_type: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n poses of one split (``"train"``, ``"test"`` or ``"stress"``, :data:`SPLITS`) → (joints_3d_m (n,17,3)
    float32 CPU, clip_index (n,) long into library.clips).

    Frames are drawn with the sources weighted equally (a source, then a frame uniformly among that source's frames in
    the split), so the 12,939 climbing frames do not swamp the rest. Every pose is moved so its pelvis is above the
    origin (the clips travel several metres; the person volume is a 0.3 m disc). With ``augment``: bone lengths are
    jittered (each limb × (1 + N(0, 0.03²)), mirror limbs alike, re-chained from the root; the lowest ankle keeps its
    height), the pose is turned about the vertical axis by a uniform angle and placed uniformly in the capture disc
    (radius :data:`CAPTURE_RADIUS_M`), feet on the floor. Deterministic in ``seed``.
    """
    _check_split_n(split, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: must be an integer")
    if motion_type is not None and not isinstance(motion_type, str):
        raise ValueError(f"motion_type={motion_type!r}: must be None or one of {load_motion_library().motion_types}")
    all_pools, pool_starts, pool_sizes = _frame_pools(split, motion_type)

    g = torch.Generator().manual_seed(int(seed))
    src = torch.randint(len(pool_sizes), (n,), generator=g)
    within = (torch.rand(n, generator=g, dtype=torch.float64) * pool_sizes[src]).long().clamp_max(pool_sizes[src] - 1)
    frame = all_pools[pool_starts[src] + within]
    lib = load_motion_library()
    joints = lib.joints_3d_m[frame].clone()  # (n,17,3)
    clip_index = lib.clip_index[frame].clone()
    joints[..., :2] -= joints[:, :1, :2].clone()  # pelvis above the origin (clone: the source aliases the target)
    if not augment:
        return joints, clip_index

    classes, n_classes = _limb_classes()
    scales = 1.0 + BONE_JITTER_STD * torch.randn(n, n_classes, generator=g)
    joints = jitter_bone_lengths(joints, scales[:, classes])
    angle = 2 * math.pi * torch.rand(n, generator=g)
    radius = CAPTURE_RADIUS_M * torch.rand(n, generator=g).sqrt()
    phi = 2 * math.pi * torch.rand(n, generator=g)
    c, s = torch.cos(angle), torch.sin(angle)
    x, y = joints[..., 0], joints[..., 1]
    joints = torch.stack(
        [c[:, None] * x - s[:, None] * y + (radius * torch.cos(phi))[:, None],
         s[:, None] * x + c[:, None] * y + (radius * torch.sin(phi))[:, None],
         joints[..., 2]],
        -1,
    )
    return joints.float(), clip_index
