"""MAML for the fusion models: MetaFuse meta-training (Eq. (4)-(6)), the plain training of Eq. (3) behind the Table 1
baselines, and meta-testing's finetuning step (Sec. 4.3).

All training here runs on *cached backbone heatmaps* (the backbone is frozen after warm-up, Sec. 4.2): ``pred`` and
``target`` are (N, V, J, H, W) tensors of N multi-view frames (backbone output and Gaussian ground truth). The loss is
Eq. (3), :func:`mfcore.fusion.fusion_mse` of the fused map of :func:`mfcore.fusion.fuse` (the own heatmap at
``SELF_WEIGHT`` = 0.4, the other views sharing 0.6, as the Cross View Fusion code), on the views that receive fusion:
one objective for pre-training, meta-training, finetuning, NaiveFuse^full and the oracle (:mod:`mfcore.oracle`).

* :func:`meta_train` — MAML (Finn et al.) written with ``torch.func.functional_call``: a task is an ordered camera pair
  (target, source) with small disjoint sets D_train / D_test of frames; the inner update (:func:`inner_update`) is one
  plain SGD step of every parameter (Eq. (4) for theta, Eq. (5) for omega_base), the outer update an Adam step on the
  D_test loss of the adapted parameters (Eq. (6)); ``first_order=True`` drops the second-order terms.
* :func:`finetune` — meta-testing: Adam on K labelled frames of the target rig; for AffineFuse/MetaFuse only theta
  moves and omega_base stays bit-identical.
* :func:`train_fusion` — plain (non-meta) Adam training: NaiveFuse^K / AffineFuse^K pre-training on 4 dome cameras,
  NaiveFuse^full on all target-rig frames.
* :func:`pretrained_fusion` — the pre-trained model of every Table 1 method, cached under :data:`FUSION_CODE`.

A "pair model" is a fusion module with two views and the one ordered pair (0, 1) (view 0 receives view 1); it is what
meta-training learns. :func:`mfcore.fusion.for_rig` turns it into a V-view model whose every ordered pair starts from it.
The few-shot protocol that uses these (which K frames, which seeds, which targets) is :mod:`mfcore.fewshot`.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import Tensor
from torch.func import functional_call

from . import backbone, fusion, runtime, studio
from .optim import adam, autocast

# the code behind a pre-trained fusion model's cache entry: this module and what it imports (mfcore.runtime.cached
# adds the transitive mfcore imports: the backbone, its data and renderer)
FUSION_CODE = ("maml", "fusion", "backbone")

THETA_INNER_STEP_SIGMAS = 1.0  # meta-training's inner step moves no θ by more than this many line widths σ
PAIR = ((0, 1),)  # the ordered pair of a pair model: view 0 (target) receives view 1 (source)
METHODS = ("NoFusion", "NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseFull", "NaiveFuseMeta")


def pair_model(kind: str, heatmap_px: int, sigma_px: float | None = None) -> fusion.PairFusion:
    """A one-pair fusion model: ``kind`` is "affine" (AffineFuse/MetaFuse) or "naive" (NaiveFuse, zero weights).
    AffineFuse starts from the line of σ = ``sigma_px`` (:func:`mfcore.fusion.line_omega_start`, the book's start,
    :func:`pretrained_fusion`) or, with ``sigma_px`` None, from the reference's uniform start."""
    if kind == "affine":
        if sigma_px is None:
            return fusion.AffineFuse(2, heatmap_px, PAIR)
        return fusion.AffineFuse(2, heatmap_px, PAIR, start="line", sigma_px=sigma_px)
    if kind == "naive":
        return fusion.NaiveFuse(2, heatmap_px, PAIR)
    raise ValueError(f"unknown fusion kind {kind!r}; choose 'affine' or 'naive'")



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


