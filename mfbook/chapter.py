"""The notebook runtime: what every chapter does at its start and end, so notebooks hold only the story.

Usage in a notebook (after the papermill ``parameters`` cell holding ``profile``, ``device``, ``seed``, ``out_dir``)::

    from mfbook.chapter import open_chapter
    ch = open_chapter("01_fusion_geometry", profile=profile, device=device, seed=seed, out_dir=out_dir)
    ch.profile.geometry.heatmap_px      # sizes come from the profile table
    ch.save_table(df, "params")         # → <out>/params.csv, tidy, stable float format
    ch.save_figure(fig, "epipolar")     # → <out>/epipolar.png, byte-stable
    ch.save_timings(df, "throughput")   # → <out>/throughput.json: wall-clock numbers never go into CSVs
    ch.glue("fit_error", 0.012)         # myst-nb glue for the site
    ch.finish()                         # → <out>/provenance.json

``out_dir`` is set by the batch runner (``python -m mfbook.run_book``) to a staging folder that replaces
``results/<profile>/<stem>/`` only when the whole notebook succeeded. Left empty (interactive use in JupyterLab), the
chapter writes to ``_build/interactive/<profile>/<stem>/`` and never touches the committed results.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mfcore.files import atomic_write_bytes
from mfcore.profiles import Profile, device_name, get_profile, resolve_device

from . import cache, numerics, progress, tables
from .cache import key_hash
from .paths import REPO_ROOT

SEED_MAX = 2**31 - 1


def show_code(source: str, start: str | None = None, end: str | None = None) -> None:
    """Show Python source of the library on the page as a code block (what a reader should see is the code that ran,
    read from ``mfcore`` when the page executed, never a copy): ``source`` from :func:`inspect.getsource`, cut from
    the line holding ``start`` to the line before the one holding ``end`` where given."""
    import textwrap

    from IPython.display import Markdown, display

    if start is not None:
        source = source[source.index(start):]
    if end is not None:
        source = source[:source.index(end)]
    display(Markdown("```python\n" + textwrap.dedent(source).rstrip() + "\n```"))


def deterministic_kernels(device) -> bool:
    """Whether a chapter on ``device`` asks torch for deterministic kernels: always on the CPU; on CUDA only with
    ``MFCORE_DETERMINISTIC=1``.

    On CUDA the deterministic variants replace atomic adds by sorts: through AffineFuse's ``omega_base`` gradient (a
    weighted histogram of 200 M samples per step at 64², four views) they made MetaFuse's meta-training take 151 s
    instead of 27 s and AffineFuse's pre-training 187 s instead of 11 s in the full book on an H200. So the GPU
    book is seeded but not bit-reproducible: float sums in a different order change the last digits of its tables
    between runs.
    """
    return torch.device(device).type == "cpu" or os.environ.get("MFCORE_DETERMINISTIC", "0") == "1"


def set_seed(seed: int, device="cpu") -> None:
    """Seed python, numpy and torch (CPU and CUDA); deterministic kernels where :func:`deterministic_kernels` says."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    _deterministic_kernels_on(device)


def _deterministic_kernels_on(device) -> None:
    deterministic = deterministic_kernels(device)
    # switching the flag imports torch._inductor (1.5-2 s per process); off is torch's default, so leave it alone then
    if deterministic != torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def apply_numeric_settings(device) -> None:
    """The chapters' numeric settings on ``device``, for every program whose results enter the book's cache (the
    chapters, ``python -m mfbook.adapt``): the cache keys results by their settings and code, not by these, so a
    program that computed with others would leave entries that differ from a chapter's. Deterministic kernels where
    :func:`deterministic_kernels` says; one torch thread on the CPU (the tables then do not depend on the machine's
    core count, and the tiny smoke tensors gain nothing from more threads), oneDNN and NNPACK off
    (:func:`mfbook.numerics.apply_in_process`: with the environment the book runner gives its kernels, the tables are
    the same bits on every x86-64 CPU)."""
    _deterministic_kernels_on(device)
    numerics.apply_in_process(device)


def validate_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, {SEED_MAX}] (valid: 0 … {SEED_MAX}), got {seed!r}")
    return seed


def git_state() -> dict:
    """Git sha of the code and whether it differs from that commit (results/ and _build/ do not count).

    A copy of the tree whose ``.git`` is not the source's (a tree shipped to a GPU machine) names its commit in
    ``$MFCORE_SOURCE_SHA`` (and ``$MFCORE_SOURCE_DIRTY=1`` when the shipped tree had changes): those win over ``git``.
    """
    if os.environ.get("MFCORE_SOURCE_SHA"):
        return {"git_sha": os.environ["MFCORE_SOURCE_SHA"], "git_dirty": os.environ.get("MFCORE_SOURCE_DIRTY") == "1"}

    def run(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    try:
        sha = run("rev-parse", "HEAD").stdout.strip() or "unknown"
        status = run("status", "--porcelain", "--", ".", ":!results", ":!_build", ":!.cache").stdout.strip()
        return {"git_sha": sha, "git_dirty": bool(status)}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "git_dirty": None}


cpu_model = numerics.cpu_model  # part of this module's API


def _canonical_csv(df) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue()


