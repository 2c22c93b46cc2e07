"""The few-shot protocol of MetaFuse's Table 1 and Fig. 7: which K labelled frames, which seeds, which models.

* the meta-testing recipe itself (:class:`Setting`, :func:`select_shots`, :func:`finetune_on_pool`, the K of the
  paper and the profile): :mod:`mfcore.adaptation`, whose names are reachable here too;
* :func:`adapted_fusion` — a setting's model adapted to a target rig (:mod:`mfcore.targets`).
* :func:`fused_test_heatmaps` — a method's fused test heatmaps, cached by :func:`mfcore.runtime.cached` under
  :data:`FUSED_CODE`; chapter 4 (JDR, Fig. 7) and chapter 5 (3D tables) both read them.
* :func:`setting_peaks` — a setting's heatmap maxima on the test and stress frames, cached: every JDR of chapter 4,
  and chapter 4b's references, from the same numbers.
* :func:`few_shot_curves` — Fig. 7: JDR against K for every method and target.

Speed: a setting's heatmaps stay on the device from the target's pool to the maxima (:func:`_resident_target`,
:func:`_fused_maps`); the CPU receives the maxima and the one copy of the maps that the cache entry needs.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from . import fusion, maml, metrics, objectives, pretrained, runtime
from .adaptation import (  # noqa: F401 (part of this module's API)
    ADAPTED_METHODS, FEW_SHOT_METHODS, FULL_METHODS, NAIVE_META_SHOTS, PAPER_SHOTS, Setting, _check_method_k,
    _pretrained, as_setting, finetune_on_pool, finetune_settings_on_pool, paper_k, prepare_pretrained, profile_k,
    select_shots, training_seed)
from .targets import FIG7_TARGETS, HELD_OUT_SPLITS, _check_target, _check_trial, target_data, target_trials

_NOT_LABELS = ("heatmaps", "pred", "target", "finetune_s")  # per-frame heatmaps and scalars of a test set, not labels
FUSED_CODE = ("fewshot", "adaptation", "maml", "targets", "metrics", "fusion", "backbone")  # the code behind a fused-heatmaps entry


def _code_of(setting) -> tuple[str, ...]:
    """The code behind a setting's entries: :data:`FUSED_CODE`, and the epipolar oracle's for the setting started at
    the pool's epipolar lines (imported by name where it is used, so that no other setting's entries depend on it)."""
    return FUSED_CODE + ("oracle",) if as_setting(setting).method == "AffineFuseFullLines" else FUSED_CODE


def adapted_fusion(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                   fusion_seed: int | None = None, variant: str = "a", progress: bool = False):
    """The fusion model of a Table 1 method adapted to a target rig (meta-testing, MetaFuse Sec. 4.3), on ``device``.

    ``method``: NaiveFuse / AffineFuse / MetaFuse / NaiveFuseMeta (:data:`FEW_SHOT_METHODS`): the pre-trained model
    (:func:`mfcore.pretrained.pretrained_fusion`) spread over every ordered pair of the rig (:func:`mfcore.fusion.for_rig`)
    and finetuned on K frames of the target's pool (:func:`mfcore.targets.target_data`) by :func:`finetune_on_pool`;
    a method of :data:`FULL_METHODS`: trained from its start on the whole pool (k must be the pool size).
    ``fusion_seed`` / ``variant``: the training seed and the objective (:class:`Setting`). Deterministic in its
    arguments; :func:`fused_test_heatmaps` caches what this model makes of the test frames.
    """
    return finetune_on_pool(method, k, target_data(target, trial, profile, seed, device)["train"], trial, profile, seed,
                            device, fusion_seed=fusion_seed, variant=variant, target=target, progress=progress)[0]


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


def _setting_key(setting: Setting, target: str, trial: int, profile, seed: int) -> dict:
    """The cache key of a setting's entries: the profile's studio / backbone / metafuse sections, seed, method, K,
    training seed, objective variant, target and trial."""
    sections = profile.as_dict()
    return dict(method=setting.method, k=setting.k, target=target, trial=trial, seed=seed,
                fusion_seed=training_seed(setting, seed), variant=setting.variant, studio=sections["studio"],
                backbone=sections["backbone"], metafuse=sections["metafuse"],
                meta_sizes=pretrained.meta_sizes(profile, setting.variant))


def _fused_maps(setting: Setting, target: str, trial: int, profile, seed: int, device: torch.device, *,
                progress: bool = False) -> tuple[dict[str, Tensor], Tensor]:
    """The cached fused maps of :func:`fused_test_heatmaps` for both held-out splits at once, on ``device``:
    ({split: (N, V, J, h, w) float16}, finetune_s (1,) float64 on the CPU). One finetuning, one fusion of each split
    (AffineFuse / MetaFuse: with one materialisation of the weights), no copy of the maps through the CPU but the one
    the cache entry needs. The last setting's maps are kept (one slot): a caller asking for "test", then "stress"
    fuses once."""
    key = _setting_key(setting, target, trial, profile, seed)
    memo_key = (setting, target, trial, seed, profile, str(device))
    if _LAST_MAPS.get("key") == memo_key:
        return _LAST_MAPS["maps"], _LAST_MAPS["finetune_s"]
    _LAST_MAPS.clear()
    state = {}

    def build() -> dict[str, Tensor]:
        data = _resident_target(target, trial, profile, seed, device)
        prepared = _PREPARED.pop(memo_key, None)  # finetuned together with the other settings of its pool
        model, seconds = prepared or finetune_settings_on_pool([setting], data["train"], trial, profile, seed, device,
                                                               target=target, progress=progress)[0]
        seconds = torch.tensor([seconds], dtype=torch.float64)
        state["maps"] = {s: maml.fuse_frames(model, data[s]["pred"]).half() for s in HELD_OUT_SPLITS}
        if isinstance(model, fusion.AffineFuse):  # θ and ω_base (a few MB) instead of the fused maps (~0.3 GB at full)
            return {**{f"param.{n}": v.detach().cpu() for n, v in model.state_dict().items()}, "finetune_s": seconds}
        return {**{f"heatmaps.{s}": m for s, m in state["maps"].items()}, "finetune_s": seconds}  # the cache: to CPU

    out = runtime.cached("fused", key, build, code=_code_of(setting))
    maps = state.get("maps")
    if maps is None and "heatmaps.test" in out:  # a NaiveFuse entry built by an earlier call or process
        maps = {s: out[f"heatmaps.{s}"].to(device) for s in HELD_OUT_SPLITS}
    elif maps is None:  # an AffineFuse / MetaFuse entry: rebuild the adapted model, fuse (same rounding as stored)
        data = _resident_target(target, trial, profile, seed, device, HELD_OUT_SPLITS)
        model = fusion.AffineFuse(data["test"]["pred"].shape[1], profile.studio.heatmap_px, device=device,
                                  scaled="param.omega_scale" in out, mix=objectives.get_variant(setting.variant).mix)
        model.load_state_dict({n[len("param."):]: v for n, v in out.items() if n.startswith("param.")})
        model.freeze()
        maps = {s: maml.fuse_frames(model, data[s]["pred"]).half() for s in HELD_OUT_SPLITS}
    _LAST_MAPS.update(key=memo_key, maps=maps, finetune_s=out["finetune_s"].cpu())
    return maps, _LAST_MAPS["finetune_s"]


def fused_test_heatmaps(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                        fusion_seed: int | None = None, variant: str = "a", progress: bool = False,
                        split: str = "test") -> dict[str, Tensor]:
    """The heatmaps a 2D method gives for a target's test frames (cached), with the test labels.

    ``split``: "test" (the headline set) or "stress" (the motion types absent from training); one cache entry holds
    both, from one finetuning.

    "NoFusion" (k = 0): the backbone's heatmaps. Any method of :data:`ADAPTED_METHODS`: the pre-softmax fused heatmaps
    of :func:`adapted_fusion` (``method``, ``k``, ``target``, ``trial``, ``fusion_seed``, ``variant``), computed once
    and cached by :func:`mfcore.runtime.cached` (NaiveFuse variants: the fused maps, as float16; AffineFuse / MetaFuse:
    the adapted θ and ω_base, from which the maps are fused again on every call, rounded to float16 likewise, so first
    and later calls return the same values) under :func:`_setting_key` and the code of :data:`FUSED_CODE` (and what it
    imports). Returns the test dict of :func:`mfcore.targets.target_data` plus "heatmaps" (N, V, J, h, w) float32 and
    "finetune_s" (1,) float64 (wall seconds of the finetuning when the entry was built, its share where settings were
    finetuned together (:func:`finetune_settings_on_pool`); 0 for NoFusion), all on the CPU.
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
    maps, seconds = _fused_maps(Setting(method, k, fusion_seed, variant), target, trial, profile, seed, device,
                                progress=progress)
    return {**test, "heatmaps": maps[split].float().cpu(), "finetune_s": seconds}


