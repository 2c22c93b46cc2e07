"""One record of a book executed by several ``run_book execute`` commands (one device call each) on one machine:
``book_run.json``, ``gpu_samples.json``, ``gpu_busy.csv`` and ``gpu_idle.csv`` of the profile's results, on one clock.

    python tools/merge_book_runs.py results/full RUN_DIR [RUN_DIR ...]

Each RUN_DIR is the ``<results>/<profile>/`` folder one command left (its ``book_run.json`` and, where the GPU was
sampled, ``gpu_samples.json``), in the order they ran. A command whose run failed wrote no record: its chapters that
finished are read from their own ``provenance.json`` (the time the chapter opened, a few seconds after its kernel
started) and executed notebook (papermill's duration) in the target folder, and its GPU samples are missing (its chapters' busy rows say so: no samples). Every time is shifted to
seconds from the first command's start, so the timeline shows the commands one after the other with the gaps between
them. ``wall_seconds`` is that span, from the first command's start to the last chapter's end (the gaps between
commands included, as the timeline shows them); ``commands_wall_seconds`` is the sum of the commands' own walls, and
``commands`` lists them: benchmarks/run_all.py reads such a record as several runs, never as the one command that the
≤ 600 s target is about.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mfbook import gpu_busy  # noqa: E402
from mfcore.files import atomic_write_bytes  # noqa: E402
from mfbook.plan import BOOK_RUN, papermill_seconds  # noqa: E402

_utc = gpu_busy._utc  # an ISO time, UTC where it names no zone (the runner's own reading)


def merge(target: Path, runs: list[Path]) -> dict:
    """Write the merged record and GPU tables into ``target`` from the command folders ``runs``; returns the record."""
    target = Path(target)
    chapters, commands, samples = {}, [], []
    starts = []  # (absolute start of each command, its record or None)
    for run in runs:
        run = Path(run)
        record = json.loads((run / BOOK_RUN).read_text()) if (run / BOOK_RUN).exists() else None
        stems = sorted(p.parent.name for p in run.glob("*/provenance.json"))
        if record is not None and set(record["chapters"]) != set(stems):
            record = None  # a copy of an earlier command's record left in the folder: not this command's
        if record is not None and (run / gpu_busy.SAMPLES_FILE).exists():  # the runner's clock: its sampler's start
            t0 = _utc(json.loads((run / gpu_busy.SAMPLES_FILE).read_text())["started_at"])
        elif record is not None:  # no sampler: the first chapter's opening, less its start on the runner's clock
            first = min(record["chapters"].values(), key=lambda c: c["start_s"])
            t0 = _utc(first["started_at"]) - _dt.timedelta(seconds=first["start_s"])
        else:
            if not stems:
                raise SystemExit(f"error: {run} holds no executed chapter (no */provenance.json)")
            t0 = min(_utc(json.loads((target / s / "provenance.json").read_text())["started_at"]) for s in stems)
        starts.append((t0, record, stems, run))
    origin = starts[0][0]
    spans_all = {}
    for number, (t0, record, stems, run) in enumerate(starts, start=1):
        offset = (t0 - origin).total_seconds()
        if record is not None:
            wall = float(record["wall_seconds"])
            for stem, c in record["chapters"].items():
                chapters[stem] = {**c, "start_s": round(c["start_s"] + offset, 2), "end_s": round(c["end_s"] + offset, 2),
                                  "command": number}
        else:
            for stem in stems:
                prov = json.loads((target / stem / "provenance.json").read_text())
                seconds = papermill_seconds(target / stem / f"{stem}.ipynb")
                if seconds is None:
                    raise SystemExit(f"error: {target / stem} has no executed notebook with papermill's duration")
                start = (_utc(prov["started_at"]) - origin).total_seconds()
                chapters[stem] = {"start_s": round(start, 2), "end_s": round(start + seconds, 2),
                                  "seconds": round(seconds, 2), "started_at": prov["started_at"], "command": number}
            wall = max(chapters[s]["end_s"] for s in stems) - offset
        sampled = (run / gpu_busy.SAMPLES_FILE).exists() and record is not None
        if sampled:
            rec = json.loads((run / gpu_busy.SAMPLES_FILE).read_text())
            shift = (_utc(rec["started_at"]) - origin).total_seconds()
            samples += [[round(t + shift, 3), u, m] for t, u, m in rec["samples"]]
        commands.append({"command": number, "chapters": stems, "started_at": t0.isoformat(),
                         "start_s": round(offset, 2), "wall_seconds": round(wall, 2),
                         "jobs": record["jobs"] if record else None, "record": record is not None,
                         "gpu_sampled": sampled})
        spans_all.update({s: (chapters[s]["start_s"], chapters[s]["end_s"]) for s in stems})
    span = max(c["end_s"] for c in chapters.values())
    record = {"jobs": max(c["jobs"] or 1 for c in commands), "failed": [], "wall_seconds": round(span, 2),
              "commands_wall_seconds": round(sum(c["wall_seconds"] for c in commands), 2), "chapters": chapters,
              "commands": commands}
    atomic_write_bytes(target / BOOK_RUN, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    if samples:
        first = json.loads((Path(runs[0]) / gpu_busy.SAMPLES_FILE).read_text())
        merged = {**first, "started_at": origin.isoformat(), "samples": samples, "book_seconds": round(span, 2),
                  "note": f"{len(commands)} run_book commands on one clock; no samples where a command's run failed"}
        atomic_write_bytes(target / gpu_busy.SAMPLES_FILE, (json.dumps(merged) + "\n").encode())
        points = [gpu_busy.Sample(*s) for s in samples]
        busy = gpu_busy.busy_rows(points, spans_all, span,  # the whole book's row: every sample, gaps hold none
                                  period_s=gpu_busy.record_period_s(first))
        cells = {stem: gpu_busy.notebook_cells(target / stem / f"{stem}.ipynb", origin.isoformat()) for stem in spans_all}
        idle = []
        for c in commands:  # stretches within one command (a gap between commands is not an idle GPU of the book)
            inside = [p for p in points if c["start_s"] <= p.t_s <= c["start_s"] + c["wall_seconds"]]
            idle += gpu_busy.idle_rows(inside, {s: spans_all[s] for s in c["chapters"]}, cells)
        idle = sorted(idle, key=lambda r: (-r["seconds"], r["start_s"]))[:gpu_busy.IDLE_STRETCHES]
        for rank, row in enumerate(idle, start=1):
            row["rank"] = rank
        atomic_write_bytes(target / gpu_busy.BUSY_FILE, gpu_busy._csv(busy, gpu_busy.BUSY_COLUMNS))
        atomic_write_bytes(target / gpu_busy.IDLE_FILE, gpu_busy._csv(idle, gpu_busy.IDLE_COLUMNS))
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path, help="the profile's results folder holding every chapter")
    parser.add_argument("runs", type=Path, nargs="+", help="each command's <results>/<profile>/ folder, in order")
    args = parser.parse_args(argv)
    record = merge(args.target, args.runs)
    print(f"{len(record['commands'])} commands, {len(record['chapters'])} chapters in {record['wall_seconds']:.1f} s "
          f"from the first start to the last end; the commands' walls add up to {record['commands_wall_seconds']:.1f} s: "
          f"{args.target / BOOK_RUN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
