"""Multi-view samples: the 2D labels are the projections of the 3D joints, heatmap targets peak at the labels with the
profile's σ, visibility implies inside the image, and the same seed gives the same batch whatever the chunking."""

import dataclasses
import math

import pytest
import torch

from mfcore import data, geometry, metrics, motion, profiles, studio

SMOKE = profiles.get_profile("smoke")
TINY = dataclasses.replace(SMOKE, studio=dataclasses.replace(SMOKE.studio, image_px=32, heatmap_px=8,
                                                              heatmap_sigma_px=0.5))


@pytest.fixture(scope="module")
def batch():
    return data.make_multiview("h36m_s9", "test", 6, SMOKE, seed=3, device="cpu")


def test_shapes_and_ranges(batch):
    B, V, J = 6, 4, 17
    px, hm = SMOKE.studio.image_px, SMOKE.studio.heatmap_px
    assert batch.images.shape == (B, V, 3, px, px) and batch.images.dtype == torch.float32
    assert batch.heatmaps.shape == (B, V, J, hm, hm)
    assert batch.joints_2d_px.shape == (B, V, J, 2) and batch.visible.shape == (B, V, J)
    assert batch.visible.dtype == torch.bool and batch.joints_3d_m.shape == (B, J, 3)
    assert batch.projections.shape == (V, 3, 4)
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.heatmaps.max() <= 1


def test_projected_3d_joints_equal_the_2d_labels(batch):
    rig = studio.h36m_rig(9).at_resolution(SMOKE.studio.image_px)
    for v, cam in enumerate(rig.cameras):  # x ~ K (R X + t), written out independently of geometry.project
        X = batch.joints_3d_m.double()
        x_cam = X @ cam.R.T + cam.t
        uvw = x_cam @ cam.K.T
        assert torch.allclose(batch.joints_2d_px[:, v].double(), uvw[..., :2] / uvw[..., 2:], atol=1e-3)
    assert torch.allclose(batch.projections.double(), rig.projections(torch.float64), atol=1e-4)


