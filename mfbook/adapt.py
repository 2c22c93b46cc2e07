"""Your own cameras from the command line: adapt the meta-trained MetaFuse model to a rig file (:mod:`mfcore.adapt`),
with the book's on-disk cache (a second run on the same cameras renders nothing and trains nothing)::

    python -m mfbook.adapt path/to/rig.yaml --k 8 [--profile smoke] [--device auto] [--seed 0] [--trials 1]
                           [--out adapted.pt]

It prints the JDR table first and then saves the adapted fusion parameters, by default to
``_build/adapted/adapted_<rig>_k<K>.pt`` (an ignored folder). Bad input and an unwritable ``--out`` are one line,
``error: …``, and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mfcore import adapt
from mfcore.profiles import get_profile, resolve_device

from . import cache, progress
from .paths import REPO_ROOT

DEFAULT_OUT_DIR = REPO_ROOT / "_build" / "adapted"


def command_line(rig_path, k: int, profile: str = "smoke", device: str = "auto", seed: int = 0, out=None) -> str:
    """The shell command that adapts MetaFuse to the rig file ``rig_path`` (what chapter 8 tells a reader to run)."""
    parts = ["python", "-m", "mfbook.adapt", str(rig_path), "--k", str(k), "--profile", profile]
    if device != "auto":
        parts += ["--device", device]
    if seed != 0:
        parts += ["--seed", str(seed)]
    if out is not None:
        parts += ["--out", str(out)]
    return " ".join(parts)


def default_out(rig_name: str, k: int) -> Path:
    """``_build/adapted/adapted_<rig>_k<K>.pt`` in the repository (ignored by git)."""
    return DEFAULT_OUT_DIR / f"adapted_{re.sub(r'[^A-Za-z0-9_.-]+', '_', rig_name)}_k{k}.pt"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mfbook.adapt",
        description="Adapt the meta-trained MetaFuse model to your own cameras with K labelled frames (rendered in "
                    "the synthetic studio from your rig) and print its JDR against NoFusion.")
    parser.add_argument("rig", help="rig file (.yaml/.yml/.json), see mfcore/rigs/example_rig.yaml")
    parser.add_argument("--k", type=int, required=True, help="labelled frames for finetuning θ (1..the profile's pool)")
    parser.add_argument("--profile", default="smoke", help="sizes: smoke (CPU, minutes) or full (one GPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=1, help="independent draws of the K frames (JDR averaged)")
    parser.add_argument("--out", default=None,
                        help="where to save the adapted fusion parameters (default "
                             "_build/adapted/adapted_<rig>_k<K>.pt in the repository)")
    args = parser.parse_args(argv)
    cache.install()
    progress.install()
    try:
        prof = get_profile(args.profile)
        adapt.check_k(args.k, prof)
        device = resolve_device(args.device)
        result = adapt.adapt_to_rig(args.rig, args.k, prof, args.seed, device, trials=args.trials, progress=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    v = result.rig.num_views
    print(f"rig {result.rig.name!r}: {v} cameras, {v * (v - 1)} ordered pairs; profile {prof.name!r} on {device}; "
          f"K = {result.k} of a pool of {result.pool_frames} labelled frames; "
          f"{result.test_frames} test frames; {args.trials} trial(s)")
    print("JDR (fraction of joints within half a head size; synthetic studio data):")
    print(result.table().to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"finetuning θ: {result.mean_finetune_s:.2f} s per trial ({prof.metafuse.finetune_steps} Adam steps, "
          f"lr {prof.metafuse.finetune_lr:g}); ω_base unchanged", flush=True)
    out = Path(args.out) if args.out else default_out(result.rig.name, result.k)
    try:
        adapt.save_adapted(result.model, out)
    except OSError as err:
        print(f"error: cannot write the adapted parameters to {str(out)!r}: {err.strerror or err} (the table above "
              f"stands; give --out a writable path)", file=sys.stderr)
        return 2
    print(f"adapted fusion parameters saved to {out} (load with mfcore.adapt.load_adapted({str(out)!r}, "
          f"{str(args.rig)!r}))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
