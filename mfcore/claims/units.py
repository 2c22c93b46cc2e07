"""The units of the book's paired comparisons, and the verdict of a claim made of them (:mod:`mfcore.claims` states the
claims; :mod:`mfcore.stats` is the rule).

* Units: a chapter's per-frame table (``jdr_frames.csv``, ``mpjpe_frames.csv``, ``ablation_samples.csv``) read into
  one row per (seed, trial, frame) of a setting, with the frame's motion ``clip`` where the table has one; two
  settings paired on the frames (and seeds) both have (:func:`pair`); the bootstrap design of a pairing
  (:func:`design`): frames drawn together across camera draws and seeds, clustered by clip, seeds and camera draws
  crossed with the frames.
* Verdicts: a claim is one or more :class:`Part` (a paired interval, the claimed direction and the paper's
  :class:`Effect`, stated before the results it decides); :func:`decide` turns them into a :class:`Result` (yes when
  every part is yes, no when any is no, else inconclusive), reporting the part that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import stats
from ..stats import Interval

MARGIN_SHARE = 0.5  # the margin is half the paper's effect: a difference smaller than that does not reproduce it
MIN_SEEDS = 3  # trained results a claim should rest on (seeds of the trained model); fewer is said in its rule
HEADLINE_THRESHOLD = "half_head"  # the book's JDR (MetaFuse Sec. 5.1)
SAMPLED = "not a sequence"  # the smoothing value of sampled test frames (no temporal filter applies)
WITHIN = "within"  # the direction of a closeness claim (|difference| ≤ its tolerance)


class Missing(Exception):
    """A table or a row a claim needs was not produced (the chapter did not run, or lacks that measurement)."""


@dataclass(frozen=True)
class Effect:
    """The paper's side of one compared difference, stated before the result it decides: ``paper`` the paper's
    difference in the claim's unit, signed as the paper has it (None where the paper prints no number for it);
    ``margin`` ≥ 0, how far toward the claimed side our interval must reach for the paper's effect to count as
    reproduced (for a closeness claim: the tolerance); ``source`` where both come from."""
    paper: float | None
    margin: float
    source: str

    def __post_init__(self):
        if not (isinstance(self.margin, (int, float)) and math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin must be a finite number ≥ 0, got {self.margin!r}")


def printed(before: float, after: float, source: str, share: float = MARGIN_SHARE) -> Effect:
    """The effect of a difference the paper prints, ``after − before`` (e.g. 31.3 − 32.7 mm), with the margin
    ``share`` of its size."""
    paper = round(float(after) - float(before), 9)
    return Effect(paper, share * abs(paper), f"{source}: {after:g} − {before:g} = {paper:+.4g}")


def unprinted(smallest: Effect, what: str) -> Effect:
    """The effect of a difference the paper shows without a number: no paper value, and the margin of the smallest
    difference of that metric the paper prints anywhere (``smallest``)."""
    return Effect(None, smallest.margin, f"{what}, no number printed: margin {MARGIN_SHARE:g} × the smallest "
                                         f"difference the paper prints in this metric ({smallest.source})")


@dataclass(frozen=True)
class Part:
    """One compared difference of a claim: its label, interval, claimed ``direction`` ("greater", "less" or
    :data:`WITHIN`), the paper's :class:`Effect` and the distinct seeds of the trained results behind it."""
    label: str
    interval: Interval
    direction: str
    effect: Effect
    seeds: int = 1

    @property
    def verdict(self) -> str:
        if self.direction == WITHIN:
            return stats.verdict_within(self.interval, self.effect.margin)
        return stats.verdict(self.interval, self.direction, self.effect.margin)

    @property
    def n_to_decide(self) -> float:
        return stats.n_to_decide(self.interval, self.direction if self.direction != WITHIN else "greater",
                                 self.effect.margin, within=self.direction == WITHIN)

    @property
    def signed_margin(self) -> float:
        """The margin on the difference's own axis: + for "greater", − for "less", the tolerance for closeness."""
        return -self.effect.margin if self.direction == "less" else self.effect.margin

    def claimed_low(self) -> float:
        """The interval's end on the unclaimed side, on the claim's axis (positive = claimed side)."""
        if self.direction == WITHIN:
            return self.effect.margin - max(abs(self.interval.low), abs(self.interval.high))
        return self.interval.low if self.direction == "greater" else -self.interval.high

    def claimed_high(self) -> float:
        if self.direction == WITHIN:
            return self.effect.margin - min(abs(self.interval.low), abs(self.interval.high))
        return self.interval.high if self.direction == "greater" else -self.interval.low


