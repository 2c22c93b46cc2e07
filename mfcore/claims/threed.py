"""The 3D claims of MetaFuse (Tables 2-3, Sec. 5.3-5.4) and Cross View Fusion's RPSM (chapter 5's
``mpjpe_frames.csv``): differences of MPJPE in mm, paired per frame, RPSM rows unless said otherwise."""

from __future__ import annotations

import pandas as pd

from .. import stats
from ..stats import Interval
from .papers import UNPRINTED_MM, label, mm_effect
from .units import (MARGIN_SHARE, SAMPLED, Effect, Missing, Part, decide, headline, mm_units, n_seeds, pair,
                    paired_interval, printed, trained_seeds)

TABLE2_EFFECTS = {(50, 100): printed(32.7, 31.3, "MetaFuse Table 2, MetaFuse^50 → MetaFuse^100 (mm)"),
                  (100, 500): printed(31.3, 29.3, "MetaFuse Table 2, MetaFuse^100 → MetaFuse^500 (mm)")}
SAVGOL_MM = Effect(-5.0, MARGIN_SHARE * 5.0, "MetaFuse Sec. 5.3: the Walking error 'decreases by about 5mm'")


def mm_interval(frames: pd.DataFrame, rig_prefix: str, a: tuple, b: tuple, *, estimator: str = "rpsm",
                k_column: str = "paper_k", seed: int = 0) -> Interval:
    """Paired interval of MPJPE(a) − MPJPE(b) in mm on the frames (camera draws, seeds) both settings have, from a
    per-frame table (``mpjpe_frames.csv``); a, b: (method, K) or (method, K, smoothing) with K in ``k_column``
    ("paper_k" or the profile's "k"; None for any) and smoothing :data:`SAMPLED` unless given. The rule of chapter 5's
    comparisons with the papers, as of the scorecard."""
    frames = headline(frames)
    if k_column != "paper_k":
        frames = frames.drop(columns=["paper_k"], errors="ignore").assign(paper_k=frames[k_column])
    a, b = (tuple(x) + (SAMPLED,) * (3 - len(x)) for x in (a, b))
    both = pair(mm_units(frames, rig_prefix, a[0], a[1], estimator, a[2]),
                mm_units(frames, rig_prefix, b[0], b[1], estimator, b[2]))
    return paired_interval(both, "value_a", "value_b", seed=seed)


def _mm_part(df, rig_prefix, lower, higher, effect: Effect, estimator="rpsm") -> Part:
    """The claim "``lower`` has the smaller MPJPE than ``higher``" ((method, K) each) as a part."""
    both = pair(mm_units(df, rig_prefix, *lower, estimator), mm_units(df, rig_prefix, *higher, estimator))
    return Part(f"{rig_prefix}: {label(*lower)} − {label(*higher)}", paired_interval(both, "value_a", "value_b"),
                "less", effect, n_seeds(both))


def _mm_means(df, rig_prefix, settings) -> str:
    return ", ".join(f"{label(*s)} {mm_units(df, rig_prefix, *s).value.mean():.1f}" for s in settings) + " mm"


def _paper_ks(df, rig_prefix, method):
    kcol = "paper_k" if "paper_k" in df.columns else "k"
    rows = df[(df.method == method) & df.rig.astype(str).str.startswith(rig_prefix)]
    return sorted(int(k) for k in rows[kcol].dropna().unique() if k)


def _mf_3d_falls_with_k(df):
    """NoFusion > MetaFuse^50 > MetaFuse^100 > MetaFuse^500 (H36M-like room; Table 2 prints no NoFusion)."""
    df = headline(df)
    ks = _paper_ks(df, "h36m", "MetaFuse")
    if not ks:
        raise Missing("no MetaFuse rows on the H36M-like rig")
    chain = [("NoFusion", None)] + [("MetaFuse", k) for k in ks]
    parts = [_mm_part(df, "h36m", lo, hi, TABLE2_EFFECTS.get((hi[1], lo[1]), UNPRINTED_MM))
             for hi, lo in zip(chain, chain[1:])]
    return decide(parts, "mm", _mm_means(df, "h36m", chain))


def _panoptic_order(df):
    """NaiveFuse^50 > NoFusion > MetaFuse^50 > MetaFuse^200 and NaiveFuse^200 > MetaFuse^200 (MetaFuse Sec. 5.4)."""
    df = headline(df)
    pairs = [(("NoFusion", 0), ("NaiveFuse", 50)), (("MetaFuse", 50), ("NoFusion", 0)),
             (("MetaFuse", 200), ("MetaFuse", 50)), (("MetaFuse", 200), ("NaiveFuse", 200))]
    parts = [_mm_part(df, "dome", (lo[0], lo[1] or None), (hi[0], hi[1] or None),
                      mm_effect("dome_heldout", hi, lo)) for lo, hi in pairs]
    settings = [("NaiveFuse", 50), ("NoFusion", None), ("MetaFuse", 50), ("MetaFuse", 200), ("NaiveFuse", 200)]
    return decide(parts, "mm", _mm_means(df, "dome", settings))