def eq3_loss(model, params: dict[str, Tensor], pred: Tensor, target: Tensor) -> Tensor:
    """Eq. (3) with the parameters ``params`` (functional call): MSE of the fused target views (the mixed map of
    :func:`mfcore.fusion.fuse`) against the ground-truth heatmaps; the loss of every learned method."""
    with autocast(pred.device):
        fused = functional_call(model, params, (pred,))
    return fusion.fusion_mse(fused, target, model.target_views)


_loss = eq3_loss


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


def theta_inner_rate(grad_theta: Tensor, step_px: float, heatmap_px: int) -> Tensor:
    """The inner rate of θ (Eq. (4)) that makes the step's largest move ``step_px`` heatmap pixels: θ's translation is
    in normalised coordinates (one pixel = 2 / ``heatmap_px``), so the rate is ``step_px · 2 / heatmap_px`` over the
    largest |∂L/∂θ| (0 where the gradient is zero). A 0-d tensor, detached: a rate, not a path for the meta-gradient.

    Why θ has its own rate: Eq. (4) and Eq. (5) share one α in the paper, but θ and ω_base live on scales that have
    nothing in common (θ in image coordinates, ω_base in weights of about 1e-2), and the gradient with respect to θ
    is the spatial gradient of ω_base times the evidence. Chapter 3 measures what one shared α does: it moves θ by
    a vanishing fraction of a pixel, so the inner step adapts ω_base only and meta-training cannot learn a θ start
    that adapts. The step is capped at the width σ of a line because the gradient of a σ-wide line points the right
    way only within a few σ of it (``tests/test_fusion.py``: the pull peaks at 2σ and is gone by 8σ)."""
    if not (isinstance(step_px, (int, float)) and step_px > 0):
        raise ValueError(f"step_px must be a number > 0; got {step_px!r}")
    largest = grad_theta.detach().abs().max()
    return torch.where(largest > 0, (2.0 * step_px / heatmap_px) / largest.clamp_min(torch.finfo(largest.dtype).tiny),
                       torch.zeros_like(largest))


def inner_update(model, params: dict[str, Tensor], pred: Tensor, target: Tensor, inner_lr: float, *,
                 first_order: bool = False, trainable=None, theta_step_px: float | None = None) -> dict[str, Tensor]:
    """One plain SGD step on D_train (Eq. (4) for theta, Eq. (5) for omega_base): ``p' = p - inner_lr * dL/dp``.

    ``theta_step_px``: θ's own rate, :func:`theta_inner_rate` (its largest move this many heatmap pixels) instead of
    ``inner_lr``. Returns the adapted parameters, differentiable w.r.t. ``params`` (second order) unless
    ``first_order``. ``trainable``: names that adapt (default all).
    """
    names = [n for n in params if (trainable is None or n in trainable) and params[n].requires_grad]
    loss = _loss(model, params, pred, target)
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order)
    adapted = dict(params)
    for n, g in zip(names, grads):
        rate = inner_lr
        if n == "theta" and theta_step_px is not None:
            rate = theta_inner_rate(g, theta_step_px, model.heatmap_px)
        adapted[n] = params[n] - rate * (g.detach() if first_order else g)
    return adapted


def ordered_camera_pairs(views) -> list[tuple[int, int]]:
    """All ordered pairs (target, source) of the given camera indices: 20 cameras -> 380 tasks (Sec. 5.1)."""
    views = list(views)
    if len(views) < 2 or len(set(views)) != len(views):
        raise ValueError(f"views must be >= 2 distinct camera indices; got {views}")
    return [(t, s) for t in views for s in views if s != t]


