"""The lightweight networks' building blocks: resampling against NumPy, quadrants, skip-layer
excitation, the fused batch norm against Keras's, and the blocks' shapes and configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.lightweight import layers as L

RNG = np.random.default_rng(0)


def _bilinear_axis(x, axis):
    """tf.image.resize's bilinear 2x along one axis, written out: 0.75 x[i] + 0.25 x[i -+ 1], edges clamped."""
    x = np.moveaxis(x, axis, 0)
    previous = np.concatenate([x[:1], x[:-1]])
    following = np.concatenate([x[1:], x[-1:]])
    out = np.empty((2 * len(x), *x.shape[1:]), x.dtype)
    out[0::2] = 0.75 * x + 0.25 * previous
    out[1::2] = 0.75 * x + 0.25 * following
    return np.moveaxis(out, 0, axis)


def _blur_axis(x, axis):
    x = np.moveaxis(x, axis, 0)
    previous = np.concatenate([x[:1], x[:-1]])
    following = np.concatenate([x[1:], x[-1:]])
    return np.moveaxis(0.5 * x + 0.25 * (previous + following), 0, axis)


def test_upsampling_modes_equal_their_numpy_definitions():
    x = RNG.normal(size=(2, 4, 6, 3)).astype(np.float32)
    nearest = x.repeat(2, axis=1).repeat(2, axis=2)
    bilinear = _bilinear_axis(_bilinear_axis(x, 1), 2)
    antialiased = _blur_axis(_blur_axis(bilinear, 1), 2)
    for mode, expected in (("nearest", nearest), ("bilinear", bilinear), ("antialiased", antialiased)):
        got = L.upsample2x(tf.constant(x), mode).numpy()
        assert got.shape == (2, 8, 12, 3)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=mode)
    # A constant stays constant (no checkerboard, mean kept) in every mode, in bfloat16 too.
    flat = tf.fill((1, 4, 4, 2), tf.constant(0.5, tf.bfloat16))
    for mode in L.UPSAMPLES:
        out = L.upsample2x(flat, mode)
        assert out.dtype == tf.bfloat16 and np.all(out.numpy().astype(np.float32) == 0.5)
    with pytest.raises(ValueError, match="upsample must be one of"):
        L.upsample2x(tf.constant(x), "bicubic")


