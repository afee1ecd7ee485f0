"""Adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with Limited Data").

`AdaptiveAugment` applies the 'bgc' pipeline to every image the discriminator sees, each
augmentation decided per sample with probability `strength * p` as in NVIDIA's implementation
(so the effective x-flip rate is p/2, rotate90's 3p/4, and the two arbitrary rotations each use
1 - sqrt(1 - p) so that at least one happens with probability p).

Execution, all linear in the images and differentiable (gathers and convolutions only, XLA-friendly):
1. blit (x-flip, rotate90, integer translation): one integer gather from the image, with reflection
   outside it, onto a canvas padded by max(size - 1, 6) pixels. Exact: no resampling.
2. geometric (isotropic scale, pre-rotation, anisotropic scale, post-rotation, fractional
   translation): composed into one inverse matrix per sample; the canvas is upsampled 2x with the
   orthogonal sym6 wavelet, warped by bilinear sampling (zeros outside), and downsampled 2x with the
   same filter. Orthogonality makes up+down an exact identity, so an identity warp leaves the
   image unchanged and the band-limiting keeps D from seeing resampling artifacts.
3. colour (brightness, contrast, luma flip, hue rotation, saturation): one 4x4 affine colour matrix
   per sample about the luma axis (1, 1, 1)/sqrt(3).

`p` is a non-trainable variable (saved with the layer), in [0, 1]: `initial_p` outside it is refused,
the rule clips, and `augment` clips what it reads (a p set from outside). `accumulate(real_logits)` sums
sign(D(real)) (all-reduced over the replicas under tf.distribute, so r_t is the mean over all
replicas' reals);
`adjust()` applies the ADA rule p <- clip(p + sign(r_t - target) * N / (speed_kimg * 1000), 0, 1)
with N the images accumulated (batch * interval when called every `interval` steps) and resets.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from .layers import PACKAGE, upfirdn2d

# Daubechies' least-asymmetric wavelet with 6 vanishing moments (decomposition low-pass, orthonormal).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

BLIT = ("xflip", "rotate90", "xint")
GEOMETRIC = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
AUGMENTATIONS = BLIT + GEOMETRIC + COLOR
PIPELINES = {
    "blit": dict.fromkeys(BLIT, 1.0),
    "geom": dict.fromkeys(GEOMETRIC, 1.0),
    "color": dict.fromkeys(COLOR, 1.0),
    "bg": dict.fromkeys(BLIT + GEOMETRIC, 1.0),
    "bgc": dict.fromkeys(AUGMENTATIONS, 1.0),
}
LUMA_AXIS = np.asarray([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)


# ----------------------------------------------------------------------------- the p rule


def ada_p_update(p, rt, batch_size, interval=4, target=0.6, speed_kimg=500.0):
    """ADA's controller: p + sign(rt - target) * batch_size * interval / (speed_kimg * 1000), clipped to [0, 1].

    Args:
        p: current probability; rt: mean of sign(D(augmented reals)) over the last `interval` steps.
        batch_size: images per step (global batch); interval: steps between adjustments.
        target: r_t that ADA holds (0.6); speed_kimg: thousands of images for p to move by 1 (500).
    Returns:
        the new p (a float32 tensor).
    """
    p = tf.cast(p, tf.float32)
    step = tf.cast(batch_size * interval, tf.float32) / (speed_kimg * 1000.0)
    return tf.clip_by_value(p + tf.sign(tf.cast(rt, tf.float32) - target) * step, 0.0, 1.0)


# ----------------------------------------------------------------------------- matrices (batched)


def _stack_matrix(rows):
    """rows: nested lists of (B,) tensors or python numbers -> (B, n, n) float32."""
    batch = next(tf.shape(e)[0] for row in rows for e in row if isinstance(e, tf.Tensor))
    entries = [[e if isinstance(e, tf.Tensor) else tf.fill([batch], tf.constant(float(e))) for e in row]
               for row in rows]
    return tf.stack([tf.stack(row, axis=-1) for row in entries], axis=-2)


def translate2d(tx, ty):
    """(B, 3, 3) homogeneous translations by (tx, ty) pixels."""
    tx, ty = tf.cast(tx, tf.float32), tf.cast(ty, tf.float32)
    return _stack_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx, sy):
    """(B, 3, 3) scalings."""
    sx, sy = tf.cast(sx, tf.float32), tf.cast(sy, tf.float32)
    return _stack_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta):
    """(B, 3, 3) rotations by theta (radians; x right, y down, so positive turns clockwise on screen)."""
    theta = tf.cast(theta, tf.float32)
    c, s = tf.cos(theta), tf.sin(theta)
    return _stack_matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def translate3d(tx, ty, tz):
    """(B, 4, 4) colour offsets."""
    tx, ty, tz = (tf.cast(t, tf.float32) for t in (tx, ty, tz))
    return _stack_matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])


def scale3d(sx, sy, sz):
    """(B, 4, 4) colour scalings."""
    sx, sy, sz = (tf.cast(s, tf.float32) for s in (sx, sy, sz))
    return _stack_matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]])


def luma_flip_matrix(flip):
    """(B, 4, 4) Householder reflection about the luma plane where flip == 1, identity where 0."""
    flip = tf.cast(flip, tf.float32)[:, None, None]
    vv = tf.constant(np.outer(LUMA_AXIS, LUMA_AXIS), tf.float32)
    return tf.eye(4)[None] - 2.0 * vv[None] * flip


def hue_rotation_matrix(theta):
    """(B, 4, 4) rotations by theta about the luma axis (Rodrigues' formula)."""
    theta = tf.cast(theta, tf.float32)
    x, y, z = LUMA_AXIS[:3]
    c, s = tf.cos(theta), tf.sin(theta)
    d = 1.0 - c
    return _stack_matrix([[x * x * d + c, x * y * d - z * s, x * z * d + y * s, 0],
                          [y * x * d + z * s, y * y * d + c, y * z * d - x * s, 0],
                          [z * x * d - y * s, z * y * d + x * s, z * z * d + c, 0],
                          [0, 0, 0, 1]])


def saturation_matrix(s):
    """(B, 4, 4): keep the luma component, scale the chroma by s (0 = grey)."""
    s = tf.cast(s, tf.float32)[:, None, None]
    vv = tf.constant(np.outer(LUMA_AXIS, LUMA_AXIS), tf.float32)[None]
    return vv + (tf.eye(4)[None] - vv) * s


def apply_color_matrix(images, matrix):
    """images (B, H, W, C) with C in (1, 3), matrix (B, 4, 4) -> matrix[:3, :3] @ rgb + matrix[:3, 3] per pixel.

    One channel uses the mean of the 3x3 block's rows (NVIDIA's grey-scale rule).
    """
    matrix = tf.cast(matrix, images.dtype)
    channels = images.shape[-1]
    if channels == 3:
        return tf.einsum("bij,bhwj->bhwi", matrix[:, :3, :3], images) + matrix[:, None, None, :3, 3]
    if channels == 1:
        gain = tf.reduce_mean(tf.reduce_sum(matrix[:, :3, :3], axis=2), axis=1)  # mean of rows, summed over grey
        offset = tf.reduce_mean(matrix[:, :3, 3], axis=1)
        return images * gain[:, None, None, None] + offset[:, None, None, None]
    raise ValueError(f"colour augmentations need 1 or 3 channels, got {channels}")


def _reflect(index, size):
    """Reflect integer indices into [0, size) without repeating the edge (..., 2, 1, 0, 1, 2, ...)."""
    if size == 1:
        return tf.zeros_like(index)
    period = 2 * (size - 1)
    index = tf.math.floormod(index, period)
    return tf.where(index >= size, period - index, index)


# ----------------------------------------------------------------------------- the layer


@keras.saving.register_keras_serializable(package=PACKAGE)
def sum_and_count_over_replicas(values):
    """(sum, count) of `values` over every replica's values (the local ones without a strategy),
    float32, no gradient: one all-reduce of both, so every replica gets the same totals."""
    values = tf.stop_gradient(tf.cast(values, tf.float32))
    totals = tf.stack([tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32)])
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        totals = context.all_reduce(tf.distribute.ReduceOp.SUM, totals)
    return totals[0], totals[1]


