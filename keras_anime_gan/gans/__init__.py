"""The GAN family: `base` (the training loop every model shares), `losses` (pure paired loss
functions), `options` (model options as dataclasses), `registry` (name -> model, `create_gan`), and
the models: `classic` (DCGAN, LSGAN, WGAN, WGAN-GP, the dynamic schedule), `hinge` (the example of a
model added in one module) and `stylegan2` (StyleGAN2-ADA). See docs/architecture.md.
"""

from .base import GAN, GANOptimizers, GANOptions, RegularizationPhase, without_autotune, xla_is_faster  # noqa: F401
from .classic import (ARCHS, DCGAN, LSGAN, WGAN, WGANGP, ClassicGAN, ClassicOptions, ClipWeights,  # noqa: F401
                      DCGANOptions, DynamicGAN, DynamicOptions, WGANGPOptions, WGANOptions)
from .losses import (bce_discriminator_loss, bce_generator_loss, gradient_penalty,  # noqa: F401
                     least_squares_discriminator_loss, least_squares_generator_loss, wasserstein_critic_loss,
                     wasserstein_generator_loss)
from .options import ModelOptions, option  # noqa: F401
from .registry import MODELS, create_gan, model_class, model_names, model_options, resolved_options  # noqa: F401
