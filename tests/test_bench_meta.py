"""benchmarks/bench_meta.py runs on the CPU in seconds and reports every row the issue's acceptance reads."""


import pandas as pd
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def bench_meta():
    return load_script("benchmarks/bench_meta.py")


def test_bench_meta_reports_batched_and_looped_steps_and_their_ratios(bench_meta, tmp_path):
    out = tmp_path / "bench_meta.csv"
    rows = bench_meta.main(["--device", "cpu", "--quick", "--side", "4", "--pool", "12", "--out", str(out)])
    table = pd.read_csv(out)
    assert len(table) == len(rows) and set(table.columns) >= {"metric", "value", "unit", "note", "device"}
    metrics = set(table.metric)
    for expected in ("meta-training outer step, 2 tasks x 1 seed", "meta-training outer step, 4 tasks x 2 seeds",
                     "meta-training outer step, 2 tasks, looped", "meta-training outer step time, 4 / 2 tasks",
                     "meta-training outer step time, 2 / 1 seeds",
                     "meta-training task updates per second, 4 tasks x 2 seeds / looped",
                     "MetaFuse finetuning step, 2 members at once", "MetaFuse finetuning step time, 2 / 1 members",
                     "meta-training outer step, 2 tasks x 1 seed: compute operators per step"):
        assert expected in metrics, expected
    assert (table.value > 0).all() and set(table.unit) <= {"ms", "tasks/s", "ratio", "count"}
    ops = table[table.metric.str.endswith("compute operators per step")].set_index("metric").value
    # one program whatever the tasks and seeds: the operators per step hardly grow with 4x the tasks
    assert ops["meta-training outer step, 4 tasks x 2 seeds: compute operators per step"] \
        < 1.2 * ops["meta-training outer step, 2 tasks x 1 seed: compute operators per step"]


@pytest.mark.parametrize("args, match", [(["--tasks", "4", "2"], "--tasks must be two increasing"),
                                         (["--steps", "0"], "--steps must be >= 1"),
                                         (["--side", "1"], "--side must be >= 2")])
def test_bench_meta_bad_arguments_are_one_line_errors(bench_meta, capsys, args, match):
    with pytest.raises(SystemExit) as exit_info:
        bench_meta.main(["--device", "cpu", *args])
    assert exit_info.value.code == 2 and match in capsys.readouterr().err
