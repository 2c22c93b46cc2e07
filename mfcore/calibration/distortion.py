"""Lens distortion in OpenCV's model: kept in the rig file, not rendered (the studio renders the undistorted pinhole),
and measured as the largest pixel shift on the image border so an import can say what is left out."""

from __future__ import annotations

import warnings

import numpy as np

from .conventions import sensors_of


def distort_normalised(xy, dist) -> np.ndarray:
    """OpenCV's lens model on normalised coordinates (..., 2): k1 k2 p1 p2 [k3 [k4 k5 k6]] (rational radial)."""
    k = list(dist) + [0.0] * (8 - len(dist))
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = (1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3) / (1 + k[5] * r2 + k[6] * r2**2 + k[7] * r2**3)
    xd = x * radial + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    yd = y * radial + k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
    return np.stack([xd, yd], axis=-1)


def distortion_shift_px(K, dist, image_size, n: int = 64) -> float:
    """The largest pixel shift the distortion causes on the border of the w × h image (n points per edge)."""
    if not any(dist):
        return 0.0
    K = np.asarray(K, dtype=np.float64)
    w, h = image_size
    s = np.linspace(0.0, 1.0, n)
    xs, ys = -0.5 + s * w, -0.5 + s * h
    border = np.concatenate([np.stack([xs, np.full(n, -0.5)], 1), np.stack([xs, np.full(n, h - 0.5)], 1),
                             np.stack([np.full(n, -0.5), ys], 1), np.stack([np.full(n, w - 0.5), ys], 1)])
    xy = (border - K[:2, 2]) @ np.linalg.inv(K[:2, :2]).T  # K's upper-left block (skew allowed)
    moved = distort_normalised(xy, dist) @ K[:2, :2].T + K[:2, 2]
    return float(np.linalg.norm(moved - border, axis=1).max())


def warn_distortion(imported) -> None:
    """Warn, for an :class:`mfcore.calibration.Imported`, that distortion terms are kept but not rendered, with the
    largest pixel shift they cause."""
    shifts = [(distortion_shift_px(s.K, s.dist, s.image_size), c.name, s.image_size)
              for c, s in zip(imported.rig.cameras, sensors_of(imported.rig)) if any(s.dist)]
    if shifts:
        top, name, (w, h) = max(shifts)
        warnings.warn(f"calibration file {imported.source!r}: {len(shifts)} camera(s) have lens distortion; the studio "
                      f"renders a pinhole with the undistorted intrinsics (terms kept in the rig file as dist). The "
                      f"largest shift is {top:.1f} px in camera {name!r} ({w}×{h} image border)", stacklevel=3)


