"""StyleGAN2 layers against NumPy references: resampling, equalized lr, modulated conv, noise, minibatch std."""

import math

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from keras_anime_gan.gans.stylegan2 import layers as L

RNG = np.random.default_rng(0)


def _pad_or_crop(x, before, after, axis):
    if before < 0:
        x = np.take(x, range(-before, x.shape[axis]), axis=axis)
        before = 0
    if after < 0:
        x = np.take(x, range(0, x.shape[axis] + after), axis=axis)
        after = 0
    widths = [(0, 0)] * x.ndim
    widths[axis] = (before, after)
    return np.pad(x, widths)


def np_upfirdn2d(x, taps, up=1, down=1, pad=(0, 0), gain=1.0, flip_filter=False):
    """Reference on one (H, W) plane: zero insertion, zero padding, 2-D filter, keep every `down`-th."""
    h, w = x.shape
    z = np.zeros((h * up, w * up))
    z[::up, ::up] = x
    z = _pad_or_crop(_pad_or_crop(z, pad[0], pad[1], 0), pad[0], pad[1], 1)
    kernel = np.outer(taps, taps) * gain
    op = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d  # convolve2d: true convolution
    return op(z, kernel, mode="valid")[::down, ::down]


def np_conv_transpose(x, w, stride=2):
    """Scatter form: out[s*i + a, s*j + b, o] += x[i, j, c] * w[a, b, c, o] (no padding)."""
    h, wd, _ = x.shape
    k = w.shape[0]
    out = np.zeros(((h - 1) * stride + k, (wd - 1) * stride + k, w.shape[3]))
    for i in range(h):
        for j in range(wd):
            out[stride * i:stride * i + k, stride * j:stride * j + k] += np.einsum("c,abco->abo", x[i, j], w)
    return out


def np_correlate_valid(x, w, stride=1):
    """out[i, j, o] = sum x[s*i + a, s*j + b, c] * w[a, b, c, o]."""
    k = w.shape[0]
    h = (x.shape[0] - k) // stride + 1
    wd = (x.shape[1] - k) // stride + 1
    out = np.zeros((h, wd, w.shape[3]))
    for i in range(h):
        for j in range(wd):
            out[i, j] = np.einsum("abc,abco->o", x[stride * i:stride * i + k, stride * j:stride * j + k], w)
    return out


def per_channel(fn, x):
    """Apply a plane function to every (sample, channel) of an NHWC array."""
    return np.stack([np.stack([fn(x[b, :, :, c]) for c in range(x.shape[3])], -1) for b in range(x.shape[0])])


@pytest.mark.parametrize("implementation", L.FIR_IMPLEMENTATIONS)
@pytest.mark.parametrize("up,down,pad,flip", [(2, 1, (2, 1), False), (2, 1, (-1, 4), True), (1, 2, (1, 1), False),
                                              (1, 1, (3, -1), True), (2, 2, (0, 0), False)])
def test_upfirdn2d_matches_numpy_reference(up, down, pad, flip, implementation):
    x = RNG.normal(size=(2, 7, 7, 3)).astype(np.float32)
    taps = np.array([1.0, 2.0, 3.0, 4.0, 0.5]) / 10  # asymmetric: catches convolution vs correlation
    got = L.upfirdn2d(x, taps, up=up, down=down, padding=pad, gain=up * up, flip_filter=flip,
                      implementation=implementation).numpy()
    want = per_channel(lambda p: np_upfirdn2d(p, taps, up, down, pad, up * up, flip), x)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_upfirdn2d_under_xla_uses_the_same_maths():
    x = RNG.normal(size=(2, 6, 6, 8)).astype(np.float32)
    taps = np.array([1.0, 2.0, 3.0, 4.0]) / 10
    compiled = tf.function(lambda v: (L.upsample2d(v, taps), L.upfirdn2d(v, taps, down=2, padding=1)),
                           jit_compile=True)(x)
    np.testing.assert_allclose(compiled[0].numpy(), L.upsample2d(x, taps).numpy(), atol=1e-5)
    np.testing.assert_allclose(compiled[1].numpy(), L.upfirdn2d(x, taps, down=2, padding=1).numpy(), atol=1e-5)


def test_upsample_and_downsample_use_the_normalised_1331_filter():
    x = RNG.normal(size=(2, 6, 6, 2)).astype(np.float32)
    taps = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(L.upsample2d(x).numpy(),
                               per_channel(lambda p: np_upfirdn2d(p, taps, 2, 1, (2, 1), 4.0), x), atol=1e-5)
    np.testing.assert_allclose(L.downsample2d(x).numpy(),
                               per_channel(lambda p: np_upfirdn2d(p, taps, 1, 2, (1, 1)), x), atol=1e-5)
    assert L.upsample2d(x).shape == (2, 12, 12, 2) and L.downsample2d(x).shape == (2, 3, 3, 2)


