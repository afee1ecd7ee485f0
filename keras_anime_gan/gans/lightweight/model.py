"""The lightweight model (FastGAN-style, Liu et al. 2021) as a model of the family: its options and
presets by resolution, its networks (`networks.py`) and its objective, on the shared loop.

What the objective owns:
- losses: hinge (`losses.hinge_discriminator_loss` with `wasserstein_generator_loss`) over the
  discriminator's d_output x d_output logits per image;
- self-supervision: on every discriminator update the discriminator also reconstructs each real
  image, whole and one random quarter (the same quarter for the whole batch, drawn from the GAN's
  stream), from its own features with two small decoders; the mean squared error against the real
  image as the discriminator saw it (after DiffAugment: the same transform) is added to its loss,
  weighted by `reconstruction_weight` (a plain MSE: nothing to download), and tracked as `recon`;
- DiffAugment (colour and translation by default) of every image the discriminator sees;
- Adam with the preset's learning rate and betas (0.5, 0.999); an EMA of the generator (0.999).
The reported `d_loss` is the hinge part alone, so the failure monitor's "D has won" rule reads it.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from ...errors import ConfigError
from .. import losses
from ..loop import GAN
from ..objective import Objective
from ..options import GANOptions, _check_augment, option
from .layers import UPSAMPLES
from .networks import LightweightDiscriminator, LightweightGenerator, check_resolution, preset

SPECTRAL_NORMS = ("none", "discriminator", "both")

# Network option -> (section of `preset`, its key there).
_PRESET_KEYS = {"latent_dim": ("generator", "latent_dim"), "g_channel_base": ("generator", "channel_base"),
                "g_channel_max": ("generator", "channel_max"), "d_channel_base": ("discriminator", "channel_base"),
                "d_channel_max": ("discriminator", "channel_max"),
                "decoder_resolution": ("discriminator", "decoder_resolution")}


@dataclasses.dataclass
class LightweightOptions(GANOptions):
    ema: float | None = option(0.999, "decay of the generator's weight moving average (none: off)",
                               minimum=0.0, maximum=1.0, exclusive=True, fixed=True)
    augment: str = option("diffaugment:color,translation", "augmentation of every image the discriminator sees: "
                                                          "none, or diffaugment[:POLICY] (color, translation, cutout)",
                          check=lambda value: _check_augment(value))
    latent_dim: int | None = option(None, "width of the latent z (default: the preset's, 128; 256 from 256 px)",
                                    kind="network", minimum=1)
    g_channel_base: int | None = option(None, "generator channels at r px: min(g_channel_base / r, g_channel_max) "
                                              "(default: the preset's)", kind="network", minimum=1)
    g_channel_max: int | None = option(None, "most channels of a generator layer (default: the preset's)",
                                       kind="network", minimum=1)
    d_channel_base: int | None = option(None, "discriminator channels at r px: min(d_channel_base / r, d_channel_max)"
                                              " (default: the preset's)", kind="network", minimum=1)
    d_channel_max: int | None = option(None, "most channels of a discriminator layer (default: the preset's)",
                                       kind="network", minimum=1)
    sle: bool = option(True, "skip-layer excitation: low-resolution maps gate the channels of high-resolution ones",
                       kind="network")
    upsample: str = option("bilinear", "the generator's upsampling (no checkerboard artefacts): nearest, bilinear or "
                                       "antialiased (bilinear, then a [1, 2, 1] blur)", kind="network",
                           choices=UPSAMPLES)
    output_blur: bool = option(False, "a [1, 2, 1] blur on the generator's image before tanh: nothing at the pixel "
                                      "pitch (no better SWD at 64 px in 30 CPU-minutes; docs/time-to-quality.md)",
                               kind="network")
    activation: str = option("leaky", "the generator's activation: leaky or glu (FastGAN's; twice the cost)",
                             kind="network", choices=("leaky", "glu"))
    d_output: int = option(5, "discriminator logits per image: d_output x d_output (FastGAN's 5; 1 for one)",
                           kind="network", minimum=1, maximum=8)
    reconstruction: bool = option(True, "the discriminator's self-supervised decoders (the whole image and a random "
                                        "quarter, from its own features)", kind="network")
    decoder_resolution: int | None = option(None, "size of the decoders' reconstructions (default: a quarter of the "
                                                  "image, 16 to 128 px)", kind="network", minimum=8)
    spectral_norm: str = option("none", "spectral normalisation of the convolutions (FastGAN's, in both networks): "
                                        "none, discriminator, or both", kind="network",
                                choices=SPECTRAL_NORMS)
    mbstd_group: int = option(0, "minibatch standard deviation in the discriminator's head, StyleGAN's: images in "
                                 "groups of this many (4 in StyleGAN; the batch per device must divide by it); "
                                 "0: off, FastGAN's", kind="network", minimum=0)
    reconstruction_weight: float = option(1.0, "weight of the decoders' mean squared error in the discriminator loss",
                                          minimum=0.0)


class LightweightObjective(Objective):
    """Hinge loss with the discriminator's reconstruction loss; see the module docstring."""

    metric_names = Objective.metric_names + ("recon",)
    d_learning_rate = g_learning_rate = 2e-4
    beta_1, beta_2 = 0.5, 0.999

    def __init__(self, reconstruction_weight=1.0, **kwargs):
        super().__init__(generator_loss=losses.wasserstein_generator_loss, **kwargs)
        self.reconstruction_weight = float(reconstruction_weight)

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.hinge_discriminator_loss(real_logits, fake_logits)

    def discriminator_objective(self, real, fake):
        discriminator = self.nets.discriminator
        if not discriminator.reconstruction:
            return super().discriminator_objective(real, fake)
        crop = self.nets.rng.uniform([], 0, 4, dtype=tf.int32)  # the quarter to reconstruct
        seen = self.augment(real)  # the reals as D sees them, and the decoders' targets
        real_logits, reconstructions = discriminator(seen, crop=crop, training=True)
        real_logits = tf.cast(real_logits, tf.float32)
        fake_logits = self.run_discriminator(fake)
        hinge = self.discriminator_loss(real_logits, fake_logits)
        targets = discriminator.reconstruction_targets(seen, crop)
        error = tf.add_n([tf.reduce_mean(tf.square(tf.cast(r, tf.float32) - t), axis=[1, 2, 3])
                          for r, t in zip(reconstructions, targets)])
        self.track("recon", tf.reduce_mean(error))
        return hinge + self.reconstruction_weight * error, hinge


