"""One picture: the settings (`Edit`), the latent they give, its pixels drawn by functions compiled once
(`Renderer`), walks and GIFs, and the grid `keras-anime-gan explore --kind directions` writes."""

from __future__ import annotations

import dataclasses
import math
import os
import threading

import numpy as np
import tensorflow as tf
from PIL import Image

from .. import explore
from ..errors import UserError
from ..sampling import checked_truncation_cutoff, image_size, latent_width, latents_for_seeds, to_uint8
from .directions import Directions, style_layer_indices, find_directions, is_style, require_style  # noqa: F401

NOISE_MODES = ("const", "random", "none")


class Renderer:
    """The generator's functions compiled once (fixed input signatures, batch of any size): mapping
    z -> ws, synthesis ws -> images per noise mode, z -> images for the DCGAN family. A lock makes
    each call whole when several threads draw (the random noise stream is reset per picture)."""

    def __init__(self, generator):
        self.generator = generator
        self.style = is_style(generator)
        self.latent_dim = latent_width(generator)
        self.resolution = image_size(generator)
        self.lock = threading.Lock()
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32)
        if self.style:
            self.num_ws, self.w_dim = generator.num_ws, generator.w_dim
            ws_spec = tf.TensorSpec([None, self.num_ws, self.w_dim], tf.float32)
            self.noise_rng = tf.random.Generator.from_seed(0)
            self._mapping = tf.function(lambda z: generator.mapping(z), input_signature=[z_spec])
            self._synthesis = {
                mode: tf.function(lambda ws, mode=mode: generator.synthesis(
                    ws, noise_mode=mode, rng=self.noise_rng if mode == "random" else None), input_signature=[ws_spec])
                for mode in NOISE_MODES}
        else:
            self._generate = tf.function(lambda z: generator(z, training=False), input_signature=[z_spec])

    def mapping(self, z) -> np.ndarray:
        with self.lock:
            return self._mapping(np.asarray(z, np.float32)).numpy()

    def synthesis(self, ws, noise_mode="const", noise_seed=0) -> np.ndarray:
        """uint8 images of ws (N, num_ws, w_dim); random noise is drawn from `noise_seed`."""
        if noise_mode not in NOISE_MODES:
            raise UserError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        with self.lock:
            if noise_mode == "random":
                self.noise_rng.reset_from_seed(int(noise_seed))
            return to_uint8(self._synthesis[noise_mode](np.asarray(ws, np.float32)).numpy())

    def generate(self, z) -> np.ndarray:
        """uint8 images of z (DCGAN family)."""
        with self.lock:
            return to_uint8(self._generate(np.asarray(z, np.float32)).numpy())

    def w_avg(self) -> np.ndarray:
        return np.asarray(self.generator.w_avg, np.float32)


def renderer_for(generator) -> Renderer:
    """One Renderer per generator (kept on the object, so its functions are traced once)."""
    renderer = getattr(generator, "_studio_renderer", None)
    if renderer is None:
        renderer = Renderer(generator)
        generator.__dict__["_studio_renderer"] = renderer  # a plain attribute Keras does not track
    return renderer


@dataclasses.dataclass
class Edit:
    """The settings of one picture. Base: `latent` when given (ws (num_ws, w_dim) or z), else the
    bilinear `plane` between 2-4 `plane_seeds` at (u, v) when given, else `seed`. Then truncation
    (psi toward w_avg in the style layers below `cutoff`; z * psi for the DCGAN family), style mixing
    (`mix_seed`'s ws, truncated alike, in the `crossover` layers), then `amounts` of `directions` (in
    standard deviations) on the `direction_layers` (None: SeFa's layers, else all)."""

    seed: int = 0
    latent: np.ndarray | None = None
    plane_seeds: tuple = ()
    plane: tuple = (0.0, 0.0)
    psi: float = 1.0
    cutoff: int | None = None
    noise_mode: str = "const"
    mix_seed: int | None = None
    crossover: object = "coarse"
    directions: Directions | None = None
    amounts: dict = dataclasses.field(default_factory=dict)
    direction_layers: object = None

    def noise_seed(self) -> int:
        return int(self.seed)


