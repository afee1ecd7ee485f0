"""locks.folder_lock between real processes: refused with the holder's PID, released by kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRATCH
from keras_anime_gan.locks import LOCK_NAME, FolderInUseError, folder_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="folders are not locked on Windows")

HOLDER = """
import os, sys, time
from keras_anime_gan.locks import folder_lock
with folder_lock(sys.argv[1], "run folder"):
    if sys.argv[2] == "fork":  # a forked worker, as the converter's pool makes them
        child = os.fork()
        if child == 0:
            os.write(1, b"child\\n")  # running Python again: the fork hook has closed its copy (one write: no interleaving)
            time.sleep(60)
            os._exit(0)
        os.write(1, f"{child}\\n".encode())
    os.write(1, b"locked\\n")
    time.sleep(60)
"""


def start_holder(folder, fork=False):
    """A process holding `folder`'s lock (and its forked child's PID, or None) once it said so."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "fork" if fork else "-"], cwd=SCRATCH,
                               stdout=subprocess.PIPE, text=True)
    lines = [process.stdout.readline().strip() for _ in range(3 if fork else 1)]  # the child's line comes any time
    assert "locked" in lines and (not fork or "child" in lines), lines
    child = next(int(line) for line in lines if line.isdigit()) if fork else None
    return process, child


def kill(process):
    process.kill()
    process.wait()


def test_a_second_process_is_refused_with_the_holders_pid_and_kill_9_releases_it(tmp_path):
    folder = tmp_path / "run"
    holder, _ = start_holder(folder)
    try:
        started = time.time()
        with pytest.raises(FolderInUseError) as refused:
            with folder_lock(str(folder), "run folder"):
                pass
        assert time.time() - started < 2  # refused at once, not after waiting
        message = str(refused.value)
        assert f"run folder {folder} is in use by process {holder.pid} (" in message, message
        assert "-c " in message and "choose another run folder" in message and "\n" not in message
    finally:
        kill(holder)
    assert (folder / LOCK_NAME).exists()  # a kill leaves the file ...
    with folder_lock(str(folder), "run folder"):  # ... but never a stale lock
        assert str(os.getpid()) in (folder / LOCK_NAME).read_text()
    assert not (folder / LOCK_NAME).exists()  # a clean release removes it


def test_a_forked_child_does_not_keep_the_lock_after_its_parent_is_killed(tmp_path):
    folder = tmp_path / "dest"
    holder, child = start_holder(folder, fork=True)
    try:
        with pytest.raises(FolderInUseError, match=f"process {holder.pid} "):
            with folder_lock(str(folder), "destination"):
                pass
        kill(holder)
        os.kill(child, 0)  # the child lives on (its parent's death does not end it) ...
        with folder_lock(str(folder), "destination"):  # ... and holds no lock
            pass
    finally:
        kill(holder)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ----------------------------------------------------------------------------- what a hostile folder holds at .lock


@pytest.mark.parametrize("plant, what", [
    (lambda lock, victim: os.symlink(victim, lock), "a symbolic link"),
    (lambda lock, victim: os.symlink(victim.parent / "made-through-the-link", lock), "a symbolic link"),
    (lambda lock, victim: os.link(victim, lock), "a file with 2 names (a hard link to another file)"),
    (lambda lock, victim: os.mkdir(lock), "a folder"),
    (lambda lock, victim: os.mkfifo(lock), "a FIFO (named pipe)"),
])
def test_a_lock_file_that_is_not_a_regular_file_of_its_own_is_refused_and_never_written(tmp_path, plant, what):
    from keras_anime_gan.locks import LockFileError

    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    folder = tmp_path / "run"
    folder.mkdir()
    plant(folder / LOCK_NAME, victim)
    started = time.time()
    with pytest.raises(LockFileError) as refused:
        with folder_lock(str(folder), "run folder"):
            pass
    assert time.time() - started < 2  # a FIFO never blocks us
    assert str(refused.value) == (f"{folder / LOCK_NAME} is {what}, not a lock file; remove it (nothing was "
                                  "written through it)")
    assert victim.read_text() == "the user's file\n"
    assert not (tmp_path / "made-through-the-link").exists()
    assert os.path.lexists(folder / LOCK_NAME)  # left for the user to look at


def test_the_holder_is_read_from_a_few_kilobytes_of_its_lock_file(tmp_path):
    from keras_anime_gan.locks import _describe_holder

    lock = tmp_path / LOCK_NAME
    lock.write_text('{"pid": 7, "command": "' + "x" * (10 << 20) + '", "started": 0}')  # 10 MB: not JSON in 4 KiB
    assert _describe_holder(str(lock)) == "another process"
    lock.write_text('{"pid": 7, "command": "train\\nrm -rf /", "started": 1e300}')  # overflows localtime
    assert _describe_holder(str(lock)) == "another process"
    lock.write_text('{"pid": 7, "command": "train\\n--out x", "started": 0}')
    assert _describe_holder(str(lock)).startswith("process 7 (train --out x, since ")  # one line
