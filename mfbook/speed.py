"""Speed measurements shared by the benchmark scripts and the chapters' speed tables (numbers, never pass/fail).

* :func:`fusion_step_times` — NaiveFuse vs AffineFuse (and the materialised affine_grid + grid_sample reference):
  forward + backward of Eq. (3) through Eq. (1)/(2), an Adam step, and frozen inference, with each method's ratio to
  NaiveFuse measured in the same run (the MetaFuse issue's target: AffineFuse ≤ 2× NaiveFuse per training step).
* :func:`bare_backbone_images_per_s` — training images per second of the bare SimpleBaseline loop (random images and
  targets already on the device, Adam, bf16 autocast and channels_last on CUDA): the ceiling the warm-up of chapter 03
  (rendering, label heatmaps and the book's loop) is compared with.
* :func:`fused_inference_ms` — milliseconds per image of the 2D estimator with fusion (backbone + MetaFuse), the
  figure MetaFuse Sec. 5.1 quotes as 0.015 s per image.
* :func:`rpsm_speed` — frames per second of the RPSM (chapter 05), batched and one frame per call (live use), for the
  reference :func:`mfcore.pictorial.rpsm` and the :class:`mfcore.rpsm_solver.RPSMSolver` built once per rig, on the
  same heatmaps, with the largest difference between their poses.
* :func:`meta_training_throughput` — meta-training's task updates per second before batching (one task at a time,
  :func:`mfcore.maml.meta_train_looped`) and after (tasks and seeds as one program, :func:`mfcore.maml.meta_train_members`),
  on the same pool in the same run (chapter 03).
Times are medians of ``repeats`` runs after ``warmup`` runs, synchronised on CUDA.
"""

from __future__ import annotations

import time

import torch

from mfcore import backbone, fusion, maml, training
from mfcore.optim import adam

FUSION_METHODS = ("NaiveFuse", "AffineFuse", "AffineFuse-reference", "AffineFuse-higher-order")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_s(run, device: torch.device) -> float:
    """Wall seconds of ``run()``, the device synchronised before and after."""
    _sync(device)
    t0 = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - t0


def time_ms(fn, device: torch.device, warmup: int = 3, repeats: int = 10) -> float:
    """Median wall time of ``fn()`` in milliseconds (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def _timing_model(method: str, views: int, side: int, device: torch.device, seed: int):
    """A fusion model with small random (non-zero) parameters, so no path is short-cut by zeros."""
    g = torch.Generator().manual_seed(seed)
    if method == "NaiveFuse":
        model = fusion.NaiveFuse(views, side)
        with torch.no_grad():
            model.weight.normal_(0, 1e-3, generator=g)
    else:
        model = fusion.AffineFuse(views, side)
        with torch.no_grad():
            model.omega_base.normal_(0, 1e-2, generator=g)
            model.theta.add_(0.05 * torch.randn(model.theta.shape, generator=g))
        model.higher_order = method == "AffineFuse-higher-order"
        if method == "AffineFuse-reference":
            model.pair_weights = lambda m=model: fusion.affine_weight_reference(m.omega_base, m.theta)
    return model.to(device)


def fusion_step_times(device: torch.device, *, batch: int = 32, views: int = 4, joints: int = 17, side: int = 64,
                      methods=("NaiveFuse", "AffineFuse", "AffineFuse-reference"), amp: bool = True,
                      warmup: int = 3, repeats: int = 10, seed: int = 0) -> list[dict]:
    """One row per method and phase (``fwd_bwd``, ``step``, ``infer``) with ``ms`` and ``ratio_to_naive``."""
    unknown = [m for m in methods if m not in FUSION_METHODS]
    if unknown:
        raise ValueError(f"unknown fusion method(s) {unknown}; valid: {FUSION_METHODS}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, views, joints, side, side, generator=g).to(device)  # (B, V, J, H, W)
    y = torch.rand(batch, views, joints, side, side, generator=g).to(device)
    amp = amp and device.type == "cuda"
    rows = []
    for method in methods:
        model = _timing_model(method, views, side, device, seed)
        opt = adam(model.parameters(), lr=1e-3)  # the book's optimiser

        def fwd_bwd():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = fusion.fusion_mse(model(x), y)
            loss.backward()

        def step():
            opt.zero_grad(set_to_none=True)
            fwd_bwd()
            opt.step()

        def infer():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                model(x)

        for phase, fn in (("fwd_bwd", fwd_bwd), ("step", step)):
            model.zero_grad(set_to_none=True)
            rows.append(dict(method=method, phase=phase, ms=time_ms(fn, device, warmup, repeats)))
        model.freeze()
        rows.append(dict(method=method, phase="infer", ms=time_ms(infer, device, warmup, repeats)))
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    naive = {r["phase"]: r["ms"] for r in rows if r["method"] == "NaiveFuse"}
    for r in rows:
        r.update(device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", batch=batch,
                 views=views, joints=joints, heatmap_px=side, amp=amp,
                 ratio_to_naive=r["ms"] / naive[r["phase"]] if r["phase"] in naive else float("nan"))
    return rows


def fused_inference_ms(profile, device: torch.device, views: int = 4, batch_frames: int = 16, warmup: int = 3,
                       repeats: int = 10) -> float:
    """Milliseconds per image of the 2D estimator with fusion at the profile's sizes: the backbone on V views of
    ``batch_frames`` frames, then MetaFuse's frozen fusion (bf16 autocast and channels_last on CUDA)."""
    device = torch.device(device)
    s = profile.studio
    net = backbone.model_from_profile(profile).to(device).eval()
    model = fusion.AffineFuse(views, s.heatmap_px).to(device).eval()
    model.freeze()
    images = torch.rand(batch_frames * views, 3, s.image_px, s.image_px, device=device)  # (B·V, 3, H, W)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        images = images.to(memory_format=torch.channels_last)

    def once():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hm = net(images).float().reshape(batch_frames, views, -1, s.heatmap_px, s.heatmap_px)
            return model(hm)

    return time_ms(once, device, warmup, repeats) / (batch_frames * views)


