"""The failure monitor: the D-won and critic-divergence rules (asked of the model's objective), one
warning per kind, the real images it takes, the colour distance it logs, driven directly and in a
real fit; the sample diversity it watches."""

import math
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from conftest import SCRATCH
from keras_anime_gan import create_gan
from keras_anime_gan.callbacks.monitor import TrainingMonitor, sample_diversity
from keras_anime_gan.sampling import to_uint8


def _stand_in(minimum=0.0, bound=None):
    """A model as the monitor sees it: the two questions it asks its objective, and `stop_training`."""
    objective = types.SimpleNamespace(discriminator_loss_minimum=lambda: minimum, critic_divergence_bound=lambda: bound)
    return types.SimpleNamespace(objective=objective, stop_training=False)


def _feed(monitor, losses):
    for batch, d_loss in enumerate(losses):
        monitor.on_train_batch_end(batch, {"d_loss": d_loss, "g_loss": 1.0})
    return [event["kind"] for event in monitor.events]


def _gan(name, **options):
    model = create_gan(name, 32, 8, width=4, **options)
    model.stop_training = False  # as fit starts
    return model


def _monitor(model, **options):
    monitor = TrainingMonitor(patience=5, **options)
    monitor.set_model(model)
    return monitor


# ----------------------------------------------------------------------------- the D-won rules (issue 4)


@pytest.mark.parametrize("name, smoothing, one_sided, won, healthy", [
    ("dcgan", 0.0, False, 0.005, 0.05),
    ("dcgan", 0.1, False, 0.33, 0.4),  # the floor with targets 0.9 / 0.1 is H(0.9) = 0.325
    ("dcgan", 0.1, True, 0.165, 0.33),  # one-sided: 0.5 * H(0.9) = 0.1625
    ("lsgan", 0.0, False, 0.005, 0.05),
    ("lsgan", 0.1, False, 0.005, 0.05),  # reachable targets: the minimum stays 0
])
def test_d_won_rule_follows_the_models_loss_and_its_targets(name, smoothing, one_sided, won, healthy):
    model = _gan(name, label_smoothing=smoothing, one_sided=one_sided)
    assert _feed(_monitor(model), [healthy] * 20) == []
    assert _feed(_monitor(model), [won] * 4 + [healthy] + [won] * 4) == []  # not in a row
    assert not model.stop_training
    monitor = _monitor(model, stop_on_failure=True)
    assert _feed(monitor, [won] * 5) == ["d_won"]
    assert model.stop_training and monitor.failure["kind"] == "d_won"


def test_a_wasserstein_critic_never_wins_but_can_diverge():
    bound = 2 * np.sqrt(32 * 32 * 3)  # the most a 1-Lipschitz critic can give on [-1, 1] images
    model = _gan("wgan")
    healthy = [0.001, -0.002, 0.0] * 10 + list(np.linspace(-0.5, -60, 50))  # near 0 at first, then a growing W
    assert _feed(_monitor(model), healthy) == []
    assert model.objective.critic_divergence_bound() == pytest.approx(bound)
    spikes = [-5.0, -5 * bound, -5.0] * 10  # single excursions are not a divergence
    assert _feed(_monitor(model), spikes) == []
    assert not model.stop_training
    monitor = _monitor(model, stop_on_failure=True)
    assert _feed(monitor, [-5.0] * 10 + [-2 * bound * (1 + i) for i in range(5)]) == ["critic_diverged"]
    assert model.stop_training and "diverged" in monitor.failure["message"]
    assert _feed(_monitor(model, critic_bound=10.0), [-20.0] * 5) == ["critic_diverged"]


def test_the_monitor_asks_the_model_and_applies_no_rule_it_does_not_give():
    assert _feed(_monitor(_stand_in(minimum=None)), [-100.0] * 20) == []  # no lowest loss: no D-won rule
    assert _feed(_monitor(_stand_in(minimum=0.5)), [0.505] * 5) == ["d_won"]
    critic = _stand_in(minimum=None, bound=math.inf)  # a critic whose input shape is unknown: no bound of its own
    assert _feed(_monitor(critic), [-1e9] * 20) == []
    assert _feed(_monitor(critic, critic_bound=10.0), [-20.0] * 5) == ["critic_diverged"]
    assert _feed(_monitor(_stand_in(bound=1.0)), [0.0] * 20) == []  # a critic's loss near 0 is no win


# ----------------------------------------------------------------------------- one warning channel (issue 5)


