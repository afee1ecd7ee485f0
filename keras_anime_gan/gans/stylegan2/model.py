"""StyleGAN2-ADA (Karras et al. 2020) as a model of the family, on the shared `GAN` loop.

What it changes, and where (see `gans/base.py`):
- networks: `StyleGenerator` (mapping + synthesis) and `ResidualDiscriminator`, from a preset;
- `run_generator`: style mixing in every training run of G, w_avg tracked;
- `run_discriminator`: ADA augmentation of every image D sees (reals, fakes, the R1 pass);
- losses: the non-saturating logistic loss;
- phases: lazy R1 every 16 steps (gamma / 2 x 16), path length every 4 (x 4), and ADA's
  adjustment of p every 4, all without a new loop;
- optimizers: Adam betas (0, 0.99), eps 1e-8, with lr and betas adjusted by c = k / (k + 1);
- EMA: a half-life in images, beta = 0.5 ** (batch / ema_nimg) with a ramp-up; w_avg copied;
- gradients: non-finite values replaced (NaN -> 0, inf -> +-1e5), as NVIDIA does;
- randomness: latents, style mixing, the synthesis noise, augmentation and the path-length y all
  come from the GAN's seeded `rng` (each replica its own stream under tf.distribute);
- a watch on ADA's p: `fit` adds `AugmentationWatch`, which reads p between steps and calls
  `check_augmentation`, a warning (once) when p stays at 0.8 or more, where augmentations leak.

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

from ...errors import ConfigError
from ..base import GAN, GANOptions, RegularizationPhase
from ..options import option
from .augment import AdaptiveAugment, sum_and_count_over_replicas
from .networks import (PRESETS, ResidualDiscriminator, StyleGenerator, check_resolution, preset, preset_batch_size,
                       preset_learning_rate)
from .regularizers import path_length, path_length_penalty, r1_penalty

AUGMENT_MODES = ("ada", "fixed", "none")
LEAK_P = 0.8  # ADA paper, fig. 4: above about 0.8 some augmentations start to leak into G's images
LEAK_CHECKS = 3  # consecutive checks at p >= LEAK_P before `check_augmentation` warns


FIXED_SCHEDULE_PRESETS = ("paper256", "stylegan2")  # presets whose R1 gamma and EMA half-life are numbers
# Network option -> its key in `preset`'s generator / discriminator settings.
_PRESET_KEYS = {"z_dim": "z_dim", "w_dim": "w_dim", "mapping_layers": "mapping_layers",
                "channel_base": "channel_base", "channel_max": "channel_max", "mbstd_group": "mbstd_group_size",
                "mbstd_channels": "mbstd_channels", "conv_clamp": "conv_clamp",
                "reduced_precision_res": "num_reduced_precision_res", "mapping_lr": "mapping_lr_multiplier",
                "w_avg_beta": "w_avg_beta"}


def _is_resolved(options):
    names = [*_PRESET_KEYS, "ema_rampup"]
    if options.preset in FIXED_SCHEDULE_PRESETS:
        names += ["r1_gamma", "ema_kimg"]
    return all(getattr(options, name) is not None for name in names)


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
    mbstd_group: int | None = option(None, "minibatch standard deviation group size (default 4)", kind="network",
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
    r1_gamma: float | None = option(None, "R1 weight gamma (default: the preset's; auto 0.0002 * res^2 / batch)",
                                    minimum=0.0)
    r1_interval: int = option(16, "steps between lazy R1 updates", minimum=1)
    pl_weight: float = option(2.0, "path length regularisation weight (0: off)", minimum=0.0)
    pl_interval: int = option(4, "steps between lazy path length updates", minimum=1)
    pl_batch_shrink: int = option(2, "path length on batch / this many images", minimum=1)
    pl_decay: float = option(0.01, "rate of the path length's running mean", minimum=0.0, maximum=1.0)
    augment: str = option("ada", "discriminator augmentation: ada (p adapts), fixed (p stays augment_p) or none",
                          choices=AUGMENT_MODES)
    augment_p: float = option(0.0, "initial (or, with fixed, constant) augmentation probability",
                              minimum=0.0, maximum=1.0)
    ada_target: float = option(0.6, "r_t, the sign of D on real images, that ADA holds", minimum=0.0, maximum=1.0)
    ada_interval: int = option(4, "steps between adjustments of p", minimum=1)
    ada_kimg: float = option(500.0, "thousands of images for p to move by 1", minimum=0.0, exclusive=True)
    ema_kimg: float | None = option(None, "generator EMA half-life in thousands of images (default: the preset's; "
                                          "auto batch * 10 / 32)", minimum=0.0, exclusive=True)
    micro_batch: int | None = option(None, "images per forward/backward pass; a divisor of the per-replica batch "
                                           "accumulates gradients over batch / micro_batch passes, for less memory "
                                           "(NVIDIA's batch_gpu; default: the whole batch)", minimum=1)
    ema_rampup: float | None = option(None, "EMA half-life at most this fraction of the images seen (default: the "
                                            "preset's, 0.05 for auto and tiny, off for paper256 and stylegan2; 0: off)",
                                      minimum=0.0)

    def validate(self, model: str = "this model") -> None:
        super().validate(model)
        if self.ema is not None:  # the family's decay option: here it would be silently replaced
            raise ConfigError(f"{model} option ema: its generator EMA is always on, with a half-life in images; "
                              f"set ema_kimg (and ema_rampup) instead of a decay")


class StyleGAN2ADA(GAN):
    """StyleGAN2 with adaptive discriminator augmentation; see the module docstring."""

    Options = StyleGAN2Options
    metric_names = GAN.metric_names + ("r1", "pl", "ada", "ada_p", "r_t")
    ema_copies_buffers = True

    def __init__(self, generator, discriminator, latent_dim=None, *, resolution, augmenter=None, style_mixing=0.9,
                 r1_gamma=None, r1_interval=16, pl_weight=2.0, pl_interval=4, pl_batch_shrink=2, pl_decay=0.01,
                 augment="ada",
                 augment_p=0.0, ada_target=0.6, ada_interval=4, ada_kimg=500.0, ema_kimg=None, ema_rampup=0.05,
                 learning_rate=0.0025, **kwargs):
        kwargs["ema"] = kwargs.get("ema") or 0.999  # always on; the decay comes from `ema_decay_now`
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {AUGMENT_MODES}, got {augment!r}")
        self.style_mixing = float(style_mixing)
        self.r1_gamma = None if r1_gamma is None else float(r1_gamma)
        self.r1_interval, self.pl_interval, self.pl_batch_shrink = int(r1_interval), int(pl_interval), int(pl_batch_shrink)
        self.pl_weight, self.pl_decay = float(pl_weight), float(pl_decay)
        self.augment_mode, self.ada_interval = augment, int(ada_interval)
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.learning_rate = float(learning_rate)
        self.resolution = int(resolution)
        self.augmenter = augmenter or AdaptiveAugment(initial_p=augment_p, target=ada_target, interval=ada_interval,
                                                      speed_kimg=ada_kimg, rng=self.rng, name="augment")
        # The current p and r_t, as NVIDIA logs them: an epoch's mean would lag behind.
        self.trackers.update({name: LatestValue(name=name) for name in ("ada_p", "r_t")})
        self.pl_mean = self.add_weight(shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica",
                                       name="pl_mean")
        self.__dict__["_augment_watch"] = {"high": 0, "warned": False}  # `check_augmentation`'s state

    @classmethod
    def resolve_options(cls, resolution, options):
        """`options` with the preset's values filled in at `resolution`: every network option, ema_rampup
        (0 = off, the paper presets'), and r1_gamma / ema_kimg where the preset fixes them (paper256,
        stylegan2); auto and tiny keep those None, NVIDIA's formulas of the run's batch, in the step.
        Options already resolved come back as they are, without reading the preset."""
        if _is_resolved(options):
            return options
        given = {key: getattr(options, name) for name, key in _PRESET_KEYS.items() if getattr(options, name) is not None}
        if given.get("conv_clamp") == 0:
            given["conv_clamp"] = None  # 0: no clamp
        settings = preset(options.preset, resolution, **given)  # a ValueError for a bad resolution
        networks = {**settings["generator"], **settings["discriminator"]}
        training = settings["training"]
        filled = {name: networks[key] for name, key in _PRESET_KEYS.items()}
        filled["conv_clamp"] = 0.0 if filled["conv_clamp"] is None else float(filled["conv_clamp"])
        filled["ema_rampup"] = options.ema_rampup if options.ema_rampup is not None else training["ema_rampup"] or 0.0
        if options.preset in FIXED_SCHEDULE_PRESETS:
            filled["r1_gamma"] = options.r1_gamma if options.r1_gamma is not None else training["gamma"]
            filled["ema_kimg"] = options.ema_kimg if options.ema_kimg is not None else training["ema_kimg"]
        return dataclasses.replace(options, **filled)

    @classmethod
    def build_networks(cls, resolution, options):
        options = cls.resolve_options(resolution, options)  # as they are when resolved already
        return (StyleGenerator(**generator_kwargs(resolution, options), name="generator"),
                ResidualDiscriminator(**discriminator_kwargs(resolution, options), name="discriminator"))

    @classmethod
    def check_resolution(cls, resolution, options):
        check_resolution(resolution)  # a ValueError for a resolution that is not a power of two >= 4

    @classmethod
    def from_options(cls, resolution, options, seed=None):
        options = cls.resolve_options(resolution, options)
        generator, discriminator = cls.build_networks(resolution, options)
        values = {**options.values("model"), **options.values("optimizer")}
        values.pop("ema", None)
        return cls(generator, discriminator, seed=seed, resolution=resolution,
                   learning_rate=preset_learning_rate(options.preset, resolution), **values)

    # -- optimizers and gradients ------------------------------------------------------

    def paper_optimizers(self):
        """Adam(lr c, beta_1 0^c, beta_2 0.99^c, eps 1e-8), c = k / (k + 1) for lazy regularisation
        every k steps (G: path length, D: R1), as NVIDIA adjusts them."""
        return self._lazy_adjusted_adams({})

    def default_optimizers(self):
        """`paper_optimizers` with the given learning rates and betas, adjusted by the same c
        (an override states the rate per regularised step, as NVIDIA's --lrate does)."""
        return self._lazy_adjusted_adams(self.optimizer_overrides)

    def _lazy_adjusted_adams(self, overrides):
        def given(name, default):
            return default if overrides.get(name) is None else overrides[name]

        optimizers = []
        g_interval = self.pl_interval if self.pl_weight > 0 else 0
        for interval, rate in ((self.r1_interval, given("d_learning_rate", self.learning_rate)),
                               (g_interval, given("g_learning_rate", self.learning_rate))):
            c = interval / (interval + 1.0) if interval else 1.0
            optimizers.append(keras.optimizers.Adam(rate * c, beta_1=given("beta_1", 0.0) ** c,
                                                    beta_2=given("beta_2", 0.99) ** c, epsilon=1e-8))
        return tuple(optimizers)

    @classmethod
    def default_batch_size(cls, resolution, options):
        """The preset's batch (auto: min(4096 // res, 32); paper256 64; stylegan2 32; tiny 16)."""
        return preset_batch_size(options.preset, resolution)

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
        ws = self._mixed_ws(latents, training)
        if not training:
            return self.generator.synthesis(ws, noise_mode="const")
        return self.generator.synthesis(ws, noise_mode="random", rng=self.rng)

    def _mixed_ws(self, latents, training=True):
        if not training:
            return self.generator.mapping(latents)
        ws, _ = self.generator.style_mixing(latents, self.style_mixing, rng=self.rng, update_w_avg=True)
        return ws

    def run_discriminator(self, images, training=True):
        if self.augment_mode != "none":
            images = self.augmenter(images, training=training)
        return tf.cast(self.discriminator(images, training=training), tf.float32)

    def observe_discriminator(self, real_logits, fake_logits):
        if self.augment_mode == "ada":
            self.augmenter.accumulate(real_logits)

    # -- losses ------------------------------------------------------------------------

    def discriminator_loss(self, real_logits, fake_logits):
        """Non-saturating logistic: softplus(D(G(z))) + softplus(-D(x))."""
        return tf.reduce_mean(tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits), axis=-1)

    def generator_loss(self, fake_logits):
        return tf.reduce_mean(tf.nn.softplus(-fake_logits), axis=-1)

    def regularization_phases(self):
        phases = []
        if self.r1_interval:
            phases.append(RegularizationPhase("r1", "discriminator", self.r1_interval, self._r1_loss))
        if self.pl_weight > 0:
            phases.append(RegularizationPhase("pl", "generator", self.pl_interval, self._path_length_loss))
        if self.augment_mode == "ada":
            phases.append(RegularizationPhase("ada", None, self.ada_interval, self._adjust_augmentation))
        return tuple(phases)

    def _r1_loss(self, real, global_batch):
        gamma = self.r1_gamma
        if gamma is None:  # NVIDIA's auto: 0.0002 * res^2 / batch
            gamma = 0.0002 * self.resolution**2 / tf.cast(global_batch, tf.float32)
        penalty = r1_penalty(self.run_discriminator, real)
        return penalty * (gamma / 2.0) * float(self.r1_interval)

    def _path_length_loss(self, real, global_batch):
        batch = tf.maximum(tf.shape(real)[0] // self.pl_batch_shrink, 1)
        ws = self._mixed_ws(self.sample_latent(batch))
        lengths = path_length(lambda w: self.generator.synthesis(w, noise_mode="random", rng=self.rng), ws,
                              rng=self.rng)
        # The running mean moves by the mean over every replica's lengths, so all replicas (and all
        # workers: pl_mean keeps each worker's first replica's value) hold the same pl_mean.
        penalty, new_mean = path_length_penalty(lengths, self.pl_mean, decay=self.pl_decay, weight=self.pl_weight,
                                                batch_mean=_mean_over_replicas(lengths))
        self.pl_mean.assign(new_mean)
        return penalty * float(self.pl_interval)

    def _adjust_augmentation(self, real, global_batch):
        return self.augmenter.adjust(batch_size=global_batch)

    # -- the step and the EMA ----------------------------------------------------------

    def train_step(self, data, due_phases=frozenset()):
        results = super().train_step(data, due_phases)
        for name, value in self.augmenter.metric_values().items():
            self.trackers[name].update_state(value)
        results.update({name: self.trackers[name].result() for name in ("ada_p", "r_t")})
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    # -- watching p (Python, between steps) ----------------------------------------------

    def training_settings(self, global_batch):
        """The learning rates (lazily adjusted), R1's gamma and the EMA half-life at this batch: NVIDIA's
        auto formulas where the options leave them to the batch."""
        gamma = self.r1_gamma if self.r1_gamma is not None else 0.0002 * self.resolution ** 2 / global_batch
        ema_kimg = self.ema_kimg if self.ema_kimg is not None else global_batch * 10.0 / 32.0
        return {**super().training_settings(global_batch), "r1_gamma": gamma, "ema_kimg": ema_kimg,
                "ema_rampup": self.ema_rampup or None}

    def training_callbacks(self):
        """An `AugmentationWatch` on p whenever there is augmentation."""
        return [AugmentationWatch()] if self.augment_mode != "none" else []

    def check_augmentation(self, p=None):
        """Python-side check of ADA's p (the variable's value when None), called between steps by
        `AugmentationWatch`: after LEAK_CHECKS consecutive checks at p >= LEAK_P, warn once per
        model (an `AugmentationLeakWarning`) that augmentations may leak into the generated images.
        Returns whether this call warned."""
        if self.augment_mode == "none":
            return False
        p = float(keras.ops.convert_to_numpy(self.augmenter.p)) if p is None else float(p)
        watch = self.__dict__["_augment_watch"]
        watch["high"] = watch["high"] + 1 if p >= LEAK_P else 0
        if watch["warned"] or watch["high"] < LEAK_CHECKS:
            return False
        watch["warned"] = True
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

    def ema_decay_now(self, updates, global_batch):
        """beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, images seen * ema_rampup)."""
        batch = tf.cast(global_batch, tf.float32)
        ema_kimg = self.ema_kimg if self.ema_kimg is not None else batch * 10.0 / 32.0
        ema_nimg = ema_kimg * 1000.0
        if self.ema_rampup:  # None or 0: off
            ema_nimg = tf.minimum(ema_nimg, updates * batch * self.ema_rampup)
        return tf.pow(0.5, batch / tf.maximum(ema_nimg, 1e-8))

    def get_config(self):
        return {**super().get_config(), "style_mixing": self.style_mixing, "r1_gamma": self.r1_gamma,
                "r1_interval": self.r1_interval, "pl_weight": self.pl_weight, "pl_interval": self.pl_interval,
                "augment": self.augment_mode}


class LatestValue(keras.metrics.Metric):
    """A metric whose result is the last value given to `update_state` (0 after a reset)."""

    def __init__(self, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.latest = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="latest",
                                        aggregation="only_first_replica")

    def update_state(self, value):
        self.latest.assign(tf.cast(value, self.dtype))

    def result(self):
        return tf.identity(self.latest)

    def reset_state(self):
        self.latest.assign(0.0)


class AugmentationWatch(keras.callbacks.Callback):
    """Reads the model's augmentation probability where Python runs, every `every` steps and at
    the end of each epoch, and hands it to `model.check_augmentation` (which warns once when p
    stays high). `StyleGAN2ADA.training_callbacks()` adds one to every `fit`; a compiled step
    cannot warn itself."""

    def __init__(self, every=100):
        super().__init__()
        self.every = int(every)
        self._steps = self._checked_at = 0

    def _check(self):
        if self._checked_at != self._steps:  # an epoch ending on a checked step: one check, not two
            self._checked_at = self._steps
            self.model.check_augmentation()

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
