"""StyleGAN2 generator (mapping + skip synthesis) and residual discriminator, with NVIDIA's presets.

Architecture as in StyleGAN2-ADA's `training/networks.py` (config F, "skip" generator, "resnet"
discriminator); channels per resolution `min(channel_base / res, channel_max)`. Weights are created
when a network is constructed, so `count_params()`, saving and copying (EMA by variable order) work
before any call; two networks built from the same arguments list their variables in the same order.

Mixed precision: the mapping network and the 4x4 epilogue run in float32 like NVIDIA's; with
`num_reduced_precision_res=k` only the top k resolutions follow the global dtype policy (NVIDIA
runs its top 4 in float16), the rest are float32. Images and logits come out float32.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from .layers import (NOISE_MODES, PACKAGE, EqualizedConv2D, EqualizedDense, MinibatchStd, SynthesisLayer, ToRGB,
                     normalize_2nd_moment, upsample2d)


def _log2_resolution(resolution):
    log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution!r}")
    return log2


def check_resolution(resolution):
    """A ValueError unless `resolution` is a power of two >= 4."""
    _log2_resolution(resolution)


def channels_at(resolution, channel_base, channel_max):
    """Feature maps at one resolution: min(channel_base // resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


def num_ws_for(resolution):
    """Style vectors a synthesis network of this resolution consumes: 2 * log2(res) - 2."""
    return 2 * _log2_resolution(resolution) - 2


def _block_dtype(resolution, top_resolution, num_reduced_precision_res):
    """None = the global policy; "float32" for blocks below the top `num_reduced_precision_res` resolutions."""
    if num_reduced_precision_res is None:
        return None
    first = max(2 ** (_log2_resolution(top_resolution) + 1 - num_reduced_precision_res), 8)
    return None if resolution >= first else "float32"


def _rng(seed):
    if seed is not None:
        return tf.random.Generator.from_seed(seed)
    return tf.random.Generator.from_non_deterministic_state()


def _sublayer_kwargs(dtype):
    return {} if dtype is None else {"dtype": dtype}


# ----------------------------------------------------------------------------- generator


@keras.saving.register_keras_serializable(package=PACKAGE)
class MappingNetwork(keras.layers.Layer):
    """z (B, z_dim) -> ws (B, num_ws, w_dim): pixel norm, `num_layers` lrelu dense layers, broadcast.

    Tracks `w_avg` (a non-trainable variable) when asked: w_avg += (1 - w_avg_beta) * (mean_batch(w) - w_avg).
    """

    def __init__(self,
                 z_dim,                    # input latent size
                 w_dim,                    # intermediate latent size
                 num_ws,                   # copies of w the synthesis network consumes
                 num_layers=8,             # 2 in NVIDIA's 'auto' config
                 layer_features=None,      # hidden width (w_dim when None)
                 lr_multiplier=0.01,       # learning-rate multiplier of every layer
                 w_avg_beta=0.995,         # decay of the tracked mean w
                 **kwargs):
        kwargs.setdefault("dtype", "float32")  # cheap, and truncation toward w_avg wants the precision
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.z_dim = int(z_dim)
        self.w_dim = int(w_dim)
        self.num_ws = int(num_ws)
        self.num_layers = int(num_layers)
        self.layer_features = None if layer_features is None else int(layer_features)
        self.lr_multiplier = float(lr_multiplier)
        self.w_avg_beta = float(w_avg_beta)
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        hidden = self.layer_features or self.w_dim
        features = [self.z_dim] + [hidden] * (self.num_layers - 1) + [self.w_dim]
        self.fcs = [EqualizedDense(features[i], features[i + 1], activation="lrelu", lr_multiplier=self.lr_multiplier,
                                   name=f"fc{i}", dtype=self.dtype_policy) for i in range(self.num_layers)]
        # Replicas see different batches; "mean" makes the update use the global batch mean.
        self.w_avg = self.add_weight(shape=(self.w_dim,), initializer="zeros", trainable=False, aggregation="mean",
                                     name="w_avg")
        self.built = True

    def call(self, z, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        """Args:
            z: (B, z_dim).
            truncation_psi: ws <- w_avg + psi * (ws - w_avg) (python float or tensor; 1 = none).
            truncation_cutoff: truncate ws[:, :cutoff] only; None = all.
            update_w_avg: move w_avg toward this batch's mean w (training only).
        Returns:
            (B, num_ws, w_dim) float32.
        """
        x = normalize_2nd_moment(tf.cast(z, tf.float32))
        for fc in self.fcs:
            x = fc(x)
        x = tf.cast(x, tf.float32)
        if update_w_avg:
            batch_mean = tf.reduce_mean(x, axis=0)
            self.w_avg.assign(self.w_avg + (1.0 - self.w_avg_beta) * (batch_mean - self.w_avg))
        ws = tf.tile(x[:, None, :], [1, self.num_ws, 1])
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(self, ws, psi, cutoff=None):
        """ws (B, num_ws, w_dim) or w (B, w_dim) -> (B, num_ws, w_dim), ws[:, :cutoff] moved toward w_avg by psi."""
        ws = tf.cast(ws, tf.float32)
        if ws.shape.rank == 2:
            ws = tf.tile(ws[:, None, :], [1, self.num_ws, 1])
        w_avg = tf.convert_to_tensor(self.w_avg)
        truncated = w_avg + tf.cast(psi, tf.float32) * (ws - w_avg)
        if cutoff is None:
            return truncated
        layers = tf.range(self.num_ws)[None, :, None]
        return tf.where(layers < tf.cast(cutoff, tf.int32), truncated, ws)

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, w_dim=self.w_dim, num_ws=self.num_ws, num_layers=self.num_layers,
                      layer_features=self.layer_features, lr_multiplier=self.lr_multiplier,
                      w_avg_beta=self.w_avg_beta)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SynthesisBlock(keras.layers.Layer):
    """One resolution of the skip generator: (x, img, ws (B, k, w_dim)) -> (x, img).

    The 4x4 block starts from a learned constant and has one conv; others upsample in conv0. The
    image path: img = upsample(img) + toRGB(x). ws: conv0, conv1, toRGB (4x4: conv1, toRGB).
    """

    def __init__(self,
                 in_channels,              # 0 for the 4x4 block (learned constant input)
                 out_channels,
                 w_dim,
                 resolution,               # this block's output resolution
                 img_channels=3,
                 conv_clamp=None,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        sub = dict(dtype=self.dtype_policy)
        if self.in_channels == 0:
            self.const = self.add_weight(shape=(self.resolution, self.resolution, self.out_channels),
                                         initializer=keras.initializers.RandomNormal(0.0, 1.0), name="const")
            self.conv0 = None
        else:
            self.const = None
            self.conv0 = SynthesisLayer(self.in_channels, self.out_channels, self.w_dim, self.resolution, up=2,
                                        conv_clamp=self.conv_clamp, name="conv0", **sub)
        self.conv1 = SynthesisLayer(self.out_channels, self.out_channels, self.w_dim, self.resolution,
                                    conv_clamp=self.conv_clamp, name="conv1", **sub)
        self.torgb = ToRGB(self.out_channels, self.w_dim, self.img_channels, conv_clamp=self.conv_clamp, name="torgb",
                           **sub)
        self.num_conv = 1 if self.conv0 is None else 2
        self.built = True

    def call(self, x, img, ws, noise_mode="random", rng=None):
        index = 0
        if self.conv0 is None:
            x = tf.tile(tf.cast(self.const, self.compute_dtype)[None], tf.stack([tf.shape(ws)[0], 1, 1, 1]))
        else:
            x = self.conv0(tf.cast(x, self.compute_dtype), ws[:, index], noise_mode=noise_mode, rng=rng)
            index += 1
        x = self.conv1(x, ws[:, index], noise_mode=noise_mode, rng=rng)
        y = self.torgb(x, ws[:, index + 1])
        img = y if img is None else upsample2d(img) + y
        return x, img

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, out_channels=self.out_channels, w_dim=self.w_dim,
                      resolution=self.resolution, img_channels=self.img_channels, conv_clamp=self.conv_clamp)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SynthesisNetwork(keras.layers.Layer):
    """ws (B, num_ws, w_dim) -> images (B, res, res, img_channels) float32 (unbounded, about [-1, 1]).

    toRGB at resolution r shares its w with conv0 at 2r, so num_ws = 2 * log2(res) - 2.
    """

    def __init__(self,
                 w_dim,                    # intermediate latent size
                 resolution,               # output resolution, a power of two
                 img_channels=3,
                 channel_base=16384,       # channels at res r: min(channel_base // r, channel_max)
                 channel_max=512,
                 conv_clamp=256,           # NVIDIA clamps every layer's activations at +-256
                 num_reduced_precision_res=None,  # only the top k resolutions follow a mixed policy
                 seed=None,                # seed of the noise stream (random when None)
                 **kwargs):
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.num_reduced_precision_res = None if num_reduced_precision_res is None else int(num_reduced_precision_res)
        self.seed = seed
        log2 = _log2_resolution(self.resolution)
        self.resolutions = [2 ** i for i in range(2, log2 + 1)]
        self.blocks = []
        for res in self.resolutions:
            in_channels = 0 if res == 4 else channels_at(res // 2, self.channel_base, self.channel_max)
            out_channels = channels_at(res, self.channel_base, self.channel_max)
            dtype = _block_dtype(res, self.resolution, self.num_reduced_precision_res)
            self.blocks.append(SynthesisBlock(in_channels, out_channels, self.w_dim, res, self.img_channels,
                                              conv_clamp=self.conv_clamp, name=f"b{res}", **_sublayer_kwargs(dtype)))
        self.num_ws = num_ws_for(self.resolution)
        self.rng = _rng(seed)  # a tf.random.Generator: per-replica streams, not a Keras weight
        self.built = True

    def call(self, ws, noise_mode="random", rng=None):
        """ws: (B, num_ws, w_dim); noise_mode: "random" | "const" | "none"; rng: overrides the own generator."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        rng = self.rng if rng is None else rng
        ws = tf.convert_to_tensor(ws)
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, index:index + block.num_conv + 1], noise_mode=noise_mode, rng=rng)
            index += block.num_conv
        return img

    def get_config(self):
        config = super().get_config()
        config.update(w_dim=self.w_dim, resolution=self.resolution, img_channels=self.img_channels,
                      channel_base=self.channel_base, channel_max=self.channel_max, conv_clamp=self.conv_clamp,
                      num_reduced_precision_res=self.num_reduced_precision_res, seed=self.seed)
        return config


def mix_styles(ws, other_ws, cutoff):
    """Style mixing: ws[:, :cutoff] from `ws`, the rest from `other_ws` (cutoff >= num_ws keeps ws).

    Args:
        ws, other_ws: (B, num_ws, w_dim); cutoff: int or scalar int tensor.
    Returns:
        (B, num_ws, w_dim).
    """
    ws = tf.convert_to_tensor(ws)
    layers = tf.range(tf.shape(ws)[1])[None, :, None]
    return tf.where(layers < tf.cast(cutoff, tf.int32), ws, tf.cast(other_ws, ws.dtype))


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleGenerator(keras.Model):
    """StyleGAN2 generator: z (B, z_dim) -> images (B, res, res, img_channels) float32, about [-1, 1].

    `call(z, training=False)` = mapping (no truncation, no w_avg update) + synthesis, with noise
    "random" when training and "const" otherwise (repeatable pictures and exports), unless
    `noise_mode` is given. A train_step uses the pieces: `mapping(z, update_w_avg=True)` or
    `style_mixing(z, prob, update_w_avg=True)`, then `synthesis(ws, noise_mode="random")`.
    """

    def __init__(self,
                 resolution=64,            # output size, a power of two
                 z_dim=512,                # input latent size
                 w_dim=512,                # intermediate latent size
                 img_channels=3,
                 mapping_layers=2,         # 2 in 'auto', 8 in 'paper256' / 'stylegan2'
                 mapping_lr_multiplier=0.01,
                 w_avg_beta=0.995,         # decay of the tracked mean w
                 channel_base=16384,       # 32768 in 'stylegan2'
                 channel_max=512,
                 conv_clamp=256,           # None: no activation clamp
                 num_reduced_precision_res=None,  # NVIDIA: 4 (only the top 4 resolutions in float16)
                 seed=None,                # seed of the noise and style-mixing streams
                 **kwargs):
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.z_dim = int(z_dim)
        self.w_dim = int(w_dim)
        self.img_channels = int(img_channels)
        self.mapping_layers = int(mapping_layers)
        self.mapping_lr_multiplier = float(mapping_lr_multiplier)
        self.w_avg_beta = float(w_avg_beta)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.num_reduced_precision_res = None if num_reduced_precision_res is None else int(num_reduced_precision_res)
        self.seed = seed
        self.num_ws = num_ws_for(self.resolution)
        self.mapping_network = MappingNetwork(self.z_dim, self.w_dim, self.num_ws, num_layers=self.mapping_layers,
                                              lr_multiplier=self.mapping_lr_multiplier, w_avg_beta=self.w_avg_beta,
                                              name="mapping")
        self.synthesis_network = SynthesisNetwork(self.w_dim, self.resolution, self.img_channels,
                                                  channel_base=self.channel_base, channel_max=self.channel_max,
                                                  conv_clamp=self.conv_clamp,
                                                  num_reduced_precision_res=self.num_reduced_precision_res,
                                                  seed=None if seed is None else seed + 1, name="synthesis")
        self.rng = _rng(seed)  # style-mixing draws
        self.built = True

    @property
    def w_avg(self):
        """The tracked mean w, a (w_dim,) non-trainable variable."""
        return self.mapping_network.w_avg

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        """z (B, z_dim) -> ws (B, num_ws, w_dim) float32; see `MappingNetwork.call`."""
        return self.mapping_network(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                    update_w_avg=update_w_avg)

    def synthesis(self, ws, noise_mode="random", rng=None):
        """ws (B, num_ws, w_dim) -> images (B, res, res, img_channels) float32."""
        return self.synthesis_network(ws, noise_mode=noise_mode, rng=rng)

    def truncate(self, ws, psi, cutoff=None):
        """Truncation in W: ws (or w) -> ws with ws[:, :cutoff] (all when None) = w_avg + psi * (ws - w_avg)."""
        return self.mapping_network.truncate(ws, psi, cutoff)

    def truncated_ws(self, z, psi, cutoff=None):
        """z (B, z_dim) -> truncated ws; render them with `synthesis(ws, noise_mode=...)`."""
        return self.mapping(z, truncation_psi=psi, truncation_cutoff=cutoff)

    def truncated(self, z, psi, training=False, cutoff=None):
        """Images of z with the truncation trick in W, toward w_avg (what `sampling.generate_images`,
        `GAN.generate`, `explore` and the export call for this generator)."""
        return self.synthesis(self.truncated_ws(z, psi, cutoff), noise_mode="random" if training else "const")

    @staticmethod
    def mix_styles(ws, other_ws, cutoff):
        """ws[:, :cutoff] from ws, ws[:, cutoff:] from other_ws; see the module function."""
        return mix_styles(ws, other_ws, cutoff)

    def style_mixing_cutoff(self, prob, rng=None):
        """A scalar int32 cutoff: uniform in [1, num_ws - 1] with probability prob, else num_ws (no mixing).

        One draw for the whole batch, as NVIDIA's training does.
        """
        rng = self.rng if rng is None else rng
        cutoff = rng.uniform([], 1, self.num_ws, dtype=tf.int32)  # maxval exclusive
        mixed = rng.uniform([]) < tf.cast(prob, tf.float32)
        return tf.where(mixed, cutoff, tf.constant(self.num_ws, tf.int32))

    def style_mixing(self, z, prob=0.9, rng=None, update_w_avg=False):
        """ws for z with, at probability `prob`, the layers from a random cutoff on taken from fresh latents.

        Args:
            z: (B, z_dim); prob: mixing probability (0.9 in training); rng: a tf.random.Generator
            (the generator's own when None); update_w_avg: update w_avg from z's ws (never from the
            second latents).
        Returns:
            (ws (B, num_ws, w_dim), cutoff scalar int32; cutoff == num_ws means no mixing).
        """
        rng = self.rng if rng is None else rng
        ws = self.mapping(z, update_w_avg=update_w_avg)
        cutoff = self.style_mixing_cutoff(prob, rng)
        other = self.mapping(rng.normal(tf.shape(z)))
        return mix_styles(ws, other, cutoff), cutoff

    def call(self, z, training=False, noise_mode=None):
        ws = self.mapping(z)
        return self.synthesis(ws, noise_mode=noise_mode or ("random" if training else "const"))

    def get_config(self):
        config = super().get_config()
        config.update(resolution=self.resolution, z_dim=self.z_dim, w_dim=self.w_dim, img_channels=self.img_channels,
                      mapping_layers=self.mapping_layers, mapping_lr_multiplier=self.mapping_lr_multiplier,
                      w_avg_beta=self.w_avg_beta, channel_base=self.channel_base, channel_max=self.channel_max,
                      conv_clamp=self.conv_clamp, num_reduced_precision_res=self.num_reduced_precision_res,
                      seed=self.seed)
        return config


# ----------------------------------------------------------------------------- discriminator


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiscriminatorBlock(keras.layers.Layer):
    """Residual block: (B, r, r, Cin) -> (B, r/2, r/2, Cout); fromRGB first when in_channels == 0.

    x = sqrt(0.5) * skip(x) + sqrt(0.5) * conv1(conv0(x)), skip a 1x1 downsampling conv without bias.
    """

    def __init__(self,
                 in_channels,              # 0: this block reads the image (fromRGB 1x1 first)
                 tmp_channels,             # channels inside the block
                 out_channels,
                 resolution,               # input resolution
                 img_channels=3,
                 conv_clamp=None,
                 **kwargs):
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.tmp_channels = int(tmp_channels)
        self.out_channels = int(out_channels)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        sub = dict(dtype=self.dtype_policy, conv_clamp=self.conv_clamp)
        self.fromrgb = None
        if self.in_channels == 0:
            self.fromrgb = EqualizedConv2D(self.img_channels, self.tmp_channels, 1, activation="lrelu",
                                           name="fromrgb", **sub)
        half = math.sqrt(0.5)
        self.conv0 = EqualizedConv2D(self.tmp_channels, self.tmp_channels, 3, activation="lrelu", name="conv0", **sub)
        self.conv1 = EqualizedConv2D(self.tmp_channels, self.out_channels, 3, activation="lrelu", down=2, gain=half,
                                     name="conv1", **sub)
        self.skip = EqualizedConv2D(self.tmp_channels, self.out_channels, 1, use_bias=False, down=2, gain=half,
                                    name="skip", dtype=self.dtype_policy)
        self.built = True

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return y + x

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, tmp_channels=self.tmp_channels, out_channels=self.out_channels,
                      resolution=self.resolution, img_channels=self.img_channels, conv_clamp=self.conv_clamp)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiscriminatorEpilogue(keras.layers.Layer):
    """4x4 head: minibatch stddev, conv 3x3, dense, dense to one logit: (B, 4, 4, C) -> (B, 1) float32."""

    def __init__(self,
                 in_channels,
                 resolution=4,
                 mbstd_group_size=4,       # min(group, N) samples per statistics group
                 mbstd_channels=1,         # statistics appended
                 conv_clamp=None,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")  # as NVIDIA's 4x4 layers
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.resolution = int(resolution)
        self.mbstd_group_size = int(mbstd_group_size)
        self.mbstd_channels = int(mbstd_channels)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        sub = dict(dtype=self.dtype_policy)
        self.mbstd = MinibatchStd(self.mbstd_group_size, self.mbstd_channels, name="mbstd", **sub)
        self.conv = EqualizedConv2D(self.in_channels + self.mbstd_channels, self.in_channels, 3, activation="lrelu",
                                    conv_clamp=self.conv_clamp, name="conv", **sub)
        self.fc = EqualizedDense(self.in_channels * self.resolution ** 2, self.in_channels, activation="lrelu",
                                 name="fc", **sub)
        self.out = EqualizedDense(self.in_channels, 1, name="out", **sub)
        self.built = True

    def call(self, x):
        x = self.conv(self.mbstd(tf.cast(x, self.compute_dtype)))
        x = self.fc(tf.reshape(x, [-1, self.in_channels * self.resolution ** 2]))
        return tf.cast(self.out(x), tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, resolution=self.resolution,
                      mbstd_group_size=self.mbstd_group_size, mbstd_channels=self.mbstd_channels,
                      conv_clamp=self.conv_clamp)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualDiscriminator(keras.Model):
    """StyleGAN2 "resnet" discriminator: images (B, res, res, img_channels) in [-1, 1] -> logits (B, 1) float32."""

    def __init__(self,
                 resolution=64,            # input size, a power of two
                 img_channels=3,
                 channel_base=16384,       # channels at res r: min(channel_base // r, channel_max)
                 channel_max=512,
                 mbstd_group_size=4,       # NVIDIA 'auto': min(batch per GPU, 4)
                 mbstd_channels=1,
                 conv_clamp=256,           # None: no activation clamp
                 num_reduced_precision_res=None,  # only the top k resolutions follow a mixed policy
                 **kwargs):
        kwargs.setdefault("autocast", False)  # z, ws and the skip image stay float32; sub-layers cast
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.mbstd_group_size = int(mbstd_group_size)
        self.mbstd_channels = int(mbstd_channels)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.num_reduced_precision_res = None if num_reduced_precision_res is None else int(num_reduced_precision_res)
        log2 = _log2_resolution(self.resolution)
        self.blocks = []
        for res in [2 ** i for i in range(log2, 2, -1)]:
            in_channels = 0 if res == self.resolution else channels_at(res, self.channel_base, self.channel_max)
            dtype = _block_dtype(res, self.resolution, self.num_reduced_precision_res)
            self.blocks.append(DiscriminatorBlock(in_channels, channels_at(res, self.channel_base, self.channel_max),
                                                  channels_at(res // 2, self.channel_base, self.channel_max), res,
                                                  self.img_channels, conv_clamp=self.conv_clamp, name=f"b{res}",
                                                  **_sublayer_kwargs(dtype)))
        self.epilogue = DiscriminatorEpilogue(channels_at(4, self.channel_base, self.channel_max), 4,
                                              mbstd_group_size=self.mbstd_group_size,
                                              mbstd_channels=self.mbstd_channels, conv_clamp=self.conv_clamp,
                                              name="b4")
        self.built = True

    def call(self, images, training=False):
        x = tf.convert_to_tensor(images)
        for block in self.blocks:
            x = block(x)
        return self.epilogue(x)

    def get_config(self):
        config = super().get_config()
        config.update(resolution=self.resolution, img_channels=self.img_channels, channel_base=self.channel_base,
                      channel_max=self.channel_max, mbstd_group_size=self.mbstd_group_size,
                      mbstd_channels=self.mbstd_channels, conv_clamp=self.conv_clamp,
                      num_reduced_precision_res=self.num_reduced_precision_res)
        return config


# ----------------------------------------------------------------------------- presets

PRESETS = ("auto", "paper256", "stylegan2", "tiny")

# Fixed numbers per preset (NVIDIA's train.py cfg_specs; "tiny" is ours). batch / mbstd / gamma /
# ema None: NVIDIA's 'auto' formulas, evaluated per resolution.
_SPECS = {
    "auto": dict(batch_size=None, mbstd_group_size=None, channel_base=16384, channel_max=512, learning_rate=None,
                 gamma=None, ema_kimg=None, ema_rampup=0.05, mapping_layers=2, z_dim=512, w_dim=512),
    "paper256": dict(batch_size=64, mbstd_group_size=8, channel_base=16384, channel_max=512, learning_rate=0.0025,
                     gamma=1.0, ema_kimg=20.0, ema_rampup=None, mapping_layers=8, z_dim=512, w_dim=512),
    "stylegan2": dict(batch_size=32, mbstd_group_size=4, channel_base=32768, channel_max=512, learning_rate=0.002,
                      gamma=10.0, ema_kimg=10.0, ema_rampup=None, mapping_layers=8, z_dim=512, w_dim=512),
    "tiny": dict(batch_size=16, mbstd_group_size=4, channel_base=1024, channel_max=64, learning_rate=0.0025,
                 gamma=None, ema_kimg=None, ema_rampup=0.05, mapping_layers=2, z_dim=64, w_dim=64),
}


def _spec(name, resolution):
    """The preset's table row at `resolution` (a ValueError for an unknown name or a bad resolution)."""
    if name not in _SPECS:
        raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")
    _log2_resolution(resolution)
    spec = dict(_SPECS[name])
    if name == "auto" and resolution >= 512:
        spec["channel_base"] = 32768  # NVIDIA: fmaps 1 at 512 px and above
    return spec


def preset_batch_size(name="auto", resolution=64):
    """The preset's global batch: auto min(4096 // res, 32), paper256 64, stylegan2 32, tiny 16."""
    return _spec(name, resolution)["batch_size"] or max(min(4096 // resolution, 32), 1)


def preset_learning_rate(name="auto", resolution=64):
    """The preset's Adam learning rate: 0.0025, but 0.002 for stylegan2 and for auto at 1024 px and above."""
    return _spec(name, resolution)["learning_rate"] or (0.002 if resolution >= 1024 else 0.0025)


def preset(name="auto", resolution=64, **overrides):
    """Network and training settings of a named configuration at one resolution.

    Args:
        name: "auto" (NVIDIA's default: batch min(4096 // res, 32), mbstd min(batch, 4), 2 mapping
            layers, gamma 0.0002 * res^2 / batch, ema_kimg batch * 10 / 32, lr 0.0025 (0.002 at 1024),
            channel_base 16384 below 512 px), "paper256", "stylegan2" (32768 channels, 8 mapping
            layers) or "tiny" (a few channels for tests and short CPU runs).
        resolution: image size, a power of two.
        overrides: any key of the returned sub-dicts (a key in several, like channel_base, is set in
            all); an overridden batch_size feeds the gamma / ema / mbstd formulas unless they are
            overridden too.
    Returns:
        {"generator": StyleGenerator kwargs, "discriminator": ResidualDiscriminator kwargs,
         "training": batch_size, learning_rate, betas, epsilon, gamma, ema_kimg, ema_rampup,
         g_reg_interval, d_reg_interval, pl_weight, pl_decay, pl_batch_shrink, style_mixing_prob,
         augment, ada_target, ada_interval, ada_kimg}
    """
    spec = _spec(name, resolution)
    batch = overrides.get("batch_size", preset_batch_size(name, resolution))
    generator = dict(resolution=resolution, z_dim=spec["z_dim"], w_dim=spec["w_dim"], img_channels=3,
                     mapping_layers=spec["mapping_layers"], mapping_lr_multiplier=0.01, w_avg_beta=0.995,
                     channel_base=spec["channel_base"], channel_max=spec["channel_max"], conv_clamp=256.0,
                     num_reduced_precision_res=4)
    discriminator = dict(resolution=resolution, img_channels=3, channel_base=spec["channel_base"],
                         channel_max=spec["channel_max"], mbstd_group_size=spec["mbstd_group_size"] or min(batch, 4),
                         mbstd_channels=1, conv_clamp=256.0, num_reduced_precision_res=4)
    training = dict(
        batch_size=batch,
        learning_rate=preset_learning_rate(name, resolution),
        betas=(0.0, 0.99),
        epsilon=1e-8,
        gamma=spec["gamma"] if spec["gamma"] is not None else 0.0002 * resolution ** 2 / batch,
        ema_kimg=spec["ema_kimg"] if spec["ema_kimg"] is not None else batch * 10 / 32,
        ema_rampup=spec["ema_rampup"],
        g_reg_interval=4,
        d_reg_interval=16,
        pl_weight=2.0,
        pl_decay=0.01,
        pl_batch_shrink=2,
        style_mixing_prob=0.9,
        augment="ada",
        ada_target=0.6,
        ada_interval=4,
        ada_kimg=500,
    )
    sections = {"generator": generator, "discriminator": discriminator, "training": training}
    for key, value in overrides.items():
        found = False
        for section in sections.values():
            if key in section:
                section[key] = value
                found = True
        if not found:
            known = sorted(set(generator) | set(discriminator) | set(training))
            raise ValueError(f"unknown preset override {key!r}; known keys: {known}")
    return sections


def trainable_count(model) -> int:
    """Number of trainable scalars (NVIDIA's parameter count: buffers such as w_avg excluded)."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))