def _plane_weights(count, u, v):
    """Bilinear weights of 2-4 corners A (top left), B (top right), C (bottom left), D (bottom right);
    with 3 seeds D is C, with 2 only u counts."""
    u, v = float(np.clip(u, 0, 1)), float(np.clip(v, 0, 1))
    if count == 2:
        return [1 - u, u]
    weights = [(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v]
    if count == 3:
        return weights[:2] + [weights[2] + weights[3]]
    return weights


def plane_latent(corners, u, v, space):
    """The point (u, v) of the plane between 2-4 corner latents: in z, slerp along the top and bottom
    edges then between them (`explore.slerp`); in W, bilinear."""
    corners = [np.asarray(corner, np.float32) for corner in corners]
    if not 2 <= len(corners) <= 4:
        raise UserError(f"an interpolation plane needs 2 to 4 seeds, got {len(corners)}")
    if space == "w":
        weights = _plane_weights(len(corners), u, v)
        return sum(np.float32(weight) * corner for weight, corner in zip(weights, corners))
    u, v = float(np.clip(u, 0, 1)), float(np.clip(v, 0, 1))
    top = explore.slerp(corners[0], corners[1], u)
    if len(corners) == 2:
        return top.astype(np.float32)
    bottom = corners[2] if len(corners) == 3 else explore.slerp(corners[2], corners[3], u)
    return explore.slerp(top, bottom, v).astype(np.float32)


def _check_edit(generator, edit):
    style = is_style(generator)
    if not math.isfinite(edit.psi):
        raise UserError(f"truncation psi must be a finite number, got {edit.psi}")
    if not style:
        if edit.mix_seed is not None:
            require_style(generator, "style mixing")
        if edit.noise_mode != "const":
            raise UserError("noise modes belong to StyleGAN generators (per-pixel noise inputs); this DCGAN-family "
                            "generator has none: leave the noise mode at const")
    checked_truncation_cutoff(generator, edit.cutoff)
    if any(not math.isfinite(float(amount)) for amount in edit.amounts.values()):
        raise UserError("direction amounts must be finite numbers")
    if edit.amounts and edit.directions is None:
        raise UserError("direction amounts need directions (a method: sefa or ganspace)")
    if edit.directions is not None:
        count = len(edit.directions.vectors)
        bad = [index for index in edit.amounts if not 0 <= int(index) < count]
        if bad:
            raise UserError(f"direction indices must be in 0..{count - 1} (there are {count} directions), got {bad}")


def edited_latent(generator, edit, renderer=None) -> np.ndarray:
    """The latent that draws `edit`'s picture: ws (num_ws, w_dim) float32 for StyleGAN, z (z_dim,) otherwise."""
    _check_edit(generator, edit)
    renderer = renderer or renderer_for(generator)
    dim = latent_width(generator)
    if is_style(generator):
        if edit.latent is not None:
            ws = _latent_as_ws(generator, edit.latent, renderer)
        elif edit.plane_seeds:
            corners = renderer.mapping(latents_for_seeds(edit.plane_seeds, dim))
            ws = plane_latent(list(corners), *edit.plane, "w")
        else:
            ws = renderer.mapping(latents_for_seeds([edit.seed], dim))[0]
        ws = _truncated(generator, ws, edit.psi, edit.cutoff)
        if edit.mix_seed is not None:
            layers = explore.crossover_layers(generator, edit.crossover)
            other = _truncated(generator, renderer.mapping(latents_for_seeds([edit.mix_seed], dim))[0], edit.psi,
                               edit.cutoff)
            ws = ws.copy()
            ws[layers] = other[layers]
        if edit.directions is not None and edit.amounts:
            layers = edit.direction_layers if edit.direction_layers is not None else edit.directions.layers
            chosen = style_layer_indices(generator, layers)
            ws = ws.copy()
            ws[chosen] += _offset(edit.directions, edit.amounts)
        return ws.astype(np.float32)
    if edit.latent is not None:
        z = np.asarray(edit.latent, np.float32).reshape(-1)
        if z.shape != (dim,):
            raise UserError(f"a latent for this generator is a z of {dim} values, got shape {np.shape(edit.latent)}")
    elif edit.plane_seeds:
        z = plane_latent(list(latents_for_seeds(edit.plane_seeds, dim)), *edit.plane, "z")
    else:
        z = latents_for_seeds([edit.seed], dim)[0]
    z = z * np.float32(edit.psi)
    if edit.directions is not None and edit.amounts:
        z = z + _offset(edit.directions, edit.amounts)
    return z.astype(np.float32)


def _offset(directions, amounts):
    total = np.zeros(directions.vectors.shape[1], np.float32)
    for index, amount in amounts.items():
        index = int(index)
        total += np.float32(amount) * directions.sigmas[index] * directions.vectors[index]
    return total


def _truncated(generator, ws, psi, cutoff):
    if psi == 1.0:
        return np.asarray(ws, np.float32)
    w_avg = np.asarray(generator.w_avg, np.float32)
    truncated = w_avg + np.float32(psi) * (np.asarray(ws, np.float32) - w_avg)
    if cutoff is None:
        return truncated.astype(np.float32)
    out = np.array(ws, np.float32)
    out[:cutoff] = truncated[:cutoff]
    return out


def _latent_as_ws(generator, latent, renderer):
    latent = np.asarray(latent, np.float32)
    if latent.shape == (generator.num_ws, generator.w_dim):
        return latent
    if latent.shape == (latent_width(generator),):
        return renderer.mapping(latent[None])[0]
    raise UserError(f"a latent for this StyleGAN generator is ws of shape ({generator.num_ws}, {generator.w_dim}) "
                    f"or a z of {latent_width(generator)} values, got shape {latent.shape}")


def draw_latents(generator, latents, noise_mode="const", noise_seed=0, renderer=None) -> np.ndarray:
    """uint8 images (N, H, W, 3) of latents from `edited_latent` (ws or z), stacked."""
    renderer = renderer or renderer_for(generator)
    latents = np.asarray(latents, np.float32)
    if is_style(generator):
        return renderer.synthesis(latents, noise_mode, noise_seed)
    return renderer.generate(latents)


def draw(generator, edit, renderer=None) -> np.ndarray:
    """The uint8 picture (H, W, 3) of `edit`."""
    renderer = renderer or renderer_for(generator)
    latent = edited_latent(generator, edit, renderer)
    return draw_latents(generator, latent[None], edit.noise_mode, edit.noise_seed(), renderer)[0]


def load_latent(path) -> np.ndarray:
    """A latent saved by the studio or `project` (.npy); one clear UserError for anything else."""
    try:
        latent = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"latent file {path} does not exist") from None
    except (ValueError, OSError) as error:
        raise UserError(f"{path} is not a NumPy .npy latent ({error})") from None
    if latent.ndim not in (1, 2) or not np.issubdtype(latent.dtype, np.floating) or not np.all(np.isfinite(latent)):
        raise UserError(f"{path} holds no latent (a 1-D z or 2-D ws of finite floats), got {latent.dtype} "
                        f"{latent.shape}")
    return latent.astype(np.float32)


