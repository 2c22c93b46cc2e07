"""The few-shot protocol of MetaFuse's Table 1 and Fig. 7: which K labelled frames, which seeds, which models.

* :func:`paper_k` / :func:`profile_k` — the paper's K that a profile's K stands for, and back.
* :func:`select_shots` — the K frames of a labelled pool.
* :func:`finetune_on_pool` / :func:`adapted_fusion` — THE meta-testing recipe (shots, seeds, steps) of a Table 1 method
  on a labelled pool / on a target rig (:mod:`mfcore.targets`).
* :func:`fused_test_heatmaps` — a method's fused test heatmaps, cached by :func:`mfcore.runtime.cached` under
  :data:`FUSED_CODE`; chapter 4 (JDR, Fig. 7) and chapter 5 (3D tables) both read them.
* :func:`setting_peaks` — a setting's heatmap maxima on the test and stress frames, cached: every JDR of chapter 4,
  and chapter 4b's references, from the same numbers.
* :func:`few_shot_curves` — Fig. 7: JDR against K for every method and target.

Speed: a setting's heatmaps stay on the device from the target's pool to the maxima (:func:`_resident_target`,
:func:`_fused_maps`); the CPU receives the maxima and the one copy of the maps that the cache entry needs.
"""

from __future__ import annotations

import functools
import time

import torch
from torch import Tensor

from . import fusion, maml, metrics, runtime, training
from .targets import FIG7_TARGETS, HELD_OUT_SPLITS, _check_target, _check_trial, target_data, target_trials

FEW_SHOT_METHODS = ("NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseMeta")  # finetuned on K frames (Table 1)
NAIVE_META_SHOTS = 2  # NaiveFuseMeta at the first two K only: Sec. 5.2 reports it at K = 50 and 100
_NOT_LABELS = ("heatmaps", "pred", "target", "finetune_s")  # per-frame heatmaps and scalars of a test set, not labels
ADAPTED_METHODS = FEW_SHOT_METHODS + ("NaiveFuseFull",)
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


FUSED_CODE = ("fewshot", "maml", "targets", "metrics", "fusion", "backbone")  # the code behind a fused-heatmaps entry


@functools.lru_cache(maxsize=8)
def _pretrained(method: str, profile, seed: int, device: torch.device):
    """:func:`mfcore.maml.pretrained_fusion` loaded once per process (read-only here: :func:`mfcore.fusion.for_rig` copies it)."""
    return maml.pretrained_fusion(method, profile, seed, device, progress=False)[0]


def _check_method_k(method: str, k, pool: int) -> None:
    if method not in ADAPTED_METHODS:
        raise ValueError(f"unknown adapted method {method!r}; choose one of {ADAPTED_METHODS}")
    if method == "NaiveFuseFull" and k != pool:
        raise ValueError(f"NaiveFuseFull trains on the whole pool: k must be {pool} (the pool), got {k!r}")


def finetune_on_pool(method: str, k: int, pool: dict[str, Tensor], trial: int, profile, seed: int, device, *,
                     progress: bool = False) -> tuple:
    """Meta-testing (MetaFuse Sec. 4.3) on a labelled pool of any rig: (adapted model on ``device``, wall seconds of
    its finetuning). The one recipe of the book: K frames of ``pool`` ({"pred", "target"} (N, V, J, h, w)) drawn by
    :func:`select_shots` with seed ``seed + 100 * trial + k`` (the same frames for every method of a trial), then
    :func:`mfcore.maml.finetune`'s Adam (``profile.metafuse.finetune_steps`` steps at ``finetune_lr``, mini-batches of
    ``min(k, batch_size)`` drawn with seed ``seed + k``; θ only for AffineFuse/MetaFuse) of
    :func:`mfcore.maml.pretrained_fusion`'s model of ``method`` spread over the rig's ordered pairs; "NaiveFuseFull"
    (k = N): NaiveFuse trained from zero on the whole pool (``full_steps``, ``outer_lr``, seed ``seed``). One setting
    of :func:`finetune_settings_on_pool`."""
    return finetune_settings_on_pool([(method, k)], pool, trial, profile, seed, device, progress=progress)[0]


