"""The losses module: each loss and penalty against an independent NumPy computation or a closed form."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans import losses
from keras_anime_gan.gans.stylegan2 import augment as A
from keras_anime_gan.gans.stylegan2 import networks as N

REAL = np.array([[2.0], [-1.0], [0.3], [0.0], [-4.0]], np.float32)
FAKE = np.array([[-3.0], [0.5], [1.5], [-0.2], [6.0]], np.float32)
RNG = np.random.default_rng(0)


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


def test_hinge_and_logistic_losses_match_numpy():
    r, f = REAL.astype(np.float64), FAKE.astype(np.float64)
    np.testing.assert_allclose(losses.hinge_discriminator_loss(REAL, FAKE, 0.5),
                               (np.maximum(0, 0.5 - r) + np.maximum(0, 0.5 + f))[:, 0], rtol=1e-6)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    np.testing.assert_allclose(losses.logistic_discriminator_loss(REAL, FAKE), (softplus(f) + softplus(-r))[:, 0],
                               rtol=1e-5)


def linear_discriminator(a):
    """D(x) = <a, x> per sample, logits (B, 1)."""
    return lambda x: tf.reduce_sum(x * a, axis=[1, 2, 3])[:, None]


def test_r1_of_a_linear_discriminator_is_the_squared_norm():
    a = RNG.normal(size=(8, 8, 3)).astype(np.float32)
    x = RNG.uniform(-1, 1, size=(5, 8, 8, 3)).astype(np.float32)
    penalty = losses.r1_penalty(linear_discriminator(a), x).numpy()
    assert penalty.shape == (5,)
    np.testing.assert_allclose(penalty, np.sum(a ** 2), rtol=1e-5)  # the model weights it by gamma / 2
    penalty, logits = losses.r1_penalty(linear_discriminator(a), x, return_logits=True)
    np.testing.assert_allclose(logits.numpy()[:, 0], np.sum(x * a, axis=(1, 2, 3)), rtol=1e-5)


def test_r1_through_a_fixed_linear_augmentation():
    a = RNG.normal(size=(8, 8, 3)).astype(np.float32)
    mix = RNG.normal(size=(3, 3)).astype(np.float32)  # colour matrix: aug(x) = x @ mix^T
    x = RNG.uniform(-1, 1, size=(4, 8, 8, 3)).astype(np.float32)
    d = linear_discriminator(a)
    penalty = losses.r1_penalty(lambda images: d(tf.einsum("bhwj,ij->bhwi", images, mix)), x).numpy()
    np.testing.assert_allclose(penalty, np.sum((a @ mix) ** 2), rtol=1e-4)  # ||A^T a||^2
    # Through the ADA layer at p = 1 with flips and rotations: permutations keep the norm.
    augment = A.AdaptiveAugment("blit", strengths={"xint": 0.0}, seed=0, initial_p=1.0)
    penalty = losses.r1_penalty(lambda images: d(augment(images, training=True)), x).numpy()
    np.testing.assert_allclose(penalty, np.sum(a ** 2), rtol=1e-4)


def test_r1_differentiates_again_with_respect_to_discriminator_weights():
    a = tf.Variable(RNG.normal(size=(4, 4, 3)).astype(np.float32))
    x = RNG.uniform(-1, 1, size=(2, 4, 4, 3)).astype(np.float32)
    augment = A.AdaptiveAugment("bgc", seed=1, initial_p=0.5)
    with tf.GradientTape() as tape:
        augmented_d = lambda images: linear_discriminator(a)(augment(images, training=True))  # noqa: E731
        penalty = tf.reduce_mean(losses.r1_penalty(augmented_d, x))
    grad = tape.gradient(penalty, a)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
    with tf.GradientTape() as tape:
        plain = tf.reduce_mean(losses.r1_penalty(linear_discriminator(a), x))
    np.testing.assert_allclose(tape.gradient(plain, a).numpy(), 2 * a.numpy(), rtol=1e-5)  # d||a||^2/da


def test_path_length_matches_numpy_on_a_linear_generator():
    batch, num_ws, w_dim, size = 3, 4, 5, 6
    matrix = RNG.normal(size=(num_ws, w_dim, size * size * 3)).astype(np.float32)
    synthesis = lambda ws: tf.reshape(tf.einsum("bij,ijk->bk", ws, matrix), [-1, size, size, 3])
    ws = RNG.normal(size=(batch, num_ws, w_dim)).astype(np.float32)
    y = RNG.normal(size=(batch, size, size, 3)).astype(np.float32) / math.sqrt(size * size)
    lengths = losses.path_length(synthesis, ws, noise=y).numpy()
    grads = np.einsum("ijk,bk->bij", matrix, y.reshape(batch, -1))  # d sum(img * y) / d ws
    np.testing.assert_allclose(lengths, np.sqrt((grads ** 2).sum(axis=2).mean(axis=1)), rtol=1e-5)
    # Default noise: N(0, 1) / sqrt(H * W) drawn from the given generator.
    drawn = losses.path_length(synthesis, ws, rng=tf.random.Generator.from_seed(4)).numpy()
    y = tf.random.Generator.from_seed(4).normal([batch, size, size, 3]).numpy() / size
    grads = np.einsum("ijk,bk->bij", matrix, y.reshape(batch, -1))
    np.testing.assert_allclose(drawn, np.sqrt((grads ** 2).sum(axis=2).mean(axis=1)), rtol=1e-5)


def test_path_length_penalty_uses_the_updated_mean():
    lengths = tf.constant([1.0, 2.0, 3.0])
    penalty, new_mean = losses.path_length_penalty(lengths, 0.5)
    assert float(new_mean) == pytest.approx(0.5 + 0.01 * (2.0 - 0.5))
    np.testing.assert_allclose(penalty.numpy(), 2 * (np.array([1.0, 2.0, 3.0]) - 0.515) ** 2, rtol=1e-6)
    _, first = losses.path_length_penalty(lengths, 0.0)
    assert float(first) == pytest.approx(0.02)  # from 0, as NVIDIA starts
    _, global_mean = losses.path_length_penalty(lengths, 0.0, batch_mean=4.0)
    assert float(global_mean) == pytest.approx(0.04)


def test_path_length_through_the_synthesis_network_is_trainable():
    generator = N.StyleGenerator(**N.preset("tiny", 8)["generator"], seed=0)
    z = tf.constant(RNG.normal(size=(2, 64)).astype(np.float32))
    with tf.GradientTape() as tape:
        ws = generator.mapping(z)
        lengths = losses.path_length(lambda w: generator.synthesis(w, noise_mode="random"), ws,
                                rng=tf.random.Generator.from_seed(1))
        penalty, _ = losses.path_length_penalty(lengths, 0.0)
        loss = tf.reduce_mean(penalty)
    grads = tape.gradient(loss, generator.trainable_weights)
    assert lengths.shape == (2,) and (lengths.numpy() > 0).all()
    assert sum(g is not None and np.abs(g.numpy()).sum() > 0 for g in grads) > len(grads) // 2