def walk_latents(generator, edit, index, extent=3.0, frames=16, renderer=None) -> np.ndarray:
    """Latents along direction `index` from -extent to +extent standard deviations around `edit`'s
    own amount, and back (a looping GIF's frames)."""
    center = float(edit.amounts.get(index, 0.0))
    there = np.linspace(center - extent, center + extent, frames)
    path = np.concatenate([there, there[-2:0:-1]])
    return np.stack([edited_latent(generator, dataclasses.replace(edit, amounts={**edit.amounts, index: float(a)}),
                                   renderer) for a in path])


def write_gif(images, path, duration=80, scale=None):
    """Frames (N, H, W, 3) uint8 as a looping GIF, upscaled (nearest) to at least 256 px."""
    images = np.asarray(images)
    scale = scale or max(1, 256 // images.shape[1])
    frames = [Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.NEAREST)
              for image in images]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)


def directions_grid(generator, path, edit, rows=None, offsets=(-3, -2, -1, 0, 1, 2, 3)) -> np.ndarray:
    """`explore --kind directions`: row i walks direction rows[i] by each of `offsets` (standard
    deviations, added to the edit's own amount); the column at offset 0 is the edited picture, which
    is also written alone beside `path` as STEM-picture.png. Returns the grid (uint8)."""
    directions = edit.directions
    rows = list(range(len(directions.vectors))) if rows is None else [int(row) for row in rows]
    offsets = [float(offset) for offset in offsets]
    if not rows or not offsets:
        raise UserError("a directions grid needs at least one direction and one offset")
    if any(not 0 <= row < len(directions.vectors) for row in rows):
        raise UserError(f"directions must be in 0..{len(directions.vectors) - 1}, got {rows}")
    if any(not math.isfinite(offset) for offset in offsets):
        raise UserError("direction offsets must be finite numbers")
    renderer = renderer_for(generator)
    latents = []
    for row in rows:
        for offset in offsets:
            amounts = {**edit.amounts, row: float(edit.amounts.get(row, 0.0)) + offset}
            latents.append(edited_latent(generator, dataclasses.replace(edit, amounts=amounts), renderer))
    images = draw_latents(generator, np.stack(latents), edit.noise_mode, edit.noise_seed(), renderer)
    picture = draw(generator, edit, renderer)
    stem = os.path.splitext(os.fspath(path))[0]
    from ..atomic import write_atomic

    write_atomic(stem + "-picture.png", lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"), durable=False)
    label = {"sefa": "SeFa", "ganspace": "GANSpace"}[directions.method]
    row_labels = [f"#{row} ({directions.values[row]:.3g})" for row in rows]
    return explore.labelled_grid(images, len(rows), len(offsets), row_labels, [f"{o:+g}" for o in offsets],
                                 f"{label} directions", "standard deviations", "direction (value)", path)


def explore_directions(generator, path, *, method=None, layers=None, k=5, seed=0, latent=None, psi=None, cutoff=None,
                       noise_mode="const", mix_seed=None, crossover=None, edits=None, offsets=None) -> np.ndarray:
    """What `keras-anime-gan explore --kind directions` writes: the grid of `directions_grid` for the
    picture these settings draw (the settings the studio shows as a command line). `latent`: a .npy
    file (it replaces the seed; the seed still seeds random noise)."""
    method = method or ("sefa" if is_style(generator) else "ganspace")
    if crossover is not None and mix_seed is None:
        raise UserError("--crossover goes with --mix-seed (the seed whose styles are mixed in)")
    found = find_directions(generator, method, k, layers)
    settings = Edit(seed=seed, latent=None if latent is None else load_latent(latent),
                    psi=1.0 if psi is None else psi, cutoff=cutoff, noise_mode=noise_mode, mix_seed=mix_seed,
                    crossover=crossover or "coarse", directions=found, amounts=dict(edits or {}))
    return directions_grid(generator, path, settings, offsets=(-3, -2, -1, 0, 1, 2, 3) if offsets is None else offsets)
