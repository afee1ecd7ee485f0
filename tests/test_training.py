import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SCRATCH, run_cli, small_tmpfs, tiny_config
from keras_anime_gan import callbacks as cb
from keras_anime_gan import create_gan
from keras_anime_gan.checkpoints import latest_checkpoint
from keras_anime_gan.data import convert_folder
from keras_anime_gan.errors import RunFailed, UserError
from keras_anime_gan.training import train

TINY = ["--resolution", "32", "--width", "8", "--latent-dim", "16", "--batch-size", "8", "--synthetic-images", "64",
        "--metric-images", "32"]


def test_cli_run_leaves_every_artifact(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", *TINY, "--epochs", "3", "--steps-per-epoch", "2", "--out", out, "--quiet")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 3 and summary["g_updates"] == 6 and summary["interrupted"] is None
    assert "global batch 8 = 1 replica(s) x 8" in result.stdout
    assert "dcgan is the default (the reports' baseline)" in result.stdout  # no --model: the advice
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "dcgan" and config["resolution"] == 32 and config["epochs"] == 3
    assert json.loads((out / "status.json").read_text())["state"] == "complete"
    samples = sorted(os.listdir(out / "samples"))
    assert samples == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    assert Image.open(out / "samples" / "epoch_0003.png").size == (8 * 32, 8 * 32)  # 8x8 grid
    gif = Image.open(out / "timelapse.gif")
    assert gif.n_frames == 3 and gif.size == (256, 256)
    with open(out / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and {"epoch", "d_loss", "g_loss", "diversity"} <= set(rows[0])
    assert all(np.isfinite(float(row["g_loss"])) for row in rows)
    assert Image.open(out / "losses.png").format == "PNG"
    events = [name for _, _, names in os.walk(out / "tensorboard") for name in names if "tfevents" in name]
    assert len(events) >= 2  # Keras scalars and our sample images
    generator = keras.models.load_model(out / "generator.keras")
    assert generator(np.zeros((2, 16), np.float32)).shape == (2, 32, 32, 3)
    assert latest_checkpoint(str(out / "checkpoints"))[1] == 3
    # Metrics by default: the epoch with the lowest floor_ratio keeps its generator.
    ratios = [float(row["floor_ratio"]) for row in rows]
    best = summary["best_generator"]
    assert best["epoch"] == int(np.argmin(ratios)) + 1 and best["value"] == pytest.approx(min(ratios), rel=1e-6)
    assert best["monitor"] == "floor_ratio" and best["train_minutes"] > 0
    assert keras.models.load_model(out / "best_generator.keras")(np.zeros((2, 16), np.float32)).shape == (2, 32, 32, 3)


@pytest.mark.parametrize("kind, model", [("folder", "dynamic"), ("converted", "wgan-gp"), ("stylegan", "lsgan")])
def test_trains_from_each_kind_of_data(faces_dir, tmp_path, kind, model):
    if kind == "folder":
        data = faces_dir
    else:
        data = tmp_path / kind
        convert_folder(str(faces_dir), str(data), 32, format="stylegan" if kind == "stylegan" else "raw", progress=False)
    # One pass over the 40 images, each D update on its own batch: dynamic takes 10 batches of 4 per
    # step (5 G updates from the initial accuracy 0.5), wgan-gp 2 batches of 8, lsgan 1.
    batch, expected_g_updates = {"dynamic": (4, 5), "wgan-gp": (8, 2), "lsgan": (8, 5)}[model]
    critics = {"n_critic": 2} if model == "wgan-gp" else {}
    summary = train(tiny_config(tmp_path / "run", data=str(data), model=model, steps_per_epoch=None, epochs=1,
                                batch_size=batch, **critics))
    assert summary["epochs"] == 1
    assert summary["g_updates"] == expected_g_updates
    assert (tmp_path / "run" / "generator.keras").exists()


def test_config_file_and_flags(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "lsgan", "epochs": 1, "steps_per_epoch": 1,
                                                      "model_options": {"label_smoothing": 0.1}}))
    out = tmp_path / "run"
    run_cli("train", "--config", tmp_path / "config.json", *TINY, "--out", out, "--quiet", "--d-lr", "1e-4")
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "lsgan" and saved["model_options"]["label_smoothing"] == 0.1
    assert saved["model_options"]["d_learning_rate"] == 1e-4 and "label_smoothing" not in saved