def _table3_above_nofusion(df):
    """MetaFuse^500 below NoFusion on the Total-Capture-like ring (MetaFuse Table 3, mean over its categories); the
    profile's largest K stands for the paper's 500 where it has fewer K than the paper."""
    df = headline(df)
    ks = _paper_ks(df[df.smoothing.fillna(SAMPLED) == SAMPLED] if "smoothing" in df.columns else df, "totalcapture",
                   "MetaFuse")
    if not ks:
        raise Missing("no MetaFuse rows on the Total-Capture-like rig")
    part = _mm_part(df, "totalcapture", ("MetaFuse", ks[-1]), ("NoFusion", None),
                    mm_effect("totalcapture", ("NoFusion", 0), ("MetaFuse", 500)))
    return decide([part], "mm", _mm_means(df, "totalcapture", [("NoFusion", None), ("MetaFuse", ks[-1])]))


RPSM_PAIRED_METHODS = "every 2D method's own heatmaps (GroundTruth2D rows excluded; sampled test frames only)"


def _rpsm_below_psm(df, seed=0):
    """RPSM − PSM per frame, over every (rig, method, K, seed, trial, frame) measured with both: a frame of a rig is
    one unit for every method, camera draw and seed (drawn together), clustered by its clip, seeds crossed."""
    df = headline(df)
    rows = df[(df.method != "GroundTruth2D") & df.estimator.isin(["psm", "rpsm"])]
    if "smoothing" in rows.columns:
        rows = rows[rows.smoothing.fillna(SAMPLED) == SAMPLED]
    seeds = max(1, trained_seeds(rows))  # before the untrained rows' missing seed becomes the key "-"
    keys = [c for c in ("rig", "method", "k", "seed", "trial", "frame", "clip") if c in rows.columns]
    rows = rows.assign(**{c: rows[c].astype(object).fillna("-").astype(str) for c in keys})
    paired = rows.pivot_table(index=keys, columns="estimator", values="mpjpe_mm", aggfunc="mean")
    if not {"psm", "rpsm"} <= set(paired.columns) or paired.dropna().empty:
        raise Missing("no frame measured with both PSM and RPSM")
    paired = paired.dropna().reset_index()
    unit = paired[[c for c in ("rig", "trial", "frame") if c in paired.columns]].astype(str).agg("/".join, axis=1)
    clusters = (paired.rig + "/" + paired["clip"]).to_numpy() if "clip" in paired.columns else None
    crossed = [paired.seed.to_numpy()] if "seed" in paired.columns and paired.seed.nunique() > 1 else None
    iv = stats.paired_bootstrap(paired.rpsm, paired.psm, units=unit.to_numpy(), clusters=clusters, crossed=crossed,
                                seed=seed)
    n_settings = len(paired.drop_duplicates([c for c in ("rig", "method", "k", "trial") if c in paired.columns]))
    text = (f"{n_settings} settings of {RPSM_PAIRED_METHODS}: PSM {paired.psm.mean():.1f} mm, RPSM "
            f"{paired.rpsm.mean():.1f} mm")
    return decide([Part("RPSM − PSM", iv, "less", UNPRINTED_MM, seeds)], "mm", text)


WALK_BLOCK_FRAMES = 9  # consecutive frames of a test sequence resampled together (the filter's window)


def savgol_interval(df: pd.DataFrame, method: str = "MetaFuse", k=None, seed: int = 0) -> Interval:
    """Savitzky-Golay − per frame, MPJPE (mm) of ``method`` on the contiguous test sequences (MetaFuse Sec. 5.3),
    paired per frame. Neighbouring frames' errors (and the filter's output) are correlated: blocks of
    :data:`WALK_BLOCK_FRAMES` consecutive frames are drawn whole, clustered by their sequence (``clip``)."""
    if "smoothing" not in df.columns:
        raise Missing("no smoothing column in the per-frame 3D table")
    both = pair(mm_units(df, "totalcapture", method, k, "rpsm", "savgol"),
                mm_units(df, "totalcapture", method, k, "rpsm", "none"))
    clip = both["clip"].astype(str) if "clip" in both.columns else pd.Series("walk", index=both.index)
    blocks = (clip + "/" + both.trial.astype(str) + "/" + (both.frame // WALK_BLOCK_FRAMES).astype(str)).to_numpy()
    clusters = clip.to_numpy() if clip.nunique() > 1 else None
    crossed = [both.seed.to_numpy()] if "seed" in both.columns and both.seed.nunique() > 1 else None
    return stats.paired_bootstrap(both.value_a, both.value_b, units=blocks, clusters=clusters, crossed=crossed,
                                  seed=seed)


def _savgol_helps(df):
    df = headline(df)
    raw = mm_units(df, "totalcapture", "MetaFuse", None, "rpsm", "none")
    smooth = mm_units(df, "totalcapture", "MetaFuse", None, "rpsm", "savgol")
    iv = savgol_interval(df, "MetaFuse")
    clips = raw["clip"].nunique() if "clip" in raw.columns else 1
    part = Part("MetaFuse: Savitzky-Golay − per frame", iv, "less", SAVGOL_MM, trained_seeds(raw))
    return decide([part], "mm", f"MetaFuse on {len(raw)} frames of {clips} test sequence(s): {raw.value.mean():.1f} → "
                                f"{smooth.value.mean():.1f} mm (blocks of {WALK_BLOCK_FRAMES} frames, by sequence)")

