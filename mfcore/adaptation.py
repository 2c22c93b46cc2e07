"""Meta-testing (MetaFuse Sec. 4.3): adapting a pre-trained fusion model to a target's labelled pool, and training the
whole-pool models, for many settings at once (the few-shot protocol that caches and scores them: :mod:`mfcore.fewshot`).

* :class:`Setting` — one adapted model: method, K, training seed, objective variant (:mod:`mfcore.objectives`).
* :func:`paper_k` / :func:`profile_k` — the paper's K that a profile's K stands for, and back.
* :func:`select_shots` — the K frames of a labelled pool.
* :func:`finetune_on_pool` / :func:`finetune_settings_on_pool` — THE meta-testing recipe (shots, seeds, steps) of a
  Table 1 method on a labelled pool, and the whole-pool training of :data:`FULL_METHODS`, the settings of one pool that
  share a model class, options, objective and mini-batch size trained as one program
  (:func:`mfcore.training.train_members`).
"""

from __future__ import annotations

import functools
import importlib
import time
from typing import NamedTuple

import torch
from torch import Tensor

from . import affine, fusion, objectives, pretrained, training

FEW_SHOT_METHODS = ("NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseMeta")  # finetuned on K frames (Table 1)
NAIVE_META_SHOTS = 2  # NaiveFuseMeta at the first two K only: Sec. 5.2 reports it at K = 50 and 100
# trained from their start on a target's whole labelled pool (k = the pool): NaiveFuse^full (Table 1), and the
# factorised model of Eq. (2) trained likewise from three starts of θ (chapter 4c's capacity control): the identity,
# the line through each target pixel's own row (:func:`mfcore.affine.centred_theta`), the pool's epipolar lines
# (:func:`mfcore.oracle.pool_line_theta`: uses the calibration, a diagnostic)
FULL_METHODS = ("NaiveFuseFull", "AffineFuseFull", "AffineFuseFullCentred", "AffineFuseFullLines")
ADAPTED_METHODS = FEW_SHOT_METHODS + FULL_METHODS


class Setting(NamedTuple):
    """One adapted model: a method of :data:`ADAPTED_METHODS` (or "NoFusion"), its K, the seed of its training
    (``fusion_seed``: the pre-trained model's seed, the K frames and mini-batches drawn; None: the chapter's seed) and
    the reading of the objective (``variant``, :mod:`mfcore.objectives`)."""
    method: str
    k: int
    fusion_seed: int | None = None
    variant: str = objectives.DEFAULT_VARIANT


def as_setting(s) -> Setting:
    """A :class:`Setting` from a Setting or a (method, k[, fusion_seed[, variant]]) tuple."""
    return s if isinstance(s, Setting) else Setting(*s)


def training_seed(setting: Setting, seed: int) -> int:
    """The seed that trains ``setting``: its ``fusion_seed``, else the chapter's ``seed``."""
    return seed if setting.fusion_seed is None else int(setting.fusion_seed)
PAPER_SHOTS = (50, 100, 200, 500)  # the K of MetaFuse's Fig. 7 and Table 2


def paper_k(k: int, profile, method: str = "MetaFuse") -> int:
    """The paper's K that the profile's K stands for: the same rank in ``profile.metafuse.shots`` as in
    :data:`PAPER_SHOTS` (the full profile's K are the paper's). 0 for methods that are not finetuned on K frames
    (NoFusion, NaiveFuse^full, ...) and for a K that is not one of the profile's shots."""
    shots = tuple(profile.metafuse.shots)
    if method not in FEW_SHOT_METHODS or k not in shots:
        return 0
    return PAPER_SHOTS[min(shots.index(k), len(PAPER_SHOTS) - 1)]


def profile_k(k_paper: int, profile) -> int:
    """The profile's K standing for the paper's ``k_paper`` (same rank; the last K when the profile has fewer)."""
    if k_paper not in PAPER_SHOTS:
        raise ValueError(f"paper K={k_paper!r} is not one of the paper's {PAPER_SHOTS}")
    shots = tuple(profile.metafuse.shots)
    return shots[min(PAPER_SHOTS.index(k_paper), len(shots) - 1)]


