"""Step time of NaiveFuse vs AffineFuse (fwd + bwd of Eq. (3) through Eq. (1)/(2)), and their ratio.

    python benchmarks/bench_fusion.py                  # CUDA if present: B=32, V=4, J=17, 64x64 heatmaps
    python benchmarks/bench_fusion.py --device cpu     # small CPU case (defaults shrink to 16x16, B=4)
    python benchmarks/bench_fusion.py --out bench.csv  # also write a tidy CSV (one row per method and phase)

Methods: NaiveFuse; AffineFuse (fast path of ``mfcore.fusion.affine_weight``); AffineFuse-reference (affine_grid +
grid_sample, for comparison); AffineFuse-higher-order (the twice-differentiable gather path used by second-order MAML).
Phases: ``fwd_bwd`` (forward, MSE, backward) and ``step`` (plus an Adam step), and ``infer`` (frozen model forward);
for AffineFuse also ``fwd_bwd_theta`` (omega_base frozen, as in meta-testing: what its gradient costs is the difference).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import fusion  # noqa: E402
from mfbook import speed  # noqa: E402


def theta_only_rows(args) -> list[dict]:
    """``fwd_bwd_theta`` for every AffineFuse method of ``args.methods``: forward, MSE and backward with
    ``omega_base`` frozen, as meta-testing trains it (only θ moves, MetaFuse Sec. 4.3), on the same model, inputs and
    autocast as :func:`mfbook.speed.fusion_step_times`' ``fwd_bwd``; the difference of the two is what the ``omega_base``
    gradient of Eq. (2) costs (meta-training, pre-training and AffineFuse^full pay it, finetuning does not)."""
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, args.views, args.joints, args.side, args.side, generator=g).to(device)  # (B, V, J, H, W)
    y = torch.rand(args.batch, args.views, args.joints, args.side, args.side, generator=g).to(device)
    amp = args.amp and device.type == "cuda"
    rows = []
    for method in (m for m in args.methods if m.startswith("AffineFuse")):
        model = speed._timing_model(method, args.views, args.side, device, args.seed)  # the model fwd_bwd times
        model.omega_base.requires_grad_(False)

        def fwd_bwd():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = fusion.fusion_mse(model(x), y)
            loss.backward()

        rows.append(dict(method=method, phase="fwd_bwd_theta",
                         ms=speed.time_ms(fwd_bwd, device, args.warmup, args.repeats),
                         device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                         batch=args.batch, views=args.views, joints=args.joints, heatmap_px=args.side, amp=amp,
                         ratio_to_naive=float("nan")))
        del model
    return rows


def bench(args) -> list[dict]:
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    if args.compile:
        fusion.use_compiled_kernels(True)
    rows = speed.fusion_step_times(torch.device(args.device), batch=args.batch, views=args.views, joints=args.joints,
                                   side=args.side, methods=args.methods, amp=args.amp, warmup=args.warmup,
                                   repeats=args.repeats, seed=args.seed)
    rows += theta_only_rows(args)
    for r in rows:
        r["compile"] = args.compile
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
