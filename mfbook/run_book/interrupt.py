"""Stopping a run: SIGTERM raised as Ctrl-C in the main thread, and the chapters' kernels stopped with it."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within: SIGTERM raises KeyboardInterrupt in the main thread (the run stops as on Ctrl-C); the handler before is
    restored after. Elsewhere than the main thread, nothing changes."""
    import threading as _threading

    if _threading.current_thread() is not _threading.main_thread():
        yield
        return
    received = []

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_child_processes() -> list[int]:
    """SIGTERM every direct child process of this one (the chapters' kernels), on Linux; returns their pids. Elsewhere
    none are found, and ipykernel's own parent polling ends the kernels when this process exits."""
    import signal

    me, pids = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:  # fields after the command name: state, ppid, ...
            pid = int(stat.parent.name)
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except ProcessLookupError:
                pass
    return pids
