"""The book's one rule for comparing two methods (mfcore.stats): a paired bootstrap interval of the mean difference,
over frames and, where there are several, trials or seeds; and the yes / no / tie verdict read from it."""

import time

import numpy as np
import pytest

from mfcore import stats


def test_identical_methods_differ_by_exactly_zero():
    a = np.random.default_rng(1).normal(size=500)
    iv = stats.paired_bootstrap(a, a.copy())
    assert (iv.diff, iv.low, iv.high, iv.n) == (0.0, 0.0, 0.0, 500)
    assert stats.verdict(iv, "greater") == "tie" and stats.verdict(iv, "less") == "tie"


def test_a_constant_shift_is_the_interval():
    b = np.random.default_rng(2).normal(size=300)
    iv = stats.paired_bootstrap(b + 2.5, b, weights=np.random.default_rng(3).integers(1, 5, size=300))
    assert iv.diff == pytest.approx(2.5, abs=1e-12)
    assert iv.low == pytest.approx(2.5, abs=1e-12) and iv.high == pytest.approx(2.5, abs=1e-12)


def test_a_noisy_shift_is_covered_and_the_interval_narrows_with_n():
    rng = np.random.default_rng(4)
    widths = []
    for n in (100, 10_000):
        b = rng.normal(size=n)
        a = b + 1.0 + rng.normal(size=n)  # true mean difference 1, per-unit noise σ = 1
        iv = stats.paired_bootstrap(a, b, seed=5)
        assert iv.low < 1.0 < iv.high
        widths.append(iv.high - iv.low)
    assert widths[1] < widths[0] / 5  # σ/√n: 10x narrower for 100x the units, up to bootstrap noise
    assert widths[1] == pytest.approx(2 * 1.96 / 100, rel=0.1)


def test_the_bootstrap_is_deterministic_in_its_seed_and_fast():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=10_000), rng.normal(size=10_000)
    assert stats.paired_bootstrap(a, b, seed=3) == stats.paired_bootstrap(a, b, seed=3)
    assert stats.paired_bootstrap(a, b, seed=3) != stats.paired_bootstrap(a, b, seed=4)
    t0 = time.perf_counter()
    stats.paired_bootstrap(a, b, n_boot=2000)
    assert time.perf_counter() - t0 < 2.0  # typically ~0.3 s on one core


def test_clusters_widen_the_interval_when_the_variance_is_between_them():
    rng = np.random.default_rng(7)
    trials, per_trial = 8, 200
    trial = np.repeat(np.arange(trials), per_trial)
    effect = rng.normal(scale=1.0, size=trials)[trial]  # every trial shifted as a whole; no variance within a trial
    b = np.zeros(trials * per_trial)
    flat = stats.paired_bootstrap(effect, b, seed=1)
    nested = stats.paired_bootstrap(effect, b, clusters=trial, seed=1)
    assert nested.clusters == trials and flat.clusters == 1
    assert (nested.high - nested.low) > 3 * (flat.high - flat.low)
    assert nested.diff == flat.diff


def test_cluster_counts_keep_every_cluster_size():
    clusters = np.array([0, 0, 0, 1, 2, 2])
    counts = stats.resample_counts(6, clusters=clusters, n_boot=50, seed=0)
    drawn_units = counts.sum(1)
    assert counts.shape == (50, 6) and np.all(np.isin(drawn_units, [3, 4, 5, 6, 7, 8, 9]))
    # one cluster: the two-stage bootstrap is the plain one (n units drawn every time)
    assert np.all(stats.resample_counts(5, clusters=np.zeros(5), n_boot=20).sum(1) == 5)


def test_mean_interval_of_one_method():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    iv = stats.bootstrap_mean_interval(x, weights=[1, 1, 1, 5])
    assert iv.diff == pytest.approx(26 / 8)  # (1 + 2 + 3 + 5·4) / 8
    assert 1.0 <= iv.low <= iv.diff <= iv.high <= 4.0


@pytest.mark.parametrize("low, high, direction, expected", [
    (0.5, 2.0, "greater", "yes"), (-2.0, -0.5, "greater", "no"), (-0.5, 2.0, "greater", "tie"),
    (-2.0, -0.5, "less", "yes"), (0.5, 2.0, "less", "no"), (0.0, 2.0, "greater", "tie")])
def test_verdict_rule(low, high, direction, expected):
    assert stats.verdict(stats.Interval((low + high) / 2, low, high, 10), direction) == expected


def test_verdict_against_a_threshold_and_closeness():
    iv = stats.Interval(1.5, 1.2, 1.8, 10)
    assert stats.verdict(iv, "greater", threshold=1.0) == "yes"
    assert stats.verdict(iv, "greater", threshold=1.5) == "tie"
    assert stats.verdict_within(iv, 2.0) == "yes" and stats.verdict_within(iv, 1.0) == "no"
    assert stats.verdict_within(iv, 1.5) == "tie"
    assert stats.combine(["yes", "yes"]) == "yes" and stats.combine(["yes", "tie"]) == "tie"
    assert stats.combine(["tie", "no", "yes"]) == "no"


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
        stats.verdict(stats.Interval(0, 0, 0, 1), "above")
