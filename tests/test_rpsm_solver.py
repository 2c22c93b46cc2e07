"""Tests of mfcore.rpsm_solver: the RPSM built once per rig and grid gives the reference RPSM's poses (bitwise on the
CPU), for single frames and batches, any number of views, and refuses another rig's heatmaps."""

import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mfcore import pictorial as pc
from mfcore import rpsm_solver as rs
from mfcore import skeleton as sk
from mfcore.profiles import PictorialSizes

from test_pictorial import HEATMAP_PX, TOY_M, TOY_P, TOY_PARENTS, people, ring_rig, true_stats


def noisy_heatmaps(P, n=3, seed=4):
    return pc.render_gaussian_heatmaps(people(n), P, HEATMAP_PX, 3.0, jitter_px=1.0, outlier_fraction=0.2, seed=seed)


def assert_same_stages(a, b):
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        assert torch.equal(x, y), f"stage {t}: max difference {(x - y).abs().max():.3g} m"


@pytest.mark.parametrize("views, antialias", [(2, True), (3, False), (4, True)])
def test_the_solver_gives_the_reference_rpsm_for_batches_and_single_frames_with_any_number_of_views(views, antialias):
    _, P = ring_rig(views)
    hm = noisy_heatmaps(P, 2)
    stats = true_stats(0.02)
    G, cube, T = 5, 2000.0, 3
    solver = rs.RPSMSolver(P, HEATMAP_PX, stats, G, cube, T, antialias=antialias)
    reference = pc.rpsm(hm, P, stats, G, cube, T, antialias=antialias, return_stages=True)
    assert_same_stages(solver(hm, P, return_stages=True), reference)  # a batch of 2
    for b in range(2):  # one frame per call, reusing the same solver
        one = pc.rpsm(hm[b:b + 1], P, stats, G, cube, T, antialias=antialias, return_stages=True)
        assert_same_stages(solver(hm[b:b + 1], P, return_stages=True), one)
    assert torch.equal(solver(hm, P), reference[-1])


def test_the_solver_gives_the_reference_on_the_papers_ten_stages_and_with_a_given_centre():
    hm = pc.render_gaussian_heatmaps(TOY_M, TOY_P, HEATMAP_PX, 2.0)
    lengths = torch.stack([(TOY_M[0, c] - TOY_M[0, p]).norm() for c, p in enumerate(TOY_PARENTS) if p >= 0])
    stats = pc.LimbLengthStats(lengths, torch.zeros_like(lengths))
    centre = TOY_M[:, 0] + torch.tensor([0.05, -0.03, 0.02])
    solver = rs.RPSMSolver(TOY_P, HEATMAP_PX, stats, 9, 2000.0, 10, parents=TOY_PARENTS, antialias=True)
    for c in (centre, None):
        assert_same_stages(solver(hm, TOY_P, centre_m=c, return_stages=True),
                           pc.rpsm(hm, TOY_P, stats, 9, 2000.0, 10, centre_m=c, parents=TOY_PARENTS, antialias=True,
                                   return_stages=True))


def test_lookup_tables_and_chunks_give_the_dense_tables_answer(monkeypatch):
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 2, seed=2)
    dense = rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 6, 2000.0, 2)
    assert dense._dense is not None
    monkeypatch.setattr(rs, "DENSE_TABLE_BYTES", 0)
    lookup = rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 6, 2000.0, 2)
    monkeypatch.setattr(rs, "FULL_INDEX_CELLS", 0)
    chunked = rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 6, 2000.0, 2, chunk_elements=500)  # < 1 cell per chunk
    assert lookup._dense is None and lookup._index is not None and chunked._index is None
    want = dense(hm, P, return_stages=True)
    assert_same_stages(lookup(hm, P, return_stages=True), want)
    assert_same_stages(chunked(hm, P, return_stages=True), want)
    assert_same_stages(want, pc.rpsm(hm, P, true_stats(), 6, 2000.0, 2, return_stages=True))


@pytest.mark.parametrize("parents", [sk.PARENTS, (-1, 0, 1, 2), (-1, 0, 0, 0, 1, 1), (-1, 0, 1, 0, 3, 3, 5)])
def test_max_product_by_depth_gives_the_limb_by_limb_states(parents):
    gen = torch.Generator().manual_seed(len(parents))
    B, J, S = 5, len(parents), 6
    L = J - 1
    log_unary = torch.randn(B, J, S, generator=gen)
    log_pw = torch.randn(B, L, S, S, generator=gen)
    levels = rs.tree_levels(parents)
    assert sorted(levels.limbs) == list(range(L)) and len(set(levels.children)) == L
    order = torch.tensor(levels.limbs)

    def message(k, energy_children):
        a, b = levels.bounds[k]
        return (log_pw[:, order[a:b]] + energy_children[:, :, None, :]).max(-1)

    assert torch.equal(rs.max_product_levels(log_unary, message, levels), pc.max_product_tree(log_unary, log_pw, parents))


