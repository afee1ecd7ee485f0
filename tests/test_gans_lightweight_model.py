"""The lightweight model as a model of the family: registry and presets, its objective (hinge plus the
decoders' reconstruction of what D saw), a run through `train` that resumes, bfloat16, and export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import global_policy, run_cli, tiny_config
from keras_anime_gan import create_gan
from keras_anime_gan.errors import ConfigError
from keras_anime_gan.gans import diffaugment
from keras_anime_gan.gans.registry import model_class
from keras_anime_gan.training import train

SMALL = {"g_channel_max": 16, "d_channel_max": 16}


def test_presets_resolve_once_and_options_are_checked():
    gan = create_gan("lightweight", 64, seed=0)
    g, d = gan.generator, gan.discriminator
    assert (g.channel_base, g.channel_max, d.channel_base, d.channel_max, g.latent_dim) == (512, 64, 512, 128, 128)
    assert d.decoder_resolution == 16 and d.d_output == 5 and g.sle and g.upsample == "bilinear"
    objective = gan.objective
    assert objective.diffaugment == ("color", "translation") and objective.d_learning_rate == 2e-4
    assert gan.ema is not None and gan.ema.decay == 0.999 and gan.ema_generator is not gan.generator
    assert create_gan("lightweight", 128, **SMALL).generator.resolution == 128
    assert not g.output_blur and create_gan("lightweight", 32, output_blur=True, **SMALL).generator.output_blur
    with pytest.raises(ConfigError, match="resolution 48 is not supported by lightweight"):
        create_gan("lightweight", 48)
    with pytest.raises(ConfigError, match="upsample: must be one of nearest, bilinear, antialiased"):
        create_gan("lightweight", 32, upsample="transpose")
    with pytest.raises(ConfigError, match="unknown DiffAugment policy 'colour'"):
        create_gan("lightweight", 32, augment="diffaugment:colour")


def test_the_decoders_reconstruct_the_reals_as_the_discriminator_saw_them():
    """The reconstruction targets are the augmented reals D judged, the same draw: replaying the
    objective's draws from a copy of the GAN's stream gives its loss exactly."""
    gan = create_gan("lightweight", 32, seed=0, augment="diffaugment:color,translation,cutout", **SMALL)
    objective, d = gan.objective, gan.discriminator
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32))
    fake = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32))
    replay = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)  # a copy
    total, hinge = objective.discriminator_objective(real, fake)
    crop = replay.uniform([], 0, 4, dtype=tf.int32)
    seen = diffaugment.diff_augment(real, objective.diffaugment, replay)
    real_logits, (whole, part) = d(seen, crop=crop, training=True)
    fake_logits = d(diffaugment.diff_augment(fake, objective.diffaugment, replay), training=True)
    expected_hinge = np.mean(np.maximum(0, 1 - real_logits) + np.maximum(0, 1 + fake_logits), axis=-1)
    targets = d.reconstruction_targets(seen, crop)
    error = sum(np.mean((np.asarray(r) - np.asarray(t)) ** 2, axis=(1, 2, 3)) for r, t in zip((whole, part), targets))
    np.testing.assert_allclose(hinge, expected_hinge, rtol=1e-5)
    np.testing.assert_allclose(total, expected_hinge + error, rtol=1e-5)
    assert not np.allclose(seen, real)  # the draw did augment


def test_a_run_trains_resumes_and_exports(tmp_path):
    out = tmp_path / "run"
    summary = train(tiny_config(out, model="lightweight", epochs=1, metrics="none", width=None, latent_dim=None,
                                **SMALL))
    assert summary["state"] == "complete" and summary["g_updates"] == 3
    config = json.loads((out / "config.json").read_text())["model_options"]
    assert config["g_channel_base"] == 512 and config["augment"] == "diffaugment:color,translation"
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].split(",")[:4] == ["epoch", "d_loss", "g_loss", "recon"] and len(history) == 2
    more = train(tiny_config(out, model="lightweight", epochs=2, metrics="none", width=None, latent_dim=None,
                             **SMALL), resume=True)
    assert more["g_updates"] == 6 and more["epoch"] == 2
    from keras_anime_gan.export import export_generator

    version = export_generator(str(out), str(tmp_path / "models"), "light")
    served = tf.saved_model.load(version).signatures["generate"]
    images = served(num_images=tf.constant(2), seed=tf.constant(3, tf.int64),
                    truncation_psi=tf.constant(1.0))["images"].numpy()
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    run_cli("generate", out, "--seeds", "0-1", "--out", tmp_path / "pngs")  # a fresh process reads generator.keras
    assert sorted(path.name for path in (tmp_path / "pngs").iterdir()) == ["seed0000.png", "seed0001.png"]


def test_auto_precision_keeps_float32_at_64_px_on_a_cpu_with_native_bfloat16(tmp_path, monkeypatch):
    """There the networks ran at 0.63x in bfloat16 (benchmarks/bench_lightweight.py); the run says why.
    At 32 px, and for DCGAN, bfloat16 paid."""
    from keras_anime_gan import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda path=precision.CPUINFO: {"avx2", "avx512_bf16", "amx_bf16"})
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [])
    summary = train(tiny_config(tmp_path / "run", model="lightweight", resolution=64, epochs=1, steps_per_epoch=1,
                                metrics="none", width=None, latent_dim=None, **SMALL))
    assert summary["precision"] == "float32" and "64 px ran at 0.63x" in summary["precision_reason"]
    assert "amx_bf16" in summary["precision_reason"]
    assert model_class("lightweight").float32_on_cpu_reason(32, None) is None
    assert model_class("dcgan").float32_on_cpu_reason(64, None) is None


def test_bfloat16_trains_with_float32_losses():
    with global_policy("mixed_bfloat16"):
        gan = create_gan("lightweight", 32, seed=0, **SMALL)
        gan.compile(jit_compile=False)
        faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
        logs = gan.fit(faces, batch_size=8, epochs=1, verbose=0).history
    assert gan.generator.compute_dtype == "bfloat16" and all(np.isfinite(v[-1]) for v in logs.values())
    assert gan.generate(2, seed=0).dtype == np.uint8


def test_a_nan_loop_is_caught_by_the_failure_monitor():
    from keras_anime_gan.callbacks import TrainingMonitor

    gan = create_gan("lightweight", 32, seed=0, **SMALL)
    gan.compile(jit_compile=False, d_optimizer=keras.optimizers.SGD(1e30), g_optimizer=keras.optimizers.SGD(1e30))
    monitor = TrainingMonitor()
    faces = np.random.default_rng(0).uniform(-1, 1, (64, 32, 32, 3)).astype(np.float32)
    history = gan.fit(faces, batch_size=8, epochs=3, verbose=0, callbacks=[monitor])
    assert monitor.failure["kind"] == "non_finite" and len(history.epoch) < 3


def test_minibatch_std_option_builds_the_discriminator_trains_and_checks_the_batch():
    """--mbstd-group reaches the discriminator; a batch that does not split into its groups is a
    ConfigError naming the option before anything trains; the run's batches do train."""
    assert create_gan("lightweight", 32, **SMALL).discriminator.mbstd_group == 0  # FastGAN's: off
    gan = create_gan("lightweight", 32, seed=0, mbstd_group=4, batch_size=8, **SMALL)
    assert gan.discriminator.mbstd_group == 4
    with pytest.raises(ConfigError, match="mbstd_group=4: the batch of 6 does not split into groups of 4"):
        create_gan("lightweight", 32, mbstd_group=4, batch_size=6, **SMALL)
    with pytest.raises(ConfigError, match="mbstd_group"):
        create_gan("lightweight", 32, mbstd_group=-1, **SMALL)
    gan.compile(jit_compile=False)
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    logs = gan.fit(faces, batch_size=8, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())


