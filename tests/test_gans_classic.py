import json
import math
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan import DCGAN, WGAN, WGANGP, DynamicGAN, create_gan
from keras_anime_gan import gans
from keras_anime_gan.data import synthetic_faces
from keras_anime_gan.gans.ema import batch_norm_layers, own_statistics
from keras_anime_gan.sampling import latents_for_seed, render

from conftest import mlp

LOGITS_REAL = np.array([[2.0], [-1.0], [0.3], [0.0], [-4.0]], np.float32)
LOGITS_FAKE = np.array([[-3.0], [0.5], [1.5], [-0.2], [6.0]], np.float32)


def np_bce(logits, target):
    """Cross-entropy of sigmoid(logits) against target, written out independently."""
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


@pytest.mark.parametrize("smoothing, one_sided, real_t, fake_t", [(0.0, False, 1.0, 0.0), (0.1, False, 0.9, 0.1), (0.1, True, 0.9, 0.0)])
def test_dcgan_losses_with_label_smoothing_match_numpy(smoothing, one_sided, real_t, fake_t):
    gan = create_gan("dcgan", 32, 8, width=4, label_smoothing=smoothing, one_sided=one_sided)
    d = gan.objective.discriminator_loss(tf.constant(LOGITS_REAL), tf.constant(LOGITS_FAKE)).numpy()
    expected = 0.5 * (np_bce(LOGITS_REAL, real_t) + np_bce(LOGITS_FAKE, fake_t))[:, 0]
    np.testing.assert_allclose(d, expected, rtol=1e-5)
    g = gan.objective.generator_loss(tf.constant(LOGITS_FAKE)).numpy()
    np.testing.assert_allclose(g, np_bce(LOGITS_FAKE, 1.0)[:, 0], rtol=1e-5)


