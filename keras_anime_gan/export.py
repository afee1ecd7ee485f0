"""Export generators as SavedModels laid out for TensorFlow Serving.

`export_generator(gan, base_dir, name)` writes::

    base_dir/models.config                ModelServerConfig (text format) listing the exported models
    base_dir/NAME/VERSION/saved_model.pb  a float32 graph (whatever precision the GAN trained in)
    base_dir/NAME/VERSION/variables/      the generator's weights (a GAN's EMA generator)
    base_dir/NAME/VERSION/assets.extra/tf_serving_warmup_requests
                                          one PredictRequest per signature, run by the server at load
    base_dir/NAME/VERSION/batching_params.pbtxt   only for an export made for batching

This module holds the SavedModel and its signatures (`GeneratorServing`, the server side of a
request); `serving_config` writes TF Serving's files beside it (models.config, the warmup requests,
the batching parameters), and `rest_client` builds and reads REST requests (the client side).

Signatures:

- `serving_default`: `latent` float32 [None, latent_dim] -> `images` uint8 [None, H, W, 3]
- `generate`: `num_images` int32 scalar, `seed` int64 scalar, `truncation_psi` float32 scalar ->
  `images` uint8; stateless random latents (`sampling.seeded_latents`), so the same seed gives
  the same images as `GAN.generate(num_images, seed)` and `keras-anime-gan generate --seeds`.
  With `truncation_cutoff=k` (StyleGAN2-ADA only) psi truncates only the first k style layers
  toward w_avg, as NVIDIA's `truncation_cutoff`; without it, all of them.
- `generate_png`: the same inputs -> `png_bytes` string [None], one PNG per image. The `_bytes`
  suffix makes TF Serving's REST API return them base64-encoded (`{"b64": ...}`).

Guards, inside the graph, so every client (REST, gRPC, warmup) gets INVALID_ARGUMENT with a
message that names the input instead of black or saturated images: a batch (num_images, or the
latent rows) outside 1..max_images, a latent of the wrong width, NaN or inf in the latents or in
truncation_psi, a latent value beyond +-LATENT_LIMIT (1000: N(0, 1) samples stay within +-10), a
psi beyond +-PSI_LIMIT (100: the images saturate long before), and any intermediate or output
value of the generator that is NaN or inf (an overflow that a later tanh, clamp or normalisation
would hide), which names the input it came from (the latents, or truncation_psi). Any psi within
the bound is served: 1 is no truncation, 0 the average face, below 0 or above 1 extrapolates
(NVIDIA's tools allow it too).

max_images is at most what one response can hold (`max_images_limit`): TF Serving's gRPC server
sends messages of up to 2**31 - 1 bytes (it sets gRPC's limit to INT32_MAX, protobuf's own), and
a response holds one image as H*W*3 uint8 bytes, or as a PNG of at most a little more.

Saving goes through Keras's `ExportArchive`, not `tf.saved_model.save` of a module holding the
generator: a Keras 3 variable wraps a `tf.Variable`, and saved as a child of a module it is
written as a second, copied variable, so the model server's loader restored `Variable_N` while
the signatures read the Keras-named originals ("Could not find variable ..."; Keras issue 20096).
The archive saves the `tf.Variable`s that the signatures themselves read.

Versions are written whole (a temporary folder renamed into place: the server polls the folder)
and never overwritten; temporary folders of exports that were killed are removed by the next one.
"""

from __future__ import annotations

import os
import re

import keras
import tensorflow as tf

from .atomic import atomic_directory, remove_stale_directories
from .errors import UserError
from .loading import load_generator
from .sampling import (checked_truncation_cutoff, generate_images, image_size, latent_width, seeded_latents,
                       to_uint8_tensor)
from .rest_client import SIGNATURES
from .serving_config import (BATCHING_PARAMS_FILE, MODELS_CONFIG, read_batching_parameters, read_models_config,
                             register_model, warmup_requests, write_warmup_requests)

LATENT_LIMIT = 1000.0  # |latent value| the generator may see; N(0, 1) samples stay within +-10
PSI_LIMIT = 100.0  # |truncation_psi|; NVIDIA's tools use -1 to 2, and images saturate a few units beyond
RESPONSE_LIMIT = 2**31 - 1  # bytes of one message: protobuf's limit, TF Serving's gRPC server's (INT32_MAX)
GRPC_CLIENT_DEFAULT = 4 * 1024 * 1024  # bytes a gRPC client receives unless it sets max_receive_message_length
_RESPONSE_ENVELOPE = 64 * 1024  # model spec, output names, tensor shapes: a response's bytes besides the images
BATCHED_SIGNATURES = ("serving_default",)


