"""One run at a time per results folder and profile: ``<results>/<profile>/.lock``, holding its run's pid, start time
and command line, taken over when its process is gone."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shlex
import sys
from pathlib import Path

from .console import say


LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def acquire_lock(folder: Path) -> Path:
    """Create ``<folder>/.lock`` exclusively (pid, start time, command line). A lock of a live process is a
    RuntimeError naming it; a lock of a dead process is stale: taken over with a warning."""
    lock = folder / LOCK_NAME
    record = {"pid": os.getpid(), "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "command": shlex.join([Path(sys.executable).name, "-m", "mfbook.run_book", *sys.argv[1:]])}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text())
                pid = int(held["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                held, pid = {}, -1
            if pid > 0 and _pid_alive(pid):
                raise RuntimeError(f"another run is executing {folder}: pid {pid}, started {held.get('started_at')}, "
                                   f"command: {held.get('command')} (wait for it, or stop it; its lock is {lock})")
            say(f"warning: taking over the stale lock {lock} of a run that is gone "
                f"(pid {held.get('pid', '?')}, started {held.get('started_at', '?')})", err=True)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record) + "\n")
        return lock
    raise RuntimeError(f"could not take the lock {lock}: another run keeps taking it")


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if it is still this process's."""
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, ValueError):
        pass
