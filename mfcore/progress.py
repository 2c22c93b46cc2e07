"""Progress bars for the book's long loops.

:func:`tqdm` is ``tqdm.auto`` (a widget in a live notebook, text in a terminal) except when ``MFCORE_TEXT_PROGRESS=1``,
which the batch runner (:mod:`mfcore.run_book`) sets for the kernels it starts: there it is plain text, updated at
most every ``TEXT_MININTERVAL_S`` seconds. Widget bars in a headless run send comm messages for every update; nbclient
can then stall on a cell for good (seen here once in a clean CI run, a known nbclient problem with widgets), and the
executed page would show each bar frozen at its first state.
"""

from __future__ import annotations

import os

TEXT_MININTERVAL_S = 5.0


def text_only() -> bool:
    """Whether progress bars (and other widgets) are plain text here: a batch run of the book."""
    return os.environ.get("MFCORE_TEXT_PROGRESS") == "1"


def tqdm(*args, **kwargs):
    """A progress bar (``tqdm``'s arguments)."""
    if text_only():
        from tqdm.std import tqdm as bar

        kwargs.setdefault("mininterval", TEXT_MININTERVAL_S)
        return bar(*args, **kwargs)
    from tqdm.auto import tqdm as bar

    return bar(*args, **kwargs)
