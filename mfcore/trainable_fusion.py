"""Tekin et al.'s two-stream network with a trainable fusion stream (ICCV 2017, "Learning to fuse 2D and 3D image cues").

An *image stream* reads the image, a *confidence-map stream* reads the 17 confidence maps of the 2D backbone, and a
*fusion stream* reads, before each of its layers l + 1, the mixture of Eq. (1) of Tekin

    u_l = (1 − w_l) · concat(I_l, X_l) + w_l · Z_l ,        1 ≤ l ≤ L ,        u_0 = Z_0 = concat(I_0, X_0) ,

with the fusion weights of Eq. (3), ``w_l = sigmoid(α² (l − β))``. The network outputs Z_{L+1}: 17 root-relative 3D
joints in the camera frame, in metres, (B, 17, 3).

Choices, each a scaled-down reading of the paper's Fig. 2/3 (sizes from ``profile.trainable_fusion``):

* **α² in Eq. (3).** We use the slope α² (as the authors' released code) rather than α: the sharpness can never turn
  negative, so w is always a non-decreasing step in l and "fuse at β" keeps its meaning (a trained model can always be
  pruned). The penalty of Eq. (4) stays λ/α² on the same parameter α. α starts at 0.1 (slope 0.01), β at L/2.
* **Input alignment.** Eq. (1) needs I_l and X_l of the same height and width. The confidence maps are at h = H/4, so
  I_0 is the image rearranged *losslessly* by space-to-depth (pixel unshuffle by 4): (3·16, h, w). Nothing of the image
  is lost and every stream starts at the confidence maps' resolution (up-sampling the maps instead would make the
  fusion stream 16× costlier for no new information).
* **Layers.** L = ``layers`` data layers per stream: L − 2 convolutional blocks (3×3 convolution, ReLU, then 2×2
  max-pooling while the side stays ≥ 4) and 2 fully connected layers (ReLU), as Fig. 3's conv-then-FC design; the
  fusion stream has the same L layers with the channels of both streams added (Z_l has the size of concat(I_l, X_l),
  as Eq. (1) requires) plus its output layer L + 1, a linear map to 3·17. Data-stream convolutions have
  ``channels`` channels, fully connected layers ``8 · channels`` neurons.
* **Person-centred crops.** Every sample is the square window around its person (side ``CROP_SCALE`` × the larger
  extent of the ground-truth 2D joints, as the H36M protocol's ground-truth boxes), resampled to
  ``profile.trainable_fusion.crop_px`` for the image and ``crop_px / 4`` for the confidence maps, the same window in
  both (:func:`person_boxes_px`, :func:`crop_square`). The renderer and the 2D backbone still see the studio's
  fixed person-centred view (:mod:`mfcore.studio`); only Tekin's networks read the crops.
* **Normalised, root-relative targets.** The target is the camera-frame pose minus the pelvis, standardised per
  joint and coordinate with the training set's mean and standard deviation (:class:`PoseNormaliser`; the pelvis,
  always 0, keeps a unit scale). The network predicts the standardised pose; ``forward`` returns metres (the buffers
  ``pose_mean_m``/``pose_scale_m`` undo the standardisation) and the loss of Eq. (2) is taken in standardised units,
  so every joint and coordinate weighs alike whatever its spread.
* **Dropout** (the paper's regulariser, Sec. 3.1: "dropout and data augmentation"; its rate is not given) after every
  hidden fully connected layer, at ``profile.trainable_fusion.dropout``; the studio's pose/placement/scene sampling is
  the data augmentation. In eval mode dropout is the identity, so a pruned network still computes bit-for-bit what the
  unpruned one computes with binary weights. Training is deterministic in the seed (minibatch order, dropout masks
  and initial weights all follow it).
* **Learning rates.** Adam at 10⁻³ for the network and for α and β (Sec. 3.1): ``fusion_lr`` defaults to the paper's
  rate. The chapter adds a *stated variant* with a faster rate for α and β only, because our training is far shorter
  than the paper's and at 10⁻³ α can move only by about 10⁻³ per step.
* **Loss.** Eq. (4) with the sum over samples replaced by the minibatch mean of ‖f − y‖² in standardised units
  (summed over joints and coordinates), so λ does not depend on the batch size; λ (``lambda_alpha``) is chosen so
  λ/α² at the start is of the order of the data term at the start (≈ 48: 16 non-root joints × 3 unit variances), as
  the paper's 5·10³ does for its loss scale.

Configurations (Table 5 of Tekin): ``ImageOnly`` and ``CMOnly`` (one stream and its regression layer), ``EarlyFusion``
(β = 0: only the fusion stream, on concat(I_0, X_0)), ``LateFusion`` (β = L: both data streams, concatenated before the
output layer), ``FixedFusion`` (any β in 0..L, for a sweep: w_l = 1[l > β] and only the active layers exist) and
``TrainableFusion`` (all three streams, α and β learned).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import backbone as bb
from . import motion, runtime, skeleton, studio
from .data import render_multiview
from .geometry import scale_pixels
from .metrics import mpjpe_mm, pa_mpjpe_mm
from .optim import adam
from .profiles import Profile, TrainableFusionSizes, resolve_device

Tensor = torch.Tensor

METHODS = ("ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion", "FixedFusion")
STREAMS = ("image", "cm")
FC_LAYERS = 2  # fully connected layers at the end of each data stream (Fig. 3: convolutions, then FC)
FC_WIDTH_PER_CHANNEL = 8  # FC neurons per data-stream channel
MIN_CONV_SIDE = 4  # convolutional blocks pool by 2 while the feature side stays >= this
ALPHA_INIT = 0.1  # Sec. 3.1 of Tekin
NUM_COORDS = 3
CROP_SCALE = 1.25  # crop side / the larger extent of the ground-truth 2D joints (a margin of 12.5 % on each side)
MIN_CROP_SIDE_PX = 8.0  # a degenerate pose (all joints on one pixel) still gets a window
MIN_POSE_SCALE_M = 1e-3  # a joint coordinate with no spread (the pelvis, root-relative) keeps this scale (1 mm)


# ----------------------------------------------------------------------------------------------------------------------
# Fusion weights (Eq. 3)
# ----------------------------------------------------------------------------------------------------------------------

def sigmoid_fusion_weights(alpha: Tensor, beta: Tensor, layers: int) -> Tensor:
    """Eq. (3) of Tekin with slope α²: ``w_l = sigmoid(α² (l − β))`` for l = 1..L, (L,).

    α² → ∞ gives the indicator 1[l > β] (except at l = β, where w = ½); α = 0 mixes everything half and half.
    """
    _check_int("layers", layers, 1)
    alpha, beta = torch.as_tensor(alpha), torch.as_tensor(beta)
    l = torch.arange(1, layers + 1, dtype=torch.float32, device=alpha.device)
    return torch.sigmoid(alpha.float() ** 2 * (l - beta.float()))


def indicator_fusion_weights(beta: int, layers: int) -> Tensor:
    """Hard-coded fusion at layer β (Sec. 3.1 of Tekin): ``w_l = 1[l > β]``, l = 1..L, (L,) float."""
    _check_int("layers", layers, 1)
    _check_int("beta", beta, 0, layers)
    return (torch.arange(1, layers + 1) > beta).float()


# ----------------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------------

def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _layer_generator(seed: int, stream: str, layer: int) -> torch.Generator:
    """A generator for one layer's initial weights: the same layer gets the same weights in every configuration."""
    digest = hashlib.sha256(f"trainable_fusion/{seed}/{stream}/{layer}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _init_layer(module: nn.Module, gen: torch.Generator, output: bool = False) -> nn.Module:
    """He initialisation for ReLU layers; the output layer 100× smaller, so the network starts near its bias."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
            if output:
                m.weight.data.mul_(0.01)
            nn.init.zeros_(m.bias)
    return module


@dataclass(frozen=True)
class FusionArchitecture:
    """Layer sizes shared by all configurations: which layers are convolutional, their sides and widths."""

    image_px: int
    heatmap_px: int
    layers: int  # L
    channels: int
    num_joints: int
    dropout: float = 0.0  # after every hidden fully connected layer (Sec. 3.1 of Tekin)

    @property
    def space_to_depth(self) -> int:
        return self.image_px // self.heatmap_px

    @property
    def conv_layers(self) -> int:
        return self.layers - FC_LAYERS

    @property
    def fc_width(self) -> int:
        return FC_WIDTH_PER_CHANNEL * self.channels

    def input_channels(self, stream: str) -> int:
        return 3 * self.space_to_depth**2 if stream == "image" else self.num_joints

    def sides(self) -> list[int]:
        """Feature side after each convolutional block 0..L−2 (0 = the input, at the heatmap side)."""
        sides = [self.heatmap_px]
        for _ in range(self.conv_layers):
            s = sides[-1]
            sides.append(s // 2 if s // 2 >= MIN_CONV_SIDE else s)
        return sides

    def stream_layer(self, l: int, in_channels: int, out_channels: int, out_fc: int) -> nn.Module:
        """Layer l (1-based) of a stream: a conv block for l ≤ L−2, else a fully connected layer."""
        sides = self.sides()
        if l <= self.conv_layers:
            parts = [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            if sides[l] < sides[l - 1]:
                parts.append(nn.MaxPool2d(2))
            return nn.Sequential(*parts)
        if l == self.conv_layers + 1:
            in_features = in_channels * sides[-1] ** 2
            return nn.Sequential(nn.Flatten(), nn.Linear(in_features, out_fc), nn.ReLU(), nn.Dropout(self.dropout))
        return nn.Sequential(nn.Linear(in_channels, out_fc), nn.ReLU(), nn.Dropout(self.dropout))

    def width(self, l: int) -> int:
        """Channels (conv) or neurons (FC) of one data stream after layer l ≥ 1."""
        return self.channels if l <= self.conv_layers else self.fc_width


class FusionNet(nn.Module):
    """The fusion network of Tekin Fig. 3 for one configuration; ``forward(images, confidence_maps) -> (B, J, 3)`` m.

    ``streams``: ("image", "cm"), ("image",) or ("cm",). ``beta``: ``None`` for trainable fusion (α, β parameters,
    all layers of all three streams built), or an int in 0..L for fusion fixed at β (w_l = 1[l > β]; only the active
    layers exist: data-stream layers 1..β and fusion layers β+1..L+1). Layer l of a stream gets the same initial weights
    for a given ``seed`` in every configuration.
    """

    def __init__(self, image_px: int, heatmap_px: int, *, layers: int, channels: int,
                 streams: tuple[str, ...] = STREAMS, beta: int | None = None, alpha_init: float = ALPHA_INIT,
                 beta_init: float | None = None, num_joints: int = skeleton.NUM_JOINTS, seed: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        _check_int("image_px", image_px, 1)
        _check_int("heatmap_px", heatmap_px, 1)
        if image_px % heatmap_px:
            raise ValueError(f"image_px ({image_px}) must be a multiple of heatmap_px ({heatmap_px})")
        _check_int("layers", layers, FC_LAYERS + 1)
        _check_int("channels", channels, 1)
        _check_int("num_joints", num_joints, 1)
        _check_int("seed", seed, 0)
        streams = tuple(streams)
        if not streams or len(set(streams)) != len(streams) or any(s not in STREAMS for s in streams):
            raise ValueError(f"streams must be a non-empty subset of {STREAMS} without repeats, got {streams!r}")
        streams = tuple(s for s in STREAMS if s in streams)  # canonical order: image first (concat(I, X))
        if beta is not None:
            _check_int("beta", beta, 0, layers)
        if not (isinstance(alpha_init, (int, float)) and math.isfinite(alpha_init) and alpha_init > 0):
            raise ValueError(f"alpha_init must be a finite number > 0, got {alpha_init!r}")
        if beta_init is not None and not (isinstance(beta_init, (int, float)) and math.isfinite(beta_init)):
            raise ValueError(f"beta_init must be a finite number or None, got {beta_init!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")

        self.arch = FusionArchitecture(image_px, heatmap_px, layers, channels, num_joints, float(dropout))
        self.streams = streams
        self.fixed_beta = beta
        self.layers = layers
        self.num_joints = num_joints
        self.seed = seed
        a, L = self.arch, layers
        n = len(streams)
        if beta is None:
            self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
            self.beta = nn.Parameter(torch.tensor(float(L / 2 if beta_init is None else beta_init)))
        else:
            self.alpha = self.beta = None
        data_layers = range(1, L + 1) if beta is None else range(1, beta + 1)
        fusion_layers = range(1, L + 1) if beta is None else range(beta + 1, L + 1)
        self.image_stream = nn.ModuleDict()
        self.cm_stream = nn.ModuleDict()
        for s in streams:
            for l in data_layers:
                c_in = a.input_channels(s) if l == 1 else a.width(l - 1)
                layer = a.stream_layer(l, c_in, a.channels, a.fc_width)
                self._stream(s)[str(l)] = _init_layer(layer, _layer_generator(seed, s, l))
        self.fusion_stream = nn.ModuleDict()
        for l in fusion_layers:
            c_in = sum(a.input_channels(s) for s in streams) if l == 1 else n * a.width(l - 1)
            layer = a.stream_layer(l, c_in, n * a.channels, n * a.fc_width)
            self.fusion_stream[str(l)] = _init_layer(layer, _layer_generator(seed, "fusion", l))
        head = nn.Linear(n * a.fc_width, NUM_COORDS * num_joints)
        self.fusion_stream[str(L + 1)] = _init_layer(head, _layer_generator(seed, "fusion", L + 1), output=True)
        # the standardisation of the targets (identity until :meth:`set_pose_normalisation`): forward returns
        # pose_mean_m + pose_scale_m · (the network's standardised output)
        self.register_buffer("pose_mean_m", torch.zeros(num_joints, NUM_COORDS))
        self.register_buffer("pose_scale_m", torch.ones(num_joints, NUM_COORDS))

    def set_pose_normalisation(self, normaliser: "PoseNormaliser") -> None:
        """Use ``normaliser``'s mean and scale (J, 3) m: the network's raw output is the standardised pose."""
        if tuple(normaliser.mean_m.shape) != (self.num_joints, NUM_COORDS):
            raise ValueError(f"normaliser is for {tuple(normaliser.mean_m.shape)} poses, the network predicts "
                             f"({self.num_joints}, {NUM_COORDS})")
        self.pose_mean_m.copy_(normaliser.mean_m.to(self.pose_mean_m))
        self.pose_scale_m.copy_(normaliser.scale_m.to(self.pose_scale_m))

    def _to_metres(self, raw: Tensor) -> Tensor:
        raw = raw.reshape(raw.shape[0], self.num_joints, NUM_COORDS).float()
        return self.pose_mean_m + self.pose_scale_m * raw

    def _stream(self, name: str) -> nn.ModuleDict:
        return self.image_stream if name == "image" else self.cm_stream

    @property
    def trainable(self) -> bool:
        """Whether α and β are parameters (TrainableFusion) rather than a fixed β."""
        return self.fixed_beta is None

    def fusion_weights(self) -> Tensor:
        """The weight vector w (L,) of Eq. (1): sigmoid(α²(l − β)) if trainable, else 1[l > β]."""
        if self.trainable:
            return sigmoid_fusion_weights(self.alpha, self.beta, self.layers)
        return indicator_fusion_weights(self.fixed_beta, self.layers).to(self.fusion_stream[str(self.layers + 1)].weight)

    def stream_inputs(self, images: Tensor | None, confidence_maps: Tensor | None) -> list[Tensor]:
        """I_0 and/or X_0 for this network's streams: the image by space-to-depth (B, 48, h, w), the maps as given."""
        a = self.arch
        out = []
        for s in self.streams:
            if s == "image":
                if images is None or images.dim() != 4 or tuple(images.shape[1:]) != (3, a.image_px, a.image_px):
                    raise ValueError(f"images must be (B, 3, {a.image_px}, {a.image_px}), got "
                                     f"{None if images is None else tuple(images.shape)}")
                out.append(F.pixel_unshuffle(images, a.space_to_depth))
            else:
                want = (a.num_joints, a.heatmap_px, a.heatmap_px)
                if confidence_maps is None or confidence_maps.dim() != 4 or tuple(confidence_maps.shape[1:]) != want:
                    raise ValueError(f"confidence_maps must be (B, {', '.join(map(str, want))}), got "
                                     f"{None if confidence_maps is None else tuple(confidence_maps.shape)}")
                out.append(confidence_maps)
        if len(out) == 2 and out[0].shape[0] != out[1].shape[0]:
            raise ValueError(f"images and confidence_maps hold different batch sizes: {out[0].shape[0]} vs {out[1].shape[0]}")
        return out

    def data_features(self, images: Tensor | None, confidence_maps: Tensor | None, layer: int) -> list[Tensor]:
        """Data-stream features [I_l, X_l] after ``layer`` (0..the last built data layer), one tensor per stream."""
        built = self.layers if self.trainable else self.fixed_beta
        _check_int("layer", layer, 0, built)
        feats = self.stream_inputs(images, confidence_maps)
        for l in range(1, layer + 1):
            feats = [self._stream(s)[str(l)](f) for s, f in zip(self.streams, feats)]
        return feats

    def forward(self, images: Tensor | None, confidence_maps: Tensor | None) -> Tensor:
        """3D joints (B, J, 3), root-relative, camera frame, metres. images (B, 3, H, W) in [0, 1]; confidence_maps
        (B, J, h, w). A single-stream network ignores (and accepts ``None`` for) the input it does not read."""
        L = self.layers
        feats = self.stream_inputs(images, confidence_maps)
        if not self.trainable:  # fusion at β: data layers 1..β, then fusion layers β+1..L+1 on concat(I_β, X_β)
            for l in range(1, self.fixed_beta + 1):
                feats = [self._stream(s)[str(l)](f) for s, f in zip(self.streams, feats)]
            u = torch.cat(feats, dim=1)
            for l in range(self.fixed_beta + 1, L + 2):
                u = self.fusion_stream[str(l)](u)
            return self._to_metres(u)
        w = self.fusion_weights()
        u = torch.cat(feats, dim=1)  # u_0 = Z_0 = concat(I_0, X_0)
        for l in range(1, L + 1):
            feats = [self._stream(s)[str(l)](f) for s, f in zip(self.streams, feats)]
            z = self.fusion_stream[str(l)](u)  # Z_l
            u = (1 - w[l - 1]) * torch.cat(feats, dim=1) + w[l - 1] * z  # Eq. (1)
        return self._to_metres(self.fusion_stream[str(L + 1)](u))


def build_fusion_net(method: str, profile: Profile, seed: int = 0, beta: int | None = None,
                     num_joints: int = skeleton.NUM_JOINTS) -> FusionNet:
    """One configuration of Table 5 of Tekin at the profile's sizes (the person crops of :func:`crop_sides_px`,
    ``profile.trainable_fusion`` layers/channels/dropout). ``beta`` is required for (and only for) ``FixedFusion``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if (method == "FixedFusion") != (beta is not None):
        raise ValueError(f"beta must be given for FixedFusion and only for it; got method={method!r}, beta={beta!r}")
    tf = profile.trainable_fusion
    L = tf.layers
    kw = dict(layers=L, channels=tf.channels, num_joints=num_joints, seed=seed, dropout=tf.dropout)
    px = crop_sides_px(profile)
    if method == "ImageOnly":
        return FusionNet(*px, streams=("image",), beta=L, **kw)
    if method == "CMOnly":
        return FusionNet(*px, streams=("cm",), beta=L, **kw)
    if method == "EarlyFusion":
        return FusionNet(*px, beta=0, **kw)
    if method == "LateFusion":
        return FusionNet(*px, beta=L, **kw)
    if method == "FixedFusion":
        return FusionNet(*px, beta=beta, **kw)
    return FusionNet(*px, beta=None, alpha_init=ALPHA_INIT, beta_init=L / 2, **kw)


def count_parameters(net: nn.Module) -> int:
    """Number of scalar parameters (α and β included)."""
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------------------------------------------------------------
# Loss and training
# ----------------------------------------------------------------------------------------------------------------------

@dataclass
class MonocularSamples:
    """Single-view samples: images (N, 3, H, W) in [0, 1]; confidence_maps (N, J, h, w) of the 2D backbone;
    joints_3d_m (N, J, 3) root-relative, in the camera frame, metres; joints_2d_px (N, J, 2) the ground-truth 2D
    joints in the pixels of ``images`` (or ``None``)."""

    images: Tensor
    confidence_maps: Tensor
    joints_3d_m: Tensor
    joints_2d_px: Tensor | None = None

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

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> "MonocularSamples":
        j2 = None if self.joints_2d_px is None else self.joints_2d_px.to(device)
        return MonocularSamples(self.images.to(device), self.confidence_maps.to(device), self.joints_3d_m.to(device), j2)

    def subset(self, index) -> "MonocularSamples":
        j2 = None if self.joints_2d_px is None else self.joints_2d_px[index]
        return MonocularSamples(self.images[index], self.confidence_maps[index], self.joints_3d_m[index], j2)


@dataclass
class PoseNormaliser:
    """Standardisation of root-relative poses: ``(y − mean_m) / scale_m`` per joint and coordinate, (J, 3) each, m.

    Built from the training poses by :meth:`fit` (mean and standard deviation over the samples; a coordinate with
    less spread than :data:`MIN_POSE_SCALE_M`, e.g. the root-relative pelvis, keeps that scale)."""

    mean_m: Tensor
    scale_m: Tensor

    @classmethod
    def fit(cls, joints_3d_m: Tensor) -> "PoseNormaliser":
        if joints_3d_m.dim() != 3 or joints_3d_m.shape[-1] != NUM_COORDS or joints_3d_m.shape[0] < 2:
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
    _check_int("out_px", out_px, 1)
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


MONOCULAR_RIGS = ("dome", "h36m", "totalcapture")


def camera_frame_root_relative(joints_3d_m: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """World joints (N, J, 3) seen by cameras (N, 3, 3), (N, 3) → camera-frame joints minus the pelvis (N, J, 3), m."""
    cam = joints_3d_m @ R.transpose(-1, -2) + t[:, None, :]
    return cam - cam[:, skeleton.ROOT:skeleton.ROOT + 1]


def _split_counts(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def render_monocular(profile: Profile, split: str, n_samples: int, seed: int, device,
                     rigs: tuple[str, ...] = MONOCULAR_RIGS) -> tuple[Tensor, Tensor, Tensor]:
    """Single-view renders of ``split`` motions: images (N, 3, H, W) on ``device``, root-relative camera-frame
    joints (N, J, 3) metres (CPU) and the ground-truth 2D joints (N, J, 2) in image pixels (CPU).

    The samples are split evenly over ``rigs``; within a rig, sample i is seen by view i mod V, so every camera of
    every rig is used ("monocularly in all camera views", Sec. 4.2 of Tekin), and every sample has its own pose
    (:func:`mfcore.motion.sample_poses`, augmented). Deterministic in ``seed``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    _check_int("n_samples", n_samples, len(rigs))
    _check_int("seed", seed, 0)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    images, joints, joints_2d = [], [], []
    split_offset = 0 if split == "train" else 500  # test samples get their own poses and scenes
    for k, (name, n_rig) in enumerate(zip(rigs, _split_counts(n_samples, len(rigs)))):
        rig = studio.get_rig(name).at_resolution(profile.studio.image_px)
        world, _ = motion.sample_poses(split, n_rig, seed=seed * 7919 + 1000 * k + split_offset)
        view = torch.arange(n_rig) % rig.num_views
        rig_images = torch.empty(n_rig, 3, profile.studio.image_px, profile.studio.image_px, device=device)
        rig_joints = torch.empty(n_rig, world.shape[1], 3)
        rig_2d = torch.empty(n_rig, world.shape[1], 2)
        for v in range(min(n_rig, rig.num_views)):
            idx = torch.nonzero(view == v).squeeze(1)
            batch = render_multiview(rig.subset([v]), world[idx], profile,
                                          seed=seed * 7919 + 1000 * k + split_offset + 1 + v, device=device)
            rig_images[idx.to(device)] = batch.images[:, 0]
            rig_2d[idx] = batch.joints_2d_px[:, 0].float().cpu()
            cam = rig.cameras[v]
            R, t = cam.R.float(), cam.t.float()
            rig_joints[idx] = camera_frame_root_relative(world[idx], R.expand(len(idx), 3, 3), t.expand(len(idx), 3))
        images.append(rig_images)
        joints.append(rig_joints)
        joints_2d.append(rig_2d)
    return torch.cat(images), torch.cat(joints), torch.cat(joints_2d)


def make_monocular_samples(profile: Profile, split: str, n_samples: int, seed: int, device,
                           rigs: tuple[str, ...] = MONOCULAR_RIGS, backbone=None) -> MonocularSamples:
    """Tekin's training/test samples in the studio: the person crop of the image, the same crop of the 2D backbone's
    confidence maps, the root-relative 3D joints and the ground-truth 2D joints in crop pixels.

    Images and joints from :func:`render_monocular` (train motions for ``split="train"``, unseen test motions for
    ``"test"``); confidence maps from the frozen warmed-up SimpleBaseline (``warmup_backbone(profile, seed, device)``
    unless ``backbone`` is given) on the whole studio view, cached through :func:`mfcore.runtime.cached` (float16)
    under the profile, split, size, seed and rigs; then both are cropped to the window of :func:`person_boxes_px`
    around the ground-truth 2D joints (sides :func:`crop_sides_px`). All tensors are on ``device``.
    """
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    images, joints, joints_2d = render_monocular(profile, split, n_samples, seed, device, rigs)

    def build() -> dict[str, Tensor]:
        model = bb.warmup_backbone(profile, seed, device) if backbone is None else backbone
        maps = bb.predict_heatmaps(model, images, batch_size=max(1, profile.trainable_fusion.batch_size), device=device)
        return {"confidence_maps": maps.half(), "joints_3d_m": joints}

    key = dict(studio=profile.as_dict()["studio"], backbone=profile.as_dict()["backbone"], split=split,
               n_samples=n_samples, seed=seed, rigs=list(rigs), custom_backbone=backbone is not None)
    if backbone is not None:  # a caller's own backbone: no cache (its weights are not part of the key)
        entry = build()
    else:
        entry = runtime.cached("tekin_monocular", key, build,
                       code=("trainable_fusion", "backbone", "data", "render", "studio", "motion"))
    if not torch.equal(entry["joints_3d_m"].cpu(), joints):
        raise RuntimeError("cached tekin_monocular entry does not match the rendered poses; delete .cache/mfcore")
    crop_px, crop_hm_px = crop_sides_px(profile)
    boxes = person_boxes_px(joints_2d)  # image pixels; the same window in heatmap pixels is scaled by hm/image
    sides = (profile.studio.image_px, profile.studio.heatmap_px)
    boxes_hm = torch.cat([scale_pixels(boxes[:, :2], *sides), boxes[:, 2:] * sides[1] / sides[0]], dim=1)
    crops = crop_square(images, boxes, crop_px)
    maps = crop_square(entry["confidence_maps"].to(device).float(), boxes_hm, crop_hm_px)
    return MonocularSamples(crops, maps, joints.to(device), to_crop_px(joints_2d, boxes, crop_px).to(device))


def pose_loss(pred_m: Tensor, gt_m: Tensor, scale_m: Tensor | None = None) -> Tensor:
    """Eq. (2) of Tekin per minibatch: the mean over samples of ‖f − y‖², summed over joints and coords; in metres²,
    or with ``scale_m`` (J, 3) in standardised units ‖(f − y) / scale‖² (:class:`PoseNormaliser`)."""
    if pred_m.shape != gt_m.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(pred_m.shape)} vs {tuple(gt_m.shape)}")
    diff = pred_m.float() - gt_m.float()
    if scale_m is not None:
        diff = diff / scale_m.to(diff)
    return (diff ** 2).flatten(1).sum(1).mean()


