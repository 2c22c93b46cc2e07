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