def test_lsgan_and_wasserstein_losses_match_numpy():
    r, f = LOGITS_REAL.astype(np.float64), LOGITS_FAKE.astype(np.float64)
    ls = create_gan("lsgan", 32, 8, width=4)
    np.testing.assert_allclose(ls.objective.discriminator_loss(LOGITS_REAL, LOGITS_FAKE), (0.5 * (r - 1) ** 2 + 0.5 * f**2)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(ls.objective.generator_loss(LOGITS_FAKE), (0.5 * (f - 1) ** 2)[:, 0], rtol=1e-6)
    w = create_gan("wgan", 32, 8, width=4)
    np.testing.assert_allclose(w.objective.discriminator_loss(LOGITS_REAL, LOGITS_FAKE), (f - r)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(w.objective.generator_loss(LOGITS_FAKE), -f[:, 0], rtol=1e-6)


@pytest.mark.parametrize("smoothing, one_sided, real_t, fake_t", [(0.1, False, 0.9, 0.1), (0.2, True, 0.8, 0.0)])
def test_lsgan_label_smoothing_moves_the_least_squares_targets(smoothing, one_sided, real_t, fake_t):
    ls = create_gan("lsgan", 32, 8, width=4, label_smoothing=smoothing, one_sided=one_sided)
    r, f = LOGITS_REAL.astype(np.float64), LOGITS_FAKE.astype(np.float64)
    expected = (0.5 * (r - real_t) ** 2 + 0.5 * (f - fake_t) ** 2)[:, 0]
    np.testing.assert_allclose(ls.objective.discriminator_loss(LOGITS_REAL, LOGITS_FAKE), expected, rtol=1e-6)
    np.testing.assert_allclose(ls.objective.generator_loss(LOGITS_FAKE), (0.5 * (f - 1) ** 2)[:, 0], rtol=1e-6)


def test_each_gan_says_how_low_its_discriminator_loss_can_go_and_whether_it_is_a_critic():
    """What the failure monitor asks a model: its D-won floor, or for a Wasserstein critic its bound."""
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    models = {name: create_gan(name, 32, 8, width=4) for name in ("dcgan", "lsgan", "wgan", "wgan-gp", "dynamic")}
    assert set(models) <= set(gans.MODELS)
    assert {name: gan.objective.discriminator_loss_minimum() for name, gan in models.items()} == {
        "dcgan": 0.0, "lsgan": 0.0, "wgan": None, "wgan-gp": None, "dynamic": 0.0}
    bound = 2 * np.sqrt(32 * 32 * 3)  # the most a 1-Lipschitz critic can give on [-1, 1] images
    bounds = {name: gan.objective.critic_divergence_bound() for name, gan in models.items()}
    assert bounds == {"dcgan": None, "lsgan": None, "wgan": pytest.approx(bound), "wgan-gp": pytest.approx(bound),
                      "dynamic": None}
    # Label smoothing s: BCE targets 1 - s and s (0 one-sided) cannot be met with zero loss; least squares can.
    assert create_gan("dcgan", 32, 16, width=8, label_smoothing=0.1).objective.discriminator_loss_minimum() == pytest.approx(
        h(0.9)) == pytest.approx(0.3251, abs=1e-4)
    assert create_gan("dcgan", 32, 16, width=8, label_smoothing=0.1,
                      one_sided=True).objective.discriminator_loss_minimum() == pytest.approx(0.5 * h(0.9))
    assert create_gan("dynamic", 32, 8, width=4, label_smoothing=0.1).objective.discriminator_loss_minimum() == pytest.approx(h(0.9))
    assert create_gan("lsgan", 32, 8, width=4, label_smoothing=0.1).objective.discriminator_loss_minimum() == 0.0
    # A critic whose input shape is unknown has no bound.
    unknown = types.SimpleNamespace(nets=types.SimpleNamespace(discriminator=types.SimpleNamespace()))
    assert gans.WGANObjective.critic_divergence_bound(unknown) == math.inf


def _faces_dataset(count=32, resolution=32, batch=8):
    images = synthetic_faces(count, resolution, seed=1).astype(np.float32) / 127.5 - 1.0
    return tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True)


ONEDNN_AND_MODE = """
import json, sys
import keras_anime_gan
keras_anime_gan.quiet_tensorflow_startup()  # what the command line does first
from keras_anime_gan import create_gan
from tensorflow.python.util import _pywrap_util_port
gan = create_gan("dcgan", 32, 8, width=4)
gan.compile()
print(json.dumps({"onednn": bool(_pywrap_util_port.IsMklEnabled()), "jit": bool(gan.jit_compile)}))
"""


@pytest.mark.parametrize("setting, onednn", [(None, True), ("0", False)])
def test_default_mode_is_graph_with_onednn_on_a_cpu_and_xla_without(setting, onednn):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("on a GPU the default is XLA whatever oneDNN does")
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run([sys.executable, "-c", ONEDNN_AND_MODE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The command line's start-up turns oneDNN on unless the user said otherwise; XLA only without it.
    assert report == {"onednn": onednn, "jit": not onednn}


def test_fit_turns_tf_data_autotuning_off_unless_the_dataset_chose():
    data = tf.data.Dataset.range(4).map(lambda x: x, num_parallel_calls=tf.data.AUTOTUNE)
    assert gans.without_autotune(data).options().autotune.enabled is False
    chosen = tf.data.Options()
    chosen.autotune.enabled = True
    assert gans.without_autotune(data.with_options(chosen)).options().autotune.enabled is True
    images = np.zeros((4, 4), np.float32)
    assert gans.without_autotune(images) is images  # NumPy input passes through unchanged


def test_gan_fit_trains_on_the_dataset_without_autotuning(monkeypatch):
    received = []
    keras_fit = keras.Model.fit

    def recording_fit(self, x=None, *args, **kwargs):
        received.append(x)
        return keras_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    gan = create_gan("dcgan", 32, 8, width=4, seed=0)
    gan.compile(jit_compile=False)
    history = gan.fit(_faces_dataset(count=8, batch=4), epochs=1, verbose=0)
    assert received[0].options().autotune.enabled is False
    assert int(gan.d_optimizer.iterations) == 2 and len(history.history["d_loss"]) == 1


# Every model in graph mode; XLA for one of each step shape (shared fakes, critic loop with penalty):
# they compile the same base-class step, and XLA's CPU compile is the suite's slowest part.
@pytest.mark.parametrize("name, jit", [(name, False) for name in ("dcgan", "lsgan", "wgan", "wgan-gp", "dynamic")]
                         + [("dcgan", True), ("wgan-gp", True), ("dynamic", True)])
def test_every_gan_trains_and_reloads(name, jit, tmp_path):
    options = {"n_critic": 2} if name.startswith("wgan") else {}
    gan = create_gan(name, 32, 16, width=8, seed=3, **options)
    gan.compile(jit_compile=jit)
    assert gan.jit_compile is jit
    before = [w.copy() for w in gan.generator.get_weights()]
    k = gan.real_batches_per_step  # one real batch per discriminator update
    history = gan.fit(_faces_dataset(count=8 * 2 * k), epochs=1, verbose=0).history
    assert set(gans.model_class(name).Objective.metric_names) == set(history)
    assert all(np.isfinite(values[-1]) for values in history.values()), history
    assert any(not np.array_equal(a, b) for a, b in zip(before, gan.generator.get_weights()))
    # 2 steps of k batches each: an epoch is one pass over the data.
    if name == "dynamic":  # k = 10; the schedule decides how many of them D uses
        assert k == 10 and int(gan.d_optimizer.iterations) == round(2 * history["d_steps"][-1])
        assert int(gan.g_optimizer.iterations) == round(2 * history["g_steps"][-1])
    else:
        assert k == (2 if name.startswith("wgan") else 1)
        assert int(gan.d_optimizer.iterations) == 2 * k and int(gan.g_optimizer.iterations) == 2

    gan.save_weights(str(tmp_path / "gan.weights.h5"))
    clone = create_gan(name, 32, 16, width=8, seed=9, **options)
    clone.load_weights(str(tmp_path / "gan.weights.h5"))
    latents = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    np.testing.assert_array_equal(clone.generator(latents).numpy(), gan.generator(latents).numpy())
    images = gan.generator(latents).numpy()
    np.testing.assert_array_equal(clone.discriminator(images).numpy(), gan.discriminator(images).numpy())
    np.testing.assert_array_equal(clone.generate(3, seed=5), gan.generate(3, seed=5))


def test_wgan_weights_stay_clipped():
    gan = create_gan("wgan", 32, 16, width=8, clip_value=0.01, n_critic=2, seed=0)
    weights = gan.discriminator.trainable_weights
    at_bound = lambda: sum(int((np.abs(w.numpy()) >= 0.01 - 1e-7).sum()) for w in weights)  # noqa: E731
    before = at_bound()
    gan.compile(d_optimizer=keras.optimizers.RMSprop(0.05), jit_compile=False)  # big steps would leave the box
    gan.fit(_faces_dataset(), epochs=1, verbose=0)
    assert max(float(np.abs(w.numpy()).max()) for w in weights) <= 0.01 + 1e-7
    # The updates pushed many more weights past the bound, and the constraint put them back on it.
    assert at_bound() > before + 100, (before, at_bound())


def test_every_critic_update_gets_a_fresh_real_batch():
    class RecordingWGAN(WGAN):
        def discriminator_update(self, real, fake=None):
            self.seen.assign(tf.concat([self.seen, [tf.reduce_mean(real)]], 0))
            return super().discriminator_update(real, fake)

    gan = create_gan("wgan", 32, 8, width=4, n_critic=3, seed=0)
    gan = RecordingWGAN(gan.generator, gan.discriminator, 8, n_critic=3, seed=0)
    gan.seen = tf.Variable(tf.zeros([0]), shape=[None], trainable=False)
    gan.compile(jit_compile=False)
    # Batch i holds only the value (i - 3) / 10: the sequence of means says which batch each update saw.
    values = np.repeat((np.arange(6, dtype=np.float32) - 3) / 10, 4)
    images = np.broadcast_to(values[:, None, None, None], (24, 32, 32, 3)).copy()
    gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(4), epochs=1, verbose=0)
    np.testing.assert_allclose(gan.seen.numpy(), (np.arange(6) - 3) / 10, atol=1e-6)  # 2 steps x 3 fresh batches
    assert int(gan.d_optimizer.iterations) == 6 and int(gan.g_optimizer.iterations) == 2


def _controlled_dynamic_gan(real_correct_threshold, fake_value, initial_accuracy):
    """A discriminator whose logit is 10 * (mean pixel - threshold), and a generator that always
    paints `fake_value`: the accuracy is then fixed by the data we feed."""
    latent = keras.Input((4,))
    pixels = keras.layers.Dense(4 * 4 * 3, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(fake_value))(latent)
    generator = keras.Model(latent, keras.layers.Reshape((4, 4, 3))(pixels))
    images = keras.Input((4, 4, 3))
    mean = keras.layers.GlobalAveragePooling2D()(images)
    logit = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant(10.0 / 3), bias_initializer=keras.initializers.Constant(-10.0 * real_correct_threshold)
    )(mean)
    return DynamicGAN(generator, keras.Model(images, logit), 4, seed=0, initial_accuracy=initial_accuracy)


def _report_rule(acc):
    return int(max(10 * acc, 1)), int(max(10 * (1 - acc), 3))


_SCHEDULE_CASES = [(0, True, 0.5), (3, True, 0.9), (7, True, 0.0), (2, False, 0.5), (7, False, 1.0), (10, False, 0.35)]


# Every case in graph mode, two (one of each branch) under XLA as well.
@pytest.mark.parametrize("jit, real_above, fakes_fooled, initial",
                         [(False, *case) for case in _SCHEDULE_CASES] + [(True, 3, True, 0.9), (True, 10, False, 0.35)])
def test_dynamic_schedule_performs_exactly_the_reported_number_of_updates(jit, real_above, fakes_fooled, initial):
    threshold = 0.0
    fake_value = 0.5 if fakes_fooled else -0.5  # above the threshold: D calls the fakes real
    gan = _controlled_dynamic_gan(threshold, fake_value, initial)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0), jit_compile=jit)
    values = np.where(np.arange(10) < real_above, 0.5, -0.5).astype(np.float32)
    batch = np.broadcast_to(values[:, None, None, None], (10, 4, 4, 3)).copy()
    # Each image gets one value of the other sign (same mean), so every batch spans both signs, as
    # [-1, 1] images do.
    sign = np.sign(values)[:, None]
    batch[:, 0, 0, 0] -= 0.75 * sign[:, 0]
    batch[:, 0, 0, 1:] += 0.25 * sign
    batch[:, 0, 1, 0] += 0.25 * sign[:, 0]
    real = np.concatenate([batch] * 20)  # two steps of 10 batches of 10
    logs = gan.fit(real, batch_size=10, epochs=1, verbose=0, shuffle=False).history
    # Step 1 follows the initial accuracy; step 2 the accuracy of step 1's last D update on its batch.
    acc = (real_above + (0 if fakes_fooled else 10)) / 20
    (d1, g1), (d2, g2) = _report_rule(initial), _report_rule(acc)
    assert int(gan.d_optimizer.iterations) == d1 + d2
    assert int(gan.g_optimizer.iterations) == g1 + g2
    assert logs["d_acc"][-1] == pytest.approx((initial + acc) / 2)
    assert logs["d_steps"][-1] == pytest.approx((d1 + d2) / 2) and logs["g_steps"][-1] == pytest.approx((g1 + g2) / 2)
    assert float(gan.objective.last_correct.numpy() / gan.objective.last_total.numpy()) == pytest.approx(acc)


