"""Tests of mfcore.pictorial: triangulation baselines, PSM and RPSM (Cross View Fusion Sec. 4) in miniature."""

import itertools
import math

import pytest
import torch

from mfcore import geometry as g
from mfcore import pictorial as pc
from mfcore import skeleton as sk

IMAGE_PX, HEATMAP_PX = 256, 64

# A standing person (H36M joint order, metres, Z up), pelvis at the origin's vertical.
STANDING_M = torch.tensor([
    [0.00, 0.00, 0.95], [0.00, -0.12, 0.93], [0.02, -0.13, 0.50], [0.00, -0.13, 0.08], [0.00, 0.12, 0.93],
    [0.02, 0.13, 0.50], [0.00, 0.13, 0.08], [0.00, 0.00, 1.20], [0.00, 0.00, 1.45], [0.08, 0.00, 1.55],
    [0.00, 0.00, 1.70], [0.00, 0.18, 1.42], [0.05, 0.30, 1.18], [0.20, 0.32, 1.02], [0.00, -0.18, 1.42],
    [0.05, -0.30, 1.18], [0.20, -0.32, 1.02]])


def ring_rig(n=4, radius=4.0, focal_px=400.0):
    """n cameras around the capture volume looking at (0, 0, 1); returns cameras and heatmap-resolution projections."""
    angles = [2 * math.pi * k / n + 0.3 for k in range(n)]
    cams = [g.look_at_camera((radius * math.cos(a), radius * math.sin(a), 1.5 + 0.1 * k), (0.0, 0.0, 1.0), focal_px,
                             IMAGE_PX, name=f"c{k}") for k, a in enumerate(angles)]
    return cams, pc.heatmap_projections(g.stack_projections(cams), IMAGE_PX, HEATMAP_PX)


def rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def people(n):
    """n standing people, each turned and moved differently inside the volume, (n, 17, 3)."""
    return torch.stack([STANDING_M @ rot_z(0.7 * b).T + torch.tensor([0.3 * b - 0.4, 0.2, 0.0]) for b in range(n)])


def true_stats(std_m=0.01):
    return pc.LimbLengthStats(sk.limb_lengths_m(STANDING_M), torch.full((len(sk.LIMBS),), std_m))


# ------------------------------------------------------------------------------------------------ triangulation


def test_noise_free_triangulation_is_exact_from_any_two_or_more_views():
    _, P = ring_rig(4)
    X = people(2)  # (2, 17, 3)
    x = g.project(P, X)  # (2, 4, 17, 2) exact heatmap-pixel projections
    for k in (2, 3, 4):
        for views in itertools.combinations(range(4), k):
            mask = torch.zeros(2, 4, 17)
            mask[:, list(views)] = 1.0
            assert torch.allclose(g.triangulate_dlt(P, x, mask), X, atol=1e-5)
            conf = mask * torch.rand(2, 4, 17, generator=torch.Generator().manual_seed(k)).add(0.1)
            assert torch.allclose(g.triangulate_dlt(P, x, conf), X, atol=1e-5)  # confidence weights
            assert torch.allclose(pc.ransac_points(x, P, 1.0, mask), X, atol=1e-5)
            assert torch.allclose(pc.ransac_points(x, P, 1.0, conf, weighted=True), X, atol=1e-5)


def test_heatmap_triangulation_is_within_the_argmax_quantisation():
    _, P = ring_rig(4)
    X = people(2)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0)
    # one heatmap pixel is ~4 m / 100 px = 40 mm here; the quarter-pixel argmax is off by < 0.5 px per view
    for est in (pc.triangulate_argmax(hm, P), pc.triangulate_argmax(hm, P, weighted=True),
                pc.triangulate_ransac(hm, P)):
        assert (est - X).norm(dim=-1).max() < 0.025


