"""benchmarks/run_all.py: the chapter wall times come from the executed notebooks, and refreshing them keeps the
measured benchmarks."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", REPO / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chapter(results: Path, stem: str, papermill_s: float, chapter_s: float) -> None:
    folder = results / stem
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": papermill_s}
    nbformat.write(nb, folder / f"{stem}.ipynb")
    (folder / "provenance.json").write_text(json.dumps(
        {"stem": stem, "wall_seconds": chapter_s, "device_name": "GPU X", "git_sha": "0123456789abcdef",
         "started_at": f"2026-01-01T00:00:{int(chapter_s):02d}+00:00"}))


def test_chapter_rows_are_the_executed_notebooks_durations_and_their_sum(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    _chapter(tmp_path, "02_b", 30.0, 20.0)
    rows = run_all.chapter_rows(tmp_path)
    assert [r["metric"] for r in rows] == ["wall time of 01_a", "wall time of 02_b",
                                           "wall time of the whole book (sum of the chapters)"]
    assert [r["value"] for r in rows] == [12.5, 30.0, 42.5]
    assert "3.0 s from opening the chapter" in rows[0]["note"] and rows[0]["device"] == "GPU X"


def test_refreshing_the_chapter_rows_keeps_the_measured_benchmarks(run_all, tmp_path):
    from mfcore import profiles

    _chapter(tmp_path, "01_a", 12.5, 3.0)
    (tmp_path / "03_meta_training").mkdir()
    (tmp_path / "03_meta_training" / "timings.json").write_text(json.dumps(
        [{"step": "warm-up: render the training images", "seconds": 2.0},
         {"step": "warm-up: train the backbone", "seconds": 8.0}]))
    out = tmp_path / "benchmarks.csv"
    row = dict(unit="s", device="GPU X", paper_value="", note="")
    pd.DataFrame([{**row, "benchmark": "fusion", "metric": "ratio", "value": 1.5, "unit": "ratio"},
                  {**row, "benchmark": "training", "metric": run_all.BARE_LOOP, "value": 7000.0, "unit": "images/s"},
                  {**row, "benchmark": "training", "metric": "backbone warm-up (render + train)", "value": 99.0},
                  {**row, "benchmark": "chapters", "metric": "wall time of 01_a", "value": 99.0}]).to_csv(out, index=False)
    smoke = profiles.get_profile("smoke")
    table = run_all.refresh_chapter_rows(out, tmp_path, smoke)
    assert table[table.benchmark == "fusion"].value.tolist() == [1.5]
    training = table[table.benchmark == "training"].set_index("metric").value
    assert training[run_all.BARE_LOOP] == 7000.0  # measured by the script: kept
    assert training["backbone warm-up (render + train)"] == 10.0  # read from the chapter again
    assert table[table.benchmark == "chapters"].value.tolist() == [12.5, 12.5]
    assert pd.read_csv(out)[["metric", "value"]].equals(table[["metric", "value"]])  # what was written


def _book_run(results: Path, chapters: dict, wall_s: float, started_at=None) -> None:
    (results / "book_run.json").write_text(json.dumps({"jobs": 2, "wall_seconds": wall_s, "failed": [], "chapters": {
        stem: {"start_s": a, "end_s": b, "seconds": b - a,
               "started_at": (started_at or {}).get(stem, f"2026-01-01T00:00:{int(own):02d}+00:00")}
        for stem, (a, b, own) in chapters.items()}}))


def test_the_whole_book_is_the_wall_time_of_the_one_run_that_executed_every_chapter(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    _chapter(tmp_path, "02_b", 30.0, 20.0)
    _chapter(tmp_path, "03_c", 5.0, 1.0)
    _book_run(tmp_path, {"01_a": (0.0, 12.6, 3.0), "02_b": (0.0, 30.1, 20.0), "03_c": (30.1, 35.2, 1.0)}, 35.3)
    rows = run_all.chapter_rows(tmp_path)
    assert rows[-1]["metric"] == "wall time of the whole book (one run)" and rows[-1]["value"] == 35.3
    assert "up to 2 at once" in rows[-1]["note"] and "47.5 s" in rows[-1]["note"]
    notes = {r["metric"]: r["note"] for r in rows}
    assert notes["wall time of 01_a"].endswith("beside 02_b")
    assert notes["wall time of 03_c"].endswith("alone on the machine")


def test_a_run_record_of_other_results_is_ignored_and_the_chapters_are_summed(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    _chapter(tmp_path, "02_b", 30.0, 20.0)
    _book_run(tmp_path, {"01_a": (0.0, 12.6, 3.0)}, 12.7)  # an --only run of one chapter
    assert run_all.chapter_rows(tmp_path)[-1]["value"] == 42.5
    _book_run(tmp_path, {"01_a": (0.0, 12.6, 3.0), "02_b": (0.0, 30.1, 20.0)}, 30.2,
              started_at={"02_b": "2025-12-31T23:59:59+00:00"})  # 02_b was executed again since
    assert run_all.chapter_rows(tmp_path)[-1]["metric"] == "wall time of the whole book (sum of the chapters)"
