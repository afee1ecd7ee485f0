"""The GAN family: `loop` (the training loop every model shares), `objective` (what a model trains
for: losses, schedule, phases, optimizers), `losses` (every loss and penalty as pure functions),
`options` (model options as dataclasses), `registry` (name -> model, `create_gan`), and the models:
`classic` (DCGAN, LSGAN, WGAN, WGAN-GP, the dynamic schedule), `hinge` (the example of a model added
in one module) and `stylegan2` (StyleGAN2-ADA). See docs/architecture.md.
"""

from .classic import (ARCHS, DCGAN, LSGAN, WGAN, WGANGP, ClassicGAN, ClassicOptions, ClipWeights,  # noqa: F401
                      DCGANObjective, DCGANOptions, DynamicGAN, DynamicObjective, DynamicOptions, LSGANObjective,
                      WGANGPObjective, WGANGPOptions, WGANObjective, WGANOptions)
from .fitting import without_autotune  # noqa: F401
from .loop import GAN, LatestValue, xla_is_faster  # noqa: F401
from .losses import (bce_discriminator_loss, bce_generator_loss, gradient_penalty,  # noqa: F401
                     hinge_discriminator_loss, least_squares_discriminator_loss, least_squares_generator_loss,
                     logistic_discriminator_loss, path_length, path_length_penalty, r1_penalty,
                     wasserstein_critic_loss, wasserstein_generator_loss)
from .objective import Objective, RegularizationPhase  # noqa: F401
from .optimizers import GANOptimizers  # noqa: F401
from .options import GANOptions, ModelOptions, option  # noqa: F401
from .registry import MODELS, create_gan, model_class, model_names, model_options, resolved_options  # noqa: F401
