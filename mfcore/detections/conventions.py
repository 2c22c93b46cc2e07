"""The conventions of every 2D detection file the book reads, in one table, and the mapping of each joint layout to
the book's 17-joint H36M body.

| what | convention |
|---|---|
| joint order | the book's 17 H36M joints (:data:`mfcore.skeleton.JOINT_NAMES`); every reader maps its file's layout to them (:data:`MAPPINGS`, below) |
| layouts read | ``coco17`` (COCO keypoints: MMPose, Detectron2, YOLO-pose, ViTPose …), ``body25`` and ``coco18`` (OpenPose), ``h36m17`` (the book's own; a COCO file whose ``categories[].keypoints`` names them, or any file with ``layout="h36m17"``) |
| pixel frame | the camera's real (sensor) image as calibrated: x right, y down, pixel centres at integer coordinates, the top-left pixel's centre (0, 0), the image spanning −0.5 … w − 0.5 (the book's and OpenCV's convention, and what OpenPose and MMPose write). A file whose top-left pixel centre is (0.5, 0.5) is read with ``pixel_centre=0.5`` (subtracted) |
| score | a detector's confidence in [0, 1], higher = surer; above 1 is read as 1 (some detectors' heatmap maxima exceed it); NaN, inf or negative is an error. COCO ground-truth visibility flags (third values all 0, 1 or 2, some 2) read as 0 → missing, 1 or 2 → 1 |
| missing | score 0 (OpenPose writes 0, 0, 0); a joint outside the image is dropped (score 0) with a warning |
| heatmaps | ``(frames, joints, H, W)`` non-negative per camera, over the pixel box ``(x0, y0, x1, y1)`` of the sensor image given by its **outer edges** (heatmap pixel u's centre at x0 + (u + ½)(x1 − x0)/W); default the whole image (−0.5, −0.5, w − 0.5, h − 0.5); a box per frame for top-down crops |
| people | several people in a frame of a camera: the most confident is kept (the instance's ``score``, else the mean of its keypoint scores), and the reader says in how many frames it chose |
| frames | matched across cameras by index (the k-th frame of every camera; the counts must agree) or by name (the last number in a frame's name: ``cam2/000123.jpg`` → 123); a frame a camera lacks is a frame without its detections |

A layout's joint that the H36M body lacks is dropped; an H36M joint that the layout lacks is the mean of the layout's
joints in :data:`MAPPINGS` (pelvis = mid-hip, thorax = mid-shoulder or OpenPose's neck, spine = mid-pelvis-thorax,
head top = mid-eyes: the convention of MotionBERT's ``coco2h36m``, Zhu et al., ICCV 2023), in image pixels (the
projection of a midpoint is the midpoint of the projections up to perspective, below a pixel at a body's scale), with
the smallest of its sources' scores (missing if any source is missing).

Errors are one ``ValueError`` line naming the file, the camera, the frame and the field (:func:`bad`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import skeleton

H36M17 = skeleton.JOINT_NAMES
COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
          "left_ankle", "right_ankle")
BODY25 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
          "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
          "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
          "right_small_toe", "right_heel")
COCO18 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
          "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
          "right_ear", "left_ear")
LAYOUTS = {"h36m17": H36M17, "coco17": COCO17, "body25": BODY25, "coco18": COCO18}

_LIMB_JOINTS = ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "nose",
                "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
_MID_HIP = {"left_hip": 0.5, "right_hip": 0.5}
_EYES = {"left_eye": 0.5, "right_eye": 0.5}
# H36M joint → {source joint: weight} per layout (weights sum to 1; the joints of _LIMB_JOINTS map to themselves)
MAPPINGS: dict[str, dict[str, dict[str, float]]] = {
    "h36m17": {j: {j: 1.0} for j in H36M17},
    "coco17": {**{j: {j: 1.0} for j in _LIMB_JOINTS}, "pelvis": _MID_HIP,
               "spine": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25},
               "thorax": {"left_shoulder": 0.5, "right_shoulder": 0.5}, "head_top": _EYES},
    "body25": {**{j: {j: 1.0} for j in _LIMB_JOINTS}, "pelvis": {"mid_hip": 1.0},
               "spine": {"mid_hip": 0.5, "neck": 0.5}, "thorax": {"neck": 1.0}, "head_top": _EYES},
    "coco18": {**{j: {j: 1.0} for j in _LIMB_JOINTS}, "pelvis": _MID_HIP,
               "spine": {"left_hip": 0.25, "right_hip": 0.25, "neck": 0.5}, "thorax": {"neck": 1.0}, "head_top": _EYES},
}


def bad(source, camera, frame, field, problem) -> ValueError:
    """The one-line error of bad detections: file, camera, frame, field, what is wrong (None parts are left out)."""
    parts = [f"detections file {str(source)!r}"]
    parts += [f"camera {camera!r}"] if camera is not None else []
    parts += [f"frame {frame!r}"] if frame is not None else []
    parts += [f"field {field!r}"] if field is not None else []
    return ValueError(": ".join(parts) + f": {problem}")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown joint layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return layout


def layout_of_names(names, source) -> str:
    """The layout whose joint names are ``names`` (case and spaces/dashes ignored), else a one-line error."""
    norm = tuple(re.sub(r"[\s\-]+", "_", str(n).strip().lower()) for n in names)
    for layout, joints in LAYOUTS.items():
        if norm == joints:
            return layout
    raise bad(source, None, None, "categories[].keypoints", f"the joint names {list(norm)[:6]}… are none of the "
              f"known layouts ({', '.join(LAYOUTS)}); give layout= (--layout) to read them as one")


def layout_of_count(count: int, source, camera, frame, field, given: str | None, ambiguous_ok: str | None = None) -> str:
    """The layout of ``count`` joints: the given one (which must have that count), else the one layout with that
    count (17 reads as ``ambiguous_ok`` where the file kind fixes it, e.g. COCO files are COCO-17)."""
    if given is not None:
        if len(LAYOUTS[check_layout(given)]) != count:
            raise bad(source, camera, frame, field, f"{count} joints, but layout {given!r} has "
                      f"{len(LAYOUTS[given])}")
        return given
    fits = [name for name, joints in LAYOUTS.items() if len(joints) == count]
    if count == 17 and ambiguous_ok is not None:
        return ambiguous_ok
    if len(fits) == 1:
        return fits[0]
    known = ", ".join(f"{name} ({len(j)})" for name, j in LAYOUTS.items())
    if fits:
        raise bad(source, camera, frame, field, f"{count} joints could be {' or '.join(fits)}: give layout= "
                  f"(--layout) to say which")
    raise bad(source, camera, frame, field, f"{count} joints is none of the known layouts: {known}")


def mapping_matrix(layout: str) -> np.ndarray:
    """(17, J_layout) weights: H36M joint j = Σ_k M[j, k] · layout joint k (:data:`MAPPINGS`)."""
    joints = LAYOUTS[check_layout(layout)]
    index = {name: k for k, name in enumerate(joints)}
    M = np.zeros((len(H36M17), len(joints)))
    for j, name in enumerate(H36M17):
        for src, w in MAPPINGS[layout][name].items():
            M[j, index[src]] = w
    return M


def to_h36m(xy_px: np.ndarray, score: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of ``layout`` → the book's 17 joints: xy (..., J, 2) px and score (..., J) → (..., 17, 2) and
    (..., 17). A joint is the weighted mean of its sources (:func:`mapping_matrix`) with the smallest of their scores;
    missing (score 0, xy 0) when any source is missing."""
    M = mapping_matrix(layout)
    xy = np.einsum("jk,...kc->...jc", M, np.where(score[..., None] > 0, xy_px, 0.0))
    uses = M > 0  # (17, J)
    src = np.where(uses, score[..., None, :], np.inf)  # (..., 17, J)
    out = np.min(src, axis=-1)
    out = np.where(np.isfinite(out), out, 0.0)
    return np.where(out[..., None] > 0, xy, 0.0), out