def meta_train(model, pred: Tensor, target: Tensor, *, views, iterations: int, tasks_per_step: int, task_train: int,
               task_test: int, inner_lr: float, outer_lr: float, first_order: bool = False, seed: int = 0,
               theta_step_px: float | None = None, progress: bool = True) -> list[float]:
    """Meta-training of a pair model (MetaFuse Sec. 4.2, Eq. (4)-(6)).

    pred, target (N, V, J, H, W): cached heatmaps of N frames of a rig whose cameras ``views`` (indices into V) make
    the tasks (every ordered pair). Each outer step draws ``tasks_per_step`` tasks; each has D_train (``task_train``
    frames) and a disjoint D_test (``task_test`` frames); the parameters adapt on D_train by one SGD step of
    ``inner_lr`` (θ: the rate of :func:`theta_inner_rate` when ``theta_step_px`` is given) and the D_test loss of the
    adapted parameters, averaged over the tasks, drives an Adam step of ``outer_lr``. Returns the mean D_test loss
    (post-adaptation) of every outer step.
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
                                       first_order=first_order, theta_step_px=theta_step_px)
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
                   device=None, progress: bool = True) -> fusion.PairFusion:
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


PRETRAINED = ("MetaFuse", "NaiveFuseMeta", "AffineFuse", "NaiveFuse")


def meta_training_data(profile, seed: int, device) -> dict[str, Tensor]:
    """Cached backbone heatmaps of the dome's 20 training cameras (``profile.metafuse.pretrain_frames`` frames)."""
    return backbone.cached_heatmaps("dome", "train", profile.metafuse.pretrain_frames, profile, seed, device,
                                    views=studio.DOME_TRAIN_VIEWS)


def pretrained_fusion(method: str, profile, seed: int, device, *, progress: bool = True):
    """The pre-trained fusion model of a Table 1 method and its training losses (cached):

    * "MetaFuse": an AffineFuse pair model meta-trained on the ordered pairs of the dome's 20 training cameras, from
      the line start (:func:`mfcore.fusion.line_omega_start`, σ the heatmaps'), θ's inner step capped at
      :data:`THETA_INNER_STEP_SIGMAS` σ (:func:`theta_inner_rate`);
    * "NaiveFuseMeta": the same meta-training for a NaiveFuse pair model (the variant of Sec. 5.2);
    * "AffineFuse" / "NaiveFuse": a 4-view model pre-trained by plain Adam on ``profile.metafuse.pretrain_views``
      (AffineFuse from the same line start as MetaFuse, under its 4-view mix; NaiveFuse from zero).

    Returns (model on ``device``, list of losses: outer D_test losses or training losses).
    """
    if method not in PRETRAINED:
        raise ValueError(f"unknown pre-trained method {method!r}; choose one of {PRETRAINED}")
    m = profile.metafuse
    device = torch.device(device)
    side = profile.studio.heatmap_px
    kind = "affine" if "Affine" in method or method == "MetaFuse" else "naive"

    sigma = profile.studio.heatmap_sigma_px

    def make():
        if method in ("MetaFuse", "NaiveFuseMeta"):
            return pair_model(kind, side, sigma)
        if kind == "affine":
            return fusion.AffineFuse(len(m.pretrain_views), side, start="line", sigma_px=sigma)
        return fusion.NaiveFuse(len(m.pretrain_views), side)

    def build() -> dict[str, Tensor]:
        d = meta_training_data(profile, seed, device)
        model = make().to(device)
        t0 = time.perf_counter()
        if method in ("MetaFuse", "NaiveFuseMeta"):
            history = meta_train(model, d["pred"], d["target"], views=range(d["pred"].shape[1]),
                                 iterations=m.meta_iterations, tasks_per_step=m.meta_tasks_per_step,
                                 task_train=m.task_train, task_test=m.task_test, inner_lr=m.inner_lr,
                                 outer_lr=m.outer_lr, first_order=m.first_order, seed=seed,
                                 theta_step_px=THETA_INNER_STEP_SIGMAS * sigma if kind == "affine" else None,
                                 progress=progress)
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
    state = runtime.cached("fusion", key, build, code=FUSION_CODE)
    model = make()
    model.load_state_dict({k: v for k, v in state.items() if k not in ("__history__", "__seconds__")})
    model.training_seconds = float(state["__seconds__"][0])  # wall seconds of the (meta-)training behind the weights
    return model.to(device), state["__history__"].tolist()
