"""The GAN family: `base` (the training loop), `losses` (pure paired loss functions), `options`
(model options as dataclasses), `registry` (name -> model, `create_gan`), and the models: `classic`
(DCGAN, LSGAN, WGAN, WGAN-GP, the dynamic schedule). See docs/architecture.md.
"""

from ..sampling import latents_for_seed, render  # noqa: F401  (public here too)
from .base import (GAN, GANOptimizers, GANOptions, RegularizationPhase, _check_first_batch,  # noqa: F401
                   _repeat, without_autotune, xla_is_faster)
from .classic import (ARCHS, DCGAN, LSGAN, WGAN, WGANGP, ClassicGAN, ClassicOptions, ClipWeights,  # noqa: F401
                      DCGANOptions, DynamicGAN, DynamicOptions, WGANGPOptions, WGANOptions)
from .losses import (bce_discriminator_loss, bce_generator_loss, gradient_penalty,  # noqa: F401
                     least_squares_discriminator_loss, least_squares_generator_loss, wasserstein_critic_loss,
                     wasserstein_generator_loss)
from .options import ModelOptions, option  # noqa: F401
from .registry import MODELS, create_gan, model_class, model_names, model_options  # noqa: F401


def __getattr__(name):
    if name == "GAN_CLASSES":  # the older name -> class table, now the registry's
        return {model: model_class(model) for model in MODELS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
