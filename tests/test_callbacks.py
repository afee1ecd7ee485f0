"""The callbacks' mechanisms, driven directly (no `fit`): checkpoints, history, the failure monitor."""

import csv
import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from conftest import ROOT
from keras_anime_gan import callbacks as cb
from keras_anime_gan import create_gan
from keras_anime_gan.sampling import to_uint8


@pytest.fixture
def gan():
    model = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.9)
    model.compile(jit_compile=False)
    return model


def _checkpointer(gan, directory, steps=3, epochs=5, **options):
    checkpointer = cb.RunCheckpoint(str(directory), handle_signals=False, **options)
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
    cb.restore_checkpoint(clone, path)
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
    path, epoch = cb.latest_checkpoint(str(directory))
    assert os.path.basename(path) == "epoch-0001" and epoch == 1 and _restored_weights_are_finite(path)
    assert checkpointer.failure["kind"] == "non_finite" and "epoch-0001" in checkpointer.failure["message"]
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
    assert _folders(directory) == ["epoch-0001"] and checkpointer.trained_epochs == 1


def test_an_interrupt_never_checkpoints_non_finite_weights(gan, tmp_path):
    directory = tmp_path / "checkpoints"
    checkpointer = _checkpointer(gan, directory)
    _run_epoch(checkpointer, 0)
    checkpointer.on_epoch_begin(1)
    _poison(gan)
    checkpointer.interrupted_by = "SIGTERM"
    checkpointer.on_train_batch_end(0, {"d_loss": 0.7, "g_loss": 0.7})
    assert gan.stop_training and _folders(directory) == ["epoch-0001"]
    path, _ = cb.latest_checkpoint(str(directory))
    assert _restored_weights_are_finite(path)
    assert checkpointer.failure["kind"] == "non_finite"
    with pytest.raises(ValueError, match="non-finite weights"):
        cb.save_checkpoint(gan, str(directory), 1)


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
    path, epoch = cb.latest_checkpoint(str(directory))
    assert os.path.basename(path) == "epoch-0001-interrupted-b0002" and epoch == 1
    state = json.loads((directory / "epoch-0001-interrupted-b0002" / "state.json").read_text())
    assert state["kind"] == "interrupt" and state["batch"] == 2 and state["epoch"] == 1
    # The next clean epoch supersedes the interrupt checkpoint.
    checkpointer.interrupted_by, gan.stop_training = None, False
    _run_epoch(checkpointer, 1, steps=5)
    assert _folders(directory) == ["epoch-0001", "epoch-0002"]


# ----------------------------------------------------------------------------- history (issue 2)


def test_history_log_keeps_columns_that_appear_later_and_rebuilds_from_rows(tmp_path):
    path = tmp_path / "history.csv"
    history = cb.HistoryLog(str(path))
    history.set_params({"steps": 2, "epochs": 3})
    history.on_train_begin()
    for epoch, logs in enumerate([{"d_loss": 0.5, "g_loss": 1.0}, {"d_loss": 0.4, "g_loss": 1.1, "swd": 9.0},
                                  {"d_loss": 0.3, "g_loss": 1.2}]):
        history.on_epoch_begin(epoch)
        history.on_train_batch_end(1, logs)
        history.on_epoch_end(epoch, logs)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "d_loss", "g_loss", "swd"]
    assert [row["swd"] for row in rows] == ["", "9.0", ""] and [row["epoch"] for row in rows] == ["0", "1", "2"]
    values = cb.read_history(str(path))
    assert values["d_loss"] == [0.5, 0.4, 0.3] and np.isnan(values["swd"][0])
    assert cb.plot_history(str(path), str(tmp_path / "losses.png"))
    # A resumed run starts from the rows its checkpoint holds, whatever the file says.
    resumed = cb.HistoryLog(str(path), rows=history.rows[:1])
    resumed.on_train_begin()
    assert cb.read_history(str(path))["epoch"] == [0.0]
    assert cb.history_rows(str(path)) == [{"epoch": 0, "d_loss": 0.5, "g_loss": 1.0}]


# ----------------------------------------------------------------------------- the D-won rules (issue 4)


def _stub(family, smoothing=0.0, one_sided=False):
    return types.SimpleNamespace(loss_family=family, label_smoothing=smoothing, one_sided=one_sided,
                                 stop_training=False, discriminator=types.SimpleNamespace(input_shape=(None, 32, 32, 3)))


def _feed(monitor, losses):
    for batch, d_loss in enumerate(losses):
        monitor.on_train_batch_end(batch, {"d_loss": d_loss, "g_loss": 1.0})
    return [event["kind"] for event in monitor.events]


def _monitor(model, **options):
    monitor = cb.TrainingMonitor(patience=5, **options)
    monitor.set_model(model)
    return monitor


def test_loss_minimum_of_each_family():
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    assert cb.discriminator_loss_minimum(_stub("bce")) == 0.0
    assert cb.discriminator_loss_minimum(_stub("bce", 0.1)) == pytest.approx(h(0.9)) == pytest.approx(0.3251, abs=1e-4)
    assert cb.discriminator_loss_minimum(_stub("bce", 0.1, one_sided=True)) == pytest.approx(0.5 * h(0.9))
    assert cb.discriminator_loss_minimum(_stub("least_squares", 0.1)) == 0.0
    assert cb.discriminator_loss_minimum(_stub("wasserstein")) is None
    smoothed = create_gan("dcgan", 32, 16, width=8, label_smoothing=0.1)  # a GAN without loss_family: bce
    assert cb.discriminator_loss_minimum(smoothed) == pytest.approx(h(0.9))


