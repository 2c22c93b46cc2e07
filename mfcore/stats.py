"""Paired comparisons with bootstrap confidence intervals, and the three-way verdict: the one statistical rule of the
book's claims.

Two methods measured on the SAME units (test frames, test samples) are compared by the mean of their per-unit
differences, ``diff = Σ w (a − b) / Σ w`` (plain mean without weights; with weights a ratio estimator, e.g. a pooled
JDR: detected / counted joints), and a percentile bootstrap interval of it (Efron and Tibshirani, *An Introduction to
the Bootstrap*, 1993, ch. 13): the rows are resampled ``n_boot`` times and the interval spans the central ``level``
share of the resampled differences. Three kinds of structure widen the interval as they should:

* ``clusters`` (e.g. the motion clip of each test frame): two stages, clusters drawn with replacement, then units
  within each drawn cluster, so that the spread between clips counts;
* ``units`` (e.g. one test frame seen by two camera draws, or a block of consecutive frames): rows that share a label
  are drawn together, as one unit;
* ``crossed`` factors (e.g. the training seed, the camera draw: every frame is measured under every seed): each factor's
  levels are drawn with replacement on their own and a row counts as often as its unit times its levels were drawn
  (the pigeonhole bootstrap for crossed designs, Owen, *Ann. Appl. Stat.* 1, 2007), so that the spread between seeds
  counts.

The verdict (:func:`verdict`) reads an interval against zero AND against a margin on the claimed side, stated before
the numbers (a share of the paper's effect): "yes" when the whole interval lies on the claimed side of zero, "no" when
it lies on the other side or wholly short of the margin (the paper's effect is not reproduced), "inconclusive" when it
holds both zero and the margin (too few samples: :func:`n_to_decide` says how many would decide it).

* :func:`resample_counts` — how often each row is drawn in each resample, (n_boot, n): every statistic that is a
  ratio of weighted sums is then one matrix product (what :mod:`mfcore.claims` uses for its orderings).
* :func:`paired_bootstrap` — ``Interval`` of ``mean(a − b)`` over paired units.
* :func:`bootstrap_mean_interval` — ``Interval`` of one method's mean (Fig. 7's bands).
* :func:`simultaneous_intervals` — intervals of several statistics from the same resamples that hold together at
  ``level`` (a max-|t| band): the correction for reading a claim off the best of several groups.
* :func:`verdict`, :func:`verdict_within`, :func:`combine`, :func:`n_to_decide` — the three-way rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000  # resamples of every interval of the book
LEVEL = 0.95  # two-sided confidence level
DIRECTIONS = ("greater", "less")
VERDICTS = ("yes", "no", "inconclusive")
_CHUNK = 256  # resamples drawn at once (bounds the memory of the (chunk, n) count matrix)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval: ``diff`` (the estimate on all units), ``low`` and
    ``high`` (the interval at ``level``), ``n`` (rows), ``clusters`` (distinct top-level clusters; 1 without)."""
    diff: float
    low: float
    high: float
    n: int
    clusters: int = 1
    level: float = LEVEL

    def __str__(self) -> str:
        return f"{self.diff:.4g} [{self.low:.4g}, {self.high:.4g}] ({100 * self.level:g} % CI, n = {self.n})"

    def scaled(self, factor: float) -> "Interval":
        """The same interval in other units (e.g. JDR fractions × 100 = points); a negative factor swaps the ends."""
        lo, hi = sorted((self.low * factor, self.high * factor))
        return Interval(self.diff * factor, lo, hi, self.n, self.clusters, self.level)


def _as_1d(name: str, values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one value per unit, a 1-D array; got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty: a bootstrap needs at least one unit")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has {int((~np.isfinite(x)).sum())} non-finite value(s) (NaN or inf); drop those "
                         f"units from both methods first")
    return x


def _check_args(n_boot: int, level: float) -> None:
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not isinstance(level, (float, int)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level must be a confidence level strictly between 0 and 1 (e.g. 0.95), got {level!r}")


def _codes(name: str, labels, n: int) -> np.ndarray:
    c = np.asarray(labels)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"{name} must name the {name[:-1] if name.endswith('s') else name} of each of the {n} units, "
                         f"a 1-D array of {n}; got shape {c.shape}")
    return np.unique(c, return_inverse=True)[1].reshape(-1)


