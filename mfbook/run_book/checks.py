"""The checks before a run touches anything: a GPU profile on a machine without CUDA, the results folder's path
(names the file system accepts) and whether the folder is writable."""

from __future__ import annotations

import os
from pathlib import Path

from mfcore.profiles import resolve_device

from ..paths import RESULTS_DIR
from .console import say
from .notebook import PublishError


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
