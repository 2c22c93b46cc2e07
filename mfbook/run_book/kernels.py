"""What every chapter's kernel inherits from the runner: the environment of the run (progress bars, results folder,
the CPU's portable numerics or the GPU's thread share), set while the chapters execute."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mfcore.profiles import resolve_device

from .. import numerics
from ..paths import RESULTS_DIR, RESULTS_ENV


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