# the layout's joints written from the H36M body where the layout has them (OpenPose's neck is the thorax, its mid-hip
# the pelvis); the layout's other joints (eyes, ears, feet) are written as missing
_FROM_H36M = {"neck": "thorax", "mid_hip": "pelvis"}


def from_h36m(xy_px: np.ndarray, score: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """The book's 17 joints (..., 17, 2), (..., 17) written in ``layout``: each of the layout's joints that is an H36M
    joint (or OpenPose's neck = thorax, mid-hip = pelvis) copied, the others missing (score 0). Reading the result
    back (:func:`to_h36m`) gives the same joints where the mapping is one-to-one and the mapping's means elsewhere."""
    joints = LAYOUTS[check_layout(layout)]
    xy = np.zeros((*xy_px.shape[:-2], len(joints), 2))
    s = np.zeros((*score.shape[:-1], len(joints)))
    for k, name in enumerate(joints):
        src = _FROM_H36M.get(name, name)
        if src in H36M17:
            xy[..., k, :], s[..., k] = xy_px[..., H36M17.index(src), :], score[..., H36M17.index(src)]
    return xy, s


def read_scores(values, source, camera, frame, field) -> np.ndarray:
    """Scores as the table says: finite, ≥ 0, above 1 read as 1; anything else is the one-line error."""
    s = np.asarray(values, dtype=np.float64)
    if not np.isfinite(s).all():
        j = int(np.flatnonzero(~np.isfinite(s).reshape(-1))[0])
        raise bad(source, camera, frame, field, f"score of keypoint {j} is {s.reshape(-1)[j]}: scores must be finite "
                  f"numbers in [0, 1] (0 = not detected)")
    if (s < 0).any():
        j = int(np.flatnonzero(s.reshape(-1) < 0)[0])
        raise bad(source, camera, frame, field, f"score of keypoint {j} is {s.reshape(-1)[j]}: scores must be in "
                  f"[0, 1] (0 = not detected)")
    return np.minimum(s, 1.0)


def read_xy(values, source, camera, frame, field, pixel_centre: float = 0.0) -> np.ndarray:
    """Pixel coordinates (..., 2), finite (NaN/inf is the one-line error), moved to the book's pixel centres."""
    xy = np.asarray(values, dtype=np.float64)
    if not np.isfinite(xy).all():
        j = int(np.flatnonzero(~np.isfinite(xy).reshape(-1, 2).all(-1))[0])
        raise bad(source, camera, frame, field, f"keypoint {j} has a non-finite coordinate "
                  f"{xy.reshape(-1, 2)[j].tolist()}: coordinates must be numbers (write a missing joint as score 0)")
    return xy - pixel_centre


def frame_number(name: str) -> int | None:
    """The last run of digits in a frame's name (``cam2/000123.jpg`` → 123; ``17`` → 17), else None."""
    found = re.findall(r"\d+", str(name))
    return int(found[-1]) if found else None


@dataclass
class CameraKeypoints:
    """One camera's 2D detections in the book's joint order: ``xy_px`` (N, 17, 2) sensor pixels (the book's pixel
    centres), ``score`` (N, 17) in [0, 1] (0 = missing), one name per frame, the file's layout, and ``notes`` (what
    the reader decided, one line each: several people, …)."""

    source: str
    frames: list[str]
    xy_px: np.ndarray
    score: np.ndarray
    layout: str
    camera: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def keypoints_from(source, camera, frames, xy_px, score, layout, notes=()) -> CameraKeypoints:
    """A :class:`CameraKeypoints` from a file's layout: mapped to the H36M body (:func:`to_h36m`)."""
    xy, s = (np.zeros((0, len(LAYOUTS[layout]), 2)), np.zeros((0, len(LAYOUTS[layout])))) if not len(frames) else \
        (np.asarray(xy_px, dtype=np.float64), np.asarray(score, dtype=np.float64))
    xy17, s17 = to_h36m(xy, s, layout)
    return CameraKeypoints(str(source), [str(f) for f in frames], xy17, s17, layout, camera, list(notes))


def most_confident(people: list[tuple[float, object]]) -> tuple[object | None, bool]:
    """(the person of highest confidence, whether there was a choice) from (confidence, person) pairs; ties: the
    first."""
    if not people:
        return None, False
    best = max(range(len(people)), key=lambda i: (people[i][0], -i))
    return people[best][1], len(people) > 1


def people_note(camera_or_file: str, chose: int, frames: int) -> list[str]:
    """The reader's line about frames with several people (empty when there were none)."""
    if not chose:
        return []
    return [f"{camera_or_file}: {chose} of {frames} frames have several people; kept the most confident in each (the "
            f"person's score, else the mean of its keypoint scores)"]
