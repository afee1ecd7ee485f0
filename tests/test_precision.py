"""The precision choice (auto, float32, bfloat16, float16): what auto picks, float32 numerics under
the mixed policies, checkpoints across precisions, float32 exports. Tiny models only; bfloat16 runs
here whether or not the CPU has native bf16 (it is then emulated: slower, with the same results)."""

import argparse
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan import checkpoints
from keras_anime_gan import create_gan, gans
from keras_anime_gan.errors import ConfigError
from keras_anime_gan.export import export_generator
from keras_anime_gan.loading import load_generator
from keras_anime_gan.precision import float32_model
from keras_anime_gan.precision import (apply_precision, choose_precision, cpu_bf16_flags, cpu_flags,
                                       gpu_compute_capabilities, policy_name)
from keras_anime_gan.cli import add_train_arguments, config_from_args
import conftest
from keras_anime_gan.config import TrainConfig
from keras_anime_gan.training import train

POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@pytest.fixture
def policy():
    """Set the global policy inside a test; the previous one is put back afterwards."""
    previous = keras.mixed_precision.global_policy()
    yield lambda precision: keras.mixed_precision.set_global_policy(POLICY[precision])
    keras.mixed_precision.set_global_policy(previous)


def tiny_gan(name="dcgan", **options):
    gan = create_gan(name, 32, 16, width=8, seed=0, **options)
    gan.compile(jit_compile=False)
    return gan


def tiny_config(out, **overrides):
    return conftest.tiny_config(out, **{"epochs": 1, "steps_per_epoch": 2, "synthetic_images": 32, "metrics": "none",
                                        **overrides})


def faces(count=16):
    return np.random.default_rng(0).uniform(-1, 1, (count, 32, 32, 3)).astype(np.float32)


# ----------------------------------------------------------------------------- the choice


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 fma avx512f avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 amx_bf16\n")
    flags = cpu_flags(str(cpuinfo))
    assert {"avx2", "avx512_bf16", "amx_bf16"} <= flags and "Some" not in flags
    assert cpu_bf16_flags(flags) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_flags({"avx2", "fma", "avx512f"}) == []
    assert cpu_flags(str(tmp_path / "missing")) == set()  # no /proc/cpuinfo (macOS, Windows): no flags


@pytest.mark.parametrize("gpus, flags, expected, words", [
    ([], {"avx2", "avx512_bf16"}, "bfloat16", "avx512_bf16"),
    ([], {"avx2", "amx_bf16"}, "bfloat16", "amx_bf16"),
    ([], {"avx2", "fma", "avx512f"}, "float32", "no native bfloat16"),
    ([(8, 0)], set(), "bfloat16", "8.0"),
    ([(9, 0)], {"avx2"}, "bfloat16", "9.0"),
    ([(7, 5)], {"avx512_bf16"}, "float16", "loss scaling"),  # the GPU decides, not the CPU
    ([(8, 6), (7, 0)], set(), "float16", "7.0"),  # the slowest GPU decides
    ([(6, 1)], set(), "float32", "6.1"),
    ([None], set(), "float32", "unknown"),
])
def test_auto_picks_from_the_hardware_and_says_why(gpus, flags, expected, words):
    precision, reason = choose_precision("auto", gpus=gpus, flags=flags)
    assert precision == expected and reason.startswith("auto") and words in reason


def test_auto_keeps_float32_on_a_bf16_cpu_for_a_model_that_trains_faster_in_it():
    why = "the lightweight model's networks train faster in float32 on a CPU"
    precision, reason = choose_precision("auto", gpus=[], flags={"avx2", "amx_bf16"}, float32_on_cpu=why)
    assert precision == "float32" and reason.startswith("auto") and "amx_bf16" in reason and why in reason
    assert choose_precision("auto", gpus=[], flags={"avx2"}, float32_on_cpu=why)[0] == "float32"
    assert why not in choose_precision("auto", gpus=[], flags={"avx2"}, float32_on_cpu=why)[1]
    assert choose_precision("auto", gpus=[(8, 0)], flags={"amx_bf16"}, float32_on_cpu=why)[0] == "bfloat16"  # a GPU
    assert choose_precision("bfloat16", gpus=[], flags={"amx_bf16"}, float32_on_cpu=why) == ("bfloat16",
                                                                                            f"requested; {why}")


