"""NaiveFuse / AffineFuse (MetaFuse Sec. 3-4.1) in miniature."""

import math
import pytest
import torch

from mfcore import affine, data, epipolar, fusion


def _random_affine(pairs, z, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return fusion.identity_theta(pairs, z) + scale * torch.randn(pairs, z, 2, 3, generator=g)


def test_identity_theta_reproduces_omega_base_exactly():
    omega = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    theta = fusion.identity_theta(2, 36)
    for higher_order in (False, True):
        w = fusion.affine_weight(omega, theta, higher_order=higher_order)
        assert w.shape == (2, 36, 36)
        assert torch.equal(w, omega.flatten().expand(2, 36, 36))
    assert torch.allclose(fusion.affine_weight_reference(omega, theta), omega.flatten().expand(2, 36, 36), atol=1e-6)


def test_translation_by_one_pixel_shifts_the_weight_map():
    # b_x = 2/W in normalised units is one pixel: row i reads omega one pixel to the right (zeros past the border)
    omega = torch.arange(20.0).reshape(4, 5)
    theta = fusion.identity_theta(1, 20)
    theta[..., 0, 2] = 2 / 5
    w = fusion.affine_weight(omega, theta)[0, 0].reshape(4, 5)
    expected = torch.cat([omega[:, 1:], torch.zeros(4, 1)], dim=1)
    assert torch.allclose(w, expected, atol=1e-5)


@pytest.mark.parametrize("h,w,scale", [(5, 5, 0.3), (7, 4, 0.8), (8, 8, 2.0)])
def test_fast_affine_weight_equals_grid_sample_reference(h, w, scale):
    g = torch.Generator().manual_seed(h * w)
    omega = torch.randn(h, w, generator=g)
    theta = _random_affine(3, h * w, scale, seed=h + w)
    ref = fusion.affine_weight_reference(omega, theta)
    for higher_order in (False, True):
        assert torch.allclose(fusion.affine_weight(omega, theta, higher_order=higher_order), ref, atol=1e-5)


@pytest.mark.parametrize("scale", [0.5, 3.0])  # 3.0: most sample points leave the map (the scratch-area path)
def test_fast_affine_weight_gradients_equal_the_reference(scale):
    g = torch.Generator().manual_seed(1)
    omega = torch.randn(6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    theta = _random_affine(2, 36, scale, seed=2).double().requires_grad_()
    upstream = torch.randn(2, 36, 36, generator=g, dtype=torch.float64)
    ref = torch.autograd.grad((fusion.affine_weight_reference(omega, theta) * upstream).sum(), (omega, theta))
    for higher_order in (False, True):
        got = torch.autograd.grad((fusion.affine_weight(omega, theta, higher_order=higher_order) * upstream).sum(),
                                  (omega, theta))
        for a, b in zip(got, ref):
            assert torch.allclose(a, b, atol=1e-10)


def test_higher_order_path_has_gradients_of_gradients():
    omega = torch.randn(5, 5, generator=torch.Generator().manual_seed(3), requires_grad=True)
    theta = _random_affine(1, 25, 0.2, seed=3).requires_grad_()
    (gt,) = torch.autograd.grad(fusion.affine_weight(omega, theta, higher_order=True).square().sum(), theta,
                                create_graph=True)
    (go,) = torch.autograd.grad(gt.square().sum(), omega)
    assert go.abs().sum() > 0


def test_parameter_counts_naive_z1z2_vs_affine_z2_plus_6z1():
    z = 16 * 16
    naive, affine = fusion.NaiveFuse(2, 16, ((0, 1),)), fusion.AffineFuse(2, 16, ((0, 1),))
    assert fusion.parameter_count(naive) == naive.parameters_per_pair() == z * z
    assert fusion.parameter_count(affine) == affine.parameters_per_pair() == z + 6 * z
    # a 4-view rig: 12 ordered pairs, omega_base counted once
    assert fusion.parameter_count(fusion.NaiveFuse(4, 16)) == 12 * z * z
    assert fusion.parameter_count(fusion.AffineFuse(4, 16)) == z + 12 * 6 * z


def test_fuse_equals_an_explicit_eq1_sum_with_the_reference_mix():
    """fused_t = 0.4 x_t + 0.6 / (V - 1) sum_s W_ts x_s: three views, each source at 0.3."""
    g = torch.Generator().manual_seed(4)
    b, v, j, h = 2, 3, 2, 3
    z = h * h
    x = torch.randn(b, v, j, h, h, generator=g, dtype=torch.float64)
    pairs = fusion.ordered_pairs(v)
    weights = torch.randn(len(pairs), z, z, generator=g, dtype=torch.float64)
    out = fusion.fuse(x, weights, pairs).reshape(b, v, j, z)
    flat = x.reshape(b, v, j, z)
    expected = 0.4 * flat.clone()
    for k, (t, s) in enumerate(pairs):
        for bb in range(b):
            for jj in range(j):
                for i in range(z):
                    expected[bb, t, jj, i] += 0.3 * sum(weights[k, i, p] * flat[bb, s, jj, p] for p in range(z))
    assert torch.allclose(out, expected, atol=1e-12)


def test_the_mix_keeps_a_pair_models_total_source_weight_on_any_rig():
    """A pair model (V = 2: own 0.4, the source 0.6) spread over V = 4 by for_rig: each of 3 sources at 0.2, the same
    W, so three identical source views add exactly what the one source added to the pair."""
    assert fusion.SELF_WEIGHT == 0.4 and fusion.source_weight(1) == pytest.approx(0.6)
    assert fusion.source_weight(3) == pytest.approx(0.2)  # the reference's [0.4, 0.2, 0.2, 0.2]
    own, to_view = fusion.mix_weights(((0, 1),), 2)
    assert own.tolist() == pytest.approx([0.4, 1.0]) and to_view.flatten().tolist() == pytest.approx([0.6, 0.0])
    g = torch.Generator().manual_seed(11)
    pair = fusion.NaiveFuse(2, 3, ((0, 1),))
    with torch.no_grad():
        pair.weight.copy_(torch.rand(1, 9, 9, generator=g))
    rig = fusion.for_rig(pair, 4)
    target, source = torch.rand(1, 1, 2, 3, 3, generator=g), torch.rand(1, 1, 2, 3, 3, generator=g)
    fused_pair = pair(torch.cat([target, source], 1))[:, 0]
    fused_rig = rig(torch.cat([target, source, source, source], 1))[:, 0]
    assert torch.allclose(fused_rig, fused_pair, atol=1e-6)
    _, to_view4 = fusion.mix_weights(rig.pairs, 4)
    assert to_view4.sum(1).tolist() == pytest.approx([0.6] * 4)
    with pytest.raises(ValueError, match="num_sources"):
        fusion.source_weight(0)


def test_objective_candidates_at_known_inputs():
    """Eq. (3) (MSE of the mixed map) and the softmax candidate on a 1 x 2 heatmap, by hand."""
    fused = torch.tensor([[[[1.0, 0.0]]]])  # (1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.5]]]])
    assert float(fusion.fusion_mse(fused, target)) == pytest.approx(0.125)  # (0 + 0.25) / 2
    # softmax(T = 0.2) of [1, 0] = [1, e^-5] / (1 + e^-5); the target's mass 1.5 carries it; y = [1, 0.5]
    e = math.exp(-5.0)
    p = [1 / (1 + e), e / (1 + e)]
    expected = ((1.5 * p[0] - 1.0) ** 2 + (1.5 * p[1] - 0.5) ** 2) / 2
    assert float(fusion.softmax_mse(fused, target)) == pytest.approx(expected, rel=1e-6)
    assert float(fusion.softmax_mse(fused, torch.zeros_like(target))) == 0.0  # an empty target adds nothing
    # the mix at W = 0: the own heatmap at 0.4, so a perfect backbone map costs 0.36 y^2 per pixel
    y = torch.tensor([[[[1.0, 0.5]]], [[[0.0, 1.0]]]]).reshape(1, 2, 1, 1, 2)
    out = fusion.fuse(y, torch.zeros(2, 2, 2), fusion.ordered_pairs(2))
    assert float(fusion.fusion_mse(out, y)) == pytest.approx(0.36 * (1 + 0.25 + 0 + 1) / 4)


@pytest.mark.parametrize("views", [2, 3, 4, 8])
@pytest.mark.parametrize("cls", [fusion.NaiveFuse, fusion.AffineFuse])
def test_any_number_of_views(views, cls):
    model = cls(views, 4)
    assert len(model.pairs) == views * (views - 1)
    x = torch.rand(2, views, 3, 4, 4, generator=torch.Generator().manual_seed(views))
    untrained = model(x)  # the own heatmap at 0.4 (+ a constant per channel from AffineFuse's seeded omega_base)
    assert torch.equal(untrained.flatten(-2).argmax(-1), x.flatten(-2).argmax(-1))  # NoFusion's maxima
    if cls is fusion.NaiveFuse:
        assert torch.allclose(untrained, 0.4 * x)
    src = 0.6 / (views - 1)
    with torch.no_grad():  # switch on the pair (target 1 <- source 0) only
        k = model.pairs.index((1, 0))
        if cls is fusion.NaiveFuse:
            model.weight[k] = 0.5 * torch.eye(16)
        else:
            model.omega_base.fill_(0.25)
            model.theta.zero_()  # every other pair reads the centre of a constant map: make them all zero first
            model.theta[k] = fusion.identity_theta(1, 16)[0]
            others = [i for i in range(len(model.pairs)) if i != k]
            model.theta[others, :, :, 2] = 10.0  # read far outside omega_base: zero weights
    out = model(x)
    assert all(torch.allclose(out[:, i], 0.4 * x[:, i]) for i in range(views) if i != 1)
    if cls is fusion.NaiveFuse:
        assert torch.allclose(out[:, 1], 0.4 * x[:, 1] + src * 0.5 * x[:, 0])
    else:
        assert torch.allclose(out[:, 1], 0.4 * x[:, 1] + src * 0.25 * x[:, 0].sum((-1, -2), keepdim=True))


def test_sharpen_keeps_the_argmax_and_sums_to_one():
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(5))
    s = fusion.sharpen(x, 0.2)
    assert torch.equal(s.flatten(-2).argmax(-1), x.flatten(-2).argmax(-1))
    assert torch.allclose(s.sum((-1, -2)), torch.ones(2, 3))
    assert (s.flatten(-2).max(-1).values > torch.softmax(x.flatten(-2), -1).max(-1).values).all()  # sharper than T=1
    with pytest.raises(ValueError, match="temperature"):
        fusion.sharpen(x, 0.0)


def test_frozen_affine_fuse_reuses_its_weights_until_a_parameter_changes():
    model = fusion.AffineFuse(3, 4).freeze()
    w1 = model.pair_weights()
    assert model.pair_weights() is w1
    with torch.no_grad():
        model.omega_base.add_(1.0)
    w2 = model.pair_weights()
    assert w2 is not w1 and torch.equal(w2, model.omega_base.reshape(1, 1, 16).expand_as(w2))
    model.theta.requires_grad_(True)
    assert model.pair_weights() is not w2  # training mode: rebuilt with a graph


def test_for_rig_initialises_every_pair_from_a_pair_model():
    pair = fusion.AffineFuse(2, 4, ((0, 1),))
    with torch.no_grad():
        pair.omega_base.normal_(generator=torch.Generator().manual_seed(6))
        pair.theta.add_(0.1)
    rig = fusion.for_rig(pair, 4)
    assert len(rig.pairs) == 12 and torch.equal(rig.omega_base, pair.omega_base)
    assert all(torch.equal(rig.theta[k], pair.theta[0]) for k in range(12))
    naive4 = fusion.NaiveFuse(4, 4)
    assert torch.equal(fusion.for_rig(naive4, 4).weight, naive4.weight)
    with pytest.raises(ValueError, match="cannot initialise"):
        fusion.for_rig(naive4, 3)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="num_views"):
        fusion.ordered_pairs(1)
    with pytest.raises(ValueError, match="not an ordered pair"):
        fusion.NaiveFuse(2, 4, ((0, 0),))
    with pytest.raises(ValueError, match=r"\(B, V=3"):
        fusion.AffineFuse(3, 4)(torch.zeros(1, 2, 1, 4, 4))
    with pytest.raises(ValueError, match="weights must be"):
        fusion.fuse(torch.zeros(1, 2, 1, 4, 4), torch.zeros(2, 16, 15), fusion.ordered_pairs(2))
    with pytest.raises(ValueError, match="theta must be"):
        fusion.affine_weight(torch.zeros(4, 4), torch.zeros(16, 3, 3))
    with pytest.raises(ValueError, match="heatmap_px"):
        fusion.NaiveFuse(2, 1)


