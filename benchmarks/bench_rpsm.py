"""Frames per second of the RPSM (PSM + refinement stages, Cross View Fusion Sec. 4): the reference
``mfcore.pictorial.rpsm`` against the ``mfcore.rpsm_solver.RPSMSolver`` built once per rig, batched and one frame
per call.

    python benchmarks/bench_rpsm.py                          # profile sizes on CUDA if present, else the smoke sizes
    python benchmarks/bench_rpsm.py --profile full --device cuda   # 15³ grid, 10 stages, 64² heatmaps, B=64
    python benchmarks/bench_rpsm.py --grid-bins 16 --stages 3   # another grid or number of stages than the profile's
    python benchmarks/bench_rpsm.py --paths solver           # the solver alone (the reference is slow one at a time)
    python benchmarks/bench_rpsm.py --out bench_rpsm.csv     # also a tidy CSV, one row per path and mode

Input: synthetic heatmaps (Gaussians at the projected joints of test motions, jittered by 1 px per 64 px of heatmap
side, 5 % of channels misplaced) on the H36M-like rig, limb statistics from training motions. Every path and mode runs
in this process on the same heatmaps (``mfbook.speed.rpsm_speed``): "batched" feeds ``--batch`` frames per call, "one
frame per call" one frame per call (live use: a new frame arrives, its pose is wanted now). The reference is timed
after one warm-up call per mode, the solver after two untimed passes (a call shape's first sighting runs eagerly, the
second captures a CUDA graph): the steady state of a session; the solver's one-off warm-up is printed beside. Prints
the rates, their ratios, the largest difference between the two paths' poses and the MPJPE against the truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfbook import chapter, speed  # noqa: E402
from mfcore import motion, pictorial, studio  # noqa: E402
from mfcore.profiles import DEVICE_CHOICES, PROFILES, get_profile, resolve_device  # noqa: E402


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=None, choices=sorted(PROFILES),
                    help="smoke or full (default: full on CUDA, smoke on CPU)")
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    ap.add_argument("--frames", type=positive, default=None, help="frames timed in batched mode (profile bench_frames)")
    ap.add_argument("--single-frames", type=positive, default=None,
                    help="frames timed one frame per call (default min(frames, 32))")
    ap.add_argument("--batch", type=positive, default=None, help="frames per batched call (profile bench_batch)")
    ap.add_argument("--grid-bins", type=positive, default=None, help="PSM bins per axis (profile grid_bins)")
    ap.add_argument("--stages", type=int, default=None, help="RPSM refinement stages (profile rpsm_stages)")
    ap.add_argument("--paths", nargs="+", default=list(speed.RPSM_PATHS), choices=speed.RPSM_PATHS)
    ap.add_argument("--rig", default="h36m", help="rig name or file (default h36m: 4 views)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write a CSV here")
    args = ap.parse_args(argv)
    try:
        device = resolve_device(args.device)
        profile = get_profile(args.profile or ("full" if device.type == "cuda" else "smoke"))
        if args.stages is not None and args.stages < 0:
            raise ValueError(f"--stages must be >= 0, got {args.stages}")
        if args.grid_bins is not None and args.grid_bins < 2:
            raise ValueError(f"--grid-bins must be >= 2, got {args.grid_bins}")
        rig = studio.get_rig(args.rig).at_resolution(profile.studio.heatmap_px)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    sizes, hm_px = profile.pictorial, profile.studio.heatmap_px
    sizes = dataclasses.replace(sizes, grid_bins=args.grid_bins or sizes.grid_bins,
                                rpsm_stages=sizes.rpsm_stages if args.stages is None else args.stages)
    frames = args.frames or sizes.bench_frames
    batch = min(args.batch or sizes.bench_batch, frames)
    single_frames = min(args.single_frames or min(frames, 32), frames)

    P = rig.projections().float().to(device)  # (V, 3, 4) at heatmap resolution
    poses, _ = motion.sample_poses("test", frames, args.seed)
    train, _ = motion.sample_poses("train", 2000, args.seed + 1)
    stats = pictorial.limb_length_stats(train)
    heatmaps = pictorial.render_gaussian_heatmaps(poses.to(device), P, hm_px, profile.studio.heatmap_sigma_px,
                                                  jitter_px=hm_px / 64, outlier_fraction=0.05, seed=args.seed)
    V, J = heatmaps.shape[1:3]
    rows, estimates = speed.rpsm_speed(heatmaps, P, stats, sizes, device, batch=batch, single_frames=single_frames,
                                       paths=args.paths, return_poses=True)

    name = chapter.device_name(device)
    print(f"RPSM on {name}: profile {profile.name}, {V} views, {J} joints, {hm_px}² heatmaps, grid {sizes.grid_bins}³ "
          f"over {sizes.cube_size_mm:.0f} mm, {sizes.rpsm_stages} stages of {sizes.rpsm_bins}³, "
          f"antialias {sizes.antialias}")
    rate = {(r["path"], r["mode"]): r["frames_per_s"] for r in rows}
    for r in rows:
        extra = (f", host step {r['host_ms_per_call']:.2f} ms per call, warm-up {r['warmup_s']:.2f} s, "
                 f"{r['graphs']} CUDA graphs" if r["path"] == "solver" else "")
        diff = (f", max difference to the reference {r['max_difference_mm']:.3g} mm"
                if r["path"] == "solver" and r["max_difference_mm"] == r["max_difference_mm"] else "")
        peak = f", peak GPU memory {r['peak_mib']:.0f} MiB" if r["peak_mib"] == r["peak_mib"] else ""
        print(f"  {r['path']:9s} {r['mode']:18s} (B={r['batch']}): {r['frames']} frames in {r['seconds']:.3f} s = "
              f"{r['frames_per_s']:.1f} frames/s ({r['ms_per_frame']:.2f} ms per frame){extra}{diff}{peak}")
    for path in args.paths:
        print(f"  {path}: batched / one frame per call {rate[path, 'batched'] / rate[path, 'one frame per call']:.1f}x")
    if set(args.paths) == set(speed.RPSM_PATHS):
        for mode in speed.RPSM_MODES:
            print(f"  solver / reference, {mode}: {rate['solver', mode] / rate['reference', mode]:.1f}x")
    best = estimates[args.paths[-1], "batched"]
    err_mm = 1000 * (best.cpu() - poses).norm(dim=-1).mean().item()
    print(f"  MPJPE on these synthetic frames ({args.paths[-1]}, batched): {err_mm:.1f} mm")
    common = dict(device=name, profile=profile.name, views=V, joints=J, heatmap_px=hm_px, grid_bins=sizes.grid_bins,
                  stages=sizes.rpsm_stages, rpsm_bins=sizes.rpsm_bins, antialias=sizes.antialias)
    table = [dict(r, mpjpe_mm=err_mm if (r["path"], r["mode"]) == (args.paths[-1], "batched") else float("nan"),
                  **common) for r in rows]
    if args.out:
        import pandas as pd

        pd.DataFrame(table).to_csv(args.out, index=False, float_format="%.6g")
        print(f"  wrote {args.out}")
    return table


if __name__ == "__main__":
    main()
