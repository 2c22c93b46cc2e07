"""Camera rigs of the synthetic capture studio: a Panoptic-like dome, an H36M-like 4-camera room (placement jittered per
subject), a Total-Capture-like 8-camera ring, and any rig a user describes in a YAML or JSON file.

Every built-in camera is a real **sensor** (:class:`Sensor`: an image of :data:`H36M_SENSOR_SIZE`,
:data:`DOME_SENSOR_SIZE` or :data:`TOTALCAPTURE_SENSOR_SIZE` pixels, as Human3.6M's, Panoptic HD's and Total Capture's
cameras) pointed and focused so that the whole **capture volume** (a vertical cylinder of radius
:data:`VOLUME_RADIUS_M` and height :data:`VOLUME_HEIGHT_M` standing on the floor, z = 0, at the world origin) is in
its image. The network sees a **person-centred view** of it (:func:`person_view`): the fixed square window of the
sensor image around the **person volume** (radius :data:`PERSON_VOLUME_RADIUS_M`, height
:data:`PERSON_VOLUME_HEIGHT_M`), where :func:`mfcore.motion.sample_poses` places the person (within
:data:`mfcore.motion.CAPTURE_RADIUS_M` of the origin). The person then fills the 256² view as an H36M crop does
(chapter 2's ``framing.csv``), yet the window is *fixed*: the cameras never move with the person, so the epipolar
geometry between two views' pixels is fixed, as NaiveFuse and MetaFuse assume (Sec. 3 of MetaFuse). Per-frame crops
around the person (the Cross View Fusion code's way) would change the pixel-to-pixel geometry with every crop, so a
fixed per-pair weight matrix could only be an average over crops.

All rigs' views are defined at :data:`REFERENCE_IMAGE_PX`; call ``rig.at_resolution(profile.studio.image_px)``.
A camera read from a file keeps its real sensor (any image size w × h, distortion terms); the studio renders a square
*virtual* view of it (:func:`square_view`: same R, t; a square window of the real image around the whole capture
volume), so real sensors of mixed sizes work; for a square sensor without distortion terms the virtual camera is the
camera itself and the rig has no sensors (the view is its own sensor). Rigs are built deterministically: each rig has
its own fixed seed in this file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write_bytes
from .geometry import Camera, look_at_camera, scale_pixels, stack_projections
from .motion import CAPTURE_RADIUS_M

VOLUME_RADIUS_M = 1.2
VOLUME_HEIGHT_M = 2.1
REFERENCE_IMAGE_PX = 256

# The person volume every built-in view is framed on: the disc where the person's pelvis is placed
# (mfcore.motion.CAPTURE_RADIUS_M), from the floor to PERSON_VOLUME_HEIGHT_M. Chosen from computed numbers only
# (tools/framing_radii.py prints them for candidate radii; no method's accuracy was looked at): on the H36M-like rig
# at the full profile the person's joints must span >= 0.6 of the 256² view (person_extent_fraction) and one 64²
# heatmap pixel must be <= 35 mm at the pelvis (mm_per_heatmap_px). With a 0.3 m placement disc: height 1.9 m gives
# 0.67 and 31.5 mm (2.1 m: 0.61 and 35.0 mm, at the limit; 1.8 m: 0.70 and 29.8 mm, but 1.3 % of joints out of view).
# The window's height is set by the height of the volume seen from ~4.7 m, so the height is the binding choice:
# 1.9 m holds a standing person's head top (95th percentile of the test poses: 1.84 m); raised wrists and jumps may
# leave the view now and then (joints outside the image do not count in JDR).
PERSON_VOLUME_RADIUS_M = CAPTURE_RADIUS_M
PERSON_VOLUME_HEIGHT_M = 1.9

H36M_SENSOR_SIZE = (1000, 1000)  # (w, h) pixels, as Human3.6M's cameras
DOME_SENSOR_SIZE = (1920, 1080)  # as Panoptic's HD cameras
TOTALCAPTURE_SENSOR_SIZE = (1920, 1080)

DOME_NUM_CAMERAS = 26
DOME_TRAIN_VIEWS: tuple[int, ...] = tuple(range(20))  # 20 views → 380 ordered pairs for meta-training
DOME_HELDOUT_VIEWS: tuple[int, ...] = tuple(range(20, 26))  # never seen in training

H36M_TRAIN_SUBJECTS: tuple[int, ...] = (1, 5, 6, 7, 8)
H36M_TEST_SUBJECTS: tuple[int, ...] = (9, 11)
H36M_SUBJECTS = H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS

RIG_NAMES = ("dome", "h36m", "h36m_s<subject>", "totalcapture")
ROTATION_TOLERANCE = 1e-4  # max |RᵀR − I| entry accepted from a rig file

_DOME_SEED, _H36M_SEED, _TOTALCAPTURE_SEED = 20200613, 20170722, 20170904


@dataclass(frozen=True)
class Sensor:
    """A real camera's image as calibrated, beside the square view the studio renders of it.

    ``K`` (3, 3) pixels of the undistorted pinhole, pixel centres at integers; ``image_size`` (w, h) pixels;
    ``dist`` OpenCV-order distortion terms (k1, k2, p1, p2[, k3[, k4, k5, k6]]), kept but not rendered;
    ``window_px`` (x0, y0, side): the square view's top-left pixel centre and side in real pixels, so a real pixel x
    is at ``scale_pixels(x - (x0, y0), side, view_px)`` in the view at ``view_px`` (:meth:`view_px_of`).
    """

    K: torch.Tensor
    image_size: tuple[int, int]
    dist: tuple[float, ...] = ()
    window_px: tuple[int, int, int] = (0, 0, 0)

    def view_px_of(self, x_px: torch.Tensor, view_px: int) -> torch.Tensor:
        """Real-image pixels (..., 2) → pixels of the square view at ``view_px`` (crop, then scale)."""
        x0, y0, side = self.window_px
        return scale_pixels(x_px - torch.tensor([x0, y0], dtype=x_px.dtype), side, view_px)

    def px_per_view_px(self, view_px: int) -> float:
        """Real-image pixels per pixel of the square view at ``view_px``: window side / ``view_px``."""
        return self.window_px[2] / view_px


@dataclass(frozen=True)
class Rig:
    """A named set of calibrated cameras (views) looking at the capture volume.

    ``cameras`` are the square views the studio renders; ``sensors`` (empty, or one per camera) the real images they
    come from (every built-in rig; a rig file with non-square sizes or distortion terms). Without sensors each view is
    its own sensor at the size the rig defined it (``defined_px``, kept through :meth:`at_resolution`)."""

    name: str
    cameras: list[Camera]
    sensors: tuple[Sensor, ...] = ()
    defined_px: tuple[int, ...] = ()  # each view's side as defined (before at_resolution); () = the cameras' own

    @property
    def num_views(self) -> int:
        return len(self.cameras)

    @property
    def image_px(self) -> int:
        sides = {c.image_px for c in self.cameras}
        if len(sides) > 1:
            raise ValueError(f"rig {self.name!r}: views of different sizes {sorted(sides)}; call rig.at_resolution(n)")
        return self.cameras[0].image_px

    def projections(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """P = K [R | t] of every view, (V, 3, 4)."""
        return stack_projections(self.cameras, dtype=dtype, device=device)

    def focal_px(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """Mean focal length of every view in pixels, (V,)."""
        return torch.stack([0.5 * (c.K[0, 0] + c.K[1, 1]) for c in self.cameras]).to(dtype=dtype, device=device)

    def sensor_px_per_view_px(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """Sensor pixels per view pixel of every view, (V,): the window side over the view side (a real image's
        pixels are what the Cross View Fusion code thresholds JDR in, :mod:`mfcore.metrics`). A rig without sensors
        is its own sensor: the side it was defined at (a rig file's image size) over the view side."""
        if self.sensors:
            scale = [s.px_per_view_px(c.image_px) for s, c in zip(self.sensors, self.cameras)]
        else:
            defined = self.defined_px or tuple(c.image_px for c in self.cameras)
            scale = [d / c.image_px for d, c in zip(defined, self.cameras)]
        return torch.tensor(scale, dtype=torch.float64).to(dtype=dtype, device=device)

    def centers_m(self) -> torch.Tensor:
        """Camera centres in world metres, (V, 3) float64."""
        return torch.stack([c.center_m() for c in self.cameras])

    def subset(self, indices) -> "Rig":
        """The rig of the views ``indices`` (in that order); the name records them."""
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < self.num_views]
        if bad or not idx:
            raise ValueError(f"rig {self.name!r}: view indices must be a non-empty list in [0, {self.num_views - 1}], "
                             f"got {idx}")
        sensors = tuple(self.sensors[i] for i in idx) if self.sensors else ()
        defined = tuple(self.defined_px[i] for i in idx) if self.defined_px else ()
        return Rig(f"{self.name}[{','.join(map(str, idx))}]", [self.cameras[i] for i in idx], sensors, defined)

    def at_resolution(self, image_px: int) -> "Rig":
        """The same windows imaged at ``image_px`` pixels (intrinsics rescaled)."""
        if not (isinstance(image_px, int) and image_px > 0):
            raise ValueError(f"image_px must be a positive int, got {image_px!r}")
        if all(c.image_px == image_px for c in self.cameras):
            return self
        defined = self.defined_px or (() if self.sensors else tuple(c.image_px for c in self.cameras))
        return replace(self, cameras=[c.at_resolution(image_px) for c in self.cameras], defined_px=defined)


