"""keras-anime-gan: train, compare, evaluate, explore and serve GANs that draw anime faces.

The GAN classes import TensorFlow; they load on first use so `keras_anime_gan.data`'s converter
workers start without it.
"""

__version__ = "0.1.0"

_GAN_NAMES = ("GAN", "DCGAN", "LSGAN", "WGAN", "WGANGP", "DynamicGAN", "create_gan")


def __getattr__(name):
    if name in _GAN_NAMES:
        from . import gans

        return getattr(gans, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_GAN_NAMES)
