"""Export generators as SavedModels laid out for TensorFlow Serving.

`saved_models/NAME/VERSION/{saved_model.pb, variables/}` with three signatures:

- `serving_default`: `latent` float32 [None, latent_dim] -> `images` uint8 [None, H, W, 3]
- `generate`: `num_images` int32 scalar, `seed` int64 scalar, `truncation_psi` float32 scalar ->
  `images` uint8; stateless random latents (`sampling.seeded_latents`), so the same seed gives
  the same images as `GAN.generate(num_images, seed)` and `keras-anime-gan generate --seeds`
- `generate_png`: the same inputs -> `png_bytes` string [None], one PNG per image. The `_bytes`
  suffix makes TF Serving's REST API return them base64-encoded (`{"b64": ...}`).

Batch sizes outside 1..max_images fail inside the graph with a clear message, before any
allocation. Only TensorFlow ops are used, so the model server loads the export as it is.
"""

from __future__ import annotations

import os
import re

import tensorflow as tf

from .atomic import atomic_directory, write_text_atomic
from .errors import UserError
from .loading import load_generator
from .sampling import generate_images, latent_width, seeded_latents, to_uint8_tensor

MODELS_CONFIG = "models.config"


class GeneratorServing(tf.Module):
    """The exported object: the generator plus the three serving functions."""

    def __init__(self, generator, max_images=256):
        super().__init__(name="generator_serving")
        self.generator = generator
        self.latent_dim = latent_width(generator)
        self.max_images = int(max_images)
        latent_dim = self.latent_dim

        @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="latent")])
        def serving_default(latent):
            # A reloaded signature still runs a latent of the wrong width; say so before the MatMul does.
            width = tf.debugging.assert_equal(
                tf.shape(latent)[1], latent_dim, message=f"each latent must have latent_dim={latent_dim} values"
            )
            with tf.control_dependencies([width, *self._check_count(tf.shape(latent)[0], "the latent batch")]):
                return {"images": self._to_uint8(self.generator(latent, training=False))}

        scalars = [
            tf.TensorSpec([], tf.int32, name="num_images"),
            tf.TensorSpec([], tf.int64, name="seed"),
            tf.TensorSpec([], tf.float32, name="truncation_psi"),
        ]

        @tf.function(input_signature=scalars)
        def generate(num_images, seed, truncation_psi):
            return {"images": self._generate(num_images, seed, truncation_psi)}

        @tf.function(input_signature=scalars)
        def generate_png(num_images, seed, truncation_psi):
            images = self._generate(num_images, seed, truncation_psi)
            pngs = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))
            return {"png_bytes": pngs}

        self.serving_default, self.generate, self.generate_png = serving_default, generate, generate_png

    def _check_count(self, count, what):
        return [
            tf.debugging.assert_greater_equal(count, 1, message=f"{what} must hold at least 1 image"),
            tf.debugging.assert_less_equal(
                count, self.max_images, message=f"{what} may hold at most max_images={self.max_images} images"
            ),
        ]

    def _generate(self, num_images, seed, truncation_psi):
        with tf.control_dependencies(self._check_count(num_images, "num_images")):
            # The package's one seed -> latents mapping: the same faces as GAN.generate(n, seed).
            latents = seeded_latents(num_images, self.latent_dim, seed)
            # The generator's own truncation trick: psi < 1 trades variety for quality.
            return self._to_uint8(generate_images(self.generator, latents, truncation_psi))

    @staticmethod
    def _to_uint8(images):
        return to_uint8_tensor(images)


def existing_versions(model_dir) -> list[int]:
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def export_generator(gan_or_generator, base_dir="saved_models", name="anime_faces", version=None, *,
                     max_images=256, serving_base_path=None) -> str:
    """Write `base_dir/name/version/` and register the model in `base_dir/models.config`.

    version: one above the highest present when None; an existing version is never overwritten.
    serving_base_path: the folder the model server sees `base_dir` as (e.g. /models inside the
    Docker image); defaults to `base_dir`'s absolute path. Returns the version folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise UserError(f"model name {name!r} may only hold letters, digits, '_', '.' and '-'")
    if max_images < 1:
        raise UserError(f"max_images must be >= 1, got {max_images}")
    generator = load_generator(gan_or_generator)
    model_dir = os.path.join(base_dir, name)
    versions = existing_versions(model_dir)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if not isinstance(version, int) or version < 1:
        raise UserError(f"version must be a positive integer, got {version!r}")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise UserError(f"{final} exists; versions are never overwritten (omit --version for the next one)")
    os.makedirs(model_dir, exist_ok=True)
    module = GeneratorServing(generator, max_images)
    signatures = {"serving_default": module.serving_default, "generate": module.generate,
                  "generate_png": module.generate_png}
    with atomic_directory(final) as tmp:  # the model server polls this folder: never half a version
        tf.saved_model.save(module, tmp, signatures=signatures)
    register_model(base_dir, name, serving_base_path)
    return final


def register_model(base_dir, name, serving_base_path=None) -> str:
    """Add `name` to `base_dir/models.config` (ModelServerConfig text format) if it is not listed.

    Entries already in the file, including hand edits, are kept as they are."""
    path = os.path.join(base_dir, MODELS_CONFIG)
    base_path = os.path.join(serving_base_path or os.path.abspath(base_dir), name)
    entry = f'  config {{\n    name: "{name}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n  }}\n'
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            text = file.read()
        if re.search(r'name:\s*["\']%s["\']' % re.escape(name), text):
            return path
        closing = text.rstrip().rfind("}")
        if "model_config_list" not in text or closing < 0:
            raise UserError(f"{path} is not a model_config_list file; add {name} to it by hand")
        text = text[:closing] + entry + "}\n"
    else:
        text = "model_config_list {\n" + entry + "}\n"
    write_text_atomic(path, text)
    return path
