"""The one atomic-write helper: a reader sees the old content or the new, never a part."""

import json
import os
from pathlib import Path

import pytest

from keras_anime_gan import atomic


class Killed(BaseException):
    pass


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "status.json"
    atomic.write_json_atomic(str(path), {"state": "running"})

    def dies_halfway(tmp):
        with open(tmp, "w") as file:
            file.write('{"state": "comp')
        raise Killed()

    with pytest.raises(Killed):
        atomic.write_atomic(str(path), dies_halfway)
    assert json.loads(path.read_text()) == {"state": "running"}
    assert os.listdir(tmp_path) == ["status.json"]
    atomic.write_json_atomic(str(path), {"state": "complete"}, indent=2)
    assert json.loads(path.read_text()) == {"state": "complete"}


def test_a_folder_appears_complete_or_not_at_all(tmp_path):
    final = tmp_path / "1"
    with pytest.raises(Killed):
        with atomic.atomic_directory(str(final)) as tmp:
            (tmp_path / "x").write_text("")  # unrelated
            with open(os.path.join(tmp, "saved_model.pb"), "w") as file:
                file.write("half")
            raise Killed()
    assert not final.exists() and sorted(os.listdir(tmp_path)) == ["x"]
    with atomic.atomic_directory(str(final)) as tmp:
        os.makedirs(os.path.join(tmp, "variables"))
        with open(os.path.join(tmp, "variables", "v.index"), "w") as file:
            file.write("ok")
    assert (final / "variables" / "v.index").read_text() == "ok"
    assert sorted(os.listdir(tmp_path)) == ["1", "x"]


def test_every_writer_of_the_package_uses_the_helper():
    """No module but atomic.py renames files into place by itself."""
    root = os.path.join(os.path.dirname(atomic.__file__))
    offenders = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py") and name != "atomic.py":
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                if "os.replace(" in text or "os.rename(" in text:
                    offenders.append(name)
    assert offenders == []


def test_an_os_error_that_names_no_file_is_given_the_target(tmp_path):
    import errno

    path = tmp_path / "losses.png"

    def full_disk(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")  # as PIL and NumPy raise it

    with pytest.raises(OSError) as raised:
        atomic.write_atomic(str(path), full_disk)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)

    def h5py_full_disk(tmp):  # h5py's report of the same thing
        raise RuntimeError("Can't write data (file write failed: ..., errno = 28, error message = 'No space left')")

    with pytest.raises(OSError) as raised:
        with atomic.atomic_directory(str(tmp_path / "epoch-0001")):
            h5py_full_disk(None)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "epoch-0001")
    assert os.listdir(tmp_path) == []

    class ResourceExhaustedError(Exception):  # how TensorFlow's SaveV2 reports it
        pass

    with pytest.raises(OSError) as raised:
        with atomic.atomic_directory(str(tmp_path / "1")):
            raise ResourceExhaustedError("part-00000-of-00001.data; No space left on device [Op:SaveV2]")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "1")
    with pytest.raises(ValueError):  # anything else passes through as it is
        with atomic.atomic_directory(str(tmp_path / "2")):
            raise ValueError("a bug")


# ----------------------------------------------------------------------------- what a hostile folder holds at our names


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    return victim


@pytest.mark.parametrize("plant", ["symlink", "dangling", "hardlink", "fifo"])
def test_a_temporary_name_is_never_written_through(tmp_path, plant):
    victim = _victim(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "status.json"
    tmp = f"{path}.{os.getpid()}.tmp"  # the name write_atomic will use
    if plant == "symlink":
        os.symlink(victim, tmp)
    elif plant == "dangling":
        os.symlink(tmp_path / "made-through-the-link", tmp)
    elif plant == "hardlink":
        os.link(victim, tmp)
    else:
        os.mkfifo(tmp)
    atomic.write_json_atomic(str(path), {"state": "complete"})
    assert json.loads(path.read_text()) == {"state": "complete"}
    assert victim.read_text() == "the user's file\n" and not (tmp_path / "made-through-the-link").exists()
    assert sorted(os.listdir(folder)) == ["status.json"]


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path):
    victim = _victim(tmp_path)
    path = tmp_path / "config.json"
    os.symlink(victim, path)
    atomic.write_text_atomic(str(path), "{}")
    assert not path.is_symlink() and path.read_text() == "{}" and victim.read_text() == "the user's file\n"


