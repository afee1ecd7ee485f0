"""The losses module: each pure function against an independent NumPy computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans import losses

REAL = np.array([[2.0], [-1.0], [0.3], [0.0], [-4.0]], np.float32)
FAKE = np.array([[-3.0], [0.5], [1.5], [-0.2], [6.0]], np.float32)


def np_bce(logits, target):
    """Cross-entropy of sigmoid(logits) against target, written out independently."""
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


@pytest.mark.parametrize("real_t, fake_t", [(1.0, 0.0), (0.9, 0.1), (0.9, 0.0)])
def test_bce_pair_matches_numpy(real_t, fake_t):
    d = losses.bce_discriminator_loss(tf.constant(REAL), tf.constant(FAKE), real_t, fake_t).numpy()
    np.testing.assert_allclose(d, 0.5 * (np_bce(REAL, real_t) + np_bce(FAKE, fake_t))[:, 0], rtol=1e-5)
    np.testing.assert_allclose(losses.bce_generator_loss(tf.constant(FAKE)).numpy(), np_bce(FAKE, 1.0)[:, 0], rtol=1e-5)


@pytest.mark.parametrize("real_t, fake_t", [(1.0, 0.0), (0.8, 0.2)])
def test_least_squares_pair_matches_numpy(real_t, fake_t):
    r, f = REAL.astype(np.float64), FAKE.astype(np.float64)
    np.testing.assert_allclose(losses.least_squares_discriminator_loss(REAL, FAKE, real_t, fake_t),
                               (0.5 * (r - real_t) ** 2 + 0.5 * (f - fake_t) ** 2)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(losses.least_squares_generator_loss(FAKE), (0.5 * (f - 1) ** 2)[:, 0], rtol=1e-6)


def test_wasserstein_pair_matches_numpy():
    r, f = REAL.astype(np.float64), FAKE.astype(np.float64)
    np.testing.assert_allclose(losses.wasserstein_critic_loss(REAL, FAKE), (f - r)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(losses.wasserstein_generator_loss(FAKE), -f[:, 0], rtol=1e-6)


def test_losses_are_per_example():
    for value in (losses.bce_discriminator_loss(REAL, FAKE), losses.least_squares_discriminator_loss(REAL, FAKE),
                  losses.wasserstein_critic_loss(REAL, FAKE), losses.bce_generator_loss(FAKE),
                  losses.least_squares_generator_loss(FAKE), losses.wasserstein_generator_loss(FAKE)):
        assert tuple(value.shape) == (len(REAL),)


def _critic(kind, weights):
    inputs = keras.Input((2, 2, 3))
    flat = keras.layers.Flatten()(inputs)
    if kind == "linear":  # f(x) = w.x -> grad = w everywhere
        out = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(weights))(flat)
    else:  # f(x) = c/2 * |x|^2 -> grad = c x
        out = keras.layers.Lambda(lambda v: 0.5 * weights * tf.reduce_sum(tf.square(v), axis=-1, keepdims=True))(flat)
    return keras.Model(inputs, out)


def test_gradient_penalty_matches_closed_forms():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
    fake = rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
    alpha = rng.uniform(size=(4, 1, 1, 1)).astype(np.float32)
    w = rng.normal(size=(12, 1)).astype(np.float32) * 0.4
    linear = losses.gradient_penalty(_critic("linear", w), real, fake, alpha).numpy()
    np.testing.assert_allclose(linear, np.full(4, (np.linalg.norm(w) - 1) ** 2), rtol=1e-4)
    c = 0.7
    quadratic = losses.gradient_penalty(_critic("quadratic", c), real, fake, alpha).numpy()
    x_hat = (alpha * real + (1 - alpha) * fake).reshape(4, -1).astype(np.float64)
    np.testing.assert_allclose(quadratic, (c * np.linalg.norm(x_hat, axis=1) - 1) ** 2, rtol=1e-4)


def test_gradient_penalty_is_finite_where_the_critic_gradient_is_zero():
    critic = _critic("linear", np.zeros((12, 1), np.float32))
    real = tf.ones((2, 2, 2, 3))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(critic, real, real, tf.fill((2, 1, 1, 1), 0.5))
    grads = tape.gradient(penalty, critic.trainable_variables)
    np.testing.assert_allclose(penalty.numpy(), [1.0, 1.0], rtol=1e-5)
    assert all(np.isfinite(g.numpy()).all() for g in grads)



def test_gradient_penalty_takes_a_plain_function_as_the_critic():
    rng = np.random.default_rng(1)
    real, fake = (rng.normal(size=(3, 2, 2, 3)).astype(np.float32) for _ in range(2))
    w = rng.normal(size=(12,)).astype(np.float32)

    def critic(images):  # f(x) = 2 w.x -> ||grad|| = 2 ||w||
        return 2.0 * tf.reduce_sum(tf.reshape(images, (-1, 12)) * w, axis=1, keepdims=True)

    penalty = losses.gradient_penalty(critic, real, fake, np.full((3, 1, 1, 1), 0.3, np.float32)).numpy()
    np.testing.assert_allclose(penalty, np.full(3, (2 * np.linalg.norm(w) - 1) ** 2), rtol=1e-4)
