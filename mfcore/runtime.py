"""How the science runs: where expensive results are kept between calls, and how a long loop shows its progress.

Science modules call :func:`cached` and :func:`progress`; they never import the book's machinery (``mfbook``). By
default nothing is kept (``cached`` builds every time) and progress bars are ``tqdm.auto``. The book installs its
on-disk cache (``mfbook.cache.cached``, keyed by a hash of the settings and of the code behind a result) and its
progress bars (text in batch runs) with :func:`install`: ``mfbook.chapter.open_chapter`` does so for every chapter.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

CacheFn = Callable[..., dict]


def _build_only(kind: str, key: dict, build: Callable[[], dict], code: tuple[str, ...] = (),
                device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """No cache: ``build()``'s tensors (moved to ``device`` when given)."""
    result = build()
    return {k: v.to(device) for k, v in result.items()} if device is not None else result


def _tqdm_auto(*args, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(*args, **kwargs)


_CACHE: CacheFn = _build_only
_PROGRESS: Callable = _tqdm_auto


def install(cache: CacheFn | None = None, progress: Callable | None = None) -> None:
    """Use ``cache(kind, key, build, code=..., device=...)`` and ``progress(iterable, **tqdm_kwargs)`` from now on
    (``None`` leaves that one as it is)."""
    global _CACHE, _PROGRESS
    if cache is not None:
        _CACHE = cache
    if progress is not None:
        _PROGRESS = progress


def reset() -> None:
    """Back to the defaults: no cache, ``tqdm.auto`` bars."""
    global _CACHE, _PROGRESS
    _CACHE, _PROGRESS = _build_only, _tqdm_auto


def cached(kind: str, key: dict, build: Callable[[], dict], code: tuple[str, ...] = (),
           device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The dict of tensors ``build()`` returns for ``key``, from the installed cache when it holds a valid entry.

    ``kind`` names the entry's family ("backbone", "heatmaps", …); ``code`` names the mfcore modules whose source is
    part of the key (the modules they import count too); ``device`` moves the result there.
    """
    return _CACHE(kind, key, build, code=code, device=device)


def progress(*args, **kwargs):
    """A progress bar (``tqdm``'s arguments)."""
    return _PROGRESS(*args, **kwargs)


def memo_budget_bytes() -> int:
    """Bytes of results a process may keep in memory (``$MFCORE_CACHE_MEMORY_GB``, default 8; 0 keeps none)."""
    return int(float(os.environ.get("MFCORE_CACHE_MEMORY_GB", "8")) * (1 << 30))
