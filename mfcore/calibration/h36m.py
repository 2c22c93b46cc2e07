"""H36M-style camera dictionaries (JSON, YAML or npz; mm, z up; ``t`` = −R·C or ``T`` = the centre C): reader and
writer (conventions: :mod:`mfcore.calibration.conventions`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import yaml

from .. import studio
from ..files import atomic_write_bytes
from .conventions import bad, file_camera, first_key, load_mapping, real_cameras


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
    entries = _h36m_entries(load_mapping(path))
    if not entries:
        raise bad(path, None, "cameras", "no camera dictionaries found")
    cams = []
    for name, d in entries.items():
        R = d.get("R")
        if "t" in d:
            t, t_field = d["t"], "t"
        elif "T" in d and R is not None:  # T is the camera centre C (mm): t = −R C
            t, t_field = -np.asarray(R, dtype=np.float64) @ np.asarray(d["T"], dtype=np.float64).reshape(3), "T"
        else:
            raise bad(path, name, "t", "missing (give t = −R·C, or T = the camera centre)")
        K = d.get("K")
        if K is None and "f" in d and "c" in d:
            (fx, fy), (cx, cy) = np.ravel(d["f"]).tolist(), np.ravel(d["c"]).tolist()
            K = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
        dist = d.get("dist")
        if dist is None and "k" in d:
            k, p = np.ravel(d["k"]).tolist() + [0.0] * 3, np.ravel(d.get("p", [0.0, 0.0])).tolist()
            dist = [k[0], k[1], p[0], p[1], k[2]]
        size = first_key(d, ["image_size", "resolution"])[1]
        if size is None and ("res_w" in d or "width" in d):
            size = (d.get("res_w", d.get("width")), d.get("res_h", d.get("height")))
        cams.append(file_camera(path, name, size, K, dist, R, t, fields=("image_size", "K", "dist", "R", t_field)))
    return cams



def write_h36m(rig: studio.Rig, path, translation: str = "t") -> Path:
    """H36M-style dictionaries ``{name: {R, t (mm) | T (centre, mm), K, dist, image_size}}`` (.json/.yaml/.npz)."""
    out = {}
    for name, K, (w, h), dist, R, t in real_cameras(rig):
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


