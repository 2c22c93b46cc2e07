"""Where the seconds of a heatmaps cache entry go (mfcore.backbone.cached_heatmaps -> mfbook.cache.cached), on this CPU,
at the full profile's shapes: entry format 1 (float16 targets stored, one sha256, zip CRC32) against format 2 (the
targets' factors stored, chunked parallel sha256, no CRC32). Random tensors stand in for the backbone's output (the
cache does not look at values); rendering and the backbone are not timed (they are the same in both formats).

    PYTHONPATH=. python benchmarks/bench_cache.py --frames 150      # a quarter of the dome's 600 meta-training frames

Stages: "build" (per-batch copies of pred/targets off the device and their concatenation), "hash", "save", "load"
(torch.load of the file just written), "verify" (hash on load), "return" (float32 tensors of a call: pred.float() and
the targets). Prints one row per format and stage with seconds and the entry's bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfbook import cache  # noqa: E402
from mfcore import backbone, data  # noqa: E402
from mfcore.files import atomic_torch_save  # noqa: E402


def _old_content_hash(tensors):  # format 1: one sha256 over every tensor's bytes
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def run(fmt: int, frames: int, views: int, joints: int, side: int, sigma: float, batch: int, folder: Path) -> dict:
    g = torch.Generator().manual_seed(0)
    t = {k: 0.0 for k in ("build", "hash", "save", "load", "verify", "return")}
    pred16 = None
    parts = {"pred": [], "target": [], "gy": [], "gx": []}
    for s in range(0, frames, batch):
        b = min(batch, frames - s)
        pred = torch.rand(b, views, joints, side, side, generator=g)  # the backbone's float32 output
        joints_hm = torch.rand(b, views, joints, 2, generator=g) * (side + 16) - 8
        heatmaps = data.gaussian_heatmaps(joints_hm, side, sigma)  # batch.heatmaps (computed in both formats)
        t0 = time.perf_counter()
        if fmt == 1:
            parts["pred"].append(pred.half().cpu())
            parts["target"].append(heatmaps.half().cpu())
        else:
            if pred16 is None:
                pred16 = torch.empty(frames, *pred.shape[1:], dtype=torch.float16)
            pred16[s:s + b].copy_(pred.half())
            gy, gx = data.gaussian_factors(joints_hm, side, sigma)
            parts["gy"].append(gy.cpu())
            parts["gx"].append(gx.cpu())
        t["build"] += time.perf_counter() - t0
        del pred, heatmaps
    t0 = time.perf_counter()
    if fmt == 1:
        tensors = {"pred": torch.cat(parts["pred"]), "target": torch.cat(parts["target"])}
    else:
        tensors = {"pred": pred16, "target_gy": torch.cat(parts["gy"]), "target_gx": torch.cat(parts["gx"])}
    del parts
    t["build"] += time.perf_counter() - t0
    content_hash = _old_content_hash if fmt == 1 else cache._content_hash
    t0 = time.perf_counter()
    digest = content_hash(tensors)
    t["hash"] = time.perf_counter() - t0
    path = folder / f"bench-format{fmt}.pt"
    t0 = time.perf_counter()
    atomic_torch_save({"content_hash": digest, "tensors": tensors}, path, crc32=(fmt == 1))
    t["save"] = time.perf_counter() - t0
    nbytes = path.stat().st_size
    del tensors
    t0 = time.perf_counter()
    entry = torch.load(path, map_location="cpu", weights_only=True)
    t["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert content_hash(entry["tensors"]) == entry["content_hash"]
    t["verify"] = time.perf_counter() - t0
    e = entry["tensors"]
    t0 = time.perf_counter()
    if fmt == 1:
        out = {"pred": e["pred"].float(), "target": e["target"].float()}
    else:
        out = {"pred": e["pred"].float(), "target": backbone.gaussian_targets(e["target_gy"], e["target_gx"])}
    t["return"] = time.perf_counter() - t0
    del out, entry, e
    path.unlink()
    return {**t, "bytes": nbytes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=150, help="frames (full dome meta-training entry: 600)")
    p.add_argument("--views", type=int, default=20)
    p.add_argument("--side", type=int, default=64, help="heatmap side (full: 64)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=2, help="best of this many runs per format")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"frames={args.frames} views={args.views} side={args.side} torch threads={args.threads} "
          f"hash workers={cache._hash_workers()}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        for fmt in (1, 2):
            runs = [run(fmt, args.frames, args.views, 17, args.side, 2.0, 64, Path(folder)) for _ in range(args.repeats)]
            best = {k: min(r[k] for r in runs) for k in runs[0]}
            total = sum(v for k, v in best.items() if k != "bytes")
            print(f"format {fmt}: " + " ".join(f"{k}={v:.3f}s" for k, v in best.items() if k != "bytes")
                  + f" total={total:.3f}s bytes={best['bytes']:,}", flush=True)


if __name__ == "__main__":
    main()
