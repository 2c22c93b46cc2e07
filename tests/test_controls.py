"""Chapter 4c's controls (mfcore.controls): where run_controls' wall time goes, on fake training and settings."""

import types

import pandas as pd
import pytest

from mfcore import controls, fewshot, pretrained, profiles


def _fake_run(monkeypatch, clock_steps):
    """run_controls with its pre-trained models and few_shot_curves faked: every pretrained_fusions call takes
    ``clock_steps`` seconds of a fake clock and returns models carrying 10 s of training per seed; few_shot_curves
    returns one frame row and one timing row per trained setting (finetune_s 2, setting_s 0.5)."""
    calls = {"pretrained": [], "curves": []}
    clock = iter(range(0, 10_000, clock_steps))
    monkeypatch.setattr(controls, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))

    def pretrained_fusions(method, profile, seed, device, *, fusion_seeds, variant="a", progress=True):
        calls["pretrained"].append((variant, method, tuple(fusion_seeds)))
        return [(types.SimpleNamespace(training_seconds=10.0), [1.0]) for _ in fusion_seeds]

    def few_shot_curves(profile, seed, device, *, settings, frame_rows, **kw):
        calls["curves"].append(settings)
        trained = [st for st in settings if st.method != "NoFusion"]
        frame_rows += [dict(method=st.method, k=st.k, variant=st.variant) for st in settings]
        return [], [dict(rig="h36m", trial=0, method=st.method, k=st.k, seed=st.fusion_seed, variant=st.variant,
                         finetune_s=2.0, setting_s=0.5) for st in trained]

    monkeypatch.setattr(pretrained, "pretrained_fusions", pretrained_fusions)
    monkeypatch.setattr(fewshot, "few_shot_curves", few_shot_curves)
    return calls


def test_run_controls_returns_its_timings_when_asked_and_the_same_frames_either_way(monkeypatch):
    prof = controls.controls_profile(profiles.get_profile("full"))  # three seeds; one for the paper's regime
    settings = controls.control_settings(prof)
    calls = _fake_run(monkeypatch, clock_steps=3)
    timings = []
    frames = controls.run_controls(prof, 0, "cpu", progress=False, timings=timings)
    assert calls["curves"] == [settings] and len(frames) == len(settings)
    # the pre-trained models first, all seeds of a (variant, method) at once: MetaFuse is the only pre-trained method
    assert calls["pretrained"] == [("a", "MetaFuse", (0, 1, 2)), ("b", "MetaFuse", (0, 1, 2)),
                                   ("c", "MetaFuse", (0, 1, 2)), ("a-paper", "MetaFuse", (0,)),
                                   ("a-second", "MetaFuse", (0,))]
    pre = [r for r in timings if r["phase"] == "pre-training"]
    assert [(r["variant"], r["seeds"], r["training_s"], r["seconds"]) for r in pre] == [
        ("a", 3, 30.0, 3.0), ("b", 3, 30.0, 3.0), ("c", 3, 30.0, 3.0), ("a-paper", 1, 10.0, 3.0),
        ("a-second", 1, 10.0, 3.0)]
    rows = [r for r in timings if r["phase"] == "setting"]
    assert len(rows) == len(settings) - 1  # every trained setting; NoFusion is the backbone's own maps
    assert all(r["seconds"] == 0.5 and r["finetune_s"] == 2.0 and "setting_s" not in r for r in rows)
    # without timings: the callers of before, the same frames
    again = controls.run_controls(prof, 0, "cpu", progress=False)
    pd.testing.assert_frame_equal(again, frames)


def test_the_wall_time_by_method_and_by_phase():
    timings = pd.DataFrame([
        dict(phase="pre-training", variant="b", method="MetaFuse", seeds=1, training_s=4.0, seconds=5.0),
        dict(phase="setting", rig="h36m", trial=0, method="MetaFuse", k=2, seed=0, variant="b", finetune_s=1.0,
             seconds=2.0),
        dict(phase="setting", rig="dome_heldout", trial=0, method="MetaFuse", k=2, seed=0, variant="b",
             finetune_s=1.5, seconds=0.5),
        dict(phase="setting", rig="h36m", trial=0, method="NaiveFuseFull", k=5, seed=0, variant="a", finetune_s=3.0,
             seconds=1.0)])
    by_method = controls.seconds_by_method(timings)
    assert by_method.to_dict("records") == [
        dict(variant="b", method="MetaFuse", settings=2, training_s=4.0, finetune_s=2.5, seconds=7.5),
        dict(variant="a", method="NaiveFuseFull", settings=1, training_s=0.0, finetune_s=3.0, seconds=1.0)]
    phases = controls.phase_seconds(timings, 10.0)
    assert phases.to_dict("records") == [dict(phase="pre-training", seconds=5.0, share=0.5),
                                         dict(phase="settings", seconds=3.5, share=0.35),
                                         dict(phase="rest", seconds=1.5, share=0.15),
                                         dict(phase="call", seconds=10.0, share=1.0)]
    assert phases.seconds.iloc[:3].sum() == pytest.approx(10.0)


def test_stage_evidence_reads_the_pooled_rows_the_lines_and_the_theta_moves():
    import pandas as pd

    from mfcore import controls, profiles

    prof = profiles.get_profile("smoke")
    k50 = controls._k50(prof)
    rows = []
    for rig, base in (("h36m", 0.0), ("dome_heldout", 1.0)):
        for method, k, d in (("NaiveFuseFull", 32, 3.0), ("AffineFuseFull", 32, 0.3), ("AffineFuseFullCentred", 32, -1.5),
                             ("AffineFuseFullLines", 32, 2.9), ("MetaFuse", k50, 0.01), ("MetaFuse", 999, 9.0)):
            rows.append(dict(variant="a", rig=rig, method=method, k=k, seed="all", delta_points=d + base))
            rows.append(dict(variant="a", rig=rig, method=method, k=k, seed=0, delta_points=-50.0))  # not pooled
        rows.append(dict(variant="a-paper", rig=rig, method="MetaFuse", k=k50, seed="all", delta_points=0.02 + base))
        rows.append(dict(variant="b", rig=rig, method="AffineFuseFullLines", k=32, seed="all", delta_points=-9.0))
    lines = pd.DataFrame([dict(variant="a", seed=s, amplitude=a) for s, a in ((0, -0.004), (1, -0.006))]
                         + [dict(variant="b", seed=0, amplitude=0.08)])
    moves = pd.DataFrame([dict(variant="a", seed=s, k=k, rig="h36m", theta_shift_px=v)
                          for s, k, v in ((0, 8, 0.2), (1, 8, 0.4), (0, 16, 0.5), (1, 16, 0.5))]
                         + [dict(variant="b", seed=0, k=8, rig="h36m", theta_shift_px=5.0)])
    ev = controls.stage_evidence(pd.DataFrame(rows), lines, moves, 0.0364, 2.0, prof)
    assert ev["gains"]["h36m"] == {"NaiveFuseFull": 3.0, "AffineFuseFull": 0.3, "AffineFuseFullCentred": -1.5,
                                   "AffineFuseFullLines": 2.9, "MetaFuse50": 0.01, "MetaFuse50 (a-paper)": 0.02}
    assert ev["gains"]["dome_heldout"]["AffineFuseFullLines"] == 3.9
    assert ev["amplitude_mean"] == -0.005 and (ev["amplitude_min"], ev["amplitude_max"]) == (-0.006, -0.004)
    assert ev["theta_shift_px"] == {8: pytest.approx(0.3), 16: 0.5} and ev["start_amplitude"] == 0.0364
