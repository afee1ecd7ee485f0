"""StyleGAN2-ADA (Karras et al. 2020) as a model of the family: its options and presets, its
networks and its objective, on the shared loop (`gans/loop.py`).

What the objective owns (NVIDIA's `training/loss.py` split):
- `run_generator`: style mixing in every training run of G, w_avg tracked;
- `run_discriminator`: ADA augmentation of every image D sees (reals, fakes, the R1 pass);
- losses: the non-saturating logistic loss (`losses.logistic_discriminator_loss`, `bce_generator_loss`);
- phases: lazy R1 every 16 steps (gamma / 2 x 16), path length every 4 (x 4), and ADA's
  adjustment of p every 4, all without a new loop;
- optimizers: Adam betas (0, 0.99), eps 1e-8, with lr and betas adjusted by c = k / (k + 1);
- gradients: non-finite values replaced (NaN -> 0, inf -> +-1e5), as NVIDIA does;
- a watch on ADA's p: `fit` adds `AugmentationWatch`, which reads p between steps and calls
  `check_augmentation`, a warning (once) when p stays at 0.8 or more, where augmentations leak.
The model keeps an EMA of the generator with a half-life in images (`ema.HalfLife`, w_avg copied).
R1's gamma and the EMA half-life are resolved once from the run's batch (NVIDIA's auto formulas
0.0002 * res^2 / batch and batch * 10 / 32) with the rest of the options (`resolve_options`).

Randomness: latents, style mixing, the synthesis noise, augmentation and the path-length y all
come from the GAN's seeded `rng` (each replica its own stream under tf.distribute).

Distribution: the all-reduced ADA sign counters make r_t the mean over all replicas' reals, and the
path-length running mean is updated with the mean over all replicas' lengths, so every replica
(and every worker) keeps the same p and pl_mean. What stays per replica, as in NVIDIA's multi-GPU
training: the minibatch-std groups and the style-mixing cutoff (one draw per replica's batch).
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import tensorflow as tf

import numpy as np

from ...errors import ConfigError
from .. import losses
from ..ema import HalfLife
from ..loop import GAN
from ..objective import Objective, RegularizationPhase
from ..options import GANOptions, _check_augment, option
from .augment import AdaptiveAugment, sum_and_count_over_replicas
from .networks import (PRESETS, ResidualDiscriminator, StyleGenerator, check_resolution, preset, preset_batch_size,
                       preset_learning_rate)

LEAK_P = 0.8  # ADA paper, fig. 4: above about 0.8 some augmentations start to leak into G's images
LEAK_CHECKS = 3  # consecutive checks at p >= LEAK_P before `check_augmentation` warns


FIXED_SCHEDULE_PRESETS = ("paper256", "stylegan2")  # presets whose R1 gamma and EMA half-life are numbers
# Network option -> its key in `preset`'s generator / discriminator settings.
_PRESET_KEYS = {"z_dim": "z_dim", "w_dim": "w_dim", "mapping_layers": "mapping_layers",
                "channel_base": "channel_base", "channel_max": "channel_max", "mbstd_group": "mbstd_group_size",
                "mbstd_channels": "mbstd_channels", "conv_clamp": "conv_clamp",
                "reduced_precision_res": "num_reduced_precision_res", "mapping_lr": "mapping_lr_multiplier",
                "w_avg_beta": "w_avg_beta"}


def generator_kwargs(resolution, options):
    """`StyleGenerator` arguments from resolved options (`StyleGAN2ADA.resolve_options`)."""
    return dict(resolution=resolution, z_dim=options.z_dim, w_dim=options.w_dim, img_channels=3,
                mapping_layers=options.mapping_layers, mapping_lr_multiplier=options.mapping_lr,
                w_avg_beta=options.w_avg_beta, channel_base=options.channel_base, channel_max=options.channel_max,
                conv_clamp=options.conv_clamp or None, num_reduced_precision_res=options.reduced_precision_res)


def discriminator_kwargs(resolution, options):
    """`ResidualDiscriminator` arguments from resolved options."""
    return dict(resolution=resolution, img_channels=3, channel_base=options.channel_base,
                channel_max=options.channel_max, mbstd_group_size=options.mbstd_group,
                mbstd_channels=options.mbstd_channels, conv_clamp=options.conv_clamp or None,
                num_reduced_precision_res=options.reduced_precision_res)


class AugmentationLeakWarning(UserWarning):
    """ADA's augmentation probability p has stayed high enough for augmentations to leak."""


