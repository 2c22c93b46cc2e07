"""Multi-view samples of the synthetic studio: images, Gaussian heatmap targets, 2D/3D joints, per-view visibility.

``make_multiview(rig, split, n_frames, profile, seed, device)`` draws real motion-capture poses
(:func:`mfcore.motion.sample_poses`) and renders them in every view of a rig (:mod:`mfcore.render`); the same
arguments give the same tensors. Heatmap coordinates: ``x_hm = scale_pixels(x_img, image_px, heatmap_px)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import pandas as pd
import torch

from . import motion, render, skeleton
from .geometry import depth, project, scale_pixels
from .profiles import Profile, device_name
from .studio import Rig, get_rig

Tensor = torch.Tensor


@dataclass
class MultiViewBatch:
    """B frames seen by V views."""

    images: Tensor  # (B, V, 3, H, W) float32 in [0, 1]
    heatmaps: Tensor  # (B, V, J, h, w) float32 Gaussian targets, peak 1 at the label
    joints_2d_px: Tensor  # (B, V, J, 2) image pixels (x right, y down; pixel centres at integers)
    visible: Tensor  # (B, V, J) bool: depth test passed and inside the image
    joints_3d_m: Tensor  # (B, J, 3) world metres, Z up
    projections: Tensor  # (V, 3, 4) at image resolution

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]

    @property
    def num_views(self) -> int:
        return self.images.shape[1]

    def to(self, device) -> "MultiViewBatch":
        return MultiViewBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def frames(self, index) -> "MultiViewBatch":
        """The frames ``index`` (slice or index tensor); projections are shared."""
        return MultiViewBatch(**{f.name: getattr(self, f.name) if f.name == "projections"
                                 else getattr(self, f.name)[index] for f in fields(self)})

    def views(self, indices) -> "MultiViewBatch":
        """The views ``indices`` (in that order)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.images.device)
        return MultiViewBatch(images=self.images[:, idx], heatmaps=self.heatmaps[:, idx],
                              joints_2d_px=self.joints_2d_px[:, idx], visible=self.visible[:, idx],
                              joints_3d_m=self.joints_3d_m,
                              projections=self.projections[idx.to(self.projections.device)])


def gaussian_factors(joints_hm_px: Tensor, heatmap_px: int, sigma_px: float) -> tuple[Tensor, Tensor]:
    """The separable factors of :func:`gaussian_heatmaps`: (gy (..., J, h), gx (..., J, w)) float32 with
    exp(−‖u − x‖² / 2σ²) = gy[v] · gx[u]; their outer product *is* the heatmap (the same float32 multiplication)."""
    if sigma_px <= 0:
        raise ValueError(f"heatmap sigma must be > 0 pixels, got {sigma_px!r}")
    grid = torch.arange(heatmap_px, device=joints_hm_px.device, dtype=torch.float32)
    gx = torch.exp(-(grid - joints_hm_px[..., 0:1].float()) ** 2 / (2 * sigma_px ** 2))  # (..., J, w)
    gy = torch.exp(-(grid - joints_hm_px[..., 1:2].float()) ** 2 / (2 * sigma_px ** 2))  # (..., J, h)
    return gy, gx


def gaussian_heatmaps(joints_hm_px: Tensor, heatmap_px: int, sigma_px: float) -> Tensor:
    """Gaussians exp(−‖u − x‖² / 2σ²) with peak 1 at each joint: (..., J, 2) heatmap px → (..., J, h, w)."""
    gy, gx = gaussian_factors(joints_hm_px, heatmap_px, sigma_px)
    return gy[..., :, None] * gx[..., None, :]


def _check_joints(joints_3d_m: Tensor) -> None:
    ok = isinstance(joints_3d_m, Tensor) and joints_3d_m.dim() == 3
    if not ok or joints_3d_m.shape[1:] != (skeleton.NUM_JOINTS, 3):
        shape = tuple(joints_3d_m.shape) if isinstance(joints_3d_m, Tensor) else type(joints_3d_m).__name__
        raise ValueError(f"joints_3d_m must be (B, {skeleton.NUM_JOINTS}, 3) metres, got {shape}")
    if not torch.isfinite(joints_3d_m).all():
        raise ValueError("joints_3d_m must be finite (found NaN or inf)")


