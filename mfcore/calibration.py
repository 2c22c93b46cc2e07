"""Your calibration files as the book's rig: OpenCV, COLMAP, Anipose, CMU Panoptic, H36M-style and EasyMocap.

Every reader turns a file into the book's rig (:mod:`mfcore.studio`): metres, **Z up**, ``x_cam = R X + t`` (R the
world→camera rotation), pixel centres at integer coordinates (x right, y down), the capture volume a cylinder
(r = 1.2 m, h = 2.1 m) standing on the floor z = 0 at the origin. What each format stores:

| format    | rotation (all world→camera)   | translation, units            | up       | top-left pixel centre | distortion     |
|-----------|-------------------------------|-------------------------------|----------|-----------------------|----------------|
| opencv    | R 3×3 or Rodrigues 3×1        | t (x_cam = R X + t); board's  | inferred | (0, 0), as the book   | k1 k2 p1 p2 k3 |
| colmap    | Hamilton quaternion QW QX QY QZ | TX TY TZ; arbitrary scale   | inferred | **(0.5, 0.5)**: −0.5  | OPENCV params  |
| anipose   | Rodrigues ``rotation``        | ``translation``; board's (mm) | inferred | (0, 0)                | ``distortions``|
| panoptic  | ``R`` 3×3                     | ``t`` 3×1, **cm**             | **−y**   | (0, 0)                | ``distCoef``   |
| h36m      | ``R`` 3×3                     | ``t`` = −R·C or ``T`` = C, **mm** | **+z** | (0, 0)              | ``dist``/``k,p`` |
| easymocap | ``Rot_`` 3×3 / ``R_`` Rodrigues | ``T_``; board's (often m)   | inferred | (0, 0)                | ``dist_``      |
| book      | ``R`` 3×3                     | ``t``, metres                 | +z       | (0, 0)                | ``dist`` kept  |

Distortion terms are read into OpenCV's order k1 k2 p1 p2 [k3 [k4 k5 k6]]; "board's" = the unit the calibration
board was measured in (inferred, below); COLMAP's principal point is moved by −0.5 px in x and y (cx_book = cx − 0.5).

Layouts read (``<n>`` = a camera's name):

- **opencv**: one FileStorage ``.yml/.yaml`` (``%YAML:1.0``, ``!!opencv-matrix`` rows/cols/dt/data) or ``.xml``
  (``<opencv_storage>``, ``type_id="opencv-matrix"``) holding every camera: ``K_<n>`` or ``camera_matrix_<n>``;
  ``dist_<n>``, ``D_<n>`` or ``distortion_coefficients_<n>``; ``Rot_<n>`` (3×3), ``R_<n>`` (3×3 or Rodrigues) or
  ``rvec_<n>``; ``T_<n>``, ``t_<n>`` or ``tvec_<n>``; size ``image_width_<n>``/``image_height_<n>``, ``W_<n>``/``H_<n>``
  or shared ``image_width``/``image_height`` (else assumed from the principal point, with a warning). Names come from
  ``names`` or the K keys. Or a folder of one-camera files (the same keys without ``_<n>``; name = file stem).
- **colmap**: a folder (or either file) with ``cameras.txt`` (CAMERA_ID MODEL WIDTH HEIGHT PARAMS) and ``images.txt``
  (IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, then a line of 2D points); one image = one camera of the rig, named
  by its NAME without the suffix. Models SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV.
- **anipose**: aniposelib's ``calibration.toml``, tables ``[cam_N]`` with ``name, size [w, h], matrix, distortions,
  rotation, translation`` (cv2 rvec/tvec; fisheye cameras are refused).
- **panoptic**: ``calibration_<seq>.json``, ``cameras[]`` with ``name, type, resolution [w, h], K, distCoef, R, t``;
  by default the ``hd`` cameras (``cameras="vga"``, ``"hd,vga"`` or names ``"00_00,00_01"`` choose others).
- **h36m**: JSON/YAML ``{name: {...}}``, ``{"cameras": {name: {...}}}`` or one level of subjects
  ``{subject: {name: {...}}}`` (names ``subject/name``; ``cameras="S9"`` selects a subject), or ``.npz`` with keys
  ``<name>/<field>``. Per camera ``R``; ``t`` (x_cam = R X + t) or, when there is no ``t``, ``T`` = the camera centre C
  (as Human3.6M's own camera files store it), t = −R·C; ``K`` or ``f`` (fx, fy) and ``c`` (cx, cy); ``dist`` or ``k``
  + ``p``; size ``image_size``/``resolution`` [w, h] or ``res_w, res_h``/``width, height``.
- **easymocap**: ``intri.yml`` (``names, K_<n>, dist_<n>, H_<n>, W_<n>``) and ``extri.yml`` (``names, R_<n>``
  Rodrigues, ``Rot_<n>``, ``T_<n>``), OpenCV FileStorage side by side (give the folder or either file).

Rules, applied in this order (each printed in the summary; ``units``/``up`` overridable):

- **Units**: the format's unit where the format fixes one (Panoptic cm, H36M-style mm, the book's m); otherwise
  inferred from d, the median distance from the cameras to their common look-at point, in file units:
  d > 1000 → mm, d > 50 → cm, else m (working distances of 1-10 m read right in every unit). Override ``units=``.
- **Up axis**: the format's up where it fixes one (Panoptic −y, H36M-style +z, the book's +z); otherwise the signed
  world axis closest to the mean of the cameras' image-up directions (−(second row of R): cameras are mounted
  upright). Override ``up=`` (``"+x" "-x" "+y" "-y" "+z" "-z"``). The world is turned so that axis is +Z.
- **Re-centring** (a rigid shift, never a scale): p = the least-squares closest point of all optical axes. The shift
  puts p over the origin (x = y = 0); the file's floor height is kept when 0 ≤ p_z ≤ 2.1 m (the file's z = 0 then
  plausibly is the floor), else the floor goes to p_z − 1.05 m (p at the volume's mid-height). Not applied to the
  book's own rig files (already in the book frame).
- **Distortion**: the studio renders a pinhole with the calibration's K (the undistorted image, as ``cv2.undistort``
  with ``newCameraMatrix = K`` gives); the terms are kept (``dist`` in the rig file, :class:`mfcore.studio.Sensor`)
  and a warning states the largest pixel shift they cause on the image border.
- **Sizes**: real image sizes are kept (non-square, mixed); the studio renders a square window of each
  (:func:`mfcore.studio.square_view`).

Bad files raise one ``ValueError`` line naming the file, the camera and the field (a non-rotation, a missing key, a
camera looking away from the volume, mixed units); the command prints ``error: <line>`` and exits 2::

    python -m mfcore.calibration import PATH [--format F] [--cameras hd|NAME,...] [--units mm|cm|m] [--up -y]
                                        -o RIG.yaml [--png RIG.png]
    python -m mfcore.calibration export RIG.yaml --format F -o PATH

Writers (``write_opencv`` … ``write_easymocap``) write a rig in each format, so the round trip is testable on the
book's own rigs (no dataset's numbers are shipped) and a rig can be exported.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import shlex
import sys
import tomllib
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.spatial.transform import Rotation

from . import studio
from .files import atomic_write_bytes

FORMATS = ("opencv", "colmap", "anipose", "panoptic", "h36m", "easymocap", "book")
METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001}
# Q (3, 3) turns a file's up axis into +Z: Q @ up = e_z, det Q = +1
UP_ROTATIONS = {
    "+z": np.eye(3), "-z": np.diag([1.0, -1.0, -1.0]),
    "+y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "+x": np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]]), "-x": np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]),
}
ROTATION_TOLERANCE = 1e-4  # max |RᵀR − I| entry accepted, as the book's rig files
WORKING_DISTANCE_M = (0.3, 100.0)  # median camera distance to the look-at point accepted after the unit conversion
MIXED_UNITS_RATIO = 50.0  # a camera this many times nearer/farther from the origin than the median: mixed units
_SUFFIXES = (".yaml", ".yml", ".json", ".xml", ".toml", ".npz")


def _bad(source, camera, field, problem) -> ValueError:
    """The one-line error of a bad calibration file: file, camera, field, what is wrong."""
    cam = f"camera {camera!r}: " if camera is not None else ""
    return ValueError(f"calibration file {str(source)!r}: {cam}field {field!r}: {problem}")


# ----------------------------------------------------------------------------------------------------------------------
# a camera as a file states it (book pixel convention; file world, file units)


def _camera(source, name, size, K, dist, R, t, fields=("size", "K", "dist", "R", "t"), **extra) -> dict:
    """A file camera, checked: size (w, h) px, K (3, 3) px (integer pixel centres), dist (OpenCV order), R (3, 3)
    world→camera, t (3,) file units with x_cam = R X + t. ``fields`` are the file's names of these, for errors."""
    name = str(name)
    values = []
    for field, value, shape in zip(fields, (size, K, dist, R, t), ((2,), (3, 3), None, (3, 3), (3,))):
        if value is None and shape is not None:
            raise _bad(source, name, field, "missing")
        try:
            raw = np.asarray([] if value is None else value)
        except ValueError:
            raise _bad(source, name, field, f"must be numbers, got {value!r}") from None
        if raw.size and raw.dtype.kind not in "iuf":
            raise _bad(source, name, field, f"must be real numbers, not text, got {value!r}")
        arr = raw.astype(np.float64).reshape(-1)
        if shape is not None and arr.size != math.prod(shape):
            raise _bad(source, name, field, f"must have {math.prod(shape)} numbers {shape}, got shape {raw.shape}")
        if not np.isfinite(arr).all():
            raise _bad(source, name, field, f"must be finite, got {arr.tolist()}")
        values.append(arr.reshape(shape) if shape else arr)
    size, K, dist, R, t = values
    err, det = float(np.abs(R.T @ R - np.eye(3)).max()), float(np.linalg.det(R))
    if err > ROTATION_TOLERANCE or det <= 0:
        raise _bad(source, name, fields[3], f"not a rotation (max |RᵀR − I| = {err:.3g}, det = {det:.4g})")
    w, h = size
    if w != int(w) or h != int(h) or w <= 0 or h <= 0:
        raise _bad(source, name, fields[0], f"image size must be positive integers, got {[w, h]}")
    dist = list(dist) + [0.0] * (5 - len(dist)) if 0 < len(dist) <= 5 else list(dist)  # k1 k2 p1 p2 k3 at least
    dist = dist[:5] if len(dist) == 8 and not any(dist[5:]) else dist
    return dict(name=name, size=(int(w), int(h)), K=K, dist=dist, R=R, t=t, R_field=fields[3],
                t_field=fields[4], **extra)