def test_contributions_are_the_terms_of_eq1():
    model = fusion.AffineFuse(3, 4)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        model.omega_base.copy_(torch.randn(4, 4, generator=g))
        model.theta.add_(0.2 * torch.randn(model.theta.shape, generator=g))
    x = torch.rand(2, 3, 2, 4, 4, generator=g)
    terms = fusion.contributions(x, model.pair_weights(), model.pairs)
    assert terms.shape == (2, 6, 2, 4, 4)
    fused = model(x)
    for t in range(3):
        incoming = [k for k, (tt, _) in enumerate(model.pairs) if tt == t]
        assert torch.allclose(0.4 * x[:, t] + 0.3 * terms[:, incoming].sum(1), fused[:, t], atol=1e-5)


def test_omega_gradient_is_the_same_with_private_histogram_copies_and_off_map_samples():
    theta = _random_affine(3, 20, 3.0, seed=5).double().reshape(-1, 2, 3)  # many samples off the 4 x 5 map
    grad_w = torch.randn(60, 20, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    one = affine._omega_grad(theta, grad_w, 1, 4, 5, copies=1)
    many = affine._omega_grad(theta, grad_w, 1, 4, 5, copies=7)
    assert one.shape == (1, 4, 5) and torch.allclose(one, many, atol=1e-12)
    # three members of 20 rows each: each member's histogram holds its own rows only
    split = affine._omega_grad(theta, grad_w, 3, 4, 5, copies=7)
    alone = [affine._omega_grad(theta[k * 20:(k + 1) * 20], grad_w[k * 20:(k + 1) * 20], 1, 4, 5, copies=2)[0]
             for k in range(3)]
    assert torch.allclose(split, torch.stack(alone), atol=1e-12) and torch.allclose(split.sum(0), one[0], atol=1e-12)


def test_affine_fuse_starts_where_the_gradient_reaches_theta():
    """omega_base starts U(0, 0.1 / Z2), seeded: NoFusion's maxima, but dL/dtheta != 0 (with omega_base = 0 it is 0)."""
    model = fusion.AffineFuse(2, 4, ((0, 1),))
    omega = model.omega_base.detach()
    assert torch.equal(omega, fusion.AffineFuse(2, 4, ((0, 1),)).omega_base.detach())  # seeded: the same start
    assert not torch.equal(omega, fusion.AffineFuse(2, 4, ((0, 1),), seed=1).omega_base.detach())
    assert float(omega.min()) >= 0 and float(omega.max()) < 0.1 / 16 and float(omega.std()) > 0
    g = torch.Generator().manual_seed(12)
    x, y = torch.rand(3, 2, 2, 4, 4, generator=g), torch.rand(3, 2, 2, 4, 4, generator=g)
    fusion.fusion_mse(model(x), y, model.target_views).backward()
    assert float(model.theta.grad.abs().max()) > 0
    flat = fusion.AffineFuse(2, 4, ((0, 1),))
    with torch.no_grad():
        flat.omega_base.zero_()
    fusion.fusion_mse(flat(x), y, flat.target_views).backward()
    assert float(flat.theta.grad.abs().max()) == 0.0  # the old start: W = 0, nothing reaches theta


def test_the_gradient_of_eq3_reaches_theta_only_near_the_current_line():
    """Why θ cannot find distant epipolar lines by gradient descent (a mechanism behind chapter 4's MetaFuse results):
    with a σ = 2 px line as ω_base and θ the identity, a source joint d heatmap pixels off the line pulls the target
    pixel's θ strongly at d = 4 (2σ) and not at all, in practice, from d = 16 (8σ): bilinear sampling of a thin map has
    a gradient only where the map is."""
    side, sigma = 64, 2.0
    model = fusion.AffineFuse(2, side, pairs=[(0, 1)])
    with torch.no_grad():
        model.omega_base.copy_(epipolar.centred_line_map(side, sigma) * 0.05)
    pixel = 32 * side + 32  # the target joint's pixel (row 32, column 32)

    def pull(offset_px: float) -> float:
        model.zero_grad()
        joints = torch.tensor([[[[32.0, 32.0]], [[20.0, 31.5 + offset_px]]]])  # (1, V, J, 2) heatmap px (x, y)
        maps = data.gaussian_heatmaps(joints, side, sigma)
        fusion.fusion_mse(model(maps), maps, model.target_views).backward()
        return float(model.theta.grad[0, pixel].norm())

    near, far = pull(4.0), pull(16.0)
    assert near > 1e-4 and far < 1e-6 * near


def test_affinefuse_keeps_weights_only_in_eval_mode_and_a_mode_switch_drops_them():
    """Scores between finetuning steps (train_fusion's on_step) must see each step's θ, even where the optimiser writes
    θ without moving its version counter (as a ``.data`` write does here)."""
    torch.manual_seed(0)
    model = fusion.AffineFuse(2, 8, ((0, 1),))
    x = torch.rand(3, 2, 2, 8, 8)
    model.eval()
    with torch.no_grad():
        before = model(x)
        assert model._cache is not None
        model.theta.data[..., 0, 2] += 0.5  # a shift of every line: a write that leaves theta._version as it was
        stale = model(x)
    assert torch.equal(stale, before)  # eval mode keeps what it built: the documented limit
    model.train()  # what every training loop does before its steps
    assert model._cache is None
    model.eval()
    with torch.no_grad():
        fresh = model(x)
    expected = fusion.fuse(x, fusion.affine_weight(model.omega_base.detach(), model.theta.detach()), model.pairs)
    assert not torch.equal(fresh, before) and torch.allclose(fresh, expected, atol=1e-6)
    model.train()
    with torch.no_grad():  # train mode never keeps weights, with or without a graph
        model(x)
    assert model._cache is None


# ----------------------------------------------------------------------------------------------------------------------
# many models at once: member parameters

@pytest.mark.parametrize("higher_order", [False, True])
def test_member_weights_are_every_models_own_weights_and_gradients(higher_order):
    """Eq. (2) for M members in one call: member m's rows read member m's map, and every member's gradients are the
    ones of its own model (the members' histograms never mix)."""
    g = torch.Generator().manual_seed(21)
    omega = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)  # (M, H, W)
    theta = torch.stack([_random_affine(2, 20, 0.6, seed=s) for s in range(3)]).double().requires_grad_()
    upstream = torch.randn(3, 2, 20, 20, generator=g, dtype=torch.float64)
    w = fusion.affine_weight(omega, theta, higher_order=higher_order)
    assert w.shape == (3, 2, 20, 20)
    grads = torch.autograd.grad((w * upstream).sum(), (omega, theta))
    for m in range(3):
        o, t = omega[m].detach().requires_grad_(), theta[m].detach().requires_grad_()
        ref = fusion.affine_weight_reference(o, t)
        assert torch.allclose(w[m], ref, atol=1e-10)
        ref_grads = torch.autograd.grad((ref * upstream[m]).sum(), (o, t))
        assert torch.allclose(grads[0][m], ref_grads[0], atol=1e-10)
        assert torch.allclose(grads[1][m], ref_grads[1], atol=1e-10)
    with pytest.raises(ValueError, match="M=3 members"):
        fusion.affine_weight(omega, theta[:2])


