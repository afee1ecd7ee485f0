"""Checkpoint folders: written safely, found after damage, restored exactly."""

import gc
import json
import os
import warnings

import numpy as np
import pytest

from keras_anime_gan import checkpoints, create_gan


class Killed(BaseException):
    """Stands for a kill at that moment."""


@pytest.fixture
def gan():
    model = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.9)
    model.compile(jit_compile=False)
    return model


def _restored_weights_are_finite(path):
    clone = create_gan("dcgan", 32, 16, width=8, seed=1, ema=0.9)
    clone.compile(jit_compile=False)
    checkpoints.restore_checkpoint(clone, path)
    return all(np.isfinite(weight).all() for weight in clone.get_weights())


def test_a_kill_while_replacing_a_checkpoint_never_loses_the_last_good_one(gan, tmp_path, monkeypatch):
    directory = str(tmp_path / "checkpoints")
    checkpoints.save_checkpoint(gan, directory, 3)
    real_replace = os.replace

    def dies_when_renaming_a_folder(source, target):
        if os.path.isdir(source):
            raise Killed()
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", dies_when_renaming_a_folder)
    with pytest.raises(Killed):
        checkpoints.save_checkpoint(gan, directory, 3)  # the same epoch again, as an interrupt or a re-run could
    monkeypatch.setattr(os, "replace", real_replace)
    os.makedirs(os.path.join(directory, ".tmp-epoch-0003-2-999"))  # what a real kill leaves behind
    found = checkpoints.latest_checkpoint(directory)
    assert found is not None and found[1] == 3 and _restored_weights_are_finite(found[0])
    # The next save does not trip over the leftovers, and cleans them up.
    checkpoints.save_checkpoint(gan, directory, 4)
    assert checkpoints.latest_checkpoint(directory)[1] == 4
    assert not [entry for entry in os.listdir(directory) if entry.startswith(".tmp")]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "dangling", "incomplete", "truncated"])
def test_latest_checkpoint_falls_back_to_the_newest_complete_one(gan, tmp_path, damage):
    directory = tmp_path / "checkpoints"
    checkpoints.save_checkpoint(gan, str(directory), 1, keep=0)
    checkpoints.save_checkpoint(gan, str(directory), 2, keep=0)
    pointer = directory / "latest.json"
    expected = "epoch-0002"
    if damage == "missing":
        pointer.unlink()
    elif damage == "corrupt":
        pointer.write_text('{"checkpoint": "epo')
    elif damage == "dangling":
        pointer.write_text(json.dumps({"checkpoint": "epoch-0009", "epoch": 9}))
    elif damage == "incomplete":
        (directory / "epoch-0002" / "rng_state.npy").unlink()
        expected = "epoch-0001"
    else:
        weights = directory / "epoch-0002" / "gan.weights.h5"
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = "epoch-0001"
    path, epoch = checkpoints.latest_checkpoint(str(directory))
    assert os.path.basename(path) == expected and epoch == int(expected[-1])


def test_checkpoint_json_files_are_closed_and_flushed_to_disk(gan, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(descriptor):
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoints.save_checkpoint(gan, str(tmp_path / "checkpoints"), 1)
        gc.collect()
    assert not [warning for warning in caught if issubclass(warning.category, ResourceWarning)]
    names = [os.path.basename(path) for path in synced]
    assert any(name.startswith("latest.json.") and name.endswith(".tmp") for name in names)  # before its rename
    assert "state.json" in names and "gan.weights.h5" in names
    assert str(tmp_path / "checkpoints") in synced  # the renames themselves


def test_checkpoint_restores_weights_optimizers_and_random_stream(tmp_path):
    gan = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.9)
    gan.compile(jit_compile=False)
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    gan.fit(faces, batch_size=8, epochs=1, verbose=0)
    path = checkpoints.save_checkpoint(gan, str(tmp_path / "ckpt"), 1)
    expected_latents = gan.objective.sample_latent(4).numpy()  # the stream continues from the saved state

    clone = create_gan("dcgan", 32, 16, width=8, seed=99, ema=0.9)
    clone.compile(jit_compile=False)
    state = checkpoints.restore_checkpoint(clone, path)
    assert state["epoch"] == 1 and state["g_updates"] == 2
    for a, b in zip(gan.get_weights(), clone.get_weights()):  # generator, discriminator and EMA weights
        np.testing.assert_array_equal(a, b)
    for optimizer_a, optimizer_b in ((gan.d_optimizer, clone.d_optimizer), (gan.g_optimizer, clone.g_optimizer)):
        for a, b in zip(optimizer_a.variables, optimizer_b.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(clone.objective.sample_latent(4).numpy(), expected_latents)
    # the next training step is identical
    gan.fit(faces[:8], batch_size=8, epochs=1, verbose=0, shuffle=False)
    clone.fit(faces[:8], batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(gan.generator.get_weights(), clone.generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_file_damaged_in_place_is_never_resumed_from(gan, tmp_path):
    """A bit flip of the same size passes the size check; its SHA-256 in state.json does not."""
    directory = tmp_path / "checkpoints"
    checkpoints.save_checkpoint(gan, str(directory), 1, keep=0)
    gan.generator.variables[0].assign(gan.generator.variables[0] + 375.0)
    checkpoints.save_checkpoint(gan, str(directory), 2, keep=0)
    state = json.loads((directory / "epoch-0002" / "state.json").read_text())
    assert set(state["sha256"]) == set(checkpoints.CHECKPOINT_FILES) - {"state.json"}
    weights = directory / "epoch-0002" / "gan.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40
    weights.write_bytes(bytes(data))
    assert checkpoints.latest_checkpoint(str(directory))[1] == 2  # sizes alone cannot tell
    path, epoch = checkpoints.latest_checkpoint(str(directory), verify=True)
    assert os.path.basename(path) == "epoch-0001" and epoch == 1
    with pytest.raises(ValueError, match="damaged"):
        checkpoints.restore_checkpoint(gan, str(directory / "epoch-0002"))


def test_a_checkpoint_the_disk_cannot_hold_is_not_started(gan, tmp_path, monkeypatch):
    import errno
    import shutil

    directory = tmp_path / "checkpoints"
    checkpoints.save_checkpoint(gan, str(directory), 1)
    size = sum(json.loads((directory / "epoch-0001" / "state.json").read_text())["files"].values())
    usage = shutil.disk_usage(directory)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=size))  # less than size + 10 % + 1 MB
    with pytest.raises(OSError) as raised:
        checkpoints.save_checkpoint(gan, str(directory), 2)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(directory / "epoch-0002")
    assert sorted(os.listdir(directory)) == ["epoch-0001", "latest.json"]  # nothing started, nothing to clean
