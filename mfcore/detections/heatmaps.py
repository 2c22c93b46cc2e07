"""Heatmap files (conventions: :mod:`.conventions`):

- a detector's heatmaps of one camera: ``.npy`` of shape (frames, joints, H, W) over the whole sensor image, or
  ``.npz`` with ``heatmaps`` (frames, joints, H, W) and optionally ``box_px`` (4,) or (frames, 4) — the sensor pixel
  box the heatmaps cover, outer edges (x0, y0, x1, y1) —, ``layout`` (a name of
  :data:`~mfcore.detections.conventions.LAYOUTS`) or ``joint_names``, and ``frame_names``; ``.npy`` files are
  memory-mapped, so a long recording is read frame block by frame block;
- the book's own heatmaps of every camera of a rig: ``.npz`` with ``heatmaps`` (frames, views, 17, h, h) in the
  rig's square views, ``camera_names`` (views,) and ``box_px`` (views, 4) (each view's window in its sensor), as
  :func:`write_book_heatmaps` writes them.

Without ``layout`` or ``joint_names``, 25 channels are BODY_25, 18 COCO-18; 17 channels could be COCO-17 or the
book's H36M-17, so the reader asks (``layout=``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import studio
from ..files import atomic_write_bytes
from .conventions import LAYOUTS, bad, check_layout, layout_of_count, layout_of_names
from .views import sensor_window, window_box_px

SUFFIXES = (".npy", ".npz")


@dataclass
class CameraHeatmaps:
    """One camera's heatmaps as a file holds them: ``heatmaps`` (N, J, H, W) of ``layout`` (an array or a memory
    map), ``box_px`` the sensor pixel box they cover, (4,) or (N, 4) outer edges, or None for the whole image."""

    source: str
    frames: list[str]
    heatmaps: np.ndarray
    box_px: np.ndarray | None
    layout: str
    camera: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def _text(value) -> str:
    return str(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size == 1 else str(value)


def _layout(npz: dict, joints: int, source, camera, given) -> str:
    if given is None and "layout" in npz:
        given = _text(npz["layout"])
    if given is None and "joint_names" in npz:
        given = layout_of_names([str(n) for n in np.asarray(npz["joint_names"]).reshape(-1)], source)
    return layout_of_count(joints, source, camera, None, "heatmaps", given)


def _box(value, frames: int, source, camera) -> np.ndarray:
    box = np.asarray(value, dtype=np.float64)
    if box.shape not in ((4,), (frames, 4)):
        raise bad(source, camera, None, "box_px", f"must be (4,) or (frames={frames}, 4) outer edges x0, y0, x1, y1 "
                  f"in sensor pixels, got shape {list(box.shape)}")
    if not np.isfinite(box).all() or (box[..., 2] <= box[..., 0]).any() or (box[..., 3] <= box[..., 1]).any():
        raise bad(source, camera, None, "box_px", "must be finite with x1 > x0 and y1 > y0")
    return box


def _frames(npz: dict, n: int, source, camera) -> list[str]:
    if "frame_names" not in npz:
        return [str(i) for i in range(n)]
    names = [str(v) for v in np.asarray(npz["frame_names"]).reshape(-1)]
    if len(names) != n:
        raise bad(source, camera, None, "frame_names", f"{len(names)} names for {n} frames of heatmaps")
    return names


def is_book_heatmaps(path) -> bool:
    """Whether ``path`` is the book's own multi-camera heatmaps file (an ``.npz`` with ``camera_names``)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "camera_names" in z.files
    except (OSError, ValueError):
        return False


