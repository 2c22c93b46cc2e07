"""``execute``: the run's parameters checked, its lock taken, the chapters executed in their schedule (at most
``--jobs`` at once) and published one by one, the run recorded; Ctrl-C or SIGTERM cut it short cleanly."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from mfcore.profiles import get_profile, resolve_device

from .. import gpu_busy
from ..chapter import validate_seed
from ..plan import BOOK_RUN
from .checks import check_device_for_profile, check_writable, resolve_results
from .console import _fail, _report_cells, failure_line, say
from .interrupt import sigterm_as_interrupt, stop_child_processes
from .kernels import kernel_environment, kernel_variables
from .lock import LOCK_NAME, acquire_lock, release_lock
from .notebook import _PUBLISH_LOCK, PublishError, execute_notebook, keep_partial, notebook_stems
from .record import publish_profile_tables, write_book_run
from .scheduling import apart_on, chapters_beside, critical_path_seconds, next_chapters, previous_seconds, resolve_jobs


def _run_one(stem: str, args) -> float:
    say(f"[{args.profile}] executing {stem} …")
    return execute_notebook(stem, args.profile, args.device, args.seed, args.results)


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
    apart = apart_on(resolve_device(args.device).type)  # chapters too big for one GPU together: kept apart there
    pending, running, finished = list(selected), {}, set()
    say(f"[{args.profile}] executing {len(selected)} chapter(s), at most {jobs} at once")
    with kernel_environment(kernel_variables(jobs, results, args.device)), ThreadPoolExecutor(jobs, thread_name_prefix="chapter") as pool:
        try:
            while pending or running:
                if (not args.keep_going and failed) or publish_errors:
                    pending.clear()
                else:
                    for stem in next_chapters(pending, list(running.values()), finished, selected, jobs, priority,
                                              apart):
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
            # The chapters still executing are abandoned: their kernels are stopped, their partly executed notebooks
            # kept under _build/failed/ (keep_partial), their staging folders removed,
            # their published results and book_run.json stay as they were, and the lock is released.
            with _PUBLISH_LOCK:
                stop_child_processes()
                cut = list(running.values())
                for stem in cut:  # what each had done so far stays readable under _build/failed/
                    keep_partial(folder / f".staging-{stem}", stem, args.profile)
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
