"""Projection: the latent that draws a given face (W, W+ or z), by our recipe or NVIDIA's projector
recipe with a pixel loss in place of VGG16; and `keras-anime-gan project`'s files."""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from ..errors import UserError
from ..sampling import image_size, latent_width, latents_for_seed, to_uint8
from .directions import _sample_ws, generator_of, is_style, networks
from .drawing import draw_latents, renderer_for

SPACES = ("w", "w+", "z")
RECIPES = ("ours", "nvidia")
MAX_IMAGE_PIXELS = 40_000_000  # a larger upload or file is refused before it is decoded


@dataclasses.dataclass
class Projection:
    """What `project` found: `latent` (ws (num_ws, w_dim) for W / W+, z for the DCGAN family), the
    uint8 picture (drawn with the const noise; the nvidia recipe's with its optimised noise maps, as
    NVIDIA's projector shows it), the loss after each step, and the picture's PSNR (dB) against the
    target."""

    latent: np.ndarray
    image: np.ndarray
    losses: list
    space: str
    recipe: str
    psnr: float
    seconds: float
    steps: int


def psnr(a, b) -> float:
    """PSNR in dB of two uint8 images."""
    error = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def target_image(image, resolution) -> np.ndarray:
    """(resolution, resolution, 3) uint8 from a path, bytes, a Pillow image or an array: decoded with
    Pillow, centre-cropped to a square and resized (Lanczos). A UserError names what is wrong."""
    from ..data.imaging import ImageSkipped, load_image, square, to_rgb

    try:
        if isinstance(image, (str, os.PathLike, bytes, bytearray)):
            if isinstance(image, (str, os.PathLike)) and not os.path.isfile(image):
                raise UserError(f"image {os.fspath(image)} does not exist")
            return load_image(image if isinstance(image, (bytes, bytearray)) else os.fspath(image), resolution,
                              max_pixels=MAX_IMAGE_PIXELS)[0]
    except ImageSkipped as error:
        raise UserError(f"cannot use that image: {error}") from None
    if isinstance(image, Image.Image):
        picture = square(to_rgb(image), "center-crop")
    else:
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise UserError(f"an image array must be (H, W, 3), got shape {array.shape}")
        if array.dtype != np.uint8:
            array = to_uint8(array)
        picture = square(Image.fromarray(array), "center-crop")
    if picture.size != (resolution, resolution):
        picture = picture.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(picture, np.uint8)


def _pixel_loss(images, target, scales=(1, 2, 4, 8)):
    """Mean squared error at several scales (average pooling), summed; images in [-1, 1]."""
    total = 0.0
    for scale in scales:
        if scale >= images.shape[1]:
            break
        a = images if scale == 1 else tf.nn.avg_pool2d(images, scale, scale, "VALID")
        b = target if scale == 1 else tf.nn.avg_pool2d(target, scale, scale, "VALID")
        total += tf.reduce_mean(tf.square(a - b), axis=[1, 2, 3])
    return total


def discriminator_features(discriminator):
    """A function images -> list of feature maps of the discriminator: the StyleGAN2 residual blocks'
    outputs, or every activation layer of a functional (DCGAN-family) discriminator; None otherwise."""
    import keras

    blocks = getattr(discriminator, "blocks", None)
    if blocks and callable(getattr(blocks[0], "__call__", None)) and hasattr(discriminator, "epilogue"):
        def features(images):
            outputs, x = [], images
            for block in blocks:
                x = block(x)
                outputs.append(tf.cast(x, tf.float32))
            return outputs

        return features
    kinds = (keras.layers.LeakyReLU, keras.layers.ReLU, keras.layers.Activation)
    chosen = [layer.output for layer in getattr(discriminator, "layers", []) if isinstance(layer, kinds)]
    if not chosen or not getattr(discriminator, "inputs", None):
        return None
    model = keras.Model(discriminator.inputs, chosen)
    return lambda images: [tf.cast(f, tf.float32) for f in model(images, training=False)]


def _feature_loss(features, images, target_features):
    total = 0.0
    for got, want in zip(features(images), target_features):
        total += tf.reduce_mean(tf.square(got - want), axis=list(range(1, len(got.shape)))) / (
            tf.reduce_mean(tf.square(want)) + 1e-8)
    return total / len(target_features)


