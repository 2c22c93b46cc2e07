"""Batch runner of the book: execute every notebook with papermill, atomically publish its results, stage the site.

    python -m mfbook.run_book execute --profile smoke [--device auto] [--seed 0] [--only 01_fusion_geometry ...]
                                      [--keep-going] [--jobs auto] [--results results]
    python -m mfbook.run_book site [--results DIR] [--profile full smoke]
                                       # stage the executed chapters (full where present, else smoke): mfbook/site.py

``execute`` validates every parameter (and that the results folder is writable) before touching anything; each notebook
runs into a staging folder ``<results>/<profile>/.staging-<stem>/`` and replaces ``<results>/<profile>/<stem>/`` only
when it succeeded, so a failed or interrupted run (Ctrl-C or SIGTERM: the kernels are stopped, the staging folders
removed, exit 130 or 143) leaves the previous results in place. ``--results`` defaults to the committed ``results/``;
``make book`` passes ``_build/results`` at the smoke profile (ignored by git) and ``make golden`` the committed one.

One run at a time per results folder and profile: ``<results>/<profile>/.lock`` (created exclusively, holding the pid,
start time and command line of its run; removed on every exit) refuses a second run, naming the first; a lock whose
process is gone is stale and taken over with a warning. ``--profile full`` needs a CUDA GPU: without one it is refused
up front unless ``--device cpu`` is given explicitly (then the expected cost is printed and the run goes on).

With ``--jobs N`` > 1, up to N chapters execute at once (each in its own kernel), in the order of
:func:`schedule`: a chapter starts after the chapters it reads (:data:`CHAPTER_NEEDS`), and the chapters that time their
own work (:data:`TIMED_CHAPTERS`) run with nothing beside them. ``<results>/<profile>/book_run.json`` records the run:
when each chapter started and ended, and the wall time of the whole book. It is written only when every selected
chapter succeeded; a successful ``--only`` run writes a record of its own chapters (the spans of two runs share no
clock, so they are never merged; benchmarks/run_all.py then sums the chapters' own times).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from mfcore.files import atomic_write_bytes
from mfcore.profiles import PROFILES, get_profile, resolve_device

from . import gpu_busy, numerics
from .chapter import validate_seed
from .paths import NOTEBOOK_DIR, REPO_ROOT, RESULTS_DIR, RESULTS_ENV
from .plan import BOOK_RUN, CHAPTER_NEEDS, TIMED_CHAPTERS, papermill_seconds  # noqa: F401 (part of this module's API)

FAILED_DIR = REPO_ROOT / "_build" / "failed"  # partly executed notebooks of failed chapters (never published)
REQUIRED_OUTPUTS = ("provenance.json",)
CELL_TIMEOUT_S = 1800  # a cell that runs longer than this fails the chapter instead of stalling the whole book


def notebook_stems() -> list[str]:
    """The chapters, in reading order: ``notebooks/NN_name.py``."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
        partial = staging / f"{stem}.ipynb"  # papermill saves after every cell: keep it to show where the run stopped
        if partial.exists():
            FAILED_DIR.joinpath(profile).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(partial, FAILED_DIR / profile / f"{stem}.ipynb")
            say(f"the partly executed notebook is in {os.path.relpath(FAILED_DIR / profile / f'{stem}.ipynb', REPO_ROOT)}",
                err=True)
            _report_cells(FAILED_DIR / profile / f"{stem}.ipynb", profile)
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


