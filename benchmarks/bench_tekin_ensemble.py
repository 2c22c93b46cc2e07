"""Step time of Tekin's networks trained as one batched ensemble against one network, and the chapter's training cost.

A step of one small fusion network is launch-bound on a GPU, so chapter 06 trains the seeds (and fusion settings) of
an architecture as the members of one program (:mod:`mfcore.trainable_fusion.layers`). This measures, with the real
training loop (:func:`mfcore.trainable_fusion.train_fusion_net`) on random samples at the profile's sizes:

* per configuration (TrainableFusion, ImageOnly, CMOnly): the step time of one network and of an ensemble of N seeds,
  and their ratio (the target for N = 3: at most 1.5× one network's step);
* the step time of each of the chapter's four programs as the profile sets them (the fusion networks with the sweep,
  ImageOnly at every learning-curve size, CMOnly, the lifter) and, times the profile's steps, the chapter's estimated
  training seconds: the number to check before a full run (the profile's knobs: steps, batch_size, sweep_seeds,
  curve_points, grouped_conv: the fusion program is also timed with the other convolution mode).

A step's time is the difference between two training runs of ``warmup`` and ``warmup + steps`` steps, divided by
``steps`` (the set-up of a run cancels).

    python benchmarks/bench_tekin_ensemble.py --profile full --device cuda
    python benchmarks/bench_tekin_ensemble.py --profile smoke --device cpu --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import trainable_fusion as tf  # noqa: E402
from mfcore.profiles import DEVICE_CHOICES, PROFILES, get_profile, resolve_device  # noqa: E402

J = 17


def random_samples(profile, n: int, device: torch.device) -> tf.MonocularSamples:
    """``n`` random samples at the profile's crop sizes, stored as the chapter stores them (float16 on CUDA)."""
    crop, crop_hm = tf.crop_sides_px(profile)
    g = torch.Generator().manual_seed(0)
    store = torch.float16 if device.type == "cuda" else torch.float32
    return tf.MonocularSamples(torch.rand(n, 3, crop, crop, generator=g).to(device, store),
                               torch.rand(n, J, crop_hm, crop_hm, generator=g).to(device, store),
                               (0.3 * torch.randn(n, J, 3, generator=g)).to(device),
                               (torch.rand(n, J, 2, generator=g) * (crop - 1)).to(device))


def ms_per_step(build, data, profile, device, steps: int, warmup: int, **train_kw) -> float:
    """Wall ms of one Adam step of the ensemble ``build()`` makes (two runs, the set-up cancels)."""
    sizes = profile.trainable_fusion
    seconds = []
    for n in (warmup, warmup + steps):
        net = build()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        tf.train_fusion_net(net, data, steps=n, batch_size=sizes.batch_size, lr=sizes.lr, fusion_lr=sizes.fusion_lr,
                            device=device, amp=device.type == "cuda", record_every=sizes.record_every,
                            progress=False, **train_kw)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - t0)
    return 1000 * max(seconds[1] - seconds[0], 0.0) / steps


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke", choices=sorted(PROFILES))
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    ap.add_argument("--members", type=int, default=3, help="seeds in the ensemble compared with one network")
    ap.add_argument("--steps", type=int, default=30, help="timed Adam steps per measurement")
    ap.add_argument("--warmup", type=int, default=5, help="untimed Adam steps before them")
    ap.add_argument("--out", default="", help="optional CSV path")
    args = ap.parse_args(argv)
    if args.members < 2 or args.steps < 1 or args.warmup < 1:
        print(f"error: --members must be >= 2 and --steps, --warmup >= 1; got {args.members}, {args.steps}, "
              f"{args.warmup}", file=sys.stderr)
        raise SystemExit(2)
    profile = get_profile(args.profile)
    device = resolve_device(args.device)
    sizes = profile.trainable_fusion
    data = random_samples(profile, 4 * sizes.batch_size, device)
    dev_name = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    rows = []

    def add(kind, program, members, ms, est_s=float("nan"), note=""):
        rows.append(dict(device=dev_name, profile=profile.name, kind=kind, program=program, members=members,
                         batch_size=sizes.batch_size, ms_per_step=ms, estimated_s=est_s, note=note))
        unit = "× one network" if kind == "ratio" else "ms/step"
        print(f"{kind:9s} {program:38s} M={members:3d}  {ms:9.2f} {unit}" +
              (f"  ≈ {est_s:7.1f} s for {sizes.steps} steps" if est_s == est_s else ""), flush=True)

    # the first training run of a process pays one-off costs (imports, kernel selection): not part of any step
    ms_per_step(lambda: tf.build_fusion_net("CMOnly", profile, seeds=(0,)), data, profile, device, 1, 1)
    # one network against an ensemble of N seeds, per configuration
    for method in ("TrainableFusion", "ImageOnly", "CMOnly"):
        one = ms_per_step(lambda: tf.build_fusion_net(method, profile, seeds=(0,)), data, profile, device, args.steps,
                          args.warmup)
        many = ms_per_step(lambda: tf.build_fusion_net(method, profile, seeds=tuple(range(args.members))), data,
                           profile, device, args.steps, args.warmup)
        add("one", method, 1, one)
        add("ensemble", method, args.members, many)
        add("ratio", method, args.members, many / one if one > 0 else float("nan"),
            note=f"ensemble of {args.members} / one network (target ≤ 1.5 for 3)")

    # the chapter's four programs as the profile sets them
    seeds = list(range(sizes.seeds))
    plan = tf.fusion_family_plan(seeds, seeds[:sizes.sweep_seeds], sizes.layers, sizes.lambda_alpha)
    curve = [n for n in (sizes.train_frames // 2**k for k in range(sizes.curve_points)) for _ in seeds]
    programs = [
        ("fusion networks", lambda: tf.build_fusion_family(profile, plan.seed.tolist(), plan.beta.tolist()),
         dict(lambda_alpha=plan.lambda_alpha.tolist())),
        ("ImageOnly (learning curve)",
         lambda: tf.build_fusion_net("ImageOnly", profile, seeds=seeds * sizes.curve_points),
         dict(train_samples=[None if n == sizes.train_frames else min(n, len(data)) for n in curve])),
        ("CMOnly", lambda: tf.build_fusion_net("CMOnly", profile, seeds=seeds), {}),
        ("Perfect2DLifter", lambda: tf.build_perfect_lifter(profile, seeds), {}),
    ]
    total = 0.0
    for name, build, kw in programs:
        ms = ms_per_step(build, data, profile, device, args.steps, args.warmup, **kw)
        total += ms * sizes.steps / 1000
        add("chapter", name, build().members, ms, ms * sizes.steps / 1000)
        if name == "fusion networks":  # the other convolution mode, for the profile's grouped_conv knob
            other = dataclasses.replace(profile, trainable_fusion=dataclasses.replace(
                sizes, grouped_conv=not sizes.grouped_conv))
            ms_other = ms_per_step(lambda: tf.build_fusion_family(other, plan.seed.tolist(), plan.beta.tolist()),
                                   data, other, device, args.steps, args.warmup, **kw)
            mode = "one dense convolution per member" if sizes.grouped_conv else "grouped convolutions"
            add("variant", f"fusion networks, {mode}", build().members, ms_other, ms_other * sizes.steps / 1000,
                note=f"trainable_fusion.grouped_conv = {not sizes.grouped_conv}")
    add("chapter", "all four programs", len(plan) + len(curve) + 2 * len(seeds), 1000 * total / sizes.steps, total,
        note="estimated training seconds of chapter 06 (without rendering, evaluation, figures)")
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    return df


if __name__ == "__main__":
    main()
