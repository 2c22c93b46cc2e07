"""Tekin's samples in the studio: single views, person-centred crops of the image and of the 2D backbone's maps.

Every sample is one view of one pose: the square window around the person (side ``CROP_SCALE`` × the larger extent of
the ground-truth 2D joints, as the H36M protocol's ground-truth boxes) resampled to ``trainable_fusion.crop_px`` for the
image and ``crop_px / 4`` for the confidence maps, the same window in both. The renderer and the 2D backbone see the
studio's fixed person-centred view (:mod:`mfcore.studio`); only Tekin's networks read the crops. The target is the
root-relative pose in the camera frame, standardised per joint and coordinate by :class:`PoseNormaliser`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import backbone as bb
from .. import motion, render, runtime, skeleton, studio
from ..geometry import project, scale_pixels
from ..profiles import Profile, resolve_device

Tensor = torch.Tensor

CROP_SCALE = 1.25  # crop side / the larger extent of the ground-truth 2D joints (a margin of 12.5 % on each side)
MIN_CROP_SIDE_PX = 8.0  # a degenerate pose (all joints on one pixel) still gets a window
MIN_POSE_SCALE_M = 1e-3  # a joint coordinate with no spread (the pelvis, root-relative) keeps this scale (1 mm)
MONOCULAR_RIGS = ("dome", "h36m", "totalcapture")
SPLITS = ("train", "test")
RENDER_CHUNK_FRAMES = 2048  # frames rendered, read by the backbone and cropped at once (bounds the 256² images held)


def _check_n(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


@dataclass
class MonocularSamples:
    """Single-view samples: images (N, 3, H, W) in [0, 1]; confidence_maps (N, J, h, w) of the 2D backbone;
    joints_3d_m (N, J, 3) root-relative, in the camera frame, metres; joints_2d_px (N, J, 2) the ground-truth 2D
    joints in the pixels of ``images`` (or ``None``); clips (N,) the motion clip of each sample (or ``None``), the
    unit a bootstrap over test samples resamples."""

    images: Tensor
    confidence_maps: Tensor
    joints_3d_m: Tensor
    joints_2d_px: Tensor | None = None
    clips: tuple[str, ...] | None = None

    def __post_init__(self):
        n = self.images.shape[0]
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got {tuple(self.images.shape)}")
        if self.confidence_maps.dim() != 4 or self.confidence_maps.shape[0] != n:
            raise ValueError(f"confidence_maps must be (N={n}, J, h, w), got {tuple(self.confidence_maps.shape)}")
        if self.joints_3d_m.dim() != 3 or self.joints_3d_m.shape[0] != n or self.joints_3d_m.shape[2] != 3:
            raise ValueError(f"joints_3d_m must be (N={n}, J, 3), got {tuple(self.joints_3d_m.shape)}")
        j2 = self.joints_2d_px
        if j2 is not None and (j2.dim() != 3 or j2.shape[0] != n or j2.shape[2] != 2):
            raise ValueError(f"joints_2d_px must be (N={n}, J, 2) or None, got {tuple(j2.shape)}")
        if self.clips is not None and len(self.clips) != n:
            raise ValueError(f"clips must name the clip of each of the {n} samples, got {len(self.clips)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> "MonocularSamples":
        j2 = None if self.joints_2d_px is None else self.joints_2d_px.to(device)
        return MonocularSamples(self.images.to(device), self.confidence_maps.to(device), self.joints_3d_m.to(device),
                                j2, self.clips)

    def subset(self, index) -> "MonocularSamples":
        """The samples ``index`` (a 1-D index tensor or a slice), in that order."""
        j2 = None if self.joints_2d_px is None else self.joints_2d_px[index]
        clips = None
        if self.clips is not None:
            rows = range(len(self))[index] if isinstance(index, slice) else torch.as_tensor(index).cpu().tolist()
            clips = tuple(self.clips[i] for i in rows)
        return MonocularSamples(self.images[index], self.confidence_maps[index], self.joints_3d_m[index], j2, clips)


@dataclass
class PoseNormaliser:
    """Standardisation of root-relative poses: ``(y − mean_m) / scale_m`` per joint and coordinate, (J, 3) each, m.

    Built from the training poses by :meth:`fit` (mean and standard deviation over the samples; a coordinate with
    less spread than :data:`MIN_POSE_SCALE_M`, e.g. the root-relative pelvis, keeps that scale)."""

    mean_m: Tensor
    scale_m: Tensor

    @classmethod
    def fit(cls, joints_3d_m: Tensor) -> "PoseNormaliser":
        if joints_3d_m.dim() != 3 or joints_3d_m.shape[-1] != 3 or joints_3d_m.shape[0] < 2:
            raise ValueError(f"joints_3d_m must be (N >= 2, J, 3) metres, got {tuple(joints_3d_m.shape)}")
        y = joints_3d_m.detach().double()
        return cls(y.mean(0).float(), y.std(0).clamp(min=MIN_POSE_SCALE_M).float())

    def normalise(self, joints_3d_m: Tensor) -> Tensor:
        """(..., J, 3) metres → standardised units."""
        return (joints_3d_m - self.mean_m.to(joints_3d_m)) / self.scale_m.to(joints_3d_m)

    def denormalise(self, standardised: Tensor) -> Tensor:
        """(..., J, 3) standardised units → metres (the inverse of :meth:`normalise`)."""
        return self.mean_m.to(standardised) + self.scale_m.to(standardised) * standardised


# ----------------------------------------------------------------------------------------------------------------------
# Person-centred crops (the H36M protocol's ground-truth boxes)
# ----------------------------------------------------------------------------------------------------------------------

def crop_sides_px(profile: Profile) -> tuple[int, int]:
    """(image, confidence-map) sides of Tekin's person crops: ``crop_px`` and ``crop_px`` / (image_px / heatmap_px)."""
    stride = profile.studio.image_px // profile.studio.heatmap_px
    crop = profile.trainable_fusion.crop_px
    if crop % stride:
        raise ValueError(f"trainable_fusion.crop_px ({crop}) must be a multiple of image_px / heatmap_px ({stride})")
    return crop, crop // stride


