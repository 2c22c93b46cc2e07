"""Plain (non-meta) Adam training of the fusion models on Eq. (3): one model (:func:`train_fusion`, :func:`finetune`) or
M models at once as one program (:func:`train_members`), and what a trained model makes of cached heatmaps.

A *member* is one independent model: a seed, a few-shot setting (method × K × trial), a θ start. Its parameters are
entry m of every tensor of a dict ``{"theta": (M, P, Z1, 2, 3), "omega_base": (M, H, W), ...}``
(:func:`stack_members`); :meth:`mfcore.fusion.PairFusion.forward_members` fuses every member's own heatmaps with its
own weights in one program (one kernel call builds all members' Eq. (2) weights, one batched matmul applies them).
This is PyTorch's "model ensembling" recipe (``torch.func.stack_module_state`` + ``vmap`` + ``functional_call``) with
the batching written out: AffineFuse's hand-written weight kernels have no ``vmap`` rule, and a batched kernel is what
``vmap`` would have to produce anyway.

* :func:`train_fusion` — Adam on Eq. (3) for one model: NaiveFuse^K / AffineFuse^K pre-training on 4 dome cameras,
  NaiveFuse^full on all target-rig frames; :func:`finetune` is meta-testing's form (Sec. 4.3: θ only for
  AffineFuse/MetaFuse).
* :func:`train_members` — :func:`train_fusion` for M members at once: each member its own frames, its own mini-batch
  generator, its own trainable parameters; one Adam over the stacked tensors (Adam is elementwise, so it is M
  independent Adams). Equal to training the members one by one, to float tolerance.
* :func:`minibatch_frames` — the mini-batches every member draws: exactly those of :func:`train_fusion` with the
  member's seed.
* :func:`fit_members` / :func:`entry_bytes` — how many members one program may hold on the device (from its free
  memory), so that a caller splits larger ensembles into groups.

No loss is read back to the host inside a training loop (a read waits for the GPU): the losses stay on the device and
are read once, after the last step; the mini-batches are drawn on the host ahead and copied to the device once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import fusion, runtime
from .optim import adam, autocast

# Bytes per weight entry (Z1·Z2 per pair) and member that a training step holds at its peak, by what it trains: the
# growth of the peak memory with the members, measured on the CPU (float32; a 4-view rig at 24², batch 8, 1 against
# 5 members): NaiveFuse 31 B (the weight, its gradient, Adam's two moments, the fused products), AffineFuse with θ
# only 12 B (the weights Eq. (2) writes, their gradient, the kernels' temporaries). On CUDA the autocast copies
# replace float32 temporaries. benchmarks/bench_meta.py prints the measured peak per member on CUDA beside these.
ENTRY_BYTES = {"weights": 32, "affine": 12}
DEVICE_SHARE = 0.8  # of the free device memory that one program's members may take


def check_pool(pred: Tensor, target: Tensor) -> None:
    """pred and target: cached heatmaps of the same N >= 1 frames, (N, V, J, H, W) each."""
    if pred.dim() != 5 or pred.shape != target.shape:
        raise ValueError(f"pred and target must both be (N, V, J, H, W); got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if pred.shape[0] == 0:
        raise ValueError("no frames: pred and target hold N = 0 frames")


def stack_members(models) -> dict[str, Tensor]:
    """The parameters of ``models`` (fusion models of one class, views, side, pairs and options) stacked on a new
    leading member dimension: ``{name: (M, ...)}``, detached copies."""
    models = list(models)
    if not models:
        raise ValueError("no models to stack")
    first = models[0]
    for m in models[1:]:
        if type(m) is not type(first) or m.pairs != first.pairs or m.heatmap_px != first.heatmap_px \
                or m.options() != first.options():
            raise ValueError("members must share class, pairs, heatmap size and options; got "
                             f"{type(first).__name__}{first.pairs} and {type(m).__name__}{m.pairs}")
    names = [n for n, _ in first.named_parameters()]
    return {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n in names}


def member_model(template: fusion.PairFusion, params: dict[str, Tensor], m: int) -> fusion.PairFusion:
    """A fusion model like ``template`` (class, views, pairs, options) holding member ``m``'s parameters (copies), on
    their device."""
    device = next(iter(params.values())).device
    model = type(template)(template.num_views, template.heatmap_px, template.pairs, device=device,
                           **template.options())
    model.load_state_dict({n: p[m].detach() for n, p in params.items()})
    return model


def entry_bytes(kind: str) -> int:
    """:data:`ENTRY_BYTES` of a training that moves free weights ("weights", NaiveFuse) or builds them by Eq. (2)
    ("affine")."""
    if kind not in ENTRY_BYTES:
        raise ValueError(f"unknown training kind {kind!r}; choose one of {tuple(ENTRY_BYTES)}")
    return ENTRY_BYTES[kind]


def fit_members(member_bytes: int, device, limit: int | None = None) -> int:
    """How many members of ``member_bytes`` each one program may hold: on CUDA, :data:`DEVICE_SHARE` of the free
    memory (the driver's free memory plus what PyTorch's allocator holds unused), at least 1; elsewhere ``limit`` (or
    no bound). ``limit`` caps the count on any device."""
    device = torch.device(device)
    if member_bytes <= 0:
        raise ValueError(f"member_bytes must be > 0; got {member_bytes!r}")
    fit = 1 << 30
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device) \
            - torch.cuda.memory_allocated(device)
        fit = max(1, int(DEVICE_SHARE * free) // member_bytes)
    return min(fit, limit) if limit else fit


def minibatch_frames(member_frames, steps: int, batch_size: int, seeds) -> Tensor:
    """The frames every member trains on at every step, (steps, M, B) indices into the pool: member m draws from its
    frames ``member_frames[m]`` (1-D indices) with a generator seeded ``seeds[m]``, ``batch_size`` of them by
    ``randperm`` at each step (all of them, in order, when it has no more), the draws of
    :func:`train_fusion` on those frames. Members must draw batches of one size (B = min(frames, batch))."""
    member_frames = [torch.as_tensor(f, dtype=torch.long).reshape(-1) for f in member_frames]
    seeds = list(seeds)
    if len(seeds) != len(member_frames) or not member_frames:
        raise ValueError(f"give one seed per member: {len(member_frames)} members, {len(seeds)} seeds")
    sizes = {min(len(f), batch_size) for f in member_frames}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"members must draw mini-batches of one size; min(frames, batch_size={batch_size}) gives "
                         f"{sorted(sizes)}: train such members in separate groups")
    out = torch.empty(steps, len(member_frames), sizes.pop(), dtype=torch.long)
    for m, (frames, seed) in enumerate(zip(member_frames, seeds)):
        g = torch.Generator().manual_seed(seed)
        n = len(frames)
        for s in range(steps):
            out[s, m] = frames[torch.randperm(n, generator=g)[:batch_size]] if n > batch_size else frames
    return out


def _member_trainable(names, trainable, members: int) -> list[set[str]]:
    """Per member, the parameter names that move: ``trainable`` None (all), names (all members), or one collection of
    names per member."""
    if trainable is None:
        return [set(names)] * members
    if isinstance(trainable, (list, tuple)) and trainable and not isinstance(trainable[0], str):
        if len(trainable) != members:
            raise ValueError(f"per-member trainable names: {len(trainable)} given for {members} members")
        sets = [set(t) for t in trainable]
    else:
        sets = [set(trainable)] * members
    unknown = set().union(*sets) - set(names)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; the model has {sorted(names)}")
    if not any(sets):
        raise ValueError("nothing to train: no member has a trainable parameter")
    return sets


def train_members(model: fusion.PairFusion, params: dict[str, Tensor], pred: Tensor, target: Tensor, *,
                  member_frames, steps: int, lr: float, batch_size: int, seeds, trainable=None,
                  objective=fusion.member_mse, progress: bool = True, desc: str = "fusion members"):
    """Plain (non-meta) Adam training of Eq. (3) for M members at once: :func:`train_fusion` of each
    member on ``pred[member_frames[m]]``, ``target[member_frames[m]]`` with ``seeds[m]``, to float tolerance.

    model: the template (class, pairs, mix; its own parameters are not used); params: the members' starting
    parameters ``{name: (M, ...)}`` (:func:`stack_members`); pred, target (N, V, J, H, W): one pool of frames for all
    members (several pools: concatenate them and offset the indices), any float dtype (read as float32);
    member_frames: per member, its frame indices into the pool (its K shots); ``trainable``: names that move (None:
    all), or one collection of names per member (the others stay bit-identical: their gradient is masked to zero, so
    Adam never moves them); ``objective(fused, target, target_views) -> (M,)`` per-member losses
    (:func:`mfcore.fusion.member_mse`, Eq. (3), by default). Returns (the trained parameters ``{name: (M, ...)}``,
    detached; the loss of every step and member, (steps, M) on the CPU, read once after the last step)."""
    names = list(params)
    members = next(iter(params.values())).shape[0]
    if any(p.shape[0] != members for p in params.values()):
        raise ValueError(f"every parameter needs the member dimension M={members} first; got "
                         f"{ {n: tuple(p.shape) for n, p in params.items()} }")
    if pred.dim() != 5 or pred.shape != target.shape or pred.shape[1] != model.num_views:
        raise ValueError(f"pred and target must both be (N, V={model.num_views}, J, H, W); got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if not isinstance(steps, int) or steps < 0 or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"steps must be an integer >= 0 and batch_size >= 1; got {steps!r}, {batch_size!r}")
    if len(list(member_frames)) != members:
        raise ValueError(f"give the frames of every member: {len(list(member_frames))} for {members} members")
    sets = _member_trainable(names, trainable, members)
    moving = [n for n in names if any(n in s for s in sets)]
    device = next(iter(params.values())).device
    leaves = {n: p.detach().clone().requires_grad_(n in moving) for n, p in params.items()}
    masks = {n: torch.tensor([n in s for s in sets], dtype=leaves[n].dtype, device=device)
             .reshape(-1, *[1] * (leaves[n].dim() - 1)) for n in moving if not all(n in s for s in sets)}
    frames = minibatch_frames(member_frames, steps, batch_size, seeds)
    pred, target = resident_pool(pred, device), resident_pool(target, device)
    frames = frames.to(pred.device)  # once: (steps, M, B)
    opt = adam([leaves[n] for n in moving], lr=lr)
    history = torch.zeros(steps, members, device=device)
    model.train()
    for step in runtime.progress(range(steps), desc=desc, disable=not progress):
        idx = frames[step]  # (M, B)
        x, y = pred[idx].to(device).float(), target[idx].to(device).float()  # (M, B, V, J, H, W)
        with autocast(device):
            fused = model.forward_members(leaves, x)
        loss = objective(fused, y, model.target_views)  # (M,)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # member m's loss reaches member m's parameters only
        for n, mask in masks.items():
            leaves[n].grad.mul_(mask)
        opt.step()
        history[step] = loss.detach()
    return {n: p.detach() for n, p in leaves.items()}, history.cpu()


def resident_pool(x: Tensor, device: torch.device, max_bytes: int = 16 << 30) -> Tensor:
    """A pool of cached heatmaps moves to the GPU once (mini-batches are then gathered there) when it fits
    ``max_bytes``."""
    if device.type == "cuda" and x.device != device and x.numel() * x.element_size() <= max_bytes:
        return x.to(device)
    return x


def train_fusion(model, pred: Tensor, target: Tensor, *, steps: int, lr: float, batch_size: int, seed: int = 0,
                 trainable=None, progress: bool = True, desc: str = "fusion", on_step=None,
                 objective=None) -> list[float]:
    """Plain (non-meta) training of a fusion model by Adam on Eq. (3): ``steps`` mini-batches of ``batch_size`` frames
    (all frames if fewer), drawn with ``seed``. ``trainable``: parameter names that move (default all); the others are
    frozen (``requires_grad`` off, untouched). ``on_step(step)``, if given, is called after each step (1, 2, …) and
    may evaluate the model (it is put back in training mode afterwards). ``objective``: a per-member objective
    (:func:`mfcore.fusion.member_mse`'s signature) instead of Eq. (3). Returns the loss of every step (read from the
    device once, after the last step). M models at once: :func:`train_members`."""
    check_pool(pred, target)
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
    device = next(model.parameters()).device
    pred, target = resident_pool(pred, device), resident_pool(target, device)
    model.train()
    opt = adam(train, lr=lr)
    n = pred.shape[0]
    frames = minibatch_frames([torch.arange(n)], steps, batch_size, [seed])[:, 0].to(pred.device)  # once
    history = []
    for step in runtime.progress(range(steps), desc=desc, disable=not progress):
        idx = frames[step]
        x, y = pred[idx].to(device), target[idx].to(device)
        with autocast(device):
            fused = model(x)
        if objective is None:
            loss = fusion.fusion_mse(fused, y, model.target_views)
        else:
            loss = objective(fused[None], y[None], model.target_views)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.detach())
        if on_step is not None:
            on_step(len(history))
            model.train()
    return torch.stack(history).tolist() if history else []


def finetune(model, pred: Tensor, target: Tensor, *, steps: int, lr: float, batch_size: int, seed: int = 0,
             progress: bool = True, objective=None) -> list[float]:
    """Meta-testing (MetaFuse Sec. 4.3): Adam (Sec. 5.1: 5e-3) on the K labelled frames ``pred``/``target`` of the
    target rig. AffineFuse/MetaFuse: theta only, omega_base frozen (bit-identical); NaiveFuse: all weights."""
    return train_fusion(model, pred, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                        trainable=finetuned_names(model), progress=progress, desc="finetune", objective=objective)


def finetuned_names(model) -> tuple[str, ...] | None:
    """The parameters meta-testing moves (Sec. 4.3): θ only for AffineFuse/MetaFuse, all weights (None) for NaiveFuse."""
    return ("theta",) if isinstance(model, fusion.AffineFuse) else None


@torch.no_grad()
def fuse_frames(model, pred: Tensor, *, batch_size: int = 64) -> Tensor:
    """Fused (pre-softmax) heatmaps of all frames, (N, V, J, H, W), on ``pred``'s device; weights built once."""
    device = next(model.parameters()).device
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
    check_pool(pred, target)
    if kind not in ("affine", "naive"):
        raise ValueError(f"unknown fusion kind {kind!r}; choose 'affine' or 'naive'")
    v, side = pred.shape[1], pred.shape[-1]
    model = (fusion.AffineFuse if kind == "affine" else fusion.NaiveFuse)(v, side)
    model = model.to(device if device is not None else pred.device)
    train_fusion(model, pred, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed, progress=progress,
                 desc=f"pre-train {kind}")
    return model
