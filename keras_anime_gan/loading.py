"""Loading a generator: a GAN, a Keras model, a run folder or a `.keras` file in, a float32
generator out. The one place `generate`, `explore`, `evaluate`, `export` and the NVIDIA import read
a generator from; a generator trained in mixed precision comes back rebuilt in float32
(`precision.float32_model`).
"""

from __future__ import annotations

import os

import keras

from .errors import UserError
from .precision import float32_model

GENERATOR_FILE = "generator.keras"


def load_generator(source):
    """A float32 generator from a GAN (its EMA generator), a Keras model, a run folder (its
    generator.keras) or a .keras file."""
    from .gans import GAN
    from .gans.stylegan2 import networks  # noqa: F401  (registers StyleGenerator for loading)

    if isinstance(source, GAN):
        return float32_model(source.ema_generator)
    if isinstance(source, keras.Model):
        return float32_model(source)
    path = os.fspath(source)
    if os.path.isdir(path):
        candidate = os.path.join(path, GENERATOR_FILE)
        if not os.path.exists(candidate):
            raise UserError(f"{path} holds no {GENERATOR_FILE} (is it a finished run folder?)")
        path = candidate
    if not os.path.exists(path):
        raise UserError(f"generator {path!r} does not exist")
    if not path.endswith(".keras"):
        raise UserError(f"{path!r} is not a .keras file or a run folder")
    return float32_model(keras.models.load_model(path, compile=False))
