"""Seeds -> latents -> pixels: the one mapping every part of the package uses.

- `seeded_latents` draws latents with TensorFlow's stateless normal (Philox), so the same seed
  gives the same latents eagerly, inside a `tf.function`, and inside an exported SavedModel.
  Row i of `seeded_latents(n, dim, s)` is the same for every n >= i + 1: `gan.generate(16, seed=s)`
  starts with the image `generate --seeds s` writes, and the served `generate(num_images, seed)`
  signature returns the same pixels.
- `to_uint8` (NumPy) and `to_uint8_tensor` (TensorFlow) share one rounding rule for [-1, 1] images.
- `as_uint8_images` / `pixel_range` check what a caller passed instead of guessing silently.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .errors import UserError


def seeded_latents(num_images, latent_dim, seed):
    """float32 tensor (num_images, latent_dim) ~ N(0, 1), a pure function of (seed, shape).

    Works on Python ints and on scalar tensors (e.g. a SavedModel signature's inputs)."""
    seed_pair = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.random.stateless_normal(tf.stack([num_images, latent_dim]), seed=seed_pair, dtype=tf.float32)


def latents_for_seed(num_images, latent_dim, seed=None) -> np.ndarray:
    """NumPy latents from `seeded_latents`; seed None draws a fresh random seed."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    return seeded_latents(int(num_images), int(latent_dim), int(seed)).numpy()


def latents_for_seeds(seeds, latent_dim) -> np.ndarray:
    """One latent per seed: row k is the first latent of seed `seeds[k]` (what `generate(1, seed)` uses)."""
    return np.stack([latents_for_seed(1, latent_dim, seed)[0] for seed in seeds])


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats (tensor or array) -> uint8, the project's one rounding rule (NaN -> 0)."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=-1.0)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_uint8_tensor(images):
    """`to_uint8` in TensorFlow ops, for graphs such as the serving signatures (NaN -> 0)."""
    images = tf.cast(images, tf.float32)
    images = tf.where(tf.math.is_nan(images), -1.0, images)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def latent_width(generator) -> int:
    """The width of the generator's latent input: its `latent_dim` (or `z_dim`) attribute when it has
    one, as subclassed generators do, else its input shape."""
    for name in ("latent_dim", "z_dim"):
        value = getattr(generator, name, None)
        if isinstance(value, int):
            return value
    return int(generator.input_shape[-1])


def image_size(generator) -> int:
    """The generated images' size in pixels: its `resolution` attribute, else its output shape."""
    value = getattr(generator, "resolution", None)
    return value if isinstance(value, int) else int(generator.output_shape[1])


def checked_truncation_cutoff(generator, cutoff):
    """`cutoff` as an int when the generator has style layers and 0 <= cutoff <= num_ws (NVIDIA's
    truncation_cutoff: layers below it are truncated, the others keep their w); None passes; a
    UserError otherwise. The one check of a cutoff, for generate, explore and the export."""
    if cutoff is None:
        return None
    num_ws = getattr(generator, "num_ws", None)
    if not isinstance(num_ws, int) or not callable(getattr(generator, "truncated", None)):
        raise UserError("a truncation cutoff needs a StyleGAN generator (per-layer styles in W); this generator "
                        f"is a DCGAN-family z -> image model ({getattr(generator, 'name', '?')}), whose truncation "
                        "scales z by psi as a whole: leave the cutoff out")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or not 0 <= cutoff <= num_ws:
        raise UserError(f"truncation cutoff must be an integer in 0..{num_ws} (this generator has {num_ws} style "
                        f"layers; layers at or above the cutoff keep their w), got {cutoff!r}")
    return int(cutoff)


def generate_images(generator, latents, truncation=None, training=False, cutoff=None):
    """The generator's images of `latents`, in TensorFlow ops (graphs such as the serving signatures
    use it too), with the truncation trick at psi = `truncation` when given.

    Truncation belongs to the generator: one that defines `truncated(latents, psi, training=...,
    cutoff=...)` does its own (StyleGAN pulls w toward its average w, in the style layers below
    `cutoff` when given, as NVIDIA's truncation_cutoff); for the others, the classic family, it is
    the trick on z, latents * psi, which pulls them toward the mean 0 of their Gaussian, and a
    cutoff is a ValueError (they have no style layers).
    """
    own = getattr(generator, "truncated", None)
    if cutoff is not None and own is None:
        raise ValueError("a truncation cutoff needs a StyleGAN generator (style layers); this one maps z to images")
    if truncation is None:
        return generator(latents, training=training)
    if own is not None:
        return own(latents, truncation, training=training, **({} if cutoff is None else {"cutoff": cutoff}))
    return generator(latents * truncation, training=training)


def render(generator, latents, batch_size=256, truncation=None, cutoff=None, progress=False) -> np.ndarray:
    """uint8 images (N, H, W, 3) from any generator model, in batches, inference mode, truncated
    at psi = `truncation` (in the style layers below `cutoff`) when given (see `generate_images`).
    `progress`: a progress bar over the images (for long runs from the command line)."""
    from tqdm.auto import tqdm

    latents = np.asarray(latents, np.float32)
    images = []
    with tqdm(total=len(latents), unit="image", desc="generating", disable=not progress, leave=False) as bar:
        for i in range(0, len(latents), batch_size):
            batch = generate_images(generator, latents[i : i + batch_size], truncation, cutoff=cutoff)
            images.append(to_uint8(batch))
            bar.update(len(batch))
    return np.concatenate(images) if images else np.zeros((0, *generator.output_shape[1:]), np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one (rows*H, columns*W, 3) image, filled row by row."""
    count, height, width, channels = images.shape
    columns = columns or int(math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    grid = np.full((rows * height, columns * width, channels), 255, np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return grid


def pixel_range(images, what="images") -> str:
    """'uint8' for uint8 pixels, 'signed' for floats in [-1, 1]; a clear ValueError otherwise.

    Floats that are all in [0, 1] are refused rather than guessed at: the CSC412 code scaled to
    [0, 1], and training a tanh generator against such data silently learns washed-out faces."""
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return "uint8"
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} must be uint8 pixels or floats in [-1, 1], got dtype {array.dtype}")
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if high > 1.0 + 1e-3 or low < -1.0 - 1e-3:
        hint = "divide by 127.5 and subtract 1" if high <= 255.5 and low >= -0.5 else "rescale them"
        raise ValueError(f"{what} range from {low:.3g} to {high:.3g}; the GANs work on [-1, 1] floats "
                         f"(or uint8 pixels): {hint}")
    if low >= 0.0 and array.size > 1:
        raise ValueError(f"{what} are floats in [0, 1] ({low:.3g} to {high:.3g}); the GANs work on [-1, 1]: "
                         "pass images * 2 - 1 (keras_anime_gan.data.load_dataset already does)")
    return "signed"


def as_uint8_images(images, what="images") -> np.ndarray:
    """uint8 pixels from uint8 input or [-1, 1] floats; anything else is a clear ValueError."""
    array = np.asarray(images)
    return array if pixel_range(array, what) == "uint8" else to_uint8(array)
