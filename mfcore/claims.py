"""The papers' numbers and the tests of their claims, in one place: chapter 5's comparison with the papers and the
reproduction scorecard (chapter 7) both read them.

:data:`PAPER_MPJPE_MM` holds the papers' 3D errors that chapter 5 sets beside its own; :func:`jdr_ahead` and
:func:`mm_below` are the one comparison rule of every ordering (the tie rule below).

The reproduction scorecard: each paper claim checked against the tables the chapters computed, never typed.

``scorecard(results_dir)`` reads ``results/<profile>/<chapter>/*.csv`` and returns one row per claim with the columns
of the results contract: ``claim_id, paper, claim, paper_value, our_value, holds`` (plus ``evidence``: the table the
number comes from). ``holds`` is ``"yes"``, ``"no"``, or ``"not run"`` when the chapter's table does not exist.
A claim's test is written next to it, with the tolerance it uses; no claim's test was tuned to make it hold.
An ordering ("above", "below", "falls", "beats") holds only by at least the precision the scorecard prints its numbers
with (:data:`JDR_RESOLUTION_POINTS`, :data:`MM_RESOLUTION`): a smaller difference is a tie, and a reader who sees
"88.3% vs 88.3%" must not read "yes".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

MF, CV, TK = "MetaFuse (CVPR 2020)", "Cross View Fusion (ICCV 2019)", "Tekin et al. (ICCV 2017)"
CLOSE_JDR_POINTS = 1.0  # "close to": within one JDR percentage point
FAR_JDR_POINTS = 1.0  # "far below": more than one JDR percentage point lower
JDR_RESOLUTION_POINTS = 0.1  # JDR is printed to 0.1 percentage point: a smaller difference is a tie
MM_RESOLUTION = 0.1  # 3D errors are printed to 0.1 mm: a smaller difference is a tie


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
class Claim:
    claim_id: str
    paper: str
    claim: str
    paper_value: str
    evidence: str  # chapter/table.csv
    check: Callable[[pd.DataFrame], tuple[str, bool]]  # table → (our value as text, holds)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ahead(a: float, b: float, resolution: float) -> bool:
    """``a`` exceeds ``b`` by at least ``resolution`` (a smaller difference is a tie)."""
    return a - b >= resolution * (1 - 1e-9)


def jdr_ahead(a: float, b: float) -> bool:
    """JDR (fractions) ``a`` above ``b`` by at least :data:`JDR_RESOLUTION_POINTS`."""
    return _ahead(a, b, JDR_RESOLUTION_POINTS / 100)


def mm_below(a: float, b: float) -> bool:
    """3D error ``a`` below ``b`` (mm) by at least :data:`MM_RESOLUTION`."""
    return _ahead(b, a, MM_RESOLUTION)


def _jdr(df: pd.DataFrame, rig: str, method: str, k=None, joint: str = "mean") -> float:
    rows = df[(df.rig == rig) & (df.method == method) & (df.joint == joint)]
    if "threshold" in rows.columns:  # the book's JDR (half a head size); the constant-threshold rows are a side table
        rows = rows[rows.threshold == "half_head"]
    if k is not None:
        rows = rows[rows.k == k]
    if rows.empty:
        raise Missing(f"no JDR row for rig={rig} method={method} k={k} joint={joint}")
    return float(rows.jdr.mean())  # mean over trials where there are several


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


def _mf_ordering(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[0]
    m, a, n = (_jdr(df, rig, x, k) for x in ("MetaFuse", "AffineFuse", "NaiveFuse"))
    return f"K={k}: MetaFuse {_pct(m)}, AffineFuse {_pct(a)}, NaiveFuse {_pct(n)}", jdr_ahead(m, a) and jdr_ahead(a, n)


def _naive_below_nofusion(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df, "NaiveFuse")[0]
    n, base = _jdr(df, rig, "NaiveFuse", k), _jdr(df, rig, "NoFusion")
    return f"K={k}: NaiveFuse {_pct(n)} vs NoFusion {_pct(base)}", jdr_ahead(base, n)


def _meta_above_nofusion(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[0]
    m, base = _jdr(df, rig, "MetaFuse", k), _jdr(df, rig, "NoFusion")
    return f"K={k}: MetaFuse {_pct(m)} vs NoFusion {_pct(base)}", jdr_ahead(m, base)


def _gains_at_wrists_elbows(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[0]
    gains = {g: _jdr(df, rig, "MetaFuse", k, g) - _jdr(df, rig, "NoFusion", None, g)
             for g in ("wrist", "elbow", "knee", "ankle")}
    best = max(gains, key=gains.get)
    text = ", ".join(f"{g} {100 * v:+.1f}" for g, v in gains.items())
    return f"K={k} gains (points): {text}", best in ("wrist", "elbow") and jdr_ahead(gains[best], 0.0)


def _meta500_close_to_full(df, rig=None):
    rig, k = rig or _target_rig(df), _shots(df)[-1]
    m, full = _jdr(df, rig, "MetaFuse", k), _jdr(df, rig, "NaiveFuseFull")
    return f"K={k}: MetaFuse {_pct(m)} vs NaiveFuse^full {_pct(full)}", abs(m - full) * 100 <= CLOSE_JDR_POINTS


def _jdr_rises_with_k(df, rig=None):
    rig = rig or _target_rig(df)
    parts, holds = [], True
    for method in ("NaiveFuse", "AffineFuse", "MetaFuse"):
        ks = _shots(df, method)
        first, last = _jdr(df, rig, method, ks[0]), _jdr(df, rig, method, ks[-1])
        parts.append(f"{method} {_pct(first)} → {_pct(last)}")
        holds &= jdr_ahead(last, first)
    return f"K={_shots(df)[0]} → {_shots(df)[-1]}: " + ", ".join(parts), holds


def _naive_meta_far_below(df, rig=None):
    rig = rig or _target_rig(df)
    ks = _shots(df, "NaiveFuseMeta")[:2]
    parts, holds = [], True
    for k in ks:
        nm, m = _jdr(df, rig, "NaiveFuseMeta", k), _jdr(df, rig, "MetaFuse", k)
        parts.append(f"K={k}: {_pct(nm)} vs MetaFuse {_pct(m)}")
        holds &= (m - nm) * 100 > FAR_JDR_POINTS
    return "; ".join(parts), holds


def _mpjpe(df, rig_prefix, method, k=None, estimator="psm") -> float:
    """Mean MPJPE of the rows of a setting; ``k`` is the paper's K (the ``paper_k`` column where a profile's own K
    values stand in for the paper's by rank)."""
    rows = df[df.rig.astype(str).str.startswith(rig_prefix) & (df.method == method) & (df.estimator == estimator)]
    if k is not None:
        rows = rows[(rows.paper_k if "paper_k" in rows.columns else rows.k) == k]
    if "motion_type" in rows.columns and rows.motion_type.notna().any():
        rows = rows[rows.motion_type.isna() | (rows.motion_type == "all")] if (rows.motion_type == "all").any() else rows
    if rows.empty:
        raise Missing(f"no MPJPE row for rig={rig_prefix} method={method} k={k} estimator={estimator}")
    return float(rows.mpjpe_mm.mean())


