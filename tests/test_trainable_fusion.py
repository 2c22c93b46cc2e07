"""Tekin et al.'s trainable fusion in miniature: Eq. (1), (3), (4), the early/late limits, ensembles that train as their
members would alone, pruning, Fig. 7's R², the learning curve's last doubling."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mfcore import trainable_fusion as tf
from mfcore.profiles import get_profile
from mfcore.trainable_fusion import layers

IMAGE_PX, HEATMAP_PX, LAYERS, CHANNELS, J = 32, 8, 5, 4, 17  # 3 conv blocks (8 → 4 → 4 → 4) + 2 FC layers


def tiny_net(beta=None, streams=tf.STREAMS, seeds=(0,), member_betas=None, **kw):
    return tf.FusionNet(IMAGE_PX, HEATMAP_PX, layers=LAYERS, channels=CHANNELS, streams=streams, beta=beta,
                        seeds=seeds, member_betas=member_betas, **kw)


def tiny_inputs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, IMAGE_PX, IMAGE_PX, generator=g), torch.rand(n, J, HEATMAP_PX, HEATMAP_PX, generator=g)


def tiny_samples(n=24, seed=0):
    images, cms = tiny_inputs(n, seed)
    # a pose that depends on the inputs, so there is something to learn
    joints = 0.3 * torch.tanh(cms.mean(dim=(2, 3)) - 0.5)[:, :, None] * torch.tensor([1.0, -1.0, 0.5])
    return tf.MonocularSamples(images, cms, joints + images.mean(dim=(1, 2, 3))[:, None, None] * 0.1)


def set_fusion(net, alpha, beta):
    with torch.no_grad():
        net.alpha.fill_(alpha)
        net.beta.fill_(beta)


# ---------------------------------------------------------------------------------------------------------- Eq. (3)

def test_weights_tend_to_the_indicator_of_l_above_beta_as_alpha_grows():
    beta = torch.tensor(2.3)
    target = (torch.arange(1, 7) > 2.3).float()
    errors = [(tf.sigmoid_fusion_weights(torch.tensor(a), beta, 6) - target).abs().max().item()
              for a in (0.5, 1.0, 2.0, 4.0, 8.0)]
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6
    assert torch.equal(tf.sigmoid_fusion_weights(torch.tensor(20.0), beta, 6), target)


def test_alpha_zero_mixes_half_and_half_and_l_equal_beta_is_half():
    assert torch.equal(tf.sigmoid_fusion_weights(torch.tensor(0.0), torch.tensor(3.0), 5), torch.full((5,), 0.5))
    assert tf.sigmoid_fusion_weights(torch.tensor(50.0), torch.tensor(3.0), 5)[2].item() == 0.5


def test_alpha_squared_keeps_the_step_increasing_for_negative_alpha():
    w = tf.sigmoid_fusion_weights(torch.tensor(-1.5), torch.tensor(2.0), 6)
    assert torch.all(w[1:] > w[:-1])
    assert torch.equal(w, tf.sigmoid_fusion_weights(torch.tensor(1.5), torch.tensor(2.0), 6))


def test_fusion_weights_of_several_members_are_one_row_each():
    w = tf.sigmoid_fusion_weights(torch.tensor([0.0, 20.0]), torch.tensor([1.0, 2.5]), 4)
    assert w.shape == (2, 4) and torch.equal(w[0], torch.full((4,), 0.5)) and w[1].tolist() == [0, 0, 1, 1]


def test_indicator_weights_are_fusion_at_beta():
    assert tf.indicator_fusion_weights(0, 4).tolist() == [1, 1, 1, 1]  # early fusion: w = 1
    assert tf.indicator_fusion_weights(4, 4).tolist() == [0, 0, 0, 0]  # late fusion
    assert tf.indicator_fusion_weights(2, 4).tolist() == [0, 0, 1, 1]


# --------------------------------------------------------------------------------------- layers holding M networks

def test_member_layers_with_one_member_are_the_torch_layers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 3, 6, 6, generator=g)
    conv = layers.MemberConv2d([torch.Generator().manual_seed(1)], 3, 4)
    want = F.conv2d(x[:, 0], conv.weight[0], conv.bias[0], padding=1)
    assert torch.equal(conv(x)[:, 0], want)
    lin = layers.MemberLinear([torch.Generator().manual_seed(2)], 7, 3)
    v = torch.randn(1, 5, 7, generator=g)
    assert torch.allclose(lin(v)[0], F.linear(v[0], lin.weight[0], lin.bias[0]), atol=1e-6)


def test_member_layers_apply_each_members_weights_to_its_own_features():
    g = torch.Generator().manual_seed(0)
    gens = [torch.Generator().manual_seed(k) for k in range(3)]
    conv, lin = layers.MemberConv2d(gens, 2, 4), layers.MemberLinear(gens, 6, 5)
    x, v = torch.randn(4, 3, 2, 5, 5, generator=g), torch.randn(3, 4, 6, generator=g)
    for m in range(3):
        assert torch.allclose(conv(x)[:, m], F.conv2d(x[:, m], conv.weight[m], conv.bias[m], padding=1), atol=1e-6)
        assert torch.allclose(lin(v)[m], F.linear(v[m], lin.weight[m], lin.bias[m]), atol=1e-6)
    assert not torch.equal(conv.weight[0], conv.weight[1])  # each member its own generator
    looped = layers.MemberConv2d([torch.Generator().manual_seed(k) for k in range(3)], 2, 4, grouped=False)
    assert torch.equal(looped.weight, conv.weight) and torch.allclose(looped(x), conv(x), atol=1e-6)


def test_dropout_drops_below_p_and_rescales_the_rest():
    x = torch.ones(1, 1, 4)
    noise = torch.tensor([[[0.1, 0.3, 0.5, 0.9]]])
    assert layers.dropout_members(x, noise, 0.4).flatten().tolist() == pytest.approx([0.0, 0.0, 1 / 0.6, 1 / 0.6])
    assert torch.equal(layers.dropout_members(x, None, 0.4), x)
    with pytest.raises(ValueError, match="dropout noise"):
        layers.dropout_members(x, noise[..., :2], 0.4)


# ------------------------------------------------------------------------------------------ Eq. (1): early / late limits

def manual_early(net, images, cms, m=0):
    """Fig. 2(a): the fusion stream alone on concat(I_0, X_0)."""
    u = torch.cat(net.stream_inputs(images, cms), dim=2)
    for l in range(1, LAYERS + 2):
        u = net.fusion_stream[str(l)](u)
    return u[m].reshape(-1, J, 3)  # the output layer's (M, B, 3J)


def manual_late(net, images, cms, m=0):
    """Fig. 2(c): both data streams to the end, concatenated before the output layer."""
    i, x = net.stream_inputs(images, cms)
    for l in range(1, LAYERS + 1):
        i, x = net.image_stream[str(l)](i), net.cm_stream[str(l)](x)
    return net.fusion_stream[str(LAYERS + 1)](torch.cat([i, x], dim=2))[m].reshape(-1, J, 3)


def copy_into(target, source, member=0):
    """Member ``member`` of ``source``'s weights loaded into the (smaller) network ``target``."""
    s = source.state_dict()
    target.load_state_dict({k: s[k][member:member + 1] for k in target.state_dict()})
    return target


