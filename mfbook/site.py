"""Stage the site: copy each chapter's executed results into ``book/_site/`` and say on the site what they are.

    python -m mfbook.run_book site     # calls :func:`stage`

For every chapter the site shows the full results where they exist, else smoke (:func:`site_profile`). Staging writes
only under ``book/_site/`` and never changes ``results/``:

- the executed notebook, cleaned for reading and for download (:mod:`mfbook.site_notebook`): the papermill parameter
  cells are hidden, outputs that print a staging path (``PosixPath('…/.staging-…')``) and progress-bar streams are
  dropped, and it names the folder its results are in, never the staging folder or the checkout it was executed in;
- a cell at the top of the page (:func:`chapter_cell`) naming the profile, commit, device and date of the results, the
  papers the chapter reproduces, download links for the executed notebook and its ``.py`` source, and, where the code
  changed since those results were computed, a warning naming the commit and the changed files (:func:`staleness`);
- ``calibration_imports.md`` (the own-cameras page's import of one rig from every format,
  :mod:`mfbook.calibration_page`), ``chapters.md`` (the home page's table of chapters) and ``reproducibility_table.md`` (the Reproducibility page),
  both read from every chapter's ``provenance.json``, included by ``book/intro.md`` and ``book/reproducibility.md``;
- the profile-level tables (scorecard, benchmarks) and the timeline of the book run (:func:`draw_book_run`).
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import calibration_page, gpu_busy, plots
from .chapter import save_png
from .paths import NOTEBOOK_DIR, REPO_ROOT, SITE_DIR, fresh_results_dir
from .plan import BOOK_RUN, CHAPTER_NEEDS, TIMED_CHAPTERS, papermill_seconds
from .site_notebook import clean_notebook, relocate_notebook  # noqa: F401 (part of this module's API)

SITE_PROFILES = ("full", "smoke")  # the profile a chapter shows: the first with an executed notebook
CODE_PACKAGES = ("mfcore", "mfbook")  # the repository's packages: a chapter's results depend on the modules it imports

# The papers (and other works) each chapter reproduces or builds on: keys of references.bib, cited on its page.
CHAPTER_CITATIONS: dict[str, tuple[str, ...]] = {
    "01_fusion_geometry": ("xie2020metafuse", "qiu2019crossview", "hartley2004multiple"),
    "02_synthetic_studio": ("ionescu2014human36m", "joo2015panoptic", "trumble2017totalcapture", "peng2018deepmimic"),
    "03_meta_training": ("xie2020metafuse", "finn2017maml", "xiao2018simple", "he2016resnet"),
    "04_few_shot_curves": ("xie2020metafuse", "qiu2019crossview"),
    "05_rpsm_3d": ("qiu2019crossview", "pavlakos2017harvesting", "xie2020metafuse", "schafer2011savitzky"),
    "06_trainable_fusion": ("tekin2017fuse",),
    "07_scorecard": ("xie2020metafuse", "qiu2019crossview", "tekin2017fuse"),
    "08_your_cameras": ("xie2020metafuse",),
    "09_epipolar_oracle": ("xie2020metafuse", "qiu2019crossview", "hartley2004multiple"),
    "11_backbone_seed": ("xie2020metafuse", "xiao2018simple"),
}


def notebook_stems(notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """The chapters, in reading order: ``notebooks/NN_name.py``."""
    return sorted(p.stem for p in Path(notebook_dir).glob("[0-9][0-9]_*.py"))


def profile_root(results_dir: Path | None, profile: str) -> Path:
    """Where the site reads ``profile``'s results: by default (``results_dir`` None) the freshest executed copy
    (:func:`mfbook.paths.fresh_results_dir`: ``make book``'s ``_build/results/<profile>`` when it exists, else the
    committed ``results/<profile>``); under a folder given (``run_book site --results DIR``), ``<DIR>/<profile>``."""
    if results_dir is None:
        return fresh_results_dir(profile)
    return Path(results_dir) / profile


def site_profile(stem: str, results_dir: Path | None = None, profiles: tuple[str, ...] = SITE_PROFILES) -> str | None:
    """The profile the site shows for a chapter: the first of ``profiles`` (full, then smoke) it was executed at."""
    for profile in profiles:
        if (profile_root(results_dir, profile) / stem / f"{stem}.ipynb").exists():
            return profile
    return None


def results_label(results_dir: Path | None, profiles: tuple[str, ...] = SITE_PROFILES,
                  repo: Path = REPO_ROOT) -> str:
    """Where the site looks for results, in words for an error message."""
    roots = [profile_root(results_dir, p) for p in profiles]
    return " or ".join(_shown_path(r, repo) for r in roots)


def _shown_path(path: Path, repo: Path = REPO_ROOT) -> str:
    """``path`` relative to the repository where it lies inside it (what a reader of the site can look up), else as
    given."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path(repo).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# --------------------------------------------------------------------------------------------------------------------
