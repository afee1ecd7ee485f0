"""GAN losses as pure, paired functions (the TF-GAN losses module's shape).

Each discriminator loss takes the logits of a real and a fake batch and each generator loss the
logits of a fake batch, shape (batch, 1), and returns per-example losses of shape (batch,): the
training loop averages them over the global batch (`tf.nn.compute_average_loss`), so they add up
correctly across replicas. Penalties return per-example values too and leave their weight to the
caller. Tests check each against NumPy.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def bce_discriminator_loss(real_logits, fake_logits, real_target=1.0, fake_target=0.0):
    """Binary cross-entropy on logits, averaged over the real and the fake half.

    L_D = 1/2 [CE(D(x), real_target) + CE(D(G(z)), fake_target)]; fuzzy labels (0.9 / 0.1) move
    the targets toward each other.

    Args:
        real_logits: D(x), (batch, 1).
        fake_logits: D(G(z)), (batch, 1).
        real_target: target probability of the real batch.
        fake_target: target probability of the fake batch.

    Returns:
        (batch,) per-example losses.
    """
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(real_logits), real_target), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(fake_logits), fake_target), fake_logits)
    return 0.5 * (tf.reduce_mean(real, axis=-1) + tf.reduce_mean(fake, axis=-1))


def bce_generator_loss(fake_logits):
    """Non-saturating generator loss, CE(D(G(z)), 1) = softplus(-D(G(z))).

    Args:
        fake_logits: D(G(z)), (batch, 1).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(tf.nn.softplus(-fake_logits), axis=-1)


def least_squares_discriminator_loss(real_logits, fake_logits, real_target=1.0, fake_target=0.0):
    """Mao et al.: 1/2 (D(x) - b)^2 + 1/2 (D(G(z)) - a)^2 with b = real_target, a = fake_target.

    Args:
        real_logits: D(x), (batch, 1), no sigmoid.
        fake_logits: D(G(z)), (batch, 1).
        real_target: b (1 in the paper's 0-1 coding).
        fake_target: a (0).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(0.5 * tf.square(real_logits - real_target) + 0.5 * tf.square(fake_logits - fake_target),
                          axis=-1)


def least_squares_generator_loss(fake_logits):
    """Mao et al.: 1/2 (D(G(z)) - 1)^2.

    Args:
        fake_logits: D(G(z)), (batch, 1).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(0.5 * tf.square(fake_logits - 1.0), axis=-1)


def wasserstein_critic_loss(real_logits, fake_logits):
    """f(G(z)) - f(x): minimising it makes the critic widen the gap between real and fake scores.

    Args:
        real_logits: f(x), (batch, 1).
        fake_logits: f(G(z)), (batch, 1).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(fake_logits - real_logits, axis=-1)


def wasserstein_generator_loss(fake_logits):
    """-f(G(z)).

    Args:
        fake_logits: f(G(z)), (batch, 1).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(-fake_logits, axis=-1)


def gradient_penalty(critic, real, fake, alpha):
    """Gulrajani et al.: (||grad_x f(x_hat)||_2 - 1)^2 at x_hat = alpha * real + (1 - alpha) * fake.

    The norm is sqrt(sum g^2 + 1e-12), so the gradient stays finite where the critic's is zero.

    Args:
        critic: images -> scores: a Keras model (called in training mode) or a function such as
            the GAN's `run_discriminator`.
        real: real images (batch, ...).
        fake: generated images, the same shape.
        alpha: interpolation weights broadcastable to the images, one per example (batch, 1, 1, 1).

    Returns:
        (batch,) per-example penalties, unweighted.
    """
    real, fake, alpha = (tf.convert_to_tensor(value, tf.float32) for value in (real, fake, alpha))
    interpolates = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates, training=True) if isinstance(critic, keras.layers.Layer) else critic(interpolates)
    gradients = tf.cast(tape.gradient(scores, interpolates), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=list(range(1, len(gradients.shape)))) + 1e-12)
    return tf.square(norms - 1.0)
