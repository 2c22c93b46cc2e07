"""mfbook.gpu_busy: the GPU's utilisation sampled during a book run, per chapter and for the whole book, and the
longest idle stretches with the chapters and cells executing then, from a fake sampler feed (no GPU needed)."""

import json
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mfbook import gpu_busy as gb
from conftest import patch_runner
from mfbook import run_book

S = gb.Sample


def test_lines_are_parsed_and_anything_else_is_skipped():
    assert gb.parse_line("37, 1024\n") == (37.0, 1024.0)
    assert gb.parse_line(" 0 , 0") == (0.0, 0.0)
    for bad in ("utilization.gpu, memory.used", "[N/A], 1024", "37", "101, 5", "", "No devices were found"):
        assert gb.parse_line(bad) is None


def test_the_sampler_times_every_line_of_its_command_and_stops_it():
    feed = ("import itertools, time\n"
            "for i in itertools.count():\n"
            "    print('bad line' if i == 1 else f'{10 * (i % 10)}, {100 + i}', flush=True)\n"
            "    time.sleep(0.02)\n")
    t0 = time.perf_counter()
    sampler = gb.Sampler([sys.executable, "-c", feed], t0)
    time.sleep(0.6)
    samples = sampler.stop()
    assert sampler._proc.poll() is not None  # the command was stopped
    assert len(samples) >= 5 and samples[0] == S(samples[0].t_s, 0.0, 100.0) and samples[1].memory_mib == 102.0
    assert all(0 <= a.t_s <= b.t_s for a, b in zip(samples, samples[1:]))
    record = sampler.record()
    assert record["samples"][0] == list(samples[0]) and record["period_ms"] == gb.SAMPLE_PERIOD_MS
    assert record["started_at"].endswith("+00:00") and record["command"].startswith("python")


def test_nothing_is_sampled_on_a_cpu_run_or_without_nvidia_smi(monkeypatch):
    assert isinstance(gb.start_sampler("cpu", 0.0), gb.NoSampler)
    monkeypatch.setattr(gb.shutil, "which", lambda name: None)
    assert gb.sampling_command() is None and isinstance(gb.start_sampler("cuda", 0.0), gb.NoSampler)
    assert gb.start_sampler("cuda", 0.0, command=["/no/such/nvidia-smi"]).stop() == []
    assert gb.write_report("unused", gb.NoSampler().record(), {}, 1.0) is None


