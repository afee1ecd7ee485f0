"""Loading a generator: a GAN, a Keras model, a run folder, a `.keras` file or an NVIDIA StyleGAN2-ADA
snapshot (`.pkl`, its G_ema, read without running its code) in, a float32 generator out. The one place `generate`, `explore`, `evaluate`, `export` and the NVIDIA import read
a generator from; a generator trained in mixed precision comes back rebuilt in float32
(`precision.float32_model`).

A run folder gives its generator.keras, or, when that file is missing or damaged (a run stopped
while writing it, or before its end), the EMA generator of its newest good checkpoint.
"""

from __future__ import annotations

import os
import sys

import keras

from .errors import UserError
from .precision import float32_model

GENERATOR_FILE = "generator.keras"
BEST_GENERATOR_FILE = "best_generator.keras"  # the epoch with the best metric (callbacks.BestGenerator)


def load_generator(source):
    """A float32 generator from a GAN (its EMA generator), a Keras model, a run folder, a .keras file
    or an NVIDIA snapshot (its G_ema); a UserError that says what to do for anything else."""
    from .gans import GAN

    if isinstance(source, GAN):
        return float32_model(source.ema_generator)
    if isinstance(source, keras.Model):
        return float32_model(source)
    path = os.fspath(source)
    if os.path.isdir(path):
        return _from_run_folder(path)
    if not os.path.exists(path):
        raise UserError(f"generator {path!r} does not exist")
    if path.endswith(".pkl"):
        from .nvidia import load_nvidia_pickle

        return float32_model(load_nvidia_pickle(path).ema_generator)
    if not path.endswith(".keras"):
        raise UserError(f"{path!r} is not a .keras file, an NVIDIA .pkl snapshot or a run folder")
    return float32_model(load_keras_file(path))


def load_keras_file(path):
    """`keras.models.load_model(path)` with one clear UserError for a missing, empty or damaged file.
    Every registered model's classes are registered with Keras first (their modules imported)."""
    from .gans.registry import import_models

    import_models()
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"{path} is empty (0 bytes): it was being written when its process stopped")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # a truncated zip, a broken config: Keras raises many kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{path} is damaged ({size} bytes; Keras says: {first[:200]})") from None


def _from_run_folder(run):
    candidate = os.path.join(run, GENERATOR_FILE)
    problem = f"holds no {GENERATOR_FILE}"
    if os.path.exists(candidate):
        try:
            return float32_model(load_keras_file(candidate))
        except UserError as error:
            problem = str(error).replace(candidate, GENERATOR_FILE, 1)
    found = generator_from_checkpoint(run)
    if found is None:
        raise UserError(f"{run} {problem}, and no checkpoint to take the generator from "
                        "(is it a run folder? a run writes generator.keras when it ends)")
    generator, name = found
    print(f"note: {run} {problem}; using the generator of its checkpoint {name}", file=sys.stderr, flush=True)
    return generator


def gan_from_run(run):
    """(the run folder `run`'s GAN holding its newest good checkpoint's weights (checksums verified),
    checkpoint name), or None when it has no config or no good checkpoint."""
    from .checkpoints import check_format, latest_checkpoint, load_gan_weights
    from .config import saved_config
    from .gans import create_gan

    config = saved_config(run)
    found = latest_checkpoint(os.path.join(run, "checkpoints"), verify=True) if config else None
    if found is None:
        return None
    check_format(run, found[0])
    gan = create_gan(config.model, config.resolution, seed=config.seed, batch_size=config.batch_size,
                     **config.model_options)
    gan.compile()  # the checkpoint's weights file holds the optimizers' variables too
    load_gan_weights(gan, os.path.join(found[0], "gan.weights.h5"))
    return gan, os.path.basename(found[0])


def generator_from_checkpoint(run):
    """(float32 EMA generator, checkpoint name) of the newest good checkpoint of the run folder
    `run`, or None when it has none."""
    found = gan_from_run(run)
    return None if found is None else (float32_model(found[0].ema_generator), found[1])