def test_a_monitor_warning_is_shown_once_by_default():
    code = (
        "import types\n"
        "from keras_anime_gan.callbacks.monitor import TrainingMonitor\n"
        "monitor = TrainingMonitor(patience=2)\n"
        "objective = types.SimpleNamespace(discriminator_loss_minimum=lambda: 0.0, critic_divergence_bound=lambda: None)\n"
        "monitor.set_model(types.SimpleNamespace(objective=objective, stop_training=False))\n"
        "for batch in range(6):\n"
        "    monitor.on_train_batch_end(batch, {'d_loss': 0.001})\n"
        "assert len(monitor.events) == 1\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=SCRATCH, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (result.stdout + result.stderr).count("D has won") == 1


# ----------------------------------------------------------------------------- input ranges (issue 6)


def test_the_monitor_takes_uint8_or_signed_float_images_and_refuses_others():
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    pixels = to_uint8(faces)
    assert TrainingMonitor(real_images=pixels).real_diversity == pytest.approx(
        TrainingMonitor(real_images=faces).real_diversity)
    unit = (faces + 1) / 2  # [0, 1] floats: ambiguous, refused
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TrainingMonitor(real_images=unit)


# ----------------------------------------------------------------------------- what it logs


def test_monitor_logs_the_colour_distance_of_its_samples_to_the_real_images():
    from keras_anime_gan.metrics import color_distance
    from keras_anime_gan.sampling import latents_for_seed, render

    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    real = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    monitor = TrainingMonitor(real_images=real, num_samples=8)
    monitor.set_model(gan)
    logs = {}
    monitor.on_epoch_end(0, logs)
    samples = render(gan.ema_generator, latents_for_seed(8, 16, monitor.seed))
    assert logs["sample_color"] == pytest.approx(color_distance(real, samples)["color"])
    assert logs["sample_color"] > 10  # an untrained generator paints mid-grey, the real set is uniform noise


# -- in a real fit -----------------------------------------------------------------------------


def _broken_gan(**kwargs):
    gan = create_gan("dcgan", 32, 16, width=8, seed=0, **kwargs)
    return gan


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_monitor_flags_a_discriminator_that_wins(smoothing):
    gan = _broken_gan(label_smoothing=smoothing)
    # Frozen generator, fast discriminator: D separates real from fake at once and its loss goes to its
    # minimum: 0, or H(0.9) = 0.325 with targets 0.9 / 0.1.
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-3), g_optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    faces = np.random.default_rng(0).uniform(-0.25, 1, (8 * 40, 32, 32, 3)).astype(np.float32)  # bright: easy to tell apart
    monitor = TrainingMonitor(0.01, patience=5, stop_on_failure=True)  # within 0.01 of the minimum
    history = gan.fit(faces, batch_size=8, epochs=20, verbose=0, callbacks=[monitor])
    assert "d_won" in [event["kind"] for event in monitor.events]
    assert len(history.epoch) < 20  # stopped early


def test_monitor_flags_mode_collapse_and_non_finite_losses():
    gan = _broken_gan()
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    monitor = TrainingMonitor(real_images=faces)
    monitor.set_model(gan)
    monitor.on_epoch_end(0, {})  # a healthy (untrained) generator: no warning
    assert monitor.events == [] and monitor.peak_diversity > 0
    # The generator collapses: it starts ignoring z, every sample is the same image.
    first = gan.generator.layers[1]
    first.kernel.assign(np.zeros(first.kernel.shape, np.float32))
    logs = {}
    monitor.on_epoch_end(1, logs)
    assert logs["diversity"] < 1e-6 and [event["kind"] for event in monitor.events] == ["mode_collapse"]

    exploding = _broken_gan()
    exploding.compile(d_optimizer=keras.optimizers.SGD(1e30), g_optimizer=keras.optimizers.SGD(1e30), jit_compile=False)
    guard = TrainingMonitor()
    history = exploding.fit(faces, batch_size=8, epochs=5, verbose=0, callbacks=[guard])
    assert "non_finite" in [event["kind"] for event in guard.events] and len(history.epoch) < 5


def test_sample_diversity_matches_a_direct_computation():
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    flat = images.reshape(5, -1) / 255.0
    direct = np.mean([np.sqrt(((flat[i] - flat[j]) ** 2).mean()) for i in range(5) for j in range(i + 1, 5)])
    assert sample_diversity(images) == pytest.approx(direct, rel=1e-9)
    assert sample_diversity(np.repeat(images[:1], 4, axis=0)) == pytest.approx(0.0, abs=1e-7)
