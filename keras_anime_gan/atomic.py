"""Files that are either the old version or the new one, never half written: the one helper for
the converter's manifests, checkpoints, exports and the run's status files.

The pattern: write beside the target under a temporary name, flush it to disk (fsync), rename it
over the target (atomic on POSIX and Windows), then fsync the folder so the rename survives a
power cut. A reader, or a run restarted after a kill, sees the old file or the new one.

The user's folder may already hold anything at our names. A temporary file is created new
(O_CREAT | O_EXCL | O_NOFOLLOW): a link, FIFO or hard link planted at its name is removed as a name
(never followed, never written through) and a folder there is an error; a rename replaces the
name it lands on and never follows a link there; a temporary folder is made with mkdir, which
fails rather than follows; stale temporary folders are removed only when they are real folders.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _remove_name(path) -> None:
    """Remove whatever non-folder entry is at `path` (a link is removed, not what it points to); a
    folder there is an IsADirectoryError naming `path`."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way of a file to write", os.fspath(path))
    os.unlink(path)


def open_new(path, mode: str = "wb"):
    """A file object for a new, empty file at `path`, created with O_EXCL | O_NOFOLLOW: what was at
    that name before (a link, a FIFO, a hard link to another file) is removed as a name first,
    never followed or written through; a folder there is an error. For the temporary names this
    package writes under, which are its own."""
    for _ in range(8):
        try:
            descriptor = os.open(path, _NEW_FILE, 0o666)
        except FileExistsError:
            _remove_name(path)
            continue
        return os.fdopen(descriptor, mode)
    raise FileExistsError(errno.EEXIST, "something keeps creating this file", os.fspath(path))


def fsync_file(path) -> None:
    descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
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
    `suffix` ends the temporary name, for writers that insist on an extension (Keras's `.keras`).
    The temporary file is created new (`open_new`) before `write` opens it by name."""
    tmp = f"{path}.{os.getpid()}.tmp{suffix}"
    try:
        with naming(path, tmp):
            open_new(tmp).close()
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
    _remove_tree(tmp)
    os.makedirs(parent, exist_ok=True)
    os.mkdir(tmp)  # fails, rather than follows, if something was put there since
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
        _remove_tree(tmp)
        raise
    if durable:
        fsync_dir(parent)


def _remove_tree(path) -> None:
    """Remove a folder of ours and what it holds; a link (or file) at its name is removed as a name,
    never followed."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def filled_folder(folder: str, last: str | None = None, replace: bool = False, durable: bool = True):
    """Yield a temporary folder inside `folder` (`.tmp-fill-PID`) to fill; on success each of its
    entries is flushed and renamed into `folder`, `last` (e.g. status.json, whose presence says the
    rest is there) renamed last; on failure it is removed and `folder` keeps what it held. An entry
    of `folder` with the same name is an error, or with `replace` removed first (a link removed as a
    name). For a folder the caller holds (locked) and has checked."""
    tmp = os.path.join(folder, f".tmp-fill-{os.getpid()}")
    _remove_tree(tmp)
    os.mkdir(tmp)
    moved = []
    try:
        with naming(folder):
            yield tmp
        names = sorted(os.listdir(tmp), key=lambda name: name == last)
        if durable:
            for root, _, files in os.walk(tmp):
                for name in files:
                    fsync_file(os.path.join(root, name))
                fsync_dir(root)
        for name in names:
            target = os.path.join(folder, name)
            if os.path.lexists(target):
                if not replace:
                    raise FileExistsError(errno.EEXIST, "already exists", target)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            os.replace(os.path.join(tmp, name), target)
            moved.append(target)
    except BaseException:
        for target in moved:
            _remove_tree(target)
        _remove_tree(tmp)
        raise
    os.rmdir(tmp)
    if durable:
        fsync_dir(folder)


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


def stale_directories(parent: str, name: str | None = None) -> list[str]:
    """The temporary folders that `atomic_directory` (or `filled_folder`) left in `parent` for
    processes that no longer run (killed, or died before their `except` could clean up):
    `.tmp-NAME-PID` with PID dead, real folders only (never a link); only `.tmp-{name}-PID` when
    `name` is given."""
    if not os.path.isdir(parent):
        return []
    stale = []
    for entry in sorted(os.listdir(parent)):
        prefix, _, pid = entry.rpartition("-")
        path = os.path.join(parent, entry)
        if (entry.startswith(".tmp-") and len(prefix) > len(".tmp") and pid.isdigit()
                and (name is None or prefix == f".tmp-{name}") and not os.path.islink(path)
                and os.path.isdir(path) and not process_alive(int(pid))):
            stale.append(path)
    return stale


def remove_stale_directories(parent: str, name: str | None = None) -> list[str]:
    """Remove `stale_directories(parent, name)`; returns what was removed. A folder whose process is
    alive is kept: it may be another export or checkpoint being written right now."""
    stale = stale_directories(parent, name)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