def _nested_counts(rng, n: int, code: np.ndarray | None, n_boot: int) -> np.ndarray:
    """(n_boot, n) draws of n units: uniformly with replacement, or two stages over the clusters ``code`` (n,)."""
    out = np.zeros((n_boot, n), dtype=np.float64)
    if code is None:
        for start in range(0, n_boot, _CHUNK):
            b = min(_CHUNK, n_boot - start)
            idx = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
            out[start:start + b] = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        return out
    order = np.argsort(code, kind="stable")  # units sorted by cluster: cluster c is order[first[c]:first[c] + size[c]]
    size = np.bincount(code)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    n_clusters, widest = len(size), int(size.max())
    slot = np.arange(widest)
    for start in range(0, n_boot, _CHUNK):
        b = min(_CHUNK, n_boot - start)
        drawn = rng.integers(0, n_clusters, size=(b, n_clusters))  # stage 1: clusters
        u = rng.random((b, n_clusters, widest))  # stage 2: units within each drawn cluster
        pos = first[drawn][..., None] + np.floor(u * size[drawn][..., None]).astype(np.int64)
        valid = slot[None, None, :] < size[drawn][..., None]
        unit = order[np.minimum(pos, n - 1)] + n * np.arange(b)[:, None, None]
        out[start:start + b] = np.bincount(unit[valid], minlength=b * n).reshape(b, n)
    return out


def _draws(n: int, clusters, units, crossed, n_boot: int, seed: int):
    """The resamples of :func:`resample_counts` in factored form: (unit of each row (n,), unit counts (n_boot, U),
    joint level of each row over the crossed factors (n,) or None, joint level counts (n_boot, L) or None)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive number of units, got {n!r}")
    _check_args(n_boot, 0.5)
    rng = np.random.default_rng(seed)
    if units is None:
        unit_of = np.arange(n)
        code = None if clusters is None else _codes("clusters", clusters, n)
    else:
        unit_of = _codes("units", units, n)
        first_row = np.unique(unit_of, return_index=True)[1]  # one row per unit, in unit order
        code = None
        if clusters is not None:
            row_cluster = _codes("clusters", clusters, n)
            if (row_cluster != row_cluster[first_row][unit_of]).any():
                raise ValueError("clusters must be the same for every row of a unit (a unit lies in one cluster)")
            code = np.unique(row_cluster[first_row], return_inverse=True)[1].reshape(-1)
    unit_counts = _nested_counts(rng, int(unit_of.max()) + 1, code, n_boot)
    joint, joint_counts = None, None
    for factor in crossed or ():
        level = _codes("crossed factors", factor, n)
        n_levels = int(level.max()) + 1
        draws = rng.integers(0, n_levels, size=(n_boot, n_levels)) + n_levels * np.arange(n_boot)[:, None]
        counts = np.bincount(draws.ravel(), minlength=n_boot * n_levels).reshape(n_boot, n_levels).astype(np.float64)
        if joint is None:
            joint, joint_counts = level, counts
        else:  # the pair of levels is one joint level; its count is the product of the two
            joint = joint * n_levels + level
            joint_counts = (joint_counts[:, :, None] * counts[:, None, :]).reshape(n_boot, -1)
    return unit_of, unit_counts, joint, joint_counts


def resample_counts(n: int, *, clusters=None, units=None, crossed=None, n_boot: int = N_BOOT,
                    seed: int = 0) -> np.ndarray:
    """How often each of ``n`` rows is drawn in each of ``n_boot`` bootstrap resamples, (n_boot, n) float64.

    ``units`` ((n,), any labels; default: every row its own unit): rows drawn together. Without ``clusters`` the units
    are drawn uniformly with replacement; with ``clusters`` ((n,) labels, one cluster per unit) in two stages, as many
    clusters as there are drawn with replacement, then in each drawn cluster as many units as it has, drawn with
    replacement from its own. ``crossed`` (a list of (n,) label arrays): factors crossed with the units (every unit
    measured at every level, e.g. the seeds of a trained model): each factor's levels are drawn with replacement,
    and a row's count is its unit's count times its levels' counts. Deterministic in ``seed``. A statistic
    Σ w x / Σ w of the resample is then ``(counts @ (w x)) / (counts @ w)``."""
    unit_of, unit_counts, joint, joint_counts = _draws(n, clusters, units, crossed, n_boot, seed)
    out = unit_counts[:, unit_of]
    if joint is not None:
        out *= joint_counts[:, joint]
    return out


def _resampled_sums(values: np.ndarray, draws) -> np.ndarray:
    """Σ count · values over the rows of every resample, (n_boot, k) for values (n, k), without forming the
    (n_boot, n) counts: the rows' sums per (unit, joint level) times the unit and level counts."""
    unit_of, unit_counts, joint, joint_counts = draws
    n_units = unit_counts.shape[1]
    if joint is None:
        sums = np.zeros((n_units, values.shape[1]))
        np.add.at(sums, unit_of, values)
        return unit_counts @ sums
    n_joint = joint_counts.shape[1]
    sums = np.zeros((n_units, n_joint, values.shape[1]))
    np.add.at(sums, (unit_of, joint), values)
    return np.einsum("bu,ujk,bj->bk", unit_counts, sums, joint_counts, optimize=True)


