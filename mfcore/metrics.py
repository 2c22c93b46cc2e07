"""Metrics of the three papers: Joint Detection Rate (JDR, MetaFuse Sec. 5.1), MPJPE (no alignment, as MetaFuse) and
PA-MPJPE (after Procrustes alignment, as Tekin et al.), plus the heatmap read-out used before any of them.
"""

from __future__ import annotations

import torch

from . import geometry, skeleton

Tensor = torch.Tensor

# JDR as the Cross View Fusion code (microsoft/multiview-human-pose-estimation-pytorch, lib/dataset/multiview_h36m.py,
# ``evaluate``) computes it, which MetaFuse Sec. 5.1 follows: ``headsize = image_size[0] / 10.0`` with image_size the
# network input (256), and ``detected = distance <= headsize * 0.5``, the distances measured in the ORIGINAL image's
# pixels (the predictions mapped back from the crop). So the threshold is a constant number of sensor pixels.
CROSSVIEW_INPUT_PX = 256
CROSSVIEW_HEAD_SIZE_SENSOR_PX = CROSSVIEW_INPUT_PX / 10.0  # 25.6 pixels of the sensor image
JDR_HEAD_FRACTIONS = {"half_head": 0.5, "quarter_head": 0.25}  # the papers' JDR, and a stricter one the book adds


def heatmap_argmax_px(heatmaps: Tensor) -> Tensor:
    """Location of each heatmap's maximum, (..., J, h, w) → (..., J, 2) as (x, y) heatmap pixels.

    As SimpleBaseline, the integer argmax is moved a quarter pixel towards the higher neighbour in x and in y.
    """
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h, w).float()
    idx = flat.reshape(flat.shape[0], -1).argmax(dim=-1)
    y, x = idx // w, idx % w
    n = torch.arange(flat.shape[0], device=flat.device)
    xl, xr = (x - 1).clamp(min=0), (x + 1).clamp(max=w - 1)
    yu, yd = (y - 1).clamp(min=0), (y + 1).clamp(max=h - 1)
    dx = torch.sign(flat[n, y, xr] - flat[n, y, xl]) * ((x > 0) & (x < w - 1))
    dy = torch.sign(flat[n, yd, x] - flat[n, yu, x]) * ((y > 0) & (y < h - 1))
    xy = torch.stack([x.float() + 0.25 * dx, y.float() + 0.25 * dy], dim=-1)
    return xy.reshape(*lead, 2)


def jdr_threshold_sensor_px(threshold: str = "half_head") -> float:
    """A JDR threshold in sensor (original image) pixels: 12.8 for ``"half_head"`` (the papers'), 6.4 for
    ``"quarter_head"``."""
    if threshold not in JDR_HEAD_FRACTIONS:
        raise ValueError(f"unknown JDR threshold {threshold!r}; valid: {', '.join(JDR_HEAD_FRACTIONS)}")
    return JDR_HEAD_FRACTIONS[threshold] * CROSSVIEW_HEAD_SIZE_SENSOR_PX


def jdr_threshold_view_px(sensor_px_per_view_px, threshold: str = "half_head") -> Tensor:
    """The threshold of :func:`jdr_threshold_sensor_px` in view pixels: sensor px / (sensor px per view px), any
    shape (e.g. (V,) from :meth:`mfcore.studio.Rig.sensor_px_per_view_px`)."""
    scale = torch.as_tensor(sensor_px_per_view_px)
    if not torch.is_floating_point(scale) or not (scale > 0).all():
        raise ValueError(f"sensor_px_per_view_px must be positive numbers, got {scale.tolist()}")
    return jdr_threshold_sensor_px(threshold) / scale


def jdr(pred_px: Tensor, gt_px: Tensor, threshold_px, mask: Tensor | None = None) -> Tensor:
    """Joint Detection Rate per joint: the fraction of (…) samples whose error is at most the threshold, (J,).

    pred_px, gt_px (..., J, 2) in the same pixel frame; threshold_px a float or a tensor broadcastable to (...);
    mask (..., J) selects the samples that count (e.g. in-image joints). A joint with no counted sample gives NaN.
    """
    if pred_px.shape != gt_px.shape or pred_px.shape[-1] != 2:
        raise ValueError(f"pred_px and gt_px must both be (..., J, 2), got {tuple(pred_px.shape)} and {tuple(gt_px.shape)}")
    err = (pred_px.float() - gt_px.float()).norm(dim=-1)  # (..., J)
    thr = torch.as_tensor(threshold_px, dtype=err.dtype, device=err.device)
    if thr.dim() > 0:
        thr = thr[..., None]
    hit = (err <= thr).float()  # as the Cross View Fusion code: distance <= threshold
    J = err.shape[-1]
    hit, weight = hit.reshape(-1, J), (mask.reshape(-1, J).float() if mask is not None else torch.ones_like(hit.reshape(-1, J)))
    return (hit * weight).sum(0) / weight.sum(0)