def test_ransac_rejects_an_outlier_view():
    _, P = ring_rig(4)
    X = people(2)
    x = g.project(P, X)
    x[:, 2] += 9.0  # view 2 sees every joint 9 px off (a wrong detection)
    plain = g.triangulate_dlt(P, x)
    robust = pc.ransac_points(x, P, 1.0)
    assert (plain - X).norm(dim=-1).mean() > 0.05
    assert torch.allclose(robust, X, atol=1e-5)
    # the same through heatmaps: view 2 renders a person 0.4 m above the true one
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0)
    hm[:, 2] = pc.render_gaussian_heatmaps(X + torch.tensor([0.0, 0.0, 0.4]), P, HEATMAP_PX, 2.0)[:, 2]
    assert (pc.triangulate_argmax(hm, P) - X).norm(dim=-1).mean() > 0.05
    assert (pc.triangulate_ransac(hm, P) - X).norm(dim=-1).max() < 0.025


def test_ransac_is_deterministic_and_validates_input():
    _, P = ring_rig(4)
    x = g.project(P, people(1)) + torch.randn(1, 4, 17, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pc.ransac_points(x, P, 2.0), pc.ransac_points(x, P, 2.0))
    with pytest.raises(ValueError, match="threshold_px"):
        pc.ransac_points(x, P, 0.0)
    with pytest.raises(ValueError, match="at least 2 views"):
        pc.ransac_points(x, P, 2.0, torch.tensor([1.0, 0.0, 0.0, 0.0])[None, :, None].expand(1, 4, 17))
    with pytest.raises(ValueError, match="projections"):
        pc.ransac_points(x, P[:3], 2.0)


# ---------------------------------------------------------------------------------------------------- max-product


def brute_force(log_unary, log_pairwise, parents):
    """The best state tuple by enumeration, and the gap to the second best."""
    limbs = [(p, c) for c, p in enumerate(parents) if p >= 0]
    J, S = log_unary.shape
    scores = {}
    for states in itertools.product(range(S), repeat=J):
        scores[states] = (sum(log_unary[j, s] for j, s in enumerate(states))
                          + sum(log_pairwise[l, states[p], states[c]] for l, (p, c) in enumerate(limbs))).item()
    ranked = sorted(scores, key=scores.get, reverse=True)
    return ranked[0], scores[ranked[0]] - scores[ranked[1]]


@pytest.mark.parametrize("parents, S", [((-1, 0, 1), 6), ((-1, 0, 0, 1), 4)])
def test_max_product_equals_brute_force(parents, S):
    gen = torch.Generator().manual_seed(3)
    B, J, L = 3, len(parents), len(parents) - 1
    log_unary = torch.randn(B, J, S, generator=gen, dtype=torch.float64)
    log_pairwise = torch.randn(B, L, S, S, generator=gen, dtype=torch.float64)
    states = pc.max_product_tree(log_unary, log_pairwise, parents)
    for b in range(B):
        best, gap = brute_force(log_unary[b], log_pairwise[b], parents)
        assert gap > 1e-9
        assert tuple(states[b].tolist()) == best


def bilinear_border(img, xy):
    """Independent bilinear read-out of img (h, w) at points (N, 2), clamped to the border."""
    h, w = img.shape
    x, y = xy[:, 0].clamp(0, w - 1), xy[:, 1].clamp(0, h - 1)
    x0, y0 = x.floor().long().clamp(max=w - 2), y.floor().long().clamp(max=h - 2)
    fx, fy = x - x0, y - y0
    return ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x0 + 1]
            + (1 - fx) * fy * img[y0 + 1, x0] + fx * fy * img[y0 + 1, x0 + 1])