def _check_arguments(pipeline, initial_p, strengths) -> None:
    """ValueError for an unknown pipeline, a probability outside [0, 1] or unknown augmentations."""
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {tuple(PIPELINES)}, got {pipeline!r}")
    if not 0.0 <= float(initial_p) <= 1.0:
        raise ValueError(f"initial_p is a probability in [0, 1], got {initial_p}")
    unknown = set(strengths or {}) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentations {sorted(unknown)}; known: {AUGMENTATIONS}")


def _strength_of_each(pipeline, strengths) -> dict:
    """Augmentation name -> its strength: the named pipeline's (0 for those it leaves out), with
    `strengths` overriding it."""
    strength = {name: float(PIPELINES[pipeline].get(name, 0.0)) for name in AUGMENTATIONS}
    strength.update(strengths)
    return strength


class AdaptiveAugment(keras.layers.Layer):
    """ADA augmentation: (B, H, W, C) -> (B, H, W, C), identity unless `training` and p > 0."""

    def __init__(self,
                 pipeline="bgc",           # named set: "bgc", "bg", "blit", "geom", "color"
                 initial_p=0.0,            # starting probability (the fixed p when never adjusted)
                 target=0.6,               # r_t the controller holds
                 interval=4,               # steps between adjustments (for `adjust(batch_size=...)`)
                 speed_kimg=500.0,         # kimg for p to go from 0 to 1
                 strengths=None,           # per-augmentation multipliers overriding the pipeline, e.g. {"xflip": 0}
                 xint_max=0.125,           # integer translation, fraction of the size
                 scale_std=0.2,            # log2 std of isotropic scaling
                 rotate_max=1.0,           # arbitrary rotation, fraction of pi
                 aniso_std=0.2,            # log2 std of anisotropic scaling
                 xfrac_std=0.125,          # fractional translation std, fraction of the size
                 brightness_std=0.2,       # additive, in [-1, 1] pixel units
                 contrast_std=0.5,         # log2 std
                 hue_max=1.0,              # hue rotation, fraction of pi
                 saturation_std=1.0,       # log2 std
                 seed=None,                # seed of the owned tf.random.Generator
                 rng=None,                 # or a tf.random.Generator to draw from (not saved in the config)
                 **kwargs):
        kwargs.setdefault("dtype", "float32")  # cheap next to D, and exact flips want float32
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        _check_arguments(pipeline, initial_p, strengths)
        self.pipeline = pipeline
        self.initial_p = float(initial_p)
        self.target = float(target)
        self.interval = int(interval)
        self.speed_kimg = float(speed_kimg)
        self.strengths = {name: float(v) for name, v in (strengths or {}).items()}
        self.strength = _strength_of_each(pipeline, self.strengths)
        self.xint_max = float(xint_max)
        self.scale_std = float(scale_std)
        self.rotate_max = float(rotate_max)
        self.aniso_std = float(aniso_std)
        self.xfrac_std = float(xfrac_std)
        self.brightness_std = float(brightness_std)
        self.contrast_std = float(contrast_std)
        self.hue_max = float(hue_max)
        self.saturation_std = float(saturation_std)
        self.seed = seed
        if rng is None:
            rng = (tf.random.Generator.from_seed(seed) if seed is not None
                   else tf.random.Generator.from_non_deterministic_state())
        self.rng = rng
        self.p = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_p), trainable=False,
                                 aggregation="only_first_replica", name="p")
        # sign(D(real)) totals of all replicas and their count since the last adjustment. `accumulate`
        # all-reduces what it adds, so every replica adds the same and keeps the same totals; not
        # aggregation="sum": Keras's assign_add is assign(value + delta), and a summed assign would
        # count the old total once per replica.
        self.sign_sum = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                        aggregation="only_first_replica", name="sign_sum")
        self.sign_count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                          aggregation="only_first_replica", name="sign_count")
        self.rt = self.add_weight(shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica",
                                  name="rt")
        self.built = True

    # -- the controller ----------------------------------------------------------------

    def accumulate(self, real_logits):
        """Add sign(D(augmented reals)) of one step, over all replicas, to the running totals."""
        total, count = sum_and_count_over_replicas(tf.sign(tf.cast(real_logits, tf.float32)))
        self.sign_sum.assign_add(total)
        self.sign_count.assign_add(count)

    def adjust(self, batch_size=None):
        """Apply the ADA rule to the accumulated signs, reset them, return the new p.

        batch_size: None moves p by (images accumulated) / (speed_kimg * 1000), which is batch *
        interval when called every `interval` steps; an int uses batch_size * interval as NVIDIA writes it.
        No signs accumulated: p is unchanged.
        """
        count = tf.convert_to_tensor(self.sign_count)
        rt = tf.convert_to_tensor(self.sign_sum) / tf.maximum(count, 1.0)
        if batch_size is None:
            new_p = ada_p_update(self.p, rt, count, 1, self.target, self.speed_kimg)
        else:
            new_p = ada_p_update(self.p, rt, batch_size, self.interval, self.target, self.speed_kimg)
        new_p = tf.where(count > 0, new_p, tf.convert_to_tensor(self.p))
        self.rt.assign(tf.where(count > 0, rt, tf.convert_to_tensor(self.rt)))
        self.p.assign(new_p)
        self.sign_sum.assign(0.0)
        self.sign_count.assign(0.0)
        return new_p

    def metric_values(self):
        """{"ada_p": p, "r_t": the last r_t} as float32 scalars."""
        return {"ada_p": tf.convert_to_tensor(self.p), "r_t": tf.convert_to_tensor(self.rt)}

    # -- the augmentation --------------------------------------------------------------

    def call(self, images, training=None):
        images = tf.cast(images, self.compute_dtype)
        if not training:
            return images
        return tf.cond(self.p > 0, lambda: self.augment(images), lambda: tf.identity(images))

    def augment(self, images, p=None):
        """Augment with probability p (the variable when None), whatever `training` is."""
        images = tf.cast(images, self.compute_dtype)
        p = tf.clip_by_value(tf.cast(tf.convert_to_tensor(self.p) if p is None else p, tf.float32), 0.0, 1.0)
        height, width, channels = images.shape[1], images.shape[2], images.shape[3]
        batch = tf.shape(images)[0]
        blit, geometric = self._geometric_matrices(batch, height, width, p)
        if geometric is not None:
            pad_y, pad_x = max(height - 1, 6), max(width - 1, 6)
            canvas = self._blit(images, blit, pad_y, pad_x)
            images = self._warp(canvas, geometric, height, width)
        elif blit is not None:
            images = self._blit(images, blit, 0, 0)
        color = self._color_matrix(batch, channels, p)
        if color is not None:
            images = apply_color_matrix(images, color)
        return images

    def _gate(self, probability, value, default, shape):
        """value where uniform < probability (per sample), default elsewhere."""
        return tf.where(self.rng.uniform(shape) < probability, value, default)

    def _geometric_matrices(self, batch, height, width, p):
        """(blit_inv, geometric_inv): (B, 3, 3) maps from output to input pixel coordinates, or None."""
        st, rng = self.strength, self.rng
        eye = tf.tile(tf.eye(3)[None], [batch, 1, 1])
        zeros, ones = tf.zeros([batch]), tf.ones([batch])
        blit = None
        if any(st[name] > 0 for name in BLIT):
            blit = eye
            if st["xflip"] > 0:
                i = self._gate(st["xflip"] * p, tf.floor(rng.uniform([batch]) * 2), zeros, [batch])
                blit = blit @ scale2d(1 - 2 * i, ones)
            if st["rotate90"] > 0:
                i = self._gate(st["rotate90"] * p, tf.floor(rng.uniform([batch]) * 4), zeros, [batch])
                blit = blit @ rotate2d(math.pi / 2 * i)  # the inverse of rotating by -pi/2 * i
            if st["xint"] > 0:
                t = (rng.uniform([batch, 2]) * 2 - 1) * self.xint_max
                t = self._gate(st["xint"] * p, t, tf.zeros_like(t), [batch, 1])
                blit = blit @ translate2d(-tf.round(t[:, 0] * width), -tf.round(t[:, 1] * height))
        geometric = None
        if any(st[name] > 0 for name in GEOMETRIC):
            geometric = eye
            if st["scale"] > 0:
                s = self._gate(st["scale"] * p, tf.pow(2.0, rng.normal([batch]) * self.scale_std), ones, [batch])
                geometric = geometric @ scale2d(1 / s, 1 / s)
            # Pre- and post-rotation each at 1 - sqrt(1 - p): P(at least one) = p.
            p_rot = 1 - tf.sqrt(tf.clip_by_value(1 - st["rotate"] * p, 0.0, 1.0))
            if st["rotate"] > 0:
                theta = (rng.uniform([batch]) * 2 - 1) * math.pi * self.rotate_max
                geometric = geometric @ rotate2d(self._gate(p_rot, theta, zeros, [batch]))
            if st["aniso"] > 0:
                s = self._gate(st["aniso"] * p, tf.pow(2.0, rng.normal([batch]) * self.aniso_std), ones, [batch])
                geometric = geometric @ scale2d(1 / s, s)
            if st["rotate"] > 0:
                theta = (rng.uniform([batch]) * 2 - 1) * math.pi * self.rotate_max
                geometric = geometric @ rotate2d(self._gate(p_rot, theta, zeros, [batch]))
            if st["xfrac"] > 0:
                t = rng.normal([batch, 2]) * self.xfrac_std
                t = self._gate(st["xfrac"] * p, t, tf.zeros_like(t), [batch, 1])
                geometric = geometric @ translate2d(-t[:, 0] * width, -t[:, 1] * height)
        return blit, geometric

    def _blit(self, images, blit_inv, pad_y, pad_x):
        """Integer gather of the blitted image onto a canvas (H + 2 pad_y, W + 2 pad_x), reflecting outside."""
        height, width, channels = images.shape[1], images.shape[2], images.shape[3]
        batch = tf.shape(images)[0]
        canvas_h, canvas_w = height + 2 * pad_y, width + 2 * pad_x
        if blit_inv is None:
            blit_inv = tf.tile(tf.eye(3)[None], [batch, 1, 1])
        # Centred pixel coordinates of the canvas, mapped back into the image.
        ys = tf.range(canvas_h, dtype=tf.float32) - (canvas_h - 1) / 2
        xs = tf.range(canvas_w, dtype=tf.float32) - (canvas_w - 1) / 2
        m = blit_inv[:, :, :, None, None]  # (B, 3, 3, 1, 1)
        src_x = m[:, 0, 0] * xs[None, None, :] + m[:, 0, 1] * ys[None, :, None] + m[:, 0, 2]
        src_y = m[:, 1, 0] * xs[None, None, :] + m[:, 1, 1] * ys[None, :, None] + m[:, 1, 2]
        col = _reflect(tf.cast(tf.round(src_x + (width - 1) / 2), tf.int32), width)
        row = _reflect(tf.cast(tf.round(src_y + (height - 1) / 2), tf.int32), height)
        flat = (tf.range(batch)[:, None, None] * height + row) * width + col  # (B, Hc, Wc)
        pixels = tf.gather(tf.reshape(images, [-1, channels]), tf.reshape(flat, [-1]))
        return tf.reshape(pixels, tf.stack([batch, canvas_h, canvas_w, channels]))

    def _warp(self, canvas, geometric_inv, height, width):
        """2x sym6 upsampling, bilinear warp by geometric_inv, 2x sym6 downsampling: canvas -> (B, H, W, C)."""
        taps = np.asarray(SYM6) / np.sum(SYM6)
        size = taps.size  # 12
        batch = tf.shape(canvas)[0]
        channels = canvas.shape[-1]
        up = upfirdn2d(canvas, taps, up=2, padding=((size + 1) // 2, (size - 2) // 2), gain=4)
        up_h, up_w = up.shape[1], up.shape[2]
        out_h, out_w = 2 * height + size, 2 * width + size  # NVIDIA's grid: (size + 2 * size // 4) * 2
        # The transform on the 2x grid. With these paddings the sym6 filters (centroid ~5 of taps
        # 0..11) put canvas pixel i at 2x index 2i, half a 2x pixel before the centred-grid
        # convention, hence NVIDIA's shift by -0.5 (without it a flip lands half a pixel off).
        to_fine = scale2d(tf.fill([batch], 2.0), tf.fill([batch], 2.0))
        from_fine = scale2d(tf.fill([batch], 0.5), tf.fill([batch], 0.5))
        shift = translate2d(tf.fill([batch], -0.5), tf.fill([batch], -0.5))
        unshift = translate2d(tf.fill([batch], 0.5), tf.fill([batch], 0.5))
        m = shift @ to_fine @ geometric_inv @ from_fine @ unshift
        m = m[:, :, :, None, None]
        ys = tf.range(out_h, dtype=tf.float32) - (out_h - 1) / 2
        xs = tf.range(out_w, dtype=tf.float32) - (out_w - 1) / 2
        src_x = m[:, 0, 0] * xs[None, None, :] + m[:, 0, 1] * ys[None, :, None] + m[:, 0, 2] + (up_w - 1) / 2
        src_y = m[:, 1, 0] * xs[None, None, :] + m[:, 1, 1] * ys[None, :, None] + m[:, 1, 2] + (up_h - 1) / 2
        warped = _bilinear(up, src_y, src_x)  # (B, out_h, out_w, C)
        warped = tf.reshape(warped, tf.stack([batch, out_h, out_w, channels]))
        pad = -(size // 2) + (size - 2 + 1) // 2  # NVIDIA's downsample2d(padding=-size/2) -> -1
        return upfirdn2d(warped, taps, down=2, padding=(pad, pad), flip_filter=True)

    def _color_matrix(self, batch, channels, p):
        """(B, 4, 4) colour transform (applied after the geometry), or None."""
        st, rng = self.strength, self.rng
        if not any(st[name] > 0 for name in COLOR):
            return None
        matrix = tf.tile(tf.eye(4)[None], [batch, 1, 1])
        zeros, ones = tf.zeros([batch]), tf.ones([batch])
        if st["brightness"] > 0:
            b = self._gate(st["brightness"] * p, rng.normal([batch]) * self.brightness_std, zeros, [batch])
            matrix = translate3d(b, b, b) @ matrix
        if st["contrast"] > 0:
            c = self._gate(st["contrast"] * p, tf.pow(2.0, rng.normal([batch]) * self.contrast_std), ones, [batch])
            matrix = scale3d(c, c, c) @ matrix
        if st["lumaflip"] > 0:
            i = self._gate(st["lumaflip"] * p, tf.floor(rng.uniform([batch]) * 2), zeros, [batch])
            matrix = luma_flip_matrix(i) @ matrix
        if st["hue"] > 0 and channels > 1:
            theta = (rng.uniform([batch]) * 2 - 1) * math.pi * self.hue_max
            matrix = hue_rotation_matrix(self._gate(st["hue"] * p, theta, zeros, [batch])) @ matrix
        if st["saturation"] > 0 and channels > 1:
            s = self._gate(st["saturation"] * p, tf.pow(2.0, rng.normal([batch]) * self.saturation_std), ones, [batch])
            matrix = saturation_matrix(s) @ matrix
        return matrix

    def get_config(self):
        config = super().get_config()
        config.update(pipeline=self.pipeline, initial_p=self.initial_p, target=self.target, interval=self.interval,
                      speed_kimg=self.speed_kimg, strengths=dict(self.strengths), xint_max=self.xint_max,
                      scale_std=self.scale_std, rotate_max=self.rotate_max, aniso_std=self.aniso_std,
                      xfrac_std=self.xfrac_std, brightness_std=self.brightness_std, contrast_std=self.contrast_std,
                      hue_max=self.hue_max, saturation_std=self.saturation_std, seed=self.seed)
        return config


def _bilinear(images, y, x):
    """Bilinear samples of images (B, H, W, C) at float pixel indices y, x (B, h, w); zeros outside."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    batch = tf.shape(images)[0]
    flat_images = tf.reshape(images, [-1, channels])
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    base = tf.range(batch)[:, None, None] * (height * width)
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            index = base + tf.clip_by_value(yy, 0, height - 1) * width + tf.clip_by_value(xx, 0, width - 1)
            values = tf.gather(flat_images, index)
            weight = wy * wx * tf.cast(inside, wx.dtype)[..., None]
            out = out + values * tf.cast(weight, images.dtype)
    return out
