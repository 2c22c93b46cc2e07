"""Where the book lives on disk: the repository root, its notebooks, results and site folders.

Two results folders: ``results/`` is committed (``results/smoke`` is the golden copy the tests compare against,
regenerated on purpose by ``make golden``; ``results/full`` comes from a GPU machine), ``_build/results/`` is ignored by
git and receives what ``make book`` executes at the smoke profile, so that ``make book`` + ``make test`` leave
``git status`` clean. The runner (``run_book execute --results DIR``) tells the chapters which folder the current run
writes to through ``$MFBOOK_RESULTS_DIR``: a chapter that reads another chapter's tables (the scorecard) reads them
from :func:`results_dir`, the folder of the run it belongs to.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RESULTS_DIR = REPO_ROOT / "results"  # committed: results/smoke (the golden copy) and results/full (from a GPU)
BUILD_RESULTS_DIR = REPO_ROOT / "_build" / "results"  # ignored: what `make book` executes at the smoke profile
SITE_DIR = REPO_ROOT / "book" / "_site"
RESULTS_ENV = "MFBOOK_RESULTS_DIR"  # set by the runner for the kernels it starts (run_book.kernel_variables)


def cache_dir() -> Path:
    """Where computed tensors are cached: ``$MFCORE_CACHE`` if set, else ``<repo>/.cache/mfcore`` (mfbook.cache)."""
    return Path(os.environ.get("MFCORE_CACHE", REPO_ROOT / ".cache" / "mfcore"))


def results_dir() -> Path:
    """The results folder of the run this process belongs to: ``$MFBOOK_RESULTS_DIR`` in a chapter executed by the
    runner, else (interactive use) the committed ``results/``. Its ``<profile>/<stem>/`` hold the chapters' tables."""
    value = os.environ.get(RESULTS_ENV, "")
    return Path(value) if value else RESULTS_DIR


def executed_chapters(folder: Path) -> list[str]:
    """The chapters with an executed notebook in ``folder`` (a ``<results>/<profile>`` folder), sorted."""
    return sorted(p.parent.name for p in Path(folder).glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
                  if p.stem == p.parent.name)


def fresh_results_dir(profile: str) -> Path:
    """Where the freshest executed results of ``profile`` are: ``_build/results/<profile>`` when `make book` executed
    chapters there, else the committed ``results/<profile>`` (which may not exist)."""
    build = BUILD_RESULTS_DIR / profile
    return build if executed_chapters(build) else RESULTS_DIR / profile
