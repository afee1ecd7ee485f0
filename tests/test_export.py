"""Export checks short of a running model server (no tensorflow_model_server binary here): reload
with tf.saved_model.load, call every signature, inspect with saved_model_cli, parse models.config
as the ModelServerConfig text proto, and push requests through TF Serving's documented REST JSON
rules (emulated below) and the client helpers."""

import io
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import rest_request_to_tensors, rest_tensors_to_response, run_cli
from keras_anime_gan import DCGAN, create_gan
from keras_anime_gan.sampling import to_uint8
from keras_anime_gan.errors import UserError
from keras_anime_gan.export import export_generator
from keras_anime_gan.rest_client import decode_predictions, predict_request

LATENT = 16


@pytest.fixture(scope="module")
def gan():
    model = create_gan("dcgan", 32, LATENT, width=8, seed=0, ema=0.9)
    model.compile(jit_compile=False)
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    model.fit(faces, batch_size=8, epochs=1, verbose=0)  # EMA and generator weights now differ
    return model


@pytest.fixture(scope="module")
def exported(gan, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    path = export_generator(gan, str(base), "faces", max_images=8)
    return base, path, tf.saved_model.load(path)


def test_layout_versions_and_never_overwriting(gan, exported, tmp_path):
    base, path, _ = exported
    assert path == os.path.join(str(base), "faces", "1")
    assert {"saved_model.pb", "variables"} <= set(os.listdir(path))
    assert not [name for name in os.listdir(base / "faces") if name.startswith(".")]
    copy = tmp_path / "models"
    shutil.copytree(base, copy)
    assert export_generator(gan, str(copy), "faces").endswith(os.path.join("faces", "2"))
    assert export_generator(gan, str(copy), "faces", version=7).endswith(os.path.join("faces", "7"))
    assert export_generator(gan, str(copy), "faces").endswith(os.path.join("faces", "8"))
    with pytest.raises(UserError, match="never overwritten"):
        export_generator(gan, str(copy), "faces", version=2)


def test_serving_default_equals_the_keras_generator(gan, exported):
    _, _, loaded = exported
    latents = np.random.default_rng(1).normal(size=(5, LATENT)).astype(np.float32)
    images = loaded.signatures["serving_default"](latent=tf.constant(latents))["images"].numpy()
    expected = to_uint8(gan.ema_generator(latents, training=False).numpy())  # the EMA generator is exported
    assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(images, expected)
    trained = to_uint8(gan.generator(latents, training=False).numpy())
    assert not np.array_equal(images, trained)


def _generate(loaded, name, count, seed, psi=1.0):
    return loaded.signatures[name](num_images=tf.constant(count, tf.int32), seed=tf.constant(seed, tf.int64),
                                   truncation_psi=tf.constant(psi, tf.float32))


def _latent_following_gan():
    """A DCGAN whose pixels follow the latent closely: a small trained DCGAN is nearly constant across
    latents (after 8-bit rounding, sometimes exactly), so it cannot tell two mappings apart."""
    latent = keras.Input((LATENT,))
    pixels = keras.layers.Dense(32 * 32 * 3, kernel_initializer=keras.initializers.RandomNormal(0, 0.5, seed=0))(latent)
    generator = keras.Model(latent, keras.layers.Activation("tanh")(keras.layers.Reshape((32, 32, 3))(pixels)))
    return DCGAN(generator, create_gan("dcgan", 32, LATENT, width=4).discriminator, LATENT)


def test_one_seed_gives_the_same_faces_in_python_the_cli_and_the_served_signature(tmp_path):
    gan = _latent_following_gan()
    loaded = tf.saved_model.load(export_generator(gan, str(tmp_path / "models"), "faces"))
    assert np.abs(gan.generate(1, seed=3).astype(int) - gan.generate(1, seed=4)).mean() > 40  # seeds differ a lot
    generator_file = tmp_path / "generator.keras"
    gan.ema_generator.save(generator_file)
    run_cli("generate", generator_file, "--seeds", "3-5,40", "--out", tmp_path / "pngs")
    for seed in (3, 4, 5, 40):
        cli = np.asarray(Image.open(tmp_path / "pngs" / f"seed{seed:04d}.png"))
        python = gan.generate(1, seed=seed)[0]
        served = _generate(loaded, "generate", 1, seed)["images"].numpy()[0]
        # Row 0 of a longer draw is the same face: `generate --seeds s` shows generate(n, s)[0].
        assert np.abs(python.astype(int) - gan.generate(4, seed=seed)[0]).max() <= 1
        assert np.abs(cli.astype(int) - python).max() <= 1 and np.abs(served.astype(int) - python).max() <= 1
    batch = _generate(loaded, "generate", 6, 9, psi=0.7)["images"].numpy()
    assert np.abs(batch.astype(int) - gan.generate(6, seed=9, truncation=0.7)).max() <= 1


def test_generate_is_deterministic_per_seed_and_png_matches(exported):
    _, _, loaded = exported
    first = _generate(loaded, "generate", 4, 11)["images"].numpy()
    assert first.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(first, _generate(loaded, "generate", 4, 11)["images"].numpy())
    assert not np.array_equal(first, _generate(loaded, "generate", 4, 12)["images"].numpy())
    assert not np.array_equal(first, _generate(loaded, "generate", 4, 11, psi=0.5)["images"].numpy())
    pngs = _generate(loaded, "generate_png", 4, 11)["png_bytes"].numpy()
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(data))) for data in pngs])
    np.testing.assert_array_equal(decoded, first)


