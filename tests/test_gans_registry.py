"""The registry and the options dataclasses: names, validation, and the CLI flags they generate."""

import argparse
import dataclasses

import pytest

from keras_anime_gan import create_gan
from keras_anime_gan.cli import add_train_arguments, model_option_flags
from keras_anime_gan.errors import ConfigError
from keras_anime_gan.gans import DCGAN, WGANGP, model_names
from keras_anime_gan.gans import ModelOptions, model_class, model_options, option


def test_the_registry_names_the_family():
    assert model_names()[:5] == ["dcgan", "lsgan", "wgan", "wgan-gp", "dynamic"]
    assert model_class("wgan-gp") is WGANGP and model_class("dcgan") is DCGAN


@pytest.mark.parametrize("bad, message", [
    (dict(name="biggan"), "unknown model 'biggan'; choose from dcgan"),
    (dict(arch="stylegan"), "arch: must be one of dcgan, csc412"),
    (dict(label_smoothing=0.7), "label_smoothing: must be below 0.5"),
    (dict(name="wgan", n_critic=0), "n_critic: must be >= 1"),
    (dict(ema=1.5), "ema: must be < 1"),
    (dict(width=8.5), "width: must be an integer"),
    (dict(widht=8), "'widht' \\(did you mean 'width'\\?\\). Valid options: .*width"),
    (dict(name="dcgan", gp_weight=1.0), "unknown option\\(s\\) for dcgan: 'gp_weight'"),
])
def test_create_gan_refuses_bad_options_by_name(bad, message):
    options = {"name": "dcgan", **bad}
    with pytest.raises(ConfigError, match=message):
        create_gan(resolution=32, latent_dim=8, **{"width": 4, **options})


def test_create_gan_fills_the_defaults_of_each_model():
    kinds = {type(layer).__name__ for layer in create_gan("wgan-gp", 32, 8, width=4).discriminator.layers}
    assert "LayerNormalization" in kinds and "BatchNormalization" not in kinds
    assert model_options("wgan-gp").norm == "layer" and model_options("dcgan").norm == "batch"
    with pytest.raises(ConfigError, match="resolution 33 is not supported by"):
        create_gan("dcgan", 33, 8, width=4)


def test_options_dataclass_checks_types_bounds_and_custom_rules():
    @dataclasses.dataclass
    class Toy(ModelOptions):
        rate: float = option(0.1, "a rate", minimum=0.0, maximum=1.0, exclusive=True)
        count: int = option(2, "a count", minimum=1, check=lambda v: "must be even" if v % 2 else None)
        mode: str = option("a", "a mode", choices=("a", "b"))

    assert Toy.from_values({"rate": 0.5}).rate == 0.5
    for values, message in [({"rate": 1.0}, "rate: must be < 1.0"), ({"count": 3}, "count: must be even"),
                            ({"count": True}, "count: must be an integer"), ({"mode": "c"}, "mode: must be one of")]:
        with pytest.raises(ConfigError, match=message):
            Toy.from_values(values, model="toy")


def test_every_option_of_every_model_is_a_train_flag_in_a_group_of_its_models():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    text = parser.format_help()
    flags = model_option_flags()
    for model in model_names():
        for name in model_class(model).Options.names():
            assert flags[name]["flag"] in text and model in flags[name]["models"]
    assert "options of wgan-gp:" in text and "--gp-weight" in text.split("options of wgan-gp:")[1]
    assert "options of dcgan, lsgan, dynamic:" in text
    assert "wgan-gp: layer" in text  # a default that differs between models says so
    args = parser.parse_args(["--model", "dynamic", "--dynamic-scale", "5", "--d-lr", "0.001", "--one-sided-smoothing"])
    assert vars(args)["model_option__scale"] == 5.0 and vars(args)["model_option__d_learning_rate"] == 0.001
    assert vars(args)["model_option__one_sided"] is True
