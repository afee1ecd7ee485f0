"""R1 and path-length regularizers against closed forms and NumPy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.stylegan2 import augment as A
from keras_anime_gan.gans.stylegan2 import networks as N
from keras_anime_gan.gans.stylegan2 import regularizers as R

RNG = np.random.default_rng(0)


def linear_discriminator(a):
    """D(x) = <a, x> per sample, logits (B, 1)."""
    return lambda x: tf.reduce_sum(x * a, axis=[1, 2, 3])[:, None]


def test_r1_of_a_linear_discriminator_is_the_squared_norm():
    a = RNG.normal(size=(8, 8, 3)).astype(np.float32)
    x = RNG.uniform(-1, 1, size=(5, 8, 8, 3)).astype(np.float32)
    penalty = R.r1_penalty(linear_discriminator(a), x).numpy()
    assert penalty.shape == (5,)
    np.testing.assert_allclose(penalty, np.sum(a ** 2), rtol=1e-5)  # the model weights it by gamma / 2
    penalty, logits = R.r1_penalty(linear_discriminator(a), x, return_logits=True)
    np.testing.assert_allclose(logits.numpy()[:, 0], np.sum(x * a, axis=(1, 2, 3)), rtol=1e-5)


def test_r1_through_a_fixed_linear_augmentation():
    a = RNG.normal(size=(8, 8, 3)).astype(np.float32)
    mix = RNG.normal(size=(3, 3)).astype(np.float32)  # colour matrix: aug(x) = x @ mix^T
    x = RNG.uniform(-1, 1, size=(4, 8, 8, 3)).astype(np.float32)
    d = linear_discriminator(a)
    penalty = R.r1_penalty(lambda images: d(tf.einsum("bhwj,ij->bhwi", images, mix)), x).numpy()
    np.testing.assert_allclose(penalty, np.sum((a @ mix) ** 2), rtol=1e-4)  # ||A^T a||^2
    # Through the ADA layer at p = 1 with flips and rotations: permutations keep the norm.
    augment = A.AdaptiveAugment("blit", strengths={"xint": 0.0}, seed=0, initial_p=1.0)
    penalty = R.r1_penalty(lambda images: d(augment(images, training=True)), x).numpy()
    np.testing.assert_allclose(penalty, np.sum(a ** 2), rtol=1e-4)


def test_r1_differentiates_again_with_respect_to_discriminator_weights():
    a = tf.Variable(RNG.normal(size=(4, 4, 3)).astype(np.float32))
    x = RNG.uniform(-1, 1, size=(2, 4, 4, 3)).astype(np.float32)
    augment = A.AdaptiveAugment("bgc", seed=1, initial_p=0.5)
    with tf.GradientTape() as tape:
        augmented_d = lambda images: linear_discriminator(a)(augment(images, training=True))  # noqa: E731
        penalty = tf.reduce_mean(R.r1_penalty(augmented_d, x))
    grad = tape.gradient(penalty, a)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
    with tf.GradientTape() as tape:
        plain = tf.reduce_mean(R.r1_penalty(linear_discriminator(a), x))
    np.testing.assert_allclose(tape.gradient(plain, a).numpy(), 2 * a.numpy(), rtol=1e-5)  # d||a||^2/da


def test_path_length_matches_numpy_on_a_linear_generator():
    batch, num_ws, w_dim, size = 3, 4, 5, 6
    matrix = RNG.normal(size=(num_ws, w_dim, size * size * 3)).astype(np.float32)
    synthesis = lambda ws: tf.reshape(tf.einsum("bij,ijk->bk", ws, matrix), [-1, size, size, 3])
    ws = RNG.normal(size=(batch, num_ws, w_dim)).astype(np.float32)
    y = RNG.normal(size=(batch, size, size, 3)).astype(np.float32) / math.sqrt(size * size)
    lengths = R.path_length(synthesis, ws, noise=y).numpy()
    grads = np.einsum("ijk,bk->bij", matrix, y.reshape(batch, -1))  # d sum(img * y) / d ws
    np.testing.assert_allclose(lengths, np.sqrt((grads ** 2).sum(axis=2).mean(axis=1)), rtol=1e-5)
    # Default noise: N(0, 1) / sqrt(H * W) drawn from the given generator.
    drawn = R.path_length(synthesis, ws, rng=tf.random.Generator.from_seed(4)).numpy()
    y = tf.random.Generator.from_seed(4).normal([batch, size, size, 3]).numpy() / size
    grads = np.einsum("ijk,bk->bij", matrix, y.reshape(batch, -1))
    np.testing.assert_allclose(drawn, np.sqrt((grads ** 2).sum(axis=2).mean(axis=1)), rtol=1e-5)


def test_path_length_penalty_uses_the_updated_mean():
    lengths = tf.constant([1.0, 2.0, 3.0])
    penalty, new_mean = R.path_length_penalty(lengths, 0.5)
    assert float(new_mean) == pytest.approx(0.5 + 0.01 * (2.0 - 0.5))
    np.testing.assert_allclose(penalty.numpy(), 2 * (np.array([1.0, 2.0, 3.0]) - 0.515) ** 2, rtol=1e-6)
    _, first = R.path_length_penalty(lengths, 0.0)
    assert float(first) == pytest.approx(0.02)  # from 0, as NVIDIA starts
    _, global_mean = R.path_length_penalty(lengths, 0.0, batch_mean=4.0)
    assert float(global_mean) == pytest.approx(0.04)


def test_path_length_through_the_synthesis_network_is_trainable():
    generator = N.StyleGenerator(**N.preset("tiny", 8)["generator"], seed=0)
    z = tf.constant(RNG.normal(size=(2, 64)).astype(np.float32))
    with tf.GradientTape() as tape:
        ws = generator.mapping(z)
        lengths = R.path_length(lambda w: generator.synthesis(w, noise_mode="random"), ws,
                                rng=tf.random.Generator.from_seed(1))
        penalty, _ = R.path_length_penalty(lengths, 0.0)
        loss = tf.reduce_mean(penalty)
    grads = tape.gradient(loss, generator.trainable_weights)
    assert lengths.shape == (2,) and (lengths.numpy() > 0).all()
    assert sum(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads) > len(grads) // 2
