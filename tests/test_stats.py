"""The book's one rule for comparing two methods (mfcore.stats): a paired bootstrap interval of the mean difference,
over frames clustered by clip and crossed with seeds and camera draws; and the three-way verdict read from it against
zero and a margin stated before the numbers (yes / no = not reproduced / inconclusive)."""

import math
import time

import numpy as np
import pytest

from mfcore import stats


def iv(low, high, n=100):
    return stats.Interval((low + high) / 2, low, high, n)


def test_identical_methods_differ_by_exactly_zero():
    a = np.random.default_rng(1).normal(size=500)
    interval = stats.paired_bootstrap(a, a.copy())
    assert (interval.diff, interval.low, interval.high, interval.n) == (0.0, 0.0, 0.0, 500)
    assert stats.verdict(interval, "greater") == "inconclusive"  # touching 0 is not the claimed side
    assert stats.verdict(interval, "greater", margin=0.5) == "no"  # a precise null excludes a 0.5 effect


def test_a_constant_shift_is_the_interval():
    b = np.random.default_rng(2).normal(size=300)
    interval = stats.paired_bootstrap(b + 2.5, b, weights=np.random.default_rng(3).integers(1, 5, size=300))
    assert interval.diff == pytest.approx(2.5, abs=1e-12)
    assert interval.low == pytest.approx(2.5, abs=1e-12) and interval.high == pytest.approx(2.5, abs=1e-12)


def test_a_noisy_shift_is_covered_and_the_interval_narrows_with_n():
    rng = np.random.default_rng(4)
    widths = []
    for n in (100, 10_000):
        b = rng.normal(size=n)
        a = b + 1.0 + rng.normal(size=n)  # true mean difference 1, per-unit noise σ = 1
        interval = stats.paired_bootstrap(a, b, seed=5)
        assert interval.low < 1.0 < interval.high
        widths.append(interval.high - interval.low)
    assert widths[1] < widths[0] / 5  # σ/√n: 10x narrower for 100x the units, up to bootstrap noise
    assert widths[1] == pytest.approx(2 * 1.96 / 100, rel=0.1)


def test_the_bootstrap_is_deterministic_in_its_seed_and_fast():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=10_000), rng.normal(size=10_000)
    assert stats.paired_bootstrap(a, b, seed=3) == stats.paired_bootstrap(a, b, seed=3)
    assert stats.paired_bootstrap(a, b, seed=3) != stats.paired_bootstrap(a, b, seed=4)
    t0 = time.perf_counter()
    stats.paired_bootstrap(a, b, n_boot=2000)
    assert time.perf_counter() - t0 < 3.0  # typically ~0.3 s on one core


def test_clusters_widen_the_interval_when_the_variance_is_between_them():
    rng = np.random.default_rng(7)
    clips, per_clip = 8, 200
    clip = np.repeat(np.arange(clips), per_clip)
    effect = rng.normal(scale=1.0, size=clips)[clip]  # every clip shifted as a whole; no variance within a clip
    b = np.zeros(clips * per_clip)
    flat = stats.paired_bootstrap(effect, b, seed=1)
    nested = stats.paired_bootstrap(effect, b, clusters=clip, seed=1)
    assert nested.clusters == clips and flat.clusters == 1
    assert (nested.high - nested.low) > 3 * (flat.high - flat.low)
    assert nested.diff == flat.diff


def test_crossed_seeds_widen_the_interval_when_seeds_disagree():
    """Every frame measured under 3 seeds; the seeds differ as a whole (a training run's luck), frames do not: only
    resampling the seeds sees that spread."""
    rng = np.random.default_rng(8)
    frames, seeds = 300, 3
    seed_of = np.repeat(np.arange(seeds), frames)
    frame_of = np.tile(np.arange(frames), seeds)
    diff = np.array([-1.0, 0.2, 1.5])[seed_of] + 0.01 * rng.normal(size=frames * seeds)
    plain = stats.paired_bootstrap(diff, np.zeros_like(diff), seed=2)
    crossed = stats.paired_bootstrap(diff, np.zeros_like(diff), units=frame_of, crossed=[seed_of], seed=2)
    assert crossed.diff == pytest.approx(plain.diff)
    assert (crossed.high - crossed.low) > 10 * (plain.high - plain.low)
    assert crossed.low == pytest.approx(-1.0, abs=0.05) and crossed.high == pytest.approx(1.5, abs=0.05)