def test_psm_on_a_three_joint_chain_equals_brute_force_over_the_grid():
    """The PSM's answer is the enumerated maximum of the documented score, with the chunked lattice messages."""
    parents = (-1, 0, 1)
    _, P = ring_rig(2)
    gen = torch.Generator().manual_seed(1)
    chain = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.1, 1.3], [0.1, 0.1, 1.6]])[None]
    hm = pc.render_gaussian_heatmaps(chain, P, HEATMAP_PX, 6.0) + 0.3 * torch.rand(1, 2, 3, HEATMAP_PX, HEATMAP_PX,
                                                                                   generator=gen)
    stats = pc.LimbLengthStats(torch.tensor([0.25, 0.35]), torch.tensor([0.02, 0.01]))
    G, cube_mm, floor, min_std = 3, 900.0, 1e-3, 0.005
    centre = torch.tensor([[0.05, 0.05, 1.3]])
    est = pc.psm(hm, P, stats, G, cube_mm, centre_m=centre, parents=parents, floor=floor, min_std_m=min_std,
                 chunk_elements=10)  # 10 floats: messages computed one parent cell at a time
    # the documented score, computed independently
    s = cube_mm / 1000 / G
    axis = (torch.arange(G) + 0.5 - G / 2) * s
    cells = centre[0] + torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # (27, 3)
    uv, z = g.project(P.double(), cells.double()).float(), g.depth(P.double(), cells.double()).float()  # (V, 27, ...)
    phi = torch.zeros(3, len(cells))
    for v in range(2):
        inside = (z[v] > 0) & (uv[v] >= -0.5).all(-1) & (uv[v] <= HEATMAP_PX - 0.5).all(-1)
        for j in range(3):
            phi[j] += bilinear_border(hm[0, v, j], uv[v]) * inside
    log_unary = torch.log(phi + floor * phi.amax(-1, keepdim=True) + 1e-30)
    d = (cells[:, None] - cells[None]).norm(dim=-1)
    std = stats.std_m.clamp_min(min_std)
    band, sigma = 2 * std + s / 2, torch.sqrt(std**2 + s**2 / 6)
    log_pw = torch.stack([-0.5 * (((d - stats.mean_m[l]).abs() - band[l]).clamp_min(0) / sigma[l]) ** 2
                          for l in range(2)])
    best, gap = brute_force(log_unary, log_pw, parents)
    assert gap > 1e-4
    assert torch.allclose(est[0], cells[list(best)], atol=1e-6)


# ------------------------------------------------------------------------------------------------- PSM and RPSM


def test_unary_is_zero_for_locations_outside_a_view_or_behind_it():
    cams, P = ring_rig(2)
    hm = torch.ones(1, 2, 1, HEATMAP_PX, HEATMAP_PX)  # every pixel of both views says "here"
    centre = torch.tensor([0.0, 0.0, 1.0])
    behind = 2 * cams[0].center_m().float() - centre  # mirrored through camera 0: behind it
    far_side = torch.tensor([0.0, 0.0, 40.0])  # far above: outside both windows
    points = torch.stack([centre, behind, far_side])[None, None]  # (1, 1, 3, 3)
    phi = torch.exp(pc._log_unary(hm, P, points, floor=1e-9))[0, 0]
    assert phi[0] == pytest.approx(2.0, abs=1e-5)  # seen by both views
    assert phi[1] == pytest.approx(1.0, abs=1e-5)  # behind camera 0 (which would see it mirrored): view 1 only
    assert phi[2] == pytest.approx(2e-9, rel=1e-3)  # outside both windows: only the floor



def test_rpsm_recovers_a_pose_from_perfect_heatmaps_to_within_the_final_cell():
    _, P = ring_rig(4)
    X = people(3)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 4.0)
    G, cube, T = 8, 2000.0, 4
    stages = pc.rpsm(hm, P, true_stats(), G, cube, T, return_stages=True)  # centre estimated from the heatmaps
    err_mm = [1000 * (est - X).norm(dim=-1) for est in stages]
    assert err_mm[-1].max() < pc.final_cell_mm(cube, G, T) == 31.25
    assert err_mm[0].mean() > 4 * err_mm[-1].mean()  # the PSM alone is limited by its 250 mm cells
    assert [e.mean() for e in err_mm] == sorted((e.mean() for e in err_mm), reverse=True)  # every stage helps


def test_antialiasing_lets_a_coarse_grid_see_narrow_peaks():
    """8 bins over 2 m are 250 mm cells, ~6 heatmap px here: a σ = 1 px peak falls between cell centres."""
    _, P = ring_rig(4)
    X = people(3)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 1.0)
    plain = pc.rpsm(hm, P, true_stats(), 8, 2000.0, 4)
    smooth = pc.rpsm(hm, P, true_stats(), 8, 2000.0, 4, antialias=True)
    assert (plain - X).norm(dim=-1).mean() > 0.2  # lost: the unary is the floor almost everywhere
    assert (smooth - X).norm(dim=-1).max() < pc.final_cell_mm(2000.0, 8, 4) / 1000
    wide = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 4.0)  # peaks as wide as the cells: smoothing costs nothing
    err = [(pc.rpsm(wide, P, true_stats(), 8, 2000.0, 4, antialias=aa) - X).norm(dim=-1).mean() for aa in (False, True)]
    assert err[1] < 1.1 * err[0]


