"""DCGAN, LSGAN, WGAN, WGAN-GP and the dynamic schedule, with their networks."""

from .family import (ARCHS, DCGAN, LSGAN, WGAN, WGANGP, ClassicGAN, ClassicOptions, ClipWeights,  # noqa: F401
                     DCGANOptions, DynamicGAN, DynamicOptions, WGANGPOptions, WGANOptions)
