"""Where the book's time goes on the GPU: the GPU's utilisation sampled while ``run_book execute`` runs, per chapter
and for the whole book, and the longest stretches it sat idle with what was executing then.

While a book executes on CUDA, :func:`start_sampler` runs ``nvidia-smi --query-gpu=utilization.gpu,memory.used
--format=csv,noheader,nounits -lms 200`` in the background (the GPU torch calls ``cuda:0``: the first entry of
``$CUDA_VISIBLE_DEVICES``) and times every line on the runner's clock. NVML's ``utilization.gpu`` is the share of its
last sample period (1/6 s to 1 s, by GPU) in which at least one kernel was executing, so it says whether the GPU was
busy, not how much of it was used. On a CPU run, or without ``nvidia-smi``, nothing is sampled and nothing written.

At the end of a run that executed every chapter, :func:`write_report` writes beside ``book_run.json`` (timings, like
it: never in a chapter's deterministic CSVs):

* ``gpu_busy.csv``: ``scope, start_s, end_s, seconds, samples, busy_fraction, busy_seconds, idle_fraction,
  mean_memory_mib, max_memory_mib, beside``: one row per chapter (the GPU's mean utilisation while the chapter
  executed, whatever executed beside it, named in ``beside``) and one for the whole book. ``busy_seconds`` is the
  utilisation's integral over the sampled time (each sample's utilisation × the sample period): the seconds in which
  some kernel was executing. Kernels of different processes take turns on the GPU (no MPS), so the whole book's
  ``busy_seconds`` is what any schedule of the same chapters on this GPU needs at the least, up to how full each
  kernel keeps the GPU (a small kernel counts as busy);
* ``gpu_idle.csv``: ``rank, start_s, end_s, seconds, mean_utilization_pct, chapters, cause``: the
  :data:`IDLE_STRETCHES` longest stretches of samples below :data:`IDLE_THRESHOLD_PCT`, each with the chapters
  executing then and, from papermill's per-cell start and end times in their executed notebooks, the cells that ran
  in it (or that no cell was running: a kernel starting or a chapter publishing);
* ``gpu_samples.json``: the samples themselves and how they were taken.

``python -m mfbook.gpu_busy --profile full`` computes the two tables again from ``gpu_samples.json``,
``book_run.json`` and the executed notebooks (``--threshold`` another idle threshold).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

from mfcore.files import atomic_write_bytes

SAMPLE_PERIOD_MS = 200  # nvidia-smi -lms
IDLE_THRESHOLD_PCT = 10.0  # a sample below this utilisation counts as idle
IDLE_STRETCHES = 5  # the longest idle stretches reported
SAMPLES_FILE, BUSY_FILE, IDLE_FILE = "gpu_samples.json", "gpu_busy.csv", "gpu_idle.csv"
BUSY_COLUMNS = ("scope", "start_s", "end_s", "seconds", "samples", "busy_fraction", "busy_seconds", "idle_fraction",
                "mean_memory_mib", "max_memory_mib", "beside")
IDLE_COLUMNS = ("rank", "start_s", "end_s", "seconds", "mean_utilization_pct", "chapters", "cause")
WHOLE_BOOK = "whole book"


class Sample(NamedTuple):
    t_s: float  # seconds from the start of the book run
    utilization_pct: float  # NVML utilization.gpu
    memory_mib: float  # memory.used


def gpu_index() -> str:
    """The GPU that torch calls ``cuda:0``: the first entry of ``$CUDA_VISIBLE_DEVICES`` (an index or a UUID), else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


