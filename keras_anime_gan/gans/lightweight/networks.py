"""The lightweight GAN's networks, after FastGAN (Liu et al., ICLR 2021, "Towards Faster and
Stabilized GAN Training for High-fidelity Few-shot Image Synthesis"), written from the paper.

Generator: z -> dense to 4x4 (a 4x4 transposed convolution on a 1x1 map) -> batch norm -> activation,
then one `UpBlock` per doubling up to the resolution (upsampling without checkerboard: nearest,
bilinear or antialiased, then 3x3 convolutions with leaky ReLU or FastGAN's GLU), and skip-layer
excitation: the 4x4 map gates the channels at 32 and 64 px, the 8x8 map those at 128 px, the
16x16 map those at 256 px (each high-resolution map by the map 16 times smaller, or the 4x4 one).
A 1x1 convolution and tanh give float32 images in [-1, 1].

Discriminator: a 4x4 stride-2 convolution from RGB, residual `DownBlock`s down to 8x8, and a
head of a 1x1 convolution and a (9 - d_output)-square valid convolution: d_output x d_output
logits per image (FastGAN's 5x5; 1 for one logit), flattened, float32. Optionally (`mbstd_group`,
not FastGAN's) StyleGAN's minibatch standard deviation enters the head as one more feature map:
each image's logits then see how much the images of its group differ, the statistic a
discriminator of single images cannot judge. Self-supervision: called
with `crop`, it also returns two reconstructions by small decoders, the whole image from the 8x8
features and the quadrant `crop` of the image from that quadrant of the 16x16 features, both at
`decoder_resolution` (a quarter of the image size, 16 to 128 px, by default), to be compared with
`reconstruction_targets(images, crop)` by the objective (an MSE on real images).

Channels at r px: min(channel_base // r, channel_max), separately for each network.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from ..stylegan2.layers import MinibatchStd
from .layers import (PACKAGE, Decoder, DownBlock, SkipExcitation, UpBlock, _batch_norm, _built, _conv, activate,
                     activation_factor, blur121, check_activation, check_norm, check_upsample, downsample, quarter)

MIN_RESOLUTION = 32
START = 4  # the generator's first map and the smallest SLE source
HEAD = 8  # the discriminator's last map, where the logits and the whole-image decoder start


def check_resolution(resolution):
    """`resolution` as an int: a power of two >= 32; a ValueError otherwise."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < MIN_RESOLUTION \
            or resolution & (resolution - 1):
        raise ValueError(f"the lightweight networks need a power-of-two resolution >= {MIN_RESOLUTION} "
                         f"(32, 64, 128, 256, ...), got {resolution!r}")
    return resolution


