"""Step time of NaiveFuse vs AffineFuse (fwd + bwd of Eq. (3) through Eq. (1)/(2)), and their ratio.

    python benchmarks/bench_fusion.py                  # CUDA if present: B=32, V=4, J=17, 64x64 heatmaps
    python benchmarks/bench_fusion.py --device cpu     # small CPU case (defaults shrink to 16x16, B=4)
    python benchmarks/bench_fusion.py --out bench.csv  # also write a tidy CSV (one row per method and phase)

Methods: NaiveFuse; AffineFuse (fast path of ``mfcore.fusion.affine_weight``); AffineFuse-reference (affine_grid +
grid_sample, for comparison); AffineFuse-higher-order (the twice-differentiable gather path used by second-order MAML).
Phases: ``fwd_bwd`` (forward, MSE, backward) and ``step`` (plus an Adam step), and ``infer`` (frozen model forward).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import fusion  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device: torch.device, warmup: int, repeats: int) -> float:
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


def make_model(method: str, views: int, side: int, device: torch.device, seed: int):
    if method == "NaiveFuse":
        model = fusion.NaiveFuse(views, side)
        with torch.no_grad():
            model.weight.normal_(0, 1e-3, generator=torch.Generator().manual_seed(seed))
    else:
        model = fusion.AffineFuse(views, side)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model.omega_base.normal_(0, 1e-2, generator=g)
            model.theta.add_(0.05 * torch.randn(model.theta.shape, generator=g))
        model.higher_order = method == "AffineFuse-higher-order"
    return model.to(device)


def bench(args) -> list[dict]:
    device = torch.device(args.device)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, args.views, args.joints, args.side, args.side, generator=g).to(device)
    y = torch.rand(args.batch, args.views, args.joints, args.side, args.side, generator=g).to(device)
    amp = args.amp and device.type == "cuda"
    if args.compile:
        fusion.use_compiled_kernels(True)
    rows = []
    for method in args.methods:
        model = make_model(method, args.views, args.side, device, args.seed)
        if method == "AffineFuse-reference":
            model.pair_weights = lambda m=model: fusion.affine_weight_reference(m.omega_base, m.theta)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

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
            ms = time_ms(fn, device, args.warmup, args.repeats)
            rows.append(dict(method=method, phase=phase, ms=ms))
        model.freeze()
        rows.append(dict(method=method, phase="infer", ms=time_ms(infer, device, args.warmup, args.repeats)))
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    naive = {r["phase"]: r["ms"] for r in rows if r["method"] == "NaiveFuse"}
    for r in rows:
        r.update(device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", batch=args.batch,
                 views=args.views, joints=args.joints, heatmap_px=args.side, amp=amp, compile=args.compile,
                 ratio_to_naive=r["ms"] / naive[r["phase"]] if r["phase"] in naive else float("nan"))
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--joints", type=int, default=17)
    p.add_argument("--side", type=int, default=None, help="heatmap side (64 on CUDA, 16 on CPU by default)")
    p.add_argument("--methods", nargs="+", default=["NaiveFuse", "AffineFuse", "AffineFuse-reference"],
                   choices=["NaiveFuse", "AffineFuse", "AffineFuse-reference", "AffineFuse-higher-order"])
    p.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 instead of bf16 autocast on CUDA")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls")
    p.add_argument("--compile", action="store_true", help="torch.compile the AffineFuse chunk kernels")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="CSV path")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available; use --device cpu")
    args.batch = args.batch or (32 if cuda else 4)
    args.side = args.side or (64 if cuda else 16)
    rows = bench(args)
    print(f"{'method':26s} {'phase':8s} {'ms':>10s} {'x naive':>8s}")
    for r in rows:
        print(f"{r['method']:26s} {r['phase']:8s} {r['ms']:10.3f} {r['ratio_to_naive']:8.2f}")
    if args.out:
        import pandas as pd

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
