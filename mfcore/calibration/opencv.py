"""OpenCV FileStorage calibrations (YAML ``%YAML:1.0`` with ``!!opencv-matrix``, or XML) and EasyMocap's ``intri.yml`` +
``extri.yml`` (the same storage): readers into file cameras and writers of a rig (conventions:
:mod:`mfcore.calibration.conventions`)."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from .. import studio
from ..files import atomic_write_bytes
from .conventions import (METRES_PER_UNIT, bad, file_camera, first_key, num, real_cameras, rodrigues_or_matrix,
                          size_from_principal_point)

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
        k_key, K = first_key(store, [f"K{sfx}", f"camera_matrix{sfx}"])
        d_key, dist = first_key(store, [f"dist{sfx}", f"D{sfx}", f"distortion_coefficients{sfx}"])
        r_key, R = first_key(store, [f"Rot{sfx}", f"R{sfx}", f"rvec{sfx}"])
        t_key, t = first_key(store, [f"T{sfx}", f"t{sfx}", f"tvec{sfx}"])
        w = first_key(store, [f"image_width{sfx}", f"W{sfx}", "image_width"])[1]
        h = first_key(store, [f"image_height{sfx}", f"H{sfx}", "image_height"])[1]
        if K is None:
            raise bad(source, n, k_key, "missing (intrinsics K_<name> or camera_matrix_<name>)")
        size = (w, h) if w is not None and h is not None else size_from_principal_point(source, n, K)
        cams.append(file_camera(source, n, size, K, dist, rodrigues_or_matrix(R), t,
                            fields=("image_width/image_height", k_key, d_key, r_key, t_key)))
    if not cams:
        raise bad(source, None, "names", "no cameras found (give names, or keys K_<name> / camera_matrix_<name>)")
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



# writers


def _fs_text(entries: list, xml: bool) -> str:
    """OpenCV FileStorage text of (key, value) entries: arrays as opencv-matrix, lists as string sequences."""
    out = ['<?xml version="1.0"?>', "<opencv_storage>"] if xml else ["%YAML:1.0", "---"]
    for key, value in entries:
        if isinstance(value, np.ndarray):
            m = value.reshape(value.shape[0], -1)
            data = " ".join(num(v) for v in m.ravel())
            out.append(f'<{key} type_id="opencv-matrix"><rows>{m.shape[0]}</rows><cols>{m.shape[1]}</cols>'
                       f"<dt>d</dt><data>{data}</data></{key}>" if xml else
                       f"{key}: !!opencv-matrix\n   rows: {m.shape[0]}\n   cols: {m.shape[1]}\n   dt: d\n"
                       f"   data: [ {', '.join(num(v) for v in m.ravel())} ]")
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
    entries = [("names", [c[0] for c in real_cameras(rig)])]
    for name, K, (w, h), dist, R, t in real_cameras(rig):
        entries += [(f"K_{name}", K), (f"dist_{name}", np.asarray(dist or [0.0] * 5)[None]), (f"R_{name}", R),
                    (f"T_{name}", (s * t)[:, None]), (f"image_width_{name}", w), (f"image_height_{name}", h)]
    return atomic_write_bytes(path, _fs_text(entries, Path(path).suffix.lower() == ".xml").encode())


def write_easymocap(rig: studio.Rig, folder) -> Path:
    """EasyMocap ``intri.yml`` (K_, dist_, H_, W_) and ``extri.yml`` (R_ Rodrigues, Rot_, T_ metres) in ``folder``."""
    folder, cams = Path(folder), real_cameras(rig)
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


