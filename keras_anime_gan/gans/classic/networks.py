"""Generators and discriminators.

`arch="dcgan"`: Radford et al. and the PyTorch DCGAN tutorial: transposed convolutions with
BatchNorm + ReLU and a tanh output; strided convolutions with LeakyReLU(0.2), normalisation on all
but the first layer; weights N(0, 0.02). `arch="upsample"` (generator) and `arch="dropout"`
(discriminator): the CSC412 report's variant, Dense -> 8x8x256 -> UpSampling2D + Conv2D, and
Conv + LeakyReLU + Dropout + ZeroPadding, following its layer tables (at 64 px the shapes match
them exactly). Discriminators return logits, float32 even under mixed precision.
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import Conv2DTranspose

GENERATOR_ARCHS = ("dcgan", "upsample")
DISCRIMINATOR_ARCHS = ("dcgan", "dropout")
NORMS = ("batch", "layer", "instance", None)


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _gamma_init():
    return keras.initializers.RandomNormal(1.0, 0.02)


def base_size(resolution: int, arch: str = "dcgan") -> int:
    """Spatial size where the generator starts and the discriminator ends.

    dcgan: 4 for powers of two, 6 for 96 (6 -> 12 -> ... -> 96); upsample: resolution / 8.
    """
    if not isinstance(resolution, int) or resolution < 16:
        raise ValueError(f"resolution must be an integer >= 16, got {resolution!r}")
    if arch in ("upsample", "dropout"):
        if resolution % 8 or resolution // 8 < 2:
            raise ValueError(f"arch={arch!r} needs a resolution divisible by 8 (e.g. 32, 64, 96, 128), got {resolution}")
        return resolution // 8
    for start in (4, 6):
        size = start
        while size < resolution:
            size *= 2
        if size == resolution:
            return start
    raise ValueError(
        f"arch='dcgan' supports resolutions 4*2^k or 6*2^k such as 32, 64, 96 and 128, got {resolution}"
    )


def _norm(kind):
    if kind == "batch":
        # Synchronized: statistics over the global batch when several replicas share a batch. On one
        # replica Keras would still run the (no-op) all-reduce path, which is slower: off there.
        import tensorflow as tf

        synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=_gamma_init(),
                                         synchronized=synchronized)
    if kind == "layer":
        return layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-5)  # one group per channel
    if kind is None or kind == "none":
        return None
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def build_generator(resolution: int = 64, latent_dim: int = 100, width: int = 64, arch: str = "dcgan") -> keras.Model:
    """latent (batch, latent_dim) -> images (batch, resolution, resolution, 3) in [-1, 1]."""
    if arch not in GENERATOR_ARCHS:
        raise ValueError(f"generator arch must be one of {GENERATOR_ARCHS}, got {arch!r}")
    if latent_dim < 1 or width < 1:
        raise ValueError(f"latent_dim and width must be >= 1, got {latent_dim}, {width}")
    start = base_size(resolution, arch)
    latent = keras.Input((latent_dim,), name="latent")
    if arch == "dcgan":
        doublings = 0
        while start * 2**doublings < resolution:
            doublings += 1
        channels = width * min(2 ** (doublings - 1), 8)
        # Dense to start x start is the tutorial's first ConvTranspose(kernel=start, stride 1) on a 1x1 input.
        x = layers.Dense(start * start * channels, use_bias=False, kernel_initializer=_init())(latent)
        x = layers.Reshape((start, start, channels))(x)
        x = layers.ReLU()(_norm("batch")(x))
        for step in range(doublings - 1):
            channels = width * min(2 ** (doublings - 2 - step), 8)
            x = Conv2DTranspose(channels, 4, 2, padding="same", use_bias=False, kernel_initializer=_init())(x)
            x = layers.ReLU()(_norm("batch")(x))
        x = Conv2DTranspose(3, 4, 2, padding="same", kernel_initializer=_init())(x)
    else:
        x = layers.Dense(start * start * width * 4, kernel_initializer=_init())(latent)
        x = layers.Reshape((start, start, width * 4))(x)
        x = layers.Activation("relu")(_norm("batch")(x))
        for channels in (width * 2, width, width // 2):
            x = layers.UpSampling2D()(x)
            x = layers.Conv2D(channels, 5, padding="same", kernel_initializer=_init())(x)
            x = layers.Activation("relu")(_norm("batch")(x))
        x = layers.Conv2D(3, 5, padding="same", kernel_initializer=_init())(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(latent, images, name=f"generator_{arch}_{resolution}")


def build_discriminator(
    resolution: int = 64, width: int = 64, arch: str = "dcgan", norm: str | None = "batch", dropout: float = 0.25
) -> keras.Model:
    """images (batch, resolution, resolution, 3) in [-1, 1] -> logits (batch, 1)."""
    if arch not in DISCRIMINATOR_ARCHS:
        raise ValueError(f"discriminator arch must be one of {DISCRIMINATOR_ARCHS}, got {arch!r}")
    _norm(norm)  # validate early
    start = base_size(resolution, arch)
    images = keras.Input((resolution, resolution, 3), name="images")
    if arch == "dcgan":
        x = layers.Conv2D(width, 4, 2, padding="same", kernel_initializer=_init())(images)
        x = layers.LeakyReLU(0.2)(x)
        size, channels = resolution // 2, width
        while size > start:
            channels = min(channels * 2, width * 8)
            x = layers.Conv2D(channels, 4, 2, padding="same", use_bias=norm is None, kernel_initializer=_init())(x)
            normalisation = _norm(norm)
            x = layers.LeakyReLU(0.2)(normalisation(x) if normalisation else x)
            size //= 2
    else:
        x = images
        for index, channels in enumerate((width // 2, width, width * 2, width * 4)):
            x = layers.Conv2D(channels, 5, 2, padding="same", kernel_initializer=_init())(x)
            if index == 1:
                x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
            if index >= 1:
                normalisation = _norm(norm)
                x = normalisation(x) if normalisation else x
            x = layers.LeakyReLU(0.2)(x)
            x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(1, dtype="float32", kernel_initializer=_init(), name="logits")(x)
    return keras.Model(images, logits, name=f"discriminator_{arch}_{resolution}")
