"""Hinge-loss GAN (Lim & Ye 2017; SAGAN and BigGAN train with it) on the classic networks."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from .classic import ClassicGAN, ClassicOptions
from .options import option


def hinge_discriminator_loss(real_logits, fake_logits, margin=1.0):
    """relu(margin - D(x)) + relu(margin + D(G(z))), per example (batch,)."""
    return tf.reduce_mean(tf.nn.relu(margin - real_logits) + tf.nn.relu(margin + fake_logits), axis=-1)


def hinge_generator_loss(fake_logits):
    """-D(G(z)), per example (batch,)."""
    return tf.reduce_mean(-fake_logits, axis=-1)


@dataclasses.dataclass
class HingeOptions(ClassicOptions):
    margin: float = option(1.0, "hinge margin of the discriminator", minimum=0.0, exclusive=True)


class HingeGAN(ClassicGAN):
    """Adam(2e-4, beta_1 0.5) as DCGAN; the discriminator has won when its loss nears 0, the
    `discriminator_loss_minimum` every GAN has unless it says otherwise."""

    Options = HingeOptions

    def __init__(self, generator, discriminator, latent_dim=None, *, margin=1.0, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        self.margin = float(margin)

    def discriminator_loss(self, real_logits, fake_logits):
        return hinge_discriminator_loss(real_logits, fake_logits, self.margin)

    def generator_loss(self, fake_logits):
        return hinge_generator_loss(fake_logits)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