def adapted_parameters(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                       fusion_seed: int | None = None, variant: str = "a") -> dict[str, Tensor]:
    """The adapted θ and ω_base (and amplitude) of an AffineFuse / MetaFuse setting as cached with its fused maps
    (:func:`fused_test_heatmaps`; trained first if the entry is missing), {name: tensor} on the CPU."""
    setting = Setting(method, k, fusion_seed, variant)
    _check_method_k(method, k, profile.metafuse.target_train_frames)
    _fused_maps(setting, target, trial, profile, seed, torch.device(device))

    def missing() -> dict:
        raise RuntimeError(f"the fused entry of {setting} on {target} trial {trial} vanished from the cache")

    entry = runtime.cached("fused", _setting_key(setting, target, trial, profile, seed), missing, code=_code_of(setting))
    params = {n[len("param."):]: v for n, v in entry.items() if n.startswith("param.")}
    if not params:
        raise ValueError(f"{method} keeps no affine parameters (a NaiveFuse model's entry holds its fused maps)")
    return params


def _peaks_px(heatmaps: Tensor, image_px: int, device) -> Tensor:
    """:func:`mfcore.metrics.heatmap_peaks_px` computed on ``device`` (the argmax of a few hundred megabytes of fused
    heatmaps is a GPU's work; float16 maps are read as float32 there), returned on the CPU (with the labels)."""
    return metrics.heatmap_peaks_px(heatmaps.to(device), image_px).cpu()