def test_beta_below_first_layer_is_exactly_early_fusion():
    net = tiny_net()
    set_fusion(net, 20.0, -0.5)  # w = 1 everywhere, exactly
    images, cms = tiny_inputs()
    with torch.no_grad():
        out = net(images, cms)[:, 0]
        assert torch.equal(out, manual_early(net, images, cms))
        assert torch.equal(out, copy_into(tiny_net(beta=0), net)(images, cms)[:, 0])


def test_beta_above_last_layer_is_exactly_late_fusion():
    net = tiny_net()
    set_fusion(net, 20.0, LAYERS + 0.5)  # w = 0 everywhere, exactly
    images, cms = tiny_inputs()
    with torch.no_grad():
        out = net(images, cms)[:, 0]
        assert torch.equal(out, manual_late(net, images, cms))
        assert torch.equal(out, copy_into(tiny_net(beta=LAYERS), net)(images, cms)[:, 0])


def test_a_member_fixed_at_beta_computes_the_network_built_at_beta():
    net = tiny_net(seeds=(3, 3, 3), member_betas=(0, 2, LAYERS))
    images, cms = tiny_inputs()
    with torch.no_grad():
        out = net(images, cms)
        for m, beta in enumerate((0, 2, LAYERS)):
            built = copy_into(tiny_net(beta=beta, seeds=(3,)), net, m)
            assert torch.allclose(out[:, m], built(images, cms)[:, 0], atol=1e-6)


def test_fixed_members_learn_only_their_active_layers_and_keep_alpha_beta():
    net = tiny_net(seeds=(0, 0), member_betas=(2, None))
    data = tiny_samples(8)
    pred = net(data.images, data.confidence_maps)
    loss = tf.pose_loss(pred, data.joints_3d_m[:, None].expand_as(pred)) + tf.sharpness_penalty(net, 0.05)
    loss.sum().backward()
    assert net.alpha.grad[0] == 0 and net.beta.grad[0] == 0 and net.alpha.grad[1] != 0 and net.beta.grad[1] != 0
    for l in (3, 4, 5):  # data-stream layers after β = 2 and fusion layers up to β: exactly no gradient
        for stream in (net.image_stream, net.cm_stream):
            assert all((p.grad[0] == 0).all() for p in stream[str(l)].parameters())
    for l in (1, 2):
        assert all((p.grad[0] == 0).all() for p in net.fusion_stream[str(l)].parameters())
        assert any((p.grad[0] != 0).any() for p in net.image_stream[str(l)].parameters())


def test_fixed_beta_builds_only_the_active_layers():
    early, late, mid = tiny_net(beta=0), tiny_net(beta=LAYERS), tiny_net(beta=2)
    assert len(early.image_stream) == len(early.cm_stream) == 0 and len(early.fusion_stream) == LAYERS + 1
    assert sorted(late.fusion_stream) == [str(LAYERS + 1)] and len(late.image_stream) == LAYERS
    assert sorted(mid.image_stream) == ["1", "2"] and sorted(mid.fusion_stream, key=int) == ["3", "4", "5", "6"]
    assert early.alpha is None and early.beta is None


