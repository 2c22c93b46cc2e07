"""Cross-view heatmap fusion: NaiveFuse and AffineFuse (MetaFuse Sec. 3-4.1), for any number of views.

Eq. (1) of MetaFuse, for every ordered pair of views (target ``t``, source ``s``), ``t != s``, with the mix of the
Cross View Fusion code::

    fused_t(i) = SELF_WEIGHT * x_t(i) + (1 - SELF_WEIGHT) / n_t * sum_s sum_p  W_{s->t}[i, p] * x_s(p)

i: pixel of view t, p: pixel of view s, n_t: the number of source views fused into t (V - 1 for every ordered pair of
V views), one weight matrix per ordered pair, shared by all joints. The mix is the reference's: the Cross View Fusion
code (microsoft/multiview-human-pose-estimation-pytorch, ``lib/models/multiview_pose_resnet.py``, ``Aggregation``)
fuses four views as ``0.4 * x_t + 0.2 * sum_s FC_s(x_s)`` (weights ``[0.4, 0.2, 0.2, 0.2]``), i.e. the own heatmap
0.4 and the three others sharing 0.6; for V views the others share 0.6 equally (:func:`source_weight`), so a pair
model (V = 2, the one source at 0.6) spread over a V-view rig by :func:`for_rig` keeps the same total source weight.
The paper's Eq. (1) writes the plain sum ``x_t + sum W x_s``; trained by Eq. (3) against peak-1 targets, the own
heatmap alone already matches the target and a line adds error at every pixel off the joint, while with the mix the
own heatmap alone reaches only 0.4 of the target and the loss can reward the other views' evidence. Chapter 4b draws
both objectives (and a softmax one) along the epipolar oracle's lines beside the JDR of the same maps. Views that are no pair's target are returned unchanged.

* **NaiveFuse** learns every ``W_{s->t}`` (Z1 x Z2 numbers per pair, Z = H*W).
* **AffineFuse** factorises it (Eq. (2)): one base map ``omega_base`` (H x W) shared by all pairs, and per pair and per
  target pixel ``i`` a 6-dof affine ``theta_i``; row ``i`` of ``W`` is ``omega_base`` warped by ``theta_i`` with bilinear
  sampling (spatial transformer). Parameters: ``Z2 + 6*Z1`` per pair, ``omega_base`` counted once.

Eq. (2), the weights of AffineFuse, and its coordinate convention, fast path and speed: :mod:`mfcore.affine`.
Initialisation: theta = identity for every pixel and pair (no geometry; the paper learns theta). ``omega_base`` has two
starts (``AffineFuse(start=...)``). "uniform" (:func:`init_omega_base`): seeded uniform in [0, OMEGA_INIT_HIGH / Z2),
after the reference's FC init U(0, 0.1) divided by the source's pixel count Z2. "line" (:func:`line_omega_start`, what
the book's learned AffineFuse and MetaFuse start from): a centred horizontal line with the heatmaps' Gaussian profile
at the epipolar oracle's scale. With theta = identity every row of W is the same ``omega_base`` under either start, so
each source adds a constant per channel and the argmax (the JDR) is NoFusion's exactly. With ``omega_base`` = 0, W = 0
and dL/dtheta = 0 exactly: theta could never learn. The uniform start's dL/dtheta is not zero but tiny (its weights
are about 1e-5 and have no structure); the line's is that of a fusion weight (chapter 3 measures both). In inference
the materialised weight is cached and reused until a parameter changes (:meth:`AffineFuse.freeze`).
``AffineFuse(scaled=True)`` adds one learnable scale ``omega_scale`` (ω_base = s·ω̃, the map's shape and its size
apart); ``mix="sum"`` fuses by the paper's plain sum ``x_t + sum_s W x_s`` instead of the reference's mix.

Many models at once. Every model also fuses with *member* parameters, a leading dimension M over its parameters
(``{"theta": (M, P, Z1, 2, 3), ...}``, :meth:`PairFusion.forward_members`, :func:`fuse_members`): the M models' weights
are built by one kernel call and applied by one batched matmul, each member to its own heatmaps. That is how the book
trains many small models as one program (MAML tasks, seeds, few-shot settings; :mod:`mfcore.training`).
:func:`member_mse` is Eq. (3) per member, the default objective of the batched trainers; an objective is any function
``(fused (M, B, V, J, H, W), target (M, B, V, J, H, W), target_views) -> (M,)`` of per-member losses.

Softmax. MetaFuse Sec. 5.1 applies a softmax with temperature T = 0.2 to every channel of the fused heatmap "to highlight
the maximum response". Here the training loss (Eq. (3), :func:`fusion_mse`) is the MSE between the *pre-softmax* mixed
fused heatmap and the ground-truth Gaussian heatmap (peak 1), as the Cross View Fusion code supervises it
(``lib/core/function.py``: the joints-MSE of the fused heatmaps, plus that of the per-view heatmaps, which are
frozen here). The candidate with the softmax inside the loss (:func:`softmax_mse`) is computed beside it along the
oracle's direction (chapter 4b) and not adopted. The softmax (:func:`sharpen`) is applied when heatmaps are read or
drawn; it is monotone per channel, so the argmax (and the JDR) is the same before and after it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .affine import affine_weight, affine_weight_reference, identity_theta, use_compiled_kernels  # noqa: F401

DEFAULT_TEMPERATURE = 0.2  # Sec. 5.1 of MetaFuse
SELF_WEIGHT = 0.4  # the own heatmap's share of a fused map (Cross View Fusion code, Aggregation weights [0.4, 0.2, 0.2, 0.2])
SOURCES_WEIGHT = 1.0 - SELF_WEIGHT  # the share of all source views together, split equally among them
OMEGA_INIT_HIGH = 0.1  # omega_base ~ U(0, OMEGA_INIT_HIGH / Z2): the reference's FC init U(0, 0.1) per source pixel
MIXES = ("reference", "sum")  # the Cross View Fusion code's mix (the book's), or the plain sum of the paper's Eq. (1)


# ----------------------------------------------------------------------------------------------------------------------
# pairs

def ordered_pairs(num_views: int) -> tuple[tuple[int, int], ...]:
    """All ordered pairs ``(target, source)`` of ``num_views`` views, target-major: (0,1), (0,2), …, (1,0), (1,2), …"""
    if not isinstance(num_views, int) or num_views < 2:
        raise ValueError(f"num_views must be an integer >= 2 (fusion needs another view); got {num_views!r}")
    return tuple((t, s) for t in range(num_views) for s in range(num_views) if s != t)


def _check_pairs(pairs, num_views: int) -> tuple[tuple[int, int], ...]:
    if pairs is None:
        return ordered_pairs(num_views)
    pairs = tuple((int(t), int(s)) for t, s in pairs)
    if not pairs:
        raise ValueError("pairs is empty; give at least one (target, source) pair")
    for t, s in pairs:
        if t == s or not (0 <= t < num_views and 0 <= s < num_views):
            raise ValueError(f"pair {(t, s)} is not an ordered pair of distinct views in 0..{num_views - 1}")
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"pairs {pairs} contain a duplicate")
    return pairs


# ----------------------------------------------------------------------------------------------------------------------
# Eq. (1): fusion with given pair weights

def source_weight(num_sources: int) -> float:
    """The mix's weight of each of ``num_sources`` source views fused into one target: ``SOURCES_WEIGHT / num_sources``
    (0.6 for a pair, 0.2 each for the reference's four views)."""
    if not isinstance(num_sources, int) or num_sources < 1:
        raise ValueError(f"num_sources must be an integer >= 1; got {num_sources!r}")
    return SOURCES_WEIGHT / num_sources


def _check_mix(mix: str) -> str:
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; choose one of {MIXES}")
    return mix


def mix_weights(pairs, num_views: int, mix: str = "reference") -> tuple[Tensor, Tensor]:
    """The mix of Eq. (1) for ``pairs`` of ``num_views`` views: the own heatmap's weight per view (V,) (SELF_WEIGHT
    for a target view, 1 for a view that receives nothing) and the (V, P) matrix that sums the pairs' terms into
    their target views, entry :func:`source_weight` of the target's source count. ``mix="sum"``: the paper's plain
    sum, every weight 1."""
    pairs = _check_pairs(pairs, num_views)
    plain = _check_mix(mix) == "sum"
    counts = [sum(1 for t, _ in pairs if t == v) for v in range(num_views)]
    own = torch.tensor([SELF_WEIGHT if c and not plain else 1.0 for c in counts])
    to_view = torch.zeros(num_views, len(pairs))
    for k, (t, _) in enumerate(pairs):
        to_view[t, k] = 1.0 if plain else source_weight(counts[t])
    return own, to_view


def fuse(heatmaps: Tensor, weights: Tensor, pairs, mix: str = "reference") -> Tensor:
    """Eq. (1) of MetaFuse with the reference's mix, for every ordered pair:
    ``fused_t = SELF_WEIGHT x_t + SOURCES_WEIGHT / n_t sum_(t,s) W_(s->t) x_s`` (module docstring), the same W for all
    joints (``mix="sum"``: ``x_t + sum_(t,s) W_(s->t) x_s``).

    heatmaps (B, V, J, H, W); weights (P, Z1, Z2) with Z = H*W, row = target pixel, column = source pixel;
    pairs: P (target, source) view indices. Returns the pre-softmax fused heatmaps (B, V, J, H, W); views that are no
    pair's target are returned unchanged. One member of :func:`fuse_members`.
    """
    if heatmaps.dim() != 5:
        raise ValueError(f"heatmaps must be (B, V, J, H, W); got shape {tuple(heatmaps.shape)}")
    if weights.dim() != 3:
        raise ValueError(f"weights must be (P, Z1, Z2); got shape {tuple(weights.shape)}")
    return fuse_members(heatmaps[None], weights[None], pairs, mix)[0]


def fuse_members(heatmaps: Tensor, weights: Tensor, pairs, mix: str = "reference") -> Tensor:
    """Eq. (1) for M models at once, each on its own heatmaps: heatmaps (M, B, V, J, H, W), weights (M, P, Z1, Z2) ->
    fused (M, B, V, J, H, W); member m is ``fuse(heatmaps[m], weights[m], pairs, mix)``. All members' pair terms are
    one batched matmul (M·P matrices)."""
    if heatmaps.dim() != 6:
        raise ValueError(f"heatmaps must be (M, B, V, J, H, W); got shape {tuple(heatmaps.shape)}")
    m, b, v, j, h, w = heatmaps.shape
    pairs = _check_pairs(pairs, v)
    z, p = h * w, len(pairs)
    if weights.shape != (m, p, z, z):
        raise ValueError(f"weights must be (M={m}, P={p}, Z1={z}, Z2={z}) for {v} views of {h}x{w}; "
                         f"got {tuple(weights.shape)}")
    x = heatmaps.reshape(m, b, v, j, z)
    sources = _index_on(tuple(s for _, s in pairs), x.device)
    x_src = x.index_select(2, sources).permute(0, 2, 4, 1, 3).reshape(m * p, z, b * j)  # (M·P, Z2, B·J)
    # W @ x (not x @ W^T): the gradient of W then comes out contiguous, (M·P, Z1, Z2)
    contrib = torch.bmm(weights.reshape(m * p, z, z), x_src)  # (M·P, Z1, B·J)
    contrib = contrib.reshape(m, p, z, b, j).permute(0, 3, 1, 4, 2).reshape(m, b, p, j * z)  # (M, B, P, J·Z1)
    # sum the pairs into their target views with the (V, P) mix matrix (a tiny matmul; index_add is slow on the CPU)
    own, to_view = _mix_on(pairs, v, mix, x.device, x.dtype, contrib.dtype)
    mixed = torch.matmul(to_view, contrib).reshape(m, b, v, j, z).to(x.dtype)
    return (own * x + mixed).reshape(m, b, v, j, h, w)


_MIX_CACHE: dict = {}
_INDEX_CACHE: dict = {}


def _mix_on(pairs, num_views: int, mix: str, device, dtype, mix_dtype) -> tuple[Tensor, Tensor]:
    """:func:`mix_weights` on ``device`` (own as (1, V, 1, 1) in ``dtype``, the (V, P) matrix in ``mix_dtype``), made
    once per setting: a training step then copies nothing to the GPU for the mix."""
    key = (tuple(pairs), num_views, mix, str(device), dtype, mix_dtype)
    if key not in _MIX_CACHE:
        own, to_view = mix_weights(pairs, num_views, mix)
        _MIX_CACHE[key] = (own.to(device=device, dtype=dtype)[None, :, None, None],
                           to_view.to(device=device, dtype=mix_dtype))
    return _MIX_CACHE[key]


def _index_on(values: tuple[int, ...], device) -> Tensor:
    """A small index tensor (views, sources) on ``device``, made once: a copy from the host in every forward would
    wait for the GPU (a blocking copy synchronises the stream)."""
    key = (values, str(device))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(values, dtype=torch.long, device=device)
    return _INDEX_CACHE[key]


def fuse_pair(target: Tensor, source: Tensor, weights: Tensor) -> Tensor:
    """Eq. (1) for one ordered pair, ``x^t_i <- 0.4 x^t_i + 0.6 sum_j w_(j,i) x^s_j``: :func:`fuse` with the single pair
    (target, source). target, source (..., H, W) heatmaps of the two views; weights (H*W, H, W), row i = the map of
    target pixel i over the source view. Returns (..., H, W) in ``target``'s dtype."""
    *lead, h, w = target.shape
    if source.shape != target.shape:
        raise ValueError(f"target and source heatmaps must have one shape; got {tuple(target.shape)} and "
                         f"{tuple(source.shape)}")
    if weights.dim() != 3 or weights.shape != (h * w, h, w):
        raise ValueError(f"weights must be (H*W, H, W) = ({h * w}, {h}, {w}); got {tuple(weights.shape)}")
    x = torch.stack([target.reshape(-1, h, w), source.reshape(-1, h, w)], dim=1)[:, :, None].to(weights.dtype)
    fused = fuse(x, weights.reshape(1, h * w, h * w), ((0, 1),))[:, 0, 0]  # (B, H, W)
    return fused.reshape(*lead, h, w).to(target.dtype)


def contributions(heatmaps: Tensor, weights: Tensor, pairs) -> Tensor:
    """The terms of Eq. (1) one by one: ``W_(s->t) x_s`` for every pair, (B, P, J, H, W) (the heatmaps "warped" from
    each source view into its target view; Fig. 6 of MetaFuse), before the mix's :func:`source_weight`.
    heatmaps (B, V, J, H, W), weights (P, Z1, Z2)."""
    b, v, j, h, w = heatmaps.shape
    pairs = _check_pairs(pairs, v)
    sources = _index_on(tuple(s for _, s in pairs), heatmaps.device)
    x_src = heatmaps.reshape(b, v, j, h * w).index_select(1, sources)  # (B, P, J, Z2)
    return torch.einsum("pyz,bpjz->bpjy", weights.to(x_src.dtype), x_src).reshape(b, len(pairs), j, h, w)


def sharpen(heatmaps: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """Softmax with temperature over the pixels of every channel (MetaFuse Sec. 5.1): (..., H, W) -> (..., H, W).

    Monotone per channel: the argmax is unchanged.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature!r}")
    flat = heatmaps.flatten(-2).float()
    return torch.softmax(flat / temperature, dim=-1).reshape(heatmaps.shape)


def fusion_mse(fused: Tensor, target: Tensor, views=None) -> Tensor:
    """Eq. (3) of MetaFuse: MSE between the pre-softmax fused heatmaps (the mix of :func:`fuse`) and the ground-truth
    heatmaps (peak 1), (B, V, J, H, W) each: the book's one training objective (every learned method, the oracle).

    ``views``: the view indices that enter the loss (the targets of the fused pairs); all views if None.
    """
    if fused.shape != target.shape:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} shapes differ")
    if views is not None:
        idx = _index_on(tuple(int(v) for v in views), fused.device)
        fused, target = fused.index_select(1, idx), target.index_select(1, idx)
    return F.mse_loss(fused.float(), target.float())


def member_mse(fused: Tensor, target: Tensor, views=None) -> Tensor:
    """Eq. (3) for M members at once: fused, target (M, B, V, J, H, W) -> (M,), member m's :func:`fusion_mse` over
    the views ``views`` (all if None). The default objective of the batched trainers (:mod:`mfcore.training`,
    :func:`mfcore.maml.meta_train_members`)."""
    if fused.shape != target.shape or fused.dim() != 6:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} must both be (M, B, V, J, H, W)")
    if views is not None:
        idx = _index_on(tuple(int(v) for v in views), fused.device)
        fused, target = fused.index_select(2, idx), target.index_select(2, idx)
    return (fused.float() - target.float()).square().flatten(1).mean(1)


def softmax_mse(fused: Tensor, target: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """A candidate for Eq. (3), not adopted (chapter 4b): MetaFuse's softmax (Sec. 5.1, T = 0.2) inside the loss.
    Per channel, ``softmax(fused / T)`` over the pixels is compared with the sum-normalised target ``y / sum(y)``;
    both are scaled by the target's own sum, so the target stays the peak-1 Gaussian and the prediction is the
    softmax's distribution carrying the target's mass: ``mean((sum(y) * softmax(fused / T) - y)^2)``. (A channel
    with an all-zero target contributes 0.) Without the scale the loss is ~1/Z^2 smaller, which Adam ignores but
    the figure's ratios need not. fused, target (..., H, W)."""
    if fused.shape != target.shape:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} shapes differ")
    y = target.flatten(-2).float()
    mass = y.sum(-1, keepdim=True)
    return ((mass * sharpen(fused, temperature).flatten(-2) - y).square()).mean()


# ----------------------------------------------------------------------------------------------------------------------
# AffineFuse starts (Eq. (2) itself: mfcore.affine)

def init_omega_base(heatmap_px: int, seed: int = 0) -> Tensor:
    """The start of ``omega_base`` (H, W): uniform in [0, OMEGA_INIT_HIGH / Z2), Z2 = heatmap_px², drawn with
    ``seed``. The Cross View Fusion code starts its FC weights U(0, 0.1) (``ChannelWiseFC``); per source pixel, a row
    of W then adds at most 0.1 of the source map's mean. Not flat, so dL/dtheta != 0 at theta = identity."""
    if not isinstance(heatmap_px, int) or heatmap_px < 2:
        raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand(heatmap_px, heatmap_px, generator=g) * (OMEGA_INIT_HIGH / heatmap_px ** 2)


LINE_START_GAIN = 1.0  # source peaks the line start adds per own peak under the model's mix: the oracle's calibration
OMEGA_STARTS = ("line", "uniform")


def line_omega_start(heatmap_px: int, sigma_px: float, num_views: int, gain: float = LINE_START_GAIN,
                     mix: str = "reference") -> Tensor:
    """The line start of ``omega_base`` (H, W) float32: a horizontal line through the map's centre with the heatmaps'
    own profile exp(−d²/2σ²), d the distance to the centre row in pixels, scaled as the epipolar oracle scales its lines
    (``gain · SELF_WEIGHT / source_weight(V − 1) / (√2·π·σ²)``, :func:`mfcore.oracle.epipolar_oracle_weights`): a
    source peak of 1 and spread σ lying on the line adds about ``gain`` own peaks under the mix of a ``num_views``
    model (under ``mix="sum"``, where own and sources both weigh 1: ``gain / (√2·π·σ²)``). No camera is involved;
    with θ = identity every target pixel reads the same line, so each source adds a
    constant per channel and the start has NoFusion's maxima. Unlike the uniform start, the map has a spatial gradient
    of the size of a fusion weight, so Eq. (3) moves θ (chapter 3 measures both starts)."""
    if not isinstance(heatmap_px, int) or heatmap_px < 2:
        raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
    if not (isinstance(sigma_px, (int, float)) and sigma_px > 0):
        raise ValueError(f"sigma_px must be a number > 0; got {sigma_px!r}")
    if not isinstance(num_views, int) or num_views < 2:
        raise ValueError(f"num_views must be an integer >= 2; got {num_views!r}")
    y = torch.arange(heatmap_px, dtype=torch.float32) - (heatmap_px - 1) / 2.0
    line = torch.exp(-y.square() / (2.0 * sigma_px ** 2))[:, None].expand(heatmap_px, heatmap_px).clone()
    ratio = SELF_WEIGHT / source_weight(num_views - 1) if _check_mix(mix) == "reference" else 1.0
    return line * (gain * ratio / (2.0 ** 0.5 * math.pi * sigma_px ** 2))


# ----------------------------------------------------------------------------------------------------------------------
# modules

class PairFusion(nn.Module):
    """The base of both fusion models (NaiveFuse, AffineFuse): views, ordered pairs, the mix of Eq. (1) (``mix``), and
    Eq. (1) with the weights of :meth:`pair_weights` (one model) or :meth:`member_weights` (M models given as member
    parameters), which each model defines."""

    def __init__(self, num_views: int, heatmap_px: int, pairs=None, mix: str = "reference"):
        super().__init__()
        if not isinstance(heatmap_px, int) or heatmap_px < 2:
            raise ValueError(f"heatmap_px must be an integer >= 2; got {heatmap_px!r}")
        self.num_views = num_views
        self.pairs = _check_pairs(pairs, num_views)
        self.heatmap_px = heatmap_px
        self.mix = _check_mix(mix)

    @property
    def num_pixels(self) -> int:
        return self.heatmap_px * self.heatmap_px

    @property
    def target_views(self) -> tuple[int, ...]:
        """Views that receive fusion (and enter the loss)."""
        return tuple(sorted({t for t, _ in self.pairs}))

    def options(self) -> dict:
        """The constructor options beyond views, side and pairs (what :func:`for_rig` carries over)."""
        return {"mix": self.mix}

    def pair_weights(self) -> Tensor:  # (P, Z1, Z2)
        raise NotImplementedError

    def member_weights(self, params: dict[str, Tensor]) -> Tensor:  # (M, P, Z1, Z2)
        """The pair weights of M models whose parameters are ``params`` (every entry with a leading member dim)."""
        raise NotImplementedError

    def _check_heatmaps(self, heatmaps: Tensor, lead: int) -> None:
        names = "M, B" if lead == 2 else "B"
        if heatmaps.dim() != 4 + lead or heatmaps.shape[lead] != self.num_views \
                or heatmaps.shape[-2:] != (self.heatmap_px, self.heatmap_px):
            raise ValueError(f"heatmaps must be ({names}, V={self.num_views}, J, {self.heatmap_px}, "
                             f"{self.heatmap_px}); got shape {tuple(heatmaps.shape)}")

    def forward(self, heatmaps: Tensor) -> Tensor:
        """(B, V, J, H, W) backbone heatmaps -> (B, V, J, H, W) pre-softmax fused heatmaps (Eq. (1) with the mix of
        :func:`fuse`)."""
        self._check_heatmaps(heatmaps, 1)
        return fuse(heatmaps, self.pair_weights(), self.pairs, self.mix)

    def forward_members(self, params: dict[str, Tensor], heatmaps: Tensor) -> Tensor:
        """Eq. (1) for M models at once: member parameters ``params`` (each (M, ...)) and every member's own heatmaps
        (M, B, V, J, H, W) -> fused (M, B, V, J, H, W) (:func:`fuse_members`)."""
        self._check_heatmaps(heatmaps, 2)
        return fuse_members(heatmaps, self.member_weights(params), self.pairs, self.mix)

    def freeze(self) -> "PairFusion":
        """No more gradients; eval mode. The weights are materialised once and reused (until a parameter changes)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def parameters_per_pair(self) -> int:
        raise NotImplementedError


class NaiveFuse(PairFusion):
    """NaiveFuse (MetaFuse Sec. 3, Cross View Fusion): a free Z1 x Z2 weight per ordered pair, zero at init (the own
    heatmap at SELF_WEIGHT: NoFusion's argmax; the gradient of Eq. (3) w.r.t. W is not zero there)."""

    def __init__(self, num_views: int, heatmap_px: int, pairs=None, *, mix: str = "reference", device=None):
        super().__init__(num_views, heatmap_px, pairs, mix)
        z = self.num_pixels
        # made on ``device`` directly: at 64² a 4-view rig's weights are 805 MB, and zeroing them on the CPU and
        # copying them to the GPU took about a second of every few-shot setting
        self.weight = nn.Parameter(torch.zeros(len(self.pairs), z, z, device=device))  # (P, Z1, Z2)

    def pair_weights(self) -> Tensor:
        return self.weight

    def member_weights(self, params: dict[str, Tensor]) -> Tensor:
        return params["weight"]

    def parameters_per_pair(self) -> int:
        """Z1 * Z2."""
        return self.num_pixels ** 2


class AffineFuse(PairFusion):
    """AffineFuse / MetaFuse (Eq. (2)): a shared ``omega_base`` (H, W) and per pair a theta (Z1, 2, 3).

    Init: theta = identity; ``omega_base`` by ``start``: "uniform" (:func:`init_omega_base` with ``seed``, the
    reference's FC init; the default, for models whose weights are loaded or set afterwards) or "line"
    (:func:`line_omega_start` with ``sigma_px`` under this model's mix, what the book's learned AffineFuse and MetaFuse
    start from). Either way the start's argmax is NoFusion's. ``scaled``: one more parameter, ``omega_scale`` (a
    scalar, 1 at the start), and the map warped by Eq. (2) is ``omega_scale · omega_base`` (the size of the weights
    apart from their shape). ``higher_order`` selects the twice-differentiable weight construction (set by
    second-order meta-training).
    """

    def __init__(self, num_views: int, heatmap_px: int, pairs=None, *, seed: int = 0, start: str = "uniform",
                 sigma_px: float | None = None, scaled: bool = False, mix: str = "reference", device=None):
        super().__init__(num_views, heatmap_px, pairs, mix)
        if start not in OMEGA_STARTS:
            raise ValueError(f"unknown omega_base start {start!r}; choose one of {OMEGA_STARTS}")
        if start == "line" and sigma_px is None:
            raise ValueError("the line start needs sigma_px, the heatmaps' Gaussian σ in heatmap pixels")
        omega = (line_omega_start(heatmap_px, sigma_px, num_views, mix=mix) if start == "line"
                 else init_omega_base(heatmap_px, seed))  # drawn on the CPU (seeded)
        self.omega_base = nn.Parameter(omega.to(device))
        self.theta = nn.Parameter(identity_theta(len(self.pairs), self.num_pixels, device=device))
        if scaled:
            self.omega_scale = nn.Parameter(torch.ones((), device=device))
        self.higher_order = False
        self._cache: tuple | None = None

    @property
    def scaled(self) -> bool:
        return "omega_scale" in self._parameters

    def options(self) -> dict:
        return {**super().options(), "scaled": self.scaled}

    def member_weights(self, params: dict[str, Tensor]) -> Tensor:
        omega = params["omega_base"]  # (M, H, W)
        if "omega_scale" in params:
            omega = params["omega_scale"].reshape(-1, 1, 1) * omega
        return affine_weight(omega, params["theta"], higher_order=self.higher_order)

    def _warped_map(self) -> Tensor:
        return self.omega_scale * self.omega_base if self.scaled else self.omega_base

    def pair_weights(self) -> Tensor:
        params = list(self.parameters())
        needs_graph = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        if needs_graph or self.training:
            return affine_weight(self._warped_map(), self.theta, higher_order=self.higher_order)
        dev = self.theta.device.type
        out_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else self.theta.dtype
        key = (*((p.data_ptr(), p._version) for p in params), self.theta.device, out_dtype)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, affine_weight(self._warped_map(), self.theta))
        return self._cache[1]

    def parameters_per_pair(self) -> int:
        """Z2 + 6 * Z1 (one pair with its own omega_base, as in Sec. 4.1)."""
        return self.num_pixels + 6 * self.num_pixels

    def train(self, mode: bool = True) -> "AffineFuse":
        """Switching mode drops the kept weights: they are kept only in eval mode, and only while ``omega_base`` and
        ``theta`` keep their storage and version. An optimiser step that writes the parameters without moving their
        version counter (seen with CUDA's fused Adam: scores between finetuning steps read the first step's weights)
        is caught because training loops switch to train mode before stepping."""
        self._cache = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._cache = None
        return super()._apply(fn, *args, **kwargs)


def parameter_count(model: PairFusion) -> int:
    """Learnable numbers of a fusion model: NaiveFuse P*Z1*Z2; AffineFuse Z2 + P*6*Z1 (omega_base counted once)."""
    return sum(p.numel() for p in model.parameters())


def for_rig(pretrained: PairFusion, num_views: int, pairs=None) -> PairFusion:
    """A fusion model for a ``num_views`` rig initialised from ``pretrained``.

    A one-pair model initialises every ordered pair of the rig (the MetaFuse deployment); a model with exactly the rig's
    pairs is copied pair by pair. ``omega_base`` (and ``omega_scale``) is shared as one copy; the mix is the same. The model is made on ``pretrained``'s device
    and filled there (no round trip through the CPU: a 4-view NaiveFuse at 64² holds 805 MB of weights).
    """
    cls = type(pretrained)
    device = next(pretrained.parameters()).device
    model = cls(num_views, pretrained.heatmap_px, pairs, device=device, **pretrained.options())
    p_src, p_dst = len(pretrained.pairs), len(model.pairs)
    if p_src == 1:
        pick = torch.zeros(p_dst, dtype=torch.long)
    elif pretrained.pairs == model.pairs:
        pick = torch.arange(p_dst)
    else:
        raise ValueError(f"cannot initialise {p_dst} pairs {model.pairs} from a model with {p_src} pairs "
                         f"{pretrained.pairs}; give a one-pair model or one with the same pairs")
    pick = pick.to(device)
    with torch.no_grad():
        if isinstance(model, NaiveFuse):
            torch.index_select(pretrained.weight.detach(), 0, pick, out=model.weight)
        else:
            model.omega_base.copy_(pretrained.omega_base.detach())
            if model.scaled:
                model.omega_scale.copy_(pretrained.omega_scale.detach())
            torch.index_select(pretrained.theta.detach(), 0, pick, out=model.theta)
    return model


def no_fusion(heatmaps: Tensor) -> Tensor:
    """The NoFusion baseline (Table 1): every view's heatmaps as the backbone produced them."""
    return heatmaps
