"""Every speed measurement of the book in one run, as one tidy table: ``results/<profile>/benchmarks.csv``.

    python benchmarks/run_all.py --profile full --device cuda     # on the GPU machine, after `run_book execute`
    python benchmarks/run_all.py --profile smoke --device cpu     # a quick CPU check of the same pipeline

Runs the benchmark scripts (fusion step ratio, MetaFuse's trainings batched vs looped, RPSM batched vs single, renderer
throughput, pruning) in this
run, times the fused 2D inference per image (backbone forward + fusion), and gathers the finetuning seconds per K
(chapter 04's timings) and the wall time of each chapter (papermill's duration of its executed notebook;
``--chapters-only`` refreshes just those rows). Each row: ``benchmark, metric, value,
unit, device, paper_value, note``. Ratios are measured within one run on one device; the papers' figures are quoted
for orientation only (their workloads differ: real images, ResNet-50, a 2080 Ti).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mfcore import backbone, profiles, studio  # noqa: E402
from mfbook import chapter, speed  # noqa: E402

PAPER = {
    "warmup": "about 30 h on one 2080 Ti (MetaFuse Sec. 5.1)",
    "meta_training": "about 5 h on one 2080 Ti",
    "finetune": "about 7 min for a new camera pair set",
    "inference": "0.015 s per image",
}


def run_script(name: str, args: list[str]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.csv"
        cmd = [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *args, "--out", str(out)]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
        return pd.read_csv(out)


def book_run(results: Path, provenances: dict[str, dict]) -> dict | None:
    """``results/book_run.json`` (written by ``run_book execute``) when it describes the run that executed every chapter
    in ``provenances`` (the same chapters, each with the start time its provenance names); else None."""
    try:
        run = json.loads((results / "book_run.json").read_text())
    except (OSError, ValueError):
        return None
    chapters = run.get("chapters", {})
    if set(chapters) != set(provenances) or run.get("failed"):
        return None
    if any(chapters[s].get("started_at") != p.get("started_at") for s, p in provenances.items()):
        return None
    return run


def chapter_rows(results: Path) -> list[dict]:
    """The wall time of every executed chapter under ``results`` and of the whole book.

    A chapter's time is papermill's duration of its executed notebook (kernel start to the end of the last cell,
    imports included: what running the chapter costs), with the chapter's own provenance time (from opening the
    chapter to finishing it) in the note. The whole book's time is the wall time of the one ``run_book execute`` that
    executed every chapter (``book_run.json``; chapters may have run at once, and each chapter's note names those
    beside it); where the chapters were executed in several runs, it is the sum of their times."""
    from mfbook.run_book import chapters_beside, papermill_seconds

    provenances = {}
    for prov_path in sorted(results.glob("*/provenance.json")):
        prov = json.loads(prov_path.read_text())
        provenances[prov["stem"]] = prov
    run = book_run(results, provenances)
    rows = []
    total = 0.0
    for stem, prov in provenances.items():
        nb_path = results / stem / f"{stem}.ipynb"
        seconds = papermill_seconds(nb_path) or 0.0
        total += seconds
        note = (f"executed notebook (kernel start, imports, every cell); {prov['wall_seconds']:.1f} s from opening the "
                f"chapter; git {prov['git_sha'][:10]}")
        if run:
            beside = chapters_beside(stem, {s: (c["start_s"], c["end_s"]) for s, c in run["chapters"].items()})
            note += f"; beside {', '.join(beside)}" if beside else "; alone on the machine"
        rows.append(dict(benchmark="chapters", metric=f"wall time of {stem}", value=seconds, unit="s",
                         device=prov["device_name"], paper_value="", note=note))
    if rows and run:
        rows.append(dict(benchmark="chapters", metric="wall time of the whole book (one run)",
                         value=float(run["wall_seconds"]), unit="s", device=rows[0]["device"], paper_value="",
                         note=f"{len(rows)} chapters in one `run_book execute`, up to {run['jobs']} at once "
                              f"(their times add up to {total:.1f} s); target ≤ 600 s on one GPU"))
    elif rows:
        rows.append(dict(benchmark="chapters", metric="wall time of the whole book (sum of the chapters)", value=total,
                         unit="s", device=rows[0]["device"], paper_value="",
                         note=f"{len(rows)} chapters executed in more than one run; target ≤ 600 s on one GPU"))
    return rows


BARE_LOOP = "bare backbone training loop throughput"


def timing_rows(results: Path, profile, device_name: str) -> list[dict]:
    """The rows read from the executed chapters' own timings: MetaFuse finetuning per K (chapter 04), the backbone
    warm-up (its seconds and its training throughput in images/s) and MetaFuse meta-training (chapter 03)."""
    rows = []

    def add(benchmark, metric, value, unit, paper_value="", note=""):
        rows.append(dict(benchmark=benchmark, metric=metric, value=float(value), unit=unit, device=device_name,
                         paper_value=paper_value, note=note))

    times = results / "04_few_shot_curves" / "finetune_times.json"
    if times.exists():
        ft = pd.DataFrame(json.loads(times.read_text()))
        ft = ft[ft.method == "MetaFuse"] if "method" in ft.columns else ft
        sec_col = next((c for c in ft.columns if "second" in c or c.endswith("_s")), None)
        if sec_col is not None and "k" in ft.columns:
            for k, sec in ft.groupby("k")[sec_col].mean().items():
                add("finetune", f"MetaFuse finetuning, K={k}", sec, "s", PAPER["finetune"], "chapter 04")
    steps = results / "03_meta_training" / "timings.json"
    if steps.exists():
        st = pd.DataFrame(json.loads(steps.read_text())).set_index("step").seconds
        warm = [k for k in st.index if k.startswith("warm-up:")]
        if warm:
            add("training", "backbone warm-up (render + train)", st[warm].sum(), "s", PAPER["warmup"],
                f"ResNet-{profile.backbone.resnet_depth}, {profile.backbone.warmup_frames} frames × views, "
                f"{profile.backbone.warmup_epochs} epochs (chapter 03)")
        train = [k for k in st.index if k.startswith("warm-up: train")]
        if train:
            b = profile.backbone
            per_rig = max(1, b.warmup_frames // len(backbone.WARMUP_RIGS))
            images = per_rig * sum(studio.get_rig(r).num_views for r in backbone.WARMUP_RIGS) * b.warmup_epochs
            add("training", "backbone warm-up training throughput", images / st[train].sum(), "images/s",
                note=f"{images} images ({b.warmup_epochs} epochs) in the warm-up's training loop (chapter 03)")
        if "pre-training: MetaFuse" in st.index:
            add("training", "MetaFuse meta-training", st["pre-training: MetaFuse"], "s", PAPER["meta_training"],
                f"{profile.metafuse.meta_iterations} outer steps × {profile.metafuse.meta_tasks_per_step} tasks, "
                f"{'first' if profile.metafuse.first_order else 'second'}-order (chapter 03)")
    return rows


def write_table(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Write the benchmarks table atomically (nothing already written is lost to an interrupted write)."""
    chapter.atomic_write_bytes(Path(out), table.to_csv(index=False, float_format="%.6g").encode())
    return table