def sharpness_penalty(net: FusionNet, lambda_alpha: float) -> Tensor:
    """The λ/α² term of Eq. (4) (zero for fixed fusion or λ = 0)."""
    if not net.trainable or lambda_alpha == 0:
        return torch.zeros((), device=net.fusion_stream[str(net.layers + 1)].weight.device)
    return lambda_alpha / net.alpha.float() ** 2


def _check_number(name: str, value, low: float, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")
    return float(value)


def train_fusion_net(net: FusionNet, data: MonocularSamples, *, epochs: int, batch_size: int, lr: float = 1e-3,
                     lambda_alpha: float = 0.0, fusion_lr: float | None = None, seed: int = 0, device="cpu",
                     amp: bool = False, normalise: bool = True, progress: bool = True, desc: str = "train"):
    """Train ``net`` in place with Adam on Eq. (4) of Tekin (Eq. (2) when λ = 0 or β is fixed); returns the history.

    The history is a pandas DataFrame, one row per step: ``step, epoch, loss, data_loss, penalty`` and, for trainable
    fusion, ``alpha, beta`` and ``w_1..w_L`` (Fig. 5 of Tekin), all as the step's forward pass used them (before
    its update; step 1 shows the initial α = 0.1, β = L/2). Minibatches are drawn by
    a seeded permutation per epoch and dropout masks by a generator seeded likewise, so the same seed gives the same
    history and weights on CPU (on CUDA up to the non-determinism of cuDNN kernels). ``amp`` runs the forward pass in
    bf16 autocast and channels-last on CUDA (ignored on CPU).
    ``fusion_lr`` is Adam's rate for α and β (default: ``lr``, the paper's setting).
    ``normalise`` first standardises the targets with the training poses (:class:`PoseNormaliser`, stored in the
    network's buffers): the loss is then in standardised units and the network starts at the mean training pose
    (its output layer starts near 0). ``data_loss`` in the history is in those units.
    """
    _check_int("epochs", epochs, 1)
    _check_int("batch_size", batch_size, 1)
    _check_number("lr", lr, 0.0, strict=True)
    _check_number("lambda_alpha", lambda_alpha, 0.0)
    fusion_lr = lr if fusion_lr is None else _check_number("fusion_lr", fusion_lr, 0.0, strict=True)
    _check_int("seed", seed, 0)
    if not isinstance(net, FusionNet):
        raise ValueError(f"net must be a FusionNet, got {type(net).__name__}")
    if len(data) == 0:
        raise ValueError("data holds no samples")
    if data.joints_3d_m.shape[1] != net.num_joints:
        raise ValueError(f"data has {data.joints_3d_m.shape[1]} joints, the network predicts {net.num_joints}")
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    net.to(device).train()
    if normalise:
        net.set_pose_normalisation(PoseNormaliser.fit(data.joints_3d_m.float().cpu()))
    scale_m = net.pose_scale_m if normalise else None
    use_amp = amp and device.type == "cuda"
    if use_amp:
        net.to(memory_format=torch.channels_last)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks follow the seed
        history = _train_steps(net, data, epochs, batch_size, lr, lambda_alpha, fusion_lr, seed, device, use_amp,
                               scale_m, progress, desc)
    net.eval()
    return history


def _train_steps(net, data, epochs, batch_size, lr, lambda_alpha, fusion_lr, seed, device, use_amp, scale_m,
                 progress, desc):
    fusion_params = [net.alpha, net.beta] if net.trainable else []
    others = [q for q in net.parameters() if all(q is not f for f in fusion_params)]
    groups = [{"params": others, "lr": lr}] + ([{"params": fusion_params, "lr": fusion_lr}] if fusion_params else [])
    optimiser = adam(groups, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(data)
    steps_per_epoch = math.ceil(n / batch_size)
    rows = []  # per-step tensors, kept on the device until the end (one synchronisation)
    bar = runtime.progress(total=epochs * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            images = data.images[idx.to(data.images.device)].to(device, non_blocking=True).float()
            cms = data.confidence_maps[idx.to(data.confidence_maps.device)].to(device, non_blocking=True).float()
            gt = data.joints_3d_m[idx.to(data.joints_3d_m.device)].to(device, non_blocking=True).float()
            if use_amp:
                images = images.contiguous(memory_format=torch.channels_last)
                cms = cms.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                pred = net(images, cms)
            data_loss = pose_loss(pred, gt, scale_m)
            penalty = sharpness_penalty(net, lambda_alpha)
            loss = data_loss + penalty
            with torch.no_grad():  # the values this step's forward pass used
                row = [loss.detach(), data_loss.detach(), penalty.detach()]
                if net.trainable:
                    row += [net.alpha.detach().clone(), net.beta.detach().clone()]
                    row += list(net.fusion_weights().detach().unbind())
                rows.append(torch.stack([r.float() for r in row]))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            bar.update(1)
            if progress and bar.n % 20 == 0:
                post = {"loss": f"{loss.item():.4f}"}
                if net.trainable:
                    post.update(alpha=f"{net.alpha.item():.3f}", beta=f"{net.beta.item():.3f}")
                bar.set_postfix(post)
    bar.close()
    values = torch.stack(rows).cpu().numpy()
    columns = ["loss", "data_loss", "penalty"]
    if net.trainable:
        columns += ["alpha", "beta"] + [f"w_{l}" for l in range(1, net.layers + 1)]
    history = pd.DataFrame(values, columns=columns)
    history.insert(0, "epoch", [s // steps_per_epoch for s in range(len(history))])
    history.insert(0, "step", range(1, len(history) + 1))
    return history


def fit_fusion_method(method: str, train: MonocularSamples, profile: Profile, seed: int, device, *,
                      beta: int | None = None, lambda_alpha: float | None = None, fusion_lr: float | None = None,
                      amp: bool | None = None, progress: bool = True):
    """Build one configuration (:func:`build_fusion_net`) and train it with the profile's schedule
    (``profile.trainable_fusion``: epochs, batch_size, lr, fusion_lr; λ = ``lambda_alpha`` for trainable fusion unless
    given; α and β at ``fusion_lr`` unless given).
    ``amp`` defaults to bf16 autocast on CUDA. Returns (net in eval mode, history)."""
    sizes = profile.trainable_fusion
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    net = build_fusion_net(method, profile, seed=seed, beta=beta)
    lam = sizes.lambda_alpha if lambda_alpha is None else lambda_alpha
    label = method if beta is None else f"{method} β={beta}"
    history = train_fusion_net(net, train, epochs=sizes.epochs, batch_size=sizes.batch_size, lr=sizes.lr,
                               lambda_alpha=lam if net.trainable else 0.0,
                               fusion_lr=sizes.fusion_lr if fusion_lr is None else fusion_lr, seed=seed,
                               device=device,
                               amp=device.type == "cuda" if amp is None else amp, progress=progress, desc=label)
    return net, history


TRAINING_FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # shares of the training samples in the learning curve


def training_size_curve(method: str, train: MonocularSamples, test: MonocularSamples, profile: Profile, seed: int,
                        device, *, fractions=TRAINING_FRACTIONS, full_net: FusionNet | None = None,
                        progress: bool = False) -> list[dict]:
    """Does a network learn more from more samples? ``method`` (:func:`fit_fusion_method`) trained on the first
    ``fraction`` of the training samples in a seeded order (``seed``), for each fraction, at the same number of Adam
    steps (the profile's epochs scaled by 1 / fraction, rounded), and scored on ``test``; with the mean training pose of
    the same samples as the floor. Rows: method, fraction, train_samples, epochs, mpjpe_mm, pa_mpjpe_mm,
    mean_pose_mpjpe_mm, over_mean_pose (the MPJPE ratio).

    The whole set (fraction 1) is ``train`` itself in its own order, so the network of that point is exactly
    ``fit_fusion_method(method, train, profile, seed, device)``; pass it as ``full_net`` (Table 5's network of this
    method and seed) to score it instead of training it again."""
    fractions = tuple(float(f) for f in fractions)
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"fractions must lie in (0, 1]; got {fractions!r}")
    sizes = profile.trainable_fusion
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    rows = []
    for fraction in fractions:
        n = max(1, round(fraction * len(train)))
        if n < sizes.batch_size and fraction < 1.0:
            raise ValueError(f"fraction {fraction} leaves {n} samples, fewer than one minibatch ({sizes.batch_size})")
        whole = fraction == 1.0
        part = train if whole else train.subset(order[:n].to(train.images.device))
        epochs = max(1, round(sizes.epochs / fraction))
        if whole and full_net is not None:
            net = full_net
        else:
            scaled = dataclasses.replace(profile, trainable_fusion=dataclasses.replace(sizes, epochs=epochs))
            net, _ = fit_fusion_method(method, part, scaled, seed, device, progress=progress)
        errors = evaluate_fusion_net(net, test)
        floor = float(mean_pose_errors(part, test)["mpjpe_mm"].mean())
        rows.append(dict(method=method, fraction=fraction, train_samples=n, epochs=epochs, **errors,
                         mean_pose_mpjpe_mm=floor, over_mean_pose=errors["mpjpe_mm"] / floor))
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Prediction, evaluation, pruning
# ----------------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def predict_joints_m(net: FusionNet, images: Tensor, confidence_maps: Tensor, batch_size: int = 256, device=None,
                     amp: bool = False) -> Tensor:
    """The network's 3D joints for all samples, (N, J, 3) metres, on the device of ``images``."""
    _check_int("batch_size", batch_size, 1)
    device = next(net.parameters()).device if device is None else (
        resolve_device(device) if isinstance(device, str) else torch.device(device))
    net.to(device).eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        im = images[start:start + batch_size].to(device).float()
        cm = confidence_maps[start:start + batch_size].to(device).float()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            out.append(net(im, cm).float().to(images.device))
    return torch.cat(out)


def evaluate_fusion_net(net: FusionNet, data: MonocularSamples, batch_size: int = 256, device=None,
                        amp: bool = False) -> dict[str, float]:
    """MPJPE and PA-MPJPE (mm) of ``net`` on ``data``, as Table 5 of Tekin (and Table 2 for PA)."""
    errors = evaluate_fusion_net_samples(net, data, batch_size, device, amp)
    return {name: float(e.mean()) for name, e in errors.items()}


def evaluate_fusion_net_samples(net: FusionNet, data: MonocularSamples, batch_size: int = 256, device=None,
                                amp: bool = False) -> dict[str, Tensor]:
    """Per-sample MPJPE and PA-MPJPE (mm), {"mpjpe_mm": (N,), "pa_mpjpe_mm": (N,)} on the CPU: what
    :func:`evaluate_fusion_net` averages, the units of the paired comparisons of Table 5 (:mod:`mfcore.stats`)."""
    pred = predict_joints_m(net, data.images, data.confidence_maps, batch_size, device, amp)
    return _errors(pred, data.joints_3d_m)


# ----------------------------------------------------------------------------------------------------------------------
# Context rows: a constant mean pose and a lifter from perfect 2D
# ----------------------------------------------------------------------------------------------------------------------

def _errors(pred_m: Tensor, gt_m: Tensor) -> dict[str, Tensor]:
    gt_m = gt_m.to(pred_m)
    return {"mpjpe_mm": mpjpe_mm(pred_m, gt_m).cpu(), "pa_mpjpe_mm": pa_mpjpe_mm(pred_m, gt_m).cpu()}


def mean_pose_errors(train: MonocularSamples, test: MonocularSamples) -> dict[str, Tensor]:
    """Per-sample MPJPE and PA-MPJPE (mm) of the constant predictor "the mean training pose" (root-relative, camera
    frame): the floor any network must beat to have learned anything from its input."""
    mean = train.joints_3d_m.float().mean(0)
    return _errors(mean.expand_as(test.joints_3d_m).to(test.joints_3d_m.device).float(), test.joints_3d_m.float())


class PerfectLifter(nn.Module):
    """Context row: an MLP from the ground-truth 2D joints in crop pixels (N, J, 2) to the 3D pose (N, J, 3) m, with
    the fusion networks' fully connected width, dropout and target standardisation: what the confidence-map stream
    could reach from perfect 2D on the same samples."""

    def __init__(self, crop_px: int, width: int, num_joints: int = skeleton.NUM_JOINTS, dropout: float = 0.0,
                 seed: int = 0):
        super().__init__()
        _check_int("crop_px", crop_px, 2)
        _check_int("width", width, 1)
        _check_int("seed", seed, 0)
        self.crop_px, self.num_joints, self.seed = crop_px, num_joints, seed
        gen = _layer_generator(seed, "lifter", 0)
        self.mlp = nn.Sequential(
            _init_layer(nn.Linear(2 * num_joints, width), gen), nn.ReLU(), nn.Dropout(dropout),
            _init_layer(nn.Linear(width, width), gen), nn.ReLU(), nn.Dropout(dropout),
            _init_layer(nn.Linear(width, NUM_COORDS * num_joints), gen, output=True))
        self.register_buffer("pose_mean_m", torch.zeros(num_joints, NUM_COORDS))
        self.register_buffer("pose_scale_m", torch.ones(num_joints, NUM_COORDS))

    def forward(self, joints_2d_px: Tensor) -> Tensor:
        x = (joints_2d_px.float() / (self.crop_px - 1)) * 2 - 1  # crop pixels → [-1, 1]
        raw = self.mlp(x.flatten(1)).reshape(-1, self.num_joints, NUM_COORDS)
        return self.pose_mean_m + self.pose_scale_m * raw


def fit_perfect_lifter(train: MonocularSamples, profile: Profile, seed: int, device, progress: bool = True):
    """Train a :class:`PerfectLifter` with the profile's schedule (epochs, batch size, Adam at ``lr``) on the
    standardised Eq. (2); deterministic in ``seed``. Returns the network in eval mode."""
    if train.joints_2d_px is None:
        raise ValueError("train has no joints_2d_px: the lifter reads the ground-truth 2D joints")
    sizes = profile.trainable_fusion
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    crop_px, _ = crop_sides_px(profile)
    net = PerfectLifter(crop_px, FC_WIDTH_PER_CHANNEL * sizes.channels, train.joints_3d_m.shape[1], sizes.dropout,
                        seed).to(device)
    norm = PoseNormaliser.fit(train.joints_3d_m.float().cpu())
    net.pose_mean_m.copy_(norm.mean_m)
    net.pose_scale_m.copy_(norm.scale_m)
    optimiser = adam(net.parameters(), lr=sizes.lr)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = train.joints_2d_px.to(device).float(), train.joints_3d_m.to(device).float()
    n = len(train)
    bar = runtime.progress(total=sizes.epochs * math.ceil(n / sizes.batch_size), desc="Perfect2DLifter",
                           disable=not progress, leave=False)
    net.train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(sizes.epochs):
            order = torch.randperm(n, generator=gen).to(device)
            for start in range(0, n, sizes.batch_size):
                idx = order[start:start + sizes.batch_size]
                loss = pose_loss(net(x_all[idx]), y_all[idx], net.pose_scale_m)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                bar.update(1)
    bar.close()
    return net.eval()


@torch.no_grad()
def perfect_lifter_errors(net: PerfectLifter, test: MonocularSamples) -> dict[str, Tensor]:
    """Per-sample MPJPE and PA-MPJPE (mm) of the lifter on ``test``'s ground-truth 2D joints."""
    if test.joints_2d_px is None:
        raise ValueError("test has no joints_2d_px: the lifter reads the ground-truth 2D joints")
    net.eval()
    device = next(net.parameters()).device
    return _errors(net(test.joints_2d_px.to(device)), test.joints_3d_m.to(device))


def fusion_layer(net: FusionNet) -> int:
    """The β of the pruned network: the number of layers with w_l < ½ (w is non-decreasing in l)."""
    if not net.trainable:
        return net.fixed_beta
    return int((net.fusion_weights() < 0.5).sum())


def prune_fusion_net(net: FusionNet) -> FusionNet:
    """Sec. 3.1 of Tekin: drop the inactive layers (fusion layers with w_l ≈ 0, data-stream layers with w_l ≈ 1).

    Returns a fixed-β :class:`FusionNet` with β = :func:`fusion_layer` and the trained weights of its active layers,
    on ``net``'s device. With binary w it computes exactly what ``net`` computes; otherwise the rounding of w to
    1[l > β] is an approximation whose cost the notebook measures.
    """
    if not isinstance(net, FusionNet):
        raise ValueError(f"net must be a FusionNet, got {type(net).__name__}")
    a = net.arch
    pruned = FusionNet(a.image_px, a.heatmap_px, layers=a.layers, channels=a.channels, streams=net.streams,
                       beta=fusion_layer(net), num_joints=a.num_joints, seed=net.seed, dropout=a.dropout)
    source = net.state_dict()
    pruned.load_state_dict({k: source[k].clone() for k in pruned.state_dict()})
    ref = next(net.parameters())
    return pruned.to(device=ref.device, dtype=ref.dtype).train(net.training)


@torch.no_grad()
def inference_ms_per_image(net: FusionNet, images: Tensor, confidence_maps: Tensor, repeats: int = 10,
                           warmup: int = 2, amp: bool = False) -> float:
    """Median wall time of one forward pass over the given batch, in ms per image (CUDA synchronised)."""
    _check_int("repeats", repeats, 1)
    _check_int("warmup", warmup, 0)
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
    return 1000.0 * times[len(times) // 2] / images.shape[0]


# ----------------------------------------------------------------------------------------------------------------------
# Correlation of the two streams' features (Fig. 7 of Tekin)
# ----------------------------------------------------------------------------------------------------------------------

def squared_pearson(a: Tensor, b: Tensor) -> Tensor:
    """Squared Pearson correlation R² between every column of ``a`` (N, P) and every column of ``b`` (N, Q), (P, Q).

    A constant column has no defined correlation; its R² is reported as 0.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must be (N, P) and (N, Q) with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 samples for a correlation, got N={a.shape[0]}")
    a, b = a.double(), b.double()
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    r = (a.T @ b) / (na[:, None] * nb[None, :])
    r = torch.where((na[:, None] > 0) & (nb[None, :] > 0), r, torch.zeros_like(r))
    return (r**2).clamp(max=1.0).float()


@torch.no_grad()
def stream_correlation_r2(net: FusionNet, images: Tensor, confidence_maps: Tensor, layer: int | None = None) -> Tensor:
    """Fig. 7 of Tekin: R² between every pair of feature channels of the image and confidence-map streams, at the
    last convolutional layer (or ``layer``). (C + C, C + C): image-stream channels first. Each channel is one variable;
    its samples are all (image, position) pairs of the batch."""
    if net.streams != STREAMS:
        raise ValueError(f"the correlation needs both streams, this network has {net.streams}")
    layer = net.arch.conv_layers if layer is None else layer
    built = net.layers if net.trainable else net.fixed_beta
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= min(built, net.arch.conv_layers):
        raise ValueError(f"layer must be a convolutional data-stream layer in [1, {min(built, net.arch.conv_layers)}], "
                         f"got {layer!r}")
    was_training = net.training
    net.eval()
    feats = net.data_features(images, confidence_maps, layer)
    net.train(was_training)
    cols = [f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats]  # (N·s·s, C)
    both = torch.cat(cols, dim=1)
    return squared_pearson(both, both)