# Which code a chapter's results depend on, and whether it changed since they were computed


def _module_file(module: str, repo: Path) -> Path | None:
    """The source file of a dotted module of the repository's packages (``mfcore.meta`` → ``mfcore/meta.py``)."""
    parts = module.split(".")
    if parts[0] not in CODE_PACKAGES:
        return None
    base = repo.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(source: str, package: str | None = None) -> set[str]:
    """Dotted names of the repository's modules that ``source`` imports (anywhere in it), ``from pkg import mod``
    counted as ``pkg.mod``; relative imports resolved against ``package``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook with IPython syntax: read its import lines only
        lines = [ln for ln in source.splitlines() if re.match(r"\s*(from|import)\s", ln)]
        tree = ast.parse("\n".join(ln.strip() for ln in lines if not ln.rstrip().endswith(("(", "\\"))))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not package:
                    continue
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import mod` imports pkg.mod
    return {name for name in found if name.split(".")[0] in CODE_PACKAGES}


def code_paths(stem: str, repo: Path = REPO_ROOT) -> tuple[str, ...]:
    """The repository files a chapter's results depend on: ``notebooks/<stem>.py`` and every ``mfcore``/``mfbook``
    module it imports, directly or through another module (package ``__init__`` files included), as sorted paths
    relative to ``repo``."""
    repo = Path(repo)
    notebook = repo / "notebooks" / f"{stem}.py"
    paths = {notebook}
    todo = [(name, None) for name in _imported_modules(notebook.read_text())] if notebook.exists() else []
    seen: set[str] = set()
    while todo:
        name, _ = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing pkg.mod runs pkg/__init__.py first
            todo.append((".".join(parts[:i]), None))
        path = _module_file(name, repo)
        if path is None:
            continue
        paths.add(path)
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo.extend((m, None) for m in _imported_modules(path.read_text(), package) if m not in seen)
    return tuple(sorted(p.relative_to(repo).as_posix() for p in paths))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)


@dataclass
class Staleness:
    """Whether a chapter's shown results still match its code: ``stale`` when the commit they were computed at is
    unknown here, when the run was made from a modified tree (``dirty``), or when ``changed`` files differ since."""

    sha: str
    known: bool
    dirty: bool
    changed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stale(self) -> bool:
        return not self.known or self.dirty or bool(self.changed)

    def reasons(self, short: bool = False) -> list[str]:
        """Sentences saying why the results may not match the code (empty when they do); ``short`` for a table."""
        if short:
            return ((["commit unknown here"] if not self.known else []) + (["modified tree"] if self.dirty else [])
                    + ([f"{len(self.changed)} files changed since: " + ", ".join(self.changed)]
                       if self.changed else []))
        out = []
        if not self.known:
            out.append(f"their commit `{self.sha}` is not in this repository's history, so the code they came from "
                       "cannot be compared with this code")
        if self.dirty:
            out.append(f"they were executed from a modified tree (uncommitted changes on top of `{self.sha}`)")
        if self.changed:
            out.append(f"since commit `{self.sha}` these files changed: "
                       + ", ".join(f"`{p}`" for p in self.changed))
        return out


def staleness(stem: str, provenance: dict, repo: Path = REPO_ROOT) -> Staleness:
    """Compare the commit of a chapter's results (``provenance['git_sha']``) with the code in ``repo`` now (its work
    tree): the chapter's notebook and the modules it imports (:func:`code_paths`), and those of the chapters whose
    cached models or tables it reads (``plan.CHAPTER_NEEDS``, transitively)."""
    repo = Path(repo)
    sha = str(provenance.get("git_sha") or "unknown")
    dirty = bool(provenance.get("git_dirty"))
    stems, todo = set(), [stem]
    while todo:
        s = todo.pop()
        if s not in stems:
            stems.add(s)
            todo.extend(CHAPTER_NEEDS.get(s, ()))
    paths = sorted({p for s in stems for p in code_paths(s, repo)})
    resolved = _git(repo, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
    if sha == "unknown" or resolved.returncode != 0:
        return Staleness(sha=sha, known=False, dirty=dirty)
    full_sha = resolved.stdout.strip()
    changed = set(_git(repo, "diff", "--name-only", full_sha, "--", *paths).stdout.split())
    then = set(_git(repo, "ls-tree", "-r", "--name-only", full_sha, "--", *paths).stdout.split())
    changed |= {p for p in paths if p not in then}  # files added since (new modules, untracked or not)
    return Staleness(sha=sha, known=True, dirty=dirty, changed=tuple(sorted(changed)))


# --------------------------------------------------------------------------------------------------------------------
# The staged notebook: readable (mfbook.site_notebook), and saying what it is


def _short(sha: str) -> str:
    return sha[:10] if re.fullmatch(r"[0-9a-f]{7,40}", sha) else sha


def _date(provenance: dict) -> str:
    return str(provenance.get("ended_at") or provenance.get("started_at") or "unknown")[:10]


def chapter_cell(stem: str, profile: str, provenance: dict, state: Staleness, source: str = "") -> dict:
    """The markdown cell put at the top of a staged chapter: what its results are (and the folder they were read from,
    ``source``), and a warning if they are stale."""
    lines = []
    if state.stale:
        lines += ["```{warning}",
                  f"**Stale results.** This page shows results of the `{profile}` profile executed at commit "
                  f"`{_short(state.sha)}`, and they may not match the code: " + "; ".join(state.reasons()) + ".",
                  f"The numbers below may differ from what the code computes now: execute this chapter again "
                  f"(`python -m mfbook.run_book execute --profile {profile} --only {stem}`).",
                  "```", ""]
    cites = CHAPTER_CITATIONS.get(stem, ())
    lines += [f"**Results shown:** profile `{profile}` · commit `{_short(state.sha)}`"
              f"{' (modified tree)' if state.dirty else ''} · device {provenance.get('device_name', 'unknown')} · "
              f"executed {_date(provenance)} · "
              + ("**stale** (see the warning above)" if state.stale else "current (the code has not changed since)")
              + (f" · read from `{source}`" if source else "") + ".",
              "",
              f"Downloads: {{download}}`the executed notebook <{stem}.ipynb>` · "
              f"{{download}}`its source, {stem}.py <{stem}.py>`"
              + (f" · Papers: {{cite:p}}`{','.join(cites)}`" if cites else "")]
    return {"cell_type": "markdown", "id": "site-provenance", "metadata": {"tags": ["site-provenance"]},
            "source": "\n".join(lines)}


def _insert_at_top(nb: dict, cell: dict) -> None:
    """Insert ``cell`` right after the page's title cell (a first markdown cell starting with ``# ``), else first."""
    cells = nb.setdefault("cells", [])
    first = cells[0] if cells else None
    at = 1 if first and first["cell_type"] == "markdown" and "".join(first["source"]).lstrip().startswith("# ") else 0
    cells.insert(at, cell)