@pytest.mark.parametrize("count, message", [(0, "at least 1"), (-3, "at least 1"), (9, "at most max_images=8")])
def test_num_images_outside_the_limit_fails_clearly(exported, count, message):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"num_images .* {message}"):
        _generate(loaded, "generate", count, 1)


def test_bad_latents_fail_clearly(exported):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"latent_dim={LATENT} values"):
        loaded.signatures["serving_default"](latent=tf.zeros((2, LATENT + 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_images=8"):
        loaded.signatures["serving_default"](latent=tf.zeros((9, LATENT)))


@pytest.mark.parametrize("psi", [np.nan, np.inf, -np.inf])
def test_a_non_finite_truncation_psi_fails_clearly_instead_of_black_images(exported, psi):
    _, _, loaded = exported
    for name in ("generate", "generate_png"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="truncation_psi must be a finite number"):
            _generate(loaded, name, 2, 1, psi=psi)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_latents_fail_clearly_instead_of_black_images(exported, bad):
    _, _, loaded = exported
    latents = np.zeros((3, LATENT), np.float32)
    latents[2, 5] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="latent values must be finite numbers"):
        loaded.signatures["serving_default"](latent=tf.constant(latents))


def test_any_finite_truncation_psi_is_served(tmp_path):
    # 0: the average face; beyond [0, 1] extrapolates, as NVIDIA's tools allow
    loaded = tf.saved_model.load(export_generator(_latent_following_gan(), str(tmp_path / "models"), "faces"))
    images = [_generate(loaded, "generate", 2, 5, psi=psi)["images"].numpy() for psi in (-0.5, 0.0, 1.0, 1.5)]
    assert all(image.shape == (2, 32, 32, 3) for image in images)
    assert len({image.tobytes() for image in images}) == 4


def test_truncation_cutoff_needs_style_layers_and_a_count_within_them(gan, tmp_path):
    with pytest.raises(UserError, match="truncation cutoff needs a StyleGAN generator"):
        export_generator(gan, str(tmp_path / "models"), "faces", truncation_cutoff=4)
    style = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8)
    for cutoff in (-1, 5, 2.5, True):
        with pytest.raises(UserError, match=r"truncation cutoff must be an integer in 0\.\.4"):
            export_generator(style, str(tmp_path / "models"), "styles", truncation_cutoff=cutoff)
    assert not (tmp_path / "models" / "faces").exists() and not (tmp_path / "models" / "styles").exists()


def test_saved_model_cli_lists_the_documented_signatures(exported):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    for block, lines in {
        "serving_default": ["inputs['latent'] tensor_info:", "dtype: DT_FLOAT", f"shape: (-1, {LATENT})",
                            "outputs['images'] tensor_info:", "dtype: DT_UINT8", "shape: (-1, 32, 32, 3)"],
        "generate": ["inputs['num_images'] tensor_info:", "dtype: DT_INT32", "inputs['seed'] tensor_info:",
                     "dtype: DT_INT64", "inputs['truncation_psi'] tensor_info:", "outputs['images'] tensor_info:"],
        "generate_png": ["outputs['png_bytes'] tensor_info:", "dtype: DT_STRING", "shape: (-1)"],
    }.items():
        section = text.split(f"signature_def['{block}']:")[1].split("signature_def[")[0]
        for line in lines:
            assert line in section, (block, line, section)


@pytest.mark.parametrize("text, message", [
    ("model_config_list {\n  config {\n    name: \"faces\"\n    base_pth: \"/x\"\n  }\n}\n", "4:5 .*base_pth"),
    ("model_config_list {\n  config { name: \"faces\" }\n", "Expected \"}\""),
])
def test_a_broken_models_config_stops_the_export_with_the_file_and_the_parse_error(gan, tmp_path, text, message):
    base = tmp_path / "models"
    base.mkdir()
    (base / "models.config").write_text(text)
    with pytest.raises(UserError, match=f"models.config is not a valid ModelServerConfig text proto .*{message}"):
        export_generator(gan, str(base), "portraits")
    assert (base / "models.config").read_text() == text and not (base / "portraits").exists()


def test_stale_temporary_folders_of_killed_exports_are_removed(gan, tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)  # a process that has exited: the PID of an export killed mid-write
    faces = tmp_path / "models" / "faces"
    (faces / f".tmp-1-{dead}" / "variables").mkdir(parents=True)
    (faces / f".tmp-1-{dead}" / "saved_model.pb").write_bytes(b"half")
    (faces / f".tmp-4-{os.getpid()}").mkdir()  # a live process's: perhaps an export running right now
    assert export_generator(gan, str(tmp_path / "models"), "faces").endswith(os.path.join("faces", "1"))
    assert sorted(os.listdir(faces)) == [f".tmp-4-{os.getpid()}", "1"]


def test_cli_export_from_a_run_folder(tmp_path):
    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.training import train

    run = tmp_path / "run"
    train(TrainConfig.from_json(dict(out=str(run), resolution=32, batch_size=8, epochs=1, steps_per_epoch=1,
                                     synthetic_images=16, verbose=0, jit=False,
                                     model_options=dict(width=8, latent_dim=LATENT))))
    result = run_cli("export", run, "--name", "faces", "--base", tmp_path / "saved")
    assert json.loads(result.stdout.strip().splitlines()[-1])["exported"].endswith(os.path.join("faces", "1"))
    missing = run_cli("export", tmp_path / "nothing", "--name", "x", "--base", tmp_path / "saved", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize("signature, row_format", [
    ("serving_default", True), ("serving_default", False), ("generate", False), ("generate_png", False),
])
def test_request_and_response_helpers_round_trip_through_rest_rules(exported, signature, row_format):
    _, _, loaded = exported
    latents = np.random.default_rng(4).normal(size=(3, LATENT)).astype(np.float32)
    body = predict_request(signature, latents=latents, num_images=3, seed=21, row_format=row_format)
    body = json.loads(json.dumps(body))  # what actually travels
    assert body["signature_name"] == signature
    function = loaded.signatures[body["signature_name"]]
    outputs = function(**rest_request_to_tensors(body, function))
    response = json.loads(json.dumps(rest_tensors_to_response(outputs, "instances" in body)))
    images = decode_predictions(response)
    if signature == "serving_default":
        expected = loaded.signatures["serving_default"](latent=tf.constant(latents))["images"].numpy()
    else:
        expected = _generate(loaded, "generate", 3, 21)["images"].numpy()
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected)


def test_a_full_disk_during_export_is_one_line_and_leaves_no_version(tmp_path):
    from conftest import small_tmpfs
    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.training import train

    run = tmp_path / "run"
    train(TrainConfig.from_json(dict(out=str(run), resolution=32, batch_size=8, epochs=1, steps_per_epoch=1,
                                     synthetic_images=16, verbose=0, jit=False, metrics="none",
                                     model_options=dict(width=8, latent_dim=LATENT))))
    with small_tmpfs(tmp_path / "disk", "150k") as disk:
        result = run_cli("export", run, "--name", "faces", "--base", disk / "saved", check=False)
        errors = [line for line in result.stderr.splitlines() if line.startswith(("error", "Traceback"))]
        assert result.returncode == 1 and errors == [f"error: disk full while writing {disk / 'saved' / 'faces' / '1'}"]
        assert os.listdir(disk / "saved" / "faces") == []  # no version, no temporary folder


# ----------------------------------------------------------------------------- hostile inputs (issue 33)


def test_huge_latents_and_psi_fail_clearly_instead_of_saturated_images(exported):
    _, _, loaded = exported
    latents = np.random.default_rng(3).normal(size=(2, LATENT)).astype(np.float32)
    for scale in (1e30, 3e3):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"latent values must lie within \+-1000"):
            loaded.signatures["serving_default"](latent=tf.constant(latents * scale))
    assert loaded.signatures["serving_default"](latent=tf.constant(latents * 100))["images"].shape == (2, 32, 32, 3)
    for psi in (3.4e38, 1e10, -101.0):
        for name in ("generate", "generate_png"):
            with pytest.raises(tf.errors.InvalidArgumentError, match=r"truncation_psi must lie within \+-100"):
                _generate(loaded, name, 2, 1, psi=psi)
    assert _generate(loaded, "generate", 2, 1, psi=-100.0)["images"].shape == (2, 32, 32, 3)


