import importlib.util
import subprocess
from pathlib import Path

import pytest

from mfbook import cache, progress
from mfcore import fewshot, runtime, targets

REPO = Path(__file__).resolve().parents[1]


def load_script(path: str):
    """A script of the repository that is not a package module (``benchmarks/…``, ``tools/…``), imported from its path
    relative to the repository root."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _in_git_checkout() -> bool:
    try:
        return subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=REPO, capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# checks of what git says about the tree (ignored folders, the commit) need a git checkout: a copy of the tree without
# its .git (a tarball, the tree shipped to a GPU machine) skips them, saying why
needs_git = pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout: this copy of the tree has no .git")


@pytest.fixture(autouse=True, scope="session")
def _the_books_cache_and_progress_bars():
    """The science runs in the tests as in the book: with the on-disk cache (``$MFCORE_CACHE``, which tests point at
    their own folders) and the book's progress bars."""
    cache.install()
    progress.install()
    yield
    runtime.reset()


@pytest.fixture(autouse=True)
def _fresh_target_memo():
    """Every test assembles its own target sets: :func:`mfcore.targets.target_data` keeps the last ones in memory (and
    :mod:`mfcore.fewshot` the last fused maps), and tests replace what they are assembled from (monkeypatched
    heatmaps, other cache folders)."""
    targets.clear_target_memo()
    fewshot.clear_device_memo()
    yield
    targets.clear_target_memo()
    fewshot.clear_device_memo()


def patch_runner(monkeypatch, name: str, value) -> None:
    """Replace ``name`` by ``value`` in the book runner, :mod:`mfbook.run_book`: in the package and in every one of its
    modules that reads it (a module looks a name up in its own globals, so patching the package alone would change
    nothing the runner does). A name no module of the runner reads is an error: the patch would be silently idle."""
    import sys

    from mfbook import run_book

    original = getattr(run_book, name)
    monkeypatch.setattr(run_book, name, value)
    readers = [m for key, m in sorted(sys.modules.items())
               if key.startswith("mfbook.run_book.") and getattr(m, name, None) is original]
    if not readers:
        raise AttributeError(f"no module of mfbook.run_book reads {name!r}")
    for module in readers:
        monkeypatch.setattr(module, name, value)