def finetune_settings_on_pool(settings, pool: dict[str, Tensor], trial: int, profile, seed: int, device, *,
                              progress: bool = False) -> list[tuple]:
    """:func:`finetune_on_pool` for several (method, K) settings of one pool at once: the settings whose models share
    a class and a mini-batch size (MetaFuse and AffineFuse at every K with K >= ``batch_size``; NaiveFuse and
    NaiveFuseMeta likewise) are finetuned as one program (:func:`mfcore.training.train_members`: each setting its own
    K frames, mini-batch generator and pre-trained start, in groups that fit the device), with the results of
    finetuning them one by one, to float tolerance. Returns (adapted model, wall seconds) per setting, in order; a
    group's seconds are shared equally by its settings."""
    m = profile.metafuse
    device = torch.device(device)
    n, v = pool["pred"].shape[0], pool["pred"].shape[1]
    settings = list(settings)
    for method, k in settings:
        _check_method_k(method, k, n)
    out: list = [None] * len(settings)
    groups: dict = {}
    for i, (method, k) in enumerate(settings):
        if method == "NaiveFuseFull":
            model = fusion.NaiveFuse(v, profile.studio.heatmap_px, device=device)
            t0 = time.perf_counter()
            maml.train_fusion(model, pool["pred"], pool["target"], steps=m.full_steps, lr=m.outer_lr,
                              batch_size=m.batch_size, seed=seed, progress=progress, desc="NaiveFuse full")
            out[i] = (model, _synced_seconds(t0, device))
        else:
            start = _pretrained(method, profile, seed, device)
            key = (type(start), tuple(sorted(start.options().items())), min(k, m.batch_size))
            groups.setdefault(key, []).append(i)
    for (kind, _, _), members in groups.items():
        template = fusion.for_rig(_pretrained(settings[members[0]][0], profile, seed, device), v)
        entries = len(template.pairs) * template.num_pixels ** 2
        per_member = entries * training.entry_bytes("affine" if kind is fusion.AffineFuse else "weights")
        fit = training.fit_members(per_member, device)
        for start in range(0, len(members), fit):
            part = members[start:start + fit]
            params = training.stack_members(fusion.for_rig(_pretrained(settings[i][0], profile, seed, device), v)
                                            for i in part)
            frames = [select_shots(n, settings[i][1], seed + 100 * trial + settings[i][1]) for i in part]
            t0 = time.perf_counter()
            params, _ = training.train_members(
                template, params, pool["pred"], pool["target"], member_frames=frames, steps=m.finetune_steps,
                lr=m.finetune_lr, batch_size=m.batch_size, seeds=[seed + settings[i][1] for i in part],
                trainable=maml.finetuned_names(template), progress=progress, desc="finetune")
            seconds = _synced_seconds(t0, device) / len(part)
            for j, i in enumerate(part):
                out[i] = (training.member_model(template, params, j), seconds)
    return out