# --------------------------------------------------------------------------------------------------------------------
# Generated pages


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def chapters_table(entries: list[dict]) -> str:
    """The home page's table: for every chapter shown, its profile, commit, device, date and whether it is stale."""
    rows = []
    for e in entries:
        prov, state = e["provenance"], e["state"]
        status = ("**stale**: " + "; ".join(state.reasons(short=True))) if state.stale else "current"
        rows.append([f"{{doc}}`/book/_site/{e['stem']}/{e['stem']}`", f"`{e['profile']}`",
                     f"`{_short(state.sha)}`" + (" (modified tree)" if state.dirty else ""),
                     prov.get("device_name", "unknown"), _date(prov), status])
    return ("Where each chapter's numbers come from (read from its `provenance.json` when the site was staged):\n\n"
            + _md_table(["chapter", "profile", "commit", "device", "executed", "results"], rows))


def reproducibility_table(entries: list[dict]) -> str:
    """The Reproducibility page's tables: the code and run of every chapter, and the environment it ran in."""
    run_rows, env_rows = [], []
    for e in entries:
        prov, state = e["provenance"], e["state"]
        seconds = e.get("papermill_seconds")
        run_rows.append([e["stem"], f"`{e['profile']}`", f"`{_short(state.sha)}`",
                         "yes" if state.dirty else "no", "stale" if state.stale else "current",
                         prov.get("seed", ""), f"`{str(prov.get('parameters_hash', ''))[:12]}`",
                         f"{seconds:.1f}" if seconds is not None else "n/a",
                         prov.get("wall_seconds", "n/a")])
        env_rows.append([e["stem"], prov.get("device_name", "unknown"), prov.get("python", ""),
                         prov.get("torch", ""), prov.get("cuda") or "none",
                         "yes" if prov.get("deterministic_kernels") else "no", _date(prov)])
    return ("## Code and run\n\n"
            + _md_table(["chapter", "profile", "commit", "modified tree", "results", "seed", "parameters hash",
                         "notebook seconds", "chapter seconds"], run_rows)
            + "\n## Environment\n\n"
            + _md_table(["chapter", "device", "python", "torch", "CUDA", "deterministic kernels", "executed"],
                        env_rows))


