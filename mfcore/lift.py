"""From 2D detections to 3D poses on your rig: the views' heatmaps (:mod:`mfcore.detections`) fused across views, then
lifted to 3D by RANSAC triangulation and the RPSM (:mod:`mfcore.pictorial`), frame block by frame block.

Fusion (Eq. (1) of MetaFuse, the mix of :func:`mfcore.fusion.fuse`), chosen by evidence (:mod:`mfcore.adapt`):

- ``"none"`` — every view's heatmaps as detected (NoFusion);
- ``"epipolar"`` — the epipolar fusion from the calibration alone, no labelled frame: every ordered pair's weights
  are the exact epipolar lines of the cameras (:func:`mfcore.oracle.epipolar_oracle_weights` at the oracle's own
  gain, a source peak adding about one own peak), the book's epipolar oracle of chapter 4b used as a method;
- an adapted MetaFuse model (:func:`mfcore.adapt.load_adapted` of ``python -m mfbook.adapt``'s file): MetaFuse^K.

A view with no detection in a frame stays empty after fusion (fusion would otherwise draw the other views' lines
into it and a triangulation would read their crossing as a detection). A frame with fewer than two views holding a
detection cannot be lifted: its pose is NaN and it is counted, never dropped. The RANSAC pose of a joint detected in
fewer than two views is NaN; the RPSM places such a joint by the skeleton's limb lengths and says so with a low
confidence.

Per joint and estimator: ``confidence`` — the mean over the frame's views with detections of the *input* heatmap
read at the 3D joint's projection (a keypoint of score s at d pixels from the projection reads s·exp(−d²/2σ²)):
how strongly the detections, as given, support the 3D joint, in [0, 1]; ``inliers`` — the views whose (fused)
heatmap maximum lies within RANSAC's threshold of the projection.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import fusion, geometry, metrics, motion, oracle, pictorial, runtime, studio
from .detections.recording import Recording
from .detections.views import sensor_window, view_to_sensor_px
from .maml import fuse_frames

FUSIONS = ("none", "epipolar")  # or an adapted MetaFuse model
METHODS = {"none": "NoFusion", "epipolar": "EpipolarFusion"}  # the names of the tables
ESTIMATORS = ("ransac", "rpsm")
EPIPOLAR_GAIN = oracle.ORACLE_INIT_GAIN  # fixed beforehand (a source peak adds about one own peak), never tuned


def epipolar_fusion(rig: studio.Rig, profile, device) -> fusion.NaiveFuse:
    """The epipolar fusion of ``rig``'s views (at the profile's resolution) as a frozen fusion model: NaiveFuse whose
    pair weights are the cameras' epipolar lines (:func:`mfcore.oracle.placement_oracle_weights`, gain
    :data:`EPIPOLAR_GAIN`). Zero labelled frames: the calibration alone."""
    model = fusion.NaiveFuse(rig.num_views, profile.studio.heatmap_px, device=device)
    with torch.no_grad():
        model.weight.copy_(oracle.placement_oracle_weights(rig.projections(dtype=torch.float64), profile, device,
                                                           EPIPOLAR_GAIN))
    return model.freeze()


def fusion_for(spec, rig: studio.Rig, profile, device) -> tuple[str, fusion.PairFusion | None]:
    """(method name, model or None) of a fusion ``spec``: "none", "epipolar" or a fusion model (an adapted MetaFuse
    model, named "MetaFuse"); the model's views and heatmap size must be the rig's and the profile's."""
    if isinstance(spec, fusion.PairFusion):
        side = profile.studio.heatmap_px
        if spec.heatmap_px != side or spec.num_views != rig.num_views:
            raise ValueError(f"the fusion model fuses {spec.num_views} views of {spec.heatmap_px}² heatmaps; rig "
                             f"{rig.name!r} has {rig.num_views} views and profile {profile.name!r} {side}² heatmaps "
                             f"(adapt and lift with the same rig and profile)")
        return "MetaFuse", spec.to(device).freeze()
    if spec not in FUSIONS:
        raise ValueError(f"unknown fusion {spec!r}; valid: {', '.join(FUSIONS)}, or an adapted MetaFuse file")
    return METHODS[spec], (epipolar_fusion(rig, profile, device) if spec == "epipolar" else None)


