"""Detections in the rig's views: a camera's real (sensor) pixels ↔ the square view the book fuses in
(:func:`mfcore.studio.square_view`: a fixed window of the sensor image, scaled), keypoints → the book's Gaussian
heatmaps, and a detector's heatmaps over any pixel box → the view's heatmap grid."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import data, metrics, studio
from ..geometry import scale_pixels
from .conventions import LAYOUTS, MAPPINGS, check_layout

Tensor = torch.Tensor


def sensor_window(rig: studio.Rig, view: int) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """((x0, y0, side) of the view's window in sensor pixels, (w, h) of the sensor image) of one camera. A rig
    without sensors is its own sensor at the size its file defined (``rig.defined_px``)."""
    if rig.sensors:
        s = rig.sensors[view]
        return tuple(int(v) for v in s.window_px), tuple(int(v) for v in s.image_size)
    side = int(rig.defined_px[view]) if rig.defined_px else rig.cameras[view].image_px
    return (0, 0, side), (side, side)


def window_box_px(window) -> np.ndarray:
    """The outer edges (x0, y0, x1, y1) in sensor pixels of a window (x0, y0, side) (pixel centres at integers)."""
    x0, y0, side = window
    return np.array([x0 - 0.5, y0 - 0.5, x0 + side - 0.5, y0 + side - 0.5])


def sensor_to_view_px(xy_px, window, view_px: int):
    """Sensor pixels (..., 2) → pixels of the square view at ``view_px`` (crop the window, then scale)."""
    x0, y0, side = window
    offset = torch.tensor([x0, y0], dtype=xy_px.dtype, device=xy_px.device) if isinstance(xy_px, Tensor) \
        else np.array([x0, y0], dtype=np.float64)
    return scale_pixels(xy_px - offset, side, view_px)


def view_to_sensor_px(xy_px, window, view_px: int):
    """Pixels of the square view at ``view_px`` (..., 2) → sensor pixels (the inverse of :func:`sensor_to_view_px`)."""
    x0, y0, side = window
    offset = torch.tensor([x0, y0], dtype=xy_px.dtype, device=xy_px.device) if isinstance(xy_px, Tensor) \
        else np.array([x0, y0], dtype=np.float64)
    return scale_pixels(xy_px, view_px, side) + offset


def keypoint_heatmaps(xy_hm_px: Tensor, score: Tensor, heatmap_px: int, sigma_px: float) -> Tensor:
    """The book's heatmaps of keypoints: ``score`` × the unit-peak Gaussian of σ = ``sigma_px`` (the backbone's
    training target, :func:`mfcore.data.gaussian_heatmaps`) at each keypoint; xy (..., J, 2) heatmap px, score
    (..., J) → (..., J, h, h). A missing joint (score 0) or one outside the heatmap is an all-zero map."""
    inside = ((xy_hm_px >= -0.5) & (xy_hm_px <= heatmap_px - 0.5)).all(-1)
    weight = torch.where(inside, score.float(), torch.zeros((), device=score.device))
    return data.gaussian_heatmaps(xy_hm_px, heatmap_px, sigma_px) * weight[..., None, None]


def _identity(box, window, shape, heatmap_px) -> bool:
    """Whether heatmaps of ``shape`` (H, W) over ``box`` are already the view's grid (no resampling needed)."""
    return tuple(shape) == (heatmap_px, heatmap_px) and np.allclose(box, window_box_px(window), rtol=0, atol=1e-9)


def resample_heatmaps(heatmaps: Tensor, box_px: np.ndarray, window, heatmap_px: int) -> Tensor:
    """A detector's heatmaps (n, J, H, W) over the sensor box (x0, y0, x1, y1) (outer edges; (4,) or one per frame
    (n, 4)) → the view's grid (n, J, h, h), bilinear; the view outside the box reads 0. Heatmaps that already are
    the view's grid are returned as they are (bit for bit)."""
    n, J, H, W = heatmaps.shape
    boxes = np.broadcast_to(np.asarray(box_px, dtype=np.float64), (n, 4))
    if all(_identity(b, window, (H, W), heatmap_px) for b in boxes[:1]) and (boxes == boxes[:1]).all():
        return heatmaps.float()
    x0, y0, side = window
    step = (np.arange(heatmap_px) + 0.5) * side / heatmap_px
    cx, cy = x0 - 0.5 + step, y0 - 0.5 + step  # sensor px of the view's pixel centres, (h,) each
    gx = 2.0 * (cx[None, :] - boxes[:, 0:1]) / (boxes[:, 2:3] - boxes[:, 0:1]) - 1.0  # (n, h): the box spans [-1, 1]
    gy = 2.0 * (cy[None, :] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]) - 1.0
    grid = torch.from_numpy(np.stack(np.broadcast_arrays(gx[:, None, :], gy[:, :, None]), -1)).float()  # (n, h, h, 2)
    return F.grid_sample(heatmaps.float(), grid.to(heatmaps.device), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def to_h36m_heatmaps(heatmaps: Tensor, layout: str, sigma_px: float) -> Tensor:
    """Heatmaps of ``layout`` (n, J, h, h) → the book's 17 joints (n, 17, h, h). A joint the layout has is its
    channel; a joint made of several (:data:`mfcore.detections.conventions.MAPPINGS`: pelvis = mid-hip, …) is a
    Gaussian of σ = ``sigma_px`` at the weighted mean of its sources' maxima (:func:`mfcore.metrics.heatmap_argmax_px`)
    with the smallest of their maxima as its peak (0 when a source is empty)."""
    names = LAYOUTS[check_layout(layout)]
    index = {name: k for k, name in enumerate(names)}
    out = []
    peaks = None
    for joint, sources in MAPPINGS[layout].items():
        if len(sources) == 1:
            out.append(heatmaps[:, index[next(iter(sources))]])
            continue
        if peaks is None:
            peaks = metrics.heatmap_argmax_px(heatmaps)  # (n, J, 2) heatmap px
            tops = heatmaps.flatten(-2).amax(-1).clamp(0.0, 1.0)  # (n, J)
        ks = [index[s] for s in sources]
        w = torch.tensor([sources[s] for s in sources], dtype=peaks.dtype, device=peaks.device)
        xy = (peaks[:, ks] * w[None, :, None]).sum(1)  # (n, 2)
        out.append(keypoint_heatmaps(xy[:, None], tops[:, ks].amin(1)[:, None], heatmaps.shape[-1], sigma_px)[:, 0])
    return torch.stack(out, 1)