def test_the_gpu_index_is_the_first_visible_device(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234,3")
    assert gb.gpu_index() == "GPU-1234"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gb.gpu_index() == "0"


# chapter a from 0 to 4 s, chapter b from 2 to 6 s; the GPU busy at 100 % until 2 s, idle from 2 to 3.5 s, 50 % after
SAMPLES = [S(t / 2, u, 1000.0 + t) for t, u in enumerate([100, 100, 100, 100, 0, 0, 0, 50, 50, 50, 50, 50, 50])]
SPANS = {"a": (0.0, 4.0), "b": (2.0, 6.0)}


def test_busy_fractions_per_chapter_and_for_the_whole_book():
    rows = {r["scope"]: r for r in gb.busy_rows(SAMPLES, SPANS, 6.0)}
    assert list(rows) == ["a", "b", gb.WHOLE_BOOK]
    # a: samples at 0..4 s: 100 ×4, 0 ×3, 50 ×2 → mean 500/9 %; 3 of 9 idle
    assert rows["a"]["busy_fraction"] == round(5.0 / 9, 4) and rows["a"]["idle_fraction"] == round(3 / 9, 4)
    assert rows["a"]["samples"] == 9 and rows["a"]["beside"] == "b" and rows["a"]["max_memory_mib"] == 1008.0
    assert rows["b"]["busy_fraction"] == round(3.0 / 9, 4)  # 2..6 s: 0 ×3, 50 ×6
    assert rows[gb.WHOLE_BOOK]["busy_fraction"] == round(7.0 / 13, 4) and rows[gb.WHOLE_BOOK]["seconds"] == 6.0
    # busy seconds: utilisation × the sample period, summed (here the samples are 0.5 s apart)
    rows = {r["scope"]: r for r in gb.busy_rows(SAMPLES, SPANS, 6.0, period_s=0.5)}
    assert rows["a"]["busy_seconds"] == 2.5 and rows["b"]["busy_seconds"] == 1.5  # 4 × 1 + 2 × 0.5 = 5 s·0.5; 6 × 0.5 × 0.5
    assert rows[gb.WHOLE_BOOK]["busy_seconds"] == 3.5


def test_idle_stretches_are_the_longest_runs_below_the_threshold():
    samples = [S(float(t), u, 0.0) for t, u in enumerate([90, 5, 5, 90, 0, 0, 0, 0, 90, 1])]
    assert gb.idle_stretches(samples, 10.0, 5) == [(4.0, 8.0, 0.0), (1.0, 3.0, 5.0), (9.0, 9.0, 1.0)]
    assert gb.idle_stretches(samples, 10.0, 1) == [(4.0, 8.0, 0.0)]
    assert gb.idle_stretches(samples, 0.5, 5)[0] == (4.0, 8.0, 0.0)


def executed_notebook(path, cells, t0="2026-01-01T00:00:00+00:00"):
    """A papermill notebook whose code cells ran over the (start_s, end_s, source) given, from t0."""
    import datetime as dt

    start = dt.datetime.fromisoformat(t0)
    nb = nbformat.v4.new_notebook()
    for a, b, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["papermill"] = {"start_time": (start + dt.timedelta(seconds=a)).isoformat(),
                                      "end_time": (start + dt.timedelta(seconds=b)).isoformat(), "duration": b - a}
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_markdown_cell("text"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_each_idle_stretch_names_the_chapters_and_cells_executing_then(tmp_path):
    executed_notebook(tmp_path / "a" / "a.ipynb", [(0.2, 1.9, "import torch"), (1.9, 3.9, "# load\nrows = slow()")])
    executed_notebook(tmp_path / "b" / "b.ipynb", [(3.6, 5.9, "train()")])
    cells = {s: gb.notebook_cells(tmp_path / s / f"{s}.ipynb", "2026-01-01T00:00:00+00:00") for s in SPANS}
    assert cells["a"] == [(0.2, 1.9, "cell 1: import torch"), (1.9, 3.9, "cell 2: rows = slow()")]
    assert gb.notebook_cells(tmp_path / "a" / "a.ipynb", "2026-01-01T00:00:00") == cells["a"]  # naive: UTC
    (row,) = gb.idle_rows(SAMPLES, SPANS, cells, 10.0, 5)
    assert (row["rank"], row["start_s"], row["end_s"], row["seconds"], row["chapters"]) == (1, 2.0, 3.5, 1.5, "a, b")
    assert row["cause"] == "a: cell 2: rows = slow() (1.5 s) | b: kernel start-up, before its first cell"
    gap = [S(0.0, 90, 0), S(6.5, 0, 0), S(7.0, 90, 0)]  # after both chapters ended
    assert gb.idle_rows(gap, SPANS, cells)[0]["cause"].startswith("no chapter executing")


def test_the_report_is_written_beside_the_run_record_and_computed_again_with_another_threshold(tmp_path, capsys):
    executed_notebook(tmp_path / "a" / "a.ipynb", [(0.1, 3.9, "work()")])
    executed_notebook(tmp_path / "b" / "b.ipynb", [(2.1, 5.9, "more()")])
    record = {"command": "nvidia-smi", "period_ms": 500, "started_at": "2026-01-01T00:00:00+00:00", "gpu": "0",
              "samples": [list(s) for s in SAMPLES]}
    book = gb.write_report(tmp_path, record, SPANS, 6.0)
    assert book["scope"] == gb.WHOLE_BOOK and "GPU busy 54 % of the book's 6 s" in gb.summary(book)
    busy = pd.read_csv(tmp_path / gb.BUSY_FILE)
    assert list(busy.columns) == list(gb.BUSY_COLUMNS) and busy.scope.tolist() == ["a", "b", gb.WHOLE_BOOK]
    idle = pd.read_csv(tmp_path / gb.IDLE_FILE)
    assert list(idle.columns) == list(gb.IDLE_COLUMNS) and idle.seconds.tolist() == [1.5]
    assert json.loads((tmp_path / gb.SAMPLES_FILE).read_text())["idle_threshold_pct"] == gb.IDLE_THRESHOLD_PCT
    (tmp_path / "book_run.json").write_text(json.dumps(
        {"wall_seconds": 6.0, "chapters": {s: {"start_s": a, "end_s": b} for s, (a, b) in SPANS.items()}}))
    gb.main(["--results", str(tmp_path.parent), "--profile", tmp_path.name, "--threshold", "60"])
    assert "below 60 % utilisation" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / gb.IDLE_FILE).seconds.tolist() == [4.0]  # 0 and 50 % both idle now: 2 s to the end
    with pytest.raises(SystemExit) as stop:
        gb.main(["--results", str(tmp_path), "--profile", "nothing"])
    assert stop.value.code == 2 and "no sampled book run" in capsys.readouterr().err


FEED = ("import itertools, time\n"
        "for i in itertools.count():\n"
        "    print(f'{90 if i % 20 < 10 else 0}, 500', flush=True)\n"
        "    time.sleep(0.05)\n")


def test_a_book_run_writes_the_busy_tables_from_its_sampler(tmp_path, monkeypatch):
    """The runner samples while its chapters execute (here a fake feed and a fake chapter of two cells, the second
    starting 0.7 s into a 1.4 s chapter) and writes the tables beside book_run.json."""
    import datetime as dt

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_tiny.py").write_text("# a chapter\n")
    patch_runner(monkeypatch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    patch_runner(monkeypatch, "RESULTS_DIR", tmp_path / "results")

    def execute(stem, profile, device, seed, results=None):
        t0 = dt.datetime.now(dt.timezone.utc)
        time.sleep(1.4)
        out = Path(results) / profile / stem
        executed_notebook(out / f"{stem}.ipynb", [(0.0, 0.7, "first()"), (0.7, 1.4, "second()")], t0.isoformat())
        (out / "provenance.json").write_text(json.dumps({"started_at": t0.isoformat(timespec="seconds")}))
        return 1.4

    patch_runner(monkeypatch, "execute_notebook", execute)
    monkeypatch.setattr(gb, "start_sampler", lambda device_type, t0: gb.Sampler([sys.executable, "-c", FEED], t0))
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    folder = tmp_path / "results" / "smoke"
    busy = pd.read_csv(folder / gb.BUSY_FILE).set_index("scope")
    assert list(busy.index) == ["01_tiny", gb.WHOLE_BOOK] and busy.loc["01_tiny", "samples"] >= 5
    run = json.loads((folder / "book_run.json").read_text())
    assert busy.loc[gb.WHOLE_BOOK, "seconds"] == pytest.approx(run["wall_seconds"], abs=0.05)
    idle = pd.read_csv(folder / gb.IDLE_FILE)
    assert 1 <= len(idle) <= gb.IDLE_STRETCHES and (idle.seconds > 0).any()
    assert idle.cause.str.contains("01_tiny: cell [12]: (?:first|second)\\(\\)", regex=True).any()


def test_the_site_shows_the_tables_and_the_trace_of_a_sampled_run_or_says_none_was_sampled(tmp_path):
    site, results = tmp_path / "site", tmp_path / "full"
    site.mkdir()
    gb.stage(site, [results])  # nothing sampled yet
    assert "not sampled" in (site / gb.BUSY_FILE).read_text() and (site / "gpu_busy.png").exists()
    assert list(pd.read_csv(site / gb.IDLE_FILE).columns) == list(gb.IDLE_COLUMNS)
    executed_notebook(results / "a" / "a.ipynb", [(0.1, 3.9, "work()")])
    executed_notebook(results / "b" / "b.ipynb", [(2.1, 5.9, "more()")])
    record = {"started_at": "2026-01-01T00:00:00+00:00", "device_name": "GPU X", "samples": [list(s) for s in SAMPLES]}
    gb.write_report(results, record, SPANS, 6.0)
    (results / "book_run.json").write_text(json.dumps(
        {"wall_seconds": 6.0, "chapters": {s: {"start_s": a, "end_s": b} for s, (a, b) in SPANS.items()}}))
    assert gb.draw(tmp_path / "trace.png", results) and not gb.draw(tmp_path / "none.png", tmp_path / "smoke")
    fig = gb.utilisation_figure(json.loads((results / gb.SAMPLES_FILE).read_text()), SPANS, "GPU X")
    assert fig.axes[0].get_title().startswith("The GPU of one GPU X was busy 54 % of the book's 6 s")
    assert fig.axes[1].get_xlabel() == "seconds from the start of the run"
