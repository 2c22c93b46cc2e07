"""Rotations (quaternions, axis angles, Acclaim Euler angles), unit vectors and the 17-joint stacking shared by the
three sources' forward kinematics and their mapping to the H36M skeleton."""

from __future__ import annotations

import numpy as np

from ..skeleton import JOINT_NAMES


def _quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z) → (..., 3, 3) rotation matrices (normalised first)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """(...,) angles → (..., 3, 3) rotations about the x (0), y (1) or z (2) axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, i = np.zeros_like(c), np.ones_like(c)
    if axis == 0:
        rows = [[i, o, o], [o, c, -s], [o, s, c]]
    elif axis == 1:
        rows = [[c, o, s], [o, i, o], [-s, o, c]]
    else:
        rows = [[c, -s, o], [s, c, o], [o, o, i]]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def _euler_xyz_deg(angles_deg: np.ndarray) -> np.ndarray:
    """(..., 3) Acclaim Euler angles in degrees, applied about x, then y, then z (fixed axes) → (..., 3, 3) Rz Ry Rx."""
    a = np.deg2rad(angles_deg)
    return _axis_rotation(2, a[..., 2]) @ _axis_rotation(1, a[..., 1]) @ _axis_rotation(0, a[..., 0])


def _forward(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Unit forward vector (..., 3) orthogonal to ``up``: forward = left × up, for a right-handed frame."""
    f = np.cross(left, up)
    f = f - (f * up).sum(-1, keepdims=True) * up / (up * up).sum(-1, keepdims=True)
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _stack_h36m(named: dict[str, np.ndarray]) -> np.ndarray:
    """{H36M joint name: (T,3)} → (T,17,3) in skeleton order."""
    return np.stack([named[n] for n in JOINT_NAMES], 1)