def test_constant_images_stay_constant_inside():
    const = np.full((1, 8, 8, 2), 0.7, np.float32)
    np.testing.assert_allclose(L.upsample2d(const).numpy()[:, 2:-2, 2:-2], 0.7, rtol=1e-6)
    np.testing.assert_allclose(L.downsample2d(const).numpy()[:, 1:-1, 1:-1], 0.7, rtol=1e-6)
    kernel = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    expected = 0.7 * kernel.sum(axis=(0, 1, 2))
    up = L.conv2d_resample(const, kernel, up=2).numpy()
    down = L.conv2d_resample(const, kernel, down=2).numpy()
    np.testing.assert_allclose(up[:, 3:-3, 3:-3], np.broadcast_to(expected, up[:, 3:-3, 3:-3].shape), rtol=1e-5)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], np.broadcast_to(expected, down[:, 1:-1, 1:-1].shape), rtol=1e-5)


def test_conv2d_resample_matches_numpy_reference():
    x = RNG.normal(size=(2, 5, 5, 3)).astype(np.float32)
    kernel = RNG.normal(size=(3, 3, 3, 4)).astype(np.float32)
    blur = np.array([1, 3, 3, 1]) / 8
    # Up: transposed conv (2H+1), then pad 1 and blur with gain 4.
    want_up = []
    for b in range(2):
        t = np_conv_transpose(x[b].astype(np.float64), kernel.astype(np.float64))
        want_up.append(np.stack([np_upfirdn2d(t[:, :, o], blur, 1, 1, (1, 1), 4.0) for o in range(4)], -1))
    np.testing.assert_allclose(L.conv2d_resample(x, kernel, up=2).numpy(), np.stack(want_up), atol=1e-4)
    # Down: pad 2 and blur, then a stride-2 correlation.
    x8 = RNG.normal(size=(2, 8, 8, 3)).astype(np.float32)
    want_down = []
    for b in range(2):
        blurred = np.stack([np_upfirdn2d(x8[b, :, :, c], blur, 1, 1, (2, 2)) for c in range(3)], -1)
        want_down.append(np_correlate_valid(blurred, kernel.astype(np.float64), stride=2))
    np.testing.assert_allclose(L.conv2d_resample(x8, kernel, down=2).numpy(), np.stack(want_down), atol=1e-4)
    # 1x1 with downsampling (the discriminator's skip): pad 1, blur, every second pixel.
    k1 = RNG.normal(size=(1, 1, 3, 4)).astype(np.float32)
    want_skip = np.stack([np.einsum("hwc,co->hwo", np.stack([np_upfirdn2d(x8[b, :, :, c], blur, 1, 2, (1, 1))
                                                              for c in range(3)], -1), k1[0, 0]) for b in range(2)])
    np.testing.assert_allclose(L.conv2d_resample(x8, k1, down=2).numpy(), want_skip, atol=1e-4)


def test_bias_act_gain_and_clamp():
    x = tf.constant([[-2.0, 0.5, 300.0]])
    out = L.bias_act(x, tf.constant([1.0, 0.0, 0.0]), "lrelu", clamp=256.0).numpy()
    np.testing.assert_allclose(out, [[-0.2 * math.sqrt(2), 0.5 * math.sqrt(2), 256.0]], rtol=1e-6)
    np.testing.assert_allclose(L.bias_act(x, None, "linear", gain=0.5).numpy(), [[-1.0, 0.25, 150.0]])


def test_equalized_dense_storage_and_runtime_scaling():
    layer = L.EqualizedDense(256, 128, activation="linear", lr_multiplier=0.01, bias_init=0.5)
    kernel = layer.kernel.numpy()
    assert 90 < kernel.std() < 110  # stored N(0, 1) / lr_multiplier
    np.testing.assert_allclose(layer.bias.numpy(), 0.5)
    x = RNG.normal(size=(512, 256)).astype(np.float32)
    want = x @ (kernel * 0.01 / math.sqrt(256)) + 0.5 * 0.01
    np.testing.assert_allclose(layer(x).numpy(), want, atol=1e-4)
    assert abs(layer(x).numpy().std() - 1.0) < 0.1  # unit variance in, unit variance out
    lrelu = L.EqualizedDense(256, 128, activation="lrelu")
    y = x @ (lrelu.kernel.numpy() / 16)
    np.testing.assert_allclose(lrelu(x).numpy(), np.where(y > 0, y, 0.2 * y) * math.sqrt(2), atol=1e-4)


