"""Files that are either the old version or the new one, never half written: the one helper for
the converter's manifests, checkpoints, exports and the run's status files.

The pattern: write beside the target under a temporary name, flush it to disk (fsync), rename it
over the target (atomic on POSIX and Windows), then fsync the folder so the rename survives a
power cut. A reader, or a run restarted after a kill, sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil


def fsync_file(path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_dir(path) -> None:
    """Make a rename or a new entry in `path` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def naming(path, temporary=None):
    """Re-raise an OSError that names no file (PIL and NumPy writers often do not), or that names the
    `temporary` file written for `path`, as one naming `path`, so that "disk full" says where. Writers that report a full disk as another exception
    (h5py: a RuntimeError holding "errno = 28"; TensorFlow's SaveV2: a ResourceExhaustedError
    saying "No space left on device") get the OSError it is."""
    try:
        yield
    except OSError as error:
        if error.filename is None or (temporary is not None and error.filename == temporary):
            raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from error  # the file meant
        raise
    except Exception as error:
        message = str(error)
        if f"errno = {errno.ENOSPC}," in message or os.strerror(errno.ENOSPC) in message:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path)) from error
        raise


def write_atomic(path: str, write, durable: bool = True, suffix: str = "") -> None:
    """`write(tmp)` writes the content to a temporary file beside `path`, which is then flushed to
    disk (unless `durable=False`) and renamed over `path`. The temporary file is removed on failure.
    `suffix` ends the temporary name, for writers that insist on an extension (Keras's `.keras`)."""
    tmp = f"{path}.{os.getpid()}.tmp{suffix}"
    try:
        with naming(path, tmp):
            write(tmp)
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        fsync_dir(os.path.dirname(path))


def replace_durably(tmp: str, path: str) -> None:
    """Rename a finished, flushed temporary file over `path` and make the rename durable (for files
    streamed to disk under a temporary name, such as the converter's shards)."""
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def write_text_atomic(path: str, text: str, durable: bool = True) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(text)

    write_atomic(path, write, durable)


def write_json_atomic(path: str, payload, indent=None, durable: bool = True) -> None:
    write_text_atomic(path, json.dumps(payload, indent=indent), durable)


@contextlib.contextmanager
def atomic_directory(final: str, durable: bool = True):
    """Yield a temporary folder beside `final` to fill; on success its files are flushed to disk and
    it is renamed to `final` (which must not exist), on failure it is removed. For folders that a
    reader must never see half written: checkpoints, SavedModel versions (TF Serving polls)."""
    parent = os.path.dirname(final) or "."
    tmp = os.path.join(parent, f".tmp-{os.path.basename(final)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with naming(final):
            yield tmp
        if durable:
            for root, _, files in os.walk(tmp):
                for name in files:
                    fsync_file(os.path.join(root, name))
                fsync_dir(root)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if durable:
        fsync_dir(parent)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs. True where that cannot be told (not POSIX: there `os.kill`
    would end the process), so a caller never removes what may still be being written."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def stale_directories(parent: str) -> list[str]:
    """The temporary folders that `atomic_directory` left in `parent` for processes that no longer
    run (killed, or died before their `except` could clean up): `.tmp-NAME-PID` with PID dead."""
    if not os.path.isdir(parent):
        return []
    stale = []
    for name in sorted(os.listdir(parent)):
        prefix, _, pid = name.rpartition("-")
        path = os.path.join(parent, name)
        if (name.startswith(".tmp-") and len(prefix) > len(".tmp") and pid.isdigit() and os.path.isdir(path)
                and not process_alive(int(pid))):
            stale.append(path)
    return stale


def remove_stale_directories(parent: str) -> list[str]:
    """Remove `stale_directories(parent)`; returns what was removed. A folder whose process is alive
    is kept: it may be another export or checkpoint being written right now."""
    stale = stale_directories(parent)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