def test_same_seed_gives_the_same_initial_layer_in_every_configuration_and_ensemble():
    full, early, late = tiny_net(seeds=(3,)), tiny_net(beta=0, seeds=(3,)), tiny_net(beta=LAYERS, seeds=(3,))
    s = full.state_dict()
    for other in (early, late):
        for k, v in other.state_dict().items():
            assert torch.equal(v, s[k]), k
    ensemble = tiny_net(seeds=(5, 3, 4)).state_dict()
    assert all(torch.equal(ensemble[k][1], s[k][0]) for k in s)
    assert not torch.equal(tiny_net(seeds=(4,)).state_dict()["image_stream.1.conv.weight"],
                           s["image_stream.1.conv.weight"])


def test_mixture_follows_eq1_at_every_layer():
    """With w_l = ½ everywhere (α = 0) the output is the average-mixture network, computed here by hand."""
    net = tiny_net()
    set_fusion(net, 0.0, 2.0)
    images, cms = tiny_inputs()
    with torch.no_grad():
        i, x = net.stream_inputs(images, cms)
        u = torch.cat([i, x], 2)
        for l in range(1, LAYERS + 1):
            i, x, z = net.image_stream[str(l)](i), net.cm_stream[str(l)](x), net.fusion_stream[str(l)](u)
            u = 0.5 * torch.cat([i, x], 2) + 0.5 * z
        expected = net.fusion_stream[str(LAYERS + 1)](u)[0].reshape(-1, J, 3)
        assert torch.allclose(net(images, cms)[:, 0], expected, atol=1e-6)


def test_one_dense_convolution_per_member_computes_what_the_grouped_one_computes():
    grouped = tiny_net(seeds=(0, 1), member_betas=(None, 2))
    looped = tiny_net(seeds=(0, 1), member_betas=(None, 2), grouped_conv=False)
    images, cms = tiny_inputs()
    with torch.no_grad():
        assert torch.allclose(grouped(images, cms), looped(images, cms), atol=1e-6)
    assert tf.select_members(looped, [1]).grouped_conv is False


def test_every_member_of_an_ensemble_computes_what_it_computes_alone():
    net = tiny_net(seeds=(0, 1, 2), member_betas=(None, 1, LAYERS))
    set_fusion(net, 0.7, 2.2)
    images, cms = tiny_inputs()
    per_member = torch.rand(6, 3, 3, IMAGE_PX, IMAGE_PX), torch.rand(6, 3, J, HEATMAP_PX, HEATMAP_PX)
    with torch.no_grad():
        shared, own = net(images, cms), net(*per_member)
        for m in range(3):
            alone = tf.select_members(net, [m])
            assert torch.allclose(shared[:, m], alone(images, cms)[:, 0], atol=1e-6)
            assert torch.allclose(own[:, m], alone(per_member[0][:, m], per_member[1][:, m])[:, 0], atol=1e-6)


# --------------------------------------------------------------------------------------------------- Eq. (4), gradients

def test_gradients_reach_alpha_and_beta_with_and_without_the_penalty():
    data = tiny_samples(8)
    for lam in (0.0, 0.05):
        net = tiny_net()
        pred = net(data.images, data.confidence_maps)[:, 0]
        (tf.pose_loss(pred, data.joints_3d_m) + tf.sharpness_penalty(net, lam).sum()).backward()
        for p in (net.alpha, net.beta):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().min() > 0


def test_penalty_is_lambda_over_alpha_squared_per_member_and_pushes_alpha_up():
    net = tiny_net(seeds=(0, 1, 2), member_betas=(None, None, 2), alpha_init=0.1)
    penalty = tf.sharpness_penalty(net, [0.05, 0.0, 0.05])
    assert penalty.tolist() == pytest.approx([0.05 / 0.01, 0.0, 0.0], rel=1e-6)  # a fixed member has no penalty
    penalty.sum().backward()
    assert net.alpha.grad[0].item() == pytest.approx(-2 * 0.05 / 0.1**3, rel=1e-5)  # d(λ/α²)/dα < 0: α grows
    assert tf.sharpness_penalty(tiny_net(beta=2), 0.05).tolist() == [0.0]  # built at β: no α
    with pytest.raises(ValueError, match="lambda_alpha"):
        tf.sharpness_penalty(net, [0.05, 0.0])


def test_pose_loss_is_the_mean_squared_norm_per_member():
    pred, gt = torch.zeros(2, J, 3), torch.zeros(2, J, 3)
    gt[0, 0] = torch.tensor([0.3, 0.4, 0.0])  # ‖·‖² = 0.25 on sample 0, 0 on sample 1
    assert tf.pose_loss(pred, gt).item() == pytest.approx(0.125)
    both = tf.pose_loss(torch.stack([pred, pred + 1], 1), torch.stack([gt, gt], 1), torch.full((2, J, 3), 2.0))
    assert both.shape == (2,) and both[0].item() == pytest.approx(0.125 / 4)


