"""Any calibration into the book's frame: which format a path holds, its units (or scale), its up axis, the
re-centring on the capture volume, and :func:`read_rig`, the one entry point (the rules: the table of
:mod:`mfcore.calibration.conventions`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import studio
from .anipose import read_anipose
from .colmap import read_colmap
from .conventions import (FORMATS, METRES_PER_UNIT, MIXED_UNITS_RATIO, AT_ORIGIN_FRACTION, SUFFIXES, UP_ROTATIONS,
                          WORKING_DISTANCE_M, bad, load_mapping, sensors_of)
from .distortion import warn_distortion
from .h36m import read_h36m
from .opencv import read_easymocap, read_opencv
from .panoptic import read_panoptic


def read_book(path) -> list[dict]:
    """The book's own rig file, as file cameras (already metres, Z up)."""
    rig = studio.load_rig(path)
    return [dict(name=c.name, size=tuple(s.image_size), K=s.K.numpy(), dist=list(s.dist), R=c.R.numpy(),
                 t=c.t.numpy(), R_field="R", t_field="t") for c, s in zip(rig.cameras, sensors_of(rig))]


READERS = {"opencv": read_opencv, "colmap": read_colmap, "anipose": read_anipose, "panoptic": read_panoptic,
           "h36m": read_h36m, "easymocap": read_easymocap, "book": read_book}
FORMAT_UNITS = {"panoptic": "cm", "h36m": "mm", "book": "m"}  # units the format fixes
FORMAT_UP = {"panoptic": "-y", "h36m": "+z", "book": "+z"}  # up axes the format fixes
SCALED = "scaled"  # the units of a file read with a given scale (metres per file unit) or a known baseline


# ----------------------------------------------------------------------------------------------------------------------
# which format