def _rodrigues_or_matrix(value) -> np.ndarray | None:
    """A 3×3 rotation from a 3×3 matrix or a 3-vector Rodrigues (axis × angle in radians, as cv2.Rodrigues)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value  # _camera names the field
    return Rotation.from_rotvec(arr.reshape(3)).as_matrix() if arr.size == 3 else value


def _size_from_principal_point(source, name, K) -> tuple[int, int]:
    w, h = int(round(2 * (K[0][2] + 0.5))), int(round(2 * (K[1][2] + 0.5)))
    warnings.warn(f"calibration file {str(source)!r}: camera {name!r} has no image size; assumed {w}×{h} (principal "
                  f"point at the image centre)", stacklevel=3)
    return w, h


# ----------------------------------------------------------------------------------------------------------------------
# OpenCV FileStorage (YAML and XML)


class _OpenCVLoader(yaml.SafeLoader):
    """PyYAML loader for OpenCV FileStorage YAML (``!!opencv-matrix`` → a numpy array)."""


def _opencv_matrix(loader, node):
    m = loader.construct_mapping(node, deep=True)
    return np.asarray(m["data"], dtype=np.float64).reshape(int(m["rows"]), int(m["cols"]))


_OpenCVLoader.add_constructor("tag:yaml.org,2002:opencv-matrix", _opencv_matrix)


def read_filestorage(path) -> dict:
    """The top-level entries of an OpenCV FileStorage file (YAML or XML): matrices as numpy arrays, sequences as lists,
    scalars as numbers or text."""
    path = Path(path)
    text = path.read_text()
    try:
        if text.lstrip().startswith("<"):
            return {el.tag: _xml_value(el) for el in ET.fromstring(text)}
        body = re.sub(r"^%YAML[: ]?1\.\d+\s*\n", "", text.lstrip())  # PyYAML rejects OpenCV's "%YAML:1.0"
        data = yaml.load(body, Loader=_OpenCVLoader)  # noqa: S506 (a SafeLoader with one extra constructor)
    except (ET.ParseError, yaml.YAMLError, KeyError, ValueError) as err:
        raise ValueError(f"calibration file {str(path)!r} is not a readable OpenCV FileStorage file: "
                         f"{' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"calibration file {str(path)!r}: expected OpenCV FileStorage entries, got "
                         f"{type(data).__name__}")
    return data


def _xml_value(el):
    if el.get("type_id") == "opencv-matrix":
        rows, cols = int(el.findtext("rows")), int(el.findtext("cols"))
        return np.asarray(el.findtext("data").split(), dtype=np.float64).reshape(rows, cols)
    if len(el):  # a sequence of <_> items
        return [_xml_value(child) for child in el]
    tokens = shlex.split(el.text or "")
    values = [_number(tok) for tok in tokens]
    return values[0] if len(values) == 1 and not (el.text or "").strip().startswith('"') else values


def _number(token: str):
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token


def _first(store: dict, keys):
    """(key, value) of the first of ``keys`` present in ``store``, else (keys[0], None)."""
    for k in keys:
        if k in store:
            return k, store[k]
    return keys[0], None


def _opencv_cameras(store: dict, source, stem: str) -> list[dict]:
    """Cameras of one FileStorage mapping in the multi-camera layout (suffix ``_<name>``), or one unsuffixed camera."""
    names = store.get("names")
    if names is None:
        names = [m.group(2) for k in store if (m := re.fullmatch(r"(K|camera_matrix)_(.+)", k))]
    names = [str(n) for n in (names if isinstance(names, list) else [names])]
    single = not names and ("K" in store or "camera_matrix" in store)
    cams = []
    for n in ([stem] if single else names):
        sfx = "" if single else f"_{n}"
        k_key, K = _first(store, [f"K{sfx}", f"camera_matrix{sfx}"])
        d_key, dist = _first(store, [f"dist{sfx}", f"D{sfx}", f"distortion_coefficients{sfx}"])
        r_key, R = _first(store, [f"Rot{sfx}", f"R{sfx}", f"rvec{sfx}"])
        t_key, t = _first(store, [f"T{sfx}", f"t{sfx}", f"tvec{sfx}"])
        w = _first(store, [f"image_width{sfx}", f"W{sfx}", "image_width"])[1]
        h = _first(store, [f"image_height{sfx}", f"H{sfx}", "image_height"])[1]
        if K is None:
            raise _bad(source, n, k_key, "missing (intrinsics K_<name> or camera_matrix_<name>)")
        size = (w, h) if w is not None and h is not None else _size_from_principal_point(source, n, K)
        cams.append(_camera(source, n, size, K, dist, _rodrigues_or_matrix(R), t,
                            fields=("image_width/image_height", k_key, d_key, r_key, t_key)))
    if not cams:
        raise _bad(source, None, "names", "no cameras found (give names, or keys K_<name> / camera_matrix_<name>)")
    return cams


def read_opencv(path) -> list[dict]:
    """OpenCV FileStorage YAML/XML, one file with every camera (or a folder of one-camera files)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yml", ".yaml", ".xml"))
        return [c for p in files for c in _opencv_cameras(read_filestorage(p), p, p.stem)]
    return _opencv_cameras(read_filestorage(path), path, path.stem)


