"""The 2D pose backbone of MetaFuse: SimpleBaseline (Xiao et al. 2018) = ResNet + three deconvolutions -> J heatmaps.

MetaFuse Sec. 5.1 uses ResNet-50 at 256x256 input and 64x64 heatmaps; here the depth (10/18/34/50) and widths come from
the profile (``profile.backbone``). The ResNet is written here (no torchvision). Warm-up (Sec. 4.2, 5.1): Adam, MSE to
Gaussian targets, the paper's step schedule 1e-3 -> 1e-4 at 15/30 -> 1e-5 at 25/30 of the epochs (scaled to the
profile's epoch count); the backbone is then frozen and its heatmaps of every frame are computed once and cached.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data, runtime
from .geometry import scale_pixels
from .optim import adam, autocast
from .studio import get_rig, rig_digest

# The code behind the warm-up backbone's cache entry and behind its cached heatmaps: the backbone, the frames it learns
# from and is run on (data, render, studio, motion), and what those import (mfbook.cache.code_closure adds it). Nothing
# downstream of the heatmaps (fusion, MAML, the oracle, the 3D estimators, the claims) is part of it.
BACKBONE_CODE = ("backbone", "data", "render", "studio", "motion")
HEATMAPS_CODE = BACKBONE_CODE  # the heatmaps are the backbone's output on the rendered frames: the same code

RESNET_BLOCKS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = _shortcut(c_in, c, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c * 4)
        self.shortcut = _shortcut(c_in, c * 4, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class PoseResNet(nn.Module):
    """SimpleBaseline: images (B, 3, H, W) in [0, 1] -> heatmaps (B, J, H/4, W/4).

    ResNet-``depth`` (stem 7x7/2 + max-pool/2, four stages of widths width*(1, 2, 4, 8), stride 32), then three 4x4
    stride-2 deconvolutions of ``deconv_channels`` (BN + ReLU) and a 1x1 convolution to ``num_joints`` heatmaps.
    """

    def __init__(self, depth: int = 50, width: int = 64, deconv_channels: int = 256, num_joints: int = 17):
        super().__init__()
        if depth not in RESNET_BLOCKS:
            raise ValueError(f"resnet depth {depth!r} is not supported; choose one of {sorted(RESNET_BLOCKS)}")
        for name, value in (("width", width), ("deconv_channels", deconv_channels), ("num_joints", num_joints)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        kind, counts = RESNET_BLOCKS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.width, self.deconv_channels, self.num_joints = depth, width, deconv_channels, num_joints
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        stages, c_in = [], width
        for i, n in enumerate(counts):
            c = width * 2 ** i
            blocks = []
            for k in range(n):
                blocks.append(block(c_in, c, 2 if (k == 0 and i > 0) else 1))
                c_in = c * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        deconvs = []
        for _ in range(3):
            deconvs += [nn.ConvTranspose2d(c_in, deconv_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(deconv_channels),
                        nn.ReLU(inplace=True)]
            c_in = deconv_channels
        self.deconvs = nn.Sequential(*deconvs)
        self.head = nn.Conv2d(deconv_channels, num_joints, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d) or m is self.head:
                nn.init.normal_(m.weight, std=0.001)  # as SimpleBaseline
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-1] % 32 or images.shape[-2] % 32:
            raise ValueError(f"images must be (B, 3, H, W) with H and W multiples of 32; got {tuple(images.shape)}")
        return self.head(self.deconvs(self.stages(self.stem(images))))


def model_from_profile(profile, num_joints: int = 17) -> PoseResNet:
    """The profile's SimpleBaseline (``profile.backbone``)."""
    b = profile.backbone
    return PoseResNet(b.resnet_depth, b.width, b.deconv_channels, num_joints)


def warmup_lr(epoch: int, epochs: int, lr: float) -> float:
    """The paper's step schedule scaled to ``epochs``: lr until 15/30, lr/10 until 25/30, then lr/100 (Sec. 5.1)."""
    drops = int(epoch >= round(epochs * 15 / 30)) + int(epoch >= round(epochs * 25 / 30))
    return lr * 0.1 ** drops


