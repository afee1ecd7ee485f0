"""DiffAugment: each transform against NumPy with fixed parameters, the random draws' ranges, one
draw applied alike to several tensors, gradients, graph mode, XLA and bfloat16, policy errors."""

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.errors import ConfigError, UserError
from keras_anime_gan.gans import diffaugment as D

RNG = np.random.default_rng(0)
ALL = "color,translation,cutout"


def _images(batch=3, height=16, width=16, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, channels)).astype(np.float32)


def test_policy_parsing_and_its_errors():
    assert D.parse_policy(ALL) == ("color", "translation", "cutout")
    assert D.parse_policy(" cutout , Color ") == ("cutout", "color")
    assert D.parse_policy(["translation"]) == ("translation",)
    assert D.parse_policy("") == () and D.parse_policy(None) == ()
    with pytest.raises(ConfigError, match="unknown DiffAugment policy 'colour'; choose from color, translation, "
                                          "cutout") as error:
        D.parse_policy("colour,translation")
    assert isinstance(error.value, UserError) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="'cutout' is given twice"):
        D.parse_policy("cutout,color,cutout")
    with pytest.raises(ConfigError, match="translation ratio must be in"):
        D.draw_parameters(tf.random.Generator.from_seed(0), _images(), "translation", translation_ratio=1.5)


def test_color_transforms_equal_numpy():
    x = _images()
    b, s, c = np.array([0.3, -0.4, 0.0]), np.array([0.0, 1.5, 1.0]), np.array([0.5, 1.4, 1.0])
    expected = x + b[:, None, None, None]
    np.testing.assert_allclose(D.brightness(tf.constant(x), b).numpy(), expected, atol=1e-6)
    mean = x.mean(axis=-1, keepdims=True)
    expected = mean + (x - mean) * s[:, None, None, None]
    np.testing.assert_allclose(D.saturation(tf.constant(x), s).numpy(), expected, atol=1e-6)
    assert np.ptp(D.saturation(tf.constant(x), s).numpy()[0], axis=-1).max() < 1e-6  # s = 0: grey
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    expected = mean + (x - mean) * c[:, None, None, None]
    np.testing.assert_allclose(D.contrast(tf.constant(x), c).numpy(), expected, atol=1e-6)
    parameters = {"brightness": b, "saturation": s, "contrast": c}
    got = D.apply_parameters(tf.constant(x), parameters, "color").numpy()
    step = x + b[:, None, None, None]
    step = step.mean(-1, keepdims=True) + (step - step.mean(-1, keepdims=True)) * s[:, None, None, None]
    step_mean = step.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(got, step_mean + (step - step_mean) * c[:, None, None, None], atol=1e-5)


def _numpy_translate(x, shifts):
    out = np.zeros_like(x)
    batch, height, width, _ = x.shape
    for n in range(batch):
        for i in range(height):
            for j in range(width):
                source_i, source_j = i + shifts[n][0], j + shifts[n][1]
                if 0 <= source_i < height and 0 <= source_j < width:
                    out[n, i, j] = x[n, source_i, source_j]
    return out


def test_translation_equals_numpy_with_zeros_outside():
    x = _images(batch=4, height=8, width=12)
    shifts = np.array([[0, 0], [2, -3], [-1, 5], [9, -20]])  # the last moves everything out
    got = D.translate(tf.constant(x), shifts).numpy()
    np.testing.assert_array_equal(got, _numpy_translate(x, shifts))
    assert np.all(got[3] == 0) and np.array_equal(got[0], x[0])


