"""The target camera configurations of MetaFuse Sec. 5.1: labelled pools and test sets of backbone heatmaps.

* :func:`target_data` — a target rig's labelled pool, test set and stress set (:func:`mfcore.backbone.cached_heatmaps`;
  test: held-out segments of the training motion types, the headline; stress: the motion types absent from training,
  :data:`mfcore.motion.SPLITS`, ``stress_test_frames`` of them, reported in rows of their own): the
  H36M-like room (pool from training subjects S1, S5-S8, test on S9, S11, cameras jittered per subject,
  :func:`h36m_heatmaps`), 4 of the dome's held-out cameras per trial, the Total-Capture-like ring. A process keeps
  the sets it assembled in memory (:func:`clear_target_memo` forgets them).
* :func:`target_trials` / :func:`target_rigs` — the trials of a target and the rigs of Fig. 7.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor

from . import backbone, data, motion, runtime, studio

TARGETS = ("h36m", "dome_heldout", "totalcapture")  # the camera configurations MetaFuse is adapted to
FIG7_TARGETS = ("h36m", "dome_heldout")  # the rigs of chapter 4's Fig. 7
HELD_OUT_SPLITS = ("test", "stress")  # the evaluation sets of a target (mfcore.motion.SPLITS less "train")
# data seeds (offsets from the book's ``seed``): H36M-like subject s draws its pool with seed + 100 + s and its test
# frames with seed + 200 + s; the dome's held-out cameras seed + 3 / + 4 (camera draws + 5); the ring seed + 20 / + 21;
# the stress sets: H36M-like subject s seed + 300 + s, the dome seed + 6, the ring seed + 22
_H36M_POOL_SEED, _H36M_TEST_SEED, _H36M_STRESS_SEED = 100, 200, 300
_DOME_POOL_SEED, _DOME_TEST_SEED, _DOME_PICK_SEED, _DOME_STRESS_SEED = 3, 4, 5, 6
_TC_POOL_SEED, _TC_TEST_SEED, _TC_STRESS_SEED = 20, 21, 22


def target_trials(target: str, profile) -> int:
    """Trials of a target: ``profile.metafuse.trials`` camera draws for "dome_heldout", one for the fixed rigs."""
    _check_target(target)
    return profile.metafuse.trials if target == "dome_heldout" else 1


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target rig {target!r}; choose one of {TARGETS}")


def _check_trial(target: str, trial, profile) -> None:
    n = target_trials(target, profile)
    if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial < n:
        raise ValueError(f"trial {trial!r} of target {target!r} does not exist; valid trials: 0..{n - 1}")


def _split_evenly(n: int, parts: int) -> list[int]:
    if n < parts:
        raise ValueError(f"{n} frames cannot be split over {parts} subjects; give at least {parts}")
    return [n // parts + (i < n % parts) for i in range(parts)]


def _clip_index(split: str, n: int, seed: int) -> Tensor:
    """The clip of every frame of :func:`mfcore.backbone.cached_heatmaps` (the same pose draw)."""
    return motion.sample_poses(split, n, seed)[1]


def h36m_heatmaps(subjects, split: str, n_frames: int, profile, seed: int, device) -> dict[str, Tensor]:
    """Backbone heatmaps of the H36M-like room pooled over ``subjects`` (MetaFuse Sec. 5.1: the cameras sit slightly
    differently for every subject): ``n_frames`` split evenly over the subjects' rigs (:func:`mfcore.studio.h36m_rig`),
    motions of ``split``; subject s drawn with seed ``seed + 100 + s`` (pool, "train"), ``seed + 200 + s`` ("test") or
    ``seed + 300 + s`` ("stress");
    the warm-up backbone of ``seed``. Returns the keys of :func:`mfcore.backbone.cached_heatmaps`, frames of subject
    after subject, with per-frame cameras: "projections" (N, V, 3, 4), "focal_px" and "sensor_px_per_view_px"
    (N, V); plus "subject" (N,) and, for test and stress sets, "clip_index" (N,)."""
    subjects = [int(s) for s in subjects]
    for s in subjects:
        studio.h36m_rig(s)  # unknown subject -> ValueError naming the valid ones
    offset = {"train": _H36M_POOL_SEED, "test": _H36M_TEST_SEED, "stress": _H36M_STRESS_SEED}[split]
    parts = []
    for s, n in zip(subjects, _split_evenly(n_frames, len(subjects))):
        d = dict(backbone.cached_heatmaps(f"h36m_s{s}", split, n, profile, seed + offset + s, device,
                                          backbone_seed=seed))
        d["projections"] = d["projections"].expand(n, *d["projections"].shape)
        d["focal_px"] = d["focal_px"].expand(n, *d["focal_px"].shape)
        d["sensor_px_per_view_px"] = d["sensor_px_per_view_px"].expand(n, *d["sensor_px_per_view_px"].shape)
        d["subject"] = torch.full((n,), s, dtype=torch.long)
        if split != "train":
            d["clip_index"] = _clip_index(split, n, seed + offset + s)
        parts.append(d)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# target sets this process assembled, most recently used last: Fig. 7 reads the same pool and test set for every
# method, K and trial, and assembling them again (float16 -> float32, subjects concatenated, views selected) took
# seconds per call at full scale (minutes of chapter 4). Bounded by the cache's memory budget; CPU tensors as always.
_TARGET_MEMO: "OrderedDict[tuple, dict]" = OrderedDict()


def _shallow_copy(data: dict) -> dict:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}


def _target_nbytes(data: dict) -> int:
    return sum(t.numel() * t.element_size() for part in (data["train"], data["test"], data["stress"])
               for t in part.values())


def clear_target_memo() -> None:
    """Forget the target sets :func:`target_data` keeps in memory."""
    _TARGET_MEMO.clear()


def target_data(target: str, trial: int, profile, seed: int, device) -> dict:
    """A target camera configuration of MetaFuse Sec. 5.1: dict(rig, trial, views, train (labelled pool: the K-shot
    and NaiveFuse^full frames), test (the headline set), stress (``stress_test_frames`` frames of the stress motion
    types, the same cameras)), each a dict of :func:`mfcore.backbone.cached_heatmaps` (with "clip_index" in the test
    and stress sets). A process keeps the sets it assembled (LRU within
    :func:`mfcore.runtime.memo_budget_bytes`) and returns fresh dicts of the same tensors: do not modify them in place.

    * "h36m": the H36M-like room. Pool: ``target_train_frames`` frames of training motions split evenly over the
      training subjects' rigs (S1, S5, S6, S7, S8); test: ``target_test_frames`` frames of test motions over the test
      subjects' rigs (S9, S11) (:func:`h36m_heatmaps`: per-frame cameras and a "subject" column).
    * "dome_heldout": trial ``trial`` of ``profile.metafuse.trials`` seeded draws of 4 of the dome's 6 held-out cameras
      (the Panoptic protocol; never seen in (meta-)training).
    * "totalcapture": the Total-Capture-like 8-camera ring, pool from training motions, test from test motions.
    """
    _check_target(target)
    _check_trial(target, trial, profile)
    key = (target, int(trial), profile, int(seed))
    hit = _TARGET_MEMO.get(key)
    if hit is not None:
        _TARGET_MEMO.move_to_end(key)
        return _shallow_copy(hit)
    data = _assemble_target(target, trial, profile, seed, device)
    budget = runtime.memo_budget_bytes()
    if _target_nbytes(data) <= budget:
        _TARGET_MEMO[key] = data
        while sum(map(_target_nbytes, _TARGET_MEMO.values())) > budget:  # the newest set alone fits
            _TARGET_MEMO.popitem(last=False)
    return _shallow_copy(data)


def _assemble_target(target: str, trial: int, profile, seed: int, device) -> dict:
    m = profile.metafuse
    sizes = {"test": m.target_test_frames, "stress": m.stress_test_frames}
    if target == "h36m":
        train = h36m_heatmaps(studio.H36M_TRAIN_SUBJECTS, "train", m.target_train_frames, profile, seed, device)
        held = {split: h36m_heatmaps(studio.H36M_TEST_SUBJECTS, split, n, profile, seed, device)
                for split, n in sizes.items()}
        return dict(rig=target, trial=trial, views=tuple(range(train["pred"].shape[1])), train=train, **held)
    if target == "totalcapture":
        train = backbone.cached_heatmaps("totalcapture", "train", m.target_train_frames, profile,
                                         seed + _TC_POOL_SEED, device, backbone_seed=seed)
        held = {}
        for split, n in sizes.items():
            split_seed = seed + {"test": _TC_TEST_SEED, "stress": _TC_STRESS_SEED}[split]
            held[split] = dict(backbone.cached_heatmaps("totalcapture", split, n, profile, split_seed, device,
                                                        backbone_seed=seed))
            held[split]["clip_index"] = _clip_index(split, n, split_seed)
        return dict(rig=target, trial=trial, views=tuple(range(train["pred"].shape[1])), train=train, **held)
    held_views = studio.DOME_HELDOUT_VIEWS
    train = backbone.cached_heatmaps("dome", "train", m.target_train_frames, profile, seed + _DOME_POOL_SEED, device,
                                     views=held_views, backbone_seed=seed)
    held = {}
    for split, n in sizes.items():
        split_seed = seed + {"test": _DOME_TEST_SEED, "stress": _DOME_STRESS_SEED}[split]
        held[split] = dict(backbone.cached_heatmaps("dome", split, n, profile, split_seed, device, views=held_views,
                                                    backbone_seed=seed))
        held[split]["clip_index"] = _clip_index(split, n, split_seed)
    pick = _dome_pick(trial, seed)
    return dict(rig=target, trial=trial, views=tuple(held_views[i] for i in pick.tolist()),
                train=_select_views(train, pick), **{split: _select_views(d, pick) for split, d in held.items()})


def _dome_pick(trial: int, seed: int) -> Tensor:
    """The positions, in :data:`mfcore.studio.DOME_HELDOUT_VIEWS`, of trial ``trial``'s 4 held-out dome cameras."""
    g = torch.Generator().manual_seed(seed + _DOME_PICK_SEED)
    for _ in range(trial + 1):  # trial t is the (t+1)-th draw of one generator
        pick = torch.randperm(len(studio.DOME_HELDOUT_VIEWS), generator=g)[:4].sort().values
    return pick