def mpjpe_mm(pred_m: Tensor, gt_m: Tensor) -> Tensor:
    """Mean Per Joint Position Error in mm, no alignment (MetaFuse Sec. 5.1): (..., J, 3) × 2 → (...)."""
    if pred_m.shape != gt_m.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(pred_m.shape)} vs {tuple(gt_m.shape)}")
    return 1000.0 * (pred_m - gt_m).norm(dim=-1).mean(dim=-1)


def procrustes_align(pred: Tensor, gt: Tensor) -> Tensor:
    """The similarity transform (scale, rotation, translation) of ``pred`` closest to ``gt`` applied to ``pred``.

    (..., J, 3) → (..., J, 3). Umeyama's closed form; reflections are excluded.
    """
    mu_p, mu_g = pred.mean(dim=-2, keepdim=True), gt.mean(dim=-2, keepdim=True)
    p, g = pred - mu_p, gt - mu_g
    H = p.transpose(-1, -2).double() @ g.double()  # (..., 3, 3)
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vh.transpose(-1, -2) @ U.transpose(-1, -2)))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    R = Vh.transpose(-1, -2) @ D @ U.transpose(-1, -2)  # rotates p onto g
    scale = (S * torch.diagonal(D, dim1=-2, dim2=-1)).sum(-1) / (p.double() ** 2).sum(dim=(-1, -2)).clamp_min(1e-12)
    aligned = scale[..., None, None] * (p.double() @ R.transpose(-1, -2)) + mu_g.double()
    return aligned.to(pred.dtype)


def pa_mpjpe_mm(pred_m: Tensor, gt_m: Tensor) -> Tensor:
    """MPJPE in mm after Procrustes alignment of each pose to its ground truth (Tekin et al.), (...)."""
    return mpjpe_mm(procrustes_align(pred_m, gt_m), gt_m)


def pcp_correct(pred_m: Tensor, gt_m: Tensor, limbs=skeleton.LIMBS, fraction: float = 0.5) -> Tensor:
    """Which limbs are correct parts, (..., J, 3) × 2 → (..., L) bool (the per-pose form of :func:`pcp`).

    A limb (a, b) of ``limbs`` is correct in a pose when *both* of its estimated endpoints lie within ``fraction`` (½,
    the usual PCP of multi-view 3D pose, e.g. on the Shelf and Campus benchmarks) of the limb's true length of their
    true positions: ‖â − a‖ ≤ f·‖a − b‖ and ‖b̂ − b‖ ≤ f·‖a − b‖ (equality counts as correct). Units cancel.
    """
    if pred_m.shape != gt_m.shape or pred_m.dim() < 2 or pred_m.shape[-1] != 3:
        raise ValueError(f"pred_m and gt_m must both be (..., J, 3), got {tuple(pred_m.shape)} and {tuple(gt_m.shape)}")
    if not fraction > 0:
        raise ValueError(f"fraction must be positive, got {fraction!r}")
    J = pred_m.shape[-2]
    limbs = tuple((int(a), int(b)) for a, b in limbs)
    if not limbs or any(not (0 <= i < J) for ab in limbs for i in ab):
        raise ValueError(f"limbs must be a non-empty list of (a, b) joint pairs in 0..{J - 1}, got {limbs[:4]}…")
    a = torch.tensor([i for i, _ in limbs], device=gt_m.device)
    b = torch.tensor([j for _, j in limbs], device=gt_m.device)
    pred, gt = pred_m.double(), gt_m.double()
    length = (gt[..., a, :] - gt[..., b, :]).norm(dim=-1)  # (..., L)
    err_a = (pred[..., a, :] - gt[..., a, :]).norm(dim=-1)
    err_b = (pred[..., b, :] - gt[..., b, :]).norm(dim=-1)
    return (err_a <= fraction * length) & (err_b <= fraction * length)