def test_ema_follows_the_ramped_decay_exactly_and_stays_close_to_the_live_generator():
    gan = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.999)
    gan.compile(jit_compile=False)
    initial_generator = keras.models.clone_model(gan.generator)
    initial_generator.set_weights(gan.generator.get_weights())
    trajectory = [[v.numpy().astype(np.float64) for v in gan.generator.variables]]
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: trajectory.append([v.numpy().astype(np.float64) for v in gan.generator.variables]))
    gan.fit(_faces_dataset(64), epochs=1, verbose=0, callbacks=[record])  # 8 generator updates
    assert len(trajectory) == 9 and float(gan.ema_updates.numpy()) == 8
    # TensorFlow's ExponentialMovingAverage(num_updates=t) rule, written out: every variable decays
    # with min(0.999, (1 + t) / (10 + t)); BatchNorm's moving statistics too, but fit also refreshes
    # them every tenth step (test_ema_batch_norm_statistics_are_the_averages_own), so they are left out here.
    expected = trajectory[0]
    for t, weights in enumerate(trajectory[1:]):
        decay = min(0.999, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
    statistics = own_statistics(gan.ema_generator)
    assert len(statistics) == 2 * len(batch_norm_layers(gan.ema_generator)) >= 4
    averaged = [(a, v) for a, v in zip(gan.ema_generator.variables, expected) if id(a) not in statistics]
    assert len(averaged) == len(gan.ema_generator.variables) - len(statistics)
    for average, value in averaged:
        np.testing.assert_allclose(average.numpy(), value, rtol=1e-4, atol=1e-6)
    # Without the ramp, 0.999^8 would leave it 99% the initialisation; with it, it is near the live one
    # (compared with batch statistics: the weights are what the ramp averages).
    latents = latents_for_seed(16, 16, 3)
    live, ema, init = (np.asarray(model(latents, training=True)) for model in (gan.generator, gan.ema_generator, initial_generator))
    assert np.abs(ema - live).mean() < 0.5 * np.abs(init - live).mean()
    np.testing.assert_array_equal(gan.generate(2, seed=7), render(gan.ema_generator, latents_for_seed(2, 16, 7)))


def test_ema_batch_norm_statistics_are_the_averages_own():
    """Refreshed, the average's BatchNorm statistics describe its own activations: in inference mode
    it draws what it draws with the statistics of a large batch, while the live generator's
    statistics (what averaging them gave) do not fit it. The training stream is unchanged (the
    refresh's latents come from their own stream), and `fit` refreshes every tenth step."""
    gan = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.999)
    gan.compile(jit_compile=False)
    gan.ema_updates.assign(10_000.0)  # decay 0.999: the average stays where it is put
    for variable in [v for v in gan.ema_generator.variables if id(v) not in own_statistics(gan.ema_generator)]:
        variable.assign(variable * 1.5 + 0.05)  # an average unlike the live generator
    for layer in batch_norm_layers(gan.ema_generator):
        live = next(l for l in batch_norm_layers(gan.generator) if l.name == layer.name)
        layer.moving_mean.assign(live.moving_mean)
        layer.moving_variance.assign(live.moving_variance)
    latents = latents_for_seed(512, 16, 5)

    def mismatch():
        standing = np.asarray(gan.ema_generator(latents, training=True))  # statistics of 512 latents
        for layer in batch_norm_layers(gan.ema_generator):  # that call moved the statistics: undo it
            layer.moving_mean.assign(saved[layer.name][0])
            layer.moving_variance.assign(saved[layer.name][1])
        return float(np.abs(np.asarray(gan.ema_generator(latents, training=False)) - standing).mean())

    saved = {l.name: (l.moving_mean.numpy(), l.moving_variance.numpy()) for l in batch_norm_layers(gan.ema_generator)}
    before = mismatch()
    stream = gan.rng.state.numpy().copy()
    for _ in range(10):  # each refresh halves the distance: ten leave 0.1% of the start
        gan.refresh_average_statistics()
    np.testing.assert_array_equal(gan.rng.state.numpy(), stream)
    saved = {l.name: (l.moving_mean.numpy(), l.moving_variance.numpy()) for l in batch_norm_layers(gan.ema_generator)}
    after = mismatch()
    assert before > 0.05 and after < 0.2 * before, (before, after)

    refreshes = []
    gan.refresh_average_statistics = lambda: refreshes.append(int(gan.ema_updates.numpy()))
    gan.fit(_faces_dataset(200), epochs=1, verbose=0)  # 25 steps
    assert refreshes == [10_010, 10_020]


