"""Layers that hold M networks at once: an ensemble trained as one program (one kernel per layer for all members).

Each member has its own weights; the layers apply every member's weights to that member's features in one call, so a
step of M networks launches the kernels of one network (a step of Tekin's small networks is launch-bound on a GPU).
The members axis follows the batch axis:

* convolutional features ``(B, M, C, H, W)``: a grouped convolution with ``groups = M`` over the ``(B, M·C, H, W)``
  view (:class:`MemberConv2d`);
* fully connected features ``(M, B, F)``: a batched matrix product (:class:`MemberLinear`).

Every parameter has the members axis first, so member m's weights are ``p[m]`` for every parameter ``p`` (what
:func:`mfcore.trainable_fusion.network.select_members` and pruning slice). With M = 1 a layer computes exactly what
``nn.Conv2d`` / ``nn.Linear`` compute with the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


def kaiming_relu_(weight: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
    """He initialisation for a ReLU layer (``weight`` (out, in, ...), fan-in mode) from ``generator``, times
    ``scale`` (in place); the draws are those of ``nn.init.kaiming_normal_`` on the same tensor."""
    with torch.no_grad():
        nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
        weight.mul_(scale)
    return weight


class MemberConv2d(nn.Module):
    """M 3×3 convolutions (padding 1, stride 1): ``(B, M, c_in, H, W) → (B, M, c_out, H, W)``.

    ``weight`` (M, c_out, c_in, 3, 3), ``bias`` (M, c_out); member m's weights are initialised from
    ``generators[m]`` (He, zero bias). ``grouped``: one grouped convolution for all members (one kernel); otherwise
    one convolution per member (M kernels, each a plain dense convolution: the fallback where a GPU's grouped
    kernels are slower than M dense ones; the result is the same up to float rounding)."""

    def __init__(self, generators: list[torch.Generator], c_in: int, c_out: int, grouped: bool = True):
        super().__init__()
        self.members, self.c_in, self.c_out, self.grouped = len(generators), c_in, c_out, bool(grouped)
        self.weight = nn.Parameter(torch.stack([kaiming_relu_(torch.empty(c_out, c_in, 3, 3), g) for g in generators]))
        self.bias = nn.Parameter(torch.zeros(self.members, c_out))

    def forward(self, x: Tensor) -> Tensor:
        b, m, c, h, w = x.shape
        if m != self.members or c != self.c_in:
            raise ValueError(f"expected (B, {self.members}, {self.c_in}, H, W) features, got {tuple(x.shape)}")
        if not self.grouped and m > 1:
            return torch.stack([F.conv2d(x[:, k], self.weight[k], self.bias[k], padding=1) for k in range(m)], dim=1)
        y = F.conv2d(x.reshape(b, m * c, h, w), self.weight.flatten(0, 1), self.bias.flatten(), padding=1, groups=m)
        return y.unflatten(1, (m, self.c_out))


class MemberLinear(nn.Module):
    """M fully connected layers: ``(M, B, f_in) → (M, B, f_out)``, one batched matrix product.

    ``weight`` (M, f_out, f_in) (``nn.Linear``'s layout per member), ``bias`` (M, f_out); He initialisation from
    ``generators[m]``, times ``scale`` (the output layer starts 100× smaller, near its bias)."""

    def __init__(self, generators: list[torch.Generator], f_in: int, f_out: int, scale: float = 1.0):
        super().__init__()
        self.members, self.f_in, self.f_out = len(generators), f_in, f_out
        self.weight = nn.Parameter(torch.stack([kaiming_relu_(torch.empty(f_out, f_in), g, scale)
                                                for g in generators]))
        self.bias = nn.Parameter(torch.zeros(self.members, f_out))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[0] != self.members or x.shape[2] != self.f_in:
            raise ValueError(f"expected ({self.members}, B, {self.f_in}) features, got {tuple(x.shape)}")
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def max_pool_members(x: Tensor) -> Tensor:
    """2×2 max-pooling of ``(B, M, C, H, W)`` features, every member alike."""
    b, m, c, h, w = x.shape
    return F.max_pool2d(x.reshape(b, m * c, h, w), 2).unflatten(1, (m, c))


def conv_to_fc(x: Tensor) -> Tensor:
    """Convolutional features ``(B, M, C, H, W)`` → fully connected ones ``(M, B, C·H·W)`` (each member's features
    flattened in (C, H, W) order, as ``nn.Flatten`` does for one network)."""
    return x.transpose(0, 1).flatten(2)


class MemberModel(nn.Module):
    """What every ensemble model of the chapter shares: its members' seeds, its dropout rate, and each member's
    standardisation of the targets (``pose_mean_m``, ``pose_scale_m`` (M, J, 3) metres; identity until
    :meth:`set_pose_normalisation`): the model's raw output is the standardised pose, ``forward`` returns
    ``pose_mean_m + pose_scale_m · raw``."""

    def _init_members(self, seeds, num_joints: int, dropout: float) -> None:
        self.seeds, self.num_joints, self.dropout = tuple(seeds), num_joints, float(dropout)
        self.noise_slices: dict[tuple[str, int], tuple[int, int]] = {}  # dropout uniforms of each layer with dropout
        self.register_buffer("pose_mean_m", torch.zeros(len(self.seeds), num_joints, 3))
        self.register_buffer("pose_scale_m", torch.ones(len(self.seeds), num_joints, 3))

    @property
    def members(self) -> int:
        return len(self.seeds)

    @property
    def noise_units(self) -> int:
        """Dropout uniforms one sample needs per member in training (every layer with dropout, its neurons)."""
        return sum(e - b for b, e in self.noise_slices.values())

    def _add_noise_slice(self, key: tuple[str, int], units: int) -> None:
        start = self.noise_units
        self.noise_slices[key] = (start, start + units)

    def _noise(self, noise: Tensor | None, key: tuple[str, int]) -> Tensor | None:
        if noise is None or key not in self.noise_slices:
            return None
        b, e = self.noise_slices[key]
        return noise[..., b:e]

    def set_pose_normalisation(self, mean_m: Tensor, scale_m: Tensor) -> None:
        """Each member's target standardisation, mean and scale (M, J, 3) metres (or (J, 3) for all members)."""
        want = (self.members, self.num_joints, 3)
        mean_m, scale_m = (t.expand(want) if t.dim() == 2 else t for t in (mean_m, scale_m))
        if tuple(mean_m.shape) != want or tuple(scale_m.shape) != want:
            raise ValueError(f"pose normalisation must be {want} (or ({self.num_joints}, 3)), got "
                             f"{tuple(mean_m.shape)} and {tuple(scale_m.shape)}")
        self.pose_mean_m.copy_(mean_m.to(self.pose_mean_m))
        self.pose_scale_m.copy_(scale_m.to(self.pose_scale_m))

    def _to_metres(self, raw: Tensor) -> Tensor:
        """(M, B, 3J) standardised output → (B, M, J, 3) metres."""
        raw = raw.float().unflatten(2, (self.num_joints, 3)).transpose(0, 1)
        return self.pose_mean_m + self.pose_scale_m * raw


def dropout_members(x: Tensor, noise: Tensor | None, p: float) -> Tensor:
    """Dropout of ``(M, B, F)`` features with the uniforms ``noise`` (M, B, F) in [0, 1): a unit is dropped where its
    uniform is below ``p``, the others scaled by 1 / (1 − p) (``nn.Dropout``'s rule). ``noise=None`` or ``p = 0``: the
    identity (evaluation). The uniforms come from each member's own generator (:mod:`.training`), so a member draws
    the same masks whether it is trained alone or in an ensemble."""
    if noise is None or p == 0:
        return x
    if noise.shape != x.shape:
        raise ValueError(f"dropout noise must have the features' shape {tuple(x.shape)}, got {tuple(noise.shape)}")
    return x * (noise >= p).to(x.dtype) * (1.0 / (1.0 - p))
