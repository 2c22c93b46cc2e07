"""The 17-joint Human3.6M skeleton used everywhere in the book: joint names and order, limbs, left/right pairs, head size.

World frame convention (used by ``motion``, ``studio``, ``render``): metres, right-handed, **Z up**, the floor at z = 0.
"""

from __future__ import annotations

import torch

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",  # 0, the root
    "right_hip",  # 1
    "right_knee",  # 2
    "right_ankle",  # 3
    "left_hip",  # 4
    "left_knee",  # 5
    "left_ankle",  # 6
    "spine",  # 7
    "thorax",  # 8 (neck base)
    "nose",  # 9
    "head_top",  # 10
    "left_shoulder",  # 11
    "left_elbow",  # 12
    "left_wrist",  # 13
    "right_shoulder",  # 14
    "right_elbow",  # 15
    "right_wrist",  # 16
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
ROOT = 0

# Parent of every joint in the kinematic tree (root has -1). Parents come before children.
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Limbs as (parent, child) pairs: the 16 edges of the tree.
LIMBS: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

# (left, right) joint pairs: the mirror symmetry that makes left/right confusion possible.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    {**{l: r for l, r in LEFT_RIGHT_PAIRS}, **{r: l for l, r in LEFT_RIGHT_PAIRS}}.get(j, j) for j in range(NUM_JOINTS)
)

LEFT_JOINTS = tuple(l for l, _ in LEFT_RIGHT_PAIRS)
RIGHT_JOINTS = tuple(r for _, r in LEFT_RIGHT_PAIRS)

# The head segment (thorax, i.e. neck base, to head top). The JDR threshold is not this: it is the Cross View Fusion
# code's constant head size in sensor pixels (mfcore.metrics.jdr_threshold_sensor_px).
HEAD_SEGMENT: tuple[int, int] = (JOINT_INDEX["thorax"], JOINT_INDEX["head_top"])

# Joint groups reported in Fig. 7 of MetaFuse (left and right averaged).
JOINT_GROUPS: dict[str, tuple[int, ...]] = {
    "wrist": (13, 16),
    "elbow": (12, 15),
    "knee": (2, 5),
    "ankle": (3, 6),
    "shoulder": (11, 14),
    "hip": (1, 4),
}


def head_size_m(joints_3d_m: torch.Tensor) -> torch.Tensor:
    """Head size in metres: the 3D length of the thorax→head-top segment. (..., J, 3) → (...).

    MetaFuse Sec. 5.1 thresholds JDR at half the head size (as MPII's PCKh). Our 17-joint skeleton has no head box, so
    the head size is the neck-base-to-crown length, which is close to the MPII head-box diagonal's scale.
    """
    a, b = HEAD_SEGMENT
    return (joints_3d_m[..., b, :] - joints_3d_m[..., a, :]).norm(dim=-1)


def limb_lengths_m(joints_3d_m: torch.Tensor) -> torch.Tensor:
    """Length of every limb in :data:`LIMBS`, (..., J, 3) → (..., len(LIMBS))."""
    parents = torch.tensor([p for p, _ in LIMBS], device=joints_3d_m.device)
    children = torch.tensor([c for _, c in LIMBS], device=joints_3d_m.device)
    return (joints_3d_m[..., children, :] - joints_3d_m[..., parents, :]).norm(dim=-1)


def body_height_m(joints_3d_m: torch.Tensor) -> torch.Tensor:
    """Body height in metres from the bone lengths, whatever the pose: head top → thorax (the head segment) → spine →
    pelvis, plus the mean leg (hip → knee → ankle, left and right). (..., J, 3) → (...). It stops at the ankle joints
    (no feet), so it is a few centimetres below the standing stature."""
    def length(a: str, b: str) -> torch.Tensor:
        return (joints_3d_m[..., JOINT_INDEX[a], :] - joints_3d_m[..., JOINT_INDEX[b], :]).norm(dim=-1)

    trunk = length("head_top", "thorax") + length("thorax", "spine") + length("spine", "pelvis")
    legs = [length(f"{s}_hip", f"{s}_knee") + length(f"{s}_knee", f"{s}_ankle") for s in ("left", "right")]
    return trunk + 0.5 * (legs[0] + legs[1])
