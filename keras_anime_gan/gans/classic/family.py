"""The classic family: DCGAN, LSGAN, WGAN, WGAN-GP and the CSC412 dynamic schedule, on the
networks of `networks.py`. Each class changes only its losses, its schedule or its optimizers.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from .. import losses
from ..base import GAN, GANOptions
from ..options import option
from . import networks

ARCHS = {"dcgan": ("dcgan", "dcgan"), "csc412": ("upsample", "dropout")}  # arch -> (generator, discriminator)


def binary_entropy(p: float) -> float:
    """H(p) in nats (TensorFlow's cross-entropy uses natural logs); 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


@dataclasses.dataclass
class ClassicOptions(GANOptions):
    """The networks of the classic family."""

    arch: str = option("dcgan", "dcgan (Radford et al.) or csc412 (the CSC412 report's upsampling G and "
                                "dropout D)", kind="network", choices=tuple(ARCHS))
    latent_dim: int = option(100, "width of the latent z", kind="network", minimum=1)
    width: int = option(64, "base channel count of both networks", kind="network", minimum=1)
    norm: str = option("batch", "discriminator normalisation", kind="network",
                       choices=("batch", "layer", "instance", "none"))


@dataclasses.dataclass
class DCGANOptions(ClassicOptions):
    label_smoothing: float = option(0.0, "fuzzy labels: 0.1 gives targets 0.9 (real) / 0.1 (fake)",
                                    minimum=0.0, check=lambda value: f"must be below 0.5, got {value}" if value >= 0.5 else None)
    one_sided: bool = option(False, "smooth only the real targets", flag="one-sided-smoothing")


@dataclasses.dataclass
class WGANOptions(ClassicOptions):
    n_critic: int = option(5, "critic updates (each on its own real batch) per generator update", minimum=1)
    clip_value: float | None = option(0.01, "weight clipping bound of the critic", minimum=0.0, exclusive=True)


@dataclasses.dataclass
class WGANGPOptions(ClassicOptions):
    norm: str = option("layer", "critic normalisation (the paper advises against batch norm here)", kind="network",
                       choices=("batch", "layer", "instance", "none"))
    n_critic: int = option(5, "critic updates (each on its own real batch) per generator update", minimum=1)
    gp_weight: float = option(10.0, "gradient penalty weight lambda", minimum=0.0)


@dataclasses.dataclass
class DynamicOptions(DCGANOptions):
    scale: float = option(10.0, "updates per step scale: D gets int(scale * acc), G int(scale * (1 - acc))",
                          minimum=0.0, exclusive=True, flag="dynamic-scale")
    d_min: int = option(1, "fewest discriminator updates per step", minimum=1, flag="dynamic-d-min")
    g_min: int = option(3, "fewest generator updates per step", minimum=1, flag="dynamic-g-min")
    initial_accuracy: float = option(0.5, "accuracy assumed before the first discriminator update",
                                     minimum=0.0, maximum=1.0, flag="dynamic-initial-accuracy")


class ClassicGAN(GAN):
    """A GAN on the classic family's networks (`networks.build_generator` / `build_discriminator`)."""

    Options = ClassicOptions

    @classmethod
    def build_networks(cls, resolution, options):
        g_arch, d_arch = ARCHS[options.arch]
        norm = None if options.norm == "none" else options.norm
        generator = networks.build_generator(resolution, options.latent_dim, options.width, g_arch)
        discriminator = networks.build_discriminator(resolution, options.width, d_arch, norm)
        return generator, discriminator

    @classmethod
    def check_resolution(cls, resolution, options):
        """A ValueError when the networks cannot be built at `resolution` (before building them)."""
        networks.base_size(resolution, ARCHS[options.arch][0])


class DCGAN(ClassicGAN):
    """Non-saturating BCE. `label_smoothing=0.1` gives the fuzzy targets 0.9 (real) / 0.1 (fake)
    of the Artificial Anime Character Design report; `one_sided=True` smooths only the real side.
    That report trained with separate rates (G 5e-4, D 1e-4): pass `d_learning_rate` and
    `g_learning_rate`. Defaults: Adam 2e-4 for both, beta_1 0.5 (Radford et al.)."""

    Options = DCGANOptions

    def __init__(self, generator, discriminator, latent_dim=None, *, label_smoothing=0.0, one_sided=False, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), e.g. 0.1; got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.one_sided = bool(one_sided)

    def targets(self):
        """(real target, fake target) of the discriminator: 1 - s and s (0 when one-sided)."""
        return 1.0 - self.label_smoothing, 0.0 if self.one_sided else self.label_smoothing

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.bce_discriminator_loss(real_logits, fake_logits, *self.targets())

    def generator_loss(self, fake_logits):
        return losses.bce_generator_loss(fake_logits)

    def discriminator_loss_minimum(self):
        """Each side's cross-entropy against its target t is at least H(t): 0.5 * (H(1 - s) + H(s)),
        or 0.5 * H(1 - s) one-sided; 0 without smoothing, about 0.325 for s = 0.1."""
        real_target, fake_target = self.targets()
        return 0.5 * (binary_entropy(real_target) + binary_entropy(fake_target))

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "one_sided": self.one_sided}