def test_an_overflow_inside_the_generator_is_refused_naming_the_input(gan):
    """Weights that overflow float32 inside the network, which its tanh turns into saturated (finite)
    images: without the guard a success, with it INVALID_ARGUMENT naming the input."""
    from keras_anime_gan.export import GeneratorServing

    generator = keras.Sequential([
        keras.Input((LATENT,)),
        keras.layers.Dense(32 * 32 * 3, use_bias=False, kernel_initializer=keras.initializers.Constant(1e20)),
        keras.layers.Activation(keras.ops.square),  # about 1e40: inf in float32
        keras.layers.Activation("tanh"),  # tanh(inf) = 1: the overflow leaves no trace in the images
        keras.layers.Reshape((32, 32, 3)),
    ])
    latents = np.random.default_rng(4).normal(size=(2, LATENT)).astype(np.float32)
    unguarded = generator(latents, training=False).numpy()
    assert np.isfinite(unguarded).all() and np.abs(unguarded).min() > 0.99  # saturated, not NaN
    serving = GeneratorServing(generator, max_images=4)
    signatures = serving.input_signatures()
    default = tf.function(serving.serving_default, input_signature=signatures["serving_default"])
    generate = tf.function(serving.generate, input_signature=signatures["generate"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"overflow \(NaN or inf inside the network\) for these "
                                                             r"latents"):
        default(tf.constant(latents))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"overflow .* for this truncation_psi:\] \[0.5\]"):
        generate(tf.constant(2), tf.constant(1, tf.int64), tf.constant(0.5))
    healthy = GeneratorServing(gan.ema_generator, max_images=4)
    healthy_default = tf.function(healthy.serving_default, input_signature=signatures["serving_default"])
    np.testing.assert_array_equal(healthy_default(tf.constant(latents))["images"].numpy(),
                                  to_uint8(gan.ema_generator(latents, training=False).numpy()))