def target_images(target: str, trial: int, split: str, n_frames: int, profile, seed: int, device, *,
                  batch_frames: int = 64):
    """The images of a target's frames, batch by batch, in the order of :func:`target_data`'s sets: yields
    (images (B, V, 3, H, W) float in [0, 1] on ``device``, joints_2d_px (B, V, J, 2) image px), the views of the trial.

    The same rigs, data seeds, frame counts per subject and camera draws as :func:`target_data` (which keeps only the
    backbone's heatmaps of these frames): with ``n_frames`` equal to a set's size, the frames of its "train" (pool),
    "test" or "stress" set; with another size, as many frames drawn the same way (e.g. a larger pool). What a model
    trained on images rather than on cached heatmaps (:mod:`mfcore.endtoend`) reads."""
    _check_target(target)
    _check_trial(target, trial, profile)
    if split not in ("train", *HELD_OUT_SPLITS):
        raise ValueError(f"split={split!r}: allowed values are {('train', *HELD_OUT_SPLITS)}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int, got {n_frames!r}")
    if target == "h36m":
        subjects = studio.H36M_TRAIN_SUBJECTS if split == "train" else studio.H36M_TEST_SUBJECTS
        offset = {"train": _H36M_POOL_SEED, "test": _H36M_TEST_SEED, "stress": _H36M_STRESS_SEED}[split]
        parts = [(f"h36m_s{s}", n, seed + offset + s, None)
                 for s, n in zip(subjects, _split_evenly(n_frames, len(subjects)))]
    elif target == "totalcapture":
        offset = {"train": _TC_POOL_SEED, "test": _TC_TEST_SEED, "stress": _TC_STRESS_SEED}[split]
        parts = [("totalcapture", n_frames, seed + offset, None)]
    else:
        offset = {"train": _DOME_POOL_SEED, "test": _DOME_TEST_SEED, "stress": _DOME_STRESS_SEED}[split]
        parts = [(studio.get_rig("dome").subset(list(studio.DOME_HELDOUT_VIEWS)), n_frames, seed + offset,
                  _dome_pick(trial, seed))]
    for rig, n, data_seed, pick in parts:
        for batch in data.iter_multiview(rig, split, n, profile, data_seed, device, batch_size=batch_frames):
            images, joints = batch.images, batch.joints_2d_px
            if pick is not None:
                images, joints = images[:, pick.to(images.device)], joints[:, pick.to(joints.device)]
            yield images, joints


def target_rigs(profile, seed: int, device) -> list[dict]:
    """The evaluation rigs of Fig. 7 (:data:`FIG7_TARGETS`), every trial: a list of :func:`target_data` dicts;
    the first is the H36M-like room."""
    return [target_data(t, trial, profile, seed, device) for t in FIG7_TARGETS
            for trial in range(target_trials(t, profile))]


def _select_views(labels: dict[str, Tensor], pick: Tensor) -> dict[str, Tensor]:
    out = {}
    for k, v in labels.items():
        if k in ("joints_3d_m", "subject", "clip_index"):
            out[k] = v
        elif k in ("projections", "focal_px", "sensor_px_per_view_px") and v.dim() == (3 if k == "projections" else 1):
            out[k] = v[pick]  # one camera set (V, ...)
        else:
            out[k] = v[:, pick]
    return out

