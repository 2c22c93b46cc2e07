"""Execute chapters on the CPU at smoke sizes but with the full profile's structure, before spending GPU time on them.

    .venv/bin/python tools/structure_dry_run.py 03_meta_training 04_few_shot_curves ... [--results _build/dryrun]

The smoke profile is sized for a 2-core CPU, so it also differs from the full profile in structure: one fusion seed
instead of three, the sweep of fixed β on instead of off, one draw of the dome's held-out cameras. Code that only the
full structure reaches (a groupby over seeds, a comparison of two seed-indexed tables, a section that a switch turns
off) then first runs on the GPU machine, where a failure costs scarce device time. This tool copies the full profile's
structural settings (:data:`STRUCTURE`) onto the smoke sizes, in this process only, and executes each chapter's cells
in order in one IPython shell (no kernel, no papermill: the patched profile must be the one the chapter sees). The
chapters write into ``<results>/smoke/<stem>/`` and read earlier chapters' tables from there (``$MFBOOK_RESULTS_DIR``);
the tensors they cache go to ``<results>/cache`` (``$MFCORE_CACHE``), apart from the book's own cache. Numbers from
such a run mean nothing; it answers one question: does every cell run? Exit status 1 names the first failing cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (section, field) of the full profile whose value decides which code runs, not how much of it
STRUCTURE = (("metafuse", "fusion_seeds"), ("metafuse", "trials"), ("metafuse", "first_order"),
             ("controls", "seeds"), ("controls", "full_seeds"), ("controls", "regime_seeds"),
             ("controls", "dome_trials"), ("controls", "second_order"), ("controls", "variants"),
             ("trainable_fusion", "seeds"), ("trainable_fusion", "sweep_seeds"))


def structured_smoke():
    """The smoke profile with the full profile's :data:`STRUCTURE` fields."""
    from mfcore import profiles

    smoke, full = profiles.get_profile("smoke"), profiles.get_profile("full")
    sections = {}
    for section, name in STRUCTURE:
        sections.setdefault(section, {})[name] = getattr(getattr(full, section), name)
    return dataclasses.replace(smoke, description=smoke.description + " (full profile's structure: a dry run)",
                               **{s: dataclasses.replace(getattr(smoke, s), **v) for s, v in sections.items()})


def run_chapter(stem: str, results: Path) -> bool:
    """Execute ``notebooks/<stem>.py`` cell by cell; True when every cell ran."""
    import jupytext
    from IPython.core.interactiveshell import InteractiveShell

    notebook = jupytext.read(REPO / "notebooks" / f"{stem}.py")
    out = results / "smoke" / stem
    out.mkdir(parents=True, exist_ok=True)
    shell = InteractiveShell.instance()
    t0 = time.perf_counter()
    for i, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        source = cell.source
        if "parameters" in cell.metadata.get("tags", []):
            source += f"\nprofile = 'smoke'\ndevice = 'cpu'\nseed = 0\nout_dir = {str(out)!r}\n"
        result = shell.run_cell(source, silent=False, store_history=False)
        if not result.success:
            error = type(result.error_in_exec or result.error_before_exec).__name__
            print(f"\n[dry run] {stem}: code cell {i} failed ({error}):\n{source[:400]}", file=sys.stderr)
            return False
    print(f"[dry run] {stem}: every cell ran ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stems", nargs="+", help="chapters in order, e.g. 03_meta_training 04_few_shot_curves")
    ap.add_argument("--results", type=Path, default=REPO / "_build" / "dryrun")
    args = ap.parse_args(argv)
    stems = {p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py")}
    unknown = [s for s in args.stems if s not in stems]
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}; valid: {', '.join(sorted(stems))}")
    results = args.results.resolve()
    os.environ["MFBOOK_RESULTS_DIR"] = str(results)
    os.environ["MFCORE_CACHE"] = str(results / "cache")
    os.environ["MFCORE_TEXT_PROGRESS"] = "1"
    os.environ["MPLBACKEND"] = "agg"
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from mfcore import profiles

    profiles.PROFILES["smoke"] = structured_smoke()  # this process only: the chapters below import this module
    for stem in args.stems:
        if not run_chapter(stem, results):
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