def test_heatmap_targets_peak_at_the_2d_label(batch):
    hm_px = SMOKE.studio.heatmap_px
    label_hm = geometry.scale_pixels(batch.joints_2d_px, SMOKE.studio.image_px, hm_px)  # (B, V, J, 2)
    inside = ((label_hm > 0.5) & (label_hm < hm_px - 1.5)).all(-1)
    assert inside.float().mean() > 0.5
    peak = metrics.heatmap_argmax_px(batch.heatmaps)  # quarter-pixel refined argmax
    err = (peak - label_hm).abs().amax(-1)
    assert (err[inside] <= 0.5).all()
    nearest = label_hm[inside].round()
    flat = batch.heatmaps[inside].flatten(1).argmax(-1)
    assert torch.equal(torch.stack([flat % hm_px, flat // hm_px], -1).float(), nearest)


def test_heatmap_is_a_unit_peak_gaussian_with_the_profile_sigma():
    sigma = SMOKE.studio.heatmap_sigma_px
    hm = data.gaussian_heatmaps(torch.tensor([[5.0, 7.0]]), 16, sigma)[0]  # (16, 16)
    assert hm[7, 5] == 1.0 and hm.argmax() == 7 * 16 + 5
    assert math.isclose(float(hm[7, 6]), math.exp(-1 / (2 * sigma ** 2)), rel_tol=1e-5)
    assert SMOKE.studio.heatmap_sigma_px * SMOKE.studio.image_px / SMOKE.studio.heatmap_px == 2.0  # σ = 2 at 64²
    with pytest.raises(ValueError, match="sigma"):
        data.gaussian_heatmaps(torch.zeros(1, 2), 8, 0.0)


def test_visible_joints_are_inside_the_image_and_occlusion_is_partial(batch):
    x = batch.joints_2d_px[batch.visible]
    px = SMOKE.studio.image_px
    assert ((x >= -0.5) & (x <= px - 0.5)).all()
    frac = batch.visible.float().mean()
    assert 0.3 < frac < 0.99  # some joints hidden, most seen


def test_a_joint_hidden_in_one_view_is_mostly_seen_in_another():
    b = data.make_multiview("dome", "train", 4, TINY, seed=0, device="cpu")
    hidden_somewhere = (~b.visible).any(1)  # (B, J)
    seen_somewhere = b.visible.any(1)
    assert hidden_somewhere.any()
    assert (seen_somewhere & hidden_somewhere).float().sum() / hidden_somewhere.float().sum() > 0.9


def test_same_seed_same_batch_whatever_the_chunking():
    b1 = data.make_multiview("totalcapture", "train", 3, TINY, seed=7, device="cpu")
    b2 = data.make_multiview(studio.totalcapture_rig(), "train", 3, TINY, seed=7, device="cpu", batch_size=1)
    b3 = data.make_multiview("totalcapture", "train", 3, TINY, seed=8, device="cpu")
    for f in dataclasses.fields(b1):
        assert torch.equal(getattr(b1, f.name), getattr(b2, f.name)), f.name
    assert not torch.equal(b1.images, b3.images)


def test_iterating_in_chunks_gives_the_same_tensors():
    whole = data.make_multiview("h36m_s1", "train", 5, TINY, seed=2, device="cpu")
    parts = list(data.iter_multiview("h36m_s1", "train", 5, TINY, seed=2, device="cpu", batch_size=2))
    assert [p.num_frames for p in parts] == [2, 2, 1]
    for f in dataclasses.fields(whole):
        if f.name != "projections":
            assert torch.equal(torch.cat([getattr(p, f.name) for p in parts]), getattr(whole, f.name)), f.name


def test_render_multiview_any_rig_and_view_subset():
    joints, _ = motion.sample_poses("test", 2, seed=1)
    rig = studio.dome_rig().subset(studio.DOME_HELDOUT_VIEWS)
    b = data.render_multiview(rig, joints, TINY, seed=1, device="cpu")
    assert b.images.shape == (2, 6, 3, 32, 32)
    full = data.render_multiview(studio.dome_rig(), joints, TINY, seed=1, device="cpu")
    assert torch.equal(full.views(studio.DOME_HELDOUT_VIEWS).images, b.images)
    assert torch.equal(full.views(studio.DOME_HELDOUT_VIEWS).visible, b.visible)
    sub = full.frames(slice(1, 2))
    assert sub.num_frames == 1 and sub.projections.shape == (26, 3, 4)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="n_frames"):
        data.make_multiview("dome", "train", 0, TINY, seed=0, device="cpu")
    with pytest.raises(ValueError, match="split"):
        data.make_multiview("dome", "validation", 2, TINY, seed=0, device="cpu")
    with pytest.raises(ValueError, match="valid rigs"):
        data.make_multiview("kinect", "train", 2, TINY, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"joints_3d_m must be \(B, 17, 3\)"):
        data.render_multiview(studio.dome_rig(), torch.zeros(2, 16, 3), TINY, seed=0, device="cpu")
    with pytest.raises(ValueError, match="finite"):
        data.render_multiview(studio.dome_rig(), torch.full((1, 17, 3), float("nan")), TINY, seed=0, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        data.make_multiview("dome", "train", 2, TINY, seed=0, device="cpu", batch_size=0)


def test_a_sequence_is_rendered_as_one_video_of_its_frames():
    """render_sequence draws the scene of frame 0 for every pose (the same clothes, room and light, as a video) and
    renders them at once: frame t equals the pose rendered alone with the same seed."""
    clip = next(c for c in motion.load_motion_library().clips if c.motion_type == "walk")
    poses = clip.joints_3d_m[:2].clone()
    poses[..., :2] -= poses[0, 0, :2].clone()
    video = data.render_sequence("totalcapture", poses, TINY, seed=30, device="cpu")
    for t in range(2):
        alone = data.render_multiview("totalcapture", poses[t:t + 1], TINY, seed=30, device="cpu")
        assert torch.equal(video.images[t], alone.images[0]) and torch.equal(video.heatmaps[t], alone.heatmaps[0])
    other = data.render_multiview("totalcapture", poses, TINY, seed=30, device="cpu")  # frame t draws scene t
    assert not torch.equal(video.images[1:], other.images[1:])


def test_render_throughput_halves_a_batch_that_does_not_fit_in_the_gpu_memory_left(monkeypatch):
    """A chapter measuring the renderer beside others on one GPU gets the largest batch that fits (halving), and a
    single frame that does not fit is still an error."""
    from mfcore import data, profiles

    tried = []

    def fake(rig, profile, device, frames, repeats, labels):
        tried.append(frames)
        if frames > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return dict(images_per_call=frames * rig.num_views)

    monkeypatch.setattr(data, "_measure_throughput", fake)
    profile = profiles.get_profile("smoke")
    row = data.measure_throughput("h36m_s1", profile, "cpu", batch_images=4 * 25, repeats=1)
    assert tried == [25, 12, 6, 3] and row["images_per_call"] == 3 * 4
    monkeypatch.setattr(data, "_measure_throughput", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("x")))
    with pytest.raises(torch.OutOfMemoryError):
        data.measure_throughput("h36m_s1", profile, "cpu", batch_images=8, repeats=1)