def setting_peaks(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                  fusion_seed: int | None = None, variant: str = "a", progress: bool = False) -> dict[str, Tensor]:
    """The heatmap maxima of a setting (a method of :data:`ADAPTED_METHODS` with its K, training seed and objective
    variant, or "NoFusion" with k = 0) on a target's test and stress frames, in image pixels
    (:func:`mfcore.metrics.heatmap_peaks_px`, taken on ``device`` from :func:`fused_test_heatmaps`'s maps), cached (a
    few hundred kB) under the key and code of the fused maps: {"test": (N, V, J, 2), "stress": (N_stress, V, J, 2),
    "finetune_s": (1,) float64}, on the CPU. Every JDR of the setting follows from them and the labels
    (:func:`mfcore.metrics.peak_jdr_rows`): chapter 4 computes them once and a later chapter (4b's references, 4c)
    reads the same numbers without loading or fusing the maps again."""
    _check_target(target)
    _check_trial(target, trial, profile)
    device = torch.device(device)
    image_px = profile.studio.image_px
    setting = Setting(method, k, fusion_seed, variant)
    if method == "NoFusion":
        if k != 0:
            raise ValueError(f"NoFusion is not finetuned: k must be 0, got {k!r}")
        setting = Setting("NoFusion", 0)  # the backbone's own maxima: one entry whatever the seed or variant
    else:
        _check_method_k(method, k, profile.metafuse.target_train_frames)
        objectives.get_variant(variant)

    def build() -> dict[str, Tensor]:
        if method == "NoFusion":
            sets = _resident_target(target, trial, profile, seed, device, HELD_OUT_SPLITS)
            maps, seconds = {s: sets[s]["pred"] for s in HELD_OUT_SPLITS}, torch.zeros(1, dtype=torch.float64)
        else:
            maps, seconds = _fused_maps(setting, target, trial, profile, seed, device, progress=progress)
        return {**{s: _peaks_px(maps[s], image_px, device) for s in HELD_OUT_SPLITS}, "finetune_s": seconds}

    return runtime.cached("peaks", _setting_key(setting, target, trial, profile, seed), build, code=_code_of(setting))


