"""COCO-keypoints JSON, one file per camera: what 2D detectors write (conventions: :mod:`.conventions`).

Read, per camera:

- a COCO dataset file ``{"images": [{id, file_name}], "annotations": [{image_id, keypoints, score?}],
  "categories": [{keypoints: [names]}]}``: frames are the images in the file's order (named by ``file_name``), an
  image without an annotation is a frame without detections; the layout is the category's joint names when given;
- a COCO results list ``[{image_id, category_id, keypoints, score}]`` (what detectors write for evaluation): frames
  are the image ids in increasing order;
- MMPose's predictions: a list (or ``{"instance_info": [...]}``) of ``{frame_id, instances: [{keypoints,
  keypoint_scores, bbox_score}]}``.

``keypoints`` is a flat list of x, y, score triples, a list of [x, y, score], or x, y pairs (flat or [x, y]) with
``keypoint_scores`` beside them. Without joint names a 17-joint file is COCO-17 (``layout=`` says otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from .conventions import (LAYOUTS, CameraKeypoints, bad, check_layout, keypoints_from, layout_of_count,
                          layout_of_names, most_confident, people_note, read_scores, read_xy)


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise bad(path, None, None, None, f"cannot be read: {err.strerror or err}") from None
    except ValueError as err:
        raise bad(path, None, None, None, f"is not valid JSON: {err}") from None


def _records(data, path) -> tuple[list[tuple[str, object]], list[dict], list | None]:
    """(frames as (name, key) in order, person records with a "_frame" key, joint names or None) of any of the three
    containers."""
    if isinstance(data, dict) and "instance_info" in data:  # MMPose's --save-predictions
        meta = data.get("meta_info") or {}
        names = meta.get("keypoint_id2name")
        names = [names[str(k)] if str(k) in names else names[k] for k in range(len(names))] \
            if isinstance(names, dict) else None
        data = data["instance_info"]
    else:
        names = None
    if isinstance(data, dict) and "annotations" in data:  # a COCO dataset file
        cats = data.get("categories") or []
        names = next((c["keypoints"] for c in cats if isinstance(c, dict) and c.get("keypoints")), None)
        images = data.get("images")
        anns = [a for a in data["annotations"] if isinstance(a, dict)]
        if images is None:
            ids = sorted({a.get("image_id") for a in anns}, key=lambda i: (str(type(i)), i))
            frames = [(str(i), i) for i in ids]
        else:
            frames = [(str(im.get("file_name", im.get("id"))), im.get("id")) for im in images]
        return frames, [{**a, "_frame": a.get("image_id")} for a in anns], names
    if isinstance(data, list) and all(isinstance(r, dict) and "instances" in r for r in data):  # MMPose predictions
        frames = [(str(r.get("frame_id", i)), i) for i, r in enumerate(data)]
        people = [{**p, "_frame": i} for i, r in enumerate(data) for p in (r.get("instances") or [])]
        return frames, people, names
    if isinstance(data, list) and all(isinstance(r, dict) and "image_id" in r for r in data):  # COCO results
        ids = sorted({r["image_id"] for r in data}, key=lambda i: (str(type(i)), i))
        return [(str(i), i) for i in ids], [{**r, "_frame": r["image_id"]} for r in data], names
    raise bad(path, None, None, None, "is none of the COCO-keypoints layouts read here: a COCO dataset file "
              "(images, annotations), a COCO results list ([{image_id, keypoints, score}]) or MMPose predictions "
              "([{frame_id, instances}])")


def _person(record: dict, path, camera, frame, flags: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """(xy (J, 2), score (J,), confidence) of one person record."""
    kp = record.get("keypoints")
    if kp is None:
        raise bad(path, camera, frame, "keypoints", "missing")
    try:
        arr = np.asarray(kp, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad(path, camera, frame, "keypoints", "must be numbers (x, y[, score] per joint)") from None
    scores = record.get("keypoint_scores")
    if scores is not None:
        xy = arr.reshape(-1, 2) if arr.ndim == 1 and arr.size % 2 == 0 else arr[..., :2] if arr.ndim == 2 else None
        try:
            s = np.asarray(scores, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise bad(path, camera, frame, "keypoint_scores", "must be numbers") from None
        if xy is None or len(s) != len(xy):
            raise bad(path, camera, frame, "keypoint_scores", f"{len(s)} scores for keypoints of shape "
                      f"{list(arr.shape)}")
        field = "keypoint_scores"
    elif arr.ndim == 2 and arr.shape[1] == 3:
        xy, s, field = arr[:, :2], arr[:, 2], "keypoints"
    elif arr.ndim == 1 and arr.size % 3 == 0:
        xy, s, field = arr.reshape(-1, 3)[:, :2], arr.reshape(-1, 3)[:, 2], "keypoints"
    else:
        raise bad(path, camera, frame, "keypoints", f"shape {list(arr.shape)} is neither x, y, score triples nor "
                  f"x, y pairs with keypoint_scores")
    s = np.minimum(s, 1.0) if flags else s  # COCO visibility 1, 2 → present
    s = read_scores(s, path, camera, frame, field)
    xy = read_xy(xy, path, camera, frame, "keypoints")
    conf = record.get("score", record.get("bbox_score"))
    conf = float(np.ravel(conf)[0]) if conf is not None else float(s.mean()) if len(s) else 0.0
    return xy, s, conf


def _visibility_flags(people: list[dict]) -> bool:
    """Whether the third values are COCO ground-truth visibility flags: all 0, 1 or 2, some 2, no keypoint_scores."""
    thirds = []
    for p in people:
        kp = p.get("keypoints")
        if p.get("keypoint_scores") is not None or kp is None:
            return False
        arr = np.asarray(kp, dtype=object)
        flat = np.asarray(kp, dtype=np.float64).reshape(-1, 3)[:, 2] if arr.ndim == 1 and len(kp) % 3 == 0 else \
            np.asarray(kp, dtype=np.float64)[:, 2] if arr.ndim == 2 and arr.shape[1] == 3 else None
        if flat is None:
            return False
        thirds.append(flat)
    values = np.concatenate(thirds) if thirds else np.zeros(0)
    return bool(values.size) and bool(np.isin(values, (0.0, 1.0, 2.0)).all()) and bool((values == 2).any())


def read_coco(path, camera: str | None = None, layout: str | None = None, pixel_centre: float = 0.0) -> CameraKeypoints:
    """One camera's COCO-keypoints JSON → :class:`CameraKeypoints` (the H36M body, sensor pixels). ``layout``: the
    file's joint layout when its categories do not name it (default for 17 joints: COCO-17); ``pixel_centre``: the
    file's coordinate of the top-left pixel's centre (0 as OpenCV, 0.5 subtracted)."""
    path = Path(path)
    frames, people, names = _records(_load(path), path)
    if names is not None and layout is None:
        layout = layout_of_names(names, path)
    flags = _visibility_flags(people)
    by_frame: dict = {}
    for p in people:
        by_frame.setdefault(p["_frame"], []).append(p)
    keys = {key for _, key in frames}
    strays = [k for k in by_frame if k not in keys]
    if strays:
        raise bad(path, camera, strays[0], "image_id", "has detections but is not in the file's images")
    xy_all, s_all, chose, J = [], [], 0, None
    for name, key in frames:
        found = [_person(p, path, camera, name, flags) for p in by_frame.get(key, [])]
        for xy, _, _ in found:
            J = J or len(xy)
            if len(xy) != J:
                raise bad(path, camera, name, "keypoints", f"{len(xy)} joints where the file's other people have {J}")
        best, several = most_confident([(conf, (xy, s)) for xy, s, conf in found])
        chose += several
        xy_all.append(None if best is None else best[0])
        s_all.append(None if best is None else best[1])
    if J is None:
        J = len(LAYOUTS[check_layout(layout)]) if layout else 17
    layout = layout_of_count(J, path, camera, None, "keypoints", layout, ambiguous_ok="coco17")
    xy = np.stack([x if x is not None else np.zeros((J, 2)) for x in xy_all]) if frames else np.zeros((0, J, 2))
    s = np.stack([v if v is not None else np.zeros(J) for v in s_all]) if frames else np.zeros((0, J))
    notes = people_note(f"camera {camera!r} ({path.name})" if camera else path.name, chose, len(frames))
    return keypoints_from(path, camera, [n for n, _ in frames], xy, s, layout, notes)


def write_coco(path, xy_px, score, frames, layout: str = "h36m17", scores_apart: bool = False,
               pixel_centre: float = 0.0) -> Path:
    """A COCO dataset file of one camera's detections (one person per frame): xy_px (N, J, 2), score (N, J) of
    ``layout`` (named in ``categories[0].keypoints``), one image per frame named by ``frames``; ``keypoints`` as
    x, y, score triples, or x, y pairs with ``keypoint_scores`` (``scores_apart``). Frames whose scores are all 0 get
    no annotation. Written atomically."""
    xy, s = np.asarray(xy_px, dtype=np.float64) + pixel_centre, np.asarray(score, dtype=np.float64)
    names = LAYOUTS[check_layout(layout)]
    images, anns = [], []
    for i, name in enumerate(frames):
        images.append({"id": i, "file_name": str(name)})
        if not (s[i] > 0).any():
            continue
        if scores_apart:
            kp = {"keypoints": xy[i].reshape(-1).tolist(), "keypoint_scores": s[i].tolist()}
        else:
            kp = {"keypoints": np.concatenate([xy[i], s[i][:, None]], 1).reshape(-1).tolist()}
        anns.append({"id": len(anns), "image_id": i, "category_id": 1, **kp, "score": float(s[i].mean())})
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": list(names)}]}
    return atomic_write_bytes(Path(path), json.dumps(data).encode())
