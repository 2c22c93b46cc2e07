"""Bring your own cameras (MetaFuse Sec. 4.3 on a user's rig): rig file → validated rig → θ finetuned on K frames.

The rendering and the warm-up backbone are replaced by tiny exact heatmaps of real poses seen by the rig's cameras, and
the meta-trained pair model by a seeded random one, so that every test runs in well under a second or two.
"""

import dataclasses
from pathlib import Path

import pytest
import torch

from mfbook import adapt as adapt_cli
from conftest import needs_git, patch_runner
from mfcore import (adapt, adaptation, backbone, data, fusion, geometry, maml, metrics, motion, pretrained,
                    profiles, studio)

CEILING5 = Path(__file__).resolve().parents[1] / "mfcore" / "rigs" / "ceiling5.yaml"


def _tiny_profile():
    smoke = profiles.get_profile("smoke")
    return dataclasses.replace(
        smoke, name="tiny",
        studio=dataclasses.replace(smoke.studio, image_px=32, heatmap_px=8, heatmap_sigma_px=0.5),
        metafuse=dataclasses.replace(smoke.metafuse, target_train_frames=6, target_test_frames=4, finetune_steps=3,
                                     batch_size=4))


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A tiny profile; cached_heatmaps → exact Gaussians (+ seeded noise) of real poses in the rig's cameras;
    pretrained_fusion → a seeded random MetaFuse pair model. Records every call."""
    prof = _tiny_profile()
    calls = {"heatmaps": [], "pretrained": []}
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(7)
    pair = maml.pair_model("affine", prof.studio.heatmap_px)
    with torch.no_grad():
        pair.omega_base.copy_(0.1 * torch.rand(pair.omega_base.shape, generator=g))
        pair.theta.add_(0.02 * torch.randn(pair.theta.shape, generator=g))

    def fake_heatmaps(rig_name, split, n_frames, profile, seed, device, *, views=None, backbone_seed=None, **kw):
        calls["heatmaps"].append((rig_name, split, n_frames, seed, backbone_seed))
        rig = studio.get_rig(rig_name).at_resolution(profile.studio.image_px)
        X, _ = motion.sample_poses(split, n_frames, seed)
        P = rig.projections()
        x = geometry.project(P, X)
        s = profile.studio
        target = data.gaussian_heatmaps(geometry.scale_pixels(x, s.image_px, s.heatmap_px), s.heatmap_px,
                                        s.heatmap_sigma_px)
        noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed))
        return {"pred": target + 0.5 * noise, "target": target, "joints_2d_px": x,
                "visible": torch.ones(x.shape[:-1], dtype=torch.bool), "joints_3d_m": X, "projections": P,
                "focal_px": rig.focal_px(), "sensor_px_per_view_px": rig.sensor_px_per_view_px()}

    def fake_pretrained(method, profile, seed, device, *, fusion_seed=None, variant="a", progress=True):
        calls["pretrained"].append(method)
        model = maml.pair_model("affine", profile.studio.heatmap_px)
        model.load_state_dict(pair.state_dict())
        return model, [0.0]

    monkeypatch.setattr(backbone, "cached_heatmaps", fake_heatmaps)
    monkeypatch.setattr(pretrained, "pretrained_fusion", fake_pretrained)
    adaptation._pretrained.cache_clear()
    return dict(profile=prof, calls=calls, pair=pair, tmp=tmp_path)


# ----------------------------------------------------------------------------------------------------------------------
# the rig file


def test_ceiling5_is_a_valid_five_camera_rig_unlike_the_built_in_ones():
    rig = studio.load_rig(CEILING5)
    assert rig.num_views == 5 and rig.name == "ceiling5"
    assert all(studio.sees_volume(c) for c in rig.cameras)
    heights = rig.centers_m()[:, 2]
    assert (heights >= 2.7).all() and heights.max() > 4.0  # four high on the walls, one under the ceiling
    assert all(r.num_views != 5 for r in (studio.dome_rig(), studio.h36m_rig(1), studio.totalcapture_rig()))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_rig_file_round_trip_gives_the_same_adapt_input(tmp_path, suffix):
    prof = _tiny_profile()
    original = adapt.load_target_rig(CEILING5, prof)
    assert original.image_px == prof.studio.image_px
    path = studio.save_rig(studio.load_rig(CEILING5), tmp_path / f"copy{suffix}")
    again = adapt.load_target_rig(path, prof)
    from_object = adapt.load_target_rig(studio.load_rig(CEILING5), prof)
    for rig in (again, from_object):
        assert [c.name for c in rig.cameras] == [c.name for c in original.cameras]
        assert torch.equal(rig.projections(dtype=torch.float64), original.projections(dtype=torch.float64))


def test_rig_object_gets_the_same_validation_as_a_file():
    rig = studio.load_rig(CEILING5)
    away = studio.framed_camera((0.0, 4.0, 1.5), (0.0, 0.0, 1.0), name="looks_away")
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # 180° about the camera x axis
    turned = geometry.Camera(away.K, flip @ away.R, flip @ away.t, away.image_px, "looks_away")  # same centre
    with pytest.raises(ValueError, match="looks_away.*capture volume"):
        adapt.load_target_rig(studio.Rig("bad", rig.cameras[:2] + [turned]), _tiny_profile())
    with pytest.raises(ValueError, match="at least 2 cameras"):
        adapt.load_target_rig(rig.subset([0]), _tiny_profile())


def test_missing_rig_file_names_the_path(tiny, tmp_path):
    missing = tmp_path / "nowhere" / "my_rig.yaml"
    with pytest.raises(ValueError, match=r"nowhere/my_rig\.yaml.*does not exist"):
        adapt.adapt_to_rig(missing, 2, tiny["profile"], 0, "cpu")
    (tmp_path / "my_rig.txt").write_text("cameras: []\n")  # a file that exists, of no format the book reads
    with pytest.raises(ValueError, match=r"my_rig\.txt.*suffix"):
        adapt.adapt_to_rig(tmp_path / "my_rig.txt", 2, tiny["profile"], 0, "cpu")
    assert tiny["calls"]["heatmaps"] == []


@pytest.mark.parametrize("k", [0, -1, 7, 2.5, True, "4"])
def test_bad_k_names_k_and_the_valid_range_before_any_work(tiny, k):
    with pytest.raises(ValueError, match=rf"K={k!r}.*1\.\.6"):
        adapt.adapt_to_rig(CEILING5, k, tiny["profile"], 0, "cpu")
    assert tiny["calls"] == {"heatmaps": [], "pretrained": []}


def test_a_rigs_cache_identity_is_its_camera_numbers(tiny):
    rig = adapt.load_target_rig(CEILING5, tiny["profile"])
    a, b = studio.rig_digest(rig), studio.rig_digest(adapt.load_target_rig(CEILING5, tiny["profile"]))
    assert a == b
    moved = geometry.Camera(rig.cameras[0].K, rig.cameras[0].R, rig.cameras[0].t + 1e-9, rig.image_px,
                            rig.cameras[0].name)
    assert studio.rig_digest(studio.Rig(rig.name, [moved, *rig.cameras[1:]])) != a


# ----------------------------------------------------------------------------------------------------------------------
# adaptation (Sec. 4.3)


def test_adaptation_moves_theta_only_omega_base_bit_identical(tiny):
    res = adapt.adapt_to_rig(CEILING5, 4, tiny["profile"], 0, "cpu", lift_3d=False)
    pair = tiny["pair"]
    assert res.model.num_views == 5 and len(res.model.pairs) == 20
    assert torch.equal(res.model.omega_base, pair.omega_base)  # ω_base never moves (Sec. 4.3)
    start = fusion.for_rig(pair, 5).theta
    assert not torch.equal(res.model.theta, start)  # θ was finetuned
    assert len(res.shots) == 4 and len(set(res.shots.tolist())) == 4
    assert tiny["calls"]["pretrained"] == ["MetaFuse"]
    # the pool (train motions, seed + 1) and the test set (test motions, seed + 2), both with the backbone of seed
    assert [c[1:] for c in tiny["calls"]["heatmaps"]] == [("train", 6, 1, 0), ("test", 4, 2, 0)]


def test_jdr_table_is_tidy_per_method_and_joint(tiny):
    res = adapt.adapt_to_rig(CEILING5, 2, tiny["profile"], 0, "cpu", trials=2)
    t = res.jdr
    assert list(t.columns) == ["rig", "method", "k", "trial", "joint", "jdr", "threshold"]
    assert set(t.method) == {"NoFusion", "EpipolarFusion", "MetaFuse"} and set(t.rig) == {"ceiling5"}
    assert set(t[t.method != "MetaFuse"].k) == {0} and set(t[t.method == "MetaFuse"].trial) == {0, 1}
    assert set(t.threshold) == {"half_head", "quarter_head"}  # the papers' JDR (12.8 sensor px) and half of it
    joints = t[(t.method == "NoFusion") & (t.threshold == "half_head")].joint.tolist()
    assert joints[0] == "mean" and len(joints) == 1 + len(metrics.JOINT_GROUPS) + 17
    assert len(res.mean_jdr()) == len(res.mean_jdr("quarter_head")) == 3 * len(joints)  # trials averaged
    assert t.jdr.between(0, 1).all() and len(res.finetune_s) == 2 and all(s > 0 for s in res.finetune_s)
    table = res.table()
    assert list(table.columns) == ["NoFusion", "EpipolarFusion", "MetaFuse^2", "gain"] and table.index[0] == "mean"
    assert torch.allclose(torch.tensor(table.gain.values), torch.tensor((table["MetaFuse^2"] - table.NoFusion).values))
    m = res.mpjpe_frames  # the 3D error after the RPSM of every method, frame by frame
    assert list(m.columns) == ["rig", "method", "k", "trial", "frame", "mpjpe_mm"] and (m.mpjpe_mm > 0).all()
    assert len(m) == res.test_frames * (2 + 2) and set(m[m.method == "MetaFuse"].trial) == {0, 1}
    iv = res.mpjpe_interval("EpipolarFusion")
    assert iv.n == res.test_frames and iv.low <= iv.diff <= iv.high
    assert res.mpjpe_interval().clusters == 2  # MetaFuse's two trials: a two-stage bootstrap
    comparison = res.comparison()
    assert list(comparison.method) == ["NoFusion", "EpipolarFusion", "MetaFuse^2"]
    assert comparison.jdr.iloc[0] == pytest.approx(table.loc["mean", "NoFusion"])


def test_gain_interval_pairs_the_same_test_frames_and_its_mean_is_the_pooled_jdr_difference(tiny):
    res = adapt.adapt_to_rig(CEILING5, 2, tiny["profile"], 0, "cpu", trials=2, lift_3d=False)
    f = res.frames
    assert list(f.columns) == ["rig", "method", "k", "trial", "frame", "joint", "detected", "counted"]
    assert f[f.method == "NoFusion"].frame.nunique() == res.test_frames
    iv = res.gain_interval("mean")
    assert iv.low <= iv.diff <= iv.high and iv.n == 2 * res.test_frames and iv.clusters == 2
    # the same per-frame rates weighted by the joints counted: the pooled JDR of each method, in points
    d = f[(f.joint == "mean") & (f.counted > 0)]
    pooled = {m: g.detected.sum() / g.counted.sum() for m, g in d.groupby("method")}
    base = d[d.method == "NoFusion"]
    assert iv.diff == pytest.approx(100 * (pooled["MetaFuse"] - base.detected.sum() / base.counted.sum()))
    with pytest.raises(ValueError, match="no per-frame detections for joint 'nose'"):
        res.gain_interval("nose")


def test_same_seed_same_adapted_model_and_table(tiny):
    a = adapt.adapt_to_rig(CEILING5, 3, tiny["profile"], 0, "cpu", lift_3d=False)
    b = adapt.adapt_to_rig(CEILING5, 3, tiny["profile"], 0, "cpu", lift_3d=False)
    assert torch.equal(a.model.theta, b.model.theta)
    assert a.jdr.equals(b.jdr)


# ----------------------------------------------------------------------------------------------------------------------
# adapted parameters on disk


def test_adapted_parameters_save_load_round_trip_weights_only(tiny):
    res = adapt.adapt_to_rig(CEILING5, 2, tiny["profile"], 0, "cpu", lift_3d=False)
    path = adapt.save_adapted(res.model, tiny["tmp"] / "out" / "adapted.pt")
    state = torch.load(path, weights_only=True)
    assert set(state) == {"omega_base", "theta"}
    assert not list(path.parent.glob(".*tmp*"))  # atomic: no temporary file left
    loaded = adapt.load_adapted(path, CEILING5)
    assert torch.equal(loaded.omega_base, res.model.omega_base) and torch.equal(loaded.theta, res.model.theta)
    x = torch.rand(2, 5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(x), res.model(x))
    with pytest.raises(ValueError, match=r"20 ordered pairs.*3 views = 6 ordered pairs"):
        adapt.load_adapted(path, studio.load_rig(CEILING5).subset([0, 1, 2]))
    with pytest.raises(ValueError, match=r"missing\.pt.*does not exist"):
        adapt.load_adapted(tiny["tmp"] / "missing.pt", CEILING5)


# ----------------------------------------------------------------------------------------------------------------------
# the command


def test_command_adapts_prints_the_table_and_saves(tiny, monkeypatch, capsys):
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    out = tiny["tmp"] / "adapted.pt"
    assert adapt_cli.main([str(CEILING5), "--k", "2", "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NoFusion" in text and "MetaFuse^2" in text and "mean" in text
    assert adapt.load_adapted(out, CEILING5).num_views == 5
    assert adapt_cli.command_line("my.yaml", 8) == "python -m mfbook.adapt my.yaml --k 8 --profile smoke"


@needs_git
def test_command_writes_by_default_into_an_ignored_folder(tiny, monkeypatch, capsys, tmp_path):
    import subprocess

    default = adapt_cli.default_out("my rig", 3)
    assert default.parent.relative_to(adapt_cli.REPO_ROOT).as_posix() == "_build/adapted"
    assert subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=adapt_cli.REPO_ROOT).returncode == 0
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    monkeypatch.setattr(adapt_cli, "DEFAULT_OUT_DIR", tmp_path / "_build" / "adapted")
    assert adapt_cli.main([str(CEILING5), "--k", "2", "--device", "cpu"]) == 0
    assert (tmp_path / "_build" / "adapted" / "adapted_ceiling5_k2.pt").is_file()


def test_command_prints_its_table_before_an_unwritable_out_and_says_so_in_one_line(tiny, monkeypatch, capsys):
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    assert adapt_cli.main([str(CEILING5), "--k", "2", "--device", "cpu", "--out", "/proc/x.pt"]) == 2
    captured = capsys.readouterr()
    assert "NoFusion" in captured.out and "MetaFuse^2" in captured.out
    (line,) = [line for line in captured.err.splitlines() if line.startswith("error")]  # (the rest: progress bars)
    assert "/proc/x.pt" in line and "Traceback" not in captured.err


def test_command_bad_input_is_a_clear_error(capsys, tmp_path):
    assert adapt_cli.main([str(CEILING5), "--k", "0"]) == 2
    assert "K=0" in capsys.readouterr().err
    assert adapt_cli.main([str(tmp_path / "absent.yaml"), "--k", "4"]) == 2
    assert "absent.yaml" in capsys.readouterr().err


@pytest.fixture
def numerics():
    """Restore torch's thread count and deterministic flag after a command that sets the chapters' settings."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_command_refuses_the_full_profile_without_a_gpu_as_the_book_runner_does(tiny, monkeypatch, capsys):
    patch_runner(monkeypatch, "resolve_device", lambda device: torch.device("cpu"))  # a machine without CUDA
    assert adapt_cli.main([str(CEILING5), "--k", "4", "--profile", "full"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'full' needs a CUDA GPU" in err and "--device cpu" in err
    assert tiny["calls"]["heatmaps"] == [] and tiny["calls"]["pretrained"] == []  # refused before any work


def test_command_uses_the_chapters_numeric_settings_before_any_work(tiny, monkeypatch, capsys, numerics):
    from mfbook import chapter

    order = []
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    real = chapter.apply_numeric_settings
    monkeypatch.setattr(chapter, "apply_numeric_settings", lambda dev: (order.append(("numerics", str(dev))),
                                                                        real(dev)))
    heatmaps = backbone.cached_heatmaps  # the tiny fixture's stand-in
    monkeypatch.setattr(backbone, "cached_heatmaps", lambda *a, **kw: (order.append(("heatmaps",)), heatmaps(*a, **kw))[1])
    assert adapt_cli.main([str(CEILING5), "--k", "2", "--device", "cpu", "--out", str(tiny["tmp"] / "a.pt")]) == 0
    assert order[0] == ("numerics", "cpu") and ("heatmaps",) in order
    assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()  # what open_chapter sets


def test_command_says_what_it_does_and_recommends_a_fusion_by_evidence(tiny, monkeypatch, capsys, numerics):
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    assert adapt_cli.main([str(CEILING5), "--k", "2", "--device", "cpu", "--out", str(tiny["tmp"] / "a.pt")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("… rendering") and "… MetaFuse^2, trial 1 of 1" in out
    assert "EpipolarFusion" in out and "MPJPE (mm)" in out and "recommended fusion for this rig: " in out


@pytest.mark.parametrize("key", ["colmap", "opencv"])
def test_the_load_hint_works_for_imported_calibrations(tiny, monkeypatch, capsys, tmp_path, numerics, key):
    import re
    import warnings

    from mfcore import calibration

    path = {"colmap": lambda r: calibration.write_colmap(r, tmp_path / "cal" / "colmap"),
            "opencv": lambda r: calibration.write_opencv(r, tmp_path / "cal" / "rig.yml")}[key](studio.load_rig(CEILING5))
    monkeypatch.setattr(adapt_cli, "get_profile", lambda name: tiny["profile"])
    out = tmp_path / "adapted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # COLMAP: its scale is inferred (a warning says so)
        assert adapt_cli.main([str(path), "--k", "2", "--device", "cpu", "--up", "+z", "--out", str(out)]) == 0
    hint = re.search(r"load with (mfcore\.adapt\.load_adapted\(.*?\)),", capsys.readouterr().out).group(1)
    assert hint == f"mfcore.adapt.load_adapted({str(out)!r}, {str(path)!r}, up='+z')"
    assert adapt.load_adapted(out, str(path), up="+z").num_views == 5  # what the hint runs


def _result(errors: dict, k: int = 4) -> adapt.AdaptResult:
    """An AdaptResult of 40 test frames whose per-frame 3D errors are ``errors[method]`` (mm) and JDRs all 0.5."""
    frames = [dict(rig="r", method=m, k=k if m == "MetaFuse" else 0, trial=0, frame=i, joint="mean", detected=1,
                   counted=2) for m in adapt.COMPARED for i in range(40)]
    jdr = [dict(rig="r", method=m, k=k if m == "MetaFuse" else 0, trial=0, joint="mean", jdr=0.5,
                threshold="half_head") for m in adapt.COMPARED]
    mm = [dict(rig="r", method=m, k=k if m == "MetaFuse" else 0, trial=0, frame=i, mpjpe_mm=float(errors[m][i]))
          for m in adapt.COMPARED for i in range(40)]
    import pandas as pd

    return adapt.AdaptResult(rig=None, k=k, model=None, jdr=pd.DataFrame(jdr), finetune_s=[1.0], shots=None,
                             pool_frames=8, test_frames=40, frames=pd.DataFrame(frames), mpjpe_frames=pd.DataFrame(mm))


def test_the_recommendation_is_the_best_fusion_whose_interval_beats_nofusion_else_nofusion():
    g = torch.Generator().manual_seed(0)
    base = 50 + 10 * torch.rand(40, generator=g, dtype=torch.float64)
    noise = lambda: torch.randn(40, generator=g, dtype=torch.float64)  # noqa: E731
    clear = _result({"NoFusion": base, "EpipolarFusion": base - 8 + noise(), "MetaFuse": base - 3 + noise()})
    table = clear.comparison()
    assert list(table.method) == ["NoFusion", "EpipolarFusion", "MetaFuse^4"]
    assert table.mpjpe_diff_mm.iloc[1] == pytest.approx(float((clear.mpjpe_frames.query("method == 'EpipolarFusion'")
                                                              .mpjpe_mm.to_numpy() - base.numpy()).mean()))
    assert (table.mpjpe_ci_low <= table.mpjpe_diff_mm).all() and (table.mpjpe_diff_mm <= table.mpjpe_ci_high).all()
    assert clear.recommendation()[0] == "EpipolarFusion"  # both below zero: the lower error wins
    tie = _result({"NoFusion": base, "EpipolarFusion": base + 0.1 * noise(), "MetaFuse": base + 0.1 * noise()})
    best, why = tie.recommendation()
    assert best == "NoFusion" and "no fusion's paired interval lies wholly below" in why
    worse = _result({"NoFusion": base, "EpipolarFusion": base + 5, "MetaFuse": base - 2 + 0.1 * noise()})
    assert worse.recommendation()[0] == "MetaFuse^4"
