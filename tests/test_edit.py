"""keras_anime_gan.edit: SeFa and GANSpace against independent NumPy computations, the settings of one
picture, projection of generated faces (a known answer), and the command lines around them."""

import json
import re

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli_in_process as run_cli
from keras_anime_gan import create_gan, edit
from keras_anime_gan.errors import UserError
from keras_anime_gan.nvidia.weights import generator_state
from keras_anime_gan.sampling import latents_for_seed, latents_for_seeds

RES = 32


@pytest.fixture(scope="module")
def style_gan():
    keras.utils.set_random_seed(0)  # the weights too: the projection checks depend on the landscape they make
    return create_gan("stylegan2-ada", RES, preset="tiny", seed=0, channel_max=16, z_dim=16, w_dim=16)


@pytest.fixture(scope="module")
def style(style_gan):
    return edit.networks(style_gan)[0]


@pytest.fixture(scope="module")
def dcgan():
    keras.utils.set_random_seed(0)
    return create_gan("dcgan", RES, 16, width=8, seed=0)


@pytest.fixture(scope="module")
def classic(dcgan):
    return edit.networks(dcgan)[0]


@pytest.fixture(scope="module")
def style_file(style, tmp_path_factory):
    path = tmp_path_factory.mktemp("sg") / "generator.keras"
    style.save(path)
    return path


def _nvidia_style_layer(key):
    """NVIDIA's own indexing of ws by a synthesis layer's state-dict key: block b4 takes ws 0 (conv1)
    and 1 (torgb); block b(2^L) takes ws 2L-5 (conv0), 2L-4 (conv1) and 2L-3 (torgb)."""
    resolution, layer = re.match(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.affine\.weight", key).groups()
    if int(resolution) == 4:
        return {"conv1": 0, "torgb": 1}[layer]
    log2 = int(np.log2(int(resolution)))
    return {"conv0": 2 * log2 - 5, "conv1": 2 * log2 - 4, "torgb": 2 * log2 - 3}[layer]


def _same_directions(found, expected):
    """Unit rows equal up to sign."""
    cosines = np.abs(np.sum(found * expected, axis=1))
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


@pytest.mark.parametrize("layers, chosen", [(None, range(0, 8)), ("coarse", range(0, 3)), ([4, 5], [4, 5])])
def test_sefa_equals_an_independent_numpy_factorisation(style, layers, chosen):
    state = generator_state(style)  # NVIDIA's layout: affine weights (styles, w_dim)
    rows = np.concatenate([value for key, value in state.items() if key.endswith(".affine.weight")
                           and _nvidia_style_layer(key) in set(chosen)])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)  # each style's weights over w: a column of A
    left, singular, _ = np.linalg.svd(rows.T.astype(np.float64))  # eigenvectors of A Aᵀ: A's left singular vectors
    directions, values = edit.sefa(style, layers, k=5)
    assert directions.shape == (5, 16) and directions.dtype == np.float32 and values.shape == (5,)
    assert np.all(np.diff(values) <= 0)
    np.testing.assert_allclose(values, singular[:5] ** 2, rtol=1e-4)
    _same_directions(directions, left[:, :5].T)