def test_a_folder_at_a_temporary_name_stops_the_write_and_is_kept(tmp_path):
    path = tmp_path / "status.json"
    os.mkdir(f"{path}.{os.getpid()}.tmp")
    (tmp_path / f"status.json.{os.getpid()}.tmp" / "keep.txt").write_text("mine")
    with pytest.raises(IsADirectoryError) as raised:
        atomic.write_text_atomic(str(path), "{}")
    assert raised.value.filename == str(path)  # named by its target
    assert (tmp_path / f"status.json.{os.getpid()}.tmp" / "keep.txt").read_text() == "mine" and not path.exists()


def test_open_new_replaces_a_planted_name_and_refuses_a_folder(tmp_path):
    victim = _victim(tmp_path)
    os.symlink(victim, tmp_path / "part.tmp")
    with atomic.open_new(str(tmp_path / "part.tmp")) as file:
        file.write(b"data")
    assert (tmp_path / "part.tmp").read_bytes() == b"data" and victim.read_text() == "the user's file\n"
    os.mkdir(tmp_path / "folder.tmp")
    with pytest.raises(IsADirectoryError):
        atomic.open_new(str(tmp_path / "folder.tmp"))


def test_a_link_at_a_temporary_folder_name_is_removed_as_a_name(tmp_path):
    victim_folder = tmp_path / "victim"
    victim_folder.mkdir()
    (victim_folder / "keep.txt").write_text("mine")
    parent = tmp_path / "checkpoints"
    parent.mkdir()
    os.symlink(victim_folder, parent / f".tmp-epoch-0001-{os.getpid()}")
    with atomic.atomic_directory(str(parent / "epoch-0001")) as tmp:
        (Path(tmp) / "state.json").write_text("{}")
    assert sorted(os.listdir(parent)) == ["epoch-0001"] and (parent / "epoch-0001" / "state.json").exists()
    assert sorted(os.listdir(victim_folder)) == ["keep.txt"]
    # a stale-looking link is never taken for a killed process's folder
    os.symlink(victim_folder, parent / ".tmp-epoch-0002-999999999")
    assert atomic.stale_directories(str(parent)) == [] and atomic.remove_stale_directories(str(parent)) == []
    assert (victim_folder / "keep.txt").exists()


def test_a_filled_folder_appears_whole_status_last_or_not_at_all(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").write_text("")
    with pytest.raises(Killed):
        with atomic.filled_folder(str(folder), last="status.json") as tmp:
            (Path(tmp) / "config.json").write_text("{}")
            raise Killed()
    assert sorted(os.listdir(folder)) == [".lock"]
    order = []
    real_replace = os.replace

    def recording_replace(source, target):
        order.append(os.path.basename(target))
        real_replace(source, target)

    import unittest.mock

    with unittest.mock.patch.object(atomic.os, "replace", recording_replace):
        with atomic.filled_folder(str(folder), last="status.json") as tmp:
            for name in ("status.json", "config.json", "generator.keras"):
                (Path(tmp) / name).write_text(name)
            os.mkdir(Path(tmp) / "checkpoints")
    assert order[-1] == "status.json" and sorted(order) == ["checkpoints", "config.json", "generator.keras",
                                                            "status.json"]
    assert sorted(os.listdir(folder)) == [".lock", "checkpoints", "config.json", "generator.keras", "status.json"]
    with pytest.raises(FileExistsError):  # never over what is there, unless asked to replace it
        with atomic.filled_folder(str(folder)) as tmp:
            (Path(tmp) / "config.json").write_text("new")
    assert (folder / "config.json").read_text() == "config.json"
    assert sorted(os.listdir(folder)) == [".lock", "checkpoints", "config.json", "generator.keras", "status.json"]
