"""The epipolar oracle's fused maps (mfcore.oracle.oracle_fused_heatmaps): Eq. (1) with the cameras' exact lines,
each camera placement of a test set with its own cameras: what chapter 5 puts through the RPSM."""

import pytest
import torch

from mfcore import fusion, geometry, oracle, profiles

SMOKE = profiles.get_profile("smoke")


def _placement(shift: float):
    side = SMOKE.studio.image_px
    cams = [geometry.look_at_camera(pos, [0.0, 0.0, 1.0], 40.0, side)
            for pos in ([3.0, shift, 1.2], [shift, 3.0, 1.5], [-3.0, 0.2, 1.3])]
    return geometry.stack_projections(cams)  # (V, 3, 4) at image resolution


def test_oracle_fused_maps_use_each_frames_own_cameras(monkeypatch):
    """Frames seen by two camera placements (as the H36M-like test subjects): each is fused with the oracle weights
    of its own cameras, at the gain asked for. The weights themselves are tested in test_meta.py; here a stand-in
    that tells the placements apart keeps the test fast."""
    side = SMOKE.studio.heatmap_px
    pairs = fusion.ordered_pairs(3)
    seen = []

    def stand_in(P_image, profile, device, gain=1.0):
        seen.append(gain)
        return torch.full((len(pairs), side * side, side * side), 1e-3 * float(P_image.abs().sum()) * gain)

    monkeypatch.setattr(oracle, "placement_oracle_weights", stand_in)
    P_a, P_b = _placement(0.0), _placement(0.8)
    pred = torch.rand(4, 3, 2, side, side, generator=torch.Generator().manual_seed(0))
    test = dict(pred=pred, projections=torch.stack([P_a, P_b, P_a, P_b]), focal_px=torch.full((4, 3), 40.0),
                joints_3d_m=torch.zeros(4, 17, 3))
    fused = oracle.oracle_fused_heatmaps(test, SMOKE, "cpu", gain=2.0, batch_frames=1)
    assert fused.shape == pred.shape and fused.dtype == torch.float32 and seen == [2.0, 2.0]  # one call per placement
    for frame, P in ((0, P_a), (1, P_b), (2, P_a), (3, P_b)):
        expected = fusion.fuse(pred[frame:frame + 1], stand_in(P, SMOKE, "cpu", 2.0), pairs)[0]
        assert torch.allclose(fused[frame], expected, atol=1e-6)
    # the own heatmap keeps the mix's share: with silent sources a view's fused map is SELF_WEIGHT × its own
    lit = torch.zeros_like(pred)
    lit[:, 0] = 1.0
    only_own = oracle.oracle_fused_heatmaps(dict(test, pred=lit), SMOKE, "cpu")
    assert torch.allclose(only_own[:, 0], torch.full_like(only_own[:, 0], fusion.SELF_WEIGHT))
    assert only_own[:, 1:].min() > 0  # the lit view reaches the others through the weights
    with pytest.raises(ValueError, match="gain must be > 0"):
        oracle.oracle_fused_heatmaps(test, SMOKE, "cpu", gain=0.0)
