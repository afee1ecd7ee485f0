"""Every loss and penalty of the family, as pure, paired functions (the TF-GAN losses module's shape).

Each discriminator loss takes the logits of a real and a fake batch and each generator loss the
logits of a fake batch, shape (batch, 1), and returns per-example losses of shape (batch,): the
training loop averages them over the global batch (`tf.nn.compute_average_loss`), so they add up
correctly across replicas. Penalties return per-example values too and leave their weight to the
caller. Tests check each against NumPy. Objectives (`objective.py`) combine them.

- DCGAN (and StyleGAN2's generator): `bce_discriminator_loss`, `bce_generator_loss`;
- StyleGAN2: `logistic_discriminator_loss`, `r1_penalty`, `path_length` / `path_length_penalty`;
- LSGAN: `least_squares_*`; WGAN: `wasserstein_*`, `gradient_penalty`; hinge:
  `hinge_discriminator_loss` with `wasserstein_generator_loss`.

The penalties work inside `tf.function` and under an outer `GradientTape` (they are differentiated
again with respect to the network weights).
"""

from __future__ import annotations

import math

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
    """Non-saturating generator loss, CE(D(G(z)), 1) = softplus(-D(G(z))); StyleGAN2's too.

    Args:
        fake_logits: D(G(z)), (batch, 1).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(tf.nn.softplus(-fake_logits), axis=-1)


def logistic_discriminator_loss(real_logits, fake_logits):
    """StyleGAN2's non-saturating logistic loss: softplus(D(G(z))) + softplus(-D(x)) (twice the BCE
    loss with targets 1 and 0).

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits), axis=-1)


def hinge_discriminator_loss(real_logits, fake_logits, margin=1.0):
    """relu(margin - D(x)) + relu(margin + D(G(z))) (Lim & Ye); its generator loss is
    `wasserstein_generator_loss`.

    Returns:
        (batch,) per-example losses.
    """
    return tf.reduce_mean(tf.nn.relu(margin - real_logits) + tf.nn.relu(margin + fake_logits), axis=-1)


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

def r1_penalty(discriminator_fn, real_images, return_logits=False):
    """R1 (Mescheder et al. 2018): the per-example squared gradient norm of D's logits with respect to the real images.

    StyleGAN2 adds gamma / 2 times it every 16 discriminator steps, weighted by 16. The gradient is
    taken with respect to the images before augmentation, so `discriminator_fn` may augment.

    Args:
        discriminator_fn: images (B, H, W, C) -> logits (B, 1) or (B,); may augment first.
        real_images: (B, H, W, C) float tensor (the images before augmentation).
        return_logits: also return the logits (e.g. for ADA's sign statistics).
    Returns:
        penalty (B,) float32 = sum over pixels of (dD/dx)^2; the caller multiplies by gamma / 2 (and
        the lazy interval). With return_logits: (penalty, logits float32).
    """
    real_images = tf.convert_to_tensor(real_images)
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        logits = tf.cast(discriminator_fn(real_images), tf.float32)
        total = tf.reduce_sum(logits)
    gradients = tf.cast(tape.gradient(total, real_images), tf.float32)
    penalty = tf.reduce_sum(tf.square(gradients), axis=list(range(1, gradients.shape.rank)))
    return (penalty, logits) if return_logits else penalty


def path_length(synthesis_fn, ws, noise=None, rng=None, return_images=False):
    """Per-example path lengths (Karras et al. 2020) L = sqrt(mean_i sum_j (d sum(img * y) / d ws[:, i, j])^2)
    for y ~ N(0, 1) / sqrt(H * W): the length of the synthesis network's Jacobian-vector product.

    Args:
        synthesis_fn: ws (B, num_ws, w_dim) -> images (B, H, W, C).
        ws: (B, num_ws, w_dim).
        noise: y, shaped like the images; None draws N(0, 1) / sqrt(H * W) (from `rng`, a
            tf.random.Generator, when given).
        return_images: also return the images.
    Returns:
        lengths (B,) float32 (and the images when asked).
    """
    ws = tf.convert_to_tensor(ws)
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = tf.cast(synthesis_fn(ws), tf.float32)
        if noise is None:
            shape = tf.shape(images)
            draw = rng.normal(shape) if rng is not None else tf.random.normal(shape)
            noise = draw / math.sqrt(images.shape[1] * images.shape[2])
        total = tf.reduce_sum(images * tf.cast(noise, tf.float32))
    gradients = tf.cast(tape.gradient(total, ws), tf.float32)  # (B, num_ws, w_dim)
    lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=2), axis=1))
    return (lengths, images) if return_images else lengths


def path_length_penalty(lengths, mean, decay=0.01, weight=2.0, batch_mean=None):
    """Penalty weight * (L - a')^2 against the updated running mean a' = a + decay * (mean(L) - a).

    Args:
        lengths: (B,) from `path_length`.
        mean: the running mean a (a scalar; 0 at the start of training).
        decay: running-mean rate (0.01).
        weight: NVIDIA's pl_weight (2).
        batch_mean: mean(L) to use instead of the local batch's (e.g. the global mean across replicas).
    Returns:
        (penalty (B,) float32, new_mean scalar float32, no gradient); store new_mean in the variable.
        NVIDIA compares L with the updated mean, as here.
    """
    lengths = tf.cast(lengths, tf.float32)
    mean = tf.cast(mean, tf.float32)
    batch_mean = tf.reduce_mean(lengths) if batch_mean is None else tf.cast(batch_mean, tf.float32)
    new_mean = tf.stop_gradient(mean + decay * (batch_mean - mean))
    return weight * tf.square(lengths - new_mean), new_mean
