"""The claims of Tekin et al. (chapter 6's tables): Table 5's 3D errors paired per test sample (seeds crossed with
the samples), and the fusion stream's mechanisms (α, β, the streams' correlation) with an interval over seeds."""

from __future__ import annotations

import pandas as pd

from .papers import TABLE5_MM
from .units import (MARGIN_SHARE, Effect, Missing, Part, decide, n_seeds, over_seeds, pair, paired_interval,
                    per_seed_changes, printed)

TEKIN_ADAM_RATE = 1e-3  # Tekin et al. Sec. 3.2: Adam at 10^-3; Adam moves a parameter by about its rate per step
NO_PRINTED_VALUE = Effect(None, 0.0, "the paper prints no value: tested against 0 only")


def _table5_effect(fusion: str, single: str) -> Effect:
    return printed(TABLE5_MM[single], TABLE5_MM[fusion], f"Tekin Table 5, {single} → {fusion} (mm)")


TABLE5 = ["ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion"]
FUSIONS, SINGLE_STREAMS = ("EarlyFusion", "LateFusion", "TrainableFusion"), ("ImageOnly", "CMOnly")


def _sample_units(df: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = df[df.method == method]
    if rows.empty:
        raise Missing(f"ablation lacks {method}")
    out = pd.DataFrame({"seed": rows.seed.fillna(-1) if "seed" in rows.columns else 0, "trial": 0,
                        "frame": rows["sample"],
                        "value": rows.mpjpe_mm.astype(float)})
    if "clip" in rows.columns:
        out["clip"] = rows["clip"].astype(str)
    return out.reset_index(drop=True)


def _sample_part(df, lower: str, higher: str) -> Part:
    both = pair(_sample_units(df, lower), _sample_units(df, higher))
    return Part(f"{lower} − {higher}", paired_interval(both, "value_a", "value_b"), "less",
                _table5_effect(lower, higher), n_seeds(both))


def _means(df, methods) -> str:
    return ", ".join(f"{m} {df[df.method == m].mpjpe_mm.mean():.1f}" for m in methods) + " mm"


def _table5_order(df):
    """TrainableFusion's per-sample MPJPE against each other method of Table 5, paired on the test samples (seeds
    crossed with the samples, samples clustered by clip where the table has one)."""
    parts = [_sample_part(df, "TrainableFusion", m) for m in TABLE5[:-1]]
    return decide(parts, "mm", _means(df, TABLE5))


def _fusion_beats_streams(df):
    """Every fusion (early, late, trainable) below both single streams (Tekin Sec. 4.3, Table 5)."""
    parts = [_sample_part(df, f, s) for f in FUSIONS for s in SINGLE_STREAMS]
    return decide(parts, "mm", _means(df, TABLE5))


def _runs(df) -> tuple[str, str | None]:
    """The run at the paper's λ (the first with a positive λ/α² term) and the λ = 0 control (a run whose penalty is 0
    throughout; None where there is none)."""
    _check = {"run", "step", "alpha", "beta", "penalty"} - set(df.columns)
    if _check:
        raise Missing(f"fusion_parameters.csv lacks {sorted(_check)}")
    top = df.groupby("run", sort=False).penalty.max()
    with_reg = [r for r, p in top.items() if p > 0]
    if not with_reg:
        raise Missing("no training record with the λ/α² term")
    control = [r for r, p in top.items() if p == 0]
    return with_reg[0], (control[0] if control else None)


def _range(change: pd.Series) -> str:
    return f"{change.mean():+.3g} (per seed {change.min():+.3g} to {change.max():+.3g})"


def _alpha_from_data(df):
    """α's change in the λ = 0 control run (the data loss alone moves α), interval over seeds; the run at the paper's
    λ beside it (its λ/α² term pushes α up by construction, so it cannot show that training sharpens the fusion)."""
    run, control = _runs(df)
    if control is None:
        raise Missing("no λ = 0 control run in fusion_parameters.csv")
    with_penalty, without = per_seed_changes(df, run, "alpha"), per_seed_changes(df, control, "alpha")
    part = Part(f"{control}: Δα", over_seeds(without), "greater", NO_PRINTED_VALUE, len(without))
    return decide([part], "α", f"Δα at {run} {_range(with_penalty)}; at {control} {_range(without)}")


def beta_margin(df, run: str) -> Effect:
    """TK-beta's margin: half of what Adam can move β at the paper's rate in the run's steps (Adam moves a parameter
    by about its rate per step at most), MARGIN_SHARE × TEKIN_ADAM_RATE × steps layers."""
    steps = int(df[df.run == run].groupby(df.seed if "seed" in df.columns else 0).step.agg(lambda s: s.max() - s.min())
                .min())
    reach = TEKIN_ADAM_RATE * steps
    return Effect(None, MARGIN_SHARE * reach, f"Fig. 5 prints no β; half of the {reach:.3g} layer Adam can move β at "
                                              f"the paper's rate {TEKIN_ADAM_RATE:g} in {steps} steps")


def _beta_later(df):
    run, control = _runs(df)
    change = per_seed_changes(df, run, "beta")
    part = Part(f"{run}: Δβ", over_seeds(change), "greater", beta_margin(df, run), len(change))
    text = f"Δβ at {run} {_range(change)}"
    if control is not None:
        text += f"; at {control} {_range(per_seed_changes(df, control, 'beta'))}"
    return decide([part], "layers", text)


def _cross_r2(df, network):
    rows = df[(df.network == network) & df.block.astype(str).str.contains("image")
              & df.block.astype(str).str.contains("cm")]
    if rows.empty:
        raise Missing(f"no image-cm correlation rows of the {network} network")
    return rows.assign(seed=rows.seed if "seed" in rows.columns else 0).groupby("seed").mean_r2.mean()


def _decorrelated(df):
    """Cross-stream R² (image-cm) of the trained network below the untrained network's (the null: what two streams
    of random weights share), paired per seed, interval over seeds."""
    if "network" not in df.columns:
        raise Missing("stream_correlation.csv has no untrained null (no network column)")
    trained, untrained = _cross_r2(df, "trained"), _cross_r2(df, "untrained")
    diff = (trained - untrained.reindex(trained.index) if len(untrained) > 1 else trained - untrained.iloc[0]).dropna()
    if diff.empty:
        raise Missing("no seed with both a trained and an untrained network")
    part = Part("trained − untrained cross-stream R²", over_seeds(diff), "less", NO_PRINTED_VALUE, len(diff))
    return decide([part], "R²", f"image-cm R² trained {trained.mean():.3g}, untrained {untrained.mean():.3g}")

