"""Building blocks of the lightweight (FastGAN-style) networks: resampling, gating, the blocks.

Resampling uses TensorFlow's bilinear resize, average pooling and repeat, whose gradients are fast
on CPUs (the same maths written with slices and concatenations is much slower in graph mode); all
of them compile under XLA:

- `upsample2x`: "nearest" repeats each pixel; "bilinear" is tf.image.resize's bilinear at twice the
  size (half-pixel centres, edges clamped): per axis, outputs 0.75 * x[i] + 0.25 * x[i -+ 1];
  "antialiased" is that followed by a [1, 2, 1] / 4 binomial blur per axis (a smoother low-pass:
  no checkerboard, less aliasing than bilinear).
- `downsample(x, factor)`: the mean of each factor x factor block (area resizing);
  `adaptive_pool` the same to a fixed output size.
- `FusedBatchNormalization`: Keras's BatchNormalization whose training step on one replica is
  TensorFlow's fused kernel (faster on CPUs than Keras's separate moments, in bfloat16 most of all).
- `SpectralConv2D`: a Conv2D whose kernel is divided by its largest singular value (spectral
  normalisation, Miyato et al. 2018, as FastGAN's convolutions): the trainable kernel stays as it is
  and the division is part of the graph, so gradients flow through sigma (PyTorch's
  `spectral_norm`; `keras.layers.SpectralNormalization` instead overwrites the kernel with its
  normalised value, so the optimizer never sees sigma's gradient).
- `quarter(x, crop)`: one of the four quadrants, chosen per batch or per sample by an integer
  (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).

Layers create their weights in `__init__` (their input channels are constructor arguments), so a
network can be counted, saved, loaded and copied without being run. Variables are float32; the
maths runs in the layer's compute dtype (bfloat16 under a mixed policy).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

PACKAGE = "keras_anime_gan"
UPSAMPLES = ("nearest", "bilinear", "antialiased")
ACTIVATIONS = ("glu", "leaky")
NORMS = ("batch", None)
QUARTERS = 4


# ----------------------------------------------------------------------------- functions


def check_upsample(mode):
    if mode not in UPSAMPLES:
        raise ValueError(f"upsample must be one of {UPSAMPLES}, got {mode!r}")
    return mode


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def check_norm(norm):
    norm = None if norm in (None, "none") else norm
    if norm not in NORMS:
        raise ValueError(f"norm must be 'batch' or None, got {norm!r}")
    return norm


def blur121(x):
    """The [1, 2, 1] / 4 binomial blur along height and width, edges repeated (a low-pass that keeps
    the mean): two 2x2 box means at stride 1 on the edge-padded map."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    return tf.nn.avg_pool2d(tf.nn.avg_pool2d(x, 2, 1, "VALID"), 2, 1, "VALID")


def upsample2x(x, mode="bilinear"):
    """(B, H, W, C) -> (B, 2H, 2W, C) by `mode` (see the module docstring), in x's dtype."""
    check_upsample(mode)
    x = tf.convert_to_tensor(x)
    if mode == "nearest":  # tf.repeat: as fast as the resize kernel, whose gradient XLA lacks
        return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
    y = tf.cast(tf.image.resize(x, (2 * x.shape[1], 2 * x.shape[2]), method="bilinear"), x.dtype)
    return blur121(y) if mode == "antialiased" else y


def downsample(x, factor):
    """(B, H, W, C) -> (B, H / factor, W / factor, C): the mean of each factor x factor block."""
    factor = int(factor)
    if factor == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    if height % factor or width % factor:
        raise ValueError(f"cannot downsample {height}x{width} by {factor}")
    return tf.nn.avg_pool2d(x, factor, factor, "VALID")


