"""Meta-training (MetaFuse Eq. (4)-(6)), meta-testing (Sec. 4.3) and the baselines, on tiny random heatmaps."""

import dataclasses
import math

import pytest
import torch

from mfcore import adaptation, fewshot, fusion, maml, metrics, optim, oracle, profiles, targets, training


def _data(n=6, v=3, j=2, side=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, v, j, side, side, generator=g)
    target = torch.rand(n, v, j, side, side, generator=g)
    return pred, target


def _nonzero_pair_model(kind, side=4, seed=0):
    model = maml.pair_model(kind, side)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("k", [0, -3, 11, 2.5, True])
def test_bad_k_is_a_clear_error(k):
    with pytest.raises(ValueError, match=rf"K={k!r}.*pool of 10"):
        fewshot.select_shots(10, k, seed=0)


def test_select_shots_is_seeded_and_distinct():
    a = fewshot.select_shots(10, 4, seed=3)
    assert a.tolist() == fewshot.select_shots(10, 4, seed=3).tolist()
    assert len(set(a.tolist())) == 4 and a.max() < 10
    assert fewshot.select_shots(10, 10, seed=0).tolist() == list(range(10))


@pytest.mark.parametrize("kind", ["affine", "naive"])
def test_one_inner_maml_step_equals_a_hand_written_sgd_step(kind):
    model = _nonzero_pair_model(kind)
    pred, target = _data(v=2)
    alpha = 0.5
    params = dict(model.named_parameters())
    adapted = maml.inner_update(model, params, pred, target, alpha)
    # by hand: Eq. (3) on view 0 (the target of the pair), then p - alpha * grad
    fused = model(pred)
    loss = ((fused[:, 0] - target[:, 0]) ** 2).mean()
    grads = torch.autograd.grad(loss, list(params.values()))
    for (name, p), g in zip(params.items(), grads):
        assert torch.allclose(adapted[name], p - alpha * g, atol=1e-6), name
        assert adapted[name].requires_grad  # second order: the adapted parameters stay in the graph


def test_meta_testing_changes_theta_only():
    pair = _nonzero_pair_model("affine")
    rig = fusion.for_rig(pair, 3)
    omega0, theta0 = rig.omega_base.detach().clone(), rig.theta.detach().clone()
    pred, target = _data(v=3)
    maml.finetune(rig, pred, target, steps=3, lr=5e-3, batch_size=4, seed=0, progress=False)
    assert torch.equal(rig.omega_base, omega0)  # bit-identical
    assert not torch.equal(rig.theta, theta0)
    assert not rig.omega_base.requires_grad


def test_meta_train_learns_and_is_deterministic():
    pred, target = _data(n=8, v=3)
    runs = []
    for _ in range(2):
        model = _nonzero_pair_model("affine")
        losses = maml.meta_train(model, pred, target, views=(0, 1, 2), iterations=3, tasks_per_step=2, task_train=3,
                                 task_test=3, inner_lr=0.1, outer_lr=1e-2, seed=1, progress=False)
        runs.append((losses, model.omega_base.detach().clone()))
    assert len(runs[0][0]) == 3 and all(torch.isfinite(torch.tensor(runs[0][0])))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], _nonzero_pair_model("affine").omega_base)  # omega_base moved


def test_second_order_meta_gradient_differs_from_first_order():
    pred, target = _data(n=6, v=2)
    grads = {}
    for first_order in (False, True):
        model = _nonzero_pair_model("naive")
        params = dict(model.named_parameters())
        adapted = maml.inner_update(model, params, pred[:3], target[:3], 5.0, first_order=first_order)
        outer = maml.eq3_loss(model, adapted, pred[3:], target[3:])
        (grads[first_order],) = torch.autograd.grad(outer, [params["weight"]])
    # first order: the outer gradient is the plain gradient at the adapted point
    model = _nonzero_pair_model("naive")
    adapted = maml.inner_update(model, dict(model.named_parameters()), pred[:3], target[:3], 5.0, first_order=True)
    w = adapted["weight"].detach().requires_grad_()
    (plain,) = torch.autograd.grad(maml.eq3_loss(model, {"weight": w}, pred[3:], target[3:]), [w])
    assert torch.allclose(grads[True], plain, atol=1e-7)
    assert not torch.allclose(grads[False], grads[True], atol=1e-7)


def test_train_fusion_lowers_the_loss_and_freezes_what_is_not_trainable():
    pred, target = _data(n=8, v=2)
    target = pred.clone()
    target[:, 0] += 0.3 * pred[:, 1]  # a relation NaiveFuse can learn exactly
    model = fusion.NaiveFuse(2, 4)
    losses = maml.train_fusion(model, pred, target, steps=60, lr=1e-2, batch_size=8, seed=0, progress=False)
    assert losses[-1] < 0.2 * losses[0]
    affine = fusion.AffineFuse(2, 4)
    maml.train_fusion(affine, pred, target, steps=2, lr=1e-2, batch_size=4, trainable=("omega_base",), progress=False)
    assert torch.equal(affine.theta, fusion.identity_theta(2, 16)) and affine.omega_base.abs().sum() > 0


def test_pretrain_model_covers_every_pair_of_the_selected_cameras():
    pred, target = _data(n=4, v=4)
    model = maml.pretrain_model("naive", pred, target, steps=2, lr=1e-3, batch_size=4, progress=False)
    assert len(model.pairs) == 12 and model.weight.abs().sum() > 0
    fused = maml.fuse_frames(fusion.for_rig(model, 4), pred, batch_size=3)
    assert fused.shape == pred.shape


def test_bad_meta_arguments_are_clear_errors():
    pred, target = _data(n=4, v=3)
    model = maml.pair_model("affine", 4)
    with pytest.raises(ValueError, match="task_train \\+ task_test = 6"):
        maml.meta_train(model, pred, target, views=(0, 1), iterations=1, tasks_per_step=1, task_train=3, task_test=3,
                        inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="beyond the 3 cached views"):
        maml.meta_train(model, pred, target, views=(0, 5), iterations=1, tasks_per_step=1, task_train=1, task_test=1,
                        inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="pair model"):
        maml.meta_train(fusion.AffineFuse(3, 4), pred, target, views=(0, 1), iterations=1, tasks_per_step=1,
                        task_train=1, task_test=1, inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="unknown fusion kind"):
        maml.pair_model("capsule", 4)
    with pytest.raises(ValueError, match="fuses 2 views but the data hold 3"):
        maml.train_fusion(fusion.NaiveFuse(2, 4), pred, target, steps=1, lr=1e-3, batch_size=2, progress=False)