class GeneratorServing:
    """The three serving functions of one float32 generator, in TensorFlow ops only (so the model
    server runs them as they are)."""

    def __init__(self, generator, max_images=256, truncation_cutoff=None):
        self.generator = generator
        self.latent_dim = latent_width(generator)
        self.max_images = int(max_images)
        self.truncation_cutoff = checked_truncation_cutoff(generator, truncation_cutoff)

    def input_signatures(self) -> dict:
        scalars = [
            tf.TensorSpec([], tf.int32, name="num_images"),
            tf.TensorSpec([], tf.int64, name="seed"),
            tf.TensorSpec([], tf.float32, name="truncation_psi"),
        ]
        return {"serving_default": [tf.TensorSpec([None, self.latent_dim], tf.float32, name="latent")],
                "generate": scalars, "generate_png": scalars}

    def serving_default(self, latent):
        latent = self._checked_latent(latent)
        images = _finite_intermediates(lambda: self.generator(latent, training=False), [latent],
                                       ["the generator's values overflow (NaN or inf inside the network) for these "
                                        "latents"])
        return {"images": to_uint8_tensor(images)}

    def generate(self, num_images, seed, truncation_psi):
        return {"images": self._generate(num_images, seed, truncation_psi)}

    def generate_png(self, num_images, seed, truncation_psi):
        images = self._generate(num_images, seed, truncation_psi)
        return {"png_bytes": tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))}

    def _check_count(self, count, what):
        return [
            tf.debugging.assert_greater_equal(count, 1, message=f"{what} must hold at least 1 image"),
            tf.debugging.assert_less_equal(
                count, self.max_images, message=f"{what} may hold at most max_images={self.max_images} images"
            ),
        ]

    def _checked_latent(self, latent):
        # A latent of the wrong width would otherwise fail deep inside the first MatMul.
        width = tf.debugging.assert_equal(
            tf.shape(latent)[1], self.latent_dim, message=f"each latent must have latent_dim={self.latent_dim} values"
        )
        with tf.control_dependencies([width, *self._check_count(tf.shape(latent)[0], "the latent batch")]):
            # NaN would come out as black images, a silent success.
            latent = tf.debugging.assert_all_finite(latent, "latent values must be finite numbers, not NaN or inf")
        # 1e30 would come out as saturated images (or zeros, where the network normalises z), as silent.
        bounded = tf.debugging.assert_less_equal(
            tf.reduce_max(tf.abs(latent)), tf.constant(LATENT_LIMIT, latent.dtype),
            message=f"latent values must lie within +-{LATENT_LIMIT:g} (they are N(0, 1) samples)")
        with tf.control_dependencies([bounded]):
            return tf.identity(latent)

    def _generate(self, num_images, seed, truncation_psi):
        with tf.control_dependencies(self._check_count(num_images, "num_images")):
            psi = tf.debugging.assert_all_finite(truncation_psi,
                                                 "truncation_psi must be a finite number, not NaN or inf")
            # The package's one seed -> latents mapping: the same faces as GAN.generate(n, seed).
            latents = seeded_latents(num_images, self.latent_dim, seed)
        # 3e38 would come out as black images, 1e10 as saturated ones
        bounded = tf.debugging.assert_less_equal(
            tf.abs(psi), PSI_LIMIT, message=f"truncation_psi must lie within +-{PSI_LIMIT:g} (1: no truncation, 0: the "
                                            "average face; a few units past them the images saturate)")
        with tf.control_dependencies([bounded]):
            psi = tf.identity(psi)
        # The generator's own truncation trick (psi < 1 trades variety for quality), in the style layers
        # below NVIDIA's truncation_cutoff when the export has one.
        images = _finite_intermediates(
            lambda: generate_images(self.generator, latents, psi, cutoff=self.truncation_cutoff), [psi],
            ["the generator's values overflow (NaN or inf inside the network) for this truncation_psi:", psi])
        return to_uint8_tensor(images)


def _finite_intermediates(compute, sources, message):
    """`compute()` (TensorFlow ops), guarded: every floating-point value computed from the tensors
    `sources` must be finite, else INVALID_ARGUMENT with `message` (a list of strings and tensors).
    In a graph, as in the serving signatures, every intermediate tensor that depends on `sources` is
    checked, so an overflow that a later tanh, clamp or normalisation would turn into saturated or
    flat images is caught as well as a NaN output; run eagerly, only the result."""
    if tf.executing_eagerly():
        result = compute()
        checked = [result]
    else:
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        result = compute()
        checked = _dependent_floats(graph.get_operations()[start:], sources) or [result]
    finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(tensor)) for tensor in checked]))
    with tf.control_dependencies([tf.debugging.Assert(finite, message, summarize=1)]):
        return tf.identity(result)


def _dependent_floats(operations, sources) -> list:
    """The floating-point outputs of `operations` (in creation order) that depend on `sources`."""
    dependent = {id(tensor) for tensor in sources}
    out = []
    for operation in operations:
        if any(id(tensor) in dependent for tensor in operation.inputs):
            for tensor in operation.outputs:
                dependent.add(id(tensor))
                if tensor.dtype.is_floating:
                    out.append(tensor)
    return out