def refresh_chapter_rows(out: Path, results: Path, profile) -> pd.DataFrame:
    """Replace the rows of an existing benchmarks table that are read from the executed chapters (their wall times,
    :func:`chapter_rows`, and their own timings, :func:`timing_rows`); the benchmarks measured by this script stay."""
    table = pd.read_csv(out)
    from_chapters = (table.benchmark.isin(["chapters", "finetune"])
                     | ((table.benchmark == "training") & (table.metric != BARE_LOOP)))
    device = table.device.iloc[0] if len(table) else ""
    kept = table[~from_chapters]
    return write_table(pd.concat([kept, pd.DataFrame(timing_rows(results, profile, device)),
                                  pd.DataFrame(chapter_rows(results))], ignore_index=True), out)


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke", choices=sorted(profiles.PROFILES))
    ap.add_argument("--device", default="auto", choices=profiles.DEVICE_CHOICES)
    ap.add_argument("--out", type=Path, default=None, help="default: results/<profile>/benchmarks.csv")
    ap.add_argument("--chapters-only", action="store_true",
                    help="only refresh the rows read from the executed chapters (wall times, their own timings) of an "
                         "existing table")
    args = ap.parse_args(argv)
    profile = profiles.get_profile(args.profile)
    if args.chapters_only:
        out = args.out or REPO / "results" / profile.name / "benchmarks.csv"
        if not out.exists():
            raise SystemExit(f"error: {out} does not exist; run the benchmarks first")
        table = refresh_chapter_rows(out, REPO / "results" / profile.name, profile)
        print(f"refreshed the chapter rows of {out}")
        return table
    device = profiles.resolve_device(args.device)
    dev_name = chapter.device_name(device)
    quick = device.type == "cpu"
    rows = []

    results = REPO / "results" / profile.name
    out = args.out or results / "benchmarks.csv"

    def add(benchmark, metric, value, unit, paper_value="", note=""):
        rows.append(dict(benchmark=benchmark, metric=metric, value=float(value), unit=unit, device=dev_name,
                         paper_value=paper_value, note=note))

    def write() -> pd.DataFrame:  # after every benchmark: an interrupted run keeps what it measured
        return write_table(pd.DataFrame(rows), out)

    fz = run_script("bench_fusion", ["--device", device.type] + (["--repeats", "3", "--warmup", "1"] if quick else []))
    for phase in ("fwd_bwd", "step", "infer"):
        for method in ("NaiveFuse", "AffineFuse", "AffineFuse-reference"):
            r = fz[(fz.method == method) & (fz.phase == phase)]
            if len(r):
                add("fusion", f"{method} {phase}", r.ms.iloc[0], "ms", note=f"B={r.batch.iloc[0]}, V={r.views.iloc[0]}, {r.heatmap_px.iloc[0]}² heatmaps")
    ratio = fz[(fz.method == "AffineFuse") & (fz.phase == "fwd_bwd")].ratio_to_naive
    if len(ratio):
        add("fusion", "AffineFuse / NaiveFuse forward + backward time", ratio.iloc[0], "ratio", note="target ≤ 2")

    write()
    mb = run_script("bench_meta", ["--device", device.type, "--profile", profile.name] + (["--quick"] if quick else []))
    for _, r in mb.iterrows():  # meta-training and finetuning steps, batched vs looped (issues 26, 27)
        add("meta", r.metric, r.value, r.unit, note=r.note)

    add("inference", "fused 2D inference per image (backbone + fusion)", speed.fused_inference_ms(profile, device), "ms",
        PAPER["inference"], f"{profile.studio.image_px}² input, ResNet-{profile.backbone.resnet_depth}, 4 views")

    write()
    rp = run_script("bench_rpsm", ["--device", device.type, "--profile", profile.name]
                    + (["--frames", "4", "--single-frames", "2", "--batch", "4"] if quick else []))
    for mode, label in (("batched", "batched"), ("single", "one frame per call")):
        r = rp[rp["mode"] == mode]
        if len(r):
            setting = (f"4 views, 17 joints, {r.grid_bins.iloc[0]}³ grid, {r.stages.iloc[0]} stages, "
                       f"B={r.batch.iloc[0]}" if {"grid_bins", "stages", "batch"} <= set(r.columns) else
                       "4 views, 17 joints")
            add("rpsm", f"RPSM frames per second ({label})", r.frames_per_s.iloc[0], "frames/s",
                note=setting + (" (target ≥ 800 on one H200)" if mode == "batched" else " (live use)"))
    if {"batched", "single"} <= set(rp["mode"]):
        add("rpsm", "RPSM batched / one frame per call", rp[rp["mode"] == "batched"].frames_per_s.iloc[0]
            / rp[rp["mode"] == "single"].frames_per_s.iloc[0], "ratio")

    write()
    rd = run_script("bench_render", ["--device", device.type, "--profile", profile.name] + (["--repeats", "1"] if quick else []))
    for _, r in rd.iterrows():
        add("render", f"render {r.rig} ({'with' if r.with_labels else 'without'} labels)", r.images_per_s, "images/s",
            note=f"{r.image_px}² images")

    write()
    pr = run_script("bench_pruning", ["--device", device.type, "--profile", profile.name]
                    + (["--repeats", "2", "--train-steps", "2"] if quick else ["--amp"]))
    for _, r in pr[pr.method.isin(["TrainableFusion", "ImageOnly", "CMOnly"]) | (pr.note.astype(str).str.contains("pruned"))].iterrows():
        add("pruning", f"{r.method} {r.note if isinstance(r.note, str) else ''}".strip() + " inference", r.ms_per_image,
            "ms/image", note=f"{int(r.params)} parameters")

    write()
    rows += timing_rows(results, profile, dev_name)
    add("training", BARE_LOOP, speed.bare_backbone_images_per_s(profile, device), "images/s",
        note=f"ResNet-{profile.backbone.resnet_depth} at {profile.studio.image_px}², batch "
             f"{profile.backbone.batch_size}, random data on the device, Adam, bf16 autocast (mfbook.speed); beside "
             "the warm-up's own throughput above")
    rows += chapter_rows(results)
    table = write()
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table[["benchmark", "metric", "value", "unit"]].to_string(index=False))
    print(f"wrote {out}")
    return table


if __name__ == "__main__":
    main()
