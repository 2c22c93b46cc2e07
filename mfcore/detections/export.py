"""The book's own 2D detections of a rig written in every format the readers take: what a detector on your cameras
would hand over. The round trip (write, then read back through ``python -m mfbook.lift``) tests the readers, the
pixel conventions and the frame matching against the book's internal pipeline (``tools/lift_roundtrip.py``,
``tests/test_lift.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import metrics, studio
from .coco import write_coco
from .conventions import from_h36m
from .heatmaps import write_book_heatmaps, write_heatmaps
from .openpose import write_openpose
from .views import sensor_window, view_to_sensor_px, window_box_px

# format → (writer kind, layout of the keypoints written)
FORMATS = {"coco": ("coco", "h36m17"), "openpose": ("openpose", "h36m17"), "heatmaps": ("heatmaps", "h36m17"),
           "book": ("book", "h36m17"), "coco17": ("coco", "coco17"), "body25": ("openpose", "body25")}


def view_peaks(heatmaps: torch.Tensor, rig: studio.Rig) -> tuple[np.ndarray, np.ndarray]:
    """The maxima of view heatmaps (N, V, 17, h, h) in every camera's sensor pixels (N, V, 17, 2), as the book reads
    them (:func:`mfcore.metrics.heatmap_peaks_px`), and their values (N, V, 17): a detector's keypoints and scores."""
    peaks = metrics.heatmap_peaks_px(heatmaps, rig.image_px).double().cpu().numpy()
    for v in range(rig.num_views):
        peaks[:, v] = view_to_sensor_px(peaks[:, v], sensor_window(rig, v)[0], rig.image_px)
    return peaks, heatmaps.flatten(-2).amax(-1).double().cpu().numpy()


def frame_names(rig: studio.Rig, v: int, n: int) -> list[str]:
    """Frame names as a video dump of camera ``v`` would have them: ``<camera>_000123``."""
    return [f"{rig.cameras[v].name}_{i:06d}" for i in range(n)]


def export(heatmaps: torch.Tensor, rig: studio.Rig, folder, formats=tuple(FORMATS)) -> dict[str, list[str]]:
    """Write the view heatmaps (N, V, 17, h, h) of ``rig`` (its views at the heatmaps' image size) in each of
    ``formats`` under ``folder``; returns {format: the DETECTIONS arguments of ``python -m mfbook.lift``} (NAME=PATH
    per camera, or the one book file). Keypoints are the heatmaps' maxima with their values as scores."""
    folder = Path(folder)
    xy, score = view_peaks(heatmaps, rig)
    hm = heatmaps.detach().cpu().numpy()
    n, names, out = hm.shape[0], [c.name for c in rig.cameras], {}
    for fmt in formats:
        kind, layout = FORMATS[fmt]
        if kind == "book":
            out[fmt] = [str(write_book_heatmaps(folder / fmt / "heatmaps.npz", hm, rig))]
            continue
        args = []
        for v, name in enumerate(names):
            frames = frame_names(rig, v, n)
            if kind == "heatmaps":
                window, size = sensor_window(rig, v)
                whole = window == (0, 0, size[0]) and size[0] == size[1]  # the view is the whole (square) image
                path = write_heatmaps(folder / fmt / f"{name}.npy", hm[:, v]) if whole else \
                    write_heatmaps(folder / fmt / f"{name}.npz", hm[:, v], window_box_px(window), "h36m17", frames)
            else:
                kxy, ks = from_h36m(xy[:, v], score[:, v], layout)
                path = write_coco(folder / fmt / f"{name}.json", kxy, ks, [f"{f}.jpg" for f in frames], layout) \
                    if kind == "coco" else write_openpose(folder / fmt / name, kxy, ks, frames)
            args.append(f"{name}={path}")
        out[fmt] = args
    return out