def test_jdr_and_the_fig6_pick_on_a_hand_made_case(monkeypatch):
    # one frame, one view, 2 joints on an 8x8 heatmap of a 32 px image: joint 0 detected right, joint 1 wrong
    side, image_px = 8, 32
    gt_hm = torch.tensor([[[2.0, 2.0], [5.0, 5.0]]])  # (V=1, J=2, 2) heatmap px
    gt_px = (gt_hm + 0.5) * image_px / side - 0.5
    pred = torch.zeros(1, 1, 2, side, side)
    pred[0, 0, 0, 2, 2] = 1.0
    pred[0, 0, 1, 0, 7] = 1.0  # far from (5, 5)
    fused = pred.clone()
    fused[0, 0, 1, 5, 5] = 2.0  # fusion moves joint 1's maximum to the truth
    # a sensor of 6.4 px per image px: half a head (12.8 sensor px) is 2 image px, a quarter head 1 image px
    labels = {"joints_2d_px": gt_px[None], "joints_3d_m": torch.zeros(1, 2, 3),
              "projections": torch.zeros(1, 3, 4), "focal_px": torch.ones(1),
              "sensor_px_per_view_px": torch.full((1,), 6.4)}
    assert metrics.heatmap_jdr(pred, labels, image_px).tolist() == [1.0, 0.0]
    assert metrics.heatmap_jdr(fused, labels, image_px).tolist() == [1.0, 1.0]
    assert oracle.pick_corrected_joint(pred, fused, labels, image_px) == (0, 0, 1)
    # joint 0's maximum sits exactly on its label, joint 1's (fused) too: both within a quarter head
    assert metrics.heatmap_jdr(fused, labels, image_px, "quarter_head").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="'nope'"):
        metrics.heatmap_jdr(pred, labels, image_px, "nope")
    # the maxima once, every threshold from them: the same JDR; maxima of other frames are a clear error
    peaks = metrics.heatmap_peaks_px(fused, image_px)
    assert peaks.shape == (1, 1, 2, 2) and metrics.peak_jdr(peaks, labels, image_px).tolist() == [1.0, 1.0]
    big = _fake_set(3, 2, 4, seed=3)  # 17 joints: the rows of every joint group
    assert metrics.peak_jdr_rows(metrics.heatmap_peaks_px(big["pred"], 16), big, 16, method="m") \
        == metrics.jdr_rows(big["pred"], big, 16, method="m")
    with pytest.raises(ValueError, match="differ"):
        metrics.peak_jdr(peaks[:, :, :1], labels, image_px)


# ----------------------------------------------------------------------------------------------------------------------
# target rigs and the one cached adaptation that chapters 4 and 5 share

def _tiny_profile():
    import dataclasses

    from mfcore import profiles

    smoke = profiles.get_profile("smoke")
    return dataclasses.replace(
        smoke, name="tiny",
        studio=dataclasses.replace(smoke.studio, image_px=16, heatmap_px=4),
        metafuse=dataclasses.replace(smoke.metafuse, shots=(2, 3), target_train_frames=5, target_test_frames=4,
                                     finetune_steps=2, full_steps=2, batch_size=2, trials=2))


def _fake_set(n, v, side, seed, projections=None):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, v, 17, side, side, generator=g)
    P = projections if projections is not None else torch.randn(v, 3, 4, generator=g)
    return {"pred": pred, "target": torch.rand(n, v, 17, side, side, generator=g),
            "joints_2d_px": 16 * torch.rand(n, v, 17, 2, generator=g),
            "visible": torch.ones(n, v, 17, dtype=torch.bool),
            "joints_3d_m": torch.rand(n, 17, 3, generator=g) + torch.tensor([0.0, 0.0, 3.0]), "projections": P,
            "focal_px": torch.full((v,), 20.0), "sensor_px_per_view_px": torch.full((v,), 4.0)}


def _fake_targets(monkeypatch, tmp_path):
    """Target sets from :func:`_fake_cached_heatmaps` (one camera for every view, no rendering) and an empty cache."""
    from mfcore import backbone

    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    monkeypatch.setattr(backbone, "cached_heatmaps", _fake_cached_heatmaps([]))
    monkeypatch.setattr(targets, "_clip_index", lambda split, n, seed: torch.zeros(n, dtype=torch.long))


def _fake_cached_heatmaps(calls):
    def fake(rig_name, split, n_frames, profile, seed, device, *, views=None, backbone_seed=None, **_):
        calls.append((str(rig_name), split, n_frames, seed))
        subject = int(rig_name[6:]) if str(rig_name).startswith("h36m_s") else 0
        v = 4 if views is None else len(views)
        P = torch.eye(3, 4).expand(v, 3, 4).clone()
        P[:, 0, 3] = subject  # every subject's cameras sit elsewhere
        return _fake_set(n_frames, v, profile.studio.heatmap_px, seed, P)
    return fake


def test_h36m_target_draws_its_pool_from_train_subjects_and_its_test_set_from_test_subjects(monkeypatch):
    from mfcore import backbone, studio

    prof, calls = _tiny_profile(), []
    monkeypatch.setattr(backbone, "cached_heatmaps", _fake_cached_heatmaps(calls))
    monkeypatch.setattr(targets, "_clip_index", lambda split, n, seed: torch.zeros(n, dtype=torch.long))
    d = targets.target_data("h36m", 0, prof, 0, "cpu")
    train_calls = [c for c in calls if c[1] == "train"]
    test_calls = [c for c in calls if c[1] == "test"]
    assert [c[0] for c in train_calls] == [f"h36m_s{s}" for s in studio.H36M_TRAIN_SUBJECTS] == \
        ["h36m_s1", "h36m_s5", "h36m_s6", "h36m_s7", "h36m_s8"]
    assert [c[0] for c in test_calls] == ["h36m_s9", "h36m_s11"]
    stress_calls = [c for c in calls if c[1] == "stress"]  # the stress motions on the test subjects' rigs, apart
    assert [c[0] for c in stress_calls] == ["h36m_s9", "h36m_s11"] and d["stress"]["subject"].tolist()[:1] == [9]
    assert [c[2] for c in train_calls] == [1, 1, 1, 1, 1] and [c[2] for c in test_calls] == [2, 2]  # split evenly
    assert len({c[3] for c in calls}) == len(calls)  # every subject and split its own frames
    assert d["train"]["subject"].tolist() == [1, 5, 6, 7, 8] and d["test"]["subject"].tolist() == [9, 9, 11, 11]
    assert d["train"]["pred"].shape == (5, 4, 17, 4, 4) and d["test"]["projections"].shape == (4, 4, 3, 4)
    # the test frames keep their own subject's cameras: two camera sets, in order
    sets = metrics.camera_sets(d["test"])
    assert [idx.tolist() for idx, _, _ in sets] == [[0, 1], [2, 3]]
    assert [float(P[0, 0, 3]) for _, P, _ in sets] == [9.0, 11.0]
    # Fig. 7's rigs: H36M first, then every dome trial (4 of the 6 held-out cameras each)
    rigs = targets.target_rigs(prof, 0, "cpu")
    assert [(r["rig"], r["trial"]) for r in rigs] == [("h36m", 0), ("dome_heldout", 0), ("dome_heldout", 1)]
    assert all(len(r["views"]) == 4 and set(r["views"]) <= set(studio.DOME_HELDOUT_VIEWS) for r in rigs[1:])
    assert rigs[2]["test"]["pred"].shape == (4, 4, 17, 4, 4)


