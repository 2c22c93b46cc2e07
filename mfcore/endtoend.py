"""NaiveFuse^full end to end: the backbone and NaiveFuse's fusion layers trained together on a target rig's images.

MetaFuse (Sec. 3) calls NaiveFuse^full, trained on all of a configuration's labelled frames, the upper bound of the
fusion methods: "the whole network, together with the FCL parameters, can be trained end-to-end by enforcing
supervision on the fused heatmaps". The Cross View Fusion code trains that way, summing one MSE per view's own heatmap
and one per view's fused heatmap. Chapter 4's NaiveFuse^full (:func:`mfcore.fewshot.finetune_on_pool`) is the
cheaper reading the rest of Fig. 7 shares: the fusion layer alone, fitted on the frozen warm-up backbone's cached
heatmaps of the 1,000-frame pool. This module trains both parts:

* :func:`train_end_to_end` — Adam on ``MSE(h_v, y_v) + Eq. (3)`` over multi-view frames: h_v the backbone's heatmap of
  view v, Eq. (3) the MSE of the fused map ``0.4·h_t + 0.6/(V−1)·Σ_s W_ts h_s`` (:func:`mfcore.fusion.fuse`) against
  y_t; the gradient of both terms reaches the backbone.
* :func:`end_to_end_peaks` — one target rig and trial, cached: the pool rendered on the device, the warm-up backbone and
  a zero NaiveFuse trained together, the heatmap maxima of the test and stress frames before ("views") and after
  ("fused") the fusion layer, the loss of every step and the wall seconds.
* :func:`end_to_end_heatmaps` — the test heatmaps of that same trained network (chapter 4b puts them through the RPSM).
* :func:`end_to_end_rows` — JDR rows and per-frame rows (for paired intervals) of the two: "E2EBackbone" (the jointly
  trained backbone's own heatmaps, no fusion: what training on the target's images does without fusion) and
  "NaiveFuseFullE2E" (its fused heatmaps).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from . import backbone, data, fusion, metrics, runtime
from .geometry import scale_pixels
from .optim import adam, autocast
from .targets import HELD_OUT_SPLITS, _check_target, _check_trial, target_data, target_images

E2E_CODE = ("endtoend", "backbone", "fusion", "targets", "metrics", "data")  # the code behind an entry
METHODS = {"views": "E2EBackbone", "fused": "NaiveFuseFullE2E"}  # the two heatmaps of the trained network


def train_end_to_end(net: backbone.PoseResNet, fuse: fusion.NaiveFuse, images: Tensor, joints_hm_px: Tensor, *,
                     epochs: int, batch_frames: int, backbone_lr: float, fusion_lr: float, sigma_px: float, seed: int,
                     progress: bool = True) -> dict[str, list[float]]:
    """Train ``net`` and ``fuse`` together (in place) on multi-view frames.

    images (N, V, 3, H, W) uint8 or float in [0, 1], on the training device; joints_hm_px (N, V, J, 2) the labels in
    heatmap pixels (targets: Gaussians of ``sigma_px``, :func:`mfcore.data.gaussian_heatmaps`). Every step takes
    ``batch_frames`` frames (all their views: the fused map of a view needs the others), in an order shuffled per
    epoch with ``seed``; the loss is ``MSE(h, y) + Eq. (3)`` (:func:`mfcore.fusion.fusion_mse` over the fused views), as
    the Cross View Fusion code sums its per-view and fused terms. Adam, two rates (``backbone_lr``, ``fusion_lr``), both
    on the warm-up's schedule (:func:`mfcore.backbone.warmup_lr`: /10 at 1/2 and at 5/6 of the epochs); bf16 autocast
    and channels_last on CUDA, as the warm-up. Returns {"view_loss", "fused_loss"}: each step's two terms."""
    n, v = images.shape[:2]
    if images.dim() != 5 or images.shape[2] != 3 or joints_hm_px.shape[:2] != (n, v) or joints_hm_px.shape[-1] != 2:
        raise ValueError(f"images must be (N, V, 3, H, W) and joints_hm_px (N, V, J, 2) of the same frames and views; "
                         f"got {tuple(images.shape)} and {tuple(joints_hm_px.shape)}")
    if v != fuse.num_views or n == 0:
        raise ValueError(f"the fusion model fuses {fuse.num_views} views; the frames hold {v} views and {n} frames")
    for name, value in (("epochs", epochs), ("batch_frames", batch_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    device = next(net.parameters()).device
    for p in (*net.parameters(), *fuse.parameters()):
        p.requires_grad_(True)
    net.train()
    fuse.train()
    groups = [{"params": list(net.parameters()), "lr": backbone_lr, "base": backbone_lr},
              {"params": list(fuse.parameters()), "lr": fusion_lr, "base": fusion_lr}]
    opt = adam(groups, lr=backbone_lr)
    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list[Tensor]] = {"view_loss": [], "fused_loss": []}
    steps = epochs * -(-n // batch_frames)
    bar = runtime.progress(total=steps, desc="NaiveFuse^full end to end", disable=not progress)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = backbone.warmup_lr(epoch, epochs, group["base"])
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_frames):
            idx = order[start:start + batch_frames].to(images.device)
            x = backbone._as_float_images(images[idx].to(device, non_blocking=True))
            b = x.shape[0]
            y = data.gaussian_heatmaps(joints_hm_px[idx].to(device), fuse.heatmap_px, sigma_px).float()
            with autocast(device):
                h = net(backbone._channels_last(x.flatten(0, 1), device))
            h = h.float().reshape(b, v, *h.shape[1:])
            view_loss = F.mse_loss(h, y)
            with autocast(device):
                fused = fuse(h)
            fused_loss = fusion.fusion_mse(fused, y, fuse.target_views)
            opt.zero_grad(set_to_none=True)
            (view_loss + fused_loss).backward()
            opt.step()
            history["view_loss"].append(view_loss.detach())
            history["fused_loss"].append(fused_loss.detach())
            bar.update(1)
    bar.close()
    net.eval()
    fuse.eval()
    return {k: torch.stack(v).tolist() for k, v in history.items()}


def _key(target: str, trial: int, profile, seed: int) -> dict:
    sections = profile.as_dict()
    return dict(target=target, trial=trial, seed=seed, studio=sections["studio"], backbone=sections["backbone"],
                endtoend=sections["endtoend"], outer_lr=profile.metafuse.outer_lr,
                test_frames=profile.metafuse.target_test_frames, stress_frames=profile.metafuse.stress_test_frames)


def _train_and_read(target: str, trial: int, profile, seed: int, device: torch.device,
                    progress: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One end-to-end training and its reading (:func:`end_to_end_peaks`): (the peaks entry, the maps entry: the test
    split's "views" and "fused" heatmaps (N, V, J, h, w) as float16 on the CPU)."""
    e, s = profile.endtoend, profile.studio
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    images, joints = [], []
    for im, j in target_images(target, trial, "train", e.pool_frames, profile, seed, device, batch_frames=256):
        images.append((im * 255).round().to(torch.uint8))
        joints.append(scale_pixels(j, s.image_px, s.heatmap_px))
    images, joints = torch.cat(images), torch.cat(joints)
    backbone._sync(device)
    t1 = time.perf_counter()
    net = backbone.warmup_backbone(profile, seed, device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    fuse = fusion.NaiveFuse(images.shape[1], s.heatmap_px, device=device)
    history = train_end_to_end(net, fuse, images, joints, epochs=e.epochs, batch_frames=e.batch_frames,
                               backbone_lr=e.backbone_lr, fusion_lr=profile.metafuse.outer_lr,
                               sigma_px=s.heatmap_sigma_px, seed=seed, progress=progress)
    backbone._sync(device)
    t2 = time.perf_counter()
    del images
    out = {k: torch.tensor(v, dtype=torch.float64) for k, v in history.items()}
    maps = {"views": [], "fused": []}
    labels = target_data(target, trial, profile, seed, device)
    for split in HELD_OUT_SPLITS:
        n = labels[split]["joints_2d_px"].shape[0]
        peaks = {"views": [], "fused": []}
        rendered = []
        for im, j in target_images(target, trial, split, n, profile, seed, device):
            h = backbone.predict_heatmaps(net, im).float()
            with torch.no_grad(), autocast(device):
                fused = fuse(h)
            peaks["views"].append(metrics.heatmap_peaks_px(h, s.image_px).cpu())
            peaks["fused"].append(metrics.heatmap_peaks_px(fused.float(), s.image_px).cpu())
            if split == "test":
                maps["views"].append(h.half().cpu())
                maps["fused"].append(fused.half().cpu())
            rendered.append(j.cpu())
        if not torch.equal(torch.cat(rendered), labels[split]["joints_2d_px"]):
            raise RuntimeError(f"the re-rendered {split} frames of {target} trial {trial} are not target_data's")
        out.update({f"{kind}.{split}": torch.cat(p) for kind, p in peaks.items()})
    out["seconds"] = torch.tensor([t1 - t0, t2 - t1], dtype=torch.float64)
    return out, {kind: torch.cat(m) for kind, m in maps.items()}


def end_to_end_peaks(target: str, trial: int, profile, seed: int, device, *, progress: bool = False) -> dict:
    """NaiveFuse^full end to end on one target rig and trial (:func:`mfcore.targets.target_data`'s rigs), cached
    under the profile's studio / backbone / endtoend sections, NaiveFuse^full's rate, the test-set sizes, ``seed``,
    the target, the trial and the code of :data:`E2E_CODE`.

    The pool: ``endtoend.pool_frames`` frames of the target's training motions and cameras
    (:func:`mfcore.targets.target_images`, split "train"), rendered on ``device`` and kept there as uint8. The network:
    the warm-up backbone of ``seed`` (:func:`mfcore.backbone.warmup_backbone`) and a zero NaiveFuse over every ordered
    pair of the rig's views, trained by :func:`train_end_to_end` (seed ``seed``). Then the test and stress frames of
    :func:`mfcore.targets.target_data` are rendered again (the same frames: their labels are checked) and read.
    Returns CPU tensors: "views.<split>" and "fused.<split>" (N, V, J, 2) heatmap maxima in image pixels for the
    splits of :data:`mfcore.targets.HELD_OUT_SPLITS`; "view_loss" and "fused_loss" (steps,) float64; "seconds"
    (render_s, train_s) float64. The same training stores its test heatmaps for :func:`end_to_end_heatmaps`."""
    _check_target(target)
    _check_trial(target, trial, profile)
    device, key = torch.device(device), _key(target, trial, profile, seed)

    def build() -> dict[str, Tensor]:
        peaks, maps = _train_and_read(target, trial, profile, seed, device, progress)
        runtime.cached("endtoend_maps", key, lambda: maps, code=E2E_CODE)  # the same training's maps
        return peaks

    return runtime.cached("endtoend", key, build, code=E2E_CODE)


def end_to_end_heatmaps(target: str, trial: int, profile, seed: int, device, *, progress: bool = False) -> dict:
    """The test split's heatmaps of :func:`end_to_end_peaks`' trained network: "views" (its backbone alone,
    E2EBackbone) and "fused" (NaiveFuseFullE2E), (N, V, J, h, w) float32 on the CPU (stored as float16). They come
    from the same training as the peaks (one training fills both cache entries; a missing one is rebuilt by training
    again the same way)."""
    _check_target(target)
    _check_trial(target, trial, profile)
    device, key = torch.device(device), _key(target, trial, profile, seed)

    def build() -> dict[str, Tensor]:
        peaks, maps = _train_and_read(target, trial, profile, seed, device, progress)
        runtime.cached("endtoend", key, lambda: peaks, code=E2E_CODE)
        return maps

    return {kind: m.float().cpu() for kind, m in runtime.cached("endtoend_maps", key, build, code=E2E_CODE).items()}


def end_to_end_rows(target: str, trial: int, profile, seed: int, device, *, progress: bool = False,
                    frame_rows: list | None = None) -> list[dict]:
    """JDR rows of :func:`end_to_end_peaks` (:func:`mfcore.metrics.peak_jdr_rows`: columns rig, trial, method, k,
    split, joint, jdr, threshold; methods :data:`METHODS`, k = the pool's frames), on the test and stress frames. With
    ``frame_rows`` (a list), the per-frame detections of the test frames at the book's threshold are appended to it
    (:func:`mfcore.metrics.peak_jdr_frame_rows`, the columns of chapter 4's ``jdr_frames.csv``)."""
    peaks = end_to_end_peaks(target, trial, profile, seed, device, progress=progress)
    labels = target_data(target, trial, profile, seed, device)
    image_px, k = profile.studio.image_px, profile.endtoend.pool_frames
    rows = []
    for kind, method in METHODS.items():
        cols = dict(rig=target, trial=trial, method=method, k=k)
        for split in HELD_OUT_SPLITS:
            rows += metrics.peak_jdr_rows(peaks[f"{kind}.{split}"], labels[split], image_px, **cols, split=split)
        if frame_rows is not None:
            frame_rows += metrics.peak_jdr_frame_rows(peaks[f"{kind}.test"], labels["test"], image_px, "half_head",
                                                      **cols, split="test")
    return rows


def losses(target: str, trial: int, profile, seed: int, device) -> list[dict]:
    """The training curve of :func:`end_to_end_peaks`: rows rig, trial, step, view_loss, fused_loss (the two terms of
    every Adam step)."""
    peaks = end_to_end_peaks(target, trial, profile, seed, device)
    return [dict(rig=target, trial=trial, step=i + 1, view_loss=float(a), fused_loss=float(b))
            for i, (a, b) in enumerate(zip(peaks["view_loss"].tolist(), peaks["fused_loss"].tolist()))]


def seconds(target: str, trial: int, profile, seed: int, device) -> dict:
    """Wall seconds of the build behind :func:`end_to_end_peaks`'s entry (also when it came from the cache): rig, trial,
    render_s (the pool, on the device) and train_s (the joint training)."""
    render_s, train_s = end_to_end_peaks(target, trial, profile, seed, device)["seconds"].tolist()
    return dict(rig=target, trial=trial, render_s=render_s, train_s=train_s)
