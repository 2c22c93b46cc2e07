"""benchmarks/run_all.py: the chapter wall times come from the executed notebooks, and refreshing them keeps the
measured benchmarks."""

import argparse
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def run_all():
    return load_script("benchmarks/run_all.py")


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


def test_the_provenance_beside_the_table_names_the_shipped_commit_device_versions_and_times(run_all, tmp_path,
                                                                                          monkeypatch):
    from mfcore import profiles

    sha = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("MFCORE_SOURCE_SHA", sha)  # a tree copied to the GPU machine without its .git
    monkeypatch.setenv("MFCORE_SOURCE_DIRTY", "1")
    out = tmp_path / "full" / "benchmarks.csv"
    record = run_all.write_provenance(out, profiles.get_profile("full"), "cpu", "2026-01-01T00:00:00+00:00", 12.345,
                                      7, ["--profile", "full"])
    assert run_all.provenance_path(out) == tmp_path / "full" / "benchmarks_provenance.json"
    written = json.loads(run_all.provenance_path(out).read_text())
    assert written == record
    assert (written["git_sha"], written["git_dirty"], written["profile"], written["rows"]) == (sha, True, "full", 7)
    assert written["device_name"].startswith("cpu") and written["cuda"] is None and written["wall_seconds"] == 12.35
    assert written["torch"] and written["python"].count(".") == 2 and written["ended_at"] >= written["started_at"]
    assert written["command"] == "python benchmarks/run_all.py --profile full" and written["table"] == "benchmarks.csv"


def test_refreshing_the_chapter_rows_is_noted_in_the_provenance_and_a_missing_table_is_an_error(run_all, tmp_path,
                                                                                             monkeypatch, capsys):
    monkeypatch.setenv("MFCORE_SOURCE_SHA", "f" * 40)
    results = tmp_path / "results"
    _chapter(results / "smoke", "01_a", 12.5, 3.0)
    out = results / "smoke" / "benchmarks.csv"
    with pytest.raises(SystemExit) as stop:
        run_all.main(["--profile", "smoke", "--results", str(results), "--chapters-only"])
    assert stop.value.code == 2 and "does not exist" in capsys.readouterr().err
    pd.DataFrame([dict(benchmark="fusion", metric="ratio", value=1.5, unit="ratio", device="GPU X", paper_value="",
                       note="")]).to_csv(out, index=False)
    run_all.provenance_path(out).write_text(json.dumps({"git_sha": "a" * 40, "device_name": "GPU X"}))
    table = run_all.main(["--profile", "smoke", "--results", str(results), "--chapters-only"])
    assert table.metric.tolist() == ["ratio", "wall time of 01_a", "wall time of the whole book (sum of the chapters)"]
    record = json.loads(run_all.provenance_path(out).read_text())
    assert record["git_sha"] == "a" * 40  # the run that measured the benchmarks
    assert record["chapter_rows_refreshed"]["git_sha"] == "f" * 40 and record["chapter_rows_refreshed"]["rows"] == 3


def test_rpsm_rows_give_both_paths_and_their_ratios(run_all):
    common = dict(views=4, joints=17, grid_bins=15, stages=10, warmup_s=1.0, graphs=2, max_difference_mm=0.0)
    bench = pd.DataFrame([dict(path="reference", mode="batched", batch=64, frames=512, frames_per_s=760.0, **common),
                          dict(path="reference", mode="one frame per call", batch=1, frames=32, frames_per_s=28.0,
                               **common),
                          dict(path="solver", mode="batched", batch=64, frames=512, frames_per_s=1520.0, **common),
                          dict(path="solver", mode="one frame per call", batch=1, frames=32, frames_per_s=280.0,
                               **common)])
    rows = {r["metric"]: r for r in run_all.rpsm_rows(bench, "GPU X")}
    assert rows["RPSM frames per second, one frame per call (RPSMSolver)"]["value"] == 280.0
    assert "target ≥ 200" in rows["RPSM frames per second, one frame per call (RPSMSolver)"]["note"]
    assert rows["RPSM one frame per call: RPSMSolver / reference"]["value"] == 10.0
    assert rows["RPSM batched: RPSMSolver / reference"]["value"] == 2.0
    assert rows["RPSM batched / one frame per call (RPSMSolver)"]["value"] == pytest.approx(1520 / 280)
    assert {r["device"] for r in rows.values()} == {"GPU X"}


