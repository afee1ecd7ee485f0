"""MultiWorkerMirroredStrategy for real: two worker processes talking over 127.0.0.1 only.

Run as a script (`test_multiworker.py --stylegan2-worker OUT.npz`, with TF_CONFIG set) it is one
StyleGAN2-ADA worker: a few steps of the tiny model, then every variable saved to OUT.npz.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from conftest import ROOT, SCRATCH


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def _run_workers(tmp_path, *extra, command=None):
    """Two workers of `command(index)` (default: train.py with `extra`); [(returncode, stdout, stderr)]."""
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2")
        if command is None:
            argv = [sys.executable, str(ROOT / "train.py"), "--strategy", "multi-worker", "--resolution", "32",
                    "--width", "8", "--latent-dim", "16", "--synthetic-images", "64", "--epochs", "2",
                    "--steps-per-epoch", "3", "--out", str(tmp_path / f"worker{index}"), "--quiet", *extra]
        else:
            argv = command(index)
        processes.append(subprocess.Popen(argv, cwd=SCRATCH, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=400)
        results.append((process.returncode, stdout, stderr))
    return results


def test_two_workers_on_loopback_train_to_identical_weights(tmp_path):
    results = _run_workers(tmp_path, "--batch-size", "8")
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert "MultiWorkerMirroredStrategy: global batch 8 = 2 replica(s) x 4" in stdout
        assert json.loads(stdout.strip().splitlines()[-1])["g_updates"] == 6
    chief = keras.models.load_model(tmp_path / "worker0" / "generator.keras")
    other = keras.models.load_model(tmp_path / "worker1" / ".worker-1" / "generator.keras")
    chief_weights, other_weights = chief.get_weights(), other.get_weights()
    assert len(chief_weights) == len(other_weights) > 0
    for a, b in zip(chief_weights, other_weights):
        np.testing.assert_array_equal(a, b)


def test_batch_not_divisible_by_the_replicas_is_refused(tmp_path):
    for code, _, stderr in _run_workers(tmp_path, "--batch-size", "7"):
        assert code == 2 and "not divisible by the 2 replicas" in stderr


def test_two_stylegan2_workers_keep_identical_weights_ada_p_and_path_length_mean(tmp_path):
    """StyleGAN2-ADA's own state under MultiWorkerMirroredStrategy: R1, path length and ADA's
    adjustment run on both steps; each worker keeps its own copy of pl_mean, p and the sign
    counters (aggregation only_first_replica), which stay equal only because what updates them is
    all-reduced."""
    outputs = [tmp_path / f"stylegan2-worker{index}.npz" for index in range(2)]
    results = _run_workers(tmp_path, command=lambda index: [sys.executable, str(Path(__file__).resolve()),
                                                             "--stylegan2-worker", str(outputs[index])])
    reports = []
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    for report in reports:
        assert report["phase_steps"] == 2 and report["d_iterations"] == report["g_iterations"] == 4  # main + reg, x2
        assert report["logs"]["r1"] > 0 and report["logs"]["pl"] > 0
        assert report["ada_p"] != 0.3 and 0.0 < report["ada_p"] < 1.0  # ADA moved p, twice
    assert reports[0]["ada_p"] == reports[1]["ada_p"] and reports[0]["pl_mean"] == reports[1]["pl_mean"] > 0
    chief, other = np.load(outputs[0]), np.load(outputs[1])
    assert chief.files == other.files and len(chief.files) > 100  # the GAN's variables and both optimizers'
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)


def _stylegan2_worker(out):
    """One worker of the StyleGAN2-ADA test: 2 steps of 8 px tiny StyleGAN2-ADA, global batch 8."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # first: it needs an uninitialised runtime
    from keras_anime_gan import create_gan

    with strategy.scope():
        # Every phase due on every step: one traced step function, the quickest to build.
        gan = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8,
                         mapping_layers=1, r1_interval=1, pl_interval=1, ada_interval=1, augment_p=0.3, ada_kimg=1.0)
        gan.compile(jit_compile=False)  # the paper's Adam optimizers
    real = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(real).batch(8, drop_remainder=True)
    logs = gan.fit(data, epochs=1, steps_per_epoch=2, verbose=0).history
    values = {f"gan {index:03d} {v.path}": np.asarray(v.numpy()) for index, v in enumerate(gan.weights)}
    for optimizer in (gan.d_optimizer, gan.g_optimizer):
        values.update({f"{optimizer.name} {index:03d} {v.path}": np.asarray(v.numpy())
                       for index, v in enumerate(optimizer.variables)})
    np.savez(out, **values)
    print(json.dumps({"ada_p": float(gan.objective.augmenter.p.numpy()), "pl_mean": float(gan.objective.pl_mean.numpy()),
                      "phase_steps": int(gan.phase_steps.numpy()),
                      "d_iterations": int(gan.d_optimizer.iterations.numpy()),
                      "g_iterations": int(gan.g_optimizer.iterations.numpy()),
                      "logs": {name: float(np.ravel(value[-1])[0]) for name, value in logs.items()}}))


if __name__ == "__main__" and sys.argv[1:2] == ["--stylegan2-worker"]:
    _stylegan2_worker(sys.argv[2])
