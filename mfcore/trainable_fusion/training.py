"""Training Tekin's networks: Eq. (2) and Eq. (4) with Adam, every member of an ensemble in one program.

One step of M members is one forward and one backward pass of the ensemble (:mod:`.layers`) on the sum of the
members' losses; every member's parameters get exactly its own loss's gradient (the members share no weight) and Adam
is elementwise, so one optimiser over the stacked (M, …) parameters is M optimisers. Each member keeps its own random
streams, derived from its seed alone: its initial weights (:func:`.network.layer_generator`), its minibatch order
(:func:`minibatch_schedule`) and its dropout masks (:class:`DropoutNoise`). A member therefore trains the same way
whether alone (M = 1) or beside others, up to the float rounding of grouped kernels (a test of the book checks it).
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from .. import runtime
from ..optim import adam
from ..profiles import Profile, resolve_device
from .network import FusionNet, build_fusion_net, check_int
from .samples import MonocularSamples, PoseNormaliser

Tensor = torch.Tensor


def pose_loss(pred_m: Tensor, gt_m: Tensor, scale_m: Tensor | None = None) -> Tensor:
    """Eq. (2) of Tekin per minibatch: the mean over the batch axis (dim 0) of ‖f − y‖², summed over joints and
    coordinates; in metres², or with ``scale_m`` (…, J, 3) in standardised units ‖(f − y) / scale‖²
    (:class:`.samples.PoseNormaliser`). (B, J, 3) → a scalar; (B, M, J, 3) → (M,), one loss per member."""
    if pred_m.shape != gt_m.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(pred_m.shape)} vs {tuple(gt_m.shape)}")
    diff = pred_m.float() - gt_m.float()
    if scale_m is not None:
        diff = diff / scale_m.to(diff)
    return (diff ** 2).sum(dim=(-1, -2)).mean(0)


def penalty_weights(net: FusionNet, lambda_alpha) -> Tensor:
    """Each member's λ in Eq. (4), (M,) on the network's device: ``lambda_alpha`` (one λ for all members, or one per
    member) where the member's fusion is trainable, 0 where it is fixed at a layer."""
    lam = _per_member("lambda_alpha", lambda_alpha, net.members, 0.0)
    trainable = net.member_trainable() if isinstance(net, FusionNet) else torch.zeros(net.members, dtype=torch.bool)
    return (torch.tensor(lam) * trainable).to(net.pose_mean_m.device)


def sharpness_penalty(net: FusionNet, lambda_alpha) -> Tensor:
    """The λ/α² term of Eq. (4) of every member, (M,): λ_m / α_m² for members with trainable fusion, 0 for members
    fused at a fixed layer (and for λ = 0). ``lambda_alpha``: one λ for all members, one per member, or the (M,)
    tensor of :func:`penalty_weights` (what a training step passes: no host-to-device copy per step)."""
    lam = lambda_alpha if isinstance(lambda_alpha, Tensor) else penalty_weights(net, lambda_alpha)
    if not isinstance(net, FusionNet) or not net.complete:
        return torch.zeros(net.members, device=net.pose_mean_m.device)
    return lam / net.alpha.float() ** 2


