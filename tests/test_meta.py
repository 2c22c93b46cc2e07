"""Meta-training (MetaFuse Eq. (4)-(6)), meta-testing (Sec. 4.3) and the baselines, on tiny random heatmaps."""

import pytest
import torch

from mfcore import fusion, meta


def _data(n=6, v=3, j=2, side=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, v, j, side, side, generator=g)
    target = torch.rand(n, v, j, side, side, generator=g)
    return pred, target


def _nonzero_pair_model(kind, side=4, seed=0):
    model = meta.pair_model(kind, side)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("k", [0, -3, 11, 2.5, True])
def test_bad_k_is_a_clear_error(k):
    with pytest.raises(ValueError, match=rf"K={k!r}.*pool of 10"):
        meta.select_shots(10, k, seed=0)


def test_select_shots_is_seeded_and_distinct():
    a = meta.select_shots(10, 4, seed=3)
    assert a.tolist() == meta.select_shots(10, 4, seed=3).tolist()
    assert len(set(a.tolist())) == 4 and a.max() < 10
    assert meta.select_shots(10, 10, seed=0).tolist() == list(range(10))


@pytest.mark.parametrize("kind", ["affine", "naive"])
def test_one_inner_maml_step_equals_a_hand_written_sgd_step(kind):
    model = _nonzero_pair_model(kind)
    pred, target = _data(v=2)
    alpha = 0.5
    params = dict(model.named_parameters())
    adapted = meta.inner_update(model, params, pred, target, alpha)
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
    meta.finetune(rig, pred, target, steps=3, lr=5e-3, batch_size=4, seed=0, progress=False)
    assert torch.equal(rig.omega_base, omega0)  # bit-identical
    assert not torch.equal(rig.theta, theta0)
    assert not rig.omega_base.requires_grad


def test_meta_train_learns_and_is_deterministic():
    pred, target = _data(n=8, v=3)
    runs = []
    for _ in range(2):
        model = _nonzero_pair_model("affine")
        losses = meta.meta_train(model, pred, target, views=(0, 1, 2), iterations=3, tasks_per_step=2, task_train=3,
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
        adapted = meta.inner_update(model, params, pred[:3], target[:3], 5.0, first_order=first_order)
        outer = meta._loss(model, adapted, pred[3:], target[3:])
        (grads[first_order],) = torch.autograd.grad(outer, [params["weight"]])
    # first order: the outer gradient is the plain gradient at the adapted point
    model = _nonzero_pair_model("naive")
    adapted = meta.inner_update(model, dict(model.named_parameters()), pred[:3], target[:3], 5.0, first_order=True)
    w = adapted["weight"].detach().requires_grad_()
    (plain,) = torch.autograd.grad(meta._loss(model, {"weight": w}, pred[3:], target[3:]), [w])
    assert torch.allclose(grads[True], plain, atol=1e-7)
    assert not torch.allclose(grads[False], grads[True], atol=1e-7)


def test_train_fusion_lowers_the_loss_and_freezes_what_is_not_trainable():
    pred, target = _data(n=8, v=2)
    target = pred.clone()
    target[:, 0] += 0.3 * pred[:, 1]  # a relation NaiveFuse can learn exactly
    model = fusion.NaiveFuse(2, 4)
    losses = meta.train_fusion(model, pred, target, steps=60, lr=1e-2, batch_size=8, seed=0, progress=False)
    assert losses[-1] < 0.2 * losses[0]
    affine = fusion.AffineFuse(2, 4)
    meta.train_fusion(affine, pred, target, steps=2, lr=1e-2, batch_size=4, trainable=("omega_base",), progress=False)
    assert torch.equal(affine.theta, fusion.identity_theta(2, 16)) and affine.omega_base.abs().sum() > 0


def test_pretrain_model_covers_every_pair_of_the_selected_cameras():
    pred, target = _data(n=4, v=4)
    model = meta.pretrain_model("naive", pred, target, steps=2, lr=1e-3, batch_size=4, progress=False)
    assert len(model.pairs) == 12 and model.weight.abs().sum() > 0
    fused = meta.fuse_frames(fusion.for_rig(model, 4), pred, batch_size=3)
    assert fused.shape == pred.shape


def test_bad_meta_arguments_are_clear_errors():
    pred, target = _data(n=4, v=3)
    model = meta.pair_model("affine", 4)
    with pytest.raises(ValueError, match="task_train \\+ task_test = 6"):
        meta.meta_train(model, pred, target, views=(0, 1), iterations=1, tasks_per_step=1, task_train=3, task_test=3,
                        inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="beyond the 3 cached views"):
        meta.meta_train(model, pred, target, views=(0, 5), iterations=1, tasks_per_step=1, task_train=1, task_test=1,
                        inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="pair model"):
        meta.meta_train(fusion.AffineFuse(3, 4), pred, target, views=(0, 1), iterations=1, tasks_per_step=1,
                        task_train=1, task_test=1, inner_lr=0.1, outer_lr=0.1, progress=False)
    with pytest.raises(ValueError, match="unknown fusion kind"):
        meta.pair_model("capsule", 4)
    with pytest.raises(ValueError, match="fuses 2 views but the data hold 3"):
        meta.train_fusion(fusion.NaiveFuse(2, 4), pred, target, steps=1, lr=1e-3, batch_size=2, progress=False)


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
    labels = {"joints_2d_px": gt_px[None], "joints_3d_m": torch.zeros(1, 2, 3),
              "projections": torch.zeros(1, 3, 4), "focal_px": torch.ones(1)}
    monkeypatch.setattr("mfcore.metrics.head_threshold_px", lambda *a, **k: torch.full((1, 1), 2.0))  # 2 image px
    assert meta.heatmap_jdr(pred, labels, image_px).tolist() == [1.0, 0.0]
    assert meta.heatmap_jdr(fused, labels, image_px).tolist() == [1.0, 1.0]
    assert meta.pick_corrected_joint(pred, fused, labels, image_px) == (0, 0, 1)
