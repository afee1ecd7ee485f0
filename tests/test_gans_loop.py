"""The shared loop (`gans/loop.py`) with an objective (`gans/objective.py`): the seams, the one D and
one G update, lazy regularisation phases, the EMA sub-model, and what `fit` checks."""

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans import GAN, Objective, RegularizationPhase, losses

from conftest import mlp


class CountingObjective(Objective):
    """BCE on 2-D points, counting every network call through the seams, with a discriminator
    phase every 3 steps and a generator phase every 2; its counters are its own state, saved with
    the GAN."""

    metric_names = Objective.metric_names + ("d_reg", "g_reg")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="calls")  # G, D
        self.phase_runs = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="phase_runs")

    def run_generator(self, latents, training=True):
        self.calls.assign_add([1.0, 0.0])
        return super().run_generator(latents, training)

    def run_discriminator(self, images, training=True):
        self.calls.assign_add([0.0, 1.0])
        return super().run_discriminator(images, training)

    def phases(self):
        return (RegularizationPhase("d_reg", "discriminator", 3, self._d_reg),
                RegularizationPhase("g_reg", "generator", 2, self._g_reg))

    def _d_reg(self, real, global_batch):
        self.phase_runs.assign_add([1.0, 0.0])
        return 0.01 * tf.reduce_sum(tf.square(self.run_discriminator(real)), axis=-1)

    def _g_reg(self, real, global_batch):
        self.phase_runs.assign_add([0.0, 1.0])
        fake = self.run_generator(self.sample_latent(tf.shape(real)[0]))
        return 0.01 * tf.reduce_sum(tf.square(fake), axis=-1)


def _counting_gan(seed=0, objective=None, **options):
    gan = GAN(mlp(4, 2), mlp(2, 1), 4, objective=objective or CountingObjective(), seed=seed, **options)
    gan.compile(jit_compile=False)
    return gan


def _points(steps, batch=8):
    return np.random.default_rng(0).normal(size=(steps * batch, 2)).astype(np.float32)


def test_phases_run_on_exactly_the_steps_they_are_due_and_resume_their_count(tmp_path):
    gan = _counting_gan()
    gan.fit(_points(7), batch_size=8, epochs=1, verbose=0, shuffle=False)
    # Steps 0..6: D phase on 0, 3, 6; G phase on 0, 2, 4, 6.
    np.testing.assert_array_equal(gan.objective.phase_runs.numpy(), [3, 4])
    assert int(gan.phase_steps.numpy()) == 7
    assert int(gan.d_optimizer.iterations.numpy()) == 7 + 3 and int(gan.g_optimizer.iterations.numpy()) == 7 + 4
    # One shared-fake step: G forward once and D three times (real, fake, G's score), plus the phases'.
    gan.save_weights(str(tmp_path / "gan.weights.h5"))
    clone = _counting_gan(seed=1)
    clone.load_weights(str(tmp_path / "gan.weights.h5"))
    assert int(clone.phase_steps.numpy()) == 7
    clone.fit(_points(2), batch_size=8, epochs=1, verbose=0, shuffle=False)  # steps 7 and 8: G phase on 8
    np.testing.assert_array_equal(clone.objective.phase_runs.numpy(), [3, 5])


def test_every_network_call_goes_through_the_seams():
    gan = _counting_gan()
    gan.fit(_points(1), batch_size=8, epochs=1, verbose=0, shuffle=False)
    # Step 0 runs both phases: main step G once, D on real + fake + G's fakes; D phase: D once; G phase: G and
    # no D. So G: 1 + 1, D: 3 + 1.
    np.testing.assert_array_equal(gan.objective.calls.numpy(), [2, 4])


def test_a_model_without_phases_keeps_keras_step_function():
    class Plain(CountingObjective):
        metric_names = Objective.metric_names

        def phases(self):
            return ()

    gan = _counting_gan(objective=Plain())
    gan.fit(_points(2), batch_size=8, epochs=1, verbose=0)
    assert gan.phase_steps is None and int(gan.d_optimizer.iterations.numpy()) == 2


def test_optimizer_settings_reach_the_objectives_recipe():
    d, g = Objective(d_learning_rate=1e-3, beta_2=0.95).optimizers()
    assert np.isclose(float(d.learning_rate), 1e-3) and np.isclose(float(g.learning_rate), 2e-4)
    assert d.beta_1 == g.beta_1 == 0.5 and d.beta_2 == g.beta_2 == 0.95


def test_two_loss_functions_are_a_new_model():
    """keras.io's WGAN-GP way: losses handed over, the loop unchanged."""
    objective = Objective(discriminator_loss=losses.hinge_discriminator_loss,
                          generator_loss=losses.wasserstein_generator_loss)
    gan = GAN(mlp(4, 2), mlp(2, 1), objective=objective, seed=0)
    gan.compile(jit_compile=False)
    logs = gan.fit(_points(3), batch_size=8, epochs=1, verbose=0).history
    real, fake = np.array([[2.0], [0.5]], np.float32), np.array([[-2.0], [1.0]], np.float32)
    np.testing.assert_allclose(objective.discriminator_loss(real, fake), [0.0, 2.5])
    assert np.isfinite(logs["d_loss"][0]) and int(gan.g_optimizer.iterations.numpy()) == 3


def test_the_ema_generator_is_a_frozen_sub_model_saved_and_restored_with_the_gan(tmp_path):
    """(test_gans_classic checks its numbers against TensorFlow's ramped rule.)"""
    gan = _counting_gan(objective=Objective(), ema=0.5)
    assert gan.ema_generator is not gan.generator and not gan.ema_generator.trainable_weights
    gan.fit(_points(3), batch_size=8, epochs=1, verbose=0, shuffle=False)
    averaged = gan.ema_generator.get_weights()
    assert float(gan.ema_updates.numpy()) == 3
    assert not all(np.array_equal(a, b) for a, b in zip(averaged, gan.generator.get_weights()))
    gan.save_weights(str(tmp_path / "gan.weights.h5"))
    clone = _counting_gan(seed=1, objective=Objective(), ema=0.5)
    clone.load_weights(str(tmp_path / "gan.weights.h5"))
    for a, b in zip(clone.ema_generator.get_weights(), averaged):
        np.testing.assert_array_equal(a, b)
    plain = _counting_gan(objective=Objective())
    assert plain.ema_generator is plain.generator  # no average: the generator itself


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


def test_an_objective_that_says_nothing_else_has_a_discriminator_loss_minimum_of_0_and_no_critic():
    objective = CountingObjective()  # as StyleGAN2-ADA's logistic loss
    assert objective.discriminator_loss_minimum() == 0.0 and objective.critic_divergence_bound() is None


def test_an_objective_and_its_options_together_are_refused():
    with pytest.raises(TypeError, match="an objective or its options, not both"):
        GAN(mlp(4, 2), mlp(2, 1), objective=Objective(), d_learning_rate=1e-3)