def test_generate_is_reproducible_per_seed():
    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    first = gan.generate(5, seed=11)
    assert first.shape == (5, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, gan.generate(5, seed=11))
    assert not np.array_equal(first, gan.generate(5, seed=12))


def _mixture(n, rng):
    centres = np.array([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]], np.float32)
    return centres[rng.integers(0, 4, n)] + 0.2 * rng.normal(size=(n, 2)).astype(np.float32)


def _sliced_wasserstein(a, b, projections=64, seed=0):
    directions = np.random.default_rng(seed).normal(size=(2, projections))
    directions /= np.linalg.norm(directions, axis=0)
    pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)
    return float(np.abs(pa - pb).mean())


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("cls, options, learning_rate, beta_2, bound", [
    # Measured on this CPU over 600 generator updates (seeds 0-2): DCGAN 1.64 -> ratio 0.24-0.50
    # (it tends to drop modes of the mixture), WGAN-GP 0.08-0.12 in float32; in bfloat16 DCGAN
    # 0.19-0.50, WGAN-GP 0.11-0.22: the same thresholds hold. An untrained or broken GAN stays near 1.6.
    (DCGAN, {}, 1e-3, 0.999, 0.65),
    (WGANGP, {"n_critic": 3}, 2e-3, 0.9, 0.3),
])
def test_gan_moves_toward_a_2d_mixture(cls, options, learning_rate, beta_2, bound, precision):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy({"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision])
    try:  # networks whose every layer computes in the precision, outputs included: the GAN casts the logits
        gan = cls(mlp(8, 2, width=64, depth=2), mlp(2, 1, width=64, depth=2), 8, seed=0, **options)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert gan.generator.layers[-1].compute_dtype == precision
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=beta_2),
        g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=beta_2),
    )
    reference = _mixture(2000, np.random.default_rng(1))
    latents = latents_for_seed(2000, 8, 0)
    before = _sliced_wasserstein(np.asarray(gan.generator(latents), np.float32), reference)
    for _ in range(6):  # 100 generator updates an epoch: a WGAN step takes n_critic real batches
        gan.fit(_mixture(128 * 100 * gan.real_batches_per_step, rng), batch_size=128, epochs=1, verbose=0)
    after = _sliced_wasserstein(np.asarray(gan.generator(latents), np.float32), reference)
    assert after < bound * before, (before, after)