def test_the_rpsm_benchmark_writes_the_columns_run_all_reads(tmp_path):
    bench = load_script("benchmarks/bench_rpsm.py")
    out = tmp_path / "rpsm.csv"
    bench.main(["--device", "cpu", "--profile", "smoke", "--frames", "2", "--single-frames", "1", "--batch", "2",
                "--grid-bins", "3", "--stages", "1", "--out", str(out)])
    table = pd.read_csv(out)
    assert set(zip(table["path"], table["mode"])) == {(p, m) for p in ("reference", "solver")
                                                      for m in ("batched", "one frame per call")}
    assert (table.max_difference_mm == 0).all()  # the solver gives the reference's poses
    assert {"views", "joints", "grid_bins", "stages", "batch", "frames", "warmup_s", "graphs"} <= set(table.columns)
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--frames", "0"])


def test_the_site_names_the_run_that_measured_the_benchmarks(run_all, tmp_path, monkeypatch):
    from mfbook import site
    from mfcore import profiles

    out = tmp_path / "benchmarks.csv"
    assert site.measured_at(out) == ""  # no provenance: nothing claimed
    monkeypatch.setenv("MFCORE_SOURCE_SHA", "abcdef0123" + "0" * 30)
    run_all.write_provenance(out, profiles.get_profile("smoke"), "cpu", "2026-01-01T00:00:00+00:00", 1.0, 3, [])
    line = site.measured_at(out)
    assert line.startswith(", measured at commit `abcdef0123` on cpu") and "2026-01-01T00:00:00+00:00 to" in line


def test_a_record_of_several_commands_is_never_read_as_one_run(run_all, tmp_path):
    _chapter(tmp_path, "01_a", 12.5, 3.0)
    _chapter(tmp_path, "02_b", 30.0, 20.0)
    _book_run(tmp_path, {"01_a": (0.0, 12.6, 3.0), "02_b": (20.0, 50.1, 20.0)}, 42.7)
    record = json.loads((tmp_path / "book_run.json").read_text())
    record["commands"] = [{"command": 1, "wall_seconds": 12.6}, {"command": 2, "wall_seconds": 30.1}]
    (tmp_path / "book_run.json").write_text(json.dumps(record))
    last = run_all.chapter_rows(tmp_path)[-1]
    assert last["metric"] == "wall time of the whole book (sum of the chapters)" and last["value"] == 42.5
    assert "2 `run_book execute` commands whose walls add up to 42.7 s" in last["note"]


def test_bench_fusion_times_affinefuse_with_omega_frozen_and_nothing_else_extra():
    bench = load_script("benchmarks/bench_fusion.py")
    args = argparse.Namespace(device="cpu", batch=2, views=2, joints=3, side=8, amp=False, warmup=0, repeats=1, seed=0,
                              tf32=False, compile=False, methods=["NaiveFuse", "AffineFuse", "AffineFuse-higher-order"])
    rows = bench.bench(args)
    theta = [r for r in rows if r["phase"] == "fwd_bwd_theta"]
    assert [r["method"] for r in theta] == ["AffineFuse", "AffineFuse-higher-order"]  # NaiveFuse has no θ
    assert all(r["ms"] > 0 and r["ratio_to_naive"] != r["ratio_to_naive"] for r in theta)  # no NaiveFuse unit
    assert {(r["method"], r["phase"]) for r in rows if r["phase"] != "fwd_bwd_theta"} == {
        (m, p) for m in args.methods for p in ("fwd_bwd", "step", "infer")}
