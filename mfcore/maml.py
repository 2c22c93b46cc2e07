"""MAML for the fusion models: MetaFuse meta-training (Eq. (4)-(6)) for many tasks and seeds as one program, the plain
training of Eq. (3) behind the Table 1 baselines, and meta-testing's finetuning step (Sec. 4.3).

All training here runs on *cached backbone heatmaps* (the backbone is frozen after warm-up, Sec. 4.2): ``pred`` and
``target`` are (N, V, J, H, W) tensors of N multi-view frames (backbone output and Gaussian ground truth). The loss is
Eq. (3), :func:`mfcore.fusion.fusion_mse` of the fused map of :func:`mfcore.fusion.fuse` (the own heatmap at
``SELF_WEIGHT`` = 0.4, the other views sharing 0.6, as the Cross View Fusion code), on the views that receive fusion:
one objective for pre-training, meta-training, finetuning, NaiveFuse^full and the oracle (:mod:`mfcore.oracle`). The
batched trainers take any other objective ``(fused, target, target_views) -> per-member losses``.

* :func:`meta_train_members` — MAML (Finn et al.) for S seeds at once, T tasks per outer step at once: a task is an
  ordered camera pair (target, source) with small disjoint sets D_train / D_test of frames; the inner update
  (:func:`inner_update_members`) is one plain SGD step (Eq. (4) for theta, Eq. (5) for omega_base) of every task's
  own copy of its seed's parameters, all S·T tasks in one forward and backward; the outer update an Adam step on the
  D_test loss of the adapted parameters, averaged over each seed's tasks (Eq. (6)); ``first_order=True`` drops the
  second-order terms. Each seed draws its tasks and frames from its own generator. :func:`meta_train` is one seed;
  :func:`meta_train_looped` the same MAML one task at a time (the reference the batched program is tested against).
* :func:`finetune` — meta-testing: Adam on K labelled frames of the target rig; for AffineFuse/MetaFuse only theta
  moves and omega_base stays bit-identical (many settings at once: `mfcore.training.train_members`).
* :func:`train_fusion` — plain (non-meta) Adam training: NaiveFuse^K / AffineFuse^K pre-training on 4 dome cameras,
  NaiveFuse^full on all target-rig frames.
* the pre-trained models of Table 1 (which call these, seeds and objective variants as one program):
  :mod:`mfcore.pretrained`.

A "pair model" is a fusion module with two views and the one ordered pair (0, 1) (view 0 receives view 1); it is what
meta-training learns. :func:`mfcore.fusion.for_rig` turns it into a V-view model whose every ordered pair starts from it.
The few-shot protocol that uses these (which K frames, which seeds, which targets) is :mod:`mfcore.fewshot`.

Speed. An outer step is one program for all S·T tasks: one gather of every task's frames from the pool on the device,
one kernel call for all tasks' Eq. (2) weights, one batched matmul for Eq. (1), one backward, one fused Adam step; no
value is read back to the host inside the loop (the task draws are made on the host ahead, a block of steps at a time,
and copied without waiting; the losses stay on the device until the end). Tasks are split into chunks when the
device cannot hold all of them (:func:`task_chunk_size`; the gradients of the chunks add up before the Adam step).
The host launches the same few hundred operators per outer step whatever T and S (``benchmarks/bench_meta.py`` counts
them), so a step of the full profile's shapes (each task builds and differentiates 4096 x 4096 weights twice) is
bound by the device's work, not by launches: CUDA graphs would pay only for steps whose device work is shorter than
their launch time, and the benchmark reports both (device busy time against step time) to show which case holds.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor
from torch.func import functional_call

from . import fusion, runtime, training
# plain training lives in mfcore.training; these names stay reachable here, where the book's chapters call them
from .training import finetune, finetuned_names, fuse_frames, pretrain_model, resident_pool, train_fusion  # noqa: F401
from .optim import adam, autocast

THETA_INNER_STEP_SIGMAS = 1.0  # meta-training's inner step moves no θ by more than this many line widths σ
PAIR = ((0, 1),)  # the ordered pair of a pair model: view 0 (target) receives view 1 (source)
METHODS = ("NoFusion", "NaiveFuse", "AffineFuse", "MetaFuse", "NaiveFuseFull", "NaiveFuseMeta")
DRAW_BLOCK = 50  # outer steps whose task draws are made (on the host) and copied to the device at once
# Bytes per weight entry (Z1·Z2) and task that an outer step holds at its peak: the growth of the peak memory with the
# tasks measured on the CPU (float32; a 32² pair model, 4 + 4 frames per task, 2 against 8 tasks): AffineFuse 9.3 B
# first order, 196 B second order (the twice-differentiable gather/lerp path keeps its indices, fractions and corner
# reads of both steps); NaiveFuse 14 B and 22 B, plus 8 B for CUDA's autocast copies of the weights and their
# gradients. benchmarks/bench_meta.py prints the measured peak per task on CUDA beside these.
TASK_ENTRY_BYTES = {("affine", True): 10, ("affine", False): 200, ("weights", True): 24, ("weights", False): 32}


def pair_model(kind: str, heatmap_px: int, sigma_px: float | None = None, *, mix: str = "reference",
               scaled: bool = False) -> fusion.PairFusion:
    """A one-pair fusion model: ``kind`` is "affine" (AffineFuse/MetaFuse) or "naive" (NaiveFuse, zero weights).
    AffineFuse starts from the line of σ = ``sigma_px`` (:func:`mfcore.fusion.line_omega_start`, the book's start,
    :func:`mfcore.pretrained.pretrained_fusion`) or, with ``sigma_px`` None, from the reference's uniform start;
    ``mix`` and ``scaled``: the options of an objective variant (:mod:`mfcore.objectives`)."""
    if kind == "affine":
        if sigma_px is None:
            return fusion.AffineFuse(2, heatmap_px, PAIR, mix=mix, scaled=scaled)
        return fusion.AffineFuse(2, heatmap_px, PAIR, start="line", sigma_px=sigma_px, mix=mix, scaled=scaled)
    if kind == "naive":
        return fusion.NaiveFuse(2, heatmap_px, PAIR, mix=mix)
    raise ValueError(f"unknown fusion kind {kind!r}; choose 'affine' or 'naive'")


def eq3_loss(model, params: dict[str, Tensor], pred: Tensor, target: Tensor, objective=None) -> Tensor:
    """Eq. (3) with the parameters ``params`` (functional call): MSE of the fused target views (the mixed map of
    :func:`mfcore.fusion.fuse`) against the ground-truth heatmaps; the loss of every learned method. ``objective``: a
    per-member objective (:func:`mfcore.fusion.member_mse`'s signature) used instead, for this one model."""
    with autocast(pred.device):
        fused = functional_call(model, params, (pred,))
    if objective is not None:
        return objective(fused[None], target[None], model.target_views)[0]
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


def theta_inner_rate(grad_theta: Tensor, step_px: float, heatmap_px: int, *, per_member: bool = False) -> Tensor:
    """The inner rate of θ (Eq. (4)) that makes the step's largest move ``step_px`` heatmap pixels: θ's translation is
    in normalised coordinates (one pixel = 2 / ``heatmap_px``), so the rate is ``step_px · 2 / heatmap_px`` over the
    largest |∂L/∂θ| (0 where the gradient is zero). A 0-d tensor, detached: a rate, not a path for the meta-gradient;
    with ``per_member``, one rate per member (M,), each from its own gradient ``grad_theta[m]``.

    Why θ has its own rate: Eq. (4) and Eq. (5) share one α in the paper, but θ and ω_base live on scales that have
    nothing in common (θ in image coordinates, ω_base in weights of about 1e-2), and the gradient with respect to θ
    is the spatial gradient of ω_base times the evidence. Chapter 3 measures what one shared α does: it moves θ by
    a vanishing fraction of a pixel, so the inner step adapts ω_base only and meta-training cannot learn a θ start
    that adapts. The step is capped at the width σ of a line because the gradient of a σ-wide line points the right
    way only within a few σ of it (``tests/test_fusion.py``: the pull peaks at 2σ and is gone by 8σ)."""
    if not (isinstance(step_px, (int, float)) and step_px > 0):
        raise ValueError(f"step_px must be a number > 0; got {step_px!r}")
    g = grad_theta.detach().abs()
    largest = g.flatten(1).amax(1) if per_member else g.max()
    return torch.where(largest > 0, (2.0 * step_px / heatmap_px) / largest.clamp_min(torch.finfo(largest.dtype).tiny),
                       torch.zeros_like(largest))


def inner_update(model, params: dict[str, Tensor], pred: Tensor, target: Tensor, inner_lr: float, *,
                 first_order: bool = False, trainable=None, theta_step_px: float | None = None,
                 objective=None) -> dict[str, Tensor]:
    """One plain SGD step on D_train for one model (Eq. (4) for theta, Eq. (5) for omega_base):
    ``p' = p - inner_lr * dL/dp``; the single-task form of :func:`inner_update_members`.

    ``theta_step_px``: θ's own rate, :func:`theta_inner_rate` (its largest move this many heatmap pixels) instead of
    ``inner_lr``. Returns the adapted parameters, differentiable w.r.t. ``params`` (second order) unless
    ``first_order``. ``trainable``: names that adapt (default all).
    """
    names = [n for n in params if (trainable is None or n in trainable) and params[n].requires_grad]
    loss = eq3_loss(model, params, pred, target, objective)
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=not first_order)
    adapted = dict(params)
    for n, g in zip(names, grads):
        rate = inner_lr
        if n == "theta" and theta_step_px is not None:
            rate = theta_inner_rate(g, theta_step_px, model.heatmap_px)
        adapted[n] = params[n] - rate * (g.detach() if first_order else g)
    return adapted