@contextlib.contextmanager
def kernel_environment(values: dict[str, str]):
    """Set environment variables that the kernels started inside inherit; restore the previous values on exit."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kernel_variables(jobs: int, results: Path | None = None, device="cpu") -> dict[str, str]:
    """What every chapter's kernel gets: text progress bars (no widgets, progress.py), the results folder of this run
    (``$MFBOOK_RESULTS_DIR``: a chapter that reads other chapters' tables reads this run's, :func:`paths.results_dir`)
    and, on the CPU, the portable numerics of :mod:`mfbook.numerics` (one thread each, library code paths that every
    x86-64 CPU executes alike: the golden smoke copy is then the same bits everywhere); on a GPU, where chapters
    execute at once, an even share of the CPU cores for torch's threads (unless ``OMP_NUM_THREADS`` is set already)."""
    values = {"MFCORE_TEXT_PROGRESS": "1", RESULTS_ENV: str(Path(RESULTS_DIR if results is None else results).resolve())}
    if torch_device_type(device) == "cpu":
        values.update(numerics.portable_environment())
    elif jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        values["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return values


def torch_device_type(device) -> str:
    """"cpu" or "cuda" for a device name the runner accepts ("auto" resolved: :func:`mfcore.profiles.resolve_device`)."""
    return resolve_device(device).type if isinstance(device, str) else device.type


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


def chapter_needs(stem: str, selected: list[str]) -> tuple[str, ...]:
    """The chapters among ``selected`` that ``stem`` must wait for (:data:`CHAPTER_NEEDS`)."""
    return tuple(d for d in CHAPTER_NEEDS.get(stem, ()) if d in selected and d != stem)


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
                  priority: dict[str, float]) -> list[str]:
    """The chapters to start now: those whose needs are finished, longest critical path first, while fewer than
    ``jobs`` run. A timed chapter (:data:`TIMED_CHAPTERS`) starts only on an idle machine and then runs alone; when it
    is the most urgent ready chapter, nothing overtakes it (it would wait for ever)."""
    ready = [s for s in pending if all(d in finished for d in chapter_needs(s, selected))]
    ready.sort(key=lambda s: (-priority[s], selected.index(s)))
    start: list[str] = []
    for stem in ready:
        busy = running + start
        if len(busy) >= jobs or any(b in TIMED_CHAPTERS for b in busy):
            break
        if stem in TIMED_CHAPTERS and busy:
            break
        start.append(stem)
    return start


def schedule(selected: list[str], jobs: int, seconds: dict[str, float]) -> list[list[str]]:
    """The order :func:`cmd_execute` would start the chapters in if each took ``seconds[stem]``: a list of the
    chapters started at each moment (for tests and the run's report)."""
    priority = critical_path_seconds(selected, seconds)
    pending, running, finished, clock, waves = list(selected), {}, set(), 0.0, []
    while pending or running:
        start = next_chapters(pending, list(running), finished, selected, jobs, priority)
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


_SAY_LOCK = threading.Lock()


def say(line: str, err: bool = False) -> None:
    """Print one whole line (chapters executing at once report from their threads)."""
    stream = sys.stderr if err else sys.stdout
    with _SAY_LOCK:
        stream.write(line + "\n")
        stream.flush()


def _run_one(stem: str, args) -> float:
    say(f"[{args.profile}] executing {stem} …")
    return execute_notebook(stem, args.profile, args.device, args.seed, args.results)


GPU_PROFILES = ("full",)  # profiles sized for one GPU (mfcore/profiles.py)
# What the full profile costs on a CPU, measured: `make book PROFILE=full` on a 2-core x86 machine without a GPU was
# killed for memory at 22.5 GB after 490 s, still in chapter 3 (the warm-up of the ResNet-18 backbone on 4500 frames of
# 256² images); with seeds and the decided MetaFuse the whole book takes longer than one 600 s command on one H100
# (the chapters of results/full/ say which run made them, in their provenance.json).
FULL_ON_CPU = ("the full profile is sized for one GPU: on a 2-core CPU machine it was killed for memory at 22.5 GB "
               "after 490 s, still in chapter 3; expect at least 24 GB of memory and many hours (one H100: over 10 min)")


def check_device_for_profile(profile: str, device: str) -> None:
    """A GPU profile without CUDA is refused (ValueError) unless the CPU was asked for explicitly; then its expected
    cost is printed and the run goes on."""
    if profile not in GPU_PROFILES:
        return
    if device == "cpu":
        say(f"warning: {FULL_ON_CPU}; going on because --device cpu was given", err=True)
    elif resolve_device(device).type != "cuda":
        raise ValueError(f"profile {profile!r} needs a CUDA GPU and this machine has none (device {device!r}); "
                         f"valid here: --profile smoke, or --device cpu (DEVICE=cpu) to run it on the CPU anyway")


NAME_MAX = 255  # the longest file or folder name Linux, macOS and Windows file systems accept (bytes / characters)