def test_an_explicit_precision_is_kept_with_a_warning_where_it_is_slow():
    assert choose_precision("float32", gpus=[], flags={"avx512_bf16"}) == ("float32", "requested")
    precision, reason = choose_precision("bfloat16", gpus=[], flags={"avx2"})
    assert precision == "bfloat16" and "emulated" in reason
    assert choose_precision("bfloat16", gpus=[], flags={"amx_bf16"}) == ("bfloat16", "requested")
    precision, reason = choose_precision("float16", gpus=[], flags=set())
    assert precision == "float16" and "emulated" in reason
    assert choose_precision("float16", gpus=[(7, 0)], flags=set()) == ("float16", "requested")
    assert "slow" in choose_precision("bfloat16", gpus=[(7, 5)], flags=set())[1]
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("half", gpus=[], flags=set())


def test_auto_on_this_machine_follows_its_flags_and_gpus():
    precision, reason = choose_precision("auto")
    if gpu_compute_capabilities():
        assert "GPU" in reason
    else:
        assert precision == ("bfloat16" if cpu_bf16_flags() else "float32")


def test_apply_precision_sets_the_keras_policy(policy):
    policy("float32")
    assert [policy_name(name) for name in ("float32", "bfloat16", "float16")] == list(POLICY.values())
    assert apply_precision("bfloat16") == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    with pytest.raises(ValueError):
        apply_precision("auto")  # choose first


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_computes_in_it_and_keeps_everything_else_float32(policy, precision):
    policy(precision)
    gan = create_gan("wgan-gp", 32, 16, width=8, seed=0, ema=0.9, n_critic=1, norm="layer")
    dcgan = create_gan("dcgan", 32, 16, width=8, seed=0, ema=0.9)  # BatchNorm in both networks
    policy("float32")  # compile no longer looks at the global policy
    for model in (gan, dcgan):
        model.compile(jit_compile=False)
        model.fit(faces(), batch_size=8, epochs=1, verbose=0)
    convolutions = [layer for layer in dcgan.discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert {layer.compute_dtype for layer in convolutions} == {precision}  # it really computes in it
    for model in (gan, dcgan):
        # weights, EMA weights, BatchNorm statistics and every optimizer state are float32
        assert {v.dtype for v in model.weights} == {"float32"}
        assert model.ema_generator is not model.generator and {v.dtype for v in model.ema_generator.variables} == {"float32"}
        for optimizer in (model.d_optimizer, model.g_optimizer):
            assert {v.dtype for v in optimizer.variables} <= {"float32", "int64"}
            assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "float16")
        assert {v.dtype for metric in model.metrics for v in metric.variables} == {"float32"}
        assert model.discriminator(faces(2)).dtype == "float32"  # logits
        assert model.generator(np.zeros((2, 16), np.float32)).dtype == "float32"
    statistics = [v for layer in dcgan.generator.layers if isinstance(layer, keras.layers.BatchNormalization)
                  for v in (layer.moving_mean, layer.moving_variance)]
    assert statistics and {v.dtype for v in statistics} == {"float32"}
    real, fake = tf.constant(faces(4)), tf.constant(faces(4)[::-1])
    penalty = gans.gradient_penalty(gan.discriminator, real, fake, tf.fill([4, 1, 1, 1], 0.5))
    assert penalty.dtype == tf.float32 and np.isfinite(penalty.numpy()).all()
    assert gan.objective.run_discriminator(real).dtype == tf.float32


