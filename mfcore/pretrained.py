"""The pre-trained fusion models of MetaFuse's Table 1, for any seeds and objective variant, cached one entry a seed.

* "MetaFuse": an AffineFuse pair model meta-trained (Sec. 4.2, Eq. (4)-(6), :func:`mfcore.maml.meta_train_members`)
  on the ordered pairs of the dome's 20 training cameras, from the line start (:func:`mfcore.fusion.line_omega_start`,
  σ the heatmaps'), θ's inner step capped at :data:`mfcore.maml.THETA_INNER_STEP_SIGMAS` σ;
* "NaiveFuseMeta": the same meta-training for a NaiveFuse pair model (the variant of Sec. 5.2);
* "AffineFuse" / "NaiveFuse": a 4-view model pre-trained by plain Adam on ``profile.metafuse.pretrain_views``
  (AffineFuse from the same line start, under its 4-view mix; NaiveFuse from zero).

Two seeds: ``seed`` names the data (the warmed-up backbone and its heatmaps of the dome frames, one for the whole book)
and ``fusion_seed`` the training (meta-training's task and frame draws, pre-training's mini-batches; ``seed`` where not
given). The seeds that are not cached yet are trained together, as members of one program (the batched trainers of
:mod:`mfcore.maml` and :mod:`mfcore.training`: every seed its own draws, the results of training them one by one to
float tolerance), and each is stored as its own cache entry. ``variant`` is the reading of the objective
(:mod:`mfcore.objectives`): its mix and amplitude shape the model, its loss drives the training.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from . import backbone, fusion, maml, objectives, runtime, studio, training

# the code behind a pre-trained fusion model's cache entry: these modules and what they import (mfcore.runtime.cached
# adds the transitive mfcore imports: the backbone, its data and renderer)
FUSION_CODE = ("pretrained", "maml", "training", "fusion", "objectives", "backbone")
PRETRAINED = ("MetaFuse", "NaiveFuseMeta", "AffineFuse", "NaiveFuse")
META_METHODS = ("MetaFuse", "NaiveFuseMeta")


def meta_training_data(profile, seed: int, device, frames: int | None = None,
                       dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Cached backbone heatmaps of the dome's 20 training cameras (``frames`` frames, default
    ``profile.metafuse.pretrain_frames``); ``dtype`` of "pred" and "target" (:func:`mfcore.backbone.cached_heatmaps`)."""
    return backbone.cached_heatmaps("dome", "train", frames or profile.metafuse.pretrain_frames, profile, seed, device,
                                    views=studio.DOME_TRAIN_VIEWS, dtype=dtype)


def meta_sizes(profile, variant: str) -> dict:
    """Meta-training's sizes under ``variant``: pool frames, outer steps, tasks per step, first order. The book's
    (``profile.metafuse``), or in the paper's regime ``profile.controls``' (chapter 4c)."""
    m, v = profile.metafuse, objectives.get_variant(variant)
    sizes = dict(frames=m.pretrain_frames, iterations=m.meta_iterations, tasks=m.meta_tasks_per_step,
                 first_order=m.first_order if v.first_order is None else v.first_order)
    if v.regime == "paper":
        c = profile.controls
        sizes.update(frames=c.paper_pool_frames, iterations=c.paper_meta_iterations, tasks=c.paper_tasks_per_step)
    return sizes


def _check(method: str, fusion_seeds) -> list[int]:
    if method not in PRETRAINED:
        raise ValueError(f"unknown pre-trained method {method!r}; choose one of {PRETRAINED}")
    seeds = list(fusion_seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"fusion_seeds must be distinct non-negative integers (at least one); got {fusion_seeds!r}")
    return seeds


def model_for(method: str, profile, variant: str = objectives.DEFAULT_VARIANT) -> fusion.PairFusion:
    """The untrained model of ``method`` under ``variant``, on the CPU: a pair model for the meta-learned methods, a
    4-view model of ``profile.metafuse.pretrain_views`` for the plain pre-trained ones."""
    v = objectives.get_variant(variant)
    side, sigma = profile.studio.heatmap_px, profile.studio.heatmap_sigma_px
    kind = "affine" if method in ("MetaFuse", "AffineFuse") else "naive"
    if method in META_METHODS:
        return maml.pair_model(kind, side, sigma, mix=v.mix, scaled=v.scaled and kind == "affine")
    views = len(profile.metafuse.pretrain_views)
    if kind == "affine":
        return fusion.AffineFuse(views, side, start="line", sigma_px=sigma, mix=v.mix, scaled=v.scaled)
    return fusion.NaiveFuse(views, side, mix=v.mix)


def _key(method: str, profile, seed: int, fusion_seed: int, variant: str) -> dict:
    sections = profile.as_dict()
    return dict(method=method, metafuse=sections["metafuse"], studio=sections["studio"], backbone=sections["backbone"],
                seed=seed, fusion_seed=fusion_seed, variant=variant, meta_sizes=meta_sizes(profile, variant))


