"""What one Fig. 7 setting costs besides its finetuning, at the full profile's shapes: the code path before and after
the speed change of ``mfcore.fewshot`` (the branch speed-fewshot: resident target heatmaps, maps and maxima on the
device, ``fusion.for_rig`` on the device), on random tensors.

    python benchmarks/bench_fewshot_setting.py                 # CUDA if present, else the CPU
    python benchmarks/bench_fewshot_setting.py --device cpu    # the CPU's share only (copies to the "device" vanish)

Shapes: a 4-view rig (12 ordered pairs) at 64² heatmaps, 17 joints; test 300 frames, stress 100, pool 1000.
Per method kind (NaiveFuse: fused maps cached as float16, 223 MB; AffineFuse: θ and ω_base cached, the maps fused
again), the steps that do not depend on the finetuning:

* before: the fusion model made on the CPU and copied to the device (``for_rig``: 805 MB of NaiveFuse weights, device
  -> CPU -> device), the fused maps of both splits copied to the CPU as float32 and rounded to float16 there, the
  cache entry (content hash, ``torch.save``), each split read back as float32 on the CPU and copied to the device for
  the maxima; AffineFuse fused its splits with two rebuilt models (the weights materialised twice; not timed here);
* after: the model made and filled on the device, the maps rounded there, one copy to the CPU for the cache entry,
  the maxima on the device (and cached: a few hundred kB, not timed).

The pool's copy to the device (2.2 GB, NaiveFuse^full and K-shot gathers) is not in either column: before, it was
part of ``finetune_s``; after, it happens once per target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfbook.cache import _content_hash  # noqa: E402
from mfcore import metrics  # noqa: E402
from mfcore.files import atomic_torch_save  # noqa: E402

V, J, SIDE, IMAGE_PX, TEST, STRESS = 4, 17, 64, 256, 300, 100
PAIRS = V * (V - 1)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    z = SIDE * SIDE
    pretrained = torch.rand(1, z, z, device=device)  # a NaiveFuse pair model's weight
    pick = torch.zeros(PAIRS, dtype=torch.long)
    fused = {s: torch.rand(n, V, J, SIDE, SIDE, device=device) for s, n in (("test", TEST), ("stress", STRESS))}
    tmp = Path(tempfile.mkdtemp())

    def for_rig_before():
        w = torch.zeros(PAIRS, z, z)
        w.copy_(pretrained[pick.to(device)].to(w))
        return w.to(device)

    def for_rig_after():
        w = torch.zeros(PAIRS, z, z, device=device)
        torch.index_select(pretrained, 0, pick.to(device), out=w)
        return w

    def entry(maps):
        cpu = {k: v.cpu() for k, v in maps.items()}
        atomic_torch_save({"content_hash": _content_hash(cpu), "tensors": cpu}, tmp / "entry.pt")

    def maps_before(cache: bool):
        half = {s: f.to("cpu").half() for s, f in fused.items()}  # fuse_frames' output came back as float32
        if cache:
            entry(half)
        return [metrics.heatmap_peaks_px(h.float().to(device), IMAGE_PX).cpu() for h in half.values()]

    def maps_after(cache: bool):
        half = {s: f.half() for s, f in fused.items()}
        if cache:
            entry(half)
        return [metrics.heatmap_peaks_px(h, IMAGE_PX).cpu() for h in half.values()]

    rows = [("for_rig (NaiveFuse, 12 pairs of 4096²)", for_rig_before, for_rig_after),
            ("maps + peaks (AffineFuse: no maps cached)", lambda: maps_before(False), lambda: maps_after(False)),
            ("maps + cache entry + peaks (NaiveFuse)", lambda: maps_before(True), lambda: maps_after(True)),
            ("  of which the cache entry (hash + save, 223 MB)",
             lambda: entry({s: f.half() for s, f in fused.items()}), None)]
    print(f"device {device}; seconds per setting (mean of {args.repeats})")
    for name, before, after in rows:
        b = timed(before, device, args.repeats)
        a = timed(after, device, args.repeats) if after is not None else float("nan")
        print(f"{name:55s} before {b:6.3f}  after {a:6.3f}")


if __name__ == "__main__":
    main()