def test_units_are_drawn_together_and_levels_multiply():
    units = np.array([0, 0, 1, 1, 2, 2])  # three frames, each under two seeds
    seeds = np.array([0, 1, 0, 1, 0, 1])
    counts = stats.resample_counts(6, units=units, crossed=[seeds], n_boot=200, seed=0).reshape(200, 3, 2)
    # each resample: a frame's count (3 frames drawn) times a seed's count (2 seeds drawn): an outer product
    assert np.all(counts.sum((1, 2)) == 3 * 2)
    assert np.allclose(counts[:, :, :1] * counts[:, None, :, 1], counts[:, :, 1:] * counts[:, None, :, 0])
    assert (counts[:, :, 0] != counts[:, :, 1]).any()  # the seeds are drawn, not copied
    with pytest.raises(ValueError, match="same for every row of a unit"):
        stats.resample_counts(4, units=[0, 0, 1, 1], clusters=[0, 1, 1, 1])


def test_the_factored_statistic_is_the_counts_matrix_product():
    """bootstrap_mean_interval never forms the (n_boot, n) counts; it must give what they give."""
    rng = np.random.default_rng(9)
    n = 600
    x, w = rng.normal(size=n), rng.integers(1, 5, n).astype(float)
    units = np.tile(np.arange(300), 2)
    draws, seeds = np.repeat([0, 1], 300), np.tile(np.repeat([0, 1, 2], 100), 2)
    designs = [dict(), dict(clusters=units // 20), dict(units=units, clusters=units // 20, crossed=[draws]),
               dict(units=units, crossed=[draws, seeds])]
    for design in designs:
        counts = stats.resample_counts(n, **design, seed=3)
        expected = stats.interval_from(float((w * x).sum() / w.sum()), (counts @ (w * x)) / (counts @ w), n)
        got = stats.bootstrap_mean_interval(x, weights=w, **design, seed=3)
        assert got.low == pytest.approx(expected.low) and got.high == pytest.approx(expected.high)


def test_cluster_counts_keep_every_cluster_size():
    clusters = np.array([0, 0, 0, 1, 2, 2])
    counts = stats.resample_counts(6, clusters=clusters, n_boot=50, seed=0)
    drawn_units = counts.sum(1)
    assert counts.shape == (50, 6) and np.all(np.isin(drawn_units, [3, 4, 5, 6, 7, 8, 9]))
    # one cluster: the two-stage bootstrap is the plain one (n units drawn every time)
    assert np.all(stats.resample_counts(5, clusters=np.zeros(5), n_boot=20).sum(1) == 5)


def test_mean_interval_of_one_method():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    interval = stats.bootstrap_mean_interval(x, weights=[1, 1, 1, 5])
    assert interval.diff == pytest.approx(26 / 8)  # (1 + 2 + 3 + 5·4) / 8
    assert 1.0 <= interval.low <= interval.diff <= interval.high <= 4.0


@pytest.mark.parametrize("low, high, direction, margin, expected", [
    (0.5, 2.0, "greater", 0.0, "yes"),
    (0.5, 2.0, "greater", 3.0, "yes"),  # on the claimed side: yes, even short of the margin (our_value says so)
    (-2.0, -0.5, "greater", 0.0, "no"),  # the other side of 0
    (-0.5, 0.3, "greater", 1.0, "no"),  # holds 0 but wholly short of the margin: not reproduced
    (-0.5, 2.0, "greater", 1.0, "inconclusive"),  # holds 0 and the margin
    (0.0, 2.0, "greater", 1.0, "inconclusive"),  # touching 0 is not the claimed side
    (-1.0, 1.0, "greater", 1.0, "inconclusive"),  # touching the margin is not short of it
    (-0.5, 0.5, "greater", 0.0, "inconclusive"),  # no margin: holding 0 cannot be decided
    (-2.0, -0.5, "less", 0.0, "yes"),
    (0.5, 2.0, "less", 0.0, "no"),
    (-0.3, 0.5, "less", 1.0, "no"),  # a "less" claim's margin lies below 0
    (-2.0, 0.5, "less", 1.0, "inconclusive"),
])
def test_the_three_way_verdict(low, high, direction, margin, expected):
    assert stats.verdict(iv(low, high), direction, margin) == expected


def test_closeness_and_orderings_are_three_way_too():
    assert stats.verdict_within(iv(-0.5, 0.8), 1.0) == "yes"
    assert stats.verdict_within(iv(1.2, 1.8), 1.0) == "no" and stats.verdict_within(iv(-3.0, -1.5), 1.0) == "no"
    assert stats.verdict_within(iv(0.5, 1.5), 1.0) == "inconclusive"
    assert stats.combine(["yes", "yes"]) == "yes" and stats.combine(["yes", "inconclusive"]) == "inconclusive"
    assert stats.combine(["inconclusive", "no", "yes"]) == "no"
    assert stats.VERDICTS == ("yes", "no", "inconclusive")


def test_the_n_that_would_decide_an_inconclusive_interval():
    # centre 0.5, half-width 1 at n = 100; claimed > 0 with margin 0: clears 0 once the half-width is below 0.5
    assert stats.n_to_decide(iv(-0.5, 1.5), "greater") == 400
    # margin 1.2: falls short of it once the half-width is below 0.7, before it clears 0 (needs < 0.5)
    assert stats.n_to_decide(iv(-0.5, 1.5), "greater", 1.2) == math.ceil(100 * (1 / 0.7) ** 2)
    assert stats.n_to_decide(iv(-0.5, 1.5), "greater", 2.0) == 100  # wholly short of a margin of 2: decided (no)
    assert stats.n_to_decide(iv(-1.5, 0.5), "less") == 400  # the mirror image
    assert stats.n_to_decide(iv(0.5, 1.5), "greater") == 100  # decided already: its own n
    assert stats.n_to_decide(iv(-1.0, 1.0), "greater") == math.inf  # centred on 0 with no margin
    assert stats.n_to_decide(iv(0.5, 1.5), "greater", within=True, margin=1.0) == math.inf  # centred on ±tolerance
    assert stats.n_to_decide(iv(0.6, 1.6), "greater", within=True, margin=1.0) == math.ceil(100 * (0.5 / 0.1) ** 2)


def test_a_simultaneous_band_is_wider_than_each_interval_alone():
    rng = np.random.default_rng(10)
    one = stats.simultaneous_intervals([0.0], rng.normal(size=(20_000, 1)), n=50)[0]
    assert one.high == pytest.approx(1.96, abs=0.05) and one.low == pytest.approx(-1.96, abs=0.05)
    four = stats.simultaneous_intervals(np.zeros(4), rng.normal(size=(20_000, 4)), n=50)
    assert all(b.high == pytest.approx(2.49, abs=0.06) for b in four)  # the 95 % quantile of the max of 4 |z|
    same = stats.simultaneous_intervals(np.zeros(4), np.repeat(rng.normal(size=(20_000, 1)), 4, 1), n=50)
    assert all(b.high == pytest.approx(1.96, abs=0.05) for b in same)  # four copies of one statistic: no penalty


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same units"):
        stats.paired_bootstrap([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        stats.paired_bootstrap([], [])
    with pytest.raises(ValueError, match="level"):
        stats.paired_bootstrap([1, 2], [1, 2], level=95)
    with pytest.raises(ValueError, match="n_boot"):
        stats.paired_bootstrap([1, 2], [1, 2], n_boot=0)
    with pytest.raises(ValueError, match="1-D"):
        stats.paired_bootstrap(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        stats.paired_bootstrap([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="clusters"):
        stats.paired_bootstrap([1, 2], [1, 2], clusters=[0])
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(iv(0, 0), "above")
    with pytest.raises(ValueError, match="margin"):
        stats.verdict(iv(0, 1), "greater", margin=-1.0)
    with pytest.raises(ValueError, match="tolerance"):
        stats.verdict_within(iv(0, 1), 0.0)
    with pytest.raises(ValueError, match="verdicts"):
        stats.combine(["yes", "tie"])
    with pytest.raises(ValueError, match="one column per estimate"):
        stats.simultaneous_intervals([0.0, 1.0], np.zeros((10, 3)), n=5)
