"""Every speed measurement of the book in one run, as one tidy table: ``results/<profile>/benchmarks.csv``, with
``benchmarks_provenance.json`` beside it (the code's commit and dirty flag, device, python/torch/CUDA versions,
profile, start and end time: the fields of a chapter's ``provenance.json``).

    python benchmarks/run_all.py --profile full --device cuda     # on the GPU machine, after `run_book execute`
    python benchmarks/run_all.py --profile smoke --device cpu     # a quick CPU check of the same pipeline

Runs the benchmark scripts (fusion step ratio, MetaFuse's trainings batched vs looped, RPSM reference and solver
batched and one frame per call, renderer throughput, pruning, Tekin's ensemble against one network with chapter 06's
estimated training time) in this
run, times the fused 2D inference per image (backbone forward + fusion), and gathers the finetuning seconds per K
(chapter 04's timings) and the wall time of each chapter (papermill's duration of its executed notebook;
``--chapters-only`` refreshes just those rows, and notes the refresh in the provenance). Each row: ``benchmark, metric,
value, unit, device, paper_value, note``. Ratios are measured within one run on one device; the papers' figures are
quoted for orientation only (their workloads differ: real images, ResNet-50, a 2080 Ti). On a tree copied to a GPU
machine without its ``.git``, ``$MFCORE_SOURCE_SHA`` names the commit (``tools/gpu_book.sh``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
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
    if set(chapters) != set(provenances) or run.get("failed") or len(run.get("commands", [])) > 1:
        return None  # not one command (tools/merge_book_runs.py records several on one clock)
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
        try:  # several commands merged on one clock (tools/merge_book_runs.py): say how many and their walls
            commands = json.loads((results / "book_run.json").read_text()).get("commands", [])
        except (OSError, ValueError, AttributeError):
            commands = []
        walls = (f"; they ran in {len(commands)} `run_book execute` commands whose walls add up to "
                 f"{sum(c['wall_seconds'] for c in commands):.1f} s (book_run.json)") if len(commands) > 1 else ""
        rows.append(dict(benchmark="chapters", metric="wall time of the whole book (sum of the chapters)", value=total,
                         unit="s", device=rows[0]["device"], paper_value="",
                         note=f"{len(rows)} chapters executed in more than one run{walls}; target ≤ 600 s on one GPU"))
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


RPSM_LABELS = {"solver": "RPSMSolver", "reference": "pictorial.rpsm, the reference"}
RPSM_TARGETS = {"batched": "target ≥ 800 on one H100/H200", "one frame per call": "target ≥ 200 on one H100/H200"}


def rpsm_rows(rp: pd.DataFrame, device_name: str) -> list[dict]:
    """The rows of ``benchmarks/bench_rpsm.py``'s table: frames per second of both paths in both modes, and the
    ratios between them (measured in the same run on the same heatmaps)."""
    rows = []
    rate = {}
    for _, r in rp.iterrows():
        rate[r["path"], r["mode"]] = r.frames_per_s
        setting = (f"{r.views} views, {r.joints} joints, {r.grid_bins}³ grid, {r.stages} stages, B={r.batch}, "
                   f"{r.frames} frames")
        if r["path"] == "solver":
            setting += (f"; {RPSM_TARGETS[r['mode']]}; after a warm-up of {r.warmup_s:.2f} s ({r.graphs} CUDA graphs "
                        f"captured); max difference to the reference {r.max_difference_mm:.3g} mm")
        rows.append(dict(benchmark="rpsm", metric=f"RPSM frames per second, {r['mode']} ({RPSM_LABELS[r['path']]})",
                         value=float(r.frames_per_s), unit="frames/s", device=device_name, paper_value="",
                         note=setting))

    def ratio(metric, a, b, note=""):
        if a in rate and b in rate:
            rows.append(dict(benchmark="rpsm", metric=metric, value=float(rate[a] / rate[b]), unit="ratio",
                             device=device_name, paper_value="", note=note))

    for mode in ("one frame per call", "batched"):
        ratio(f"RPSM {mode}: RPSMSolver / reference", ("solver", mode), ("reference", mode))
    for path in ("solver", "reference"):
        ratio(f"RPSM batched / one frame per call ({RPSM_LABELS[path]})", (path, "batched"),
              (path, "one frame per call"))
    return rows


def write_table(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Write the benchmarks table atomically (nothing already written is lost to an interrupted write)."""
    chapter.atomic_write_bytes(Path(out), table.to_csv(index=False, float_format="%.6g").encode())
    return table


