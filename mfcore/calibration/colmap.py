"""COLMAP's text model (``cameras.txt`` + ``images.txt``): one image per camera of the rig, COLMAP's half-pixel
principal point moved to the book's integer pixel centres, and the writer (conventions:
:mod:`mfcore.calibration.conventions`). A model from structure from motion has an arbitrary scale: read it with
``scale=`` or ``baseline=`` (:func:`mfcore.calibration.read_rig`)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from scipy.spatial.transform import Rotation

from .. import studio
from ..files import atomic_write_bytes
from .conventions import METRES_PER_UNIT, bad, file_camera, num, numbers, real_cameras
_COLMAP_MODELS = {  # parameters → (fx, fy, cx, cy, dist in OpenCV order)
    "SIMPLE_PINHOLE": lambda p: (p[0], p[0], p[1], p[2], []),
    "PINHOLE": lambda p: (p[0], p[1], p[2], p[3], []),
    "SIMPLE_RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3], 0.0, 0.0, 0.0]),
    "RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3], p[4], 0.0, 0.0]),
    "OPENCV": lambda p: (p[0], p[1], p[2], p[3], list(p[4:8])),
    "FULL_OPENCV": lambda p: (p[0], p[1], p[2], p[3], list(p[4:12])),
}
_COLMAP_PARAMS = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8, "FULL_OPENCV": 12}


def _colmap_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"calibration file {str(path)!r} does not exist (a COLMAP model needs cameras.txt and "
                         f"images.txt)")
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def read_colmap(path) -> list[dict]:
    """COLMAP text model: ``cameras.txt`` (intrinsics; (0.5, 0.5) is the top-left pixel's centre) and ``images.txt``
    (world→camera Hamilton quaternion QW QX QY QZ and TX TY TZ), one image per camera of the rig."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    intrinsics = {}
    for line in _colmap_lines(folder / "cameras.txt"):
        if not line.strip():
            continue
        tokens = line.split()
        if len(tokens) < 4:
            raise bad(folder / "cameras.txt", tokens[0], "CAMERA line", "expected CAMERA_ID MODEL WIDTH HEIGHT "
                      f"PARAMS[], got {line.strip()!r}")
        cam_id, model, w, h, *params = tokens
        if model not in _COLMAP_MODELS:
            raise bad(folder / "cameras.txt", cam_id, "MODEL", f"unsupported model {model!r}; supported: "
                       f"{', '.join(_COLMAP_MODELS)}")
        if len(params) != _COLMAP_PARAMS[model]:
            raise bad(folder / "cameras.txt", cam_id, "PARAMS", f"{model} has {_COLMAP_PARAMS[model]} parameters, "
                       f"got {len(params)}")
        fx, fy, cx, cy, dist = _COLMAP_MODELS[model](numbers(folder / "cameras.txt", cam_id, "PARAMS", params))
        K = [[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]]  # COLMAP's (0.5, 0.5) → the book's (0, 0)
        size = tuple(numbers(folder / "cameras.txt", cam_id, "WIDTH HEIGHT", (w, h), int))
        intrinsics[cam_id] = (size, K, dist)
    lines, cams, i = _colmap_lines(folder / "images.txt"), [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        fields = lines[i].split()
        i += 2  # the next line lists the image's 2D points
        if len(fields) < 10:
            raise bad(folder / "images.txt", fields[0], "IMAGE line", "expected IMAGE_ID QW QX QY QZ TX TY TZ "
                       f"CAMERA_ID NAME, got {' '.join(fields)!r}")
        name = re.sub(r"\.[A-Za-z0-9]+$", "", " ".join(fields[9:])).replace("/", "_")
        qw, qx, qy, qz = numbers(folder / "images.txt", name, "QW QX QY QZ", fields[1:5])
        tx, ty, tz = numbers(folder / "images.txt", name, "TX TY TZ", fields[5:8])
        if fields[8] not in intrinsics:
            raise bad(folder / "images.txt", name, "CAMERA_ID", f"{fields[8]} is not in cameras.txt")
        norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if abs(norm - 1.0) > 1e-3:
            raise bad(folder / "images.txt", name, "QW QX QY QZ", f"not a unit quaternion (norm {norm:.6g})")
        R = Rotation.from_quat([qx, qy, qz, qw]).as_matrix()  # scipy is scalar-last
        size, K, dist = intrinsics[fields[8]]
        cams.append(file_camera(folder / "images.txt", name, size, K, dist, R, [tx, ty, tz],
                            fields=("WIDTH HEIGHT", "PARAMS", "PARAMS", "QW QX QY QZ", "TX TY TZ")))
    return cams


def write_colmap(rig: studio.Rig, folder, units: str = "m") -> Path:
    """COLMAP ``cameras.txt`` (PINHOLE, or OPENCV/FULL_OPENCV with distortion; principal point + 0.5) and
    ``images.txt`` (world→camera QW QX QY QZ, TX TY TZ in ``units``; image NAME = camera name + .png)."""
    folder, s = Path(folder), 1.0 / METRES_PER_UNIT[units]
    cam_lines, img_lines = ["# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"], ["# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, "
                                                                             "CAMERA_ID, NAME", "# POINTS2D[]"]
    for i, (name, K, (w, h), dist, R, t) in enumerate(real_cameras(rig), start=1):
        params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]  # the book's (0, 0) → COLMAP's (0.5, 0.5)
        d = list(dist) + [0.0] * (8 - len(dist))
        model = "PINHOLE" if not any(d) else "OPENCV" if not any(d[4:]) else "FULL_OPENCV"
        params += {"PINHOLE": [], "OPENCV": d[:4], "FULL_OPENCV": d[:8]}[model]
        cam_lines.append(f"{i} {model} {w} {h} {' '.join(num(p) for p in params)}")
        qx, qy, qz, qw = Rotation.from_matrix(R).as_quat()
        img_lines += [f"{i} {' '.join(num(v) for v in (qw, qx, qy, qz, *(s * t)))} {i} {name}.png", ""]
    atomic_write_bytes(folder / "cameras.txt", ("\n".join(cam_lines) + "\n").encode())
    atomic_write_bytes(folder / "images.txt", ("\n".join(img_lines) + "\n").encode())
    return folder