@dataclass(frozen=True)
class Result:
    """What a claim's test found: our numbers as text, the verdict, the interval that decided it (None for a claim
    that is not a comparison of methods on frames), its unit, every :class:`Part`, the deciding one, the distinct seeds
    of the trained results it rests on (the fewest over its parts), and the rule as text."""
    our_value: str
    holds: str
    interval: Interval | None = None
    unit: str = ""
    parts: tuple[Part, ...] = field(default_factory=tuple)
    deciding: Part | None = None
    seeds: int = 1
    rule: str = ""


def _fmt(x: float) -> str:
    return f"{x:+.3g}" if abs(x) < 0.1 else f"{x:+.2f}"


def part_text(p: Part, unit: str) -> str:
    iv = p.interval
    return f"{p.label} {_fmt(iv.diff)} {unit} [{_fmt(iv.low)}, {_fmt(iv.high)}]"


def deciding_part(parts: list[Part], holds: str) -> Part:
    """The part that decided a claim: the clearest "no" (its claimed-side end furthest short of the margin); the
    inconclusive part that needs the most units; or, all "yes", the least certain one (claimed-side low end nearest
    0)."""
    if holds == "no":
        return min((p for p in parts if p.verdict == "no"), key=lambda p: p.claimed_high() - p.effect.margin
                   if p.direction != WITHIN else p.claimed_high())
    if holds == "inconclusive":
        return max((p for p in parts if p.verdict == "inconclusive"), key=lambda p: p.n_to_decide)
    return min(parts, key=Part.claimed_low)


def rule_text(parts: list[Part], unit: str, seeds: int) -> str:
    """The rule of a claim in one line: the claimed side, each margin and where it comes from, how the parts
    combine, the seeds."""
    p = parts[0]
    if p.direction == WITHIN:
        text = "|difference| ≤ tolerance, no if the interval lies wholly outside ±tolerance"
    else:
        text = (f"difference {'>' if p.direction == 'greater' else '<'} 0, no if the interval lies wholly on the "
                f"other side of 0 or wholly short of the margin")
    margins = dict.fromkeys((q.signed_margin, q.effect.source) for q in parts)
    text += "; " + "; ".join(f"{'tolerance ±' if p.direction == WITHIN else 'margin '}{m:+.3g} {unit}: {src}"
                             .replace("±+", "±") for m, src in margins)
    if len(parts) > 1:
        text += f"; {len(parts)} parts: yes if every part is yes, no if any is no"
    if seeds < MIN_SEEDS:
        text += (f"; trained results of {seeds} seed{'s' if seeds != 1 else ''} (fewer than the {MIN_SEEDS} the book "
                 f"asks for)")
    return text


def decide(parts: list[Part], unit: str, text: str = "") -> Result:
    """A claim's :class:`Result` from its parts: "yes" when every part is "yes", "no" when any is "no", else
    "inconclusive"; ``our_value`` is ``text`` and the deciding part (:func:`deciding_part`), with a note where a "yes"
    lies short of the margin and, for an inconclusive claim, the units that would decide it (:func:`mfcore.stats
    .n_to_decide`)."""
    if not parts:
        raise Missing("no part of the claim could be measured")
    holds = stats.combine(p.verdict for p in parts)
    deciding = deciding_part(parts, holds)
    seeds = min(p.seeds for p in parts)
    counts = {v: sum(p.verdict == v for p in parts) for v in stats.VERDICTS}
    our = (text + "; " if text else "") + part_text(deciding, unit) + f", n = {deciding.interval.n}"
    if len(parts) > 1:
        our += " (deciding part; parts " + ", ".join(f"{c} {v}" for v, c in counts.items() if c) + ")"
    short = [p for p in parts if p.direction != WITHIN and p.verdict == "yes" and p.claimed_low() < p.effect.margin]
    if holds == "yes" and short:
        our += (f"; {len(short)} of {len(parts)} part(s) on the claimed side but not clear of the margin (smaller than "
                f"{MARGIN_SHARE:g} of the paper's effect, or the interval reaches below it)")
    if holds == "inconclusive":
        need = deciding.n_to_decide
        our += (f"; inconclusive: about {need:,.0f} units ({need / deciding.interval.n:,.1f} times these) would "
                "decide it" if math.isfinite(need) else "; inconclusive: its centre lies on the boundary")
    return Result(our, holds, deciding.interval, unit, tuple(parts), deciding, seeds, rule_text(parts, unit, seeds))


