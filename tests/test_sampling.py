"""sampling.py: the one path from seeds to latents to pixels, truncation included."""

import keras
import numpy as np
import tensorflow as tf

from keras_anime_gan import explore
from keras_anime_gan.export import GeneratorServing
from keras_anime_gan.sampling import generate_images, latents_for_seeds, render


def _generator(latent_dim=4):
    z = keras.Input((latent_dim,))
    image = keras.layers.Reshape((4, 4, 3))(keras.layers.Dense(48, activation="tanh")(z))
    return keras.Model(z, image)


class OwnTruncation(keras.Model):
    """A generator with its own truncation rule (as StyleGAN's, toward an average): here, toward 1."""

    latent_dim = 4

    def __init__(self):
        super().__init__()
        self.inner = _generator(self.latent_dim)

    def call(self, latents, training=False):
        return self.inner(latents, training=training)

    def truncated(self, latents, psi, training=False):
        return self.inner(1.0 + psi * (latents - 1.0), training=training)


def test_classic_truncation_scales_z_and_none_leaves_it():
    generator = _generator()
    latents = latents_for_seeds([0, 1, 2], 4)
    np.testing.assert_array_equal(generate_images(generator, latents), generator(latents))
    np.testing.assert_allclose(generate_images(generator, latents, 0.5), generator(latents * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(render(generator, latents, truncation=0.0), render(generator, np.zeros_like(latents)))


def test_a_generator_with_its_own_truncation_gets_it_everywhere(tmp_path):
    generator = OwnTruncation()
    latents = latents_for_seeds([0, 1], 4)
    toward_one = render(generator.inner, np.ones_like(latents))
    np.testing.assert_array_equal(render(generator, latents, truncation=0.0), toward_one)  # not toward 0
    assert not np.array_equal(render(generator, latents, truncation=0.0), render(generator.inner, 0 * latents))
    grid = explore.truncation(generator, str(tmp_path / "t.png"), seeds=(0, 1), psis=(0.0, 1.0))
    assert grid.shape[:2] == (8, 8)
    np.testing.assert_array_equal(grid[:4, :4], toward_one[0])  # row seed 0, column psi 0
    served = GeneratorServing(generator, 8)._generate(tf.constant(2), tf.constant(0, tf.int64), tf.constant(0.0))
    np.testing.assert_array_equal(served.numpy(), toward_one)
