"""Which chapters execute when: what each waits for (:data:`CHAPTER_NEEDS`), the longest critical path first, the
timed chapters (:data:`TIMED_CHAPTERS`) alone, the chapters too big for one GPU together (:data:`CHAPTERS_APART`)
never at the same time, and how many at once (``--jobs``)."""

from __future__ import annotations

import os
from pathlib import Path

from mfcore.profiles import resolve_device

from ..paths import RESULTS_DIR
from ..plan import CHAPTER_NEEDS, CHAPTERS_APART, TIMED_CHAPTERS, papermill_seconds


def chapter_needs(stem: str, selected: list[str]) -> tuple[str, ...]:
    """The chapters among ``selected`` that ``stem`` must wait for (:data:`CHAPTER_NEEDS`)."""
    return tuple(d for d in CHAPTER_NEEDS.get(stem, ()) if d in selected and d != stem)


def apart_on(device_type: str) -> tuple[tuple[str, str], ...]:
    """The pairs of chapters kept apart on a ``device_type`` ('cuda', 'cpu', …): :data:`CHAPTERS_APART` on a GPU (their
    reason is one GPU's memory), none elsewhere."""
    return CHAPTERS_APART if device_type == "cuda" else ()


def chapters_apart(stem: str, apart: tuple[tuple[str, str], ...] = CHAPTERS_APART) -> set[str]:
    """The chapters that must not execute while ``stem`` does: the other side of each pair of ``apart`` naming it."""
    return {b if a == stem else a for a, b in apart if stem in (a, b) and a != b}


def previous_seconds(stem: str, profile: str, results: Path | None = None) -> float | None:
    """Papermill's duration of the chapter's last executed notebook at ``profile`` (None where there is none)."""
    return papermill_seconds((RESULTS_DIR if results is None else results) / profile / stem / f"{stem}.ipynb")


def chapters_beside(stem: str, spans: dict[str, tuple[float, float | None]]) -> list[str]:
    """The chapters whose (start, end) span overlaps ``stem``'s (an end of None: still running), sorted."""
    start, end = spans[stem]
    return sorted(s for s, (a, b) in spans.items()
                  if s != stem and (end is None or a < end) and (b is None or b > start))


def critical_path_seconds(selected: list[str], seconds: dict[str, float]) -> dict[str, float]:
    """For each chapter, its own seconds plus the longest chain of chapters that wait for it (its critical path)."""
    dependents = {s: [t for t in selected if s in chapter_needs(t, selected)] for s in selected}
    memo: dict[str, float] = {}

    def path(s: str) -> float:
        if s not in memo:
            memo[s] = seconds[s] + max((path(t) for t in dependents[s]), default=0.0)
        return memo[s]

    return {s: path(s) for s in selected}


def next_chapters(pending: list[str], running: list[str], finished: set[str], selected: list[str], jobs: int,
                  priority: dict[str, float], apart: tuple[tuple[str, str], ...] = CHAPTERS_APART) -> list[str]:
    """The chapters to start now: those whose needs are finished, longest critical path first, while fewer than
    ``jobs`` run. A timed chapter (:data:`TIMED_CHAPTERS`) starts only on an idle machine and then runs alone; when it
    is the most urgent ready chapter, nothing overtakes it (it would wait for ever). A chapter does not start while a
    chapter it must stay apart from (a pair of ``apart``: :data:`CHAPTERS_APART` on a GPU, :func:`apart_on`) runs or
    starts now; the next ready chapter goes instead (the one held back starts once the other has finished)."""
    ready = [s for s in pending if all(d in finished for d in chapter_needs(s, selected))]
    ready.sort(key=lambda s: (-priority[s], selected.index(s)))
    start: list[str] = []
    for stem in ready:
        busy = running + start
        if len(busy) >= jobs or any(b in TIMED_CHAPTERS for b in busy):
            break
        if stem in TIMED_CHAPTERS and busy:
            break
        if chapters_apart(stem, apart) & set(busy):
            continue
        start.append(stem)
    return start


def schedule(selected: list[str], jobs: int, seconds: dict[str, float],
             apart: tuple[tuple[str, str], ...] = CHAPTERS_APART) -> list[list[str]]:
    """The order :func:`cmd_execute` would start the chapters in if each took ``seconds[stem]``, keeping the pairs of
    ``apart`` apart (:func:`apart_on`: on a GPU, the default): a list of the chapters started at each moment (for
    tests and the run's report)."""
    priority = critical_path_seconds(selected, seconds)
    pending, running, finished, clock, waves = list(selected), {}, set(), 0.0, []
    while pending or running:
        start = next_chapters(pending, list(running), finished, selected, jobs, priority, apart)
        if start:
            waves.append(start)
        for stem in start:
            pending.remove(stem)
            running[stem] = clock + seconds[stem]
        if not running:
            raise RuntimeError(f"no chapter can start: {pending} wait for chapters outside the selection")
        clock = min(running.values())
        for stem in [s for s, t in running.items() if t == clock]:
            del running[stem]
            finished.add(stem)
    return waves


def resolve_jobs(jobs: str, device: str) -> int:
    """``--jobs``: a positive integer, or ``auto`` (4 on a GPU: the chapters after chapter 4 are short kernels that
    leave the GPU idle between launches, and four of them start together; on the CPU one chapter per core, at most 3:
    a CPU chapter uses one thread)."""
    if jobs == "auto":
        if resolve_device(device).type == "cuda":
            return 4
        return max(1, min(3, os.cpu_count() or 1))
    try:
        n = int(jobs)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"--jobs must be a positive integer or 'auto', got {jobs!r} (valid: auto, 1, 2, …)")
    return n