def default_settings(profile) -> list[Setting]:
    """Fig. 7's settings for one training seed: NoFusion, NaiveFuse^full, and NaiveFuse / AffineFuse / MetaFuse at every
    K of ``profile.metafuse.shots``, NaiveFuseMeta at the first :data:`NAIVE_META_SHOTS`."""
    pool = profile.metafuse.target_train_frames
    return [Setting("NoFusion", 0), Setting("NaiveFuseFull", pool)] + [
        Setting(mth, k) for i, k in enumerate(profile.metafuse.shots) for mth in FEW_SHOT_METHODS
        if mth != "NaiveFuseMeta" or i < NAIVE_META_SHOTS]


def with_seeds(settings, fusion_seeds) -> list[Setting]:
    """Every trained setting of ``settings`` once per training seed of ``fusion_seeds``; NoFusion once (untrained)."""
    out = []
    for st in map(as_setting, settings):
        if st.method == "NoFusion":
            out.append(st)
        else:
            out += [st._replace(fusion_seed=int(fs)) for fs in fusion_seeds]
    return out


def few_shot_curves(profile, seed: int, device, *, progress: bool = True, by_subject: bool = False,
                    frame_rows: list | None = None, settings=None, fusion_seeds=None,
                    targets=FIG7_TARGETS, trials=None) -> tuple[list[dict], list[dict]]:
    """Fig. 7: JDR against the number K of labelled target frames, for every method of Table 1, on every target rig
    of ``targets`` (all its trials, or the first ``trials``), all through :func:`fused_test_heatmaps`'s cache entries.

    NoFusion (k = 0) and NaiveFuse^full (k = the whole pool) are flat references; for each K of ``profile.metafuse
    .shots`` NaiveFuse^K, AffineFuse^K and MetaFuse^K are finetuned on the same K frames, NaiveFuseMeta^K at the first
    :data:`NAIVE_META_SHOTS` K (the paper's 50 and 100, Sec. 5.2) (:func:`default_settings`; ``settings``: a list of
    :class:`Setting` or (method, k) instead). ``fusion_seeds``: every trained setting once per training seed (the
    pre-trained model's seed, the K frames and mini-batches; :func:`with_seeds`); default: the settings as given
    (their own seed, else ``seed``). JDR is pooled over all test frames (for the H36M-like room: both test subjects);
    the same models on the stress set give rows of their own (split "stress"; never pooled with the test rows).
    Returns (JDR rows: rig, trial, method, k, seed (the training seed; empty for NoFusion), variant, split, paper_k
    (:func:`paper_k`), subject ("all", or with ``by_subject`` also one row set per H36M test subject, "S9", "S11"),
    joint, jdr, threshold; timing rows: rig, trial, method, k, seed, variant, finetune_s — measured when the cache
    entry was built — and setting_s, the wall seconds of this setting in this call: loading or finetuning, fusing,
    JDR). With ``frame_rows`` (a list), the per-frame detections of every setting at the book's threshold
    "half_head" are appended to it (:func:`mfcore.metrics.peak_jdr_frame_rows`: the same columns as the JDR rows but
    ``paper_k`` and ``subject``, then frame, joint, detected, counted): the units of the paired comparisons of
    :mod:`mfcore.claims`.

    Every setting's numbers come from :func:`setting_peaks` (cached maxima; built from the fused maps, on the device).
    """
    image_px = profile.studio.image_px
    device = torch.device(device)
    rows, timings = [], []
    settings = [as_setting(x) for x in (default_settings(profile) if settings is None else settings)]
    if fusion_seeds is not None:
        settings = with_seeds(settings, fusion_seeds)
    for variant in dict.fromkeys(st.variant for st in settings if st.method != "NoFusion"):
        for method in dict.fromkeys(st.method for st in settings if st.variant == variant):
            seeds = sorted({training_seed(st, seed) for st in settings if (st.method, st.variant) == (method, variant)})
            prepare_pretrained([method], profile, seed, device, seeds, variant)  # every seed in one program
    for target in targets:
        for trial in range(target_trials(target, profile) if trials is None else
                           min(trials, target_trials(target, profile))):
            labels = target_data(target, trial, profile, seed, device)  # CPU labels
            _prepare_settings(settings, target, trial, profile, seed, device, progress=progress)
            for st in settings:
                t0 = time.perf_counter()
                peaks = setting_peaks(st.method, st.k, target, trial, profile, seed, device,
                                      fusion_seed=st.fusion_seed, variant=st.variant,
                                      progress=progress and st.method in FULL_METHODS)
                trained = st.method != "NoFusion"
                cols = dict(rig=target, trial=trial, method=st.method, k=st.k,
                            seed=training_seed(st, seed) if trained else None,
                            variant=st.variant if trained else None, paper_k=paper_k(st.k, profile, st.method))
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
                if trained:
                    timings.append(dict(rig=target, trial=trial, method=st.method, k=st.k, seed=cols["seed"],
                                        variant=st.variant, finetune_s=float(peaks["finetune_s"][0]),
                                        setting_s=time.perf_counter() - t0))
            _PREPARED.clear()  # what no setting took (none, unless a cache entry appeared meanwhile)
    return rows, timings