# ------------------------------------------------------------------------------------------------------------- training

def test_an_ensemble_trains_each_member_as_it_trains_alone():
    """Three members (trainable with λ, fixed at β = 1, trainable with λ = 0) trained together end with the weights
    each ends with when trained alone from its seed: same init, minibatch order and dropout masks."""
    data = tiny_samples(20)
    seeds, betas, lams = (0, 1, 0), (None, 1, None), [0.05, 0.0, 0.0]
    together = tiny_net(seeds=seeds, member_betas=betas, dropout=0.25)
    hist = tf.train_fusion_net(together, data, steps=5, batch_size=8, lambda_alpha=lams, progress=False)
    assert sorted(hist.member.unique()) == [0, 1, 2]
    for m in range(3):
        alone = tiny_net(seeds=(seeds[m],), member_betas=(betas[m],), dropout=0.25)
        h = tf.train_fusion_net(alone, data, steps=5, batch_size=8, lambda_alpha=lams[m], progress=False)
        a, b = together.state_dict(), alone.state_dict()
        for k in b:
            scale = b[k].float().abs().max().clamp(min=1e-3)
            assert ((a[k][m].float() - b[k][0].float()).abs().max() / scale) < 1e-5, (m, k)
        assert np.allclose(hist[hist.member == m].data_loss, h.data_loss, rtol=1e-5)
    assert not torch.equal(together.state_dict()["alpha"][0], together.state_dict()["alpha"][2])  # λ vs λ = 0


def test_training_is_deterministic_in_the_seed_and_records_fig5():
    data = tiny_samples(20)
    runs = []
    for seed in (0, 0, 1):
        net = tiny_net(seeds=(seed,), dropout=0.25)
        hist = tf.train_fusion_net(net, data, steps=6, batch_size=8, lambda_alpha=0.05, progress=False)
        runs.append((hist, net.state_dict()))
    (h0, s0), (h1, s1), (h2, _) = runs
    assert h0.equals(h1) and all(torch.equal(s0[k], s1[k]) for k in s0)
    assert not h0["data_loss"].equals(h2["data_loss"])
    assert list(h0.columns) == ["member", "seed", "step", "data_loss", "penalty", "alpha", "beta"] + [
        f"w_{l}" for l in range(1, LAYERS + 1)]
    last = h0.iloc[-1]
    w = tf.sigmoid_fusion_weights(torch.tensor(last["alpha"]), torch.tensor(last["beta"]), LAYERS)
    assert np.allclose(w.numpy(), last[[f"w_{l}" for l in range(1, LAYERS + 1)]].to_numpy(float), atol=1e-6)
    # the λ/α² term dominates α's gradient: Adam raises α by about lr per step (its first step by exactly lr)
    assert h0["alpha"].iloc[0] == pytest.approx(0.1) and h0["beta"].iloc[0] == LAYERS / 2
    assert h0["alpha"].iloc[1] == pytest.approx(0.1 + 1e-3, rel=1e-4)
    assert np.all(np.diff(h0["alpha"].to_numpy()) > 0) and h0["alpha"].iloc[-1] == pytest.approx(0.1 + 5e-3, abs=5e-4)
    assert np.allclose(h0["penalty"], 0.05 / h0["alpha"] ** 2, rtol=1e-4)


def test_the_history_keeps_every_nth_step_and_the_mean_data_loss_since_the_last():
    data = tiny_samples(16)
    every = tf.train_fusion_net(tiny_net(), data, steps=7, batch_size=8, progress=False)
    strided = tf.train_fusion_net(tiny_net(), data, steps=7, batch_size=8, record_every=3, progress=False)
    assert strided.step.tolist() == [1, 3, 6, 7]
    loss = every.set_index("step").data_loss
    assert strided.data_loss.tolist() == pytest.approx([loss[1], loss.loc[2:3].mean(), loss.loc[4:6].mean(), loss[7]],
                                                       rel=1e-5)
    assert (every.penalty == 0).all()  # λ = 0
    fixed = tf.train_fusion_net(tiny_net(beta=2), data, steps=2, batch_size=8, progress=False)
    assert "alpha" not in fixed.columns


def test_training_fits_a_small_set():
    data = tiny_samples(16)
    net = tiny_net(beta=0)
    hist = tf.train_fusion_net(net, data, steps=40, batch_size=16, lr=3e-3, progress=False)
    assert hist["data_loss"].iloc[-1] < 0.2 * hist["data_loss"].iloc[0]


def test_fusion_parameters_have_their_own_learning_rate():
    data = tiny_samples(8)
    net = tiny_net()
    hist = tf.train_fusion_net(net, data, steps=2, batch_size=8, lr=1e-3, fusion_lr=0.05, lambda_alpha=0.05,
                               progress=False)
    assert hist["alpha"].iloc[1] == pytest.approx(0.1 + 0.05, rel=1e-4)  # Adam's first step is its rate
    assert 0.15 < net.alpha.item() <= 0.2 + 1e-6
    assert net.image_stream["1"].conv.bias.abs().max().item() <= 2 * 1e-3 + 1e-7  # the network moves at lr
    with pytest.raises(ValueError, match="fusion_lr"):
        tf.train_fusion_net(net, data, steps=1, batch_size=8, fusion_lr=0.0)


