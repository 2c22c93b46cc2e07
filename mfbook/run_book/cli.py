"""Batch runner of the book: execute every notebook with papermill, atomically publish its results, stage the site.

The command line (``python -m mfbook.run_book``, the ``mfcore-book`` script): ``execute`` (:mod:`.execute`) and
``site`` (:func:`mfbook.site.stage`); a bad option is one line ``error: …`` and exit status 2. The description of
``--help`` is this docstring's first paragraph."""

from __future__ import annotations

import argparse

from mfcore.profiles import PROFILES

from .checks import resolve_results
from .console import _fail
from .execute import cmd_execute


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
    from .. import site

    try:
        results = None if args.results is None else resolve_results(args.results)
        if results is not None and not results.is_dir():
            raise ValueError(f"--results {args.results!r}: no such folder ({results}); valid: a folder holding "
                             f"<profile>/<chapter>/ results, e.g. _build/results after `make book`")
        site.stage(results_dir=results, profiles=tuple(args.profile or site.SITE_PROFILES))
    except ValueError as err:  # site.SiteError included
        _fail(str(err))