def test_pooled_jdr_threshold_uses_each_frames_own_sensor_scale():
    from mfcore import metrics

    a, b = _fake_set(2, 3, 4, seed=1), _fake_set(3, 3, 4, seed=2)
    b["sensor_px_per_view_px"] = torch.tensor([2.0, 4.0, 8.0])
    pooled = {k: torch.cat([a[k], b[k]]) for k in ("pred", "joints_2d_px", "joints_3d_m")}
    pooled["sensor_px_per_view_px"] = torch.cat([a["sensor_px_per_view_px"].expand(2, 3),
                                                 b["sensor_px_per_view_px"].expand(3, 3)])
    expected = torch.cat([metrics.labels_threshold_px(s) for s in (a, b)])
    assert torch.equal(metrics.labels_threshold_px(pooled), expected)
    assert torch.equal(expected[2:], torch.tensor([[6.4, 3.2, 1.6]] * 3))  # 12.8 sensor px over each scale


def test_fused_test_heatmaps_is_one_cache_entry_per_setting(monkeypatch, tmp_path):
    from mfcore import backbone

    prof, calls, finetunes = _tiny_profile(), [], []
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    monkeypatch.setattr(backbone, "cached_heatmaps", _fake_cached_heatmaps(calls))
    monkeypatch.setattr(targets, "_clip_index", lambda split, n, seed: torch.zeros(n, dtype=torch.long))
    monkeypatch.setattr(adaptation, "_pretrained", lambda method, profile, seed, device, *rest: _nonzero_pair_model(
        "affine" if method in ("MetaFuse", "AffineFuse") else "naive", profile.studio.heatmap_px))
    real_train = training.train_members  # every K-shot finetuning: the K frames' heatmaps of each member

    def train_members(model, params, pred, target, **kw):
        finetunes.extend(pred[f] for f in kw["member_frames"])
        return real_train(model, params, pred, target, **kw)

    monkeypatch.setattr(training, "train_members", train_members)

    first = fewshot.fused_test_heatmaps("MetaFuse", 2, "h36m", 0, prof, 0, "cpu")
    again = fewshot.fused_test_heatmaps("MetaFuse", 2, "h36m", 0, prof, 0, "cpu")
    assert len(list(tmp_path.glob("fused-*.pt"))) == 1 and len(finetunes) == 1  # same inputs: the same entry
    assert first["heatmaps"].shape == (4, 4, 17, 4, 4) and torch.equal(first["heatmaps"], again["heatmaps"])
    assert torch.equal(first["subject"], again["subject"]) and first["subject"].tolist() == [9, 9, 11, 11]
    # the entry is exactly what adapted_fusion's model makes of the test frames (stored as float16)
    model = fewshot.adapted_fusion("MetaFuse", 2, "h36m", 0, prof, 0, "cpu")
    assert torch.equal(first["heatmaps"], maml.fuse_frames(model, first["pred"]).half().float())
    # anything that produced it changes the entry: K, method, trial, seed
    fewshot.fused_test_heatmaps("MetaFuse", 3, "h36m", 0, prof, 0, "cpu")
    fewshot.fused_test_heatmaps("NaiveFuse", 2, "h36m", 0, prof, 0, "cpu")
    fewshot.fused_test_heatmaps("MetaFuse", 2, "dome_heldout", 1, prof, 0, "cpu")
    fewshot.fused_test_heatmaps("MetaFuse", 2, "h36m", 0, prof, 1, "cpu")
    assert len(list(tmp_path.glob("fused-*.pt"))) == 5
    assert torch.equal(finetunes[0], finetunes[3])  # MetaFuse^2 and NaiveFuse^2 of a trial see the same K frames
    assert not torch.equal(finetunes[0], finetunes[4])  # another target and trial, other frames
    # adapted_fusion is finetune_on_pool on the target's pool
    pool = targets.target_data("h36m", 0, prof, 0, "cpu")["train"]
    direct, _ = fewshot.finetune_on_pool("MetaFuse", 2, pool, 0, prof, 0, "cpu")
    assert torch.equal(direct.theta, model.theta)
    # NoFusion is the backbone itself: nothing to cache
    nofusion = fewshot.fused_test_heatmaps("NoFusion", 0, "h36m", 0, prof, 0, "cpu")
    assert torch.equal(nofusion["heatmaps"], nofusion["pred"]) and len(list(tmp_path.glob("fused-*.pt"))) == 5
    # few_shot_curves reads the same entries: JDR rows with the paper's K
    frames = []
    rows, timings = fewshot.few_shot_curves(prof, 0, "cpu", progress=False, by_subject=True, frame_rows=frames)
    # the per-frame units: every setting's test frames, each joint group, detections a subset of the counted joints
    settings = {(r["rig"], r["trial"], r["method"], r["k"]) for r in rows}
    assert {(f["rig"], f["trial"], f["method"], f["k"]) for f in frames} == settings
    assert {f["joint"] for f in frames} == {"mean", *metrics.JOINT_GROUPS}
    assert all(0 <= f["detected"] <= f["counted"] for f in frames)
    n_test = len(nofusion["joints_3d_m"])
    assert len([f for f in frames if (f["rig"], f["method"], f["joint"]) == ("h36m", "NoFusion", "mean")]) == n_test
    assert {(r["method"], r["k"], r["paper_k"]) for r in rows if r["rig"] == "h36m"} >= {
        ("MetaFuse", 2, 50), ("MetaFuse", 3, 100), ("NoFusion", 0, 0), ("NaiveFuseFull", 5, 0)}
    assert {r["subject"] for r in rows if r["rig"] == "h36m"} == {"all", "S9", "S11"}
    assert {r["subject"] for r in rows if r["rig"] == "dome_heldout"} == {"all"}
    # the stress set: rows of their own, pooled over the test subjects only (no per-subject stress rows)
    assert {r["split"] for r in rows} == {"test", "stress"}
    assert {r["subject"] for r in rows if r["split"] == "stress"} == {"all"}
    assert len(timings) == 3 * 9  # 3 rigs x trials, 4 methods x 2 K + NaiveFuse^full
    # by-subject rows are the pooled rows' frames split by subject: S9 and S11 JDR average to the pooled one
    mean = {(r["method"], r["k"], r["subject"]): r["jdr"] for r in rows
            if r["rig"] == "h36m" and r["joint"] == "mean" and r["threshold"] == "half_head" and r["split"] == "test"}
    assert min(mean["MetaFuse", 2, "S9"], mean["MetaFuse", 2, "S11"]) <= mean["MetaFuse", 2, "all"] \
        <= max(mean["MetaFuse", 2, "S9"], mean["MetaFuse", 2, "S11"])
    # NaiveFuseMeta only at the first NAIVE_META_SHOTS K (the paper's 50 and 100)
    monkeypatch.setattr(fewshot, "NAIVE_META_SHOTS", 1)
    rows, timings = fewshot.few_shot_curves(prof, 0, "cpu", progress=False)
    assert {r["k"] for r in rows if r["method"] == "NaiveFuseMeta"} == {2}
    assert len(timings) == 3 * 8


