"""The hinge-loss GAN, the model that shows a new GAN is one module and one registry line."""

import json

import numpy as np
import pytest

from keras_anime_gan import cli, create_gan
from keras_anime_gan.errors import ConfigError
from keras_anime_gan.gans.hinge import hinge_discriminator_loss, hinge_generator_loss

REAL = np.array([[2.0], [0.5], [-1.0]], np.float32)
FAKE = np.array([[-2.0], [0.3], [1.0]], np.float32)


def test_hinge_losses_match_numpy():
    expected = np.maximum(0, 0.5 - REAL) + np.maximum(0, 0.5 + FAKE)
    np.testing.assert_allclose(hinge_discriminator_loss(REAL, FAKE, 0.5), expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(hinge_generator_loss(FAKE), -FAKE[:, 0], rtol=1e-6)


def test_the_registry_line_is_all_it_takes(tmp_path):
    gan = create_gan("hinge", 32, 8, width=4, margin=0.5)
    assert gan.margin == 0.5 and gan.discriminator_loss_minimum() == 0.0 and gan.critic_divergence_bound() is None
    with pytest.raises(ConfigError, match="margin: must be > 0"):
        create_gan("hinge", 32, 8, width=4, margin=0.0)
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "hinge", "--margin", "0.5", "--width", "8", "--latent-dim", "8",
                     "--resolution", "32", "--batch-size", "8", "--synthetic-images", "16", "--metrics", "none",
                     "--epochs", "1", "--steps-per-epoch", "2", "--no-jit", "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "hinge" and saved["model_options"]["margin"] == 0.5
    assert json.loads((out / "status.json").read_text())["g_updates"] == 2