def test_fit_checks_the_range_of_images_but_not_of_vectors():
    wgan = WGANGP(mlp(8, 2, width=64, depth=2), mlp(2, 1, width=64, depth=2), 8, seed=0, n_critic=2)
    wgan.compile(jit_compile=False)
    history = wgan.fit(_mixture(64, np.random.default_rng(0)), batch_size=16, epochs=1, verbose=0)  # values up to ~2.5
    assert np.isfinite(history.history["d_loss"]).all()
    images = create_gan("wgan", 32, 8, width=4, seed=0, n_critic=2)
    images.compile(jit_compile=False)
    with pytest.raises(ValueError, match="the GANs work on \\[-1, 1\\] floats"):
        images.fit(np.full((8, 32, 32, 3), 2.0, np.float32), batch_size=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="2 real batches per step"):  # an ungrouped batch of images
        images.train_step(tf.zeros((4, 32, 32, 3)))


def test_two_replica_mirrored_step_equals_one_replica_step():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("mirrored_check.py")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["min_update"] > 1e-3  # the step really changed every weight...
    assert report["max_weight_difference"] < 1e-6  # ...and identically on 1 and 2 replicas
    assert report["jit_compile_mirrored"] is False  # compile chose no XLA under 2 replicas
    assert report["dynamic_refused"] is True
    for name in ("dcgan", "wgan-gp", "lightweight"):
        assert all(np.isfinite(value) for value in report[name].values()), report[name]
    assert report["lightweight"]["recon"] > 0 and report["lightweight"]["d_iterations"] == 2
    assert report["wgan-gp"]["d_iterations"] == 2  # 32 images / 16 = 2 batches: 1 step of n_critic 2
    # The package's networks: synchronized BatchNorm gives the one-device update on 2 replicas, and
    # the clip constraint holds on every replica's copy of the critic.
    batchnorm, clipped = report["batchnorm_dcgan"], report["clipped_wgan"]
    assert batchnorm["max_weight_difference"] < 1e-5 and batchnorm["generator_min_update"] > 1e-4
    # (a clipped critic passes the generator tiny gradients: it moves, by less than for DCGAN)
    assert clipped["max_weight_difference"] < 1e-7 < clipped["generator_min_update"]
    assert clipped["max_abs_critic_weight"] <= 0.01 + 1e-7 and clipped["d_iterations"] == 2
    # A lazy regularisation phase (steps 0 and 2 of 3) trains identically on 1 and 2 replicas.
    phases = report["phases"]
    assert phases["max_weight_difference"] < 1e-6 and phases["d_iterations"] == [5, 5] and phases["phase_steps"] == [3, 3]