def check_path_names(path: Path, option: str = "--results") -> None:
    """A ValueError naming ``path`` where one of its parts is longer than the file system allows (the OS would say
    ``File name too long`` from deep inside the run), or where the whole path is."""
    long_parts = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX]
    if long_parts:
        part = long_parts[0]
        raise ValueError(f"{option} {str(path)[:80]!r}… has a folder name of {len(os.fsencode(part))} bytes "
                         f"({part[:40]}…); valid: names of at most {NAME_MAX} bytes, e.g. _build/results")
    try:
        limit = os.pathconf(next(p for p in (path, *path.parents) if p.exists()), "PC_PATH_MAX")
    except (OSError, ValueError, StopIteration):
        limit = 4096
    if len(os.fsencode(str(path))) + 64 > limit:  # room for <profile>/.staging-<chapter>/<file>
        raise ValueError(f"{option} {str(path)[:80]!r}… is a path of {len(os.fsencode(str(path)))} bytes; valid: "
                         f"a path shorter than {limit - 64} bytes, e.g. _build/results")


def resolve_results(value: str | Path | None) -> Path:
    """``--results``: a folder (relative to the current directory), made if missing; anything else (a file, a name
    longer than the file system allows, a folder that cannot be made) is a ValueError naming it."""
    if value is None:
        return RESULTS_DIR
    path = Path(value).expanduser().absolute()
    check_path_names(path)
    try:
        path = path.resolve()
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as err:
        raise ValueError(f"--results {value!r} cannot be used: {err.strerror or err}; valid: a folder, "
                         f"e.g. results or _build/results") from None
    if exists and not is_dir:
        raise ValueError(f"--results {value!r} is not a folder ({path} exists and is a file); valid: a folder, "
                         f"e.g. results or _build/results")
    return path