def test_a_settings_jdr_is_the_same_from_its_cached_peaks_its_fused_maps_or_the_maps_scored_anew(monkeypatch, tmp_path):
    """Chapter 4b's references: chapter 4's cached maxima of a setting give exactly the JDR rows that the fused maps
    give (computed again when the maxima are not cached), and exactly what jdr_rows makes of the maps."""
    prof, fused_calls = _tiny_profile(), []
    _fake_targets(monkeypatch, tmp_path)
    monkeypatch.setattr(adaptation, "_pretrained", lambda method, profile, seed, device, *rest: _nonzero_pair_model(
        "affine" if method in ("MetaFuse", "AffineFuse") else "naive", profile.studio.heatmap_px))
    real_fused_maps = fewshot._fused_maps
    monkeypatch.setattr(fewshot, "_fused_maps", lambda *a, **k: fused_calls.append(a[:2]) or real_fused_maps(*a, **k))
    refs = [("NoFusion", 0), ("NaiveFuseFull", prof.metafuse.target_train_frames), ("MetaFuse", 3)]

    def reference_rows():
        rows, _ = fewshot.few_shot_curves(prof, 0, "cpu", progress=False, settings=refs)
        return [(r["rig"], r["trial"], r["method"], r["k"], r["split"], r["joint"], r["threshold"], r["jdr"])
                for r in rows]

    computed = reference_rows()  # nothing cached: finetuned, fused, maxima taken and cached
    assert len(fused_calls) == 2 * 3 and len(list(tmp_path.glob("peaks-*.pt"))) == 3 * 3  # 3 rigs x trials
    fewshot.clear_device_memo()
    assert reference_rows() == computed and len(fused_calls) == 2 * 3  # read from the cached maxima only
    for path in tmp_path.glob("peaks-*.pt"):
        path.unlink()
    fewshot.clear_device_memo()
    assert reference_rows() == computed and len(fused_calls) == 4 * 3  # from the cached fused maps again
    # the same numbers as jdr_rows of the maps that fused_test_heatmaps returns (what chapter 4b computed before)
    direct = []
    for target in targets.FIG7_TARGETS:
        for trial in range(targets.target_trials(target, prof)):
            for method, k in refs:
                out = fewshot.fused_test_heatmaps(method, k, target, trial, prof, 0, "cpu")
                direct += [(target, trial, method, k, "test", r["joint"], r["threshold"], r["jdr"]) for r in
                           metrics.jdr_rows(out["heatmaps"], out, prof.studio.image_px)]
    assert direct == [r for r in computed if r[4] == "test"]


def test_paper_k_maps_the_profiles_shots_by_rank():
    from mfcore import profiles

    smoke, full = profiles.get_profile("smoke"), profiles.get_profile("full")
    assert [fewshot.paper_k(k, smoke) for k in smoke.metafuse.shots] == [50, 100, 200]
    assert [fewshot.paper_k(k, full, "NaiveFuse") for k in full.metafuse.shots] == [50, 100, 200, 500]
    assert fewshot.paper_k(smoke.metafuse.shots[0], smoke, "NaiveFuseFull") == 0 and fewshot.paper_k(7, smoke) == 0
    assert [fewshot.profile_k(k, smoke) for k in fewshot.PAPER_SHOTS] == [8, 16, 32, 32]
    with pytest.raises(ValueError, match="paper K=60"):
        fewshot.profile_k(60, smoke)


def test_bad_targets_trials_and_methods_are_clear_errors():
    prof = _tiny_profile()
    with pytest.raises(ValueError, match="unknown target rig 'mars'"):
        fewshot.fused_test_heatmaps("MetaFuse", 2, "mars", 0, prof, 0, "cpu")
    with pytest.raises(ValueError, match="trial 1 of target 'h36m'.*0..0"):
        fewshot.fused_test_heatmaps("MetaFuse", 2, "h36m", 1, prof, 0, "cpu")
    with pytest.raises(ValueError, match="unknown adapted method 'Capsule'"):
        fewshot.fused_test_heatmaps("Capsule", 2, "h36m", 0, prof, 0, "cpu")
    with pytest.raises(ValueError, match="k must be 5"):
        fewshot.fused_test_heatmaps("NaiveFuseFull", 2, "h36m", 0, prof, 0, "cpu")
    with pytest.raises(ValueError, match="NoFusion is not finetuned"):
        fewshot.fused_test_heatmaps("NoFusion", 2, "h36m", 0, prof, 0, "cpu")
    with pytest.raises(ValueError, match="5 frames cannot be split over 7"):
        targets._split_evenly(5, 7)


