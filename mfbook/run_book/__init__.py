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
own work (:data:`TIMED_CHAPTERS`) run with nothing beside them, and on a GPU two chapters that together need more
memory than one GPU has (:data:`CHAPTERS_APART`) never run at the same time. ``<results>/<profile>/book_run.json``
records the run: when each chapter started and ended, and the wall time of the whole book. It is written only when
every selected chapter succeeded; a successful ``--only`` run writes a record of its own chapters (the spans of two
runs share no clock, so they are never merged; benchmarks/run_all.py then sums the chapters' own times).

The package, one concept a module:

- :mod:`~mfbook.run_book.cli` — the command line (``main``; ``python -m mfbook.run_book`` runs it) and ``site``;
- :mod:`~mfbook.run_book.execute` — ``execute``: checks, lock, the chapters in their schedule, the run's record;
- :mod:`~mfbook.run_book.notebook` — one chapter executed by papermill into its staging folder, then published;
- :mod:`~mfbook.run_book.scheduling` — which chapters run when (needs, critical path, timed chapters, ``--jobs``);
- :mod:`~mfbook.run_book.kernels` — the environment every chapter's kernel inherits;
- :mod:`~mfbook.run_book.checks` — the device for a profile and the results folder, before anything is touched;
- :mod:`~mfbook.run_book.lock`, :mod:`~mfbook.run_book.interrupt` — one run per folder; stopping on Ctrl-C or SIGTERM;
- :mod:`~mfbook.run_book.record` — ``book_run.json`` and the profile-level tables;
- :mod:`~mfbook.run_book.console` — the runner's messages and one-line errors.

A test that replaces one of the runner's names (``NOTEBOOK_DIR``, ``RESULTS_DIR``, ``execute_notebook``, …) replaces it
in the module that reads it (``tests/conftest.py``: ``patch_runner``).
"""

from mfcore.profiles import resolve_device  # noqa: F401 (read by the checks, the scheduling and the kernels)

from ..paths import NOTEBOOK_DIR, REPO_ROOT, RESULTS_DIR, RESULTS_ENV  # noqa: F401 (the runner's folders)
from ..plan import (BOOK_RUN, CHAPTER_NEEDS, CHAPTERS_APART, TIMED_CHAPTERS,  # noqa: F401 (part of this package's API)
                    papermill_seconds)
from .checks import (FULL_ON_CPU, GPU_PROFILES, NAME_MAX, check_device_for_profile, check_path_names, check_writable,
                     resolve_results)
from .cli import cmd_site, main
from .console import _fail, _report_cells, _SAY_LOCK, failure_line, say, slowest_cells  # noqa: F401
from .execute import _execute_locked, _run_one, cmd_execute  # noqa: F401
from .interrupt import sigterm_as_interrupt, stop_child_processes
from .kernels import kernel_environment, kernel_variables, torch_device_type
from .lock import LOCK_NAME, _pid_alive, acquire_lock, release_lock  # noqa: F401
from .notebook import (_PUBLISH_LOCK, CELL_TIMEOUT_S, FAILED_DIR, REQUIRED_OUTPUTS, PublishError,  # noqa: F401
                       _out_dir_parameter, execute_notebook, notebook_stems, publish)
from .record import PROFILE_TABLES, publish_profile_tables, write_book_run
from .scheduling import (apart_on, chapter_needs, chapters_apart, chapters_beside, critical_path_seconds, next_chapters,
                         previous_seconds, resolve_jobs, schedule)

__all__ = ["BOOK_RUN", "CELL_TIMEOUT_S", "CHAPTERS_APART", "CHAPTER_NEEDS", "FAILED_DIR", "FULL_ON_CPU", "GPU_PROFILES",
           "LOCK_NAME", "NAME_MAX", "PROFILE_TABLES", "REQUIRED_OUTPUTS", "TIMED_CHAPTERS", "PublishError",
           "acquire_lock", "apart_on", "chapter_needs", "chapters_apart", "chapters_beside", "check_device_for_profile",
           "check_path_names", "check_writable",
           "cmd_execute", "cmd_site", "critical_path_seconds", "execute_notebook", "failure_line", "kernel_environment",
           "kernel_variables", "main", "next_chapters", "notebook_stems", "papermill_seconds", "previous_seconds",
           "publish", "publish_profile_tables", "release_lock", "resolve_jobs", "resolve_results", "say", "schedule",
           "sigterm_as_interrupt", "slowest_cells", "stop_child_processes", "torch_device_type", "write_book_run"]
