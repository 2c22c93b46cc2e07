"""OpenPose JSON, one folder per camera (``--write_json``: one ``<name>_keypoints.json`` per frame, ``people[]`` with
``pose_keypoints_2d`` = x, y, score per joint; BODY_25 or COCO-18 by the count) or a single frame's file
(conventions: :mod:`.conventions`). Frames are the files in the order of the last number in their names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from .conventions import (LAYOUTS, CameraKeypoints, bad, check_layout, frame_number, keypoints_from,
                          layout_of_count, most_confident, people_note, read_scores, read_xy)

FIELD = "pose_keypoints_2d"


def frame_files(path: Path) -> list[Path]:
    """The per-frame JSON files of an OpenPose folder (or the one file), ordered by the last number in their name."""
    if path.is_file():
        return [path]
    files = [p for p in path.iterdir() if p.suffix.lower() == ".json"]
    if not files:
        raise bad(path, None, None, None, "holds no .json files (OpenPose writes one <name>_keypoints.json per frame)")
    return sorted(files, key=lambda p: (frame_number(p.stem) is None, frame_number(p.stem) or 0, p.name))


def frame_name(file: Path) -> str:
    """A frame's name: its file's stem without OpenPose's ``_keypoints``."""
    return re.sub(r"_keypoints$", "", file.stem)


def _people(file: Path, camera, name) -> list:
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        raise bad(file, camera, name, None, f"cannot be read: {err.strerror or err}") from None
    except ValueError as err:
        raise bad(file, camera, name, None, f"is not valid JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise bad(file, camera, name, "people", "missing: an OpenPose frame file has a 'people' list")
    return data["people"]


def read_openpose(path, camera: str | None = None, layout: str | None = None,
                  pixel_centre: float = 0.0) -> CameraKeypoints:
    """One camera's OpenPose output (a folder of per-frame JSON, or one file) → :class:`CameraKeypoints` (the H36M
    body, sensor pixels). The layout comes from the count (75 numbers: BODY_25, 54: COCO-18) unless ``layout`` is
    given (e.g. ``"h36m17"`` for 51 numbers written by another tool in OpenPose's form)."""
    path = Path(path)
    if not path.exists():
        raise bad(path, camera, None, None, "does not exist")
    files = frame_files(path)
    xy_all, s_all, chose, count = [], [], 0, None
    for file in files:
        name = frame_name(file)
        found = []
        for k, person in enumerate(_people(file, camera, name)):
            values = person.get(FIELD) if isinstance(person, dict) else None
            if values is None:
                raise bad(file, camera, name, f"people[{k}].{FIELD}", "missing")
            try:
                arr = np.asarray(values, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise bad(file, camera, name, f"people[{k}].{FIELD}", "must be numbers (x, y, score per joint)") \
                    from None
            if arr.size % 3:
                raise bad(file, camera, name, f"people[{k}].{FIELD}", f"{arr.size} numbers are not x, y, score "
                          f"triples")
            count = count or arr.size // 3
            if arr.size // 3 != count:
                raise bad(file, camera, name, f"people[{k}].{FIELD}", f"{arr.size // 3} joints where the other "
                          f"frames have {count}")
            triples = arr.reshape(-1, 3)
            s = read_scores(triples[:, 2], file, camera, name, f"people[{k}].{FIELD}")
            xy = read_xy(triples[:, :2], file, camera, name, f"people[{k}].{FIELD}", pixel_centre)
            found.append((float(s.mean()), (xy, s)))
        best, several = most_confident(found)
        chose += several
        xy_all.append(None if best is None else best[0])
        s_all.append(None if best is None else best[1])
    if count is None:
        count = len(LAYOUTS[check_layout(layout)]) if layout else len(LAYOUTS["body25"])
    layout = layout_of_count(count, path, camera, None, FIELD, layout)
    xy = np.stack([x if x is not None else np.zeros((count, 2)) for x in xy_all])
    s = np.stack([v if v is not None else np.zeros(count) for v in s_all])
    notes = people_note(f"camera {camera!r} ({path.name})" if camera else path.name, chose, len(files))
    return keypoints_from(path, camera, [frame_name(f) for f in files], xy, s, layout, notes)


def write_openpose(folder, xy_px, score, frames, pixel_centre: float = 0.0) -> Path:
    """One camera's detections as OpenPose writes them: ``<frame>_keypoints.json`` per frame in ``folder`` with one
    person (none where every score is 0); xy_px (N, J, 2), score (N, J) in the layout of the J joints. Atomic files."""
    folder = Path(folder)
    xy, s = np.asarray(xy_px, dtype=np.float64) + pixel_centre, np.asarray(score, dtype=np.float64)
    for i, name in enumerate(frames):
        people = [] if not (s[i] > 0).any() else [{"person_id": [-1], FIELD: np.concatenate(
            [xy[i], s[i][:, None]], 1).reshape(-1).tolist()}]
        atomic_write_bytes(folder / f"{name}_keypoints.json", json.dumps({"version": 1.3, "people": people}).encode())
    return folder
