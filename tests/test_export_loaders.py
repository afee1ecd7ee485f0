"""export.py's SavedModels the way TensorFlow Serving loads them (issue 24). No model server binary here, so:

- saved_model_cli's own run function (`run_saved_model_with_feed_dict`: a TF1 session, the
  SavedModel's restore op, `Session::Run` on the signature's tensors; what the C++ loader of
  TF Serving does) on every signature, in one fresh process for all exports;
- `tf.saved_model.load` in that fresh process too;
- the warmup file parsed with TF Serving's own protos and each request replayed the same way;
- once, the `saved_model_cli run` command of the issue itself.

Exports: a DCGAN (a functional Keras generator), a StyleGAN2-ADA generator built under
mixed_bfloat16 (a subclassed model, exported as float32, with a truncation cutoff), and the DCGAN
exported for batched serving.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from conftest import global_policy
from keras_anime_gan import create_gan
from keras_anime_gan.export import export_generator
from keras_anime_gan.serving_config import (BATCHING_PARAMS_FILE, SIGNATURES, WARMUP_FILE, batching_parameters_class,
                                            read_batching_parameters)
from keras_anime_gan.loading import load_generator
from keras_anime_gan.precision import reduced_precision_layers
from keras_anime_gan.sampling import latents_for_seed, seeded_latents, to_uint8

ROOT = Path(__file__).resolve().parents[1]
BATCHING_EXAMPLE = ROOT / "docs" / "serving" / "batching_params.pbtxt"
COUNT, SEED, PSI, CUTOFF, MAX_IMAGES = 3, 7, 0.5, 4, 8
KINDS = ("dcgan", "stylegan2-ada")

# Runs in a fresh process: argv[1] a JSON list of jobs, argv[2] where the results go.
LOADER = r"""
import contextlib, io, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli

jobs, results, loaded = json.load(open(sys.argv[1])), [], {}
for job in jobs:
    feed = {key: np.load(path) for key, path in job["inputs"].items()}
    printed = io.StringIO()
    try:
        if job["loader"] == "session":  # `saved_model_cli run`, minus the flag parsing
            with contextlib.redirect_stdout(printed):
                saved_model_cli.run_saved_model_with_feed_dict(job["dir"], "serve", job["signature"], feed,
                                                               job["out"], True)
        else:
            if job["dir"] not in loaded:
                loaded[job["dir"]] = tf.saved_model.load(job["dir"])
            outputs = loaded[job["dir"]].signatures[job["signature"]](**{k: tf.constant(v) for k, v in feed.items()})
            os.makedirs(job["out"])
            for key, value in outputs.items():
                np.save(os.path.join(job["out"], key + ".npy"), value.numpy())
        results.append({"ok": True, "printed": printed.getvalue()})
    except Exception as error:
        results.append({"ok": False, "error": f"{type(error).__name__}: {error}", "printed": printed.getvalue()})
json.dump(results, open(sys.argv[2], "w"))
"""


def _dcgan():
    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    # Untrained, its images are grey whatever the latent; larger kernels make every seed look different.
    for layer in gan.generator.layers:  # by kind, not by Keras's auto-names (they depend on what was built before)
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 6)
    return gan


def _bfloat16_stylegan():
    with global_policy("mixed_bfloat16"):
        gan = create_gan("stylegan2-ada", 16, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8)
    # w_avg away from 0, in the EMA generator that is exported, so "toward w_avg" is not "toward 0".
    index = next(i for i, v in enumerate(gan.generator.variables) if v is gan.generator.w_avg)
    gan.ema_generator.variables[index].assign(np.random.default_rng(0).normal(size=8).astype(np.float32))
    return gan


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("served"))
    dcgan, stylegan = _dcgan(), _bfloat16_stylegan()
    assert reduced_precision_layers(stylegan.ema_generator, ("bfloat16",))  # it computes in bfloat16
    return {
        "dcgan": (dcgan, export_generator(dcgan, base, "faces", max_images=MAX_IMAGES)),
        "stylegan2-ada": (stylegan, export_generator(stylegan, base, "styles", max_images=MAX_IMAGES,
                                                     truncation_cutoff=CUTOFF)),
        "batched": (dcgan, export_generator(dcgan, base, "faces_batched", batching_parameters=BATCHING_EXAMPLE)),
    }


def read_warmup(version):
    logs = []
    for record in tf.data.TFRecordDataset(os.path.join(version, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def _scalars(count, seed, psi):
    return {"num_images": np.int32(count), "seed": np.int64(seed), "truncation_psi": np.float32(psi)}


def _warmup_runs(version):
    """Each warmup request's inputs, decoded from its TensorProtos, for the loader to replay."""
    runs = []
    for index, log in enumerate(read_warmup(version)):
        request = log.predict_log.request
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        runs.append((f"warmup{index}", "session", request.model_spec.signature_name, inputs))
    return runs