@pytest.mark.parametrize("args, message", [
    (["--model", "biggan"], "invalid choice"),
    (["--resolution", "40"], "resolution 40 is not supported by dcgan"),
    (["--data", "/nonexistent/faces"], "does not exist"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--label-smoothing", "0.7"], "label_smoothing: must be below 0.5"),
    (["--gp-weight", "1"], "--gp-weight is an option of wgan-gp, not of dcgan"),
])
def test_bad_options_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "run"
    result = run_cli("train", *TINY, "--epochs", "1", "--out", out, *args, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert not out.exists()


def test_empty_data_and_foreign_run_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        train(tiny_config(tmp_path / "a", data=str(tmp_path / "empty")))
    train(tiny_config(tmp_path / "done", epochs=1))
    with pytest.raises(UserError, match="cannot continue with --model lsgan \\(the run has dcgan\\)"):
        train(tiny_config(tmp_path / "done", model="lsgan", epochs=1))
    with pytest.raises(UserError, match="finished run"):
        train(tiny_config(tmp_path / "done", epochs=1))
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a run folder"):
        train(tiny_config(tmp_path / "stuff"))
    more = train(tiny_config(tmp_path / "done", epochs=2), resume=True)  # a finished run continued on purpose
    assert more["epochs"] == 2 and more["g_updates"] == 6


def _train_command(out, epochs, *extra):
    return [sys.executable, str(ROOT / "train.py"), *TINY, "--epochs", str(epochs), "--steps-per-epoch", "15",
            "--no-jit", "--out", str(out), "--quiet", *extra]


def _wait_for_checkpoint(process, out, timeout=180):
    deadline = time.time() + timeout
    while not (out / "checkpoints" / "latest.json").exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.05)


def _history(out):
    with open(out / "history.csv", newline="") as file:
        return list(csv.DictReader(file))


class ResumeProbe(keras.callbacks.Callback):
    """Records the GAN's state when the resumed fit begins and after its first batch."""

    def on_train_begin(self, logs=None):
        gan = self.model
        self.begin = {"weights": gan.get_weights(), "ema": [w.numpy() for w in gan.ema_generator.variables],
                      "d_optimizer": [v.numpy() for v in gan.d_optimizer.variables],
                      "g_optimizer": [v.numpy() for v in gan.g_optimizer.variables],
                      "rng": gan.rng.state.numpy().copy()}
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "after_one"):
            gan = self.model
            self.after_one = {"g_iterations": int(gan.g_optimizer.iterations.numpy()),
                              "d_iterations": int(gan.d_optimizer.iterations.numpy()),
                              "ema": [w.numpy() for w in gan.ema_generator.variables],
                              "generator": [v.numpy() for v in gan.generator.variables]}