def _lr_ramp(t, rampdown=0.25, rampup=0.05):
    """NVIDIA projector's learning-rate ramp: up over the first 5 %, cosine down over the last 25 %."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / rampup)


class _Adam:
    """Adam on a list of tf.Variables, with the learning rate passed per step."""

    def __init__(self, variables, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.variables = variables
        self.m = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.t = tf.Variable(0.0)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

    def reset(self):
        self.t.assign(0.0)
        for slot in self.m + self.v:
            slot.assign(tf.zeros_like(slot))

    def apply(self, gradients, lr):
        self.t.assign_add(1.0)
        correction = tf.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for variable, gradient, m, v in zip(self.variables, gradients, self.m, self.v):
            m.assign(self.beta1 * m + (1 - self.beta1) * gradient)
            v.assign(self.beta2 * v + (1 - self.beta2) * tf.square(gradient))
            variable.assign_sub(lr * correction * m / (tf.sqrt(v) + self.epsilon))


def _synthesis_with_noise(generator, ws, noises):
    """The synthesis network run block by block with explicit noise maps (one per SynthesisLayer, in
    order), as NVIDIA's projector optimises them."""
    from ..gans.stylegan2.layers import upsample2d

    x = img = None
    index, n = 0, 0
    for block in generator.synthesis_network.blocks:
        part = ws[:, index : index + block.num_conv + 1]
        i = 0
        if block.conv0 is None:
            x = tf.tile(tf.cast(block.const, tf.float32)[None], [tf.shape(ws)[0], 1, 1, 1])
        else:
            x = block.conv0(x, part[:, 0], noise=noises[n])
            n, i = n + 1, 1
        x = block.conv1(x, part[:, i], noise=noises[n])
        n += 1
        y = block.torgb(x, part[:, i + 1])
        img = y if img is None else upsample2d(img) + y
        index += block.num_conv
    return img


def _noise_layers(generator):
    return [layer for block in generator.synthesis_network.blocks for layer in (block.conv0, block.conv1)
            if layer is not None]


def _noise_regularisation(noises):
    """NVIDIA projector's noise regulariser: squared autocorrelation at one pixel shift, summed over a
    pyramid (halving each map until 8 px)."""
    total = 0.0
    for noise in noises:
        x = noise
        while True:
            total += (tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=2)))
                      + tf.square(tf.reduce_mean(x * tf.roll(x, 1, axis=1))))
            if x.shape[1] <= 8:
                break
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    return total


def _w_statistics(generator, seed, samples=4096):
    ws = _sample_ws(generator, samples, seed)
    mean = ws.mean(axis=0)
    return ws, mean, float(np.sqrt(np.mean(np.sum((ws - mean) ** 2, axis=1))))


def project(model, image, steps=400, space=None, *, recipe="ours", discriminator="auto", seed=0, time_limit=None,
            callback=None, learning_rate=None, feature_weight=0.1) -> Projection:
    """The latent whose picture is closest to `image` (a path, bytes, Pillow image or array; any size:
    centre-cropped and resized to the generator's resolution).

    space: "w" (default for StyleGAN) or "w+" (one w per style layer), "z" for the DCGAN family.
    recipe "ours": starts from the best of 64 sampled latents, Adam with NVIDIA's learning-rate ramps
    on a pixel loss at four scales, plus `feature_weight` times the discriminator's feature distance
    when `discriminator` is a model, or "auto" and `model` holds one (a GAN, a run folder with a
    checkpoint, an NVIDIA .pkl); noise stays const. recipe "nvidia" (StyleGAN, W or W+): NVIDIA's
    projector with a pixel loss in place of VGG16: start at the mean w, noise maps optimised with
    their regulariser (weight 1e5), w noise of 5 % of the ws' spread fading over 75 % of the steps.
    time_limit: seconds after which to stop (the learning-rate schedule is laid over `steps`).
    callback(step, steps, loss, latent): called every few steps; returning True stops early."""
    if recipe not in RECIPES:
        raise UserError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    if discriminator == "auto":
        generator, discriminator = networks(model) if recipe == "ours" else (generator_of(model), None)
    else:
        generator = generator_of(model)
    style = is_style(generator)
    space = space or ("w" if style else "z")
    if space not in SPACES:
        raise UserError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if style and space == "z":
        raise UserError("project a StyleGAN generator in w or w+ (its z is mapped before it draws anything)")
    if not style and space != "z":
        raise UserError(f"a DCGAN-family generator has no W space (no mapping network): project in z, not {space}")
    if recipe == "nvidia" and not style:
        raise UserError("the nvidia recipe optimises W and noise maps: it needs a StyleGAN generator")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise UserError(f"steps must be a positive integer, got {steps!r}")
    resolution = image_size(generator)
    target_uint8 = target_image(image, resolution)
    target = tf.constant(target_uint8[None].astype(np.float32) / 127.5 - 1.0)
    start = time.perf_counter()
    if recipe == "nvidia":
        latent, losses, done, picture = _project_nvidia(generator, target, steps, space, seed, time_limit, callback,
                                                        start, learning_rate or 0.1)
    else:
        latent, losses, done = _project_ours(generator, target, steps, space, seed, time_limit, callback, start,
                                             discriminator, feature_weight, learning_rate)
        picture = draw_latents(generator, latent[None])[0]
    return Projection(latent, picture, losses, space, recipe, psnr(picture, target_uint8),
                      time.perf_counter() - start, done)