def test_ganspace_is_the_pca_of_mapped_w_and_of_hidden_features_carried_to_z(style, classic):
    directions, values = edit.ganspace(style, k=4, samples=3000)
    ws = np.asarray(style.mapping(latents_for_seed(3000, 16, 0)))[:, 0].astype(np.float64)
    covariance = np.cov(ws, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    np.testing.assert_allclose(values, eigenvalues[::-1][:4], rtol=1e-3)
    _same_directions(directions, eigenvectors[:, ::-1][:, :4].T)

    # DCGAN family: PCA of the first ReLU's activations, regressed back to z by least squares.
    import keras

    directions, values = edit.ganspace(classic, k=3, samples=600)
    relu = next(layer for layer in classic.layers if isinstance(layer, keras.layers.ReLU))
    z = latents_for_seed(600, 16, 0).astype(np.float64)
    features = np.asarray(keras.Model(classic.inputs, relu.output)([z.astype(np.float32)])).reshape(600, -1)
    features = features.astype(np.float64) - features.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(features.T @ features / 599)
    top = eigenvectors[:, ::-1][:, :3]
    np.testing.assert_allclose(values, eigenvalues[::-1][:3], rtol=1e-3)
    coordinates = features @ top
    regression = np.linalg.solve(coordinates.T @ coordinates, coordinates.T @ (z - z.mean(axis=0)))
    _same_directions(directions, regression / np.linalg.norm(regression, axis=1, keepdims=True))


def test_directions_refuse_what_does_not_apply(style, classic):
    with pytest.raises(UserError, match="SeFa factorises the style affine weights"):
        edit.find_directions(classic, "sefa")
    with pytest.raises(UserError, match=r"k must be an integer in 1\.\.16"):
        edit.sefa(style, k=17)
    with pytest.raises(UserError, match="no fine style layers"):
        edit.sefa(style, "fine")
    with pytest.raises(UserError, match="direction method"):
        edit.find_directions(style, "pca")


def test_one_picture_truncation_mixing_and_directions(style):
    w_avg = np.asarray(style.w_avg)
    mean = edit.edited_latent(style, edit.Edit(seed=3, psi=0.0))
    np.testing.assert_allclose(mean, np.repeat(w_avg[None], style.num_ws, axis=0), atol=1e-6)
    base = edit.edited_latent(style, edit.Edit(seed=3))
    np.testing.assert_allclose(base, np.asarray(style.mapping(latents_for_seeds([3], 16)))[0], atol=1e-5)
    cut = edit.edited_latent(style, edit.Edit(seed=3, psi=0.0, cutoff=2))
    np.testing.assert_allclose(cut[:2], mean[:2], atol=1e-6)
    np.testing.assert_array_equal(cut[2:], base[2:])
    mixed = edit.edited_latent(style, edit.Edit(seed=3, mix_seed=7, crossover="coarse"))
    other = edit.edited_latent(style, edit.Edit(seed=7))
    np.testing.assert_array_equal(mixed[:3], other[:3])
    np.testing.assert_array_equal(mixed[3:], base[3:])
    found = edit.find_directions(style, "sefa", k=4, layers="middle")
    moved = edit.edited_latent(style, edit.Edit(seed=3, directions=found, amounts={1: 2.0}))
    offset = 2.0 * found.sigmas[1] * found.vectors[1]
    np.testing.assert_allclose(moved[3:] - base[3:], np.repeat(offset[None], 5, axis=0), atol=1e-5)
    np.testing.assert_array_equal(moved[:3], base[:3])  # SeFa's middle layers only
    assert 0.1 < found.sigmas[1] < 100
    # The picture is the synthesis of that latent, with the const noise, and not the unedited one.
    picture = edit.draw(style, edit.Edit(seed=3, directions=found, amounts={1: 2.0}))
    assert picture.dtype == np.uint8 and picture.shape == (RES, RES, 3)
    assert not np.array_equal(picture, edit.draw(style, edit.Edit(seed=3)))
    # Random noise is seeded by the picture's seed: the same picture twice, another with const noise.
    noisy = edit.draw(style, edit.Edit(seed=3, noise_mode="random"))
    np.testing.assert_array_equal(noisy, edit.draw(style, edit.Edit(seed=3, noise_mode="random")))


def test_the_plane_hits_its_corners(style, classic):
    for generator in (style, classic):
        corners = [edit.draw(generator, edit.Edit(seed=seed)) for seed in (4, 9, 2)]
        for (u, v), expected in zip([(0, 0), (1, 0), (0, 1)], corners):
            got = edit.draw(generator, edit.Edit(plane_seeds=(4, 9, 2), plane=(u, v)))
            assert np.abs(got.astype(int) - expected).max() <= 1
        middle = edit.draw(generator, edit.Edit(plane_seeds=(4, 9), plane=(0.5, 0.5)))
        assert not any(np.array_equal(middle, corner) for corner in corners)


def test_dcgan_edits_live_in_z_and_style_operations_are_refused(classic):
    found = edit.find_directions(classic, "ganspace", k=3)
    z = edit.edited_latent(classic, edit.Edit(seed=5, psi=0.5, directions=found, amounts={0: 1.0}))
    np.testing.assert_allclose(z, 0.5 * latents_for_seeds([5], 16)[0] + found.sigmas[0] * found.vectors[0], atol=1e-5)
    with pytest.raises(UserError, match="style mixing needs a StyleGAN generator"):
        edit.draw(classic, edit.Edit(seed=1, mix_seed=2))
    with pytest.raises(UserError, match="truncation cutoff needs a StyleGAN generator"):
        edit.draw(classic, edit.Edit(seed=1, cutoff=2))
    with pytest.raises(UserError, match="noise modes belong to StyleGAN"):
        edit.draw(classic, edit.Edit(seed=1, noise_mode="random"))


def test_projecting_a_generated_face_recovers_it(style_gan, style, dcgan, classic):
    target = edit.draw(classic, edit.Edit(seed=21))
    found = edit.project(dcgan, target, steps=80)
    assert found.space == "z" and found.latent.shape == (16,) and found.steps == 80
    assert found.psnr > 35 and found.losses[-1] < found.losses[0]
    np.testing.assert_array_equal(found.image, edit.draw(classic, edit.Edit(latent=found.latent)))
    # StyleGAN, W+: a face it drew itself, from a seed the starting candidates do not hold (random weights:
    # a rough landscape; the benchmark's trained generator gets 40 dB and more in W).
    target = edit.draw(style, edit.Edit(seed=1234, psi=0.7))
    start = edit.project(style, target, steps=1, space="w+", discriminator=None)
    found = edit.project(style, target, steps=100, space="w+", discriminator=None)
    assert found.latent.shape == (style.num_ws, 16)
    assert found.psnr > 18 and found.psnr > start.psnr + 6
    np.testing.assert_array_equal(found.image, edit.draw(style, edit.Edit(latent=found.latent)))
    # A GAN brings its discriminator: its feature distance joins the pixel loss. W: one w for every layer.
    with_features = edit.project(style_gan, target, steps=1, space="w")
    assert with_features.losses[0] > start.losses[0] + 1e-3
    assert np.allclose(with_features.latent, with_features.latent[:1])
    nvidia = edit.project(style, target, steps=10, recipe="nvidia")
    assert nvidia.recipe == "nvidia" and len(nvidia.losses) == 10


def test_the_nvidia_recipe_draws_with_the_networks_own_layers(style):
    """Its synthesis, block by block with explicit noise maps, is the network's own with the maps the
    network stores (const noise)."""
    import tensorflow as tf

    from keras_anime_gan.edit.projection import _noise_layers, _synthesis_with_noise

    ws = edit.edited_latent(style, edit.Edit(seed=8))[None]
    maps = [tf.constant(np.asarray(layer.noise_const)[None, :, :, None]) for layer in _noise_layers(style)]
    np.testing.assert_allclose(np.asarray(_synthesis_with_noise(style, tf.constant(ws), maps)),
                               np.asarray(style.synthesis(ws, noise_mode="const")), atol=1e-5)


def test_projection_refuses_what_it_cannot_use(style, classic, tmp_path):
    with pytest.raises(UserError, match="not an image Pillow can identify"):
        edit.project(style, b"plain text, not a picture", steps=2)
    big = tmp_path / "big.png"
    Image.new("1", (8000, 6000)).save(big)  # 48 megapixels, a small file
    with pytest.raises(UserError, match="too many pixels"):
        edit.project(style, big, steps=2)
    with pytest.raises(UserError, match="no W space"):
        edit.project(classic, np.zeros((RES, RES, 3), np.uint8), space="w")
    with pytest.raises(UserError, match="in w or w\\+"):
        edit.project(style, np.zeros((RES, RES, 3), np.uint8), space="z")
    with pytest.raises(UserError, match="does not exist"):
        edit.project(style, tmp_path / "missing.png")


def test_cli_directions_grid_redraws_the_picture_and_project_writes_its_latent(style, style_file, tmp_path):
    out = tmp_path / "dirs.png"
    result = run_cli("explore", style_file, "--kind", "directions", "--direction-method", "sefa", "--layers", "coarse",
                     "--num-directions", "3", "--seed", "5", "--truncation", "0.7", "--mix-seed", "8",
                     "--crossover", "middle", "--edit", "1=1.5", "--out", out)
    written = json.loads(result.stdout)["written"]
    assert written == [str(out), str(tmp_path / "dirs-picture.png")]
    found = edit.find_directions(style, "sefa", k=3, layers="coarse")
    expected = edit.draw(style, edit.Edit(seed=5, psi=0.7, mix_seed=8, crossover="middle", directions=found,
                                          amounts={1: 1.5}))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "dirs-picture.png")), expected)
    assert Image.open(out).size[0] > 7 * RES  # a labelled grid of 7 offsets

    face = tmp_path / "face.png"
    Image.fromarray(edit.draw(style, edit.Edit(seed=99))).resize((80, 80)).save(face)
    result = run_cli("project", style_file, face, "--out", tmp_path / "proj", "--steps", "20", "--quiet")
    summary = json.loads(result.stdout)
    assert summary["steps"] == 20 and summary["latent_shape"] == [style.num_ws, 16]
    latent = np.load(tmp_path / "proj" / "latent.npy")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "proj" / "projected.png")),
                                  edit.draw(style, edit.Edit(latent=latent)))
    assert len((tmp_path / "proj" / "losses.csv").read_text().splitlines()) == 21
    # The projected latent goes back into explore.
    run_cli("explore", style_file, "--kind", "directions", "--latent", tmp_path / "proj" / "latent.npy",
            "--num-directions", "2", "--out", tmp_path / "again.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again-picture.png")),
                                  np.asarray(Image.open(tmp_path / "proj" / "projected.png")))

    bad = run_cli("explore", style_file, "--kind", "directions", "--rows", "0-2", "--out", out, check=False)
    assert bad.returncode == 2 and "--rows is an option of --kind style-mix" in bad.stderr
    bad = run_cli("explore", style_file, "--kind", "z-grid", "--edit", "0=1", "--out", out, check=False)
    assert bad.returncode == 2 and "--edit is an option of --kind directions" in bad.stderr
    bad = run_cli("project", style_file, tmp_path / "dirs.png.missing", "--out", tmp_path / "p2", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: image")