def test_target_data_is_assembled_once_per_process_and_hands_out_fresh_dicts(monkeypatch):
    from mfcore import backbone
    from mfbook import cache

    prof, calls = _tiny_profile(), []
    monkeypatch.setattr(backbone, "cached_heatmaps", _fake_cached_heatmaps(calls))
    monkeypatch.setattr(targets, "_clip_index", lambda split, n, seed: torch.zeros(n, dtype=torch.long))
    first = targets.target_data("h36m", 0, prof, 0, "cpu")
    n_calls = len(calls)
    first["test"]["pred"] = None  # a caller replacing an entry of its own dict
    second = targets.target_data("h36m", 0, prof, 0, "cpu")
    assert len(calls) == n_calls  # nothing assembled again
    assert second["test"]["pred"] is not None and second["train"]["pred"] is first["train"]["pred"]
    targets.target_data("h36m", 0, prof, 1, "cpu")  # another seed: its own set
    assert len(calls) == 2 * n_calls
    targets.clear_target_memo()
    targets.target_data("h36m", 0, prof, 0, "cpu")
    assert len(calls) == 3 * n_calls
    # no memory budget: nothing is kept
    targets.clear_target_memo()
    monkeypatch.setenv("MFCORE_CACHE_MEMORY_GB", "0")
    targets.target_data("h36m", 0, prof, 0, "cpu")
    targets.target_data("h36m", 0, prof, 0, "cpu")
    assert len(calls) == 5 * n_calls and not targets._TARGET_MEMO
    assert cache.memo_budget_bytes() == 0


def test_adam_is_the_default_implementation_on_the_cpu():
    p = torch.nn.Parameter(torch.ones(3))
    opt = optim.adam([p], lr=0.1)
    assert isinstance(opt, torch.optim.Adam) and not opt.defaults["fused"] and opt.defaults["lr"] == 0.1
    p.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), 0.9))


def test_epipolar_oracle_weights_put_the_gain_on_the_epipolar_line():
    from mfcore import geometry

    side, sigma = 16, 1.0
    cams = [geometry.look_at_camera(pos, [0.0, 0.0, 1.0], 20.0, side) for pos in ([3.0, 0.0, 1.2], [0.0, 3.0, 1.5])]
    P = geometry.stack_projections(cams, dtype=torch.float64)
    W = oracle.epipolar_oracle_weights(P, side, sigma, gain=1.0)
    assert W.shape == (2, side * side, side * side) and W.dtype == torch.float32
    # a point near the volume centre: the target pixel of view 0 and the source pixel of view 1 that see it
    X = torch.tensor([0.1, -0.2, 1.1, 1.0], dtype=torch.float64)
    x0, x1 = ((P[v] @ X)[:2] / (P[v] @ X)[2] for v in (0, 1))
    x0, x1 = x0.round().long(), x1.round().long()
    i0, p1 = int(x0[1] * side + x0[0]), int(x1[1] * side + x1[0])
    # a source peak adds `gain` own peaks: under the mix (own 0.4, the one source 0.6) the weights carry 0.4 / 0.6
    unit = (0.4 / 0.6) / (2.0 ** 0.5 * torch.pi * sigma ** 2)
    assert 0.3 * unit < W[0, i0, p1] <= unit + 1e-6  # pair (0, 1): view-1 pixel on the line of view-0 pixel i0
    assert W.max() <= unit + 1e-6 and W.min() >= 0
    # the gain scales the weights; sigma and shapes are checked
    assert torch.allclose(oracle.epipolar_oracle_weights(P, side, sigma, gain=2.5), 2.5 * W)
    x = torch.rand(1, 2, 1, side, side, generator=torch.Generator().manual_seed(3))
    lines = W / (0.4 / 0.6)  # the unit lines L
    plain = x[:, 0, 0] + (lines[0] @ x[:, 1, 0].reshape(-1)).reshape(1, side, side)
    assert torch.allclose(fusion.fuse(x, W, fusion.ordered_pairs(2))[:, 0, 0], 0.4 * plain, atol=1e-6)
    with pytest.raises(ValueError, match="sigma_px"):
        oracle.epipolar_oracle_weights(P, side, 0.0)
    with pytest.raises(ValueError, match=r"\(V, 3, 4\)"):
        oracle.epipolar_oracle_weights(P[0], side, sigma)