def read_easymocap(path) -> list[dict]:
    """EasyMocap ``intri.yml`` + ``extri.yml`` (a folder holding both, or either file)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    store = {}
    for name in ("intri.yml", "extri.yml"):
        if not (folder / name).is_file():
            raise ValueError(f"calibration file {str(folder / name)!r} does not exist (EasyMocap needs intri.yml and "
                             f"extri.yml side by side)")
        store.update(read_filestorage(folder / name))
    return _opencv_cameras(store, folder, folder.name)


# ----------------------------------------------------------------------------------------------------------------------
# COLMAP text model

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
        cam_id, model, w, h, *params = line.split()
        if model not in _COLMAP_MODELS:
            raise _bad(folder / "cameras.txt", cam_id, "MODEL", f"unsupported model {model!r}; supported: "
                       f"{', '.join(_COLMAP_MODELS)}")
        if len(params) != _COLMAP_PARAMS[model]:
            raise _bad(folder / "cameras.txt", cam_id, "PARAMS", f"{model} has {_COLMAP_PARAMS[model]} parameters, "
                       f"got {len(params)}")
        fx, fy, cx, cy, dist = _COLMAP_MODELS[model]([float(v) for v in params])
        K = [[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]]  # COLMAP's (0.5, 0.5) → the book's (0, 0)
        intrinsics[cam_id] = ((int(w), int(h)), K, dist)
    lines, cams, i = _colmap_lines(folder / "images.txt"), [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        fields = lines[i].split()
        i += 2  # the next line lists the image's 2D points
        if len(fields) < 10:
            raise _bad(folder / "images.txt", fields[0], "IMAGE line", "expected IMAGE_ID QW QX QY QZ TX TY TZ "
                       f"CAMERA_ID NAME, got {' '.join(fields)!r}")
        qw, qx, qy, qz, tx, ty, tz = (float(v) for v in fields[1:8])
        name = re.sub(r"\.[A-Za-z0-9]+$", "", " ".join(fields[9:])).replace("/", "_")
        if fields[8] not in intrinsics:
            raise _bad(folder / "images.txt", name, "CAMERA_ID", f"{fields[8]} is not in cameras.txt")
        norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        if abs(norm - 1.0) > 1e-3:
            raise _bad(folder / "images.txt", name, "QW QX QY QZ", f"not a unit quaternion (norm {norm:.6g})")
        R = Rotation.from_quat([qx, qy, qz, qw]).as_matrix()  # scipy is scalar-last
        size, K, dist = intrinsics[fields[8]]
        cams.append(_camera(folder / "images.txt", name, size, K, dist, R, [tx, ty, tz],
                            fields=("WIDTH HEIGHT", "PARAMS", "PARAMS", "QW QX QY QZ", "TX TY TZ")))
    return cams


# ----------------------------------------------------------------------------------------------------------------------
# Anipose, Panoptic, H36M-style


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
            raise _bad(path, name, "fisheye", "fisheye cameras are not supported (the studio renders a pinhole)")
        for field in ("size", "matrix", "rotation", "translation"):
            if field not in table:
                raise _bad(path, name, field, "missing")
        cams.append(_camera(path, name, table["size"], table["matrix"], table.get("distortions"),
                            _rodrigues_or_matrix(table["rotation"]), table["translation"],
                            fields=("size", "matrix", "distortions", "rotation", "translation")))
    if not cams:
        raise _bad(path, None, "[cam_N]", "no camera tables")
    return cams


def read_panoptic(path) -> list[dict]:
    """CMU Panoptic ``calibration_<seq>.json``: ``cameras[]`` with world→camera R, t in cm, y down."""
    path = Path(path)
    data = _load_mapping(path)
    if not isinstance(data.get("cameras"), list):
        raise _bad(path, None, "cameras", "missing (expected a list of cameras)")
    cams = []
    for i, d in enumerate(data["cameras"]):
        name = d.get("name", f"#{i}")
        cams.append(_camera(path, name, d.get("resolution"), d.get("K"), d.get("distCoef"), d.get("R"), d.get("t"),
                            fields=("resolution", "K", "distCoef", "R", "t"), type=str(d.get("type", ""))))
    return cams


def _load_mapping(path: Path) -> dict:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {}
                for key in z.files:  # "<camera>/<field>" keys
                    cam, _, field = key.rpartition("/")
                    data.setdefault(cam, {})[field] = z[key]
            return data
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, OSError) as err:
        raise ValueError(f"calibration file {str(path)!r} cannot be parsed: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"calibration file {str(path)!r}: expected a mapping, got {type(data).__name__}")
    return data


def _h36m_entries(data: dict) -> dict:
    """name → camera mapping: ``{name: cam}``, ``{"cameras": {name: cam}}``, or one level of subjects
    ``{subject: {name: cam}}`` (names ``<subject>/<name>``)."""
    data = data.get("cameras", data) if isinstance(data.get("cameras"), dict) else data
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            out.update({f"{key}/{k}": v for k, v in value.items()})
        elif isinstance(value, dict):
            out[str(key)] = value
    return out


def read_h36m(path) -> list[dict]:
    """H36M-style camera dictionaries (JSON/YAML/npz): world→camera ``R``, ``t`` = −R·C in mm (or ``T`` = the camera
    centre C when no ``t``), ``K`` or ``f, c``, ``dist`` or ``k, p``."""
    path = Path(path)
    entries = _h36m_entries(_load_mapping(path))
    if not entries:
        raise _bad(path, None, "cameras", "no camera dictionaries found")
    cams = []
    for name, d in entries.items():
        R = d.get("R")
        if "t" in d:
            t, t_field = d["t"], "t"
        elif "T" in d and R is not None:  # T is the camera centre C (mm): t = −R C
            t, t_field = -np.asarray(R, dtype=np.float64) @ np.asarray(d["T"], dtype=np.float64).reshape(3), "T"
        else:
            raise _bad(path, name, "t", "missing (give t = −R·C, or T = the camera centre)")
        K = d.get("K")
        if K is None and "f" in d and "c" in d:
            (fx, fy), (cx, cy) = np.ravel(d["f"]).tolist(), np.ravel(d["c"]).tolist()
            K = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
        dist = d.get("dist")
        if dist is None and "k" in d:
            k, p = np.ravel(d["k"]).tolist() + [0.0] * 3, np.ravel(d.get("p", [0.0, 0.0])).tolist()
            dist = [k[0], k[1], p[0], p[1], k[2]]
        size = _first(d, ["image_size", "resolution"])[1]
        if size is None and ("res_w" in d or "width" in d):
            size = (d.get("res_w", d.get("width")), d.get("res_h", d.get("height")))
        cams.append(_camera(path, name, size, K, dist, R, t, fields=("image_size", "K", "dist", "R", t_field)))
    return cams


def read_book(path) -> list[dict]:
    """The book's own rig file, as file cameras (already metres, Z up)."""
    rig = studio.load_rig(path)
    return [dict(name=c.name, size=tuple(s.image_size), K=s.K.numpy(), dist=list(s.dist), R=c.R.numpy(),
                 t=c.t.numpy(), R_field="R", t_field="t") for c, s in zip(rig.cameras, _sensors(rig))]


