"""MetaFuse's many small trainings as one program: meta-training outer steps and finetuning steps, batched vs looped.

    python benchmarks/bench_meta.py                         # CUDA if present: the full profile's shapes
    python benchmarks/bench_meta.py --device cpu --quick    # a CPU check in seconds (2 vs 4 tasks, 1 vs 2 seeds)
    python benchmarks/bench_meta.py --out bench_meta.csv    # also a tidy CSV (benchmarks/run_all.py reads it)

On random heatmaps of the profile's shapes (a pool of dome frames of the 20 training cameras, J = 17, the profile's
heatmap side; a 4-view target rig for finetuning), in this process:

* meta-training (:func:`mfcore.maml.meta_train_members`, AffineFuse pair model from the line start, θ's capped inner
  rate, the profile's task sizes and MAML order): the time of one outer step with T and 8·T tasks (``--tasks``), 1 and
  3 seeds (``--seeds``), task updates per second (seeds × tasks / step time), and the task-by-task loop
  (:func:`mfcore.maml.meta_train_looped`, the algorithm of the book before batching) at T tasks, 1 seed;
* finetuning (:func:`mfcore.training.train_members`, MetaFuse's θ on a 4-view rig, batch min(K, batch_size)): one step
  of 1 and 3 members (seeds) at once, and of one model by :func:`mfcore.maml.finetune`;
* on CUDA also: kernel launches (and memsets, copies) per step, the device's busy time per step (from
  ``torch.profiler``; busy ≈ step time means the step is bound by the GPU's work, not by launches) and the peak memory
  per member; on the CPU the aten operators that compute (views and allocations left out) per step, in CUDA's weight
  chunks: the eager form of a CUDA step's launches (there each of AffineFuse's compiled kernels is one launch).

A step's time is the difference of two runs (1 and 1 + ``--steps`` steps) over ``--steps``, after a warm-up run (the
CUDA kernels' compilation): set-up costs cancel. Ratios are measured in this run on this device.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfbook import speed  # noqa: E402
from mfcore import affine, fusion, maml, studio, training  # noqa: E402
from mfcore.profiles import get_profile, resolve_device  # noqa: E402

JOINTS = 17
TASK_FACTOR = 8  # the larger outer step: 8x the profile's tasks (8 -> 64 at full, the comparison)
ENSEMBLE = 3  # seeds of the ensemble
FINETUNE_VIEWS = 4  # the target rigs' cameras
LAUNCHES = ("LaunchKernel", "cudaGraphLaunch", "cudaMemsetAsync", "cudaMemcpyAsync")  # runtime / driver API events
# aten operators that write no tensor data (views, shapes, allocations, host-side draws): no kernel on CUDA
NOT_COMPUTE = {"as_strided", "select", "slice", "view", "unsqueeze", "reshape", "_reshape_alias", "narrow", "expand",
               "detach", "alias", "t", "transpose", "permute", "squeeze", "flatten", "unflatten", "split", "unbind",
               "_unsafe_view", "lift_fresh", "empty", "empty_strided", "resize_", "resolve_conj", "resolve_neg",
               "empty_like", "to", "randperm", "lift_fresh_copy", "is_nonzero", "item", "_local_scalar_dense"}


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's native library prints two lines per run on the process's stderr: hide them."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _profiled(run, device: torch.device) -> tuple[int, float]:
    """(kernel launches on CUDA / aten operators on the CPU, device busy seconds) of ``run()``. On the CPU the weight
    kernels run in CUDA's chunks for this count (the CPU's cache-sized chunks multiply the operators with the members;
    CUDA's do not), so the count is the eager form of a CUDA step's launches (where each compiled kernel is one)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    cpu_chunk = affine._CHUNK_ELEMENTS["cpu"]
    affine._CHUNK_ELEMENTS["cpu"] = affine._CHUNK_ELEMENTS["cuda"]
    try:
        with _quiet_stderr(), profile(activities=acts) as prof:
            speed.wall_s(run, device)  # the run, synchronised
    finally:
        affine._CHUNK_ELEMENTS["cpu"] = cpu_chunk
    events = prof.key_averages()
    if device.type == "cuda":
        launches = sum(e.count for e in events if any(w in e.key for w in LAUNCHES))
        busy_us = sum(getattr(e, "self_device_time_total", 0.0) for e in events
                      if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
        return launches, busy_us / 1e6
    return sum(e.count for e in events if e.key.startswith("aten::") and e.key[6:] not in NOT_COMPUTE), 0.0


def per_step(make_run, steps: int, device: torch.device, profile_launches: bool) -> dict:
    """Step time of ``make_run(n)`` (a run of n steps) by difference, its peak memory, and (optionally) its launches
    and device busy time per step."""
    make_run(1)()  # warm-up: compilation, caches
    one = speed.wall_s(make_run(1), device)
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    many = speed.wall_s(make_run(1 + steps), device)
    out = {"ms": 1e3 * max(many - one, 0.0) / steps}
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
    if profile_launches:
        (l1, b1), (ln, bn) = _profiled(make_run(1), device), _profiled(make_run(1 + steps), device)
        out["launches"], out["busy_ms"] = (ln - l1) / steps, 1e3 * (bn - b1) / steps
    return out


def meta_rows(args, prof, device) -> list[dict]:
    m = prof.metafuse
    side, sigma = prof.studio.heatmap_px, prof.studio.heatmap_sigma_px
    first_order = m.first_order if args.order == "profile" else args.order == "first"
    order = "first" if first_order else "second"
    views = len(studio.DOME_TRAIN_VIEWS)
    g = torch.Generator(device=device).manual_seed(args.seed)
    n = max(args.pool, 2 * (m.task_train + m.task_test))
    pred = torch.rand(n, views, JOINTS, side, side, generator=g, device=device)  # (N, V, J, H, W)
    target = torch.rand(n, views, JOINTS, side, side, generator=g, device=device)
    model = maml.pair_model("affine", side, sigma).to(device)
    kw = dict(views=range(views), task_train=m.task_train, task_test=m.task_test, inner_lr=m.inner_lr,
              outer_lr=m.outer_lr, first_order=first_order, theta_step_px=maml.THETA_INNER_STEP_SIGMAS * sigma,
              progress=False)
    rows, times = [], {}
    for seeds in args.seeds:
        for tasks in args.tasks:
            params = training.stack_members([model] * seeds)

            def make_run(k, tasks=tasks, seeds=seeds, params=params):
                return lambda: maml.meta_train_members(model, params, pred, target, seeds=list(range(seeds)),
                                                       iterations=k, tasks_per_step=tasks, **kw)

            r = per_step(make_run, args.steps, device, args.launches)
            times[tasks, seeds] = r["ms"]
            setting = f"{tasks} tasks x {seeds} seed{'s' if seeds > 1 else ''}"
            note = f"{order}-order, {m.task_train}+{m.task_test} frames per task, {side}² heatmaps, J={JOINTS}"
            rows += _rows(f"meta-training outer step, {setting}", r, tasks * seeds, note)
            rows.append(dict(metric=f"meta-training task updates per second, {setting}",
                             value=1e3 * tasks * seeds / max(r["ms"], 1e-9), unit="tasks/s", note=note))

    def make_looped(k):
        def run():
            looped = maml.pair_model("affine", side, sigma).to(device)
            maml.meta_train_looped(looped, pred, target, seed=0, iterations=k, tasks_per_step=args.tasks[0], **kw)
        return run

    t0 = args.tasks[0]
    r = per_step(make_looped, args.steps, device, False)
    times["looped"] = r["ms"]
    note = f"{order}-order, one task at a time (the book's loop before batching: a host sync per task)"
    rows += _rows(f"meta-training outer step, {t0} tasks, looped", r, t0, note)
    rows.append(dict(metric=f"meta-training task updates per second, {t0} tasks, looped",
                     value=1e3 * t0 / max(r["ms"], 1e-9), unit="tasks/s", note=note))
    lo, hi = min(args.tasks), max(args.tasks)
    s1, s3 = min(args.seeds), max(args.seeds)
    rows += [dict(metric=f"meta-training outer step time, {hi} / {lo} tasks", value=times[hi, s1] / times[lo, s1],
                  unit="ratio", note="1 seed; issue target <= 2 for 64 / 8 tasks"),
             dict(metric=f"meta-training outer step time, {s3} / {s1} seeds", value=times[lo, s3] / times[lo, s1],
                  unit="ratio", note=f"{lo} tasks; issue target <= 1.5 for 3 / 1 seeds"),
             dict(metric=f"meta-training task updates per second, {hi} tasks x {s3} seeds / looped",
                  value=(hi * s3 / times[hi, s3]) / (t0 / times["looped"]), unit="ratio",
                  note="issue target >= 10 (today's 8 x 500 / 26.8 s = 150 tasks/s on one H200)")]
    return rows


def finetune_rows(args, prof, device) -> list[dict]:
    m = prof.metafuse
    side, k = prof.studio.heatmap_px, max(m.shots)
    g = torch.Generator(device=device).manual_seed(args.seed + 1)
    pred = torch.rand(k, FINETUNE_VIEWS, JOINTS, side, side, generator=g, device=device)
    target = torch.rand(k, FINETUNE_VIEWS, JOINTS, side, side, generator=g, device=device)
    rig = fusion.for_rig(maml.pair_model("affine", side, prof.studio.heatmap_sigma_px).to(device), FINETUNE_VIEWS)
    rows, times = [], {}
    note = f"MetaFuse's θ, {FINETUNE_VIEWS}-view rig ({len(rig.pairs)} pairs), K={k}, batch {min(k, m.batch_size)}, " \
           f"{side}² heatmaps"
    for members in args.seeds:
        params = training.stack_members([rig] * members)

        def make_run(steps, members=members, params=params):
            return lambda: training.train_members(
                rig, params, pred, target, member_frames=[torch.arange(k)] * members, steps=steps,
                lr=m.finetune_lr, batch_size=m.batch_size, seeds=list(range(members)), trainable=("theta",),
                progress=False)

        r = per_step(make_run, args.steps, device, args.launches)
        times[members] = r["ms"]
        rows += _rows(f"MetaFuse finetuning step, {members} member{'s' if members > 1 else ''} at once", r,
                      members, note)

    def make_single(steps):
        def run():
            model = fusion.for_rig(rig, FINETUNE_VIEWS)
            maml.finetune(model, pred, target, steps=steps, lr=m.finetune_lr, batch_size=min(k, m.batch_size),
                          progress=False)
        return run

    r = per_step(make_single, args.steps, device, False)
    rows += _rows("MetaFuse finetuning step, one model (maml.finetune)", r, 1, note)
    s1, s3 = min(args.seeds), max(args.seeds)
    rows += [dict(metric=f"MetaFuse finetuning step time, {s3} / {s1} members", value=times[s3] / times[s1],
                  unit="ratio", note="issue target <= 1.5 for 3 / 1 seeds"),
             dict(metric=f"MetaFuse finetuning, {s3} models one by one / {s3} at once",
                  value=s3 * r["ms"] / times[s3], unit="ratio", note="maml.finetune per model vs train_members")]
    return rows


def _rows(metric: str, r: dict, members: int, note: str) -> list[dict]:
    rows = [dict(metric=metric, value=r["ms"], unit="ms", note=note)]
    if "launches" in r:
        what = "kernel launches" if r["busy_ms"] or "peak_bytes" in r else "compute operators"
        rows.append(dict(metric=f"{metric}: {what} per step", value=r["launches"], unit="count", note=note))
    if r.get("busy_ms"):
        rows.append(dict(metric=f"{metric}: device busy per step", value=r["busy_ms"], unit="ms",
                         note="sum of the GPU kernels' times; close to the step time: bound by the GPU's work"))
    if "peak_bytes" in r:
        rows.append(dict(metric=f"{metric}: peak memory per member", value=r["peak_bytes"] / members / 2 ** 20,
                         unit="MiB", note="peak allocated during the run above the memory held before it"))
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--profile", default=None, help="smoke or full (default: full on CUDA, smoke on the CPU)")
    ap.add_argument("--tasks", type=int, nargs=2, default=None,
                    help="tasks per outer step, small and large (default: the profile's and 8x; --quick: 2 and 4)")
    ap.add_argument("--seeds", type=int, nargs=2, default=None, help="seeds / members, one and the ensemble "
                                                                     "(default 1 and 3; --quick: 1 and 2)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: the profile's speed_repeats)")
    ap.add_argument("--order", default="profile", choices=("profile", "first", "second"), help="MAML order")
    ap.add_argument("--pool", type=int, default=64, help="frames in the random meta-training pool")
    ap.add_argument("--side", type=int, default=None, help="heatmap side (default: the profile's)")
    ap.add_argument("--quick", action="store_true", help="small settings for a CPU check in seconds")
    ap.add_argument("--no-launches", dest="launches", action="store_false",
                    help="skip the profiled runs (launches / operators per step, device busy time)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="CSV path")
    args = ap.parse_args(argv)
    try:
        device = resolve_device(args.device)
        prof = get_profile(args.profile or ("full" if device.type == "cuda" else "smoke"))
        for name in ("tasks", "seeds"):
            value = getattr(args, name)
            if value is not None and (min(value) < 1 or value[0] >= value[1]):
                raise ValueError(f"--{name} must be two increasing positive integers; got {value}")
        if args.steps is not None and args.steps < 1:
            raise ValueError(f"--steps must be >= 1; got {args.steps}")
        if args.side is not None:
            if args.side < 2:
                raise ValueError(f"--side must be >= 2 heatmap pixels; got {args.side}")
            prof = dataclasses.replace(prof, studio=dataclasses.replace(prof.studio, heatmap_px=args.side))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    t = prof.metafuse.meta_tasks_per_step
    args.tasks = args.tasks or ([2, 4] if args.quick else [t, TASK_FACTOR * t])
    args.seeds = args.seeds or ([1, 2] if args.quick else [1, ENSEMBLE])
    args.steps = args.steps or (1 if args.quick else prof.metafuse.speed_repeats)
    if args.quick and args.order == "profile":
        args.order = "first"
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # as the chapters on the CPU
    try:
        rows = meta_rows(args, prof, device) + finetune_rows(args, prof, device)
    finally:
        torch.set_num_threads(threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    for r in rows:
        r.update(device=name, profile=prof.name)
    width = max(len(r["metric"]) for r in rows)
    for r in rows:
        print(f"{r['metric']:{width}s} {r['value']:12.3f} {r['unit']}")
    if args.out:
        import pandas as pd

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
