"""The conventions of every calibration format the book reads, in one table, and the checks every reader shares.

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
  d > 1000 → mm, d > 50 → cm, else m (working distances of 1-10 m read right in every unit). Override ``units=``,
  or give the scale itself: ``scale=`` metres per file unit, or ``baseline=(camera_a, camera_b, metres)`` the known
  distance between two camera centres (a COLMAP model from structure from motion has an arbitrary scale: one of these
  is how it becomes metres).
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

Bad files raise one ``ValueError`` line naming the file, the camera and the field (:func:`bad`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from .. import studio

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
AT_ORIGIN_FRACTION = 1e-6  # a camera this close to the world origin (a fraction of the median |t|) sits on it: exempt
SUFFIXES = (".yaml", ".yml", ".json", ".xml", ".toml", ".npz")  # calibration files by name (and COLMAP's .txt)


def bad(source, camera, field, problem) -> ValueError:
    """The one-line error of a bad calibration file: file, camera, field, what is wrong."""
    cam = f"camera {camera!r}: " if camera is not None else ""
    return ValueError(f"calibration file {str(source)!r}: {cam}field {field!r}: {problem}")


# ----------------------------------------------------------------------------------------------------------------------
# a camera as a file states it (book pixel convention; file world, file units)


def file_camera(source, name, size, K, dist, R, t, fields=("size", "K", "dist", "R", "t"), **extra) -> dict:
    """A file camera, checked: size (w, h) px, K (3, 3) px (integer pixel centres), dist (OpenCV order), R (3, 3)
    world→camera, t (3,) file units with x_cam = R X + t. ``fields`` are the file's names of these, for errors."""
    name = str(name)
    values = []
    for field, value, shape in zip(fields, (size, K, dist, R, t), ((2,), (3, 3), None, (3, 3), (3,))):
        if value is None and shape is not None:
            raise bad(source, name, field, "missing")
        try:
            raw = np.asarray([] if value is None else value)
        except ValueError:
            raise bad(source, name, field, f"must be numbers, got {value!r}") from None
        if raw.size and raw.dtype.kind not in "iuf":
            raise bad(source, name, field, f"must be real numbers, not text, got {value!r}")
        arr = raw.astype(np.float64).reshape(-1)
        if shape is not None and arr.size != math.prod(shape):
            raise bad(source, name, field, f"must have {math.prod(shape)} numbers {shape}, got shape {raw.shape}")
        if not np.isfinite(arr).all():
            raise bad(source, name, field, f"must be finite, got {arr.tolist()}")
        values.append(arr.reshape(shape) if shape else arr)
    size, K, dist, R, t = values
    err, det = float(np.abs(R.T @ R - np.eye(3)).max()), float(np.linalg.det(R))
    if err > ROTATION_TOLERANCE or det <= 0:
        raise bad(source, name, fields[3], f"not a rotation (max |RᵀR − I| = {err:.3g}, det = {det:.4g})")
    w, h = size
    if w != int(w) or h != int(h) or w <= 0 or h <= 0:
        raise bad(source, name, fields[0], f"image size must be positive integers, got {[w, h]}")
    dist = list(dist) + [0.0] * (5 - len(dist)) if 0 < len(dist) <= 5 else list(dist)  # k1 k2 p1 p2 k3 at least
    dist = dist[:5] if len(dist) == 8 and not any(dist[5:]) else dist
    return dict(name=name, size=(int(w), int(h)), K=K, dist=dist, R=R, t=t, R_field=fields[3],
                t_field=fields[4], **extra)


def rodrigues_or_matrix(value) -> np.ndarray | None:
    """A 3×3 rotation from a 3×3 matrix or a 3-vector Rodrigues (axis × angle in radians, as cv2.Rodrigues)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value  # file_camera names the field
    return Rotation.from_rotvec(arr.reshape(3)).as_matrix() if arr.size == 3 else value


def size_from_principal_point(source, name, K) -> tuple[int, int]:
    """(w, h) of an image whose principal point is its centre (a file without sizes), with a warning."""
    w, h = int(round(2 * (K[0][2] + 0.5))), int(round(2 * (K[1][2] + 0.5)))
    warnings.warn(f"calibration file {str(source)!r}: camera {name!r} has no image size; assumed {w}×{h} (principal "
                  f"point at the image centre)", stacklevel=3)
    return w, h


def numbers(source, camera, field, tokens, kind=float) -> list:
    """``tokens`` (text) as numbers of ``kind``, or the one-line error naming the file, camera, field and token."""
    try:
        return [kind(tok) for tok in tokens]
    except ValueError:
        bad_token = next(tok for tok in tokens if not _parses(tok, kind))
        raise bad(source, camera, field, f"{bad_token!r} is not {'an integer' if kind is int else 'a number'}") from None


def _parses(token, kind) -> bool:
    try:
        kind(token)
        return True
    except ValueError:
        return False


def first_key(store: dict, keys):
    """(key, value) of the first of ``keys`` present in ``store``, else (keys[0], None)."""
    for k in keys:
        if k in store:
            return k, store[k]
    return keys[0], None


def load_mapping(path: Path) -> dict:
    """The top-level mapping of a JSON, YAML or npz file (npz keys ``<camera>/<field>`` as nested mappings)."""
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


# ----------------------------------------------------------------------------------------------------------------------
# a rig's cameras as files state them (for the writers)


def sensors_of(rig: studio.Rig) -> list[studio.Sensor]:
    """Every camera's real sensor: the rig's sensors, or each square view as its own sensor."""
    return list(rig.sensors) or [studio.Sensor(c.K, (c.image_px, c.image_px), (), (0, 0, c.image_px))
                                 for c in rig.cameras]


def real_cameras(rig: studio.Rig):
    """(name, K (3,3), (w, h), dist, R (3,3), t (3,) m) of every camera's real sensor."""
    return [(c.name, s.K.numpy(), tuple(s.image_size), list(s.dist), c.R.numpy(), c.t.numpy())
            for c, s in zip(rig.cameras, sensors_of(rig))]


def num(x) -> str:
    """A float as writers write it: every digit that round-trips."""
    return repr(float(x))


