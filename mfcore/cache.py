"""A small on-disk cache of tensors, keyed by a hash of what produced them.

``cached(kind, key, build)`` returns ``build()``'s dict of tensors, computing it only when no valid entry exists. The file
name carries a hash of ``key`` (profile sizes, seed, rig …) and of the source of the mfcore modules that produced it,
so a change of code or settings is a new entry. Each entry also stores a hash of its own contents: a corrupt or stale
entry is detected, rebuilt and replaced, never silently reused. Writes are atomic (temporary file + rename), and loads
use ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
_MFCORE_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """``$MFCORE_CACHE`` if set, else ``<repo>/.cache/mfcore``."""
    return Path(os.environ.get("MFCORE_CACHE", REPO_ROOT / ".cache" / "mfcore"))


def code_hash(module_names: tuple[str, ...]) -> str:
    """sha256 over the source files of the named mfcore modules (e.g. ``("render", "data")``)."""
    h = hashlib.sha256()
    for name in sorted(module_names):
        h.update(name.encode())
        h.update((_MFCORE_DIR / f"{name}.py").read_bytes())
    return h.hexdigest()


def key_hash(key: dict) -> str:
    """sha256 of the canonical JSON of ``key`` (sorted keys; tuples as lists; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _content_hash(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too
    return h.hexdigest()


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to ``path`` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cached(kind: str, key: dict, build: Callable[[], dict[str, torch.Tensor]], code: tuple[str, ...] = (),
           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The tensors that ``build()`` returns for ``key``, from ``<cache_dir>/<kind>-<hash>.pt`` when a valid entry exists.

    ``code`` names the mfcore modules whose source is part of the key. ``device`` moves the result there.
    """
    full_key = {"kind": kind, "key": key, "code": code_hash(code) if code else ""}
    digest = key_hash(full_key)
    path = cache_dir() / f"{kind}-{digest[:16]}.pt"
    result = None
    if path.exists():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry.get("key_hash") != digest or entry.get("content_hash") != _content_hash(entry["tensors"]):
                raise ValueError("hash mismatch")
            result = entry["tensors"]
        except Exception as err:  # corrupt, truncated or stale: rebuild
            warnings.warn(f"cache entry {path.name} is invalid ({err}); rebuilding it", stacklevel=2)
            result = None
    if result is None:
        result = build()
        if not isinstance(result, dict) or not all(isinstance(v, torch.Tensor) for v in result.values()):
            raise TypeError(f"cache build for {kind!r} must return a dict of tensors")
        cpu = {k: v.detach().cpu() for k, v in result.items()}
        atomic_torch_save({"key_hash": digest, "key": json.dumps(full_key, sort_keys=True, default=str),
                           "content_hash": _content_hash(cpu), "tensors": cpu}, path)
    if device is not None:
        result = {k: v.to(device) for k, v in result.items()}
    return result