def channels_at(resolution, channel_base, channel_max):
    channels = min(int(channel_base) // int(resolution), int(channel_max))
    if channels < 1:
        raise ValueError(f"channel_base {channel_base} leaves no channel at {resolution} px")
    return channels


def sle_pairs(resolution):
    """{high: low}: the maps whose channels skip-layer excitation gates (32 px and up), and the map
    that gates each (16 times smaller, or the 4x4 start)."""
    return {high: max(START, high // 16) for high in _doublings(MIN_RESOLUTION, resolution)}


def _doublings(first, last):
    return [2 ** k for k in range(int(math.log2(first)), int(math.log2(last)) + 1)]


@keras.saving.register_keras_serializable(package=PACKAGE)
class LightweightGenerator(keras.Model):
    """z (B, latent_dim) -> images (B, resolution, resolution, 3) float32 in [-1, 1].

    `call(z, training=False)`: batch norm uses batch statistics when training, its moving averages
    otherwise (pictures, exports)."""

    def __init__(self,
                 resolution=64,
                 latent_dim=128,
                 channel_base=512,         # channels at r px: min(channel_base // r, channel_max)
                 channel_max=64,
                 sle=True,                 # skip-layer excitation on or off
                 upsample="bilinear",      # "nearest", "bilinear" or "antialiased"
                 block_convs=1,            # 3x3 convolutions per upsampling block
                 norm="batch",             # "batch" or None
                 activation="leaky",       # "leaky" or "glu" (FastGAN's; twice the convolutions' cost)
                 spectral_norm=False,      # spectral normalisation of every convolution (not the first dense)
                 output_blur=False,        # the [1, 2, 1] blur on the image before tanh
                 **kwargs):
        super().__init__(**kwargs)
        self.resolution = check_resolution(resolution)
        self.activation = check_activation(activation)
        self.output_blur = bool(output_blur)
        self.latent_dim = int(latent_dim)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.channel_base, self.channel_max = int(channel_base), int(channel_max)
        self.sle, self.upsample = bool(sle), check_upsample(upsample)
        self.block_convs, self.norm = int(block_convs), check_norm(norm)
        self.spectral_norm = bool(spectral_norm)
        policy, spectral = self.dtype_policy, self.spectral_norm
        start = activation_factor(self.activation) * self.channels(START)
        self.initial = _built(keras.layers.Dense(START * START * start, use_bias=self.norm is None, dtype=policy,
                                                 name="initial"), (None, self.latent_dim))
        self.initial_norm = _batch_norm(start, policy, "initial_norm") if self.norm else None
        self.blocks = [UpBlock(self.channels(r // 2), self.channels(r), self.upsample, self.block_convs, self.norm,
                               self.activation, spectral, dtype=policy, name=f"up{r}")
                       for r in _doublings(2 * START, self.resolution)]
        pairs = sle_pairs(self.resolution) if self.sle else {}
        self.excitations = [SkipExcitation(self.channels(low), self.channels(high), spectral, dtype=policy,
                                           name=f"sle{low}_{high}") for high, low in pairs.items()]
        self.to_rgb = _conv(self.channels(self.resolution), 3, 1, policy, "to_rgb", spectral=spectral)
        self.built = True

    def channels(self, resolution):
        return channels_at(resolution, self.channel_base, self.channel_max)

    def call(self, z, training=False):
        x = self.initial(z)
        x = tf.reshape(x, [-1, START, START, x.shape[-1] // (START * START)])
        if self.initial_norm is not None:
            x = self.initial_norm(x, training=training)
        x = activate(x, self.activation)
        pairs = sle_pairs(self.resolution) if self.sle else {}
        gates = dict(zip(pairs, self.excitations))
        sources = {START: x}
        for block in self.blocks:
            x = block(x, training=training)
            size = x.shape[1]
            if size in gates:
                x = gates[size](sources[pairs[size]], x, training=training)
            if size in pairs.values():
                sources[size] = x
        image = tf.cast(self.to_rgb(x, training=training), tf.float32)
        if self.output_blur:  # no energy at the pixel pitch: the last 3x3 convolution's noise, which D let through
            image = blur121(image)
        return tf.tanh(image)

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution, "latent_dim": self.latent_dim,
                "channel_base": self.channel_base, "channel_max": self.channel_max, "sle": self.sle,
                "upsample": self.upsample, "block_convs": self.block_convs, "norm": self.norm,
                "activation": self.activation, "spectral_norm": self.spectral_norm, "output_blur": self.output_blur}


def default_decoder_resolution(resolution):
    """A quarter of the image size, 16 to 128 px."""
    return min(max(resolution // 4, 2 * HEAD), 128)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LightweightDiscriminator(keras.Model):
    """images (B, res, res, 3) in [-1, 1] -> logits (B, d_output ** 2) float32.

    `call(images, crop=None, training=False)`: without `crop`, the logits; with `crop` (an int, a
    scalar int tensor, or one int per sample; 0 top-left, 1 top-right, 2 bottom-left, 3
    bottom-right), `(logits, (whole, part))`: the decoders' reconstructions, float32 (B, r, r, 3),
    r = `decoder_resolution`, to compare with `reconstruction_targets(images, crop)`."""

    def __init__(self,
                 resolution=64,
                 channel_base=512,         # channels at r px: min(channel_base // r, channel_max)
                 channel_max=128,
                 d_output=5,               # logits per image: d_output x d_output (1..8)
                 reconstruction=True,      # the two self-supervised decoders
                 decoder_resolution=None,  # None: resolution / 4, 16 to 128
                 decoder_upsample="nearest",
                 decoder_channel_base=None,  # decoder channels at r px; None: channel_base // 2
                 decoder_activation="leaky",  # "leaky" or "glu"
                 norm=None,                # "batch" or None
                 spectral_norm=False,      # spectral normalisation of every convolution, decoders' included
                 mbstd_group=0,            # minibatch std group size before the head (StyleGAN's 4); 0: off
                 **kwargs):
        super().__init__(**kwargs)
        self.resolution = check_resolution(resolution)
        self.channel_base, self.channel_max = int(channel_base), int(channel_max)
        self.d_output = int(d_output)
        if not 1 <= self.d_output <= HEAD:
            raise ValueError(f"d_output must be in 1..{HEAD} (logits d_output x d_output from the {HEAD}x{HEAD} "
                             f"features), got {d_output!r}")
        self.reconstruction = bool(reconstruction)
        self.decoder_resolution = int(decoder_resolution or default_decoder_resolution(self.resolution))
        if self.decoder_resolution not in _doublings(HEAD, self.resolution // 2):
            raise ValueError(f"decoder_resolution must be a power of two in {HEAD}..{self.resolution // 2} "
                             f"at {self.resolution} px, got {decoder_resolution!r}")
        self.decoder_upsample = check_upsample(decoder_upsample)
        self.decoder_channel_base = int(decoder_channel_base or self.channel_base // 2)
        self.decoder_activation = check_activation(decoder_activation)
        self.norm, self.spectral_norm = check_norm(norm), bool(spectral_norm)
        if isinstance(mbstd_group, bool) or not isinstance(mbstd_group, int) or mbstd_group < 0:
            raise ValueError(f"mbstd_group must be an int >= 0 (0: no minibatch standard deviation), got "
                             f"{mbstd_group!r}")
        self.mbstd_group = mbstd_group
        policy, spectral = self.dtype_policy, self.spectral_norm
        first = self.resolution // 2
        self.from_rgb = _conv(3, self.channels(first), 4, policy, "from_rgb", strides=2, spectral=spectral)
        self.blocks = [DownBlock(self.channels(r), self.channels(r // 2), self.norm, spectral, dtype=policy,
                                 name=f"down{r}") for r in reversed(_doublings(2 * HEAD, first))]
        head = self.channels(HEAD)
        self.mbstd = MinibatchStd(self.mbstd_group, 1, dtype=policy, name="mbstd") if self.mbstd_group else None
        self.head = _conv(head + (1 if self.mbstd else 0), head, 1, policy, "head", spectral=spectral)
        # The last convolution in float32: logits for the losses, whatever the policy.
        self.logits = _conv(head, 1, HEAD + 1 - self.d_output, "float32", "logits", padding="valid",
                            spectral=spectral)
        self.decoders = []
        if self.reconstruction:
            stages = _doublings(2 * HEAD, self.decoder_resolution)
            widths = [channels_at(r, self.decoder_channel_base, self.channel_max) for r in stages]
            settings = dict(upsample=self.decoder_upsample, activation=self.decoder_activation, spectral=spectral,
                            dtype=policy)
            self.decoders = [Decoder(self.channels(HEAD), widths, name="whole", **settings),
                             Decoder(self.channels(2 * HEAD), widths, name="part", **settings)]
        self.built = True

    def channels(self, resolution):
        return channels_at(resolution, self.channel_base, self.channel_max)

    def features(self, images, training=False):
        """{size: feature map} for every map from resolution / 2 down to 8 px, in the compute dtype."""
        x = tf.nn.leaky_relu(self.from_rgb(tf.cast(images, self.compute_dtype), training=training), alpha=0.2)
        features = {x.shape[1]: x}
        for block in self.blocks:
            x = block(x, training=training)
            features[x.shape[1]] = x
        return features

    def call(self, images, crop=None, training=False):
        features = self.features(images, training=training)
        x = features[HEAD] if self.mbstd is None else self.mbstd(features[HEAD])
        x = tf.nn.leaky_relu(self.head(x, training=training), alpha=0.2)
        logits = tf.reshape(self.logits(tf.cast(x, tf.float32), training=training), [-1, self.d_output ** 2])
        if crop is None:
            return logits
        if not self.reconstruction:
            raise ValueError("this discriminator has no decoders (reconstruction=False): call it without crop")
        whole = self.decoders[0](features[HEAD], training=training)
        part = self.decoders[1](quarter(features[2 * HEAD], crop), training=training)
        return logits, (whole, part)

    def reconstruction_targets(self, images, crop):
        """What the decoders should reconstruct from `images` (B, res, res, 3): (the whole image, its
        quadrant `crop`), each as block means at `decoder_resolution`, float32."""
        images = tf.cast(images, tf.float32)
        whole = downsample(images, self.resolution // self.decoder_resolution)
        part = downsample(quarter(images, crop), self.resolution // 2 // self.decoder_resolution)
        return whole, part

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution, "channel_base": self.channel_base,
                "channel_max": self.channel_max, "d_output": self.d_output, "reconstruction": self.reconstruction,
                "decoder_resolution": self.decoder_resolution, "decoder_upsample": self.decoder_upsample,
                "decoder_channel_base": self.decoder_channel_base, "decoder_activation": self.decoder_activation,
                "norm": self.norm, "spectral_norm": self.spectral_norm, "mbstd_group": self.mbstd_group}


# ----------------------------------------------------------------------------- presets

RESOLUTIONS = (32, 64, 128, 256)
# Per resolution: (generator channel_base, channel_max, discriminator channel_base, channel_max, latent_dim),
# chosen for a small CPU (benchmarks/bench_lightweight.py); a GPU affords several times these widths.
_WIDTHS = {32: (512, 64, 512, 128, 128), 64: (512, 64, 512, 128, 128),
           128: (1024, 128, 1024, 128, 128), 256: (2048, 256, 2048, 256, 256)}


def preset(resolution=64, **overrides):
    """Network and training settings of the lightweight model at one resolution (32, 64, 128, 256;
    larger powers of two take 256's widths).

    Returns {"generator": LightweightGenerator kwargs, "discriminator": LightweightDiscriminator
    kwargs, "training": batch_size, learning_rate, betas, reconstruction_weight, augment_policy,
    ema_beta}; `overrides` set any key of these (a key in both networks' dicts in both; with g_ or
    d_ in front, such as g_channel_base, in one network's only)."""
    check_resolution(resolution)
    g_base, g_max, d_base, d_max, latent_dim = _WIDTHS[min(resolution, RESOLUTIONS[-1])]
    scale = max(resolution // RESOLUTIONS[-1], 1)
    generator = dict(resolution=resolution, latent_dim=latent_dim, channel_base=g_base * scale, channel_max=g_max,
                     sle=True, upsample="bilinear", block_convs=1, norm="batch", activation="leaky",
                     spectral_norm=False, output_blur=False)
    discriminator = dict(resolution=resolution, channel_base=d_base * scale, channel_max=d_max, d_output=5,
                         reconstruction=True, decoder_resolution=default_decoder_resolution(resolution),
                         decoder_upsample="nearest", decoder_channel_base=None, decoder_activation="leaky",
                         norm=None, spectral_norm=False, mbstd_group=0)
    training = dict(batch_size=32 if resolution <= 64 else 16, learning_rate=2e-4, betas=(0.5, 0.999),
                    reconstruction_weight=1.0, augment_policy="color,translation", ema_beta=0.999)
    sections = {"generator": generator, "discriminator": discriminator, "training": training}
    prefixes = {"g_": "generator", "d_": "discriminator"}
    for key, value in overrides.items():
        prefix, name = key[:2], key[2:]
        if prefix in prefixes and name in sections[prefixes[prefix]] and name != "resolution":
            sections[prefixes[prefix]][name] = value
            continue
        targets = [section for section in sections.values() if key in section]
        if not targets:
            known = sorted(set(generator) | set(discriminator) | set(training))
            raise ValueError(f"unknown preset override {key!r}; known keys: {known} (g_ or d_ in front: "
                             "one network only)")
        for section in targets:
            section[key] = value
    return sections


def build_networks(resolution=64, **overrides):
    """(generator, discriminator) of `preset(resolution, **overrides)`."""
    config = preset(resolution, **overrides)
    return LightweightGenerator(**config["generator"]), LightweightDiscriminator(**config["discriminator"])
