"""Export generators as SavedModels laid out for TensorFlow Serving.

`export_generator(gan, base_dir, name)` writes::

    base_dir/models.config                ModelServerConfig (text format) listing the exported models
    base_dir/NAME/VERSION/saved_model.pb  a float32 graph (whatever precision the GAN trained in)
    base_dir/NAME/VERSION/variables/      the generator's weights (a GAN's EMA generator)
    base_dir/NAME/VERSION/assets.extra/tf_serving_warmup_requests
                                          one PredictRequest per signature, run by the server at load
    base_dir/NAME/VERSION/batching_params.pbtxt   only for an export made for batching (see below)

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
message that names the input instead of black images: a batch (num_images, or the latent rows)
outside 1..max_images, a latent of the wrong width, NaN or inf in the latents or in
truncation_psi. Any finite psi is served: 1 is no truncation, 0 the average face, below 0 or
above 1 extrapolates (NVIDIA's tools allow it too).

Warmup: the server replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`PredictionLog`s, TF Serving's own protos) before it serves a version, one 1-image request per
signature, so the first client does not pay for lazy initialisation; a failing request fails the load.

models.config is read and written through TF Serving's ModelServerConfig proto: an existing file
is parsed first (one that does not parse stops the export, naming the file and the parse error),
a model already listed is left as it is, a new one is inserted as text so hand edits and comments
stay, and the result is checked to parse to exactly the old entries plus the new one.

Saving goes through Keras's `ExportArchive`, not `tf.saved_model.save` of a module holding the
generator: a Keras 3 variable wraps a `tf.Variable`, and saved as a child of a module it is
written as a second, copied variable, so the model server's loader restored `Variable_N` while
the signatures read the Keras-named originals ("Could not find variable ..."; Keras issue 20096).
The archive saves the `tf.Variable`s that the signatures themselves read.

Batching: the server can batch only `serving_default` (batched latents); `generate` and
`generate_png` take scalars, which its batcher refuses ("input tensors must have at least one
dimension"), and it batches every signature of a batched model, warmup included. So
`batching_parameters=FILE` makes an export for batched serving: `serving_default` alone, with
FILE (BatchingParameters, text format; `docs/serving/batching_params.pbtxt`) copied in as the
`batching_params.pbtxt` that `--enable_per_model_batching_parameters` reads. The batches the
server runs must fit max_images, which is checked.

Versions are written whole (a temporary folder renamed into place: the server polls the folder)
and never overwritten; temporary folders of exports that were killed are removed by the next one.
"""

from __future__ import annotations

import os
import posixpath
import re

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from .atomic import atomic_directory, remove_stale_directories, write_text_atomic
from .errors import UserError
from .loading import load_generator
from .sampling import checked_truncation_cutoff, generate_images, latent_width, seeded_latents, to_uint8_tensor

MODELS_CONFIG = "models.config"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")  # where TF Serving looks
BATCHING_PARAMS_FILE = "batching_params.pbtxt"  # the name --enable_per_model_batching_parameters reads
SIGNATURES = ("serving_default", "generate", "generate_png")
BATCHED_SIGNATURES = ("serving_default",)
WARMUP_SEED = 0


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
        return {"images": to_uint8_tensor(self.generator(self._checked_latent(latent), training=False))}

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
            return tf.debugging.assert_all_finite(latent, "latent values must be finite numbers, not NaN or inf")

    def _generate(self, num_images, seed, truncation_psi):
        with tf.control_dependencies(self._check_count(num_images, "num_images")):
            psi = tf.debugging.assert_all_finite(truncation_psi,
                                                 "truncation_psi must be a finite number, not NaN or inf")
            # The package's one seed -> latents mapping: the same faces as GAN.generate(n, seed).
            latents = seeded_latents(num_images, self.latent_dim, seed)
        # The generator's own truncation trick (psi < 1 trades variety for quality), in the style layers
        # below NVIDIA's truncation_cutoff when the export has one.
        return to_uint8_tensor(generate_images(self.generator, latents, psi, cutoff=self.truncation_cutoff))


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


# ----------------------------------------------------------------------------- warmup


def warmup_requests(serving: GeneratorServing, name, signatures=SIGNATURES) -> list:
    """One `PredictionLog` per signature, each asking for one image (TF Serving's warmup format)."""
    generate = {"num_images": np.int32(1), "seed": np.int64(WARMUP_SEED), "truncation_psi": np.float32(1.0)}
    inputs = {"serving_default": {"latent": seeded_latents(1, serving.latent_dim, WARMUP_SEED).numpy()},
              "generate": generate, "generate_png": generate}
    logs = []
    for signature in signatures:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = signature
        for key, value in inputs[signature].items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_requests(version_dir, logs) -> str:
    """Write `logs` as the TFRecord file TF Serving replays when it loads the version."""
    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


# ----------------------------------------------------------------------------- batching parameters

