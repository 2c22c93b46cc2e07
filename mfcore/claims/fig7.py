"""The claims of MetaFuse's Fig. 7 and Sec. 5.2 (chapter 4's ``jdr_frames.csv``): differences of JDR in points,
pooled over the test frames (Σ detected / Σ counted joints), paired per frame, on each Fig. 7 rig."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from ..stats import Interval
from .papers import UNPRINTED_JDR, label
from .units import WITHIN, Effect, Missing, Part, decide, design, jdr_units, n_seeds, pair, paired_interval, printed

ELBOW_K50 = printed(83.7, 86.3, "MetaFuse Sec. 1, elbow JDR, NoFusion → MetaFuse^50 (%)")  # +2.6 points
CLOSE_JDR_POINTS = 1.0  # "similar" (MetaFuse^500 and NaiveFuse^full): the whole interval within ±1 JDR point
SIMILAR = Effect(None, CLOSE_JDR_POINTS, "'similar' (MetaFuse Sec. 5.2), read as within ±1 JDR point")


def _jdr_pairs(df, rig, a: tuple, b: tuple, joint="mean") -> pd.DataFrame:
    both = pair(jdr_units(df, rig, *a, joint), jdr_units(df, rig, *b, joint))
    both = both[both.counted_a > 0]
    if both.empty:
        raise Missing(f"no common frame of {a} and {b} on rig={rig}")
    return both


def _jdr_interval(both: pd.DataFrame, seed: int = 0) -> Interval:
    w = both.counted_a.to_numpy()
    rates = both.assign(rate_a=both.detected_a / w, rate_b=both.detected_b / w)
    return paired_interval(rates, "rate_a", "rate_b", weights=w, seed=seed).scaled(100.0)


def paired_jdr(df, rig, a: tuple, b: tuple, joint="mean", seed=0) -> tuple[Interval, float, float]:
    """Paired interval of JDR(a) − JDR(b) in points on the frames (and seeds) both have, with both pooled JDRs
    (fractions). a, b: (method, k) with k None for any."""
    both = _jdr_pairs(df, rig, a, b, joint)
    w = both.counted_a.sum()
    return _jdr_interval(both, seed), both.detected_a.sum() / w, both.detected_b.sum() / w


def pooled_jdr(df, rig, method, k=None, joint="mean") -> float:
    """One setting's JDR pooled over its test frames (and seeds), a fraction."""
    u = jdr_units(df, rig, method, k, joint)
    return float(u.detected.sum() / u.counted.sum())


def _jdr_part(df, rig, a, b, effect: Effect, direction="greater", joint="mean") -> Part:
    both = _jdr_pairs(df, rig, a, b, joint)
    name = f"{rig}{'' if joint == 'mean' else ' ' + joint}: {label(*a)} − {label(*b)}"
    return Part(name, _jdr_interval(both), direction, effect, n_seeds(both))


def _shots(df: pd.DataFrame, method: str = "MetaFuse", rig: str | None = None) -> list[int]:
    rows = df[df.method == method] if rig is None else df[(df.method == method) & (df.rig == rig)]
    ks = sorted(int(k) for k in rows.k.dropna().unique())
    if not ks:
        raise Missing(f"no K for {method}")
    return ks