def test_equalized_conv_scaling():
    layer = L.EqualizedConv2D(8, 6, 3, activation="lrelu")
    assert 0.8 < layer.kernel.numpy().std() < 1.2
    x = RNG.normal(size=(2, 6, 6, 8)).astype(np.float32)
    y = tf.nn.conv2d(x, layer.kernel.numpy() / math.sqrt(8 * 9), 1, "SAME").numpy()
    np.testing.assert_allclose(layer(x).numpy(), np.where(y > 0, y, 0.2 * y) * math.sqrt(2), atol=1e-5)
    down = L.EqualizedConv2D(8, 6, 3, down=2, gain=math.sqrt(0.5), conv_clamp=0.1)
    assert down(x).shape == (2, 3, 3, 6) and np.abs(down(x).numpy()).max() <= 0.1 * math.sqrt(0.5) + 1e-7


@pytest.mark.parametrize("demodulate,up", [(True, 1), (True, 2), (False, 1)])
def test_modulated_conv_equals_per_sample_conv_with_scaled_weights(demodulate, up):
    layer = L.ModulatedConv2D(5, 4, w_dim=7, kernel_size=3, demodulate=demodulate, up=up)
    np.testing.assert_allclose(layer.affine.bias.numpy(), 1.0)  # styles start around 1
    x = RNG.normal(size=(3, 6, 6, 5)).astype(np.float32)
    w = RNG.normal(size=(3, 7)).astype(np.float32)
    styles = layer.styles(w).numpy()
    kernel = layer.kernel.numpy() / math.sqrt(5 * 9)
    got = layer(x, w).numpy()
    for b in range(3):
        wb = kernel * styles[b][None, None, :, None]
        if demodulate:
            wb = wb / np.sqrt((wb ** 2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        if up == 1:
            want = tf.nn.conv2d(x[b:b + 1], wb, 1, "SAME").numpy()
        else:
            want = L.conv2d_resample(x[b:b + 1], wb.astype(np.float32), up=2).numpy()
        np.testing.assert_allclose(got[b:b + 1], want, atol=1e-4)


def test_demodulation_epsilon_is_nvidias_next_to_the_unscaled_weight():
    """NVIDIA's SynthesisLayer demodulates its stored N(0, 1) weight: 1 / sqrt(sum (w s)^2 + 1e-8).
    With styles of 1e-5 that sum is about 36e-10, so the epsilon weighs: scaling the weight by
    1/sqrt(fan_in) first (as this layer did) made the epsilon 36x larger and the output about 5x too
    small here (measured before the fix: relative error 0.82 at most, every element off)."""
    layer = L.ModulatedConv2D(4, 3, w_dim=2, kernel_size=3)
    layer.affine.kernel.assign(np.zeros((2, 4), np.float32))
    layer.affine.bias.assign(np.full(4, 1e-5, np.float32))  # styles = 1e-5 for every sample
    x = RNG.normal(size=(2, 5, 5, 4)).astype(np.float32)
    got = layer(x, RNG.normal(size=(2, 2)).astype(np.float32)).numpy()
    weight = layer.kernel.numpy().astype(np.float64) * 1e-5
    coefficients = 1.0 / np.sqrt((weight ** 2).sum(axis=(0, 1, 2)) + 1e-8)
    want = tf.nn.conv2d(x.astype(np.float64), weight, 1, "SAME").numpy() * coefficients
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_minibatch_stddev_refuses_a_batch_its_groups_do_not_divide():
    """NVIDIA's layer refuses it too (its reshape fails); here the message says why."""
    with pytest.raises(ValueError, match="a batch of 6 does not split into groups of 4"):
        L.minibatch_stddev(np.zeros((6, 4, 4, 8), np.float32), group_size=4)


def test_demodulated_conv_in_float16_does_not_overflow_before_demodulating():
    """Styles of 300 and inputs of 30 over 64 channels would overflow float16 (65504) in the
    convolution before demodulation brings them back; pre-normalised, it matches float32."""
    x = 30.0 * RNG.normal(size=(2, 6, 6, 64)).astype(np.float32)
    kernel = 5.0 * RNG.normal(size=(3, 3, 64, 8)).astype(np.float32)
    styles = 300.0 * (1.0 + RNG.uniform(size=(2, 64))).astype(np.float32)
    want = L.modulated_conv2d(x, kernel, styles).numpy()
    got = L.modulated_conv2d(tf.cast(x, tf.float16), kernel, styles).numpy()
    assert got.dtype == np.float16 and np.isfinite(got).all()
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=0.02, atol=0.02 * np.abs(want).max())


def test_demodulated_output_has_unit_std_for_unit_input():
    layer = L.ModulatedConv2D(32, 16, w_dim=8, kernel_size=3)
    x = RNG.normal(size=(8, 12, 12, 32)).astype(np.float32)
    w = 3.0 * RNG.normal(size=(8, 8)).astype(np.float32)  # styles far from 1: demodulation removes them
    out = layer(x, w).numpy()[:, 1:-1, 1:-1]  # inside: no zero padding
    assert abs(out.std() - 1.0) < 0.03


def test_synthesis_layer_noise_modes():
    layer = L.SynthesisLayer(4, 6, w_dim=5, resolution=8)
    x = np.repeat(RNG.normal(size=(1, 8, 8, 4)).astype(np.float32), 2, axis=0)
    w = np.repeat(RNG.normal(size=(1, 5)).astype(np.float32), 2, axis=0)
    np.testing.assert_allclose(layer(x, w, noise_mode="random").numpy(), layer(x, w, noise_mode="none").numpy())
    layer.noise_strength.assign(0.5)
    layer.bias.assign(np.linspace(-1, 1, 6).astype(np.float32))
    conv = layer.conv(x, w).numpy()
    want = L.bias_act(conv + 0.5 * layer.noise_const.numpy()[None, :, :, None], layer.bias, "lrelu").numpy()
    np.testing.assert_allclose(layer(x, w, noise_mode="const").numpy(), want, atol=1e-5)
    random = layer(x, w, noise_mode="random", rng=tf.random.Generator.from_seed(1)).numpy()
    assert np.abs(random[0] - random[1]).max() > 1e-3  # per-sample noise
    explicit = np.full((2, 8, 8, 1), 2.0, np.float32)
    want = L.bias_act(conv + 1.0, layer.bias, "lrelu").numpy()
    np.testing.assert_allclose(layer(x, w, noise=explicit).numpy(), want, atol=1e-5)
    with pytest.raises(ValueError):
        layer(x, w, noise_mode="bogus")


def test_torgb_is_modulated_not_demodulated():
    layer = L.ToRGB(6, w_dim=4)
    x = RNG.normal(size=(2, 4, 4, 6)).astype(np.float32)
    w = RNG.normal(size=(2, 4)).astype(np.float32)
    styles = layer.conv.styles(w).numpy()
    kernel = layer.conv.kernel.numpy()[0, 0] / math.sqrt(6)
    want = np.einsum("bhwc,co->bhwo", x * styles[:, None, None, :], kernel)
    out = layer(x, w)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)