def _synced_seconds(t0: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def adapted_fusion(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                   progress: bool = False):
    """The fusion model of a Table 1 method adapted to a target rig (meta-testing, MetaFuse Sec. 4.3), on ``device``.

    ``method``: NaiveFuse / AffineFuse / MetaFuse / NaiveFuseMeta (:data:`FEW_SHOT_METHODS`): the pre-trained model
    (:func:`mfcore.maml.pretrained_fusion`) spread over every ordered pair of the rig (:func:`mfcore.fusion.for_rig`) and finetuned
    on K frames of the target's pool (:func:`mfcore.targets.target_data`) by :func:`finetune_on_pool` (shots drawn with seed
    ``seed + 100 * trial + k``, the same K frames for every method; Adam mini-batches with seed ``seed + k``);
    "NaiveFuseFull": NaiveFuse trained from zero on the whole pool (k must be the pool size). Deterministic in its
    arguments; :func:`fused_test_heatmaps` caches what this model makes of the test frames.
    """
    return finetune_on_pool(method, k, target_data(target, trial, profile, seed, device)["train"], trial, profile, seed,
                         device, progress=progress)[0]


# the heatmaps of a target that a setting reads, kept on the device (the rest of the labels stay on the CPU)
_RESIDENT_KEYS = {"train": ("pred", "target"), "test": ("pred",), "stress": ("pred",)}
_RESIDENT: dict = {}  # one slot: the last target's heatmaps on the last device
_LAST_MAPS: dict = {}  # one slot: the last setting's fused maps of both held-out splits, on the device
_PREPARED: dict = {}  # adapted models finetuned together (finetune_settings_on_pool), waiting for their cache entry


def _resident_target(target: str, trial: int, profile, seed: int, device: torch.device,
                     splits=("train", *HELD_OUT_SPLITS)) -> dict:
    """:func:`mfcore.targets.target_data` with the heatmaps of ``splits`` that a setting reads (the pool's "pred" and
    "target", the test and stress "pred"; 2.7 GB at full) on ``device``, each copied there once per target and trial
    (one slot): every method and K of Fig. 7 finetunes on the same pool and fuses the same test frames, and copying
    them for every setting (and the fused maps back) was most of a setting's time besides the finetuning. The other
    labels stay on the CPU. On the CPU this is :func:`mfcore.targets.target_data` itself."""
    data = target_data(target, trial, profile, seed, device)
    if device.type == "cpu":
        return data
    key = (target, trial, profile, seed, str(device))
    if _RESIDENT.get("key") != key:
        _RESIDENT.clear()  # free the previous target's copies first
        _RESIDENT.update(key=key, sets={})
    for split in splits:
        if split not in _RESIDENT["sets"]:
            _RESIDENT["sets"][split] = {name: data[split][name].to(device) for name in _RESIDENT_KEYS[split]}
        data[split] = {**data[split], **_RESIDENT["sets"][split]}
    return data


def clear_device_memo() -> None:
    """Forget the target heatmaps and fused maps this process keeps on a device (:func:`_resident_target`)."""
    _RESIDENT.clear()
    _LAST_MAPS.clear()
    _PREPARED.clear()


def _setting_key(method: str, k: int, target: str, trial: int, profile, seed: int) -> dict:
    """The cache key of a setting's entries: the profile's studio / backbone / metafuse sections, seed, method, K,
    target and trial."""
    sections = profile.as_dict()
    return dict(method=method, k=k, target=target, trial=trial, seed=seed, studio=sections["studio"],
                backbone=sections["backbone"], metafuse=sections["metafuse"])


def _fused_maps(method: str, k: int, target: str, trial: int, profile, seed: int, device: torch.device, *,
                progress: bool = False) -> tuple[dict[str, Tensor], Tensor]:
    """The cached fused maps of :func:`fused_test_heatmaps` for both held-out splits at once, on ``device``:
    ({split: (N, V, J, h, w) float16}, finetune_s (1,) float64 on the CPU). One finetuning, one fusion of each split
    (AffineFuse / MetaFuse: with one materialisation of the weights), no copy of the maps through the CPU but the one
    the cache entry needs. The last setting's maps are kept (one slot): a caller asking for "test", then "stress"
    fuses once."""
    key = _setting_key(method, k, target, trial, profile, seed)
    memo_key = (method, k, target, trial, seed, profile, str(device))
    if _LAST_MAPS.get("key") == memo_key:
        return _LAST_MAPS["maps"], _LAST_MAPS["finetune_s"]
    _LAST_MAPS.clear()
    state = {}

    def build() -> dict[str, Tensor]:
        data = _resident_target(target, trial, profile, seed, device)
        prepared = _PREPARED.pop(memo_key, None)  # finetuned together with the other settings of its pool
        model, seconds = prepared or finetune_on_pool(method, k, data["train"], trial, profile, seed, device,
                                                      progress=progress)
        seconds = torch.tensor([seconds], dtype=torch.float64)
        state["maps"] = {s: maml.fuse_frames(model, data[s]["pred"]).half() for s in HELD_OUT_SPLITS}
        if isinstance(model, fusion.AffineFuse):  # θ and ω_base (a few MB) instead of the fused maps (~0.3 GB at full)
            return {**{f"param.{n}": v.detach().cpu() for n, v in model.state_dict().items()}, "finetune_s": seconds}
        return {**{f"heatmaps.{s}": m for s, m in state["maps"].items()}, "finetune_s": seconds}  # the cache: to CPU

    out = runtime.cached("fused", key, build, code=FUSED_CODE)
    maps = state.get("maps")
    if maps is None and "heatmaps.test" in out:  # a NaiveFuse entry built by an earlier call or process
        maps = {s: out[f"heatmaps.{s}"].to(device) for s in HELD_OUT_SPLITS}
    elif maps is None:  # an AffineFuse / MetaFuse entry: rebuild the adapted model, fuse (same rounding as stored)
        data = _resident_target(target, trial, profile, seed, device, HELD_OUT_SPLITS)
        model = fusion.AffineFuse(data["test"]["pred"].shape[1], profile.studio.heatmap_px, device=device,
                                  scaled="param.omega_scale" in out)
        model.load_state_dict({n[len("param."):]: v for n, v in out.items() if n.startswith("param.")})
        model.freeze()
        maps = {s: maml.fuse_frames(model, data[s]["pred"]).half() for s in HELD_OUT_SPLITS}
    _LAST_MAPS.update(key=memo_key, maps=maps, finetune_s=out["finetune_s"].cpu())
    return maps, _LAST_MAPS["finetune_s"]


def fused_test_heatmaps(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                        progress: bool = False, split: str = "test") -> dict[str, Tensor]:
    """The heatmaps a 2D method gives for a target's test frames (cached), with the test labels.

    ``split``: "test" (the headline set) or "stress" (the motion types absent from training); one cache entry holds
    both, from one finetuning.

    "NoFusion" (k = 0): the backbone's heatmaps. Any method of :data:`ADAPTED_METHODS`: the pre-softmax fused heatmaps
    of :func:`adapted_fusion` (``method``, ``k``, ``target``, ``trial``), computed once and cached by
    :func:`mfcore.runtime.cached` (NaiveFuse variants: the fused maps, as float16; AffineFuse / MetaFuse: the adapted θ and
    ω_base, from which the maps are fused again on every call, rounded to float16 likewise, so first and later calls
    return the same values) under a key of the profile's
    studio / backbone / metafuse sections, ``seed``, method, K, target and trial, and the code of
    :data:`FUSED_CODE` (and what it imports). Returns the test dict of :func:`mfcore.targets.target_data` plus "heatmaps"
    (N, V, J, h, w) float32 and "finetune_s" (1,) float64 (wall seconds of the finetuning when the entry was built, its
    share where settings were finetuned together (:func:`finetune_settings_on_pool`);
    0 for NoFusion), all on the CPU.
    """
    _check_target(target)
    _check_trial(target, trial, profile)
    if split not in HELD_OUT_SPLITS:
        raise ValueError(f"split={split!r}: allowed values are {HELD_OUT_SPLITS}")
    device = torch.device(device)
    if method == "NoFusion":
        if k != 0:
            raise ValueError(f"NoFusion is not finetuned: k must be 0, got {k!r}")
        test = target_data(target, trial, profile, seed, device)[split]
        return {**test, "heatmaps": test["pred"], "finetune_s": torch.zeros(1, dtype=torch.float64)}
    _check_method_k(method, k, profile.metafuse.target_train_frames)
    test = target_data(target, trial, profile, seed, device)[split]
    maps, seconds = _fused_maps(method, k, target, trial, profile, seed, device, progress=progress)
    return {**test, "heatmaps": maps[split].float().cpu(), "finetune_s": seconds}


def _peaks_px(heatmaps: Tensor, image_px: int, device) -> Tensor:
    """:func:`mfcore.metrics.heatmap_peaks_px` computed on ``device`` (the argmax of a few hundred megabytes of fused
    heatmaps is a GPU's work; float16 maps are read as float32 there), returned on the CPU (with the labels)."""
    return metrics.heatmap_peaks_px(heatmaps.to(device), image_px).cpu()


def setting_peaks(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                  progress: bool = False) -> dict[str, Tensor]:
    """The heatmap maxima of a setting (a method of :data:`ADAPTED_METHODS` with its K, or "NoFusion" with k = 0) on
    a target's test and stress frames, in image pixels (:func:`mfcore.metrics.heatmap_peaks_px`, taken on ``device``
    from :func:`fused_test_heatmaps`'s maps), cached (a few hundred kB) under the key and code of the fused maps:
    {"test": (N, V, J, 2), "stress": (N_stress, V, J, 2), "finetune_s": (1,) float64}, on the CPU. Every JDR of the
    setting follows from them and the labels (:func:`mfcore.metrics.peak_jdr_rows`): chapter 4 computes them once
    and a later chapter (4b's references) reads the same numbers without loading or fusing the maps again."""
    _check_target(target)
    _check_trial(target, trial, profile)
    device = torch.device(device)
    image_px = profile.studio.image_px
    if method == "NoFusion":
        if k != 0:
            raise ValueError(f"NoFusion is not finetuned: k must be 0, got {k!r}")
    else:
        _check_method_k(method, k, profile.metafuse.target_train_frames)

    def build() -> dict[str, Tensor]:
        if method == "NoFusion":
            sets = _resident_target(target, trial, profile, seed, device, HELD_OUT_SPLITS)
            maps, seconds = {s: sets[s]["pred"] for s in HELD_OUT_SPLITS}, torch.zeros(1, dtype=torch.float64)
        else:
            maps, seconds = _fused_maps(method, k, target, trial, profile, seed, device, progress=progress)
        return {**{s: _peaks_px(maps[s], image_px, device) for s in HELD_OUT_SPLITS}, "finetune_s": seconds}

    return runtime.cached("peaks", _setting_key(method, k, target, trial, profile, seed), build, code=FUSED_CODE)


def few_shot_curves(profile, seed: int, device, *, progress: bool = True, by_subject: bool = False,
                    frame_rows: list | None = None, settings=None) -> tuple[list[dict], list[dict]]:
    """Fig. 7: JDR against the number K of labelled target frames, for every method of Table 1, on every target rig
    of :data:`FIG7_TARGETS` (all trials), all through :func:`fused_test_heatmaps`'s cache entries.

    NoFusion (k = 0) and NaiveFuse^full (k = the whole pool) are flat references; for each K of ``profile.metafuse
    .shots`` NaiveFuse^K, AffineFuse^K and MetaFuse^K are finetuned on the same K frames, NaiveFuseMeta^K at the first
    :data:`NAIVE_META_SHOTS` K (the paper's 50 and 100, Sec. 5.2) (``settings``: a list of (method, k) instead, e.g.
    a few references of them; the same rows for those). JDR is pooled
    over all test frames (for the H36M-like room: both test subjects); the same models on the stress set give rows of
    their own (split "stress"; never pooled with the test rows). Returns (JDR rows: rig, trial, method, k, split,
    paper_k (:func:`paper_k`), subject ("all", or with ``by_subject`` also one row set per H36M test subject, "S9",
    "S11"), joint, jdr, threshold; timing rows: rig, trial, method, k, finetune_s — measured when the cache entry was
    built — and setting_s, the wall seconds of this setting in this call: loading or finetuning, fusing, JDR).
    With ``frame_rows`` (a list), the per-frame detections of every setting at the book's threshold "half_head" are
    appended to it (:func:`mfcore.metrics.peak_jdr_frame_rows`: the same columns as the JDR rows but ``paper_k`` and
    ``subject``, then frame, joint, detected, counted): the units of the paired comparisons of :mod:`mfcore.claims`.

    Every setting's numbers come from :func:`setting_peaks` (cached maxima; built from the fused maps, on the device).
    """
    image_px = profile.studio.image_px
    pool = profile.metafuse.target_train_frames
    device = torch.device(device)
    rows, timings = [], []
    if settings is None:
        settings = [("NoFusion", 0), ("NaiveFuseFull", pool)] + [
            (mth, k) for i, k in enumerate(profile.metafuse.shots) for mth in FEW_SHOT_METHODS
            if mth != "NaiveFuseMeta" or i < NAIVE_META_SHOTS]
    for target in FIG7_TARGETS:
        for trial in range(target_trials(target, profile)):
            labels = target_data(target, trial, profile, seed, device)  # CPU labels
            _prepare_settings(settings, target, trial, profile, seed, device, progress=progress)
            for method, k in settings:
                t0 = time.perf_counter()
                peaks = setting_peaks(method, k, target, trial, profile, seed, device,
                                      progress=progress and method == "NaiveFuseFull")
                cols = dict(rig=target, trial=trial, method=method, k=k, paper_k=paper_k(k, profile, method))
                out = labels["test"]
                rows += metrics.peak_jdr_rows(peaks["test"], out, image_px, **cols, subject="all", split="test")
                if frame_rows is not None:
                    frame_rows += metrics.peak_jdr_frame_rows(peaks["test"], out, image_px, "half_head", split="test",
                                                              **{c: v for c, v in cols.items() if c != "paper_k"})
                rows += metrics.peak_jdr_rows(peaks["stress"], labels["stress"], image_px, **cols, subject="all",
                                              split="stress")
                if by_subject and "subject" in out:
                    for s in dict.fromkeys(out["subject"].tolist()):
                        sel = out["subject"] == s
                        part = {key: v[sel] for key, v in out.items() if key not in _NOT_LABELS}
                        rows += metrics.peak_jdr_rows(peaks["test"][sel], part, image_px, **cols, subject=f"S{s}",
                                                      split="test")
                if method != "NoFusion":
                    timings.append(dict(rig=target, trial=trial, method=method, k=k,
                                        finetune_s=float(peaks["finetune_s"][0]),
                                        setting_s=time.perf_counter() - t0))
            _PREPARED.clear()  # what no setting took (none, unless a cache entry appeared meanwhile)
    return rows, timings


class _Missing(Exception):
    """Raised by a cache probe's build: the entry does not exist."""


def _is_cached(kind: str, key: dict) -> bool:
    """Whether the installed cache holds a valid entry ``kind`` for ``key`` (under :data:`FUSED_CODE`); nothing is
    built or written."""
    def missing() -> dict:
        raise _Missing

    try:
        runtime.cached(kind, key, missing, code=FUSED_CODE)
    except _Missing:
        return False
    return True


def _prepare_settings(settings, target: str, trial: int, profile, seed: int, device: torch.device, *,
                      progress: bool = False) -> None:
    """Finetune at once (:func:`finetune_settings_on_pool`) every adapted setting of ``settings`` whose maxima and
    fused maps are not cached yet; each model waits in :data:`_PREPARED` until its setting's entry is built (the
    entries keep their meaning: one setting, one finetuning, the same key)."""
    todo = []
    for method, k in settings:
        if method in ("NoFusion", "NaiveFuseFull"):
            continue
        key = _setting_key(method, k, target, trial, profile, seed)
        if not _is_cached("peaks", key) and not _is_cached("fused", key):
            todo.append((method, k))
    if len(todo) < 2:  # nothing to do together: a setting alone is finetuned when its entry is built
        return
    data = _resident_target(target, trial, profile, seed, device)
    done = finetune_settings_on_pool(todo, data["train"], trial, profile, seed, device, progress=progress)
    for (method, k), result in zip(todo, done):
        _PREPARED[(method, k, target, trial, seed, profile, str(device))] = result