def test_camera_from_projection_recovers_the_camera_at_any_scale():
    from mfcore import geometry

    cam = geometry.look_at_camera([3.0, 1.0, 1.6], [0.0, 0.0, 1.0], 300.0, 256)
    for scale in (1.0, -2.5, 1e-3):
        back = geometry.camera_from_projection(scale * cam.projection(), 256)
        assert torch.allclose(back.K, cam.K, atol=1e-9) and torch.allclose(back.R, cam.R, atol=1e-12)
        assert torch.allclose(back.t, cam.t, atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        geometry.camera_from_projection(torch.zeros(3, 4), 256)


def test_epipolar_oracle_rows_report_every_gain_and_gain_zero_is_nofusion(monkeypatch, tmp_path):
    prof = _tiny_profile()
    _fake_targets(monkeypatch, tmp_path)
    # the fake sets share one camera (no epipolar geometry): stand-in weights that add a constant map
    monkeypatch.setattr(oracle, "epipolar_oracle_weights", lambda P, hm, sigma, gain=1.0:
                        torch.full((12, hm * hm, hm * hm), 1e-3))
    rows = oracle.epipolar_oracle_rows("h36m", 0, prof, 0, "cpu", gains=(0.0, 1.0))
    assert {r["gain"] for r in rows} == {0.0, 1.0} and {r["method"] for r in rows} == {"EpipolarOracle"}
    test = targets.target_data("h36m", 0, prof, 0, "cpu")["test"]
    nofusion = metrics.jdr_rows(test["pred"], test, prof.studio.image_px)
    assert [r["jdr"] for r in rows if r["gain"] == 0.0] == [r["jdr"] for r in nofusion]
    # each gain carries the candidate objectives of its fused heatmaps; gain 0 is NoFusion's own heatmap, mixed at 0.4
    by_gain = {r["gain"]: r for r in rows if r["joint"] == "mean" and r["threshold"] == "half_head"}
    pred, y = test["pred"], test["target"]
    assert by_gain[0.0]["mse"] == pytest.approx(float(fusion.fusion_mse(0.4 * pred, y)), rel=1e-5)
    assert by_gain[0.0]["mse_sum"] == pytest.approx(float(fusion.fusion_mse(pred, y)), rel=1e-5)
    assert by_gain[0.0]["mse_softmax"] == pytest.approx(float(fusion.softmax_mse(pred, y)), rel=1e-5)
    per_view = pred.sum((-2, -1), keepdim=True)  # (N, V, J, 1, 1): what a constant weight sums per view
    added = 1e-3 * (per_view.sum(1, keepdim=True) - per_view)  # every other view, at every pixel
    mixed = 0.4 * pred + 0.2 * added  # the mix of four views: each of the three sources at 0.2
    assert by_gain[1.0]["mse"] == pytest.approx(float(fusion.fusion_mse(mixed, y)), rel=1e-4)
    assert by_gain[1.0]["mse_sum"] == pytest.approx(float(fusion.fusion_mse(mixed / 0.4, y)), rel=1e-4)
    assert by_gain[1.0]["mse_softmax"] == pytest.approx(float(fusion.softmax_mse(mixed / 0.4, y)), rel=1e-4)
    # one Eq. (3): the oracle's mse is the loss every learned model minimises (mfcore.maml), on the same weights
    model = fusion.NaiveFuse(4, prof.studio.heatmap_px)
    with torch.no_grad():
        model.weight.fill_(1e-3)
    learned = float(maml.eq3_loss(model, dict(model.named_parameters()), pred, y).detach())
    assert by_gain[1.0]["mse"] == pytest.approx(learned, rel=1e-4)
    with pytest.raises(ValueError, match="non-negative"):
        oracle.epipolar_oracle_rows("h36m", 0, prof, 0, "cpu", gains=(-1.0,))


def test_train_fusion_calls_on_step_after_every_step_and_trains_on():
    model = fusion.NaiveFuse(2, 4)
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(6, 2, 3, 4, 4, generator=g), torch.rand(6, 2, 3, 4, 4, generator=g)
    seen = []

    def on_step(step):
        seen.append((step, model.training))
        model.eval()  # an evaluation; training goes on in training mode

    history = maml.train_fusion(model, pred, target, steps=3, lr=1e-2, batch_size=4, progress=False, on_step=on_step)
    assert seen == [(1, True), (2, True), (3, True)] and len(history) == 3 and model.training


def test_pool_oracle_weights_average_the_camera_placements_by_their_frames(monkeypatch):
    from mfcore import pictorial

    prof = _tiny_profile()
    monkeypatch.setattr(pictorial, "heatmap_projections", lambda P, image_px, side: P)
    monkeypatch.setattr(oracle, "epipolar_oracle_weights", lambda P, hm, sigma, gain=1.0:
                        torch.full((2, hm * hm, hm * hm), gain * float(P[0, 0, 3])))
    P = torch.eye(3, 4).expand(4, 2, 3, 4).clone()
    P[:3, :, 0, 3] = 2.0  # three frames at placement A (2), one at placement B (6)
    P[3, :, 0, 3] = 6.0
    pool = {"projections": P, "focal_px": torch.ones(4, 2), "joints_3d_m": torch.zeros(4, 17, 3)}
    W = oracle.pool_oracle_weights(pool, prof, "cpu", gain=0.5)
    assert W.shape == (2, 16, 16) and torch.allclose(W, torch.full_like(W, 0.5 * (3 * 2.0 + 6.0) / 4))


def test_naivefuse_from_the_oracle_starts_at_the_oracle_and_eq3_moves_the_lines_downhill(monkeypatch, tmp_path):
    import dataclasses

    prof = _tiny_profile()
    prof = dataclasses.replace(prof, metafuse=dataclasses.replace(prof.metafuse, full_steps=20, outer_lr=1e-2))
    _fake_targets(monkeypatch, tmp_path)
    # stand-in lines that add a constant map (the fake sets share one camera): training moves them, the loss falls
    monkeypatch.setattr(oracle, "epipolar_oracle_weights", lambda P, hm, sigma, gain=1.0:
                        torch.full((12, hm * hm, hm * hm), 1e-2 * gain))
    targets.clear_target_memo()
    rows = oracle.oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", checkpoints=(0.0, 0.5, 1.0))
    mean = {r["step"]: r for r in rows if r["joint"] == "mean" and r["threshold"] == "half_head"}
    assert sorted(mean) == [0, 10, 20] and {r["method"] for r in rows} == {"NaiveFuseFromOracle"}
    assert mean[0]["line_share"] == pytest.approx(1.0)
    # step 0 is the oracle itself at the starting gain (the same weights on the test frames)
    at_start = {r["joint"]: r for r in oracle.epipolar_oracle_rows("dome_heldout", 0, prof, 0, "cpu", gains=(1.0,))
                if r["threshold"] == "half_head"}
    assert mean[0]["jdr"] == at_start["mean"]["jdr"] and mean[0]["mse"] == pytest.approx(at_start["mean"]["mse"],
                                                                                         rel=1e-5)
    assert mean[10]["line_share"] != 1.0 and mean[20]["line_share"] != 1.0
    assert mean[20]["mse"] < mean[10]["mse"] < mean[0]["mse"]
    with pytest.raises(ValueError, match="gain must be > 0"):
        oracle.oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", gain=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        oracle.oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", checkpoints=(1.5,))


def test_line_theta_lays_the_centred_line_on_every_pixels_epipolar_line():
    """AffineFuse with omega_base the scaled centred line and θ = line_theta holds the oracle's lines (whole lines:
    compared with the oracle's weights drawn without the visible-half cut), up to bilinear sampling and the base map's
    finite extent."""
    import math

    from mfcore import epipolar, geometry

    side, sigma = 32, 2.0
    cams = [geometry.look_at_camera(pos, [0.0, 0.0, 1.0], 40.0, side) for pos in ([3.0, 0.0, 1.2], [0.0, 3.0, 1.5])]
    P = geometry.stack_projections(cams, dtype=torch.float64)
    theta = oracle.line_theta(P, side)
    assert theta.shape == (2, side * side, 2, 3) and theta.dtype == torch.float32
    prof = dataclasses.replace(profiles.get_profile("smoke"), studio=dataclasses.replace(
        profiles.get_profile("smoke").studio, heatmap_px=side, heatmap_sigma_px=sigma))
    model = fusion.AffineFuse(2, side)
    with torch.no_grad():
        model.omega_base.copy_(oracle.line_omega_base(prof, 1.0, 2))
        model.theta.copy_(theta)
    W = model.pair_weights().detach()
    scale = (0.4 / 0.6) / (2.0 ** 0.5 * math.pi * sigma ** 2)
    grid = epipolar.pixel_grid_px(side)
    for k, (t, s) in enumerate(fusion.ordered_pairs(2)):
        ideal = epipolar.ideal_fusion_weights(cams[t], cams[s], grid, sigma, visible_only=False).reshape(side ** 2, -1)
        rel = float((W[k] - scale * ideal).norm() / (scale * ideal).norm())
        assert rel < 0.3, (t, s, rel)
    with pytest.raises(ValueError, match=r"\(V, 3, 4\)"):
        oracle.line_theta(P[0], side)