def read_heatmaps(path, camera: str | None = None, layout: str | None = None) -> CameraHeatmaps:
    """One camera's heatmap file (``.npy`` or ``.npz``) → :class:`CameraHeatmaps` (shape, layout and box checked;
    values are checked block by block as they are read)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise bad(path, camera, None, None, f"unknown suffix {path.suffix!r} for heatmaps; allowed: "
                  f"{', '.join(SUFFIXES)}")
    if not path.is_file():
        raise bad(path, camera, None, None, "does not exist")
    try:
        if path.suffix.lower() == ".npy":
            npz, hm = {}, np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                npz = {k: z[k] for k in z.files}
            if "heatmaps" not in npz:
                raise bad(path, camera, None, "heatmaps", f"missing; the file holds {sorted(npz)}")
            hm = npz["heatmaps"]
    except (OSError, ValueError) as err:
        raise bad(path, camera, None, None, f"cannot be read as numpy arrays: {err}") from None
    if hm.ndim != 4 or min(hm.shape[2:]) < 2 or hm.dtype.kind != "f":
        raise bad(path, camera, None, "heatmaps", f"must be float (frames, joints, H, W) with H, W >= 2, got "
                  f"{hm.dtype} of shape {list(hm.shape)}")
    n = hm.shape[0]
    box = _box(npz["box_px"], n, path, camera) if "box_px" in npz else None
    return CameraHeatmaps(str(path), _frames(npz, n, path, camera), hm, box, _layout(npz, hm.shape[1], path, camera,
                                                                                         layout), camera)


def read_book_heatmaps(path) -> list[CameraHeatmaps]:
    """The book's own heatmaps of every camera (:func:`write_book_heatmaps`) → one :class:`CameraHeatmaps` per
    camera, in the file's order."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        npz = {k: z[k] for k in z.files}
    for key in ("heatmaps", "box_px"):
        if key not in npz:
            raise bad(path, None, None, key, "missing from the book's heatmaps file")
    hm, names = npz["heatmaps"], [str(v) for v in npz["camera_names"].reshape(-1)]
    if hm.ndim != 5 or hm.shape[1] != len(names) or npz["box_px"].shape != (len(names), 4):
        raise bad(path, None, None, "heatmaps", f"must be (frames, views={len(names)}, joints, h, w) with box_px "
                  f"(views, 4), got {list(hm.shape)} and {list(npz['box_px'].shape)}")
    layout = _layout(npz, hm.shape[2], path, None, None)
    frames = _frames(npz, hm.shape[0], path, None)
    return [CameraHeatmaps(str(path), frames, hm[:, v], _box(npz["box_px"][v], hm.shape[0], path, name), layout, name)
            for v, name in enumerate(names)]


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_heatmaps(path, heatmaps, box_px=None, layout: str | None = None, frames=None) -> Path:
    """One camera's heatmaps (N, J, H, W): ``.npy`` (the array alone: the whole image, layout by count) or ``.npz``
    with ``box_px``, ``layout`` and ``frame_names`` where given. Written atomically."""
    path = Path(path)
    hm = np.ascontiguousarray(np.asarray(heatmaps, dtype=np.float32))
    if path.suffix.lower() == ".npy":
        if box_px is not None or layout is not None or frames is not None:
            raise ValueError(f"{str(path)!r}: an .npy file holds the array alone; write box, layout or frame names "
                             f"to an .npz")
        buf = io.BytesIO()
        np.save(buf, hm)
        return atomic_write_bytes(path, buf.getvalue())
    arrays = {"heatmaps": hm}
    if box_px is not None:
        arrays["box_px"] = np.asarray(box_px, dtype=np.float64)
    if layout is not None:
        arrays["layout"] = np.array(check_layout(layout))
    if frames is not None:
        arrays["frame_names"] = np.array([str(f) for f in frames])
    return atomic_write_bytes(path, _npz_bytes(arrays))


def write_book_heatmaps(path, heatmaps, rig: studio.Rig, frames=None) -> Path:
    """The book's heatmaps of every view of ``rig`` (N, V, 17, h, h) (the backbone's, or fused) as one ``.npz`` that
    :func:`read_book_heatmaps` and ``python -m mfbook.lift`` read: the heatmaps, the camera names and each view's
    window in its sensor (``box_px``)."""
    hm = np.asarray(heatmaps.detach().cpu() if hasattr(heatmaps, "detach") else heatmaps, dtype=np.float32)
    if hm.ndim != 5 or hm.shape[1] != rig.num_views or hm.shape[2] != len(LAYOUTS["h36m17"]):
        raise ValueError(f"heatmaps must be (frames, views={rig.num_views}, 17, h, w), got {list(hm.shape)}")
    arrays = {"heatmaps": hm, "camera_names": np.array([c.name for c in rig.cameras]), "layout": np.array("h36m17"),
              "box_px": np.stack([window_box_px(sensor_window(rig, v)[0]) for v in range(rig.num_views)])}
    if frames is not None:
        arrays["frame_names"] = np.array([str(f) for f in frames])
    return atomic_write_bytes(Path(path), _npz_bytes(arrays))
