"""A small on-disk cache of tensors, keyed by a hash of what produced them.

``cached(kind, key, build)`` returns ``build()``'s dict of tensors, computing it only when no valid entry exists. The file
name carries a hash of ``key`` (profile sizes, seed, rig …), of the source of the mfcore modules that produced it
and of the numerics they ran under (:mod:`mfbook.numerics`), so a change of code, settings or arithmetic (or of the entry format, :data:`ENTRY_FORMAT`) is a new entry. Each entry also stores a
hash of its own contents (sha256 of the sha256s of 16 MiB chunks, hashed on several cores): a corrupt or stale entry is
detected, rebuilt and replaced, never silently reused. Writes are atomic (temporary file + rename), and loads
use ``torch.load(..., weights_only=True)``. A process keeps the entries it loaded or built in memory (LRU, up to
``$MFCORE_CACHE_MEMORY_GB``, default 8) and reuses them while their file is unchanged.

The science (``mfcore``) reaches this cache through :func:`mfcore.runtime.cached` once :func:`install` has run
(``mfbook.chapter.open_chapter`` does so).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

import mfcore
from mfcore import runtime
from mfcore.files import atomic_torch_save
from mfcore.runtime import memo_budget_bytes

from . import numerics
from .paths import REPO_ROOT, cache_dir  # noqa: F401 (cache_dir: part of this module's API)

_MFCORE_DIR = Path(mfcore.__file__).resolve().parent


def module_files(module_name: str) -> list[Path]:
    """The source files of one unit of mfcore: a module ``mfcore/<name>.py``, or a package ``mfcore/<name>/`` (all its
    files: a package is one concept, e.g. the Tekin network or the calibration formats). A dotted name
    (``trainable_fusion.samples``) stands for its top-level unit."""
    top = module_name.split(".")[0]
    single = _MFCORE_DIR / f"{top}.py"
    if single.is_file():
        return [single]
    package = _MFCORE_DIR / top
    if (package / "__init__.py").is_file():
        return sorted(package.rglob("*.py"))
    raise ValueError(f"no mfcore module or package named {top!r} (from {module_name!r})")


def _is_unit(name: str) -> bool:
    return (_MFCORE_DIR / f"{name}.py").is_file() or (_MFCORE_DIR / name / "__init__.py").is_file()


def mfcore_imports(module_name: str) -> set[str]:
    """The mfcore units (modules or packages) that ``module_name``'s source imports (``from mfcore import x``,
    ``from mfcore.x import ...``, ``import mfcore.x``, ``from . import x``, and in a package's files ``from .. import x``;
    at module level or inside functions). Parsed once per version of the files (their sizes and modification times):
    every cache lookup asks, and parsing the closure took about 0.15 s."""
    files = module_files(module_name)
    found = set()
    for f in files:
        st = f.stat()
        found |= _parsed_imports(str(f), st.st_size, st.st_mtime_ns)
    return found - {module_name.split(".")[0]}


@functools.lru_cache(maxsize=512)
def _parsed_imports(path: str, size: int, mtime_ns: int) -> frozenset[str]:
    file = Path(path)
    in_package = file.parent != _MFCORE_DIR  # a package's file: level 1 is its own package, level 2 is mfcore
    top_level = 2 if in_package else 1
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == top_level:  # from . import x / from .x import y (or ..)
            found.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and node.module == "mfcore":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mfcore."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mfcore."))
    return frozenset(m for m in found if _is_unit(m))


def code_closure(module_names) -> tuple[str, ...]:
    """``module_names`` (as their top-level units) and every mfcore unit they import, directly or through another,
    sorted."""
    todo, seen = [m.split(".")[0] for m in module_names], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(mfcore_imports(name) - seen)
    return tuple(sorted(seen))


def code_hash(module_names: tuple[str, ...]) -> str:
    """sha256 over the source files of the named mfcore units (e.g. ``("render", "data")``; a package counts with all
    its files) and of every mfcore unit they import, transitively (:func:`code_closure`): a change anywhere in the
    code behind an entry is a new entry."""
    h = hashlib.sha256()
    for name in code_closure(module_names):
        for f in module_files(name):
            h.update(f.relative_to(_MFCORE_DIR).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def key_hash(key: dict) -> str:
    """sha256 of the canonical JSON of ``key`` (sorted keys; tuples as lists; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


# The format of an entry (part of every key, so entries of another format are other files, never misread).
# 2: content hash over 16 MiB chunks hashed in parallel, torch.save without the zip records' CRC32 (the content hash
# already verifies every byte; CRC32 cost 70% of writing a heatmaps entry).
ENTRY_FORMAT = 2
HASH_CHUNK_BYTES = 16 << 20


def _hash_workers() -> int:
    """Threads hashing an entry's chunks (hashlib releases the GIL): the cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and the sha256 of each 16 MiB chunk of its bytes (a hash tree:
    the chunks are hashed on several cores, 1.7 GB of dome heatmaps in a fraction of the 2 s one sha256 takes)."""
    headers, chunks = [], []
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        headers.append((name, str(t.dtype), str(tuple(t.shape)), len(chunks)))
        if t.numel():  # the tensor's own bytes, read in place (no copy: entries reach gigabytes at full scale)
            raw = memoryview(t.reshape(-1).view(torch.uint8).numpy())
            chunks += [raw[i:i + HASH_CHUNK_BYTES] for i in range(0, len(raw), HASH_CHUNK_BYTES)]
    workers = min(_hash_workers(), len(chunks))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            digests = list(pool.map(lambda c: hashlib.sha256(c).digest(), chunks))
    else:
        digests = [hashlib.sha256(c).digest() for c in chunks]
    h = hashlib.sha256(f"entry format {ENTRY_FORMAT}".encode())
    ends = [first for *_, first in headers[1:]] + [len(chunks)]
    for (name, dtype, shape, first), end in zip(headers, ends):
        h.update(name.encode())
        h.update(dtype.encode())
        h.update(shape.encode())
        h.update(b"".join(digests[first:end]))
    return h.hexdigest()


# Entries already loaded (or built) by this process, most recently used last: a chapter asks for the same cached
# heatmaps many times (every method and K of Fig. 7 reads the same test frames), and reading and verifying a
# gigabyte-sized entry each time cost minutes of the full book. Keyed by path, file size and modification time.
_MEMO: "OrderedDict[Path, tuple[tuple[int, int], dict[str, torch.Tensor], int]]" = OrderedDict()


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _memo_get(path: Path) -> dict[str, torch.Tensor] | None:
    hit = _MEMO.get(path)
    if hit is None:
        return None
    st = path.stat()
    if hit[0] != (st.st_size, st.st_mtime_ns):
        del _MEMO[path]
        return None
    _MEMO.move_to_end(path)
    return dict(hit[1])


def _memo_put(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    size, budget = _nbytes(tensors), memo_budget_bytes()
    _MEMO.pop(path, None)
    if size > budget:
        return
    st = path.stat()
    _MEMO[path] = ((st.st_size, st.st_mtime_ns), dict(tensors), size)
    while sum(v[2] for v in _MEMO.values()) > budget:
        _MEMO.popitem(last=False)


def clear_memo() -> None:
    """Forget the entries this process holds in memory (the files stay)."""
    _MEMO.clear()


def cached(kind: str, key: dict, build: Callable[[], dict[str, torch.Tensor]], code: tuple[str, ...] = (),
           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The tensors that ``build()`` returns for ``key``, from ``<cache_dir>/<kind>-<hash>.pt`` when a valid entry exists.

    ``code`` names the mfcore modules whose source is part of the key. ``device`` moves the result there. The
    numerics fingerprint of this process (:func:`mfbook.numerics.numerics_fingerprint`: the libraries, their settings
    and, outside the portable mode, the CPU) is part of every key: an entry computed under other arithmetic (another
    CPU path, thread count or library) holds other bits, and a chapter must not mix them with its own.
    """
    full_key = {"kind": kind, "key": key, "code": code_hash(code) if code else "", "format": ENTRY_FORMAT,
                "numerics": numerics.numerics_fingerprint()["numerics_fingerprint"]}
    digest = key_hash(full_key)
    path = cache_dir() / f"{kind}-{digest[:16]}.pt"
    result = _memo_get(path) if path.exists() else None
    if result is not None:
        return {k: v.to(device) for k, v in result.items()} if device is not None else result
    if path.exists():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry.get("key_hash") != digest or entry.get("content_hash") != _content_hash(entry["tensors"]):
                raise ValueError("hash mismatch")
            result = entry["tensors"]
            _memo_put(path, result)
        except Exception as err:  # corrupt, truncated or stale: rebuild
            warnings.warn(f"cache entry {path.name} is invalid ({err}); rebuilding it", stacklevel=2)
            result = None
    if result is None:
        result = build()
        if not isinstance(result, dict) or not all(isinstance(v, torch.Tensor) for v in result.values()):
            raise TypeError(f"cache build for {kind!r} must return a dict of tensors")
        cpu = {k: v.detach().cpu() for k, v in result.items()}
        atomic_torch_save({"key_hash": digest, "key": json.dumps(full_key, sort_keys=True, default=str),
                           "content_hash": _content_hash(cpu), "tensors": cpu}, path, crc32=False)
        _memo_put(path, cpu)
    if device is not None:
        result = {k: v.to(device) for k, v in result.items()}
    return result


def install() -> None:
    """Make this cache the one the science uses (:func:`mfcore.runtime.cached`)."""
    runtime.install(cache=cached)