def _stop(step, steps, loss, latent_fn, callback, time_limit, start, every=10):
    if time_limit is not None and time.perf_counter() - start > time_limit:
        return True
    if callback is not None and (step % every == 0 or step == steps):
        return bool(callback(step, steps, loss, latent_fn()))
    return False


def _cached(generator, key, build):
    """One projector per generator and settings, kept on the generator: its variables and compiled
    step are made once, and each projection only assigns a new target and start."""
    cache = generator.__dict__.setdefault("_edit_projectors", {})  # a plain attribute Keras does not track
    if key not in cache:
        cache[key] = build()
    return cache[key]


class _OursProjector:
    """Our recipe's variables and compiled functions for one generator, space and loss."""

    def __init__(self, generator, space, discriminator, feature_weight):
        self.generator, self.space, self.discriminator = generator, space, discriminator  # D kept alive
        self.style = is_style(generator)
        self.features = discriminator_features(discriminator) if discriminator is not None else None
        self.feature_weight = feature_weight
        resolution = image_size(generator)
        self.target = tf.Variable(tf.zeros([1, resolution, resolution, 3]), trainable=False)
        if self.style:
            rows = 1 if space == "w" else generator.num_ws
            self.variable = tf.Variable(tf.zeros([1, rows, generator.w_dim]))
        else:
            self.variable = tf.Variable(tf.zeros([1, latent_width(generator)]))
        self.adam = _Adam([self.variable])
        self.step = tf.function(self._step)
        self.lock = threading.Lock()

    def latent_of(self, v):
        return tf.tile(v, [1, self.generator.num_ws, 1]) if self.style and self.space == "w" else v

    def images_of(self, v):
        if self.style:
            return self.generator.synthesis(self.latent_of(v), noise_mode="const")
        return self.generator(v, training=False)

    def _loss_of(self, images):
        loss = _pixel_loss(images, self.target)
        if self.features is not None:
            wanted = [tf.stop_gradient(f) for f in self.features(self.target)]
            loss += self.feature_weight * _feature_loss(self.features, images, wanted)
        return loss

    def _step(self, lr):
        with tf.GradientTape() as tape:
            loss = self._loss_of(self.images_of(self.variable))[0]
            if not self.style:  # keep z where the Gaussian puts it: its mean square near 1
                loss += 1e-3 * tf.square(tf.reduce_mean(tf.square(self.variable)) - 1.0)
        self.adam.apply(tape.gradient(loss, [self.variable]), lr)
        return loss


def _project_ours(generator, target, steps, space, seed, time_limit, callback, start, discriminator, feature_weight,
                  learning_rate):
    projector = _cached(generator, ("ours", space, id(discriminator), feature_weight),
                        lambda: _OursProjector(generator, space, discriminator, feature_weight))
    renderer = renderer_for(generator)
    with projector.lock:
        projector.target.assign(target)
        if projector.style:
            ws, mean, _ = _w_statistics(generator, seed)
            candidates = np.concatenate([mean[None], mean + 0.7 * (ws[:63] - mean)]).astype(np.float32)
            images = renderer.synthesis(np.repeat(candidates[:, None], generator.num_ws, axis=1))
        else:
            candidates = latents_for_seed(256, latent_width(generator), seed)
            images = renderer.generate(candidates)
        start_losses = projector._loss_of(tf.constant(images.astype(np.float32) / 127.5 - 1.0)).numpy()
        best = candidates[int(np.argmin(start_losses))]
        if projector.style:
            rows = 1 if space == "w" else generator.num_ws
            projector.variable.assign(np.repeat(best[None, None], rows, axis=1))
        else:
            projector.variable.assign(best[None])
        projector.adam.reset()
        learning_rate = learning_rate or 0.05
        losses, done = [], 0
        for index in range(steps):
            losses.append(float(projector.step(tf.constant(learning_rate * _lr_ramp(index / steps), tf.float32))))
            done = index + 1
            if _stop(done, steps, losses[-1], lambda: projector.latent_of(projector.variable).numpy()[0], callback,
                     time_limit, start):
                break
        return projector.latent_of(projector.variable).numpy()[0].astype(np.float32), losses, done


