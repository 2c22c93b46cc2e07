"""mfcore.epipolar in miniature: the ideal fusion weights of Eq. (1) and the affine factorisation of Eq. (2) of
MetaFuse."""

import math

import pytest
import torch

from mfcore import data, fusion, studio
from mfcore import epipolar as ep
from mfcore import geometry as g

CENTRE = ep.JOINT_BOX_CENTRE_M
SIDE = 24


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP oversubscription on a shared CPU (5× faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cam_at(deg, radius=4.0, height=1.5, side=SIDE, focal_scale=1.5, name=""):
    a = math.radians(deg)
    pos = (radius * math.cos(a), radius * math.sin(a), height)
    return g.look_at_camera(pos, CENTRE, focal_scale * side, side, name)


def square_rig(side=SIDE):
    """Four cameras around the volume: neighbours 90° apart, opposite cameras facing each other."""
    return [cam_at(45 + 90 * k, height=1.3 + 0.2 * k, side=side, name=f"c{k}") for k in range(4)]


def project1(cam, X):
    return g.project(cam.projection()[None], X)[0]


# ------------------------------------------------------------------------------------------------- grids and lines
def test_pixel_grid_is_row_major_xy():
    grid = ep.pixel_grid_px(3)
    assert grid.shape == (9, 2)
    assert grid[5].tolist() == [2.0, 1.0]  # index 5 = y 1, x 2
    with pytest.raises(ValueError, match="side"):
        ep.pixel_grid_px(1)


def test_normalised_coordinates_match_affine_grid_pixel_centres():
    assert ep.px_to_normalised(torch.tensor([0.0, 7.0]), 8).tolist() == [-0.875, 0.875]
    line_px = torch.tensor([[0.6, 0.8, -10.0]], dtype=torch.float64)
    p_px = torch.tensor([[10.0 / 0.6, 0.0]], dtype=torch.float64)  # on the line
    ln = ep.line_to_normalised(line_px, 20)[0]
    pn = ep.px_to_normalised(p_px, 20)[0]
    assert abs(ln[0] * pn[0] + ln[1] * pn[1] + ln[2]) < 1e-12
    # distances scale by 2/side
    q_px = p_px + 3.0 * line_px[:, :2]
    qn = ep.px_to_normalised(q_px, 20)[0]
    assert float(ln[0] * qn[0] + ln[1] * qn[1] + ln[2]) == pytest.approx(3.0 * 2 / 20)


def test_visible_direction_points_along_increasing_depth_on_the_ray():
    cams = square_rig()
    x1 = torch.tensor([[10.0, 12.0], [3.0, 20.0]], dtype=torch.float64)
    for b in (1, 2):
        geo = ep.epipolar_geometry(cams[0], cams[b], x1)
        o, d = g.back_projection_ray(cams[0], x1)
        near = project1(cams[b], (o + 3.0 * d)[:, None, :].squeeze(1))
        far = project1(cams[b], (o + 5.0 * d)[:, None, :].squeeze(1))
        assert ((far - near) * geo["direction"]).sum(-1).min() > 0
        assert torch.allclose(geo["direction"].norm(dim=-1), torch.ones(2, dtype=torch.float64))


def test_line_segment_in_square_clips_to_the_border():
    lines = torch.tensor([[0.0, 1.0, -5.0], [1.0, 0.0, 100.0]], dtype=torch.float64)  # y = 5 ; x = -100 (misses)
    seg = ep.line_segment_in_square(lines, 10)
    assert sorted(seg[0, :, 0].tolist()) == [-0.5, 9.5] and seg[0, :, 1].tolist() == [5.0, 5.0]
    assert torch.isnan(seg[1]).all()


# ------------------------------------------------------------------------------------------- ideal weights (Eq. 1)
def test_ideal_weights_peak_on_the_epipolar_line_and_follow_the_distance():
    cams = square_rig()
    X = torch.tensor([[0.2, -0.1, 1.3]], dtype=torch.float64)
    x1, x2 = project1(cams[0], X), project1(cams[1], X)
    w = ep.ideal_fusion_weights(cams[0], cams[1], x1, sigma_px=1.0)[0]
    assert w.shape == (SIDE, SIDE) and w.dtype == torch.float32
    assert 0.0 <= float(w.min()) and float(w.max()) <= 1.0
    j = x2[0].round().long()
    assert float(w[j[1], j[0]]) >= math.exp(-0.25) - 1e-6  # the true match is at most √2/2 px from the line
    line = g.epipolar_line(g.fundamental_matrix(cams[0], cams[1]), x1)[0]
    grid = ep.pixel_grid_px(SIDE)
    d = line[0] * grid[:, 0] + line[1] * grid[:, 1] + line[2]
    on = w.flatten() > 0
    assert torch.allclose(w.flatten()[on].double(), torch.exp(-d[on] ** 2 / 2), atol=1e-6)


def test_ideal_weights_keep_only_the_half_line_in_front_of_both_cameras():
    cams = square_rig()
    a, b = cams[0], cams[2]  # opposite cameras: camera a is in view b's image, at the epipole
    x1 = torch.tensor([[9.0, 14.0]], dtype=torch.float64)
    w = ep.ideal_fusion_weights(a, b, x1, sigma_px=1.0)[0]
    full = ep.ideal_fusion_weights(a, b, x1, sigma_px=1.0, visible_only=False)[0]
    assert 0 < w.sum() < full.sum()
    o, d = g.back_projection_ray(a, x1)
    epipole = project1(b, a.center_m()[None])[0]
    for s in (2.0, 3.0, 4.0, 5.0, 6.0):  # points of the ray in front of both cameras are kept
        p = project1(b, o + s * d)[0]
        if (p > 0).all() and (p < SIDE - 1).all() and (p - epipole).norm() > 2:
            j = p.round().long()
            assert w[j[1], j[0]] > 0.5
    for s in (-1.0, -2.0, -4.0):  # behind camera a: the other half-line through the epipole is dropped
        p = project1(b, o + s * d)[0]
        if (p > 0).all() and (p < SIDE - 1).all() and (p - epipole).norm() > 2:
            j = p.round().long()
            assert w[j[1], j[0]] == 0 and full[j[1], j[0]] > 0.5


def test_sum_normalised_weights_sum_to_one():
    cams = square_rig()
    w = ep.ideal_fusion_weights(cams[0], cams[1], ep.pixel_grid_px(SIDE)[:5], normalise="sum")
    assert torch.allclose(w.flatten(1).sum(-1), torch.ones(5), atol=1e-5)


def test_ideal_weights_bad_input_errors():
    cams = square_rig()
    x1 = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="sigma_px"):
        ep.ideal_fusion_weights(cams[0], cams[1], x1, sigma_px=0.0)
    with pytest.raises(ValueError, match="normalise"):
        ep.ideal_fusion_weights(cams[0], cams[1], x1, normalise="max")
    with pytest.raises(ValueError, match="x1_px"):
        ep.ideal_fusion_weights(cams[0], cams[1], torch.zeros(2, 3))