@dataclasses.dataclass
class StyleGAN2Options(GANOptions):
    preset: str = option("auto", "named configuration: auto (NVIDIA's per-resolution default), paper256, "
                                 "stylegan2 or tiny (a few channels, for tests and CPU runs)",
                         kind="network", choices=PRESETS)
    z_dim: int | None = option(None, "input latent size (default: the preset's, 512)", kind="network", minimum=1)
    w_dim: int | None = option(None, "intermediate latent size (default: the preset's, 512)", kind="network",
                               minimum=1)
    mapping_layers: int | None = option(None, "mapping network depth (default: the preset's; 2 in auto)",
                                        kind="network", minimum=1)
    channel_base: int | None = option(None, "channels are min(channel_base / resolution, channel_max)",
                                      kind="network", minimum=1)
    channel_max: int | None = option(None, "most channels of any layer (default: the preset's, 512)",
                                     kind="network", minimum=1)
    mbstd_group: int | None = option(None, "minibatch standard deviation group size in the discriminator "
                                           "(stylegan2-ada: None is 4; lightweight: 0 is off)", kind="network",
                                     minimum=1)
    mbstd_channels: int | None = option(None, "minibatch standard deviation statistics appended (default 1)",
                                        kind="network", minimum=1)
    conv_clamp: float | None = option(None, "clamp of every convolution's activations to +-this (default: the "
                                            "preset's, 256, NVIDIA's; 0: no clamp)", kind="network", minimum=0.0)
    reduced_precision_res: int | None = option(None, "under --precision float16 or bfloat16, the number of top "
                                                     "resolutions that run in it, the rest in float32 (NVIDIA's "
                                                     "num_fp16_res; default: the preset's, 4)", kind="network",
                                               minimum=0)
    mapping_lr: float | None = option(None, "learning-rate multiplier of the mapping network (default: the "
                                            "preset's, 0.01)", kind="network", minimum=0.0, exclusive=True)
    w_avg_beta: float | None = option(None, "decay of the tracked mean w that truncation moves toward (default: "
                                            "the preset's, 0.995)", kind="network", minimum=0.0, maximum=1.0)
    style_mixing: float = option(0.9, "probability of mixing two latents' styles in a generator run",
                                 minimum=0.0, maximum=1.0)
    r1_gamma: float | None = option(None, "R1 weight gamma (default: the preset's; auto and tiny 0.0002 * res^2 / "
                                          "batch)", minimum=0.0)
    r1_interval: int = option(16, "steps between lazy R1 updates", minimum=1)
    pl_weight: float = option(2.0, "path length regularisation weight (0: off)", minimum=0.0)
    pl_interval: int = option(4, "steps between lazy path length updates", minimum=1)
    pl_batch_shrink: int = option(2, "path length on batch / this many images", minimum=1)
    pl_decay: float = option(0.01, "rate of the path length's running mean", minimum=0.0, maximum=1.0)
    augment: str = option("ada", "discriminator augmentation: ada (p adapts), fixed (p stays augment_p), none, or "
                                 "diffaugment[:POLICY] (DiffAugment; POLICY a comma-separated list of color, "
                                 "translation, cutout)", check=lambda value: _check_augment(value, ("ada", "fixed")))
    augment_p: float = option(0.0, "initial (or, with fixed, constant) augmentation probability",
                              minimum=0.0, maximum=1.0)
    ada_target: float = option(0.6, "r_t, the sign of D on real images, that ADA holds", minimum=0.0, maximum=1.0)
    ada_interval: int = option(4, "steps between adjustments of p", minimum=1)
    ada_kimg: float = option(500.0, "thousands of images for p to move by 1", minimum=0.0, exclusive=True)
    ema_kimg: float | None = option(None, "generator EMA half-life in thousands of images (default: the preset's; "
                                          "auto and tiny batch * 10 / 32)", minimum=0.0, exclusive=True)
    ema_rampup: float | None = option(None, "EMA half-life at most this fraction of the images seen (default: the "
                                            "preset's, 0.05 for auto and tiny, off for paper256 and stylegan2; 0: off)",
                                      minimum=0.0)

    def validate(self, model: str = "this model") -> None:
        super().validate(model)
        if self.ema is not None:  # the family's decay option: here it would be silently replaced
            raise ConfigError(f"{model} option ema: its generator EMA is always on, with a half-life in images; "
                              f"set ema_kimg (and ema_rampup) instead of a decay")


