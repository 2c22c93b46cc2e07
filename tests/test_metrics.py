import math

import pytest
import torch

from mfcore import geometry, metrics, skeleton, studio


def test_argmax_finds_the_peak_and_moves_a_quarter_pixel_towards_the_higher_neighbour():
    hm = torch.zeros(1, 2, 8, 8)
    hm[0, 0, 3, 5] = 1.0
    hm[0, 0, 3, 6] = 0.5  # right neighbour higher than the left one
    hm[0, 1, 6, 2] = 1.0
    hm[0, 1, 5, 2] = 0.3  # upper neighbour higher
    xy = metrics.heatmap_argmax_px(hm)
    assert xy[0, 0].tolist() == [5.25, 3.0]
    assert xy[0, 1].tolist() == [2.0, 5.75]


def test_jdr_on_hand_made_cases():
    gt = torch.zeros(4, 3, 2)
    pred = gt.clone()
    pred[0, 0] = torch.tensor([3.0, 4.0])  # error 5 px
    pred[1, 1] = torch.tensor([1.0, 0.0])  # error 1 px
    pred[2, 2] = torch.tensor([1.5, 2.0])  # error 2.5 px: half a pixel beyond the threshold, missed
    rate = metrics.jdr(pred, gt, threshold_px=2.0)
    assert rate.tolist() == [0.75, 1.0, 0.75]
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 0] = False  # that sample does not count
    assert metrics.jdr(pred, gt, 2.0, mask).tolist() == [1.0, 1.0, 0.75]
    per_sample = torch.tensor([6.0, 2.0, 3.0, 2.0])  # a per-sample threshold lets the 5 px and 2.5 px errors pass
    assert metrics.jdr(pred, gt, per_sample).tolist() == [1.0, 1.0, 1.0]


def test_jdr_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="pred_px and gt_px"):
        metrics.jdr(torch.zeros(2, 3, 2), torch.zeros(2, 4, 2), 1.0)


def test_jdr_threshold_is_the_crossview_codes_half_head_in_sensor_pixels():
    # headsize = 256 / 10 sensor px; half of it, or a quarter, in each view's pixels
    assert metrics.jdr_threshold_sensor_px("half_head") == 12.8 and metrics.jdr_threshold_sensor_px("quarter_head") == 6.4
    # a 600-px window of the sensor shown at 256 px: 600 / 256 sensor px per view px
    scale = torch.tensor([600 / 256, 1.0])
    assert torch.allclose(metrics.jdr_threshold_view_px(scale), torch.tensor([12.8 * 256 / 600, 12.8]))
    labels = {"joints_2d_px": torch.zeros(3, 2, 17, 2), "sensor_px_per_view_px": scale}
    thr = metrics.labels_threshold_px(labels, "quarter_head")
    assert thr.shape == (3, 2) and torch.allclose(thr[1], torch.tensor([6.4 * 256 / 600, 6.4]))
    with pytest.raises(ValueError, match="unknown JDR threshold 'crossview_const'"):
        metrics.jdr_threshold_sensor_px("crossview_const")
    with pytest.raises(ValueError, match="no 'sensor_px_per_view_px'"):
        metrics.labels_threshold_px({"joints_2d_px": torch.zeros(1, 1, 17, 2)})


def test_jdr_counts_an_error_equal_to_the_threshold_as_detected():
    gt = torch.zeros(1, 1, 2)
    assert metrics.jdr(torch.tensor([[[3.0, 4.0]]]), gt, 5.0).tolist() == [1.0]  # distance <= threshold, as the code


def test_jdr_threshold_of_a_built_in_view_is_12_8_sensor_px():
    rig = studio.h36m_rig(9).at_resolution(64)
    s = rig.sensor_px_per_view_px(torch.float64)
    expected = torch.tensor([12.8 * 64 / sensor.window_px[2] for sensor in rig.sensors], dtype=torch.float64)
    assert torch.allclose(metrics.jdr_threshold_view_px(s), expected, rtol=1e-12)


def test_mpjpe_in_millimetres():
    gt = torch.zeros(2, 17, 3)
    pred = gt.clone()
    pred[..., 0] += 0.01  # 1 cm everywhere
    assert torch.allclose(metrics.mpjpe_mm(pred, gt), torch.full((2,), 10.0))