@pytest.mark.parametrize("cls", [fusion.NaiveFuse, fusion.AffineFuse])
def test_forward_members_fuses_every_member_with_its_own_weights_and_heatmaps(cls):
    g = torch.Generator().manual_seed(22)
    models = [cls(3, 4) for _ in range(2)]
    for m in models:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]) for n, _ in
              models[0].named_parameters()}
    x = torch.rand(2, 5, 3, 2, 4, 4, generator=g)  # (M, B, V, J, H, W)
    fused = models[0].forward_members(params, x)
    for m in range(2):
        assert torch.allclose(fused[m], models[m](x[m]), atol=1e-6)
    y = torch.rand(x.shape, generator=g)
    per_member = fusion.member_mse(fused, y, models[0].target_views)
    assert per_member.shape == (2,)
    for m in range(2):
        assert float(per_member[m]) == pytest.approx(float(fusion.fusion_mse(fused[m], y[m])), rel=1e-6)
    assert torch.allclose(fusion.member_mse(fused, y, (1,)), ((fused[:, :, 1] - y[:, :, 1]) ** 2).flatten(1).mean(1))
    with pytest.raises(ValueError, match=r"\(M, B, V=3"):
        models[0].forward_members(params, x[0])


def test_the_plain_sum_mix_is_eq1_as_printed_and_for_rig_keeps_mix_and_scale():
    """mix="sum": x_t + sum_s W x_s (every weight 1); AffineFuse(scaled=True) warps omega_scale · omega_base."""
    g = torch.Generator().manual_seed(23)
    x = torch.rand(2, 3, 2, 3, 3, generator=g)
    pairs = fusion.ordered_pairs(3)
    weights = torch.rand(len(pairs), 9, 9, generator=g)
    plain = fusion.fuse(x, weights, pairs, mix="sum")
    terms = fusion.contributions(x, weights, pairs)
    for t in range(3):
        incoming = [k for k, (tt, _) in enumerate(pairs) if tt == t]
        assert torch.allclose(plain[:, t], x[:, t] + terms[:, incoming].sum(1), atol=1e-6)
    own, to_view = fusion.mix_weights(pairs, 3, "sum")
    assert own.tolist() == [1.0] * 3 and sorted(set(to_view.flatten().tolist())) == [0.0, 1.0]
    model = fusion.AffineFuse(2, 3, ((0, 1),), scaled=True, mix="sum")
    with torch.no_grad():
        model.omega_scale.fill_(2.5)
    unscaled = fusion.AffineFuse(2, 3, ((0, 1),))
    assert torch.allclose(model.pair_weights(), 2.5 * unscaled.pair_weights(), atol=1e-7)
    params = {n: p.detach()[None] for n, p in model.named_parameters()}
    assert torch.allclose(model.member_weights(params)[0], model.pair_weights(), atol=1e-7)
    rig = fusion.for_rig(model, 3)
    assert rig.mix == "sum" and rig.scaled and float(rig.omega_scale.detach()) == 2.5
    assert set(dict(rig.named_parameters())) == {"omega_base", "theta", "omega_scale"}
    with pytest.raises(ValueError, match="unknown mix 'max'"):
        fusion.NaiveFuse(2, 3, mix="max")


def test_member_tables_padded_for_compiled_kernels_and_split_into_chunks_change_nothing(monkeypatch):
    """What the compiled CUDA kernels see, on the CPU: member tables padded with zero maps (powers of two) and rows
    in many chunks with a remainder give the reference's weights and gradients."""
    monkeypatch.setattr(affine, "_table_members", lambda members, compiled: 1 << members.bit_length())
    monkeypatch.setitem(affine._CHUNK_ELEMENTS, "cpu", 20 * 7)  # 7 rows of a 4 x 5 map per chunk
    g = torch.Generator().manual_seed(24)
    omega = torch.randn(3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    theta = torch.stack([_random_affine(2, 20, 0.5, seed=s) for s in range(3)]).double().requires_grad_()
    upstream = torch.randn(3, 2, 20, 20, generator=g, dtype=torch.float64)
    w = fusion.affine_weight(omega, theta)
    ref = fusion.affine_weight_reference(omega, theta)
    got = torch.autograd.grad((w * upstream).sum(), (omega, theta))
    expected = torch.autograd.grad((ref * upstream).sum(), (omega, theta))
    assert torch.allclose(w, ref, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(got, expected))
