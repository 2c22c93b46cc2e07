"""Paired comparisons with bootstrap confidence intervals: the one statistical rule of the book's claims.

Two methods measured on the SAME units (test frames, test samples) are compared by the mean of their per-unit
differences, ``diff = Σ w (a − b) / Σ w`` (plain mean without weights; with weights a ratio estimator, e.g. a pooled
JDR: detected / counted joints), and a percentile bootstrap interval of it (Efron and Tibshirani, *An Introduction to
the Bootstrap*, 1993, ch. 13): the units are resampled with replacement ``n_boot`` times and the interval spans the
central ``level`` share of the resampled differences. Where units come in clusters (the trials of a target rig, the
seeds of a training run), the bootstrap has two stages: clusters are drawn with replacement, then units within each
drawn cluster, so that the spread between trials or seeds widens the interval as it should.

* :func:`resample_counts` — how often each unit is drawn in each resample, (n_boot, n): every statistic that is a
  ratio of weighted sums is then one matrix product (what :mod:`mfcore.claims` uses for its orderings).
* :func:`paired_bootstrap` — ``Interval`` of ``mean(a − b)`` over paired units.
* :func:`bootstrap_mean_interval` — ``Interval`` of one method's mean (Fig. 7's bands).
* :func:`verdict` — ``"yes"``/``"no"``/``"tie"``: the interval on the claimed side of a threshold, on the other
  side, or covering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000  # resamples of every interval of the book
LEVEL = 0.95  # two-sided confidence level
DIRECTIONS = ("greater", "less")
VERDICTS = ("yes", "no", "tie")
_CHUNK = 256  # resamples drawn at once (bounds the memory of the (chunk, n) count matrix)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval: ``diff`` (the estimate on all units), ``low`` and
    ``high`` (the interval at ``level``), ``n`` (units), ``clusters`` (distinct clusters; 1 without clusters)."""
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
        raise ValueError(f"{name} has {int((~np.isfinite(x)).sum())} non-finite value(s) (NaN or inf); drop those units "
                         f"from both methods first")
    return x


def _check_args(n_boot: int, level: float) -> None:
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not isinstance(level, (float, int)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level must be a confidence level strictly between 0 and 1 (e.g. 0.95), got {level!r}")


def _cluster_codes(clusters, n: int) -> np.ndarray:
    c = np.asarray(clusters)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"clusters must name the cluster of each of the {n} units, a 1-D array of {n}; "
                         f"got shape {c.shape}")
    return np.unique(c, return_inverse=True)[1].reshape(-1)


def resample_counts(n: int, *, clusters=None, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` units is drawn in each of ``n_boot`` bootstrap resamples, (n_boot, n) float64.

    Without ``clusters``: n units drawn uniformly with replacement. With ``clusters`` ((n,), any labels): two stages,
    as many clusters as there are drawn with replacement, then in each drawn cluster as many units as it has, drawn
    with replacement from its own. Deterministic in ``seed``. A statistic Σ w x / Σ w of the resample is then
    ``(counts @ (w x)) / (counts @ w)``."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive number of units, got {n!r}")
    _check_args(n_boot, 0.5)
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, n), dtype=np.float64)
    if clusters is None:
        for start in range(0, n_boot, _CHUNK):
            b = min(_CHUNK, n_boot - start)
            idx = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
            out[start:start + b] = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        return out
    code = _cluster_codes(clusters, n)
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


def interval_from(estimate: float, resampled: np.ndarray, n: int, clusters: int = 1, level: float = LEVEL) -> Interval:
    """The percentile ``Interval`` of bootstrap statistics ``resampled`` (n_boot,) around ``estimate``."""
    _check_args(1, level)
    resampled = np.asarray(resampled, dtype=np.float64)
    resampled = resampled[np.isfinite(resampled)]  # a resample with zero total weight has no value
    if resampled.size == 0:
        raise ValueError("no finite bootstrap statistic: every resample had zero total weight")
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(estimate), float(low), float(high), int(n), int(clusters), float(level))


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
    return 1 if clusters is None else int(_cluster_codes(clusters, n).max()) + 1


def bootstrap_mean_interval(values, *, weights=None, clusters=None, n_boot: int = N_BOOT, seed: int = 0,
                            level: float = LEVEL) -> Interval:
    """The mean of one method's per-unit ``values`` (Σ w x / Σ w with ``weights``) and its percentile bootstrap
    interval over units (and ``clusters``, two-stage; :func:`resample_counts`). ``Interval.diff`` holds the mean."""
    x = _as_1d("values", values)
    _check_args(n_boot, level)
    w = _weights(weights, x.shape[0])
    counts = resample_counts(x.shape[0], clusters=clusters, n_boot=n_boot, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ (w * x)) / (counts @ w)
    return interval_from(float((w * x).sum() / w.sum()), boot, x.shape[0], _n_clusters(clusters, x.shape[0]), level)


def paired_bootstrap(a, b, *, weights=None, clusters=None, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = LEVEL) -> Interval:
    """Paired comparison of two methods on the same units: ``diff`` = mean(a − b) (Σ w (a − b) / Σ w with
    ``weights``, e.g. the joints counted in each frame) and its percentile bootstrap interval at ``level``.

    a, b (n,): per-unit values of the two methods, unit i of ``a`` the same frame or sample as unit i of ``b``;
    ``clusters`` (n,): the trial or seed of each unit, for a two-stage bootstrap (clusters, then units within them);
    deterministic in ``seed``."""
    a, b = _as_1d("a", a), _as_1d("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a paired comparison needs the same units for both methods: a has {a.shape[0]} units, "
                         f"b has {b.shape[0]}")
    return bootstrap_mean_interval(a - b, weights=weights, clusters=clusters, n_boot=n_boot, seed=seed, level=level)


def verdict(interval: Interval, direction: str, threshold: float = 0.0) -> str:
    """Whether a claimed difference holds: ``direction`` "greater" (the claim: diff > ``threshold``) or "less"
    (diff < ``threshold``). "yes" when the whole interval lies on the claimed side, "no" when it lies wholly on the
    other side, "tie" when it covers the threshold (an interval that touches it counts as covering)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    sign = 1.0 if direction == "greater" else -1.0
    low, high = sorted((sign * (interval.low - threshold), sign * (interval.high - threshold)))
    return "yes" if low > 0 else "no" if high < 0 else "tie"


def verdict_within(interval: Interval, margin: float) -> str:
    """Whether a claimed closeness holds (|diff| ≤ ``margin``): "yes" when the whole interval lies within ±margin,
    "no" when it lies wholly outside, "tie" otherwise."""
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    if -margin <= interval.low and interval.high <= margin:
        return "yes"
    return "no" if interval.low > margin or interval.high < -margin else "tie"


def combine(verdicts) -> str:
    """The verdict of a claim made of several (an ordering A > B > C): "yes" when every part is "yes", "no" when any
    is "no", else "tie"."""
    verdicts = list(verdicts)
    if not verdicts or any(v not in VERDICTS for v in verdicts):
        raise ValueError(f"combine needs verdicts among {VERDICTS}, got {verdicts!r}")
    return "no" if "no" in verdicts else "yes" if all(v == "yes" for v in verdicts) else "tie"