def pcp(pred_m: Tensor, gt_m: Tensor, limbs=skeleton.LIMBS, fraction: float = 0.5) -> Tensor:
    """Percentage of Correct Parts per limb, as a fraction in [0, 1]: (..., J, 3) × 2 → (L,), pooled over all leading
    dims (the poses). A limb is correct when both of its estimated endpoints lie within half the limb's true length of
    the truth (:func:`pcp_correct`)."""
    correct = pcp_correct(pred_m, gt_m, limbs, fraction)
    return correct.reshape(-1, correct.shape[-1]).double().mean(0)


# ----------------------------------------------------------------------------------------------------------------------
# JDR of heatmaps against the labels of mfcore.backbone.cached_heatmaps (the one JDR of the book, MetaFuse Sec. 5.1)

JOINT_GROUPS: dict[str, tuple[str, ...]] = {  # the typical joints of Fig. 7 (left and right together)
    "wrist": ("left_wrist", "right_wrist"),
    "elbow": ("left_elbow", "right_elbow"),
    "knee": ("left_knee", "right_knee"),
    "ankle": ("left_ankle", "right_ankle"),
}


JDR_THRESHOLDS = tuple(JDR_HEAD_FRACTIONS)  # ("half_head", "quarter_head")


def heatmap_jdr(heatmaps: Tensor, labels: dict[str, Tensor], image_px: int, threshold: str = "half_head") -> Tensor:
    """Joint Detection Rate per joint (MetaFuse Sec. 5.1), (J,): the heatmap maximum, in image pixels, within the
    threshold of the label. ``threshold``: "half_head" — half the Cross View Fusion code's head size, 12.8 pixels of
    the sensor image (:func:`jdr_threshold_sensor_px`), the papers' JDR; "quarter_head" — 6.4 sensor pixels. Each view
    turns it into its own pixels with ``labels["sensor_px_per_view_px"]`` ((V,), or per frame (N, V) as the H36M-like
    test set of several subjects; :meth:`mfcore.studio.Rig.sensor_px_per_view_px`).
    heatmaps (N, V, J, h, w); labels from :func:`mfcore.backbone.cached_heatmaps` (same frames and views).
    Joints outside the image do not count; occluded ones do."""
    return peak_jdr(heatmap_peaks_px(heatmaps, image_px), labels, image_px, threshold)


def heatmap_peaks_px(heatmaps: Tensor, image_px: int) -> Tensor:
    """The maximum of every heatmap channel in image pixels, (N, V, J, 2): heatmaps (N, V, J, h, w) of an
    ``image_px`` image (what :func:`peak_jdr` scores; computed once for every threshold and subset of frames)."""
    return geometry.scale_pixels(heatmap_argmax_px(heatmaps), heatmaps.shape[-1], image_px)


def peak_jdr(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int, threshold: str = "half_head") -> Tensor:
    """:func:`heatmap_jdr` from the heatmap maxima (N, V, J, 2) in image pixels (:func:`heatmap_peaks_px`), (J,)."""
    hit, inside = peak_hits(peaks_px, labels, image_px, threshold)
    return (hit & inside).sum(0).sum(0).float() / inside.sum(0).sum(0).float()


def peak_hits(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int,
              threshold: str = "half_head") -> tuple[Tensor, Tensor]:
    """The detections behind :func:`peak_jdr`, per frame, view and joint: (detected (N, V, J) bool — the heatmap
    maximum within the threshold of the label —, counted (N, V, J) bool — the label inside the image)."""
    if threshold not in JDR_THRESHOLDS:
        raise ValueError(f"unknown JDR threshold {threshold!r}; valid: {', '.join(JDR_THRESHOLDS)}")
    gt_px = labels["joints_2d_px"]
    if peaks_px.shape != gt_px.shape:
        raise ValueError(f"peaks_px {tuple(peaks_px.shape)} and labels joints_2d_px {tuple(gt_px.shape)} differ")
    inside = ((gt_px >= -0.5) & (gt_px <= image_px - 0.5)).all(-1)  # joints outside the view do not count
    err = (peaks_px.to(gt_px.device).float() - gt_px.float()).norm(dim=-1)  # (N, V, J), as :func:`jdr`
    thr = labels_threshold_px(labels, threshold).to(device=err.device, dtype=err.dtype)
    return err <= (thr[..., None] if thr.dim() > 0 else thr), inside  # as the Cross View Fusion code: <=