def response_bytes_per_image(resolution: int) -> int:
    """The most bytes one image of `resolution` px takes in a PredictResponse: its H*W*3 uint8 pixels
    (generate, serving_default) or its PNG (generate_png), whichever is larger, the PNG at its worst
    (incompressible pixels: zlib's deflateBound over the rows and their filter bytes, 8 KiB IDAT
    chunks, signature, IHDR and IEND), plus the string's field header."""
    pixels = resolution * resolution * 3
    rows = resolution * (1 + resolution * 3)
    deflated = rows + (rows >> 12) + (rows >> 14) + (rows >> 25) + 13
    png = 8 + 25 + 12 + deflated + 12 * -(-deflated // 8192) + 6
    return max(pixels, png)


def max_images_limit(resolution: int) -> int:
    """The most images of `resolution` px one response can hold: (RESPONSE_LIMIT - the response's
    other fields) / `response_bytes_per_image`."""
    return (RESPONSE_LIMIT - _RESPONSE_ENVELOPE) // response_bytes_per_image(resolution)


def serving_archive(serving: GeneratorServing, signatures=SIGNATURES):
    """A `keras.export.ExportArchive` with `signatures` of `serving` as endpoints.

    The archive tracks the variables its endpoints read, the underlying `tf.Variable`s: those are
    what the SavedModel's restore op fills and the signatures' graphs read. `track(generator)` is
    left out on purpose: it would also save every Keras variable a second time (as `Variable_N`)."""
    archive = keras.export.ExportArchive()
    specs = serving.input_signatures()
    for name in signatures:
        archive.add_endpoint(name, getattr(serving, name), input_signature=specs[name])
    return archive


# ----------------------------------------------------------------------------- export


def existing_versions(model_dir) -> list[int]:
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def _version_folder(model_dir, version) -> str:
    versions = existing_versions(model_dir)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"version must be a positive integer, got {version!r}")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise UserError(f"{final} exists; versions are never overwritten (omit --version for the next one)")
    return final


def export_generator(gan_or_generator, base_dir="saved_models", name="anime_faces", version=None, *,
                     max_images=256, serving_base_path=None, truncation_cutoff=None,
                     batching_parameters=None) -> str:
    """Write `base_dir/name/version/` and register the model in `base_dir/models.config`.

    version: one above the highest present when None; an existing version is never overwritten.
    serving_base_path: the folder the model server sees `base_dir` as (e.g. /models inside the
    Docker image); defaults to `base_dir`'s absolute path.
    truncation_cutoff: StyleGAN2-ADA only: `generate` truncates only the first this-many style
    layers (NVIDIA's truncation_cutoff); None truncates all.
    batching_parameters: a BatchingParameters text file: export for batched serving (see the
    module docstring). Returns the version folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise UserError(f"model name {name!r} may only hold letters, digits, '_', '.' and '-'")
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise UserError(f"max_images must be an integer >= 1, got {max_images!r}")
    if max_images > max_images_limit(4):  # no resolution fits more
        raise UserError(f"max_images={max_images:,} is more than any response can hold ({max_images_limit(4):,} "
                        f"images of 4 px in 2**31 - 1 bytes)")
    read_models_config(os.path.join(base_dir, MODELS_CONFIG))  # a broken file stops us before a version is written
    batching = None if batching_parameters is None else read_batching_parameters(batching_parameters, max_images)
    generator = load_generator(gan_or_generator)
    resolution = image_size(generator)
    if max_images > max_images_limit(resolution):
        per_image = response_bytes_per_image(resolution)
        raise UserError(
            f"max_images={max_images:,} is more than one response can hold: {resolution} px images take up to "
            f"{per_image:,} bytes each, and TF Serving sends at most 2**31 - 1 bytes per response (protobuf's limit), "
            f"so at most {max_images_limit(resolution):,}; a gRPC client's default 4 MiB holds "
            f"{max(1, (GRPC_CLIENT_DEFAULT - _RESPONSE_ENVELOPE) // per_image):,}")
    serving = GeneratorServing(generator, max_images, truncation_cutoff)
    signatures = SIGNATURES if batching is None else BATCHED_SIGNATURES
    archive = serving_archive(serving, signatures)
    model_dir = os.path.join(base_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    remove_stale_directories(model_dir)  # left behind by exports that were killed
    final = _version_folder(model_dir, version)
    with atomic_directory(final) as tmp:  # the model server polls this folder: never half a version
        archive.write_out(tmp, verbose=False)
        write_warmup_requests(tmp, warmup_requests(serving, name, signatures))
        if batching is not None:
            with open(os.path.join(tmp, BATCHING_PARAMS_FILE), "w", encoding="utf-8") as file:
                file.write(batching)
    register_model(base_dir, name, serving_base_path)
    return final


