"""The GAN family (being restructured into base / losses / registry / classic)."""

from .base import *  # noqa: F401,F403
from .base import (ARCHS, GAN_CLASSES, ClipWeights, GANOptimizers, _check_first_batch, _repeat,  # noqa: F401
                   _with_loss_scaling, without_autotune, xla_is_faster)