def test_bicubic_read_out_refines_below_the_heatmap_pixel():
    """Bilinear interpolation of a sampled Gaussian peaks at a pixel centre; bicubic follows the sub-pixel peak."""
    _, P = ring_rig(4)
    X = people(3)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 1.0)  # 1 px = ~40 mm here
    err = {mode: (pc.rpsm(hm, P, true_stats(), 8, 2000.0, 6, interpolation=mode, antialias=True) - X)
           .norm(dim=-1).mean() for mode in ("bilinear", "bicubic")}
    assert err["bicubic"] < 0.8 * err["bilinear"]
    with pytest.raises(ValueError, match="interpolation must be"):
        pc.psm(hm, P, true_stats(), 4, 2000.0, interpolation="nearest")


def test_psm_centre_is_estimated_not_taken_from_ground_truth():
    _, P = ring_rig(4)
    X = people(2) + torch.tensor([0.4, -0.3, 0.0])  # the root is nowhere near the volume centre
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 4.0)
    root = pc.estimate_root_m(hm, P)
    assert (root - X[:, sk.ROOT]).norm(dim=-1).max() < 0.02  # triangulated from the root's heatmaps alone
    est = pc.rpsm(hm, P, true_stats(), 8, 2000.0, 3)  # no centre given: nothing about the ground truth goes in
    assert (est - X).norm(dim=-1).max() < pc.final_cell_mm(2000.0, 8, 3) / 1000
    wrong = pc.rpsm(hm, P, true_stats(), 8, 2000.0, 3, centre_m=root + torch.tensor([1.5, 0.0, 0.0]))
    assert (wrong - X).norm(dim=-1).mean() > 0.2  # the centre matters: a cube in the wrong place misses the body


def test_a_view_with_zero_or_nan_heatmaps_is_ignored_with_a_warning():
    _, P = ring_rig(4)
    X = people(2)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 4.0, jitter_px=0.7, seed=1)
    broken = hm.clone()
    broken[0, 1] = 0.0
    broken[1, 2, 5, 3, 3] = float("nan")
    stats = true_stats()
    for name, f in [("dlt", lambda h, p: pc.triangulate_argmax(h, p)),
                    ("ransac", lambda h, p: pc.triangulate_ransac(h, p)),
                    ("rpsm", lambda h, p: pc.rpsm(h, p, stats, 8, 2000.0, 2))]:
        with pytest.warns(RuntimeWarning, match=r"\[\[0, 1\], \[1, 2\]\]"):
            est = f(broken, P)
        assert torch.isfinite(est).all(), name
        for b, bad in ((0, 1), (1, 2)):
            keep = [v for v in range(4) if v != bad]
            alone = f(hm[b:b + 1, keep], P[keep])  # the same frame with the bad view removed
            assert torch.allclose(est[b], alone[0], atol=1e-5), name


def test_fewer_than_two_usable_views_is_a_clear_error():
    _, P = ring_rig(3)
    hm = pc.render_gaussian_heatmaps(people(2), P, HEATMAP_PX, 2.0)
    hm[1, 0] = 0.0
    hm[1, 2] = float("nan")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match=r"frame\(s\) \[1\] have fewer than 2 usable"):
        pc.triangulate_argmax(hm, P)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match=r"frame\(s\) \[1\]"):
        pc.rpsm(hm, P, true_stats(), 4, 2000.0, 1)


