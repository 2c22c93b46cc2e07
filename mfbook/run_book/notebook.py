"""One chapter: its notebook executed by papermill into a staging folder, then published over the chapter's
results folder with renames only (a failed chapter leaves the previous results in place)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from ..paths import NOTEBOOK_DIR, REPO_ROOT, RESULTS_DIR
from .console import _report_cells, say


FAILED_DIR = REPO_ROOT / "_build" / "failed"  # partly executed notebooks of failed chapters (never published)


REQUIRED_OUTPUTS = ("provenance.json",)


CELL_TIMEOUT_S = 1800  # a cell that runs longer than this fails the chapter instead of stalling the whole book


def notebook_stems() -> list[str]:
    """The chapters, in reading order: ``notebooks/NN_name.py``."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def publish(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` with renames only (the old folder is removed after the new one is in place)."""
    old = final.with_name(f".old-{final.name}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    if old.exists():
        shutil.rmtree(old)


class PublishError(RuntimeError):
    """The results folder refused a write (staging or publishing a chapter): the run stops (exit 2)."""


def _out_dir_parameter(staging: Path) -> str:
    """The ``out_dir`` a chapter gets: relative to the repository where the folder is inside it, else absolute."""
    try:
        return staging.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(staging.resolve())


def keep_partial(staging: Path, stem: str, profile: str) -> Path | None:
    """Copy a chapter's partly executed notebook out of its staging folder into ``_build/failed/<profile>/`` (papermill
    saves it after every cell and every 30 s of a long cell's output, progress bars included), say where, and print its
    slowest cells so far: a failed or cut-short chapter still shows where its time went. Returns the copy (None when
    there is no notebook yet); never raises (a report, not a reason to fail)."""
    partial = staging / f"{stem}.ipynb"
    kept = FAILED_DIR / profile / f"{stem}.ipynb"
    try:
        if not partial.exists():
            return None
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(partial, kept)
    except OSError as err:
        say(f"(the partly executed notebook of {stem} could not be kept: {err.strerror or err})", err=True)
        return None
    say(f"the partly executed notebook is in {os.path.relpath(kept, REPO_ROOT)}", err=True)
    _report_cells(kept, profile)
    return kept


def execute_notebook(stem: str, profile: str, device: str, seed: int, results: Path | None = None) -> float:
    """Execute ``notebooks/<stem>.py`` into ``<results>/<profile>/<stem>/`` (``results``: the committed
    ``results/`` unless given); returns wall seconds. A results folder that refuses a write is a :class:`PublishError`
    (the staging folder is removed)."""
    import jupytext
    import papermill

    results = RESULTS_DIR if results is None else Path(results)
    final = results / profile / stem
    staging = results / profile / f".staging-{stem}"
    try:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishError(f"cannot create {staging}: {err.strerror or err}") from None
    t0 = time.perf_counter()
    try:
        nb = jupytext.read(NOTEBOOK_DIR / f"{stem}.py")
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        source = staging / f".{stem}.source.ipynb"
        jupytext.write(nb, source, fmt="ipynb")
        papermill.execute_notebook(  # the kernel inherits this process's environment (cmd_execute: kernel_variables)
            str(source), str(staging / f"{stem}.ipynb"), kernel_name="python3", language="python",
            parameters={"profile": profile, "device": device, "seed": seed,
                        "out_dir": _out_dir_parameter(staging)},
            cwd=str(REPO_ROOT), progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT_S,
        )
        source.unlink()
        missing = [f for f in REQUIRED_OUTPUTS if not (staging / f).exists()]
        if missing:
            raise RuntimeError(f"{stem} did not write {missing} (did it call ch.finish()?)")
    except BaseException:
        keep_partial(staging, stem, profile)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with _PUBLISH_LOCK:  # an interrupted book waits for a rename pair in progress (cmd_execute)
        try:
            publish(staging, final)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise PublishError(f"cannot publish {stem} into {final}: {err.strerror or err}") from None
    return time.perf_counter() - t0


_PUBLISH_LOCK = threading.Lock()