def provenance_path(out: Path) -> Path:
    """``benchmarks_provenance.json`` beside the table ``out`` (``<stem>_provenance.json`` for another name)."""
    out = Path(out)
    return out.with_name(f"{out.stem}_provenance.json")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_provenance(out: Path, profile, device, started_at: str, wall_seconds: float, rows: int,
                     argv: list[str]) -> dict:
    """Write the provenance of the benchmarks table ``out`` beside it, atomically: the fields of a chapter's
    ``provenance.json`` (:func:`mfbook.chapter.git_state`, device, versions, times) for the run that measured it."""
    device = torch.device(device)
    record = {
        "table": Path(out).name,
        **chapter.git_state(),
        "profile": profile.name,
        "device": str(device),
        "device_name": chapter.device_name(device),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "host": platform.node(),
        "command": " ".join(["python", "benchmarks/run_all.py", *argv]),
        "rows": rows,
        "started_at": started_at,
        "ended_at": _now(),
        "wall_seconds": round(wall_seconds, 2),
    }
    chapter.atomic_write_bytes(provenance_path(out), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return record


def note_chapter_refresh(out: Path, rows: int) -> dict:
    """Record in the provenance beside ``out`` that its chapter rows were read again (when, at which commit); the
    measuring run's fields stay. A table without a provenance gets one that says its measuring run is unknown."""
    path = provenance_path(out)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {"table": Path(out).name, "git_sha": "unknown (measured before provenance was written)",
                  "git_dirty": None}
    record["chapter_rows_refreshed"] = {**chapter.git_state(), "at": _now(), "rows": rows}
    chapter.atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return record


def refresh_chapter_rows(out: Path, results: Path, profile) -> pd.DataFrame:
    """Replace the rows of an existing benchmarks table that are read from the executed chapters (their wall times,
    :func:`chapter_rows`, and their own timings, :func:`timing_rows`); the benchmarks measured by this script stay."""
    table = pd.read_csv(out)
    from_chapters = (table.benchmark.isin(["chapters", "finetune"])
                     | ((table.benchmark == "training") & (table.metric != BARE_LOOP)))
    device = table.device.iloc[0] if len(table) else ""
    kept = table[~from_chapters]
    table = write_table(pd.concat([kept, pd.DataFrame(timing_rows(results, profile, device)),
                                   pd.DataFrame(chapter_rows(results))], ignore_index=True), out)
    note_chapter_refresh(out, len(table))
    return table


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke", choices=sorted(profiles.PROFILES))
    ap.add_argument("--device", default="auto", choices=profiles.DEVICE_CHOICES)
    ap.add_argument("--out", type=Path, default=None, help="default: <results>/<profile>/benchmarks.csv")
    ap.add_argument("--results", type=Path, default=REPO / "results",
                    help="the results folder whose executed chapters are read (default: results/)")
    ap.add_argument("--chapters-only", action="store_true",
                    help="only refresh the rows read from the executed chapters (wall times, their own timings) of an "
                         "existing table")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    profile = profiles.get_profile(args.profile)
    results = args.results / profile.name
    out = args.out or results / "benchmarks.csv"
    if args.chapters_only:
        if not out.exists():
            print(f"error: {out} does not exist; run the benchmarks first", file=sys.stderr)
            raise SystemExit(2)
        table = refresh_chapter_rows(out, results, profile)
        print(f"refreshed the chapter rows of {out} (and {provenance_path(out).name})")
        return table
    try:
        device = profiles.resolve_device(args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    dev_name = chapter.device_name(device)
    quick = device.type == "cpu"
    rows = []
    started_at, t0 = _now(), time.perf_counter()

    def add(benchmark, metric, value, unit, paper_value="", note=""):
        rows.append(dict(benchmark=benchmark, metric=metric, value=float(value), unit=unit, device=dev_name,
                         paper_value=paper_value, note=note))

    def write() -> pd.DataFrame:  # after every benchmark: an interrupted run keeps what it measured
        table = write_table(pd.DataFrame(rows), out)
        write_provenance(out, profile, device, started_at, time.perf_counter() - t0, len(table), argv)
        return table

    fusion_methods = ("NaiveFuse", "AffineFuse", "AffineFuse-reference", "AffineFuse-higher-order")  # higher order:
    # the twice-differentiable path of second-order MAML (chapter 4c's second-order control)
    fz = run_script("bench_fusion", ["--device", device.type, "--methods", *fusion_methods]
                    + (["--repeats", "3", "--warmup", "1"] if quick else []))
    for phase in ("fwd_bwd", "fwd_bwd_theta", "step", "infer"):  # fwd_bwd_theta: omega_base frozen (AffineFuse only)
        for method in fusion_methods:
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
    rows += rpsm_rows(rp, dev_name)

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
    te = run_script("bench_tekin_ensemble", ["--device", device.type, "--profile", profile.name]
                    + (["--steps", "3", "--warmup", "1"] if quick else []))
    for _, r in te.iterrows():
        batch = f"batch {r.batch_size}, the profile's sizes, bf16 on CUDA"
        if r.kind == "ratio":
            add("tekin", f"{r.program}: ensemble of {r.members} seeds / one network, step time", r.ms_per_step,
                "ratio", note=f"{batch}; target ≤ 1.5 for 3 seeds")
        elif r.kind in ("one", "ensemble"):
            who = "one network" if r.kind == "one" else f"ensemble of {r.members} seeds"
            add("tekin", f"{r.program} training step, {who}", r.ms_per_step, "ms", note=batch)
        elif r.kind in ("chapter", "variant"):
            add("tekin", f"chapter 06 program: {r.program} ({r.members} members)", r.estimated_s, "s",
                note=f"{r.ms_per_step:.2f} ms per step × {profile.trainable_fusion.steps} steps; {batch}"
                     + (f"; {r.note}" if isinstance(r.note, str) and r.note else ""))

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