# --------------------------------------------------------------------------------------------------------------------
# Staging


def stage_chapter(stem: str, profile: str, site_dir: Path = SITE_DIR, results_dir: Path | None = None,
                  repo: Path = REPO_ROOT) -> dict:
    """Copy one chapter's results to ``site_dir/<stem>/`` with its ``.py`` source, clean the notebook copy, name in it
    where its results are instead of where they were executed (:func:`relocate_notebook`) and put the provenance cell
    at its top. Returns what the generated pages need about it."""
    src, dst = profile_root(results_dir, profile) / stem, Path(site_dir) / stem
    shutil.copytree(src, dst)
    source = Path(repo) / "notebooks" / f"{stem}.py"
    if source.exists():
        shutil.copy2(source, dst / f"{stem}.py")
    try:
        provenance = json.loads((dst / "provenance.json").read_text())
    except (OSError, ValueError):
        provenance = {}
    state = staleness(stem, provenance, repo)
    notebook = dst / f"{stem}.ipynb"
    shown = _shown_path(src, repo)
    nb = relocate_notebook(clean_notebook(json.loads(notebook.read_text())), stem, shown, repo)
    _insert_at_top(nb, chapter_cell(stem, profile, provenance, state, shown))
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return {"stem": stem, "profile": profile, "provenance": provenance, "state": state,
            "papermill_seconds": papermill_seconds(src / f"{stem}.ipynb")}


class SiteError(ValueError):
    """The site cannot be staged from what was asked (no executed results there, an unknown profile)."""