def _rigs(df: pd.DataFrame, rigs, h36m_only: bool = False) -> list[str]:
    """The Fig. 7 rigs a claim is checked on: ``rigs`` where given, else every rig of the table (the H36M-like room
    and the dome's held-out cameras), or the H36M-like ones only for a claim the paper makes about Human3.6M alone."""
    found = [r for r in (rigs or df.rig.unique()) if not h36m_only or str(r).startswith("h36m")]
    if not found:
        raise Missing("no H36M-like rig in the table" if h36m_only else "no rig in the table")
    return found


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _mf_ordering(df, rigs=None):
    """At every K: MetaFuse^K above AffineFuse^K, NaiveFuse^K and NoFusion; AffineFuse^K above NaiveFuse^K at the
    smallest K ("when the number of training data is small"); on every rig."""
    parts, texts = [], []
    for rig in _rigs(df, rigs):
        ks = _shots(df, rig=rig)
        for k in ks:
            parts += [_jdr_part(df, rig, ("MetaFuse", k), (other, k), UNPRINTED_JDR)
                      for other in ("AffineFuse", "NaiveFuse")]
            parts.append(_jdr_part(df, rig, ("MetaFuse", k), ("NoFusion", None), UNPRINTED_JDR))
        parts.append(_jdr_part(df, rig, ("AffineFuse", ks[0]), ("NaiveFuse", ks[0]), UNPRINTED_JDR))
        texts.append(f"{rig} K={ks[0]}: " + ", ".join(f"{m} {_pct(pooled_jdr(df, rig, m, ks[0]))}"
                                                     for m in ("MetaFuse", "AffineFuse", "NaiveFuse"))
                     + f", NoFusion {_pct(pooled_jdr(df, rig, 'NoFusion'))}")
    return decide(parts, "points", "; ".join(texts))


def _naive_below_nofusion(df, rigs=None):
    parts, texts = [], []
    for rig in _rigs(df, rigs):
        k = _shots(df, "NaiveFuse", rig)[0]
        parts.append(_jdr_part(df, rig, ("NaiveFuse", k), ("NoFusion", None), UNPRINTED_JDR, "less"))
        texts.append(f"{rig} K={k}: NaiveFuse {_pct(pooled_jdr(df, rig, 'NaiveFuse', k))} vs NoFusion "
                     f"{_pct(pooled_jdr(df, rig, 'NoFusion'))}")
    return decide(parts, "points", "; ".join(texts))


def _meta_above_nofusion(df, rigs=None):
    parts, texts = [], []
    for rig in _rigs(df, rigs):
        k = _shots(df, rig=rig)[0]
        parts.append(_jdr_part(df, rig, ("MetaFuse", k), ("NoFusion", None), UNPRINTED_JDR))
        parts.append(_jdr_part(df, rig, ("MetaFuse", k), ("NoFusion", None), ELBOW_K50, joint="elbow"))
        texts.append(f"{rig} K={k}: MetaFuse {_pct(pooled_jdr(df, rig, 'MetaFuse', k))} vs NoFusion "
                     f"{_pct(pooled_jdr(df, rig, 'NoFusion'))} (elbow "
                     f"{_pct(pooled_jdr(df, rig, 'MetaFuse', k, 'elbow'))} vs "
                     f"{_pct(pooled_jdr(df, rig, 'NoFusion', None, 'elbow'))})")
    return decide(parts, "points", "; ".join(texts))


ARM_GROUPS, LEG_GROUPS = ("wrist", "elbow"), ("knee", "ankle")