def test_fuse_pair_is_eq1_with_the_mix_for_one_pair():
    h1, h2 = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    w = torch.rand(16, 4, 4)
    fused = fusion.fuse_pair(h1, h2, w)
    expected = 0.4 * h1 + 0.6 * torch.einsum("bkj,ij->bki", h2.flatten(-2), w.flatten(-2)).reshape(2, 3, 4, 4)
    assert torch.allclose(fused, expected, atol=1e-6)
    with pytest.raises(ValueError, match="weights must be"):
        fusion.fuse_pair(h1, h2, torch.rand(15, 4, 4))


def test_the_joint_box_stands_inside_the_studios_capture_volume():
    assert math.hypot(*ep.JOINT_BOX_MAX_M[:2]) <= studio.VOLUME_RADIUS_M
    assert math.hypot(*ep.JOINT_BOX_MIN_M[:2]) <= studio.VOLUME_RADIUS_M
    assert 0.0 <= ep.JOINT_BOX_MIN_M[2] < ep.JOINT_BOX_MAX_M[2] <= studio.VOLUME_HEIGHT_M


def test_fusing_three_correct_views_moves_a_wrong_peak_to_the_joint():
    cams = square_rig()
    X = torch.tensor([[0.1, 0.2, 1.2]], dtype=torch.float64)
    wrong = torch.tensor([[-0.3, -0.2, 0.8]], dtype=torch.float64)
    grid = ep.pixel_grid_px(SIDE)
    x = [project1(c, X)[0] for c in cams]
    fused = data.gaussian_heatmaps(project1(cams[0], wrong)[0], SIDE, 1.0)
    for v in (1, 2, 3):
        weights = ep.ideal_fusion_weights(cams[0], cams[v], grid)
        fused = fusion.fuse_pair(fused, data.gaussian_heatmaps(x[v], SIDE, 1.0), weights)
    idx = int(fused.flatten().argmax())
    assert (torch.tensor([idx % SIDE, idx // SIDE], dtype=torch.float64) - x[0]).norm() < 1.0


# ------------------------------------------------------------------------------------------ parameter counts
def test_parameter_counts_of_naive_fuse_and_the_factorised_model():
    assert ep.naive_fuse_param_count(64) == 64**4 == 16_777_216
    assert ep.factorised_param_count(64) == 64**2 + 6 * 64**2 == 28_672
    assert ep.naive_fuse_param_count(16, 32) == 256 * 1024
    assert ep.factorised_param_count(16, 32) == 1024 + 6 * 256
    table = ep.param_count_table((16, 64))
    assert set(table.columns) >= {"heatmap_px", "model", "params"} and len(table) == 4
    assert table.query("heatmap_px == 64 and model == 'NaiveFuse'").ratio_to_factorised.item() == pytest.approx(
        16_777_216 / 28_672)
    with pytest.raises(ValueError, match="side1"):
        ep.naive_fuse_param_count(0)
    with pytest.raises(ValueError, match="side2"):
        ep.factorised_param_count(8, 1.5)


# ------------------------------------------------------------------------------------------ affine warps (Eq. 2)
def test_identity_theta_reproduces_the_base_map_and_integer_shifts_are_exact():
    base = torch.rand(10, 10)
    ident = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    assert torch.allclose(ep.affine_warp(base, ident)[0], base, atol=1e-6)
    shift = ident.clone()
    shift[0, 0, 2] = 2 * 2 / 10  # sample 2 px to the right: content moves 2 px left
    out = ep.affine_warp(base, shift)[0]
    assert torch.allclose(out[:, :8], base[:, 2:], atol=1e-6) and (out[:, 8:] == 0).all()
    with pytest.raises(ValueError, match="theta"):
        ep.affine_warp(base, torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="source"):
        ep.affine_warp(torch.rand(3, 10, 10), torch.zeros(2, 2, 3))


def test_closed_form_theta_lays_the_centred_line_on_each_epipolar_line():
    cams = square_rig()
    x1 = torch.tensor([[6.0, 8.0], [15.0, 12.0], [20.0, 3.0]], dtype=torch.float64)
    geo = ep.epipolar_geometry(cams[0], cams[1], x1)
    ln = ep.line_to_normalised(geo["line"], SIDE)
    theta = ep.line_frame_affine(ln, geo["direction"], ep.CENTRED_LINE, ep.CENTRED_DIR)
    # exact algebra: points of the target line go to y = 0; the map is a rotation (distances kept)
    foot = -ln[:, 2:3] * ln[:, :2]
    t = torch.stack([-ln[:, 1], ln[:, 0]], -1)
    for u in (-0.7, 0.0, 0.4):
        p = foot + u * t
        mapped = (theta[:, :, :2] @ p[..., None])[..., 0] + theta[:, :, 2]
        assert mapped[:, 1].abs().max() < 1e-12
    assert torch.allclose(torch.linalg.det(theta[:, :, :2]), torch.ones(3, dtype=torch.float64))
    warped = ep.affine_warp(ep.centred_line_map(SIDE), theta.float())
    angle, offset = ep.line_errors(warped, geo["line"])
    assert angle.max() < 2.0 and offset.max() < 0.3  # a base line one image wide can miss a diagonal end


def test_fit_recovers_a_known_translation():
    side = 16
    blob = data.gaussian_heatmaps(torch.tensor([7.5, 7.5]), side, 3.0)  # plus a second blob: no rotational symmetry
    blob = blob + 0.5 * data.gaussian_heatmaps(torch.tensor([4.0, 10.0]), side, 1.5)
    true = torch.tensor([[[1.0, 0.0, 0.25], [0.0, 1.0, -0.125]]])
    target = ep.affine_warp(blob, true)
    ident = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = ep.fit_affine_warps(blob, target, ident, steps=150, lr=0.02, progress=False)
    assert torch.allclose(out["theta"], true, atol=0.02)
    assert out["loss"][-1] < 0.01 * out["loss"][0]
    assert ep.relative_l2(out["fitted"], target).item() < 0.05


def test_fit_with_shared_theta_index_and_bad_inputs():
    blob = data.gaussian_heatmaps(torch.tensor([5.5, 5.5]), 12, 2.0)
    targets = torch.stack([blob, blob, blob])
    ident = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = ep.fit_affine_warps(targets, targets, ident.repeat(2, 1, 1), steps=0, lr=0.01,
                              theta_index=torch.tensor([0, 1, 1]), progress=False)
    assert out["theta"].shape == (2, 2, 3) and torch.allclose(out["fitted"], targets, atol=1e-6)
    with pytest.raises(ValueError, match="theta_index"):
        ep.fit_affine_warps(blob, targets, ident.repeat(2, 1, 1), 1, 0.01, theta_index=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="N=3 or 1"):
        ep.fit_affine_warps(blob, targets, ident.repeat(2, 1, 1), 1, 0.01)
    with pytest.raises(ValueError, match="learn_source"):
        ep.fit_affine_warps(targets, targets, ident, 1, 0.01, learn_source=True)
    with pytest.raises(ValueError, match="steps"):
        ep.fit_affine_warps(blob, targets, ident, -1, 0.01)
    with pytest.raises(ValueError, match="lr"):
        ep.fit_affine_warps(blob, targets, ident, 1, 0.0)


def test_map_line_recovers_a_drawn_line():
    cams = square_rig()
    x1 = torch.tensor([[12.0, 12.0]], dtype=torch.float64)
    w = ep.ideal_fusion_weights(cams[0], cams[1], x1)
    line = ep.epipolar_geometry(cams[0], cams[1], x1)["line"]
    angle, offset = ep.line_errors(w, line)
    assert angle.item() < 0.5 and offset.item() < 0.1
    assert ep.relative_l2(w, w).item() == 0.0


# ------------------------------------------------------------------------------------------ moving camera 2 (Fig. 3)
def test_arc_moved_camera_keeps_the_pivot_in_place_and_full_turn_is_identity():
    cam = cam_at(30.0, name="c")
    moved = ep.arc_moved_camera(cam, 25.0)
    pivot = torch.tensor([CENTRE], dtype=torch.float64)
    assert torch.allclose(project1(moved, pivot), project1(cam, pivot), atol=1e-9)
    c0, c1 = cam.center_m(), moved.center_m()
    assert c1[2] == pytest.approx(c0[2]) and c1[:2].norm() == pytest.approx(c0[:2].norm())
    ang = math.degrees(math.atan2(c1[1], c1[0]) - math.atan2(c0[1], c0[0]))
    assert ang == pytest.approx(25.0)
    full = ep.arc_moved_camera(cam, 360.0)
    assert torch.allclose(full.projection(), cam.projection(), atol=1e-9)


def test_volume_affine_of_a_camera_with_itself_is_identity():
    cam = cam_at(10.0)
    theta, rms = ep.volume_affine(cam, cam, ep.sample_volume_points(50, seed=1))
    assert torch.allclose(theta, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64), atol=1e-9)
    assert rms.item() < 1e-9


def test_camera_move_fit_is_exact_without_a_move_and_tidy():
    cams = square_rig(side=16)
    x1 = ep.sample_line_pixels(cams[0], cams[1], 4, seed=0)
    out = ep.camera_move_fit(cams[0], cams[1], x1, [0.0, 20.0], steps=5, lr=0.01, seed=0, progress=False)
    t = out["table"]
    assert set(t.columns) == {"move", "arc_deg", "pixel_x_px", "pixel_y_px", "method", "measurement", "value"}
    at0 = t[(t.arc_deg == 0.0) & (t.measurement == "rel_l2")]
    assert len(at0) == 3 * 4 and at0.value.abs().max() < 1e-6
    moved = t[(t.arc_deg == 20.0) & (t.measurement == "rel_l2")].groupby("method").value.median()
    assert moved["per_pixel"] < moved["identity"]
    assert out["targets"].shape == (2, 4, 16, 16)


# ------------------------------------------------------------------------------------------ the factorisation fit
def test_sample_line_pixels_is_seeded_and_keeps_pixels_with_a_visible_line():
    cams = square_rig(side=16)
    a = ep.sample_line_pixels(cams[0], cams[1], 5, seed=3)
    b = ep.sample_line_pixels(cams[0], cams[1], 5, seed=3)
    assert torch.equal(a, b) and a.shape == (5, 2)
    assert (ep.ideal_fusion_weights(cams[0], cams[1], a).flatten(1).sum(-1) >= 3.0).all()
    every = ep.sample_line_pixels(cams[0], cams[1], 10_000, seed=0)
    assert len(every) <= 256 and len(torch.unique(every, dim=0)) == len(every)


def test_shared_base_with_per_pixel_theta_beats_a_single_map():
    cams = square_rig(side=16)[:3]
    fit = ep.factorisation_fit(cams, pixels_per_pair=3, steps=30, lr=0.02, seed=0, progress=False)
    t = fit["table"]
    med = t[t.measurement == "rel_l2"].groupby("method").value.median()
    assert set(med.index) == {"base+theta", "line+theta", "closed_form_theta", "single_map"}
    assert med["base+theta"] < 0.5 * med["single_map"]
    assert med["base+theta"] <= med["closed_form_theta"] + 1e-6
    assert len(t) == 4 * 3 * len(fit["targets"]) and fit["pair_names"][0] == "1->2"
    # opposite cameras (views 1 and 3 of the square rig) see each other: their lines are cut at the epipole
    vis = fit["visible_fraction"]
    assert ((vis > 0) & (vis <= 1 + 1e-6)).all()
    assert vis[fit["pairs"] == fit["pair_names"].index("1->3")].max() < 0.9
    assert vis[fit["pairs"] == fit["pair_names"].index("1->2")].min() > 0.99