def person_boxes_px(joints_2d_px: Tensor, scale: float = CROP_SCALE) -> Tensor:
    """The square window around each person: (N, J, 2) pixels → (N, 3) [centre x, centre y, side] pixels.

    Centred on the middle of the joints' bounding box, side ``scale`` × its larger extent (at least
    :data:`MIN_CROP_SIDE_PX`), so every joint lies inside the window with a margin of (scale − 1)/2 of the side."""
    if joints_2d_px.dim() != 3 or joints_2d_px.shape[-1] != 2:
        raise ValueError(f"joints_2d_px must be (N, J, 2) pixels, got {tuple(joints_2d_px.shape)}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 1):
        raise ValueError(f"scale must be a finite number >= 1 (the window holds every joint), got {scale!r}")
    lo, hi = joints_2d_px.float().amin(1), joints_2d_px.float().amax(1)
    side = ((hi - lo).amax(1) * scale).clamp(min=MIN_CROP_SIDE_PX)
    return torch.cat([(lo + hi) / 2, side[:, None]], dim=1)


def crop_square(maps: Tensor, boxes_px: Tensor, out_px: int) -> Tensor:
    """Resample the square windows ``boxes_px`` (N, 3) [centre x, centre y, side] in the pixels of ``maps``
    (N, C, H, W) (pixel centres at integers) to (N, C, out_px, out_px), bilinearly; outside the image is 0."""
    _check_n("out_px", out_px, 1)
    if maps.dim() != 4 or boxes_px.shape != (maps.shape[0], 3):
        raise ValueError(f"maps must be (N, C, H, W) and boxes_px (N, 3), got {tuple(maps.shape)} and "
                         f"{tuple(boxes_px.shape)}")
    n, _, h, w = maps.shape
    boxes = boxes_px.to(maps.device, torch.float32)
    u = (torch.arange(out_px, device=maps.device, dtype=torch.float32) + 0.5) / out_px - 0.5  # (out,) in [-½, ½]
    x = boxes[:, 0:1] + boxes[:, 2:3] * u  # (N, out) source pixels
    y = boxes[:, 1:2] + boxes[:, 2:3] * u
    gx = (x + 0.5) / w * 2 - 1  # grid_sample's normalised coordinates (align_corners=False)
    gy = (y + 0.5) / h * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(n, out_px, out_px), gy[:, :, None].expand(n, out_px, out_px)], dim=-1)
    return F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False).to(maps.dtype)


def to_crop_px(points_px: Tensor, boxes_px: Tensor, out_px: int) -> Tensor:
    """Points (N, J, 2) in the source pixels → the pixels of :func:`crop_square`'s (out_px)² window."""
    boxes = boxes_px.to(points_px)
    return (points_px - boxes[:, None, :2]) * (out_px / boxes[:, None, 2:3]) + (out_px - 1) / 2