def stage(site_dir: Path = SITE_DIR, results_dir: Path | None = None, repo: Path = REPO_ROOT,
          profiles: tuple[str, ...] = SITE_PROFILES) -> list[dict]:
    """Stage every chapter and the generated pages into ``site_dir``: each chapter at the first of ``profiles`` it was
    executed at (full, else smoke), read from ``results_dir`` (default: the committed ``results/``, with
    ``_build/results`` in its place for a profile ``make book`` executed there; given: ``<results_dir>/<profile>``,
    e.g. one's own smoke run in ``_build/results`` while ``results/full`` exists). Nothing is staged (SiteError) when
    a chapter has no results there."""
    site_dir = Path(site_dir)
    results_dir = None if results_dir is None else Path(results_dir)
    unknown = [p for p in profiles if p not in SITE_PROFILES]
    if unknown or not profiles:
        raise SiteError(f"unknown site profile(s) {unknown or list(profiles)}; valid: {', '.join(SITE_PROFILES)}")
    stems = notebook_stems(Path(repo) / "notebooks")
    chosen = {stem: site_profile(stem, results_dir, profiles) for stem in stems}
    missing = [stem for stem, profile in chosen.items() if profile is None]
    if missing:
        raise SiteError(f"no executed results for {', '.join(missing)} in {results_label(results_dir, profiles, repo)}: "
                        "run `make book` first (or name the folder of your run: make site SITE_RESULTS=DIR)")
    if site_dir.exists():
        shutil.rmtree(site_dir)
    site_dir.mkdir(parents=True)
    entries = [stage_chapter(stem, chosen[stem], site_dir, results_dir, repo) for stem in stems]
    for profile in profiles:
        for name in ("scorecard.csv", "benchmarks.csv", gpu_busy.BUSY_FILE, gpu_busy.IDLE_FILE):
            src = profile_root(results_dir, profile) / name
            if src.exists() and not (site_dir / name).exists():
                shutil.copy2(src, site_dir / name)
                (site_dir / f"{Path(name).stem}_source.md").write_text(
                    f"The table below is `{_shown_path(src, repo)}` (profile `{profile}`){measured_at(src)}.\n")
    if not (site_dir / "benchmarks.csv").exists():  # the benchmarks page renders this file; say plainly it is missing
        (site_dir / "benchmarks.csv").write_text(
            "benchmark,metric,value,unit,device,paper_value,note\n"
            "none,not measured yet,,,,,run benchmarks/run_all.py (or tools/gpu_book.sh) after executing the book\n")
        (site_dir / "benchmarks_source.md").write_text("No book run has been benchmarked yet.\n")
    gpu_busy.stage(site_dir, [profile_root(results_dir, p) for p in profiles])
    (site_dir / "chapters.md").write_text(chapters_table(entries))
    (site_dir / "calibration_imports.md").write_text(calibration_page.imports_table())
    staged_at = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    (site_dir / "reproducibility_table.md").write_text(
        f"Read from the `provenance.json` of every chapter shown, when the site was staged ({staged_at}).\n\n"
        + reproducibility_table(entries))
    draw_book_run(site_dir / "book_run.png", results_dir, profiles)
    (site_dir / "profiles.json").write_text(json.dumps(chosen, indent=2, sort_keys=True) + "\n")
    stale = [e["stem"] for e in entries if e["state"].stale]
    print(f"site chapters (from {results_label(results_dir, profiles, repo)}): {chosen}")
    if stale:
        print(f"stale (code changed since their results): {', '.join(stale)}")
    return entries


def measured_at(table: Path) -> str:
    """", measured at commit … on …" from the provenance beside a profile-level table (``<stem>_provenance.json``,
    written by benchmarks/run_all.py), or "" where it has none."""
    try:
        prov = json.loads(table.with_name(f"{table.stem}_provenance.json").read_text())
        dirty = " with uncommitted changes" if prov.get("git_dirty") else ""
        return (f", measured at commit `{str(prov['git_sha'])[:10]}`{dirty} on {prov['device_name']} "
                f"(torch {prov['torch']}), {prov['started_at']} to {prov['ended_at']}")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def draw_book_run(path: Path, results_dir: Path | None = None, profiles: tuple[str, ...] = SITE_PROFILES) -> None:
    """The timeline of the book run the benchmarks page reports (full where recorded, else smoke) as a PNG at
    ``path``; a figure that says so where no run was recorded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for profile in profiles:
        record_path = profile_root(results_dir, profile) / BOOK_RUN
        if record_path.exists():
            record = json.loads(record_path.read_text())
            root = profile_root(results_dir, profile)
            devices = {json.loads((root / s / "provenance.json").read_text()).get("device_name", "")
                       for s in record.get("chapters", {}) if (root / s / "provenance.json").exists()}
            fig = plots.book_run_timeline(record, devices.pop() if len(devices) == 1 else "", timed=TIMED_CHAPTERS)
            break
    else:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no book run recorded yet: run `make book`", ha="center", va="center")
    save_png(fig, path)
    plt.close(fig)