def test_procrustes_of_a_rotated_scaled_translated_copy_gives_zero_error():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(3, 17, 3, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    Q = Q * torch.sign(torch.linalg.det(Q))  # a rotation
    pred = 1.7 * gt @ Q.T + torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    assert metrics.pa_mpjpe_mm(pred, gt).max() < 1e-9
    assert metrics.mpjpe_mm(pred, gt).min() > 100.0  # without alignment it is far


def test_procrustes_does_not_reflect():
    g = torch.Generator().manual_seed(1)
    gt = torch.randn(17, 3, generator=g, dtype=torch.float64)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert metrics.pa_mpjpe_mm(mirrored, gt) > 1.0


def test_per_frame_detections_sum_to_the_pooled_jdr():
    """jdr_frames.csv's units: Σ detected / Σ counted over frames is the JDR of a joint group, for every threshold."""
    import torch

    from mfcore import metrics, skeleton

    g = torch.Generator().manual_seed(0)
    N, V, J, image_px = 6, 3, len(skeleton.JOINT_NAMES), 64
    gt = torch.rand(N, V, J, 2, generator=g) * 70 - 3  # some joints outside the image: not counted
    peaks = gt + torch.randn(N, V, J, 2, generator=g) * 2
    labels = dict(joints_2d_px=gt, joints_3d_m=torch.randn(N, J, 3, generator=g) * 0.3 + torch.tensor([0, 0, 4.0]),
                  projections=torch.tensor([[[50.0, 0, 32, 0], [0, 50, 32, 0], [0, 0, 1, 0]]]).repeat(V, 1, 1),
                  focal_px=torch.full((V,), 50.0), sensor_px_per_view_px=torch.full((V,), 4.0))
    rows = metrics.peak_jdr_frame_rows(peaks, labels, image_px, rig="r")
    per_joint = metrics.peak_jdr(peaks, labels, image_px)
    for group, names in metrics.JOINT_GROUPS.items():
        part = [r for r in rows if r["joint"] == group]
        assert len(part) == N and all(r["rig"] == "r" for r in part)
        idx = [skeleton.JOINT_INDEX[n] for n in names]
        hit, inside = metrics.peak_hits(peaks, labels, image_px)
        assert sum(r["detected"] for r in part) / sum(r["counted"] for r in part) == pytest.approx(
            float((hit & inside)[..., idx].sum() / inside[..., idx].sum()))
    total = [r for r in rows if r["joint"] == "mean"]
    assert sum(r["counted"] for r in total) == int(((gt >= -0.5) & (gt <= image_px - 0.5)).all(-1).sum())
    assert torch.isfinite(per_joint).all()


def test_pcp_counts_a_limb_when_both_ends_are_within_half_its_length():
    # a two-limb chain 0-1-2 along x: limb (0, 1) is 1 m long, limb (1, 2) 2 m long
    gt = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]]).repeat(4, 1, 1)
    pred = gt.clone()
    pred[1, 1, 1] = 0.5  # joint 1 off by exactly half of limb (0, 1): still correct (≤), and well within limb (1, 2)
    pred[2, 0, 2] = 0.6  # joint 0 off by 0.6 m: limb (0, 1) wrong, limb (1, 2) untouched
    pred[3, 2, 0] = 4.0  # joint 2 off by 1 m = half of limb (1, 2): correct; 4.01 would not be
    pred[3, 1, 1] = 0.9  # joint 1 off by 0.9 m: limb (0, 1) wrong (> 0.5), limb (1, 2) correct (< 1.0)
    assert metrics.pcp_correct(pred, gt, limbs=((0, 1), (1, 2))).tolist() == [[True, True], [True, True],
                                                                               [False, True], [False, True]]
    got = metrics.pcp(pred, gt, limbs=((0, 1), (1, 2)))
    assert got.tolist() == [2 / 4, 4 / 4]
    assert metrics.pcp(gt[:1], gt[:1], limbs=((0, 1), (1, 2))).tolist() == [1.0, 1.0]
    assert metrics.pcp(pred.reshape(2, 2, 3, 3), gt.reshape(2, 2, 3, 3), limbs=((0, 1), (1, 2))).tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="joint pairs"):
        metrics.pcp(pred, gt, limbs=((0, 3),))
    with pytest.raises(ValueError, match="must both be"):
        metrics.pcp(pred, gt[:, :2])