def peak_jdr_frame_rows(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int, threshold: str = "half_head",
                        **columns) -> list[dict]:
    """Per-frame detections for paired comparisons (:mod:`mfcore.stats`): one row ``{**columns, frame, joint,
    detected, counted}`` per test frame and joint group (Fig. 7's groups of :data:`JOINT_GROUPS` and "mean", all
    joints): the joints of the group detected (:func:`peak_hits`) and counted (inside the image), summed over views.
    Σ detected / Σ counted over frames is the group's pooled JDR."""
    hit, inside = peak_hits(peaks_px, labels, image_px, threshold)
    detected, counted = (hit & inside).sum(1), inside.sum(1)  # (N, J) summed over views
    groups = {"mean": list(range(len(skeleton.JOINT_NAMES)))}
    groups.update({g: [skeleton.JOINT_INDEX[n] for n in names] for g, names in JOINT_GROUPS.items()})
    rows = []
    for group, idx in groups.items():
        d, c = detected[:, idx].sum(1).tolist(), counted[:, idx].sum(1).tolist()
        rows += [{**columns, "frame": i, "joint": group, "detected": int(d[i]), "counted": int(c[i])}
                 for i in range(len(d))]
    return rows


def jdr_rows(heatmaps: Tensor, labels: dict[str, Tensor], image_px: int, thresholds=JDR_THRESHOLDS,
             **columns) -> list[dict]:
    """Tidy rows ``{**columns, joint, jdr, threshold}`` for the mean over joints, the Fig. 7 joint groups, and every
    joint of :data:`mfcore.skeleton.JOINT_NAMES`, for each threshold of ``thresholds`` (:func:`heatmap_jdr`)."""
    return peak_jdr_rows(heatmap_peaks_px(heatmaps, image_px), labels, image_px, thresholds, **columns)


def peak_jdr_rows(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int, thresholds=JDR_THRESHOLDS,
                  **columns) -> list[dict]:
    """:func:`jdr_rows` from the heatmap maxima (N, V, J, 2) in image pixels (:func:`heatmap_peaks_px`)."""
    rows = []
    for threshold in thresholds:
        per_joint = peak_jdr(peaks_px, labels, image_px, threshold)
        values = {"mean": float(per_joint.nanmean())}
        for group, names in JOINT_GROUPS.items():
            values[group] = float(per_joint[[skeleton.JOINT_INDEX[n] for n in names]].nanmean())
        values.update({name: float(per_joint[i]) for i, name in enumerate(skeleton.JOINT_NAMES)})
        rows += [{**columns, "joint": joint, "jdr": jdr, "threshold": threshold} for joint, jdr in values.items()]
    return rows


def camera_sets(labels: dict[str, Tensor]) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The frames of a test set grouped by their cameras: [(frame indices (n,), projections (V, 3, 4), focal_px
    (V,))], in order of first appearance. One group when ``labels["projections"]`` is (V, 3, 4); one per camera
    placement (e.g. per H36M subject) when it is per frame, (N, V, 3, 4)."""
    P, f = labels["projections"], labels["focal_px"]
    if P.dim() == 3:
        return [(torch.arange(labels["joints_3d_m"].shape[0]), P, f)]
    if P.dim() != 4 or P.shape[-2:] != (3, 4):
        raise ValueError(f"projections must be (V, 3, 4) or per frame (N, V, 3, 4); got {tuple(P.shape)}")
    _, inverse = torch.unique(P.flatten(1), dim=0, return_inverse=True)
    groups = []
    for g in dict.fromkeys(inverse.tolist()):  # first-appearance order
        idx = (inverse == g).nonzero()[:, 0]
        groups.append((idx, P[idx[0]], f[idx[0]]))
    return groups


def labels_threshold_px(labels: dict[str, Tensor], threshold: str = "half_head") -> Tensor:
    """The JDR threshold in view pixels of every frame and view, (N, V): :func:`jdr_threshold_view_px` of
    ``labels["sensor_px_per_view_px"]`` ((V,) for one camera set, (N, V) per frame)."""
    if "sensor_px_per_view_px" not in labels:
        raise ValueError("labels have no 'sensor_px_per_view_px' (sensor pixels per view pixel, (V,) or (N, V)); "
                         "take them from mfcore.backbone.cached_heatmaps or Rig.sensor_px_per_view_px()")
    n, v = labels["joints_2d_px"].shape[:2]
    return jdr_threshold_view_px(labels["sensor_px_per_view_px"], threshold).expand(n, v)
