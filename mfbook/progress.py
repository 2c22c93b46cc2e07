"""Progress bars for the book's long loops.

:func:`tqdm` is ``tqdm.auto`` (a widget in a live notebook, text in a terminal) except when ``MFCORE_TEXT_PROGRESS=1``,
which the batch runner (:mod:`mfbook.run_book`) sets for the kernels it starts: there it is plain text, updated at
most every ``TEXT_MININTERVAL_S`` seconds. Widget bars in a headless run send comm messages for every update; nbclient
can then stall on a cell for good (seen here once in a clean CI run, a known nbclient problem with widgets), and the
executed page would show each bar frozen at its first state.
"""

from __future__ import annotations

import os

from tqdm.std import tqdm as _std_tqdm

from mfcore import runtime

TEXT_MININTERVAL_S = 5.0


class _TextBar(_std_tqdm):
    """A text bar whose postfix (e.g. the running loss) waits for the next timed refresh: tqdm prints a new line for
    every ``set_postfix`` otherwise, hundreds per loop on an executed page."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s="", refresh=True):
        super().set_postfix_str(s, refresh=False)


def text_only() -> bool:
    """Whether progress bars (and other widgets) are plain text here: a batch run of the book."""
    return os.environ.get("MFCORE_TEXT_PROGRESS") == "1"


def tqdm(*args, **kwargs):
    """A progress bar (``tqdm``'s arguments)."""
    if text_only():
        kwargs.setdefault("mininterval", TEXT_MININTERVAL_S)
        return _TextBar(*args, **kwargs)
    from tqdm.auto import tqdm as bar

    return bar(*args, **kwargs)


def install() -> None:
    """Make these bars the ones the science's long loops show (:func:`mfcore.runtime.progress`)."""
    runtime.install(progress=tqdm)
