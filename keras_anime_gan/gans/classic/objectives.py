"""What the classic models train for: DCGAN's cross-entropy with fuzzy labels, LSGAN's least
squares, WGAN's critic with weight clipping or a gradient penalty, and the CSC412 report's dynamic
schedule. Each changes only its losses, its schedule, its optimizers or its monitor hints."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from .. import losses
from ..objective import Objective


def binary_entropy(p: float) -> float:
    """H(p) in nats (TensorFlow's cross-entropy uses natural logs); 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


class DCGANObjective(Objective):
    """Non-saturating BCE. `label_smoothing=0.1` gives the fuzzy targets 0.9 (real) / 0.1 (fake) of
    the Artificial Anime Character Design report (which trained with G 5e-4, D 1e-4); `one_sided`
    smooths only the real side. Adam 2e-4, beta_1 0.5 (Radford et al.)."""

    def __init__(self, label_smoothing=0.0, one_sided=False, **kwargs):
        super().__init__(**kwargs)
        self.label_smoothing, self.one_sided = float(label_smoothing), bool(one_sided)

    def targets(self):
        """(real target, fake target) of the discriminator: 1 - s and s (0 when one-sided)."""
        return 1.0 - self.label_smoothing, 0.0 if self.one_sided else self.label_smoothing

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.bce_discriminator_loss(real_logits, fake_logits, *self.targets())

    def discriminator_loss_minimum(self):
        """Each side's cross-entropy against its target t is at least H(t): 0.5 * (H(1 - s) + H(s)),
        or 0.5 * H(1 - s) one-sided; 0 without smoothing, about 0.325 for s = 0.1."""
        real_target, fake_target = self.targets()
        return 0.5 * (binary_entropy(real_target) + binary_entropy(fake_target))


class LSGANObjective(DCGANObjective):
    """Least squares (Mao et al.) as the Artificial Anime Character Design report writes them; label
    smoothing moves the targets as DCGAN's (real 1 - s, fake s); the generator still aims at 1."""

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


class WGANObjective(Objective):
    """Wasserstein critic: `n_critic` critic updates per generator update, each on its own real batch
    and fresh latents (Algorithm 1 of the paper), RMSprop(5e-5). With `clip_value`, every critic
    weight stays in [-clip_value, clip_value], a Keras constraint that the optimizer applies after
    each update (so it holds under tf.distribute too)."""

    d_learning_rate = g_learning_rate = 5e-5
    beta_1 = beta_2 = None  # RMSprop has none

    def __init__(self, n_critic=5, clip_value=0.01, **kwargs):
        super().__init__(**kwargs)
        self.n_critic = int(n_critic)
        self.clip_value = None if clip_value is None else float(clip_value)

    def bind(self, nets):
        super().bind(nets)
        if self.clip_value is not None:
            clip = ClipWeights(self.clip_value)
            for variable in nets.discriminator.trainable_variables:
                variable.constraint = clip
                variable.assign(clip(variable))

    def optimizers(self):
        return keras.optimizers.RMSprop(self.d_learning_rate), keras.optimizers.RMSprop(self.g_learning_rate)

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
        shape = getattr(self.nets.discriminator, "input_shape", None)
        if isinstance(shape, list):
            shape = shape[0]
        dims = [int(d) for d in tuple(shape or ())[1:] if d is not None]
        if not dims or len(dims) != len(tuple(shape)) - 1:
            return math.inf
        return 2.0 * math.sqrt(float(np.prod(dims)))


class WGANGPObjective(WGANObjective):
    """WGAN with a gradient penalty (Gulrajani et al.): lambda * (||grad f(x_hat)|| - 1)^2 on uniform
    random interpolates instead of clipping; Adam(1e-4, beta_1 0.5, beta_2 0.9). Tracks `gp`, the
    mean unweighted penalty. Use a critic without BatchNorm (`norm="layer"` or `"instance"`)."""

    metric_names = Objective.metric_names + ("gp",)
    d_learning_rate = g_learning_rate = 1e-4
    beta_1, beta_2 = 0.5, 0.9

    def __init__(self, n_critic=5, gp_weight=10.0, **kwargs):
        super().__init__(n_critic=n_critic, clip_value=None, **kwargs)
        self.gp_weight = float(gp_weight)

    def optimizers(self):
        return Objective.optimizers(self)

    def discriminator_penalty(self, real, fake):
        alpha = self.nets.rng.uniform([tf.shape(real)[0]] + [1] * (len(real.shape) - 1))  # one weight per example
        penalty = losses.gradient_penalty(self.run_discriminator, real, tf.cast(fake, real.dtype), alpha)
        self.track("gp", tf.reduce_mean(penalty))
        return self.gp_weight * penalty


class DynamicObjective(DCGANObjective):
    """The CSC412 report's dynamic schedule: with the discriminator's accuracy `acc` (real: logit > 0,
    fake: logit < 0), a step performs int(max(scale * acc, d_min)) discriminator updates and
    int(max(scale * (1 - acc), g_min)) generator updates (scale 10, d_min 1, g_min 3 in the report;
    these are the report's formulas, although its prose describes the opposite direction).

    `acc` is the accuracy of the previous discriminator update on its own batch (real and fake),
    read from the logits that update computed anyway; the first step uses `initial_accuracy`. It is
    a variable, saved in checkpoints. Each discriminator update gets a fresh real batch: a step
    receives `real_batches_per_step` = max(int(scale), d_min) batches (the most the rule can ask
    for) and uses as many as it performs updates. The loop runs inside the compiled graph
    (tf.while_loop), also under XLA.

    One replica only: TensorFlow cannot synchronise gradients across replicas inside a loop whose
    trip count is data-dependent (`merge_call` inside control flow), so `compile` refuses a
    strategy with several replicas instead of failing in the middle of `fit`."""

    metric_names = Objective.metric_names + ("d_acc", "d_steps", "g_steps")

    def __init__(self, scale=10.0, d_min=1, g_min=3, initial_accuracy=0.5, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.d_min, self.g_min = float(scale), int(d_min), int(g_min)
        self.initial_accuracy = float(initial_accuracy)
        # (correct, total) of the last discriminator update, float64 so 10 * 7/10 is exactly 7. The
        # initial accuracy as a count out of 10^6: initialisers pass through float32, integers stay exact.
        self.last_correct = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_correct",
                                            initializer=keras.initializers.Constant(round(self.initial_accuracy * 1e6)))
        self.last_total = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_total",
                                          initializer=keras.initializers.Constant(1e6))

    def check_replicas(self, replicas):
        if replicas > 1:
            raise ValueError(
                f"the dynamic schedule needs a single replica (this strategy has {replicas}): its data-dependent "
                "number of updates per step cannot contain tf.distribute's gradient synchronisation. Train it "
                "without a multi-device strategy, or use dcgan/lsgan/wgan/wgan-gp for multi-device runs.")

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
        self.track("d_acc", tf.cast(correct / total, tf.float32))
        self.track("d_steps", tf.cast(d_updates, tf.float32))
        self.track("g_steps", tf.cast(g_updates, tf.float32))
        return d_updates, g_updates
