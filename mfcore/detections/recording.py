"""A recording: every camera's detections matched to the rig's cameras and to each other's frames, read as the book's
heatmaps in the rig's views block by block (what :mod:`mfcore.lift` fuses and lifts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import studio
from .coco import read_coco
from .conventions import H36M17, CameraKeypoints, bad, frame_number
from .heatmaps import SUFFIXES as HEATMAP_SUFFIXES
from .heatmaps import CameraHeatmaps, is_book_heatmaps, read_book_heatmaps, read_heatmaps
from .openpose import read_openpose
from .views import keypoint_heatmaps, resample_heatmaps, sensor_to_view_px, sensor_window, to_h36m_heatmaps

MATCHES = ("index", "name")
Detections = CameraKeypoints | CameraHeatmaps


def read_detections(path, camera: str | None = None, layout: str | None = None,
                    pixel_centre: float = 0.0) -> list[Detections]:
    """Any detections path, its kind found from its name and content: heatmaps (``.npy``/``.npz``; the book's own
    multi-camera file gives every camera), a COCO-keypoints ``.json``, an OpenPose folder or frame file."""
    path = Path(path)
    if not path.exists():
        raise bad(path, camera, None, None, "does not exist")
    if path.suffix.lower() in HEATMAP_SUFFIXES:
        return read_book_heatmaps(path) if is_book_heatmaps(path) else [read_heatmaps(path, camera, layout)]
    if path.is_dir():
        return [read_openpose(path, camera, layout, pixel_centre)]
    if path.suffix.lower() != ".json":
        raise bad(path, camera, None, None, f"unknown kind of detections {path.suffix!r}; read: COCO-keypoints "
                  f".json, an OpenPose folder (or frame .json), heatmaps {', '.join(HEATMAP_SUFFIXES)}")
    try:
        head = json.loads(path.read_text())
    except ValueError as err:
        raise bad(path, camera, None, None, f"is not valid JSON: {err}") from None
    if isinstance(head, dict) and "people" in head:
        return [read_openpose(path, camera, layout, pixel_centre)]
    return [read_coco(path, camera, layout, pixel_centre)]


@dataclass
class Recording:
    """Detections of every camera of ``rig`` (its square views at the profile's resolution), frame by frame:
    ``rows`` (V, N) is each frame's row in each camera's detections (−1: the camera has none for it); ``notes`` says,
    one line each, what was read and decided (several people, joints outside an image, frames without detections)."""

    rig: studio.Rig
    frames: list[str]
    cameras: list[Detections]
    rows: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def view_heatmaps(self, start: int, stop: int, heatmap_px: int, sigma_px: float, device="cpu") -> torch.Tensor:
        """Frames ``start:stop`` as the book's heatmaps in the rig's views, (n, V, 17, h, h) float32 on ``device``:
        keypoints as Gaussians of σ = ``sigma_px`` scaled by their score
        (:func:`~mfcore.detections.views.keypoint_heatmaps`), heatmaps resampled onto the view's grid; a frame a
        camera lacks is all zero there."""
        n = stop - start
        out = torch.zeros(n, self.rig.num_views, len(H36M17), heatmap_px, heatmap_px, device=device)
        for v, cam in enumerate(self.cameras):
            rows = self.rows[v, start:stop]
            have = np.flatnonzero(rows >= 0)
            if not len(have):
                continue
            window = sensor_window(self.rig, v)[0]
            if isinstance(cam, CameraKeypoints):
                xy = torch.from_numpy(sensor_to_view_px(cam.xy_px[rows[have]], window, heatmap_px)).to(device)
                score = torch.from_numpy(cam.score[rows[have]]).to(device)
                out[have, v] = keypoint_heatmaps(xy, score, heatmap_px, sigma_px)
            else:
                out[have, v] = self._heatmaps(cam, v, rows[have], window, heatmap_px, sigma_px, device)
        return out

    def _heatmaps(self, cam: CameraHeatmaps, v: int, rows: np.ndarray, window, heatmap_px, sigma_px, device):
        block = np.asarray(cam.heatmaps[rows], dtype=np.float32)  # reads only these frames of a memory map
        finite = np.isfinite(block).reshape(len(rows), -1).all(1)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise bad(cam.source, self.rig.cameras[v].name, cam.frames[rows[i]], "heatmaps", "holds NaN or inf: "
                      "heatmaps must be finite (write 0 where nothing was detected)")
        box = cam.box_px if cam.box_px is not None else _whole_image(self.rig, v)
        box = box[rows] if box.ndim == 2 else box
        hm = resample_heatmaps(torch.from_numpy(np.maximum(block, 0.0)).to(device), box, window, heatmap_px)
        return to_h36m_heatmaps(hm, cam.layout, sigma_px)


def _whole_image(rig: studio.Rig, v: int) -> np.ndarray:
    w, h = sensor_window(rig, v)[1]
    return np.array([-0.5, -0.5, w - 0.5, h - 0.5])


def _check_inside(cam: CameraKeypoints, rig: studio.Rig, v: int) -> list[str]:
    """Drop (score 0) the keypoints outside the camera's image; the note naming how many and the first."""
    w, h = sensor_window(rig, v)[1]
    xy, s = cam.xy_px, cam.score
    outside = (s > 0) & ((xy[..., 0] < -0.5) | (xy[..., 0] > w - 0.5) | (xy[..., 1] < -0.5) | (xy[..., 1] > h - 0.5))
    notes = []
    if outside.any():
        f, j = (int(i[0]) for i in np.nonzero(outside))
        cam.score = np.where(outside, 0.0, s)
        notes.append(f"detections file {cam.source!r}: camera {rig.cameras[v].name!r}: {int(outside.sum())} keypoints "
                     f"outside the {w}×{h} image were dropped (first: frame {cam.frames[f]!r}, joint {H36M17[j]!r} at "
                     f"{np.round(xy[f, j], 1).tolist()}); wrong image size, camera or pixel convention if there are "
                     f"many")
    x0, y0, side = sensor_window(rig, v)[0]
    beyond = (cam.score > 0) & ((xy[..., 0] < x0 - 0.5) | (xy[..., 0] > x0 + side - 0.5) | (xy[..., 1] < y0 - 0.5)
                                | (xy[..., 1] > y0 + side - 0.5))
    if beyond.any():
        notes.append(f"camera {rig.cameras[v].name!r}: {int(beyond.sum())} keypoints lie in the image but outside the "
                     f"square view the book reads (the window x {x0}…{x0 + side - 1}, y {y0}…{y0 + side - 1} px around "
                     f"the capture volume): read as not detected")
    return notes


def _empty_frames(cam: CameraKeypoints, name: str) -> list[str]:
    empty = int((~(cam.score > 0).any(-1)).sum())
    return [f"camera {name!r}: {empty} of {cam.num_frames} frames without any detection"] if empty else []


def _match(cameras: list[Detections], names: list[str], match: str) -> tuple[list[str], np.ndarray]:
    """(frame names, rows (V, N)) by ``match``: "index" (counts must agree) or "name" (the last number in a name)."""
    if match not in MATCHES:
        raise ValueError(f"unknown frame matching {match!r}; valid: {', '.join(MATCHES)}")
    if match == "index":
        counts = [c.num_frames for c in cameras]
        if len(set(counts)) > 1:
            a, b = next((i, j) for i in range(len(counts)) for j in range(len(counts)) if counts[i] != counts[j])
            raise bad(cameras[b].source, names[b], None, None, f"{counts[b]} frames, but camera {names[a]!r} "
                      f"({cameras[a].source}) has {counts[a]}: frames are matched by index (the k-th of every camera); "
                      f"match them by the number in their names with --frames name (match='name')")
        return list(cameras[0].frames), np.tile(np.arange(counts[0]), (len(cameras), 1))
    keys = []
    for cam, name in zip(cameras, names):
        numbers = {}
        for row, frame in enumerate(cam.frames):
            key = frame_number(frame)
            if key is None or key in numbers:
                problem = "has no number in its name" if key is None else f"has the same number as {cam.frames[numbers[key]]!r}"
                raise bad(cam.source, name, frame, None, f"{problem}: frames matched by name need one number per frame")
            numbers[key] = row
        keys.append(numbers)
    ordered = sorted(set().union(*keys))
    rows = np.array([[k.get(key, -1) for key in ordered] for k in keys], dtype=np.int64)
    labels = [next(cam.frames[r[i]] for cam, r in zip(cameras, rows) if r[i] >= 0) for i in range(len(ordered))]
    return labels, rows


def assemble(rig: studio.Rig, detections: list[tuple[str | None, Detections]], match: str = "index") -> Recording:
    """The :class:`Recording` of ``rig`` from (camera name or None, detections) pairs: named ones go to their camera;
    unnamed ones, one per camera, in the rig's order. A missing, unknown or repeated camera, frame counts that do
    not match, or no frame at all is a one-line ``ValueError``."""
    names = [c.name for c in rig.cameras]
    named = [(n or d.camera, d) for n, d in detections]
    if all(n is None for n, _ in named):
        if len(named) != rig.num_views:
            raise ValueError(f"rig {rig.name!r} has {rig.num_views} cameras ({', '.join(names)}), detections were "
                             f"given for {len(named)}: give one per camera in the rig's order, or NAME=PATH for each")
        by_camera = {name: d for name, (_, d) in zip(names, named)}
    else:
        by_camera = {}
        for n, d in named:
            if n is None:
                raise bad(d.source, None, None, None, "has no camera name while others do: give NAME=PATH for every "
                          "camera")
            if n not in names:
                raise bad(d.source, n, None, None, f"no such camera in rig {rig.name!r}; its cameras: "
                          f"{', '.join(names)}")
            if n in by_camera:
                raise bad(d.source, n, None, None, f"a second file for this camera (the first: {by_camera[n].source})")
            by_camera[n] = d
        missing = [n for n in names if n not in by_camera]
        if missing:
            raise ValueError(f"rig {rig.name!r}: no detections for camera {missing[0]!r}"
                             f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; cameras with "
                             f"detections: {', '.join(n for n in names if n in by_camera)}")
    cameras = [by_camera[n] for n in names]
    frames, rows = _match(cameras, names, match)
    if not frames:
        raise ValueError(f"the detections of rig {rig.name!r} hold no frames")
    notes = [note for cam in cameras for note in cam.notes]
    for v, cam in enumerate(cameras):
        if isinstance(cam, CameraKeypoints):
            notes += _check_inside(cam, rig, v) + _empty_frames(cam, names[v])
        lacking = int((rows[v] < 0).sum())
        if lacking:
            notes.append(f"camera {names[v]!r}: no frame for {lacking} of the {len(frames)} frames matched by name")
    return Recording(rig, frames, cameras, rows, notes)