def save_png(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a byte-stable PNG at ``path`` (no software/time metadata), atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


class SavedPath(type(Path())):
    """The path of a file a chapter saved: a ``Path`` that shows nothing when it ends a notebook cell, so a cell ending in
    ``ch.save_figure(...)`` prints no ``PosixPath('…/.staging-…/x.png')`` on the page."""

    def _ipython_display_(self):
        pass


@dataclass
class Chapter:
    """One executing notebook: its profile, device, seed and output folder."""

    stem: str
    profile: Profile
    device: torch.device
    seed: int
    out: Path
    params: dict = field(default_factory=dict)
    started_at: str = ""
    _t0: float = 0.0

    def save_table(self, df, name: str) -> SavedPath:
        """Write a tidy table as ``<out>/<name>.csv`` (6 significant digits, no index) and return its path."""
        path = self.out / f"{Path(name).stem}.csv"
        atomic_write_bytes(path, _canonical_csv(df).encode())
        return SavedPath(path)

    def save_figure(self, fig, name: str, dpi: int = 110) -> SavedPath:
        """Write ``fig`` as a byte-stable PNG ``<out>/<name>.png`` (:func:`save_png`) and return its path."""
        return SavedPath(save_png(fig, self.out / f"{Path(name).stem}.png", dpi))

    def save_timings(self, df, name: str = "timings") -> SavedPath:
        """Write wall-clock measurements (which differ run to run) as ``<out>/<name>.json`` records, never as CSV.

        Every CSV of a chapter is deterministic (two runs give identical tables); timings live apart so that holds.
        """
        path = self.out / f"{Path(name).stem}.json"
        atomic_write_bytes(path, (df.to_json(orient="records", indent=1, double_precision=6, force_ascii=False) + "\n").encode())
        return SavedPath(path)

    def glue(self, name: str, value, display: bool = False):
        """Glue ``value`` for the site (``{glue:text}`` on other pages; ``{glue:md}`` for an ``IPython.display.Markdown``
        value) and return it."""
        try:
            from myst_nb import glue
        except ImportError:  # a machine without the site toolchain (the GPU runner): emit the same output by hand
            from IPython.core.formatters import format_display_data
            from IPython.display import display as show

            bundle, _ = format_display_data(value)  # text/plain, and text/markdown for a Markdown value ({glue:md})
            show({f"application/papermill.record/{k}": v for k, v in bundle.items()}, raw=True,
                 metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})
            if display:
                show(value)
            return value
        glue(name, value, display=display)
        return value

    def banner(self) -> str:
        """A Markdown line saying where this page's numbers come from."""
        g = git_state()
        return (f"**Profile `{self.profile.name}`** ({self.profile.description}) · device `{device_name(self.device)}` · "
                f"seed {self.seed} · git `{g['git_sha'][:10]}`{' (modified)' if g['git_dirty'] else ''}. "
                "All data are synthetic (the book's capture studio): the numbers are not the papers'.")

    def finish(self, extra: dict | None = None) -> None:
        """Write ``provenance.json``: code, profile, parameters and their hash, seed, device, versions, times.

        Returns nothing: it ends every notebook, and a returned path would print where the runner staged it."""
        ended = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        prov = {
            "stem": self.stem,
            **git_state(),
            "profile": self.profile.name,
            "profile_sizes": self.profile.as_dict(),
            "parameters": self.params,
            "parameters_hash": key_hash({"profile": self.profile.as_dict(), "params": self.params}),
            "seed": self.seed,
            "device": str(self.device),
            "device_name": device_name(self.device),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.version.cuda if self.device.type == "cuda" else None,
            "deterministic_kernels": deterministic_kernels(self.device),
            **numerics.record(),  # the numerics mode and what it pins (mfbook.numerics)
            **numerics.numerics_fingerprint(),  # which machines give byte-identical tables (tests/test_results.py)
            "started_at": self.started_at,
            "ended_at": ended,
            "wall_seconds": round(time.perf_counter() - self._t0, 2),
            **(extra or {}),
        }
        path = self.out / "provenance.json"
        atomic_write_bytes(path, (json.dumps(prov, indent=2, sort_keys=True, default=str) + "\n").encode())


def open_chapter(stem: str, *, profile: str, device: str = "auto", seed: int = 0, out_dir: str = "",
                 params: dict | None = None) -> Chapter:
    """Validate the parameters, seed everything, make the output folder, install the book's cache and progress bars
    for the science (:mod:`mfcore.runtime`) and its table display (:mod:`mfbook.tables`), and show where the numbers
    come from."""
    prof = get_profile(profile)
    dev = resolve_device(device)
    validate_seed(seed)
    set_seed(seed, dev)
    apply_numeric_settings(dev)  # one CPU thread, oneDNN/NNPACK off: the golden smoke copy is compared across machines
    cache.install()
    progress.install()
    tables.install()  # the tables a cell displays read as numbers for people (mfbook/tables.py)
    out = REPO_ROOT / out_dir if out_dir else REPO_ROOT / "_build" / "interactive" / prof.name / stem
    out.mkdir(parents=True, exist_ok=True)
    ch = Chapter(stem=stem, profile=prof, device=dev, seed=seed, out=out,
                 params={"profile": profile, "device": device, "seed": seed, **(params or {})},
                 started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), _t0=time.perf_counter())
    try:
        from IPython.display import Markdown, display

        display(Markdown(ch.banner()))
    except ImportError:  # plain python
        print(ch.banner())
    return ch