def detect_format(path) -> str:
    """The format of ``path`` from its name, then its content (see the conventions table)."""
    path = Path(path)
    name, suffix = path.name.lower(), path.suffix.lower()
    if not path.exists():
        raise ValueError(f"calibration file {str(path)!r} does not exist")
    if not path.is_dir() and suffix not in SUFFIXES and name not in ("cameras.txt", "images.txt"):
        raise ValueError(f"calibration file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: "
                         f"{', '.join(SUFFIXES)}, COLMAP's cameras.txt/images.txt, or a folder")
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
    data = load_mapping(path)
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
    units: str  # "m", "cm", "mm", or SCALED (a given scale or baseline: ``scale_m`` metres per file unit)
    up: str
    scale_m: float  # metres per file unit
    rotation: np.ndarray  # Q (3, 3), file axes → book axes (det +1)
    offset_m: np.ndarray  # (3,) metres
    rules: dict  # units, up, centre: the rule that decided each, in words

    def to_book_m(self, X_file) -> np.ndarray:
        """File-world points (..., 3) in file units → book-world points (..., 3) metres."""
        return self.scale_m * np.asarray(X_file, dtype=np.float64) @ self.rotation.T + self.offset_m

    def to_file(self, X_book_m) -> np.ndarray:
        """Book-world points (..., 3) metres → the calibration file's world (..., 3) in its units (the inverse of
        :meth:`to_book_m`)."""
        return (np.asarray(X_book_m, dtype=np.float64) - self.offset_m) @ self.rotation / self.scale_m

    @property
    def unit_label(self) -> str:
        """The file's length unit in words: "mm", "cm", "m", or "file units (0.0123 m each)"."""
        return self.units if self.units != SCALED else f"file units ({self.scale_m:.6g} m each)"


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
        raise bad(source, unknown[0], "--cameras", f"no such camera or type; available: "
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


def _mixed_units(cams, distances) -> tuple[int, float] | None:
    """(index, median) of the first camera whose distance (|t| or its centre's distance to the look-at point) is
    ``MIXED_UNITS_RATIO`` times off the median of the others; a camera on the world origin (|t| below
    ``AT_ORIGIN_FRACTION`` of the median, as some tools place the first one) is exempt. Needs 3 cameras."""
    dist = np.asarray(distances, dtype=np.float64)
    med = float(np.median(dist))
    for i, d in enumerate(dist):
        if len(cams) >= 3 and med > 0 and d > AT_ORIGIN_FRACTION * med \
                and not 1 / MIXED_UNITS_RATIO < d / med < MIXED_UNITS_RATIO:
            return i, med
    return None


def _check_units(cams, source):
    """Mixed units: a camera whose distance |t| to the world origin is ``MIXED_UNITS_RATIO`` times off the median
    camera's (:func:`_mixed_units`)."""
    found = _mixed_units(cams, [np.linalg.norm(c["t"]) for c in cams])
    if found is not None:
        i, med = found
        c = cams[i]
        raise bad(source, c["name"], c["t_field"], f"the camera is {np.linalg.norm(c['t']):.4g} file units from the "
                  f"world origin, the median camera {med:.4g}: mixed units? (all translations must share one unit)")


def baseline_scale(cams, baseline, source) -> tuple[float, str]:
    """(metres per file unit, rule) from ``baseline`` = (camera_a, camera_b, metres): the known distance between two
    camera centres (a tape measure, or the rig's drawing) over their distance in the file."""
    try:
        name_a, name_b, metres = baseline
        metres = float(metres)
    except (TypeError, ValueError):
        raise ValueError(f"baseline must be (camera_a, camera_b, metres), got {baseline!r}") from None
    if not (metres > 0 and math.isfinite(metres)):
        raise ValueError(f"baseline: the distance between {name_a!r} and {name_b!r} must be positive metres, "
                         f"got {metres!r}")
    centres = {c["name"]: -c["R"].T @ c["t"] for c in cams}
    for n in (name_a, name_b):
        if n not in centres:
            raise bad(source, n, "--baseline", f"no such camera; available: {', '.join(list(centres)[:40])}")
    d = float(np.linalg.norm(centres[name_a] - centres[name_b]))
    if not d > 0:
        raise bad(source, name_b, "--baseline", f"cameras {name_a!r} and {name_b!r} have the same centre")
    return metres / d, f"from the baseline {name_a}–{name_b} = {metres:g} m ({d:.6g} file units)"


def _scale(cams, source, fmt, units, scale, baseline) -> tuple[str, float, str]:
    """(units, metres per file unit, rule) by the module's rules: given scale or baseline, given units, the format's
    units, or inferred."""
    given = [n for n, v in (("units", units), ("scale", scale), ("baseline", baseline)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of units, scale and baseline, not {' and '.join(given)}")
    if units is not None and units not in METRES_PER_UNIT:
        raise ValueError(f"units must be one of {', '.join(METRES_PER_UNIT)}, got {units!r}")
    if scale is not None:
        try:
            s = float(scale)
        except (TypeError, ValueError):
            s = float("nan")
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"scale must be positive metres per file unit, got {scale!r}")
        return SCALED, s, f"given: {s:.6g} m per file unit"
    if baseline is not None:
        s, rule = baseline_scale(cams, baseline, source)
        return SCALED, s, rule
    if units is not None:
        return units, METRES_PER_UNIT[units], "given"
    if fmt in FORMAT_UNITS:
        return FORMAT_UNITS[fmt], METRES_PER_UNIT[FORMAT_UNITS[fmt]], f"{fmt} files are in {FORMAT_UNITS[fmt]}"
    unit, rule = infer_units(cams, source)
    return unit, METRES_PER_UNIT[unit], rule


def _scale_hint(fmt: str, inferred: bool) -> str:
    """What to give when the scale was inferred (a COLMAP model has none of its own)."""
    if not inferred:
        return ""
    arbitrary = " (a COLMAP model from structure from motion has an arbitrary scale)" if fmt == "colmap" else ""
    return (f"; the scale was inferred{arbitrary}: give it as scale= metres per file unit or baseline=(camera_a, "
            f"camera_b, metres) (--scale, --baseline), or units=")


def to_book(cams: list[dict], source, fmt: str, units=None, up=None, name=None, *, scale=None,
            baseline=None) -> Imported:
    """File cameras → :class:`Imported` (validated by :func:`mfcore.studio.rig_from_dict`) by the module's rules.

    ``units`` ("m", "cm", "mm"), ``scale`` (metres per file unit) or ``baseline`` ((camera_a, camera_b, metres)):
    at most one, else the format's units or the inferred ones. ``up``: a signed axis of :data:`UP_ROTATIONS`."""
    _check_units(cams, source)
    if up is not None and up not in UP_ROTATIONS:
        raise ValueError(f"up must be one of {', '.join(UP_ROTATIONS)}, got {up!r}")
    inferred = units is None and scale is None and baseline is None and fmt not in FORMAT_UNITS
    rules = {}
    units, s, rules["units"] = _scale(cams, source, fmt, units, scale, baseline)
    if up is None and fmt in FORMAT_UP:
        up, rules["up"] = FORMAT_UP[fmt], f"{fmt} files have {FORMAT_UP[fmt]} up"
    elif up is None:
        up, rules["up"] = infer_up(cams)
    else:
        rules["up"] = "given"
    Q = UP_ROTATIONS[up]
    centres, axes = _centres_axes(cams)
    centres_m, axes_b = s * centres @ Q.T, axes @ Q.T
    p = look_at_point(centres_m, axes_b)
    reach = np.linalg.norm(centres_m - p, axis=1)
    if not WORKING_DISTANCE_M[0] <= float(np.median(reach)) <= WORKING_DISTANCE_M[1]:
        c = cams[int(np.argsort(reach)[len(reach) // 2])]
        raise bad(source, c["name"], c["t_field"], f"read in {units if units != SCALED else f'{s:.6g} m per unit'}, "
                  f"the cameras are {float(np.median(reach)):.4g} m from what they look at (median); a capture rig is "
                  f"{WORKING_DISTANCE_M[0]}-{WORKING_DISTANCE_M[1]} m away: wrong units?{_scale_hint(fmt, inferred)}")
    away = [i for i, (C, d) in enumerate(zip(centres_m, axes_b)) if float((p - C) @ d) <= 0]
    if away:
        c = cams[away[0]]
        off = _mixed_units(cams, reach)  # one camera far off the others' distance: a translation in another unit
        hint = " (its distance to the others' look-at point is far off theirs: mixed units?)" \
            if off is not None and off[0] == away[0] else ""
        raise bad(source, c["name"], c["R_field"], f"the camera looks away from the capture volume (the cameras' "
                  f"common look-at point is behind it: optical axis {np.round(axes_b[away[0]], 3).tolist()}){hint}")
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
        hint = _scale_hint(fmt, inferred) if "does not see the whole capture volume" in str(err) else ""
        raise ValueError(str(err).replace("rig file ", "calibration file ", 1) + hint) from None
    return Imported(rig, fmt, str(source), units, up, s, Q, offset, rules)


def read_rig(path, format=None, cameras=None, units=None, up=None, warn=True, *, scale=None,
             baseline=None) -> Imported:
    """Read any calibration file (format auto-detected unless given) into the book's frame; warns when distortion
    terms are kept but not rendered. ``units`` / ``scale`` (metres per file unit) / ``baseline`` ((camera_a,
    camera_b, metres)): how file lengths become metres (at most one; default: the format's, else inferred).
    Bad files raise one ``ValueError`` line naming the file, camera and field."""
    path = Path(path)
    if format is not None and format not in READERS:
        raise ValueError(f"unknown calibration format {format!r}; known: {', '.join(FORMATS)}")
    if not path.exists():
        raise ValueError(f"calibration file {str(path)!r} does not exist")
    fmt = format or detect_format(path)
    cams = _select(READERS[fmt](path), cameras, path)
    if len(cams) < 2:
        raise bad(path, None, "cameras", f"a rig needs at least 2 cameras, got {len(cams)}")
    imported = to_book(cams, path, fmt, units, up, name=path.stem if path.is_file() else path.name, scale=scale,
                       baseline=baseline)
    if warn:
        warn_distortion(imported)
        if fmt == "colmap" and units is None and scale is None and baseline is None:
            warnings.warn(f"calibration file {str(path)!r}: a COLMAP model from structure from motion has an arbitrary "
                          f"scale; its units were inferred as {imported.units} ({imported.rules['units']}): give "
                          f"--scale or --baseline (scale=, baseline=) unless the model is in those units",
                          stacklevel=2)
    return imported