def test_training_starts_at_each_members_mean_training_pose():
    data = tiny_samples(16)
    net = tiny_net(beta=0, seeds=(0, 0))
    tf.train_fusion_net(net, data, steps=1, batch_size=8, lr=1e-12, train_samples=[None, 8], progress=False)
    whole = tf.PoseNormaliser.fit(data.joints_3d_m)
    half = tf.PoseNormaliser.fit(data.joints_3d_m[tf.member_subsets(16, [8], 1, 0)[0]])
    assert torch.equal(net.pose_mean_m[0], whole.mean_m) and torch.equal(net.pose_scale_m[0], whole.scale_m)
    assert torch.allclose(net.pose_mean_m[1], half.mean_m)
    with torch.no_grad():  # the output layer starts near 0 (100× smaller weights, zero bias): the mean pose
        pred = net(data.images, data.confidence_maps)
    assert (pred[:, 0] - whole.mean_m).abs().max() < 0.05 * whole.scale_m.max()


def test_member_subsets_are_nested_and_the_schedule_follows_each_members_seed():
    subsets = tf.member_subsets(40, [10, 20, None], 3, subset_seed=7)
    assert torch.equal(subsets[0], subsets[1][:10]) and torch.equal(subsets[2], torch.arange(40))
    alone = tf.minibatch_schedule([subsets[1]], [5], steps=3, batch_size=8)
    both = tf.minibatch_schedule([subsets[0], subsets[1]], [4, 5], steps=3, batch_size=8)
    assert both.shape == (3, 8, 2) and torch.equal(both[..., 1], alone[..., 0])  # a neighbour changes nothing
    epoch = tf.minibatch_schedule([subsets[0]], [4], steps=5, batch_size=8)[..., 0].flatten()[:10]
    assert sorted(epoch.tolist()) == sorted(subsets[0].tolist())  # every sample once per epoch
    with pytest.raises(ValueError, match="train_samples"):
        tf.member_subsets(40, [50], 1, 0)


def test_a_seed_changes_the_numbers_and_the_same_seed_repeats_them():
    p = get_profile("smoke")
    crop, crop_hm = tf.crop_sides_px(p)
    g = torch.Generator().manual_seed(0)
    n = 16
    data = tf.MonocularSamples(torch.rand(n, 3, crop, crop, generator=g), torch.rand(n, J, crop_hm, crop_hm, generator=g),
                               0.3 * torch.randn(n, J, 3, generator=g))
    p = dataclasses.replace(p, trainable_fusion=dataclasses.replace(p.trainable_fusion, steps=3))
    net, hist = tf.fit_fusion_method("TrainableFusion", data, p, seeds=(0, 0, 1), device="cpu", progress=False)
    errors = tf.evaluate_members(net, data)["mpjpe_mm"].mean(0)
    assert p.trainable_fusion.dropout > 0  # dropout masks are part of what the seed fixes
    by = {m: g.data_loss.to_numpy() for m, g in hist.groupby("member")}
    assert np.allclose(by[0], by[1], rtol=1e-5) and errors[0].item() == pytest.approx(errors[1].item(), rel=1e-5)
    assert not np.allclose(by[0], by[2]) and errors[0] != errors[2]
    assert hist.penalty.iloc[0] == pytest.approx(p.trainable_fusion.lambda_alpha / 0.1**2, rel=1e-5)


# -------------------------------------------------------------------------------------------------------------- pruning

def test_pruned_network_equals_unpruned_with_binary_weights():
    net = tiny_net(seeds=(0, 1))
    set_fusion(net, 20.0, 2.5)  # w = (0, 0, 1, 1, 1) exactly
    assert tf.fusion_layer(net) == [2, 2]
    images, cms = tiny_inputs()
    with torch.no_grad():
        for m in range(2):
            pruned = tf.prune_fusion_net(net, m)
            assert torch.equal(pruned(images, cms), tf.select_members(net, [m])(images, cms))
    assert pruned.fixed_beta == 2 and pruned.seeds == (1,) and tf.count_parameters(pruned) < tf.count_parameters(net)
    assert tf.count_parameters(pruned) == tf.count_parameters(tiny_net(beta=2))


def test_pruning_soft_weights_changes_the_output():
    net = tiny_net()  # α = 0.1: w ≈ ½ everywhere, far from binary
    images, cms = tiny_inputs()
    with torch.no_grad():
        assert not torch.allclose(tf.prune_fusion_net(net)(images, cms), net(images, cms))


def test_pruning_single_stream_and_fixed_networks_is_a_copy():
    net = tiny_net(beta=LAYERS, streams=("image",))
    images, _ = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(tf.prune_fusion_net(net)(images, None), net(images, None))


def test_inference_time_is_positive():
    images, cms = tiny_inputs(2)
    assert tf.inference_ms_per_image(tiny_net(beta=1), images, cms, repeats=2, warmup=0) > 0