def _numpy_cutout(x, offsets, size):
    out = x.copy()
    for n, (row, column) in enumerate(offsets):
        # The reference's rule: rows offset - size // 2 + k, k < size, clamped into the image.
        rows = np.clip(np.arange(size[0]) + row - size[0] // 2, 0, x.shape[1] - 1)
        columns = np.clip(np.arange(size[1]) + column - size[1] // 2, 0, x.shape[2] - 1)
        out[n][np.ix_(rows, columns)] = 0
    return out


def test_cutout_equals_numpy():
    x = _images(batch=4, height=16, width=12)
    offsets, size = np.array([[0, 0], [8, 6], [16, 12], [3, 11]]), np.array([8, 6])
    got = D.cutout(tf.constant(x), offsets, size).numpy()
    np.testing.assert_array_equal(got, _numpy_cutout(x, offsets, size))
    assert [(got[n] == 0).all(axis=-1).sum() for n in range(4)] == [4 * 3, 8 * 6, 4 * 3, 7 * 4]


def test_draws_cover_the_papers_ranges_and_repeat_for_a_seed():
    images = _images(batch=2000, height=16, width=24, channels=1)
    parameters = D.draw_parameters(tf.random.Generator.from_seed(3), images, ALL)
    values = {name: value.numpy() for name, value in parameters.items()}
    assert -0.5 <= values["brightness"].min() < -0.45 and 0.45 < values["brightness"].max() < 0.5
    assert 0.0 <= values["saturation"].min() < 0.05 and 1.95 < values["saturation"].max() < 2.0
    assert 0.5 <= values["contrast"].min() < 0.55 and 1.45 < values["contrast"].max() < 1.5
    # translation: round(size / 8) pixels each way; cutout: round(size / 2), offset 0..size - size % 2
    assert sorted(set(values["translation"][:, 0])) == list(range(-2, 3))
    assert sorted(set(values["translation"][:, 1])) == list(range(-3, 4))
    assert values["cutout_size"].tolist() == [8, 12]
    assert sorted(set(values["cutout_offset"][:, 0])) == list(range(0, 17))
    assert sorted(set(values["cutout_offset"][:, 1])) == list(range(0, 25))
    again = D.draw_parameters(tf.random.Generator.from_seed(3), images, ALL)
    for name, value in again.items():
        np.testing.assert_array_equal(value.numpy(), values[name])
    assert sorted(D.draw_parameters(tf.random.Generator.from_seed(3), images, "cutout")) == [
        "cutout_offset", "cutout_size"]


def test_one_draw_is_the_same_transform_on_several_tensors():
    """A tensor of pixel indices, transformed with the images' parameters, tells where each output
    pixel came from: the images' output must be exactly those pixels (or zero)."""
    x = _images(batch=6, height=16, width=16)
    parameters = D.draw_parameters(tf.random.Generator.from_seed(5), x, "translation,cutout")
    index = np.arange(1, 16 * 16 + 1, dtype=np.float32).reshape(1, 16, 16, 1).repeat(6, axis=0)
    moved = D.apply_parameters(tf.constant(index), parameters, "translation,cutout").numpy().astype(int)[..., 0]
    got = D.apply_parameters(tf.constant(x), parameters, "translation,cutout").numpy()
    flat = x.reshape(6, 256, 3)
    expected = np.where(moved[..., None] > 0, np.take_along_axis(flat, np.maximum(moved - 1, 0).reshape(6, 256, 1),
                                                                 axis=1).reshape(6, 16, 16, 3), 0.0)
    np.testing.assert_array_equal(got, expected)
    assert (moved == 0).any() and (moved > 0).any()
    # Colour too: the same parameters give the same result on a copy, a fresh draw does not.
    parameters = D.draw_parameters(tf.random.Generator.from_seed(5), x, ALL)
    first = D.apply_parameters(tf.constant(x), parameters, ALL).numpy()
    np.testing.assert_array_equal(D.apply_parameters(tf.constant(x.copy()), parameters, ALL).numpy(), first)
    rng = tf.random.Generator.from_seed(5)
    assert not np.array_equal(D.diff_augment(x, ALL, rng).numpy(), D.diff_augment(x, ALL, rng).numpy())


def test_gradients_reach_the_input_as_masks_for_translation_and_cutout():
    x = tf.constant(_images(batch=4))
    parameters = D.draw_parameters(tf.random.Generator.from_seed(1), x, ALL)
    for policy in (ALL, "color"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(D.apply_parameters(x, parameters, policy) * 1.7)
        gradient = tape.gradient(total, x).numpy()
        assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0
    for policy in ("translation", "cutout", "translation,cutout"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(D.apply_parameters(x, parameters, policy))
        gradient = tape.gradient(total, x).numpy()
        assert set(np.unique(gradient)) == {0.0, 1.0}
        # The mask is exactly the input pixels that reach the output.
        used = D.apply_parameters(tf.ones_like(x), parameters, policy).numpy().sum()
        assert gradient.sum() == used


def test_graph_mode_xla_and_bfloat16_agree_with_eager():
    x = tf.constant(_images(batch=4))
    parameters = D.draw_parameters(tf.random.Generator.from_seed(2), x, ALL)
    eager = D.apply_parameters(x, parameters, ALL).numpy()
    graph = tf.function(lambda x, p: D.apply_parameters(x, p, ALL))(x, parameters).numpy()
    xla = tf.function(lambda x, p: D.apply_parameters(x, p, ALL), jit_compile=True)(x, parameters).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-6)
    np.testing.assert_allclose(xla, eager, atol=1e-5)
    low = D.apply_parameters(tf.cast(x, tf.bfloat16), parameters, ALL)
    assert low.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(low, tf.float32).numpy(), eager, atol=0.05)

    # Drawing inside a compiled function works too, with gradients, from a generator's stream.
    rng = tf.random.Generator.from_seed(4)

    @tf.function(jit_compile=True)
    def augment_with_gradient(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            total = tf.reduce_sum(tf.cast(D.diff_augment(images, ALL, rng), tf.float32))
        return total, tape.gradient(total, images)

    total, gradient = augment_with_gradient(tf.cast(x, tf.bfloat16))
    assert gradient.dtype == tf.bfloat16
    assert np.isfinite(total.numpy()) and np.abs(tf.cast(gradient, tf.float32).numpy()).sum() > 0
    assert D.diff_augment(x, "", rng) is x
