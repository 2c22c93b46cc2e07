"""The executed smoke book against the results contract and against the committed golden copy, on any machine.

Where the results are. `make book` executes the smoke book into ``_build/results/smoke`` (ignored by git, so `make book`
+ `make test` leave `git status` clean); the golden copy ``results/smoke`` is committed and changes only through
`make golden`. These checks read the fresh build (``_build/results/smoke``, else ``results/smoke`` if that is all there
is: then the golden comparisons are skipped, there being nothing fresh to compare) and the golden copy from the working
tree, not from ``git show HEAD:``: that works in a copy without git (a tarball, a shallow CI checkout), and after
`make golden` it compares against what is about to be committed.

The design: the same bits on every x86-64 CPU, then exact comparison. Small training runs are chaotic: on another CPU
model the book's libraries used to pick other code for the same call (ATen's AVX512 or AVX2 kernels, oneDNN's and
NNPACK's convolutions, oneMKL's and OpenBLAS's ISA branches, numpy's dispatched loops, glibc's FMA variants of exp and
log), a last bit moved in the warm-up, and by the end JDRs differed by 0.1, MPJPEs by 1,000 mm and verdicts flipped
(measured on an AMD EPYC against this golden copy's Intel Xeon; bands fitted between two CPUs then failed on a third).
Widening bands until they pass would make the test unable to fail. So the smoke book's numerics are made portable
instead (:mod:`mfbook.numerics`: the runner starts every CPU chapter with each of those choices pinned to code that every
x86-64 CPU runs alike, one thread, oneDNN and NNPACK off; the cost is measured in the README), and each chapter
records a **numerics fingerprint** in ``provenance.json`` (:func:`mfbook.numerics.numerics_fingerprint`: the sha256 of
the bits of a small computation exercising what the book computes with, hashed with the torch and numpy versions and
the numerics mode). The checks then depend on it:

1. **Same fingerprint as the golden copy** — every x86-64 CPU, Intel or AMD, with the pinned torch and numpy
   (``constraints.txt``): every CSV must be byte-identical. This catches any change of behaviour, however small.
2. **Another fingerprint** (another torch or numpy version, a CPU whose arithmetic differs even under the portable
   settings, a non-x86 machine): the tables in :data:`PORTABLE_TABLES`, the rows in :data:`PORTABLE_ROWS` and the
   numbers in :data:`EXACT_NUMBERS` (settings, geometry, data: nothing trained) must still agree (text exactly, numbers
   up to float rounding, :data:`TRAINING_FREE_RTOL`); every other
   table must have the golden's columns and row labels exactly (every column that is not a trained number,
   :data:`MEASURED`, or a verdict, :data:`VERDICTS`, is compared as exact text). Trained numbers are then held to their
   invariants only, never to a band fitted to some other machine. This path is weaker by design; the unit tests
   (which are exact on every machine) and the training-free tables are what catch a bug there.
3. **On every machine**: each table holds its invariants (:func:`invariant_problems`: finite numbers, JDR and shares in
   [0, 1], millimetres and losses positive, the losses the chapters say fall do fall, verdicts in their vocabulary),
   and a smoke run executed by the runner on the CPU ran under the portable numerics.

``MFBOOK_FINGERPRINT_OVERRIDE=<hex>`` makes the fresh run's fingerprint read as ``<hex>`` (to see what another torch
would check: any value that is not the golden's); ``MFBOOK_FRESH_RESULTS=DIR`` checks another folder of executed smoke
results (a run made elsewhere) instead of ``_build/results/smoke``.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "results" / "smoke"  # the committed golden copy, read from the working tree
BUILD = REPO / "_build" / "results" / "smoke"  # where `make book` executes the smoke book
FRESH = BUILD if list(BUILD.glob("*/provenance.json")) else GOLDEN
if os.environ.get("MFBOOK_FRESH_RESULTS"):  # another folder of executed smoke results to check (a run elsewhere)
    FRESH = Path(os.environ["MFBOOK_FRESH_RESULTS"]).resolve()
STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))
OVERRIDE_ENV = "MFBOOK_FINGERPRINT_OVERRIDE"
CONTRACT_COLUMNS = {
    "04_few_shot_curves/jdr.csv": {"rig", "method", "k", "joint", "jdr"},
    "05_rpsm_3d/mpjpe.csv": {"rig", "method", "k", "estimator", "mpjpe_mm"},
    "05_rpsm_3d/floor.csv": {"estimator", "grid_bins", "stages", "mpjpe_mm"},  # the 3D step on ground-truth heatmaps
    "05_rpsm_3d/pcp.csv": {"rig", "method", "k", "estimator", "limb", "pcp"},
    "06_trainable_fusion/ablation.csv": {"method", "seed", "mpjpe_mm", "pa_mpjpe_mm"},
    "02_synthetic_studio/motion.csv": {"source", "clip", "split", "frames", "fps", "licence"},
    "02_synthetic_studio/occlusion.csv": {"rig", "joint", "occluded_fraction"},
}

# Tables that do not train anything: identical on every CPU with the golden's fingerprint (as every table); with another
# fingerprint (another torch or numpy) compared cell by cell, text exactly and numbers to float rounding (TRAINING_FREE_RTOL).
PORTABLE_TABLES = {
    "01_fusion_geometry/param_counts.csv",  # counted, not computed in floats
    "02_synthetic_studio/motion.csv",  # the motion clips and their splits
    "02_synthetic_studio/occlusion.csv",  # rendered geometry
    "02_synthetic_studio/rigs.csv",  # camera placements
    "03_meta_training/param_counts.csv",
    "05_rpsm_3d/limb_stats.csv",  # statistics of the motion data
    "05_rpsm_3d/floor.csv",  # estimators on ground-truth heatmaps (as mpjpe.csv's GroundTruth2D rows)
    "02_synthetic_studio/framing.csv",  # labels only (poses through the cameras, float64): no training
    "02_synthetic_studio/splits.csv",  # frame counts of the motion splits
    "08_your_cameras/cameras.csv",  # the user's rig as given
}
# Rows of trained tables that do not depend on training (compared as PORTABLE_TABLES on another fingerprint). NoFusion
# is not among them: it is the warmed-up backbone's own heatmaps, and 37-40 of its 44 rows per rig moved (jdr.csv).
PORTABLE_ROWS = {
    "01_fusion_geometry/affine_fit.csv": ("method", {"single_map"}),  # the ideal map itself, no fit
    "01_fusion_geometry/camera_moves.csv": ("method", {"identity"}),
    "05_rpsm_3d/mpjpe.csv": ("method", {"GroundTruth2D"}),  # estimators on ground-truth heatmaps
    "05_rpsm_3d/mpjpe_by_subject.csv": ("method", {"GroundTruth2D"}),
    "05_rpsm_3d/smoothing.csv": ("method", {"GroundTruth2D"}),
    "05_rpsm_3d/pcp.csv": ("method", {"GroundTruth2D"}),
    "05_rpsm_3d/robustness.csv": ("estimator", {"triangulation", "ransac", "psm", "rpsm"}),
    "05_rpsm_3d/quantization.csv": ("unary", {"smoothed to the grid (ours)"}),
}
# Numbers in trained tables that are settings or geometry, not results of training: compared as PORTABLE_TABLES' cells
# exact text with the row labels on every machine.
EXACT_NUMBERS = {
    "01_fusion_geometry/affine_fit.csv": {"visible_fraction"},  # how much of the epipolar line is in view
    "01_fusion_geometry/camera_moves.csv": {"pixel_x_px", "pixel_y_px"},  # which pixels are followed
    "03_meta_training/warmup_loss.csv": {"lr"},  # the schedule
    "09_epipolar_oracle/epipolar_oracle.csv": {"gain"},
    "03_meta_training/meta_start.csv": {"omega_max", "inner_lr"},  # settings; a seeded torch.rand
    "05_rpsm_3d/paper_comparison.csv": {"paper_mpjpe_mm"},  # quoted from the papers
    "05_rpsm_3d/robustness.csv": {"outlier_fraction"},
    "06_trainable_fusion/ablation.csv": {"fusion_layer"},
    "06_trainable_fusion/imageonly_training_size.csv": {"fraction"},  # a setting
    "07_scorecard/scorecard.csv": {"n", "paper_effect", "margin"},  # frames or samples a claim is decided on; the
    "scorecard.csv": {"n", "paper_effect", "margin"},  # paper's effect and the margin stated next to each claim
    "07_scorecard/scorecard_parts.csv": {"paper_effect", "margin"},
    "04_few_shot_curves/fig7_findings.csv": {"paper_effect", "margin"},
    "05_rpsm_3d/claims.csv": {"paper_effect_mm", "margin_mm"},
    # the training seed of each row: a label (empty for NoFusion and the ground truth, which are not trained)
    "04_few_shot_curves/jdr.csv": {"seed"},
    "04_few_shot_curves/jdr_by_subject.csv": {"seed"},
    "04_few_shot_curves/jdr_frames.csv": {"seed"},
    "05_rpsm_3d/mpjpe_frames.csv": {"seed"},
    "10_metafuse_decided/control_frames.csv": {"seed"},
}
# Columns whose text is a verdict drawn from drifting numbers: compared only where the fingerprints match.
VERDICTS = {
    "04_few_shot_curves/fig7_findings.csv": ("our_value", "holds", "possible_reason", "part"),
    "05_rpsm_3d/claims.csv": ("holds",),
    "11_backbone_seed/backbone_seed.csv": ("within_width",),
    "09_epipolar_oracle/end_to_end_gains.csv": ("verdict",),
    "07_scorecard/scorecard.csv": ("our_value", "holds", "ci_low", "ci_high", "part"),  # the intervals and the
    "scorecard.csv": ("our_value", "holds", "ci_low", "ci_high", "part"),  # deciding part drift with the numbers
    "07_scorecard/scorecard_parts.csv": ("verdict", "n_to_decide"),
    "05_rpsm_3d/fused_maps_3d.csv": ("reading",),
}
VERDICT_VALUES = {"holds": {"yes", "no", "inconclusive", "not run", "True", "False"}}  # mfcore.stats.verdict

# Numbers in tables that depend on training (the backbone's warm-up, fusion training, meta-training, the Tekin networks,
# or anything computed from their outputs): compared exactly where the fingerprints match; elsewhere held to their
# invariants only (module docstring). Every other column of these tables is compared as exact text on every machine.
MEASURED = {
    "01_fusion_geometry/affine_fit.csv": {"value"},  # Adam fits of θ (the single_map rows are exact: PORTABLE_ROWS)
    "01_fusion_geometry/camera_moves.csv": {"value"},  # a least-squares fit
    "03_meta_training/finetune_jdr.csv": {"jdr"},
    "03_meta_training/finetune_loss.csv": {"mse"},
    "03_meta_training/pretraining_loss.csv": {"mse"},
    "03_meta_training/warmup_loss.csv": {"mse"},
    "03_meta_training/meta_start.csv": {"theta_grad_max", "inner_step_shift_px", "pixels_moved_over_tenth_px"},
    "04_few_shot_curves/jdr.csv": {"jdr"},
    "04_few_shot_curves/jdr_frames.csv": {"detected"},  # detections of trained heatmaps (counted: labels, exact)
    "04_few_shot_curves/fig7_findings.csv": {"ci_low", "ci_high"},
    "04_few_shot_curves/jdr_by_subject.csv": {"jdr"},
    "11_backbone_seed/backbone_seed.csv": {"diff_points", "ci_low", "ci_high", "width_points", "shift_points"},
    "05_rpsm_3d/claims.csv": {"difference_mm", "ci_low", "ci_high"},
    "05_rpsm_3d/mpjpe.csv": {"mpjpe_mm", "pa_mpjpe_mm", "pcp"},
    "05_rpsm_3d/pcp.csv": {"pcp"},
    "05_rpsm_3d/mpjpe_frames.csv": {"mpjpe_mm"},
    "05_rpsm_3d/mpjpe_by_subject.csv": {"mpjpe_mm", "pa_mpjpe_mm", "pcp"},
    "05_rpsm_3d/paper_comparison.csv": {"our_mpjpe_mm"},
    "05_rpsm_3d/quantization.csv": {"mpjpe_mm", "pa_mpjpe_mm", "final_cell_mm"},
    "05_rpsm_3d/robustness.csv": {"mpjpe_mm", "pa_mpjpe_mm"},
    "05_rpsm_3d/smoothing.csv": {"mpjpe_mm", "pa_mpjpe_mm", "difference_mm", "ci_low", "ci_high"},
    "06_trainable_fusion/ablation.csv": {"mpjpe_mm", "pa_mpjpe_mm"},
    "06_trainable_fusion/ablation_samples.csv": {"mpjpe_mm", "pa_mpjpe_mm"},
    "06_trainable_fusion/imageonly_training_size.csv": {"mpjpe_mm", "pa_mpjpe_mm", "mean_pose_mpjpe_mm",
                                                        "over_mean_pose"},
    "06_trainable_fusion/beta_sweep.csv": {"mpjpe_mm", "pa_mpjpe_mm"},
    "06_trainable_fusion/fusion_parameters.csv": {"alpha", "beta", "data_loss", "penalty"},
    "06_trainable_fusion/fusion_weights.csv": {"w"},
    "06_trainable_fusion/pruning.csv": {"max_w_rounding", "mpjpe_mm", "pa_mpjpe_mm", *(f"w_{l}" for l in range(1, 7))},
    "06_trainable_fusion/table5_intervals.csv": {"diff_mm", "ci_low_mm", "ci_high_mm", "seed_min_mm", "seed_max_mm"},
    "06_trainable_fusion/stream_correlation.csv": {"mean_r2"},
    "08_your_cameras/jdr.csv": {"jdr"},
    "08_your_cameras/gain_intervals.csv": {"gain_points", "ci_low", "ci_high"},
    "09_epipolar_oracle/epipolar_oracle.csv": {"mse", "mse_sum", "mse_softmax", "jdr"},  # on the backbone's heatmaps
    "09_epipolar_oracle/objective_candidates.csv": {"loss_min_gain", "jdr_at_min", "nofusion", "oracle_best",
                                                    "oracle_best_gain", "jdr_points_at_min"},
    "09_epipolar_oracle/naivefuse_end_to_end.csv": {"jdr"},
    "09_epipolar_oracle/end_to_end_gains.csv": {"jdr_a", "jdr_b", "gain_points", "ci_low", "ci_high"},
    "09_epipolar_oracle/naivefuse_end_to_end_loss.csv": {"view_loss", "fused_loss"},
    "09_epipolar_oracle/affinefuse_from_oracle.csv": {"mse", "jdr", "theta_shift"},
    "09_epipolar_oracle/naivefuse_from_oracle.csv": {"mse", "line_share", "jdr"},
    "09_epipolar_oracle/end_to_end_3d.csv": {"jdr_gain_points", "jdr_ci_low", "jdr_ci_high", "change_raw_mm",
                                             "change_raw_ci_low", "change_raw_ci_high", "change_sharpened_mm",
                                             "change_sharpened_ci_low", "change_sharpened_ci_high"},
    "09_epipolar_oracle/end_to_end_3d_frames.csv": {"mpjpe_mm"},
    "05_rpsm_3d/fused_maps_3d.csv": {"jdr", "jdr_gain_points", "jdr_ci_low", "jdr_ci_high", "mpjpe_raw_mm",
                                     "change_raw_mm", "change_raw_ci_low", "change_raw_ci_high", "mpjpe_sharpened_mm",
                                     "change_sharpened_mm", "change_sharpened_ci_low", "change_sharpened_ci_high"},
    "05_rpsm_3d/fused_maps_frames.csv": {"mpjpe_mm"},
    "07_scorecard/scorecard_parts.csv": {"diff", "ci_low", "ci_high"},
    "08_your_cameras/fusion_comparison.csv": {"jdr", "jdr_gain_points", "jdr_ci_low", "jdr_ci_high", "mpjpe_mm",
                                              "mpjpe_diff_mm", "mpjpe_ci_low", "mpjpe_ci_high"},
    # the round trip through the detection files: the backbone's 3D (trained); the exact formats' differences are 0
    "08_your_cameras/lift_round_trip.csv": {"mpjpe_mm", "internal_mpjpe_mm", "max_pose_diff_mm", "diff_mm"},
    "10_metafuse_decided/control_frames.csv": {"detected"},
    "10_metafuse_decided/meta_training_loss.csv": {"loss"},
    "10_metafuse_decided/metafuse_variants.csv": {"jdr", "delta_points", "ci_low", "ci_high"},
    "10_metafuse_decided/omega_lines.csv": {"amplitude", "position_px", "width_px", "near_share", "scale"},
    "10_metafuse_decided/theta_moves.csv": {"theta_shift_px"},
}


def golden_tables() -> list[str]:
    """Every committed CSV of the golden copy, relative to it (``07_scorecard/scorecard.csv``, ``scorecard.csv``)."""
    return sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.csv") if not p.parent.name.startswith("."))


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV as the text of its cells (empty cells as ``""``): what "exact" compares."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def fingerprint(folder: Path, stem: str) -> str | None:
    try:
        return json.loads((folder / stem / "provenance.json").read_text()).get("numerics_fingerprint")
    except (OSError, ValueError):
        return None


def same_numerics(stem: str) -> bool:
    """Whether the fresh run of chapter ``stem`` had the golden copy's numerics fingerprint (a golden copy without one,
    made before fingerprints were recorded, matches nothing)."""
    old = fingerprint(GOLDEN, stem)
    new = os.environ.get(OVERRIDE_ENV) or fingerprint(FRESH, stem)
    return old is not None and old == new


# A training-free number computed by another torch or numpy: the same up to float rounding (measured: estimators on
# ground-truth heatmaps and Procrustes fits moved by up to 2.9e-5 relative between two library builds: the RPSM's
# sub-cell refinement and an SVD), never by what a bug does (a transposed weight or a shifted threshold moves them by
# far more). Only for the fallback path: with the golden's fingerprint every byte must match.
TRAINING_FREE_RTOL = 1e-3


def close_problems(new: pd.DataFrame, old: pd.DataFrame, columns=None, rows=None) -> list[str]:
    """Cells that differ beyond float rounding: text cells exactly, numeric cells within :data:`TRAINING_FREE_RTOL`
    relative (all columns unless ``columns``; all rows unless the boolean mask ``rows``)."""
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return exact_problems(new, old)
    problems = []
    for col in columns if columns is not None else new.columns:
        a = pd.to_numeric(new[col].replace("", np.nan), errors="coerce").to_numpy(float)
        b = pd.to_numeric(old[col].replace("", np.nan), errors="coerce").to_numpy(float)
        numeric = ~np.isnan(a) & ~np.isnan(b)
        with np.errstate(invalid="ignore"):
            near = numeric & np.isclose(a, b, rtol=TRAINING_FREE_RTOL, atol=1e-9)
        differ = (new[col] != old[col]).to_numpy() & ~near
        if rows is not None:
            differ &= np.asarray(rows)
        for i in np.flatnonzero(differ)[:3]:
            problems.append(f"column {col!r}, row {i} ({row_label(old, i, {col})}): {new[col].iloc[i]!r} vs golden "
                            f"{old[col].iloc[i]!r} (training-free: must agree to {TRAINING_FREE_RTOL:g} relative)")
    return problems


def exact_problems(new: pd.DataFrame, old: pd.DataFrame, columns=None, rows=None) -> list[str]:
    """Cells whose text differs (all columns unless ``columns``; all rows unless the boolean mask ``rows``)."""
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return [f"columns/rows differ: {list(new.columns)} × {len(new)} rows vs golden {list(old.columns)} × {len(old)}"]
    problems = []
    for col in columns if columns is not None else new.columns:
        differ = new[col] != old[col]
        if rows is not None:
            differ &= rows
        for i in np.flatnonzero(differ.to_numpy())[:3]:
            problems.append(f"column {col!r}, row {i} ({row_label(old, i, {col})}): {new[col].iloc[i]!r} vs golden "
                            f"{old[col].iloc[i]!r} (must be identical)")
    return problems


def row_label(df: pd.DataFrame, i: int, skip=()) -> str:
    """The first few cells of row ``i`` outside ``skip`` (the compared columns): enough to find it in the CSV."""
    return ", ".join(f"{c}={df[c].iloc[i]}" for c in [c for c in df.columns if c not in skip][:3])


def golden_problems(table: str, same: bool) -> list[str]:
    """Everything wrong with the fresh ``table`` against the golden copy, for the fingerprint case ``same``."""
    new, old = read_text_table(FRESH / table), read_text_table(GOLDEN / table)
    if same:
        if (FRESH / table).read_bytes() == (GOLDEN / table).read_bytes():
            return []
        return exact_problems(new, old) or ["the files differ in bytes (line endings or quoting)"]
    if table in PORTABLE_TABLES:
        return close_problems(new, old)
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return exact_problems(new, old)
    measured, verdicts = MEASURED.get(table, set()), VERDICTS.get(table, ())
    exact_numbers = EXACT_NUMBERS.get(table, set())
    labels = [c for c in new.columns if c not in measured and c not in verdicts and c not in exact_numbers]
    problems = exact_problems(new, old, labels)  # the row labels (and every other column) exactly
    problems += close_problems(new, old, sorted(exact_numbers))  # settings and geometry
    if table in PORTABLE_ROWS:
        col, values = PORTABLE_ROWS[table]
        problems += close_problems(new, old, rows=old[col].isin(values))
    return problems


def fresh_or_skip():
    if FRESH == GOLDEN:
        pytest.skip(f"no fresh build in {BUILD.relative_to(REPO)}: run `make book` (the golden copy is not compared "
                    "with itself)")


@pytest.mark.parametrize("table", golden_tables())
def test_tables_match_the_committed_golden_copy(table):
    """Exact on the golden copy's numerics fingerprint; elsewhere training-free tables, rows and numbers exact and
    every label exact (module docstring)."""
    fresh_or_skip()
    stem = table.split("/")[0] if "/" in table else "07_scorecard"
    if not (FRESH / table).exists():
        pytest.fail(f"{FRESH / table} is missing: the golden copy has it")
    same = same_numerics(stem)
    problems = golden_problems(table, same)
    how = ("the golden copy's numerics fingerprint: every cell must be identical" if same else
           "another numerics fingerprint: " + ("a portable table, identical on every CPU" if table in PORTABLE_TABLES
                                               else "labels and training-free numbers exact; trained numbers (MEASURED) by invariants"))
    assert not problems, f"{table} ({how}):\n  " + "\n  ".join(problems[:8])


def as_numbers(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col].replace("", np.nan), errors="coerce").to_numpy(float)


def invariant_problems(table: str, df: pd.DataFrame) -> list[str]:
    """What any correct run satisfies, whatever the machine: measured numbers finite, JDR / shares / weights / r² in
    [0, 1], millimetres and losses positive, the losses the chapters say fall do fall, verdicts in their vocabulary."""
    problems = []
    for col in sorted(MEASURED.get(table, ())):
        values = as_numbers(df, col)
        present = values[~np.isnan(values)]  # empty cells: their place is compared with the golden's as a label
        if not present.size or not np.isfinite(present).all():
            problems.append(f"column {col!r}: no values, or non-finite ones")
        if col in ("jdr", "line_share", "w", "mean_r2", "max_w_rounding", "pcp") and not ((present >= 0) & (present <= 1)).all():
            problems.append(f"column {col!r}: values outside [0, 1]: {present[(present < 0) | (present > 1)][:3]}")
        signed = any(w in col for w in ("diff", "change", "ci_", "seed_"))  # differences (and their intervals)
        if ((col.endswith("_mm") and not signed) or col in ("mse", "data_loss")) and not (present > 0).all():
            problems.append(f"column {col!r}: values not positive: {present[~(present > 0)][:3]}")
        if col == "penalty" and not (present >= 0).all():
            problems.append("column 'penalty': negative values")
    for col in VERDICTS.get(table, ()):
        if col in VERDICT_VALUES and not set(df[col]) <= VERDICT_VALUES[col]:
            problems.append(f"column {col!r}: {set(df[col]) - VERDICT_VALUES[col]} not in {VERDICT_VALUES[col]}")
    if table == "03_meta_training/warmup_loss.csv":  # the warm-up's loss falls every epoch (chapter 3)
        mse = as_numbers(df, "mse")
        if not (np.diff(mse) < 0).all():
            problems.append(f"warm-up loss does not fall every epoch: {mse}")
    if table == "03_meta_training/pretraining_loss.csv":  # plain Adam on Eq. (3) lowers the loss (last vs first 1/4)
        # (MetaFuse and NaiveFuseMeta record a sampled task's loss after its inner step: finite and positive only; at
        # the smoke profile it is flat within noise, e.g. NaiveFuseMeta 0.002668 -> 0.002671)
        for method, g in df[~df.method.isin(["MetaFuse", "NaiveFuseMeta"])].groupby("method"):
            mse, q = as_numbers(g, "mse"), max(1, len(g) // 4)
            if not mse[-q:].mean() < mse[:q].mean():
                problems.append(f"{method}: pre-training loss does not fall ({mse[:q].mean():.4g} → {mse[-q:].mean():.4g})")
    if table == "06_trainable_fusion/fusion_parameters.csv":  # the penalty of Eq. (4) is λ/α² of the recorded α, and
        # α stays positive (Tekin et al. Sec. 3.1); the data loss need not fall at the smoke scale (40 steps of 16
        # samples at the paper's rate learn nothing yet: chapter 6 at smoke is a smoke test)
        alpha, penalty = as_numbers(df, "alpha"), as_numbers(df, "penalty")
        lam = df["run"].str.extract(r"λ = ([0-9.eE+-]+)")[0].astype(float).to_numpy()
        if not (alpha > 0).all():
            problems.append(f"α not positive: {alpha[~(alpha > 0)][:3]}")
        bad = ~np.isclose(penalty, lam / alpha**2, rtol=1e-3, atol=1e-6)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"penalty {penalty[i]:.6g} is not λ/α² = {lam[i]:g}/{alpha[i]:.6g}² (row {i})")
    return problems


@pytest.mark.parametrize("table", golden_tables())
def test_tables_hold_their_invariants(table):
    if not (FRESH / table).exists():
        pytest.fail(f"{FRESH / table} is missing: the golden copy has it")
    problems = invariant_problems(table, read_text_table(FRESH / table))
    assert not problems, f"{FRESH.relative_to(REPO) / table}:\n  " + "\n  ".join(problems)


def test_every_golden_table_classifies_its_numbers():
    """The lists above cover the golden copy: every float column of a table is a trained number (MEASURED), a verdict
    column (VERDICTS), a training-free number (EXACT_NUMBERS), or its table is training-free (PORTABLE_TABLES)."""
    for table in golden_tables():
        df = pd.read_csv(GOLDEN / table)
        floats = {c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and df[c].notna().any()}
        if table in PORTABLE_TABLES:
            assert table not in MEASURED, table
            continue
        unclassified = floats - MEASURED.get(table, set()) - set(VERDICTS.get(table, ())) - EXACT_NUMBERS.get(table, set())
        assert not unclassified, (f"{table}: numeric columns {sorted(unclassified)} need a place in MEASURED (trained), "
                                  "EXACT_NUMBERS (settings, geometry) or PORTABLE_TABLES")
        assert MEASURED.get(table, set()) <= set(df.columns), table
        assert EXACT_NUMBERS.get(table, set()) <= set(df.columns), (table, EXACT_NUMBERS.get(table, set()) - set(df.columns))
    for table in PORTABLE_ROWS:
        col, values = PORTABLE_ROWS[table]
        assert values <= set(pd.read_csv(GOLDEN / table, dtype=str)[col]), table


def test_the_comparison_catches_a_transposed_table_and_names_where():
    old = pd.DataFrame({"method": ["NoFusion", "MetaFuse"], "jdr": ["0.2", "0.3"]})
    swapped = old.assign(jdr=["0.3", "0.2"])
    assert exact_problems(old, old) == []
    assert exact_problems(swapped, old) and "row 0 (method=NoFusion" in exact_problems(swapped, old)[0]
    relabelled = old.assign(method=["MetaFuse", "NoFusion"])  # labels are exact on every machine
    assert exact_problems(relabelled, old, ["method"])
    rounded = old.assign(jdr=["0.2000001", "0.3"])  # training-free numbers: float rounding passes, a bug does not
    assert close_problems(rounded, old) == [] and close_problems(swapped, old) and close_problems(relabelled, old)
    assert invariant_problems("04_few_shot_curves/jdr.csv", old.assign(jdr=["1.2", "inf"])) != []


@pytest.mark.parametrize("stem", STEMS)
def test_the_smoke_book_ran_under_portable_numerics(stem):
    """A smoke chapter executed by the runner on the CPU runs under :mod:`mfbook.numerics`' portable settings: the
    golden copy's and the fresh run's (a run under other settings would fall back to the weak comparison silently)."""
    for folder in (GOLDEN, FRESH):
        prov = json.loads((folder / stem / "provenance.json").read_text())
        assert prov.get("numerics_mode") == "portable", (
            f"{folder / stem / 'provenance.json'}: numerics_mode {prov.get('numerics_mode')!r}; execute the smoke book "
            "with `make book` (python -m mfbook.run_book execute), which starts CPU chapters under mfbook.numerics")


@pytest.mark.parametrize("stem", STEMS)
def test_each_chapter_wrote_its_results(stem):
    out = FRESH / stem
    assert (out / f"{stem}.ipynb").exists(), f"run `make book` first: {out} is missing"
    assert list(out.glob("*.png")), f"{stem} wrote no figure"
    assert list(out.glob("*.csv")), f"{stem} wrote no table"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["profile"] == "smoke" and prov["stem"] == stem
    nb = json.loads((out / f"{stem}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("stem", STEMS)
def test_provenance_records_the_numerics_fingerprint_and_the_cpu(stem):
    prov = json.loads((FRESH / stem / "provenance.json").read_text())
    for key in ("numerics_fingerprint", "numerics_mode", "torch_cpu_capability", "cpu_model", "torch", "numpy"):
        assert prov.get(key), f"{FRESH / stem / 'provenance.json'} lacks {key!r} (executed before fingerprints?)"


@pytest.mark.parametrize("path, columns", sorted(CONTRACT_COLUMNS.items()))
def test_contract_tables_have_their_columns(path, columns):
    stem = path.split("/")[0]
    if stem not in STEMS:
        pytest.skip(f"chapter {stem} does not exist yet")
    df = pd.read_csv(FRESH / path)
    assert columns <= set(df.columns), f"{path} lacks {columns - set(df.columns)}"
    assert len(df) > 0