def interval_from(estimate: float, resampled: np.ndarray, n: int, clusters: int = 1, level: float = LEVEL) -> Interval:
    """The percentile ``Interval`` of bootstrap statistics ``resampled`` (n_boot,) around ``estimate``."""
    _check_args(1, level)
    resampled = np.asarray(resampled, dtype=np.float64)
    resampled = resampled[np.isfinite(resampled)]  # a resample with zero total weight has no value
    if resampled.size == 0:
        raise ValueError("no finite bootstrap statistic: every resample had zero total weight")
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(estimate), float(low), float(high), int(n), int(clusters), float(level))


def simultaneous_intervals(estimates, resampled, n: int, clusters: int = 1, level: float = LEVEL) -> list[Interval]:
    """Intervals of G statistics that hold together at ``level`` (a max-|t| bootstrap band): ``estimates`` (G,) on all
    units, ``resampled`` (n_boot, G) from the SAME resamples. Each statistic's spread s_g is its resamples' standard
    deviation; c is the ``level`` quantile of max_g |resampled_g − estimate_g| / s_g, and interval g is
    estimate_g ± c·s_g. Wider than G separate intervals: the price of reading a claim off several groups at once (the
    joint groups of Fig. 7) without picking the one that happens to agree."""
    _check_args(1, level)
    est = np.asarray(estimates, dtype=np.float64).reshape(-1)
    boot = np.asarray(resampled, dtype=np.float64)
    if boot.ndim != 2 or boot.shape[1] != est.shape[0]:
        raise ValueError(f"resampled must be (n_boot, {est.shape[0]}), one column per estimate; got {boot.shape}")
    boot = boot[np.isfinite(boot).all(1)]
    if boot.shape[0] < 2:
        raise ValueError("a simultaneous band needs at least two finite resamples")
    spread = boot.std(0, ddof=1)
    safe = np.where(spread > 0, spread, 1.0)
    t_max = (np.abs(boot - est) / safe).max(1)
    c = float(np.quantile(t_max, level))
    return [Interval(float(e), float(e - c * s), float(e + c * s), int(n), int(clusters), float(level))
            for e, s in zip(est, spread)]


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _as_1d("weights", weights)
    if w.shape[0] != n:
        raise ValueError(f"weights must have one value per unit ({n}), got {w.shape[0]}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w


def _n_clusters(clusters, n: int) -> int:
    return 1 if clusters is None else int(_codes("clusters", clusters, n).max()) + 1


def bootstrap_mean_interval(values, *, weights=None, clusters=None, units=None, crossed=None, n_boot: int = N_BOOT,
                            seed: int = 0, level: float = LEVEL) -> Interval:
    """The mean of one method's per-row ``values`` (Σ w x / Σ w with ``weights``) and its percentile bootstrap
    interval (``clusters``, ``units``, ``crossed``: :func:`resample_counts`). ``Interval.diff`` holds the mean."""
    x = _as_1d("values", values)
    _check_args(n_boot, level)
    w = _weights(weights, x.shape[0])
    draws = _draws(x.shape[0], clusters, units, crossed, n_boot, seed)
    sums = _resampled_sums(np.stack([w * x, w], 1), draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = sums[:, 0] / sums[:, 1]
    return interval_from(float((w * x).sum() / w.sum()), boot, x.shape[0], _n_clusters(clusters, x.shape[0]), level)


def paired_bootstrap(a, b, *, weights=None, clusters=None, units=None, crossed=None, n_boot: int = N_BOOT,
                     seed: int = 0, level: float = LEVEL) -> Interval:
    """Paired comparison of two methods on the same units: ``diff`` = mean(a − b) (Σ w (a − b) / Σ w with
    ``weights``, e.g. the joints counted in each frame) and its percentile bootstrap interval at ``level``.

    a, b (n,): per-row values of the two methods, row i of ``a`` the same frame or sample as row i of ``b``;
    ``clusters`` (n,): the clip (or trial) of each row, for a two-stage bootstrap; ``units`` (n,): rows drawn
    together; ``crossed``: factors such as the seed (:func:`resample_counts`); deterministic in ``seed``."""
    a, b = _as_1d("a", a), _as_1d("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a paired comparison needs the same units for both methods: a has {a.shape[0]} units, "
                         f"b has {b.shape[0]}")
    return bootstrap_mean_interval(a - b, weights=weights, clusters=clusters, units=units, crossed=crossed,
                                   n_boot=n_boot, seed=seed, level=level)


# ----------------------------------------------------------------------------------------------------------------------
# The three-way verdict

def _check_direction(direction: str) -> float:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return 1.0 if direction == "greater" else -1.0


def _check_margin(margin: float, name: str = "margin") -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.floating)) or not math.isfinite(margin) \
            or margin < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0 (a distance toward the claimed side), got {margin!r}")
    return float(margin)