def test_batched_equals_one_frame_at_a_time():
    _, P = ring_rig(4)
    X = people(3)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 3.0, jitter_px=1.0, outlier_fraction=0.2, seed=4)
    stats = true_stats(0.02)
    batched = pc.rpsm(hm, P, stats, 8, 2000.0, 3, return_stages=True)
    for b in range(3):
        single = pc.rpsm(hm[b:b + 1], P, stats, 8, 2000.0, 3, return_stages=True)
        for s_b, s_1 in zip(batched, single):
            assert torch.allclose(s_b[b], s_1[0], atol=1e-6)
    for fn in (pc.triangulate_argmax, pc.triangulate_ransac):
        one_by_one = torch.cat([fn(hm[b:b + 1], P) for b in range(3)])
        assert torch.allclose(fn(hm, P), one_by_one, atol=1e-6)


def test_chunked_messages_do_not_change_the_answer():
    _, P = ring_rig(4)
    hm = pc.render_gaussian_heatmaps(people(2), P, HEATMAP_PX, 3.0, jitter_px=1.0, seed=2)
    whole = pc.psm(hm, P, true_stats(), 6, 2000.0)
    assert torch.equal(whole, pc.psm(hm, P, true_stats(), 6, 2000.0, chunk_elements=1))


def test_estimators_dispatch_and_psm_is_rpsm_with_zero_stages():
    from mfcore.profiles import PictorialSizes

    _, P = ring_rig(4)
    hm = pc.render_gaussian_heatmaps(people(1), P, HEATMAP_PX, 3.0)
    sizes = PictorialSizes(grid_bins=6, rpsm_stages=2)
    stats = true_stats()
    assert torch.equal(pc.estimate_3d("triangulation", hm, P), pc.triangulate_argmax(hm, P))
    assert torch.equal(pc.estimate_3d("weighted_triangulation", hm, P), pc.triangulate_argmax(hm, P, weighted=True))
    assert torch.equal(pc.estimate_3d("ransac", hm, P), pc.triangulate_ransac(hm, P))
    assert torch.equal(pc.estimate_3d("psm", hm, P, stats, sizes), pc.psm(hm, P, stats, 6, sizes.cube_size_mm,
                                                                          antialias=sizes.antialias))
    assert torch.equal(pc.estimate_3d("rpsm", hm, P, stats, sizes), pc.rpsm(hm, P, stats, 6, sizes.cube_size_mm, 2,
                                                                           antialias=sizes.antialias))
    two = pc.render_gaussian_heatmaps(people(2), P, HEATMAP_PX, 3.0, jitter_px=1.0, seed=5)
    for est in pc.ESTIMATORS:
        assert torch.allclose(pc.estimate_3d(est, two, P, stats, sizes, batch_frames=1),
                              pc.estimate_3d(est, two, P, stats, sizes), atol=1e-6)
    with pytest.raises(ValueError, match="unknown estimator 'vote'"):
        pc.estimate_3d("vote", hm, P)
    with pytest.raises(ValueError, match="needs limb-length stats"):
        pc.estimate_3d("psm", hm, P)


def test_bad_inputs_are_clear_errors():
    _, P = ring_rig(4)
    hm = pc.render_gaussian_heatmaps(people(1), P, HEATMAP_PX, 3.0)
    stats = true_stats()
    with pytest.raises(ValueError, match=r"heatmaps must be \(B, V, J, h, w\)"):
        pc.triangulate_argmax(hm[0], P)
    with pytest.raises(ValueError, match="projections_hm must be"):
        pc.rpsm(hm, P[:3], stats, 4, 2000.0, 1)
    with pytest.raises(ValueError, match="at least 2 views"):
        pc.triangulate_argmax(hm[:, :1], P[:1])
    with pytest.raises(ValueError, match="grid_bins must be an int >= 2"):
        pc.psm(hm, P, stats, 1, 2000.0)
    with pytest.raises(ValueError, match="stages must be an int >= 0"):
        pc.rpsm(hm, P, stats, 4, 2000.0, -1)
    with pytest.raises(ValueError, match="rpsm_bins"):
        pc.rpsm(hm, P, stats, 4, 2000.0, 1, rpsm_bins=1)
    with pytest.raises(ValueError, match="cube_size_mm"):
        pc.psm(hm, P, stats, 4, 0.0)
    with pytest.raises(ValueError, match=r"limb stats must be \(16,\)"):
        pc.psm(hm, P, pc.LimbLengthStats(stats.mean_m[:3], stats.std_m[:3]), 4, 2000.0)
    with pytest.raises(ValueError, match="centre_m"):
        pc.psm(hm, P, stats, 4, 2000.0, centre_m=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="one tree"):
        pc.max_product_tree(torch.zeros(1, 3, 2), torch.zeros(1, 2, 2, 2), parents=(-1, 2, 0))