class StyleGAN2Objective(Objective):
    """StyleGAN2-ADA's objective; see the module docstring. Every number arrives resolved
    (`StyleGAN2ADA.resolve_options`): r1_gamma, the learning rates and betas before the lazy
    adjustment; `batch_size` is the global batch they were resolved for (a warning, once, when a
    step trains on another)."""

    metric_names = Objective.metric_names + ("r1", "pl", "ada", "ada_p", "r_t")
    own_augmentations = ("ada", "fixed")
    latest_metric_names = ("ada_p", "r_t")  # the current p and r_t, as NVIDIA logs them: a mean would lag
    d_learning_rate = g_learning_rate = 0.0025
    beta_1, beta_2 = 0.0, 0.99

    def __init__(self, r1_gamma, batch_size=None, style_mixing=0.9, r1_interval=16, pl_weight=2.0, pl_interval=4,
                 pl_batch_shrink=2, pl_decay=0.01, augment="ada", augment_p=0.0, ada_target=0.6, ada_interval=4,
                 ada_kimg=500.0, **kwargs):
        super().__init__(augment=augment, **kwargs)
        self.r1_gamma, self.batch_size = float(r1_gamma), batch_size
        self.style_mixing = float(style_mixing)
        self.r1_interval, self.pl_interval, self.pl_batch_shrink = int(r1_interval), int(pl_interval), int(pl_batch_shrink)
        self.pl_weight, self.pl_decay = float(pl_weight), float(pl_decay)
        self.augment_mode = augment if augment in self.own_augmentations else "none"  # ADA's; DiffAugment: the base's
        self.ada_interval = int(ada_interval)
        self.augment_settings = dict(initial_p=augment_p, target=ada_target, interval=ada_interval, speed_kimg=ada_kimg)
        self.pl_mean = self.add_weight(shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica",
                                       name="pl_mean")
        self.augmenter = None
        self._leak = {"high": 0, "warned": False}  # `check_augmentation`'s state

    def bind(self, nets):
        super().bind(nets)
        if self.augmenter is None:
            self.augmenter = AdaptiveAugment(rng=nets.rng, name="augment", **self.augment_settings)

    def optimizers(self):
        """Adam(lr c, beta_1 0^c, beta_2 0.99^c, eps 1e-8), c = k / (k + 1) for lazy regularisation
        every k steps (G: path length, D: R1), as NVIDIA adjusts them; a given rate states the rate
        per regularised step, as NVIDIA's --lrate does."""
        optimizers = []
        g_interval = self.pl_interval if self.pl_weight > 0 else 0
        for interval, rate in ((self.r1_interval, self.d_learning_rate), (g_interval, self.g_learning_rate)):
            c = interval / (interval + 1.0) if interval else 1.0
            optimizers.append(keras.optimizers.Adam(rate * c, beta_1=self.beta_1 ** c, beta_2=self.beta_2 ** c,
                                                    epsilon=1e-8))
        return tuple(optimizers)

    def clean_gradients(self, gradients):
        """NaN -> 0 and +-inf -> +-1e5 (NVIDIA's nan_to_num); finite values as they are."""
        cleaned = []
        for g in gradients:
            if g is not None:
                g = tf.where(tf.math.is_nan(g), tf.zeros_like(g), g)
                g = tf.where(tf.math.is_inf(g), tf.sign(g) * tf.cast(1e5, g.dtype), g)
            cleaned.append(g)
        return cleaned

    # -- the seams ---------------------------------------------------------------------

    def run_generator(self, latents, training=True):
        synthesis = self.nets.generator.synthesis
        if not training:
            return synthesis(self.nets.generator.mapping(latents), noise_mode="const")
        return synthesis(self._mixed_ws(latents), noise_mode="random", rng=self.nets.rng)

    def _mixed_ws(self, latents):
        ws, _ = self.nets.generator.style_mixing(latents, self.style_mixing, rng=self.nets.rng, update_w_avg=True)
        return ws

    def augment(self, images, training=True):
        if self.augment_mode != "none":
            return self.augmenter(images, training=training)
        return super().augment(images, training)

    def observe_discriminator(self, real_logits, fake_logits):
        if self.augment_mode == "ada":
            self.augmenter.accumulate(real_logits)

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.logistic_discriminator_loss(real_logits, fake_logits)

    # -- phases ------------------------------------------------------------------------

    def phases(self):
        phases = []
        if self.r1_interval:
            phases.append(RegularizationPhase("r1", "discriminator", self.r1_interval, self._r1_loss))
        if self.pl_weight > 0:
            phases.append(RegularizationPhase("pl", "generator", self.pl_interval, self._path_length_loss))
        if self.augment_mode == "ada":
            phases.append(RegularizationPhase("ada", None, self.ada_interval, self._adjust_augmentation))
        return tuple(phases)

    def _r1_loss(self, real, global_batch):
        self._check_batch(real)
        penalty = losses.r1_penalty(self.run_discriminator, real)
        return penalty * (self.r1_gamma / 2.0) * float(self.r1_interval)

    def _path_length_loss(self, real, global_batch):
        batch = tf.maximum(tf.shape(real)[0] // self.pl_batch_shrink, 1)
        ws = self._mixed_ws(self.sample_latent(batch))
        synthesis = self.nets.generator.synthesis
        lengths = losses.path_length(lambda w: synthesis(w, noise_mode="random", rng=self.nets.rng), ws,
                                     rng=self.nets.rng)
        # The running mean moves by the mean over every replica's lengths, so all replicas (and all
        # workers: pl_mean keeps each worker's first replica's value) hold the same pl_mean.
        penalty, new_mean = losses.path_length_penalty(lengths, self.pl_mean, decay=self.pl_decay,
                                                       weight=self.pl_weight, batch_mean=_mean_over_replicas(lengths))
        self.pl_mean.assign(new_mean)
        return penalty * float(self.pl_interval)

    def _adjust_augmentation(self, real, global_batch):
        return self.augmenter.adjust(batch_size=global_batch)

    def _check_batch(self, real):
        """Warn once when the traced global batch is not the one gamma and the EMA were resolved for."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        batch = None if real.shape[0] is None else real.shape[0] * replicas
        if self.batch_size and batch and batch != self.batch_size and not self._leak.get("batch_warned"):
            self._leak["batch_warned"] = True
            warnings.warn(f"this StyleGAN2-ADA model's R1 gamma and EMA half-life were resolved for a batch of "
                          f"{self.batch_size} and it trains on {batch}: pass batch_size={batch} to create_gan "
                          "(train.py does) for NVIDIA's values at this batch", stacklevel=2)

    def end_step(self):
        for name, value in self.augmenter.metric_values().items():
            self.track(name, value)

    # -- what Python reads between steps -------------------------------------------------

    def training_settings(self):
        return {"r1_gamma": self.r1_gamma}

    def training_callbacks(self):
        """An `AugmentationWatch` on p whenever there is augmentation."""
        return [AugmentationWatch()] if self.augment_mode != "none" else []

    def check_augmentation(self, p=None):
        """Python-side check of ADA's p (the variable's value when None), called between steps by
        `AugmentationWatch`: after LEAK_CHECKS consecutive checks at p >= LEAK_P, warn once (an
        `AugmentationLeakWarning`) that augmentations may leak into the generated images. Returns
        whether this call warned."""
        if self.augment_mode == "none":
            return False
        p = float(keras.ops.convert_to_numpy(self.augmenter.p)) if p is None else float(p)
        self._leak["high"] = self._leak["high"] + 1 if p >= LEAK_P else 0
        if self._leak["warned"] or self._leak["high"] < LEAK_CHECKS:
            return False
        self._leak["warned"] = True
        if self.augment_mode == "ada":
            advice = (f"the discriminator overfits its data: train on more images, lower --ada-target "
                      f"(now {self.augmenter.target:g}), or hold p lower with --augment fixed --augment-p 0.5")
        else:
            advice = "use a lower --augment-p, or --augment ada to let p adapt"
        message = (f"the augmentation probability p has stayed at {LEAK_P:g} or more ({p:.2f} now): at such p "
                   f"augmentations can leak into the generated images (rotated, recoloured or shifted faces); "
                   f"{advice}")
        warnings.warn(message, AugmentationLeakWarning, stacklevel=2)
        return True


class StyleGAN2ADA(GAN):
    """StyleGAN2 with adaptive discriminator augmentation; see the module docstring."""

    Options, Objective = StyleGAN2Options, StyleGAN2Objective

    @classmethod
    def resolve_options(cls, resolution, options, batch_size=None):
        """`options` with every derived value filled in at `resolution` and the global `batch_size`
        (None: the preset's): the preset's network values, ema_rampup (0 = off, the paper presets'),
        r1_gamma and ema_kimg (the preset's numbers, or NVIDIA's auto formulas of the batch), and
        the learning rates (the preset's) and betas. Values already given stay as they are."""
        given = {key: getattr(options, name) for name, key in _PRESET_KEYS.items() if getattr(options, name) is not None}
        if given.get("conv_clamp") == 0:
            given["conv_clamp"] = None  # 0: no clamp
        settings = preset(options.preset, resolution, **given)  # a ValueError for a bad resolution
        networks = {**settings["generator"], **settings["discriminator"]}
        training = settings["training"]
        batch = batch_size or preset_batch_size(options.preset, resolution)
        filled = {name: networks[key] for name, key in _PRESET_KEYS.items()}
        filled["conv_clamp"] = 0.0 if filled["conv_clamp"] is None else float(filled["conv_clamp"])
        filled["ema_rampup"] = options.ema_rampup if options.ema_rampup is not None else training["ema_rampup"] or 0.0
        fixed = options.preset in FIXED_SCHEDULE_PRESETS
        # In float32 as NVIDIA computes them on the GPU: the same numbers whatever the batch.
        auto_gamma = float(np.float32(0.0002 * resolution ** 2) / np.float32(batch))
        filled["r1_gamma"] = options.r1_gamma if options.r1_gamma is not None else \
            training["gamma"] if fixed else auto_gamma
        filled["ema_kimg"] = options.ema_kimg if options.ema_kimg is not None else \
            training["ema_kimg"] if fixed else batch * 10.0 / 32.0
        rate = preset_learning_rate(options.preset, resolution)
        for name, value in (("d_learning_rate", rate), ("g_learning_rate", rate), ("beta_1", 0.0), ("beta_2", 0.99)):
            filled[name] = getattr(options, name) if getattr(options, name) is not None else value
        return dataclasses.replace(options, **filled)

    @classmethod
    def build_networks(cls, resolution, options):
        return (StyleGenerator(**generator_kwargs(resolution, options), name="generator"),
                ResidualDiscriminator(**discriminator_kwargs(resolution, options), name="discriminator"))

    @classmethod
    def check_resolution(cls, resolution, options):
        check_resolution(resolution)  # a ValueError for a resolution that is not a power of two >= 4

    @classmethod
    def from_options(cls, resolution, options, seed=None, batch_size=None):
        generator, discriminator = cls.build_networks(resolution, options)
        values = {**options.values("model"), **options.values("optimizer")}
        ema = HalfLife(values.pop("ema_kimg"), values.pop("ema_rampup"))
        micro_batch, _ = values.pop("micro_batch"), values.pop("ema")
        objective = cls.Objective(batch_size=batch_size, **values)
        return cls(generator, discriminator, objective=objective, seed=seed, ema=ema, micro_batch=micro_batch)

    @classmethod
    def default_batch_size(cls, resolution, options):
        """The preset's batch (auto: min(4096 // res, 32); paper256 64; stylegan2 32; tiny 16)."""
        return preset_batch_size(options.preset, resolution)

    def training_settings(self):
        return {**super().training_settings(), "ema_kimg": self.ema.kimg, "ema_rampup": self.ema.rampup or None}


class AugmentationWatch(keras.callbacks.Callback):
    """Reads the model's augmentation probability where Python runs, every `every` steps and at
    the end of each epoch, and hands it to the objective's `check_augmentation` (which warns once
    when p stays high). `StyleGAN2Objective.training_callbacks()` adds one to every `fit`; a
    compiled step cannot warn itself."""

    def __init__(self, every=100):
        super().__init__()
        self.every = int(every)
        self._steps = self._checked_at = 0

    def _check(self):
        if self._checked_at != self._steps:  # an epoch ending on a checked step: one check, not two
            self._checked_at = self._steps
            self.model.objective.check_augmentation()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every and self._steps % self.every == 0:
            self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


def _mean_over_replicas(values):
    """The mean of `values` over every replica's values (the local mean without a strategy); no gradient."""
    total, count = sum_and_count_over_replicas(values)
    return total / tf.maximum(count, 1.0)
