"""Anipose / aniposelib ``calibration.toml``: ``[cam_N]`` tables (cv2 Rodrigues ``rotation``, ``translation`` in the
board's unit), reader and writer (conventions: :mod:`mfcore.calibration.conventions`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from scipy.spatial.transform import Rotation

from .. import studio
from ..files import atomic_write_bytes
from .conventions import METRES_PER_UNIT, bad, file_camera, num, real_cameras, rodrigues_or_matrix


def read_anipose(path) -> list[dict]:
    """Anipose / aniposelib ``calibration.toml``: ``[cam_N]`` tables with world→camera Rodrigues ``rotation``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"calibration file {str(path)!r} is not valid TOML: {err}") from None
    cams = []
    for key, table in data.items():
        if not key.startswith("cam_") or not isinstance(table, dict):
            continue
        name = table.get("name", key)
        if table.get("fisheye"):
            raise bad(path, name, "fisheye", "fisheye cameras are not supported (the studio renders a pinhole)")
        for field in ("size", "matrix", "rotation", "translation"):
            if field not in table:
                raise bad(path, name, field, "missing")
        cams.append(file_camera(path, name, table["size"], table["matrix"], table.get("distortions"),
                            rodrigues_or_matrix(table["rotation"]), table["translation"],
                            fields=("size", "matrix", "distortions", "rotation", "translation")))
    if not cams:
        raise bad(path, None, "[cam_N]", "no camera tables")
    return cams



def write_anipose(rig: studio.Rig, path, units: str = "mm") -> Path:
    """aniposelib ``calibration.toml``: ``[cam_N]`` name, size, matrix, distortions, rotation (Rodrigues),
    translation (``units``, mm by default as a board measured in mm)."""
    s, lines = 1.0 / METRES_PER_UNIT[units], []
    vec = lambda v: "[ " + ", ".join(num(x) for x in v) + ",]"  # noqa: E731
    for i, (name, K, (w, h), dist, R, t) in enumerate(real_cameras(rig)):
        lines += [f"[cam_{i}]", f'name = "{name}"', f"size = [ {w}, {h},]",
                  f"matrix = [ {', '.join(vec(row) for row in K)},]", f"distortions = {vec(dist or [0.0] * 5)}",
                  f"rotation = {vec(Rotation.from_matrix(R).as_rotvec())}", f"translation = {vec(s * t)}", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0"]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