def test_the_skeletons_limbs_go_in_five_depths_of_two_to_five():
    levels = rs.tree_levels(sk.PARENTS)
    assert [b - a for a, b in levels.bounds] == [2, 3, 5, 3, 3]  # 16 limbs, 5 batched messages per tree solve
    assert levels.children[:2] == (16, 13) and levels.root == sk.ROOT


def test_a_solver_refuses_another_rigs_heatmaps_and_other_shapes():
    _, P = ring_rig(4)
    _, other = ring_rig(4, radius=5.0)
    hm = noisy_heatmaps(P, 1)
    solver = rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 4, 2000.0, 1)
    with pytest.raises(ValueError, match=r"built for the rig V=4:[0-9a-f]{12}; these heatmaps come with the "
                                         r"projections V=4:[0-9a-f]{12}"):
        solver(hm, other)
    moved = P.clone()
    assert torch.equal(solver(hm, moved), solver(hm, P))  # the same cameras in another tensor: accepted
    moved[0, 0, 3] += 1.0  # edited in place after it was accepted
    with pytest.raises(ValueError, match="built for the rig"):
        solver(hm, moved)
    with pytest.raises(ValueError, match=r"takes heatmaps \(B >= 1, V=4, J=17, 64, 64\), got \(1, 3, 17, 64, 64\)"):
        solver(hm[:, :3], P[:3])
    with pytest.raises(ValueError, match=r"got \(1, 4, 17, 32, 32\)"):
        solver(hm[..., :32, :32], P)
    with pytest.raises(ValueError, match="centre_m must be a finite"):
        solver(hm, P, centre_m=torch.zeros(2, 3))


def test_bad_settings_are_clear_errors():
    _, P = ring_rig(4)
    with pytest.raises(ValueError, match="grid_bins must be an int >= 2"):
        rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 1, 2000.0, 1)
    with pytest.raises(ValueError, match="projections_hm must hold V >= 2"):
        rs.RPSMSolver(P[:1], HEATMAP_PX, true_stats(), 4, 2000.0, 1)
    with pytest.raises(ValueError, match="heatmap_hw"):
        rs.RPSMSolver(P, (64, 1), true_stats(), 4, 2000.0, 1)
    with pytest.raises(ValueError, match=r"limb stats must be \(16,\)"):
        rs.RPSMSolver(P, HEATMAP_PX, pc.LimbLengthStats(torch.ones(3), torch.ones(3)), 4, 2000.0, 1)
    with pytest.raises(ValueError, match="cuda_graphs=True needs a CUDA device"):
        rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 4, 2000.0, 1, cuda_graphs=True)


def test_unusable_views_are_reported_and_ignored_as_by_the_reference():
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 2, seed=1)
    hm[0, 1] = 0.0
    hm[1, 2, 5, 3, 3] = float("nan")
    solver = rs.RPSMSolver(P, HEATMAP_PX, true_stats(), 6, 2000.0, 2, antialias=True)
    with pytest.warns(RuntimeWarning, match=r"\[\[0, 1\], \[1, 2\]\]"):
        got = solver(hm, P)
    with pytest.warns(RuntimeWarning):
        assert torch.equal(got, pc.rpsm(hm, P, true_stats(), 6, 2000.0, 2, antialias=True))
    hm[1, 0] = 0.0
    hm[1, 1] = 0.0
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match=r"frame\(s\) \[1\] have fewer than 2 usable"):
        solver(hm, P)


class DeviceOps(TorchDispatchMode):
    """Counts the tensor operations a call issues and the values it reads back to the host."""

    READS = ("_local_scalar_dense", "nonzero", "equal")
    VIEWS = ("view", "unsqueeze", "select", "slice", "expand", "as_strided", "_unsafe_view", "unbind", "t", "detach",
             "alias", "squeeze", "permute", "transpose", "split", "reshape", "lift_fresh")

    def __init__(self):
        super().__init__()
        self.ops, self.reads = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        self.reads += name in self.READS
        self.ops += name not in self.VIEWS
        return func(*args, **(kwargs or {}))


def test_one_frame_issues_fewer_device_operations_and_reads_nothing_back_but_the_host_step():
    """Around the call's one host step, the device parts queue cleaning, smoothing, PSM and stages without reading a
    value back (the reference reads the views' flags, the RANSAC's checks and every smoothed stage's blur radius), in
    under two thirds of the reference's operations."""
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 1)
    stats = true_stats(0.02)
    solver = rs.RPSMSolver(P, HEATMAP_PX, stats, 6, 2000.0, 6, antialias=True)
    with DeviceOps() as ref:
        pc.rpsm(hm, P, stats, 6, 2000.0, 6, antialias=True)
    with DeviceOps() as before:
        clean, packed = solver._clean(hm)
    upload, radii = solver._host_step(packed, None)  # on the host: the RANSAC root and the blur radii
    assert radii[0] > 0  # the PSM's grid is blurred: the reference read its radius back
    with DeviceOps() as after:
        solver._solve(clean, upload, radii)
    assert before.reads == 0 and after.reads == 0 and ref.reads > 2
    assert before.ops + after.ops < 0.65 * ref.ops, (before.ops, after.ops, ref.ops)