def _mf_3d_falls_with_k(df):
    kcol = "paper_k" if "paper_k" in df.columns else "k"
    ks = sorted(int(k) for k in df[(df.method == "MetaFuse") & df.rig.astype(str).str.startswith("h36m")][kcol].dropna().unique())
    if not ks:
        raise Missing("no MetaFuse rows on the H36M-like rig")
    base = _mpjpe(df, "h36m", "NoFusion")
    errs = [_mpjpe(df, "h36m", "MetaFuse", k) for k in ks]
    text = f"NoFusion {base:.1f} mm; " + ", ".join(f"MetaFuse^{k} {e:.1f}" for k, e in zip(ks, errs))
    falls = mm_below(errs[-1], errs[0]) and not any(mm_below(a, b) for a, b in zip(errs, errs[1:]))
    return text, all(mm_below(e, base) for e in errs) and falls


def _panoptic_order(df):
    no = _mpjpe(df, "dome", "NoFusion")
    m50, m200 = _mpjpe(df, "dome", "MetaFuse", 50), _mpjpe(df, "dome", "MetaFuse", 200)
    n50, n200 = _mpjpe(df, "dome", "NaiveFuse", 50), _mpjpe(df, "dome", "NaiveFuse", 200)
    text = f"NoFusion {no:.1f}, MetaFuse^50 {m50:.1f}, MetaFuse^200 {m200:.1f}, NaiveFuse^50 {n50:.1f}, NaiveFuse^200 {n200:.1f} mm"
    return text, mm_below(m200, m50) and mm_below(m50, no) and mm_below(no, n50) and mm_below(m200, n200)


