import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import keras_anime_gan  # noqa: E402

keras_anime_gan.quiet_tensorflow_startup()  # before TensorFlow loads: oneDNN kernels on, as the command line has them

ROOT = Path(__file__).resolve().parents[1]
SHARED_FACES = Path(os.environ.get("ANIME_FACES_DIR", ROOT.parent / "shared" / "data" / "anime-faces-96"))
# NVIDIA StyleGAN2-ADA snapshots and NVIDIA's outputs for them (see that folder's README).
NVIDIA_FIXTURES = Path(os.environ.get("NVIDIA_STYLEGAN2_ADA_DIR", ROOT.parent / "shared" / "nvidia-stylegan2-ada"))


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
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=timeout,
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
