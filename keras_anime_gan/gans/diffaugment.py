"""DiffAugment (Zhao et al., NeurIPS 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): the same random, differentiable transforms applied to every image the discriminator
sees, real or generated, in both the discriminator's and the generator's updates.

Policies, applied in the order given (`parse_policy("color,translation,cutout")`):

- color: per image, brightness x + b, b ~ U[-0.5, 0.5); saturation m + (x - m) * s, m the mean over
  channels, s ~ U[0, 2); contrast m + (x - m) * c, m the image's mean, c ~ U[0.5, 1.5).
- translation: per image, a shift of up to 1/8 of the size (an integer in [-s, s] per axis,
  s = round(size / 8)); out[i, j] = x[i + dy, j + dx], zeros (grey in [-1, 1]) outside the image.
- cutout: per image, a square of half the size (round(size / 2)) set to zero, its centre anywhere
  in the image (the top-left corner offset - size // 2, offset ~ U{0, ..., size - size % 2}).

Randomness comes from a `tf.random.Generator` the caller passes (each GAN keeps one; under
tf.distribute every replica draws its own stream). `draw_parameters` draws once and
`apply_parameters` applies what was drawn, so the SAME transform can go to several tensors of the same
size (an image batch and anything aligned with it); `diff_augment` does both. Everything is
TensorFlow ops without data-dependent control flow: graph mode, XLA (`jit_compile=True`) and
tf.distribute work, and gradients reach the input (translation and cutout pass them through a
mask, as the selection they are). Colour runs in float32; the result has the input's dtype
(float32 or bfloat16).
"""

from __future__ import annotations

import tensorflow as tf

from ..errors import ConfigError