def _per_member(name: str, value, members: int, low: float) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * members
    if len(values) != members:
        raise ValueError(f"{name} needs one value per member ({members}), got {len(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low:
            raise ValueError(f"{name} must be a finite number >= {low}, got {v!r}")
    return [float(v) for v in values]


def _check_rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def derived_seed(seed: int, stream: str) -> int:
    """The seed of one of a member's random streams ("order", "dropout"), from the member's seed alone."""
    digest = hashlib.sha256(f"trainable_fusion/{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def member_subsets(n: int, train_samples, members: int, subset_seed: int) -> list[Tensor]:
    """Each member's training samples: the first ``train_samples[m]`` of one seeded order of the n samples (nested
    subsets: a smaller set is part of every larger one), or all n in their order for ``None``."""
    sizes = list(train_samples) if isinstance(train_samples, (list, tuple)) else [train_samples] * members
    if len(sizes) != members:
        raise ValueError(f"train_samples needs one value per member ({members}), got {len(sizes)}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(subset_seed))
    out = []
    for size in sizes:
        if size is None:
            out.append(torch.arange(n))
        else:
            check_int("train_samples", size, 1, n)
            out.append(order[:size].clone())
    return out


def minibatch_schedule(subsets: Sequence[Tensor], seeds: Sequence[int], steps: int, batch_size: int) -> Tensor:
    """The sample of every (step, position, member), (steps, B, M) int64: member m walks through epochs of its own
    subset, each a fresh permutation drawn by its own generator (seeded by :func:`derived_seed` of its seed), B
    samples per step; an epoch may end inside a step (every step is a full minibatch)."""
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    columns = []
    for subset, seed in zip(subsets, seeds):
        g = torch.Generator().manual_seed(derived_seed(seed, "order"))
        n, need = len(subset), steps * batch_size
        epochs = [subset[torch.randperm(n, generator=g)] for _ in range(math.ceil(need / n))]
        columns.append(torch.cat(epochs)[:need].view(steps, batch_size))
    return torch.stack(columns, dim=-1)


class DropoutNoise:
    """Each member's dropout uniforms, from its own generator on ``device``: :meth:`draw` → (M, B, units)."""

    def __init__(self, seeds: Sequence[int], units: int, device: torch.device):
        self.units, self.device = units, device
        self.generators = [torch.Generator(device=device).manual_seed(derived_seed(s, "dropout")) for s in seeds]

    def draw(self, batch_size: int) -> Tensor:
        parts = [torch.rand(1, batch_size, self.units, generator=g, device=self.device) for g in self.generators]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def train_fusion_net(net: nn.Module, data: MonocularSamples, *, steps: int, batch_size: int, lr: float = 1e-3,
                     fusion_lr: float | None = None, lambda_alpha=0.0, train_samples=None, subset_seed: int = 0,
                     device="cpu", amp: bool = False, record_every: int = 1, progress: bool = True,
                     desc: str = "train") -> pd.DataFrame:
    """Train every member of ``net`` (a :class:`FusionNet`, or a :class:`.baselines.PerfectLifter`) in place with
    Adam on Eq. (4) of Tekin (Eq. (2) for members without trainable fusion or with λ = 0); returns the history.

    ``steps`` Adam steps of ``batch_size`` samples per member; ``lr`` for the network θ, ``fusion_lr`` for α and β
    (default ``lr``, the paper's setting); ``lambda_alpha`` λ, one for all members or one per member;
    ``train_samples`` None (all of ``data``) or per member the size of its nested subset (:func:`member_subsets`,
    ordered by ``subset_seed``). Each member's targets are standardised with its own training poses
    (:class:`PoseNormaliser`, stored in the network's buffers), so the loss is in standardised units and a member starts
    at the mean pose of its training set. ``amp``: bf16 autocast on CUDA (ignored on the CPU).

    The history has one row per member and recorded step (step 1, every ``record_every``-th step, the last step):
    ``member, seed, step, data_loss, penalty`` and, for the complete architecture, ``alpha, beta, w_1..w_L`` (Fig. 5
    of Tekin), as that step's forward pass used them (before its update; step 1 shows α = 0.1, β = L/2);
    ``data_loss`` is the mean of Eq. (2) over the steps since the previous record.
    """
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_int("record_every", record_every, 1)
    check_int("subset_seed", subset_seed, 0)
    lr = _check_rate("lr", lr)
    fusion_lr = lr if fusion_lr is None else _check_rate("fusion_lr", fusion_lr)
    _per_member("lambda_alpha", lambda_alpha, net.members, 0.0)
    if len(data) == 0:
        raise ValueError("data holds no samples")
    if data.joints_3d_m.shape[1] != net.num_joints:
        raise ValueError(f"data has {data.joints_3d_m.shape[1]} joints, the network predicts {net.num_joints}")
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    use_amp = amp and device.type == "cuda"
    subsets = member_subsets(len(data), train_samples, net.members, subset_seed)
    joints = data.joints_3d_m.to(device).float()
    norms = [PoseNormaliser.fit(joints[s.to(device)].cpu()) for s in subsets]
    net.to(device).train()
    net.set_pose_normalisation(torch.stack([n.mean_m for n in norms]), torch.stack([n.scale_m for n in norms]))
    schedule = minibatch_schedule(subsets, net.seeds, steps, batch_size).to(device)
    inputs = _inputs(net, data, device, use_amp)
    noise = DropoutNoise(net.seeds, net.noise_units, device) if net.dropout > 0 and net.noise_units else None
    trainable = isinstance(net, FusionNet) and net.complete
    lam = penalty_weights(net, lambda_alpha)  # (M,) on the device, once
    fusion = [net.alpha, net.beta] if trainable else []
    others = [p for p in net.parameters() if all(p is not f for f in fusion)]
    optimiser = adam([{"params": others, "lr": lr}] + ([{"params": fusion, "lr": fusion_lr}] if fusion else []), lr)
    records, recorded_steps = [], []
    total = torch.zeros(net.members, device=device)
    since = 0
    bar = runtime.progress(total=steps, desc=desc, leave=False, disable=not progress)
    for t in range(steps):
        idx = schedule[t]  # (B, M)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            pred = net(*[None if x is None else x[idx] for x in inputs],
                       noise=None if noise is None else noise.draw(batch_size))
        data_loss = pose_loss(pred, joints[idx], net.pose_scale_m)  # (M,)
        penalty = sharpness_penalty(net, lam) if trainable else torch.zeros_like(data_loss)
        total += data_loss.detach()
        since += 1
        if t == 0 or (t + 1) % record_every == 0 or t == steps - 1:
            with torch.no_grad():
                cols = [total / since, penalty.detach()]
                if trainable:
                    cols += [net.alpha.detach().float(), net.beta.detach().float()]
                    cols += list(net.fusion_weights().detach().float().unbind(1))
                records.append(torch.stack(cols, dim=1))  # (M, columns)
            recorded_steps.append(t + 1)
            total, since = torch.zeros_like(total), 0
        optimiser.zero_grad(set_to_none=True)
        (data_loss + penalty).sum().backward()
        optimiser.step()
        bar.update(1)
        if progress and (t + 1) % max(1, steps // 10) == 0:
            bar.set_postfix(loss=f"{float(data_loss.mean()):.3f}")
    bar.close()
    net.eval()
    return _history(net, torch.stack(records).cpu(), recorded_steps, trainable)


def _inputs(net, data: MonocularSamples, device, use_amp: bool) -> list[Tensor | None]:
    """The tensors a step indexes by the (B, M) schedule, in the order ``net.forward`` takes them."""
    dtype = None if use_amp else torch.float32  # autocast reads float16 storage as is; float32 otherwise
    if isinstance(net, FusionNet):
        cast = (lambda x: x.to(device) if dtype is None else x.to(device, dtype))
        return [cast(data.images) if "image" in net.streams else None,
                cast(data.confidence_maps) if "cm" in net.streams else None]
    if data.joints_2d_px is None:
        raise ValueError("data has no joints_2d_px: the lifter reads the ground-truth 2D joints")
    return [data.joints_2d_px.to(device, torch.float32)]


def _history(net, values: Tensor, steps: list[int], trainable: bool) -> pd.DataFrame:
    """(records, M, columns) → the long history table (one row per member and recorded step)."""
    columns = ["data_loss", "penalty"] + (["alpha", "beta"] + [f"w_{l}" for l in range(1, net.layers + 1)]
                                          if trainable else [])
    R, M, _ = values.shape
    frame = pd.DataFrame(values.permute(1, 0, 2).reshape(M * R, -1).numpy(), columns=columns)
    frame.insert(0, "step", steps * M)
    frame.insert(0, "seed", [s for s in net.seeds for _ in range(R)])
    frame.insert(0, "member", [m for m in range(M) for _ in range(R)])
    return frame


def fit_fusion_method(method: str, train: MonocularSamples, profile: Profile, seeds, device, *,
                      beta: int | None = None, lambda_alpha: float | None = None, train_samples=None,
                      amp: bool | None = None, progress: bool = True):
    """Build one configuration of Table 5 for every seed (:func:`.network.build_fusion_net`) and train the ensemble
    with the profile's schedule (``profile.trainable_fusion``: steps, batch_size, lr, fusion_lr, record_every; λ =
    ``lambda_alpha`` for trainable fusion unless given). ``amp`` defaults to bf16 autocast on CUDA.
    Returns (net in eval mode, history)."""
    sizes = profile.trainable_fusion
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    net = build_fusion_net(method, profile, seeds=seeds, beta=beta)
    lam = sizes.lambda_alpha if lambda_alpha is None else lambda_alpha
    history = train_fusion_net(net, train, steps=sizes.steps, batch_size=sizes.batch_size, lr=sizes.lr,
                               fusion_lr=sizes.fusion_lr, lambda_alpha=lam if net.complete else 0.0,
                               train_samples=train_samples, device=device, record_every=sizes.record_every,
                               amp=device.type == "cuda" if amp is None else amp, progress=progress, desc=method)
    return net, history


def fusion_family_plan(seeds, sweep_seeds, layers: int, lambda_alpha: float) -> pd.DataFrame:
    """The members of one complete-architecture program that trains every two-stream configuration of the chapter:
    per seed in ``seeds`` EarlyFusion (β = 0), LateFusion (β = L), TrainableFusion with λ (the paper's Eq. 4) and the
    λ = 0 control (Eq. 2 alone); per seed in ``sweep_seeds`` fusion fixed at each β = 1..L−1. One row per member:
    ``member, method, run, seed, beta, lambda_alpha`` (``beta`` None for trainable fusion; ``run`` labels the two
    trainable runs ``λ = <value>`` and ``λ = 0``)."""
    check_int("layers", layers, 1)
    rows = []
    for seed in seeds:
        rows += [dict(method="EarlyFusion", run="", seed=seed, beta=0, lambda_alpha=0.0),
                 dict(method="LateFusion", run="", seed=seed, beta=layers, lambda_alpha=0.0),
                 dict(method="TrainableFusion", run=f"λ = {lambda_alpha:g}", seed=seed, beta=None,
                      lambda_alpha=float(lambda_alpha)),
                 dict(method="TrainableFusion", run="λ = 0", seed=seed, beta=None, lambda_alpha=0.0)]
    for seed in sweep_seeds:
        rows += [dict(method="FixedFusion", run="", seed=seed, beta=b, lambda_alpha=0.0) for b in range(1, layers)]
    plan = pd.DataFrame(rows)
    plan.insert(0, "member", range(len(plan)))
    plan["beta"] = pd.Series([r["beta"] for r in rows], dtype=object)  # ints, None for trainable fusion
    return plan
