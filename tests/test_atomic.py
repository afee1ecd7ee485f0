"""The one atomic-write helper: a reader sees the old content or the new, never a part."""

import json
import os

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