def sampling_command(period_ms: int = SAMPLE_PERIOD_MS) -> list[str] | None:
    """The nvidia-smi command line that prints one ``utilization, memory`` line every ``period_ms`` (None without
    nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    return [exe, "-i", gpu_index(), "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
            "-lms", str(int(period_ms))]


def parse_line(line: str) -> tuple[float, float] | None:
    """``"37, 1024"`` → (37.0, 1024.0); None for a line that is not two numbers (a header, ``[N/A]``, an error)."""
    parts = [p.strip() for p in line.strip().split(",")]
    if len(parts) != 2:
        return None
    try:
        util, mem = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return (util, mem) if 0.0 <= util <= 100.0 and mem >= 0.0 else None


class Sampler:
    """Runs ``command`` (one ``utilization, memory`` line per sample) in the background and keeps every parsed line as a
    :class:`Sample` timed by ``clock() − t0``; :meth:`stop` ends it and returns the samples."""

    def __init__(self, command: list[str], t0: float, clock=time.perf_counter, period_ms: int = SAMPLE_PERIOD_MS,
                 device_name: str = ""):
        self.command, self.t0, self.clock, self.period_ms = list(command), t0, clock, period_ms
        self.device_name = device_name
        self.started_at = _wall_at(t0, clock)  # the wall time of t0: cells' times are on the wall clock
        self.samples: list[Sample] = []
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      bufsize=1)
        self._thread = threading.Thread(target=self._read, name="gpu-busy", daemon=True)
        self._thread.start()
        atexit.register(self.stop)  # a run that stops early (an error, exit 2) leaves no sampler behind

    def _read(self) -> None:
        for line in self._proc.stdout:
            parsed = parse_line(line)
            if parsed is not None:
                self.samples.append(Sample(round(self.clock() - self.t0, 3), *parsed))

    def stop(self) -> list[Sample]:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._thread.join(timeout=5)
        return list(self.samples)

    def record(self) -> dict:
        """What :data:`SAMPLES_FILE` holds: how the samples were taken, and the samples."""
        return {"command": " ".join(Path(self.command[0]).name if i == 0 else a for i, a in enumerate(self.command)),
                "period_ms": self.period_ms, "started_at": self.started_at, "gpu": gpu_index(),
                "device_name": self.device_name, "samples": [list(s) for s in self.samples]}


class NoSampler:
    """What :func:`start_sampler` gives where nothing can be sampled (a CPU run, no nvidia-smi)."""

    samples: list[Sample] = []

    def stop(self) -> list[Sample]:
        return []

    def record(self) -> dict:
        return {}


def _wall_at(t: float, clock=time.perf_counter) -> str:
    """The wall time (UTC, ISO) at which ``clock()`` read ``t``."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return (now - _dt.timedelta(seconds=clock() - t)).isoformat(timespec="microseconds")


def start_sampler(device_type: str, t0: float, command: list[str] | None = None) -> Sampler | NoSampler:
    """A :class:`Sampler` of this machine's GPU for a run on ``device_type`` "cuda" started at ``t0`` (perf_counter);
    :class:`NoSampler` on a CPU run or where ``nvidia-smi`` is missing or cannot start."""
    if device_type != "cuda":
        return NoSampler()
    command = command or sampling_command()
    if command is None:
        return NoSampler()
    try:
        return Sampler(command, t0, device_name=_gpu_name())
    except OSError:
        return NoSampler()


