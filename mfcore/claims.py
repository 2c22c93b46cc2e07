"""The papers' numbers and the tests of their claims, in one place: chapter 5's comparison with the papers and the
reproduction scorecard (chapter 7) both read them.

:data:`PAPER_MPJPE_MM` holds the papers' 3D errors that chapter 5 sets beside its own.

The reproduction scorecard: each paper claim checked against the per-frame tables the chapters computed, never typed.
``scorecard(results_dir)`` reads ``results/<profile>/<chapter>/*.csv`` and returns one row per claim with the columns
of the results contract: ``claim_id, paper, claim, paper_value, our_value, holds, ci_low, ci_high, n`` (plus
``unit`` of the interval and ``evidence``: the table the numbers come from).

The one rule of the book (:mod:`mfcore.stats`): every comparison of two methods is paired on the SAME test frames
(samples), and decided by the 95 % bootstrap interval of the mean difference over frames (two-stage over trials or
seeds where there are several): ``holds`` is "yes" when the interval lies on the claimed side, "no" when it lies on the
other side, "tie" when it covers zero (or the claim's threshold), "not run" when the chapter's table does not exist.
An ordering A > B > C is "yes" when every adjacent pair is "yes", "no" when any is "no", else "tie", and reports the
least certain pair's interval. JDR differences are in JDR points (pooled over frames: Σ detected / Σ counted joints),
3D differences in mm. A claim's test is written next to it, with its threshold; no test was tuned to make it hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import stats
from .stats import Interval

MF, CV, TK = "MetaFuse (CVPR 2020)", "Cross View Fusion (ICCV 2019)", "Tekin et al. (ICCV 2017)"
CLOSE_JDR_POINTS = 1.0  # "close to": the whole interval within ±1 JDR percentage point
FAR_JDR_POINTS = 1.0  # "far below": the whole interval more than one JDR percentage point lower
HEADLINE_THRESHOLD = "half_head"  # the book's JDR (MetaFuse Sec. 5.1)


PAPER_MPJPE_MM: tuple[tuple[str, str, int, float, str], ...] = (  # (rig, method, paper's K, paper MPJPE mm, source)
    ("h36m", "MetaFuse", 50, 32.7, "MetaFuse Table 2"), ("h36m", "MetaFuse", 100, 31.3, "MetaFuse Table 2"),
    ("h36m", "MetaFuse", 500, 29.3, "MetaFuse Table 2"),
    ("totalcapture", "NoFusion", 0, 41.2, "MetaFuse Table 3 (mean)"),
    ("totalcapture", "MetaFuse", 500, 32.4, "MetaFuse Table 3 (mean)"),
    ("dome_heldout", "NoFusion", 0, 40.47, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "MetaFuse", 50, 37.27, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "MetaFuse", 200, 31.78, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "NaiveFuse", 50, 43.39, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "NaiveFuse", 200, 35.60, "MetaFuse Sec. 5.4"))


def paper_mpjpe_mm(rig: str, method: str, k: int = 0) -> float:
    """The paper's MPJPE (mm) of a setting of :data:`PAPER_MPJPE_MM` (``k``: the paper's K; 0 for NoFusion)."""
    for r, m, pk, value, _ in PAPER_MPJPE_MM:
        if (r, m, pk) == (rig, method, k):
            return value
    raise KeyError(f"no paper MPJPE for rig={rig!r} method={method!r} K={k!r}; known: "
                   f"{[(r, m, pk) for r, m, pk, _, _ in PAPER_MPJPE_MM]}")


class Missing(Exception):
    """A table or a row a claim needs was not produced (the chapter did not run, or lacks that measurement)."""


@dataclass(frozen=True)
class Result:
    """What a claim's test found: our numbers as text, the verdict ("yes"/"no"/"tie"), the interval that decided it
    (None for a claim that is not a comparison of methods on frames) and the interval's unit."""
    our_value: str
    holds: str
    interval: Interval | None = None
    unit: str = ""


@dataclass(frozen=True)
class Claim:
    claim_id: str
    paper: str
    claim: str  # states its comparison: which difference, which metric, which frames
    paper_value: str
    evidence: str  # chapter/table.csv
    check: Callable[..., Result]  # table → Result


# ----------------------------------------------------------------------------------------------------------------------
# Units of the paired comparisons

def headline(df: pd.DataFrame) -> pd.DataFrame:
    """The headline rows of a table: ``split == "test"`` where the table has a split column (the stress split is
    reported apart and never enters a claim), every row otherwise."""
    return df[df.split == "test"] if "split" in df.columns else df


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _iv_text(iv: Interval, unit: str) -> str:
    return f"{iv.diff:+.2f} {unit} [{iv.low:+.2f}, {iv.high:+.2f}], n = {iv.n}" + (
        f" in {iv.clusters} trials/seeds" if iv.clusters > 1 else "")


def _k_value(k) -> int:
    return 0 if pd.isna(k) else int(k)