READERS = {"opencv": read_opencv, "colmap": read_colmap, "anipose": read_anipose, "panoptic": read_panoptic,
           "h36m": read_h36m, "easymocap": read_easymocap, "book": read_book}
FORMAT_UNITS = {"panoptic": "cm", "h36m": "mm", "book": "m"}  # units the format fixes
FORMAT_UP = {"panoptic": "-y", "h36m": "+z", "book": "+z"}  # up axes the format fixes


# ----------------------------------------------------------------------------------------------------------------------
# which format


def detect_format(path) -> str:
    """The format of ``path`` from its name, then its content (see the module table)."""
    path = Path(path)
    name, suffix = path.name.lower(), path.suffix.lower()
    if not path.is_dir() and suffix not in _SUFFIXES and name not in ("cameras.txt", "images.txt"):
        raise ValueError(f"calibration file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: "
                         f"{', '.join(_SUFFIXES)}, COLMAP's cameras.txt/images.txt, or a folder")
    if not path.exists():
        raise ValueError(f"calibration file {str(path)!r} does not exist")
    if path.is_dir():
        if (path / "cameras.txt").is_file() and (path / "images.txt").is_file():
            return "colmap"
        if (path / "intri.yml").is_file() or (path / "extri.yml").is_file():
            return "easymocap"
        if any(p.suffix.lower() in (".yml", ".yaml", ".xml") for p in path.iterdir()):
            return "opencv"
        raise ValueError(f"calibration folder {str(path)!r}: no COLMAP model, EasyMocap intri/extri.yml or OpenCV files")
    if name in ("cameras.txt", "images.txt"):
        return "colmap"
    if name in ("intri.yml", "extri.yml"):
        return "easymocap"
    if suffix == ".toml":
        return "anipose"
    if suffix == ".npz":
        return "h36m"
    head = path.read_text(errors="replace")[:4096]
    if suffix == ".xml" or head.lstrip().startswith("%YAML") or "!!opencv-matrix" in head:
        return "opencv"
    data = _load_mapping(path)
    cameras = data.get("cameras")
    if isinstance(cameras, list):
        first = cameras[0] if cameras and isinstance(cameras[0], dict) else {}
        return "panoptic" if "distCoef" in first or "resolution" in first else "book"
    return "h36m"


