"""What a successful run leaves beside its chapters: ``book_run.json`` (when each chapter ran, the book's wall time)
and the profile-level tables of the results contract (the scorecard)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mfcore.files import atomic_write_bytes

from ..paths import RESULTS_DIR
from ..plan import BOOK_RUN


def write_book_run(profile: str, jobs: int, book_seconds: float, spans: dict, timings: dict, failed: list,
                   results: Path | None = None) -> None:
    """``<results>/<profile>/book_run.json``: how the last successful ``execute`` ran (chapters, start and end seconds
    from the start of the run, at most how many at once, its wall time), atomically. The benchmarks table reads it."""
    results = RESULTS_DIR if results is None else Path(results)

    def started_at(stem: str) -> str | None:  # names the published results this record describes
        try:
            return json.loads((results / profile / stem / "provenance.json").read_text())["started_at"]
        except (OSError, ValueError, KeyError):
            return None

    record = {"jobs": jobs, "wall_seconds": round(book_seconds, 2), "failed": failed,
              "chapters": {s: {"start_s": round(a, 2), "end_s": round(b, 2), "seconds": round(timings[s], 2),
                               "started_at": started_at(s)}
                           for s, (a, b) in spans.items() if s in timings}}
    atomic_write_bytes(results / profile / BOOK_RUN, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


PROFILE_TABLES = {"scorecard.csv": "07_scorecard"}  # tables of the results contract that live at results/<profile>/


def publish_profile_tables(profile: str, results: Path | None = None) -> None:
    """Copy each chapter-computed profile-level table (the scorecard) to ``<results>/<profile>/`` atomically."""
    results = RESULTS_DIR if results is None else Path(results)
    for name, stem in PROFILE_TABLES.items():
        src = results / profile / stem / name
        if src.exists():
            dst = results / profile / name
            tmp = dst.with_name(f".{name}.tmp-{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