# ------------------------------------------------------------------------------------------------------ Fig. 7: R²

def test_squared_pearson_matches_numpy_and_its_limits():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, generator=g), torch.randn(50, 2, generator=g)
    r2 = tf.squared_pearson(a, b)
    ref = np.corrcoef(a.T.numpy(), b.T.numpy())[:3, 3:] ** 2
    assert np.allclose(r2.numpy(), ref, atol=1e-6)
    assert tf.squared_pearson(a, -2 * a + 1).diagonal().tolist() == pytest.approx([1.0] * 3)
    assert tf.squared_pearson(a, torch.ones(50, 1)).tolist() == [[0.0]] * 3


def test_stream_correlation_is_a_symmetric_channel_matrix_per_member():
    net = tiny_net(seeds=(0, 1))
    images, cms = tiny_inputs(8)
    r2 = tf.stream_correlation_r2(net, images, cms)
    assert r2.shape == (2, 2 * CHANNELS, 2 * CHANNELS)
    assert torch.allclose(r2, r2.transpose(1, 2)) and r2.min() >= 0 and r2.max() <= 1
    assert torch.allclose(r2[1], tf.stream_correlation_r2(tf.select_members(net, [1]), images, cms)[0], atol=1e-6)


def test_correlation_blocks_average_the_off_diagonal_of_each_block():
    r2 = torch.eye(4)
    r2[0, 1] = r2[1, 0] = 0.5  # within the image stream
    r2[2, 3] = r2[3, 2] = 0.25  # within the confidence-map stream
    r2[0, 2] = r2[2, 0] = 0.8  # across
    assert tf.correlation_blocks(r2) == pytest.approx({"image-image": 0.5, "cm-cm": 0.25, "image-cm": 0.2})
    with pytest.raises(ValueError, match="2C, 2C"):
        tf.correlation_blocks(torch.eye(3))


# ---------------------------------------------------------------------------------------- learning curve, evaluation

def test_the_last_doubling_gain_is_read_per_seed():
    curve = pd.DataFrame(dict(seed=[0, 0, 0, 1, 1, 1], train_samples=[8, 16, 32] * 2,
                              mpjpe_mm=[200.0, 150.0, 147.0, 210.0, 160.0, 160.0]))
    gain = tf.last_doubling_gain(curve)
    assert gain.relative_gain.tolist() == pytest.approx([0.02, 0.0]) and gain.from_samples.tolist() == [16, 16]
    with pytest.raises(ValueError, match="doubling"):
        tf.last_doubling_gain(curve[curve.train_samples != 16])


def test_errors_broadcast_over_members_and_the_mean_pose_is_the_floor():
    train, test = tiny_samples(8), tiny_samples(5, seed=1)
    errors = tf.mean_pose_errors(train, test)
    mean = train.joints_3d_m.mean(0)
    want = 1000 * (test.joints_3d_m - mean).norm(dim=-1).mean(-1)
    assert torch.allclose(errors["mpjpe_mm"], want, atol=1e-3) and errors["pa_mpjpe_mm"].shape == (5,)
    two = tf.errors_mm(torch.stack([test.joints_3d_m, mean.expand_as(test.joints_3d_m)], 1), test.joints_3d_m)
    assert two["mpjpe_mm"].shape == (5, 2) and torch.equal(two["mpjpe_mm"][:, 0], torch.zeros(5))
    assert torch.allclose(two["mpjpe_mm"][:, 1], want, atol=1e-3)
    assert torch.equal(tf.mean_pose_errors(train.joints_3d_m, test)["mpjpe_mm"], errors["mpjpe_mm"])  # poses alone


def test_the_perfect_2d_lifter_learns_a_lifting_and_repeats_in_its_seed():
    g = torch.Generator().manual_seed(0)
    n, crop = 256, 32
    joints_2d = torch.rand(n, J, 2, generator=g) * (crop - 1)
    # 3D that the 2D determines (x, y and a depth x·y): a liftable toy
    y3 = torch.cat([joints_2d / crop, (joints_2d[..., :1] * joints_2d[..., 1:]) / crop**2], dim=-1) * 0.5
    y3 = y3 - y3[:, :1]
    data = tf.MonocularSamples(torch.zeros(n, 3, crop, crop), torch.zeros(n, J, 8, 8), y3, joints_2d)
    lifter = tf.PerfectLifter(crop, 64, seeds=(0, 0))
    tf.train_fusion_net(lifter, data, steps=120, batch_size=64, lr=3e-3, progress=False)
    err = tf.evaluate_members(lifter, data)["mpjpe_mm"]
    assert torch.allclose(err[:, 0], err[:, 1], atol=1e-4)
    assert err[:, 0].mean() < 0.5 * tf.mean_pose_errors(data, data)["mpjpe_mm"].mean()
    with pytest.raises(ValueError, match="joints_2d_px"):
        tf.train_fusion_net(lifter, tf.MonocularSamples(data.images, data.confidence_maps, y3), steps=1, batch_size=8)


# --------------------------------------------------------------------------------------------- configurations, errors

