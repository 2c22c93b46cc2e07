"""Seconds of ``python -m mfbook.lift`` on a long recording: reading the detection files, then fusing and lifting every
frame (issue 30: a 10,000-frame 4-camera input runs in minutes on a GPU and finishes on a CPU).

    python benchmarks/bench_lift.py --profile full --frames 10000            # on the GPU machine
    python benchmarks/bench_lift.py --profile full --frames 64 --device cpu  # CPU frames/s, to extrapolate

Input: test motions seen by the H36M-like rig of subject 9 (4 real 1000² sensors), their joints projected into every
sensor, jittered by 2 px and written as one COCO-17 keypoints file per camera (a COCO detector's layout, mapped onto
the book's body by the reader; its eyes 6 px either side of the head top, so that the mapping's head top, mid-eyes,
is the head top), all in a temporary folder. Times the command's own steps in this process: reading and
matching the files, then :func:`mfcore.lift.lift` with each ``--fusion`` asked for (default none and epipolar).
Prints seconds, frames/s and the MPJPE of RPSM on these synthetic frames; ``--out`` writes a tidy CSV.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfbook import chapter, progress  # noqa: E402
from mfbook import lift as lift_cli  # noqa: E402
from mfcore import detections, geometry, lift, motion, studio  # noqa: E402
from mfcore.profiles import get_profile, resolve_device  # noqa: E402


def write_recording(rig: studio.Rig, poses_m: torch.Tensor, folder: Path, seed: int) -> list[str]:
    """One COCO-17 keypoints file per camera of ``rig`` (views at any size) with the projected joints, jittered."""
    rng = np.random.default_rng(seed)
    x = geometry.project(rig.projections(dtype=torch.float64), poses_m.double()).numpy()  # (N, V, 17, 2) view px
    args = []
    for v, cam in enumerate(rig.cameras):
        xy = detections.view_to_sensor_px(x[:, v], detections.sensor_window(rig, v)[0], rig.image_px)
        xy = xy + rng.normal(0.0, 2.0, xy.shape)
        kxy, ks = detections.from_h36m(xy, np.full(xy.shape[:2], 0.9), "coco17")
        top = detections.H36M17.index("head_top")
        for k, name in enumerate(detections.COCO17):  # eyes 6 px either side of the head top: mid-eyes is the head top
            if name.endswith("_eye"):
                kxy[:, k] = xy[:, top] + np.array([-6.0 if name.startswith("left") else 6.0, 0.0])
                ks[:, k] = 0.9
        path = detections.write_coco(folder / f"{cam.name}.json", kxy, ks, [f"{cam.name}/{i:06d}.jpg"
                                                                            for i in range(len(xy))], "coco17")
        args.append(f"{cam.name}={path}")
    return args


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--fusion", nargs="+", default=["none", "epipolar"], choices=lift.FUSIONS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write a CSV here")
    args = ap.parse_args(argv)
    prof, device = get_profile(args.profile), resolve_device(args.device)
    chapter.set_seed(args.seed, device)  # every CPU core, as the command (it writes no cache entry)
    progress.install()
    rig = studio.get_rig("h36m_s9").at_resolution(prof.studio.image_px)
    poses, _ = motion.sample_poses("test", args.frames, args.seed)
    rows = []
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    with tempfile.TemporaryDirectory() as tmp:
        files = write_recording(rig, poses, Path(tmp), args.seed)
        t0 = time.perf_counter()
        recording = lift_cli.read_recording(rig, files, None, "index", 0.0)
        read_s = time.perf_counter() - t0
        print(f"read and matched {args.frames} frames × {rig.num_views} cameras (COCO-17) in {read_s:.1f} s")
        stats = lift.limb_stats(prof, args.seed)
        for fusion in args.fusion:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            out = lift.lift(recording, prof, fusion, device, stats=stats, seed=args.seed)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
            ok = ~np.isnan(out.points_m["rpsm"]).any(-1)
            mpjpe = 1000 * float(np.linalg.norm(out.points_m["rpsm"] - poses.numpy(), axis=-1)[ok].mean())
            print(f"lift --fusion {fusion} on {name}, profile {prof.name}: {seconds:.1f} s = "
                  f"{args.frames / seconds:.1f} frames/s ({args.frames} frames, RANSAC + RPSM); RPSM MPJPE "
                  f"{mpjpe:.1f} mm on these synthetic COCO-17 detections")
            rows.append(dict(fusion=fusion, frames=args.frames, views=rig.num_views, profile=prof.name, device=name,
                             read_s=read_s, lift_s=seconds, frames_per_s=args.frames / seconds, rpsm_mpjpe_mm=mpjpe))
    if args.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.6g")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