# ----------------------------------------------------------------------------------------------------------------------
# into the book's frame


@dataclass(frozen=True)
class Imported:
    """A calibration in the book's frame: ``X_book = scale_m · Q X_file + offset_m`` (X_file in file units)."""

    rig: studio.Rig
    format: str
    source: str
    units: str
    up: str
    scale_m: float  # metres per file unit
    rotation: np.ndarray  # Q (3, 3), file axes → book axes (det +1)
    offset_m: np.ndarray  # (3,) metres
    rules: dict  # units, up, centre: the rule that decided each, in words

    def to_book_m(self, X_file) -> np.ndarray:
        """File-world points (..., 3) in file units → book-world points (..., 3) metres."""
        return self.scale_m * np.asarray(X_file, dtype=np.float64) @ self.rotation.T + self.offset_m


def _select(cams: list[dict], spec, source) -> list[dict]:
    """Cameras by comma-separated names or types (Panoptic ``hd``, ``vga``...); default: Panoptic's ``hd`` if any."""
    if spec is None:
        hd = [c for c in cams if c.get("type") == "hd"]
        return hd or cams
    wanted = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    chosen = [c for c in cams if c["name"] in wanted or c.get("type") in wanted
              or c["name"].split("/")[0] in wanted]
    unknown = [w for w in wanted if not any(w in (c["name"], c.get("type"), c["name"].split("/")[0]) for c in cams)]
    if unknown:
        raise _bad(source, unknown[0], "--cameras", f"no such camera or type; available: "
                   f"{', '.join(c['name'] for c in cams[:40])}")
    return chosen


def look_at_point(centres, axes) -> np.ndarray:
    """The least-squares closest point (3,) to the lines C_i + s·d_i (centres, unit axes (V, 3))."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(centres, axes):
        P = np.eye(3) - np.outer(d, d)
        A, b = A + P, b + P @ c
    return np.linalg.lstsq(A, b, rcond=1e-9)[0]


def _centres_axes(cams) -> tuple[np.ndarray, np.ndarray]:
    centres = np.stack([-c["R"].T @ c["t"] for c in cams])
    axes = np.stack([c["R"][2] for c in cams])  # optical axis (camera z) in world coordinates
    return centres, axes


def infer_units(cams, source) -> tuple[str, str]:
    """(unit, rule) from the median camera distance d to the cameras' look-at point, in file units."""
    centres, axes = _centres_axes(cams)
    d = float(np.median(np.linalg.norm(centres - look_at_point(centres, axes), axis=1)))
    unit = "mm" if d > 1000 else "cm" if d > 50 else "m"
    return unit, f"inferred: median camera distance to the look-at point {d:.4g} file units (> 1000 → mm, > 50 → cm, else m)"


def infer_up(cams) -> tuple[str, str]:
    """(signed axis, rule): the world axis closest to the mean image-up direction −R[1] of the cameras."""
    mean_up = -np.mean([c["R"][1] for c in cams], axis=0)
    i = int(np.argmax(np.abs(mean_up)))
    axis = f"{'+' if mean_up[i] > 0 else '-'}{'xyz'[i]}"
    return axis, f"inferred: mean image-up direction of the cameras {np.round(mean_up, 3).tolist()} → {axis}"


def _check_units(cams, source):
    """Mixed units: a camera whose distance |t| to the world origin is ``MIXED_UNITS_RATIO`` times off the median
    camera's (a camera at the origin itself, |t| < 0.001 of the median, as some tools place the first one, is exempt)."""
    dist = np.array([np.linalg.norm(c["t"]) for c in cams])
    med = float(np.median(dist))
    for c, d in zip(cams, dist):
        if len(cams) >= 3 and med > 0 and d > 1e-3 * med and not 1 / MIXED_UNITS_RATIO < d / med < MIXED_UNITS_RATIO:
            raise _bad(source, c["name"], c["t_field"], f"the camera is {d:.4g} file units from the world origin, the "
                       f"median camera {med:.4g}: mixed units? (all translations must share one unit)")


