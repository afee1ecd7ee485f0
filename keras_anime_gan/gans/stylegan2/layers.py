"""StyleGAN2 building blocks: equalized learning rate, FIR resampling, modulated convolution.

Everything is NHWC and follows StyleGAN2 / StyleGAN2-ADA (Karras et al. 2020):

- Equalized learning rate: weights are stored N(0, 1) / lr_multiplier and scaled at run time by
  lr_multiplier / sqrt(fan_in); biases are scaled by lr_multiplier. Adam then sees every weight at the
  same scale, whatever its fan-in.
- `bias_act`: `act(x + b) * gain`, lrelu(0.2) with gain sqrt(2) (keeps unit variance), then an optional
  clamp (NVIDIA clamps at +-256 so float16 activations cannot overflow).
- Resampling with the normalised [1, 3, 3, 1] filter: upsampling is zero insertion + padding + a true
  convolution with gain 4; a convolution with upsampling is a stride-2 transposed convolution
  followed by that blur; a convolution with downsampling is the blur followed by a stride-2
  convolution. Blurs are separable FIRs: depthwise convolutions, per-axis convolutions with a
  diagonal kernel for few channels, or shifted slices under XLA (see `upfirdn2d`).
- Modulated convolution, non-fused: scale the input channels by the styles, convolve with the shared
  kernel, scale the output channels by the demodulation coefficients. Mathematically equal to a
  per-sample convolution with weights w'[b] = w * s[b] (then / ||w'[b]|| per output channel), and it
  needs no grouped convolution (which TensorFlow lacks on CPU).

Layers create their weights in `__init__` (their input sizes are constructor arguments, as in NVIDIA's
code), so a network can be counted, saved and EMA-copied without being run. Variables are float32;
the maths runs in the layer's compute dtype (bfloat16 under a mixed policy).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

PACKAGE = "keras_anime_gan"
DEFAULT_FILTER = (1, 3, 3, 1)
ACTIVATIONS = {"linear": 1.0, "lrelu": math.sqrt(2.0)}  # activation -> the gain that keeps unit variance


# ----------------------------------------------------------------------------- functions


def setup_filter(taps=DEFAULT_FILTER) -> np.ndarray:
    """1-D FIR taps normalised to sum 1 (the 2-D filter is their outer product)."""
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 1 or taps.size < 1:
        raise ValueError(f"filter taps must be a non-empty 1-D sequence, got shape {taps.shape}")
    return taps / taps.sum()


def bias_act(x, bias=None, activation="linear", gain=1.0, clamp=None):
    """`act(x + bias) * default_gain(act) * gain`, then clipped to +-clamp when clamp is set.

    Args:
        x: (..., C) tensor; bias: (C,) or None (cast to x's dtype).
        activation: "linear" or "lrelu" (slope 0.2, default gain sqrt(2)).
        gain: extra multiplier (the residual discriminator uses sqrt(0.5)).
        clamp: None or a positive float, applied after the gain.
    Returns:
        a tensor shaped and typed like x.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    if bias is not None:
        x = x + tf.cast(bias, x.dtype)
    if activation == "lrelu":
        x = tf.nn.leaky_relu(x, alpha=0.2)
    total_gain = ACTIVATIONS[activation] * gain
    if total_gain != 1.0:
        x = x * tf.cast(total_gain, x.dtype)
    if clamp is not None:
        x = tf.clip_by_value(x, tf.cast(-clamp, x.dtype), tf.cast(clamp, x.dtype))
    return x


def _pad_or_crop(x, axis, before, after):
    """Zero-pad (positive) or crop (negative) one spatial axis of an NHWC tensor."""
    if before < 0 or after < 0:
        size = x.shape[axis]
        start, stop = max(-before, 0), size - max(-after, 0)
        x = x[:, start:stop] if axis == 1 else x[:, :, start:stop]
        before, after = max(before, 0), max(after, 0)
    if before or after:
        paddings = [[0, 0]] * 4
        paddings[axis] = [before, after]
        x = tf.pad(x, paddings)
    return x


def _padding4(padding):
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    if len(padding) == 4:
        return tuple(padding)
    raise ValueError(f"padding must be an int, (before, after) or (x0, x1, y0, y1); got {padding!r}")


FIR_IMPLEMENTATIONS = ("depthwise", "dense", "slices")


def upfirdn2d(x, taps, up=1, down=1, padding=0, gain=1.0, flip_filter=False, implementation=None):
    """Upsample (zero insertion), pad, FIR-filter, downsample; a separable filter on NHWC images.

    Args:
        x: (B, H, W, C) tensor with static H, W, C.
        taps: 1-D filter taps (used as given: normalise them with `setup_filter`).
        up, down: integer factors, the same for both axes.
        padding: int, (before, after) for both axes, or (x0, x1, y0, y1); negative values crop.
        gain: overall gain of the 2-D filter (4 for a 2x upsampling keeps the mean).
        flip_filter: False = true convolution (the filter is flipped), True = correlation.
        implementation: None picks the fastest: "slices" (shifted slices, fused by XLA) under XLA,
            whose CPU depthwise convolution is very slow; otherwise "dense" (per-axis convolutions
            with a diagonal C x C kernel, transposed for upsampling) for up to 4 channels, where
            TensorFlow's depthwise kernel is slow, and "depthwise" for more.
    Returns:
        (B, (H*up + y0 + y1 - len(taps)) // down + 1, ..., C), in x's dtype.
    """
    x = tf.convert_to_tensor(x)
    channels = x.shape[-1]
    if implementation is None:
        implementation = "slices" if _in_xla() else ("dense" if channels <= 4 else "depthwise")
    if implementation not in FIR_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {FIR_IMPLEMENTATIONS}, got {implementation!r}")
    x0, x1, y0, y1 = _padding4(padding)
    taps = np.asarray(taps, dtype=np.float64)
    if not flip_filter:
        taps = taps[::-1]
    taps = taps * math.sqrt(gain)  # per axis; from here on `taps` is correlated with the signal
    if implementation == "dense" and up > 1 and down == 1:
        # Zero insertion + correlation = a stride-`up` transposed convolution with the reversed taps,
        # whose output starts len(taps) - 1 samples before the padded signal.
        size = taps.size
        x = _dense_axis(x, taps[::-1], 1, up, transpose=True)
        x = _pad_or_crop(x, 1, y0 - (size - 1), y1 + up - size)
        x = _dense_axis(x, taps[::-1], 2, up, transpose=True)
        return _pad_or_crop(x, 2, x0 - (size - 1), x1 + up - size)
    if up > 1:
        height, width = x.shape[1], x.shape[2]
        x = tf.reshape(x, [-1, height, 1, width, 1, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1], [0, 0]])
        x = tf.reshape(x, [-1, height * up, width * up, channels])
    x = _pad_or_crop(x, 1, y0, y1)
    x = _pad_or_crop(x, 2, x0, x1)
    if implementation == "slices":
        return _fir_axis(_fir_axis(x, taps, 1, down), taps, 2, down)
    if implementation == "dense":
        return _dense_axis(_dense_axis(x, taps, 1, down), taps, 2, down)
    if down == 1:
        column = tf.constant(np.tile(taps[:, None, None, None], [1, 1, channels, 1]), x.dtype)
        row = tf.constant(np.tile(taps[None, :, None, None], [1, 1, channels, 1]), x.dtype)
        x = tf.nn.depthwise_conv2d(x, column, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(x, row, [1, 1, 1, 1], "VALID")
    # Strided: depthwise convolutions need equal strides, so use the 2-D (outer product) filter.
    kernel = np.outer(taps, taps)[:, :, None, None]
    kernel = tf.constant(np.tile(kernel, [1, 1, channels, 1]), x.dtype)
    return tf.nn.depthwise_conv2d(x, kernel, [1, down, down, 1], "VALID")


def _dense_axis(x, taps, axis, stride, transpose=False):
    """Valid correlation along one axis (or its stride-`stride` transpose) with a diagonal C x C kernel."""
    channels, size = x.shape[-1], len(taps)
    shape = (size, 1) if axis == 1 else (1, size)
    kernel = np.zeros(shape + (channels, channels))
    kernel.reshape(size, channels, channels)[:, np.arange(channels), np.arange(channels)] = taps[:, None]
    kernel = tf.constant(kernel, x.dtype)
    strides = [1, stride, 1, 1] if axis == 1 else [1, 1, stride, 1]
    if not transpose:
        return tf.nn.conv2d(x, kernel, strides, "VALID")
    dims = [tf.shape(x)[0], x.shape[1], x.shape[2], channels]
    dims[axis] = (x.shape[axis] - 1) * stride + size
    return tf.nn.conv2d_transpose(x, kernel, tf.stack(dims), strides, "VALID")


def _in_xla():
    """True while tracing a function compiled with XLA (jit_compile=True)."""
    try:
        from tensorflow.python.ops import control_flow_util

        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except (ImportError, AttributeError):  # private API moved: the depthwise path is still correct
        return False


def _fir_axis(x, taps, axis, stride):
    """Valid correlation with `taps` along one spatial axis, keeping every `stride`-th output."""
    size, count = x.shape[axis], len(taps)
    outputs = (size - count) // stride + 1
    total = None
    for index, tap in enumerate(taps):
        if tap == 0:
            continue
        window = [slice(None)] * 4
        window[axis] = slice(index, index + stride * (outputs - 1) + 1)
        term = x[tuple(window)] * tf.cast(tap, x.dtype)
        total = term if total is None else total + term
    if stride == 1:
        return total
    # Every stride-th sample by a reshape, not a strided slice: XLA cannot compile the gradient of
    # a gradient of a strided slice (R1 through augmentation) when the batch size is unknown.
    pad = [[0, 0]] * 4
    pad[axis] = [0, stride - 1]
    total = tf.pad(total, pad)
    shape = [-1, *total.shape[1:]]
    shape[axis:axis + 1] = [outputs, stride]
    total = tf.reshape(total, shape)
    return total[:, :, 0] if axis == 1 else total[:, :, :, 0]


def upsample2d(x, taps=None, up=2):
    """2x (or `up`x) upsampling with the normalised filter, gain up**2: (B, H, W, C) -> (B, H*up, W*up, C)."""
    taps = setup_filter(DEFAULT_FILTER if taps is None else taps)
    size = taps.size
    return upfirdn2d(x, taps, up=up, padding=((size + up - 1) // 2, (size - up) // 2), gain=up * up)


def downsample2d(x, taps=None, down=2):
    """Blur then keep every `down`-th pixel: (B, H, W, C) -> (B, H/down, W/down, C)."""
    taps = setup_filter(DEFAULT_FILTER if taps is None else taps)
    size = taps.size
    return upfirdn2d(x, taps, down=down, padding=((size - down + 1) // 2, (size - down) // 2))


def conv2d_resample(x, kernel, up=1, down=1, taps=None):
    """'Same'-size convolution with optional 2x up- or downsampling, NVIDIA's geometry.

    Args:
        x: (B, H, W, Cin); kernel: (k, k, Cin, Cout) with k odd, already scaled.
        up: 1 or 2: stride-2 transposed convolution (scatter of x * kernel), then the blur with gain 4.
        down: 1 or 2: the blur, then a stride-2 convolution.
        taps: resampling filter taps (normalised inside), [1, 3, 3, 1] by default.
    Returns:
        (B, H*up/down, W*up/down, Cout).
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up and down cannot both be > 1")
    k = kernel.shape[0]
    if kernel.shape[1] != k or k % 2 == 0:
        raise ValueError(f"kernel must be square with an odd size, got {kernel.shape}")
    pad = k // 2
    taps = setup_filter(DEFAULT_FILTER if taps is None else taps)
    size = taps.size
    if up > 1:
        height, width, out_channels = x.shape[1], x.shape[2], kernel.shape[3]
        # (H-1)*up + k outputs; the blur's padding brings them back to H*up.
        shape = tf.stack([tf.shape(x)[0], (height - 1) * up + k, (width - 1) * up + k, out_channels])
        x = tf.nn.conv2d_transpose(x, tf.transpose(kernel, [0, 1, 3, 2]), shape, strides=up, padding="VALID")
        before = pad + (size + up - 1) // 2 - (k - 1)
        after = pad + (size - up) // 2 - (k - up)
        return upfirdn2d(x, taps, padding=(before, after), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, taps, padding=(pad + (size - down + 1) // 2, pad + (size - down) // 2))
        return tf.nn.conv2d(x, kernel, strides=down, padding="VALID")
    return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")


def modulated_conv2d(x, kernel, styles, demodulate=True, up=1, taps=None, epsilon=1e-8):
    """Non-fused modulated convolution.

    out[b] = conv(x[b], w'[b]) with w'[b, ..., i, o] = kernel[..., i, o] * styles[b, i], and with
    demodulation w'[b] divided by sqrt(sum_{k, i} w'[b, k, i, o]^2 + epsilon) per output channel o.

    Args:
        x: (B, H, W, Cin); kernel: (k, k, Cin, Cout), as the layer uses it (NVIDIA demodulates its
            stored, unscaled N(0, 1) weights: a scale cancels, except next to epsilon); styles: (B, Cin).
        demodulate: normalise each sample's output channels (the conv layers; not toRGB).
        up: 1 or 2 (see `conv2d_resample`).
    Returns:
        (B, H*up, W*up, Cout) in x's dtype.
    """
    dtype = x.dtype
    if demodulate and dtype == tf.float16:
        # Demodulation cancels any per-sample scale of the styles and any per-output-channel scale
        # of the kernel, so divide both by their largest values first (as NVIDIA does in float16):
        # the un-demodulated convolution cannot then overflow float16's 65504.
        kernel = tf.cast(kernel, tf.float32)
        fan_in = float(np.prod(kernel.shape[:3]))
        largest = tf.maximum(tf.reduce_max(tf.abs(kernel), axis=[0, 1, 2], keepdims=True), 1e-8)
        kernel = kernel / (math.sqrt(fan_in) * largest)
        styles = tf.cast(styles, tf.float32)
        styles = styles / tf.maximum(tf.reduce_max(tf.abs(styles), axis=1, keepdims=True), 1e-8)
    x = x * tf.cast(styles, dtype)[:, None, None, :]
    x = conv2d_resample(x, tf.cast(kernel, dtype), up=up, taps=taps)
    if demodulate:
        # The coefficients in float32: a sum of k*k*Cin squares.
        squares = tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32)), axis=[0, 1])  # (Cin, Cout)
        coefficients = tf.math.rsqrt(tf.matmul(tf.square(tf.cast(styles, tf.float32)), squares) + epsilon)
        x = x * tf.cast(coefficients, dtype)[:, None, None, :]
    return x


def normalize_2nd_moment(x, axis=-1, epsilon=1e-8):
    """`x * rsqrt(mean(x^2) + epsilon)` along `axis` (the mapping network's input normalisation)."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=axis, keepdims=True) + epsilon)


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")


def _normal(stddev=1.0):
    return keras.initializers.RandomNormal(0.0, stddev)


# ----------------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package=PACKAGE)
class EqualizedDense(keras.layers.Layer):
    """Fully connected layer with equalized learning rate: (..., in_features) -> (..., units)."""

    def __init__(self,
                 in_features,              # fan-in (weights are created here, not on first call)
                 units,                    # output features
                 activation="linear",      # "linear" or "lrelu"
                 lr_multiplier=1.0,        # 0.01 in the mapping network: slower, steadier w
                 bias_init=0.0,            # initial effective bias / lr_multiplier (1 for style affines)
                 use_bias=True,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        _check_activation(activation)
        self.in_features = int(in_features)
        self.units = int(units)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.bias_init = float(bias_init)
        self.use_bias = bool(use_bias)
        self.weight_gain = self.lr_multiplier / math.sqrt(self.in_features)
        self.kernel = self.add_weight(shape=(self.in_features, self.units),
                                      initializer=_normal(1.0 / self.lr_multiplier), name="kernel")
        self.bias = (self.add_weight(shape=(self.units,), initializer=keras.initializers.Constant(self.bias_init),
                                     name="bias") if self.use_bias else None)
        self.built = True

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        y = tf.matmul(x, tf.cast(self.kernel, x.dtype) * tf.cast(self.weight_gain, x.dtype))
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return bias_act(y, bias, self.activation)

    def get_config(self):
        config = super().get_config()
        config.update(in_features=self.in_features, units=self.units, activation=self.activation,
                      lr_multiplier=self.lr_multiplier, bias_init=self.bias_init, use_bias=self.use_bias)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class EqualizedConv2D(keras.layers.Layer):
    """k x k convolution, equalized lr, optional 2x downsampling: (B, H, W, Cin) -> (B, H/down, W/down, filters)."""

    def __init__(self,
                 in_channels,              # fan-in channels (weights are created here)
                 filters,                  # output channels
                 kernel_size=3,            # odd
                 activation="linear",      # "linear" or "lrelu"
                 use_bias=True,
                 down=1,                   # 1 or 2 (blur, then stride-2 convolution)
                 gain=1.0,                 # output multiplier (sqrt(0.5) on both residual paths)
                 conv_clamp=None,          # clamp |activations| to conv_clamp * gain
                 resample_filter=DEFAULT_FILTER,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        _check_activation(activation)
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.down = int(down)
        self.gain = float(gain)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.resample_filter = tuple(float(t) for t in resample_filter)
        self.weight_gain = 1.0 / math.sqrt(self.in_channels * self.kernel_size ** 2)
        self.kernel = self.add_weight(shape=(self.kernel_size, self.kernel_size, self.in_channels, self.filters),
                                      initializer=_normal(), name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias") if self.use_bias else None
        self.built = True

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        kernel = tf.cast(self.kernel, x.dtype) * tf.cast(self.weight_gain, x.dtype)
        x = conv2d_resample(x, kernel, down=self.down, taps=self.resample_filter)
        clamp = None if self.conv_clamp is None else self.conv_clamp * self.gain
        return bias_act(x, self.bias, self.activation, gain=self.gain, clamp=clamp)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, kernel_size=self.kernel_size,
                      activation=self.activation, use_bias=self.use_bias, down=self.down, gain=self.gain,
                      conv_clamp=self.conv_clamp, resample_filter=list(self.resample_filter))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ModulatedConv2D(keras.layers.Layer):
    """Style-modulated k x k convolution: (x (B, H, W, Cin), w (B, w_dim)) -> (B, H*up, W*up, filters).

    styles = affine(w) (equalized dense, bias initialised to 1). As in NVIDIA's SynthesisLayer, a
    demodulated convolution uses its stored kernel unscaled: demodulation cancels any scale, except
    next to its epsilon (1e-8), which is therefore relative to the unscaled kernel, as NVIDIA's. Without
    demodulation (toRGB) the styles are scaled by 1/sqrt(Cin * k * k), as NVIDIA's ToRGBLayer does,
    which keeps the output unit-scaled (equalized lr).
    """

    def __init__(self,
                 in_channels,              # input channels
                 filters,                  # output channels
                 w_dim,                    # intermediate latent size
                 kernel_size=3,
                 demodulate=True,          # False for toRGB
                 up=1,                     # 1 or 2 (transposed conv, then blur)
                 resample_filter=DEFAULT_FILTER,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.w_dim = int(w_dim)
        self.kernel_size = int(kernel_size)
        self.demodulate = bool(demodulate)
        self.up = int(up)
        self.resample_filter = tuple(float(t) for t in resample_filter)
        self.weight_gain = 1.0 / math.sqrt(self.in_channels * self.kernel_size ** 2)
        # Styles in float32 from float32 ws, cast to the compute dtype only when they scale x.
        self.affine = EqualizedDense(self.w_dim, self.in_channels, bias_init=1.0, name="affine", dtype="float32")
        self.kernel = self.add_weight(shape=(self.kernel_size, self.kernel_size, self.in_channels, self.filters),
                                      initializer=_normal(), name="kernel")
        self.built = True

    def styles(self, w):
        """(B, w_dim) -> (B, in_channels)."""
        return self.affine(w)

    def call(self, x, w):
        x = tf.cast(x, self.compute_dtype)
        styles = self.affine(w)
        if not self.demodulate:
            styles = styles * tf.cast(self.weight_gain, styles.dtype)
        return modulated_conv2d(x, tf.cast(self.kernel, x.dtype), styles, demodulate=self.demodulate, up=self.up,
                                taps=self.resample_filter)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, w_dim=self.w_dim,
                      kernel_size=self.kernel_size, demodulate=self.demodulate, up=self.up,
                      resample_filter=list(self.resample_filter))
        return config


NOISE_MODES = ("random", "const", "none")


@keras.saving.register_keras_serializable(package=PACKAGE)
class SynthesisLayer(keras.layers.Layer):
    """Modulated, demodulated 3x3 conv + noise + bias + lrelu: (x, w (B, w_dim)) -> (B, res, res, filters).

    Noise: per-pixel N(0, 1), one channel broadcast over all, times a learned scalar strength
    (initialised to 0), added after demodulation and before bias and activation.
    noise_mode: "random" (fresh per sample and call), "const" (a fixed map stored with the layer,
    the same for every sample) or "none".
    """

    def __init__(self,
                 in_channels,              # input channels
                 filters,                  # output channels
                 w_dim,                    # intermediate latent size
                 resolution,               # output resolution (size of the const noise map)
                 kernel_size=3,
                 up=1,                     # 2 in each block's first conv
                 conv_clamp=None,          # clamp |activations| (NVIDIA: 256)
                 resample_filter=DEFAULT_FILTER,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.filters = int(filters)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.kernel_size = int(kernel_size)
        self.up = int(up)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.resample_filter = tuple(float(t) for t in resample_filter)
        self.conv = ModulatedConv2D(self.in_channels, self.filters, self.w_dim, kernel_size=self.kernel_size,
                                    demodulate=True, up=self.up, resample_filter=self.resample_filter,
                                    name="conv", dtype=self.dtype_policy)
        self.noise_strength = self.add_weight(shape=(), initializer="zeros", name="noise_strength")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.noise_const = self.add_weight(shape=(self.resolution, self.resolution), initializer=_normal(),
                                           trainable=False, name="noise_const")
        self.built = True

    def call(self, x, w, noise_mode="random", rng=None, noise=None):
        """noise: an explicit (B, res, res, 1) N(0, 1) map overrides noise_mode; rng: a tf.random.Generator."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = self.conv(x, w)
        if noise is None and noise_mode == "random":
            shape = tf.stack([tf.shape(x)[0], self.resolution, self.resolution, 1])
            noise = rng.normal(shape) if rng is not None else tf.random.normal(shape)
        elif noise is None and noise_mode == "const":
            noise = self.noise_const[None, :, :, None]
        if noise is not None:
            x = x + tf.cast(noise, x.dtype) * tf.cast(self.noise_strength, x.dtype)
        return bias_act(x, self.bias, "lrelu", clamp=self.conv_clamp)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, w_dim=self.w_dim,
                      resolution=self.resolution, kernel_size=self.kernel_size, up=self.up,
                      conv_clamp=self.conv_clamp, resample_filter=list(self.resample_filter))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ToRGB(keras.layers.Layer):
    """Modulated (not demodulated) 1x1 conv + bias: (x, w) -> (B, H, W, img_channels), float32."""

    def __init__(self,
                 in_channels,              # feature channels
                 w_dim,                    # intermediate latent size
                 img_channels=3,
                 conv_clamp=None,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.w_dim = int(w_dim)
        self.img_channels = int(img_channels)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.conv = ModulatedConv2D(self.in_channels, self.img_channels, self.w_dim, kernel_size=1, demodulate=False,
                                    name="conv", dtype=self.dtype_policy)
        self.bias = self.add_weight(shape=(self.img_channels,), initializer="zeros", name="bias")
        self.built = True

    def call(self, x, w):
        x = bias_act(self.conv(x, w), self.bias, "linear", clamp=self.conv_clamp)
        return tf.cast(x, tf.float32)  # the skip image is accumulated in float32

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, w_dim=self.w_dim, img_channels=self.img_channels,
                      conv_clamp=self.conv_clamp)
        return config


def minibatch_stddev(x, group_size=4, num_channels=1):
    """Append the minibatch standard deviation as `num_channels` extra feature maps.

    The batch N is split into G = min(group_size, N) groups by sample n -> group member n // (N / G),
    i.e. sample n is grouped with n + N/G, n + 2N/G, ...; per group and per channel slice, the std over
    the G members (sqrt(var + 1e-8)) is averaged over pixels and the slice's channels.

    Args:
        x: (N, H, W, C) with N divisible by G and C by num_channels.
    Returns:
        (N, H, W, C + num_channels) in x's dtype (the statistic is computed in float32).
    Raises:
        ValueError when N is known and not divisible by G, which NVIDIA's layer refuses too.
    """
    shape = tf.shape(x)
    batch = shape[0]
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if channels % num_channels:
        raise ValueError(f"channels ({channels}) must be divisible by num_channels ({num_channels})")
    static_batch = x.shape[0]
    if static_batch is not None and static_batch % min(group_size, static_batch):
        raise ValueError(f"minibatch standard deviation: a batch of {static_batch} does not split into groups of "
                         f"{min(group_size, static_batch)} (mbstd group size {group_size}); use a batch divisible "
                         f"by it, or a smaller group")
    groups = tf.minimum(tf.constant(group_size, tf.int32), batch)
    y = tf.reshape(tf.cast(x, tf.float32),
                   tf.stack([groups, -1, height, width, num_channels, channels // num_channels]))
    y = y - tf.reduce_mean(y, axis=0)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # (n, H, W, F, c)
    y = tf.reduce_mean(y, axis=[1, 2, 4])  # (n, F)
    y = tf.tile(y[None, :, None, None, :], tf.stack([groups, 1, height, width, 1]))
    y = tf.reshape(y, tf.stack([batch, height, width, num_channels]))
    return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinibatchStd(keras.layers.Layer):
    """Layer form of `minibatch_stddev`: (N, H, W, C) -> (N, H, W, C + num_channels)."""

    def __init__(self,
                 group_size=4,             # members per group (min(group_size, N) at run time)
                 num_channels=1,           # statistics appended
                 **kwargs):
        kwargs.setdefault("autocast", False)  # inputs keep their dtype: call casts what it computes on
        super().__init__(**kwargs)
        self.group_size = int(group_size)
        self.num_channels = int(num_channels)
        self.built = True

    def call(self, x):
        return minibatch_stddev(tf.cast(x, self.compute_dtype), self.group_size, self.num_channels)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size, num_channels=self.num_channels)
        return config