def test_table5_configurations_from_the_profile():
    p = get_profile("smoke")
    nets = {m: tf.build_fusion_net(m, p, seeds=(0, 1)) for m in tf.TABLE5}
    assert nets["TrainableFusion"].complete and nets["EarlyFusion"].fixed_beta == 0
    assert nets["LateFusion"].fixed_beta == p.trainable_fusion.layers
    assert nets["ImageOnly"].streams == ("image",) and nets["CMOnly"].streams == ("cm",)
    n = {m: tf.count_parameters(v) for m, v in nets.items()}
    assert n["TrainableFusion"] == max(n.values())
    crop, crop_hm = tf.crop_sides_px(p)
    assert crop == p.trainable_fusion.crop_px and crop_hm * p.studio.image_px == crop * p.studio.heatmap_px
    img, cm = torch.rand(2, 3, crop, crop), torch.rand(2, J, crop_hm, crop_hm)
    with torch.no_grad():
        assert nets["CMOnly"](None, cm).shape == (2, 2, J, 3)
        assert tf.build_fusion_net("FixedFusion", p, beta=3)(img, cm).shape == (2, 1, J, 3)


def test_the_fusion_family_plan_holds_every_configuration_once_per_seed():
    plan = tf.fusion_family_plan([0, 1], [0], 4, 0.5)
    assert plan.member.tolist() == list(range(len(plan))) and len(plan) == 2 * 4 + 3
    assert plan[plan.seed == 1].method.tolist() == ["EarlyFusion", "LateFusion", "TrainableFusion", "TrainableFusion"]
    assert plan[plan.method == "TrainableFusion"].run.unique().tolist() == ["λ = 0.5", "λ = 0"]
    assert plan[plan.method == "FixedFusion"].beta.tolist() == [1, 2, 3] and plan.beta.iloc[2] is None
    family = tf.build_fusion_family(get_profile("smoke"), plan.seed.tolist(), plan.beta.tolist())
    assert family.member_trainable().tolist() == [b is None for b in plan.beta]


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_px=30), "multiple of heatmap_px"),
    (dict(layers=2), "layers"),
    (dict(channels=0), "channels"),
    (dict(beta=LAYERS + 1), "beta"),
    (dict(beta=-1), "beta"),
    (dict(streams=("depth",)), "streams"),
    (dict(streams=()), "streams"),
    (dict(alpha_init=0.0), "alpha_init"),
    (dict(beta_init=float("nan")), "beta_init"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(0, -1)), "seed"),
    (dict(seeds=(0, 1), member_betas=(None,)), "member_betas"),
    (dict(member_betas=(LAYERS + 1,)), "member beta"),
    (dict(beta=2, member_betas=(1,)), "complete architecture"),
])
def test_bad_network_configuration_is_a_clear_error(kwargs, match):
    args = dict(image_px=IMAGE_PX, heatmap_px=HEATMAP_PX, layers=LAYERS, channels=CHANNELS)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tf.FusionNet(args.pop("image_px"), args.pop("heatmap_px"), **args)


