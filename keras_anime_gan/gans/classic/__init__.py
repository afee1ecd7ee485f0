"""DCGAN, LSGAN, WGAN, WGAN-GP and the dynamic schedule: their networks, objectives and options."""

from .family import (ARCHS, DCGAN, LSGAN, WGAN, WGANGP, ClassicGAN, ClassicOptions, DCGANOptions,  # noqa: F401
                     DynamicGAN, DynamicOptions, WGANGPOptions, WGANOptions)
from .objectives import (ClipWeights, DCGANObjective, DynamicObjective, LSGANObjective,  # noqa: F401
                         WGANGPObjective, WGANObjective, binary_entropy)
