"""keras-anime-gan: train, compare, evaluate, explore and serve GANs that draw anime faces.

Importing the package changes nothing in the caller's process: the GAN classes import TensorFlow
when first used (so the converter, `keras_anime_gan.data.convert_folder`, runs without it), and
TensorFlow's start-up settings are the caller's. The command line calls
`quiet_tensorflow_startup()` first; a script may call it too, before TensorFlow is imported.
"""

import os

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("keras-anime-gan")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0.1.0"

_GAN_NAMES = ("GAN", "DCGAN", "LSGAN", "WGAN", "WGANGP", "DynamicGAN", "create_gan")


def quiet_tensorflow_startup() -> None:
    """What the command line does before TensorFlow loads (a no-op once it has):

    - TF_ENABLE_ONEDNN_OPTS=1 unless set: TensorFlow turns its oneDNN CPU kernels on by itself only
      on some Intel CPUs; elsewhere its plain kernels are much slower for these networks (the
      README's benchmark section has the ratios);
    - TensorFlow's C++ start-up lines ("Could not find cuda drivers", oneDNN notices) kept out of
      stderr unless TF_CPP_MIN_LOG_LEVEL is set (see `_tf_logs`).
    """
    from . import _tf_logs

    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    _tf_logs.install()


def __getattr__(name):
    if name in _GAN_NAMES:
        from . import gans

        return getattr(gans, name)
    if name == "load_nvidia_pickle":
        from .nvidia import load_nvidia_pickle

        return load_nvidia_pickle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_GAN_NAMES, "load_nvidia_pickle", "quiet_tensorflow_startup"]
