"""One process at a time in a folder: a run folder while it trains, a converter's destination while
it converts.

`folder_lock(folder, what)` takes an exclusive `fcntl.flock` on `folder/.lock` and writes the
holder's PID, command line and start time into it. The operating system releases the lock when
the process exits, however it exits (a kill -9 included), so a lock is never stale: the file may
stay behind, but a new process can take it at once. A second process is refused with one line
that names the holder. Where `fcntl` does not exist (Windows) the folder is not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from .errors import UserError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class FolderInUseError(UserError):
    """Another process holds the folder."""


def _describe_holder(path) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            holder = json.load(file)
        command = " ".join(holder.get("command") or [])
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
        return f"process {holder['pid']} ({command}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def folder_lock(folder, what="folder"):
    """Hold `folder/.lock` (the folder is created) for the `with` block; FolderInUseError, naming
    the holder, when another process holds it. `what` names the folder in the message ("run
    folder", "destination")."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    if fcntl is None:
        yield path
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(f"{what} {folder} is in use by {_describe_holder(path)}; wait for it to finish "
                                   f"or choose another {what}") from None
        holder = {"pid": os.getpid(), "command": [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]],
                  "started": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        yield path
    finally:
        os.close(descriptor)  # releases the lock; the file stays, harmless