def limb_stats(profile, seed: int = 0) -> pictorial.LimbLengthStats:
    """The RPSM's limb-length statistics: ``profile.pictorial.stats_frames`` training poses (as chapter 5), never the
    recording's own."""
    return _limb_stats(profile.pictorial.stats_frames, seed)


@functools.lru_cache(maxsize=4)
def _limb_stats(frames: int, seed: int) -> pictorial.LimbLengthStats:
    poses, _ = motion.sample_poses("train", frames, seed)
    return pictorial.limb_length_stats(poses)


def read_at(heatmaps: torch.Tensor, uv_px: torch.Tensor) -> torch.Tensor:
    """Bilinear values of heatmaps (n, V, J, h, w) at heatmap pixels uv (n, V, J, 2) → (n, V, J); 0 outside."""
    n, V, J, h, w = heatmaps.shape
    size = torch.tensor([w - 1, h - 1], dtype=uv_px.dtype, device=uv_px.device)
    grid = (2.0 * uv_px / size - 1.0).nan_to_num(2.0, 2.0, 2.0).reshape(n * V * J, 1, 1, 2).float()
    val = F.grid_sample(heatmaps.reshape(n * V * J, 1, h, w).float(), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=True)
    return val.reshape(n, V, J)


def fuse_block(model, heatmaps: torch.Tensor, has_view: torch.Tensor) -> torch.Tensor:
    """Fused heatmaps (n, V, J, h, w) of one block (``model`` None: as they are); views without a detection in a
    frame (``has_view`` (n, V) False) stay empty."""
    if model is None:
        return heatmaps
    fused = fuse_frames(model, heatmaps, batch_size=heatmaps.shape[0])
    return fused * has_view[:, :, None, None, None]