# ----------------------------------------------------------------------------------------------------------------------
# Units

def headline(df: pd.DataFrame) -> pd.DataFrame:
    """The headline rows of a table: ``split == "test"`` where the table has a split column (the stress split is
    reported apart and never enters a claim), every row otherwise."""
    return df[df.split == "test"] if "split" in df.columns else df


def k_value(k) -> int:
    return 0 if pd.isna(k) else int(k)


def _unit_frame(rows: pd.DataFrame, values: list[str], frame_col: str = "frame") -> pd.DataFrame:
    """Rows of one setting → columns seed, trial, frame, clip (where known) and ``values``; seed and trial 0 where the
    table has none."""
    out = pd.DataFrame({"seed": rows["seed"].fillna(-1) if "seed" in rows.columns else 0,  # -1: no seed (untrained)
                        "trial": rows["trial"] if "trial" in rows.columns else 0,
                        "frame": rows[frame_col]})
    if "clip" in rows.columns:
        out["clip"] = rows["clip"].astype(str)
    for v in values:
        out[v] = rows[v].astype(float)
    return out.reset_index(drop=True)


_GROUPS: list[tuple[pd.DataFrame, tuple[str, ...], dict]] = []  # the last tables split by setting (a few kept)


def _rows_of(df: pd.DataFrame, keys: tuple[str, ...]) -> dict:
    """``df``'s row positions per value of ``keys`` (a claim reads dozens of settings of one table of ~10⁵ rows: it is
    split once)."""
    for table, k, groups in _GROUPS:
        if table is df and k == keys:
            return groups
    split = df.groupby(list(keys), sort=False).indices
    groups = {key if isinstance(key, tuple) else (key,): idx for key, idx in split.items()}
    _GROUPS.append((df, keys, groups))
    del _GROUPS[:-4]
    return groups


def jdr_units(df: pd.DataFrame, rig: str, method: str, k=None, joint: str = "mean") -> pd.DataFrame:
    """Per-frame detections of one setting of ``jdr_frames.csv``: one row per (seed, trial, frame), columns detected,
    counted (and clip)."""
    idx = _rows_of(df, ("rig", "method", "joint")).get((rig, method, joint))
    rows = df.iloc[idx] if idx is not None else df.iloc[:0]
    if "threshold" in rows.columns:
        rows = rows[rows.threshold == HEADLINE_THRESHOLD]
    if k is not None:
        rows = rows[rows.k.map(k_value) == k]
    if rows.empty:
        raise Missing(f"no per-frame JDR rows for rig={rig} method={method} k={k} joint={joint}")
    return _unit_frame(rows, ["detected", "counted"])


def mm_units(df: pd.DataFrame, rig_prefix: str, method: str, k=None, estimator: str = "rpsm",
             smoothing: str | None = SAMPLED) -> pd.DataFrame:
    """Per-frame MPJPE (mm) of one setting of ``mpjpe_frames.csv``: one row per (seed, trial, frame), columns value
    (and clip); ``k`` is the paper's K (the ``paper_k`` column where the table has one)."""
    groups = _rows_of(df, ("rig", "method", "estimator"))
    idx = [i for (rig, m, e), i in groups.items() if str(rig).startswith(rig_prefix) and m == method and e == estimator]
    rows = df.iloc[np.sort(np.concatenate(idx))] if idx else df.iloc[:0]
    if "smoothing" in rows.columns and smoothing is not None:
        rows = rows[rows.smoothing.fillna(SAMPLED) == smoothing]
    if k is not None:
        rows = rows[(rows.paper_k if "paper_k" in rows.columns else rows.k).map(k_value) == k]
    if rows.empty:
        raise Missing(f"no per-frame MPJPE rows for rig={rig_prefix} method={method} k={k} estimator={estimator}")
    return _unit_frame(rows.assign(value=rows.mpjpe_mm), ["value"])


