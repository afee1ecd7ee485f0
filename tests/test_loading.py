"""Loading a generator from anything a user points at, and what happens when a file is damaged."""

import json

import numpy as np
import pytest

from conftest import run_cli, tiny_config
from keras_anime_gan.errors import UserError
from keras_anime_gan.loading import generator_from_checkpoint, load_generator
from keras_anime_gan.training import train


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("loading") / "run"
    train(tiny_config(out, epochs=1, metrics="none", ema=0.9))
    return out


def test_a_run_folder_gives_its_generator_keras(run_folder):
    latents = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    from_file = load_generator(run_folder)
    from_checkpoint, name = generator_from_checkpoint(run_folder)
    assert name == "epoch-0001"
    np.testing.assert_allclose(from_file(latents), from_checkpoint(latents), atol=1e-5)  # the EMA weights, both


def test_an_empty_or_damaged_generator_keras_falls_back_to_the_checkpoint(run_folder, tmp_path, capsys):
    import shutil

    for damage in (b"", b"PK\x03\x04 cut short"):
        copy = tmp_path / f"copy{len(damage)}"
        shutil.copytree(run_folder, copy)
        (copy / "generator.keras").write_bytes(damage)
        generator = load_generator(copy)
        note = capsys.readouterr().err
        assert "using the generator of its checkpoint epoch-0001" in note
        assert ("is empty (0 bytes)" if not damage else "is damaged") in note
        assert generator(np.zeros((1, 16), np.float32)).shape == (1, 32, 32, 3)
    result = run_cli("generate", copy, "--seeds", "0", "--out", tmp_path / "images", "--quiet")
    assert json.loads(result.stdout.strip().splitlines()[-1])["images"] == 1


def test_nothing_to_load_is_one_clear_error(run_folder, tmp_path):
    (tmp_path / "empty.keras").write_bytes(b"")
    with pytest.raises(UserError, match="empty.keras is empty \\(0 bytes\\)"):
        load_generator(tmp_path / "empty.keras")
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    with pytest.raises(UserError, match="holds no generator.keras, and no checkpoint"):
        load_generator(folder)
    with pytest.raises(UserError, match="does not exist"):
        load_generator(tmp_path / "missing.keras")
    result = run_cli("generate", tmp_path / "empty.keras", "--out", tmp_path / "x", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "is empty (0 bytes)" in result.stderr