# ----------------------------------------------------------------------------------------------------------------------
# the capture volume and the fixed window of each camera


def volume_outline_m(n_azimuth: int = 72, radius_m: float = VOLUME_RADIUS_M,
                     height_m: float = VOLUME_HEIGHT_M) -> torch.Tensor:
    """Points on the rims of a cylinder on the floor at the origin (default: the capture volume), bottom and top
    circles, (2·n_azimuth, 3) float64.

    The cylinder is convex, so its image is the convex hull of its two rims' images (when it is in front of the camera).
    """
    phi = torch.arange(n_azimuth, dtype=torch.float64) * (2 * math.pi / n_azimuth)
    ring = torch.stack([radius_m * phi.cos(), radius_m * phi.sin()], dim=-1)
    bottom = torch.cat([ring, torch.zeros(n_azimuth, 1, dtype=torch.float64)], dim=-1)
    top = torch.cat([ring, torch.full((n_azimuth, 1), float(height_m), dtype=torch.float64)], dim=-1)
    return torch.cat([bottom, top])


def person_outline_m(n_azimuth: int = 72) -> torch.Tensor:
    """Points on the rims of the person volume (:data:`PERSON_VOLUME_RADIUS_M`, :data:`PERSON_VOLUME_HEIGHT_M`)."""
    return volume_outline_m(n_azimuth, PERSON_VOLUME_RADIUS_M, PERSON_VOLUME_HEIGHT_M)