def _requests(gan, version):
    """(label, loader, signature, inputs) for one export."""
    latents = latents_for_seed(COUNT, gan.latent_dim, SEED)
    runs = []
    for loader in ("session", "saved_model"):
        runs += [("serving_default", loader, "serving_default", {"latent": latents}),
                 ("generate", loader, "generate", _scalars(COUNT, SEED, 1.0)),
                 ("generate_png", loader, "generate_png", _scalars(COUNT, SEED, 1.0)),
                 ("generate_psi", loader, "generate", _scalars(COUNT, SEED, PSI))]
    runs += _warmup_runs(version)
    bad_latents = latents.copy()
    bad_latents[1, 2] = np.inf
    runs += [("nan_psi", "session", "generate", _scalars(COUNT, SEED, np.nan)),
             ("inf_latent", "session", "serving_default", {"latent": bad_latents}),
             ("no_images", "session", "generate_png", _scalars(0, SEED, 1.0))]
    return runs


@pytest.fixture(scope="module")
def served(exports, tmp_path_factory):
    """{(kind, loader, label): {"ok", "error", "printed", "outputs"}} for every run of every export,
    all in one fresh process (TensorFlow's start-up is most of the time)."""
    work = tmp_path_factory.mktemp("runs")
    jobs, keys = [], []
    for kind, (gan, version) in exports.items():
        runs = _warmup_runs(version) if kind == "batched" else _requests(gan, version)
        for label, loader, signature, inputs in runs:
            folder = work / f"{kind}-{loader}-{label}"
            folder.mkdir()
            paths = {}
            for key, value in inputs.items():
                paths[key] = str(folder / f"in_{key}.npy")
                np.save(paths[key], value)
            jobs.append({"dir": version, "loader": loader, "signature": signature, "inputs": paths,
                         "out": str(folder / "out")})
            keys.append((kind, loader, label))
    (work / "jobs.json").write_text(json.dumps(jobs))
    process = subprocess.run([sys.executable, "-c", LOADER, str(work / "jobs.json"), str(work / "results.json")],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    results = {}
    for key, job, result in zip(keys, jobs, json.loads((work / "results.json").read_text())):
        out = Path(job["out"])
        result["outputs"] = {p.stem: np.load(p, allow_pickle=True) for p in out.glob("*.npy")} if out.is_dir() else {}
        results[key] = result
    return results


def _ok(served, key):
    result = served[key]
    assert result["ok"], (key, result.get("error", "")[-2000:])
    return result


def _decode_pngs(pngs):
    return np.stack([np.asarray(Image.open(io.BytesIO(data))) for data in pngs])


@pytest.mark.parametrize("kind", KINDS)
def test_every_signature_serves_through_the_model_servers_loader(exports, served, kind):
    gan, _ = exports[kind]
    size = 32 if kind == "dcgan" else 16
    expected = gan.generate(COUNT, seed=SEED)
    assert np.abs(expected[0].astype(int) - expected[1]).mean() > 5  # the seeds' faces differ: pixels are a real check
    for label in ("serving_default", "generate"):
        result = _ok(served, (kind, "session", label))
        assert "Result for output key images:\n[[[[" in result["printed"]
        images = result["outputs"]["images"]
        assert images.dtype == np.uint8 and images.shape == (COUNT, size, size, 3)
        assert np.abs(images.astype(int) - expected).max() <= 1, label  # the latents of GAN.generate(n, seed)
    png = _ok(served, (kind, "session", "generate_png"))
    # NumPy prints bytes with either quote, as their content decides.
    assert any(f"Result for output key png_bytes:\n[b{quote}\\x89PNG" in png["printed"] for quote in "'\"")
    assert png["outputs"]["png_bytes"].shape == (COUNT,)
    np.testing.assert_array_equal(_decode_pngs(png["outputs"]["png_bytes"]),
                                  served[(kind, "session", "generate")]["outputs"]["images"])
    if kind == "dcgan":  # truncation on z for the classic family
        truncated = _ok(served, (kind, "session", "generate_psi"))["outputs"]["images"]
        assert np.abs(truncated.astype(int) - gan.generate(COUNT, seed=SEED, truncation=PSI)).max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_fresh_process_tf_saved_model_load_gives_the_same_pixels(served, kind):
    for label in ("serving_default", "generate", "generate_png", "generate_psi"):
        session = _ok(served, (kind, "session", label))["outputs"]
        loaded = _ok(served, (kind, "saved_model", label))["outputs"]
        assert session.keys() == loaded.keys() and session
        for key in session:
            np.testing.assert_array_equal(loaded[key], session[key])


@pytest.mark.parametrize("kind", KINDS)
def test_warmup_requests_are_tf_serving_prediction_logs_that_run(exports, served, kind):
    gan, version = exports[kind]
    logs = read_warmup(version)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == list(SIGNATURES)
    meta_graph = _saved_model(version).meta_graphs[0]
    for index, log in enumerate(logs):
        request = log.predict_log.request
        signature = meta_graph.signature_def[request.model_spec.signature_name]
        assert request.model_spec.name == ("faces" if kind == "dcgan" else "styles")
        assert set(request.inputs) == set(signature.inputs)
        for key, proto in request.inputs.items():
            assert proto.dtype == signature.inputs[key].dtype, key
        if request.model_spec.signature_name == "serving_default":
            assert tf.make_ndarray(request.inputs["latent"]).shape == (1, gan.latent_dim)
        else:
            assert tf.make_ndarray(request.inputs["num_images"]) == 1
        outputs = _ok(served, (kind, "session", f"warmup{index}"))["outputs"]
        assert len(next(iter(outputs.values()))) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_fail_in_the_loader_with_a_message_naming_them(served, kind):
    for label, message in (("nan_psi", "truncation_psi must be a finite number"),
                           ("inf_latent", "latent values must be finite numbers"),
                           ("no_images", "num_images must hold at least 1 image")):
        result = served[(kind, "session", label)]
        assert not result["ok"] and message in result["error"], (label, result)


def test_the_truncation_cutoff_is_baked_into_generate(exports, served):
    gan, _ = exports["stylegan2-ada"]
    generator = load_generator(gan)
    latents = seeded_latents(COUNT, gan.latent_dim, SEED)
    served_images = _ok(served, ("stylegan2-ada", "session", "generate_psi"))["outputs"]["images"]
    cut = to_uint8(generator.truncated(latents, PSI, cutoff=CUTOFF).numpy())
    assert np.abs(served_images.astype(int) - cut).max() <= 1
    for other in (generator.truncated(latents, PSI), generator(latents)):  # all layers truncated; none
        assert np.abs(served_images.astype(int) - to_uint8(other.numpy())).mean() > 1


def _saved_model(version):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(Path(version, "saved_model.pb").read_bytes())
    return proto


def test_a_bfloat16_generator_exports_a_float32_graph(exports):
    meta_graph = _saved_model(exports["stylegan2-ada"][1]).meta_graphs[0]
    nodes = list(meta_graph.graph_def.node) + [n for f in meta_graph.graph_def.library.function for n in f.node_def]
    dtypes = set()
    for node in nodes:
        for value in node.attr.values():
            dtypes.add(value.type)
            dtypes.update(value.list.type)
    assert tf.float32.as_datatype_enum in dtypes
    assert not dtypes & {tf.bfloat16.as_datatype_enum, tf.float16.as_datatype_enum}


def test_the_saved_model_cli_command_of_issue_24(exports, tmp_path):
    gan, version = exports["dcgan"]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli, "run", "--dir", version, "--tag_set", "serve", "--signature_def", "generate",
               "--input_exprs", f"num_images=2;seed={SEED};truncation_psi=1.0", "--outdir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Result for output key images:" in result.stdout
    images = np.load(tmp_path / "images.npy")
    assert images.shape == (2, 32, 32, 3) and np.abs(images.astype(int) - gan.generate(2, seed=SEED)).max() <= 1


# ----------------------------------------------------------------------------- batching


def test_the_batching_example_parses_as_batching_parameters_and_fits_max_images():
    from google.protobuf import text_format

    params = text_format.Parse(BATCHING_EXAMPLE.read_text(), batching_parameters_class()())
    assert params.max_batch_size.value == 64 and list(params.allowed_batch_sizes) == [8, 16, 32, 64]
    assert params.batch_timeout_micros.value > 0 and params.num_batch_threads.value >= 1
    read_batching_parameters(BATCHING_EXAMPLE, 256)  # the default --max-images
    from keras_anime_gan.errors import UserError

    with pytest.raises(UserError, match="batches of 64 latents, more than max_images=32"):
        read_batching_parameters(BATCHING_EXAMPLE, 32)


@pytest.mark.parametrize("text, message", [
    ("batch_timeout_micros { value: 0 }\n", "sets no max_batch_size .* set it to at most 256"),
    ("max_batch_size: 64\n", "is not a BatchingParameters text proto .*max_batch_size"),
    ("max_batch_size { value: 64 }\nmax_batch_sizes { value: 8 }\n", "is not a BatchingParameters text proto"),
    ("max_batch_size { value: 64 }\nallowed_batch_sizes: 16\nallowed_batch_sizes: 8\n",
     r"allowed_batch_sizes must increase and end at max_batch_size=64, got \[16, 8\]"),
    ("max_batch_size { value: 64 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n", "end at max_batch_size=64"),
    ("max_batch_size { value: 64 }\nenable_large_batch_splitting { value: true }\n"
     "max_execution_batch_size { value: 512 }\n", "batches of 512 latents, more than max_images=256"),
])
def test_batching_parameters_that_would_fail_on_the_server_are_refused_at_export(tmp_path, text, message):
    from keras_anime_gan.errors import UserError

    path = tmp_path / "batching.pbtxt"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_batching_parameters(path, 256)


def test_an_export_for_batching_serves_latents_only_and_carries_its_parameters(exports, served):
    _, version = exports["batched"]
    signatures = {name for name in _saved_model(version).meta_graphs[0].signature_def if not name.startswith("__")}
    assert signatures == {"serving_default"}
    assert Path(version, BATCHING_PARAMS_FILE).read_text() == BATCHING_EXAMPLE.read_text()
    logs = read_warmup(version)  # scalar warmup requests would fail the load behind the batcher
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == ["serving_default"]
    assert _ok(served, ("batched", "session", "warmup0"))["outputs"]["images"].shape == (1, 32, 32, 3)


def test_the_client_helper_refuses_what_the_served_model_refuses():
    from keras_anime_gan.rest_client import predict_request

    with pytest.raises(ValueError, match="truncation_psi must be finite numbers"):
        predict_request("generate", num_images=2, seed=1, truncation_psi=float("nan"))
    latents = np.zeros((2, 16), np.float32)
    latents[1, 3] = np.inf
    with pytest.raises(ValueError, match="latents must be finite numbers"):
        predict_request("serving_default", latents=latents)
    assert predict_request("generate", num_images=2, seed=1, truncation_psi=-0.5)["inputs"]["truncation_psi"] == -0.5
