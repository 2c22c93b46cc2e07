"""Render throughput of the synthetic studio: images per second at the profile's image size on the available device.

    python benchmarks/bench_render.py --profile full --device auto --out results/bench_render.csv

Renders ``profile.studio.bench_batch`` images per call (frames × views of the rig), ``bench_repeats`` timed calls after
one warm-up call, and prints one line per setting; ``--out`` writes them as a tidy CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import data, profiles  # noqa: E402


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="smoke", choices=sorted(profiles.PROFILES))
    parser.add_argument("--device", default="auto", choices=profiles.DEVICE_CHOICES)
    parser.add_argument("--rigs", default="h36m,dome", help="comma-separated rig names")
    parser.add_argument("--batch", type=int, default=None, help="images per call (default: profile.studio.bench_batch)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", type=Path, default=None, help="write the table as CSV here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = profiles.get_profile(args.profile)
    device = profiles.resolve_device(args.device)
    rows = []
    for rig in args.rigs.split(","):
        for labels in (False, True):
            row = data.measure_throughput(rig, profile, device, args.batch, args.repeats, labels)
            rows.append(row)
            print(f"{row['device']}: {row['rig']} {row['views']} views, {row['image_px']}² px, "
                  f"{row['images_per_call']} images/call, {'images + labels' if labels else 'images only'}: "
                  f"{row['images_per_s']:,.0f} images/s", flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out, index=False, float_format="%.6g")
    return df


if __name__ == "__main__":
    main()