def test_a_discriminator_with_reduced_precision_logits_still_gives_float32_losses(policy):
    policy("bfloat16")
    latent = keras.Input((4,))
    generator = keras.Model(latent, keras.layers.Dense(2)(latent))
    points = keras.Input((2,))
    discriminator = keras.Model(points, keras.layers.Dense(1)(points))  # bfloat16 logits
    policy("float32")
    gan = gans.DCGAN(generator, discriminator, 4, seed=0)
    gan.compile(jit_compile=False)
    assert discriminator(np.zeros((1, 2), np.float32)).dtype == "bfloat16"
    assert gan.objective.run_discriminator(np.zeros((1, 2), np.float32)).dtype == tf.float32
    history = gan.fit(np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"]).all()


def test_float16_networks_get_loss_scaling_whatever_the_global_policy_at_compile(policy):
    policy("float16")
    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    policy("float32")
    gan.compile(jit_compile=False)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    policy("bfloat16")  # bfloat16 has float32's range: no loss scaling
    assert not isinstance(tiny_gan().d_optimizer, keras.optimizers.LossScaleOptimizer)


# ----------------------------------------------------------------------------- checkpoints


def _inner_state(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return [keras.ops.convert_to_numpy(v) for v in inner.variables]


def test_checkpoints_restore_across_precisions(policy, tmp_path):
    policy("float32")
    first = tiny_gan(ema=0.9)
    first.fit(faces(), batch_size=8, epochs=1, verbose=0)
    path = checkpoints.save_checkpoint(first, str(tmp_path / "float32"), 1)

    policy("float16")  # a float32 checkpoint into a float16 run: inner state restored, initial loss scale
    half = tiny_gan(ema=0.9)
    checkpoints.restore_checkpoint(half, path)
    for mine, theirs in zip(_inner_state(half.d_optimizer), _inner_state(first.d_optimizer)):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(half.weights, first.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
    assert float(half.g_optimizer.dynamic_scale.numpy()) == 2.0**15
    half.fit(faces(), batch_size=8, epochs=1, verbose=0)
    half.d_optimizer.dynamic_scale.assign(256.0)  # as if it had backed off
    path16 = checkpoints.save_checkpoint(half, str(tmp_path / "float16"), 2)
    assert {"loss_scale", "loss_scale_steps"} <= set(np.load(os.path.join(path16, "d_optimizer.npz")).files)

    for precision in ("bfloat16", "float32"):  # and back out of float16
        policy(precision)
        other = tiny_gan(ema=0.9)
        state = checkpoints.restore_checkpoint(other, path16)
        assert state["epoch"] == 2
        assert int(other.g_optimizer.iterations.numpy()) == int(half.g_optimizer.iterations.numpy())
        for mine, theirs in zip(_inner_state(other.d_optimizer), _inner_state(half.d_optimizer)):
            np.testing.assert_array_equal(mine, theirs)
        for mine, theirs in zip(other.weights, half.weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))
        other.fit(faces(), batch_size=8, epochs=1, verbose=0)

    policy("float16")  # float16 into float16 keeps the loss scale
    again = tiny_gan(ema=0.9)
    checkpoints.restore_checkpoint(again, path16)
    assert float(again.d_optimizer.dynamic_scale.numpy()) == 256.0


def test_an_older_float16_checkpoint_still_restores_into_float16(policy, tmp_path):
    policy("float16")
    gan = tiny_gan()
    gan.fit(faces(), batch_size=8, epochs=1, verbose=0)
    path = checkpoints.save_checkpoint(gan, str(tmp_path), 1)
    for name, optimizer in (("d_optimizer", gan.d_optimizer), ("g_optimizer", gan.g_optimizer)):
        # the layout before the loss scale was saved apart: every variable of the wrapper by index
        np.savez(os.path.join(path, f"{name}.npz"),
                 **{f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)})
    state = json.load(open(os.path.join(path, "state.json")))
    state["files"] = {name: os.path.getsize(os.path.join(path, name)) for name in checkpoints.CHECKPOINT_FILES[:-1]}
    del state["sha256"]  # that layout predates the checksums too
    json.dump(state, open(os.path.join(path, "state.json"), "w"))
    fresh = tiny_gan()
    checkpoints.restore_checkpoint(fresh, path)
    for mine, theirs in zip(fresh.d_optimizer.variables, gan.d_optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_a_run_resumes_in_another_precision(tmp_path, capsys):
    out = tmp_path / "run"
    first = train(tiny_config(out, precision="float32"))
    assert first["state"] == "complete" and first["precision"] == "float32"
    second = train(tiny_config(out, precision="float16", epochs=2), resume=True)
    assert second["epochs"] == 2 and second["precision"] == "float16"
    third = train(tiny_config(out, precision="bfloat16", epochs=3), resume=True)
    assert third["epochs"] == 3 and third["precision"] == "bfloat16" and third["state"] == "complete"
    assert third["g_updates"] >= 4  # the float32 epoch's 2 updates plus the others (float16 may skip some)
    printed = capsys.readouterr().out
    assert printed.count("restored ") == 2
    assert json.loads((out / "config.json").read_text())["precision"] == "bfloat16"


# ----------------------------------------------------------------------------- runs and exports


def test_a_run_prints_and_records_its_precision(tmp_path, capsys):
    out = tmp_path / "run"
    summary = train(tiny_config(out, precision="bfloat16"))
    printed = capsys.readouterr().out
    reason = choose_precision("bfloat16")[1]
    assert f"precision bfloat16 (Keras policy mixed_bfloat16): {reason}" in printed
    assert summary["precision"] == "bfloat16" and summary["precision_reason"] == reason
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bfloat16"
    assert TrainConfig.from_json(config).precision == "bfloat16"  # the file is still a valid --config
    assert keras.mixed_precision.global_policy().name == "float32"  # put back
    generator = keras.models.load_model(out / "generator.keras")
    assert {layer.compute_dtype for layer in generator.layers} == {"float32"}  # saved as a float32 graph


def test_auto_records_what_it_chose(tmp_path, capsys):
    out = tmp_path / "run"
    summary = train(tiny_config(out))
    expected, reason = choose_precision("auto")
    assert TrainConfig().precision == "auto"
    assert summary["precision"] == expected and summary["precision_reason"] == reason
    assert json.loads((out / "config.json").read_text())["precision"] == "auto"  # chosen again on resume
    assert json.loads((out / "status.json").read_text())["precision"] == expected
    assert f"precision {expected} " in capsys.readouterr().out


def test_command_line_precision(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)

    def config(*argv):
        return config_from_args(parser.parse_args([*argv, "--out", str(tmp_path / "x")]))

    assert config().precision == "auto"
    assert config("--precision", "bfloat16").precision == "bfloat16"
    for gone in (["--precision", "half"], ["--mixed-precision"]):  # the old float16 alias is gone
        with pytest.raises(SystemExit):
            parser.parse_args(gone)
    with pytest.raises(ConfigError, match="--precision"):
        TrainConfig(precision="half").validate()


def _graph_dtypes(function):
    """Every dtype named by a node of a concrete function's graph and its function library."""
    graph = function.graph.as_graph_def()
    nodes = list(graph.node) + [node for library in graph.library.function for node in library.node_def]
    names = set()
    for node in nodes:
        for value in node.attr.values():
            if value.HasField("type"):
                names.add(tf.dtypes.as_dtype(value.type).name)
            names.update(tf.dtypes.as_dtype(item).name for item in value.list.type)
    return names


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_exports_are_float32_graphs_whatever_the_training_precision(policy, tmp_path, precision):
    policy(precision)
    gan = tiny_gan(ema=0.9)
    gan.fit(faces(), batch_size=8, epochs=1, verbose=0)
    assert gan.ema_generator.layers[1].compute_dtype == precision
    trained = gan.ema_generator
    gan.ema_generator.save(tmp_path / "mixed.keras")  # as a run before this change wrote generator.keras
    policy("float32")
    latents = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
    for source in (gan, tmp_path / "mixed.keras"):
        generator = load_generator(source)
        assert {layer.compute_dtype for layer in generator.layers} == {"float32"}
        np.testing.assert_allclose(generator(latents).numpy(), trained(latents).numpy(), atol=0.05)
    version = export_generator(gan, str(tmp_path / "models"), "faces")
    served = tf.saved_model.load(version)
    function = served.signatures["serving_default"]
    assert precision not in _graph_dtypes(function) and "float32" in _graph_dtypes(function)
    images = function(latent=tf.constant(latents))["images"].numpy()
    expected = float32_model(trained)(latents).numpy()
    assert np.abs(images.astype(int) - np.round((expected + 1) * 127.5).astype(int)).max() <= 1


@pytest.mark.parametrize("name", ["dcgan", "stylegan2-ada"])
def test_generate_after_bfloat16_training_draws_the_float32_exports_pictures(policy, tmp_path, name):
    """`gan.generate` promises the pictures of the exported `generate` signature (within one grey
    level): after mixed-precision training it must draw with a float32 copy, not the bf16 generator."""
    policy("bfloat16")
    if name == "dcgan":
        gan = tiny_gan(ema=0.9)
        gan.fit(faces(), batch_size=8, epochs=1, verbose=0)
    else:
        gan = create_gan(name, 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8)
    policy("float32")
    served = tf.saved_model.load(export_generator(gan, str(tmp_path / "models"), "faces"))
    exported = served.signatures["generate"](num_images=tf.constant(6), seed=tf.constant(3, tf.int64),
                                             truncation_psi=tf.constant(1.0))["images"].numpy()
    first = gan.generate(6, seed=3)
    assert np.abs(first.astype(int) - exported.astype(int)).max() <= 1
    if name == "dcgan":  # the float32 copy follows later training
        policy("bfloat16")
        gan.fit(faces(), batch_size=8, epochs=1, verbose=0)
        policy("float32")
        assert not np.array_equal(gan.generate(6, seed=3), first)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_stylegan2_ada_trains_in_reduced_precision_with_every_phase(policy, precision):
    """Main steps, lazy R1 and path length, and ADA in bfloat16 and float16 (loss-scaled): every
    weight of both networks moves and stays finite, and the regularisers report finite values."""
    policy(precision)
    # One adjustment of p in the 4 steps (at step 0): two could cancel out, and r_t of 8 signs is never 0.6.
    gan = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8, augment="ada",
                     augment_p=0.5, r1_interval=2, pl_interval=2, ada_interval=4)
    gan.compile(jit_compile=False)
    assert gan.generator.synthesis_network.compute_dtype == precision
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "float16")
    networks = (gan.generator, gan.discriminator)
    before = [[w.numpy() for w in network.trainable_weights] for network in networks]
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    history = gan.fit(images, batch_size=8, epochs=2, verbose=0).history
    for network, weights in zip(networks, before):
        for weight, old in zip(network.trainable_weights, weights):
            assert np.isfinite(weight.numpy()).all(), weight.path
            assert not np.array_equal(weight.numpy(), old), weight.path
    for name in ("d_loss", "g_loss", "r1", "pl"):
        assert np.isfinite(history[name]).all() and history[name][-1] != 0, (name, history[name])
    assert float(gan.objective.pl_mean.numpy()) > 0 and float(gan.objective.augmenter.p.numpy()) != 0.5


def test_float32_model_leaves_a_float32_model_alone(policy):
    policy("float32")
    generator = tiny_gan().generator
    assert float32_model(generator) is generator


def test_a_style_generator_trained_in_bfloat16_saves_as_float32_and_loads_in_a_fresh_process(tmp_path):
    """StyleGAN's generator is a subclassed model, which clone_model cannot rebuild: float32_model
    rebuilds it from its config; a fresh process then loads it (the class registers on load)."""
    import subprocess
    import sys

    from keras_anime_gan.precision import float32_model

    with conftest.global_policy("mixed_bfloat16"):
        gan = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8)
    z = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    copy = float32_model(gan.generator)
    assert copy.compute_dtype == "float32" and copy(z).dtype == "float32"
    np.testing.assert_allclose(copy(z, noise_mode="const"), np.float32(gan.generator(z, noise_mode="const")), atol=0.1)
    copy.save(tmp_path / "generator.keras")
    code = ("import numpy as np; from keras_anime_gan.loading import load_generator; "
            f"g = load_generator({str(tmp_path / 'generator.keras')!r}); print(g(np.zeros((1, 8), 'float32')).shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(1, 8, 8, 3)" in done.stdout