def test_estimate_all_gives_estimate_3d_for_every_estimator_from_one_solve():
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 3, seed=5)
    sizes = PictorialSizes(grid_bins=6, rpsm_stages=2, batch_frames=2)
    stats = true_stats()
    got = rs.estimate_all(pc.ESTIMATORS, hm, P, stats, sizes)
    assert list(got) == list(pc.ESTIMATORS)
    for est in pc.ESTIMATORS:
        assert torch.equal(got[est], pc.estimate_3d(est, hm, P, stats, sizes)), est
    assert torch.equal(rs.estimate_all(["psm"], hm, P, stats, sizes)["psm"], got["psm"])
    assert rs.solver_for(P, HEATMAP_PX, stats, sizes) is rs.solver_for(P.clone(), HEATMAP_PX, stats, sizes)
    with pytest.raises(ValueError, match="unknown estimator"):
        rs.estimate_all(["vote"], hm, P, stats, sizes)
    with pytest.raises(ValueError, match="need limb-length stats"):
        rs.estimate_all(["rpsm"], hm, P)


def test_views_in_any_order_and_subsets_each_get_their_own_solver():
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 2)
    for views in itertools.permutations(range(4), 3):
        v = list(views)
        solver = rs.RPSMSolver(P[v], HEATMAP_PX, true_stats(), 4, 2000.0, 1)
        assert torch.equal(solver(hm[:, v], P[v]), pc.rpsm(hm[:, v], P[v], true_stats(), 4, 2000.0, 1))
        if v != [0, 1, 2]:
            with pytest.raises(ValueError, match="built for the rig"):
                solver(hm[:, :3], P[:3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_captured_graphs_give_the_eager_solvers_and_the_references_poses():
    """Run on the GPU machine: `python -m pytest tests/test_rpsm_solver.py -k gpu`. The second call of a shape
    captures its graphs and later calls replay them; their poses are the eager solver's and, up to the float noise of
    the root's DLT (LAPACK on the host against cuSOLVER), the reference's."""
    _, P = ring_rig(4)
    P = P.cuda()
    hm = noisy_heatmaps(P.cpu(), 3).cuda()
    stats = true_stats(0.02)
    graphs = rs.RPSMSolver(P, HEATMAP_PX, stats, 15, 2000.0, 10, antialias=True)
    eager = rs.RPSMSolver(P, HEATMAP_PX, stats, 15, 2000.0, 10, antialias=True, cuda_graphs=False)
    assert graphs.use_graphs and graphs._dense is not None
    for frames in (hm, hm[:1], hm[1:2], hm[:1]):  # batch, then single frames: their shapes seen once, twice, ...
        for _ in range(3):
            got = graphs(frames, P, return_stages=True)
        want = eager(frames, P, return_stages=True)
        assert_same_stages(got, want)
        reference = pc.rpsm(frames, P, stats, 15, 2000.0, 10, antialias=True, return_stages=True)
        assert max((a - b).norm(dim=-1).max().item() for a, b in zip(got, reference)) < 1e-3
    assert graphs.graphs_captured >= 4 and graphs.use_graphs  # no capture fell back to eager


def test_the_static_buffers_that_cuda_graphs_read_give_the_same_poses(monkeypatch):
    """The graph path (each call's heatmaps copied into per-batch-size buffers, the device parts reading and writing
    only those) run eagerly on the CPU: the same poses as the plain path, across batch sizes that evict each other."""
    _, P = ring_rig(4)
    hm = noisy_heatmaps(P, 3, seed=6)
    stats = true_stats(0.02)
    plain = rs.RPSMSolver(P, HEATMAP_PX, stats, 5, 2000.0, 3, antialias=True)
    buffered = rs.RPSMSolver(P, HEATMAP_PX, stats, 5, 2000.0, 3, antialias=True)
    keys = []
    monkeypatch.setattr(buffered._graphs, "enabled", True)
    monkeypatch.setattr(buffered._graphs, "run", lambda key, fn: (keys.append(key), fn()))
    for frames in (hm, hm[:1], hm[1:3], hm[2:3], hm, hm[:1]):  # batch sizes 3, 1, 2, 1, 3, 1: two kept at a time
        got = buffered(frames, P, return_stages=True)
        assert_same_stages(got, plain(frames, P, return_stages=True))
        assert all(g.data_ptr() != s.data_ptr() for g, s in zip(got, buffered._slots.take(frames.shape[0]).poses))
    assert sorted(buffered._slots) == [1, 3] and {k[0] for k in keys} == {"clean", "solve"}
    assert buffered.calls == 6 and buffered.host_seconds > 0
