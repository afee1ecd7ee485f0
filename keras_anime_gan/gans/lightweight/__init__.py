"""The lightweight GAN (FastGAN-style): `layers` (resampling, skip-layer excitation, the blocks) and
`networks` (the generator, the self-supervised discriminator, presets by resolution)."""

from .layers import UPSAMPLES, Decoder, DownBlock, SkipExcitation, UpBlock, quarter, upsample2x  # noqa: F401
from .networks import (RESOLUTIONS, LightweightDiscriminator, LightweightGenerator, build_networks,  # noqa: F401
                       preset, sle_pairs)
