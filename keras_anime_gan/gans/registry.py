"""Every model the package trains, by name. A new model is one module with its GAN class (its
`Options` dataclass and `build_networks`) plus one line here; `create_gan`, `train.py` (its flags
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
}


def model_names() -> list[str]:
    return list(MODELS)


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


def resolved_options(name: str, resolution: int, values: dict | None = None):
    """`model_options`, checked against `resolution` (a ConfigError when the model cannot be built at
    it) and with every value the model derives filled in (`GAN.resolve_options`): the one check of
    a model's options and resolution, for `create_gan` and for a run's configuration."""
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
    return cls.resolve_options(resolution, options)


def create_gan(name="dcgan", resolution=64, latent_dim=None, *, seed=None, **options):
    """Any registered GAN with networks that fit it.

    Args:
        name: a registered model (`model_names()`): dcgan, lsgan, wgan, wgan-gp, dynamic, ...
        resolution: image size in pixels.
        latent_dim: width of z (the same as the option `latent_dim`).
        seed: seed of the GAN's random stream.
        **options: the model's options (`model_class(name).Options`), e.g. arch="csc412",
            width=32, label_smoothing=0.1, n_critic=5, ema=0.999.

    Returns:
        The GAN, uncompiled.
    """
    if latent_dim is not None:
        options["latent_dim"] = latent_dim
    return model_class(name).from_options(resolution, resolved_options(name, resolution, options), seed=seed)
