"""Where the book lives on disk: the repository root, its notebooks, results and site folders."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RESULTS_DIR = REPO_ROOT / "results"
SITE_DIR = REPO_ROOT / "book" / "_site"