def _jdr_units(df: pd.DataFrame, rig: str, method: str, k=None, joint: str = "mean") -> pd.DataFrame:
    """Per-frame detections of one setting, indexed by (trial, frame): columns detected, counted."""
    rows = df[(df.rig == rig) & (df.method == method) & (df.joint == joint)]
    if "threshold" in rows.columns:
        rows = rows[rows.threshold == HEADLINE_THRESHOLD]
    if k is not None:
        rows = rows[rows.k.map(_k_value) == k]
    if rows.empty:
        raise Missing(f"no per-frame JDR rows for rig={rig} method={method} k={k} joint={joint}")
    trial = rows.trial if "trial" in rows.columns else 0
    return rows.assign(trial=trial).set_index(["trial", "frame"])[["detected", "counted"]].astype(float)


def paired_jdr(df, rig, a: tuple, b: tuple, joint="mean", seed=0) -> tuple[Interval, float, float]:
    """Paired interval of JDR(a) − JDR(b) in points on the frames both have, with both pooled JDRs (fractions).
    a, b: (method, k) with k None for any."""
    ua, ub = _jdr_units(df, rig, *a, joint), _jdr_units(df, rig, *b, joint)
    both = ua.add_suffix("_a").join(ub.add_suffix("_b"), how="inner")
    both = both[both.counted_a > 0]
    if both.empty:
        raise Missing(f"no common frame of {a} and {b} on rig={rig}")
    w = both.counted_a.to_numpy()
    trials = both.index.get_level_values("trial").to_numpy()
    iv = stats.paired_bootstrap(both.detected_a / w, both.detected_b / w, weights=w,
                                clusters=trials if len(set(trials)) > 1 else None, seed=seed)
    return iv.scaled(100.0), both.detected_a.sum() / w.sum(), both.detected_b.sum() / w.sum()


def _shots(df: pd.DataFrame, method: str = "MetaFuse") -> list[int]:
    ks = sorted(int(k) for k in df[df.method == method].k.dropna().unique())
    if not ks:
        raise Missing(f"no K for {method}")
    return ks


def _target_rig(df: pd.DataFrame) -> str:
    rigs = [r for r in df.rig.unique() if str(r).startswith("h36m")]
    if not rigs:
        raise Missing("no H36M-like rig in the table")
    return rigs[0]


def _ordering(parts: list[tuple[Interval, str, float]], unit: str, text: str) -> Result:
    """A claim made of pairs (interval, claimed direction, threshold): "yes" when every pair is "yes", "no" when any
    is "no", else "tie"; reports the least certain pair's interval (the one whose claimed-side end lies closest to,
    or furthest across, its threshold)."""
    verdicts = [stats.verdict(iv, d, t) for iv, d, t in parts]
    iv = min(parts, key=lambda p: p[0].low - p[2] if p[1] == "greater" else p[2] - p[0].high)[0]
    return Result(f"{text}; least certain pair {_iv_text(iv, unit)}", stats.combine(verdicts), iv, unit)


# ----------------------------------------------------------------------------------------------------------------------
# Fig. 7 (chapter 4, jdr_frames.csv)