def render_multiview(rig: Rig, joints_3d_m: Tensor, profile: Profile, seed: int, device,
                     chunk_frames: int | None = None) -> MultiViewBatch:
    """Render poses (B, J, 3) in every view of ``rig`` at ``profile.studio.image_px``, with heatmap targets at
    ``profile.studio.heatmap_px`` (σ = ``profile.studio.heatmap_sigma_px``), 2D labels and visibility.

    The scene of frame i (clothes, occluders, room, light) depends only on (seed, i). Frames are rendered
    ``chunk_frames`` at a time (default: as many as fit the renderer's memory budget); the result does not depend on it.
    """
    _check_joints(joints_3d_m)
    device = torch.device(device)
    sizes = profile.studio
    rig = get_rig(rig).at_resolution(sizes.image_px)
    X = joints_3d_m.to(device, torch.float32)
    K = torch.stack([c.K for c in rig.cameras]).float()
    R = torch.stack([c.R for c in rig.cameras]).float()
    t = torch.stack([c.t for c in rig.cameras]).float()
    scene = render.sample_scene(X, seed).to(device)
    images = render.render_images(scene, K.to(device), R.to(device), t.to(device), sizes.image_px, chunk_frames)

    return MultiViewBatch(images=images, **_labels(rig, X, scene, sizes))


def render_sequence(rig: Rig, joints_3d_m: Tensor, profile: Profile, seed: int, device,
                    chunk_frames: int | None = None) -> MultiViewBatch:
    """Render a contiguous sequence of poses (T, J, 3) as one video: every frame gets the scene draws of frame 0 of
    ``seed`` (the same clothes, room textures, light and occluder spots, placed clear of each frame's pelvis as
    :func:`mfcore.render.sample_scene` places them), rendered in batches like :func:`render_multiview`. Frame t of
    the result is :func:`render_multiview` of pose t alone with the same ``seed``."""
    _check_joints(joints_3d_m)
    device = torch.device(device)
    sizes = profile.studio
    rig = get_rig(rig).at_resolution(sizes.image_px)
    X = joints_3d_m.to(device, torch.float32)
    per_frame = [render.sample_scene(X[i:i + 1], seed) for i in range(X.shape[0])]
    scene = render.Scene(**{f.name: torch.cat([getattr(s, f.name) for s in per_frame]) for f in fields(render.Scene)})
    scene = scene.to(device)
    K = torch.stack([c.K for c in rig.cameras]).float().to(device)
    R = torch.stack([c.R for c in rig.cameras]).float().to(device)
    t = torch.stack([c.t for c in rig.cameras]).float().to(device)
    images = render.render_images(scene, K, R, t, sizes.image_px, chunk_frames)
    return MultiViewBatch(images=images, **_labels(rig, X, scene, sizes))


def make_multiview(rig_name_or_rig, split: str, n_frames: int, profile: Profile, seed: int, device,
                   batch_size: int | None = None) -> MultiViewBatch:
    """``n_frames`` multi-view samples of motion-capture poses of ``split`` ("train", "test" or "stress", :data:`mfcore.motion.SPLITS`) in a rig (name, path
    or :class:`Rig`), rendered in chunks of ``batch_size`` frames (default: as many as fit). Deterministic in seed:
    the result does not depend on ``batch_size``."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None or a positive int, got {batch_size!r}")
    rig = get_rig(rig_name_or_rig)
    joints, _ = motion.sample_poses(split, n_frames, seed)
    return render_multiview(rig, joints, profile, seed, device, chunk_frames=batch_size)


def iter_multiview(rig_name_or_rig, split: str, n_frames: int, profile: Profile, seed: int, device,
                   batch_size: int):
    """The batch of :func:`make_multiview` with the same arguments, yielded ``batch_size`` frames at a time (the same
    tensors, chunk by chunk), so that large sets (e.g. 20,000 frames at 256²) never sit in memory at once."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = torch.device(device)
    rig = get_rig(rig_name_or_rig).at_resolution(profile.studio.image_px)
    joints, _ = motion.sample_poses(split, n_frames, seed)
    scene = render.sample_scene(joints, seed)
    K, R, t = (torch.stack([getattr(c, a) for c in rig.cameras]).float().to(device) for a in ("K", "R", "t"))
    for s in range(0, n_frames, batch_size):
        X = joints[s:s + batch_size].to(device, torch.float32)
        part = scene.frames(slice(s, s + batch_size)).to(device)
        images = render.render_images(part, K, R, t, profile.studio.image_px)
        yield MultiViewBatch(images=images, **_labels(rig, X, part, profile.studio))


