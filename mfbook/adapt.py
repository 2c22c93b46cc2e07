"""Your own cameras from the command line: adapt the meta-trained MetaFuse model to a rig (:mod:`mfcore.adapt`), with
the book's on-disk cache (a second run on the same cameras renders nothing and trains nothing), and choose the fusion
for your rig by evidence::

    python -m mfbook.adapt RIG --k 8 [--profile smoke] [--device auto] [--seed 0] [--trials 1] [--no-3d]
                           [--format F] [--cameras C] [--units mm|cm|m | --scale S | --baseline A B METRES] [--up -y]
                           [--out adapted.pt]

RIG is a rig file or any calibration :mod:`mfcore.calibration` reads (the import options are its). The command prints
a line before every long step, then NoFusion, the epipolar fusion from the calibration and MetaFuse^K side by side on
the rig's synthetic twin (2D JDR and 3D MPJPE after the RPSM, each against NoFusion with a paired 95 % interval) and
the fusion that evidence recommends, then saves the adapted fusion parameters, by default to
``_build/adapted/adapted_<rig>_k<K>.pt`` (an ignored folder). It uses the chapters' numeric settings
(:func:`mfbook.chapter.apply_numeric_settings`), so what it caches is what a chapter would; ``--profile full``
without a GPU is refused as the book's runner refuses it (:func:`mfbook.run_book.check_device_for_profile`) unless
``--device cpu`` is given. Bad input and an unwritable ``--out`` are one line, ``error: …``, and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mfcore import adapt
from mfcore.calibration import cli as calibration_cli
from mfcore.profiles import get_profile, resolve_device

from . import cache, chapter, progress
from .paths import REPO_ROOT
from .run_book import check_device_for_profile

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


def comparison_text(result: adapt.AdaptResult, seed: int = 0) -> str:
    """The side-by-side table of :meth:`mfcore.adapt.AdaptResult.comparison` in words, and the recommendation."""
    table = result.comparison(seed)
    lines = [f"{'method':<16}{'JDR':>7}{'vs NoFusion (points, 95 % CI)':>34}"
             + (f"{'MPJPE (mm)':>12}{'vs NoFusion (mm, 95 % CI)':>32}" if "mpjpe_mm" in table else "")]
    for r in table.itertuples():
        jdr = "" if r.method == adapt.BASELINE else f"{r.jdr_gain_points:+.2f} [{r.jdr_ci_low:+.2f}, {r.jdr_ci_high:+.2f}]"
        line = f"{r.method:<16}{r.jdr:>7.3f}{jdr:>34}"
        if "mpjpe_mm" in table:
            mm = "" if r.method == adapt.BASELINE else \
                f"{r.mpjpe_diff_mm:+.1f} [{r.mpjpe_ci_low:+.1f}, {r.mpjpe_ci_high:+.1f}]"
            line += f"{r.mpjpe_mm:>12.1f}{mm:>32}"
        lines.append(line)
    best, why = result.recommendation(seed)
    return "\n".join(lines + [f"recommended fusion for this rig: {best} ({why})"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mfbook.adapt",
        description="Adapt the meta-trained MetaFuse model to your own cameras with K labelled frames (rendered in "
                    "the synthetic studio from your rig), compare it with NoFusion and the epipolar fusion from your "
                    "calibration, and recommend one.")
    parser.add_argument("rig", help="rig file (.yaml/.yml/.json, see mfcore/rigs/example_rig.yaml) or any calibration "
                                    "file or folder that python -m mfcore.calibration reads")
    parser.add_argument("--k", type=int, required=True, help="labelled frames for finetuning θ (1..the profile's pool)")
    parser.add_argument("--profile", default="smoke", help="sizes: smoke (CPU, minutes) or full (one GPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=1, help="independent draws of the K frames (JDR averaged)")
    parser.add_argument("--no-3d", dest="lift_3d", action="store_false",
                        help="compare in 2D only (skip the RPSM on the test frames)")
    calibration_cli.add_import_options(parser)
    parser.add_argument("--out", default=None,
                        help="where to save the adapted fusion parameters (default "
                             "_build/adapted/adapted_<rig>_k<K>.pt in the repository)")
    args = parser.parse_args(calibration_cli.normalise_argv(list(sys.argv[1:] if argv is None else argv)))

    def say(line: str) -> None:
        print(f"… {line}", flush=True)

    try:
        prof = get_profile(args.profile)
        adapt.check_k(args.k, prof)
        check_device_for_profile(prof.name, args.device)  # the runner's rule: full needs a GPU unless --device cpu
        device = resolve_device(args.device)
        options = calibration_cli.import_options(args)
        chapter.validate_seed(args.seed)
        chapter.set_seed(args.seed, device)
        chapter.apply_numeric_settings(device)  # the chapters' settings: the cache entries it writes are theirs
        cache.install()
        progress.install()
        result = adapt.adapt_to_rig(args.rig, args.k, prof, args.seed, device, trials=args.trials, progress=True,
                                    lift_3d=args.lift_3d, read_options=options, say=say)
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    v = result.rig.num_views
    print(f"rig {result.rig.name!r}: {v} cameras, {v * (v - 1)} ordered pairs; profile {prof.name!r} on {device}; "
          f"K = {result.k} of a pool of {result.pool_frames} labelled frames; "
          f"{result.test_frames} test frames; {args.trials} trial(s)")
    print("JDR (fraction of joints within half a head size; synthetic studio data):")
    print(result.table().to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\nNoFusion, the epipolar fusion from your calibration and MetaFuse^{result.k} on the same test frames "
          f"(mean JDR{' and 3D MPJPE after the RPSM' if args.lift_3d else ''}):")
    print(comparison_text(result, args.seed))
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
          f"{str(args.rig)!r}{calibration_cli.options_text(options)}), or use them with python -m mfbook.lift "
          f"{args.rig} DETECTIONS... --fusion {out} --profile {prof.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
