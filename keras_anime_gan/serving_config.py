"""TensorFlow Serving's files beside an export: `models.config`, the warmup requests and the batching
parameters. `export.export_generator` writes them; each can be used alone.

Warmup: the server replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`PredictionLog`s, TF Serving's own protos) before it serves a version, one 1-image request per
signature, so the first client does not pay for lazy initialisation; a failing request fails the load.

models.config is read and written through TF Serving's ModelServerConfig proto: an existing file
is parsed first (one that does not parse stops the export, naming the file and the parse error),
a model already listed is left as it is, a new one is inserted as text so hand edits and comments
stay, and the result is checked to parse to exactly the old entries plus the new one.

Batching: the server can batch only `serving_default` (batched latents); `generate` and
`generate_png` take scalars, which its batcher refuses ("input tensors must have at least one
dimension"), and it batches every signature of a batched model, warmup included. So
`batching_parameters=FILE` makes an export for batched serving: `serving_default` alone, with
FILE (BatchingParameters, text format; `docs/serving/batching_params.pbtxt`) copied in as the
`batching_params.pbtxt` that `--enable_per_model_batching_parameters` reads. The batches the
server runs must fit max_images, which is checked.
"""

from __future__ import annotations

import os
import posixpath

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from .atomic import write_text_atomic
from .errors import UserError
from .rest_client import SIGNATURES
from .sampling import seeded_latents

MODELS_CONFIG = "models.config"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")  # where TF Serving looks
BATCHING_PARAMS_FILE = "batching_params.pbtxt"  # the name --enable_per_model_batching_parameters reads
WARMUP_SEED = 0


# ----------------------------------------------------------------------------- warmup


def warmup_requests(serving, name, signatures=SIGNATURES) -> list:
    """One `PredictionLog` per signature of `serving` (an `export.GeneratorServing`), each asking for one
    image (TF Serving's warmup format)."""
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