POLICIES = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy) -> tuple[str, ...]:
    """A policy's names, checked: "color,translation,cutout" (or a sequence of names) ->
    ("color", "translation", "cutout").

    Spaces are ignored and "" is no augmentation; an unknown or repeated name is a ConfigError
    (one `error:` line on the command line) naming the valid ones."""
    names = policy.split(",") if isinstance(policy, str) else list(policy or ())
    names = [str(name).strip().lower() for name in names if str(name).strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ConfigError(f"unknown DiffAugment policy {unknown[0]!r}; choose from {', '.join(POLICIES)} "
                          "(comma-separated, e.g. color,translation,cutout)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"DiffAugment policy {repeated[0]!r} is given twice in {policy!r}")
    return tuple(names)


def augment_policy(augment, others=()) -> tuple[str, ...]:
    """The DiffAugment policy an `augment` option names: "diffaugment" (every policy) or
    "diffaugment:color,translation" -> its names; "none" or one of `others` (a model's own
    augmentations, e.g. StyleGAN2-ADA's "ada") -> (); anything else a ConfigError."""
    text = str(augment).strip()
    if text == "none" or text in others:
        return ()
    kind, _, policy = text.partition(":")
    if kind.strip() != "diffaugment":
        choices = ", ".join(("none", *others, "diffaugment[:POLICY]"))
        raise ConfigError(f"augment must be one of {choices} (POLICY: comma-separated {', '.join(POLICIES)}), "
                          f"got {augment!r}")
    names = parse_policy(policy if policy.strip() else DEFAULT_POLICY)
    if not names:
        raise ConfigError(f"augment {augment!r} names no DiffAugment policy")
    return names


def check_augment(value, others=()):
    """An option `check`: None for a valid `augment`, else the message."""
    try:
        augment_policy(value, others)
    except ConfigError as error:
        return str(error).removeprefix("augment ")
    return None


def _pixels(size, ratio):
    return int(size * ratio + 0.5)


# ----------------------------------------------------------------------------- the transforms


def brightness(images, offset):
    """x + offset[b] per image; offset (B,)."""
    return images + tf.reshape(tf.cast(offset, images.dtype), [-1, 1, 1, 1])


def saturation(images, factor):
    """Each pixel's channels pulled toward (factor < 1) or pushed from their mean; factor (B,)."""
    mean = tf.reduce_mean(images, axis=-1, keepdims=True)
    return mean + (images - mean) * tf.reshape(tf.cast(factor, images.dtype), [-1, 1, 1, 1])


def contrast(images, factor):
    """Each image scaled about its mean (over pixels and channels) by factor (B,)."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return mean + (images - mean) * tf.reshape(tf.cast(factor, images.dtype), [-1, 1, 1, 1])


def translate(images, shift):
    """out[b, i, j] = images[b, i + shift[b, 0], j + shift[b, 1]], zero outside; shift (B, 2) int.

    One zero pixel of padding and clamped indices: every index outside the image reads the border."""
    _, height, width, _ = images.shape
    shift = tf.cast(shift, tf.int32)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(tf.range(height)[None, :] + shift[:, :1] + 1, 0, height + 1)
    columns = tf.clip_by_value(tf.range(width)[None, :] + shift[:, 1:] + 1, 0, width + 1)
    padded = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(padded, columns, axis=2, batch_dims=1)


def cutout_mask(offset, size, height, width, dtype=tf.float32):
    """(B, H, W, 1): 0 inside each image's cutout square, 1 elsewhere. offset (B, 2) int, the
    square's centre (rows, columns); size (2,) int, its height and width."""
    offset, size = tf.cast(offset, tf.int32), tf.cast(size, tf.int32)
    start = offset - size[None, :] // 2
    rows = tf.range(height)[None, :]
    columns = tf.range(width)[None, :]
    inside_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + size[0])
    inside_columns = (columns >= start[:, 1:]) & (columns < start[:, 1:] + size[1])
    inside = inside_rows[:, :, None] & inside_columns[:, None, :]
    return tf.cast(~inside, dtype)[..., None]


def cutout(images, offset, size):
    """images with each image's cutout square (see `cutout_mask`) set to zero."""
    _, height, width, _ = images.shape
    return images * cutout_mask(offset, size, height, width, images.dtype)


# ----------------------------------------------------------------------------- draw and apply


def draw_parameters(rng, images, policy, translation_ratio=TRANSLATION_RATIO, cutout_ratio=CUTOUT_RATIO):
    """One random draw of `policy`'s parameters for `images` (B, H, W, C): a dict of tensors
    (brightness, saturation, contrast (B,) float32; translation (B, 2) int32; cutout_offset (B, 2)
    and cutout_size (2,) int32), for the policies named only. Valid for any tensor of the same
    batch, height and width."""
    names = parse_policy(policy)
    for what, ratio in (("translation", translation_ratio), ("cutout", cutout_ratio)):
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"DiffAugment {what} ratio must be in [0, 1] (a fraction of the image size), "
                              f"got {ratio!r}")
    images = tf.convert_to_tensor(images)
    _, height, width, _ = images.shape
    batch = tf.shape(images)[0]
    parameters = {}
    if "color" in names:
        parameters["brightness"] = rng.uniform(tf.stack([batch])) - 0.5
        parameters["saturation"] = rng.uniform(tf.stack([batch])) * 2.0
        parameters["contrast"] = rng.uniform(tf.stack([batch])) + 0.5
    if "translation" in names:
        shifts = [_pixels(height, translation_ratio), _pixels(width, translation_ratio)]
        parameters["translation"] = tf.stack(
            [rng.uniform(tf.stack([batch]), -s, s + 1, dtype=tf.int32) for s in shifts], axis=1)
    if "cutout" in names:
        sizes = [_pixels(height, cutout_ratio), _pixels(width, cutout_ratio)]
        parameters["cutout_offset"] = tf.stack(
            [rng.uniform(tf.stack([batch]), 0, full + 1 - s % 2, dtype=tf.int32)
             for full, s in zip((height, width), sizes)], axis=1)
        parameters["cutout_size"] = tf.constant(sizes, tf.int32)
    return parameters


def apply_parameters(images, parameters, policy):
    """`images` transformed by `policy` with the drawn `parameters` (from `draw_parameters`), in
    the policy's order; the result has the input's dtype."""
    names = parse_policy(policy)
    images = tf.convert_to_tensor(images)
    dtype = images.dtype
    for name in names:
        if name == "color":
            x = tf.cast(images, tf.float32)
            x = brightness(x, parameters["brightness"])
            x = saturation(x, parameters["saturation"])
            images = tf.cast(contrast(x, parameters["contrast"]), dtype)
        elif name == "translation":
            images = translate(images, parameters["translation"])
        else:
            images = cutout(images, parameters["cutout_offset"], parameters["cutout_size"])
    return images


def diff_augment(images, policy, rng, translation_ratio=TRANSLATION_RATIO, cutout_ratio=CUTOUT_RATIO):
    """`images` (B, H, W, C) augmented by `policy` with a fresh draw from `rng`."""
    if not parse_policy(policy):
        return tf.convert_to_tensor(images)
    parameters = draw_parameters(rng, images, policy, translation_ratio, cutout_ratio)
    return apply_parameters(images, parameters, policy)
