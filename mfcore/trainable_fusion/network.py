"""The two-stream network of Tekin Fig. 3 with its fusion stream (Eq. 1) and fusion weights (Eq. 3), as an ensemble.

A :class:`FusionNet` holds M networks of one architecture (its *members*: seeds, fusion settings) whose layers run as
one program (:mod:`.layers`); a single network is M = 1. Two architectures:

* **complete** (``beta=None``): every layer of the image, confidence-map and fusion streams. Each member's fusion
  weights are either trainable, ``w_l = sigmoid(α² (l − β))`` with its own α and β (Eq. 3), or fixed at a layer
  β_m, ``w_l = 1[l > β_m]`` (Sec. 3.1: β_m = 0 is early fusion, β_m = L late fusion). With binary w the inactive
  layers contribute exactly 0 and receive zero gradients, so a fixed member computes and learns what the network
  built at β_m computes and learns: the chapter trains every fusion configuration as members of one program.
* **built at β** (``beta=int``): only the active layers, data-stream layers 1..β and fusion layers β+1..L+1 (the
  pruned network, and the single-stream baselines ImageOnly and CMOnly at β = L).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import skeleton
from ..profiles import Profile
from .layers import MemberConv2d, MemberLinear, MemberModel, conv_to_fc, dropout_members, max_pool_members
from .samples import crop_sides_px

Tensor = torch.Tensor

STREAMS = ("image", "cm")
TABLE5 = ("ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion")  # Table 5 of Tekin
METHODS = TABLE5 + ("FixedFusion",)
FC_LAYERS = 2  # fully connected layers at the end of each data stream (Fig. 3: convolutions, then FC)
FC_WIDTH_PER_CHANNEL = 8  # FC neurons per data-stream channel
MIN_CONV_SIDE = 4  # convolutional blocks pool by 2 while the feature side stays >= this
ALPHA_INIT = 0.1  # Sec. 3.1 of Tekin
NUM_COORDS = 3
OUTPUT_INIT_SCALE = 0.01  # the output layer starts 100× smaller than He: the network starts near the mean pose


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """``value`` if it is an int in [low, high]; else a ValueError naming it and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def sigmoid_fusion_weights(alpha: Tensor, beta: Tensor, layers: int) -> Tensor:
    """Eq. (3) of Tekin with slope α²: ``w_l = sigmoid(α² (l − β))`` for l = 1..L: α, β of any shape (…) → (…, L).

    α² → ∞ gives the indicator 1[l > β] (except at l = β, where w = ½); α = 0 mixes everything half and half.
    """
    check_int("layers", layers, 1)
    alpha, beta = torch.as_tensor(alpha).float(), torch.as_tensor(beta).float()
    l = torch.arange(1, layers + 1, dtype=torch.float32, device=alpha.device)
    return torch.sigmoid(alpha[..., None] ** 2 * (l - beta[..., None]))


def indicator_fusion_weights(beta: int, layers: int) -> Tensor:
    """Fusion fixed at layer β (Sec. 3.1 of Tekin): ``w_l = 1[l > β]``, l = 1..L, (L,) float."""
    check_int("layers", layers, 1)
    check_int("beta", beta, 0, layers)
    return (torch.arange(1, layers + 1) > beta).float()


