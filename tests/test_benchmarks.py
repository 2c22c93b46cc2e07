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
        {"stem": stem, "wall_seconds": chapter_s, "device_name": "GPU X", "git_sha": "0123456789abcdef"}))


def test_chapter_rows_are_the_executed_notebooks_durations_and_their_sum(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    _chapter(tmp_path, "02_b", 30.0, 20.0)
    rows = run_all.chapter_rows(tmp_path)
    assert [r["metric"] for r in rows] == ["wall time of 01_a", "wall time of 02_b",
                                           "wall time of the whole book (sum of the chapters)"]
    assert [r["value"] for r in rows] == [12.5, 30.0, 42.5]
    assert "3.0 s from opening the chapter" in rows[0]["note"] and rows[0]["device"] == "GPU X"


def test_refreshing_the_chapter_rows_keeps_the_measured_benchmarks(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    out = tmp_path / "benchmarks.csv"
    pd.DataFrame([dict(benchmark="fusion", metric="ratio", value=1.5, unit="ratio", device="GPU X", paper_value="",
                       note=""),
                  dict(benchmark="chapters", metric="wall time of 01_a", value=99.0, unit="s", device="GPU X",
                       paper_value="", note="stale")]).to_csv(out, index=False)
    table = run_all.refresh_chapter_rows(out, tmp_path)
    assert table[table.benchmark == "fusion"].value.tolist() == [1.5]
    assert table[table.benchmark == "chapters"].value.tolist() == [12.5, 12.5]
    assert pd.read_csv(out)[["metric", "value"]].equals(table[["metric", "value"]])  # what was written
