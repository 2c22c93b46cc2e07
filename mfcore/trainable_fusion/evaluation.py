"""Scoring Tekin's networks: per-sample MPJPE and PA-MPJPE of every member (Table 5), and inference time (pruning).

Two context rows frame Table 5: the constant mean training pose (:func:`mean_pose_errors`, what a network that learned
nothing from its input scores) and a lifter from the ground-truth 2D joints (:class:`PerfectLifter`, what the
confidence-map stream could reach from perfect 2D on the same samples).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .. import skeleton
from ..metrics import mpjpe_mm, pa_mpjpe_mm
from ..profiles import Profile
from .layers import MemberLinear, MemberModel, dropout_members
from .network import FC_WIDTH_PER_CHANNEL, OUTPUT_INIT_SCALE, check_int, layer_generator
from .samples import MonocularSamples, crop_sides_px

Tensor = torch.Tensor


def errors_mm(pred_m: Tensor, gt_m: Tensor) -> dict[str, Tensor]:
    """MPJPE and PA-MPJPE (mm) of every prediction, on the CPU: pred (N, …, J, 3) against gt (N, J, 3) (broadcast
    over the axes between, e.g. the members) → {"mpjpe_mm": (N, …), "pa_mpjpe_mm": (N, …)}."""
    gt_m = gt_m.to(pred_m).view(gt_m.shape[0], *([1] * (pred_m.dim() - gt_m.dim())), *gt_m.shape[1:])
    gt_m = gt_m.expand_as(pred_m)
    return {"mpjpe_mm": mpjpe_mm(pred_m, gt_m).cpu(), "pa_mpjpe_mm": pa_mpjpe_mm(pred_m, gt_m).cpu()}


@torch.no_grad()
def predict_joints_m(net: nn.Module, data: MonocularSamples, batch_size: int | None = None,
                     amp: bool = False) -> Tensor:
    """Every member's 3D joints for all samples, (N, M, J, 3) metres, on the device of the network; the members read
    the same samples (a :class:`.network.FusionNet`, or a :class:`PerfectLifter` reading ``joints_2d_px``).
    ``batch_size`` samples per forward pass (default: 512 member-samples, at least 8 samples, so that a large
    ensemble's features stay small)."""
    batch_size = max(8, 512 // net.members) if batch_size is None else check_int("batch_size", batch_size, 1)
    device = next(net.parameters()).device
    net.eval()
    out = []
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            if isinstance(net, PerfectLifter):
                out.append(net(data.joints_2d_px[rows].to(device)).float())
            else:
                images = data.images[rows].to(device).float() if "image" in net.streams else None
                maps = data.confidence_maps[rows].to(device).float() if "cm" in net.streams else None
                out.append(net(images, maps).float())
    return torch.cat(out)


def evaluate_members(net: nn.Module, data: MonocularSamples, batch_size: int | None = None,
                     amp: bool = False) -> dict[str, Tensor]:
    """Per-sample MPJPE and PA-MPJPE (mm) of every member on ``data``, {"mpjpe_mm": (N, M), "pa_mpjpe_mm": (N, M)}
    on the CPU: the units of Table 5's paired comparisons (:mod:`mfcore.stats`)."""
    return errors_mm(predict_joints_m(net, data, batch_size, amp), data.joints_3d_m)


def mean_pose_errors(train: MonocularSamples | Tensor, test: MonocularSamples) -> dict[str, Tensor]:
    """Per-sample MPJPE and PA-MPJPE (mm), (N,) each, of the constant predictor "the mean training pose"
    (root-relative, camera frame): the floor any network must beat to have learned anything from its input.
    ``train``: the training samples, or their poses (N, J, 3) metres alone."""
    poses = train.joints_3d_m if isinstance(train, MonocularSamples) else train
    mean = poses.float().mean(0).to(test.joints_3d_m.device)
    return errors_mm(mean.expand_as(test.joints_3d_m).float(), test.joints_3d_m.float())


class PerfectLifter(MemberModel):
    """Context row, M members: an MLP from the ground-truth 2D joints in crop pixels, (B, J, 2) shared or (B, M, J, 2)
    per member, to the 3D pose (B, M, J, 3) metres, with the fusion networks' fully connected width, dropout and
    target standardisation."""

    def __init__(self, crop_px: int, width: int, num_joints: int = skeleton.NUM_JOINTS, dropout: float = 0.0,
                 seeds=(0,)):
        super().__init__()
        check_int("crop_px", crop_px, 2)
        check_int("width", width, 1)
        for s in seeds:
            check_int("seed", s, 0)
        self._init_members(seeds, num_joints, dropout)
        self.crop_px = crop_px
        gens = lambda k: [layer_generator(s, "lifter", k) for s in self.seeds]  # noqa: E731
        self.hidden = nn.ModuleList([MemberLinear(gens(1), 2 * num_joints, width), MemberLinear(gens(2), width, width)])
        for k in range(len(self.hidden)):
            self._add_noise_slice(("lifter", k), width)
        self.head = MemberLinear(gens(3), width, 3 * num_joints, OUTPUT_INIT_SCALE)

    def forward(self, joints_2d_px: Tensor, noise: Tensor | None = None) -> Tensor:
        x = (joints_2d_px.float() / (self.crop_px - 1)) * 2 - 1  # crop pixels → [-1, 1]
        x = x.unsqueeze(1).expand(-1, self.members, -1, -1) if x.dim() == 3 else x
        x = x.flatten(2).transpose(0, 1)  # (M, B, 2J)
        noise = noise if self.training else None
        for k, layer in enumerate(self.hidden):
            x = dropout_members(torch.relu(layer(x)), self._noise(noise, ("lifter", k)), self.dropout)
        return self._to_metres(self.head(x))


def build_perfect_lifter(profile: Profile, seeds, num_joints: int = skeleton.NUM_JOINTS) -> PerfectLifter:
    """The lifter at the profile's sizes: the fusion networks' FC width and dropout, one member per seed."""
    sizes = profile.trainable_fusion
    crop_px, _ = crop_sides_px(profile)
    return PerfectLifter(crop_px, FC_WIDTH_PER_CHANNEL * sizes.channels, num_joints, sizes.dropout, tuple(seeds))


@torch.no_grad()
def inference_ms_per_image(net: nn.Module, images: Tensor, confidence_maps: Tensor, repeats: int = 10,
                           warmup: int = 2, amp: bool = False) -> float:
    """Median wall time of one forward pass of ``net`` over the given batch, in ms per image and member (CUDA
    synchronised)."""
    check_int("repeats", repeats, 1)
    check_int("warmup", warmup, 0)
    net.eval()
    device = images.device
    use_amp = amp and device.type == "cuda"

    def once():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            net(images, confidence_maps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1000.0 * times[len(times) // 2] / (images.shape[0] * getattr(net, "members", 1))