def test_downsample_and_adaptive_pool_are_block_means():
    x = RNG.normal(size=(2, 8, 8, 3)).astype(np.float32)
    expected = x.reshape(2, 2, 4, 2, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(L.downsample(tf.constant(x), 4).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(L.adaptive_pool(tf.constant(x), 2).numpy(), expected, atol=1e-6)
    assert L.downsample(x, 1) is x
    with pytest.raises(ValueError, match="cannot downsample"):
        L.downsample(tf.constant(x), 3)


def test_quarter_selects_each_quadrant_per_batch_and_per_sample():
    x = RNG.normal(size=(3, 6, 8, 2)).astype(np.float32)
    quadrants = [x[:, :3, :4], x[:, :3, 4:], x[:, 3:, :4], x[:, 3:, 4:]]
    for index in range(4):
        np.testing.assert_array_equal(L.quarter(tf.constant(x), index).numpy(), quadrants[index])
        np.testing.assert_array_equal(L.quarter(tf.constant(x), tf.constant(index)).numpy(), quadrants[index])
    crops = np.array([3, 0, 2])
    got = L.quarter(tf.constant(x), tf.constant(crops)).numpy()
    for sample, index in enumerate(crops):
        np.testing.assert_array_equal(got[sample], quadrants[index][sample])


def test_skip_excitation_gates_channels_by_the_low_resolution_map():
    layer = L.SkipExcitation(4, 6)
    low = tf.constant(RNG.normal(size=(2, 8, 8, 4)).astype(np.float32))
    high = tf.constant(RNG.normal(size=(2, 16, 16, 6)).astype(np.float32))
    out = layer(low, high).numpy()
    gate = layer.gate(low).numpy()
    assert gate.shape == (2, 1, 1, 6) and np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(out, high.numpy() * gate, rtol=1e-6)
    # The gate is the two convolutions on the 4x4 block means: written out in NumPy.
    pooled = low.numpy().reshape(2, 4, 2, 4, 2, 4).mean(axis=(2, 4))
    kernel, bias = (w.numpy() for w in layer.squeeze.weights)
    hidden = np.einsum("bhwc,hwco->bo", pooled, kernel) + bias
    hidden = np.where(hidden > 0, hidden, 0.1 * hidden)
    kernel, bias = (w.numpy() for w in layer.excite.weights)
    expected = 1 / (1 + np.exp(-(hidden @ kernel[0, 0] + bias)))
    np.testing.assert_allclose(gate[:, 0, 0], expected, rtol=1e-5)
    # Different low-resolution maps give different gates for the same high-resolution map.
    other = layer(low * -1.0, high).numpy()
    assert np.abs(other - out).max() > 1e-3


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_matches_keras_in_training_and_inference(dtype):
    x = tf.constant(RNG.normal(1.0, 2.0, size=(4, 5, 5, 3)).astype(np.float32))
    fused = L.FusedBatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    for layer in (fused, plain):
        layer.build(x.shape)
        layer.set_weights([np.array([1.5, 0.5, 2.0]), np.array([0.1, -0.2, 0.3]), np.zeros(3), np.ones(3)])
    tolerance = 1e-5 if dtype == "float32" else 3e-2
    with tf.GradientTape(persistent=True) as tape:
        out_fused, out_plain = fused(x, training=True), plain(x, training=True)
        loss_fused = tf.reduce_sum(tf.cast(out_fused, tf.float32) ** 3)
        loss_plain = tf.reduce_sum(tf.cast(out_plain, tf.float32) ** 3)
    assert out_fused.dtype == out_plain.dtype
    np.testing.assert_allclose(tf.cast(out_fused, tf.float32), tf.cast(out_plain, tf.float32), atol=tolerance)
    for a, b in zip(tape.gradient(loss_fused, fused.trainable_weights),
                    tape.gradient(loss_plain, plain.trainable_weights)):
        np.testing.assert_allclose(a, b, rtol=tolerance * 10, atol=tolerance * 10)
    # Moving statistics: Keras's rule (momentum, biased variance), and the same inference.
    mean, variance = x.numpy().mean(axis=(0, 1, 2)), x.numpy().var(axis=(0, 1, 2))
    statistics = 1e-4 if dtype == "float32" else 1e-2  # from the bfloat16 input
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.1 * mean, rtol=statistics)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 + 0.1 * variance, rtol=statistics)
    for a, b in zip(fused.non_trainable_weights, plain.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3 if dtype == "float32" else 2e-2)
    np.testing.assert_allclose(tf.cast(fused(x, training=False), tf.float32),
                               tf.cast(plain(x, training=False), tf.float32), atol=tolerance * 3)


def test_blocks_shapes_configs_and_activations():
    x = tf.constant(RNG.normal(size=(2, 8, 8, 6)).astype(np.float32))
    for activation in L.ACTIVATIONS:
        block = L.UpBlock(6, 4, "nearest", convs=2, activation=activation)
        assert block(x, training=True).shape == (2, 16, 16, 4)
        assert block.conv_layers[0].filters == L.activation_factor(activation) * 4
        clone = L.UpBlock.from_config(block.get_config())
        assert [w.shape for w in clone.weights] == [w.shape for w in block.weights]
    down = L.DownBlock(6, 10, norm="batch")
    assert down(x, training=True).shape == (2, 4, 4, 10) and len(down.norm_layers) == 3
    decoder = L.Decoder(6, [5, 4], "bilinear")
    out = decoder(x)
    assert out.shape == (2, 32, 32, 3) and out.dtype == tf.float32 and np.abs(out.numpy()).max() <= 1.0
    with pytest.raises(ValueError, match="activation must be one of"):
        L.UpBlock(6, 4, activation="relu")
    with pytest.raises(ValueError, match="norm must be"):
        L.DownBlock(6, 4, norm="layer")


