"""The "Your own cameras" page's import table: one rig (chapter 8's ``mfcore/rigs/ceiling5.yaml``) written in every
calibration format the book reads (:data:`mfcore.calibration.WRITERS`), imported back with format detection, and what
each import decided (units, up axis, re-centring) and how far its cameras' projections are from the original's.

The projections are compared in the frame of the first camera, which no world convention changes: a point given in
camera 1's coordinates is projected by every original camera and by every imported one (after the import's own
world frame), and the largest difference over the rig's cameras and the capture volume's side is reported in pixels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mfcore import calibration, studio

from .paths import REPO_ROOT

RIG_FILE = REPO_ROOT / "mfcore" / "rigs" / "ceiling5.yaml"


def _cameras(rig: studio.Rig) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(K (3, 3), R (3, 3), t (3,)) of every real sensor of ``rig``, as the calibration writers read them (the view
    itself where a camera has no sensor)."""
    return [(K, R, t) for _, K, _, _, R, t in calibration.real_cameras(rig)]


def reprojection_difference_px(original: studio.Rig, imported: studio.Rig, points_cam0_m: np.ndarray) -> float:
    """The largest pixel distance between the projections of ``points_cam0_m`` (N, 3), metres in the first camera's
    frame, through the cameras of ``original`` and of ``imported`` (same order)."""
    worst = 0.0
    frames = []
    for rig in (original, imported):
        K0, R0, t0 = _cameras(rig)[0]
        world = (points_cam0_m - t0) @ R0  # X = R0ᵀ (x_cam0 − t0), rows
        frames.append([(K @ (world @ R.T + t).T).T for K, R, t in _cameras(rig)])
    for a, b in zip(*frames):
        pa, pb = a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:]
        worst = max(worst, float(np.abs(pa - pb).max()))
    return worst


def imports_table(rig_file: Path = RIG_FILE) -> str:
    """A Markdown table: per format, the file written, the format detected on reading it, cameras, units and up axis
    with the rule that decided them, the re-centring offset, and :func:`reprojection_difference_px`."""
    original = calibration.read_rig(rig_file, warn=False).rig
    K0, R0, t0 = _cameras(original)[0]
    points = calibration.surface_points_m()[0] @ R0.T + t0  # the capture volume's side, in camera 1's frame (m)
    lines = ["| format | written as | detected | cameras | units (rule) | up (rule) | re-centring offset (m) | "
             "largest reprojection difference (px) |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, write in calibration.WRITERS.items():
            target = Path(tmp) / fmt / {"opencv": "calibration.yml", "anipose": "calibration.toml",
                                         "panoptic": "calibration_demo.json", "h36m": "cameras.json",
                                         "book": "rig.yaml"}.get(fmt, "")
            path = Path(write(original, target))
            imported = calibration.read_rig(path, warn=False)
            shown = path.relative_to(tmp).as_posix() + ("/" if path.is_dir() else "")
            offset = ", ".join(f"{v:+.2f}" for v in imported.offset_m)
            diff = reprojection_difference_px(original, imported.rig, points)
            lines.append(f"| {fmt} | `{shown}` | {imported.format} | {imported.rig.num_views} | {imported.units} "
                         f"({imported.rules['units']}) | {imported.up} ({imported.rules['up']}) | ({offset}) | "
                         f"{diff:.1e} |")
    return "\n".join(lines) + "\n"