def _rpsm_below_psm(df):
    """Mean over the (rig, method, k) settings measured with both estimators."""
    keys = [c for c in ("rig", "method", "k", "motion_type", "smoothing", "trial") if c in df.columns]
    rows = df[df.estimator.isin(["psm", "rpsm"])].copy()
    rows[keys] = rows[keys].astype(object).fillna("-").astype(str)  # NaN keys would drop out of the pivot
    paired = rows.pivot_table(index=keys, columns="estimator", values="mpjpe_mm", aggfunc="mean")
    if not {"psm", "rpsm"} <= set(paired.columns) or paired.dropna().empty:
        raise Missing("no setting measured with both PSM and RPSM")
    paired = paired.dropna()
    psm, rpsm = paired.psm.mean(), paired.rpsm.mean()
    return f"{len(paired)} settings: PSM {psm:.1f} mm, RPSM {rpsm:.1f} mm on average", mm_below(rpsm, psm)


def _savgol_helps_walking(df):
    if "smoothing" not in df.columns:
        raise Missing("no smoothing column in mpjpe.csv")
    rows = df[df.rig.astype(str).str.startswith("totalcapture") & (df.motion_type == "walk")]
    raw, smooth = rows[rows.smoothing == "none"], rows[rows.smoothing == "savgol"]
    if raw.empty or smooth.empty:
        raise Missing("no walking rows with and without Savitzky-Golay smoothing")
    a, b = float(raw.mpjpe_mm.mean()), float(smooth.mpjpe_mm.mean())
    return f"walking: {a:.1f} → {b:.1f} mm ({b - a:+.1f})", mm_below(b, a)


def _table5_order(df):
    mm = df.set_index("method").mpjpe_mm
    need = ["ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion"]
    if not set(need) <= set(mm.index):
        raise Missing(f"ablation lacks {set(need) - set(mm.index)}")
    text = ", ".join(f"{m} {mm[m]:.1f}" for m in need) + " mm"
    return text, mm_below(mm["TrainableFusion"], mm[[m for m in need if m != "TrainableFusion"]].min())


def _fusion_runs(df):
    """First and last record of the training run that has the λ/α² term (its penalty is positive)."""
    with_reg = df.groupby("run").penalty.max()
    with_reg = [r for r, p in with_reg.items() if p > 0]
    if not with_reg:
        raise Missing("no training record with the λ/α² term")
    rows = df[df.run == with_reg[0]].sort_values("step")
    return rows.iloc[0], rows.iloc[-1]


def _alpha_grows(df):
    first, last = _fusion_runs(df)
    return f"α {first.alpha:.3g} → {last.alpha:.3g}", last.alpha > first.alpha


def _beta_later(df):
    first, last = _fusion_runs(df)
    return f"β {first.beta:.3g} → {last.beta:.3g}", last.beta > first.beta