def pair(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two settings' unit frames joined on the frames (and camera draws, and seeds) both have; value columns get
    suffixes ``_a``, ``_b``. A side with one seed only (an untrained reference, or a model of one seed) is paired with
    every seed of the other."""
    on = ["trial", "frame"]
    if a.seed.nunique() > 1 and b.seed.nunique() > 1:
        on = ["seed"] + on
    elif b.seed.nunique() == 1:
        b = b.drop(columns="seed")
    else:
        a = a.drop(columns="seed")
    clip = [c for c in ("clip",) if c in a.columns or c in b.columns]
    a_cols = [c for c in a.columns if c not in on + clip + ["seed"]]
    b_cols = [c for c in b.columns if c not in on + clip + ["seed"]]
    both = a.rename(columns={c: f"{c}_a" for c in a_cols}).merge(
        b.rename(columns={c: f"{c}_b" for c in b_cols}).drop(columns=[c for c in clip if c in a.columns]),
        on=on, how="inner")
    if both.empty:
        raise Missing("the two settings share no frame")
    return both


def design(both: pd.DataFrame) -> dict:
    """The bootstrap design of paired unit rows (:func:`mfcore.stats.resample_counts`): a frame is one unit across
    camera draws and seeds, frames are clustered by their clip (where known), seeds and camera draws are crossed
    factors (where there are several)."""
    crossed = [both[c].to_numpy() for c in ("seed", "trial") if c in both.columns and both[c].nunique() > 1]
    clusters = None
    if "clip" in both.columns and both["clip"].notna().all() and both["clip"].nunique() > 1:
        clusters = both["clip"].to_numpy()
    units = both.frame.to_numpy() if len(crossed) else None
    return dict(units=units, clusters=clusters, crossed=crossed or None)


def n_seeds(both: pd.DataFrame) -> int:
    return int(both.seed.nunique()) if "seed" in both.columns else 1


def paired_interval(both: pd.DataFrame, a_col: str, b_col: str, weights=None, seed: int = 0) -> Interval:
    """The paired interval of ``a_col − b_col`` over the rows of :func:`pair` (its :func:`design`)."""
    return stats.paired_bootstrap(both[a_col].to_numpy(), both[b_col].to_numpy(), weights=weights, seed=seed,
                                  **design(both))


def trained_seeds(df: pd.DataFrame) -> int:
    """Distinct seeds of a table's trained results (1 where it has no seed column)."""
    return int(df.seed.nunique()) if "seed" in df.columns and len(df) else 1


def _check_frame(df: pd.DataFrame, need: set[str], what: str) -> None:
    if not need <= set(df.columns):
        raise Missing(f"{what} lacks column(s) {sorted(need - set(df.columns))}")


def per_seed_changes(df: pd.DataFrame, run: str, column: str) -> pd.Series:
    """Last − first recorded value of ``column`` in each seed of one training ``run`` (a fusion-parameter record:
    columns run, seed, step, ``column``), indexed by seed."""
    _check_frame(df, {"run", "step", column}, "the training record")
    rows = df[df.run == run]
    if rows.empty:
        raise Missing(f"no training record of run {run!r}")
    rows = rows.assign(seed=rows.seed if "seed" in rows.columns else 0).sort_values(["seed", "step"])
    g = rows.groupby("seed")[column]
    return (g.last() - g.first()).astype(float)


def over_seeds(values: pd.Series, seed: int = 0) -> Interval:
    """The mean of per-seed values and its bootstrap interval over seeds (one value per seed, the seeds the units)."""
    x = np.asarray(values, dtype=float)
    return stats.bootstrap_mean_interval(x, seed=seed)
