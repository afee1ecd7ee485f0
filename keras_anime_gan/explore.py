"""Latent-space exploration pictures, all from Python and from `keras-anime-gan explore`.

- `z_grid`: the GAN Versus report's figures 2-3: one fixed z; each row scales one coordinate
  (default 0, 10, ..., 90) by K from -3 to 3, the others held fixed.
- `interpolate`: linear or spherical (slerp) paths between the latents of successive seeds,
  as a grid and a GIF.
- `truncation`: latents scaled by psi (the truncation trick on z; on w for StyleGAN models).
- `neighbours`: each generated sample beside its nearest real images (a memorisation check).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import UserError
from .sampling import image_grid, latent_width, latents_for_seed, latents_for_seeds, render


def _latent_dim(generator) -> int:
    return latent_width(generator)


def _labelled_grid(images, rows, columns, row_labels, column_labels, title, xlabel, ylabel, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    size = images.shape[1]
    figure, axis = plt.subplots(figsize=(1.1 * columns + 1.5, 1.1 * rows + 1.2))
    axis.imshow(grid)
    axis.set_xticks([size * (i + 0.5) for i in range(columns)], column_labels)
    axis.set_yticks([size * (i + 0.5) for i in range(rows)], row_labels)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return grid


def z_grid(generator, path, seed=0, indices=None, factors=None) -> np.ndarray:
    """Rows: z[i] * K for each chosen index i; columns: K. Returns the image grid (uint8)."""
    dim = _latent_dim(generator)
    indices = list(range(0, dim, 10))[:10] if indices is None else list(indices)
    factors = np.linspace(-3, 3, 7) if factors is None else np.asarray(factors, np.float32)
    if any(not 0 <= index < dim for index in indices):
        raise UserError(f"z indices must be in 0..{dim - 1}, got {indices}")
    base = latents_for_seed(1, dim, seed)[0]
    latents = np.repeat(base[None], len(indices) * len(factors), axis=0)
    for row, index in enumerate(indices):
        for column, factor in enumerate(factors):
            latents[row * len(factors) + column, index] = base[index] * factor
    images = render(generator, latents)
    return _labelled_grid(images, len(indices), len(factors), [f"z[{i}]" for i in indices],
                          [f"{k:g}" for k in factors], f"Manipulating one z coordinate (seed {seed})",
                          "manipulation factor K", "z variable", path)


def slerp(a, b, t):
    """Spherical interpolation between latent vectors a and b (t in [0, 1])."""
    a_n, b_n = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = np.arccos(np.clip(np.dot(a_n, b_n), -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(generator, path, seeds=(0, 1, 2, 3), steps=8, method="slerp", gif_path=None) -> np.ndarray:
    """Rows: seed[i] -> seed[i+1]; columns: interpolation steps. Also a GIF through all seeds."""
    if method not in ("slerp", "linear"):
        raise UserError(f"method must be slerp or linear, got {method!r}")
    if len(seeds) < 2 or steps < 2:
        raise UserError("interpolate needs at least 2 seeds and 2 steps")
    dim = _latent_dim(generator)
    ends = [latents_for_seed(1, dim, seed)[0] for seed in seeds]
    mix = slerp if method == "slerp" else (lambda a, b, t: (1 - t) * a + t * b)
    latents = [mix(a, b, t) for a, b in zip(ends[:-1], ends[1:]) for t in np.linspace(0, 1, steps)]
    images = render(generator, np.stack(latents))
    grid = _labelled_grid(images, len(seeds) - 1, steps, [f"{a}->{b}" for a, b in zip(seeds[:-1], seeds[1:])],
                          [f"{t:.2f}" for t in np.linspace(0, 1, steps)], f"{method} interpolation", "t", "seeds", path)
    if gif_path:
        # One path through all seeds: each pair's first frame repeats the previous pair's last.
        path_images = [image for index, image in enumerate(images) if index == 0 or index % steps]
        frames = [Image.fromarray(image).resize((image.shape[1] * 2,) * 2, Image.Resampling.NEAREST) for image in path_images]
        frames[0].save(gif_path, save_all=True, append_images=frames[1:], duration=120, loop=0)
    return grid


def truncation(generator, path, seeds=(0, 1, 2, 3), psis=(-1.0, -0.5, 0.0, 0.5, 0.75, 1.0, 1.5)) -> np.ndarray:
    """Rows: seeds; columns: psi, the generator's own truncation trick (`sampling.generate_images`):
    z' = psi z for the classic family (the Gaussian's mean is 0), toward the average w for StyleGAN."""
    dim = _latent_dim(generator)
    latents = latents_for_seeds(seeds, dim)
    by_psi = [render(generator, latents, truncation=psi) for psi in psis]  # (psis, seeds, H, W, 3)
    images = np.stack(by_psi, axis=1).reshape(-1, *by_psi[0].shape[1:])
    return _labelled_grid(images, len(seeds), len(psis), [str(seed) for seed in seeds], [f"{p:g}" for p in psis],
                          "Truncation trick", "psi", "seed", path)


def nearest_real(samples, real, k=5) -> np.ndarray:
    """Indices (len(samples), k) of the k nearest real images by pixel L2 distance."""
    a = samples.reshape(len(samples), -1).astype(np.float64)
    b = real.reshape(len(real), -1).astype(np.float64)
    distances = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.argsort(distances, axis=1)[:, :k]


def neighbours(generator, real_images, path, num_samples=8, k=5, seed=0) -> np.ndarray:
    """Row i: generated sample i, then its k nearest real images."""
    dim = _latent_dim(generator)
    samples = render(generator, latents_for_seed(num_samples, dim, seed))
    real = np.asarray(real_images)
    if real.shape[1:] != samples.shape[1:]:
        raise UserError(f"real images are {real.shape[1:]}, the generator makes {samples.shape[1:]}")
    nearest = nearest_real(samples, real, k)
    tiles = np.concatenate([np.concatenate([samples[i : i + 1], real[nearest[i]]]) for i in range(num_samples)])
    return _labelled_grid(tiles, num_samples, k + 1, [f"sample {i}" for i in range(num_samples)],
                          ["generated"] + [f"#{j + 1}" for j in range(k)], "Nearest real images (pixel L2)",
                          "", "", path)