# ------------------------------------------------------------------------------------------------------- helpers


def test_limb_length_stats_of_training_poses():
    poses = torch.stack([0.9 * STANDING_M, 1.1 * STANDING_M])  # every limb 0.9× and 1.1× its length
    stats = pc.limb_length_stats(poses)
    L = sk.limb_lengths_m(STANDING_M)
    assert torch.allclose(stats.mean_m, L, atol=1e-6)
    assert torch.allclose(stats.std_m, 0.2 * L / math.sqrt(2), atol=1e-6)  # unbiased std of {0.9 L, 1.1 L}
    with pytest.raises(ValueError, match=r"\(N >= 2, J=17, 3\)"):
        pc.limb_length_stats(STANDING_M[None])


def test_heatmap_projections_match_the_cameras_at_heatmap_resolution():
    cams, P_hm = ring_rig(3)
    X = people(1)[0]
    direct = g.project(g.stack_projections([c.at_resolution(HEATMAP_PX) for c in cams]), X)
    assert torch.allclose(g.project(P_hm, X), direct, atol=1e-3)
    assert torch.allclose(g.project(P_hm, X), g.scale_pixels(g.project(g.stack_projections(cams), X), IMAGE_PX,
                                                               HEATMAP_PX), atol=1e-3)


def test_rendered_heatmaps_peak_at_the_projection_and_are_seeded():
    _, P = ring_rig(2)
    X = people(1)
    hm = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0)
    from mfcore.metrics import heatmap_argmax_px

    assert (heatmap_argmax_px(hm) - g.project(P, X)).abs().max() <= 0.75  # integer peak + quarter offset
    noisy = dict(jitter_px=1.0, outlier_fraction=0.5)
    a = pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0, **noisy, seed=7)
    assert torch.equal(a, pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0, **noisy, seed=7))
    assert not torch.equal(a, pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 2.0, **noisy, seed=8))
    with pytest.raises(ValueError, match="sigma_px"):
        pc.render_gaussian_heatmaps(X, P, HEATMAP_PX, 0.0)


# ------------------------------------------------------------------------ the paper's RPSM: odd grid, 10 stages, cache

# A toy rig of three orthographic views (xy, xz and yz planes, 16 heatmap px per metre): every point whose coordinates
# are multiples of 1/16 m projects onto pixel centres, where a bilinear read of its Gaussian peaks exactly.
TOY_P = torch.tensor([[[16.0, 0, 0, 32], [0, 16, 0, 32], [0, 0, 0, 1]],
                      [[16.0, 0, 0, 32], [0, 0, 16, 16], [0, 0, 0, 1]],
                      [[0.0, 16, 0, 32], [0, 0, 16, 16], [0, 0, 0, 1]]])
TOY_PARENTS = (-1, 0, 1, 0, 3)  # a root with two two-limb chains
TOY_M = torch.tensor([[[0.0, 0.0, 1.0], [0.25, 0.0, 1.0], [0.25, 0.0, 0.5], [-0.25, 0.0, 1.0], [-0.25, 0.125, 0.5]]])