def estimate_block(fused: torch.Tensor, P_hm: torch.Tensor, stats, sizes, estimators=ESTIMATORS) -> dict:
    """{estimator: (n, J, 3) metres} of a block whose frames all have ≥ 2 views with detections (the estimators'
    warnings about the empty views are expected here: those views carry no detection)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pictorial: ignoring", category=RuntimeWarning)
        return {est: pictorial.estimate_3d(est, fused, P_hm, stats, sizes) for est in estimators}


@dataclass
class Lifted:
    """What :func:`lift` made of a recording. Book frame (metres, Z up) and sensor pixels; frames not lifted are NaN.

    ``points_m`` / ``confidence`` / ``inliers`` / ``reprojection_px``: per estimator, (N, J, 3) / (N, J) / (N, J) /
    (N, V, J, 2); ``detections_px`` (N, V, J, 2) and ``detection_score`` (N, V, J): the maxima of the input heatmaps
    (the detections as the pipeline read them); ``fused_px`` / ``fused_score``: the maxima after fusion (the 2D poses
    fusion gives); ``views`` (N,) views with a detection; ``lifted`` (N,) bool."""

    frames: list[str]
    camera_names: list[str]
    method: str
    points_m: dict
    confidence: dict
    inliers: dict
    reprojection_px: dict
    detections_px: np.ndarray
    detection_score: np.ndarray
    fused_px: np.ndarray
    fused_score: np.ndarray
    views: np.ndarray
    lifted: np.ndarray
    notes: list[str] = field(default_factory=list)


def _sensor_px(x_hm: torch.Tensor, rig: studio.Rig, heatmap_px: int) -> np.ndarray:
    """Heatmap pixels of every view (n, V, J, 2) → sensor pixels (float64)."""
    out = x_hm.detach().double().cpu().numpy().copy()
    for v in range(rig.num_views):
        out[:, v] = view_to_sensor_px(out[:, v], sensor_window(rig, v)[0], heatmap_px)
    return out


def lift(recording: Recording, profile, spec="none", device="cpu", *, stats=None, estimators=ESTIMATORS,
         seed: int = 0, progress: bool = True) -> Lifted:
    """Fuse and lift every frame of ``recording`` (:class:`mfcore.detections.Recording`, its rig at the profile's
    image size) with fusion ``spec`` (:func:`fusion_for`) and ``estimators``, in blocks of
    ``profile.pictorial.batch_frames`` frames. ``stats``: limb-length statistics (default :func:`limb_stats`)."""
    device = torch.device(device)
    rig, s = recording.rig, profile.studio
    side, sigma, sizes = s.heatmap_px, s.heatmap_sigma_px, profile.pictorial
    if rig.image_px != s.image_px:
        raise ValueError(f"the recording's rig is imaged at {rig.image_px} px; profile {profile.name!r} needs "
                         f"{s.image_px} (rig.at_resolution)")
    method, model = fusion_for(spec, rig, profile, device)
    stats = limb_stats(profile, seed) if stats is None else stats
    P_hm = pictorial.heatmap_projections(rig.projections(), s.image_px, side).to(device)
    N, V, J = recording.num_frames, rig.num_views, 17
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    out = dict(points_m={e: nan(N, J, 3) for e in estimators}, confidence={e: nan(N, J) for e in estimators},
               inliers={e: np.zeros((N, J), dtype=np.int64) for e in estimators},
               reprojection_px={e: nan(N, V, J, 2) for e in estimators}, detections_px=nan(N, V, J, 2),
               detection_score=np.zeros((N, V, J)), fused_px=nan(N, V, J, 2), fused_score=np.zeros((N, V, J)),
               views=np.zeros(N, dtype=np.int64), lifted=np.zeros(N, dtype=bool))
    threshold = max(1.5, 0.04 * side)  # RANSAC's inlier distance in heatmap px (mfcore.pictorial)
    step = sizes.batch_frames
    for start in runtime.progress(range(0, N, step), desc=f"lift ({method})", unit="block", disable=not progress):
        stop = min(N, start + step)
        evidence = recording.view_heatmaps(start, stop, side, sigma, device)  # (n, V, J, h, w)
        detected = evidence.flatten(-2).amax(-1) > 0  # (n, V, J)
        has_view = detected.any(-1)  # (n, V)
        fused = fuse_block(model, evidence, has_view)
        for px_key, score_key, maps in (("detections_px", "detection_score", evidence),
                                        ("fused_px", "fused_score", fused)):
            px = _sensor_px(metrics.heatmap_argmax_px(maps), rig, side)
            top = maps.flatten(-2).amax(-1).cpu().numpy()
            out[px_key][start:stop] = np.where((top > 0)[..., None], px, np.nan)
            out[score_key][start:stop] = top
        views = has_view.sum(1)
        out["views"][start:stop] = views.cpu().numpy()
        ok = (views >= 2).cpu().numpy()
        out["lifted"][start:stop] = ok
        if not ok.any():
            continue
        idx = torch.from_numpy(np.flatnonzero(ok)).to(device)
        rows = start + np.flatnonzero(ok)
        poses = estimate_block(fused[idx], P_hm, stats, sizes, estimators)
        seen = detected[idx].sum(1) >= 2  # (m, J): the joint has detections in two views
        for est, X in poses.items():
            uv = geometry.project(P_hm, X.to(P_hm.dtype))  # (m, V, J, 2) heatmap px
            value = read_at(evidence[idx], uv).clamp(0.0, 1.0) * has_view[idx][:, :, None]
            conf = value.sum(1) / has_view[idx].sum(1, keepdim=True)
            peaks = metrics.heatmap_argmax_px(fused[idx])
            inl = (((peaks - uv).norm(dim=-1) <= threshold) & detected[idx]).sum(1)
            if est == "ransac":  # two views or none: a joint detected once has no triangulation
                X = torch.where(seen[..., None], X, torch.full_like(X, float("nan")))
                conf = torch.where(seen, conf, torch.full_like(conf, float("nan")))
            out["points_m"][est][rows] = X.double().cpu().numpy()
            out["confidence"][est][rows] = conf.double().cpu().numpy()
            out["inliers"][est][rows] = inl.cpu().numpy()
            out["reprojection_px"][est][rows] = _sensor_px(uv, rig, side)
    unlifted = int((~out["lifted"]).sum())
    notes = list(recording.notes)
    if unlifted:
        first = recording.frames[int(np.flatnonzero(~out["lifted"])[0])]
        notes.append(f"{unlifted} of {N} frames have detections in fewer than 2 cameras and cannot be lifted: written "
                     f"as NaN (first: frame {first!r})")
    return Lifted(list(recording.frames), [c.name for c in rig.cameras], method, notes=notes, **out)