class LightweightGAN(GAN):
    """The lightweight model; see the module docstring."""

    Options, Objective = LightweightOptions, LightweightObjective

    @classmethod
    def check_resolution(cls, resolution, options):
        check_resolution(resolution)  # a ValueError below 32 px or for no power of two

    @classmethod
    def resolve_options(cls, resolution, options, batch_size=None):
        """`options` with the preset's widths at `resolution` and its learning rates and betas filled in
        (values given stay as they are). A ConfigError when the global `batch_size` does not split
        into the minibatch standard deviation's groups."""
        settings = preset(resolution)
        batch = batch_size or settings["training"]["batch_size"]
        if options.mbstd_group and batch % options.mbstd_group:
            raise ConfigError(f"lightweight option mbstd_group={options.mbstd_group}: the batch of {batch} does not "
                              f"split into groups of {options.mbstd_group}; use a batch (per device) divisible by it")
        filled = {name: settings[section][key] for name, (section, key) in _PRESET_KEYS.items()
                  if getattr(options, name) is None}
        training = settings["training"]
        paper = {"d_learning_rate": training["learning_rate"], "g_learning_rate": training["learning_rate"],
                 "beta_1": training["betas"][0], "beta_2": training["betas"][1]}
        filled.update({name: value for name, value in paper.items() if getattr(options, name) is None})
        return dataclasses.replace(options, **filled)

    @classmethod
    def build_networks(cls, resolution, options):
        generator = LightweightGenerator(resolution=resolution, latent_dim=options.latent_dim,
                                         channel_base=options.g_channel_base, channel_max=options.g_channel_max,
                                         sle=options.sle, upsample=options.upsample, activation=options.activation,
                                         spectral_norm=options.spectral_norm == "both",
                                         output_blur=options.output_blur, name="generator")
        discriminator = LightweightDiscriminator(resolution=resolution, channel_base=options.d_channel_base,
                                                 channel_max=options.d_channel_max, d_output=options.d_output,
                                                 reconstruction=options.reconstruction,
                                                 decoder_resolution=options.decoder_resolution,
                                                 spectral_norm=options.spectral_norm != "none",
                                                 mbstd_group=options.mbstd_group, name="discriminator")
        return generator, discriminator

    @classmethod
    def default_batch_size(cls, resolution, options):
        """The preset's batch: 32 up to 64 px, 16 above."""
        return preset(resolution)["training"]["batch_size"]

    @classmethod
    def float32_on_cpu_reason(cls, resolution, options):
        # benchmarks/bench_lightweight.py on a 2-core Xeon with AMX, the networks' step in bfloat16 over
        # float32: 1.16x at 32 px, 1.09x at 128, 1.00x at 256, but 0.61-0.63x at 64 (docs/benchmarks.md).
        if resolution == 64:
            return "the lightweight model's networks at 64 px ran at 0.63x their float32 speed in bfloat16 on a CPU"
        return None
