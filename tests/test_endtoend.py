"""NaiveFuse^full end to end (mfcore.endtoend): backbone and fusion layers trained together on a target rig's images."""

import dataclasses

import pytest
import torch

from mfcore import backbone, data, endtoend, fusion, profiles, targets
from mfcore.geometry import scale_pixels

SMOKE = profiles.get_profile("smoke")


def _tiny_problem(n=4, seed=0):
    """Four H36M-like frames (4 views, 64² images, 16² heatmaps at smoke), a fresh smoke backbone, a zero NaiveFuse."""
    batch = data.make_multiview("h36m_s1", "train", n, SMOKE, seed, "cpu")
    images = (batch.images * 255).round().to(torch.uint8)
    joints_hm = scale_pixels(batch.joints_2d_px, SMOKE.studio.image_px, SMOKE.studio.heatmap_px)
    torch.manual_seed(seed)
    net = backbone.model_from_profile(SMOKE)
    fuse = fusion.NaiveFuse(images.shape[1], SMOKE.studio.heatmap_px)
    return net, fuse, images, joints_hm


def _train(net, fuse, images, joints_hm, epochs=12, seed=0):
    return endtoend.train_end_to_end(net, fuse, images, joints_hm, epochs=epochs, batch_frames=4, backbone_lr=1e-3,
                                     fusion_lr=1e-2, sigma_px=SMOKE.studio.heatmap_sigma_px, seed=seed,
                                     progress=False)


def test_end_to_end_training_lowers_both_losses_and_moves_both_parts():
    net, fuse, images, joints_hm = _tiny_problem()
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    history = _train(net, fuse, images, joints_hm, epochs=24)
    assert len(history["view_loss"]) == len(history["fused_loss"]) == 24  # one step per epoch (4 frames, batch 4)
    for term in ("view_loss", "fused_loss"):  # each falls by about a quarter here
        first, last = history[term][0], history[term][-1]
        assert last < 0.85 * first, (term, first, last)
    # the fusion weights left zero and the backbone moved: the gradient of both terms reaches both parts
    assert float(fuse.weight.detach().abs().max()) > 0
    moved = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("head") for k in moved) and any(k.startswith("stem") for k in moved)
    assert not net.training and not fuse.training  # handed back in eval mode


