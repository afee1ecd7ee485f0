"""Every model the package trains, by name. A new model is one module with its GAN class (its
`Options` dataclass, `build_networks` and `Objective`) plus one line here; `create_gan`, `train.py` (its flags
appear in `--help` by themselves), `--config` files and resumed runs then know it.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError

MODELS = {  # name -> "module:class"
    "dcgan": "keras_anime_gan.gans.classic:DCGAN",
    "lsgan": "keras_anime_gan.gans.classic:LSGAN",
    "wgan": "keras_anime_gan.gans.classic:WGAN",
    "wgan-gp": "keras_anime_gan.gans.classic:WGANGP",
    "dynamic": "keras_anime_gan.gans.classic:DynamicGAN",
    "hinge": "keras_anime_gan.gans.hinge:HingeGAN",
    "stylegan2-ada": "keras_anime_gan.gans.stylegan2.model:StyleGAN2ADA",
    "lightweight": "keras_anime_gan.gans.lightweight.model:LightweightGAN",
}


def model_names() -> list[str]:
    return list(MODELS)


def import_models() -> None:
    """Import every registered model's module, so that Keras knows their networks' classes (a
    generator.keras names them) before it loads one."""
    for name in MODELS:
        model_class(name)


def model_class(name: str):
    """The GAN class registered as `name`; a ConfigError listing the names for an unknown one."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    module, _, attribute = MODELS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_options(name: str, values: dict | None = None):
    """`name`'s options dataclass filled from `values`, validated: an unknown or misspelled option is
    a ConfigError that lists the valid ones, a bad value one that names it."""
    return model_class(name).Options.from_values(dict(values or {}), model=name)


def checked_options(name: str, resolution: int, values: dict | None = None):
    """`model_options`, checked against `resolution` too (a ConfigError when the model cannot be built
    at it): the one check of a model's options and resolution."""
    cls = model_class(name)
    options = model_options(name, values)
    check = getattr(cls, "check_resolution", None)
    if check is not None:
        try:
            check(resolution, options)
        except ValueError as error:
            details = ", ".join(f"{key} {value}" for key, value in options.values("network").items()
                                if value is not None)
            raise ConfigError(f"resolution {resolution} is not supported by {name}"
                              f"{f' ({details})' if details else ''}: {error}") from None
    return options


def resolved_options(name: str, resolution: int, values: dict | None = None, batch_size: int | None = None):
    """`checked_options` with every value the model derives filled in for the global `batch_size`
    (None: the model's default; `GAN.resolve_options`), for `create_gan` and a run's configuration."""
    cls = model_class(name)
    options = checked_options(name, resolution, values)
    return cls.resolve_options(resolution, options, batch_size or cls.default_batch_size(resolution, options))


def create_gan(name="dcgan", resolution=64, latent_dim=None, *, seed=None, batch_size=None, **options):
    """Any registered GAN with networks that fit it.

    Args:
        name: a registered model (`model_names()`): dcgan, lsgan, wgan, wgan-gp, dynamic, ...
        resolution: image size in pixels.
        latent_dim: width of z (the same as the option `latent_dim`).
        seed: seed of the GAN's random stream.
        batch_size: the global batch it will train with, for the values derived from it (StyleGAN2's
            R1 gamma and EMA half-life); None: the model's default batch.
        **options: the model's options (`model_class(name).Options`), e.g. arch="csc412",
            width=32, label_smoothing=0.1, n_critic=5, ema=0.999.

    Returns:
        The GAN, uncompiled.
    """
    if latent_dim is not None:
        options["latent_dim"] = latent_dim
    cls = model_class(name)
    resolved = resolved_options(name, resolution, options, batch_size)
    return cls.from_options(resolution, resolved, seed=seed, batch_size=batch_size)
