"""StyleGAN2 networks: NVIDIA's parameter counts, mapping / w_avg / truncation / style mixing, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.stylegan2 import networks as N
from keras_anime_gan.gans.stylegan2.layers import normalize_2nd_moment

RNG = np.random.default_rng(0)


def tiny_generator(resolution=16, **overrides):
    return N.StyleGenerator(**{**N.preset("tiny", resolution)["generator"], **overrides})


# Counted from NVIDIA's own networks (G with mapping / D) for the 'auto' configuration.
NVIDIA_COUNTS = {64: (22_243_608, 23_407_361), 128: (22_949_277, 23_882_369), 256: (23_191_522, 24_001_089)}


@pytest.mark.parametrize("resolution", sorted(NVIDIA_COUNTS))
def test_auto_preset_parameter_counts_equal_nvidia(resolution):
    config = N.preset("auto", resolution)
    generator = N.StyleGenerator(**config["generator"])
    assert N.trainable_count(generator) == NVIDIA_COUNTS[resolution][0]
    del generator  # one big network at a time
    discriminator = N.ResidualDiscriminator(**config["discriminator"])
    assert N.trainable_count(discriminator) == NVIDIA_COUNTS[resolution][1]


def test_presets_follow_nvidia_formulas():
    for resolution, batch in ((64, 32), (128, 32), (256, 16)):
        config = N.preset("auto", resolution)
        training = config["training"]
        assert training["batch_size"] == batch
        assert training["gamma"] == pytest.approx(0.0002 * resolution ** 2 / batch)
        assert training["ema_kimg"] == pytest.approx(batch * 10 / 32)
        assert training["learning_rate"] == 0.0025 and training["betas"] == (0.0, 0.99)
        assert config["generator"]["mapping_layers"] == 2 and config["generator"]["channel_base"] == 16384
        assert config["discriminator"]["mbstd_group_size"] == 4
    assert N.preset("stylegan2", 256)["generator"]["channel_base"] == 32768
    assert N.preset("stylegan2", 256)["generator"]["mapping_layers"] == 8
    assert N.preset("paper256", 256)["discriminator"]["mbstd_group_size"] == 8
    small = N.preset("auto", 64, batch_size=8, channel_base=2048)
    assert small["training"]["gamma"] == pytest.approx(0.0002 * 64 ** 2 / 8)
    assert small["generator"]["channel_base"] == small["discriminator"]["channel_base"] == 2048
    with pytest.raises(ValueError):
        N.preset("auto", 64, no_such_option=1)
    with pytest.raises(ValueError):
        N.preset("auto", 48)


def test_synthesis_consumes_num_ws_and_channels():
    generator = tiny_generator(16)
    assert generator.num_ws == N.num_ws_for(16) == 6 and N.num_ws_for(64) == 10
    assert [b.out_channels for b in generator.synthesis_network.blocks] == [
        N.channels_at(r, 1024, 64) for r in (4, 8, 16)]
    ws = tf.constant(RNG.normal(size=(2, 6, 64)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = generator.synthesis(ws, noise_mode="none")
    assert images.shape == (2, 16, 16, 3) and images.dtype == tf.float32
    per_w = tf.reduce_sum(tf.abs(tape.gradient(images, ws)), axis=[0, 2]).numpy()
    assert (per_w > 0).all()  # every style vector is used


def test_torgb_shares_w_with_next_conv0():
    generator = tiny_generator(8)  # ws: 0 b4.conv1, 1 b4.torgb + b8.conv0, 2 b8.conv1, 3 b8.torgb
    b4, b8 = generator.synthesis_network.blocks
    seen = {}
    for name, layer in (("b4.conv1", b4.conv1.conv.affine), ("b4.torgb", b4.torgb.conv.affine),
                        ("b8.conv0", b8.conv0.conv.affine), ("b8.conv1", b8.conv1.conv.affine),
                        ("b8.torgb", b8.torgb.conv.affine)):
        original = layer.call
        layer.call = (lambda original, name: lambda w: seen.setdefault(name, w) is not None and original(w))(
            original, name)
    ws = tf.constant(RNG.normal(size=(1, 4, 64)).astype(np.float32))
    generator.synthesis(ws, noise_mode="none")
    for name, index in (("b4.conv1", 0), ("b4.torgb", 1), ("b8.conv0", 1), ("b8.conv1", 2), ("b8.torgb", 3)):
        np.testing.assert_array_equal(seen[name].numpy(), ws[:, index].numpy())


def test_mapping_output_rms_and_pixel_norm():
    generator = tiny_generator(16)
    z = RNG.normal(size=(256, 64)).astype(np.float32)
    np.testing.assert_allclose(np.sqrt(np.mean(normalize_2nd_moment(z * 7).numpy() ** 2, axis=1)), 1.0, rtol=1e-5)
    ws = generator.mapping(z).numpy()
    assert ws.shape == (256, 6, 64)
    np.testing.assert_allclose(ws, generator.mapping(10 * z).numpy(), rtol=1e-4, atol=1e-5)  # pixel norm first
    rms = np.sqrt(np.mean(ws[:, 0] ** 2))
    assert 0.7 < rms < 1.5  # equalized lr with the lrelu gain keeps w at unit scale
    np.testing.assert_array_equal(ws[:, 0], ws[:, -1])  # broadcast


def test_w_avg_updates_only_when_asked():
    generator = tiny_generator(16)
    z = RNG.normal(size=(32, 64)).astype(np.float32)
    np.testing.assert_array_equal(generator.w_avg.numpy(), 0.0)
    generator.mapping(z)
    generator(z)
    np.testing.assert_array_equal(generator.w_avg.numpy(), 0.0)
    w_mean = generator.mapping(z).numpy()[:, 0].mean(axis=0)
    generator.mapping(z, update_w_avg=True)
    np.testing.assert_allclose(generator.w_avg.numpy(), 0.005 * w_mean, rtol=1e-5, atol=1e-8)
    generator.mapping(z, update_w_avg=True)
    np.testing.assert_allclose(generator.w_avg.numpy(), 0.005 * w_mean + 0.005 * (w_mean - 0.005 * w_mean),
                               rtol=1e-5, atol=1e-8)
    assert generator.w_avg in generator.non_trainable_weights
    # Style mixing updates w_avg from z's ws only, never from its second, fresh latents.
    generator.w_avg.assign(np.zeros(64, np.float32))
    generator.style_mixing(z, prob=1.0, rng=tf.random.Generator.from_seed(3), update_w_avg=True)
    np.testing.assert_allclose(generator.w_avg.numpy(), 0.005 * w_mean, rtol=1e-5, atol=1e-8)


def test_truncation_psi_zero_gives_w_avg_below_cutoff_only():
    generator = tiny_generator(16)
    w_avg = RNG.normal(size=(64,)).astype(np.float32)
    generator.w_avg.assign(w_avg)
    z = RNG.normal(size=(4, 64)).astype(np.float32)
    plain = generator.mapping(z).numpy()
    cut = generator.mapping(z, truncation_psi=0.0, truncation_cutoff=3).numpy()
    np.testing.assert_allclose(cut[:, :3], np.broadcast_to(w_avg, (4, 3, 64)), atol=1e-6)
    np.testing.assert_array_equal(cut[:, 3:], plain[:, 3:])
    np.testing.assert_allclose(generator.truncate(plain, 0.0).numpy(), np.broadcast_to(w_avg, plain.shape), atol=1e-6)
    half = generator.truncate(plain[:, 0], 0.5).numpy()  # a single w is broadcast first
    np.testing.assert_allclose(half, w_avg + 0.5 * (plain - w_avg), atol=1e-5)
    np.testing.assert_array_equal(generator.mapping(z, truncation_psi=1.0).numpy(), plain)
    np.testing.assert_allclose(generator.truncated_ws(z, tf.constant(0.0), tf.constant(2)).numpy()[:, :2],
                               np.broadcast_to(w_avg, (4, 2, 64)), atol=1e-6)


def test_style_mixing_cutoff_semantics():
    ws = tf.constant(np.zeros((2, 6, 3), np.float32))
    other = tf.constant(np.ones((2, 6, 3), np.float32))
    mixed = N.mix_styles(ws, other, 2).numpy()
    np.testing.assert_array_equal(mixed[:, :2], 0.0)
    np.testing.assert_array_equal(mixed[:, 2:], 1.0)
    np.testing.assert_array_equal(N.mix_styles(ws, other, 6).numpy(), 0.0)
    generator = tiny_generator(16, seed=3)
    rng = tf.random.Generator.from_seed(5)
    draw = tf.function(lambda prob: tf.map_fn(lambda _: generator.style_mixing_cutoff(prob, rng), tf.range(300)))
    cutoffs = draw(tf.constant(1.0)).numpy()
    assert set(cutoffs) == set(range(1, 6))  # uniform over [1, num_ws - 1]
    assert max(np.bincount(cutoffs)[1:]) < 2 * min(np.bincount(cutoffs)[1:])
    assert set(draw(tf.constant(0.0)).numpy()) == {6}
    assert 0.04 < np.mean(draw(tf.constant(0.9)).numpy() == 6) < 0.17  # mixing at 0.9
    z = RNG.normal(size=(4, 64)).astype(np.float32)
    plain = generator.mapping(z).numpy()
    mixed_ws, cutoff = generator.style_mixing(z, prob=1.0, rng=rng)
    cutoff = int(cutoff)
    np.testing.assert_allclose(mixed_ws.numpy()[:, :cutoff], plain[:, :cutoff], rtol=1e-6)
    assert np.abs(mixed_ws.numpy()[:, cutoff:] - plain[:, cutoff:]).min() > 0


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    generator = tiny_generator(16, seed=1)
    z = RNG.normal(size=(4, 64)).astype(np.float32)
    generator.mapping(z, update_w_avg=True)
    generator.synthesis_network.blocks[1].conv0.noise_strength.assign(0.3)
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert isinstance(loaded, N.StyleGenerator) and loaded.get_config() == generator.get_config()
    np.testing.assert_array_equal(loaded(z).numpy(), generator(z).numpy())
    np.testing.assert_array_equal(loaded.w_avg.numpy(), generator.w_avg.numpy())
    ws = generator.truncated_ws(z, 0.7)
    np.testing.assert_array_equal(loaded.synthesis(loaded.truncated_ws(z, 0.7), noise_mode="const").numpy(),
                                  generator.synthesis(ws, noise_mode="const").numpy())
    discriminator = N.ResidualDiscriminator(**N.preset("tiny", 16)["discriminator"])
    images = generator(z)
    discriminator.save(tmp_path / "d.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "d.keras")(images).numpy(),
                                  discriminator(images).numpy())


def test_same_architecture_twice_copies_by_variable_order():
    first, second = tiny_generator(8), tiny_generator(8)
    assert [v.shape for v in first.variables] == [v.shape for v in second.variables]
    for source, target in zip(first.variables, second.variables):
        target.assign(source)
    z = RNG.normal(size=(2, 64)).astype(np.float32)
    np.testing.assert_array_equal(first(z).numpy(), second(z).numpy())


def test_discriminator_shapes_and_residual_blocks():
    discriminator = N.ResidualDiscriminator(**N.preset("tiny", 16)["discriminator"])
    assert [b.resolution for b in discriminator.blocks] == [16, 8]
    assert discriminator.blocks[0].fromrgb is not None and discriminator.blocks[1].fromrgb is None
    assert discriminator.blocks[0].skip.bias is None
    logits = discriminator(RNG.uniform(-1, 1, size=(8, 16, 16, 3)).astype(np.float32))
    assert logits.shape == (8, 1) and logits.dtype == tf.float32


def test_mixed_bfloat16_networks_keep_float32_outputs_and_variables():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        generator = tiny_generator(16, num_reduced_precision_res=1)
        discriminator = N.ResidualDiscriminator(**{**N.preset("tiny", 16)["discriminator"],
                                                   "num_reduced_precision_res": 1})
    finally:
        keras.config.set_dtype_policy(previous)
    blocks = generator.synthesis_network.blocks
    assert [b.compute_dtype for b in blocks] == ["float32", "float32", "bfloat16"]
    assert generator.mapping_network.compute_dtype == "float32"
    z = RNG.normal(size=(4, 64)).astype(np.float32)
    images = generator(z, training=True)
    logits = discriminator(images)
    assert images.dtype == tf.float32 and logits.dtype == tf.float32
    assert np.isfinite(images.numpy()).all() and np.isfinite(logits.numpy()).all()
    assert all(v.dtype == "float32" for v in generator.trainable_weights + discriminator.trainable_weights)


def test_train_step_pieces_compile_with_xla():
    generator = tiny_generator(8, seed=2)
    discriminator = N.ResidualDiscriminator(**N.preset("tiny", 8)["discriminator"])

    @tf.function(jit_compile=True)
    def step(z):
        with tf.GradientTape() as tape:
            ws, _ = generator.style_mixing(z, 0.9, update_w_avg=True)
            logits = discriminator(generator.synthesis(ws, noise_mode="random"))
            loss = tf.reduce_mean(tf.nn.softplus(-logits))
        return loss, tape.gradient(loss, generator.trainable_weights)

    loss, grads = step(tf.constant(RNG.normal(size=(4, 64)).astype(np.float32)))
    assert np.isfinite(loss.numpy()) and all(g is not None for g in grads)
    assert np.abs(generator.w_avg.numpy()).sum() > 0


def test_const_noise_comes_from_the_saved_per_layer_buffers(tmp_path):
    """noise_mode "const" adds each layer's own noise_const buffer (NVIDIA's, per resolution), which
    generator.keras saves and loads with the weights."""
    generator = tiny_generator(8, seed=1)
    layers = [layer for block in generator.synthesis_network.blocks for layer in (block.conv0, block.conv1) if layer]
    assert [tuple(layer.noise_const.shape) for layer in layers] == [(4, 4), (8, 8), (8, 8)]
    assert not any(layer.noise_const.trainable for layer in layers)
    for index, layer in enumerate(layers):
        layer.noise_strength.assign(0.5 + index)
        layer.noise_const.assign(RNG.normal(size=layer.noise_const.shape).astype(np.float32))
    ws = tf.constant(RNG.normal(size=(2, generator.num_ws, 64)).astype(np.float32))
    const = generator.synthesis(ws, noise_mode="const").numpy()
    assert np.abs(const - generator.synthesis(ws, noise_mode="none").numpy()).max() > 1e-2  # the noise is used
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    loaded_layers = [layer for block in loaded.synthesis_network.blocks for layer in (block.conv0, block.conv1) if layer]
    for layer, original in zip(loaded_layers, layers):
        np.testing.assert_array_equal(layer.noise_const.numpy(), original.noise_const.numpy())
    np.testing.assert_array_equal(loaded.synthesis(ws, noise_mode="const").numpy(), const)
    layers[-1].noise_const.assign(np.zeros((8, 8), np.float32))  # the buffer, not a fresh draw
    assert np.abs(generator.synthesis(ws, noise_mode="const").numpy() - const).max() > 1e-3
