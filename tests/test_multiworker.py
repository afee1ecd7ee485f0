"""MultiWorkerMirroredStrategy for real: two worker processes talking over 127.0.0.1 only."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np

from conftest import ROOT


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def _run_workers(tmp_path, *extra):
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, str(ROOT / "train.py"), "--strategy", "multi-worker", "--resolution", "32", "--width", "8",
                   "--latent-dim", "16", "--synthetic-images", "64", "--epochs", "2", "--steps-per-epoch", "3",
                   "--out", str(tmp_path / f"worker{index}"), "--quiet", *extra]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
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