def adaptive_pool(x, size):
    """(B, H, W, C) -> (B, size, size, C), block means (H and W multiples of size)."""
    return downsample(x, x.shape[1] // size)


def quarter(x, crop):
    """The quadrant `crop` of (B, H, W, C): 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.

    `crop`: an int, a scalar int tensor (the same quadrant for the batch, FastGAN's choice) or a (B,)
    int tensor (one per sample); a value outside 0..3 selects nothing (zeros). A one-hot sum of the
    four quadrants: exact, differentiable in x, and free of data-dependent control flow (XLA,
    tf.distribute)."""
    x = tf.convert_to_tensor(x)
    _, height, width, _ = x.shape
    half_h, half_w = height // 2, width // 2
    parts = [x[:, :half_h, :half_w], x[:, :half_h, half_w:], x[:, half_h:, :half_w], x[:, half_h:, half_w:]]
    weights = tf.one_hot(tf.cast(crop, tf.int32), QUARTERS, dtype=x.dtype)
    weights = tf.broadcast_to(weights, tf.stack([tf.shape(x)[0], QUARTERS]))
    return tf.add_n([weights[:, k, None, None, None] * part for k, part in enumerate(parts)])


def glu(x):
    """Gated linear unit over channels: first half * sigmoid(second half)."""
    value, gate = tf.split(x, 2, axis=-1)
    return value * tf.sigmoid(gate)


def activate(x, activation):
    """The activation `activation`: "glu" (halves the channels) or "leaky" (leaky ReLU, slope 0.2)."""
    return glu(x) if activation == "glu" else tf.nn.leaky_relu(x, alpha=0.2)


def activation_factor(activation):
    """Channels a convolution must give per channel after `activation`: 2 for GLU, else 1."""
    return 2 if check_activation(activation) == "glu" else 1


# ----------------------------------------------------------------------------- layers


def _built(layer, shape):
    layer.build(shape)
    return layer


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization (same variables, config and inference), whose training call
    on NHWC maps, unmasked and unsynchronized, runs TensorFlow's fused kernel. Its moving variance
    follows Keras's rule (the biased batch variance), not the kernel's unbiased one."""

    def _fused(self, inputs, training, mask):
        return (training and self.trainable and mask is None and not self.renorm and not self.synchronized
                and keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (3, -1) and self.scale and self.center)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta), epsilon=self.epsilon,
            is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        variance = variance * tf.maximum(count - 1.0, 0.0) / count  # unbiased (n / (n - 1)) -> Keras's biased
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def _batch_norm(channels, dtype, name):
    # Synchronized: statistics over the global batch when several replicas share it (as the classic
    # networks' BatchNormalization); off on one replica, where the fused kernel runs.
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, dtype=dtype, name=name)
    return _built(layer, (None, None, None, channels))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectralConv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D computing with kernel / sigma, sigma the kernel's largest singular value
    (as a (k * k * in_channels, filters) matrix) by one power iteration per training call from the
    non-trainable `spectral_u` (filters,); outside training the stored estimate is used as it is.
    The iteration runs in float32 whatever the policy; u and v carry no gradient, sigma does."""

    def build(self, input_shape):
        super().build(input_shape)
        # "mean": replicas that each updated u agree on their average (its length does not matter).
        self.spectral_u = self.add_weight(name="spectral_u", shape=(self.filters,), trainable=False,
                                          initializer=keras.initializers.RandomNormal(), aggregation="mean")

    def normalized_kernel(self, training=False):
        kernel = tf.cast(self.kernel.value, tf.float32)  # the float32 variable, not an autocast copy
        matrix = tf.reshape(kernel, [-1, self.filters])
        u = tf.cast(self.spectral_u.value, tf.float32)[None, :]
        v = tf.stop_gradient(tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True)))
        if training:
            u = tf.stop_gradient(tf.math.l2_normalize(tf.matmul(v, matrix)))
            self.spectral_u.assign(u[0])
        else:
            u = tf.math.l2_normalize(u)
        sigma = tf.reduce_sum(tf.matmul(v, matrix) * u)
        return tf.cast(kernel / sigma, self.compute_dtype)

    # Conv2D stores its kernel and bias only; u goes with them (a loaded network normalises as it did).
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        return outputs if self.activation is None else self.activation(outputs)


def _conv(in_channels, filters, kernel, dtype, name, strides=1, padding="same", use_bias=True, spectral=False):
    conv = SpectralConv2D if spectral else keras.layers.Conv2D
    layer = conv(filters, kernel, strides=strides, padding=padding, use_bias=use_bias, dtype=dtype, name=name)
    return _built(layer, (None, None, None, in_channels))