# TF Serving's BatchingParameters (tensorflow_serving/servables/tensorflow/session_bundle_config.proto),
# which tensorflow-serving-api does not ship: field, number, wrapper type (None: repeated int64 /
# plain bool).
_BATCHING_FIELDS = (
    ("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
    ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
    ("thread_pool_name", 5, "StringValue"), ("allowed_batch_sizes", 6, None), ("pad_variable_length_inputs", 7, None),
    ("enable_large_batch_splitting", 8, "BoolValue"), ("max_execution_batch_size", 9, "Int64Value"),
)


def batching_parameters_class():
    """The BatchingParameters message class, built from the fields above."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(name="keras_anime_gan_batching.proto", package="tensorflow.serving",
                                               dependency=[wrappers.name], syntax="proto3")
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper in _BATCHING_FIELDS:
        if wrapper is not None:
            message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                              type_name=f".google.protobuf.{wrapper}")
        elif name == "allowed_batch_sizes":
            message.field.add(name=name, number=number, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
        else:
            message.field.add(name=name, number=number, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def read_batching_parameters(path, max_images) -> str:
    """The text of a BatchingParameters file, checked to parse and to fit max_images; UserError otherwise."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise UserError(f"cannot read the batching parameters {path}: {error.strerror}") from None
    try:
        params = text_format.Parse(text, batching_parameters_class()())
    except text_format.ParseError as error:
        raise UserError(f"{path} is not a BatchingParameters text proto ({error}); see "
                        "docs/serving/batching_params.pbtxt") from None
    if not params.HasField("max_batch_size"):
        raise UserError(f"{path} sets no max_batch_size (the server's default, 1000, exceeds max_images="
                        f"{max_images}): set it to at most {max_images}")
    largest = params.max_execution_batch_size.value if params.enable_large_batch_splitting.value else 0
    largest = largest or params.max_batch_size.value
    if largest > max_images:
        raise UserError(f"{path} lets the server run batches of {largest} latents, more than max_images={max_images}: "
                        "lower max_batch_size (max_execution_batch_size) or raise --max-images")
    sizes = list(params.allowed_batch_sizes)
    if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != params.max_batch_size.value):
        raise UserError(f"{path}: allowed_batch_sizes must increase and end at max_batch_size="
                        f"{params.max_batch_size.value}, got {sizes}")
    return text


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
    if max_images < 1:
        raise UserError(f"max_images must be >= 1, got {max_images}")
    read_models_config(os.path.join(base_dir, MODELS_CONFIG))  # a broken file stops us before a version is written
    batching = None if batching_parameters is None else read_batching_parameters(batching_parameters, max_images)
    serving = GeneratorServing(load_generator(gan_or_generator), max_images, truncation_cutoff)
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


# ----------------------------------------------------------------------------- models.config


def read_models_config(path):
    """(text, ModelServerConfig) of a models.config; ("", an empty config) where there is none yet.
    UserError, naming the file, when it does not parse or lists no model_config_list."""
    config = model_server_config_pb2.ModelServerConfig()
    if not os.path.exists(path):
        return "", config
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise UserError(f"{path} is not a valid ModelServerConfig text proto ({error}); fix it, or move it away "
                        "to start a new one") from None
    if config.HasField("custom_model_config"):
        raise UserError(f"{path} holds a custom_model_config, not a model_config_list; add the model to it by hand")
    return text, config


def register_model(base_dir, name, serving_base_path=None) -> str:
    """Add `name` to `base_dir/models.config` (ModelServerConfig text format) if it is not listed.

    The file is read and checked with the ModelServerConfig proto; a new entry is inserted into
    its text, so the entries already there, hand edits and comments included, stay as they are."""
    path = os.path.join(base_dir, MODELS_CONFIG)
    text, config = read_models_config(path)
    if any(entry.name == name for entry in config.model_config_list.config):
        return path
    base_path = (posixpath.join(serving_base_path, name) if serving_base_path
                 else os.path.join(os.path.abspath(base_dir), name))
    entry = model_server_config_pb2.ModelConfig(name=name, base_path=base_path, model_platform="tensorflow")
    updated = _text_with_entry(text, config, entry)
    expected = model_server_config_pb2.ModelServerConfig()
    expected.CopyFrom(config)
    expected.model_config_list.config.append(entry)
    if text_format.Parse(updated, model_server_config_pb2.ModelServerConfig()) != expected:
        raise UserError(f"cannot add {name} to {path} without changing its other entries; add it by hand: "
                        f"config {{ {text_format.MessageToString(entry, as_one_line=True)} }}")
    write_text_atomic(path, updated)
    return path


def _text_with_entry(text, config, entry) -> str:
    block = "  config {\n" + text_format.MessageToString(entry, indent=4) + "  }\n"
    if not config.HasField("model_config_list"):  # a new file, or one of comments only
        separator = "\n" if text and not text.endswith("\n") else ""
        return f"{text}{separator}model_config_list {{\n{block}}}\n"
    end = _last_closing_delimiter(text)
    return text[:end] + block + text[end:]


def _last_closing_delimiter(text) -> int:
    """Index of the last `}` or `>` outside comments and strings. A ModelServerConfig that parsed
    and holds model_config_list has no other top-level field, so this closes model_config_list."""
    last, quote, index = -1, None, 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char in (quote, "\n"):
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            index = text.find("\n", index)
            if index < 0:
                break
        elif char in "}>":
            last = index
        index += 1
    return last