@pytest.mark.parametrize("family, smoothing, one_sided, won, healthy", [
    ("bce", 0.0, False, 0.005, 0.05),
    ("bce", 0.1, False, 0.33, 0.4),  # the floor with targets 0.9 / 0.1 is H(0.9) = 0.325
    ("bce", 0.1, True, 0.165, 0.33),  # one-sided: 0.5 * H(0.9) = 0.1625
    ("least_squares", 0.0, False, 0.005, 0.05),
    ("least_squares", 0.1, False, 0.005, 0.05),  # reachable targets: the minimum stays 0
])
def test_d_won_rule_follows_the_loss_family_and_its_targets(family, smoothing, one_sided, won, healthy):
    assert _feed(_monitor(_stub(family, smoothing, one_sided)), [healthy] * 20) == []
    assert _feed(_monitor(_stub(family, smoothing, one_sided)), [won] * 4 + [healthy] + [won] * 4) == []  # not in a row
    model = _stub(family, smoothing, one_sided)
    monitor = _monitor(model, stop_on_failure=True)
    assert _feed(monitor, [won] * 5) == ["d_won"]
    assert model.stop_training and monitor.failure["kind"] == "d_won"


def test_a_wasserstein_critic_never_wins_but_can_diverge():
    bound = 2 * np.sqrt(32 * 32 * 3)  # the most a 1-Lipschitz critic can give on [-1, 1] images
    healthy = [0.001, -0.002, 0.0] * 10 + list(np.linspace(-0.5, -60, 50))  # near 0 at first, then a growing W
    assert _feed(_monitor(_stub("wasserstein")), healthy) == []
    assert cb.lipschitz_critic_bound(_stub("wasserstein")) == pytest.approx(bound)
    spikes = [-5.0, -5 * bound, -5.0] * 10  # single excursions are not a divergence
    assert _feed(_monitor(_stub("wasserstein")), spikes) == []
    model = _stub("wasserstein")
    monitor = _monitor(model, stop_on_failure=True)
    assert _feed(monitor, [-5.0] * 10 + [-2 * bound * (1 + i) for i in range(5)]) == ["critic_diverged"]
    assert model.stop_training and "diverged" in monitor.failure["message"]
    assert _feed(_monitor(_stub("wasserstein"), critic_bound=10.0), [-20.0] * 5) == ["critic_diverged"]


# ----------------------------------------------------------------------------- one warning channel (issue 5)


def test_a_monitor_warning_is_shown_once_by_default():
    code = (
        "import types\n"
        "from keras_anime_gan import callbacks as cb\n"
        "monitor = cb.TrainingMonitor(patience=2)\n"
        "monitor.set_model(types.SimpleNamespace(loss_family='bce', label_smoothing=0.0, one_sided=False,"
        " stop_training=False))\n"
        "for batch in range(6):\n"
        "    monitor.on_train_batch_end(batch, {'d_loss': 0.001})\n"
        "assert len(monitor.events) == 1\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (result.stdout + result.stderr).count("D has won") == 1


# ----------------------------------------------------------------------------- input ranges (issue 6)


def test_callbacks_take_uint8_or_signed_float_images_and_refuse_others(tmp_path):
    from keras_anime_gan.callbacks import MetricCallback

    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    pixels = to_uint8(faces)
    assert cb.TrainingMonitor(real_images=pixels).real_diversity == pytest.approx(
        cb.TrainingMonitor(real_images=faces).real_diversity)
    for images in (pixels, faces):
        callback = MetricCallback(images, ("swd",))
        assert callback.real.dtype == np.uint8 and np.array_equal(callback.real, pixels)
    unit = (faces + 1) / 2  # [0, 1] floats: ambiguous, refused
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cb.TrainingMonitor(real_images=unit)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MetricCallback(unit, ("swd",))
    with pytest.raises(ValueError, match="255"):
        MetricCallback(pixels.astype(np.float32), ("swd",))  # 0..255 floats


# ----------------------------------------------------------------------------- keras plumbing


def test_checkpointer_and_history_in_a_real_fit(tmp_path):
    model = create_gan("dcgan", 32, 16, width=8, seed=0)
    model.compile(jit_compile=False)
    faces = np.random.default_rng(0).uniform(-1, 1, (24, 32, 32, 3)).astype(np.float32)
    history = cb.HistoryLog(str(tmp_path / "history.csv"))
    checkpointer = cb.RunCheckpoint(str(tmp_path / "checkpoints"), every=2, history=history)
    model.fit(faces, batch_size=8, epochs=3, verbose=0, callbacks=[checkpointer, history])
    assert _folders(tmp_path / "checkpoints") == ["epoch-0002", "epoch-0003"]  # every 2, and the last epoch
    state = json.loads((tmp_path / "checkpoints" / "epoch-0003" / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [0, 1, 2] and state["g_updates"] == 9
    assert cb.read_history(str(tmp_path / "history.csv"))["epoch"] == [0.0, 1.0, 2.0]
    assert keras.ops.convert_to_numpy(model.g_optimizer.iterations) == 9


def test_monitor_logs_the_colour_distance_of_its_samples_to_the_real_images():
    from keras_anime_gan.metrics import color_distance
    from keras_anime_gan.sampling import latents_for_seed, render

    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    real = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    monitor = cb.TrainingMonitor(real_images=real, num_samples=8)
    monitor.set_model(gan)
    logs = {}
    monitor.on_epoch_end(0, logs)
    samples = render(gan.ema_generator, latents_for_seed(8, 16, monitor.seed))
    assert logs["sample_color"] == pytest.approx(color_distance(real, samples)["color"])
    assert logs["sample_color"] > 10  # an untrained generator paints mid-grey, the real set is uniform noise