def volume_in_view(camera: Camera, image_size=None, K=None) -> tuple[float, float]:
    """(fraction of the capture-volume outline in front of the camera and inside its image, min depth in metres).

    The image is ``camera``'s square one, or a real sensor's: ``image_size`` (w, h) with intrinsics ``K``."""
    X = volume_outline_m()
    x_cam = X @ camera.R.T + camera.t
    z = x_cam[:, 2]
    x = (x_cam @ (camera.K if K is None else K).T)
    uv = x[:, :2] / x[:, 2:3]
    w, h = image_size or (camera.image_px, camera.image_px)
    hi = torch.tensor([w - 0.5, h - 0.5], dtype=uv.dtype)
    inside = (z > 0) & (uv >= -0.5).all(-1) & (uv <= hi).all(-1)
    return float(inside.double().mean()), float(z.min())


def square_view(K, R, t, image_size, name: str = "") -> tuple[Camera, tuple[int, int, int]]:
    """The square virtual view the studio renders of a real w × h camera, and its window (x0, y0, side) in real pixels.

    Same R, t; K' = K − (x0, y0) offset of the principal point (scale 1; ``at_resolution`` scales later). The window
    is the image's shorter side, enlarged to the capture volume's projected extent when that is larger, centred on the
    volume's projection and kept inside the image where it fits; x0, y0 are integers so pixel centres stay integers.
    A square image is its own window: the view is the camera itself.
    """
    w, h = (int(s) for s in image_size)
    K = torch.as_tensor(K, dtype=torch.float64)
    if w == h:
        return Camera(K, R, t, w, name), (0, 0, w)
    unit = Camera(K, R, t, 1, name)
    x = _project_px(unit, volume_outline_m())
    lo, hi = x.min(0).values, x.max(0).values
    side = max(min(w, h), math.ceil(float((hi - lo).max())) + 1)
    corner = []
    for c, size in zip(((lo + hi) / 2).tolist(), (w, h)):
        start = round(c - (side - 1) / 2)
        corner.append(min(max(start, 0), size - side) if side <= size else (size - side) // 2)
    x0, y0 = corner
    shift = torch.tensor([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Camera(shift @ K, R, t, side, name), (x0, y0, side)


def person_view(K, R, t, image_size, name: str = "", view_px: int = REFERENCE_IMAGE_PX,
                outline_m: torch.Tensor | None = None) -> tuple[Camera, Sensor]:
    """The person-centred square view of a real w × h sensor (K, R, t), at ``view_px``, and the sensor.

    The window (x0, y0, side) is the smallest square of integer corner that holds the projection of ``outline_m``
    (default: the person volume, :func:`person_outline_m`), centred on it and kept inside the image where it fits; the
    view is that window scaled to ``view_px``: K' = A (K − (x0, y0) offset) with A the scaling of
    :meth:`mfcore.geometry.Camera.at_resolution`, same R, t. So a 3D point projects through the view's camera exactly
    where crop-then-scale puts its sensor pixel (:meth:`Sensor.view_px_of`)."""
    w, h = (int(s) for s in image_size)
    K = torch.as_tensor(K, dtype=torch.float64)
    outline = person_outline_m() if outline_m is None else outline_m
    x_cam = outline @ torch.as_tensor(R, dtype=torch.float64).T + torch.as_tensor(t, dtype=torch.float64)
    if (x_cam[:, 2] <= 0).any():
        raise ValueError(f"camera {name!r}: the person volume is not in front of the camera")
    x = _project_px(Camera(K, R, t, 1, name), outline)
    lo, hi = x.min(0).values, x.max(0).values
    side = math.ceil(float((hi - lo).max())) + 1
    if side > min(w, h):
        raise ValueError(f"camera {name!r}: the person volume spans {side} px, more than the {w}×{h} image")
    x0, y0 = (min(max(round(c - (side - 1) / 2), 0), size - side) for c, size in zip(((lo + hi) / 2).tolist(), (w, h)))
    shift = torch.tensor([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    view = Camera(shift @ K, R, t, side, name).at_resolution(int(view_px))
    return view, Sensor(K, (w, h), (), (int(x0), int(y0), int(side)))


def framed_sensor(position_m, target_m, image_size, fill: float, name: str = "") -> tuple[torch.Tensor, Camera]:
    """A real sensor of ``image_size`` (w, h) at ``position_m`` looking at ``target_m``, focused so that the capture
    volume spans ``fill`` of the half-image in its tighter direction (the whole volume in the image, as
    :func:`framed_camera` for a square image). Returns K (3, 3) and the camera (R, t; ``image_px`` 1, unused)."""
    w, h = (int(s) for s in image_size)
    unit = look_at_camera(position_m, target_m, 1.0, 1, name)
    x_cam = volume_outline_m() @ unit.R.T + unit.t
    if (x_cam[:, 2] <= 0.05).any():
        raise ValueError(f"camera {name!r} at {list(map(float, position_m))} is inside or beside the capture volume")
    extent = (x_cam[:, :2] / x_cam[:, 2:3]).abs().max(0).values
    focal = fill * min((w / 2.0) / float(extent[0]), (h / 2.0) / float(extent[1]))
    K = torch.tensor([[focal, 0.0, (w - 1) / 2.0], [0.0, focal, (h - 1) / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return K, unit


def _sensor_rig(name: str, poses, image_size) -> Rig:
    """A built-in rig from (position, target, fill, camera name) per camera: real sensors of ``image_size`` and
    their person-centred views (:func:`person_view`) at :data:`REFERENCE_IMAGE_PX`."""
    cams, sensors = [], []
    for position, target, fill, cam_name in poses:
        K, unit = framed_sensor(position, target, image_size, fill, cam_name)
        view, sensor = person_view(K, unit.R, unit.t, image_size, cam_name)
        cams.append(view)
        sensors.append(sensor)
    return Rig(name, cams, tuple(sensors))


def _project_px(camera: Camera, X: torch.Tensor) -> torch.Tensor:
    """Pixels (N, 2) of world points X (N, 3) metres in ``camera`` (any image size)."""
    x = (X @ camera.R.T + camera.t) @ camera.K.T
    return x[:, :2] / x[:, 2:3]


def sees_volume(camera: Camera) -> bool:
    """True when the whole capture volume is in front of ``camera`` and inside its image."""
    fraction, z_min = volume_in_view(camera)
    return fraction == 1.0 and z_min > 0


def framed_camera(position_m, target_m, image_px: int = REFERENCE_IMAGE_PX, fill: float = 0.92,
                  name: str = "") -> Camera:
    """A camera at ``position_m`` looking at ``target_m`` whose focal length makes the capture volume span ``fill``
    of the half-image in the most extended direction (so the whole volume stays in view)."""
    unit = look_at_camera(position_m, target_m, 1.0, image_px, name)
    x_cam = volume_outline_m() @ unit.R.T + unit.t
    if (x_cam[:, 2] <= 0.05).any():
        raise ValueError(f"camera {name!r} at {list(map(float, position_m))} is inside or beside the capture volume")
    extent = (x_cam[:, :2] / x_cam[:, 2:3]).abs().max()
    focal = fill * (image_px / 2.0) / float(extent)
    return look_at_camera(position_m, target_m, focal, image_px, name)


# ----------------------------------------------------------------------------------------------------------------------
# built-in rigs


def dome_rig() -> Rig:
    """A Panoptic-like dome: 26 cameras on a dome at varied heights (0.4-3.6 m) and distances (2.6-4.4 m).

    Views 0-19 (:data:`DOME_TRAIN_VIEWS`, 380 ordered pairs) are for meta-training; views 20-25
    (:data:`DOME_HELDOUT_VIEWS`) are spread around the dome and never seen in training.
    """
    rng = np.random.default_rng(_DOME_SEED)
    n = DOME_NUM_CAMERAS
    # golden-angle azimuths spread the cameras evenly around; heights and distances vary per camera
    azimuth = (np.arange(n) * math.pi * (3 - math.sqrt(5)) + rng.uniform(-0.15, 0.15, n)) % (2 * math.pi)
    height = rng.uniform(0.4, 3.6, n)
    distance = rng.uniform(2.6, 4.4, n)
    fill = rng.uniform(0.78, 0.95, n)
    poses = []
    for i in range(n):
        pos = (distance[i] * math.cos(azimuth[i]), distance[i] * math.sin(azimuth[i]), height[i])
        target = (rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), 0.5 * VOLUME_HEIGHT_M + rng.uniform(-0.15, 0.15))
        poses.append((pos, target, float(fill[i]), f"dome{i:02d}"))
    return _sensor_rig("dome", poses, DOME_SENSOR_SIZE)


def h36m_rig(subject: int) -> Rig:
    """An H36M-like room: 4 cameras near the room's corners at 1.5-1.9 m, looking at the volume; each subject's
    session jitters the placement (±0.2 m, ±0.1 m in height, aim ±0.1 m), as the real H36M calibrations differ per
    subject. Subjects 1, 5, 6, 7, 8 are for training; 9 and 11 for testing."""
    if isinstance(subject, bool) or not isinstance(subject, (int, np.integer)) or int(subject) not in H36M_SUBJECTS:
        raise ValueError(f"unknown H36M subject {subject!r}; valid subjects: {', '.join(map(str, H36M_SUBJECTS))}")
    base = np.random.default_rng(_H36M_SEED)
    corner_azimuth = np.deg2rad([45.0, 135.0, 225.0, 315.0]) + base.uniform(-0.12, 0.12, 4)
    corner_distance = base.uniform(4.3, 5.0, 4)
    corner_height = base.uniform(1.5, 1.9, 4)
    rng = np.random.default_rng([_H36M_SEED, int(subject)])
    poses = []
    for i in range(4):
        d = corner_distance[i]
        pos = np.array([d * math.cos(corner_azimuth[i]), d * math.sin(corner_azimuth[i]), corner_height[i]])
        pos = pos + np.concatenate([rng.uniform(-0.2, 0.2, 2), rng.uniform(-0.1, 0.1, 1)])
        target = np.array([0.0, 0.0, 0.5 * VOLUME_HEIGHT_M]) + rng.uniform(-0.1, 0.1, 3)
        poses.append((tuple(pos), tuple(target), 0.93, f"h36m_s{int(subject)}_cam{i + 1}"))
    return _sensor_rig(f"h36m_s{int(subject)}", poses, H36M_SENSOR_SIZE)


def totalcapture_rig() -> Rig:
    """A Total-Capture-like ring: 8 cameras evenly around the room, 3.8-4.6 m away, alternating high (2.3-2.6 m)
    and low (1.1-1.5 m)."""
    rng = np.random.default_rng(_TOTALCAPTURE_SEED)
    poses = []
    for i in range(8):
        a = 2 * math.pi * i / 8 + rng.uniform(-0.08, 0.08)
        d = rng.uniform(3.8, 4.6)
        h = rng.uniform(2.3, 2.6) if i % 2 == 0 else rng.uniform(1.1, 1.5)
        target = (0.0, 0.0, 0.5 * VOLUME_HEIGHT_M + rng.uniform(-0.1, 0.1))
        poses.append(((d * math.cos(a), d * math.sin(a), h), target, 0.9, f"tc{i + 1}"))
    return _sensor_rig("totalcapture", poses, TOTALCAPTURE_SENSOR_SIZE)


def get_rig(name) -> Rig:
    """A rig by name: ``"dome"``, ``"h36m"`` (subject 1's placement), ``"h36m_s<subject>"`` (e.g. ``"h36m_s9"``),
    ``"totalcapture"``, or a path to a ``.yaml``/``.yml``/``.json`` rig file. A :class:`Rig` is returned as is."""
    if isinstance(name, Rig):
        return name
    if isinstance(name, Path) or (isinstance(name, str) and Path(name).suffix.lower() in _SUFFIXES):
        return load_rig(name)
    if name == "dome":
        return dome_rig()
    if name == "h36m":
        return h36m_rig(1)
    if name == "totalcapture":
        return totalcapture_rig()
    if isinstance(name, str) and name.startswith("h36m_s") and name[6:].isdigit():
        return h36m_rig(int(name[6:]))
    raise ValueError(f"unknown rig {name!r}; valid rigs: dome, h36m, "
                     f"{', '.join(f'h36m_s{s}' for s in H36M_SUBJECTS)}, totalcapture, or a path to a "
                     f"{'/'.join(_SUFFIXES)} rig file")


# ----------------------------------------------------------------------------------------------------------------------
# rig files

_SUFFIXES = (".yaml", ".yml", ".json")


def _camera_to_dict(c: Camera, sensor: Sensor | None) -> dict:
    if sensor is None:
        return {"name": c.name, "image_size": [c.image_px, c.image_px], "K": c.K.tolist(), "R": c.R.tolist(),
                "t": c.t.tolist()}
    d = {"name": c.name, "image_size": list(sensor.image_size), "K": sensor.K.tolist(), "R": c.R.tolist(),
         "t": c.t.tolist()}
    d = {**d, "dist": list(sensor.dist)} if sensor.dist else d
    w, h = sensor.image_size
    default = square_view(sensor.K, c.R, c.t, (w, h))[1]
    return d if tuple(sensor.window_px) == default else {**d, "window_px": list(sensor.window_px)}


def _rig_to_dict(rig: Rig) -> dict:
    """The rig file's mapping: the real sensors (size, K, dist) where the rig has them, else the square cameras."""
    sensors = rig.sensors or (None,) * rig.num_views
    return {"name": rig.name, "cameras": [_camera_to_dict(c, s) for c, s in zip(rig.cameras, sensors)]}


def rig_numbers(rig: Rig) -> dict:
    """A rig as the mapping of a rig file (exact float64 numbers)."""
    return {"name": rig.name,
            "cameras": [{"name": c.name, "image_px": c.image_px, "K": c.K.tolist(), "R": c.R.tolist(),
                         "t": c.t.tolist()} for c in rig.cameras]}


def rig_digest(rig: Rig) -> str:
    """sha256 of :func:`rig_numbers`: the same cameras give the same digest, any changed number another."""
    return hashlib.sha256(json.dumps(rig_numbers(rig), sort_keys=True).encode()).hexdigest()


def save_rig(rig: Rig, path) -> Path:
    """Write ``rig`` as YAML (``.yaml``/``.yml``) or JSON (``.json``): per camera name, image_size [w, h], K (3×3),
    R (3×3, world→camera rotation) and t (3, metres), with ``x_cam = R X + t``, and dist (OpenCV order) when the
    camera has distortion terms. A rig with real sensors is written as the sensors (not the square views), with
    ``window_px`` [x0, y0, side] where the view is not the default window (a built-in rig's person-centred view), so
    the views round-trip (at the window's side: ``at_resolution`` gives the size back). Floats round-trip exactly."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"rig file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: {', '.join(_SUFFIXES)}")
    data = _rig_to_dict(rig)
    if suffix == ".json":
        text = json.dumps(data, indent=2)
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())  # a failed write never leaves a half-written rig file
    return path


def _matrix(value, shape, what: str) -> np.ndarray:
    try:
        raw = np.asarray(value)
        arr = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers of shape {shape}, got {value!r}") from None
    if raw.dtype.kind not in "iuf":  # "1264.47" (text) or True would otherwise pass as a number
        raise ValueError(f"{what} must be real numbers, not {raw.dtype.kind == 'b' and 'booleans' or 'text'}: "
                         f"got {value!r} (write 1264.47, not \"1264.47\")")
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got shape {arr.shape}: {value!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} must be finite, got {arr.tolist()}")
    return arr


def _camera_from_dict(d, index: int, source: str) -> tuple[Camera, Sensor | None]:
    if not isinstance(d, dict):
        raise ValueError(f"rig file {source}: camera #{index} must be a mapping, got {d!r}")
    name = str(d.get("name", f"cam{index}"))
    where = f"rig file {source}: camera {name!r}"
    # image size: image_px (int, square) or image_size [w, h] (any real sensor)
    if "image_px" in d:
        size = d["image_px"]
        w = h = size
    elif "image_size" in d:
        size = d["image_size"]
        if isinstance(size, (list, tuple)) and len(size) == 2:
            w, h = size
        else:
            w = h = size
    else:
        raise ValueError(f"{where}: missing image size (give image_size: [w, h] or image_px: n)")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in (w, h)):
        raise ValueError(f"{where}: image size must be positive integers, got {size!r}")
    # intrinsics: K (3×3) or fx, fy, cx, cy
    if "K" in d:
        K = _matrix(d["K"], (3, 3), f"{where}: K")
    elif all(k in d for k in ("fx", "fy", "cx", "cy")):
        fx, fy, cx, cy = (_matrix(d[k], (), f"{where}: {k}") for k in ("fx", "fy", "cx", "cy"))
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    else:
        raise ValueError(f"{where}: missing intrinsics (give K: 3x3, or fx, fy, cx, cy)")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
        raise ValueError(f"{where}: K must be upper triangular with positive focal lengths and last row [0, 0, 1], "
                         f"got {K.tolist()}")
    if "R" not in d or "t" not in d:
        raise ValueError(f"{where}: missing extrinsics (give R: 3x3 world-to-camera rotation and t: 3 metres)")
    R = _matrix(d["R"], (3, 3), f"{where}: R")
    t = _matrix(d["t"], (3,), f"{where}: t")
    ortho_error = float(np.abs(R.T @ R - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if ortho_error > ROTATION_TOLERANCE or det <= 0:
        raise ValueError(f"{where}: R is not a rotation (max |RᵀR − I| = {ortho_error:.3g}, det R = {det:.4g}); "
                         f"allowed: orthonormal with det +1 (tolerance {ROTATION_TOLERANCE:g}). R = {R.tolist()}")
    raw_dist = d.get("dist") or []
    if not isinstance(raw_dist, (list, tuple)):
        raise ValueError(f"{where}: dist must be a list of numbers (k1, k2, p1, p2[, k3...]), got {raw_dist!r}")
    dist = tuple(_matrix(raw_dist, (len(raw_dist),), f"{where}: dist").tolist())
    if len(dist) not in (0, 4, 5, 8):
        raise ValueError(f"{where}: dist must be 4, 5 or 8 numbers (k1, k2, p1, p2[, k3[, k4, k5, k6]]), got {dist}")
    K, R, t = torch.from_numpy(K), torch.from_numpy(R), torch.from_numpy(t)
    fraction, z_min = volume_in_view(Camera(K, R, t, 1, name), (int(w), int(h)), K)  # the real image
    if fraction < 1.0 or z_min <= 0:
        centre = (-R.T @ t).tolist()
        raise ValueError(f"{where} does not see the whole capture volume (cylinder r = {VOLUME_RADIUS_M} m, "
                         f"h = {VOLUME_HEIGHT_M} m at the origin): only {100 * fraction:.1f}% of its outline is in the "
                         f"{int(w)}×{int(h)} image (nearest depth {z_min:.2f} m; camera centre "
                         f"{[round(c, 3) for c in centre]} m)")
    cam, window = square_view(K, R, t, (int(w), int(h)), name)
    if d.get("window_px") is not None:  # a fixed window of the image (a built-in rig's person-centred view)
        given = d["window_px"]
        ok = isinstance(given, (list, tuple)) and len(given) == 3 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in given)
        if not ok or given[2] < 1 or given[0] < 0 or given[1] < 0 or given[0] + given[2] > w or given[1] + given[2] > h:
            raise ValueError(f"{where}: window_px must be 3 integers [x0, y0, side] of a square inside the "
                             f"{int(w)}×{int(h)} image, got {given!r}")
        x0, y0, side = (int(v) for v in given)
        shift = torch.tensor([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        cam, window = Camera(shift @ K, R, t, side, name), (x0, y0, side)
    if w == h and not dist and window == (0, 0, w):
        return cam, None
    return cam, Sensor(K, (int(w), int(h)), dist, window)


def rig_from_dict(data, source: str = "<dict>") -> Rig:
    """A validated :class:`Rig` from a mapping ``{name, cameras: [{name, image_size, K | fx fy cx cy, R, t[, dist]},
    ...]}``. Image sizes may differ and need not be square: each camera's square view (:func:`square_view`) is what
    the studio renders, and :meth:`Rig.at_resolution` gives them one size."""
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise ValueError(f"rig file {source}: expected a mapping with a 'cameras' list, got {type(data).__name__}")
    pairs = [_camera_from_dict(d, i, source) for i, d in enumerate(data["cameras"])]
    cams = [c for c, _ in pairs]
    if len(cams) < 2:
        raise ValueError(f"rig file {source}: a rig needs at least 2 cameras, got {len(cams)}")
    names = [c.name for c in cams]
    if len(set(names)) != len(names):
        raise ValueError(f"rig file {source}: camera names must be unique, got {names}")
    sensors = ()
    if any(s is not None for _, s in pairs):  # keep every camera's real image beside its square view
        sensors = tuple(s or Sensor(c.K, (c.image_px, c.image_px), (), (0, 0, c.image_px)) for c, s in pairs)
    return Rig(str(data.get("name", Path(source).stem)), cams, sensors)


def load_rig(path) -> Rig:
    """Read and validate a rig file (YAML or JSON by suffix). Bad files raise ``ValueError`` naming the camera and
    value: fewer than 2 cameras, a non-rotation R, NaN/inf, a camera that does not see the capture volume, …"""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"rig file {str(path)!r}: unknown suffix {path.suffix!r}; allowed: {', '.join(_SUFFIXES)}")
    if not path.is_file():
        raise ValueError(f"rig file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:
        raise ValueError(f"rig file {str(path)!r} cannot be parsed: {err}") from None
    return rig_from_dict(data, source=str(path))