def _conv_numpy(x, kernel):
    """'same' 3x3 stride-1 convolution (cross-correlation, zero padding), written out."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1:3]
    patches = np.stack([padded[:, i:i + height, j:j + width] for i in range(3) for j in range(3)], axis=3)
    return np.einsum("bhwkc,kcf->bhwf", patches, kernel.reshape(9, x.shape[-1], -1))


def test_spectral_conv_divides_by_the_largest_singular_value_and_differentiates_through_it():
    rng = np.random.default_rng(1)
    conv = L._conv(4, 6, 3, "float32", "conv", use_bias=False, spectral=True)
    assert isinstance(conv, L.SpectralConv2D)
    x = tf.constant(rng.normal(size=(2, 5, 5, 4)).astype(np.float32))
    u = conv.spectral_u.numpy().copy()
    conv(x)  # outside training: the stored estimate, unchanged
    np.testing.assert_array_equal(conv.spectral_u.numpy(), u)
    for _ in range(200):  # power iterations, one a training call
        conv(x, training=True)
    assert not np.allclose(conv.spectral_u.numpy(), u)
    kernel = conv.kernel.numpy()
    sigma = np.linalg.svd(kernel.reshape(-1, 6), compute_uv=False)[0]
    np.testing.assert_allclose(conv(x).numpy(), _conv_numpy(x.numpy(), kernel / sigma), rtol=1e-4, atol=1e-5)
    assert np.linalg.svd(conv.normalized_kernel().numpy().reshape(-1, 6), compute_uv=False)[0] == pytest.approx(1, 1e-4)

    # d/dW sum(conv(x, W / sigma(W))^2), sigma = v^T W u with the layer's u and v = W u / |W u| held
    # fixed: central differences in float64 NumPy along a random direction, against the layer's gradient.
    weights = kernel.astype(np.float64).reshape(-1, 6)
    u_vec = conv.spectral_u.numpy().astype(np.float64)
    u_vec /= np.linalg.norm(u_vec)
    v = weights @ u_vec / np.linalg.norm(weights @ u_vec)

    def loss(w):
        return np.sum(_conv_numpy(x.numpy().astype(np.float64), (w / (v @ w @ u_vec)).reshape(kernel.shape)) ** 2)

    direction = rng.normal(size=weights.shape)
    numeric = (loss(weights + 1e-4 * direction) - loss(weights - 1e-4 * direction)) / 2e-4
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(tf.square(conv(x)))
    gradient = tape.gradient(value, conv.kernel).numpy().reshape(-1, 6)
    assert np.sum(gradient * direction) == pytest.approx(numeric, rel=2e-3)
    # With sigma held constant (keras.layers.SpectralNormalization's semantics) the gradient differs.
    normalized = tf.Variable(kernel / sigma)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(tf.square(tf.nn.conv2d(x, normalized, 1, "SAME")))
    frozen = tape.gradient(value, normalized).numpy().reshape(-1, 6) / sigma
    assert abs(np.sum(frozen * direction) - numeric) > 10 * abs(np.sum(gradient * direction) - numeric)


def test_spectral_conv_saves_its_estimate_and_runs_in_bfloat16(tmp_path):
    block = L.DownBlock(4, 8, spectral=True, name="down")
    x = tf.constant(RNG.normal(size=(2, 8, 8, 4)).astype(np.float32))
    block(x, training=True)
    model = keras.Sequential([keras.Input((8, 8, 4)), block])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[0].get_config()["spectral"] is True
    for a, b in zip(model.layers[0].variables, loaded.layers[0].variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    policy = keras.mixed_precision.Policy("mixed_bfloat16")
    conv = L._conv(4, 8, 3, policy, "conv", spectral=True)
    assert conv(x, training=True).dtype == tf.bfloat16 and conv.spectral_u.dtype == "float32"