def test_bad_method_inputs_and_training_settings_are_clear_errors():
    p = get_profile("smoke")
    with pytest.raises(ValueError, match="unknown method 'Foo'"):
        tf.build_fusion_net("Foo", p)
    with pytest.raises(ValueError, match="beta must be given for FixedFusion"):
        tf.build_fusion_net("FixedFusion", p)
    with pytest.raises(ValueError, match="beta must be given for FixedFusion"):
        tf.build_fusion_net("EarlyFusion", p, beta=2)
    net = tiny_net(seeds=(0, 1))
    images, cms = tiny_inputs(2)
    with pytest.raises(ValueError, match="images must be"):
        net(images[:, :, :16], cms)
    with pytest.raises(ValueError, match="confidence_maps must be"):
        net(images, cms[:, :5])
    with pytest.raises(ValueError, match="confidence_maps must be"):
        net(images, cms[:, None].expand(2, 3, J, HEATMAP_PX, HEATMAP_PX))  # 3 members' maps for 2 members
    with pytest.raises(ValueError, match="batch sizes"):
        net(images, cms[:1])
    data = tiny_samples(4)
    with pytest.raises(ValueError, match="steps"):
        tf.train_fusion_net(net, data, steps=0, batch_size=2)
    with pytest.raises(ValueError, match="lambda_alpha"):
        tf.train_fusion_net(net, data, steps=1, batch_size=2, lambda_alpha=-1.0)
    with pytest.raises(ValueError, match="lambda_alpha needs one value per member"):
        tf.train_fusion_net(net, data, steps=1, batch_size=2, lambda_alpha=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="device"):
        tf.train_fusion_net(net, data, steps=1, batch_size=2, device="tpu")
    with pytest.raises(ValueError, match="joints_3d_m"):
        tf.MonocularSamples(data.images, data.confidence_maps, data.joints_3d_m[:2])
    with pytest.raises(ValueError, match="clips"):
        tf.MonocularSamples(data.images, data.confidence_maps, data.joints_3d_m, clips=("a",))
    with pytest.raises(ValueError, match="need at least 2 samples"):
        tf.squared_pearson(torch.ones(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="both streams"):
        tf.stream_correlation_r2(tiny_net(beta=LAYERS, streams=("cm",)), images, cms)
    with pytest.raises(ValueError, match="member"):
        tf.prune_fusion_net(net, 2)


# ------------------------------------------------------------------------------------------------------------ samples

def test_normalisation_round_trips_and_standardises_the_training_poses():
    g = torch.Generator().manual_seed(0)
    y = 0.3 * torch.randn(50, J, 3, generator=g) + torch.linspace(-1, 1, J * 3).reshape(J, 3)
    y[:, 0] = 0.0  # the root-relative pelvis never moves
    norm = tf.PoseNormaliser.fit(y)
    z = norm.normalise(y)
    assert torch.allclose(norm.denormalise(z), y, atol=1e-6)
    assert torch.allclose(z[:, 1:].mean(0), torch.zeros(J - 1, 3), atol=1e-5)
    assert torch.allclose(z[:, 1:].std(0), torch.ones(J - 1, 3), atol=1e-5)
    assert torch.equal(norm.scale_m[0], torch.full((3,), tf.MIN_POSE_SCALE_M)) and torch.equal(z[:, 0], torch.zeros(50, 3))
    with pytest.raises(ValueError, match="joints_3d_m"):
        tf.PoseNormaliser.fit(y[:1])


def test_the_crop_keeps_the_person():
    g = torch.Generator().manual_seed(0)
    H, out = 64, 32
    joints = torch.rand(5, J, 2, generator=g) * torch.tensor([30.0, 40.0]) + torch.tensor([10.0, 12.0])
    boxes = tf.person_boxes_px(joints)
    inside = tf.to_crop_px(joints, boxes, out)
    margin = (tf.CROP_SCALE - 1) / 2 * out / tf.CROP_SCALE - 0.5  # at least this far from the crop's border (px)
    assert inside.min() >= margin - 1e-4 and inside.max() <= out - 1 - margin + 1e-4
    # a Gaussian at a joint in the source is still at that joint in the crop (bilinear resampling)
    from mfcore.data import gaussian_heatmaps
    maps = gaussian_heatmaps(joints, H, sigma_px=3.0)
    crops = tf.crop_square(maps, boxes, out)
    peak = crops.flatten(2).argmax(-1)
    peak_xy = torch.stack([peak % out, peak // out], dim=-1).float()
    assert (peak_xy - inside).abs().max() <= 1.0
    with pytest.raises(ValueError, match="scale"):
        tf.person_boxes_px(joints, scale=0.5)


def test_camera_frame_root_relative_joints():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, J, 3, generator=g)
    angle = torch.tensor(0.7)
    R = torch.tensor([[torch.cos(angle), -torch.sin(angle), 0.0], [torch.sin(angle), torch.cos(angle), 0.0],
                      [0.0, 0.0, 1.0]]).expand(3, 3, 3)
    t = torch.tensor([0.1, -0.2, 4.0]).expand(3, 3)
    y = tf.camera_frame_root_relative(X, R, t)
    assert torch.equal(y[:, 0], torch.zeros(3, 3))
    assert torch.allclose(y, (X - X[:, :1]) @ R[0].T, atol=1e-6)  # translation cancels, rotation stays


def test_monocular_samples_are_deterministic_root_relative_and_independent_of_the_chunking(monkeypatch):
    from mfcore import backbone
    from mfcore.trainable_fusion import samples

    p = get_profile("smoke")
    model = backbone.freeze(backbone.model_from_profile(p))  # an untrained backbone: no warm-up in a unit test
    a = tf.make_monocular_samples(p, "train", 6, seed=0, device="cpu", backbone=model)
    monkeypatch.setattr(samples, "RENDER_CHUNK_FRAMES", 1)
    b = tf.make_monocular_samples(p, "train", 6, seed=0, device="cpu", backbone=model)
    c = tf.make_monocular_samples(p, "test", 6, seed=0, device="cpu", backbone=model)
    H, h = tf.crop_sides_px(p)
    assert a.images.shape == (6, 3, H, H) and a.confidence_maps.shape == (6, J, h, h) and a.joints_3d_m.shape == (6, J, 3)
    assert a.joints_2d_px.shape == (6, J, 2)  # the crop keeps the person: every joint inside the window
    assert a.joints_2d_px.min() > 0 and a.joints_2d_px.max() < H - 1
    for name in ("images", "confidence_maps", "joints_3d_m", "joints_2d_px"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name
    assert a.clips == b.clips and len(a.clips) == 6 and all("/" in clip for clip in a.clips)
    assert not torch.equal(a.joints_3d_m, c.joints_3d_m)
    assert torch.equal(a.joints_3d_m[:, 0], torch.zeros(6, 3))
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert a.subset(torch.tensor([4, 1])).clips == (a.clips[4], a.clips[1])
    with pytest.raises(ValueError, match="split"):
        tf.make_monocular_samples(p, "val", 4, seed=0, device="cpu", backbone=model)
    with pytest.raises(ValueError, match="n_samples"):
        tf.make_monocular_samples(p, "train", 2, seed=0, device="cpu", backbone=model)  # fewer than the 3 rigs