def inner_update_members(model, params: dict[str, Tensor], pred: Tensor, target: Tensor, inner_lr: float, *,
                         first_order: bool = False, adapted=None, theta_step_px: float | None = None,
                         objective=fusion.member_mse) -> dict[str, Tensor]:
    """The inner step of Eq. (4)-(5) for M tasks at once, each from its own parameters on its own D_train: member
    parameters ``params`` ({name: (M, ...)}), heatmaps pred, target (M, n, V, J, H, W) -> adapted parameters
    ``p'_m = p_m - rate_m * dL_m/dp_m``. One forward and one backward for all tasks: the gradient of the sum of the
    tasks' losses with respect to the stacked parameters is every task's own gradient.

    ``adapted``: names that adapt (default all); ``theta_step_px``: θ's rate per task, :func:`theta_inner_rate` of
    that task's gradient, instead of ``inner_lr``; ``objective``: per-member losses. Differentiable w.r.t. ``params``
    (second order) unless ``first_order``."""
    names = [n for n in params if adapted is None or n in adapted]
    params = {n: p.detach().requires_grad_() if n in names and not p.requires_grad else p for n, p in params.items()}
    with autocast(pred.device):
        fused = model.forward_members(params, pred)
    loss = objective(fused, target, model.target_views)  # (M,)
    grads = torch.autograd.grad(loss.sum(), [params[n] for n in names], create_graph=not first_order)
    out = dict(params)
    for n, g in zip(names, grads):
        g = g.detach() if first_order else g
        rate = inner_lr
        if n == "theta" and theta_step_px is not None:
            rate = theta_inner_rate(g, theta_step_px, model.heatmap_px, per_member=True)
            rate = rate.reshape(-1, *[1] * (g.dim() - 1))
        out[n] = params[n] - rate * g
    return out