def camera_frame_root_relative(joints_3d_m: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """World joints (N, J, 3) seen by cameras (N, 3, 3), (N, 3) → camera-frame joints minus the pelvis (N, J, 3), m."""
    cam = joints_3d_m @ R.transpose(-1, -2) + t[:, None, :]
    return cam - cam[:, skeleton.ROOT:skeleton.ROOT + 1]


# ----------------------------------------------------------------------------------------------------------------------
# Rendering the samples
# ----------------------------------------------------------------------------------------------------------------------

def _split_counts(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def _derived_seed(*parts) -> int:
    """A seed for one (split, rig, view) group of renders: distinct per group, < 2^40 (the scene's per-frame seeds
    are ``seed · 1,000,003 + frame``, which must fit 63 bits)."""
    digest = hashlib.sha256("/".join(map(str, ("tekin_samples",) + parts)).encode()).digest()
    return int.from_bytes(digest[:5], "little")


def make_monocular_samples(profile: Profile, split: str, n_samples: int, seed: int, device,
                           rigs: tuple[str, ...] = MONOCULAR_RIGS, backbone=None) -> MonocularSamples:
    """Tekin's training or test samples in the studio: person crops of the image and of the 2D backbone's confidence
    maps, the root-relative camera-frame 3D joints, the ground-truth 2D joints in crop pixels and each sample's clip.

    The samples are split evenly over ``rigs``; within a rig, sample i is seen by view i mod V, so every camera of
    every rig is used ("monocularly in all camera views", Sec. 4.2 of Tekin), and every sample has its own pose
    (:func:`mfcore.motion.sample_poses` of ``split``: training motions, or unseen test segments, augmented) and its own
    scene. Views are rendered, read by the frozen warmed-up SimpleBaseline (``warmup_backbone(profile, seed, device)``
    unless ``backbone`` is given) and cropped :data:`RENDER_CHUNK_FRAMES` at a time, so only the crops are kept
    (float16 on CUDA, float32 on the CPU); the result does not depend on the chunking. Deterministic in ``seed``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    _check_n("n_samples", n_samples, len(rigs))
    _check_n("seed", seed, 0)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    model = bb.warmup_backbone(profile, seed, device) if backbone is None else backbone  # trains on a cache miss
    with torch.no_grad():
        return _render_samples(profile, split, n_samples, seed, device, rigs, model)


def _render_samples(profile, split, n_samples, seed, device, rigs, model) -> MonocularSamples:
    """:func:`make_monocular_samples`'s body (under ``no_grad``): render, read by ``model``, crop, chunk by chunk."""
    crop_px, crop_hm_px = crop_sides_px(profile)
    image_px, heatmap_px = profile.studio.image_px, profile.studio.heatmap_px
    store = torch.float16 if device.type == "cuda" else torch.float32
    J = skeleton.NUM_JOINTS
    images = torch.empty(n_samples, 3, crop_px, crop_px, device=device, dtype=store)
    maps = torch.empty(n_samples, J, crop_hm_px, crop_hm_px, device=device, dtype=store)
    joints_3d = torch.empty(n_samples, J, 3)
    joints_2d = torch.empty(n_samples, J, 2)
    clips: list[str] = [""] * n_samples
    library = motion.load_motion_library()
    offset = 0
    groups = [(k, name, n_rig) for k, (name, n_rig) in enumerate(zip(rigs, _split_counts(n_samples, len(rigs))))]
    bar = runtime.progress(total=n_samples, desc=f"Tekin {split} samples", leave=False)
    for k, name, n_rig in groups:
        rig = studio.get_rig(name).at_resolution(image_px)
        world, clip_index = motion.sample_poses(split, n_rig, seed=_derived_seed(seed, split, name) % (2**31))
        view = torch.arange(n_rig) % rig.num_views
        for v in range(min(n_rig, rig.num_views)):
            idx = torch.nonzero(view == v).squeeze(1)  # this view's samples, in the rig's order
            cam = rig.subset([v])
            scene = render.sample_scene(world[idx], _derived_seed(seed, split, name, v))
            K, R, t = (torch.stack([getattr(c, a) for c in cam.cameras]).float().to(device) for a in ("K", "R", "t"))
            P = cam.projections(device=device)
            for start in range(0, len(idx), RENDER_CHUNK_FRAMES):
                part = idx[start:start + RENDER_CHUNK_FRAMES]
                X = world[part].to(device, torch.float32)
                view_images = render.render_images(scene.frames(slice(start, start + len(part))).to(device), K, R,
                                                   t, image_px)[:, 0]  # (n, 3, H, W)
                j2 = project(P, X)[:, 0]  # (n, J, 2) image pixels
                hm = bb.predict_heatmaps(model, view_images, batch_size=profile.backbone.batch_size, device=device)
                boxes = person_boxes_px(j2)
                boxes_hm = torch.cat([scale_pixels(boxes[:, :2], image_px, heatmap_px),
                                      boxes[:, 2:] * heatmap_px / image_px], dim=1)
                rows = (offset + part).to(device)
                images[rows] = crop_square(view_images, boxes, crop_px).to(store)
                maps[rows] = crop_square(hm.float(), boxes_hm, crop_hm_px).to(store)
                joints_2d[offset + part] = to_crop_px(j2, boxes, crop_px).float().cpu()
                joints_3d[offset + part] = camera_frame_root_relative(
                    world[part], cam.cameras[0].R.float().expand(len(part), 3, 3),
                    cam.cameras[0].t.float().expand(len(part), 3))
                bar.update(len(part))
        for i, c in enumerate(clip_index.tolist()):
            clip = library.clips[c]
            clips[offset + i] = f"{clip.source}/{clip.name}"
        offset += n_rig
    bar.close()
    return MonocularSamples(images, maps, joints_3d.to(device), joints_2d.to(device), tuple(clips))