def test_affinefuse_from_the_oracle_finetunes_theta_only_and_reports_its_shift(monkeypatch, tmp_path):
    prof = _tiny_profile()
    prof = dataclasses.replace(prof, metafuse=dataclasses.replace(prof.metafuse, finetune_steps=10, finetune_lr=1e-2))
    _fake_targets(monkeypatch, tmp_path)
    # the fake sets share one camera (no epipolar geometry): a stand-in θ, the identity for every pixel and pair
    monkeypatch.setattr(oracle, "line_theta", lambda P, side: fusion.identity_theta(12, side * side))
    targets.clear_target_memo()
    k = prof.metafuse.target_train_frames
    rows = oracle.affine_oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", k=k, checkpoints=(0.0, 0.5, 1.0))
    mean = {r["step"]: r for r in rows if r["joint"] == "mean" and r["threshold"] == "half_head"}
    assert sorted(mean) == [0, 5, 10] and {r["method"] for r in rows} == {"AffineFuseFromOracle"}
    assert mean[0]["theta_shift"] == 0.0 and mean[10]["theta_shift"] > 0.0 and {r["k"] for r in rows} == {k}
    assert mean[10]["mse"] < mean[0]["mse"]
    with pytest.raises(ValueError, match="gain must be > 0"):
        oracle.affine_oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", gain=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        oracle.affine_oracle_init_rows("dome_heldout", 0, prof, 0, "cpu", checkpoints=(-0.1,))


def test_the_line_start_is_the_oracles_line_with_nofusions_maxima_and_a_gradient_on_theta():
    side, sigma = 16, 1.0
    prof = dataclasses.replace(profiles.get_profile("smoke"), studio=dataclasses.replace(
        profiles.get_profile("smoke").studio, heatmap_px=side, heatmap_sigma_px=sigma))
    model = maml.pair_model("affine", side, sigma)
    omega = model.omega_base.detach()
    assert torch.equal(omega, fusion.line_omega_start(side, sigma, 2))
    assert torch.equal(omega, oracle.line_omega_base(prof, 1.0, 2))  # the oracle's scale: a peak on it adds 1 peak
    # the profile across the line: the heatmaps' Gaussian; along it: constant; peak (0.4 / 0.6) / (√2·π·σ²)
    assert torch.allclose(omega[:, 3], omega[:, 11]) and int(omega[:, 0].argmax()) in (7, 8)
    assert float(omega.max()) == pytest.approx((0.4 / 0.6) / (2 ** 0.5 * math.pi) * math.exp(-0.125), rel=1e-5)
    four = fusion.AffineFuse(4, side, start="line", sigma_px=sigma).omega_base.detach()
    assert torch.allclose(four, 3 * omega)  # under a 4-view mix each source has a third of a pair's share
    pred, target = _data(n=3, v=2, j=2, side=side)
    with torch.no_grad():  # θ = identity: every target pixel reads the same line, a constant per channel
        fused = model(pred)
    assert torch.equal(metrics.heatmap_argmax_px(fused[:, 0]), metrics.heatmap_argmax_px(pred[:, 0]))
    fusion.fusion_mse(model(pred), target, model.target_views).backward()
    assert float(model.theta.grad.abs().max()) > 100 * float(
        _theta_grad_at_uniform_start(side, pred, target))  # the uniform start's gradient is orders smaller
    for bad, match in (({"start": "ring"}, "unknown omega_base start"), ({"start": "line"}, "needs sigma_px")):
        with pytest.raises(ValueError, match=match):
            fusion.AffineFuse(2, side, **bad)
    with pytest.raises(ValueError, match="sigma_px must be a number > 0"):
        fusion.line_omega_start(side, 0.0, 2)


def _theta_grad_at_uniform_start(side, pred, target):
    model = maml.pair_model("affine", side)
    fusion.fusion_mse(model(pred), target, model.target_views).backward()
    return model.theta.grad.abs().max()


def test_thetas_inner_step_moves_its_largest_entry_exactly_the_cap_and_omega_keeps_the_shared_rate():
    side, sigma = 16, 1.0
    model = maml.pair_model("affine", side, sigma)
    pred, target = _data(n=4, v=2, j=2, side=side)
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(maml.eq3_loss(model, params, pred, target), list(params.values()))))
    step = maml.inner_update(model, params, pred, target, 0.05, first_order=True, theta_step_px=1.5)
    moved = (step["theta"] - params["theta"]).detach()
    assert float(moved.abs().max()) == pytest.approx(1.5 * 2 / side, rel=1e-5)  # 1.5 heatmap px, normalised
    assert torch.allclose(moved, -grads["theta"] * (1.5 * 2 / side) / grads["theta"].abs().max(), atol=1e-7)
    assert torch.allclose(step["omega_base"] - params["omega_base"], -0.05 * grads["omega_base"], atol=1e-9)
    plain = maml.inner_update(model, params, pred, target, 0.05, first_order=True)  # the shared α of the paper
    assert float((plain["theta"] - params["theta"]).detach().abs().max()) < 0.01 * float(moved.abs().max())
    assert float(maml.theta_inner_rate(torch.zeros(3), 1.0, side)) == 0.0  # nothing to follow: no move
    with pytest.raises(ValueError, match="step_px must be a number > 0"):
        maml.theta_inner_rate(grads["theta"], 0, side)
    # second order: the rate is a constant of the step, the meta-gradient still flows through the gradient
    second = maml.inner_update(model, params, pred, target, 0.05, theta_step_px=1.5)
    assert second["theta"].requires_grad and second["theta"].grad_fn is not None


# ----------------------------------------------------------------------------------------------------------------------
# meta-training many tasks and seeds as one program

def _meta_kwargs(kind, first_order):
    return dict(views=(0, 1, 2, 3), iterations=3, tasks_per_step=3, task_train=3, task_test=2, inner_lr=0.3,
                outer_lr=1e-2, first_order=first_order, theta_step_px=0.5 if kind == "affine" else None)


def _pair_start(kind, seed, side=5):
    model = maml.pair_model(kind, side, 0.7 if kind == "affine" else None)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("first_order", [True, False])
