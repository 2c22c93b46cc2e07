"""Batch runner of the book: execute every notebook with papermill, atomically publish its results, stage the site.

    python -m mfcore.run_book execute --profile smoke [--device auto] [--seed 0] [--only 01_fusion_geometry ...]
                                      [--keep-going]
    python -m mfcore.run_book site     # copy the executed chapters (full where present, else smoke) into book/_site

``execute`` validates every parameter before touching anything; each notebook runs into a staging folder
``results/<profile>/.staging-<stem>/`` and replaces ``results/<profile>/<stem>/`` only when it succeeded, so a failed or
interrupted run leaves the previous results in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .book import REPO_ROOT, validate_seed
from .profiles import PROFILES, get_profile, resolve_device

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RESULTS_DIR = REPO_ROOT / "results"
SITE_DIR = REPO_ROOT / "book" / "_site"
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


def execute_notebook(stem: str, profile: str, device: str, seed: int) -> float:
    """Execute ``notebooks/<stem>.py`` into ``results/<profile>/<stem>/``; returns wall seconds."""
    import jupytext
    import papermill

    final = RESULTS_DIR / profile / stem
    staging = RESULTS_DIR / profile / f".staging-{stem}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        nb = jupytext.read(NOTEBOOK_DIR / f"{stem}.py")
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        source = staging / f".{stem}.source.ipynb"
        jupytext.write(nb, source, fmt="ipynb")
        previous = os.environ.get("MFCORE_TEXT_PROGRESS")
        os.environ["MFCORE_TEXT_PROGRESS"] = "1"  # the kernel inherits it: text progress bars, no widgets (progress.py)
        try:
            papermill.execute_notebook(
                str(source), str(staging / f"{stem}.ipynb"), kernel_name="python3", language="python",
                parameters={"profile": profile, "device": device, "seed": seed,
                            "out_dir": os.path.relpath(staging, REPO_ROOT)},
                cwd=str(REPO_ROOT), progress_bar=False, log_output=False, execution_timeout=CELL_TIMEOUT_S,
            )
        finally:
            if previous is None:
                os.environ.pop("MFCORE_TEXT_PROGRESS", None)
            else:
                os.environ["MFCORE_TEXT_PROGRESS"] = previous
        source.unlink()
        missing = [f for f in REQUIRED_OUTPUTS if not (staging / f).exists()]
        if missing:
            raise RuntimeError(f"{stem} did not write {missing} (did it call ch.finish()?)")
    except BaseException:
        partial = staging / f"{stem}.ipynb"  # papermill saves after every cell: keep it to show where the run stopped
        if partial.exists():
            FAILED_DIR.joinpath(profile).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(partial, FAILED_DIR / profile / f"{stem}.ipynb")
            print(f"the partly executed notebook is in {os.path.relpath(FAILED_DIR / profile / f'{stem}.ipynb', REPO_ROOT)}",
                  file=sys.stderr, flush=True)
            _report_cells(FAILED_DIR / profile / f"{stem}.ipynb", profile)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, final)
    return time.perf_counter() - t0


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
            print(f"[{profile}]     {seconds:7.1f} s  {line}", flush=True)
    except Exception as err:  # a report, never a reason to fail the book
        print(f"[{profile}]     (no cell timings: {err})", flush=True)


def cmd_execute(args) -> None:
    try:
        get_profile(args.profile)
        resolve_device(args.device)
        validate_seed(args.seed)
    except ValueError as err:
        _fail(str(err))
    stems = notebook_stems()
    unknown = [s for s in args.only or [] if s not in stems]
    if unknown:
        _fail(f"unknown notebook(s) {unknown}; valid: {', '.join(stems)}")
    selected = args.only or stems
    timings, failed = {}, []
    for stem in selected:
        print(f"[{args.profile}] executing {stem} …", flush=True)
        try:
            timings[stem] = execute_notebook(stem, args.profile, args.device, args.seed)
        except Exception as err:
            message = (f"{stem} failed at profile {args.profile!r}: {type(err).__name__}: {str(err)[-2000:]}\n"
                       f"results/{args.profile}/{stem}/ was left as it was")
            if not args.keep_going:
                _fail(message)
            print(f"error: {message}", file=sys.stderr, flush=True)
            failed.append(stem)
            continue
        print(f"[{args.profile}] {stem} done in {timings[stem]:.1f} s; its slowest cells:", flush=True)
        _report_cells(RESULTS_DIR / args.profile / stem / f"{stem}.ipynb", args.profile)
    publish_profile_tables(args.profile)
    print(json.dumps({"profile": args.profile, "wall_seconds": {k: round(v, 1) for k, v in timings.items()},
                      "total_wall_seconds": round(sum(timings.values()), 1), "failed": failed}))
    if failed:
        raise SystemExit(1)


PROFILE_TABLES = {"scorecard.csv": "07_scorecard"}  # tables of the results contract that live at results/<profile>/


def publish_profile_tables(profile: str) -> None:
    """Copy each chapter-computed profile-level table (the scorecard) to ``results/<profile>/`` atomically."""
    for name, stem in PROFILE_TABLES.items():
        src = RESULTS_DIR / profile / stem / name
        if src.exists():
            dst = RESULTS_DIR / profile / name
            tmp = dst.with_name(f".{name}.tmp-{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)


def site_profile(stem: str) -> str | None:
    """The profile the site shows for a chapter: full where it was executed at full scale, else smoke."""
    for profile in ("full", "smoke"):
        if (RESULTS_DIR / profile / stem / f"{stem}.ipynb").exists():
            return profile
    return None


def cmd_site(args) -> None:
    """Copy each chapter's executed results (full if present, else smoke) to book/_site/<stem>/."""
    if SITE_DIR.exists():
        shutil.rmtree(SITE_DIR)
    SITE_DIR.mkdir(parents=True)
    chosen = {}
    for stem in notebook_stems():
        profile = site_profile(stem)
        if profile is None:
            _fail(f"no executed results for {stem}: run `make book` first")
        shutil.copytree(RESULTS_DIR / profile / stem, SITE_DIR / stem)
        chosen[stem] = profile
    for profile in ("full", "smoke"):
        for name in ("scorecard.csv", "benchmarks.csv"):
            src = RESULTS_DIR / profile / name
            if src.exists() and not (SITE_DIR / name).exists():
                shutil.copy2(src, SITE_DIR / name)
    if not (SITE_DIR / "benchmarks.csv").exists():  # the benchmarks page renders this file; say plainly it is missing
        (SITE_DIR / "benchmarks.csv").write_text(
            "benchmark,metric,value,unit,device,paper_value,note\n"
            "none,not measured yet,,,,,run benchmarks/run_all.py (or tools/gpu_book.sh) after executing the book\n")
    (SITE_DIR / "profiles.json").write_text(json.dumps(chosen, indent=2, sort_keys=True) + "\n")
    print(f"site chapters: {chosen}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mfcore.run_book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute the notebooks at a profile")
    ex.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)}")
    ex.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ex.add_argument("--seed", default="0")
    ex.add_argument("--only", nargs="*", help="notebook stems to execute (default: all)")
    ex.add_argument("--keep-going", action="store_true",
                    help="after a failed chapter, go on with the next (exit 1 at the end); default: stop at once")
    sub.add_parser("site", help="stage the executed chapters for the site")
    args = parser.parse_args(argv)
    if args.command == "execute":
        try:
            args.seed = int(args.seed)
        except ValueError:
            _fail(f"seed must be an integer in [0, 2147483647] (valid: 0 … 2147483647), got {args.seed!r}")
        cmd_execute(args)
    else:
        cmd_site(args)


if __name__ == "__main__":
    main()