def ordered_camera_pairs(views) -> list[tuple[int, int]]:
    """All ordered pairs (target, source) of the given camera indices: 20 cameras -> 380 tasks (Sec. 5.1)."""
    views = list(views)
    if len(views) < 2 or len(set(views)) != len(views):
        raise ValueError(f"views must be >= 2 distinct camera indices; got {views}")
    return [(t, s) for t in views for s in views if s != t]


def draw_tasks(g: torch.Generator, num_pairs: int, num_frames: int, tasks: int, frames: int) -> tuple[Tensor, Tensor]:
    """One outer step's tasks from generator ``g``: ``tasks`` distinct camera pairs (indices into the ordered pairs,
    (T,)) and for each ``frames`` distinct frames of the pool (T, frames), D_train first. The draws of every MAML
    loop here, batched or not, in this order: the same seed gives the same tasks."""
    task_ids = torch.randperm(num_pairs, generator=g)[:tasks]
    picks = [torch.randperm(num_frames, generator=g)[:frames] for _ in range(len(task_ids))]
    return task_ids, torch.stack(picks)


def _check_meta(model, pred: Tensor, target: Tensor, views, iterations, tasks_per_step, task_train, task_test):
    training.check_pool(pred, target)
    if tuple(model.pairs) != PAIR or model.num_views != 2:
        raise ValueError(f"meta_train needs a pair model (2 views, pairs {PAIR}); got pairs {model.pairs}")
    pairs = ordered_camera_pairs(views)
    for name, value in (("iterations", iterations), ("tasks_per_step", tasks_per_step), ("task_train", task_train),
                        ("task_test", task_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if task_train + task_test > pred.shape[0]:
        raise ValueError(f"task_train + task_test = {task_train + task_test} frames but only {pred.shape[0]} frames "
                         "are cached")
    if max(max(p) for p in pairs) >= pred.shape[1]:
        raise ValueError(f"views {list(views)} index beyond the {pred.shape[1]} cached views")
    return pairs


def task_entry_bytes(model, first_order: bool) -> int:
    """Device bytes of one task of an outer step (:data:`TASK_ENTRY_BYTES` per weight entry)."""
    kind = "affine" if isinstance(model, fusion.AffineFuse) else "weights"
    return TASK_ENTRY_BYTES[kind, bool(first_order)] * len(model.pairs) * model.num_pixels ** 2


def task_chunk_size(model, seeds: int, tasks: int, first_order: bool, device, task_chunk: int | None = None) -> int:
    """Tasks per seed in one forward/backward of an outer step: ``task_chunk`` if given, else as many as fit the
    device's free memory for all ``seeds`` (:func:`mfcore.training.fit_members`), at most ``tasks``."""
    if task_chunk is not None:
        if not isinstance(task_chunk, int) or task_chunk < 1:
            raise ValueError(f"task_chunk must be a positive integer (tasks per seed and chunk); got {task_chunk!r}")
        return min(task_chunk, tasks)
    members = training.fit_members(task_entry_bytes(model, first_order), device)
    return max(1, min(tasks, members // max(1, seeds)))


def meta_train_members(model, params: dict[str, Tensor], pred, target, *, views, seeds, iterations: int,
                       tasks_per_step: int, task_train: int, task_test: int, inner_lr: float, outer_lr: float,
                       first_order: bool = False, theta_step_px: float | None = None, objective=fusion.member_mse,
                       adapted=None, trainable=None, task_chunk: int | None = None, progress: bool = True,
                       desc: str = "meta-training") -> tuple[dict[str, Tensor], Tensor]:
    """Meta-training of S pair models at once (MetaFuse Sec. 4.2, Eq. (4)-(6)), each outer step T tasks at once.

    model: the pair-model template (class, mix; its own parameters are not used); params: every seed's starting
    parameters ``{name: (S, ...)}`` (`mfcore.training.stack_members`); pred, target (N, V, J, H, W): cached
    heatmaps of a rig whose cameras ``views`` (indices into V) make the tasks (every ordered pair), one pool for all
    seeds or a sequence of S pools (one per seed). Seed s draws, from a generator seeded ``seeds[s]``, each outer step
    ``tasks_per_step`` tasks with D_train (``task_train`` frames) and a disjoint D_test (``task_test`` frames)
    (:func:`draw_tasks`): exactly the draws of :func:`meta_train_looped` with that seed. Every task adapts its own copy
    of its seed's parameters by one SGD step of ``inner_lr`` (θ: the rate of :func:`theta_inner_rate` when
    ``theta_step_px`` is given; ``adapted``: the names that adapt, default all); the D_test ``objective`` of the
    adapted parameters (Eq. (3) by default), averaged over the seed's tasks, drives an Adam step of ``outer_lr`` on the
    names in ``trainable`` (default all). Seeds never mix: Adam is elementwise and seed s's loss reaches only seed s's
    parameters. ``task_chunk``: tasks per seed in one forward/backward (default: what fits, :func:`task_chunk_size`).

    Returns (the meta-trained parameters ``{name: (S, ...)}``, detached; the mean D_test loss (post-adaptation) of
    every outer step and seed, (iterations, S) on the CPU, read once after the last step).
    """
    seeds = [int(s) for s in seeds]
    pools = list(zip(pred, target)) if isinstance(pred, (list, tuple)) else [(pred, target)]
    if not seeds or len(pools) not in (1, len(seeds)):
        raise ValueError(f"give one pool for all seeds or one per seed: {len(pools)} pools for {len(seeds)} seeds")
    pairs = [_check_meta(model, p, t, views, iterations, tasks_per_step, task_train, task_test) for p, t in pools][0]
    if any(p.shape[0] != len(seeds) for p in params.values()):
        raise ValueError(f"every parameter needs the seed dimension S={len(seeds)} first; got "
                         f"{ {n: tuple(p.shape) for n, p in params.items()} }")
    names = list(params)
    moving = names if trainable is None else [n for n in names if n in trainable]
    unknown = (set(trainable or ()) | set(adapted or ())) - set(names)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; the model has {sorted(names)}")
    if not moving:
        raise ValueError(f"nothing to meta-train: trainable={tuple(trainable)!r} holds none of the parameters {names}")
    device = next(iter(params.values())).device
    pools = [(resident_pool(p, device), resident_pool(t, device)) for p, t in pools]
    s_count, t_count, n_frames = len(seeds), min(tasks_per_step, len(pairs)), task_train + task_test
    chunk = task_chunk_size(model, s_count, t_count, first_order, device, task_chunk)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    pair_index = torch.tensor(pairs, dtype=torch.long)  # (P, 2): target camera, source camera
    leaves = {n: p.detach().clone().requires_grad_(n in moving) for n, p in params.items()}
    opt = adam([leaves[n] for n in moving], lr=outer_lr)
    history = torch.zeros(iterations, s_count, device=device)
    with _higher_order(model, not first_order):
        model.train()
        for step in runtime.progress(range(iterations), desc=desc, disable=not progress):
            if step % DRAW_BLOCK == 0:  # the next block's draws, made on the host while the device works
                block = _draw_block(gens, pools, pair_index, min(DRAW_BLOCK, iterations - step), t_count, n_frames)
            cams, picks = (b[step % DRAW_BLOCK] for b in block)  # (S, T, 2), (S, T, n)
            opt.zero_grad(set_to_none=True)
            for start in range(0, t_count, chunk):
                sl = slice(start, min(t_count, start + chunk))
                c = sl.stop - sl.start
                x, y = _gather_tasks(pools, cams[:, sl], picks[:, sl], device)  # (S, c, n, 2, J, H, W)
                xs, ys = (v.reshape(s_count * c, *v.shape[2:]) for v in (x, y))  # (S·c, n, 2, J, H, W)
                tasks = {n: p.unsqueeze(1).expand(s_count, c, *p.shape[1:]).reshape(s_count * c, *p.shape[1:])
                         for n, p in leaves.items()}  # every task its own copy of its seed's parameters
                fast = inner_update_members(model, tasks, xs[:, :task_train], ys[:, :task_train], inner_lr,
                                            first_order=first_order, adapted=adapted, theta_step_px=theta_step_px,
                                            objective=objective)
                with autocast(device):
                    fused = model.forward_members(fast, xs[:, task_train:])
                losses = objective(fused, ys[:, task_train:], model.target_views).reshape(s_count, c)
                outer = losses.sum(1) / t_count  # (S,): this chunk's share of every seed's mean D_test loss
                outer.sum().backward()
                history[step] += outer.detach()
            opt.step()
    return {n: p.detach() for n, p in leaves.items()}, history.cpu()


def _draw_block(gens, pools, pair_index: Tensor, steps: int, tasks: int, frames: int) -> tuple[Tensor, Tensor]:
    """Task draws of ``steps`` outer steps for every seed: cameras (steps, S, T, 2) and frames (steps, S, T, n), on
    the pools' device (copied from pinned host memory without waiting when that is a GPU)."""
    cams = torch.empty(steps, len(gens), tasks, 2, dtype=torch.long)
    picks = torch.empty(steps, len(gens), tasks, frames, dtype=torch.long)
    for i in range(steps):
        for s, g in enumerate(gens):
            pool = pools[s if len(pools) > 1 else 0][0]
            task_ids, picks[i, s] = draw_tasks(g, len(pair_index), pool.shape[0], tasks, frames)
            cams[i, s] = pair_index[task_ids]
    device = pools[0][0].device
    if device.type == "cuda":
        return cams.pin_memory().to(device, non_blocking=True), picks.pin_memory().to(device, non_blocking=True)
    return cams, picks


def _gather_tasks(pools, cams: Tensor, picks: Tensor, device) -> tuple[Tensor, Tensor]:
    """Every task's frames of its two cameras, (S, T, n, 2, J, H, W) float32 on ``device``: one gather from a shared
    pool, one per seed from per-seed pools. cams (S, T, 2), picks (S, T, n)."""
    idx_f, idx_c = picks[..., None], cams[:, :, None, :]
    if len(pools) == 1:
        x, y = (pools[0][k][idx_f, idx_c] for k in (0, 1))
    else:
        x, y = (torch.stack([pools[s][k][idx_f[s], idx_c[s]] for s in range(len(pools))]) for k in (0, 1))
    return x.to(device).float(), y.to(device).float()


def meta_train(model, pred: Tensor, target: Tensor, *, views, iterations: int, tasks_per_step: int, task_train: int,
               task_test: int, inner_lr: float, outer_lr: float, first_order: bool = False, seed: int = 0,
               theta_step_px: float | None = None, objective=fusion.member_mse, adapted=None, trainable=None,
               task_chunk: int | None = None, progress: bool = True) -> list[float]:
    """Meta-training of one pair model (MetaFuse Sec. 4.2, Eq. (4)-(6)) in place: :func:`meta_train_members` with the
    one seed ``seed`` (each outer step's ``tasks_per_step`` tasks in one program). Returns the mean D_test loss
    (post-adaptation) of every outer step."""
    params = {n: p.detach()[None] for n, p in model.named_parameters()}
    trained, history = meta_train_members(
        model, params, pred, target, views=views, seeds=[seed], iterations=iterations, tasks_per_step=tasks_per_step,
        task_train=task_train, task_test=task_test, inner_lr=inner_lr, outer_lr=outer_lr, first_order=first_order,
        theta_step_px=theta_step_px, objective=objective, adapted=adapted, trainable=trainable, task_chunk=task_chunk,
        progress=progress)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(trained[n][0])
    return history[:, 0].tolist()


def meta_train_looped(model, pred: Tensor, target: Tensor, *, views, iterations: int, tasks_per_step: int,
                      task_train: int, task_test: int, inner_lr: float, outer_lr: float, first_order: bool = False,
                      seed: int = 0, theta_step_px: float | None = None, objective=None, adapted=None,
                      trainable=None, progress: bool = True) -> list[float]:
    """:func:`meta_train` one task at a time (the module's own parameters through ``functional_call``, one inner step
    and one D_test loss per task, a Python loop over the tasks): the reference that the batched program
    (:func:`meta_train_members`) is tested against, and the looped timing of ``benchmarks/bench_meta.py``. Same
    draws, same arguments (``objective``: per-member losses, applied to each task alone; None: Eq. (3))."""
    pairs = _check_meta(model, pred, target, views, iterations, tasks_per_step, task_train, task_test)
    n = pred.shape[0]
    device = next(model.parameters()).device
    pred, target = resident_pool(pred, device), resident_pool(target, device)
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable is None or name in trainable)
    opt = adam([p for p in model.parameters() if p.requires_grad], lr=outer_lr)
    history = []
    with _higher_order(model, not first_order):
        for _ in runtime.progress(range(iterations), desc="meta-training (looped)", disable=not progress):
            params = {name: p if p.requires_grad else p.detach().requires_grad_()
                      for name, p in model.named_parameters()}
            task_ids, frames_all = draw_tasks(g, len(pairs), n, tasks_per_step, task_train + task_test)
            outer = 0.0
            for t, frames in zip(task_ids.tolist(), frames_all):
                cams = torch.tensor(pairs[t], device=pred.device)
                frames = frames.to(pred.device)
                x = pred[frames[:, None], cams].to(device)  # (n, 2, J, H, W): only the task's two views are read
                y = target[frames[:, None], cams].to(device)
                fast = inner_update(model, params, x[:task_train], y[:task_train], inner_lr, first_order=first_order,
                                    trainable=adapted, theta_step_px=theta_step_px, objective=objective)
                outer = outer + eq3_loss(model, fast, x[task_train:], y[task_train:], objective) / len(task_ids)
            opt.zero_grad(set_to_none=True)
            outer.backward()
            opt.step()
            history.append(outer.detach())
    return torch.stack(history).tolist()
