"""The lightweight (FastGAN-style) networks: shapes per resolution, skip-layer excitation, upsampling
options, the self-supervised decoders and their quadrants, saving, bfloat16, XLA, presets."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.lightweight import networks as N
from keras_anime_gan.gans.lightweight.layers import quarter
from keras_anime_gan.precision import float32_model, reduced_precision_layers
from keras_anime_gan.sampling import image_size, latent_width, render

from conftest import global_policy

RNG = np.random.default_rng(0)


def _latents(generator, batch=2, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, generator.latent_dim)).astype(np.float32))


def _images(resolution, batch=2, seed=0):
    pixels = np.random.default_rng(seed).uniform(-1, 1, (batch, resolution, resolution, 3))
    return tf.constant(pixels.astype(np.float32))


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_and_ranges_at_each_resolution(resolution):
    generator, discriminator = N.build_networks(resolution)
    images = generator(_latents(generator), training=True)
    assert images.shape == (2, resolution, resolution, 3) and images.dtype == tf.float32
    assert np.abs(images.numpy()).max() <= 1.0
    logits = discriminator(images, training=True)
    assert logits.shape == (2, 25) and logits.dtype == tf.float32
    logits, (whole, part) = discriminator(images, crop=2, training=True)
    size = N.default_decoder_resolution(resolution)
    assert size == max(resolution // 4, 16)
    for reconstruction, target in zip((whole, part), discriminator.reconstruction_targets(images, 2)):
        assert reconstruction.shape == target.shape == (2, size, size, 3)
        assert reconstruction.dtype == target.dtype == tf.float32
    # What the rest of the package reads from a generator.
    assert latent_width(generator) == generator.latent_dim and image_size(generator) == resolution
    assert render(generator, _latents(generator, 3).numpy(), batch_size=2).shape == (3, resolution, resolution, 3)


def test_256_shapes_with_tiny_widths():
    generator, discriminator = N.build_networks(256, channel_base=512, channel_max=8, latent_dim=8)
    images = generator(_latents(generator, 1))
    assert images.shape == (1, 256, 256, 3)
    logits, (whole, part) = discriminator(images, crop=0)
    assert logits.shape == (1, 25) and whole.shape == part.shape == (1, 64, 64, 3)


@pytest.mark.parametrize("d_output", [1, 3, 5, 8])
def test_discriminator_output_size(d_output):
    discriminator = N.LightweightDiscriminator(32, d_output=d_output, reconstruction=False)
    assert discriminator(_images(32)).shape == (2, d_output ** 2)
    with pytest.raises(ValueError, match="no decoders"):
        discriminator(_images(32), crop=0)


def _copy_shared_weights(source, target):
    for layer in target.layers:
        layer.set_weights(source.get_layer(layer.name).get_weights())


def test_minibatch_std_lets_each_image_see_only_its_group_and_round_trips(tmp_path):
    """mbstd_group=4 on a batch of 8: sample n shares its statistic with n + 2, n + 4, n + 6 (StyleGAN's
    grouping), so changing sample 1 moves the logits of samples 3, 5, 7 and no others; without it no
    image's logits depend on another's. The head takes one more input channel; config round-trips."""
    plain = N.LightweightDiscriminator(32, reconstruction=False)
    grouped = N.LightweightDiscriminator(32, reconstruction=False, mbstd_group=4)
    assert grouped.head.kernel.shape[-2] == plain.head.kernel.shape[-2] + 1 and plain.mbstd is None
    images = _images(32, batch=8).numpy()
    changed = images.copy()
    changed[1] = _images(32, batch=1, seed=5).numpy()[0]
    for discriminator, moved in ((plain, {1}), (grouped, {1, 3, 5, 7})):
        before, after = discriminator(tf.constant(images)).numpy(), discriminator(tf.constant(changed)).numpy()
        differs = {n for n in range(8) if not np.allclose(before[n], after[n], rtol=0, atol=1e-6)}
        assert differs == moved
    grouped.save(tmp_path / "discriminator.keras")
    loaded = keras.models.load_model(tmp_path / "discriminator.keras")
    assert loaded.mbstd_group == 4 and loaded.get_config() == grouped.get_config()
    np.testing.assert_array_equal(loaded(tf.constant(images)).numpy(), grouped(tf.constant(images)).numpy())
    with pytest.raises(ValueError, match="does not split into groups of 4"):
        grouped(_images(32, batch=6))
    with pytest.raises(ValueError, match="mbstd_group must be an int >= 0"):
        N.LightweightDiscriminator(32, mbstd_group=-1)


def test_skip_layer_excitation_changes_the_output_and_an_open_gate_is_the_network_without_it():
    on = N.LightweightGenerator(64, sle=True)
    off = N.LightweightGenerator(64, sle=False)
    assert [layer.name for layer in on.excitations] == ["sle4_32", "sle4_64"] and not off.excitations
    assert N.sle_pairs(256) == {32: 4, 64: 4, 128: 8, 256: 16}
    _copy_shared_weights(on, off)
    z = _latents(on)
    assert np.abs(on(z).numpy() - off(z).numpy()).max() > 1e-3
    for layer in on.excitations:  # gate = sigmoid(30) ~ 1 whatever the low-resolution map
        kernel, bias = layer.excite.get_weights()
        layer.excite.set_weights([np.zeros_like(kernel), np.full_like(bias, 30.0)])
    np.testing.assert_allclose(on(z).numpy(), off(z).numpy(), atol=1e-5)


def test_upsampling_options_build_and_differ_with_the_same_weights():
    outputs = {}
    reference = N.LightweightGenerator(32, upsample="nearest", activation="glu")
    for mode in ("nearest", "bilinear", "antialiased"):
        generator = N.LightweightGenerator(32, upsample=mode, activation="glu")
        generator.set_weights(reference.get_weights())
        outputs[mode] = generator(_latents(generator)).numpy()
        assert generator.get_config()["upsample"] == mode
    assert np.abs(outputs["nearest"] - outputs["bilinear"]).max() > 1e-4
    assert np.abs(outputs["bilinear"] - outputs["antialiased"]).max() > 1e-4
    with pytest.raises(ValueError, match="upsample must be one of"):
        N.LightweightGenerator(32, upsample="transpose")


def test_output_blur_is_the_binomial_blur_of_the_same_weights_image_before_tanh():
    sharp = N.LightweightGenerator(32, latent_dim=16)
    blurred = N.LightweightGenerator(32, latent_dim=16, output_blur=True)
    blurred.set_weights(sharp.get_weights())  # no weights of its own: the same layers
    z = _latents(sharp)
    before_tanh = np.arctanh(sharp(z).numpy().astype(np.float64))
    padded = np.pad(before_tanh, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="symmetric")
    taps = np.array([1.0, 2.0, 1.0]) / 4.0
    rows = sum(t * padded[:, i:i + 32, :, :] for i, t in enumerate(taps))
    expected = np.tanh(sum(t * rows[:, :, i:i + 32, :] for i, t in enumerate(taps)))
    got = blurred(z).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert np.abs(got - sharp(z).numpy()).max() > 1e-3  # the blur changed the picture
    assert blurred.get_config()["output_blur"] is True and sharp.get_config()["output_blur"] is False
    assert N.LightweightGenerator.from_config(blurred.get_config()).output_blur


def test_part_reconstruction_decodes_the_chosen_quadrant_of_the_features():
    discriminator = N.LightweightDiscriminator(64)
    images = _images(64, batch=3)
    features = discriminator.features(images)
    assert sorted(features) == [8, 16, 32]
    for crop in range(4):
        _, (whole, part) = discriminator(images, crop=crop)
        quadrant = features[16].numpy()
        quadrant = [quadrant[:, :8, :8], quadrant[:, :8, 8:], quadrant[:, 8:, :8], quadrant[:, 8:, 8:]][crop]
        np.testing.assert_allclose(part.numpy(), discriminator.decoders[1](tf.constant(quadrant)).numpy(), atol=1e-6)
        np.testing.assert_allclose(whole.numpy(), discriminator.decoders[0](features[8]).numpy(), atol=1e-6)
        # The part target is the same quadrant of the image, in 2x2 block means (32 -> 16 px).
        pixels = images.numpy()
        pixels = [pixels[:, :32, :32], pixels[:, :32, 32:], pixels[:, 32:, :32], pixels[:, 32:, 32:]][crop]
        whole_target, part_target = discriminator.reconstruction_targets(images, crop)
        np.testing.assert_allclose(part_target.numpy(), pixels.reshape(3, 16, 2, 16, 2, 3).mean(axis=(2, 4)),
                                   atol=1e-6)
        np.testing.assert_allclose(whole_target.numpy(),
                                   images.numpy().reshape(3, 16, 4, 16, 4, 3).mean(axis=(2, 4)), atol=1e-6)
    # One quadrant per sample.
    crops = tf.constant([1, 3, 0])
    _, (_, part) = discriminator(images, crop=crops)
    expected = discriminator.decoders[1](quarter(features[16], crops))
    np.testing.assert_allclose(part.numpy(), expected.numpy(), atol=1e-6)


def test_the_discriminator_learns_to_reconstruct():
    """The decoders and the features they read get gradients: 40 Adam steps on one batch of
    structured images cut the reconstruction error (whole + quadrant) by more than half."""
    discriminator = N.LightweightDiscriminator(32)
    grid = np.linspace(-1, 1, 32, dtype=np.float32)
    images = tf.constant(np.stack([np.stack([np.add.outer(grid * a, grid * b), np.outer(grid, grid) * a,
                                             np.sin(3 * np.add.outer(grid, grid * b))], axis=-1)
                                   for a, b in ((0.9, -0.5), (-0.7, 0.8), (0.3, 0.3), (-0.2, -0.9))]))
    optimizer = keras.optimizers.Adam(0.003)
    head = {id(w) for w in discriminator.head.weights + discriminator.logits.weights}  # the logits' own layers

    @tf.function
    def step(crop):
        with tf.GradientTape() as tape:
            _, reconstructions = discriminator(images, crop=crop, training=True)
            targets = discriminator.reconstruction_targets(images, crop)
            loss = tf.add_n([tf.reduce_mean(tf.square(r - t)) for r, t in zip(reconstructions, targets)])
        weights = [w for w in discriminator.trainable_weights if id(w) not in head]
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    losses = [float(step(tf.constant(index % 4))) for index in range(40)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])


def test_save_and_load_round_trip(tmp_path):
    generator, discriminator = N.build_networks(32, sle=True, upsample="antialiased", d_output=3)
    z, images = _latents(generator), _images(32)
    generator(z, training=True)  # moving statistics away from their initial values
    generator.save(tmp_path / "generator.keras")
    discriminator.save(tmp_path / "discriminator.keras")
    loaded = keras.models.load_model(tmp_path / "generator.keras")
    assert type(loaded) is N.LightweightGenerator and loaded.get_config() == generator.get_config()
    np.testing.assert_array_equal(loaded(z).numpy(), generator(z).numpy())
    loaded = keras.models.load_model(tmp_path / "discriminator.keras")
    expected, (whole, part) = discriminator(images, crop=1)
    got, (got_whole, got_part) = loaded(images, crop=1)
    for a, b in ((got, expected), (got_whole, whole), (got_part, part)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A config rebuilds the same architecture (what an EMA copy needs).
    clone = N.LightweightGenerator.from_config(generator.get_config())
    clone.set_weights(generator.get_weights())
    np.testing.assert_array_equal(clone(z).numpy(), generator(z).numpy())


def test_bfloat16_policy_gives_finite_float32_outputs_and_a_float32_copy():
    with global_policy("mixed_bfloat16"):
        generator, discriminator = N.build_networks(32)
    assert generator.blocks[0].conv_layers[0].compute_dtype == "bfloat16"
    assert discriminator.blocks[0].down.compute_dtype == "bfloat16"
    z = _latents(generator)
    images = generator(z, training=True)
    logits, reconstructions = discriminator(images, crop=tf.constant(3), training=True)
    for tensor in (images, logits, *reconstructions):
        assert tensor.dtype == tf.float32 and np.isfinite(tensor.numpy()).all()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.relu(1.0 - discriminator(images, training=True)))
    decoders = {id(w) for decoder in discriminator.decoders for w in decoder.trainable_weights}
    weights = [w for w in discriminator.trainable_weights if id(w) not in decoders]  # unused without crop
    gradients = tape.gradient(loss, weights)
    assert len(weights) == 12 and all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
    copy = float32_model(generator)
    assert copy is not generator and not reduced_precision_layers(copy)
    np.testing.assert_allclose(copy(z).numpy(), generator(z).numpy(), atol=0.1)


def test_forward_and_backward_compile_under_xla_and_match_graph_mode():
    generator, discriminator = N.build_networks(32, upsample="antialiased", decoder_upsample="nearest")
    z = _latents(generator, 4)
    weights = generator.trainable_weights + discriminator.trainable_weights

    def step(crop):
        with tf.GradientTape() as tape:
            images = generator(z, training=True)
            logits, reconstructions = discriminator(images, crop=crop, training=True)
            targets = discriminator.reconstruction_targets(images, crop)
            loss = tf.reduce_mean(tf.nn.relu(1.0 - logits)) + tf.add_n(
                [tf.reduce_mean(tf.square(r - t)) for r, t in zip(reconstructions, targets)])
        gradients = tape.gradient(loss, weights)
        return loss, tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients])

    graph = [t.numpy() for t in tf.function(step)(tf.constant(1))]
    xla = [t.numpy() for t in tf.function(step, jit_compile=True)(tf.constant(1))]
    assert np.isfinite(xla).all() and xla[1] > 0
    np.testing.assert_allclose(xla, graph, rtol=2e-3)


def test_presets_and_overrides():
    for resolution in N.RESOLUTIONS:
        config = N.preset(resolution)
        assert config["generator"]["resolution"] == config["discriminator"]["resolution"] == resolution
        assert config["discriminator"]["decoder_resolution"] == N.default_decoder_resolution(resolution)
        assert config["training"]["learning_rate"] == 2e-4 and config["training"]["betas"] == (0.5, 0.999)
        assert config["training"]["batch_size"] == (32 if resolution <= 64 else 16)
    config = N.preset(64, channel_base=1024, g_channel_max=32, d_norm="batch", batch_size=8)
    assert config["generator"]["channel_base"] == config["discriminator"]["channel_base"] == 1024
    assert config["generator"]["channel_max"] == 32 and config["discriminator"]["channel_max"] == 128
    assert config["discriminator"]["norm"] == "batch" and config["generator"]["norm"] == "batch"
    assert config["training"]["batch_size"] == 8
    assert N.preset(512)["generator"]["channel_base"] == 2 * N.preset(256)["generator"]["channel_base"]
    with pytest.raises(ValueError, match="unknown preset override 'widht'"):
        N.preset(64, widht=3)
    for resolution in (16, 48, 64.0, True):
        with pytest.raises(ValueError, match="power-of-two resolution"):
            N.preset(resolution)
    with pytest.raises(ValueError, match="d_output must be in 1..8"):
        N.LightweightDiscriminator(64, d_output=9)
    with pytest.raises(ValueError, match="decoder_resolution must be a power of two in 8..32"):
        N.LightweightDiscriminator(64, decoder_resolution=64)
    with pytest.raises(ValueError, match="leaves no channel"):
        N.LightweightGenerator(64, channel_base=32)