def _rates(gan):
    return float(gan.d_optimizer.learning_rate.numpy()), float(gan.g_optimizer.learning_rate.numpy())


def test_keras_learning_rate_callbacks_act_on_both_networks_and_tensorboard_logs_both(tmp_path):
    gan = create_gan("dcgan", 32, 8, width=4, seed=0, d_learning_rate=1e-4, g_learning_rate=4e-4)
    gan.compile(jit_compile=False)
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5 if epoch else rate)
    history = gan.fit(_faces_dataset(16), epochs=3, verbose=0, callbacks=[halve]).history
    np.testing.assert_allclose(_rates(gan), (2.5e-5, 1e-4), rtol=1e-6)  # two halvings each, ratio kept
    np.testing.assert_allclose(history["learning_rate_d_optimizer"], [1e-4, 5e-5, 2.5e-5], rtol=1e-6)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="g_loss", mode="max", factor=0.1, patience=0, min_delta=1e9)
    # The first epoch sets the best value; the second never "improves" on it: one cut, both networks.
    gan.fit(_faces_dataset(16), epochs=2, verbose=0, callbacks=[plateau])
    np.testing.assert_allclose(_rates(gan), (2.5e-6, 1e-5), rtol=1e-5)
    board = keras.callbacks.TensorBoard(str(tmp_path))
    board.set_model(gan)
    logged = board._collect_learning_rate({})
    np.testing.assert_allclose([logged["learning_rate_d_optimizer"], logged["learning_rate_g_optimizer"]], _rates(gan), rtol=1e-5)


