import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import keras_anime_gan  # noqa: E402

keras_anime_gan.quiet_tensorflow_startup()  # the command line's quiet start-up (the import above set oneDNN's default)

ROOT = Path(__file__).resolve().parents[1]
# The working folder of every test and of the processes tests start: never the checkout, whose runs/
# may hold what the README's first command (or the user) left there.
SCRATCH = Path(tempfile.mkdtemp(prefix="keras-anime-gan-tests-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
SHARED_FACES = Path(os.environ.get("ANIME_FACES_DIR", ROOT.parent / "shared" / "data" / "anime-faces-96"))
# NVIDIA StyleGAN2-ADA snapshots and NVIDIA's outputs for them (see that folder's README).
NVIDIA_FIXTURES = Path(os.environ.get("NVIDIA_STYLEGAN2_ADA_DIR", ROOT.parent / "shared" / "nvidia-stylegan2-ada"))


# The long proofs (13 s or more each on a 2-core AMD EPYC; the slowest 205 s): the README's test command
# leaves them out (pytest.ini: -m "not slow") and `.ci/run` runs them right after it (-m slow).
SLOW = {
    "test_cli.py::test_resume_takes_the_saved_configuration_and_changes_only_what_is_safe",
    "test_edit.py::test_projecting_a_generated_face_recovers_it",
    "test_explore.py::test_cli_generate_evaluate_and_explore",
    "test_export.py::test_cli_export_from_a_run_folder",
    "test_gans_classic.py::test_every_gan_trains_and_reloads",
    "test_gans_classic.py::test_gan_moves_toward_a_2d_mixture",
    "test_gans_classic.py::test_two_replica_mirrored_step_equals_one_replica_step",
    "test_gans_lightweight_model.py::test_a_run_trains_resumes_and_exports",
    "test_gans_stylegan2_augment.py::test_r1_through_augmentation_compiles_under_xla_for_batches_of_unknown_size",
    "test_gans_stylegan2_model.py::test_fit_watches_p_between_steps",
    "test_gans_stylegan2_model.py::test_logs_show_the_current_p_and_r_t",
    "test_gans_stylegan2_model.py::test_micro_batches_make_the_whole_batchs_update",
    "test_gans_stylegan2_model.py::test_micro_batches_under_xla_on_a_cpu_unroll_their_passes",
    "test_gans_stylegan2_model.py::test_one_step_runs_every_phase_and_moves_ada_p",
    "test_gans_stylegan2_model.py::test_tiny_stylegan2_ada_moves_toward_the_real_faces",
    "test_gans_stylegan2_model.py::test_two_replicas_train_stylegan2_ada_as_one_replica_does",
    "test_gans_stylegan2_training.py::test_resume_restores_every_piece_of_state_and_counters_go_on",
    "test_gans_stylegan2_training.py::test_export_has_the_three_signatures_and_truncates_in_w",
    "test_gans_stylegan2_training.py::test_trains_on_the_converters_nvidia_layout_directly",
    "test_multiworker.py::test_two_stylegan2_workers_keep_identical_weights_ada_p_and_path_length_mean",
    "test_multiworker.py::test_two_workers_on_loopback_train_to_identical_weights",
    "test_nvidia_runs.py::test_an_imported_run_is_generated_from_and_trained_on_like_any_run",
    "test_nvidia_runs.py::test_init_from_starts_a_new_run_from_the_networks_with_fresh_training_state",
    "test_precision.py::test_a_run_resumes_in_another_precision",
    "test_precision.py::test_checkpoints_restore_across_precisions",
    "test_precision.py::test_stylegan2_ada_trains_in_reduced_precision_with_every_phase",
    "test_showcase.py::test_tiny_run_writes_figures_and_sane_numbers",
    "test_studio.py::test_in_a_real_browser",
    "test_training.py::test_a_kill_between_checkpoint_and_history_row_loses_no_epoch",
    "test_training.py::test_a_run_folder_from_before_the_loop_redesign_is_refused_in_one_line_and_still_generates",
    "test_training.py::test_a_run_folder_holds_one_process_and_a_stopped_run_can_generate",
    "test_training.py::test_a_run_that_goes_nan_fails_keeps_its_last_good_checkpoint_and_resumes_from_it",
    "test_training.py::test_cli_run_leaves_every_artifact",
    "test_training.py::test_sigkill_after_first_checkpoint_then_resume_continues_from_its_state",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if f"{Path(str(item.fspath)).name}::{item.originalname}" in SLOW:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _work_outside_the_checkout(tmp_path_factory, monkeypatch):
    """Relative paths (the default --out runs/..., tfrecords/, saved_models/) land in a fresh folder."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def shared_faces_dir() -> Path:
    if not SHARED_FACES.is_dir():
        pytest.skip(f"real faces not found at {SHARED_FACES} (set ANIME_FACES_DIR to the anime-faces-96 folder)")
    return SHARED_FACES


@pytest.fixture
def faces_dir(shared_faces_dir, tmp_path) -> Path:
    """40 real faces copied into a temporary folder (the shared folder is never written to)."""
    target = tmp_path / "faces"
    target.mkdir()
    for index in range(40):
        shutil.copy(shared_faces_dir / f"{index}.jpg", target / f"{index}.jpg")
    return target


def run_cli(*args, check=True, env=None, timeout=300):
    """`python -m keras_anime_gan ARGS` in a fresh process; returns the CompletedProcess."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    result = subprocess.run(
        [sys.executable, "-m", "keras_anime_gan", *map(str, args)],
        capture_output=True, text=True, cwd=SCRATCH, env=environment, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def tiny_config(out, **values):
    """The TrainConfig of a tiny run (32 px DCGAN of width 8, latent 16, batch 8, 2 epochs of 3 steps on
    64 synthetic faces), changed by `values`: run-level options by their names, any other name a
    model option."""
    from keras_anime_gan.config import TrainConfig

    run_fields = set(TrainConfig.__dataclass_fields__)
    values = {"resolution": 32, "width": 8, "latent_dim": 16, "batch_size": 8, "epochs": 2, "steps_per_epoch": 3,
              "synthetic_images": 64, "metric_images": 32, "verbose": 0, "jit": False, **values}
    options = {key: values.pop(key) for key in list(values) if key not in run_fields}
    options = {key: value for key, value in options.items() if value is not None}  # None: not an option here
    return TrainConfig.from_json({"out": str(out), **values, "model_options": {**options, **values.pop("model_options", {})}})


@contextlib.contextmanager
def small_tmpfs(folder, size):
    """A tmpfs of `size` (e.g. "1500k") mounted on the new folder `folder` for the `with` block: a real
    full disk. Skips the test where mounting is not permitted (the injected-ENOSPC tests cover the
    same paths)."""
    folder = Path(folder)
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}); the injected "
                    "ENOSPC test covers the same path")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@contextlib.contextmanager
