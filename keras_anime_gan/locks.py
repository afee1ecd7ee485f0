"""One process at a time in a folder: a run folder while it trains, a converter's destination while
it converts.

`folder_lock(folder, what)` takes an exclusive `fcntl.flock` on `folder/.lock` and writes the
holder's PID, command line and start time into it. The operating system releases the lock when
the process exits, however it exits (a kill -9 included), so a lock is never stale: after a kill
the file stays behind, but a new process takes it at once. A clean release removes the file. A
second process is refused with one line that names the holder. Processes forked while the lock is
held (a converter's decode workers) do not keep it: only the process that took it holds it. Where
`fcntl` does not exist (Windows) the folder is not locked.

`.lock` is opened without following a symbolic link (O_NOFOLLOW) and without blocking (a FIFO
planted there never hangs us), and must then be a regular file with one name: a link, a folder, a
FIFO, a device or a hard link to another file is refused with one line naming it, and nothing is
written through it. The holder's description is read from at most 4 KiB of it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import time

from .errors import UserError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# Descriptors of the locks this process holds. A forked child closes its copies at once: flock
# belongs to the open file, so a child keeping a copy (an orphaned worker) would hold the lock
# after the holder died.
_held: set[int] = set()


def _close_inherited_locks() -> None:
    for descriptor in list(_held):
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


class FolderInUseError(UserError):
    """Another process holds the folder."""


class LockFileError(UserError):
    """`folder/.lock` is not a lock file of ours: a symbolic link, a folder, a FIFO, a device or a
    hard link to another file. Nothing was written through it."""


_OPEN_FLAGS = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))
_HOLDER_BYTES = 4096  # a holder's description is ~200 bytes; a hostile huge .lock is never read whole


def _not_a_lock(path, what) -> LockFileError:
    return LockFileError(f"{path} is {what}, not a lock file; remove it (nothing was written through it)")


def _kind(mode) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _open_lock_file(path) -> int:
    """A descriptor of the regular file `path` (created when absent), opened without following a
    link; LockFileError for anything else at that name, before anything is written. A device is
    refused before it is opened (opening some has effects)."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _not_a_lock(path, _kind(mode))
    try:
        descriptor = os.open(path, _OPEN_FLAGS, 0o644)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                raise error from None
            raise _not_a_lock(path, _kind(mode)) from None
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise _not_a_lock(path, _kind(info.st_mode))
        if info.st_nlink > 1:
            raise _not_a_lock(path, f"a file with {info.st_nlink} names (a hard link to another file)")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _command_line() -> str:
    """This process's command as a user would type it: `python -m PACKAGE ...` rather than the path
    of PACKAGE/__main__.py."""
    arguments = list(sys.argv[1:])
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.endswith(".__main__"):
        program = f"python -m {spec.name[: -len('.__main__')]}"
    else:
        program = os.path.basename(sys.argv[0] or "python")
    return " ".join([program, *arguments])


def _describe_holder(path) -> str:
    """'process PID (COMMAND, since TIME)' from the lock file. The holder writes it just after taking
    the lock, so an empty file is read again for up to half a second."""
    for _ in range(10):
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            try:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    return "another process"
                holder = json.loads(os.pread(descriptor, _HOLDER_BYTES, 0).decode("utf-8"))
            finally:
                os.close(descriptor)
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
            command = holder["command"]
            command = " ".join(map(str, command)) if isinstance(command, list) else command  # earlier: a list
            return _one_line(f"process {holder['pid']} ({command}, since {since})")
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            time.sleep(0.05)
    return "another process"


def _one_line(text, limit=1000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _acquire(path) -> int | None:
    """An open descriptor of `path` holding its lock, or None when another process holds it. The
    file may be removed by a holder releasing it between our open and our flock; then the lock we
    got is on a file nobody else will open, and we try again on the new one."""
    while True:
        descriptor = _open_lock_file(path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        try:
            current = os.lstat(path)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == os.fstat(descriptor).st_ino:
            return descriptor
        os.close(descriptor)


@contextlib.contextmanager
def folder_lock(folder, what="folder"):
    """Hold `folder/.lock` (the folder is created) for the `with` block; FolderInUseError, naming
    the holder, when another process holds it; LockFileError when `.lock` is not a regular file
    with one name (see the module docstring). `what` names the folder in the message ("run
    folder", "destination")."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    if fcntl is None:
        yield path
        return
    descriptor = _acquire(path)
    if descriptor is None:
        raise FolderInUseError(f"{what} {folder} is in use by {_describe_holder(path)}; wait for it to finish "
                               f"or choose another {what}")
    _held.add(descriptor)
    try:
        holder = {"pid": os.getpid(), "command": _command_line(), "started": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        yield path
    finally:
        # Removed while still held, so no other process can have taken this file's lock; and only
        # when it is still ours (someone may have deleted it and another process made a new one).
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == os.fstat(descriptor).st_ino:
                os.remove(path)
        _held.discard(descriptor)
        os.close(descriptor)
