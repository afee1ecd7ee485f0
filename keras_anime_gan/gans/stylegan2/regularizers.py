"""StyleGAN2 regularizers as pure functions (the caller weights them and applies lazy intervals).

- R1 (Mescheder et al. 2018): ||grad_x D(x)||^2 on real images; StyleGAN2 adds gamma / 2 times it
  every 16 discriminator steps, weighted by 16. The gradient is taken with respect to the images
  before augmentation, so `discriminator_fn` may include the (differentiable) ADA layer.
- Path length (Karras et al. 2020): for y ~ N(0, 1) / sqrt(H * W), the length of the Jacobian-vector
  product J^T y of the synthesis network, L = sqrt(mean over the ws of sum over w_dim of
  (d sum(img * y) / d ws)^2); the penalty pulls L toward its running mean a.

All work inside `tf.function` and under an outer `GradientTape` (the penalties are differentiated
again with respect to the network weights).
"""

from __future__ import annotations

import math

import tensorflow as tf


def r1_penalty(discriminator_fn, real_images, return_logits=False):
    """Per-example squared gradient norm of D's logits with respect to the real images.

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
    """Per-example path lengths L = sqrt(mean_i sum_j (d sum(img * y) / d ws[:, i, j])^2).

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