def test_rpsm_with_the_papers_ten_stages_converges_on_a_toy_skeleton_to_below_one_final_bin():
    hm = pc.render_gaussian_heatmaps(TOY_M, TOY_P, HEATMAP_PX, 2.0)
    lengths = torch.stack([(TOY_M[0, c] - TOY_M[0, p]).norm() for c, p in enumerate(TOY_PARENTS) if p >= 0])
    stats = pc.LimbLengthStats(lengths, torch.zeros_like(lengths))
    G, cube, T = 9, 2000.0, 10
    centre = TOY_M[:, 0] + torch.tensor([0.05, -0.03, 0.02])  # a root estimate off the truth: no cell is on it
    stages = pc.rpsm(hm, TOY_P, stats, G, cube, T, centre_m=centre, parents=TOY_PARENTS, return_stages=True)
    err_mm = torch.stack([1000 * (est - TOY_M).norm(dim=-1).max() for est in stages])  # worst joint per stage
    final_bin_mm = pc.final_cell_mm(cube, G, T)
    assert final_bin_mm == pytest.approx(2000 / 9 / 2**9)  # 0.43 mm: the PSM cell halved nine times
    assert err_mm[0] > 50 * final_bin_mm  # the PSM alone is off by a good part of its 222 mm cell
    assert err_mm[-1] < final_bin_mm  # ten stages: within one final bin of the truth
    # stage t can place a joint no nearer than ±s/2^t per axis to where it should be, and reaches that
    s_mm = cube / G
    for t in range(1, T + 1):
        assert err_mm[t] <= math.sqrt(3) * s_mm / 2**t + 1e-3


def test_the_odd_grids_centre_bin_is_the_root():
    centre = torch.tensor([[0.3, -0.2, 0.9], [1.0, 2.0, 0.5]])
    for G in (5, 9, 17):
        pts = pc.psm_grid_m(centre, G, 2000.0)
        assert pts.shape == (2, G**3, 3)
        assert torch.equal(pts[:, (G**3 - 1) // 2], centre)  # the middle cell is the estimated root itself
    even = pc.psm_grid_m(centre, 16, 2000.0)  # the paper's 16: the centre is a cell corner, √3/2 cells from any state
    nearest_mm = 1000 * (even - centre[:, None]).norm(dim=-1).min(1).values
    assert torch.allclose(nearest_mm, torch.full((2,), 125.0 * math.sqrt(3) / 2), atol=1e-3)
    # and the PSM on the toy, centred on the true root, returns the root exactly
    hm = pc.render_gaussian_heatmaps(TOY_M, TOY_P, HEATMAP_PX, 2.0)
    lengths = torch.stack([(TOY_M[0, c] - TOY_M[0, p]).norm() for c, p in enumerate(TOY_PARENTS) if p >= 0])
    stats = pc.LimbLengthStats(lengths, torch.zeros_like(lengths))
    pose = pc.psm(hm, TOY_P, stats, 9, 2000.0, centre_m=TOY_M[:, 0], parents=TOY_PARENTS)
    assert torch.equal(pose[0, 0], TOY_M[0, 0])


def test_the_psm_offset_table_is_built_once_per_grid_and_gives_the_uncached_answer():
    G = 7
    idx = torch.stack(torch.meshgrid(*(torch.arange(G),) * 3, indexing="ij"), -1).reshape(-1, 3)
    brute = ((idx[:, None, :] - idx[None, :, :]) ** 2).sum(-1)  # the (G³, G³) table the PSM used to build every call
    pc.lattice_sq_offsets.cache_clear()
    table = pc.lattice_sq_offsets(G, "cpu")
    assert table.dtype == torch.int16 and torch.equal(table.long(), brute)
    _, P = ring_rig(4)
    hm = pc.render_gaussian_heatmaps(people(2), P, HEATMAP_PX, 3.0, jitter_px=1.0, seed=2)
    pc.lattice_sq_offsets.cache_clear()
    first = pc.rpsm(hm, P, true_stats(), G, 2000.0, 2)
    assert pc.lattice_sq_offsets.cache_info().misses == 1
    second = pc.rpsm(hm, P, true_stats(), G, 2000.0, 2)
    one = pc.rpsm(hm[:1], P, true_stats(), G, 2000.0, 2)  # one frame per call: the single-chunk path, same table
    info = pc.lattice_sq_offsets.cache_info()
    assert (info.misses, info.hits) == (1, 2)  # the second and third calls reuse the table
    assert torch.equal(first, second) and torch.allclose(one[0], first[0], atol=1e-6)
    with pytest.raises(ValueError, match="grid_bins"):
        pc.lattice_sq_offsets(106, "cpu")