def _gpu_name() -> str:
    """The name of the sampled GPU (``nvidia-smi --query-gpu=name``), or "" where it cannot be read."""
    exe = shutil.which("nvidia-smi")
    try:
        out = subprocess.run([exe, "-i", gpu_index(), "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError, TypeError):
        return ""
    return out.splitlines()[0].strip() if out else ""


# ------------------------------------------------------------------------------------------------------- analysis


def _within(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.t_s <= end]


def busy_rows(samples: list[Sample], spans: dict[str, tuple[float, float]], book_seconds: float,
              threshold_pct: float = IDLE_THRESHOLD_PCT, period_s: float = SAMPLE_PERIOD_MS / 1000) -> list[dict]:
    """One row per chapter span (seconds from the start of the run) and one for the whole book: the GPU's mean
    utilisation / 100 (``busy_fraction``), its integral over the sampled time (``busy_seconds``: utilisation × the
    sample period ``period_s``, summed; time without samples counts nothing), the share of samples below
    ``threshold_pct`` and the memory used."""
    scopes = sorted(spans.items(), key=lambda kv: (kv[1][0], kv[0])) + [(WHOLE_BOOK, (0.0, book_seconds))]
    rows = []
    for scope, (start, end) in scopes:
        inside = _within(samples, start, end)
        n = len(inside)
        beside = sorted(s for s, (a, b) in spans.items() if s != scope and a < end and b > start) \
            if scope != WHOLE_BOOK else []
        rows.append(dict(scope=scope, start_s=round(start, 2), end_s=round(end, 2), seconds=round(end - start, 2),
                         samples=n,
                         busy_fraction=round(sum(s.utilization_pct for s in inside) / 100 / n, 4) if n else None,
                         busy_seconds=round(sum(s.utilization_pct for s in inside) / 100 * period_s, 2) if n else None,
                         idle_fraction=round(sum(s.utilization_pct < threshold_pct for s in inside) / n, 4) if n else None,
                         mean_memory_mib=round(sum(s.memory_mib for s in inside) / n, 1) if n else None,
                         max_memory_mib=max((s.memory_mib for s in inside), default=None),
                         beside=", ".join(beside)))
    return rows


def idle_stretches(samples: list[Sample], threshold_pct: float = IDLE_THRESHOLD_PCT,
                   count: int = IDLE_STRETCHES) -> list[tuple[float, float, float]]:
    """The ``count`` longest runs of consecutive samples below ``threshold_pct``: (start_s, end_s, mean utilisation),
    longest first. A run starts at its first idle sample and ends at the next busy sample (or its last sample)."""
    runs, start, values = [], None, []
    ordered = sorted(samples)
    for i, s in enumerate(ordered):
        if s.utilization_pct < threshold_pct:
            if start is None:
                start, values = s.t_s, []
            values.append(s.utilization_pct)
        elif start is not None:
            runs.append((start, s.t_s, sum(values) / len(values)))
            start = None
    if start is not None:
        runs.append((start, ordered[-1].t_s, sum(values) / len(values)))
    runs.sort(key=lambda r: (-(r[1] - r[0]), r[0]))
    return runs[:count]


def _utc(text: str) -> _dt.datetime:
    """An ISO time; one without a zone is UTC (papermill's older versions write naive UTC times)."""
    t = _dt.datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def notebook_cells(notebook: Path, book_started_at: str) -> list[tuple[float, float, str]]:
    """(start_s, end_s, label) of every executed code cell of a papermill notebook, in seconds from the book run's
    start (``book_started_at``, ISO); label ``cell N: first source line``. Empty where the notebook is missing."""
    try:
        nb = json.loads(Path(notebook).read_text())
    except (OSError, ValueError):
        return []
    t0 = _utc(book_started_at)
    cells = []
    for number, cell in enumerate(nb.get("cells", []), start=1):
        meta = cell.get("metadata", {}).get("papermill", {})
        if cell.get("cell_type") != "code" or not meta.get("start_time") or not meta.get("end_time"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        first = next((ln.strip() for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        start = (_utc(meta["start_time"]) - t0).total_seconds()
        end = (_utc(meta["end_time"]) - t0).total_seconds()
        cells.append((start, end, f"cell {number}: {first[:60]}"))
    return cells


def idle_rows(samples: list[Sample], spans: dict[str, tuple[float, float]],
              cells: dict[str, list[tuple[float, float, str]]], threshold_pct: float = IDLE_THRESHOLD_PCT,
              count: int = IDLE_STRETCHES) -> list[dict]:
    """The longest idle stretches (:func:`idle_stretches`) with their cause: the chapters executing then and, per
    chapter, the cells overlapping the stretch (longest overlap first), or what the chapter did outside any cell."""
    rows = []
    for rank, (start, end, mean) in enumerate(idle_stretches(samples, threshold_pct, count), start=1):
        chapters = sorted(s for s, (a, b) in spans.items() if a < end and b > start)
        causes = []
        for stem in chapters:
            overlap = sorted(((min(e, end) - max(s, start), label) for s, e, label in cells.get(stem, [])
                              if s < end and e > start), reverse=True)
            if overlap:
                shown = "; ".join(f"{label} ({sec:.1f} s)" for sec, label in overlap[:2])
                causes.append(f"{stem}: {shown}{' …' if len(overlap) > 2 else ''}")
            else:
                a, b = spans[stem]
                first = min((s for s, _, _ in cells.get(stem, [])), default=b)
                last = max((e for _, e, _ in cells.get(stem, [])), default=a)
                where = ("kernel start-up, before its first cell" if end <= first else
                         "after its last cell (saving, publishing)" if start >= last else "between cells")
                causes.append(f"{stem}: {where}")
        rows.append(dict(rank=rank, start_s=round(start, 2), end_s=round(end, 2), seconds=round(end - start, 2),
                         mean_utilization_pct=round(mean, 1), chapters=", ".join(chapters),
                         cause=" | ".join(causes) if causes else "no chapter executing (the runner between chapters)"))
    return rows


def _csv(rows: list[dict], columns) -> bytes:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns)).to_csv(index=False).encode()


def write_report(folder: Path, record: dict, spans: dict[str, tuple[float, float]], book_seconds: float,
                 threshold_pct: float = IDLE_THRESHOLD_PCT) -> dict | None:
    """Write :data:`SAMPLES_FILE`, :data:`BUSY_FILE` and :data:`IDLE_FILE` into ``folder`` (the profile's results)
    from a sampler's ``record`` and the run's chapter spans; returns the whole book's row (None without samples)."""
    samples = [Sample(*s) for s in record.get("samples", [])]
    if not samples:
        return None
    folder = Path(folder)
    record = {**record, "idle_threshold_pct": threshold_pct, "book_seconds": round(book_seconds, 2)}
    atomic_write_bytes(folder / SAMPLES_FILE, (json.dumps(record) + "\n").encode())
    busy = busy_rows(samples, spans, book_seconds, threshold_pct, record_period_s(record))
    cells = {stem: notebook_cells(folder / stem / f"{stem}.ipynb", record["started_at"]) for stem in spans}
    atomic_write_bytes(folder / BUSY_FILE, _csv(busy, BUSY_COLUMNS))
    atomic_write_bytes(folder / IDLE_FILE, _csv(idle_rows(samples, spans, cells, threshold_pct), IDLE_COLUMNS))
    return busy[-1]


def record_period_s(record: dict) -> float:
    """The sample period of a sampler's ``record`` in seconds (its ``period_ms``, else :data:`SAMPLE_PERIOD_MS`)."""
    return float(record.get("period_ms") or SAMPLE_PERIOD_MS) / 1000


def report_again(folder: Path, threshold_pct: float = IDLE_THRESHOLD_PCT) -> dict | None:
    """:func:`write_report` from the files of a finished run in ``folder`` (``gpu_samples.json``, ``book_run.json``)."""
    folder = Path(folder)
    record = json.loads((folder / SAMPLES_FILE).read_text())
    run = json.loads((folder / "book_run.json").read_text())
    spans = {s: (c["start_s"], c["end_s"]) for s, c in run["chapters"].items()}
    return write_report(folder, record, spans, run["wall_seconds"], threshold_pct)


def summary(row: dict | None, threshold_pct: float = IDLE_THRESHOLD_PCT) -> str:
    """One line for the runner's log from the whole book's row."""
    if not row or row.get("busy_fraction") is None:
        return "GPU utilisation: not sampled"
    return (f"GPU busy {100 * row['busy_fraction']:.0f} % of the book's {row['seconds']:.0f} s "
            + (f"({row['busy_seconds']:.0f} s with a kernel executing; " if row.get("busy_seconds") is not None else "(")
            + f"{100 * row['idle_fraction']:.0f} % of the samples below {threshold_pct:g} % utilisation)")


def utilisation_figure(record: dict, spans: dict[str, tuple[float, float]], device_name: str = ""):
    """The sampled utilisation against time (seconds from the start of the run), the idle threshold, and a bar per
    chapter below it: where the book's GPU time went. Returns the figure."""
    import matplotlib.pyplot as plt

    samples = [Sample(*s) for s in record.get("samples", [])]
    threshold = record.get("idle_threshold_pct", IDLE_THRESHOLD_PCT)
    chapters = sorted(spans.items(), key=lambda kv: (kv[1][0], kv[0]))
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 2.6 + 0.3 * len(chapters)),
                                      gridspec_kw={"height_ratios": [2.2, 0.3 * max(len(chapters), 1)]})
    top.fill_between([s.t_s for s in samples], [s.utilization_pct for s in samples], step="post", color="tab:green",
                     alpha=0.6, lw=0)
    top.axhline(threshold, color="black", lw=0.8, ls=":")
    top.set(ylabel="GPU utilisation (%)", ylim=(0, 105))
    book = busy_rows(samples, spans, float(record.get("book_seconds") or max((b for _, b in spans.values()),
                                                                             default=0.0)), threshold,
                     record_period_s(record))[-1]
    where = f" of one {device_name}" if device_name else ""
    busy = f"{100 * book['busy_fraction']:.0f} %" if book["busy_fraction"] is not None else "not measured"
    kernels = f"a kernel executing {book['busy_seconds']:.0f} s of it; " if book["busy_seconds"] is not None else ""
    top.set_title(f"The GPU{where} was busy {busy} of the book's {book['seconds']:.0f} s "
                  f"({kernels}dotted: the {threshold:g} % idle threshold)", fontsize=10)
    for row, (stem, (a, b)) in enumerate(chapters):
        bottom.barh(row, b - a, left=a, color="tab:blue", alpha=0.85, height=0.6)
    bottom.set_yticks(range(len(chapters)), [s for s, _ in chapters], fontsize=8)
    bottom.invert_yaxis()
    bottom.set_xlabel("seconds from the start of the run")
    fig.tight_layout()
    return fig


def draw(path: Path, folder: Path) -> bool:
    """The figure of :func:`utilisation_figure` for the sampled run in ``folder`` as a byte-stable PNG at ``path``;
    False (nothing drawn) where the folder holds no sampled run."""
    from .chapter import save_png

    try:
        record = json.loads((Path(folder) / SAMPLES_FILE).read_text())
        run = json.loads((Path(folder) / "book_run.json").read_text())
    except (OSError, ValueError):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spans = {s: (c["start_s"], c["end_s"]) for s, c in run.get("chapters", {}).items()}
    fig = utilisation_figure(record, spans, record.get("device_name", ""))
    save_png(fig, Path(path))
    plt.close(fig)
    return True


def stage(site_dir: Path, roots: list[Path]) -> None:
    """For the benchmarks page: placeholders where no sampled run left :data:`BUSY_FILE` or :data:`IDLE_FILE` in
    ``site_dir`` (the site copies them from the results), and ``gpu_busy.png`` from the first of ``roots`` (the
    profiles' results, full first) holding a sampled run, else a figure that says none was sampled."""
    site_dir = Path(site_dir)
    missing = "not sampled: the book has not been executed on a GPU with the sampler (mfbook/gpu_busy.py)"
    for name, columns in ((BUSY_FILE, BUSY_COLUMNS), (IDLE_FILE, IDLE_COLUMNS)):
        if not (site_dir / name).exists():
            (site_dir / name).write_text(",".join(columns) + "\n" + missing + "," * (len(columns) - 1) + "\n")
            (site_dir / f"{Path(name).stem}_source.md").write_text("No book run on a GPU has been sampled yet.\n")
    if not any(draw(site_dir / "gpu_busy.png", root) for root in roots):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .chapter import save_png

        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no book run on a GPU sampled yet: run tools/gpu_book.sh", ha="center", va="center")
        save_png(fig, site_dir / "gpu_busy.png")
        plt.close(fig)


def main(argv=None) -> None:
    from .paths import RESULTS_DIR

    ap = argparse.ArgumentParser(prog="python -m mfbook.gpu_busy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    ap.add_argument("--threshold", type=float, default=IDLE_THRESHOLD_PCT, help="idle below this utilisation (%%)")
    args = ap.parse_args(argv)
    folder = args.results / args.profile
    if not 0 < args.threshold <= 100:
        print(f"error: --threshold must be in (0, 100], got {args.threshold}", file=sys.stderr)
        raise SystemExit(2)
    try:
        row = report_again(folder, args.threshold)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: no sampled book run in {folder} ({SAMPLES_FILE} and book_run.json): {err}", file=sys.stderr)
        raise SystemExit(2)
    print(summary(row, args.threshold))
    print(f"wrote {folder / BUSY_FILE} and {folder / IDLE_FILE}")


if __name__ == "__main__":
    main()
