"""Editing a trained generator: semantic directions, one edited picture, and projection of a face.

- `sefa(model, layers=None, k=10)`: closed-form factorisation (Shen & Zhou, "Closed-Form
  Factorization of Latent Semantics in GANs"): the style affine weights A (w_dim x styles) of the
  chosen style layers, each column normalised, and the eigenvectors of A Aᵀ sorted by eigenvalue.
- `ganspace(model, k=10, samples=...)`: GANSpace (Härkönen et al.): principal components of mapped
  w for StyleGAN generators; for the DCGAN family, whose z is an isotropic Gaussian (its own PCA has
  no preferred axes), the paper's recipe for BigGAN: principal components of the first hidden
  layer's activations, carried back into z by linear regression.
- `Edit` and `draw`: the settings of one picture (a seed, a plane between seeds or a latent; psi and
  cutoff; noise; style mixing; direction amounts) and its pixels; `directions_grid` writes what
  `keras-anime-gan explore --kind directions` writes. The studio draws with the same code.
- `project(model, image, steps, space)`: the latent that draws a face: W or W+ (StyleGAN) or z (the
  DCGAN family), by Adam on a pixel loss at several scales, plus the run's own discriminator
  features when a discriminator is at hand; `recipe="nvidia"` is NVIDIA's projector recipe (noise
  maps optimised and regularised, w noise, learning-rate ramps) with pixel loss in place of VGG.

Directions are unit vectors, (k, w_dim) for StyleGAN (added to the ws of the edited layers) or
(k, z_dim) for the DCGAN family. Amounts are in standard deviations of the sampled latents along
each direction (`Directions.sigmas`), so 1 means the same thing for every direction and method.

Latent files (`.npy`): for a StyleGAN generator, ws of shape (num_ws, w_dim) (a W projection has
equal rows); a 1-D array is a z. For the DCGAN family, a z of shape (z_dim,).
"""

from __future__ import annotations

from .directions import (DIRECTION_SAMPLES, METHODS, Directions, find_directions, ganspace, generator_of,  # noqa: F401
                         is_style, networks, require_style, run_discriminator, sefa, style_affines, style_groups)
from .drawing import (NOISE_MODES, Edit, Renderer, directions_grid, draw, draw_latents, edited_latent,  # noqa: F401
                      explore_directions, load_latent, plane_latent, renderer_for, walk_latents, write_gif)
from .projection import (MAX_IMAGE_PIXELS, RECIPES, SPACES, Projection, discriminator_features, project,  # noqa: F401
                         project_to_folder, psnr, target_image)
