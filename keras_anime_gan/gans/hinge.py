"""Hinge-loss GAN (Lim & Ye 2017; SAGAN and BigGAN train with it) on the classic networks: the
example of a model added in one module (see docs/architecture.md). Its generator loss is the
Wasserstein one, -D(G(z)); Adam(2e-4, beta_1 0.5) as DCGAN; the discriminator has won when its loss
nears 0."""

from __future__ import annotations

import dataclasses

from . import losses
from .classic import ClassicGAN, ClassicOptions
from .objective import Objective
from .options import option


@dataclasses.dataclass
class HingeOptions(ClassicOptions):
    margin: float = option(1.0, "hinge margin of the discriminator", minimum=0.0, exclusive=True)


class HingeObjective(Objective):
    def __init__(self, margin=1.0, **kwargs):
        super().__init__(generator_loss=losses.wasserstein_generator_loss, **kwargs)
        self.margin = float(margin)

    def discriminator_loss(self, real_logits, fake_logits):
        return losses.hinge_discriminator_loss(real_logits, fake_logits, self.margin)


class HingeGAN(ClassicGAN):
    Options, Objective = HingeOptions, HingeObjective
