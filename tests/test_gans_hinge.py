"""The hinge-loss GAN, the model that shows a new GAN is one module and one registry line."""

import json

import pytest

from keras_anime_gan import cli, create_gan
from keras_anime_gan.errors import ConfigError


def test_the_registry_line_is_all_it_takes(tmp_path):
    gan = create_gan("hinge", 32, 8, width=4, margin=0.5)
    objective = gan.objective
    assert objective.margin == 0.5 and objective.discriminator_loss_minimum() == 0.0
    assert objective.critic_divergence_bound() is None
    with pytest.raises(ConfigError, match="margin: must be > 0"):
        create_gan("hinge", 32, 8, width=4, margin=0.0)
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "hinge", "--margin", "0.5", "--width", "8", "--latent-dim", "8",
                     "--resolution", "32", "--batch-size", "8", "--synthetic-images", "16", "--metrics", "none",
                     "--epochs", "1", "--steps-per-epoch", "2", "--no-jit", "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "hinge" and saved["model_options"]["margin"] == 0.5
    assert json.loads((out / "status.json").read_text())["g_updates"] == 2
