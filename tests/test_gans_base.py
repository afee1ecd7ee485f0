"""The shared loop: its seams, the one D and one G update, and lazy regularisation phases."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans import GAN, RegularizationPhase, losses


def _mlp(inputs, outputs):
    x = keras.Input((inputs,))
    h = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(x, keras.layers.Dense(outputs)(h))


class CountingGAN(GAN):
    """A BCE GAN on 2-D points that counts every network call through the seams and runs a
    discriminator phase every 3 steps and a generator phase every 2."""

    metric_names = GAN.metric_names + ("d_reg", "g_reg")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="calls")  # G, D
        self.phase_runs = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="phase_runs")

    def run_generator(self, latents, training=True):
        self.calls.assign_add([1.0, 0.0])
        return super().run_generator(latents, training)

    def run_discriminator(self, images, training=True):
        self.calls.assign_add([0.0, 1.0])
        return super().run_discriminator(images, training)

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.bce_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return losses.bce_generator_loss(fake_logits)

    def regularization_phases(self):
        return (RegularizationPhase("d_reg", "discriminator", 3, self._d_reg),
                RegularizationPhase("g_reg", "generator", 2, self._g_reg))

    def _d_reg(self, real, global_batch):
        self.phase_runs.assign_add([1.0, 0.0])
        return 0.01 * tf.reduce_sum(tf.square(self.run_discriminator(real)), axis=-1)

    def _g_reg(self, real, global_batch):
        self.phase_runs.assign_add([0.0, 1.0])
        fake = self.run_generator(self.sample_latent(tf.shape(real)[0]))
        return 0.01 * tf.reduce_sum(tf.square(fake), axis=-1)


def _counting_gan(seed=0):
    gan = CountingGAN(_mlp(4, 2), _mlp(2, 1), 4, seed=seed)
    gan.compile(jit_compile=False)
    return gan


def _points(steps, batch=8):
    return np.random.default_rng(0).normal(size=(steps * batch, 2)).astype(np.float32)


def test_phases_run_on_exactly_the_steps_they_are_due_and_resume_their_count(tmp_path):
    gan = _counting_gan()
    gan.fit(_points(7), batch_size=8, epochs=1, verbose=0, shuffle=False)
    # Steps 0..6: D phase on 0, 3, 6; G phase on 0, 2, 4, 6.
    np.testing.assert_array_equal(gan.phase_runs.numpy(), [3, 4])
    assert int(gan.phase_steps.numpy()) == 7
    assert int(gan.d_optimizer.iterations.numpy()) == 7 + 3 and int(gan.g_optimizer.iterations.numpy()) == 7 + 4
    # One shared-fake step: G forward once and D three times (real, fake, G's score), plus the phases'.
    gan.save_weights(str(tmp_path / "gan.weights.h5"))
    clone = _counting_gan(seed=1)
    clone.load_weights(str(tmp_path / "gan.weights.h5"))
    assert int(clone.phase_steps.numpy()) == 7
    clone.fit(_points(2), batch_size=8, epochs=1, verbose=0, shuffle=False)  # steps 7 and 8: G phase on 8
    np.testing.assert_array_equal(clone.phase_runs.numpy(), [3, 5])


def test_every_network_call_goes_through_the_seams():
    gan = _counting_gan()
    gan.fit(_points(1), batch_size=8, epochs=1, verbose=0, shuffle=False)
    # Step 0 runs both phases: main step G once, D on real + fake + G's fakes; D phase: D once; G phase: G and
    # no D. So G: 1 + 1, D: 3 + 1.
    np.testing.assert_array_equal(gan.calls.numpy(), [2, 4])


def test_a_model_without_phases_has_no_phase_counter_and_keeps_keras_step_function():
    class Plain(CountingGAN):
        metric_names = GAN.metric_names

        def regularization_phases(self):
            return ()

    gan = Plain(_mlp(4, 2), _mlp(2, 1), 4, seed=0)
    gan.compile(jit_compile=False)
    gan.fit(_points(2), batch_size=8, epochs=1, verbose=0)
    assert gan.phase_steps is None and int(gan.d_optimizer.iterations.numpy()) == 2


def test_optimizer_overrides_reach_the_paper_optimizers():
    gan = CountingGAN(_mlp(4, 2), _mlp(2, 1), 4, d_learning_rate=1e-3, beta_2=0.95)
    d, g = gan.default_optimizers()
    assert np.isclose(float(d.learning_rate), 1e-3) and np.isclose(float(g.learning_rate), 2e-4)
    assert d.beta_1 == g.beta_1 == 0.5 and d.beta_2 == g.beta_2 == 0.95


def test_data_too_small_for_one_step_is_an_error_not_an_empty_history():
    """WGAN-GP takes n_critic = 5 real batches per step: 2 batches make no step, and Keras would
    return an empty history without a word."""
    from keras_anime_gan import create_gan

    gan = create_gan("wgan-gp", 32, 8, width=4, seed=0)
    gan.compile(jit_compile=False)
    images = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    unknown_length = tf.data.Dataset.from_tensor_slices(images).batch(8).filter(lambda batch: True)
    for data, kwargs in [(images, {"batch_size": 8}), (tf.data.Dataset.from_tensor_slices(images).batch(8), {}),
                         (unknown_length, {})]:
        with pytest.raises(ValueError, match="WGANGP would train nothing: .* 5 real batches per step"):
            gan.fit(data, epochs=1, verbose=0, **kwargs)
    more = np.concatenate([images] * 3)  # 6 batches of 8: one step
    assert len(gan.fit(more, batch_size=8, epochs=1, verbose=0).history["d_loss"]) == 1


def test_a_gan_that_says_nothing_else_has_a_discriminator_loss_minimum_of_0_and_no_critic():
    gan = CountingGAN(_mlp(4, 2), _mlp(2, 1), 4)  # its own losses and no override, as StyleGAN2-ADA's logistic loss
    assert gan.discriminator_loss_minimum() == 0.0 and gan.critic_divergence_bound() is None
