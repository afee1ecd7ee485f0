"""The generator's Conv2DTranspose: Keras's layer, with the patch-GEMM kernel gradient in bfloat16."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.classic.layers import Conv2DTranspose, conv2d_transpose_patch_gradient


@pytest.mark.parametrize("size, stride, kernel", [(4, 2, 4), (6, 2, 4), (3, 2, 3), (4, 1, 3)])
def test_patch_gradient_equals_tensorflows_own_gradient(size, stride, kernel):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, size, size, 5)), tf.float64)
    w = tf.constant(rng.normal(size=(kernel, kernel, 7, 5)), tf.float64)
    dy = tf.constant(rng.normal(size=(3, size * stride, size * stride, 7)), tf.float64)
    shape = [3, size * stride, size * stride, 7]
    results = []
    for op in (conv2d_transpose_patch_gradient,
               lambda a, b, s, st: tf.nn.conv2d_transpose(a, b, s, [1, st, st, 1], "SAME")):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = op(x, w, shape, stride)
        results.append([y, *tape.gradient(y, [x, w], output_gradients=dy)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-10)


@pytest.fixture
def bfloat16_policy():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_layer_matches_keras_in_bfloat16_and_takes_the_patch_path_only_for_small_inputs(bfloat16_policy):
    ours = Conv2DTranspose(16, 4, 2, padding="same")
    theirs = keras.layers.Conv2DTranspose(16, 4, 2, padding="same")
    small, large = tf.random.normal((4, 4, 4, 32), seed=1), tf.random.normal((4, 8, 8, 32), seed=2)
    for layer in (ours, theirs):
        layer.build(small.shape)
    theirs.set_weights([np.random.default_rng(3).normal(size=v.shape).astype("float32") * 0.1 for v in theirs.weights])
    ours.set_weights(theirs.get_weights())
    assert ours._uses_patch_gradient(small) and not ours._uses_patch_gradient(large)
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            y = layer(small)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        assert y.dtype == tf.bfloat16
        grads.append([g.numpy() for g in tape.gradient(loss, layer.trainable_variables)])
    for ours_g, theirs_g in zip(*grads):
        assert ours_g.dtype == np.float32  # the variables stay float32
        np.testing.assert_allclose(ours_g, theirs_g, rtol=0.02, atol=0.02 * np.abs(theirs_g).max())


def test_float32_keeps_keras_path_and_the_layer_saves_and_loads(tmp_path):
    layer = Conv2DTranspose(4, 4, 2, padding="same", name="conv2d_transpose")
    assert not layer._uses_patch_gradient(tf.zeros((1, 4, 4, 3)))
    model = keras.Sequential([keras.Input((4, 4, 3)), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[0]) is Conv2DTranspose
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