def test_the_fused_term_alone_trains_the_backbone():
    """Eq. (3) alone (no per-view term) has a gradient at the backbone's first convolution: the fused loss is
    differentiated through the fusion layer into the backbone."""
    net, fuse, images, joints_hm = _tiny_problem()
    x = images.float() / 255
    y = data.gaussian_heatmaps(joints_hm, SMOKE.studio.heatmap_px, SMOKE.studio.heatmap_sigma_px)
    with torch.no_grad():
        fuse.weight.fill_(1e-3)
    h = net(x.flatten(0, 1)).reshape(*y.shape)
    fusion.fusion_mse(fuse(h), y, fuse.target_views).backward()
    first_conv = next(m for m in net.stem.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad is not None and float(first_conv.weight.grad.abs().sum()) > 0
    assert float(fuse.weight.grad.abs().sum()) > 0


def test_end_to_end_training_is_deterministic_in_its_seed():
    runs = [_train(*_tiny_problem(), epochs=3, seed=s) for s in (0, 0, 1)]
    assert runs[0] == runs[1]
    # the seed orders the frames: with one batch of all frames the order changes nothing but the batch is the same;
    # with two batches it changes the steps
    net, fuse, images, joints_hm = _tiny_problem()
    a = endtoend.train_end_to_end(net, fuse, images, joints_hm, epochs=1, batch_frames=2, backbone_lr=1e-3,
                                  fusion_lr=1e-2, sigma_px=2.0, seed=0, progress=False)
    net, fuse, images, joints_hm = _tiny_problem()
    b = endtoend.train_end_to_end(net, fuse, images, joints_hm, epochs=1, batch_frames=2, backbone_lr=1e-3,
                                  fusion_lr=1e-2, sigma_px=2.0, seed=3, progress=False)
    assert a != b


@pytest.mark.parametrize("change, message", [
    (dict(epochs=0), "epochs must be a positive int"),
    (dict(batch_frames=1.5), "batch_frames must be a positive int"),
])
def test_bad_training_arguments_are_clear_errors(change, message):
    net, fuse, images, joints_hm = _tiny_problem(n=2)
    kwargs = dict(epochs=1, batch_frames=2, backbone_lr=1e-3, fusion_lr=1e-2, sigma_px=2.0, seed=0, progress=False)
    with pytest.raises(ValueError, match=message):
        endtoend.train_end_to_end(net, fuse, images, joints_hm, **{**kwargs, **change})


def test_mismatched_views_or_frames_are_clear_errors():
    net, fuse, images, joints_hm = _tiny_problem(n=2)
    kwargs = dict(epochs=1, batch_frames=2, backbone_lr=1e-3, fusion_lr=1e-2, sigma_px=2.0, seed=0, progress=False)
    with pytest.raises(ValueError, match="fuses 4 views"):
        endtoend.train_end_to_end(net, fuse, images[:, :3], joints_hm[:, :3], **kwargs)
    with pytest.raises(ValueError, match="same frames and views"):
        endtoend.train_end_to_end(net, fuse, images, joints_hm[:1], **kwargs)


def test_target_images_are_the_frames_of_target_data(monkeypatch, tmp_path):
    """The images a model trained end to end reads are the frames whose cached heatmaps every other method reads:
    the same labels, in the same order, for the pool, the test and the stress sets of every target and trial."""
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))  # a random backbone below: keep its heatmaps out of the cache
    monkeypatch.setattr(backbone, "warmup_backbone", lambda profile, seed, device: backbone.freeze(
        backbone.model_from_profile(profile)))
    prof = dataclasses.replace(SMOKE, metafuse=dataclasses.replace(
        SMOKE.metafuse, target_train_frames=5, target_test_frames=4, stress_test_frames=2, trials=2))
    for target, trial in (("h36m", 0), ("dome_heldout", 1), ("totalcapture", 0)):
        sets = targets.target_data(target, trial, prof, 0, "cpu")
        for split, labels in (("train", sets["train"]), ("test", sets["test"]), ("stress", sets["stress"])):
            n = labels["joints_2d_px"].shape[0]
            parts = list(targets.target_images(target, trial, split, n, prof, 0, "cpu", batch_frames=3))
            joints = torch.cat([j for _, j in parts])
            assert torch.equal(joints, labels["joints_2d_px"]), (target, trial, split)
            images = torch.cat([im for im, _ in parts])
            assert images.shape == (n, len(sets["views"]), 3, prof.studio.image_px, prof.studio.image_px)
    with pytest.raises(ValueError, match="allowed values"):
        next(targets.target_images("h36m", 0, "val", 2, prof, 0, "cpu"))
    with pytest.raises(ValueError, match="n_frames must be a positive int"):
        next(targets.target_images("h36m", 0, "test", 0, prof, 0, "cpu"))


def test_one_training_gives_the_peaks_and_the_test_heatmaps(monkeypatch, tmp_path):
    """end_to_end_heatmaps reads the test maps of the very training behind end_to_end_peaks: one training fills both
    cache entries, whichever is asked first (the training itself is chapter 4b's; a stand-in keeps this fast)."""
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    trainings = []
    maps = {"views": torch.rand(3, 4, 17, 4, 4).half(), "fused": torch.rand(3, 4, 17, 4, 4).half()}

    def stand_in(target, trial, profile, seed, device, progress):
        trainings.append((target, trial, seed))
        return {"fused.test": torch.zeros(3, 4, 17, 2), "seconds": torch.zeros(2, dtype=torch.float64)}, maps

    monkeypatch.setattr(endtoend, "_train_and_read", stand_in)
    for first, second in ((endtoend.end_to_end_peaks, endtoend.end_to_end_heatmaps),
                          (endtoend.end_to_end_heatmaps, endtoend.end_to_end_peaks)):
        trainings.clear()
        seed = 7 if first is endtoend.end_to_end_peaks else 8  # a fresh cache key for each order
        first("h36m", 0, SMOKE, seed, "cpu")
        out = second("h36m", 0, SMOKE, seed, "cpu")
        assert trainings == [("h36m", 0, seed)]
    read = endtoend.end_to_end_heatmaps("h36m", 0, SMOKE, 8, "cpu")
    assert read["fused"].dtype == torch.float32 and torch.equal(read["fused"], maps["fused"].float())
    assert "fused.test" in out