@pytest.mark.parametrize("kind", ["affine", "naive"])
def test_seeds_and_tasks_meta_trained_at_once_equal_the_looped_meta_training(kind, first_order):
    """Two seeds, three tasks per outer step, all in one program (and again in chunks of two tasks): every seed's
    parameters and losses after three outer steps are those of the task-by-task loop with that seed (its own
    generator: the same tasks and frames), first and second order."""
    pred, target = _data(n=10, v=4, j=2, side=5)
    kw, seeds = _meta_kwargs(kind, first_order), [1, 5]
    looped = []
    for s in seeds:
        model = _pair_start(kind, s)
        losses = maml.meta_train_looped(model, pred, target, seed=s, progress=False, **kw)
        looped.append((losses, {n: p.detach().clone() for n, p in model.named_parameters()}))
    start = training.stack_members(_pair_start(kind, s) for s in seeds)
    for chunk in (None, 2):
        params, history = maml.meta_train_members(_pair_start(kind, 0), start, pred, target, seeds=seeds,
                                                  task_chunk=chunk, progress=False, **kw)
        assert history.shape == (3, 2)
        for i, (losses, state) in enumerate(looped):
            assert torch.allclose(history[:, i], torch.tensor(losses), rtol=1e-5), (chunk, i)
            for n, p in state.items():
                assert torch.allclose(params[n][i], p, atol=1e-6), (chunk, i, n)
    # one seed through meta_train: the model itself is trained, its losses those of the loop
    model = _pair_start(kind, 5)
    assert maml.meta_train(model, pred, target, seed=5, progress=False, **kw) == pytest.approx(looped[1][0], rel=1e-5)
    assert all(torch.allclose(p, looped[1][1][n], atol=1e-6) for n, p in model.named_parameters())


def test_the_objective_adapted_and_trained_names_and_per_seed_pools_are_parameters_of_meta_training():
    """A custom objective, θ the only adapted and meta-trained name (ω_base stays bit-identical), a learnable scale,
    and every seed its own pool of frames: still the looped meta-training, seed by seed."""
    pools = [_data(n=8, v=3, j=2, side=5, seed=s) for s in (0, 1)]

    def objective(fused, y, views):  # the fused target view's sum-normalised map against the target's
        f, t = fused[:, :, list(views)].flatten(-2), y[:, :, list(views)].flatten(-2)
        return (f / f.sum(-1, keepdim=True) - t / t.sum(-1, keepdim=True)).square().flatten(1).mean(1)

    def start(seed):
        model = fusion.AffineFuse(2, 5, maml.PAIR, start="line", sigma_px=0.7, scaled=True)
        with torch.no_grad():
            model.theta.add_(0.02 * torch.randn(model.theta.shape, generator=torch.Generator().manual_seed(seed)))
        return model

    kw = dict(views=(0, 1, 2), iterations=2, tasks_per_step=2, task_train=3, task_test=2, inner_lr=0.3,
              outer_lr=1e-2, first_order=False, theta_step_px=0.5, objective=objective, adapted=("theta",),
              trainable=("theta", "omega_scale"))
    looped = []
    for s, (p, t) in zip((3, 4), pools):
        model = start(s)
        losses = maml.meta_train_looped(model, p, t, seed=s, progress=False, **kw)
        looped.append((losses, {n: q.detach().clone() for n, q in model.named_parameters()}))
    params0 = training.stack_members([start(3), start(4)])
    params, history = maml.meta_train_members(start(0), params0, [p for p, _ in pools], [t for _, t in pools],
                                              seeds=[3, 4], progress=False, **kw)
    assert torch.equal(params["omega_base"], params0["omega_base"])  # neither adapted nor meta-trained
    assert not torch.equal(params["omega_scale"], params0["omega_scale"])
    for i, (losses, state) in enumerate(looped):
        assert torch.allclose(history[:, i], torch.tensor(losses), rtol=1e-5)
        assert all(torch.allclose(params[n][i], q, atol=1e-6) for n, q in state.items())


def test_bad_batched_meta_arguments_are_clear_errors():
    pred, target = _data(n=8, v=3)
    start = training.stack_members([_pair_start("affine", 0, side=4)])
    kw = dict(views=(0, 1, 2), iterations=1, tasks_per_step=2, task_train=2, task_test=2, inner_lr=0.1,
              outer_lr=1e-2, progress=False)
    model = _pair_start("affine", 0, side=4)
    with pytest.raises(ValueError, match="task_chunk must be a positive integer"):
        maml.meta_train_members(model, start, pred, target, seeds=[0], task_chunk=0, **kw)
    with pytest.raises(ValueError, match="seed dimension S=2"):
        maml.meta_train_members(model, start, pred, target, seeds=[0, 1], **kw)
    with pytest.raises(ValueError, match="one pool for all seeds or one per seed"):
        maml.meta_train_members(model, start, [pred] * 3, [target] * 3, seeds=[0, 1], **kw)
    with pytest.raises(ValueError, match=r"unknown parameters \['phi'\]"):
        maml.meta_train_members(model, start, pred, target, seeds=[0], adapted=("phi",), **kw)
    with pytest.raises(ValueError, match="pair model"):
        maml.meta_train_members(fusion.AffineFuse(3, 4), start, pred, target, seeds=[0], **kw)


def test_finetuning_settings_together_equals_finetuning_them_one_by_one(monkeypatch, tmp_path):
    """Chapter 4's settings of one pool in one program per model class: the same adapted models as one by one, and
    few_shot_curves finetunes the missing settings of a pool together, once."""
    prof = _tiny_profile()
    _fake_targets(monkeypatch, tmp_path)
    monkeypatch.setattr(adaptation, "_pretrained", lambda method, profile, seed, device, *rest: _nonzero_pair_model(
        "affine" if method in ("MetaFuse", "AffineFuse") else "naive", profile.studio.heatmap_px, seed=len(method)))
    pool = targets.target_data("h36m", 0, prof, 0, "cpu")["train"]
    settings = [("MetaFuse", 2), ("NaiveFuse", 3), ("AffineFuse", 3), ("NaiveFuseMeta", 2), ("MetaFuse", 3)]
    together = fewshot.finetune_settings_on_pool(settings, pool, 0, prof, 0, "cpu")
    for (method, k), (model, seconds) in zip(settings, together):
        alone, _ = fewshot.finetune_on_pool(method, k, pool, 0, prof, 0, "cpu")
        assert type(alone) is type(model) and seconds > 0
        for (n, p), q in zip(alone.named_parameters(), model.parameters()):
            assert torch.allclose(p, q, atol=1e-6), (method, k, n)
    calls = []
    real = training.train_members
    monkeypatch.setattr(training, "train_members", lambda *a, **kw: calls.append(len(kw["seeds"])) or real(*a, **kw))
    fewshot.few_shot_curves(prof, 0, "cpu", progress=False)
    # per rig and trial: NaiveFuse^full (a one-member program), the AffineFuse models (MetaFuse and AffineFuse at both
    # K) and the NaiveFuse ones (NaiveFuse and NaiveFuseMeta at both K: the profile has only the paper's first two) as
    # two programs
    assert calls == [1, 4, 4] * 3
    calls.clear()
    fewshot.clear_device_memo()
    fewshot.few_shot_curves(prof, 0, "cpu", progress=False)
    assert calls == []  # every setting cached: nothing finetuned