def test_spectral_norm_option_normalises_the_chosen_networks_and_trains(tmp_path):
    from keras_anime_gan.gans.lightweight.layers import SpectralConv2D
    from keras_anime_gan.loading import load_generator

    def convs(network):
        return [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]

    plain = create_gan("lightweight", 32, seed=0, **SMALL)
    assert not any(isinstance(layer, SpectralConv2D) for layer in convs(plain.generator) + convs(plain.discriminator))
    d_only = create_gan("lightweight", 32, seed=0, spectral_norm="discriminator", **SMALL)
    assert all(isinstance(layer, SpectralConv2D) for layer in convs(d_only.discriminator))
    assert not any(isinstance(layer, SpectralConv2D) for layer in convs(d_only.generator))
    with pytest.raises(ConfigError, match="spectral_norm: must be one of none, discriminator, both"):
        create_gan("lightweight", 32, spectral_norm="yes")

    gan = create_gan("lightweight", 32, seed=0, spectral_norm="both", **SMALL)
    assert all(isinstance(layer, SpectralConv2D) for layer in convs(gan.generator) + convs(gan.discriminator))
    gan.compile(jit_compile=False)
    estimates = [layer.spectral_u.numpy().copy() for layer in convs(gan.discriminator)]
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    logs = gan.fit(faces, batch_size=8, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert all(not np.allclose(before, layer.spectral_u.numpy())
               for before, layer in zip(estimates, convs(gan.discriminator)))  # every D conv iterated
    load_generator(gan).save(tmp_path / "generator.keras")
    loaded = load_generator(str(tmp_path / "generator.keras"))
    np.testing.assert_array_equal(loaded(tf.ones([2, 128])).numpy(), load_generator(gan)(tf.ones([2, 128])).numpy())
