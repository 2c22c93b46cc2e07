"""SimpleBaseline backbone and its warm-up (MetaFuse Sec. 4.2, 5.1) in miniature."""

import pytest
import torch

from mfcore import backbone


@pytest.mark.parametrize("depth", [10, 18, 34, 50])
def test_heatmaps_are_a_quarter_of_the_image(depth):
    model = backbone.PoseResNet(depth, width=4, deconv_channels=8, num_joints=17).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 17, 16, 24)


def test_block_counts_follow_resnet():
    def blocks(depth):
        return [len(stage) for stage in backbone.PoseResNet(depth, 4, 8).stages]

    assert blocks(18) == [2, 2, 2, 2] and blocks(34) == [3, 4, 6, 3]
    r50 = backbone.PoseResNet(50, 4, 8)
    assert isinstance(r50.stages[0][0], backbone.Bottleneck) and r50.stages[3][-1].conv3.out_channels == 4 * 8 * 4


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="depth 101"):
        backbone.PoseResNet(101)
    with pytest.raises(ValueError, match="width"):
        backbone.PoseResNet(18, width=0)
    with pytest.raises(ValueError, match="multiples of 32"):
        backbone.PoseResNet(10, 4, 8)(torch.zeros(1, 3, 40, 40))


def test_warmup_schedule_is_the_papers_scaled():
    assert [backbone.warmup_lr(e, 30, 1e-3) for e in (0, 14, 15, 24, 25, 29)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    assert [backbone.warmup_lr(e, 6, 1e-3) for e in range(6)] == pytest.approx([1e-3] * 3 + [1e-4] * 2 + [1e-5])


def test_warmup_fits_a_tiny_set_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g)
    targets = torch.zeros(4, 2, 8, 8)
    targets[:, 0, 2, 3] = 1.0
    targets[:, 1, 5, 6] = 1.0
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = backbone.PoseResNet(10, 4, 8, num_joints=2)
        runs.append(backbone.train_backbone(model, images, targets, epochs=12, batch_size=4, lr=1e-2, seed=0,
                                            device="cpu", progress=False))
    assert runs[0] == runs[1]
    assert runs[0][-1] < 0.5 * runs[0][0]
    frozen = backbone.freeze(model)
    assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.training
    heat = backbone.predict_heatmaps(frozen, images.reshape(2, 2, 3, 32, 32), batch_size=3)
    assert heat.shape == (2, 2, 2, 8, 8)
    peaks = heat.flatten(0, 1).flatten(-2).argmax(-1)  # (4, 2) flat heatmap index of each joint
    assert torch.equal(peaks, torch.tensor([[2 * 8 + 3, 5 * 8 + 6]] * 4))


def test_train_backbone_rejects_mismatched_data():
    with pytest.raises(ValueError, match="same number"):
        backbone.train_backbone(backbone.PoseResNet(10, 4, 8), torch.zeros(2, 3, 32, 32), torch.zeros(3, 17, 8, 8),
                                epochs=1, batch_size=2, lr=1e-3, seed=0, device="cpu", progress=False)


# ----------------------------------------------------------------------------------------------------------------------
# cached heatmaps: the Gaussian targets are stored as their factors and rebuilt bit-identically

def test_targets_rebuilt_from_their_factors_are_the_float16_gaussians_bit_for_bit():
    from mfcore import data

    g = torch.Generator().manual_seed(0)
    joints_hm = torch.rand(3, 4, 17, 2, generator=g) * 80 - 8  # heatmap px, some outside the 64² map
    expected = data.gaussian_heatmaps(joints_hm, 64, 2.0).half().float()  # what the entries stored until now
    gy, gx = data.gaussian_factors(joints_hm, 64, 2.0)
    for chunk_maps in (1, 7, 256):
        assert torch.equal(backbone.gaussian_targets(gy, gx, chunk_maps=chunk_maps), expected)
    half = backbone.gaussian_targets(gy, gx, chunk_maps=7, dtype=torch.float16)  # the same numbers, half the bytes
    assert half.dtype == torch.float16 and torch.equal(half.float(), expected)
    with pytest.raises(ValueError, match="leading dims"):
        backbone.gaussian_targets(gy, gx[:2])
    with pytest.raises(ValueError, match="dtype must be"):
        backbone.gaussian_targets(gy, gx, dtype=torch.bfloat16)


@pytest.fixture()
def tiny_backbone(tmp_path, monkeypatch):
    """An on-disk cache of its own and an untrained tiny backbone in place of the warm-up (which takes a minute)."""
    from mfcore import profiles

    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = backbone.freeze(backbone.PoseResNet(10, 4, 8))
    monkeypatch.setattr(backbone, "warmup_backbone", lambda profile, seed, device: model)
    return model, profiles.get_profile("smoke")


def test_cached_heatmaps_store_the_targets_as_factors_and_return_them_unchanged(tiny_backbone, tmp_path):
    from mfbook import cache
    from mfcore import data, studio

    model, prof = tiny_backbone
    cache.clear_memo()
    n, views = 5, [0, 3, 7]
    out = backbone.cached_heatmaps("dome", "train", n, prof, 11, "cpu", views=views, batch_frames=2)
    batch = data.make_multiview(studio.get_rig("dome").subset(views), "train", n, prof, 11, "cpu")
    assert torch.equal(out["target"], batch.heatmaps.half().float())  # as when the targets were stored as float16
    assert torch.equal(out["pred"], backbone.predict_heatmaps(model, batch.images).half().float())
    assert list(out) == ["pred", "target", "joints_2d_px", "visible", "joints_3d_m", "projections", "focal_px",
                         "sensor_px_per_view_px"]
    (path,) = tmp_path.glob("heatmaps-*.pt")
    stored = torch.load(path, weights_only=True)["tensors"]
    h = prof.studio.heatmap_px
    assert "target" not in stored and stored["pred"].dtype == torch.float16
    assert stored["target_gy"].shape == stored["target_gx"].shape == (n, len(views), 17, h)
    cache.clear_memo()  # read back from disk, verified: the same tensors
    again = backbone.cached_heatmaps("dome", "train", n, prof, 11, "cpu", views=views, batch_frames=2)
    assert all(torch.equal(out[k], again[k]) for k in out)
    path.write_bytes(path.read_bytes()[:100])  # a corrupt entry is rebuilt, to the same tensors
    cache.clear_memo()
    with pytest.warns(UserWarning, match="invalid"):
        rebuilt = backbone.cached_heatmaps("dome", "train", n, prof, 11, "cpu", views=views, batch_frames=2)
    assert all(torch.equal(out[k], rebuilt[k]) for k in out)
    half = backbone.cached_heatmaps("dome", "train", n, prof, 11, "cpu", views=views, batch_frames=2,
                                    dtype=torch.float16)  # the same entry at half the host memory, the same numbers
    assert half["pred"].dtype == half["target"].dtype == torch.float16
    assert all(torch.equal(half[k].float(), out[k].float()) for k in out)
