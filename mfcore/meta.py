"""Learning the fusion models: MetaFuse meta-training (Eq. (4)-(6)), meta-testing (Sec. 4.3) and the Table 1 baselines.

All training here runs on *cached backbone heatmaps* (the backbone is frozen after warm-up, Sec. 4.2): ``pred`` and
``target`` are (N, V, J, H, W) tensors of N multi-view frames (backbone output and Gaussian ground truth). The loss is
Eq. (3), :func:`mfcore.fusion.fusion_mse`, on the views that receive fusion.

* :func:`meta_train` — MAML (Finn et al.) written with ``torch.func.functional_call``: a task is an ordered camera pair
  (target, source) with small disjoint sets D_train / D_test of frames; the inner update is one plain SGD step of
  every parameter (Eq. (4) for theta, Eq. (5) for omega_base), the outer update an Adam step on the D_test loss of the
  adapted parameters (Eq. (6)); ``first_order=True`` drops the second-order terms.
* :func:`finetune` — meta-testing: Adam on K labelled frames of the target rig; for AffineFuse/MetaFuse only theta
  moves and omega_base stays bit-identical.
* :func:`train_fusion` — plain (non-meta) Adam training: NaiveFuse^K / AffineFuse^K pre-training on 4 dome cameras,
  NaiveFuse^full on all target-rig frames.
* :func:`target_data` — the target camera configurations of Sec. 5.1 (labelled pool + test set): the H36M-like room
  (pool from training subjects S1, S5-S8, test on S9, S11, cameras jittered per subject), 4 of the dome's held-out
  cameras per trial, the Total-Capture-like ring.
* :func:`adapt_on_pool` / :func:`adapted_fusion` / :func:`fused_test_heatmaps` — THE meta-testing recipe (shots,
  seeds, steps) of a Table 1 method on a labelled pool / on a target, and its fused test heatmaps cached by
  :func:`mfcore.runtime.cached`; chapter 4 (JDR, Fig. 7) and chapter 5 (3D tables) both read them.

A "pair model" is a fusion module with two views and the one ordered pair (0, 1) (view 0 receives view 1); it is what
meta-training learns. :func:`mfcore.fusion.for_rig` turns it into a V-view model whose every ordered pair starts from it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections import OrderedDict

import torch
from torch import Tensor
from torch.func import functional_call

from . import backbone, epipolar, fusion, geometry, metrics, motion, pictorial, runtime, skeleton, studio
from .optim import adam, autocast

PAIR = ((0, 1),)  # the ordered pair of a pair model: view 0 (target) receives view 1 (source)
METHODS = ("NoFusion", "NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseFull", "NaiveFuseMeta")


def pair_model(kind: str, heatmap_px: int) -> fusion._PairFusion:
    """A one-pair fusion model: ``kind`` is "affine" (AffineFuse/MetaFuse) or "naive" (NaiveFuse)."""
    if kind == "affine":
        return fusion.AffineFuse(2, heatmap_px, PAIR)
    if kind == "naive":
        return fusion.NaiveFuse(2, heatmap_px, PAIR)
    raise ValueError(f"unknown fusion kind {kind!r}; choose 'affine' or 'naive'")


def select_shots(pool_size: int, k: int, seed: int) -> Tensor:
    """K distinct frame indices out of a labelled pool of ``pool_size`` frames (seeded): the K of MetaFuse^K."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= pool_size:
        raise ValueError(f"K={k!r} shots is impossible with a pool of {pool_size} labelled frames; "
                         f"K must be an integer in 1..{pool_size}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(pool_size, generator=g)[:k].sort().values


def _check_data(pred: Tensor, target: Tensor) -> None:
    if pred.dim() != 5 or pred.shape != target.shape:
        raise ValueError(f"pred and target must both be (N, V, J, H, W); got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if pred.shape[0] == 0:
        raise ValueError("no frames: pred and target hold N = 0 frames")


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _resident(x: Tensor, device: torch.device, max_bytes: int = 16 << 30) -> Tensor:
    """Cached heatmaps move to the GPU once (mini-batches are then gathered there) when they fit ``max_bytes``."""
    if device.type == "cuda" and x.device != device and x.numel() * x.element_size() <= max_bytes:
        return x.to(device)
    return x


def _show(bar, history: list[Tensor], every: int = 25) -> None:
    """Loss on the progress bar every ``every`` steps (reading it synchronises the GPU)."""
    if len(history) % every == 1 or every == 1:
        bar.set_postfix(loss=f"{float(history[-1]):.3g}")


def _loss(model, params: dict[str, Tensor], pred: Tensor, target: Tensor) -> Tensor:
    """Eq. (3) with the parameters ``params`` (functional call): MSE of the fused target views."""
    with autocast(pred.device):
        fused = functional_call(model, params, (pred,))
    return fusion.fusion_mse(fused, target, model.target_views)


@contextlib.contextmanager
def _higher_order(model, enabled: bool):
    old = getattr(model, "higher_order", None)
    if old is not None:
        model.higher_order = enabled
    try:
        yield
    finally:
        if old is not None:
            model.higher_order = old


def inner_update(model, params: dict[str, Tensor], pred: Tensor, target: Tensor, inner_lr: float, *,
                 first_order: bool = False, trainable=None) -> dict[str, Tensor]:
    """One plain SGD step on D_train (Eq. (4) for theta, Eq. (5) for omega_base): ``p' = p - inner_lr * dL/dp``.

    Returns the adapted parameters, differentiable w.r.t. ``params`` (second order) unless ``first_order``.
    ``trainable``: names that adapt (default all).
    """
    names = [n for n in params if (trainable is None or n in trainable) and params[n].requires_grad]
    loss = _loss(model, params, pred, target)
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order)
    adapted = dict(params)
    for n, g in zip(names, grads):
        adapted[n] = params[n] - inner_lr * (g.detach() if first_order else g)
    return adapted


def ordered_camera_pairs(views) -> list[tuple[int, int]]:
    """All ordered pairs (target, source) of the given camera indices: 20 cameras -> 380 tasks (Sec. 5.1)."""
    views = list(views)
    if len(views) < 2 or len(set(views)) != len(views):
        raise ValueError(f"views must be >= 2 distinct camera indices; got {views}")
    return [(t, s) for t in views for s in views if s != t]


def meta_train(model, pred: Tensor, target: Tensor, *, views, iterations: int, tasks_per_step: int, task_train: int,
               task_test: int, inner_lr: float, outer_lr: float, first_order: bool = False, seed: int = 0,
               progress: bool = True) -> list[float]:
    """Meta-training of a pair model (MetaFuse Sec. 4.2, Eq. (4)-(6)).

    pred, target (N, V, J, H, W): cached heatmaps of N frames of a rig whose cameras ``views`` (indices into V) make
    the tasks (every ordered pair). Each outer step draws ``tasks_per_step`` tasks; each has D_train (``task_train``
    frames) and a disjoint D_test (``task_test`` frames); the parameters adapt on D_train by one SGD step of
    ``inner_lr`` and the D_test loss of the adapted parameters, averaged over the tasks, drives an Adam step of
    ``outer_lr``. Returns the mean D_test loss (post-adaptation) of every outer step.
    """
    _check_data(pred, target)
    if tuple(model.pairs) != PAIR or model.num_views != 2:
        raise ValueError(f"meta_train needs a pair model (2 views, pairs {PAIR}); got pairs {model.pairs}")
    pairs = ordered_camera_pairs(views)
    n = pred.shape[0]
    for name, value in (("iterations", iterations), ("tasks_per_step", tasks_per_step), ("task_train", task_train),
                        ("task_test", task_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if task_train + task_test > n:
        raise ValueError(f"task_train + task_test = {task_train + task_test} frames but only {n} frames are cached")
    if max(max(p) for p in pairs) >= pred.shape[1]:
        raise ValueError(f"views {list(views)} index beyond the {pred.shape[1]} cached views")
    device = _device(model)
    pred, target = _resident(pred, device), _resident(target, device)
    g = torch.Generator().manual_seed(seed)
    opt = adam(model.parameters(), lr=outer_lr)
    history = []
    bar = runtime.progress(range(iterations), desc="meta-training", disable=not progress)
    with _higher_order(model, not first_order):
        for _ in bar:
            params = dict(model.named_parameters())
            task_ids = torch.randperm(len(pairs), generator=g)[:tasks_per_step]
            outer = 0.0
            for t in task_ids.tolist():
                cams = torch.tensor(pairs[t], device=pred.device)
                frames = torch.randperm(n, generator=g)[:task_train + task_test].to(pred.device)
                x = pred[frames[:, None], cams].to(device)  # (n, 2, J, H, W): only the task's two views are read
                y = target[frames[:, None], cams].to(device)
                adapted = inner_update(model, params, x[:task_train], y[:task_train], inner_lr,
                                       first_order=first_order)
                outer = outer + _loss(model, adapted, x[task_train:], y[task_train:]) / len(task_ids)
            opt.zero_grad(set_to_none=True)
            outer.backward()
            opt.step()
            history.append(outer.detach())
            _show(bar, history)
    return torch.stack(history).tolist()


def train_fusion(model, pred: Tensor, target: Tensor, *, steps: int, lr: float, batch_size: int, seed: int = 0,
                 trainable=None, progress: bool = True, desc: str = "fusion", on_step=None) -> list[float]:
    """Plain (non-meta) training of a fusion model by Adam on Eq. (3): ``steps`` mini-batches of ``batch_size`` frames
    (all frames if fewer), drawn with ``seed``. ``trainable``: parameter names that move (default all); the others are
    frozen (``requires_grad`` off, untouched). ``on_step(step)``, if given, is called after each step (1, 2, …) and
    may evaluate the model (it is put back in training mode afterwards). Returns the loss of every step."""
    _check_data(pred, target)
    if pred.shape[1] != model.num_views:
        raise ValueError(f"the model fuses {model.num_views} views but the data hold {pred.shape[1]}")
    if not isinstance(steps, int) or steps < 0 or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"steps must be an integer >= 0 and batch_size >= 1; got {steps!r}, {batch_size!r}")
    names = dict(model.named_parameters())
    if trainable is not None:
        unknown = set(trainable) - set(names)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; the model has {sorted(names)}")
        for n, p in names.items():
            p.requires_grad_(n in trainable)
    train = [p for p in model.parameters() if p.requires_grad]
    if not train:
        raise ValueError("nothing to train: no parameter requires a gradient")
    device = _device(model)
    pred, target = _resident(pred, device), _resident(target, device)
    model.train()
    opt = adam(train, lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = pred.shape[0]
    history = []
    bar = runtime.progress(range(steps), desc=desc, disable=not progress)
    for _ in bar:
        idx = (torch.randperm(n, generator=g)[:batch_size] if n > batch_size else torch.arange(n)).to(pred.device)
        x, y = pred[idx].to(device), target[idx].to(device)
        with autocast(device):
            fused = model(x)
        loss = fusion.fusion_mse(fused, y, model.target_views)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.detach())
        _show(bar, history)
        if on_step is not None:
            on_step(len(history))
            model.train()
    return torch.stack(history).tolist() if history else []


def finetune(model, pred: Tensor, target: Tensor, *, steps: int, lr: float, batch_size: int, seed: int = 0,
             progress: bool = True) -> list[float]:
    """Meta-testing (MetaFuse Sec. 4.3): Adam (Sec. 5.1: 5e-3) on the K labelled frames ``pred``/``target`` of the
    target rig. AffineFuse/MetaFuse: theta only, omega_base frozen (bit-identical); NaiveFuse: all weights."""
    trainable = ("theta",) if isinstance(model, fusion.AffineFuse) else None
    return train_fusion(model, pred, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                        trainable=trainable, progress=progress, desc="finetune")


@torch.no_grad()
def fuse_frames(model, pred: Tensor, *, batch_size: int = 64) -> Tensor:
    """Fused (pre-softmax) heatmaps of all frames, (N, V, J, H, W), on ``pred``'s device; weights built once."""
    device = _device(model)
    model.eval()
    outs = []
    for start in range(0, pred.shape[0], batch_size):
        with autocast(device):
            outs.append(model(pred[start:start + batch_size].to(device)).float().to(pred.device))
    return torch.cat(outs)


def pretrain_model(kind: str, pred: Tensor, target: Tensor, *, steps: int, lr: float, batch_size: int, seed: int = 0,
                   device=None, progress: bool = True) -> fusion._PairFusion:
    """NaiveFuse^K / AffineFuse^K pre-training (Table 1): a V-view model (every ordered pair of the V cameras of
    ``pred``, e.g. 4 selected dome cameras) trained by plain Adam on Eq. (3); it initialises the target rig's pairs
    one to one (:func:`mfcore.fusion.for_rig`)."""
    _check_data(pred, target)
    if kind not in ("affine", "naive"):
        raise ValueError(f"unknown fusion kind {kind!r}; choose 'affine' or 'naive'")
    v, side = pred.shape[1], pred.shape[-1]
    model = (fusion.AffineFuse if kind == "affine" else fusion.NaiveFuse)(v, side)
    model = model.to(device if device is not None else pred.device)
    train_fusion(model, pred, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
                 desc=f"pre-train {kind}")
    return model


# ----------------------------------------------------------------------------------------------------------------------
# evaluation (JDR, MetaFuse Sec. 5.1) and the experiment pipelines of chapters 03-04

JOINT_GROUPS: dict[str, tuple[str, ...]] = {  # the typical joints of Fig. 7 (left and right together)
    "wrist": ("left_wrist", "right_wrist"),
    "elbow": ("left_elbow", "right_elbow"),
    "knee": ("left_knee", "right_knee"),
    "ankle": ("left_ankle", "right_ankle"),
}


JDR_THRESHOLDS = ("half_head", "crossview_const")  # the book's JDR (Sec. 5.1) and the Cross View Fusion code's constant


def heatmap_jdr(heatmaps: Tensor, labels: dict[str, Tensor], image_px: int, threshold: str = "half_head") -> Tensor:
    """Joint Detection Rate per joint (MetaFuse Sec. 5.1), (J,): the heatmap maximum, in image pixels, within the
    threshold of the label. ``threshold``: "half_head" — half the head size each view sees in that frame
    (:func:`mfcore.metrics.head_threshold_px`), the book's JDR; "crossview_const" — the Cross View Fusion code's one
    constant for all frames, 0.5 × input size / 10 (:func:`mfcore.metrics.crossview_threshold_px`).
    heatmaps (N, V, J, h, w); labels from :func:`mfcore.backbone.cached_heatmaps` (same frames and views;
    "projections"/"focal_px" of one camera set, (V, 3, 4)/(V,), or per frame, (N, V, 3, 4)/(N, V), as the H36M-like
    test set of several subjects). Joints outside the image do not count; occluded ones do."""
    return peak_jdr(heatmap_peaks_px(heatmaps, image_px), labels, image_px, threshold)


def heatmap_peaks_px(heatmaps: Tensor, image_px: int) -> Tensor:
    """The maximum of every heatmap channel in image pixels, (N, V, J, 2): heatmaps (N, V, J, h, w) of an
    ``image_px`` image (what :func:`peak_jdr` scores; computed once for every threshold and subset of frames)."""
    return geometry.scale_pixels(metrics.heatmap_argmax_px(heatmaps), heatmaps.shape[-1], image_px)


def peak_jdr(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int, threshold: str = "half_head") -> Tensor:
    """:func:`heatmap_jdr` from the heatmap maxima (N, V, J, 2) in image pixels (:func:`heatmap_peaks_px`), (J,)."""
    if threshold not in JDR_THRESHOLDS:
        raise ValueError(f"unknown JDR threshold {threshold!r}; valid: {', '.join(JDR_THRESHOLDS)}")
    gt_px = labels["joints_2d_px"]
    if peaks_px.shape != gt_px.shape:
        raise ValueError(f"peaks_px {tuple(peaks_px.shape)} and labels joints_2d_px {tuple(gt_px.shape)} differ")
    inside = ((gt_px >= -0.5) & (gt_px <= image_px - 0.5)).all(-1)
    thr = _head_threshold_px(labels) if threshold == "half_head" else metrics.crossview_threshold_px(image_px)
    return metrics.jdr(peaks_px.to(gt_px.device), gt_px, thr, inside)


def jdr_rows(heatmaps: Tensor, labels: dict[str, Tensor], image_px: int, thresholds=JDR_THRESHOLDS,
             **columns) -> list[dict]:
    """Tidy rows ``{**columns, joint, jdr, threshold}`` for the mean over joints, the Fig. 7 joint groups, and every
    joint of :data:`mfcore.skeleton.JOINT_NAMES`, for each threshold of ``thresholds`` (:func:`heatmap_jdr`)."""
    return peak_jdr_rows(heatmap_peaks_px(heatmaps, image_px), labels, image_px, thresholds, **columns)


def peak_jdr_rows(peaks_px: Tensor, labels: dict[str, Tensor], image_px: int, thresholds=JDR_THRESHOLDS,
                  **columns) -> list[dict]:
    """:func:`jdr_rows` from the heatmap maxima (N, V, J, 2) in image pixels (:func:`heatmap_peaks_px`)."""
    rows = []
    for threshold in thresholds:
        per_joint = peak_jdr(peaks_px, labels, image_px, threshold)
        values = {"mean": float(per_joint.nanmean())}
        for group, names in JOINT_GROUPS.items():
            values[group] = float(per_joint[[skeleton.JOINT_INDEX[n] for n in names]].nanmean())
        values.update({name: float(per_joint[i]) for i, name in enumerate(skeleton.JOINT_NAMES)})
        rows += [{**columns, "joint": joint, "jdr": jdr, "threshold": threshold} for joint, jdr in values.items()]
    return rows


PRETRAINED = ("MetaFuse", "NaiveFuseMeta", "AffineFuse", "NaiveFuse")


def meta_training_data(profile, seed: int, device) -> dict[str, Tensor]:
    """Cached backbone heatmaps of the dome's 20 training cameras (``profile.metafuse.pretrain_frames`` frames)."""
    return backbone.cached_heatmaps("dome", "train", profile.metafuse.pretrain_frames, profile, seed, device,
                                    views=studio.DOME_TRAIN_VIEWS)


def pretrained_fusion(method: str, profile, seed: int, device, *, progress: bool = True):
    """The pre-trained fusion model of a Table 1 method and its training losses (cached):

    * "MetaFuse": an AffineFuse pair model meta-trained on the ordered pairs of the dome's 20 training cameras;
    * "NaiveFuseMeta": the same meta-training for a NaiveFuse pair model (the variant of Sec. 5.2);
    * "AffineFuse" / "NaiveFuse": a 4-view model pre-trained by plain Adam on ``profile.metafuse.pretrain_views``.

    Returns (model on ``device``, list of losses: outer D_test losses or training losses).
    """
    if method not in PRETRAINED:
        raise ValueError(f"unknown pre-trained method {method!r}; choose one of {PRETRAINED}")
    m = profile.metafuse
    device = torch.device(device)
    side = profile.studio.heatmap_px
    kind = "affine" if "Affine" in method or method == "MetaFuse" else "naive"

    def make():
        if method in ("MetaFuse", "NaiveFuseMeta"):
            return pair_model(kind, side)
        return (fusion.AffineFuse if kind == "affine" else fusion.NaiveFuse)(len(m.pretrain_views), side)

    def build() -> dict[str, Tensor]:
        d = meta_training_data(profile, seed, device)
        model = make().to(device)
        t0 = time.perf_counter()
        if method in ("MetaFuse", "NaiveFuseMeta"):
            history = meta_train(model, d["pred"], d["target"], views=range(d["pred"].shape[1]),
                                 iterations=m.meta_iterations, tasks_per_step=m.meta_tasks_per_step,
                                 task_train=m.task_train, task_test=m.task_test, inner_lr=m.inner_lr,
                                 outer_lr=m.outer_lr, first_order=m.first_order, seed=seed, progress=progress)
        else:
            cams = torch.tensor(m.pretrain_views)
            history = train_fusion(model, d["pred"][:, cams], d["target"][:, cams], steps=m.pretrain_steps,
                                   lr=m.outer_lr, batch_size=m.batch_size, seed=seed, progress=progress,
                                   desc=f"pre-train {method}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return {**{k: v.detach().cpu() for k, v in model.state_dict().items()},
                "__history__": torch.tensor(history, dtype=torch.float64),
                "__seconds__": torch.tensor([time.perf_counter() - t0], dtype=torch.float64)}

    key = dict(method=method, metafuse=profile.as_dict()["metafuse"], studio=profile.as_dict()["studio"],
               backbone=profile.as_dict()["backbone"], seed=seed)
    state = runtime.cached("fusion", key, build, code=("fusion", "meta", "backbone", "data", "render", "studio", "motion"))
    model = make()
    model.load_state_dict({k: v for k, v in state.items() if k not in ("__history__", "__seconds__")})
    model.training_seconds = float(state["__seconds__"][0])  # wall seconds of the (meta-)training behind the weights
    return model.to(device), state["__history__"].tolist()


# ----------------------------------------------------------------------------------------------------------------------
# target rigs (MetaFuse Sec. 5.1): labelled pools and test sets

TARGETS = ("h36m", "dome_heldout", "totalcapture")  # the camera configurations MetaFuse is adapted to
FIG7_TARGETS = ("h36m", "dome_heldout")  # the rigs of chapter 4's Fig. 7
FEW_SHOT_METHODS = ("NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseMeta")  # finetuned on K frames (Table 1)
NAIVE_META_SHOTS = 2  # NaiveFuseMeta at the first two K only: Sec. 5.2 reports it at K = 50 and 100
_NOT_LABELS = ("heatmaps", "pred", "target", "finetune_s")  # per-frame heatmaps and scalars of a test set, not labels
ADAPTED_METHODS = FEW_SHOT_METHODS + ("NaiveFuseFull",)
PAPER_SHOTS = (50, 100, 200, 500)  # the K of MetaFuse's Fig. 7 and Table 2
# data seeds (offsets from the book's ``seed``): H36M-like subject s draws its pool with seed + 100 + s and its test
# frames with seed + 200 + s; the dome's held-out cameras seed + 3 / + 4 (camera draws + 5); the ring seed + 20 / + 21
_H36M_POOL_SEED, _H36M_TEST_SEED = 100, 200
_DOME_POOL_SEED, _DOME_TEST_SEED, _DOME_PICK_SEED = 3, 4, 5
_TC_POOL_SEED, _TC_TEST_SEED = 20, 21


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
    motions of ``split``; subject s drawn with seed ``seed + 100 + s`` (pool, "train") or ``seed + 200 + s`` ("test");
    the warm-up backbone of ``seed``. Returns the keys of :func:`mfcore.backbone.cached_heatmaps`, frames of subject
    after subject, with per-frame cameras: "projections" (N, V, 3, 4), "focal_px" (N, V); plus "subject" (N,) and,
    for test sets, "clip_index" (N,)."""
    subjects = [int(s) for s in subjects]
    for s in subjects:
        studio.h36m_rig(s)  # unknown subject -> ValueError naming the valid ones
    offset = _H36M_POOL_SEED if split == "train" else _H36M_TEST_SEED
    parts = []
    for s, n in zip(subjects, _split_evenly(n_frames, len(subjects))):
        d = dict(backbone.cached_heatmaps(f"h36m_s{s}", split, n, profile, seed + offset + s, device,
                                          backbone_seed=seed))
        d["projections"] = d["projections"].expand(n, *d["projections"].shape)
        d["focal_px"] = d["focal_px"].expand(n, *d["focal_px"].shape)
        d["subject"] = torch.full((n,), s, dtype=torch.long)
        if split == "test":
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
    return sum(t.numel() * t.element_size() for part in (data["train"], data["test"]) for t in part.values())


def clear_target_memo() -> None:
    """Forget the target sets :func:`target_data` keeps in memory."""
    _TARGET_MEMO.clear()


def target_data(target: str, trial: int, profile, seed: int, device) -> dict:
    """A target camera configuration of MetaFuse Sec. 5.1: dict(rig, trial, views, train (labelled pool: the K-shot
    and NaiveFuse^full frames), test), the pool and test set being dicts of :func:`mfcore.backbone.cached_heatmaps`
    (with "clip_index" in the test set). A process keeps the sets it assembled (LRU within
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
    if target == "h36m":
        train = h36m_heatmaps(studio.H36M_TRAIN_SUBJECTS, "train", m.target_train_frames, profile, seed, device)
        test = h36m_heatmaps(studio.H36M_TEST_SUBJECTS, "test", m.target_test_frames, profile, seed, device)
        return dict(rig=target, trial=trial, views=tuple(range(train["pred"].shape[1])), train=train, test=test)
    if target == "totalcapture":
        train = backbone.cached_heatmaps("totalcapture", "train", m.target_train_frames, profile,
                                         seed + _TC_POOL_SEED, device, backbone_seed=seed)
        test = dict(backbone.cached_heatmaps("totalcapture", "test", m.target_test_frames, profile,
                                             seed + _TC_TEST_SEED, device, backbone_seed=seed))
        test["clip_index"] = _clip_index("test", m.target_test_frames, seed + _TC_TEST_SEED)
        return dict(rig=target, trial=trial, views=tuple(range(train["pred"].shape[1])), train=train, test=test)
    held = studio.DOME_HELDOUT_VIEWS
    train = backbone.cached_heatmaps("dome", "train", m.target_train_frames, profile, seed + _DOME_POOL_SEED, device,
                                     views=held, backbone_seed=seed)
    test = dict(backbone.cached_heatmaps("dome", "test", m.target_test_frames, profile, seed + _DOME_TEST_SEED,
                                         device, views=held, backbone_seed=seed))
    test["clip_index"] = _clip_index("test", m.target_test_frames, seed + _DOME_TEST_SEED)
    g = torch.Generator().manual_seed(seed + _DOME_PICK_SEED)
    for _ in range(trial + 1):  # trial t is the (t+1)-th draw of one generator
        pick = torch.randperm(len(held), generator=g)[:4].sort().values
    return dict(rig=target, trial=trial, views=tuple(held[i] for i in pick.tolist()),
                train=_select_views(train, pick), test=_select_views(test, pick))


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
        elif k in ("projections", "focal_px") and v.dim() == (3 if k == "projections" else 1):
            out[k] = v[pick]  # one camera set (V, ...)
        else:
            out[k] = v[:, pick]
    return out


def camera_sets(labels: dict[str, Tensor]) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The frames of a test set grouped by their cameras: [(frame indices (n,), projections (V, 3, 4), focal_px
    (V,))], in order of first appearance. One group when ``labels["projections"]`` is (V, 3, 4); one per camera
    placement (e.g. per H36M subject) when it is per frame, (N, V, 3, 4)."""
    P, f = labels["projections"], labels["focal_px"]
    if P.dim() == 3:
        return [(torch.arange(labels["joints_3d_m"].shape[0]), P, f)]
    if P.dim() != 4 or P.shape[-2:] != (3, 4):
        raise ValueError(f"projections must be (V, 3, 4) or per frame (N, V, 3, 4); got {tuple(P.shape)}")
    _, inverse = torch.unique(P.flatten(1), dim=0, return_inverse=True)
    groups = []
    for g in dict.fromkeys(inverse.tolist()):  # first-appearance order
        idx = (inverse == g).nonzero()[:, 0]
        groups.append((idx, P[idx[0]], f[idx[0]]))
    return groups


def _head_threshold_px(labels: dict[str, Tensor]) -> Tensor:
    """Half a head size in pixels, (N, V), for one camera set or per-frame cameras (:func:`camera_sets`)."""
    X = labels["joints_3d_m"]
    out = None
    for idx, P, f in camera_sets(labels):
        thr = metrics.head_threshold_px(X[idx], P, f)
        out = thr.new_empty(X.shape[0], thr.shape[1]) if out is None else out
        out[idx] = thr
    return out


# ----------------------------------------------------------------------------------------------------------------------
# adapted models and their fused test heatmaps: ONE place for chapters 4 and 5 (and their shots and seeds)

_FUSED_CODE = ("fusion", "meta", "backbone", "data", "render", "studio", "motion")


@functools.lru_cache(maxsize=8)
def _pretrained(method: str, profile, seed: int, device: torch.device):
    """:func:`pretrained_fusion` loaded once per process (read-only here: :func:`mfcore.fusion.for_rig` copies it)."""
    return pretrained_fusion(method, profile, seed, device, progress=False)[0]


def _check_method_k(method: str, k, pool: int) -> None:
    if method not in ADAPTED_METHODS:
        raise ValueError(f"unknown adapted method {method!r}; choose one of {ADAPTED_METHODS}")
    if method == "NaiveFuseFull" and k != pool:
        raise ValueError(f"NaiveFuseFull trains on the whole pool: k must be {pool} (the pool), got {k!r}")


def adapt_on_pool(method: str, k: int, pool: dict[str, Tensor], trial: int, profile, seed: int, device, *,
                  progress: bool = False) -> tuple:
    """Meta-testing (MetaFuse Sec. 4.3) on a labelled pool of any rig: (adapted model on ``device``, wall seconds of
    its finetuning). The one recipe of the book: K frames of ``pool`` ({"pred", "target"} (N, V, J, h, w)) drawn by
    :func:`select_shots` with seed ``seed + 100 * trial + k`` (the same frames for every method of a trial), then
    :func:`finetune` (``profile.metafuse.finetune_steps`` Adam steps at ``finetune_lr``, mini-batches of
    ``min(k, batch_size)`` drawn with seed ``seed + k``) of :func:`pretrained_fusion`'s model of ``method`` spread over
    the rig's ordered pairs; "NaiveFuseFull" (k = N): NaiveFuse trained from zero on the whole pool (``full_steps``,
    ``outer_lr``, seed ``seed``)."""

    m = profile.metafuse
    device = torch.device(device)
    n, v = pool["pred"].shape[0], pool["pred"].shape[1]
    _check_method_k(method, k, n)
    if method == "NaiveFuseFull":
        model = fusion.NaiveFuse(v, profile.studio.heatmap_px).to(device)
        t0 = time.perf_counter()
        train_fusion(model, pool["pred"], pool["target"], steps=m.full_steps, lr=m.outer_lr,
                     batch_size=m.batch_size, seed=seed, progress=progress, desc="NaiveFuse full")
    else:
        shots = select_shots(n, k, seed + 100 * trial + k)
        model = fusion.for_rig(_pretrained(method, profile, seed, device), v)
        t0 = time.perf_counter()
        finetune(model, pool["pred"][shots], pool["target"][shots], steps=m.finetune_steps, lr=m.finetune_lr,
                 batch_size=min(k, m.batch_size), seed=seed + k, progress=progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return model, time.perf_counter() - t0


def adapted_fusion(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                   progress: bool = False):
    """The fusion model of a Table 1 method adapted to a target rig (meta-testing, MetaFuse Sec. 4.3), on ``device``.

    ``method``: NaiveFuse / AffineFuse / MetaFuse / NaiveFuseMeta (:data:`FEW_SHOT_METHODS`): the pre-trained model
    (:func:`pretrained_fusion`) spread over every ordered pair of the rig (:func:`mfcore.fusion.for_rig`) and finetuned
    on K frames of the target's pool (:func:`target_data`) by :func:`adapt_on_pool` (shots drawn with seed
    ``seed + 100 * trial + k``, the same K frames for every method; Adam mini-batches with seed ``seed + k``);
    "NaiveFuseFull": NaiveFuse trained from zero on the whole pool (k must be the pool size). Deterministic in its
    arguments; :func:`fused_test_heatmaps` caches what this model makes of the test frames.
    """
    return adapt_on_pool(method, k, target_data(target, trial, profile, seed, device)["train"], trial, profile, seed,
                         device, progress=progress)[0]


def fused_test_heatmaps(method: str, k: int, target: str, trial: int, profile, seed: int, device, *,
                        progress: bool = False) -> dict[str, Tensor]:
    """The heatmaps a 2D method gives for a target's test frames (cached), with the test labels.

    "NoFusion" (k = 0): the backbone's heatmaps. Any method of :data:`ADAPTED_METHODS`: the pre-softmax fused heatmaps
    of :func:`adapted_fusion` (``method``, ``k``, ``target``, ``trial``), computed once and cached by
    :func:`mfcore.runtime.cached` (NaiveFuse variants: the fused maps, as float16; AffineFuse / MetaFuse: the adapted θ and
    ω_base, from which the maps are fused again on every call, rounded to float16 likewise, so first and later calls
    return the same values) under a key of the profile's
    studio / backbone / metafuse sections, ``seed``, method, K, target and trial, and the code of
    fusion/meta/backbone/data/render/studio/motion. Returns the test dict of :func:`target_data` plus "heatmaps"
    (N, V, J, h, w) float32 and "finetune_s" (1,) float64 (wall seconds of the finetuning when the entry was built;
    0 for NoFusion).
    """
    _check_target(target)
    _check_trial(target, trial, profile)
    device = torch.device(device)
    if method == "NoFusion":
        if k != 0:
            raise ValueError(f"NoFusion is not finetuned: k must be 0, got {k!r}")
        test = target_data(target, trial, profile, seed, device)["test"]
        return {**test, "heatmaps": test["pred"], "finetune_s": torch.zeros(1, dtype=torch.float64)}
    _check_method_k(method, k, profile.metafuse.target_train_frames)
    state = {}

    def build() -> dict[str, Tensor]:
        data = target_data(target, trial, profile, seed, device)
        state["test"] = data["test"]
        model, seconds = adapt_on_pool(method, k, data["train"], trial, profile, seed, device, progress=progress)
        seconds = torch.tensor([seconds], dtype=torch.float64)
        if isinstance(model, fusion.AffineFuse):  # θ and ω_base (a few MB) instead of the fused maps (~0.3 GB at full)
            return {**{f"param.{n}": v.detach().cpu() for n, v in model.state_dict().items()}, "finetune_s": seconds}
        return {"heatmaps": fuse_frames(model, data["test"]["pred"]).half().cpu(), "finetune_s": seconds}

    sections = profile.as_dict()
    key = dict(method=method, k=k, target=target, trial=trial, seed=seed, studio=sections["studio"],
               backbone=sections["backbone"], metafuse=sections["metafuse"])
    out = runtime.cached("fused", key, build, code=_FUSED_CODE)
    test = state.get("test") or target_data(target, trial, profile, seed, device)["test"]
    if "heatmaps" in out:
        heatmaps = out["heatmaps"]
    else:  # an AffineFuse / MetaFuse entry: rebuild the adapted model, fuse the test frames (same rounding as stored)
        model = fusion.AffineFuse(test["pred"].shape[1], profile.studio.heatmap_px)
        model.load_state_dict({n[len("param."):]: v for n, v in out.items() if n.startswith("param.")})
        heatmaps = fuse_frames(model.to(device).freeze(), test["pred"]).half()
    return {**test, "heatmaps": heatmaps.float(), "finetune_s": out["finetune_s"]}


def few_shot_curves(profile, seed: int, device, *, progress: bool = True,
                    by_subject: bool = False) -> tuple[list[dict], list[dict]]:
    """Fig. 7: JDR against the number K of labelled target frames, for every method of Table 1, on every target rig
    of :data:`FIG7_TARGETS` (all trials), all through :func:`fused_test_heatmaps`.

    NoFusion (k = 0) and NaiveFuse^full (k = the whole pool) are flat references; for each K of ``profile.metafuse
    .shots`` NaiveFuse^K, AffineFuse^K and MetaFuse^K are finetuned on the same K frames, NaiveFuseMeta^K at the first
    :data:`NAIVE_META_SHOTS` K (the paper's 50 and 100, Sec. 5.2). JDR is pooled
    over all test frames (for the H36M-like room: both test subjects). Returns (JDR rows: rig, trial, method, k,
    paper_k (:func:`paper_k`), subject ("all", or with ``by_subject`` also one row set per H36M test subject, "S9",
    "S11"), joint, jdr, threshold; timing rows: rig, trial, method, k, finetune_s — measured when the cache entry was
    built — and setting_s, the wall seconds of this setting in this call: loading or finetuning, fusing, JDR).
    """
    image_px = profile.studio.image_px
    pool = profile.metafuse.target_train_frames
    rows, timings = [], []
    settings = [("NoFusion", 0), ("NaiveFuseFull", pool)] + [
        (mth, k) for i, k in enumerate(profile.metafuse.shots) for mth in FEW_SHOT_METHODS
        if mth != "NaiveFuseMeta" or i < NAIVE_META_SHOTS]
    for target in FIG7_TARGETS:
        for trial in range(target_trials(target, profile)):
            for method, k in settings:
                t0 = time.perf_counter()
                out = fused_test_heatmaps(method, k, target, trial, profile, seed, device,
                                          progress=progress and method == "NaiveFuseFull")
                cols = dict(rig=target, trial=trial, method=method, k=k, paper_k=paper_k(k, profile, method))
                peaks = heatmap_peaks_px(out["heatmaps"], image_px)  # once for both thresholds and every subset
                rows += peak_jdr_rows(peaks, out, image_px, **cols, subject="all")
                if by_subject and "subject" in out:
                    for s in dict.fromkeys(out["subject"].tolist()):
                        sel = out["subject"] == s
                        part = {key: v[sel] for key, v in out.items() if key not in _NOT_LABELS}
                        rows += peak_jdr_rows(peaks[sel], part, image_px, **cols, subject=f"S{s}")
                if method != "NoFusion":
                    timings.append(dict(rig=target, trial=trial, method=method, k=k,
                                        finetune_s=float(out["finetune_s"][0]),
                                        setting_s=time.perf_counter() - t0))
    return rows, timings


# ----------------------------------------------------------------------------------------------------------------------
# the epipolar oracle: Eq. (1) with the calibrated cameras' exact epipolar lines (an upper-bound diagnostic, no learning)

ORACLE_GAINS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # line weight, in units of one source peak (see epipolar_oracle_weights)


def epipolar_oracle_weights(projections_hm: Tensor, heatmap_px: int, sigma_px: float, gain: float = 1.0) -> Tensor:
    """Eq. (1) weights from the cameras themselves: for every ordered pair (target t, source s) of
    :func:`mfcore.fusion.ordered_pairs`, row i of ``W_(s->t)`` is the ideal map of target pixel i over the source view,
    exp(−d²/2σ²) of the distance d to its epipolar line, kept on the visible half-line
    (:func:`mfcore.epipolar.ideal_fusion_weights`), times ``gain / (√2·π·σ²)``: a source heatmap with a peak of 1 and
    spread σ centred on the line then adds about ``gain`` to the target pixel (the integral of the product of the
    two Gaussians). projections_hm (V, 3, 4) at heatmap resolution; returns (P, Z, Z) float32, Z = heatmap_px², on
    the projections' device. This is what NaiveFuse would hold if it learned the geometry exactly."""
    if projections_hm.dim() != 3 or projections_hm.shape[1:] != (3, 4):
        raise ValueError(f"projections_hm must be (V, 3, 4); got {tuple(projections_hm.shape)}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be > 0; got {sigma_px!r}")
    device = projections_hm.device
    cams = [geometry.camera_from_projection(P.cpu(), heatmap_px) for P in projections_hm]
    grid = epipolar.pixel_grid_px(heatmap_px, device=device)
    scale = gain / (2.0 ** 0.5 * math.pi * sigma_px ** 2)
    pairs = fusion.ordered_pairs(len(cams))
    return torch.stack([epipolar.ideal_fusion_weights(cams[t], cams[s], grid, sigma_px).reshape(grid.shape[0], -1)
                        for t, s in pairs]) * scale


def placement_oracle_weights(projections_image: Tensor, profile, device, gain: float = 1.0) -> Tensor:
    """:func:`epipolar_oracle_weights` of one camera placement given at image resolution (V, 3, 4), at the profile's
    heatmap size and σ, on ``device``."""
    side = profile.studio.heatmap_px
    P_hm = pictorial.heatmap_projections(projections_image, profile.studio.image_px, side).to(device)
    return epipolar_oracle_weights(P_hm, side, profile.studio.heatmap_sigma_px, gain)


def epipolar_oracle_rows(target: str, trial: int, profile, seed: int, device, *, gains=ORACLE_GAINS,
                         batch_frames: int = 32) -> list[dict]:
    """JDR rows (:func:`peak_jdr_rows`; method "EpipolarOracle", column ``gain``) of the backbone's test heatmaps of
    a Fig. 7 target fused by Eq. (1) with :func:`epipolar_oracle_weights` at each of ``gains`` (σ = the studio's
    heatmap σ), each camera set of the test frames with its own cameras. Gain 0 is NoFusion. The gain is chosen by
    nobody: every gain is reported, and the best one is picked on the test frames, so the best row is an upper bound
    of what Eq. (1) with exact geometry gives on these heatmaps, not a method. Each row also carries ``mse``, the loss
    of Eq. (3) (:func:`mfcore.fusion.fusion_mse`: fused against ground-truth heatmaps, all views) at that gain: what
    a model trained by Eq. (3) would be rewarded for."""
    _check_target(target)
    _check_trial(target, trial, profile)
    gains = tuple(float(g) for g in gains)
    if not gains or min(gains) < 0:
        raise ValueError(f"gains must be non-negative numbers; got {gains!r}")
    device = torch.device(device)
    image_px = profile.studio.image_px
    test = target_data(target, trial, profile, seed, device)["test"]
    pred = test["pred"]
    peaks = {g: torch.empty(*pred.shape[:3], 2) for g in gains}
    squared = {g: 0.0 for g in gains}  # Σ (fused − ground-truth heatmap)², the loss of Eq. (3) before averaging
    pairs = fusion.ordered_pairs(pred.shape[1])  # the order of epipolar_oracle_weights' pairs
    for idx, P_image, _ in camera_sets(test):
        weights = placement_oracle_weights(P_image, profile, device)
        for start in range(0, len(idx), batch_frames):
            sel = idx[start:start + batch_frames]
            x, y = pred[sel].to(device), test["target"][sel].to(device)
            added = fusion.fuse(x, weights, pairs) - x  # Σ_s W_(s->t) x_s at gain 1
            for g in gains:
                fused = x + g * added
                peaks[g][sel] = heatmap_peaks_px(fused, image_px).cpu()
                squared[g] += float((fused - y).square().sum())
    rows = []
    for g in gains:
        mse = squared[g] / pred.numel()
        rows += peak_jdr_rows(peaks[g], test, image_px, rig=target, trial=trial, method="EpipolarOracle", gain=g,
                              mse=mse)
    return rows


ORACLE_INIT_GAIN = 1.0  # the oracle's own calibration (a source peak adds about 1), fixed beforehand, not picked on test frames
ORACLE_INIT_CHECKPOINTS = (0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # fractions of NaiveFuse^full's steps


def pool_oracle_weights(pool: dict[str, Tensor], profile, device, gain: float = ORACLE_INIT_GAIN) -> Tensor:
    """One NaiveFuse weight tensor (P, Z, Z) for a labelled pool: :func:`epipolar_oracle_weights` of each camera
    placement of the pool (:func:`camera_sets`; the H36M-like pool has one per training subject), averaged with the
    placements' frame counts as weights: what a single NaiveFuse model would hold if it learned the pool's geometry."""
    groups = camera_sets(pool)
    total = sum(len(idx) for idx, _, _ in groups)
    weights = None
    for idx, P_image, _ in groups:
        w = placement_oracle_weights(P_image, profile, device, gain) * (len(idx) / total)
        weights = w if weights is None else weights + w
    return weights


def oracle_init_rows(target: str, trial: int, profile, seed: int, device, *, gain: float = ORACLE_INIT_GAIN,
                     checkpoints=ORACLE_INIT_CHECKPOINTS, progress: bool = False) -> list[dict]:
    """Does the loss of Eq. (3) keep the oracle's epipolar lines? NaiveFuse^full's recipe (:func:`adapt_on_pool`
    with "NaiveFuseFull": :func:`train_fusion` on the whole labelled pool, ``full_steps`` Adam steps at ``outer_lr``,
    mini-batches of ``batch_size``, seed ``seed``), started from :func:`pool_oracle_weights` at ``gain`` instead of
    zero. At each checkpoint (a fraction of ``full_steps``; 0 is the oracle itself) the test frames are fused and
    scored: JDR rows (:func:`peak_jdr_rows`, method "NaiveFuseFromOracle", columns ``step`` and ``steps``), each with
    ``mse`` (Eq. (3) on the test frames, all views) and ``line_share`` = <W, W0> / <W0, W0>, how much of the initial
    lines W0 the weights W still hold along W0 (1 at the start; 0 would be NoFusion's zero weights)."""
    _check_target(target)
    _check_trial(target, trial, profile)
    fractions = tuple(float(c) for c in checkpoints)
    if not fractions or any(not 0.0 <= c <= 1.0 for c in fractions):
        raise ValueError(f"checkpoints must be fractions of the training steps in [0, 1]; got {checkpoints!r}")
    if not gain > 0:
        raise ValueError(f"gain must be > 0 (gain 0 is NaiveFuse^full's own zero start); got {gain!r}")
    m, device = profile.metafuse, torch.device(device)
    data = target_data(target, trial, profile, seed, device)
    pool, test = data["train"], data["test"]
    image_px = profile.studio.image_px
    model = fusion.NaiveFuse(pool["pred"].shape[1], profile.studio.heatmap_px).to(device)
    with torch.no_grad():
        model.weight.copy_(pool_oracle_weights(pool, profile, device, gain))
    w0 = model.weight.detach().clone()
    w0_sq = float(w0.double().square().sum())
    at = sorted({round(c * m.full_steps) for c in fractions})
    rows = []

    def score(step: int) -> None:
        if step not in at:
            return
        fused = fuse_frames(model, test["pred"])
        mse = float(fusion.fusion_mse(fused, test["target"]))
        share = float((model.weight.detach().double() * w0.double()).sum()) / w0_sq
        rows.extend(peak_jdr_rows(heatmap_peaks_px(fused, image_px), test, image_px, rig=target, trial=trial,
                                  method="NaiveFuseFromOracle", step=step, steps=m.full_steps, gain=gain, mse=mse,
                                  line_share=share))

    score(0)
    train_fusion(model, pool["pred"], pool["target"], steps=m.full_steps, lr=m.outer_lr, batch_size=m.batch_size,
                 seed=seed, progress=progress, desc="NaiveFuse from the oracle", on_step=score)
    return rows


def pick_corrected_joint(pred: Tensor, fused: Tensor, labels: dict[str, Tensor], image_px: int) -> tuple[int, int, int]:
    """Fig. 6: a (frame, view, joint) whose initial heatmap has its maximum at the wrong place (beyond half a head
    size) and, if any exists, whose fused heatmap puts it right; among those the largest initial error. pred, fused
    (N, V, J, h, w) with the labels of :func:`mfcore.backbone.cached_heatmaps`. Only joints inside the image count."""
    gt = labels["joints_2d_px"]
    thr = _head_threshold_px(labels)[..., None]

    def error(h):
        return (heatmap_peaks_px(h, image_px) - gt).norm(dim=-1)

    e0, e1 = error(pred), error(fused)
    inside = ((gt >= -0.5) & (gt <= image_px - 0.5)).all(-1)
    wrong = (e0 > thr) & inside
    candidates = wrong & (e1 <= thr)
    if not candidates.any():
        candidates = wrong if wrong.any() else inside
    score = torch.where(candidates, e0, torch.full_like(e0, -1.0))
    n, v, j = torch.unravel_index(score.argmax(), score.shape)
    return int(n), int(v), int(j)
