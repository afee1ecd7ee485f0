"""keras-anime-gan: train, compare, evaluate, explore and serve GANs that draw anime faces.

The GAN classes import TensorFlow; they load on first use, so the converter
(`keras_anime_gan.data.convert_folder`) runs without it.
"""

import os

# TensorFlow turns its oneDNN CPU kernels on by itself only on some Intel CPUs; elsewhere its plain
# kernels are much slower for these networks (the README's benchmark section has the ratios). Set
# before TensorFlow loads; a user's own TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from . import _tf_logs  # noqa: E402

_tf_logs.install()  # TensorFlow's C++ start-up lines stay out of the output (TF_CPP_MIN_LOG_LEVEL=0 shows them)

__version__ = "0.1.0"

_GAN_NAMES = ("GAN", "DCGAN", "LSGAN", "WGAN", "WGANGP", "DynamicGAN", "create_gan")


def __getattr__(name):
    if name in _GAN_NAMES:
        from . import gans

        return getattr(gans, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_GAN_NAMES)
