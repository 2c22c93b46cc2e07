"""Frames per second of the RPSM (PSM + refinement stages, Cross View Fusion Sec. 4): batched vs one frame at a time.

    python benchmarks/bench_rpsm.py                          # profile sizes on CUDA if present, else the smoke sizes
    python benchmarks/bench_rpsm.py --profile full           # 17³ grid, 10 stages, 64² heatmaps, B=64 (on one GPU)
    python benchmarks/bench_rpsm.py --grid-bins 16 --stages 3   # another grid or number of stages than the profile's
    python benchmarks/bench_rpsm.py --out bench_rpsm.csv     # also a tidy CSV, one row per mode

Input: synthetic heatmaps (Gaussians at the projected joints of test motions, jittered by 1 px per 64 px of heatmap
side, 5 % of channels misplaced)
on the H36M-like rig, limb statistics from training motions. Both modes run the same ``mfcore.pictorial.rpsm`` in this
process: "batched" feeds ``--batch`` frames per call, "single" one frame per call (live use: a new frame arrives, its
pose is wanted now). Prints both rates and their ratio, and the peak GPU memory of a batched call. Both modes start
after a warm-up call, so the PSM's offset table (``pictorial.lattice_sq_offsets``, built once per grid) is cached, as
it is for every call after the first in a session.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import motion, pictorial, studio  # noqa: E402
from mfcore.profiles import get_profile, resolve_device  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(heatmaps, P, stats, sizes, batch: int, device) -> tuple[float, torch.Tensor]:
    """Seconds to estimate all frames of ``heatmaps`` in calls of ``batch`` frames (after a warm-up call), and poses."""
    pictorial.estimate_3d("rpsm", heatmaps[:batch], P, stats, sizes, batch_frames=batch)
    _sync(device)
    out = []
    t0 = time.perf_counter()
    for start in range(0, heatmaps.shape[0], batch):
        out.append(pictorial.estimate_3d("rpsm", heatmaps[start:start + batch], P, stats, sizes, batch_frames=batch))
    _sync(device)
    return time.perf_counter() - t0, torch.cat(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default=None, help="smoke or full (default: full on CUDA, smoke on CPU)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--frames", type=int, default=None, help="frames timed in batched mode (profile bench_frames)")
    ap.add_argument("--single-frames", type=int, default=None,
                    help="frames timed one frame per call (default min(frames, 32))")
    ap.add_argument("--batch", type=int, default=None, help="frames per batched call (profile bench_batch)")
    ap.add_argument("--grid-bins", type=int, default=None, help="PSM bins per axis (profile grid_bins)")
    ap.add_argument("--stages", type=int, default=None, help="RPSM refinement stages (profile rpsm_stages)")
    ap.add_argument("--rig", default="h36m", help="rig name or file (default h36m: 4 views)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write a CSV here")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    profile = get_profile(args.profile or ("full" if device.type == "cuda" else "smoke"))
    sizes, hm_px = profile.pictorial, profile.studio.heatmap_px
    if args.grid_bins is not None or args.stages is not None:
        sizes = dataclasses.replace(sizes, grid_bins=args.grid_bins or sizes.grid_bins,
                                    rpsm_stages=sizes.rpsm_stages if args.stages is None else args.stages)
    frames = args.frames or sizes.bench_frames
    batch = min(args.batch or sizes.bench_batch, frames)
    single_frames = min(args.single_frames or min(frames, 32), frames)

    rig = studio.get_rig(args.rig).at_resolution(hm_px)
    P = rig.projections().float().to(device)  # (V, 3, 4) at heatmap resolution
    poses, _ = motion.sample_poses("test", frames, args.seed)
    train, _ = motion.sample_poses("train", 2000, args.seed + 1)
    stats = pictorial.limb_length_stats(train)
    heatmaps = pictorial.render_gaussian_heatmaps(poses.to(device), P, hm_px, profile.studio.heatmap_sigma_px,
                                                  jitter_px=hm_px / 64, outlier_fraction=0.05, seed=args.seed)
    V, J = heatmaps.shape[1:3]

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_batched, est_batched = run(heatmaps, P, stats, sizes, batch, device)
    peak_mib = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    t_single, est_single = run(heatmaps[:single_frames], P, stats, sizes, 1, device)  # one frame per call
    fps_b, fps_s = frames / t_batched, single_frames / t_single
    err_mm = 1000 * (est_batched.cpu() - poses).norm(dim=-1).mean().item()
    diff_mm = 1000 * (est_batched[:single_frames] - est_single).norm(dim=-1).max().item()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"RPSM on {name}: profile {profile.name}, {V} views, {J} joints, {hm_px}² heatmaps, grid {sizes.grid_bins}³ "
          f"over {sizes.cube_size_mm:.0f} mm, {sizes.rpsm_stages} stages of {sizes.rpsm_bins}³, "
          f"antialias {sizes.antialias}")
    print(f"  batched (B={batch}): {frames} frames in {t_batched:.3f} s = {fps_b:.1f} frames/s"
          f"{'' if peak_mib != peak_mib else f', peak GPU memory {peak_mib:.0f} MiB'}")
    print(f"  one frame per call: {single_frames} frames in {t_single:.3f} s = {fps_s:.1f} frames/s "
          f"({1000 * t_single / single_frames:.1f} ms per frame)")
    print(f"  ratio batched / one-at-a-time: {fps_b / fps_s:.1f}x")
    print(f"  batched vs one-at-a-time poses: max difference {diff_mm:.3g} mm; MPJPE on these synthetic frames "
          f"{err_mm:.1f} mm")
    if args.out:
        import pandas as pd

        common = dict(device=name, profile=profile.name, views=V, joints=J, heatmap_px=hm_px, grid_bins=sizes.grid_bins,
                      stages=sizes.rpsm_stages, rpsm_bins=sizes.rpsm_bins, antialias=sizes.antialias)
        pd.DataFrame([
            dict(mode="batched", batch=batch, frames=frames, seconds=t_batched, frames_per_s=fps_b, peak_mib=peak_mib,
                 mpjpe_mm=err_mm, max_diff_to_single_mm=diff_mm, **common),
            dict(mode="single", batch=1, frames=single_frames, seconds=t_single, frames_per_s=fps_s,
                 peak_mib=float("nan"), mpjpe_mm=float("nan"), max_diff_to_single_mm=0.0, **common),
        ]).to_csv(args.out, index=False, float_format="%.6g")
        print(f"  wrote {args.out}")


if __name__ == "__main__":
    main()