class _NvidiaProjector:
    """NVIDIA's recipe's variables (w, the noise maps) and compiled step for one generator and space."""

    def __init__(self, generator, space):
        self.generator, self.space = generator, space
        resolution = image_size(generator)
        self.target = tf.Variable(tf.zeros([1, resolution, resolution, 3]), trainable=False)
        rows = 1 if space == "w" else generator.num_ws
        self.variable = tf.Variable(tf.zeros([1, rows, generator.w_dim]))
        self.noises = [tf.Variable(tf.zeros([1, layer.resolution, layer.resolution, 1]))
                       for layer in _noise_layers(generator)]
        self.adam = _Adam([self.variable] + self.noises, beta1=0.9, beta2=0.999)
        self.rng = tf.random.Generator.from_seed(0)
        self.step = tf.function(self._step)
        self.lock = threading.Lock()

    def latent_of(self, v):
        return tf.tile(v, [1, self.generator.num_ws, 1]) if self.space == "w" else v

    def _step(self, lr, w_noise_scale):
        with tf.GradientTape() as tape:
            w = self.variable + self.rng.normal(tf.shape(self.variable)) * w_noise_scale
            images = _synthesis_with_noise(self.generator, self.latent_of(w), self.noises)
            distance = tf.reduce_mean(tf.square(images - self.target))
            loss = distance + 1e5 * _noise_regularisation(self.noises)
        self.adam.apply(tape.gradient(loss, [self.variable] + self.noises), lr)
        for noise in self.noises:  # normalised after every step, as NVIDIA's projector does
            mean = tf.reduce_mean(noise)
            noise.assign((noise - mean) * tf.math.rsqrt(tf.reduce_mean(tf.square(noise - mean)) + 1e-8))
        return distance


def _project_nvidia(generator, target, steps, space, seed, time_limit, callback, start, learning_rate):
    projector = _cached(generator, ("nvidia", space), lambda: _NvidiaProjector(generator, space))
    with projector.lock:
        return _run_nvidia(projector, generator, target, steps, space, seed, time_limit, callback, start,
                           learning_rate)


def _run_nvidia(projector, generator, target, steps, space, seed, time_limit, callback, start, learning_rate):
    _, w_mean, w_std = _w_statistics(generator, seed)
    rows = 1 if space == "w" else generator.num_ws
    projector.target.assign(target)
    projector.variable.assign(np.repeat(w_mean[None, None], rows, axis=1))
    rng = np.random.default_rng(seed)
    for noise in projector.noises:
        noise.assign(rng.standard_normal(noise.shape).astype(np.float32))
    projector.adam.reset()
    projector.rng.reset_from_seed(seed)
    latent_of, noises = projector.latent_of, projector.noises
    losses, done = [], 0
    for index in range(steps):
        t = index / steps
        w_noise_scale = w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
        losses.append(float(projector.step(tf.constant(learning_rate * _lr_ramp(t), tf.float32),
                                           tf.constant(w_noise_scale, tf.float32))))
        done = index + 1
        if _stop(done, steps, losses[-1], lambda: latent_of(projector.variable).numpy()[0], callback, time_limit,
                 start):
            break
    # The picture with the optimised noise maps (what NVIDIA's projector shows); the latent alone draws
    # with the generator's const noise, as every other picture in the studio.
    picture = to_uint8(_synthesis_with_noise(generator, latent_of(projector.variable), noises).numpy())[0]
    return latent_of(projector.variable).numpy()[0].astype(np.float32), losses, done, picture


def project_to_folder(source, image, out, *, steps=400, space=None, recipe="ours", seed=0, time_limit=None,
                      progress=False) -> dict:
    """`keras-anime-gan project`: writes OUT/latent.npy (the studio's and `explore --latent`'s latent),
    OUT/projected.png, OUT/target.png and OUT/losses.csv; returns a summary."""
    from tqdm.auto import tqdm

    from ..atomic import write_atomic

    with tqdm(total=steps, unit="step", desc="projecting", disable=not progress, leave=False) as bar:
        def callback(step, total, loss, latent):
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}")

        result = project(source, image, steps=steps, space=space, recipe=recipe, seed=seed, time_limit=time_limit,
                         callback=callback)
    target = target_image(image, result.image.shape[0])
    os.makedirs(out, exist_ok=True)
    def save_latent(tmp):
        with open(tmp, "wb") as file:
            np.save(file, result.latent, allow_pickle=False)

    def save_losses(tmp):
        with open(tmp, "w", encoding="utf-8") as file:
            file.write("step,loss\n" + "".join(f"{i + 1},{loss:.6g}\n" for i, loss in enumerate(result.losses)))

    write_atomic(os.path.join(out, "latent.npy"), save_latent, durable=False)
    for name, picture in (("projected.png", result.image), ("target.png", target)):
        write_atomic(os.path.join(out, name), lambda tmp, p=picture: Image.fromarray(p).save(tmp, format="PNG"),
                     durable=False)
    write_atomic(os.path.join(out, "losses.csv"), save_losses, durable=False)
    return {"out": os.fspath(out), "space": result.space, "recipe": result.recipe, "steps": result.steps,
            "psnr": round(result.psnr, 2), "seconds": round(result.seconds, 1),
            "latent_shape": list(result.latent.shape)}
