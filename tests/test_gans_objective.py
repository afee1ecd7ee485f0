"""The objective's seams: DiffAugment of everything the discriminator sees, in every update and phase,
differentiable, in graph mode and under XLA."""

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan import create_gan
from keras_anime_gan.gans import losses

FACES = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)


def test_without_a_policy_the_discriminator_sees_the_images_as_they_are():
    gan = create_gan("dcgan", 32, 8, width=4, seed=0)
    images = tf.constant(FACES[:4])
    assert gan.objective.diffaugment == ()
    np.testing.assert_array_equal(gan.objective.augment(images), images)


@pytest.mark.parametrize("model, options", [("dcgan", {"width": 4, "latent_dim": 8}),
                                            ("wgan-gp", {"width": 4, "latent_dim": 8, "n_critic": 1}),
                                            ("stylegan2-ada", {"preset": "tiny", "channel_max": 8, "z_dim": 8,
                                                               "w_dim": 8})])
def test_diffaugment_reaches_every_update_and_gradients_flow_through_it(model, options):
    resolution = 16 if model == "stylegan2-ada" else 32
    gan = create_gan(model, resolution, seed=0, augment="diffaugment", **options)
    objective = gan.objective
    assert objective.diffaugment == ("color", "translation", "cutout")
    real = tf.constant(FACES[:4, :resolution, :resolution])
    seen = objective.augment(real)
    assert not np.allclose(seen, real) and objective.augment(real, training=False) is real  # only in training
    latents = objective.sample_latent(4)
    with tf.GradientTape() as tape:  # G's update scores augmented fakes: its gradient flows through them
        g_loss = tf.reduce_mean(objective.generator_objective(objective.run_generator(latents)))
    gradients = tape.gradient(g_loss, gan.generator.trainable_variables)
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in gradients)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in gradients) > 0
    with tf.GradientTape() as tape:  # R1 (and WGAN-GP's penalty) differentiate through the augmentation
        penalty = tf.reduce_mean(losses.r1_penalty(objective.run_discriminator, real))
    assert float(penalty) > 0
    assert all(g is None or np.isfinite(np.asarray(g)).all()
               for g in tape.gradient(penalty, gan.discriminator.trainable_variables))


@pytest.mark.parametrize("jit", [False, True])
def test_a_diffaugment_run_trains_in_graph_mode_and_under_xla(jit):
    gan = create_gan("dcgan", 32, 8, width=4, seed=0, augment="diffaugment:translation,cutout")
    gan.compile(jit_compile=jit)
    logs = gan.fit(FACES, batch_size=8, epochs=1, verbose=0).history
    assert gan.jit_compile is jit and all(np.isfinite(values[-1]) for values in logs.values())