def global_policy(name):
    """Keras's global dtype policy set to `name` ("mixed_bfloat16", ...) for the `with` block."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def mlp(inputs, outputs, width=16, depth=1, final=None):
    """A small dense network (inputs,) -> (outputs,): the toy generators and discriminators on 2-D points."""
    import keras

    x = h = keras.Input((inputs,))
    for _ in range(depth):
        h = keras.layers.Dense(width, activation="relu")(h)
    return keras.Model(x, keras.layers.Dense(outputs, activation=final)(h))


def dense_generator(latent_dim=4, size=4, scale=None):
    """A one-layer generator latent -> (size, size, 3) tanh images (`scale`: the kernel's normal std,
    large for pixels that follow the latent closely)."""
    import keras

    z = keras.Input((latent_dim,))
    initializer = "glorot_uniform" if scale is None else keras.initializers.RandomNormal(0, scale)
    pixels = keras.layers.Dense(size * size * 3, kernel_initializer=initializer)(z)
    return keras.Model(z, keras.layers.Activation("tanh")(keras.layers.Reshape((size, size, 3))(pixels)))


def run_cli_in_process(*args, check=True):
    """The command line in this process (TensorFlow is loaded already): its exit status and output."""
    import contextlib
    import io
    import types

    from keras_anime_gan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in args])
    if check and status != 0:
        raise AssertionError(f"exit {status}: {err.getvalue()}")
    return types.SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


# --- TF Serving's REST JSON rules (https://www.tensorflow.org/tfx/serving/api_rest), emulated ---


def rest_request_to_tensors(body, signature):
    """Row format: `instances` is a list with one entry per example (an object per example when the
    signature has several inputs). Columnar: `inputs` maps input names to whole tensors (or is the
    tensor itself for a single input). Values are cast to the signature's dtypes."""
    import numpy as np
    import tensorflow as tf

    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        if isinstance(rows[0], dict):
            values = {name: [row[name] for row in rows] for name in specs}
        else:
            (name,) = specs
            values = {name: rows}
    else:
        inputs = body["inputs"]
        values = inputs if isinstance(inputs, dict) else {next(iter(specs)): inputs}
    return {name: tf.constant(np.asarray(values[name]), dtype=spec.dtype) for name, spec in specs.items()}


def rest_tensors_to_response(outputs, row_format):
    """Row format answers {"predictions": [...]}, columnar {"outputs": ...}. DT_STRING outputs whose
    name ends in `_bytes` are written as {"b64": ...}."""

    import base64

    def jsonable(name, tensor):
        array = tensor.numpy()
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(item).decode()} for item in array.ravel()]
        return array.tolist()

    converted = {name: jsonable(name, tensor) for name, tensor in outputs.items()}
    if row_format:
        if len(converted) == 1:
            return {"predictions": next(iter(converted.values()))}
        count = len(next(iter(converted.values())))
        return {"predictions": [{name: values[i] for name, values in converted.items()} for i in range(count)]}
    return {"outputs": next(iter(converted.values())) if len(converted) == 1 else converted}