def _mf_ordering(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[0]
    ma, m, a = paired_jdr(df, rig, ("MetaFuse", k), ("AffineFuse", k))
    an, _, n = paired_jdr(df, rig, ("AffineFuse", k), ("NaiveFuse", k))
    return _ordering([(ma, "greater", 0.0), (an, "greater", 0.0)], "points",
                     f"K={k}: MetaFuse {_pct(m)}, AffineFuse {_pct(a)}, NaiveFuse {_pct(n)}")


def _naive_below_nofusion(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df, "NaiveFuse")[0]
    iv, n, base = paired_jdr(df, rig, ("NaiveFuse", k), ("NoFusion", None))
    return Result(f"K={k}: NaiveFuse {_pct(n)} vs NoFusion {_pct(base)}; {_iv_text(iv, 'points')}",
                  stats.verdict(iv, "less"), iv, "points")


def _meta_above_nofusion(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[0]
    iv, m, base = paired_jdr(df, rig, ("MetaFuse", k), ("NoFusion", None))
    return Result(f"K={k}: MetaFuse {_pct(m)} vs NoFusion {_pct(base)}; {_iv_text(iv, 'points')}",
                  stats.verdict(iv, "greater"), iv, "points")


ARM_GROUPS, LEG_GROUPS = ("wrist", "elbow"), ("knee", "ankle")


def _gains_at_wrists_elbows(df, rig=None, seed=0):
    """Gain of MetaFuse^K over NoFusion per joint group (points); the claim: the best arm group's gain exceeds the best
    leg group's, and is positive. One bootstrap over the frames draws every group's gain from the same resample."""
    rig, k = rig or _target_rig(df), _shots(df)[0]
    groups = ARM_GROUPS + LEG_GROUPS
    units = []
    for g in groups:
        ua, ub = _jdr_units(df, rig, "MetaFuse", k, g), _jdr_units(df, rig, "NoFusion", None, g)
        both = ua.add_suffix("_a").join(ub.add_suffix("_b"), how="inner")
        units.append(((both.detected_a - both.detected_b).rename(f"d_{g}"), both.counted_a.rename(f"c_{g}")))
    table = pd.concat([x for pair in units for x in pair], axis=1, join="inner")
    trials = table.index.get_level_values("trial").to_numpy()
    counts = stats.resample_counts(len(table), clusters=trials if len(set(trials)) > 1 else None, seed=seed)
    d = np.stack([table[f"d_{g}"].to_numpy() for g in groups])  # (G, n)
    c = np.stack([table[f"c_{g}"].to_numpy() for g in groups])
    if (c.sum(1) == 0).any():
        raise Missing(f"a joint group has no counted joint on rig={rig}")
    gains = 100 * d.sum(1) / c.sum(1)  # (G,) points
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = 100 * (counts @ d.T) / (counts @ c.T)  # (n_boot, G)
    arm, leg = slice(0, len(ARM_GROUPS)), slice(len(ARM_GROUPS), len(groups))
    margin = stats.interval_from(gains[arm].max() - gains[leg].max(), boot[:, arm].max(1) - boot[:, leg].max(1),
                                 len(table), len(set(trials)))
    best_arm = stats.interval_from(gains[arm].max(), boot[:, arm].max(1), len(table), len(set(trials)))
    text = f"K={k} gains (points): " + ", ".join(f"{g} {v:+.1f}" for g, v in zip(groups, gains))
    return _ordering([(margin, "greater", 0.0), (best_arm, "greater", 0.0)], "points",
                     text + "; best arm − best leg group, and best arm group's gain")


def _meta500_close_to_full(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[-1]
    iv, m, full = paired_jdr(df, rig, ("MetaFuse", k), ("NaiveFuseFull", None))
    return Result(f"K={k}: MetaFuse {_pct(m)} vs NaiveFuse^full {_pct(full)}; {_iv_text(iv, 'points')}",
                  stats.verdict_within(iv, CLOSE_JDR_POINTS), iv, "points")


def _jdr_rises_with_k(df, rig=None):
    rig = rig or _target_rig(df)
    parts, texts = [], []
    for method in ("NaiveFuse", "AffineFuse", "MetaFuse"):
        ks = _shots(df, method)
        iv, last, first = paired_jdr(df, rig, (method, ks[-1]), (method, ks[0]))
        parts.append((iv, "greater", 0.0))
        texts.append(f"{method} {_pct(first)} → {_pct(last)}")
    return _ordering(parts, "points", f"K={_shots(df)[0]} → {_shots(df)[-1]}: " + ", ".join(texts))


def _naive_meta_far_below(df, rig=None):
    rig = rig or _target_rig(df)
    parts, texts = [], []
    for k in _shots(df, "NaiveFuseMeta")[:2]:
        iv, m, nm = paired_jdr(df, rig, ("MetaFuse", k), ("NaiveFuseMeta", k))
        parts.append((iv, "greater", FAR_JDR_POINTS))
        texts.append(f"K={k}: {_pct(nm)} vs MetaFuse {_pct(m)}")
    return _ordering(parts, "points", "; ".join(texts))


# ----------------------------------------------------------------------------------------------------------------------
# 3D (chapter 5, mpjpe_frames.csv; chapter 6, ablation_samples.csv)

SAMPLED = "not a sequence"  # the smoothing value of sampled test frames (no temporal filter applies)


def _mm_units(df, rig_prefix, method, k=None, estimator="rpsm", smoothing=SAMPLED) -> pd.Series:
    """Per-frame MPJPE (mm) of one setting, indexed by (trial, frame); ``k`` is the paper's K (the ``paper_k``
    column where a profile's own K values stand in for the paper's by rank)."""
    rows = df[df.rig.astype(str).str.startswith(rig_prefix) & (df.method == method) & (df.estimator == estimator)]
    if "smoothing" in rows.columns and smoothing is not None:
        rows = rows[rows.smoothing.fillna(SAMPLED) == smoothing]
    if k is not None:
        rows = rows[(rows.paper_k if "paper_k" in rows.columns else rows.k).map(_k_value) == k]
    if rows.empty:
        raise Missing(f"no per-frame MPJPE rows for rig={rig_prefix} method={method} k={k} estimator={estimator}")
    trial = rows.trial if "trial" in rows.columns else 0
    return rows.assign(trial=trial).set_index(["trial", "frame"]).mpjpe_mm.astype(float)


def mm_interval(frames: pd.DataFrame, rig_prefix: str, a: tuple, b: tuple, *, estimator: str = "rpsm",
                k_column: str = "paper_k", seed: int = 0) -> Interval:
    """Paired interval of MPJPE(a) − MPJPE(b) in mm on the frames (and trials) both settings have, from a per-frame
    table (``mpjpe_frames.csv``); a, b: (method, K) or (method, K, smoothing) with K in ``k_column`` ("paper_k" or
    the profile's "k"; None for any) and smoothing :data:`SAMPLED` unless given ("none", "savgol": the walking clip).
    The rule of chapter 5's comparisons with the papers, as of the scorecard."""
    frames = headline(frames)
    if k_column != "paper_k":
        frames = frames.drop(columns=["paper_k"], errors="ignore").assign(paper_k=frames[k_column])
    a, b = (tuple(x) + (SAMPLED,) * (3 - len(x)) for x in (a, b))
    return _paired_mm(_mm_units(frames, rig_prefix, a[0], a[1], estimator, a[2]),
                      _mm_units(frames, rig_prefix, b[0], b[1], estimator, b[2]), seed=seed)


def _paired_mm(a: pd.Series, b: pd.Series, seed=0) -> Interval:
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    if both.empty:
        raise Missing("the two settings share no frame")
    trials = both.index.get_level_values(0).to_numpy()
    return stats.paired_bootstrap(both.a, both.b, clusters=trials if len(set(trials)) > 1 else None, seed=seed)


def _label(method, k):
    return method if not k else f"{method}^{k}"


def _mm_chain(df, rig_prefix, chain: list[tuple[str, int | None]], extra=()) -> Result:
    """An ordering of 3D errors: each setting of ``chain`` below the one before it (plus the ``extra`` pairs
    (lower, higher)), per-frame paired RPSM errors."""
    errs = {s: _mm_units(df, rig_prefix, *s) for s in dict.fromkeys(list(chain) + [x for p in extra for x in p])}
    pairs = list(zip(chain[1:], chain[:-1])) + list(extra)
    parts = [(_paired_mm(errs[lo], errs[hi]), "less", 0.0) for lo, hi in pairs]
    text = ", ".join(f"{_label(*s)} {e.mean():.1f}" for s, e in errs.items()) + " mm"
    return _ordering(parts, "mm", text)


def _mf_3d_falls_with_k(df):
    df = headline(df)
    kcol = "paper_k" if "paper_k" in df.columns else "k"
    ks = sorted(int(k) for k in df[(df.method == "MetaFuse") & df.rig.astype(str).str.startswith("h36m")][kcol]
                .dropna().unique() if k)
    if not ks:
        raise Missing("no MetaFuse rows on the H36M-like rig")
    return _mm_chain(df, "h36m", [("NoFusion", None)] + [("MetaFuse", k) for k in ks])


def _panoptic_order(df):
    df = headline(df)
    return _mm_chain(df, "dome", [("NaiveFuse", 50), ("NoFusion", None), ("MetaFuse", 50), ("MetaFuse", 200)],
                     extra=[(("MetaFuse", 200), ("NaiveFuse", 200))])


RPSM_PAIRED_METHODS = "every 2D method's own heatmaps (GroundTruth2D rows excluded; sampled test frames only)"


def _rpsm_below_psm(df, seed=0):
    """RPSM − PSM per frame, over every (rig, method, K, trial, frame) measured with both, bootstrapped over frames
    (the rows of one frame, one per method, drawn together)."""
    df = headline(df)
    rows = df[(df.method != "GroundTruth2D") & df.estimator.isin(["psm", "rpsm"])]
    if "smoothing" in rows.columns:
        rows = rows[rows.smoothing.fillna(SAMPLED) == SAMPLED]
    keys = [c for c in ("rig", "method", "k", "trial", "frame") if c in rows.columns]
    rows = rows.assign(**{c: rows[c].astype(object).fillna("-").astype(str) for c in keys})
    paired = rows.pivot_table(index=keys, columns="estimator", values="mpjpe_mm", aggfunc="mean")
    if not {"psm", "rpsm"} <= set(paired.columns) or paired.dropna().empty:
        raise Missing("no frame measured with both PSM and RPSM")
    paired = paired.dropna().reset_index()
    frame_id = paired[[c for c in ("rig", "trial", "frame") if c in paired.columns]].astype(str).agg("/".join, axis=1)
    iv = stats.paired_bootstrap(paired.rpsm, paired.psm, clusters=frame_id.to_numpy(), seed=seed)
    n_settings = len(paired.drop_duplicates([c for c in ("rig", "method", "k", "trial") if c in paired.columns]))
    text = (f"{n_settings} settings of {RPSM_PAIRED_METHODS}: PSM {paired.psm.mean():.1f} mm, RPSM "
            f"{paired.rpsm.mean():.1f} mm; {_iv_text(iv, 'mm')} (frames as clusters)")
    return Result(text, stats.verdict(iv, "less"), iv, "mm")


WALK_BLOCK_FRAMES = 9  # consecutive frames of the walking clip resampled together (the filter's window, 0.3 s)


def savgol_interval(df: pd.DataFrame, method: str = "MetaFuse", k=None, seed: int = 0) -> Interval:
    """Savitzky-Golay − per frame, MPJPE (mm) of ``method`` on the walking clip (MetaFuse Sec. 5.3), paired per frame,
    with a block bootstrap: the clip is contiguous, so neighbouring frames' errors (and the filter's output) are
    correlated; blocks of :data:`WALK_BLOCK_FRAMES` consecutive frames are the clusters of a two-stage bootstrap
    (blocks, then frames within them), which an interval over independent frames would make too narrow."""
    if "smoothing" not in df.columns:
        raise Missing("no smoothing column in the per-frame 3D table")
    raw = _mm_units(df, "totalcapture", method, k, "rpsm", "none")
    smooth = _mm_units(df, "totalcapture", method, k, "rpsm", "savgol")
    both = pd.concat([smooth.rename("a"), raw.rename("b")], axis=1, join="inner")
    if both.empty:
        raise Missing("the smoothed and per-frame walking rows share no frame")
    frames = both.index.get_level_values("frame").to_numpy()
    trials = both.index.get_level_values("trial").to_numpy()
    blocks = [f"{t}/{f // WALK_BLOCK_FRAMES}" for t, f in zip(trials, frames)]
    clusters = blocks if len(set(blocks)) > 1 else None
    return stats.paired_bootstrap(both.a, both.b, clusters=clusters, seed=seed)


def _savgol_helps_walking(df):
    if "smoothing" not in df.columns:
        raise Missing("no smoothing column in the per-frame 3D table")
    raw = _mm_units(df, "totalcapture", "MetaFuse", None, "rpsm", "none")
    smooth = _mm_units(df, "totalcapture", "MetaFuse", None, "rpsm", "savgol")
    iv = savgol_interval(df, "MetaFuse")
    return Result(f"MetaFuse walking: {raw.mean():.1f} → {smooth.mean():.1f} mm; {iv.diff:+.2f} mm [{iv.low:+.2f}, "
                  f"{iv.high:+.2f}], n = {iv.n} frames in {iv.clusters} blocks of {WALK_BLOCK_FRAMES}",
                  stats.verdict(iv, "less"), iv, "mm")


TABLE5 = ["ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion"]


def _table5_order(df, seed=0):
    """TrainableFusion's per-sample MPJPE against each other method of Table 5, paired on the test samples (seeds as
    clusters where the table has a ``seed`` column)."""
    if not set(TABLE5) <= set(df.method):
        raise Missing(f"ablation lacks {set(TABLE5) - set(df.method)}")
    unit = [c for c in ("seed", "sample") if c in df.columns]
    err = df.pivot_table(index=unit, columns="method", values="mpjpe_mm", aggfunc="mean").dropna()
    clusters = err.index.get_level_values("seed").to_numpy() if "seed" in unit else None
    if clusters is not None and len(set(clusters)) < 2:
        clusters = None
    parts = [(stats.paired_bootstrap(err.TrainableFusion, err[m], clusters=clusters, seed=seed), "less", 0.0)
             for m in TABLE5[:-1]]
    text = ", ".join(f"{m} {err[m].mean():.1f}" for m in TABLE5) + " mm (TrainableFusion − each)"
    return _ordering(parts, "mm", text)


# ----------------------------------------------------------------------------------------------------------------------
# Tekin's mechanisms (chapter 6): not comparisons of methods on frames; decided on the recorded values

def _fusion_runs(df):
    """First and last record of the training run that has the λ/α² term (its penalty is positive; of several, the
    first in the table's order: the chapter writes the run at the paper's rate first), α and β averaged over seeds
    where the table has a ``seed`` column; how many seeds that is; and each seed's change (last − first) of α and β,
    a DataFrame with columns alpha, beta."""
    with_reg = df.groupby("run", sort=False).penalty.max()
    with_reg = [r for r, p in with_reg.items() if p > 0]
    if not with_reg:
        raise Missing("no training record with the λ/α² term")
    rows = df[df.run == with_reg[0]]
    per_seed = rows.groupby("seed") if "seed" in rows.columns else [(0, rows)]
    change = pd.DataFrame([{c: float(g.sort_values("step")[c].iloc[-1] - g.sort_values("step")[c].iloc[0])
                            for c in ("alpha", "beta")} for _, g in per_seed])
    mean = rows.groupby("step", sort=True)[["alpha", "beta"]].mean()
    return mean.iloc[0], mean.iloc[-1], len(change), change


def _runs_text(seeds: int) -> str:
    return "one training run" if seeds == 1 else f"mean of {seeds} seeds"


def _every_seed(change: pd.Series, at_least: float) -> str:
    """"yes" when every seed moved by at least ``at_least`` in the claimed direction (> 0 where ``at_least`` is 0),
    "no" when no seed moved that way at all, "tie" otherwise (seeds disagree, or some move less than ``at_least``)."""
    moved = change >= at_least if at_least > 0 else change > 0
    return "yes" if moved.all() else "no" if (change <= 0).all() else "tie"


def _yes_no(b: bool) -> str:
    return "yes" if b else "no"


BETA_MOVE_LAYERS = 0.5  # β must move half a layer for the fusion layer that pruning keeps (β rounded) to change


def _alpha_grows(df):
    first, last, seeds, change = _fusion_runs(df)
    return Result(f"α {first.alpha:.3g} → {last.alpha:.3g} ({_runs_text(seeds)}; per seed {change.alpha.min():+.3g} "
                  f"to {change.alpha.max():+.3g})", _every_seed(change.alpha, 0.0))


def _beta_later(df):
    first, last, seeds, change = _fusion_runs(df)
    return Result(f"β {first.beta:.3g} → {last.beta:.3g} ({_runs_text(seeds)}; per seed {change.beta.min():+.3g} to "
                  f"{change.beta.max():+.3g}; a move counts from {BETA_MOVE_LAYERS:g} layer)",
                  _every_seed(change.beta, BETA_MOVE_LAYERS))


def _decorrelated(df):
    """Cross-stream R² (block image-cm) below the R² within each stream (image-image, cm-cm)."""
    block = df.block.astype(str)
    cross = df[block.str.contains("image") & block.str.contains("cm")]
    within = df[~(block.str.contains("image") & block.str.contains("cm"))]
    if cross.empty or within.empty:
        raise Missing("no cross-stream or within-stream correlation rows")
    r2, r2_within = float(cross.mean_r2.iloc[0]), float(within.mean_r2.min())
    return Result(f"mean R² across streams {r2:.3g}, within a stream ≥ {r2_within:.3g}", _yes_no(r2 < r2_within))


JDR_FRAMES, MPJPE_FRAMES = "04_few_shot_curves/jdr_frames.csv", "05_rpsm_3d/mpjpe_frames.csv"
ABLATION_SAMPLES = "06_trainable_fusion/ablation_samples.csv"
JDR = JDR_FRAMES  # the table the Fig. 7 claims read
H36M_FRAMES = "H36M-like S9/S11 test frames"
CLAIMS: tuple[Claim, ...] = (
    Claim("MF-fig7-order", MF, "At the smallest K, MetaFuse^K > AffineFuse^K > NaiveFuse^K: each adjacent difference "
          f"of mean JDR (points) above 0, {H36M_FRAMES}", "ordering in Fig. 7", JDR, _mf_ordering),
    Claim("MF-fig7-naive50", MF, f"NaiveFuse^50 − NoFusion, mean JDR (points), below 0 (over-fitting), {H36M_FRAMES}",
          "below NoFusion (Fig. 7)", JDR, _naive_below_nofusion),
    Claim("MF-fig7-meta50", MF, f"MetaFuse^50 − NoFusion, mean JDR (points), above 0, {H36M_FRAMES}",
          "above NoFusion (Fig. 7)", JDR, _meta_above_nofusion),
    Claim("MF-fig7-joints", MF, "MetaFuse^50 − NoFusion JDR gain (points): the best of wrist/elbow above the best of "
          f"knee/ankle, and above 0, {H36M_FRAMES}", "elbow 83.7% → 86.3% at K=50", JDR, _gains_at_wrists_elbows),
    Claim("MF-fig7-500", MF, f"MetaFuse^500 − NaiveFuse^full, mean JDR (points), within ±{CLOSE_JDR_POINTS:g} point, "
          f"{H36M_FRAMES}", "similar (Fig. 7)", JDR, _meta500_close_to_full),
    Claim("MF-fig7-trend", MF, "JDR(largest K) − JDR(smallest K), mean JDR (points), above 0 for NaiveFuse, AffineFuse "
          f"and MetaFuse, {H36M_FRAMES}", "all curves rise with K (Fig. 7)", JDR, _jdr_rises_with_k),
    Claim("MF-naive-meta", MF, f"MetaFuse^K − NaiveFuseMeta^K, mean JDR (points), above {FAR_JDR_POINTS:g} point at "
          f"K=50 and 100, {H36M_FRAMES}", "87.7% / 89.3% mean JDR at K=50 / 100", JDR, _naive_meta_far_below),
    Claim("MF-table2", MF, "NoFusion > MetaFuse^50 > MetaFuse^100 > MetaFuse^500: each adjacent difference of MPJPE "
          f"(mm, RPSM, the pictorial model of MetaFuse's [25]) below 0, {H36M_FRAMES}",
          " / ".join(f"{paper_mpjpe_mm('h36m', 'MetaFuse', k):g}" for k in (50, 100, 500)) + " mm at K=50/100/500",
          MPJPE_FRAMES, _mf_3d_falls_with_k),
    Claim("MF-panoptic", MF, "NaiveFuse^50 > NoFusion > MetaFuse^50 > MetaFuse^200 and NaiveFuse^200 > MetaFuse^200: "
          "each difference of MPJPE (mm, RPSM) below 0, dome held-out cameras, frames and camera draws",
          " < ".join(f"{paper_mpjpe_mm('dome_heldout', m, k):.2f}" for m, k in (("MetaFuse", 200), ("MetaFuse", 50),
                                                                          ("NoFusion", 0), ("NaiveFuse", 50)))
          + f"; NaiveFuse^200 {paper_mpjpe_mm('dome_heldout', 'NaiveFuse', 200):.2f} mm", MPJPE_FRAMES, _panoptic_order),
    Claim("CV-rpsm", CV, f"RPSM − PSM, MPJPE (mm), below 0, per frame on {RPSM_PAIRED_METHODS}",
          "RPSM improves over PSM by a large margin", MPJPE_FRAMES, _rpsm_below_psm),
    Claim("MF-savgol", MF, "Savitzky-Golay − per frame, MetaFuse's own RPSM MPJPE (mm) on the contiguous walking "
          "clip, below 0",
          "about −5 mm (Sec. 5.3)", MPJPE_FRAMES, _savgol_helps_walking),
    Claim("TK-table5", TK, "TrainableFusion − each of ImageOnly, CMOnly, EarlyFusion, LateFusion, MPJPE (mm) per test "
          "sample, below 0", "Table 5 ordering", ABLATION_SAMPLES, _table5_order),
    Claim("TK-alpha", TK, "α grows during training (fusion becomes sharp), in every seed", "α increases (Fig. 5)",
          "06_trainable_fusion/fusion_parameters.csv", _alpha_grows),
    Claim("TK-beta", TK, f"β moves to later layers during training: by at least {BETA_MOVE_LAYERS:g} layer in every seed",
          "β increases (Fig. 5)",
          "06_trainable_fusion/fusion_parameters.csv", _beta_later),
    Claim("TK-decorrelation", TK, "Image and confidence-map stream features are decorrelated (R² across streams below R² within a stream)",
          "low correlation (Fig. 7)", "06_trainable_fusion/stream_correlation.csv", _decorrelated),
)


REASONS = {  # where a finding fails or ties here, what differs from the paper's setting that could explain it
    "MF-fig7-order": "the ordering needs the meta-learned θ to transfer; Eq. (3) erases the line that AffineFuse and "
                     "MetaFuse start from (chapter 3), so both stay near NoFusion and their order comes down to how "
                     "little each one moves",
    "MF-fig7-naive50": "NaiveFuse over-fits K frames through Z1·Z2 free weights per pair; with our finetuning step count "
                       "it may not have moved far enough from its zero (= NoFusion) start to over-fit",
    "MF-fig7-meta50": "the errors are there to fix (the oracle and end-to-end NaiveFuse^full gain several points, "
                      "chapter 4b), but Eq. (3) as trained here, the MSE of the mixed fused map against peak-1 "
                      "Gaussians, charges a line's source mass at every pixel it crosses: meta-training erases "
                      "ω_base's line (chapter 3) and meta-testing takes even the oracle's lines off the evidence "
                      "(chapter 4b), so MetaFuse ends on NoFusion",
    "MF-fig7-joints": "the paper's wrist/elbow gains come from self-occlusion of the arms in real footage; our "
                      "occluders and body model make other joints the hard ones",
    "MF-fig7-500": "NaiveFuse^full learns every weight freely from the whole pool for many more steps; MetaFuse's "
                   "finetuning moves θ only, over an ω_base whose line meta-training erased (chapter 3)",
    "MF-fig7-trend": "more frames help only when the few-shot fits are limited by data, not by the step budget",
    "MF-naive-meta": "meta-learning a shared Z1×Z2 matrix has no geometry to transfer; a small gap means our target rigs "
                     "resemble the dome's training pairs more than Human3.6M resembles Panoptic",
    "MF-table2": "the 3D error follows the 2D heatmaps: where MetaFuse's JDR gain over NoFusion is small (Fig. 7), the "
                 "RPSM has nothing better to triangulate, and its grid quantisation can hide a small 2D gain",
    "MF-panoptic": "the 3D error follows the 2D heatmaps, and MetaFuse's stay on NoFusion's (Eq. (3) erases its "
                   "line, chapter 3) although the held-out dome cameras leave errors to repair (chapter 4b's "
                   "end-to-end NaiveFuse^full gains there); NaiveFuse^K may not over-fit within our finetuning steps",
    "CV-rpsm": "the RPSM refines the PSM's grid around its estimate: where the 2D heatmaps are poor (the smoke profile's "
               "tiny heatmaps) the first stage is already wrong and a finer grid does not repair it",
    "MF-savgol": "the studio's one walking clip is short (39 frames, 1.3 s at 30 fps), so the filter's window covers a "
                 "quarter of it and its ends are fitted from one side; the paper's Walking2 runs for minutes",
    "TK-table5": "the networks are tiny and trained for the profile's steps on synthetic images; fusion can only help "
                 "when both streams carry information the other lacks, and one seed gives no spread over training runs",
    "TK-alpha": "α is pushed up by the λ/α² term only when the data loss does not pull against it within our steps",
    "TK-beta": "β moves when later fusion lowers the data loss; with short training it may stay where it started",
    "TK-decorrelation": "decorrelation needs the streams to learn different features; tiny networks share more",
}
FIG7_REASONS = {c.claim_id: REASONS[c.claim_id] for c in CLAIMS if c.evidence == JDR}


def _evaluate(c: Claim, table: pd.DataFrame, **kw) -> dict:
    """One claim checked on a table: the scorecard's columns but the claim's own (claim_id ... evidence)."""
    try:
        r = c.check(table, **kw)
        iv = r.interval
        return dict(our_value=r.our_value, holds=r.holds, ci_low=iv.low if iv else np.nan,
                    ci_high=iv.high if iv else np.nan, n=iv.n if iv else np.nan, unit=r.unit)
    except Missing as why:
        return dict(our_value=f"not measured: {why}", holds="not run", ci_low=np.nan, ci_high=np.nan, n=np.nan,
                    unit="")


def fig7_findings(jdr_frames: pd.DataFrame) -> pd.DataFrame:
    """The Fig. 7 claims of :data:`CLAIMS` (those read from the per-frame JDR table) checked on every rig of the table:
    one row per rig and claim with ``rig, claim_id, claim, paper_value, our_value, holds, ci_low, ci_high, n, unit``
    and, for a claim that does not hold ("no" or "tie"), ``possible_reason`` (:data:`REASONS`: a hypothesis, not a
    measurement). Only the headline split's frames count (:func:`headline`)."""
    jdr_frames = headline(jdr_frames)
    rows = []
    for rig in jdr_frames.rig.unique():
        for c in CLAIMS:
            if c.evidence != JDR:
                continue
            out = _evaluate(c, jdr_frames, rig=rig)
            rows.append(dict(rig=rig, claim_id=c.claim_id, claim=c.claim.replace(H36M_FRAMES, f"{rig} test frames"),
                             paper_value=c.paper_value, **out,
                             possible_reason=REASONS.get(c.claim_id, "") if out["holds"] in ("no", "tie") else ""))
    return pd.DataFrame(rows)


SCORECARD_COLUMNS = ("claim_id", "paper", "claim", "paper_value", "our_value", "holds", "ci_low", "ci_high", "n",
                     "unit", "evidence")


class UnreadableTable(ValueError):
    """A chapter's table that a claim reads is not a readable CSV (cut short, overwritten, edited by hand): the chapter
    that wrote it has to be executed again."""


def read_evidence(results_dir: Path | str, evidence: str) -> pd.DataFrame:
    """The table ``<results_dir>/<evidence>`` (``evidence``: ``<chapter>/<table>.csv``); one that pandas cannot parse
    or that holds no rows is an :class:`UnreadableTable` whose one-line message names the file and the command that
    writes it again."""
    path = Path(results_dir) / evidence
    stem = evidence.split("/")[0]
    try:
        table = pd.read_csv(path)
        why = "" if len(table) else "it has no rows"
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        why = f"{type(err).__name__}: " + " ".join(str(err).split())[:160]
    if why:
        raise UnreadableTable(
            f"{path} is not a readable table ({why}); execute chapter {stem} again, which writes it: "
            f"python -m mfbook.run_book execute --profile {Path(results_dir).name} --only {stem} "
            f"--results {Path(results_dir).parent}") from None
    return table


def scorecard(results_dir: Path | str) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` checked against the tables under ``results_dir`` (``results/<profile>``); a table
    that exists but cannot be read stops it with an :class:`UnreadableTable` naming the file and what to do."""
    results_dir = Path(results_dir)
    evidence = dict.fromkeys(c.evidence for c in CLAIMS if (results_dir / c.evidence).exists())
    return scorecard_of({e: read_evidence(results_dir, e) for e in evidence})


def scorecard_of(tables: dict[str, pd.DataFrame], claim_ids=None) -> pd.DataFrame:
    """The scorecard rows of the claims (all, or those of ``claim_ids``) from tables in memory, keyed by their
    evidence path (e.g. ``{claims.JDR_FRAMES: frames}``; a chapter checks its own claims before chapter 7 runs); a
    claim whose table is not among them is "not run"."""
    rows = []
    for c in CLAIMS:
        if claim_ids is not None and c.claim_id not in claim_ids:
            continue
        if c.evidence in tables:
            out = _evaluate(c, headline(tables[c.evidence]))
        else:
            out = dict(our_value=f"not measured: {c.evidence} was not produced", holds="not run", ci_low=np.nan,
                       ci_high=np.nan, n=np.nan, unit="")
        rows.append(dict(claim_id=c.claim_id, paper=c.paper, claim=c.claim, paper_value=c.paper_value, **out,
                         evidence=c.evidence))
    card = pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
    card["n"] = card.n.astype("Int64")
    return card


def claim_paragraph(row) -> str:
    """The evidence paragraph of a claim that does not hold ("no" or "tie"), written from a scorecard or
    :func:`fig7_findings` row: the comparison, our numbers, the interval and its n, what the verdict means, and the
    possible reasons listed for that claim (:data:`REASONS`). Empty for a claim that holds or was not run."""
    holds = row["holds"]
    if holds not in ("no", "tie"):
        return ""
    where = f" on {row['rig']}" if "rig" in row and isinstance(row.get("rig"), str) else ""
    text = f"**{row['claim_id']}**{where} ({holds}). The claim: {row['claim']} (paper: {row['paper_value']}). "
    text += f"Ours: {row['our_value']}. "
    if pd.notna(row.get("ci_low")):
        unit = row.get("unit", "")
        verdict = ("the 95 % interval covers the claim's threshold, so the data cannot tell the two apart"
                   if holds == "tie" else "the 95 % interval lies on the other side of the claim's threshold")
        text += (f"Deciding interval [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}] {unit} over n = {int(row['n'])} "
                 f"paired frames or samples: {verdict}. ")
    reason = REASONS.get(row["claim_id"], "")
    if reason:
        text += f"Possible reasons (hypotheses written before the numbers, not measurements): {reason}."
    return text


def claims_section(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """A chapter's "Claims of this chapter" from its own tables (keyed by evidence path): the scorecard rows of the
    claims those tables decide, and the evidence paragraphs (:func:`claim_paragraph`) of those that are "no" or
    "tie" (or a sentence saying every claim holds)."""
    card = scorecard_of(tables, [c.claim_id for c in CLAIMS if c.evidence in tables])
    paragraphs = [claim_paragraph(r) for _, r in card.iterrows()]
    text = "\n\n".join(p for p in paragraphs if p) or "Every claim of this chapter holds at this profile."
    return card, text
