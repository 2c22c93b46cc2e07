"""The speed helpers measure what they say (shapes of the result, ratios to NaiveFuse), on tiny CPU sizes."""

import pytest
import torch

from mfcore import profiles
from mfbook import speed


def test_fusion_step_times_reports_every_phase_with_naive_as_the_unit():
    rows = speed.fusion_step_times(torch.device("cpu"), batch=2, views=2, joints=3, side=8,
                                   methods=("NaiveFuse", "AffineFuse"), warmup=1, repeats=1)
    assert {(r["method"], r["phase"]) for r in rows} == {
        (m, p) for m in ("NaiveFuse", "AffineFuse") for p in ("fwd_bwd", "step", "infer")}
    assert all(r["ms"] > 0 for r in rows)
    assert all(r["ratio_to_naive"] == 1.0 for r in rows if r["method"] == "NaiveFuse")


def test_unknown_fusion_method_is_named():
    with pytest.raises(ValueError, match="'Fancy'"):
        speed.fusion_step_times(torch.device("cpu"), methods=("Fancy",))


def test_fused_inference_is_positive_milliseconds_per_image():
    ms = speed.fused_inference_ms(profiles.get_profile("smoke"), torch.device("cpu"), batch_frames=1, warmup=0,
                                  repeats=1)
    assert 0 < ms < 10_000


def test_time_ms_is_the_median_of_the_repeats(monkeypatch):
    # perf_counter readings around three repeats lasting 5, 1 and 3 ms: the median is 3 ms
    clock = iter([0.0, 0.005, 1.0, 1.001, 2.0, 2.003])
    monkeypatch.setattr(speed.time, "perf_counter", lambda: next(clock))
    assert speed.time_ms(lambda: None, torch.device("cpu"), warmup=0, repeats=3) == pytest.approx(3.0)


def test_the_bare_backbone_loop_reports_images_per_second_of_its_batch(monkeypatch):
    monkeypatch.setattr(speed, "time_ms", lambda fn, device, warmup, repeats: (fn(), 250.0)[1])  # one real step
    smoke = profiles.get_profile("smoke")
    assert speed.bare_backbone_images_per_s(smoke, torch.device("cpu")) == pytest.approx(smoke.backbone.batch_size / 0.25)