def check_writable(folder: Path) -> None:
    """Make ``folder`` and write (then remove) a probe file in it; a folder that refuses is a PublishError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise PublishError(f"results folder {folder} is not writable: {err.strerror or err}") from None


LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def acquire_lock(folder: Path) -> Path:
    """Create ``<folder>/.lock`` exclusively (pid, start time, command line). A lock of a live process is a
    RuntimeError naming it; a lock of a dead process is stale: taken over with a warning."""
    lock = folder / LOCK_NAME
    record = {"pid": os.getpid(), "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "command": shlex.join([Path(sys.executable).name, "-m", "mfbook.run_book", *sys.argv[1:]])}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text())
                pid = int(held["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                held, pid = {}, -1
            if pid > 0 and _pid_alive(pid):
                raise RuntimeError(f"another run is executing {folder}: pid {pid}, started {held.get('started_at')}, "
                                   f"command: {held.get('command')} (wait for it, or stop it; its lock is {lock})")
            say(f"warning: taking over the stale lock {lock} of a run that is gone "
                f"(pid {held.get('pid', '?')}, started {held.get('started_at', '?')})", err=True)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record) + "\n")
        return lock
    raise RuntimeError(f"could not take the lock {lock}: another run keeps taking it")


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if it is still this process's."""
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within: SIGTERM raises KeyboardInterrupt in the main thread (the run stops as on Ctrl-C); the handler before is
    restored after. Elsewhere than the main thread, nothing changes."""
    import threading as _threading

    if _threading.current_thread() is not _threading.main_thread():
        yield
        return
    received = []

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_execute(args) -> None:
    try:
        get_profile(args.profile)
        resolve_device(args.device)
        validate_seed(args.seed)
        jobs = resolve_jobs(str(args.jobs), args.device)
        args.results = resolve_results(getattr(args, "results", None))
    except ValueError as err:
        _fail(str(err))
    stems = notebook_stems()
    unknown = [s for s in args.only or [] if s not in stems]
    if unknown:
        _fail(f"unknown notebook(s) {unknown}; valid: {', '.join(stems)}")
    try:
        check_device_for_profile(args.profile, args.device)
    except ValueError as err:
        _fail(str(err))
    folder = args.results / args.profile
    try:
        check_writable(folder)
        lock = acquire_lock(folder)
    except (PublishError, RuntimeError) as err:
        _fail(str(err))
    try:
        with sigterm_as_interrupt() as signals:
            _execute_locked(args, stems, jobs, signals)
    finally:
        release_lock(lock)


def _execute_locked(args, stems: list[str], jobs: int, signals) -> None:
    results = args.results
    folder = results / args.profile
    selected = [s for s in stems if s in (args.only or stems)]
    # the last run's durations in this results folder, else the committed ones (a fresh clone's golden copy), else 60 s
    seconds = {s: previous_seconds(s, args.profile, results) or previous_seconds(s, args.profile) or 60.0
               for s in selected}
    priority = critical_path_seconds(selected, seconds) if jobs > 1 else {s: 0.0 for s in selected}
    timings, failed, spans, publish_errors = {}, [], {}, []
    book_t0 = time.perf_counter()
    sampler = gpu_busy.start_sampler(resolve_device(args.device).type, book_t0)  # the GPU's utilisation, on CUDA
    pending, running, finished = list(selected), {}, set()
    say(f"[{args.profile}] executing {len(selected)} chapter(s), at most {jobs} at once")
    with kernel_environment(kernel_variables(jobs, results, args.device)), ThreadPoolExecutor(jobs, thread_name_prefix="chapter") as pool:
        try:
            while pending or running:
                if (not args.keep_going and failed) or publish_errors:
                    pending.clear()
                else:
                    for stem in next_chapters(pending, list(running.values()), finished, selected, jobs, priority):
                        pending.remove(stem)
                        spans[stem] = [time.perf_counter() - book_t0, None]
                        running[pool.submit(_run_one, stem, args)] = stem
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    stem = running.pop(future)
                    spans[stem][1] = time.perf_counter() - book_t0
                    finished.add(stem)
                    try:
                        timings[stem] = future.result()
                    except PublishError as err:
                        publish_errors.append(str(err))
                        failed.append(stem)
                        continue
                    except Exception as err:
                        message = (f"{stem} failed at profile {args.profile!r}: {failure_line(err)}\n"
                                   f"{folder / stem}/ was left as it was")
                        say(f"error: {message}", err=True)
                        failed.append(stem)
                        continue
                    beside = chapters_beside(stem, spans)
                    say(f"[{args.profile}] {stem} done in {timings[stem]:.1f} s"
                        f"{' (beside ' + ', '.join(beside) + ')' if beside else ''}; its slowest cells:")
                    _report_cells(folder / stem / f"{stem}.ipynb", args.profile)
        except KeyboardInterrupt:
            # The chapters still executing are abandoned: their kernels are stopped, their staging folders removed,
            # their published results and book_run.json stay as they were, and the lock is released.
            with _PUBLISH_LOCK:
                stop_child_processes()
                cut = list(running.values())
                for stem in cut:
                    shutil.rmtree(folder / f".staging-{stem}", ignore_errors=True)
                what = "terminated (SIGTERM)" if signals else "interrupted"
                say(f"{what}: {cut or 'no chapter'} cut short and left as they were; finished: "
                    f"{sorted(timings)}; {folder / BOOK_RUN} not rewritten", err=True)
                release_lock(folder / LOCK_NAME)
                sys.stdout.flush()
                os._exit(143 if signals else 130)
    book_seconds = time.perf_counter() - book_t0
    sampler.stop()
    if publish_errors:
        _fail(f"{publish_errors[0]}; the run stopped ({folder / BOOK_RUN} not rewritten)")
    publish_profile_tables(args.profile, results)
    if not failed:  # a failed run never rewrites the record of the last complete one
        write_book_run(args.profile, jobs, book_seconds, spans, timings, failed, results)
        busy = gpu_busy.write_report(folder, sampler.record(), {s: tuple(spans[s]) for s in timings}, book_seconds)
        if busy:
            say(f"[{args.profile}] {gpu_busy.summary(busy)}: {folder / gpu_busy.BUSY_FILE}, {gpu_busy.IDLE_FILE}")
    print(json.dumps({"profile": args.profile, "jobs": jobs,
                      "wall_seconds": {k: round(timings[k], 1) for k in selected if k in timings},
                      "total_wall_seconds": round(sum(timings.values()), 1),
                      "book_wall_seconds": round(book_seconds, 1), "failed": failed}))
    if failed:
        if not args.keep_going:
            _fail(f"{failed[0]} failed; the chapters after it were not executed (--keep-going goes on)")
        raise SystemExit(1)


def failure_line(err: BaseException) -> str:
    """What went wrong in a chapter, in one line: the exception raised in the notebook (papermill's ``ename: evalue``,
    its cell's traceback stays in the partly executed notebook under ``_build/failed/``), else the runner's own."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None)
        return f"{ename}: {' '.join(str(evalue).split())}" + (f" (in cell [{cell}])" if cell is not None else "")
    return f"{type(err).__name__}: {' '.join(str(err).split())[-2000:]}"


def stop_child_processes() -> list[int]:
    """SIGTERM every direct child process of this one (the chapters' kernels), on Linux; returns their pids. Elsewhere
    none are found, and ipykernel's own parent polling ends the kernels when this process exits."""
    import signal

    me, pids = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:  # fields after the command name: state, ppid, ...
            pid = int(stat.parent.name)
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except ProcessLookupError:
                pass
    return pids


def write_book_run(profile: str, jobs: int, book_seconds: float, spans: dict, timings: dict, failed: list,
                   results: Path | None = None) -> None:
    """``<results>/<profile>/book_run.json``: how the last successful ``execute`` ran (chapters, start and end seconds
    from the start of the run, at most how many at once, its wall time), atomically. The benchmarks table reads it."""
    results = RESULTS_DIR if results is None else Path(results)

    def started_at(stem: str) -> str | None:  # names the published results this record describes
        try:
            return json.loads((results / profile / stem / "provenance.json").read_text())["started_at"]
        except (OSError, ValueError, KeyError):
            return None

    record = {"jobs": jobs, "wall_seconds": round(book_seconds, 2), "failed": failed,
              "chapters": {s: {"start_s": round(a, 2), "end_s": round(b, 2), "seconds": round(timings[s], 2),
                               "started_at": started_at(s)}
                           for s, (a, b) in spans.items() if s in timings}}
    atomic_write_bytes(results / profile / BOOK_RUN, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


PROFILE_TABLES = {"scorecard.csv": "07_scorecard"}  # tables of the results contract that live at results/<profile>/


def publish_profile_tables(profile: str, results: Path | None = None) -> None:
    """Copy each chapter-computed profile-level table (the scorecard) to ``<results>/<profile>/`` atomically."""
    results = RESULTS_DIR if results is None else Path(results)
    for name, stem in PROFILE_TABLES.items():
        src = results / profile / stem / name
        if src.exists():
            dst = results / profile / name
            tmp = dst.with_name(f".{name}.tmp-{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mfbook.run_book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute the notebooks at a profile")
    ex.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)}")
    ex.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ex.add_argument("--seed", default="0")
    ex.add_argument("--only", nargs="*", help="notebook stems to execute (default: all)")
    ex.add_argument("--keep-going", action="store_true",
                    help="after a failed chapter, go on with the next (exit 1 at the end); default: stop at once")
    ex.add_argument("--jobs", default="auto",
                    help="chapters executing at once: a positive integer or auto (4 on a GPU, one per core up to 3 on the CPU)")
    ex.add_argument("--results", default=None,
                    help="the results folder: <results>/<profile>/<chapter>/ (default: the committed results/; "
                         "`make book` uses _build/results at the smoke profile)")
    st = sub.add_parser("site", help="stage the executed chapters for the site")
    st.add_argument("--results", default=None,
                    help="the results folder to show: <results>/<profile>/<chapter>/ (default: the committed results/, "
                         "with _build/results in its place for a profile `make book` executed there); e.g. "
                         "_build/results to show your own smoke run while results/full exists")
    st.add_argument("--profile", nargs="+", default=None,
                    help="the profiles to show, in order of preference (default: full smoke)")
    args = parser.parse_args(argv)
    try:
        if args.command == "execute":
            try:
                args.seed = int(args.seed)
            except ValueError:
                _fail(f"seed must be an integer in [0, 2147483647] (valid: 0 … 2147483647), got {args.seed!r}")
            cmd_execute(args)
        else:
            cmd_site(args)
    except OSError as err:  # the file system refused something the checks above could not foresee: one line
        _fail(f"{err.strerror or err}: {err.filename}" if err.filename else str(err))


def cmd_site(args) -> None:
    """Stage the site (:func:`mfbook.site.stage`) from the results folder and profiles asked for."""
    from . import site

    try:
        results = None if args.results is None else resolve_results(args.results)
        if results is not None and not results.is_dir():
            raise ValueError(f"--results {args.results!r}: no such folder ({results}); valid: a folder holding "
                             f"<profile>/<chapter>/ results, e.g. _build/results after `make book`")
        site.stage(results_dir=results, profiles=tuple(args.profile or site.SITE_PROFILES))
    except ValueError as err:  # site.SiteError included
        _fail(str(err))


if __name__ == "__main__":
    main()