class _Missing(Exception):
    """Raised by a cache probe's build: the entry does not exist."""


def _is_cached(kind: str, key: dict, code=FUSED_CODE) -> bool:
    """Whether the installed cache holds a valid entry ``kind`` for ``key`` (under ``code``); nothing is built or
    written."""
    def missing() -> dict:
        raise _Missing

    try:
        runtime.cached(kind, key, missing, code=code)
    except _Missing:
        return False
    return True


def _prepare_settings(settings, target: str, trial: int, profile, seed: int, device: torch.device, *,
                      progress: bool = False) -> None:
    """Train at once (:func:`finetune_settings_on_pool`) every adapted setting of ``settings`` whose maxima and fused
    maps are not cached yet; each model waits in :data:`_PREPARED` until its setting's entry is built (the entries keep
    their meaning: one setting, one training, the same key)."""
    todo = []
    for st in map(as_setting, settings):
        if st.method == "NoFusion":
            continue
        key = _setting_key(st, target, trial, profile, seed)
        if not _is_cached("peaks", key, _code_of(st)) and not _is_cached("fused", key, _code_of(st)):
            todo.append(st)
    if len(todo) < 2:  # nothing to do together: a setting alone is trained when its entry is built
        return
    data = _resident_target(target, trial, profile, seed, device)
    done = finetune_settings_on_pool(todo, data["train"], trial, profile, seed, device, target=target,
                                     progress=progress)
    for st, result in zip(todo, done):
        _PREPARED[(st, target, trial, seed, profile, str(device))] = result