def _channels_last(x: Tensor, device: torch.device) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def train_backbone(model: PoseResNet, images: Tensor, heatmaps, *, epochs: int, batch_size: int, lr: float,
                   seed: int, device, progress: bool = True) -> list[float]:
    """Warm-up (MetaFuse Sec. 4.2): Adam on the MSE between predicted and Gaussian target heatmaps.

    images (N, 3, H, W) float in [0, 1] or uint8 (CPU or device); heatmaps (N, J, H/4, W/4), or a function of a frame
    index tensor returning those targets (so that large sets need not hold their heatmaps). Shuffled with ``seed``;
    the schedule of :func:`warmup_lr`; bf16 autocast + channels_last on CUDA. Returns the mean loss of every epoch.
    """
    device = torch.device(device)
    n = images.shape[0]
    target_of = heatmaps if callable(heatmaps) else (lambda idx: heatmaps[idx])
    if not callable(heatmaps) and heatmaps.shape[0] != n or n == 0:
        raise ValueError(f"images ({n}) and heatmaps ({heatmaps.shape[0]}) must hold the same number (>0) of frames")
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive integers; got {epochs!r}, {batch_size!r}")
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = runtime.progress(range(epochs), desc="warm-up", disable=not progress)
    for epoch in bar:
        for group in opt.param_groups:
            group["lr"] = warmup_lr(epoch, epochs, lr)
        order = torch.randperm(n, generator=gen)
        total = torch.zeros((), device=device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x = _as_float_images(images[idx.to(images.device)].to(device, non_blocking=True))
            y = target_of(idx.to(images.device)).to(device, non_blocking=True).float()
            with autocast(device):
                pred = model(_channels_last(x, device))
            loss = F.mse_loss(pred.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.numel()
        history.append(float(total) / n)
        bar.set_postfix(loss=f"{history[-1]:.3g}")
    return history


def _as_float_images(x: Tensor) -> Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def predict_heatmaps(model: PoseResNet, images: Tensor, *, batch_size: int = 64, device=None) -> Tensor:
    """Heatmaps of a frozen backbone: images (..., 3, H, W) -> (..., J, H/4, W/4) float32 on ``images``' device."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    flat = images.reshape(-1, *images.shape[-3:])
    outs = []
    for start in range(0, flat.shape[0], batch_size):
        x = _channels_last(_as_float_images(flat[start:start + batch_size].to(device)), device)
        with autocast(device):
            outs.append(model(x).float().to(images.device))
    out = torch.cat(outs) if outs else images.new_zeros(0, model.num_joints, images.shape[-2] // 4,
                                                      images.shape[-1] // 4)
    return out.reshape(*images.shape[:-3], *out.shape[1:])


def freeze(model: nn.Module) -> nn.Module:
    """No gradients, eval mode (the backbone after warm-up, Sec. 4.2)."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


WARMUP_RIGS = ("dome", "h36m", "totalcapture")
HISTORY_KEY = "__warmup_loss__"
SECONDS_KEY = "__warmup_seconds__"  # (render, train) wall seconds of the build that produced the cached weights


def _sync(device: torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def warmup_backbone(profile, seed: int, device) -> PoseResNet:
    """The warmed-up, frozen SimpleBaseline of ``profile`` (cached state_dict; rebuilt when missing or stale); its
    ``warmup_history`` holds the mean loss of every epoch.

    Trained on ``profile.backbone.warmup_frames`` multi-view frames split evenly over the training views/motions of the
    dome, the H36M-like rig (training subject) and the Total-Capture-like rig, every view an image.
    """
    device = torch.device(device)
    b, s = profile.backbone, profile.studio
    key = dict(sizes=profile.as_dict()["backbone"], studio=profile.as_dict()["studio"], seed=seed)

    def build() -> dict[str, Tensor]:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        images, joints_hm = [], []  # images kept as uint8 on the device, targets drawn per batch from the labels
        per_rig = max(1, b.warmup_frames // len(WARMUP_RIGS))
        for k, rig in enumerate(WARMUP_RIGS):
            for batch in data.iter_multiview(rig, "train", per_rig, profile, seed + 1000 * k, device, batch_size=256):
                images.append((batch.images.flatten(0, 1) * 255).round().to(torch.uint8))
                joints_hm.append(scale_pixels(batch.joints_2d_px.flatten(0, 1), s.image_px, s.heatmap_px))
        images, joints_hm = torch.cat(images), torch.cat(joints_hm)
        _sync(device)
        t1 = time.perf_counter()
        model = model_from_profile(profile)
        history = train_backbone(model, images, lambda idx: data.gaussian_heatmaps(joints_hm[idx], s.heatmap_px,
                                                                         s.heatmap_sigma_px),
                       epochs=b.warmup_epochs, batch_size=b.batch_size, lr=b.lr, seed=seed, device=device)
        # 0-dim entries (BN batch counters) are stored as (1,) tensors
        state = {k: v.detach().cpu().reshape(-1) if v.dim() == 0 else v.detach().cpu().contiguous()
                 for k, v in model.state_dict().items()}
        _sync(device)
        seconds = torch.tensor([t1 - t0, time.perf_counter() - t1], dtype=torch.float64)
        return {**state, HISTORY_KEY: torch.tensor(history, dtype=torch.float64), SECONDS_KEY: seconds}

    state = runtime.cached("backbone", key, build, code=BACKBONE_CODE)
    model = model_from_profile(profile)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.reshape(shapes[k]) for k, v in state.items() if k not in (HISTORY_KEY, SECONDS_KEY)})
    model.warmup_history = state[HISTORY_KEY].tolist()  # mean MSE of every warm-up epoch
    # wall seconds of the build behind these weights (also when they came from the cache): rendering, training
    model.warmup_seconds = dict(zip(("render_s", "train_s"), state[SECONDS_KEY].tolist()))
    return freeze(model.to(device))


# The Gaussian targets of a heatmaps entry are not stored: they are exactly the outer product of their factors
# (mfcore.data.gaussian_factors of the 2D labels), which take 2·64 floats per joint instead of 64² (1.7 GB of the dome's
# meta-training entry at full scale). Rebuilt on every call, bit-identical to the float16 targets stored before.
TARGET_FACTORS = ("target_gy", "target_gx")


def gaussian_targets(gy: Tensor, gx: Tensor, chunk_maps: int = 256, dtype: torch.dtype = torch.float32) -> Tensor:
    """The heatmap targets of :func:`cached_heatmaps` from their factors: gy (..., J, h), gx (..., J, w) float32 →
    gy ⊗ gx (..., J, h, w) float32, rounded to float16 precision (as the entries held them when they stored the targets
    as float16, so that every number of the book stays as it was). ``dtype`` float16 returns the same values at half
    the memory (exact: they are float16 numbers). ``chunk_maps`` maps at a time through small scratch buffers (one
    pass over the output instead of three); the result does not depend on it."""
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"dtype must be torch.float32 or torch.float16; got {dtype!r}")
    if gy.shape[:-1] != gx.shape[:-1]:
        raise ValueError(f"target factors gy {tuple(gy.shape)} and gx {tuple(gx.shape)} must share their leading dims")
    h, w = gy.shape[-1], gx.shape[-1]
    out = torch.empty(*gy.shape, w, dtype=dtype, device=gy.device)
    flat_out, flat_y, flat_x = out.view(-1, h, w), gy.reshape(-1, h).float(), gx.reshape(-1, w).float()
    product = torch.empty(min(chunk_maps, flat_out.shape[0]), h, w, device=gy.device)
    rounded = torch.empty_like(product, dtype=torch.float16)
    for s in range(0, flat_out.shape[0], chunk_maps):
        k = min(chunk_maps, flat_out.shape[0] - s)
        torch.mul(flat_y[s:s + k, :, None], flat_x[s:s + k, None, :], out=product[:k])  # gaussian_heatmaps' product
        rounded[:k].copy_(product[:k])
        flat_out[s:s + k].copy_(rounded[:k])
    return out


def cached_heatmaps(rig_name, split: str, n_frames: int, profile, seed: int, device, *, views=None,
                    backbone_seed: int | None = None, batch_frames: int = 64,
                    dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Backbone heatmaps of ``n_frames`` frames of a rig, computed once and cached (MetaFuse Sec. 5.1: meta-training
    runs on pre-computed heatmaps).

    Frames: :func:`mfcore.data.make_multiview` (``split``, ``seed``); backbone: :func:`warmup_backbone` of
    ``backbone_seed`` (default ``seed``). ``views``: camera indices kept (default all). Returns CPU tensors:
    "pred" (N, V, J, h, w) backbone heatmaps (float32; stored as float16) and "target" (N, V, J, h, w) Gaussian targets
    (float32 at float16 precision; stored as their factors, :func:`gaussian_targets`), "joints_2d_px" (N, V, J, 2) image
    px, "visible" (N, V, J), "joints_3d_m" (N, J, 3), "projections" (V, 3, 4) and "focal_px" (V,) at image resolution,
    "sensor_px_per_view_px" (V,) (sensor pixels per image pixel, :meth:`mfcore.studio.Rig.sensor_px_per_view_px`: the
    JDR threshold is in sensor pixels). ``dtype`` float16: "pred" and "target" as float16, the same numbers at half the
    host memory (the paper-regime pool of chapter 4c, 5,000 frames × 20 views, is 2 × 14 GB so, not 2 × 28 GB, and fits
    the GPU whole); every trainer reads mini-batches back as float32.
    """
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"dtype must be torch.float32 or torch.float16; got {dtype!r}")
    device = torch.device(device)
    bseed = seed if backbone_seed is None else backbone_seed
    keep = None if views is None else [int(v) for v in views]
    # a built-in rig by its name (its numbers come from the code, which the key covers); any other rig by its numbers
    builtin = isinstance(rig_name, str) and Path(rig_name).suffix.lower() not in (".yaml", ".yml", ".json")
    key = dict(rig=rig_name if builtin else f"{get_rig(rig_name).name}-{rig_digest(get_rig(rig_name))[:16]}", split=split, n_frames=n_frames, seed=seed, backbone_seed=bseed, views=keep,
               studio=profile.as_dict()["studio"], backbone=profile.as_dict()["backbone"])
    s = profile.studio

    def build() -> dict[str, Tensor]:
        model = warmup_backbone(profile, bseed, device)
        pred = None  # (N, V, J, h, w) float16, filled batch by batch (no list of parts to concatenate)
        parts: dict[str, list[Tensor]] = {k: [] for k in (*TARGET_FACTORS, "joints_2d_px", "visible", "joints_3d_m")}
        projections, start = None, 0
        rig = get_rig(rig_name) if keep is None else get_rig(rig_name).subset(keep)  # render only the kept views
        for batch in data.iter_multiview(rig, split, n_frames, profile, seed, device, batch_size=batch_frames):
            heatmaps = predict_heatmaps(model, batch.images).half()
            if pred is None:
                pred = torch.empty(n_frames, *heatmaps.shape[1:], dtype=torch.float16)
            pred[start:start + batch.num_frames].copy_(heatmaps)
            start += batch.num_frames
            # the factors of batch.heatmaps: the same function of the same labels on the same device
            gy, gx = data.gaussian_factors(scale_pixels(batch.joints_2d_px, s.image_px, s.heatmap_px), s.heatmap_px,
                                           s.heatmap_sigma_px)
            parts["target_gy"].append(gy.cpu())
            parts["target_gx"].append(gx.cpu())
            parts["joints_2d_px"].append(batch.joints_2d_px.cpu())
            parts["visible"].append(batch.visible.cpu())
            parts["joints_3d_m"].append(batch.joints_3d_m.cpu())
            projections = batch.projections.cpu()
        view = rig.at_resolution(s.image_px)
        return {"pred": pred, **{k: torch.cat(v) for k, v in parts.items()}, "projections": projections,
                "focal_px": view.focal_px(), "sensor_px_per_view_px": view.sensor_px_per_view_px()}

    out = runtime.cached("heatmaps", key, build, code=HEATMAPS_CODE)
    return {"pred": out["pred"].to(dtype), "target": gaussian_targets(*(out[k] for k in TARGET_FACTORS), dtype=dtype),
            **{k: v for k, v in out.items() if k not in ("pred", *TARGET_FACTORS)}}