def _labels(rig: Rig, X: Tensor, scene, sizes) -> dict:
    """Heatmaps, 2D joints, visibility (depth test and inside the image), 3D joints and projections of a render."""
    P = rig.projections(device=X.device)  # (V, 3, 4)
    joints_2d = project(P, X)  # (B, V, J, 2)
    z = depth(P, X)  # (B, V, J)
    lo, hi = -0.5, sizes.image_px - 0.5
    inside = (z > 0) & (joints_2d >= lo).all(-1) & (joints_2d <= hi).all(-1)
    visible = render.joint_visibility(scene, X, rig.centers_m().float().to(X.device)) & inside
    heatmaps = gaussian_heatmaps(scale_pixels(joints_2d, sizes.image_px, sizes.heatmap_px), sizes.heatmap_px,
                                 sizes.heatmap_sigma_px)
    return dict(heatmaps=heatmaps, joints_2d_px=joints_2d, visible=visible, joints_3d_m=X, projections=P)


def occlusion_statistics(rig_name_or_rig, split: str, n_frames: int, profile: Profile, seed: int,
                         device) -> pd.DataFrame:
    """Per joint of a rig: the fraction of (frame, view) samples inside the image whose joint fails the depth test
    (``occluded_fraction``) and the fraction outside the image (``out_of_image_fraction``); plus a row ``joint="all"``.

    Labels only (no images are rendered), so it is cheap at any profile."""
    rig = get_rig(rig_name_or_rig).at_resolution(profile.studio.image_px)
    device = torch.device(device)
    joints, _ = motion.sample_poses(split, n_frames, seed)
    X = joints.to(device, torch.float32)
    labels = _labels(rig, X, render.sample_scene(X, seed).to(device), profile.studio)
    x = labels["joints_2d_px"]
    hi = profile.studio.image_px - 0.5
    inside = ((x >= -0.5) & (x <= hi)).all(-1)  # (B, V, J)
    occluded = inside & ~labels["visible"]
    rows = []
    for j, name in enumerate(skeleton.JOINT_NAMES + ("all",)):
        sel = slice(None) if name == "all" else j
        ins, occ = inside[..., sel].float(), occluded[..., sel].float()
        rows.append(dict(rig=rig.name, joint=name, occluded_fraction=float(occ.sum() / ins.sum().clamp_min(1)),
                         out_of_image_fraction=float(1 - ins.mean()), frames=n_frames, views=rig.num_views))
    return pd.DataFrame(rows)


def measure_throughput(rig_name_or_rig, profile: Profile, device, batch_images: int | None = None,
                       repeats: int | None = None, labels: bool = True) -> dict:
    """Render throughput in images per second at ``profile.studio.image_px``: ``repeats`` timed calls (after one
    warm-up call) of ``batch_images`` images each (frames × views), with or without the labels. On a GPU shared with
    other work (chapters executing at once), a batch that does not fit in the free memory is halved until it does;
    ``images_per_call`` reports the batch measured."""
    device = torch.device(device)
    rig = get_rig(rig_name_or_rig).at_resolution(profile.studio.image_px)
    batch_images = batch_images or profile.studio.bench_batch
    repeats = repeats or profile.studio.bench_repeats
    frames = max(1, batch_images // rig.num_views)
    while True:
        try:
            return _measure_throughput(rig, profile, device, frames, repeats, labels)
        except torch.OutOfMemoryError:
            if frames == 1:
                raise
            frames = frames // 2
            if device.type == "cuda":
                torch.cuda.empty_cache()


def _measure_throughput(rig, profile: Profile, device: torch.device, frames: int, repeats: int, labels: bool) -> dict:
    """:func:`measure_throughput` at one batch of ``frames`` frames."""
    joints, _ = motion.sample_poses("train", frames * (repeats + 1), seed=0)
    K, R, t = (torch.stack([getattr(c, a) for c in rig.cameras]).float().to(device) for a in ("K", "R", "t"))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    for i in range(repeats + 1):
        X = joints[i * frames:(i + 1) * frames].to(device)
        sync()
        t0 = time.perf_counter()
        if labels:
            render_multiview(rig, X, profile, seed=i, device=device)
        else:
            render.render_images(render.sample_scene(X, i).to(device), K, R, t, profile.studio.image_px)
        sync()
        times.append(time.perf_counter() - t0)
    per_call = sum(times[1:]) / repeats
    images = frames * rig.num_views
    return dict(rig=rig.name, views=rig.num_views, image_px=profile.studio.image_px, images_per_call=images,
                with_labels=labels, repeats=repeats, seconds_per_call=per_call, images_per_s=images / per_call,
                device=device_name(device))
