"""CMU Panoptic ``calibration_<seq>.json`` (cm, y down): reader and writer (conventions:
:mod:`mfcore.calibration.conventions`)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import studio
from ..files import atomic_write_bytes
from .conventions import UP_ROTATIONS, bad, file_camera, load_mapping, real_cameras


def read_panoptic(path) -> list[dict]:
    """CMU Panoptic ``calibration_<seq>.json``: ``cameras[]`` with world→camera R, t in cm, y down."""
    path = Path(path)
    data = load_mapping(path)
    if not isinstance(data.get("cameras"), list):
        raise bad(path, None, "cameras", "missing (expected a list of cameras)")
    cams = []
    for i, d in enumerate(data["cameras"]):
        name = d.get("name", f"#{i}")
        cams.append(file_camera(path, name, d.get("resolution"), d.get("K"), d.get("distCoef"), d.get("R"), d.get("t"),
                            fields=("resolution", "K", "distCoef", "R", "t"), type=str(d.get("type", ""))))
    return cams



def write_panoptic(rig: studio.Rig, path, camera_type: str = "hd") -> Path:
    """CMU Panoptic ``calibration_<seq>.json``: world turned so y points down (X_p = Q_{-y}ᵀ X), t in cm."""
    Q = UP_ROTATIONS["-y"]
    cams = [{"name": name, "type": camera_type, "resolution": [w, h], "panel": 0, "node": i, "K": K.tolist(),
             "distCoef": list(dist or [0.0] * 5), "R": (R @ Q).tolist(), "t": (100.0 * t)[:, None].tolist()}
            for i, (name, K, (w, h), dist, R, t) in enumerate(real_cameras(rig))]
    return atomic_write_bytes(path, json.dumps({"calibDataSource": "mfcore", "cameras": cams}, indent=1).encode())