def bare_backbone_images_per_s(profile, device: torch.device, steps: int = 20, warmup: int = 5) -> float:
    """Training images per second of the profile's backbone in a bare loop: ``profile.backbone.batch_size`` random
    images (B, 3, H, W) and random target heatmaps (B, J, H/4, W/4) made once on the device, MSE, the book's Adam, bf16
    autocast and channels_last on CUDA (as :func:`mfcore.backbone.train_backbone`), ``steps`` timed steps after
    ``warmup`` untimed ones, synchronised. What the warm-up's own loop could reach if nothing else cost time."""
    device = torch.device(device)
    s, b = profile.studio, profile.backbone
    net = backbone.model_from_profile(profile).to(device).train()
    images = torch.rand(b.batch_size, 3, s.image_px, s.image_px, device=device)
    targets = torch.rand(b.batch_size, net.num_joints, s.heatmap_px, s.heatmap_px, device=device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        images = images.to(memory_format=torch.channels_last)
    opt = adam(net.parameters(), lr=b.lr)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = net(images)
        loss = torch.nn.functional.mse_loss(pred.float(), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ms = time_ms(step, device, warmup=warmup, repeats=steps)
    return b.batch_size / (ms / 1e3)


RPSM_PATHS = ("reference", "solver")
RPSM_MODES = ("batched", "one frame per call")


def rpsm_speed(heatmaps: torch.Tensor, projections_hm: torch.Tensor, stats, sizes, device: torch.device,
               batch: int | None = None, single_frames: int = 8, paths=RPSM_PATHS, return_poses: bool = False):
    """RPSM frames per second on (N, V, J, h, w) ``heatmaps`` at the pictorial ``sizes``: one row per path
    (``reference``: :func:`mfcore.pictorial.rpsm` through ``estimate_3d``; ``solver``: one
    :class:`mfcore.rpsm_solver.RPSMSolver` for the rig) and mode (``batched``: calls of ``batch`` frames, default
    ``sizes.batch_frames``, over all N; ``one frame per call``: the first ``single_frames`` frames one by one).

    Rows: ``path, mode, frames, batch, seconds, frames_per_s, ms_per_frame, warmup_s, graphs, host_ms_per_call,
    peak_mib, max_difference_mm`` (the solver's host step per call: the RANSAC root and the blur radii, while the GPU
    waits; the peak GPU memory of the row's passes, NaN on the CPU; the solver's largest joint distance to the
    reference's poses of the same frames); with ``return_poses`` also {(path, mode): poses}. The
    reference is timed after one warm-up call per mode (its tables are then cached); the solver after two untimed
    passes over the same calls (a call shape's first sighting runs eagerly, its second captures a CUDA graph on a
    GPU): both the steady state of a session, the solver's one-off warm-up in ``warmup_s``. Wall time, synchronised
    on CUDA.
    """
    from mfcore import pictorial, rpsm_solver

    device = torch.device(device)
    unknown = [p for p in paths if p not in RPSM_PATHS]
    if unknown:
        raise ValueError(f"unknown RPSM path(s) {unknown}; valid: {', '.join(RPSM_PATHS)}")
    n = heatmaps.shape[0]
    batch = min(batch or sizes.batch_frames, n)
    single_frames = min(single_frames, n)
    if n < 1 or single_frames < 1:
        raise ValueError(f"need at least one frame, got {n} frames and single_frames={single_frames}")
    solver = rpsm_solver.RPSMSolver(projections_hm, tuple(heatmaps.shape[-2:]), stats, sizes.grid_bins,
                                    sizes.cube_size_mm, sizes.rpsm_stages, sizes.rpsm_bins,
                                    antialias=sizes.antialias, device=device)
    estimate = {"reference": lambda hm: pictorial.estimate_3d("rpsm", hm, projections_hm, stats, sizes,
                                                              batch_frames=hm.shape[0]),
                "solver": lambda hm: solver(hm, projections_hm)}

    def passes(path: str, frames: int, per_call: int, count: int) -> tuple[float, torch.Tensor]:
        t0 = time.perf_counter()
        for _ in range(count):
            poses = [estimate[path](heatmaps[s:min(s + per_call, frames)]) for s in range(0, frames, per_call)]
        _sync(device)
        return time.perf_counter() - t0, torch.cat(poses)

    rows, poses = [], {}
    for path in paths:
        for mode, frames, per_call in (("batched", n, batch), ("one frame per call", single_frames, 1)):
            before = solver.graphs_captured
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            warm_s, _ = (passes(path, frames, per_call, 2) if path == "solver"
                         else passes(path, per_call, per_call, 1))
            calls, host_s = solver.calls, solver.host_seconds
            seconds, poses[path, mode] = passes(path, frames, per_call, 1)
            host_ms = (1000 * (solver.host_seconds - host_s) / (solver.calls - calls) if path == "solver"
                       else float("nan"))
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
            rows.append(dict(path=path, mode=mode, frames=frames, batch=per_call, seconds=seconds,
                             frames_per_s=frames / seconds, ms_per_frame=1000 * seconds / frames, warmup_s=warm_s,
                             graphs=solver.graphs_captured - before if path == "solver" else 0,
                             host_ms_per_call=host_ms, peak_mib=peak))
    for row in rows:
        ref = poses.get(("reference", row["mode"]))
        mine = poses[row["path"], row["mode"]]
        row["max_difference_mm"] = (float("nan") if ref is None else
                                    1000 * (mine.float() - ref.float()).norm(dim=-1).max().item())
    return (rows, poses) if return_poses else rows


def meta_training_throughput(profile, pred: torch.Tensor, target: torch.Tensor, device, *, steps: int = 5,
                             settings=((8, 1), (64, 1), (8, 3), (64, 3))) -> list[dict]:
    """Task updates per second of meta-training (MetaFuse's pair model, the profile's task sizes and order) on the
    cached heatmaps ``pred``/``target`` (N, V, J, H, W) of a rig whose every camera pair is a task: one task at a time
    (``meta_train_looped``, the book's loop before batching, at the profile's tasks per step) and as one program for
    each (tasks per step, seeds) of ``settings``. Each outer step's time is the difference of a run of ``steps`` + 1
    and a run of 1 outer step (compilation and start-up cancel), after an untimed warm-up run. Rows: program, tasks,
    seeds, ms_per_step, task_updates_per_s."""
    m, device = profile.metafuse, torch.device(device)
    side, sigma = profile.studio.heatmap_px, profile.studio.heatmap_sigma_px
    kw = dict(views=range(pred.shape[1]), task_train=m.task_train, task_test=m.task_test, inner_lr=m.inner_lr,
              outer_lr=m.outer_lr, first_order=m.first_order, theta_step_px=maml.THETA_INNER_STEP_SIGMAS * sigma,
              progress=False)

    def per_step(make) -> float:
        make(1)()
        return 1e3 * max(wall_s(make(1 + steps), device) - wall_s(make(1), device), 0.0) / steps

    def looped(k):
        return lambda: maml.meta_train_looped(maml.pair_model("affine", side, sigma).to(device), pred, target,
                                              iterations=k, tasks_per_step=m.meta_tasks_per_step, **kw)

    ms = per_step(looped)
    rows = [dict(program="one task at a time (before batching)", tasks=m.meta_tasks_per_step, seeds=1,
                 ms_per_step=ms, task_updates_per_s=1e3 * m.meta_tasks_per_step / max(ms, 1e-9))]
    model = maml.pair_model("affine", side, sigma).to(device)
    for tasks, seeds in settings:
        params = training.stack_members([model] * seeds)

        def batched(k, tasks=tasks, seeds=seeds, params=params):
            return lambda: maml.meta_train_members(model, params, pred, target, seeds=list(range(seeds)), iterations=k,
                                                   tasks_per_step=tasks, **kw)

        ms = per_step(batched)
        rows.append(dict(program="tasks and seeds as one program", tasks=tasks, seeds=seeds, ms_per_step=ms,
                         task_updates_per_s=1e3 * tasks * seeds / max(ms, 1e-9)))
    return rows