def _decorrelated(df):
    """Cross-stream R² (block image-cm) below the R² within each stream (image-image, cm-cm)."""
    block = df.block.astype(str)
    cross = df[block.str.contains("image") & block.str.contains("cm")]
    within = df[~(block.str.contains("image") & block.str.contains("cm"))]
    if cross.empty or within.empty:
        raise Missing("no cross-stream or within-stream correlation rows")
    r2, r2_within = float(cross.mean_r2.iloc[0]), float(within.mean_r2.min())
    return f"mean R² across streams {r2:.3g}, within a stream ≥ {r2_within:.3g}", r2 < r2_within


JDR, MPJPE = "04_few_shot_curves/jdr.csv", "05_rpsm_3d/mpjpe.csv"


def _headline(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a claim reads: the ``test`` split where a table has a ``split`` column (``stress`` rows stay apart)."""
    return table[table.split == "test"] if "split" in table.columns else table
CLAIMS: tuple[Claim, ...] = (
    Claim("MF-fig7-order", MF, "At small K, MetaFuse^K > AffineFuse^K > NaiveFuse^K (mean JDR)", "ordering in Fig. 7",
          JDR, _mf_ordering),
    Claim("MF-fig7-naive50", MF, "NaiveFuse^50 is below NoFusion (over-fitting)", "below NoFusion (Fig. 7)", JDR,
          _naive_below_nofusion),
    Claim("MF-fig7-meta50", MF, "MetaFuse^50 is above NoFusion", "above NoFusion (Fig. 7)", JDR, _meta_above_nofusion),
    Claim("MF-fig7-joints", MF, "MetaFuse's largest gains over NoFusion are at wrists and elbows",
          "elbow 83.7% → 86.3% at K=50", JDR, _gains_at_wrists_elbows),
    Claim("MF-fig7-500", MF, f"MetaFuse^500 is close to NaiveFuse^full (within {CLOSE_JDR_POINTS:g} JDR point)",
          "similar (Fig. 7)", JDR, _meta500_close_to_full),
    Claim("MF-fig7-trend", MF, "Every finetuned method's mean JDR is higher at the largest K than at the smallest",
          "all curves rise with K (Fig. 7)", JDR, _jdr_rises_with_k),
    Claim("MF-naive-meta", MF, f"Meta-learned NaiveFuse is far below MetaFuse (> {FAR_JDR_POINTS:g} point at K=50, 100)",
          "87.7% / 89.3% mean JDR at K=50 / 100", JDR, _naive_meta_far_below),
    Claim("MF-table2", MF, "3D error (PSM) of MetaFuse is below NoFusion and falls with K",
          " / ".join(f"{paper_mpjpe_mm('h36m', 'MetaFuse', k):g}" for k in (50, 100, 500)) + " mm at K=50/100/500", MPJPE, _mf_3d_falls_with_k),
    Claim("MF-panoptic", MF, "Panoptic ordering: MetaFuse^200 < MetaFuse^50 < NoFusion < NaiveFuse^50, MetaFuse^200 < NaiveFuse^200",
          " < ".join(f"{paper_mpjpe_mm('dome_heldout', m, k):.2f}" for m, k in (("MetaFuse", 200), ("MetaFuse", 50),
                                                                          ("NoFusion", 0), ("NaiveFuse", 50)))
          + f"; NaiveFuse^200 {paper_mpjpe_mm('dome_heldout', 'NaiveFuse', 200):.2f} mm", MPJPE, _panoptic_order),
    Claim("CV-rpsm", CV, "RPSM has a lower 3D error than PSM", "RPSM improves over PSM by a large margin", MPJPE,
          _rpsm_below_psm),
    Claim("MF-savgol", MF, "Savitzky-Golay smoothing lowers the error on walking", "about −5 mm (Sec. 5.3)", MPJPE,
          _savgol_helps_walking),
    Claim("TK-table5", TK, "Trainable fusion beats ImageOnly, CMOnly, early and late fusion (MPJPE)", "Table 5 ordering",
          "06_trainable_fusion/ablation.csv", _table5_order),
    Claim("TK-alpha", TK, "α grows during training (fusion becomes sharp)", "α increases (Fig. 5)",
          "06_trainable_fusion/fusion_parameters.csv", _alpha_grows),
    Claim("TK-beta", TK, "β moves to later layers during training", "β increases (Fig. 5)",
          "06_trainable_fusion/fusion_parameters.csv", _beta_later),
    Claim("TK-decorrelation", TK, "Image and confidence-map stream features are decorrelated (R² across streams below R² within a stream)",
          "low correlation (Fig. 7)", "06_trainable_fusion/stream_correlation.csv", _decorrelated),
)


FIG7_REASONS = {  # where a Fig. 7 finding fails here, what differs from the paper's setting that could explain it
    "MF-fig7-order": "the ordering needs the meta-learned θ to transfer; our meta-training is short (profile "
                     "`meta_iterations`) and our backbone's heatmaps are cleaner than on real images, so there is less "
                     "for any fusion to fix",
    "MF-fig7-naive50": "NaiveFuse over-fits K frames through Z1·Z2 free weights per pair; with our finetuning step count "
                       "it may not have moved far enough from its zero (= NoFusion) start to over-fit",
    "MF-fig7-meta50": "a gain over NoFusion needs errors that other views can correct (occlusions, left/right swaps); "
                      "the synthetic studio has fewer of them than Human3.6M",
    "MF-fig7-joints": "the paper's wrist/elbow gains come from self-occlusion of the arms in real footage; our "
                      "occluders and body model make other joints the hard ones",
    "MF-fig7-500": "NaiveFuse^full sees the whole pool for many more steps; our K=500 finetuning uses the profile's "
                   "`finetune_steps` only",
    "MF-fig7-trend": "more frames help only when the few-shot fits are limited by data, not by the step budget",
    "MF-naive-meta": "meta-learning a shared Z1×Z2 matrix has no geometry to transfer; a small gap means our target rigs "
                     "resemble the dome's training pairs more than Human3.6M resembles Panoptic",
}


def fig7_findings(jdr: pd.DataFrame) -> pd.DataFrame:
    """The Fig. 7 claims of :data:`CLAIMS` (those read from ``jdr.csv``) checked on every rig of the table: one row per
    rig and claim with ``rig, claim_id, claim, paper_value, our_value, holds`` ("yes"/"no"/"not run") and, for a
    claim that does not hold, ``possible_reason`` (:data:`FIG7_REASONS`: a hypothesis, not a measurement)."""
    rows = []
    for rig in jdr.rig.unique():
        for c in CLAIMS:
            if c.evidence != JDR:
                continue
            try:
                our_value, holds = c.check(jdr, rig=rig)
                verdict = "yes" if holds else "no"
            except Missing as why:
                our_value, verdict = f"not measured: {why}", "not run"
            rows.append(dict(rig=rig, claim_id=c.claim_id, claim=c.claim, paper_value=c.paper_value,
                             our_value=our_value, holds=verdict,
                             possible_reason=FIG7_REASONS.get(c.claim_id, "") if verdict == "no" else ""))
    return pd.DataFrame(rows)


def scorecard(results_dir: Path | str) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` checked against the tables under ``results_dir`` (``results/<profile>``)."""
    results_dir = Path(results_dir)
    rows = []
    for c in CLAIMS:
        path = results_dir / c.evidence
        try:
            if not path.exists():
                raise Missing(f"{c.evidence} was not produced")
            our_value, holds = c.check(_headline(pd.read_csv(path)))
            verdict = "yes" if holds else "no"
        except Missing as why:
            our_value, verdict = f"not measured: {why}", "not run"
        rows.append(dict(claim_id=c.claim_id, paper=c.paper, claim=c.claim, paper_value=c.paper_value,
                         our_value=our_value, holds=verdict, evidence=c.evidence))
    return pd.DataFrame(rows)
