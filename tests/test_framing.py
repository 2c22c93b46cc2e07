"""Chapter 2's framing numbers from labels: how much of the view the person fills, and the JDR threshold at the person."""

import pytest

from mfcore import framing, metrics, profiles, studio


def test_the_framing_row_of_the_h36m_like_test_views_is_consistent():
    smoke = profiles.get_profile("smoke")
    row = framing.framing_statistics([studio.h36m_rig(s) for s in studio.H36M_TEST_SUBJECTS], "test", 8, smoke,
                                     seed=0, name="h36m_test")
    assert row["rig"] == "h36m_test"
    assert 0.3 < row["person_extent_fraction"] <= 1.0
    # the threshold is 12.8 sensor pixels, converted to view pixels and then to mm at the pelvis
    rig = studio.h36m_rig(9).at_resolution(smoke.studio.image_px)
    assert row["jdr_threshold_px"] == pytest.approx(
        float(metrics.jdr_threshold_view_px(rig.sensor_px_per_view_px(), "half_head").mean()), rel=0.05)
    assert row["quarter_head_mm"] == pytest.approx(row["jdr_threshold_mm"] / 2, rel=1e-6)
    assert 0 < row["jdr_threshold_body_fraction"] < 0.1
    # one heatmap pixel at the person: image_px / heatmap_px view pixels
    assert row["mm_per_heatmap_px"] > row["jdr_threshold_mm"] / row["jdr_threshold_px"] * 0.99