def test_a_schedule_per_network_is_followed_step_by_step():
    gan = create_gan("wgan", 32, 8, width=4, seed=0, n_critic=2)
    decay = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5)
    gan.compile(d_optimizer=keras.optimizers.RMSprop(decay), g_optimizer=keras.optimizers.RMSprop(1e-4), jit_compile=False)
    gan.fit(_faces_dataset(32), epochs=1, verbose=0)  # 2 steps: 4 critic updates, 2 generator updates
    np.testing.assert_allclose(_rates(gan), (1e-3 * 0.5**4, 1e-4), rtol=1e-5)


@pytest.mark.parametrize("scale, message", [(lambda x: (x + 1) / 2, r"floats in \[0, 1\]"),
                                            (lambda x: (x + 1) * 127.5, "divide by 127.5")])
def test_fit_refuses_images_outside_minus_one_to_one(scale, message):
    gan = create_gan("dcgan", 32, 8, width=4, seed=0)
    gan.compile(jit_compile=False)
    images = synthetic_faces(8, 32, seed=1).astype(np.float32) / 127.5 - 1.0
    for data in (scale(images), tf.data.Dataset.from_tensor_slices(scale(images)).batch(4)):
        with pytest.raises(ValueError, match=message):
            gan.fit(data, batch_size=4, epochs=1, verbose=0)
    assert int(gan.d_optimizer.iterations) == 0


def test_uint8_pixels_train_exactly_like_their_signed_floats():
    pixels = synthetic_faces(16, 32, seed=1)
    losses = []
    for data in (pixels, pixels.astype(np.float32) / 127.5 - 1.0):
        keras.utils.set_random_seed(0)
        gan = create_gan("dcgan", 32, 8, width=4, seed=0)
        gan.compile(jit_compile=False)
        history = gan.fit(tf.data.Dataset.from_tensor_slices(data).batch(8), epochs=1, verbose=0).history
        losses.append((history["d_loss"][-1], history["g_loss"][-1]))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
