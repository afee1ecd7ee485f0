"""keras-anime-gan: train, compare, evaluate, explore and serve GANs that draw anime faces.

Importing the package imports no TensorFlow (the GAN classes load it when first used, so the
converter, `keras_anime_gan.data.convert_folder`, runs without it) and changes one thing: when it
comes before TensorFlow and TF_ENABLE_ONEDNN_OPTS is unset, it sets that variable to 1, so scripts get
TensorFlow's fast oneDNN CPU kernels on every CPU, as the command line does (`onednn`;
`TF_ENABLE_ONEDNN_OPTS=0` keeps the plain kernels). TensorFlow's start-up lines stay the caller's:
the command line calls `quiet_tensorflow_startup()` first; a script may call it too.
"""

from . import onednn

onednn.default_on()

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("keras-anime-gan")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0.1.0"

_GAN_NAMES = ("GAN", "DCGAN", "LSGAN", "WGAN", "WGANGP", "DynamicGAN", "create_gan")


def quiet_tensorflow_startup() -> None:
    """What the command line does before TensorFlow loads (a no-op once it has): TensorFlow's C++
    start-up lines ("Could not find cuda drivers", oneDNN notices) kept out of stderr unless
    TF_CPP_MIN_LOG_LEVEL is set (see `_tf_logs`). oneDNN's default is set by importing the package."""
    from . import _tf_logs

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
