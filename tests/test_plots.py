"""The shared figure helpers (mfbook.plots) draw what they say on tiny inputs: labelled pixel axes, one line per
epipolar line, a band between the interval columns, one labelled bar per (group, hue)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mfbook import plots  # noqa: E402
from mfcore import epipolar  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_heatmap_panels_draw_one_titled_image_per_heatmap_on_pixel_axes():
    imgs = [torch.zeros(4, 4), np.eye(4), torch.ones(4, 4)]
    fig, axes = plots.heatmap_panels(imgs, ["a", "b", "c"], ncols=2, colorbar="weight")
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["a", "b", "c"]
    assert all(len(ax.images) == 1 for ax in axes)
    assert axes[0].get_xlabel() == "x (heatmap px)" and axes[0].get_ylabel() == "y (heatmap px)"
    assert axes[0].get_xlim() == (-0.5, 3.5) and axes[0].get_ylim() == (3.5, -0.5)  # y down, pixel centres at integers
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 3
    assert not fig.axes[3].axison  # the grid's fourth cell is empty and hidden


def test_heatmap_panels_name_a_missing_title_and_a_non_image():
    with pytest.raises(ValueError, match="one title per image"):
        plots.heatmap_panels([np.zeros((2, 2))], [])
    with pytest.raises(ValueError, match=r"\(H, W\).*\(2, 2, 2\)"):
        plots.heatmap_panels([np.zeros((2, 2, 2))], ["x"])


def test_draw_lines_draws_the_lines_that_cross_the_image_and_skips_the_others():
    fig, ax = plt.subplots()
    lines = torch.tensor([[1.0, 0.0, -2.0],  # x = 2: crosses a 5² image
                          [0.0, 1.0, -1.0],  # y = 1: crosses
                          [1.0, 0.0, -40.0]])  # x = 40: misses
    assert plots.draw_lines(ax, lines, 5, ["r", "g", "b"]) == 2
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2.0, 2.0])
    with pytest.raises(ValueError, match="one per line"):
        plots.draw_lines(ax, lines, 5, ["r", "g"])


def test_epipolar_fans_draw_each_pixel_and_its_line_in_every_other_view():
    cameras, _ = epipolar.chapter_cameras(16)
    fig, axs = plt.subplots(1, len(cameras))
    plots.epipolar_fans(axs, cameras, 0, torch.tensor([[8.0, 8.0]]), 16)
    assert axs[0].get_title() == "view 1: pixel (8, 8)" and len(axs[0].collections) == 1
    assert [ax.get_title() for ax in axs[1:]] == [f"view {v}: epipolar line" for v in range(2, len(cameras) + 1)]
    assert all(len(ax.lines) == 1 for ax in axs[1:])  # a pixel inside the volume's image: its line crosses each view
    assert all(ax.get_xlabel() == "x (heatmap px)" for ax in axs)


def test_curve_with_band_shades_between_the_interval_columns():
    fig, ax = plt.subplots()
    d = pd.DataFrame({"k": [4, 1, 2], "jdr": [0.6, 0.4, 0.5], "lo": [0.5, 0.3, 0.4], "hi": [0.7, 0.5, 0.6]})
    line = plots.curve_with_band(ax, d, "k", "jdr", "lo", "hi", label="MetaFuse", marker="o")
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 4])  # sorted by x
    assert line.get_label() == "MetaFuse" and len(ax.collections) == 1
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(0.3) and band[:, 1].max() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="both lower and upper"):
        plots.curve_with_band(ax, d, "k", "jdr", lower="lo")


def test_grouped_bars_label_every_bar_with_its_value_and_leave_a_gap_for_a_missing_pair():
    fig, ax = plt.subplots()
    d = pd.DataFrame({"method": ["A", "A", "B"], "estimator": ["psm", "rpsm", "psm"], "mm": [120.0, 80.0, 95.5]})
    bars = plots.grouped_bars(ax, d, "method", "estimator", "mm", fmt="{:.1f}")
    assert [c.get_label() for c in bars] == ["psm", "rpsm"]
    assert [t.get_text() for t in ax.texts] == ["120.0", "95.5", "80.0", ""]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    with pytest.raises(ValueError, match="one row per"):
        plots.grouped_bars(ax, pd.concat([d, d]), "method", "estimator", "mm")


def test_legible_raises_small_fonts_and_keeps_larger_ones():
    fig, ax = plt.subplots()
    ax.set_title("small", fontsize=6)
    ax.set_xlabel("big", fontsize=20)
    plots.legible(fig, 12)
    fig.canvas.draw()
    assert ax.title.get_fontsize() == 12 and ax.xaxis.label.get_fontsize() == 20
    assert all(t.get_fontsize() >= 12 for t in ax.get_xticklabels() if t.get_text())