class _Missing(Exception):
    """Raised by a cache probe's build: the entry does not exist."""


def _cached_entry(method, profile, seed, fusion_seed, variant) -> dict | None:
    def missing() -> dict:
        raise _Missing
    try:
        return runtime.cached("fusion", _key(method, profile, seed, fusion_seed, variant), missing, code=FUSION_CODE)
    except _Missing:
        return None


def _train(method: str, profile, seed: int, fusion_seeds: list[int], variant: str, device: torch.device,
           progress: bool) -> list[dict[str, Tensor]]:
    """Train ``method`` for every seed of ``fusion_seeds`` as one program; one state dict (plus its history and
    seconds, the program's wall time shared equally) per seed, on the CPU."""
    m, v = profile.metafuse, objectives.get_variant(variant)
    sizes = meta_sizes(profile, variant)
    template = model_for(method, profile, variant).to(device)
    params = training.stack_members([template] * len(fusion_seeds))
    # float16 pools (the same numbers; the trainers read mini-batches as float32): the paper regime's 5,000 frames fit
    d = meta_training_data(profile, seed, device, sizes["frames"] if method in META_METHODS else None, torch.float16)
    t0 = time.perf_counter()
    if method in META_METHODS:
        sigma = profile.studio.heatmap_sigma_px
        trained, history = maml.meta_train_members(
            template, params, d["pred"], d["target"], views=range(d["pred"].shape[1]), seeds=fusion_seeds,
            iterations=sizes["iterations"], tasks_per_step=sizes["tasks"], task_train=m.task_train,
            task_test=m.task_test, inner_lr=m.inner_lr, outer_lr=m.outer_lr, first_order=sizes["first_order"],
            theta_step_px=maml.THETA_INNER_STEP_SIGMAS * sigma if method == "MetaFuse" else None,
            objective=v.objective, task_chunk=m.meta_task_chunk or None, progress=progress,
            desc=f"meta-training {method} ({v.name}, {len(fusion_seeds)} seeds)")
    else:
        cams = torch.tensor(m.pretrain_views)
        pred, target = d["pred"][:, cams], d["target"][:, cams]
        frames = [torch.arange(pred.shape[0])] * len(fusion_seeds)
        trained, history = training.train_members(
            template, params, pred, target, member_frames=frames, steps=m.pretrain_steps, lr=m.outer_lr,
            batch_size=m.batch_size, seeds=fusion_seeds, objective=v.objective, progress=progress,
            desc=f"pre-train {method} ({v.name}, {len(fusion_seeds)} seeds)")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - t0) / len(fusion_seeds)
    return [{**{n: p[i].detach().cpu() for n, p in trained.items()},
             "__history__": history[:, i].to(torch.float64),
             "__seconds__": torch.tensor([seconds], dtype=torch.float64),
             "__seeds_together__": torch.tensor([len(fusion_seeds)], dtype=torch.int64)}
            for i in range(len(fusion_seeds))]


def pretrained_fusions(method: str, profile, seed: int, device, *, fusion_seeds, variant: str = "a",
                       progress: bool = True) -> list[tuple[fusion.PairFusion, list[float]]]:
    """The pre-trained model of ``method`` (:data:`PRETRAINED`) under the objective ``variant`` for every seed of
    ``fusion_seeds``, on ``device``, with its training losses (meta-training's outer D_test losses, or pre-training's
    losses). Seeds without a cache entry are trained together (one program) and cached one entry each under the key
    (method, the profile's metafuse / studio / backbone sections, ``seed``, the fusion seed, ``variant``) and the code
    of :data:`FUSION_CODE`. Each model carries ``training_seconds`` (its share of the program's wall time)."""
    seeds = _check(method, fusion_seeds)
    objectives.get_variant(variant)
    device = torch.device(device)
    states = {s: _cached_entry(method, profile, seed, s, variant) for s in seeds}
    missing = [s for s in seeds if states[s] is None]
    if missing:
        for s, state in zip(missing, _train(method, profile, seed, missing, variant, device, progress)):
            states[s] = runtime.cached("fusion", _key(method, profile, seed, s, variant), lambda st=state: st,
                                       code=FUSION_CODE)
    out = []
    for s in seeds:
        state = states[s]
        model = model_for(method, profile, variant)
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("__")})
        model.training_seconds = float(state["__seconds__"][0])  # its share of the wall time of the (meta-)training
        out.append((model.to(device), state["__history__"].tolist()))
    return out


def pretrained_fusion(method: str, profile, seed: int, device, *, fusion_seed: int | None = None,
                      variant: str = "a", progress: bool = True) -> tuple[fusion.PairFusion, list[float]]:
    """:func:`pretrained_fusions` for one fusion seed (``seed`` where not given): (model on ``device``, losses)."""
    return pretrained_fusions(method, profile, seed, device, fusion_seeds=[seed if fusion_seed is None else fusion_seed],
                              variant=variant, progress=progress)[0]
