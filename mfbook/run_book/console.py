"""What the runner says: whole lines from the chapters' threads, a bad parameter as one line ``error: …`` (exit 2),
a failed chapter's error in one line and the slowest cells of an executed notebook."""

from __future__ import annotations

import sys
import threading
from pathlib import Path


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def slowest_cells(notebook: Path, n: int = 3) -> list[tuple[float, str]]:
    """The ``n`` longest cells of an executed notebook: (seconds from papermill's metadata, first source line)."""
    import nbformat

    cells = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.cell_type == "code" and seconds is not None:
            first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
            cells.append((float(seconds), first.strip()[:70]))
    return sorted(cells, reverse=True)[:n]


def _report_cells(notebook: Path, profile: str) -> None:
    try:
        for seconds, line in slowest_cells(notebook):
            say(f"[{profile}]     {seconds:7.1f} s  {line}")
    except Exception as err:  # a report, never a reason to fail the book
        say(f"[{profile}]     (no cell timings: {err})")


_SAY_LOCK = threading.Lock()


def say(line: str, err: bool = False) -> None:
    """Print one whole line (chapters executing at once report from their threads)."""
    stream = sys.stderr if err else sys.stdout
    with _SAY_LOCK:
        stream.write(line + "\n")
        stream.flush()


def failure_line(err: BaseException) -> str:
    """What went wrong in a chapter, in one line: the exception raised in the notebook (papermill's ``ename: evalue``,
    its cell's traceback stays in the partly executed notebook under ``_build/failed/``), else the runner's own."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None)
        return f"{ename}: {' '.join(str(evalue).split())}" + (f" (in cell [{cell}])" if cell is not None else "")
    return f"{type(err).__name__}: {' '.join(str(err).split())[-2000:]}"
