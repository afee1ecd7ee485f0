"""RunCheckpoint driven directly (no `fit`): complete epochs only, never non-finite weights, interrupt
checkpoints under their own name; and once in a real fit beside HistoryLog."""

import json
import os

import keras
import numpy as np
import pytest

from keras_anime_gan import create_gan
from keras_anime_gan.callbacks.history import HistoryLog, history_columns, history_rows
from keras_anime_gan.callbacks.run import Run
from keras_anime_gan.callbacks.run_checkpoint import RunCheckpoint
from keras_anime_gan.checkpoints import latest_checkpoint, restore_checkpoint, save_checkpoint


@pytest.fixture
def gan():
    model = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.9)
    model.compile(jit_compile=False)
    return model


def _checkpointer(gan, directory, steps=3, epochs=5, **options):
    checkpointer = RunCheckpoint(str(directory), handle_signals=False, **options)
    checkpointer.set_model(gan)
    checkpointer.set_params({"steps": steps, "epochs": epochs, "verbose": 0})
    checkpointer.on_train_begin()
    return checkpointer


def _run_epoch(checkpointer, epoch, steps=3, logs=None, before_end=None):
    """What fit does for one epoch, around the checkpointer."""
    logs = {"d_loss": 0.7, "g_loss": 0.7} if logs is None else logs
    checkpointer.on_epoch_begin(epoch)
    for batch in range(steps):
        checkpointer.on_train_batch_end(batch, logs)
        if checkpointer.model.stop_training:
            break
    if before_end:
        before_end()
    checkpointer.on_epoch_end(epoch, dict(logs))


def _poison(gan):
    variable = gan.discriminator.trainable_variables[0]
    variable.assign(np.full(variable.shape, np.nan, np.float32))


def _folders(directory):
    return sorted(entry for entry in os.listdir(directory) if entry.startswith("epoch-"))


def _restored_weights_are_finite(path):
    clone = create_gan("dcgan", 32, 16, width=8, seed=1, ema=0.9)
    clone.compile(jit_compile=False)
    restore_checkpoint(clone, path)
    return all(np.isfinite(weight).all() for weight in clone.get_weights())


# ----------------------------------------------------------------------------- non-finite weights (issue 1)


def test_an_epoch_that_ends_with_non_finite_weights_is_not_checkpointed(gan, tmp_path):
    directory = tmp_path / "checkpoints"
    checkpointer = _checkpointer(gan, directory)
    _run_epoch(checkpointer, 0)
    assert _folders(directory) == ["epoch-0001"]
    # The last batch of epoch 2 ran and blew the discriminator up: the epoch is complete, its weights are not.
    _run_epoch(checkpointer, 1, logs={"d_loss": float("nan"), "g_loss": 0.7}, before_end=lambda: _poison(gan))
    assert _folders(directory) == ["epoch-0001"]
    path, epoch = latest_checkpoint(str(directory))
    assert os.path.basename(path) == "epoch-0001" and epoch == 1 and _restored_weights_are_finite(path)
    assert checkpointer.run.failure["kind"] == "non_finite" and "epoch-0001" in checkpointer.run.failure["message"]
    assert gan.stop_training


def test_an_epoch_cut_short_is_not_checkpointed_as_complete(gan, tmp_path):
    directory = tmp_path / "checkpoints"
    checkpointer = _checkpointer(gan, directory, steps=3)
    _run_epoch(checkpointer, 0)
    gan.stop_training = True  # e.g. the monitor, or a time budget, stopped at the second batch of epoch 2
    checkpointer.on_epoch_begin(1)
    checkpointer.on_train_batch_end(0, {"d_loss": 0.7})
    checkpointer.on_train_batch_end(1, {"d_loss": 0.7})
    checkpointer.on_epoch_end(1, {"d_loss": 0.7})
    assert _folders(directory) == ["epoch-0001"] and checkpointer.run.trained_epochs == 1


def test_an_interrupt_never_checkpoints_non_finite_weights(gan, tmp_path):
    directory = tmp_path / "checkpoints"
    checkpointer = _checkpointer(gan, directory)
    _run_epoch(checkpointer, 0)
    checkpointer.on_epoch_begin(1)
    _poison(gan)
    checkpointer.interrupted_by = "SIGTERM"
    checkpointer.on_train_batch_end(0, {"d_loss": 0.7, "g_loss": 0.7})
    assert gan.stop_training and _folders(directory) == ["epoch-0001"]
    path, _ = latest_checkpoint(str(directory))
    assert _restored_weights_are_finite(path)
    assert checkpointer.run.failure["kind"] == "non_finite"
    with pytest.raises(ValueError, match="non-finite weights"):
        save_checkpoint(gan, str(directory), 1)


# ----------------------------------------------------------------------------- replacing checkpoints (issue 3)


def test_an_interrupt_checkpoint_gets_its_own_name_and_keeps_the_clean_epoch(gan, tmp_path):
    directory = tmp_path / "checkpoints"
    checkpointer = _checkpointer(gan, directory, steps=5)
    _run_epoch(checkpointer, 0, steps=5)
    clean_state = (directory / "epoch-0001" / "state.json").read_text()
    checkpointer.on_epoch_begin(1)
    checkpointer.on_train_batch_end(0, {"d_loss": 0.7})
    checkpointer.interrupted_by = "SIGTERM"
    checkpointer.on_train_batch_end(1, {"d_loss": 0.7})
    assert gan.stop_training
    assert _folders(directory) == ["epoch-0001", "epoch-0001-interrupted-b0002"]
    assert (directory / "epoch-0001" / "state.json").read_text() == clean_state  # untouched
    path, epoch = latest_checkpoint(str(directory))
    assert os.path.basename(path) == "epoch-0001-interrupted-b0002" and epoch == 1
    state = json.loads((directory / "epoch-0001-interrupted-b0002" / "state.json").read_text())
    assert state["kind"] == "interrupt" and state["batch"] == 2 and state["epoch"] == 1
    # The next clean epoch supersedes the interrupt checkpoint.
    checkpointer.interrupted_by, gan.stop_training = None, False
    _run_epoch(checkpointer, 1, steps=5)
    assert _folders(directory) == ["epoch-0001", "epoch-0002"]


# ----------------------------------------------------------------------------- keras plumbing


def test_checkpointer_and_history_in_a_real_fit(tmp_path):
    model = create_gan("dcgan", 32, 16, width=8, seed=0)
    model.compile(jit_compile=False)
    faces = np.random.default_rng(0).uniform(-1, 1, (24, 32, 32, 3)).astype(np.float32)
    run = Run()  # what the two share: the history rows the checkpoint holds
    history = HistoryLog(str(tmp_path / "history.csv"), run=run)
    checkpointer = RunCheckpoint(str(tmp_path / "checkpoints"), every=2, run=run)
    model.fit(faces, batch_size=8, epochs=3, verbose=0, callbacks=[checkpointer, history])
    assert _folders(tmp_path / "checkpoints") == ["epoch-0002", "epoch-0003"]  # every 2, and the last epoch
    state = json.loads((tmp_path / "checkpoints" / "epoch-0003" / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [0, 1, 2] and state["g_updates"] == 9
    assert history_columns(history_rows(str(tmp_path / "history.csv")))["epoch"] == [0.0, 1.0, 2.0]
    assert keras.ops.convert_to_numpy(model.g_optimizer.iterations) == 9
