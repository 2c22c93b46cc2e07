"""mfcore.cuda_graphs: a key's first call runs eagerly, its second captures a graph that later calls replay; a failing
capture falls back to eager work with a warning. The capture tests need a GPU (skipped elsewhere)."""

import pytest
import torch

from mfcore.cuda_graphs import LRU, GraphRunner

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_the_lru_keeps_the_most_recently_used_entries():
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.take("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert list(lru) == ["a", "c"] and lru.take("b") is None


def test_off_the_gpu_every_call_runs_eagerly():
    runner = GraphRunner("cpu")
    calls = []
    for _ in range(3):
        runner.run("k", lambda: calls.append(1))
    assert len(calls) == 3 and runner.captured == 0 and not runner.enabled


@cuda
def test_the_second_call_captures_and_later_calls_replay_with_new_inputs():
    x, y = torch.zeros(8, device="cuda"), torch.zeros(8, device="cuda")
    runner = GraphRunner("cuda")
    eager_calls = []

    def fn():
        eager_calls.append(1)
        y.copy_(x * 2 + 1)

    for value in (1.0, 2.0, 3.0, 4.0):
        x.fill_(value)
        runner.run(("double", 8), fn)
        assert torch.equal(y, torch.full_like(y, 2 * value + 1))
    assert runner.captured == 1 and len(eager_calls) == 3  # first call, warm-up and capture run the Python
    runner.forget(lambda key: False)
    assert not runner.graphs


@cuda
def test_a_capture_that_fails_warns_and_the_work_runs_eagerly():
    x, y = torch.ones(4, device="cuda"), torch.zeros(4, device="cuda")
    runner = GraphRunner("cuda")

    def fn():  # reading a value back to the host cannot be captured
        y.fill_(float(x.sum().item()))

    runner.run("sync", fn)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        runner.run("sync", fn)
    assert not runner.enabled and torch.equal(y, torch.full_like(y, 4.0))
    runner.run("sync", fn)
    assert runner.captured == 0
