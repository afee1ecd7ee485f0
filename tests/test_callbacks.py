"""The callbacks' mechanisms, driven directly (no `fit`): checkpoints, history, the failure monitor."""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import ROOT
from keras_anime_gan import callbacks as cb
from keras_anime_gan import create_gan
from keras_anime_gan.sampling import to_uint8


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