def np_minibatch_std(x, group):
    n = x.shape[0]
    g = min(group, n)
    m = n // g
    out = np.zeros(x.shape[:3] + (1,))
    for i in range(m):
        members = [i + k * m for k in range(g)]  # sample n is grouped with n + N/G, n + 2N/G, ...
        stat = np.sqrt(x[members].var(axis=0) + 1e-8).mean()
        out[members] = stat
    return np.concatenate([x, out], axis=-1)


@pytest.mark.parametrize("batch,group", [(8, 4), (6, 2), (2, 4)])
def test_minibatch_stddev_matches_numpy_with_grouping(batch, group):
    x = RNG.normal(size=(batch, 4, 4, 5)) * np.arange(1, batch + 1)[:, None, None, None]  # groups differ
    got = L.MinibatchStd(group_size=group)(x.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, np_minibatch_std(x, group), rtol=1e-4)


def test_minibatch_stddev_channel_slices():
    x = RNG.normal(size=(4, 2, 2, 6)).astype(np.float32)
    x[..., 3:] *= 5.0
    got = L.minibatch_stddev(x, group_size=4, num_channels=2).numpy()
    for f, channels in enumerate((slice(0, 3), slice(3, 6))):
        want = np.sqrt(x[..., channels].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(got[..., 6 + f], want, rtol=1e-5)


def test_layers_compute_in_bfloat16_with_float32_variables():
    layer = L.SynthesisLayer(4, 6, w_dim=5, resolution=8, up=2, dtype="mixed_bfloat16")
    out = layer(RNG.normal(size=(2, 4, 4, 4)).astype(np.float32), RNG.normal(size=(2, 5)).astype(np.float32))
    assert out.dtype == tf.bfloat16 and all(v.dtype == "float32" for v in layer.weights)
    assert np.isfinite(out.numpy().astype(np.float32)).all()