def _toward_claim(interval: Interval, direction: str) -> tuple[float, float]:
    """The interval's ends on the claim's axis (positive = the claimed side), low first."""
    sign = _check_direction(direction)
    return tuple(sorted((sign * interval.low, sign * interval.high)))


def verdict(interval: Interval, direction: str, margin: float = 0.0) -> str:
    """Whether a claimed difference holds: ``direction`` "greater" (the claim: diff > 0) or "less" (diff < 0);
    ``margin`` ≥ 0, how far toward the claimed side the paper's effect reaches at least (e.g. half of it), stated
    before the results it decides. "yes" when the whole interval lies on the claimed side of 0 (an interval that
    touches 0 does not); "no" when it lies wholly on the other side of 0, or wholly short of the margin (the data
    exclude an effect of that size: not reproduced); "inconclusive" when it holds both 0 and the margin (too few
    samples)."""
    margin = _check_margin(margin)
    low, high = _toward_claim(interval, direction)
    if low > 0:
        return "yes"
    return "no" if high < 0 or high < margin else "inconclusive"


def verdict_within(interval: Interval, tolerance: float) -> str:
    """Whether a claimed closeness holds (|diff| ≤ ``tolerance``): "yes" when the whole interval lies within
    ±tolerance, "no" when it lies wholly outside (above +tolerance or below −tolerance), "inconclusive" when it holds
    both a value inside and one outside."""
    if not _check_margin(tolerance, "tolerance") > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")
    if -tolerance <= interval.low and interval.high <= tolerance:
        return "yes"
    return "no" if interval.low > tolerance or interval.high < -tolerance else "inconclusive"


def combine(verdicts) -> str:
    """The verdict of a claim made of several parts (an ordering A > B > C, a claim at every K): "yes" when every
    part is "yes", "no" when any is "no", else "inconclusive"."""
    verdicts = list(verdicts)
    if not verdicts or any(v not in VERDICTS for v in verdicts):
        raise ValueError(f"combine needs verdicts among {VERDICTS}, got {verdicts!r}")
    return "no" if "no" in verdicts else "yes" if all(v == "yes" for v in verdicts) else "inconclusive"


def n_to_decide(interval: Interval, direction: str, margin: float = 0.0, *, within: bool = False) -> float:
    """How many units would decide an inconclusive interval, if its centre stayed where it is and its half-width
    shrank as 1/√n (the n of the same design, scaled): the n at which it would clear 0 on the claimed side or fall
    short of the margin, whichever comes first (``within``: clear ±``margin`` from inside or from outside). The
    interval's own n where it is decided already; inf where no n decides it (a centre exactly on the boundary)."""
    if within:
        decided = verdict_within(interval, margin) != "inconclusive"
        centre, half = abs(interval.low + interval.high) / 2, (interval.high - interval.low) / 2
        room = abs(margin - centre)
    else:
        decided = verdict(interval, direction, margin) != "inconclusive"
        low, high = _toward_claim(interval, direction)
        centre, half = (low + high) / 2, (high - low) / 2
        room = max(centre, margin - centre, 0.0)
    if decided:
        return float(interval.n)
    if room <= 0:
        return math.inf
    return float(math.ceil(interval.n * (half / room) ** 2))