def to_book(cams: list[dict], source, fmt: str, units=None, up=None, name=None) -> Imported:
    """File cameras → :class:`Imported` (validated by :func:`mfcore.studio.rig_from_dict`) by the module's rules."""
    _check_units(cams, source)
    if units is not None and units not in METRES_PER_UNIT:
        raise ValueError(f"units must be one of {', '.join(METRES_PER_UNIT)}, got {units!r}")
    if up is not None and up not in UP_ROTATIONS:
        raise ValueError(f"up must be one of {', '.join(UP_ROTATIONS)}, got {up!r}")
    rules = {}
    if units is None and fmt in FORMAT_UNITS:
        units, rules["units"] = FORMAT_UNITS[fmt], f"{fmt} files are in {FORMAT_UNITS[fmt]}"
    elif units is None:
        units, rules["units"] = infer_units(cams, source)
    else:
        rules["units"] = "given"
    if up is None and fmt in FORMAT_UP:
        up, rules["up"] = FORMAT_UP[fmt], f"{fmt} files have {FORMAT_UP[fmt]} up"
    elif up is None:
        up, rules["up"] = infer_up(cams)
    else:
        rules["up"] = "given"
    s, Q = METRES_PER_UNIT[units], UP_ROTATIONS[up]
    centres, axes = _centres_axes(cams)
    centres_m, axes_b = s * centres @ Q.T, axes @ Q.T
    p = look_at_point(centres_m, axes_b)
    reach = np.linalg.norm(centres_m - p, axis=1)
    if not WORKING_DISTANCE_M[0] <= float(np.median(reach)) <= WORKING_DISTANCE_M[1]:
        c = cams[int(np.argsort(reach)[len(reach) // 2])]
        raise _bad(source, c["name"], c["t_field"], f"read in {units}, the cameras are {float(np.median(reach)):.4g} m "
                   f"from what they look at (median); a capture rig is {WORKING_DISTANCE_M[0]}-{WORKING_DISTANCE_M[1]} "
                   f"m away: wrong units? (give units)")
    for c, C, d in zip(cams, centres_m, axes_b):
        if float((p - C) @ d) <= 0:
            raise _bad(source, c["name"], c["R_field"], f"the camera looks away from the capture volume (the cameras' "
                       f"common look-at point is behind it: optical axis {np.round(d, 3).tolist()})")
    if fmt == "book":
        offset, rules["centre"] = np.zeros(3), "none (the book's rig files are in the book frame)"
    else:
        lift = 0.0 if 0.0 <= p[2] <= studio.VOLUME_HEIGHT_M else 0.5 * studio.VOLUME_HEIGHT_M - p[2]
        offset = np.array([-p[0], -p[1], lift])
        rules["centre"] = (f"the optical axes' closest point {np.round(p, 3).tolist()} m → over the origin; "
                           + ("floor kept at the file's z = 0" if lift == 0.0 else
                              f"floor moved to {-lift:.3f} m (look-at point at the volume's mid-height)"))
    book = [{"name": c["name"], "image_size": list(c["size"]), "K": np.asarray(c["K"]).tolist(),
             "R": (c["R"] @ Q.T).tolist(), "t": (s * c["t"] - c["R"] @ Q.T @ offset).tolist(),
             **({"dist": list(c["dist"])} if any(c["dist"]) else {})} for c in cams]
    try:
        rig = studio.rig_from_dict({"name": name or Path(source).stem, "cameras": book}, source=repr(str(source)))
    except ValueError as err:
        raise ValueError(str(err).replace("rig file ", "calibration file ", 1)) from None
    return Imported(rig, fmt, str(source), units, up, s, Q, offset, rules)


def read_rig(path, format=None, cameras=None, units=None, up=None, warn=True) -> Imported:
    """Read any calibration file (format auto-detected unless given) into the book's frame; warns when distortion
    terms are kept but not rendered. Bad files raise one ``ValueError`` line naming the file, camera and field."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown calibration format {fmt!r}; known: {', '.join(FORMATS)}")
    if not path.exists():
        raise ValueError(f"calibration file {str(path)!r} does not exist")
    cams = _select(READERS[fmt](path), cameras, path)
    if len(cams) < 2:
        raise _bad(path, None, "cameras", f"a rig needs at least 2 cameras, got {len(cams)}")
    imported = to_book(cams, path, fmt, units, up, name=path.stem if path.is_file() else path.name)
    if warn:
        _warn_distortion(imported)
    return imported


# ----------------------------------------------------------------------------------------------------------------------
# distortion


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


def _sensors(rig: studio.Rig) -> list[studio.Sensor]:
    return list(rig.sensors) or [studio.Sensor(c.K, (c.image_px, c.image_px), (), (0, 0, c.image_px))
                                 for c in rig.cameras]


def _warn_distortion(imported: Imported):
    shifts = [(distortion_shift_px(s.K, s.dist, s.image_size), c.name, s.image_size)
              for c, s in zip(imported.rig.cameras, _sensors(imported.rig)) if any(s.dist)]
    if shifts:
        top, name, (w, h) = max(shifts)
        warnings.warn(f"calibration file {imported.source!r}: {len(shifts)} camera(s) have lens distortion; the studio "
                      f"renders a pinhole with the undistorted intrinsics (terms kept in the rig file as dist). The "
                      f"largest shift is {top:.1f} px in camera {name!r} ({w}×{h} image border)", stacklevel=3)


# ----------------------------------------------------------------------------------------------------------------------
# writers (book rig → each format; for tests, and to export)


def _real(rig: studio.Rig):
    """(name, K (3,3), (w, h), dist, R (3,3), t (3,) m) of every camera's real sensor."""
    return [(c.name, s.K.numpy(), tuple(s.image_size), list(s.dist), c.R.numpy(), c.t.numpy())
            for c, s in zip(rig.cameras, _sensors(rig))]


def _num(x) -> str:
    return repr(float(x))


def _fs_text(entries: list, xml: bool) -> str:
    """OpenCV FileStorage text of (key, value) entries: arrays as opencv-matrix, lists as string sequences."""
    out = ['<?xml version="1.0"?>', "<opencv_storage>"] if xml else ["%YAML:1.0", "---"]
    for key, value in entries:
        if isinstance(value, np.ndarray):
            m = value.reshape(value.shape[0], -1)
            data = " ".join(_num(v) for v in m.ravel())
            out.append(f'<{key} type_id="opencv-matrix"><rows>{m.shape[0]}</rows><cols>{m.shape[1]}</cols>'
                       f"<dt>d</dt><data>{data}</data></{key}>" if xml else
                       f"{key}: !!opencv-matrix\n   rows: {m.shape[0]}\n   cols: {m.shape[1]}\n   dt: d\n"
                       f"   data: [ {', '.join(_num(v) for v in m.ravel())} ]")
        elif isinstance(value, list):
            out.append(f"<{key}>{' '.join(json.dumps(str(v)) for v in value)}</{key}>" if xml else
                       f"{key}:\n" + "\n".join(f"   - {json.dumps(str(v))}" for v in value))
        else:
            out.append(f"<{key}>{value}</{key}>" if xml else f"{key}: {value}")
    return "\n".join(out + (["</opencv_storage>"] if xml else [])) + "\n"


def write_opencv(rig: studio.Rig, path, units: str = "m") -> Path:
    """One OpenCV FileStorage file (``.xml`` → XML, else YAML): names, K_<n>, dist_<n>, R_<n> (3×3), T_<n>,
    image_width_<n>, image_height_<n>; t in ``units``."""
    s = 1.0 / METRES_PER_UNIT[units]
    entries = [("names", [c[0] for c in _real(rig)])]
    for name, K, (w, h), dist, R, t in _real(rig):
        entries += [(f"K_{name}", K), (f"dist_{name}", np.asarray(dist or [0.0] * 5)[None]), (f"R_{name}", R),
                    (f"T_{name}", (s * t)[:, None]), (f"image_width_{name}", w), (f"image_height_{name}", h)]
    return atomic_write_bytes(path, _fs_text(entries, Path(path).suffix.lower() == ".xml").encode())


def write_easymocap(rig: studio.Rig, folder) -> Path:
    """EasyMocap ``intri.yml`` (K_, dist_, H_, W_) and ``extri.yml`` (R_ Rodrigues, Rot_, T_ metres) in ``folder``."""
    folder, cams = Path(folder), _real(rig)
    names = [c[0] for c in cams]
    intri, extri = [("names", names)], [("names", names)]
    for name, K, (w, h), dist, R, t in cams:
        intri += [(f"K_{name}", K), (f"dist_{name}", np.asarray(dist or [0.0] * 5)[None]), (f"H_{name}", h),
                  (f"W_{name}", w)]
        extri += [(f"R_{name}", Rotation.from_matrix(R).as_rotvec()[:, None]), (f"Rot_{name}", R),
                  (f"T_{name}", t[:, None])]
    atomic_write_bytes(folder / "intri.yml", _fs_text(intri, False).encode())
    atomic_write_bytes(folder / "extri.yml", _fs_text(extri, False).encode())
    return folder


def write_colmap(rig: studio.Rig, folder, units: str = "m") -> Path:
    """COLMAP ``cameras.txt`` (PINHOLE, or OPENCV/FULL_OPENCV with distortion; principal point + 0.5) and
    ``images.txt`` (world→camera QW QX QY QZ, TX TY TZ in ``units``; image NAME = camera name + .png)."""
    folder, s = Path(folder), 1.0 / METRES_PER_UNIT[units]
    cam_lines, img_lines = ["# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"], ["# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, "
                                                                             "CAMERA_ID, NAME", "# POINTS2D[]"]
    for i, (name, K, (w, h), dist, R, t) in enumerate(_real(rig), start=1):
        params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]  # the book's (0, 0) → COLMAP's (0.5, 0.5)
        d = list(dist) + [0.0] * (8 - len(dist))
        model = "PINHOLE" if not any(d) else "OPENCV" if not any(d[4:]) else "FULL_OPENCV"
        params += {"PINHOLE": [], "OPENCV": d[:4], "FULL_OPENCV": d[:8]}[model]
        cam_lines.append(f"{i} {model} {w} {h} {' '.join(_num(p) for p in params)}")
        qx, qy, qz, qw = Rotation.from_matrix(R).as_quat()
        img_lines += [f"{i} {' '.join(_num(v) for v in (qw, qx, qy, qz, *(s * t)))} {i} {name}.png", ""]
    atomic_write_bytes(folder / "cameras.txt", ("\n".join(cam_lines) + "\n").encode())
    atomic_write_bytes(folder / "images.txt", ("\n".join(img_lines) + "\n").encode())
    return folder


def write_anipose(rig: studio.Rig, path, units: str = "mm") -> Path:
    """aniposelib ``calibration.toml``: ``[cam_N]`` name, size, matrix, distortions, rotation (Rodrigues),
    translation (``units``, mm by default as a board measured in mm)."""
    s, lines = 1.0 / METRES_PER_UNIT[units], []
    vec = lambda v: "[ " + ", ".join(_num(x) for x in v) + ",]"  # noqa: E731
    for i, (name, K, (w, h), dist, R, t) in enumerate(_real(rig)):
        lines += [f"[cam_{i}]", f'name = "{name}"', f"size = [ {w}, {h},]",
                  f"matrix = [ {', '.join(vec(row) for row in K)},]", f"distortions = {vec(dist or [0.0] * 5)}",
                  f"rotation = {vec(Rotation.from_matrix(R).as_rotvec())}", f"translation = {vec(s * t)}", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0"]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def write_panoptic(rig: studio.Rig, path, camera_type: str = "hd") -> Path:
    """CMU Panoptic ``calibration_<seq>.json``: world turned so y points down (X_p = Q_{-y}ᵀ X), t in cm."""
    Q = UP_ROTATIONS["-y"]
    cams = [{"name": name, "type": camera_type, "resolution": [w, h], "panel": 0, "node": i, "K": K.tolist(),
             "distCoef": list(dist or [0.0] * 5), "R": (R @ Q).tolist(), "t": (100.0 * t)[:, None].tolist()}
            for i, (name, K, (w, h), dist, R, t) in enumerate(_real(rig))]
    return atomic_write_bytes(path, json.dumps({"calibDataSource": "mfcore", "cameras": cams}, indent=1).encode())


def write_h36m(rig: studio.Rig, path, translation: str = "t") -> Path:
    """H36M-style dictionaries ``{name: {R, t (mm) | T (centre, mm), K, dist, image_size}}`` (.json/.yaml/.npz)."""
    out = {}
    for name, K, (w, h), dist, R, t in _real(rig):
        move = {"t": 1000.0 * t} if translation == "t" else {"T": -1000.0 * R.T @ t}
        out[name] = {"R": R, **move, "K": K, "dist": np.asarray(dist or [0.0] * 5), "image_size": np.array([w, h])}
    path = Path(path)
    if path.suffix.lower() == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **{f"{n}/{k}": v for n, d in out.items() for k, v in d.items()})
        return atomic_write_bytes(path, buf.getvalue())
    plain = {n: {k: v.tolist() for k, v in d.items()} for n, d in out.items()}
    text = json.dumps(plain, indent=1) if path.suffix.lower() == ".json" else yaml.safe_dump(plain, sort_keys=False)
    return atomic_write_bytes(path, text.encode())


WRITERS = {"opencv": write_opencv, "colmap": write_colmap, "anipose": write_anipose, "panoptic": write_panoptic,
           "h36m": write_h36m, "easymocap": write_easymocap, "book": studio.save_rig}


# ----------------------------------------------------------------------------------------------------------------------
# summary and drawing


def surface_points_m(n_azimuth: int = 48, n_height: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Points on the capture cylinder's side (N, 3) metres and their outward normals (N, 3)."""
    phi = np.arange(n_azimuth) * 2 * np.pi / n_azimuth
    z = (np.arange(n_height) + 0.5) * studio.VOLUME_HEIGHT_M / n_height
    P, Z = np.meshgrid(phi, z)
    normals = np.stack([np.cos(P), np.sin(P), np.zeros_like(P)], -1).reshape(-1, 3)
    points = np.concatenate([studio.VOLUME_RADIUS_M * normals[:, :2], Z.reshape(-1, 1)], 1)
    return points, normals


def view_overlap(rig: studio.Rig) -> np.ndarray:
    """(V, V): the fraction of the capture cylinder's side that both cameras see face-on (the surface faces them)."""
    X, n = surface_points_m()
    centres = rig.centers_m().numpy()
    faces = np.stack([((C - X) * n).sum(1) > 0 for C in centres])  # (V, N)
    return (faces[:, None] & faces[None]).mean(-1)


def summary(imported: Imported) -> str:
    """The import in words: rules, cameras (size, centre, distance to the volume, distortion), baselines, overlap."""
    rig = imported.rig
    centres = rig.centers_m().numpy()
    mid = np.array([0.0, 0.0, 0.5 * studio.VOLUME_HEIGHT_M])
    lines = [f"{imported.source} ({imported.format}): rig {rig.name!r}, {rig.num_views} cameras",
             f"units: {imported.units} ({imported.rules['units']})", f"up: {imported.up} ({imported.rules['up']})",
             f"re-centring: {imported.rules['centre']}; offset {np.round(imported.offset_m, 3).tolist()} m",
             "", f"{'#':>3} {'camera':<16}{'image w×h':>12}{'centre x, y, z (m)':>26}{'to volume centre (m)':>22}"
             f"{'to volume side (m)':>20}{'distortion (px)':>17}"]
    for c, s, C in zip(rig.cameras, _sensors(rig), centres):
        size = f"{s.image_size[0]}×{s.image_size[1]}"
        side = math.hypot(C[0], C[1]) - studio.VOLUME_RADIUS_M
        xyz = ", ".join(f"{v:.2f}" for v in C)
        lines.append(f"{len(lines) - 5:>3} {c.name:<16}{size:>12}{xyz:>26}{np.linalg.norm(C - mid):>22.2f}{side:>20.2f}"
                     f"{distortion_shift_px(s.K, s.dist, s.image_size):>17.1f}")
    names = [f"#{i + 1}" for i in range(rig.num_views)]  # the cameras' numbers in the table above
    base = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    overlap = view_overlap(rig)
    for title, M, fmt in (("baselines (m)", base, "{:>7.2f}"),
                          ("view overlap (fraction of the volume's side seen face-on by both)", overlap, "{:>7.2f}")):
        lines += ["", title, " " * 6 + "".join(f"{n:>7}" for n in names)]
        lines += [f"{n:<6}" + "".join(fmt.format(v) for v in row) for n, row in zip(names, M)]
    return "\n".join(lines)


def draw_rig(rig: studio.Rig, title: str = "") -> Figure:
    """The rig from above and in perspective: camera centres, optical axes, the capture volume (grey), metres."""
    fig = Figure(figsize=(11, 5))
    FigureCanvasAgg(fig)
    phi = np.linspace(0, 2 * np.pi, 73)
    ring = studio.VOLUME_RADIUS_M * np.stack([np.cos(phi), np.sin(phi)])
    centres = rig.centers_m().numpy()
    top = fig.add_subplot(1, 2, 1)
    persp = fig.add_subplot(1, 2, 2, projection="3d")
    top.fill(*ring, color="0.85", label="capture volume (r = 1.2 m)")
    for z in (0.0, studio.VOLUME_HEIGHT_M):
        persp.plot(*ring, np.full(phi.shape, z), color="0.5", lw=1)
    for x, y in ring[:, ::18].T:  # four vertical edges of the cylinder
        persp.plot([x, x], [y, y], [0.0, studio.VOLUME_HEIGHT_M], color="0.5", lw=0.6)
    for i, (c, C) in enumerate(zip(rig.cameras, centres)):
        colour = f"C{i % 10}"
        axis = c.R.numpy()[2]
        reach = np.linalg.norm(C - np.array([0, 0, 1.0]))  # draw the axis as far as the volume
        for ax, dims in ((top, 2), (persp, 3)):
            ax.plot(*np.stack([C, C + reach * axis])[:, :dims].T, color=colour, lw=0.8, ls=":")
            ax.scatter(*C[:dims], color=colour, s=18)
            ax.text(*C[:dims], f" {c.name}", fontsize=7, color=colour)
    top.set(xlabel="x (m)", ylabel="y (m)", aspect="equal", title="seen from above")
    top.legend(fontsize=7, loc="upper center")
    persp.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m, up)", title="perspective")
    span = max(float(np.abs(centres[:, :2]).max()), 2.0)
    persp.set(xlim=(-span, span), ylim=(-span, span), zlim=(0, max(float(centres[:, 2].max()), 2.5)))
    fig.suptitle(title or f"rig {rig.name!r}: {rig.num_views} cameras (dots, dotted optical axes) around the capture "
                          f"volume (grey cylinder), book frame: metres, z up")
    return fig


def save_png(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG atomically (no time stamp in the file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------------------------------
# command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfcore.calibration",
                                     description="Read a camera calibration into the book's rig file, or export one.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a calibration (any format) → the book's rig file, a summary and a drawing")
    imp.add_argument("path", help="calibration file or folder")
    imp.add_argument("--format", choices=FORMATS, help="default: detected from the name and content")
    imp.add_argument("--cameras", help="comma-separated camera names or types (Panoptic: hd, vga); default all "
                                       "(Panoptic: hd)")
    imp.add_argument("--units", choices=tuple(METRES_PER_UNIT), help="the file's length unit (default: format or "
                                                                     "inferred)")
    imp.add_argument("--up", choices=tuple(UP_ROTATIONS), help="the file's up axis (default: format or inferred)")
    imp.add_argument("-o", "--out", required=True, help="the book's rig file to write (.yaml/.yml/.json)")
    imp.add_argument("--png", help="draw the rig into this PNG")
    exp = sub.add_parser("export", help="the book's rig file (or a built-in rig name) → a calibration format")
    exp.add_argument("rig")
    exp.add_argument("--format", choices=tuple(WRITERS), required=True)
    exp.add_argument("-o", "--out", required=True, help="file (or folder for colmap, easymocap)")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            path = WRITERS[args.format](studio.get_rig(args.rig), args.out)
            print(f"wrote {path} ({args.format})")
            return 0
        imported = read_rig(args.path, args.format, args.cameras, args.units, args.up)
        studio.save_rig(imported.rig, args.out)
        print(summary(imported))
        print(f"\nwrote {args.out}")
        if args.png:
            save_png(draw_rig(imported.rig), args.png)
            print(f"wrote {args.png}")
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
