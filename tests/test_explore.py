import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from keras_anime_gan import create_gan, explore
from keras_anime_gan.data import synthetic_faces
from keras_anime_gan.gans import latents_for_seed, render


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    gan = create_gan("dcgan", 32, 100, width=8, seed=0)
    path = folder / "generator.keras"
    gan.generator.save(path)
    return path


@pytest.fixture(scope="module")
def generator(generator_file):
    import keras

    return keras.models.load_model(generator_file)


def test_z_grid_changes_one_coordinate_per_row(generator, tmp_path):
    grid = explore.z_grid(generator, str(tmp_path / "z.png"), seed=3)
    assert grid.shape == (10 * 32, 7 * 32, 3)  # rows z[0], z[10], ..., z[90]; K = -3 ... 3
    tiles = grid.reshape(10, 32, 7, 32, 3).transpose(0, 2, 1, 3, 4)
    base = render(generator, latents_for_seed(1, 100, 3))[0]
    for row in range(10):
        np.testing.assert_array_equal(tiles[row, 4], base)  # K = 1 leaves z unchanged
        assert not np.array_equal(tiles[row, 0], tiles[row, 6])
    assert Image.open(tmp_path / "z.png").size[0] > 7 * 32  # a labelled figure around the grid


def test_slerp_keeps_the_norm_scale_and_hits_the_ends():
    a, b = latents_for_seed(2, 100, 0)
    np.testing.assert_allclose(explore.slerp(a, b, 0.0), a, atol=1e-5)
    np.testing.assert_allclose(explore.slerp(a, b, 1.0), b, atol=1e-5)
    middle_slerp, middle_linear = explore.slerp(a, b, 0.5), 0.5 * (a + b)
    assert np.linalg.norm(middle_slerp) > np.linalg.norm(middle_linear)  # no dip toward the origin


def test_interpolate_truncation_and_neighbours(generator, tmp_path):
    grid = explore.interpolate(generator, str(tmp_path / "i.png"), seeds=(0, 1, 2), steps=5, gif_path=str(tmp_path / "i.gif"))
    assert grid.shape == (2 * 32, 5 * 32, 3) and Image.open(tmp_path / "i.gif").n_frames == 1 + 2 * 4
    grid = explore.truncation(generator, str(tmp_path / "t.png"), seeds=(0, 1), psis=(0.0, 1.0))
    tiles = grid.reshape(2, 32, 2, 32, 3).transpose(0, 2, 1, 3, 4)
    np.testing.assert_array_equal(tiles[0, 0], tiles[1, 0])  # psi 0: every seed gives the mean face
    real = synthetic_faces(30, 32, seed=0)
    samples = real[[4, 17]]
    np.testing.assert_array_equal(explore.nearest_real(samples, real, k=1)[:, 0], [4, 17])
    grid = explore.neighbours(generator, real, str(tmp_path / "n.png"), num_samples=3, k=4)
    assert grid.shape == (3 * 32, 5 * 32, 3)


def test_cli_generate_evaluate_and_explore(generator_file, faces_dir, tmp_path):
    import keras

    out = tmp_path / "pngs"
    run_cli("generate", generator_file, "--seeds", "3-5,9", "--out", out)
    names = sorted(path.name for path in out.iterdir())
    assert names == ["seed0003.png", "seed0004.png", "seed0005.png", "seed0009.png"]
    expected = render(keras.models.load_model(generator_file), latents_for_seed(1, 100, 9))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "seed0009.png")), expected)  # seed -> same image

    result = run_cli("evaluate", generator_file, "--real", faces_dir, "--metrics", "swd", "--num-images", "32")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["metrics"] == ["swd32"] and record["results"]["swd"] > 0
    logged = [json.loads(line) for line in (generator_file.parent / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["results"] == record["results"]
    missing = run_cli("evaluate", generator_file, "--real", faces_dir, "--metrics", "fid", "--num-images", "8",
                      check=False, env={"KERAS_HOME": str(tmp_path)})
    assert missing.returncode == 2 and "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in missing.stderr

    run_cli("explore", generator_file, "--kind", "interpolate", "--seeds", "0-2", "--out", tmp_path / "i.png")
    assert Image.open(tmp_path / "i.png").format == "PNG" and Image.open(tmp_path / "i.gif").n_frames == 1 + 2 * 7
    run_cli("explore", generator_file, "--kind", "neighbours", "--real", faces_dir, "--num-real", "40", "--out", tmp_path / "n.png")
    bad = run_cli("explore", generator_file, "--kind", "z-grid", "--indices", "500", "--out", tmp_path / "x.png", check=False)
    assert bad.returncode == 2 and "z indices" in bad.stderr
