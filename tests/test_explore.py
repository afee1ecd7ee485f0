import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from keras_anime_gan import create_gan, explore
from keras_anime_gan.data import synthetic_faces
from keras_anime_gan.errors import UserError
from keras_anime_gan.sampling import latents_for_seed, render
from keras_anime_gan.sampling import latents_for_seeds


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


# ----------------------------------------------------------------------------- StyleGAN generators

STYLE_RES = 16


@pytest.fixture(scope="module")
def style_file(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("style")
    keras.utils.set_random_seed(0)  # create_gan's seed is the GAN's stream, not the initial weights
    gan = create_gan("stylegan2-ada", STYLE_RES, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8)
    # A w_avg away from 0, so that truncation toward it is not truncation toward the origin.
    gan.generator.w_avg.assign(np.linspace(-0.5, 0.5, 8).astype(np.float32))
    path = folder / "generator.keras"
    gan.generator.save(path)
    return path


@pytest.fixture(scope="module")
def style_generator(style_file):
    from keras_anime_gan.loading import load_generator

    generator = load_generator(style_file)  # what the CLI does: custom objects registered, w_avg restored
    assert type(generator).__name__ == "StyleGenerator" and generator.num_ws == 6
    np.testing.assert_allclose(generator.w_avg.numpy(), np.linspace(-0.5, 0.5, 8), atol=1e-6)
    return generator


def _tiles(grid, rows, columns, size=STYLE_RES):
    assert grid.shape == (rows * size, columns * size, 3)
    return grid.reshape(rows, size, columns, size, 3).transpose(0, 2, 1, 3, 4)


def test_style_layers_follow_the_synthesis_network(style_generator):
    # 4 px: conv1 w0, toRGB w1; 8 px: conv0 w1 (shared with the 4 px toRGB), conv1 w2, toRGB w3; 16 px: w3, w4, w5.
    assert explore.style_layers(style_generator) == [4, 8, 8, 16, 16, 16]
    assert explore.crossover_layers(style_generator, "coarse") == [0, 1, 2]
    assert explore.crossover_layers(style_generator, "middle") == [3, 4, 5]
    with pytest.raises(UserError, match="no fine style layers.*coarse 0-2, middle 3-5"):
        explore.crossover_layers(style_generator, "fine")
    with pytest.raises(UserError, match=r"in 0\.\.5"):
        explore.crossover_layers(style_generator, [0, 6])
    with pytest.raises(UserError, match="coarse, middle, fine"):
        explore.crossover_layers(style_generator, "finest")


def test_style_mix_grid_headers_and_crossovers(style_generator, tmp_path):
    rows, columns = (0, 1, 2), (3, 4)
    own = render(style_generator, latents_for_seeds(rows + columns, 8))  # what generate --seeds s writes
    every = _tiles(explore.style_mix(style_generator, str(tmp_path / "all.png"), rows, columns, crossover=range(6)),
                   4, 3)
    assert np.all(every[0, 0] == 255)  # the blank corner
    for j in range(2):
        np.testing.assert_array_equal(every[0, j + 1], own[3 + j])  # top row: the column seeds
    for i in range(3):
        np.testing.assert_array_equal(every[i + 1, 0], own[i])  # left column: the row seeds
        for j in range(2):
            np.testing.assert_array_equal(every[i + 1, j + 1], own[3 + j])  # all layers copied: the column seed
    none = _tiles(explore.style_mix(style_generator, str(tmp_path / "none.png"), rows, columns, crossover=[]), 4, 3)
    coarse = _tiles(explore.style_mix(style_generator, str(tmp_path / "c.png"), rows, columns), 4, 3)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(none[i + 1, j + 1], own[i])  # nothing copied: the row seed
            assert np.abs(coarse[i + 1, j + 1].astype(int) - own[i]).mean() > 5  # coarse styles change it
            assert np.abs(coarse[i + 1, j + 1].astype(int) - own[3 + j]).mean() > 5  # and it is not the column
    assert Image.open(tmp_path / "c.png").size[0] > 3 * STYLE_RES  # a labelled figure
    truncated = _tiles(explore.style_mix(style_generator, str(tmp_path / "t.png"), rows, columns, truncation=0.0), 4, 3)
    np.testing.assert_array_equal(truncated[1, 1], truncated[2, 2])  # psi 0: every w is w_avg


def test_style_truncation_cutoff(style_generator, tmp_path):
    seeds = (0, 1)
    full = _tiles(explore.truncation(style_generator, str(tmp_path / "t.png"), seeds, psis=(0.0, 1.0)), 2, 2)
    np.testing.assert_array_equal(full[0, 0], full[1, 0])  # psi 0, every layer: both seeds give the w_avg face
    np.testing.assert_array_equal(full[0, 1], render(style_generator, latents_for_seeds([0], 8))[0])  # psi 1: none
    cut = _tiles(explore.truncation(style_generator, str(tmp_path / "c.png"), seeds, psis=(0.0,), cutoff=3), 2, 1)
    assert np.abs(cut[0, 0].astype(int) - cut[1, 0]).mean() > 5  # layers 3-5 keep each seed's own w
    ws = style_generator.mapping(latents_for_seeds(seeds, 8)).numpy()
    ws[:, :3] = style_generator.w_avg.numpy()
    expected = explore._synthesize(style_generator, ws)
    np.testing.assert_array_equal(cut[:, 0], expected)
    with pytest.raises(UserError, match=r"cutoff must be an integer in 0\.\.6"):
        explore.truncation(style_generator, str(tmp_path / "x.png"), seeds, cutoff=7)


def test_style_interpolation_in_w(style_generator, tmp_path):
    grid = explore.interpolate(style_generator, str(tmp_path / "w.png"), seeds=(0, 1), steps=3, space="w",
                               gif_path=str(tmp_path / "w.gif"))
    tiles = _tiles(grid, 1, 3)
    own = render(style_generator, latents_for_seeds([0, 1], 8))
    np.testing.assert_array_equal(tiles[0, 0], own[0])  # t = 0
    np.testing.assert_array_equal(tiles[0, 2], own[1])  # t = 1
    ws = style_generator.mapping(latents_for_seeds([0, 1], 8)).numpy()
    np.testing.assert_array_equal(tiles[0, 1], explore._synthesize(style_generator, ws.mean(0, keepdims=True))[0])
    z_path = _tiles(explore.interpolate(style_generator, str(tmp_path / "z.png"), seeds=(0, 1), steps=3), 1, 3)
    assert not np.array_equal(z_path[0, 1], tiles[0, 1])  # slerp in z is another path
    with pytest.raises(UserError, match="linear"):
        explore.interpolate(style_generator, str(tmp_path / "x.png"), seeds=(0, 1), method="slerp", space="w")


def test_classic_generators_refuse_style_operations(generator, tmp_path):
    with pytest.raises(UserError, match=r"style-mix needs a StyleGAN generator \(mapping \+ synthesis\); this "
                                        "generator is a DCGAN"):
        explore.style_mix(generator, str(tmp_path / "s.png"), (0,), (1,))
    with pytest.raises(UserError, match="cutoff needs a StyleGAN generator"):
        explore.truncation(generator, str(tmp_path / "t.png"), (0, 1), cutoff=2)
    with pytest.raises(UserError, match="interpolation in W needs a StyleGAN generator"):
        explore.interpolate(generator, str(tmp_path / "i.png"), (0, 1), space="w")


def test_cli_style_explore(style_file, generator_file, tmp_path, capsys):
    from keras_anime_gan.cli import main

    result = run_cli("explore", style_file, "--kind", "style-mix", "--rows", "0,1,2", "--columns", "3-5",
                     "--crossover", "coarse", "--out", tmp_path / "s.png")  # end to end, in a fresh process
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"written": [str(tmp_path / "s.png")]}
    assert Image.open(tmp_path / "s.png").format == "PNG"
    assert main(["explore", str(style_file), "--kind", "style-mix", "--crossover", "0-1,5",
                 "--out", str(tmp_path / "s2.png")]) == 0
    assert main(["explore", str(style_file), "--kind", "truncation", "--cutoff", "3", "--seeds", "0-1",
                 "--out", str(tmp_path / "t.png")]) == 0
    widths = []
    for psis in ("1", "0,1", "0,0.5,1"):  # one column per psi
        assert main(["explore", str(style_file), "--kind", "truncation", "--psis", psis, "--seeds", "0-1",
                     "--out", str(tmp_path / "p.png")]) == 0
        widths.append(Image.open(tmp_path / "p.png").size[0])
    assert widths[2] - widths[1] == widths[1] - widths[0] > 0
    assert main(["explore", str(style_file), "--kind", "interpolate", "--space", "w", "--seeds", "0-1", "--steps", "2",
                 "--out", str(tmp_path / "i.png")]) == 0
    assert Image.open(tmp_path / "i.gif").n_frames == 2
    capsys.readouterr()
    for argv, message in [
        ([str(style_file), "--kind", "style-mix", "--crossover", "fine"], "no fine style layers"),
        ([str(style_file), "--kind", "style-mix", "--crossover", "top"], "use coarse, middle, fine or layer"),
        ([str(style_file), "--kind", "style-mix", "--rows", "a-b"], "--rows 'a-b' names no seeds"),
        ([str(style_file), "--kind", "z-grid", "--indices", "abc"], "--indices 'abc' names no indices"),
        ([str(style_file), "--kind", "truncation", "--indices", "1"], "--indices is an option of --kind z-grid"),
        ([str(style_file), "--kind", "truncation", "--cutoff", "9"], "cutoff must be an integer in 0..6"),
        ([str(style_file), "--kind", "interpolate", "--cutoff", "2"], "--cutoff is an option of --kind truncation"),
        ([str(style_file), "--kind", "truncation", "--psis", "0,x"], "--psis '0,x': give comma-separated numbers"),
        ([str(style_file), "--kind", "style-mix", "--psis", "0,1"], "--psis is an option of --kind truncation"),
        ([str(style_file), "--kind", "interpolate", "--space", "w", "--method", "slerp"],
         "interpolation in W is linear"),
        ([str(generator_file), "--kind", "style-mix"], "style-mix needs a StyleGAN generator"),
        ([str(generator_file), "--kind", "interpolate", "--space", "w"], "interpolation in W needs a StyleGAN"),
        ([str(generator_file), "--kind", "truncation", "--cutoff", "2"], "cutoff needs a StyleGAN generator"),
    ]:
        assert main(["explore", *argv, "--out", str(tmp_path / "x.png")]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "x.png").exists()
