"""`Objective`: what a model of the family trains for, apart from the loop that trains it
(`loop.GAN`), in the spirit of NVIDIA's `training/loss.py`.

An objective owns
- the seams every training forward pass goes through: `run_generator` (style mixing goes here) and
  `run_discriminator` (augmentation, and the float32 cast of the logits);
- its losses, from `losses` (pure paired functions): `discriminator_loss`, `generator_loss`, an
  optional `discriminator_penalty`, combined into the main phases `discriminator_objective` (NVIDIA's
  Dmain) and `generator_objective` (Gmain);
- its step schedule (`schedule`, `real_batches_per_step`) and lazy regularisation (`phases`:
  `RegularizationPhase`s, NVIDIA's Dreg / Greg, run by the loop on the steps they are due);
- its optimizer recipe (`optimizers`), with the learning rates and betas its options resolved;
- the failure monitor's hints (`discriminator_loss_minimum`, `critic_divergence_bound`);
- its state: an objective is a Keras layer, so its variables (the dynamic schedule's accuracy,
  ADA's probability, the path-length mean) are saved and restored with the GAN.

A new loss is an objective of a few lines, or two loss functions handed to the base class:
`Objective(discriminator_loss=losses.hinge_discriminator_loss, generator_loss=losses.wasserstein_generator_loss)`.
The objective reaches the networks through `self.nets` (generator, discriminator, the GAN's random
stream and metric trackers), given by the GAN that trains it; values it derives from options
(StyleGAN2's R1 gamma, learning rates) arrive resolved, as plain numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from . import losses
from .diffaugment import augment_policy, diff_augment


@dataclasses.dataclass(frozen=True)
class RegularizationPhase:
    """A lazy regulariser: after the main updates of every `every`-th step, one more update of
    `network` ("discriminator" or "generator") on `loss(real, global_batch)`, per-example values
    (batch,) that already carry their weight (StyleGAN2 multiplies by `every`); `real` may be one
    micro-batch of the step, `global_batch` is the whole step's batch over all replicas. Tracked as
    the metric `name`. `network=None` is a bookkeeping phase: `loss(real, global_batch)` runs for its
    effect (ADA's adjustment of its augmentation probability) and its value is tracked; nothing is
    trained."""

    name: str
    network: str | None
    every: int
    loss: Callable


class Networks:
    """What an objective may use of the GAN training it: both networks, the GAN's seeded random stream
    and its metric trackers. A plain object, so Keras tracks the networks once, on the GAN."""

    def __init__(self, generator, discriminator, rng, trackers, latent_dim):
        self.generator, self.discriminator, self.rng = generator, discriminator, rng
        self.trackers, self.latent_dim = trackers, latent_dim


class Objective(keras.layers.Layer):
    """The non-saturating logistic GAN (DCGAN's losses) with Adam(2e-4, beta_1 0.5); subclasses
    change what they own (see the module docstring).

    Args:
        discriminator_loss, generator_loss: per-example loss functions of the logits (`losses`);
            default BCE / non-saturating.
        augment: "none", or "diffaugment[:POLICY]": DiffAugment (`diffaugment`) of every image the
            discriminator sees in training, real or generated, in every update and phase.
        d_learning_rate, g_learning_rate, beta_1, beta_2: the optimizer recipe's settings (None:
            the objective's paper values).
    """

    metric_names: tuple[str, ...] = ("d_loss", "g_loss")
    own_augmentations: tuple[str, ...] = ()  # `augment` values a subclass handles itself (StyleGAN2-ADA's "ada")
    latest_metric_names: tuple[str, ...] = ()  # of those, tracked as their latest value, not a mean
    d_learning_rate = g_learning_rate = 2e-4
    beta_1, beta_2 = 0.5, 0.999  # beta_2: Keras's default, stated so that a run's configuration shows it

    def __init__(self, discriminator_loss=None, generator_loss=None, *, augment="none", d_learning_rate=None,
                 g_learning_rate=None, beta_1=None, beta_2=None, name="objective", **kwargs):
        super().__init__(name=name, **kwargs)
        self.diffaugment = augment_policy(augment, self.own_augmentations)
        if discriminator_loss is not None:
            self.discriminator_loss = discriminator_loss
        if generator_loss is not None:
            self.generator_loss = generator_loss
        given = {"d_learning_rate": d_learning_rate, "g_learning_rate": g_learning_rate, "beta_1": beta_1,
                 "beta_2": beta_2}
        for key, value in given.items():
            if value is not None:
                setattr(self, key, float(value))
        self.nets: Networks | None = None
        self.built = True

    def bind(self, nets: Networks) -> None:
        self.nets = nets

    def check_replicas(self, replicas: int) -> None:
        """Raise a ValueError where this objective cannot train on `replicas` replicas (at compile)."""

    def track(self, name, value) -> None:
        """Add `value` to the metric `name` (one of `metric_names`)."""
        self.nets.trackers[name].update_state(value)

    # -- the seams ----------------------------------------------------------------------

    def sample_latent(self, batch_size):
        return self.nets.rng.normal((batch_size, self.nets.latent_dim))

    def run_generator(self, latents, training=True):
        """The generator during training."""
        return self.nets.generator(latents, training=training)

    def run_discriminator(self, images, training=True):
        """The discriminator's logits during training, float32 whatever its compute dtype, so the
        losses are computed in float32 under mixed precision too; in training, of the images after
        DiffAugment when the objective has a policy."""
        return tf.cast(self.nets.discriminator(self.augment(images, training), training=training), tf.float32)

    def augment(self, images, training=True):
        """`images` as the discriminator sees them: a fresh DiffAugment draw in training."""
        if self.diffaugment and training:
            return diff_augment(images, self.diffaugment, self.nets.rng)
        return images

    # -- losses and the main phases -------------------------------------------------------

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.bce_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return losses.bce_generator_loss(fake_logits)

    def discriminator_penalty(self, real, fake):
        """Extra per-example discriminator loss (e.g. a gradient penalty); None for none."""
        return None

    def observe_discriminator(self, real_logits, fake_logits):
        """Called with the logits of every discriminator update (the dynamic schedule keeps its accuracy)."""

    def discriminator_objective(self, real, fake):
        """(objective, reported) per-example values of one discriminator update: the loss plus the
        penalty, and the loss alone."""
        real_logits = self.run_discriminator(real)
        fake_logits = self.run_discriminator(fake)
        per_example = self.discriminator_loss(real_logits, fake_logits)
        penalty = self.discriminator_penalty(real, fake)
        self.observe_discriminator(tf.stop_gradient(real_logits), tf.stop_gradient(fake_logits))
        return (per_example if penalty is None else per_example + penalty), per_example

    def generator_objective(self, fake):
        """Per-example generator losses of generated images."""
        return self.generator_loss(self.run_discriminator(fake))

    # -- schedule, phases, gradients ------------------------------------------------------

    def schedule(self, real):
        """(discriminator updates, generator updates) of this step: Python ints or int32 tensors,
        at most `real_batches_per_step` discriminator updates."""
        return 1, 1

    @property
    def real_batches_per_step(self) -> int:
        """Real batches one step consumes: one per discriminator update."""
        return 1

    def phases(self) -> tuple[RegularizationPhase, ...]:
        return ()

    def clean_gradients(self, gradients):
        """The gradients an update applies (StyleGAN2 replaces non-finite values)."""
        return gradients

    def end_step(self) -> None:
        """Called once at the end of every step (StyleGAN2-ADA reports ADA's p here)."""

    # -- optimizers and monitoring ----------------------------------------------------------

    def optimizers(self):
        """(discriminator optimizer, generator optimizer): Adam as DCGAN (Radford et al.)."""
        return tuple(keras.optimizers.Adam(rate, **self._betas())
                     for rate in (self.d_learning_rate, self.g_learning_rate))

    def _betas(self) -> dict:
        return {key: value for key, value in (("beta_1", self.beta_1), ("beta_2", self.beta_2)) if value is not None}

    def training_settings(self) -> dict:
        """Values this objective trains with beyond the optimizers' (for a run's start-up line)."""
        return {}

    def training_callbacks(self) -> list:
        """Callbacks this objective needs in every `fit` (StyleGAN2-ADA's watch on p)."""
        return []

    def discriminator_loss_minimum(self) -> float | None:
        """The lowest discriminator loss, which the failure monitor's "D has won" rule watches for;
        None where a lowest value means nothing. 0 here: terms that can each reach 0."""
        return 0.0

    def critic_divergence_bound(self) -> float | None:
        """For a Wasserstein critic, the largest |d_loss| a 1-Lipschitz critic gives on its images;
        None for a discriminator that is no such critic."""
        return None
