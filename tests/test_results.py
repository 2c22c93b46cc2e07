"""The executed smoke book against the results contract and against the committed golden copy.

`make book` (run before `make test` in CI) re-executes every notebook into results/smoke/. These checks read what it
wrote: each chapter has its executed notebook, provenance, figures and tidy tables; the contract tables have their
columns; and every CSV matches the golden copy committed in git (HEAD) within a stated tolerance: numbers within
rtol = 1e-3, atol = 1e-6 (the same machine gives identical tables; the tolerance absorbs last-digit differences of
another CPU), every other cell identical.
"""

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "results" / "smoke"
STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))
RTOL, ATOL = 1e-3, 1e-6
CONTRACT_COLUMNS = {
    "04_few_shot_curves/jdr.csv": {"rig", "method", "k", "joint", "jdr"},
    "05_rpsm_3d/mpjpe.csv": {"rig", "method", "k", "estimator", "mpjpe_mm"},
    "06_trainable_fusion/ablation.csv": {"method", "mpjpe_mm", "pa_mpjpe_mm"},
    "02_synthetic_studio/motion.csv": {"source", "clip", "split", "frames", "fps", "licence"},
    "02_synthetic_studio/occlusion.csv": {"rig", "joint", "occluded_fraction"},
}


@pytest.mark.parametrize("stem", STEMS)
def test_each_chapter_wrote_its_results(stem):
    out = SMOKE / stem
    assert (out / f"{stem}.ipynb").exists(), f"run `make book` first: {out} is missing"
    assert list(out.glob("*.png")), f"{stem} wrote no figure"
    assert list(out.glob("*.csv")), f"{stem} wrote no table"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["profile"] == "smoke" and prov["stem"] == stem
    nb = json.loads((out / f"{stem}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path, columns", sorted(CONTRACT_COLUMNS.items()))
def test_contract_tables_have_their_columns(path, columns):
    stem = path.split("/")[0]
    if stem not in STEMS:
        pytest.skip(f"chapter {stem} does not exist yet")
    df = pd.read_csv(SMOKE / path)
    assert columns <= set(df.columns), f"{path} lacks {columns - set(df.columns)}"
    assert len(df) > 0


def golden(path: Path) -> str | None:
    rel = path.relative_to(REPO).as_posix()
    proc = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=REPO, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def frames_match(new: pd.DataFrame, old: pd.DataFrame) -> list[str]:
    problems = []
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return [f"shape/columns differ: {list(new.columns)} × {len(new)} vs {list(old.columns)} × {len(old)}"]
    for col in new.columns:
        a, b = new[col], old[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            ok = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=RTOL, atol=ATOL, equal_nan=True)
            if not ok.all():
                i = int(np.argmin(ok))
                problems.append(f"{col}: row {i}: {a.iloc[i]} vs golden {b.iloc[i]}")
        elif not a.astype(str).equals(b.astype(str)):
            problems.append(f"{col}: text differs")
    return problems


@pytest.mark.parametrize("stem", STEMS)
def test_tables_match_the_committed_golden_copy(stem):
    checked = 0
    for csv in sorted((SMOKE / stem).glob("*.csv")):
        text = golden(csv)
        if text is None:
            continue  # a new table has no golden copy yet
        problems = frames_match(pd.read_csv(csv), pd.read_csv(io.StringIO(text)))
        assert not problems, f"{csv.name}: {problems[:5]}"
        checked += 1
    if not checked:
        pytest.skip(f"no committed golden tables for {stem} yet")
