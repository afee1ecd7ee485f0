"""ADA: the p rule, exact blits, colour identities, NVIDIA's per-sample rates, linearity and the adjoint."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan.gans.stylegan2 import augment as A

RNG = np.random.default_rng(0)
OFF = {name: 0.0 for name in A.AUGMENTATIONS}


def only(*names, **kwargs):
    return A.AdaptiveAugment("bgc", strengths={**OFF, **dict.fromkeys(names, 1.0)}, **kwargs)


def images(batch=6, size=8):
    return RNG.uniform(-1, 1, size=(batch, size, size, 3)).astype(np.float32)


def test_p_rule():
    step = 32 * 4 / 500_000
    assert float(A.ada_p_update(0.5, 0.7, 32)) == pytest.approx(0.5 + step)
    assert float(A.ada_p_update(0.5, 0.5, 32)) == pytest.approx(0.5 - step)
    assert float(A.ada_p_update(0.0, 0.1, 32)) == 0.0
    assert float(A.ada_p_update(1.0, 0.9, 32)) == 1.0  # clamped: NVIDIA lets p pass 1
    assert float(A.ada_p_update(0.2, 0.9, 64, interval=2, target=0.95, speed_kimg=100)) == pytest.approx(
        0.2 - 128 / 100_000)


def test_accumulate_and_adjust():
    layer = A.AdaptiveAugment(initial_p=0.1, seed=0)
    assert layer.p in layer.non_trainable_weights and not layer.trainable_weights
    layer.accumulate(tf.constant([[1.5], [2.0], [-0.5], [3.0]]))  # signs: r_t = 0.5 < 0.6
    layer.accumulate(tf.constant([[1.0], [1.0], [-1.0], [1.0]]))
    new_p = layer.adjust()
    assert float(new_p) == pytest.approx(0.1 - 8 / 500_000) and float(layer.p) == pytest.approx(float(new_p))
    assert float(layer.rt) == pytest.approx(0.5)
    assert float(layer.sign_sum) == 0.0 and float(layer.sign_count) == 0.0
    assert float(layer.adjust()) == pytest.approx(float(new_p))  # nothing accumulated: unchanged
    layer.accumulate(tf.ones([16, 1]))
    layer.adjust(batch_size=16)  # NVIDIA's batch * interval
    assert float(layer.p) == pytest.approx(float(new_p) + 16 * 4 / 500_000)
    values = layer.metric_values()
    assert set(values) == {"ada_p", "r_t"} and float(values["r_t"]) == 1.0


def test_identity_at_p_zero_and_outside_training():
    x = images()
    layer = A.AdaptiveAugment(seed=0)
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x)
    layer.p.assign(1.0)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    # Through the whole resampling path with every decision off: up + down is an exact identity.
    np.testing.assert_allclose(layer.augment(x, p=0.0).numpy(), x, atol=2e-6)


def test_exact_xflips_at_p_one():
    x = images(batch=16)
    out = only("xflip", seed=1, initial_p=1.0)(x, training=True).numpy()
    flipped = [np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_exact_rot90_at_p_one():
    x = images(batch=24)
    out = only("rotate90", seed=2, initial_p=1.0)(x, training=True).numpy()
    found = [[k for k in range(4) if np.array_equal(o, np.rot90(xi, k, axes=(0, 1)))] for o, xi in zip(out, x)]
    assert all(len(ks) == 1 for ks in found)
    assert {ks[0] for ks in found} == {0, 1, 2, 3}


def reflect_shift(x, dx, dy):
    """out[r, c] = x[reflect(r - dy), reflect(c - dx)] (reflection without repeating the edge)."""
    h, w = x.shape[:2]
    padded = np.pad(x, ((h - 1, h - 1), (w - 1, w - 1), (0, 0)), mode="reflect")
    return padded[h - 1 - dy:2 * h - 1 - dy, w - 1 - dx:2 * w - 1 - dx]


def test_exact_integer_translation_at_p_one():
    x = images(batch=16, size=16)
    out = only("xint", seed=3, initial_p=1.0)(x, training=True).numpy()
    limit = round(0.125 * 16)
    shifts = []
    for o, xi in zip(out, x):
        matches = [(dx, dy) for dx in range(-limit, limit + 1) for dy in range(-limit, limit + 1)
                   if np.array_equal(o, reflect_shift(xi, dx, dy))]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 3


def test_resampling_is_exact_for_integer_shifts_and_centred_for_rotations():
    # White-box: the sym6 up / warp / down path against the exact blit of the same matrix.
    size = 16
    yy, xx = np.mgrid[0:size, 0:size] / size
    smooth = np.stack([np.sin(2 * xx + yy), np.cos(3 * yy) * xx, xx * yy], -1)[None].astype(np.float32)
    smooth = tf.constant(np.repeat(smooth, 2, axis=0))
    layer = A.AdaptiveAugment(seed=0)
    canvas = layer._blit(smooth, None, size - 1, size - 1)
    shift = A.translate2d(tf.constant([1.0, -2.0]), tf.constant([2.0, 0.0]))
    np.testing.assert_allclose(layer._warp(canvas, shift, size, size).numpy(),
                               layer._blit(smooth, shift, 0, 0).numpy(), atol=2e-6)
    rotation = A.rotate2d(tf.constant([math.pi / 2, -math.pi / 2]))
    error = np.abs(layer._warp(canvas, rotation, size, size).numpy() - layer._blit(smooth, rotation, 0, 0).numpy())
    assert error.max() < 0.03  # half a pixel off (a missing -0.5 shift) would be ~0.5


def test_colour_identities():
    x = images(batch=4)
    batch = 4
    two_pi = A.hue_rotation_matrix(tf.fill([batch], 2 * math.pi))
    np.testing.assert_allclose(A.apply_color_matrix(x, two_pi).numpy(), x, atol=1e-5)
    flip = A.luma_flip_matrix(tf.ones([batch]))
    np.testing.assert_allclose(A.apply_color_matrix(x, flip @ flip).numpy(), x, atol=1e-5)
    grey = A.apply_color_matrix(x, A.saturation_matrix(tf.zeros([batch]))).numpy()
    np.testing.assert_allclose(grey, np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1), atol=1e-5)
    np.testing.assert_allclose(A.apply_color_matrix(grey, flip).numpy(), -grey, atol=1e-5)  # luma negated
    third = A.hue_rotation_matrix(tf.fill([batch], 2 * math.pi / 3)).numpy()[0, :3, :3]
    np.testing.assert_allclose(np.abs(third), np.roll(np.eye(3), 1, axis=0), atol=1e-6)  # 120 deg permutes RGB


def test_colour_pipeline_keeps_grey_grey_without_hue_and_saturation():
    x = np.repeat(images(batch=8)[..., :1], 3, axis=-1)
    out = only("brightness", "contrast", "lumaflip", seed=4, initial_p=1.0)(x, training=True).numpy()
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-5)
    assert np.abs(out - x).max() > 0.05


@pytest.mark.parametrize("name,rate", [("xflip", 0.5), ("rotate90", 0.75)])
def test_per_sample_rates_follow_nvidia(name, rate):
    p, n = 0.6, 2000
    x = images(batch=n, size=4)
    out = only(name, seed=5, initial_p=p)(x, training=True).numpy()
    changed = np.abs(out - x).reshape(n, -1).max(axis=1) > 0
    expected = rate * p
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert abs(changed.mean() - expected) < 4 * sigma


def test_rotation_probability_makes_pre_or_post_rotation_p():
    p, n = 0.5, 4000
    layer = only("rotate", seed=6, initial_p=p)
    _, geometric = layer._geometric_matrices(n, 8, 8, tf.constant(p))
    rotated = np.abs(geometric.numpy()[:, 0, 1]) > 1e-7
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rotated.mean() - p) < 4 * sigma


def test_full_pipeline_is_linear_and_gradient_is_the_adjoint():
    x = tf.constant(images(batch=4, size=16))
    y = tf.constant(RNG.normal(size=(4, 16, 16, 3)).astype(np.float32))
    # Brightness adds an offset (affine, not linear): off for this check.
    layer = A.AdaptiveAugment("bgc", strengths={"brightness": 0.0}, seed=7, initial_p=0.8)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        inner = tf.reduce_sum(out * y)  # <A x, y>
    adjoint = tape.gradient(inner, x)  # A^T y
    assert np.abs(out.numpy() - x.numpy()).max() > 0.1
    np.testing.assert_allclose(float(tf.reduce_sum(x * adjoint)), float(inner), rtol=1e-4)


def test_xla_compiles_and_accumulates():
    layer = A.AdaptiveAugment(seed=9, initial_p=0.7)
    x = tf.constant(images(batch=4))

    @tf.function(jit_compile=True)
    def run(images):
        out = layer(images, training=True)
        layer.accumulate(tf.reduce_mean(out, axis=[1, 2, 3]))
        return out

    out = run(x).numpy()
    assert out.shape == x.shape and np.isfinite(out).all() and float(layer.sign_count) == 4


def test_r1_through_augmentation_compiles_under_xla_for_batches_of_unknown_size():
    """R1 differentiates a gradient taken through the augmentation; XLA compiles that for a batch
    whose size is unknown when traced (Keras's batches of an array), as graph mode does."""

    def penalty_gradient(layer):
        def gradient(images):
            with tf.GradientTape() as outer:
                outer.watch(images)
                with tf.GradientTape() as inner:
                    inner.watch(images)
                    score = tf.reduce_sum(layer(images, training=True) ** 2)
                penalty = tf.reduce_sum(inner.gradient(score, images) ** 2)
            return outer.gradient(penalty, images)
        return gradient

    x = tf.constant(images(batch=2, size=8))
    spec = [tf.TensorSpec([None, *x.shape[1:]], tf.float32)]
    # Only a scale by 2**0, so both draw the same transform: still the whole geometric path (padding,
    # 2x up, warp, 2x down); XLA draws other random numbers than graph mode.
    strengths = {**{name: 0.0 for name in A.AUGMENTATIONS}, "scale": 1.0}
    compiled, graph = (tf.function(penalty_gradient(A.AdaptiveAugment(initial_p=1.0, strengths=strengths,
                                                                      scale_std=0.0)),
                                   jit_compile=jit, input_signature=spec)(x).numpy() for jit in (True, False))
    assert np.abs(graph).max() > 0
    np.testing.assert_allclose(compiled, graph, rtol=1e-3, atol=1e-4 * np.abs(graph).max())


def test_seeded_layers_repeat_and_graph_mode_agrees():
    x = tf.constant(images(batch=4, size=16))
    first = A.AdaptiveAugment(seed=8, initial_p=0.7)(x, training=True).numpy()
    second = A.AdaptiveAugment(seed=8, initial_p=0.7)(x, training=True).numpy()
    np.testing.assert_array_equal(first, second)
    layer = A.AdaptiveAugment(seed=8, initial_p=0.7)
    graph = tf.function(lambda images: layer(images, training=True))(x).numpy()
    np.testing.assert_allclose(graph, first, atol=1e-5)
    config = layer.get_config()
    assert A.AdaptiveAugment.from_config(config).strength == layer.strength