def test_max_images_is_bounded_by_what_one_response_holds(gan, tmp_path, capsys):
    from keras_anime_gan.cli import build_parser
    from keras_anime_gan.export import RESPONSE_LIMIT, max_images_limit, response_bytes_per_image

    with pytest.raises(UserError, match=r"max_images=2,000,000,000 is more than any response can hold"):
        export_generator("never-loaded", str(tmp_path), "faces", max_images=2_000_000_000)
    limit = max_images_limit(32)
    with pytest.raises(UserError, match=fr"32 px images take up to 3,180 bytes each.* so at most {limit:,}; a gRPC "
                                        r"client's default 4 MiB holds 1,298"):
        export_generator(gan, str(tmp_path), "faces", max_images=limit + 1)
    assert not os.path.exists(tmp_path / "faces")
    # The derivation: the most images whose bytes, and the rest of the response, fit one message ...
    for resolution in (8, 32, 64, 1024):
        count, per_image = max_images_limit(resolution), response_bytes_per_image(resolution)
        assert count * per_image < RESPONSE_LIMIT < (count + 1) * per_image + 64 * 1024
    # ... where a PNG of incompressible pixels stays within its bound
    for resolution in (8, 32, 64):
        noise = np.random.default_rng(resolution).integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
        assert len(tf.io.encode_png(noise).numpy()) <= response_bytes_per_image(resolution) - 6
    # and --help states the bound
    with pytest.raises(SystemExit):
        build_parser("export").parse_args(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{max_images_limit(64):,} images at 64 px and {max_images_limit(1024):,} at 1024 px" in text
    assert "(331 images at 64 px)" in text