def layer_generator(seed: int, stream: str, layer: int) -> torch.Generator:
    """The generator of one layer's initial weights: layer l of a stream gets the same weights for a given seed in
    every configuration and every ensemble."""
    digest = hashlib.sha256(f"trainable_fusion/{seed}/{stream}/{layer}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


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

    def width(self, l: int) -> int:
        """Channels (conv) or neurons (FC) of one data stream after layer l ≥ 1."""
        return self.channels if l <= self.conv_layers else self.fc_width


class ConvBlock(nn.Module):
    """Layer l ≤ L − 2 of a stream: 3×3 convolution, ReLU, 2×2 max-pooling while the side stays ≥ 4."""

    def __init__(self, generators, c_in: int, c_out: int, pool: bool, grouped: bool = True):
        super().__init__()
        self.conv, self.pool = MemberConv2d(generators, c_in, c_out, grouped), pool

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        y = F.relu(self.conv(x))
        return max_pool_members(y) if self.pool else y


class FCBlock(nn.Module):
    """Layer l > L − 2 of a stream: fully connected, ReLU, dropout (the first one flattens the convolutions)."""

    def __init__(self, generators, f_in: int, f_out: int, flatten: bool, dropout: float):
        super().__init__()
        self.fc, self.flatten, self.dropout = MemberLinear(generators, f_in, f_out), flatten, dropout

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        return dropout_members(F.relu(self.fc(conv_to_fc(x) if self.flatten else x)), noise, self.dropout)


def _mix(data: Tensor, z: Tensor, w_l: Tensor) -> Tensor:
    """Eq. (1): ``(1 − w_l) · data + w_l · z`` with each member's w_l (M,), conv (B, M, …) or FC (M, B, F) layout."""
    w = w_l.to(data.dtype).view((1, -1, 1, 1, 1) if data.dim() == 5 else (-1, 1, 1))
    return (1 - w) * data + w * z


class FusionNet(MemberModel):
    """M fusion networks of Tekin Fig. 3 with one architecture: ``forward(images, confidence_maps) -> (B, M, J, 3)``
    metres, root-relative, camera frame.

    ``streams``: ("image", "cm"), ("image",) or ("cm",). ``seeds`` (M,): each member's initial weights (layer l of
    a stream gets the same weights for a seed in every configuration). ``beta``: ``None`` for the complete architecture
    with per-member fusion ``member_betas`` (None: trainable α, β starting at ``alpha_init``, ``beta_init`` (L/2);
    an int: fixed at that β), or an int in 0..L: built at β, every member fused there. ``grouped_conv``: the members'
    convolutions as one grouped kernel (or one dense kernel per member, :class:`.layers.MemberConv2d`).
    """

    def __init__(self, image_px: int, heatmap_px: int, *, layers: int, channels: int,
                 streams: tuple[str, ...] = STREAMS, beta: int | None = None, seeds=(0,), member_betas=None,
                 alpha_init: float = ALPHA_INIT, beta_init: float | None = None, num_joints: int = skeleton.NUM_JOINTS,
                 dropout: float = 0.0, grouped_conv: bool = True):
        super().__init__()
        check_int("image_px", image_px, 1)
        check_int("heatmap_px", heatmap_px, 1)
        if image_px % heatmap_px:
            raise ValueError(f"image_px ({image_px}) must be a multiple of heatmap_px ({heatmap_px})")
        check_int("layers", layers, FC_LAYERS + 1)
        check_int("channels", channels, 1)
        check_int("num_joints", num_joints, 1)
        seeds = tuple(seeds)
        if not seeds:
            raise ValueError("seeds must name at least one member")
        for s in seeds:
            check_int("seed", s, 0)
        streams = tuple(streams)
        if not streams or len(set(streams)) != len(streams) or any(s not in STREAMS for s in streams):
            raise ValueError(f"streams must be a non-empty subset of {STREAMS} without repeats, got {streams!r}")
        streams = tuple(s for s in STREAMS if s in streams)  # canonical order: image first (concat(I, X))
        if beta is not None:
            check_int("beta", beta, 0, layers)
            if member_betas is not None:
                raise ValueError("member_betas needs the complete architecture (beta=None)")
        member_betas = tuple(member_betas) if member_betas is not None else (None,) * len(seeds)
        if len(member_betas) != len(seeds):
            raise ValueError(f"member_betas has {len(member_betas)} entries for {len(seeds)} seeds")
        for b in member_betas:
            if b is not None:
                check_int("member beta", b, 0, layers)
        if not (isinstance(alpha_init, (int, float)) and math.isfinite(alpha_init) and alpha_init > 0):
            raise ValueError(f"alpha_init must be a finite number > 0, got {alpha_init!r}")
        if beta_init is not None and not (isinstance(beta_init, (int, float)) and math.isfinite(beta_init)):
            raise ValueError(f"beta_init must be a finite number or None, got {beta_init!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")

        self.arch = a = FusionArchitecture(image_px, heatmap_px, layers, channels, num_joints, float(dropout))
        self._init_members(seeds, num_joints, dropout)
        self.streams, self.fixed_beta, self.layers, self.grouped_conv = streams, beta, layers, bool(grouped_conv)
        self.member_betas = member_betas if beta is None else (beta,) * len(seeds)
        M, L, n = len(seeds), layers, len(streams)
        if beta is None:
            self.alpha = nn.Parameter(torch.full((M,), float(alpha_init)))
            self.beta = nn.Parameter(torch.full((M,), float(L / 2 if beta_init is None else beta_init)))
            fixed = [b is not None for b in member_betas]
            self.register_buffer("member_fixed", torch.tensor(fixed))
            self.register_buffer("fixed_weights", torch.stack([indicator_fusion_weights(b if b is not None else L, L)
                                                               for b in member_betas]))
        else:
            self.alpha = self.beta = None
        data_layers = range(1, L + 1) if beta is None else range(1, beta + 1)
        fusion_layers = range(1, L + 1) if beta is None else range(beta + 1, L + 1)
        sides = a.sides()

        def layer(stream: str, l: int, c_in: int, c_out: int) -> nn.Module:
            gens = [layer_generator(s, stream, l) for s in seeds]
            if l <= a.conv_layers:
                return ConvBlock(gens, c_in, c_out, pool=sides[l] < sides[l - 1], grouped=grouped_conv)
            self._add_noise_slice((stream, l), c_out)
            first = l == a.conv_layers + 1
            return FCBlock(gens, c_in * sides[-1] ** 2 if first else c_in, c_out, first, a.dropout)

        self.image_stream, self.cm_stream, self.fusion_stream = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for l in range(1, L + 1):
            for s in streams:
                if l in data_layers:
                    c_in = a.input_channels(s) if l == 1 else a.width(l - 1)
                    self._stream(s)[str(l)] = layer(s, l, c_in, a.width(l))
            if l in fusion_layers:
                c_in = sum(a.input_channels(s) for s in streams) if l == 1 else n * a.width(l - 1)
                self.fusion_stream[str(l)] = layer("fusion", l, c_in, n * a.width(l))
        self.fusion_stream[str(L + 1)] = MemberLinear([layer_generator(s, "fusion", L + 1) for s in seeds],
                                                      n * a.fc_width, NUM_COORDS * num_joints, OUTPUT_INIT_SCALE)

    # -- configuration -------------------------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """Whether every layer of the three streams exists (α and β are parameters; members may be fixed)."""
        return self.fixed_beta is None

    def member_trainable(self) -> Tensor:
        """(M,) bool: which members learn α and β (Eq. 3) rather than fuse at a fixed layer."""
        return torch.tensor([self.complete and b is None for b in self.member_betas])

    def _stream(self, name: str) -> nn.ModuleDict:
        return self.image_stream if name == "image" else self.cm_stream

    def fusion_weights(self) -> Tensor:
        """Each member's weight vector w (M, L) of Eq. (1): sigmoid(α²(l − β)) if trainable, else 1[l > β]."""
        if not self.complete:
            w = indicator_fusion_weights(self.fixed_beta, self.layers)
            return w.to(self.pose_mean_m).expand(self.members, self.layers)
        soft = sigmoid_fusion_weights(self.alpha, self.beta, self.layers)
        return torch.where(self.member_fixed[:, None], self.fixed_weights, soft)

    # -- forward -------------------------------------------------------------------------------------------------------

    def _member_input(self, x: Tensor | None, name: str, per_sample: tuple[int, ...]) -> Tensor:
        M = self.members
        if x is None or x.dim() not in (4, 5) or tuple(x.shape[-3:]) != per_sample or (
                x.dim() == 5 and x.shape[1] != M):
            raise ValueError(f"{name} must be (B, {', '.join(map(str, per_sample))}) or (B, {M}, "
                             f"{', '.join(map(str, per_sample))}), got {None if x is None else tuple(x.shape)}")
        return x.unsqueeze(1).expand(-1, M, *per_sample) if x.dim() == 4 else x

    def stream_inputs(self, images: Tensor | None, confidence_maps: Tensor | None) -> list[Tensor]:
        """I_0 and/or X_0 for this network's streams, (B, M, C, h, w) each: the image by space-to-depth (48 channels
        at the maps' side), the maps as given. Inputs are shared, (B, …), or per member, (B, M, …)."""
        a, out = self.arch, []
        for s in self.streams:
            if s == "image":
                x = self._member_input(images, "images", (3, a.image_px, a.image_px))
                out.append(F.pixel_unshuffle(x.flatten(0, 1), a.space_to_depth).unflatten(0, x.shape[:2]))
            else:
                out.append(self._member_input(confidence_maps, "confidence_maps",
                                              (a.num_joints, a.heatmap_px, a.heatmap_px)))
        if len(out) == 2 and out[0].shape[0] != out[1].shape[0]:
            raise ValueError(f"images and confidence_maps hold different batch sizes: {out[0].shape[0]} vs "
                             f"{out[1].shape[0]}")
        return out

    def data_features(self, images: Tensor | None, confidence_maps: Tensor | None, layer: int) -> list[Tensor]:
        """Data-stream features [I_l, X_l] after ``layer`` (0..the last built data layer), one tensor per stream, in
        evaluation (no dropout)."""
        built = self.layers if self.complete else self.fixed_beta
        check_int("layer", layer, 0, built)
        feats = self.stream_inputs(images, confidence_maps)
        for l in range(1, layer + 1):
            feats = [self._stream(s)[str(l)](f) for s, f in zip(self.streams, feats)]
        return feats

    def forward(self, images: Tensor | None, confidence_maps: Tensor | None, noise: Tensor | None = None) -> Tensor:
        """3D joints (B, M, J, 3) metres. images (B, 3, H, W) in [0, 1] and confidence_maps (B, J, h, w) shared by
        the members, or (B, M, …) per member; a single-stream network ignores (and accepts ``None`` for) the input it
        does not read. ``noise`` (M, B, :attr:`noise_units`) uniforms for dropout in training (``None``: no dropout,
        as in evaluation)."""
        if noise is not None and (not self.training or self.arch.dropout == 0):
            noise = None
        L = self.layers
        feats = self.stream_inputs(images, confidence_maps)
        if not self.complete:  # fusion at β: data layers 1..β, then fusion layers β+1..L+1 on concat(I_β, X_β)
            for l in range(1, self.fixed_beta + 1):
                feats = [self._stream(s)[str(l)](f, self._noise(noise, (s, l))) for s, f in zip(self.streams, feats)]
            u = torch.cat(feats, dim=2)  # channels (B, M, C, …) or features (M, B, F)
            for l in range(self.fixed_beta + 1, L + 1):
                u = self.fusion_stream[str(l)](u, self._noise(noise, ("fusion", l)))
            return self._to_metres(self.fusion_stream[str(L + 1)](u))
        w = self.fusion_weights()
        u = torch.cat(feats, dim=2)  # u_0 = Z_0 = concat(I_0, X_0)
        for l in range(1, L + 1):
            feats = [self._stream(s)[str(l)](f, self._noise(noise, (s, l))) for s, f in zip(self.streams, feats)]
            z = self.fusion_stream[str(l)](u, self._noise(noise, ("fusion", l)))  # Z_l
            u = _mix(torch.cat(feats, dim=2), z, w[:, l - 1])  # Eq. (1)
        return self._to_metres(self.fusion_stream[str(L + 1)](u))


def count_parameters(net: nn.Module) -> int:
    """Scalar parameters of ONE member (α and β included for the complete architecture)."""
    members = getattr(net, "members", 1)
    return sum(p.numel() for p in net.parameters()) // members


def select_members(net: FusionNet, members) -> FusionNet:
    """A :class:`FusionNet` holding only ``members`` (indices) of ``net``, with their trained weights and
    normalisation, on ``net``'s device and in its mode (every parameter and buffer has the members axis first)."""
    members = [check_int("member", m, 0, net.members - 1) for m in members]
    a = net.arch
    out = FusionNet(a.image_px, a.heatmap_px, layers=a.layers, channels=a.channels, streams=net.streams,
                    beta=net.fixed_beta, seeds=[net.seeds[m] for m in members],
                    member_betas=[net.member_betas[m] for m in members] if net.complete else None,
                    num_joints=a.num_joints, dropout=a.dropout, grouped_conv=net.grouped_conv)
    idx = torch.tensor(members)
    source = net.state_dict()
    out.load_state_dict({k: source[k][idx.to(source[k].device)].clone() for k in out.state_dict()})
    ref = next(net.parameters())
    return out.to(device=ref.device, dtype=ref.dtype).train(net.training)


def fusion_layer(net: FusionNet) -> list[int]:
    """Each member's β after pruning: its number of layers with w_l < ½ (w is non-decreasing in l)."""
    return [int(n) for n in (net.fusion_weights().detach() < 0.5).sum(dim=1).cpu()]


def prune_fusion_net(net: FusionNet, member: int = 0) -> FusionNet:
    """Sec. 3.1 of Tekin: member ``member`` of ``net`` without its inactive layers (fusion layers with w_l ≈ 0,
    data-stream layers with w_l ≈ 1): the network built at β = :func:`fusion_layer`, with the trained weights of its
    active layers, one member, on ``net``'s device. With binary w it computes exactly what the member computes;
    otherwise rounding w to 1[l > β] is an approximation whose cost the chapter measures."""
    if not isinstance(net, FusionNet):
        raise ValueError(f"net must be a FusionNet, got {type(net).__name__}")
    check_int("member", member, 0, net.members - 1)
    a = net.arch
    pruned = FusionNet(a.image_px, a.heatmap_px, layers=a.layers, channels=a.channels, streams=net.streams,
                       beta=fusion_layer(net)[member], seeds=(net.seeds[member],), num_joints=a.num_joints,
                       dropout=a.dropout)
    source = net.state_dict()
    pruned.load_state_dict({k: source[k][member:member + 1].clone() for k in pruned.state_dict()})
    ref = next(net.parameters())
    return pruned.to(device=ref.device, dtype=ref.dtype).train(net.training)


def build_fusion_net(method: str, profile: Profile, seeds=(0,), beta: int | None = None,
                     num_joints: int = skeleton.NUM_JOINTS) -> FusionNet:
    """One configuration of Table 5 of Tekin for every seed in ``seeds``, at the profile's sizes (the person crops of
    :func:`crop_sides_px`, ``profile.trainable_fusion`` layers/channels/dropout). ``beta`` is required for (and only
    for) ``FixedFusion``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if (method == "FixedFusion") != (beta is not None):
        raise ValueError(f"beta must be given for FixedFusion and only for it; got method={method!r}, beta={beta!r}")
    tf = profile.trainable_fusion
    L = tf.layers
    kw = dict(layers=L, channels=tf.channels, num_joints=num_joints, seeds=tuple(seeds), dropout=tf.dropout,
              grouped_conv=tf.grouped_conv)
    px = crop_sides_px(profile)
    built_at = {"ImageOnly": L, "CMOnly": L, "EarlyFusion": 0, "LateFusion": L, "FixedFusion": beta}
    streams = {"ImageOnly": ("image",), "CMOnly": ("cm",)}.get(method, STREAMS)
    if method == "TrainableFusion":
        return FusionNet(*px, beta=None, alpha_init=ALPHA_INIT, beta_init=L / 2, **kw)
    return FusionNet(*px, streams=streams, beta=built_at[method], **kw)


def build_fusion_family(profile: Profile, seeds, member_betas, num_joints: int = skeleton.NUM_JOINTS) -> FusionNet:
    """The complete architecture at the profile's sizes with one member per (seed, fusion) pair: ``member_betas[m]``
    None for trainable fusion (α = 0.1, β = L/2, Sec. 3.1), an int β for fusion fixed at β (0: early, L: late)."""
    tf = profile.trainable_fusion
    return FusionNet(*crop_sides_px(profile), layers=tf.layers, channels=tf.channels, beta=None, seeds=tuple(seeds),
                     member_betas=tuple(member_betas), alpha_init=ALPHA_INIT, beta_init=tf.layers / 2,
                     num_joints=num_joints, dropout=tf.dropout, grouped_conv=tf.grouped_conv)
