"""Atomic writes: a file is replaced whole or not at all (temporary file in the same folder, then a rename), so an
interrupted or failed write never leaves a half-written result and never loses what was there before."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.serialization import config as serialization_config


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_torch_save(obj, path, *, crc32: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (creating its folder); returns the path. A file that cannot be written
    is an ``OSError`` (torch reports it as a ``RuntimeError``). ``crc32=False`` skips the zip records' CRC32 (70% of
    the time of writing a gigabyte from memory): only for files that carry their own hash of their contents (the
    cache's entries); ``torch.load`` reads them all the same."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        try:
            with serialization_config.patch({"save.compute_crc32": crc32}):
                torch.save(obj, tmp)
        except RuntimeError as err:
            raise OSError(f"cannot write {str(path)!r}: {err}") from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