class LSGAN(DCGAN):
    """Least-squares objectives (Mao et al.) as written in the Artificial Anime Character Design
    report; the same networks and optimizers as DCGAN, no sigmoid on the discriminator.
    `label_smoothing` / `one_sided` move the least-squares targets as they move DCGAN's: real
    1 - s, fake s (0 when one-sided); the generator still aims at 1."""

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.least_squares_discriminator_loss(real_logits, fake_logits, *self.targets())

    def generator_loss(self, fake_logits):
        return losses.least_squares_generator_loss(fake_logits)

    def discriminator_loss_minimum(self):
        """0 with any targets: squared errors can reach them exactly."""
        return 0.0


@keras.saving.register_keras_serializable(package="keras_anime_gan")
class ClipWeights(keras.constraints.Constraint):
    def __init__(self, clip_value):
        self.clip_value = clip_value

    def __call__(self, weights):
        return keras.ops.clip(weights, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


class WGAN(ClassicGAN):
    """Wasserstein GAN with weight clipping: every critic weight stays in [-clip_value, clip_value]
    (enforced as a Keras constraint, applied by the optimizer after each update, so it also holds
    under tf.distribute), RMSprop(5e-5), `n_critic` critic updates per generator update, each with
    its own real batch and fresh latents (Algorithm 1 of the paper): one step consumes `n_critic`
    batches, so an epoch has len(data) / (batch * n_critic) steps."""

    Options = WGANOptions
    default_d_learning_rate = 5e-5
    default_g_learning_rate = 5e-5

    def __init__(self, generator, discriminator, latent_dim=None, *, n_critic=5, clip_value=0.01, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        self.n_critic = int(n_critic)
        self.clip_value = None if clip_value is None else float(clip_value)
        if self.clip_value is not None:
            clip = ClipWeights(self.clip_value)
            for variable in discriminator.trainable_variables:
                variable.constraint = clip
                variable.assign(clip(variable))

    def paper_optimizers(self):
        return (keras.optimizers.RMSprop(self.default_d_learning_rate), keras.optimizers.RMSprop(self.default_g_learning_rate))

    def schedule(self, real):
        return self.n_critic, 1

    @property
    def real_batches_per_step(self):
        return self.n_critic

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.wasserstein_critic_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return losses.wasserstein_generator_loss(fake_logits)

    def discriminator_loss_minimum(self):
        """None: a critic's loss is unbounded below, so "D has won" means nothing here."""
        return None

    def critic_divergence_bound(self):
        """2 * sqrt(pixels x channels), the largest distance between two images in [-1, 1]: the most
        a 1-Lipschitz critic's estimate |E f(x) - E f(G(z))| can be (weight clipping and the
        gradient penalty both keep the constant near or below 1). math.inf, no bound, when the
        critic's input shape is unknown."""
        try:
            shape = self.discriminator.input_shape
        except AttributeError:
            return math.inf
        if isinstance(shape, list):
            shape = shape[0]
        dims = [int(d) for d in tuple(shape)[1:] if d is not None]
        if not dims or len(dims) != len(tuple(shape)) - 1:
            return math.inf
        return 2.0 * math.sqrt(float(np.prod(dims)))

    def get_config(self):
        return {**super().get_config(), "n_critic": self.n_critic, "clip_value": self.clip_value}


class WGANGP(WGAN):
    """WGAN with a gradient penalty (Gulrajani et al.): lambda * (||grad f(x_hat)|| - 1)^2 on uniform
    random interpolates instead of clipping; Adam(1e-4, beta_1=0.5, beta_2=0.9). Tracks `gp`, the
    mean unweighted penalty. Use a critic without BatchNorm (`norm="layer"` or `"instance"`)."""

    Options = WGANGPOptions
    metric_names = GAN.metric_names + ("gp",)
    default_d_learning_rate = 1e-4
    default_g_learning_rate = 1e-4

    def __init__(self, generator, discriminator, latent_dim=None, *, n_critic=5, gp_weight=10.0, **kwargs):
        super().__init__(generator, discriminator, latent_dim, n_critic=n_critic, clip_value=None, **kwargs)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight = float(gp_weight)

    def paper_optimizers(self):
        return (
            keras.optimizers.Adam(self.default_d_learning_rate, beta_1=0.5, beta_2=0.9),
            keras.optimizers.Adam(self.default_g_learning_rate, beta_1=0.5, beta_2=0.9),
        )

    def discriminator_penalty(self, real, fake):
        alpha = self.rng.uniform([tf.shape(real)[0]] + [1] * (len(real.shape) - 1))  # one weight per example
        penalty = losses.gradient_penalty(self.run_discriminator, real, tf.cast(fake, real.dtype), alpha)
        self.trackers["gp"].update_state(tf.reduce_mean(penalty))
        return self.gp_weight * penalty

    def get_config(self):
        return {**super().get_config(), "gp_weight": self.gp_weight}


class DynamicGAN(DCGAN):
    """The CSC412 report's dynamic schedule: with the discriminator's accuracy `acc` (real: logit > 0,
    fake: logit < 0), a step performs int(max(scale * acc, d_min)) discriminator updates and
    int(max(scale * (1 - acc), g_min)) generator updates (scale 10, d_min 1, g_min 3 in the report;
    these are the report's formulas, although its prose describes the opposite direction).

    `acc` is measured as the report does, on the discriminator's own work: the accuracy of the
    previous discriminator update on its batch (real and fake), read from the logits that update
    computed anyway, so no extra forward pass. The first step, with no update behind it, uses
    `initial_accuracy` (0.5, chance level). The accuracy is a GAN variable, saved in checkpoints.

    Each discriminator update gets a fresh real batch: a step receives `real_batches_per_step`
    = max(int(scale), d_min) batches (the most the rule can ask for) and uses as many as it
    performs updates, so an epoch has len(data) / (batch * that) steps. The loop runs inside the
    compiled graph (tf.while_loop), also under XLA.

    One replica only: TensorFlow cannot synchronise gradients across replicas inside a loop whose
    trip count is data-dependent (`merge_call` inside control flow), so `compile` refuses a
    strategy with several replicas instead of failing in the middle of `fit`."""

    Options = DynamicOptions
    metric_names = GAN.metric_names + ("d_acc", "d_steps", "g_steps")

    def __init__(self, generator, discriminator, latent_dim=None, *, scale=10.0, d_min=1, g_min=3,
                 initial_accuracy=0.5, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if scale <= 0 or d_min < 1 or g_min < 1:
            raise ValueError(f"need scale > 0, d_min >= 1 and g_min >= 1; got {scale}, {d_min}, {g_min}")
        if not 0.0 <= initial_accuracy <= 1.0:
            raise ValueError(f"initial_accuracy must be in [0, 1], got {initial_accuracy}")
        self.scale, self.d_min, self.g_min = float(scale), int(d_min), int(g_min)
        self.initial_accuracy = float(initial_accuracy)
        # (correct, total) of the last discriminator update, float64 so 10 * 7/10 is exactly 7. The
        # initial accuracy as a count out of 10^6: initialisers pass through float32, integers stay exact.
        self.last_correct = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_correct",
                                            initializer=keras.initializers.Constant(round(self.initial_accuracy * 1e6)))
        self.last_total = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_total",
                                          initializer=keras.initializers.Constant(1e6))

    def compile(self, *args, **kwargs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            raise ValueError(
                f"DynamicGAN needs a single replica (this strategy has {replicas}): its data-dependent number of "
                "updates per step cannot contain tf.distribute's gradient synchronisation. Train it without a "
                "multi-device strategy, or use dcgan/lsgan/wgan/wgan-gp for multi-device runs."
            )
        super().compile(*args, **kwargs)

    @property
    def real_batches_per_step(self):
        return max(int(self.scale), self.d_min)

    def observe_discriminator(self, real_logits, fake_logits):
        correct = tf.reduce_sum(tf.cast(real_logits > 0, tf.float64)) + tf.reduce_sum(tf.cast(fake_logits < 0, tf.float64))
        self.last_correct.assign(correct)
        self.last_total.assign(tf.cast(tf.size(real_logits) + tf.size(fake_logits), tf.float64))

    def updates_for(self, correct, total):
        """The report's rule in float64, multiplying before dividing so 10 * 7/10 is exactly 7."""
        d_updates = tf.floor(tf.maximum(self.scale * correct / total, self.d_min))
        g_updates = tf.floor(tf.maximum(self.scale * (total - correct) / total, self.g_min))
        return tf.cast(d_updates, tf.int32), tf.cast(g_updates, tf.int32)

    def schedule(self, real):
        correct, total = tf.identity(self.last_correct), tf.identity(self.last_total)
        d_updates, g_updates = self.updates_for(correct, total)
        d_updates = tf.minimum(d_updates, self.real_batches_per_step)
        self.trackers["d_acc"].update_state(tf.cast(correct / total, tf.float32))
        self.trackers["d_steps"].update_state(tf.cast(d_updates, tf.float32))
        self.trackers["g_steps"].update_state(tf.cast(g_updates, tf.float32))
        return d_updates, g_updates

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "d_min": self.d_min, "g_min": self.g_min,
                "initial_accuracy": self.initial_accuracy}
