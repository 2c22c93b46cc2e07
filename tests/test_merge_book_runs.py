"""tools/merge_book_runs.py: several run_book commands' records on one clock, the GPU tables computed from them."""

import json
from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def merge_tool():
    return load_script("tools/merge_book_runs.py")


def _chapter(target: Path, stem: str, started_at: str, duration_s: float) -> None:
    (target / stem).mkdir(parents=True)
    (target / stem / "provenance.json").write_text(json.dumps({"stem": stem, "started_at": started_at}))
    (target / stem / f"{stem}.ipynb").write_text(json.dumps({"cells": [], "metadata": {"papermill": {
        "duration": duration_s}}}))


def _command(folder: Path, stems: list[str], started_at: str, spans: dict, wall_s: float, samples: list) -> None:
    for stem in stems:
        (folder / stem).mkdir(parents=True)
        (folder / stem / "provenance.json").write_text("{}")
    (folder / "book_run.json").write_text(json.dumps({"jobs": 2, "wall_seconds": wall_s, "failed": [], "chapters": {
        s: {"start_s": a, "end_s": b, "seconds": b - a, "started_at": "x"} for s, (a, b) in spans.items()}}))
    (folder / "gpu_samples.json").write_text(json.dumps({"started_at": started_at, "samples": samples,
                                                        "period_ms": 200}))


def test_commands_are_laid_on_one_clock_and_their_walls_summed(merge_tool, tmp_path):
    target, one, two, three = (tmp_path / n for n in ("full", "c1", "c2", "c3"))
    _chapter(target, "01_a", "2026-01-01T00:00:01+00:00", 9.0)
    _chapter(target, "02_b", "2026-01-01T00:01:00+00:00", 20.0)  # its command failed beside another: no record
    _chapter(target, "03_c", "2026-01-01T00:02:01+00:00", 5.0)
    _command(one, ["01_a"], "2026-01-01T00:00:00+00:00", {"01_a": (1.0, 10.0)}, 10.5,
             [[0.5, 0.0, 1.0], [2.0, 100.0, 1.0], [9.0, 50.0, 1.0], [10.2, 0.0, 1.0]])
    (two / "02_b").mkdir(parents=True)
    (two / "02_b" / "provenance.json").write_text("{}")
    _command(three, ["03_c"], "2026-01-01T00:02:00+00:00", {"03_c": (1.0, 6.0)}, 6.5,
             [[0.5, 0.0, 1.0], [3.0, 80.0, 1.0], [6.2, 0.0, 1.0]])
    record = merge_tool.merge(target, [one, two, three])
    assert record["commands_wall_seconds"] == 10.5 + 20.0 + 6.5  # the failed command's wall: its chapter's span
    assert record["wall_seconds"] == 126.0  # first start to last end, on one clock
    assert [c["start_s"] for c in record["commands"]] == [0.0, 60.0, 120.0]
    assert [c["gpu_sampled"] for c in record["commands"]] == [True, False, True]
    assert {s: (c["start_s"], c["end_s"], c["command"]) for s, c in record["chapters"].items()} == {
        "01_a": (1.0, 10.0, 1), "02_b": (60.0, 80.0, 2), "03_c": (121.0, 126.0, 3)}
    busy = (target / "gpu_busy.csv").read_text().splitlines()
    assert busy[1].startswith("01_a,1.0,10.0,9.0,2,0.75,") and busy[2].startswith("02_b,60.0,80.0,20.0,0,,")
    assert busy[-1].startswith("whole book,0.0,126.0,126.0,6,")  # every sample to the last chapter's end
    idle = (target / "gpu_idle.csv").read_text().splitlines()[1:]
    assert all(float(row.split(",")[3]) < 60 for row in idle)  # no stretch spans the gap between two commands
    assert json.loads((target / "book_run.json").read_text()) == record
