"""The classic family's networks; they live in `keras_anime_gan.gans.classic.networks`."""

from .gans.classic.networks import *  # noqa: F401,F403
from .gans.classic.networks import DISCRIMINATOR_ARCHS, GENERATOR_ARCHS, NORMS, base_size  # noqa: F401