def select_shots(pool_size: int, k: int, seed: int) -> Tensor:
    """K distinct frame indices out of a labelled pool of ``pool_size`` frames (seeded): the K of MetaFuse^K."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= pool_size:
        raise ValueError(f"K={k!r} shots is impossible with a pool of {pool_size} labelled frames; "
                         f"K must be an integer in 1..{pool_size}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(pool_size, generator=g)[:k].sort().values


@functools.lru_cache(maxsize=32)
def _pretrained(method: str, profile, seed: int, device: torch.device, fusion_seed: int, variant: str):
    """:func:`mfcore.pretrained.pretrained_fusion` loaded once per process (read-only here: :func:`mfcore.fusion.for_rig`
    copies it)."""
    return pretrained.pretrained_fusion(method, profile, seed, device, fusion_seed=fusion_seed, variant=variant,
                                        progress=False)[0]


def prepare_pretrained(methods, profile, seed: int, device, fusion_seeds, variant: str = "a") -> None:
    """Build the pre-trained models of ``methods`` for every seed of ``fusion_seeds`` at once (one program per method,
    :func:`mfcore.pretrained.pretrained_fusions`), before settings read them one by one (with one seed there is
    nothing to build together: the setting builds it)."""
    if len(set(fusion_seeds)) < 2:
        return
    for method in methods:
        if method in pretrained.PRETRAINED:
            pretrained.pretrained_fusions(method, profile, seed, device, fusion_seeds=list(fusion_seeds),
                                          variant=variant, progress=False)


def _check_method_k(method: str, k, pool: int) -> None:
    if method not in ADAPTED_METHODS:
        raise ValueError(f"unknown adapted method {method!r}; choose one of {ADAPTED_METHODS}")
    if method in FULL_METHODS and k != pool:
        raise ValueError(f"{method} trains on the whole pool: k must be {pool} (the pool), got {k!r}")


def finetune_on_pool(method: str, k: int, pool: dict[str, Tensor], trial: int, profile, seed: int, device, *,
                     fusion_seed: int | None = None, variant: str = "a", target: str | None = None,
                     progress: bool = False) -> tuple:
    """Meta-testing (MetaFuse Sec. 4.3) on a labelled pool of any rig: (adapted model on ``device``, wall seconds of
    its finetuning). The one recipe of the book, with ``fs`` the training seed (``fusion_seed``, else ``seed``): K
    frames of ``pool`` ({"pred", "target"} (N, V, J, h, w)) drawn by :func:`select_shots` with seed
    ``fs + 100 * trial + k`` (the same frames for every method of a trial and seed), then Adam
    (``profile.metafuse.finetune_steps`` steps at ``finetune_lr``, mini-batches of ``min(k, batch_size)`` drawn with
    seed ``fs + k``; θ only for AffineFuse/MetaFuse, θ and the amplitude under variant (c)) of the pre-trained model of
    ``method`` (:func:`mfcore.pretrained.pretrained_fusion` with ``fs`` and ``variant``) spread over the rig's ordered
    pairs, by the objective of ``variant``. A method of :data:`FULL_METHODS` (k = N) is trained from its start on the
    whole pool instead (``full_steps``, ``outer_lr``, seed ``fs``; the "Lines" start needs the pool's cameras). One
    setting of :func:`finetune_settings_on_pool`."""
    setting = Setting(method, k, fusion_seed, variant)
    return finetune_settings_on_pool([setting], pool, trial, profile, seed, device, target=target,
                                     progress=progress)[0]


def _full_start(setting: Setting, pool: dict[str, Tensor], profile, device: torch.device) -> fusion.PairFusion:
    """The untrained model of a :data:`FULL_METHODS` setting for the pool's V views, on ``device``."""
    v, side = pool["pred"].shape[1], profile.studio.heatmap_px
    var = objectives.get_variant(setting.variant)
    if setting.method == "NaiveFuseFull":
        return fusion.NaiveFuse(v, side, mix=var.mix, device=device)
    model = fusion.AffineFuse(v, side, start="line", sigma_px=profile.studio.heatmap_sigma_px, mix=var.mix,
                              scaled=var.scaled, device=device)
    with torch.no_grad():
        if setting.method == "AffineFuseFullCentred":
            model.theta.copy_(affine.centred_theta(len(model.pairs), side, device=device))
        elif setting.method == "AffineFuseFullLines":  # the oracle's geometry: in this setting's code (_code_of)
            oracle = importlib.import_module("mfcore.oracle")
            model.theta.copy_(oracle.pool_line_theta(pool, profile).to(device))
    return model


def finetune_settings_on_pool(settings, pool: dict[str, Tensor], trial: int, profile, seed: int, device, *,
                              target: str | None = None, progress: bool = False) -> list[tuple]:
    """:func:`finetune_on_pool` for several :class:`Setting` of one pool at once: the settings whose models share a
    class, options, objective variant and mini-batch size (e.g. MetaFuse and AffineFuse at every K with K >=
    ``batch_size`` and every training seed; the whole-pool methods likewise) are trained as one program
    (:func:`mfcore.training.train_members`: each setting its own frames, mini-batch generator and start, in groups
    that fit the device), with the results of training them one by one, to float tolerance. Returns (adapted model,
    wall seconds) per setting, in order; a group's seconds are shared equally by its settings."""
    m = profile.metafuse
    device = torch.device(device)
    n, v = pool["pred"].shape[0], pool["pred"].shape[1]
    settings = [as_setting(x) for x in settings]
    for st in settings:
        _check_method_k(st.method, st.k, n)
        objectives.get_variant(st.variant)
    out: list = [None] * len(settings)
    groups: dict = {}
    starts: dict = {}
    for i, st in enumerate(settings):
        fs = training_seed(st, seed)
        if st.method in FULL_METHODS:
            starts[i] = _full_start(st, pool, profile, device)
            key = ("full", type(starts[i]), tuple(sorted(starts[i].options().items())), st.variant, m.batch_size)
        else:
            start = _pretrained(st.method, profile, seed, device, fs, st.variant)
            key = ("shots", type(start), tuple(sorted(start.options().items())), st.variant, min(st.k, m.batch_size))
        groups.setdefault(key, []).append(i)
    for (mode, kind, _, variant, _), members in groups.items():
        var = objectives.get_variant(variant)

        def member_start(i):
            st = settings[i]
            if mode == "full":
                return starts[i]
            return fusion.for_rig(_pretrained(st.method, profile, seed, device, training_seed(st, seed), variant), v)

        template = member_start(members[0])
        entries = len(template.pairs) * template.num_pixels ** 2
        per_member = entries * training.entry_bytes("affine" if kind is fusion.AffineFuse else "weights")
        fit = training.fit_members(per_member, device)
        for first in range(0, len(members), fit):
            part = members[first:first + fit]
            params = training.stack_members(member_start(i) for i in part)
            if mode == "full":
                frames = [torch.arange(n)] * len(part)
                seeds = [training_seed(settings[i], seed) for i in part]
                steps, lr, trainable, desc = m.full_steps, m.outer_lr, None, "train on the whole pool"
            else:
                frames = [select_shots(n, settings[i].k, training_seed(settings[i], seed) + 100 * trial + settings[i].k)
                          for i in part]
                seeds = [training_seed(settings[i], seed) + settings[i].k for i in part]
                steps, lr, trainable, desc = m.finetune_steps, m.finetune_lr, var.finetuned_names(template), "finetune"
            t0 = time.perf_counter()
            params, _ = training.train_members(
                template, params, pool["pred"], pool["target"], member_frames=frames, steps=steps, lr=lr,
                batch_size=m.batch_size, seeds=seeds, trainable=trainable, objective=var.objective,
                progress=progress, desc=desc)
            seconds = _synced_seconds(t0, device) / len(part)
            for j, i in enumerate(part):
                out[i] = (training.member_model(template, params, j), seconds)
    return out


def _synced_seconds(t0: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0