class _Block(keras.layers.Layer):
    """A layer of this module: float32 variables, maths in the compute dtype, config = constructor args."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._arguments = {}

    def _remember(self, **arguments):
        self._arguments.update(arguments)

    def get_config(self):
        return {**super().get_config(), **self._arguments}


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpBlock(_Block):
    """(B, r, r, in_channels) -> (B, 2r, 2r, out_channels): upsample, then `convs` x (3x3 conv, batch
    norm when `norm`, activation): "glu" (FastGAN's: the conv gives 2 * out_channels, the first half
    gated by the sigmoid of the second) or "leaky" (ReLU slope 0.2, half the conv's cost)."""

    def __init__(self, in_channels, out_channels, upsample="bilinear", convs=1, norm="batch", activation="glu",
                 spectral=False, **kwargs):
        super().__init__(**kwargs)
        self.upsample, self.norm, self.convs = check_upsample(upsample), check_norm(norm), int(convs)
        self.activation = check_activation(activation)
        if self.convs < 1:
            raise ValueError(f"convs must be >= 1, got {convs}")
        self._remember(in_channels=int(in_channels), out_channels=int(out_channels), upsample=self.upsample,
                       convs=self.convs, norm=self.norm, activation=self.activation, spectral=bool(spectral))
        filters = activation_factor(self.activation) * int(out_channels)
        self.conv_layers, self.norm_layers = [], []
        channels = int(in_channels)
        for index in range(self.convs):
            self.conv_layers.append(_conv(channels, filters, 3, self.dtype_policy, f"conv{index}",
                                          use_bias=self.norm is None, spectral=spectral))
            if self.norm:
                self.norm_layers.append(_batch_norm(filters, self.dtype_policy, f"norm{index}"))
            channels = int(out_channels)
        self.built = True

    def call(self, x, training=False):
        x = upsample2x(x, self.upsample)
        for index, conv in enumerate(self.conv_layers):
            x = conv(x, training=training)
            if self.norm:
                x = self.norm_layers[index](x, training=training)
            x = activate(x, self.activation)
        return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class SkipExcitation(_Block):
    """Skip-layer excitation: a low-resolution map gates the channels of a high-resolution one.

    low (B, s, s, low_channels), s a multiple of 4 -> block means to 4x4 -> 4x4 valid conv ->
    leaky ReLU(0.1) -> 1x1 conv -> sigmoid: one (B, 1, 1, high_channels) gate that multiplies high."""

    def __init__(self, low_channels, high_channels, spectral=False, **kwargs):
        super().__init__(**kwargs)
        self._remember(low_channels=int(low_channels), high_channels=int(high_channels), spectral=bool(spectral))
        self.squeeze = _conv(low_channels, high_channels, 4, self.dtype_policy, "squeeze", padding="valid",
                             spectral=spectral)
        self.excite = _conv(high_channels, high_channels, 1, self.dtype_policy, "excite", spectral=spectral)
        self.built = True

    def gate(self, low, training=False):
        x = tf.nn.leaky_relu(self.squeeze(adaptive_pool(low, 4), training=training), alpha=0.1)
        return tf.sigmoid(self.excite(x, training=training))

    def call(self, low, high, training=False):
        return high * tf.cast(self.gate(low, training), high.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DownBlock(_Block):
    """Residual downsampling, (B, r, r, in_channels) -> (B, r/2, r/2, out_channels):
    sqrt(1/2) * (main + skip), main = 4x4 stride-2 conv, leaky, 3x3 conv, leaky; skip = 2x2 mean,
    1x1 conv, leaky (leaky ReLU slope 0.2; batch norm before each leaky when `norm`)."""

    def __init__(self, in_channels, out_channels, norm=None, spectral=False, **kwargs):
        super().__init__(**kwargs)
        self.norm = check_norm(norm)
        self._remember(in_channels=int(in_channels), out_channels=int(out_channels), norm=self.norm,
                       spectral=bool(spectral))
        policy, bias = self.dtype_policy, self.norm is None
        self.down = _conv(in_channels, out_channels, 4, policy, "down", strides=2, use_bias=bias, spectral=spectral)
        self.conv = _conv(out_channels, out_channels, 3, policy, "conv", use_bias=bias, spectral=spectral)
        self.skip = _conv(in_channels, out_channels, 1, policy, "skip", use_bias=bias, spectral=spectral)
        self.norm_layers = ([_batch_norm(out_channels, policy, f"norm{index}") for index in range(3)]
                            if self.norm else [])
        self.built = True

    def _act(self, x, index, training):
        if self.norm:
            x = self.norm_layers[index](x, training=training)
        return tf.nn.leaky_relu(x, alpha=0.2)

    def call(self, x, training=False):
        main = self._act(self.conv(self._act(self.down(x, training=training), 0, training), training=training), 1,
                         training)
        skip = self._act(self.skip(downsample(x, 2), training=training), 2, training)
        return (main + skip) * tf.constant(math.sqrt(0.5), main.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Decoder(_Block):
    """The discriminator's self-supervised decoder: (B, r, r, in_channels) -> (B, r * 2^k, ..., 3)
    float32 in [-1, 1], k = len(channels): per entry an `UpBlock` (upsample, 3x3 conv, activation,
    no norm), then a 3x3 conv to RGB and tanh."""

    def __init__(self, in_channels, channels, upsample="nearest", activation="glu", spectral=False, **kwargs):
        super().__init__(**kwargs)
        channels = [int(c) for c in channels]
        self.upsample, self.activation = check_upsample(upsample), check_activation(activation)
        self._remember(in_channels=int(in_channels), channels=channels, upsample=self.upsample,
                       activation=self.activation, spectral=bool(spectral))
        self.stages = []
        previous = int(in_channels)
        for index, width in enumerate(channels):
            self.stages.append(UpBlock(previous, width, self.upsample, convs=1, norm=None, activation=self.activation,
                                       spectral=spectral, dtype=self.dtype_policy, name=f"up{index}"))
            previous = width
        self.to_rgb = _conv(previous, 3, 3, self.dtype_policy, "to_rgb", spectral=spectral)
        self.built = True

    def call(self, x, training=False):
        for stage in self.stages:
            x = stage(x, training=training)
        return tf.tanh(tf.cast(self.to_rgb(x, training=training), tf.float32))