def test_sigkill_after_first_checkpoint_then_resume_continues_from_its_state(tmp_path, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(_train_command(out, 3, "--ema", "0.9"), cwd=SCRATCH, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _wait_for_checkpoint(process, out)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    for name in os.listdir(out / "checkpoints"):  # only complete checkpoints under final names
        if name.startswith("epoch-"):
            assert {"gan.weights.h5", "d_optimizer.npz", "g_optimizer.npz", "rng_state.npy", "state.json"} <= set(os.listdir(out / "checkpoints" / name))
    path, saved_epoch = latest_checkpoint(str(out / "checkpoints"))
    saved = json.loads(open(os.path.join(path, "state.json")).read())
    assert saved_epoch == saved["epoch"] >= 1 and saved["g_updates"] == saved["d_updates"] == 15 * saved_epoch
    optimizers = {name: np.load(os.path.join(path, f"{name}.npz")) for name in ("d_optimizer", "g_optimizer")}
    rng = np.load(os.path.join(path, "rng_state.npy"))
    expected = create_gan("dcgan", 32, 16, width=8, seed=123, ema=0.9)  # Keras's own loader, as a reference
    expected.load_weights(os.path.join(path, "gan.weights.h5"))
    capsys.readouterr()

    assert (out / ".lock").exists()  # left by the killed process, and released by the OS: no stale lock
    probe = ResumeProbe()
    summary = train(tiny_config(out, epochs=3, steps_per_epoch=15, ema=0.9), callbacks=[probe])
    assert "resuming the interrupted run" in capsys.readouterr().out
    # The resumed fit started from exactly what the checkpoint holds ...
    assert probe.first_epoch == saved_epoch
    for a, b in zip(probe.begin["weights"], expected.get_weights()):  # generator, discriminator, EMA
        np.testing.assert_array_equal(a, b)
    for a, b in zip(probe.begin["ema"], [w.numpy() for w in expected.ema_generator.variables]):
        np.testing.assert_array_equal(a, b)
    for name in ("d_optimizer", "g_optimizer"):
        arrays = optimizers[name]
        assert len(probe.begin[name]) == len(arrays.files)
        for index, value in enumerate(probe.begin[name]):
            np.testing.assert_array_equal(value, arrays[f"v{index}"])
    np.testing.assert_array_equal(probe.begin["rng"], rng)
    # ... and continued from it: counters go on from the saved values, the EMA averages on from its saved state.
    assert probe.after_one["g_iterations"] == saved["g_updates"] + 1
    assert probe.after_one["d_iterations"] == saved["d_updates"] + 1
    decay = min(0.9, (1 + saved["g_updates"]) / (10 + saved["g_updates"]))  # the ramp goes on from the saved count
    assert len(probe.after_one["ema"]) == len(probe.after_one["generator"])
    for average, before, weight in zip(probe.after_one["ema"], probe.begin["ema"], probe.after_one["generator"]):
        np.testing.assert_allclose(average, decay * before + (1 - decay) * weight, rtol=1e-5, atol=1e-6)

    reference = train(tiny_config(tmp_path / "reference", epochs=3, steps_per_epoch=15, ema=0.9))
    assert summary["epochs"] == reference["epochs"] == 3
    assert summary["g_updates"] == reference["g_updates"] == 45
    assert json.loads((out / "status.json").read_text())["state"] == "complete"
    assert sorted(os.listdir(out / "samples"))[-1] == "epoch_0003.png"
    rows, reference_rows = _history(out), _history(tmp_path / "reference")
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    # Up to the checkpoint both runs saw the same data in the same order: the same losses.
    for row, twin in zip(rows[:saved_epoch], reference_rows):
        for key in ("d_loss", "g_loss"):
            assert float(row[key]) == pytest.approx(float(twin[key]), rel=1e-3), (row, twin)


def test_a_run_folder_holds_one_process_and_a_stopped_run_can_generate(tmp_path):
    """One long run: a second train on its --out is refused while it trains; status.json follows the
    epochs; SIGTERM saves a checkpoint, stops cleanly and writes generator.keras from it."""
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(_train_command(out, 50), cwd=SCRATCH, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(process, out)
    second = run_cli("train", *TINY, "--epochs", "50", "--out", out, "--quiet", check=False)
    assert second.returncode == 2 and f"run folder {out} is in use by process {process.pid}" in second.stderr
    assert "Traceback" not in second.stderr and "resuming" not in second.stdout
    deadline = time.time() + 120
    while json.loads((out / "status.json").read_text()).get("epoch", 0) < 2:  # updated at each epoch's end
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.05)
    running = json.loads((out / "status.json").read_text())
    assert running["state"] == "running" and running["checkpoint"].startswith("epoch-000")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "SIGTERM received" in stdout
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "interrupted" and status["interrupted"] == "SIGTERM"
    assert latest_checkpoint(str(out / "checkpoints"))[1] == status["epochs"]
    assert status["generator"] == status["checkpoint"]  # written from the interrupt checkpoint's weights
    generated = run_cli("generate", out, "--seeds", "0-1", "--out", tmp_path / "pictures", "--quiet")
    assert json.loads(generated.stdout.strip().splitlines()[-1])["images"] == 2


def test_resume_takes_changed_learning_rates_and_refuses_fewer_epochs_than_done(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(out, epochs=2, metrics="none"))
    saved = (out / "config.json").read_text()
    with pytest.raises(UserError, match="has trained 2 epoch\\(s\\) already; pass --epochs 3 or more"):
        train(tiny_config(out, epochs=1, metrics="none"), resume=True)
    assert (out / "config.json").read_text() == saved  # the record stays true

    class Rates(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.rates = [float(self.model.d_optimizer.learning_rate), float(self.model.g_optimizer.learning_rate)]

    rates = Rates()
    train(tiny_config(out, epochs=3, metrics="none", d_learning_rate=1e-5), resume=True, callbacks=[rates])
    assert rates.rates == [pytest.approx(1e-5), pytest.approx(2e-4)]  # not the checkpoint's 2e-4
    assert json.loads((out / "config.json").read_text())["model_options"]["d_learning_rate"] == 1e-5


def test_a_budget_stops_with_a_final_checkpoint_and_a_larger_one_resumes(tmp_path):
    """--kimg 0.04: 40 images, 5 steps of 8 (epochs of 3 steps: the budget falls inside the second);
    then --kimg 0.08 goes on from there to 80 images."""
    out = tmp_path / "run"
    summary = train(tiny_config(out, epochs=None, kimg=0.04, metrics="none"))
    assert (summary["state"], summary["budget_reached"], summary["kimg"]) == ("complete", "kimg", 0.04)
    assert summary["g_updates"] == 5 and summary["checkpoint"] == "epoch-0001-budget-b0002"
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "complete" and status["generator"] == "final weights" and status["train_minutes"] > 0
    assert (out / "generator.keras").stat().st_size > 0
    with pytest.raises(UserError, match="has seen 0.04 thousand images already; pass a larger --kimg"):
        train(tiny_config(out, epochs=None, kimg=0.04, metrics="none"), resume=True)
    more = train(tiny_config(out, epochs=None, kimg=0.08, metrics="none"), resume=True)
    assert (more["state"], more["kimg"], more["g_updates"]) == ("complete", 0.08, 10)
    assert json.loads((out / "config.json").read_text())["kimg"] == 0.08
    timed = train(tiny_config(tmp_path / "timed", epochs=None, minutes=0.001, metrics="none"))
    assert timed["budget_reached"] == "minutes" and timed["g_updates"] >= 1 and timed["train_minutes"] >= 0.001
    with pytest.raises(UserError, match="needs --epochs, --minutes or --kimg"):
        train(tiny_config(tmp_path / "endless", epochs=None))


def test_lr_decay_takes_both_rates_linearly_to_zero_over_the_last_share_and_resumes_from_the_configured(tmp_path):
    """--kimg 0.08 --lr-decay 0.5: 10 steps of 8 images; step k begins with k/10 of the budget used,
    so the rates hold for steps 0-5 and fall by 0.2 a step after. A resume with twice the budget
    starts again from the configured rates, not the checkpoint's decayed ones."""

    class Rates(keras.callbacks.Callback):  # after LearningRateDecay in train()'s list: sees what the step uses
        def on_train_begin(self, logs=None):
            self.seen = []

        def on_train_batch_begin(self, batch, logs=None):
            self.seen.append(self.model.optimizer.learning_rates())

    out, rates = tmp_path / "run", Rates()
    train(tiny_config(out, epochs=None, kimg=0.08, lr_decay=0.5, metrics="none"), callbacks=[rates])
    factors = [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]
    np.testing.assert_allclose([r["d_learning_rate"] for r in rates.seen], [2e-4 * f for f in factors], rtol=1e-5)
    np.testing.assert_allclose([r["g_learning_rate"] for r in rates.seen], [2e-4 * f for f in factors], rtol=1e-5)
    more = Rates()
    train(tiny_config(out, epochs=None, kimg=0.16, lr_decay=0.5, metrics="none"), resume=True, callbacks=[more])
    assert len(more.seen) == 10 and more.seen[0]["d_learning_rate"] == pytest.approx(2e-4)  # 80 of 160: half
    assert more.seen[-1]["g_learning_rate"] == pytest.approx(2e-4 * 0.1, rel=1e-5)  # 152 of 160 used
    by_epochs = Rates()  # no budget: --epochs 2 of 3 steps count
    train(tiny_config(tmp_path / "epochs", lr_decay=1.0, metrics="none"), callbacks=[by_epochs])
    np.testing.assert_allclose([r["d_learning_rate"] for r in by_epochs.seen],
                               [2e-4 * (1 - k / 6) for k in range(6)], rtol=1e-5)
    for bad in (0, 1.5, True, "half"):
        with pytest.raises(UserError, match="--lr-decay must be a share of the run in \\(0, 1\\]"):
            tiny_config(tmp_path / "bad", lr_decay=bad).validate()


def test_a_budget_run_on_few_faces_ends_an_epoch_every_10000_images_not_every_pass(tmp_path, capsys):
    """64 faces in batches of 8 are an 8-step pass; a run stopped only by a budget gets epochs of
    10,000 images (1,250 steps, 250 for WGAN's 5 real batches a step) and says so; --epochs and
    --steps-per-epoch keep theirs. A budget inside that first long epoch stops there."""
    from keras_anime_gan.training import MIN_BUDGET_EPOCH_IMAGES, build_dataset

    assert MIN_BUDGET_EPOCH_IMAGES == 10_000
    budgeted = tiny_config(tmp_path / "a", epochs=None, kimg=1.0, steps_per_epoch=None).resolved()
    assert build_dataset(budgeted, 8, 0)[1] == 1250
    assert "an epoch is 1250 steps (10,000 images, 156 passes over the 64)" in capsys.readouterr().out
    assert build_dataset(budgeted, 8, 0, batches_per_step=5)[1] == 250
    capsys.readouterr()
    assert build_dataset(tiny_config(tmp_path / "b", steps_per_epoch=None).resolved(), 8, 0)[1] == 8  # --epochs 2
    assert build_dataset(tiny_config(tmp_path / "c", epochs=None, kimg=1.0).resolved(), 8, 0)[1] == 3
    assert "an epoch is" not in capsys.readouterr().out
    summary = train(tiny_config(tmp_path / "run", epochs=None, kimg=0.04, steps_per_epoch=None, metrics="none"))
    assert summary["g_updates"] == 5 and summary["checkpoint"] == "epoch-0000-budget-b0005"


def test_a_full_disk_while_checkpointing_ends_in_one_line_and_a_failed_status(tmp_path, monkeypatch):
    import errno

    from keras_anime_gan import checkpoints
    from keras_anime_gan.errors import RunFailed

    out = tmp_path / "run"
    real_savez, calls = np.savez, []

    def savez_until_the_disk_is_full(path, **arrays):
        calls.append(path)
        if len(calls) > 2:  # the second checkpoint's first optimizer file
            raise OSError(errno.ENOSPC, "No space left on device")  # as NumPy raises it: no file name
        return real_savez(path, **arrays)

    monkeypatch.setattr(checkpoints.np, "savez", savez_until_the_disk_is_full)
    with pytest.raises(RunFailed) as failed:
        train(tiny_config(out, epochs=3, metrics="none"))
    message = str(failed.value)
    assert message == ("disk full while writing checkpoint epoch-0002; the last good checkpoint is epoch-0001, which "
                       "running the command again resumes from")
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == message and status["checkpoint"] == "epoch-0001"
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch-0001", "latest.json"]  # no half-written folder
    monkeypatch.setattr(checkpoints.np, "savez", real_savez)  # space freed: the same command resumes
    assert train(tiny_config(out, epochs=3, metrics="none"))["state"] == "complete"


def test_a_real_full_disk_gives_one_line_and_exit_status_1(tmp_path):
    """On a 1.5 MB tmpfs the first checkpoint fits and the second does not."""
    with small_tmpfs(tmp_path / "disk", "1500k") as disk:
        result = run_cli("train", *TINY, "--epochs", "4", "--steps-per-epoch", "2", "--no-jit", "--out", disk / "run",
                         "--quiet", check=False)
        errors = [line for line in result.stderr.splitlines() if line.startswith(("error", "Traceback"))]
        assert result.returncode == 1 and errors == [
            "error: disk full while writing checkpoint epoch-0002; the last good checkpoint is epoch-0001, which "
            "running the command again resumes from"], result.stderr[-3000:]
        assert json.loads((disk / "run" / "status.json").read_text())["state"] == "failed"


def test_generator_keras_is_replaced_atomically(tmp_path, monkeypatch):
    from keras_anime_gan.checkpoints import save_generator

    generator = create_gan("dcgan", 32, 16, width=8, seed=0).generator
    path = tmp_path / "generator.keras"
    save_generator(generator, str(path))
    before = path.read_bytes()

    def killed_while_saving(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(keras.Model, "save", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        save_generator(generator, str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["generator.keras"]


def test_mixed_precision_run_trains_and_leaves_the_policy_as_it_was(tmp_path):
    summary = train(tiny_config(tmp_path / "run", precision="float16", epochs=1, steps_per_epoch=4))
    assert summary["epochs"] == 1 and 1 <= summary["g_updates"] <= 4  # loss scaling may skip overflowing steps
    assert keras.mixed_precision.global_policy().name == "float32"
    generator = keras.models.load_model(tmp_path / "run" / "generator.keras")
    assert generator.output.dtype == "float32"  # final layer kept in float32


class PoisonDiscriminator(keras.callbacks.Callback):
    """NaN into a discriminator weight at one batch, as a diverging update would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            variable = self.model.discriminator.trainable_variables[0]
            variable.assign(np.full(variable.shape, np.nan, np.float32))


def test_a_run_that_goes_nan_fails_keeps_its_last_good_checkpoint_and_resumes_from_it(tmp_path, capsys):
    out = tmp_path / "run"
    config = tiny_config(out, epochs=4, steps_per_epoch=3, metrics="none")
    train(config, callbacks=[PoisonDiscriminator(epoch=2, batch=1)])
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and status["failure"] == "non_finite" and "non-finite" in status["reason"]
    assert status["checkpoint"] == "epoch-0002" and status["checkpoint_epoch"] == 2 and status["epochs"] == 2
    assert sorted(name for name in os.listdir(out / "checkpoints") if name.startswith("epoch-")) == ["epoch-0001", "epoch-0002"]
    path, epoch = latest_checkpoint(str(out / "checkpoints"))
    assert os.path.basename(path) == "epoch-0002" and epoch == 2
    generator = keras.models.load_model(out / "generator.keras")  # the last good weights, not the NaN ones
    assert status["generator"] == "epoch-0002" and all(np.isfinite(w).all() for w in generator.get_weights())
    assert [row["epoch"] for row in _history(out)] == ["0", "1"]  # the failed epoch has no row
    capsys.readouterr()

    summary = train(config)  # the same command again
    assert "resuming the failed run" in capsys.readouterr().out
    assert summary["state"] == "complete" and summary["epochs"] == 4 and summary["g_updates"] == 12
    assert [row["epoch"] for row in _history(out)] == ["0", "1", "2", "3"]
    assert all(np.isfinite(float(row["d_loss"])) for row in _history(out))


KILL_AFTER_CHECKPOINT = """
import json, os, sys
from keras_anime_gan import checkpoints
from keras_anime_gan.config import TrainConfig
from keras_anime_gan.training import train

save_checkpoint = checkpoints.save_checkpoint

def save_then_die(gan, directory, completed_epochs, *args, **kwargs):
    path = save_checkpoint(gan, directory, completed_epochs, *args, **kwargs)
    if completed_epochs == 3:
        os._exit(17)  # kill -9 right after the epoch-3 checkpoint, before anything else runs
    return path

checkpoints.save_checkpoint = save_then_die
train(TrainConfig.from_json(json.loads(sys.argv[1])))
"""


def test_a_kill_between_checkpoint_and_history_row_loses_no_epoch(tmp_path):
    out = tmp_path / "run"
    config = tiny_config(out, epochs=5, steps_per_epoch=2, metric_interval=2)
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_CHECKPOINT, json.dumps(config.to_json())], cwd=SCRATCH,
                            capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert latest_checkpoint(str(out / "checkpoints"))[1] == 3
    summary = train(config)
    rows = _history(out)
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4"]  # each epoch exactly once
    assert summary["state"] == "complete" and summary["epochs"] == 5
    columns = list(rows[0])
    assert not [column for column in columns if column.startswith("val_")]
    assert {"d_loss", "g_loss", "swd", "diversity"} <= set(columns)  # metrics every 2 epochs: columns kept
    for row in rows:
        measured = int(row["epoch"]) % 2 == 1
        assert (row["swd"] != "") == measured and (row["diversity"] != "") == measured, row
        assert np.isfinite(float(row["d_loss"]))
    assert cb.plot_history(str(out / "history.csv"), str(tmp_path / "losses.png"))


def test_the_best_generator_is_the_best_epoch_of_the_whole_resumed_run(tmp_path):
    out = tmp_path / "run"
    first = train(tiny_config(out, epochs=2, steps_per_epoch=2))
    summary = train(tiny_config(out, epochs=5, steps_per_epoch=2), resume=True)
    ratios = [float(row["floor_ratio"]) for row in _history(out)]
    assert len(ratios) == 5 and first["best_generator"]["epoch"] <= 2
    assert summary["best_generator"]["epoch"] == int(np.argmin(ratios)) + 1
    assert summary["best_generator"]["value"] == pytest.approx(min(ratios), rel=1e-6)
    assert json.loads((out / "status.json").read_text())["best_generator"] == summary["best_generator"]
    none = train(tiny_config(tmp_path / "unmeasured", epochs=1, steps_per_epoch=1, metrics="none"))
    assert none["best_generator"] is None and not (tmp_path / "unmeasured" / "best_generator.keras").exists()


def test_a_run_folder_without_a_checkpoint_is_never_restarted_silently(tmp_path, capsys):
    from keras_anime_gan.training import prepare_run_folder

    def run_folder(name, history_rows=0, checkpoint_files=None):
        out = tmp_path / name
        out.mkdir()
        config = tiny_config(out)
        (out / "config.json").write_text(json.dumps(config.to_json()))
        (out / "status.json").write_text(json.dumps({"state": "running", "epoch": 0}))
        if history_rows:
            (out / "history.csv").write_text("epoch,d_loss,g_loss\n" + "".join(f"{i},0.5,0.7\n" for i in range(history_rows)))
        if checkpoint_files is not None:
            folder = out / "checkpoints" / "epoch-0002"
            folder.mkdir(parents=True)
            for name in checkpoint_files:
                (folder / name).write_bytes(b"x")
            (out / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": "epoch-0002", "epoch": 2}))
        return config

    # History but no checkpoint (e.g. --checkpoint-interval 5, stopped at epoch 3): refused, nothing overwritten.
    config = run_folder("history-only", history_rows=3)
    with pytest.raises(UserError, match="3 epoch.* of history but no checkpoint"):
        prepare_run_folder(config, resume=False)
    # A checkpoint folder that is incomplete: refused, not silently restarted from epoch 0.
    config = run_folder("broken", history_rows=2, checkpoint_files=["gan.weights.h5", "state.json"])
    with pytest.raises(UserError, match="none is complete"):
        prepare_run_folder(config, resume=False)
    # Truly nothing to lose (stopped before its first checkpoint): starts over, and says so.
    capsys.readouterr()
    assert prepare_run_folder(run_folder("fresh"), resume=False) == (0, None)
    assert "stopped before its first checkpoint" in capsys.readouterr().out


def test_a_damaged_shard_fails_the_run_with_one_line_naming_it(faces_dir, tmp_path):
    data = tmp_path / "data"
    convert_folder(str(faces_dir), str(data), 32, shard_size=16, progress=False)
    shard = data / "shard-00001-of-00003.tfrecords"
    raw = bytearray(shard.read_bytes())
    raw[5000] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(RunFailed) as failed:
        train(tiny_config(tmp_path / "run", data=str(data), epochs=2, steps_per_epoch=10, metrics="none"))
    assert str(failed.value).startswith(f"{data} is damaged ({shard.name}: SHA-256 differs from dataset.json")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "failed" and status["failure"] == "data_loss"


def test_upscaling_refused_unless_allowed(faces_dir, tmp_path):
    data = tmp_path / "data"
    convert_folder(str(faces_dir), str(data), 16, progress=False)
    result = run_cli("train", "--data", data, "--resolution", "32", "--batch-size", "8", "--epochs", "1",
                     "--steps-per-epoch", "1", "--width", "8", "--latent-dim", "16", "--metrics", "none", "--no-jit",
                     "--quiet", "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and "holds 16 px images" in result.stderr, result.stderr[-1500:]
    assert train(tiny_config(tmp_path / "run2", data=str(data), epochs=1, steps_per_epoch=1, metrics="none",
                             allow_upscale=True))["state"] == "complete"


def test_a_checkpoint_damaged_in_place_is_skipped_on_resume(tmp_path, capsys):
    """The newest checkpoint's weights file keeps its size but has a flipped byte: resuming takes the
    one before it, whose SHA-256 still matches."""
    out = tmp_path / "run"
    train(tiny_config(out, epochs=2, metrics="none"))
    weights = out / "checkpoints" / "epoch-0002" / "gan.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    summary = train(tiny_config(out, epochs=3, metrics="none"), resume=True)
    printed = capsys.readouterr()
    assert "restored " in printed.out and "epoch-0001: epoch 1" in printed.out
    assert summary["state"] == "complete" and summary["epochs"] == 3


def test_a_run_folder_from_before_the_loop_redesign_is_refused_in_one_line_and_still_generates(tmp_path):
    """Checkpoints of format 1 (keras-anime-gan before the loop and the objective were split) hold the
    EMA and the models' state in another layout: resuming, --init-from and export-nvidia refuse them
    in one line, and the run's generator.keras still serves generate."""
    out = tmp_path / "old"
    train(tiny_config(out, epochs=1, metrics="none"))
    (latest,) = [path for path in (out / "checkpoints").iterdir() if path.is_dir()]
    state = json.loads((latest / "state.json").read_text())
    assert state.pop("format") == 2
    (latest / "state.json").write_text(json.dumps(state))  # what the 0.1 loop wrote
    result = run_cli("train", *TINY, "--epochs", "2", "--out", out, "--resume", "--quiet", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr
    assert "trained by an earlier keras-anime-gan (checkpoint format 1" in errors[0]
    assert "generator.keras still works" in errors[0]
    run_cli("generate", out, "--seeds", "0", "--out", tmp_path / "pngs")
    assert (tmp_path / "pngs" / "seed0000.png").is_file()