def _gains_at_wrists_elbows(df, rigs=None, seed=0):
    """Gain of MetaFuse^K over NoFusion per joint group (points) at the smallest K; the claim: each arm group gains
    more than each leg group. The four differences come from one bootstrap (the same resampled frames) and are read
    off a simultaneous band (:func:`mfcore.stats.simultaneous_intervals`): together they hold at 95 %, so a claim
    decided by any one of them is corrected for having four to pick from."""
    parts, texts = [], []
    groups = ARM_GROUPS + LEG_GROUPS
    for rig in _rigs(df, rigs, h36m_only=True):
        k = _shots(df, rig=rig)[0]
        table = None
        for g in groups:
            both = pair(jdr_units(df, rig, "MetaFuse", k, g), jdr_units(df, rig, "NoFusion", None, g))
            cols = {"detected_a": f"a_{g}", "detected_b": f"b_{g}", "counted_a": f"c_{g}"}
            both = both.rename(columns=cols)[[c for c in ("seed", "trial", "frame", "clip") if c in both.columns]
                                             + list(cols.values())]
            keys = [c for c in ("seed", "trial", "frame") if c in both.columns]
            table = both if table is None else table.merge(both.drop(columns=["clip"], errors="ignore"), on=keys)
        d = np.stack([(table[f"a_{g}"] - table[f"b_{g}"]).to_numpy() for g in groups])  # (G, n) detections gained
        c = np.stack([table[f"c_{g}"].to_numpy() for g in groups])
        if (c.sum(1) == 0).any():
            raise Missing(f"a joint group has no counted joint on rig={rig}")
        counts = stats.resample_counts(len(table), seed=seed, **design(table))
        gains = 100 * d.sum(1) / c.sum(1)  # (G,) points
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = 100 * (counts @ d.T) / (counts @ c.T)  # (n_boot, G)
        pairs = [(i, j) for i in range(len(ARM_GROUPS)) for j in range(len(ARM_GROUPS), len(groups))]
        est = np.array([gains[i] - gains[j] for i, j in pairs])
        band = stats.simultaneous_intervals(est, np.stack([boot[:, i] - boot[:, j] for i, j in pairs], 1),
                                            len(table), int(table["clip"].nunique()) if "clip" in table else 1)
        seeds = int(table.seed.nunique()) if "seed" in table.columns else 1
        parts += [Part(f"{rig}: gain at {groups[i]} − gain at {groups[j]}", iv, "greater", UNPRINTED_JDR, seeds)
                  for (i, j), iv in zip(pairs, band)]
        texts.append(f"{rig} K={k} gains (points): " + ", ".join(f"{g} {v:+.1f}" for g, v in zip(groups, gains)))
    return decide(parts, "points", "; ".join(texts) + " (simultaneous 95 % band over the four differences)")


def _meta500_close_to_full(df, rigs=None):
    parts, texts = [], []
    for rig in _rigs(df, rigs, h36m_only=True):
        k = _shots(df, rig=rig)[-1]
        parts.append(_jdr_part(df, rig, ("MetaFuse", k), ("NaiveFuseFull", None), SIMILAR, WITHIN))
        texts.append(f"{rig} K={k}: MetaFuse {_pct(pooled_jdr(df, rig, 'MetaFuse', k))} vs NaiveFuse^full "
                     f"{_pct(pooled_jdr(df, rig, 'NaiveFuseFull'))}")
    return decide(parts, "points", "; ".join(texts))


TREND_METHODS = ("NaiveFuse", "AffineFuse", "MetaFuse")


def _jdr_rises_with_k(df, rigs=None):
    """Every step of K (50 → 100 → 200 → 500) raises the JDR of NaiveFuse, AffineFuse and MetaFuse, on every rig."""
    parts, texts = [], []
    for rig in _rigs(df, rigs):
        for method in TREND_METHODS:
            ks = _shots(df, method, rig)
            parts += [_jdr_part(df, rig, (method, hi), (method, lo), UNPRINTED_JDR) for lo, hi in zip(ks, ks[1:])]
            texts.append(f"{rig} {method} " + " → ".join(_pct(pooled_jdr(df, rig, method, k)) for k in ks))
    return decide(parts, "points", "K from smallest to largest: " + ", ".join(texts))


def _naive_meta_far_below(df, rigs=None):
    parts, texts = [], []
    for rig in _rigs(df, rigs, h36m_only=True):
        for k in _shots(df, "NaiveFuseMeta", rig)[:2]:
            parts.append(_jdr_part(df, rig, ("MetaFuse", k), ("NaiveFuseMeta", k), UNPRINTED_JDR))
            texts.append(f"{rig} K={k}: NaiveFuseMeta {_pct(pooled_jdr(df, rig, 'NaiveFuseMeta', k))} vs MetaFuse "
                         f"{_pct(pooled_jdr(df, rig, 'MetaFuse', k))}")
    return decide(parts, "points", "; ".join(texts))

