"""The command line as a thin layer: flags -> TrainConfig, resuming from a run's saved settings."""

import json

import pytest

from conftest import run_cli
from keras_anime_gan import cli
from keras_anime_gan.data import convert_folder
from keras_anime_gan.errors import UserError

TINY = ["--resolution", "32", "--batch-size", "8", "--synthetic-images", "16", "--metric-images", "8",
        "--steps-per-epoch", "1", "--no-jit", "--quiet"]


def _config(*argv):
    parser = cli.build_parser("train")
    return cli.config_from_args(parser.parse_args(["train", *map(str, argv)]))


def _stated(config, *names):
    return {name: config.model_options[name] for name in names}


def test_flags_become_run_options_and_model_options():
    config = _config("--model", "wgan-gp", "--width", "8", "--gp-weight", "5", "--epochs", "3", "--out", "x")
    assert (config.model, config.epochs, config.out) == ("wgan-gp", 3, "x")
    assert _stated(config, "width", "gp_weight") == {"width": 8, "gp_weight": 5.0}
    assert config.options().norm == "layer" and config.options().n_critic == 5
    # Resolved: config.json and the start-up line show every value in use, the model's defaults included.
    assert config.model_options["n_critic"] == 5 and config.model_options["norm"] == "layer"
    assert config.batch_size == 128  # the model's default batch, filled in


def test_a_config_file_and_flags_over_it(tmp_path):
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"model": "dynamic", "epochs": 2, "model_options": {"scale": 4.0, "width": 8}}))
    config = _config("--config", new, "--dynamic-g-min", "2", "--out", tmp_path / "a")
    assert _stated(config, "scale", "width", "g_min") == {"scale": 4.0, "width": 8, "g_min": 2} and config.epochs == 2
    for bad, message in [("[1, 2]", "must be a JSON object"), ('{"epochs": 2, "width": 8}', "unknown option.*width"),
                         ("{not json", "--config"), ('{"model_options": [1]}', "model_options must be a JSON object")]:
        path = tmp_path / "bad.json"
        path.write_text(bad)
        with pytest.raises(UserError, match=message):
            _config("--config", path, "--out", tmp_path / "b")


def test_nan_flags_are_refused_like_any_bad_value():
    for flags, message in [(["--ema", "nan"], "ema: must be a finite number"),
                           (["--d-lr", "inf"], "d_learning_rate: must be a finite number")]:
        with pytest.raises(UserError, match=message):
            _config(*flags, "--out", "x")


def test_resume_takes_the_saved_configuration_and_changes_only_what_is_safe(tmp_path):
    out = tmp_path / "run"
    first = ["train", "--model", "wgan-gp", "--width", "8", "--latent-dim", "16", "--n-critic", "2", "--epochs", "1",
             "--out", out, *TINY]
    assert cli.main(list(map(str, first))) == 0
    # Nothing restated: the run's own model, resolution and widths (today's defaults would be dcgan, 64, 64).
    config = _config("--out", out, "--resume", "--epochs", "2", "--metric-interval", "2", "--d-lr", "0.001")
    assert (config.model, config.resolution, config.epochs, config.metric_interval) == ("wgan-gp", 32, 2, 2)
    assert _stated(config, "width", "latent_dim", "n_critic", "d_learning_rate") == {
        "width": 8, "latent_dim": 16, "n_critic": 2, "d_learning_rate": 0.001}
    assert cli.main(list(map(str, ["train", "--out", out, "--resume", "--epochs", "2", "--quiet"]))) == 0
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "complete" and status["epochs"] == 2 and status["g_updates"] == 2
    for unsafe, message in [(["--width", "16"], "width=16 \\(the run has 8\\)"),
                            (["--model", "dcgan"], "--model dcgan \\(the run has wgan-gp\\)"),
                            (["--resolution", "64"], "--resolution 64 \\(the run has 32\\)"),
                            (["--seed", "3"], "--seed 3 \\(the run has 0\\)")]:
        with pytest.raises(UserError, match=message):
            _config("--out", out, "--resume", *unsafe)


def test_resume_without_a_run_says_so(tmp_path):
    with pytest.raises(UserError, match="holds no run to resume"):
        _config("--out", tmp_path / "nothing", "--resume")


def test_commands_other_than_train_do_not_import_tensorflow():
    """The train flags come from the models (TensorFlow); convert forks its workers without it."""
    import subprocess
    import sys

    code = ("import sys; from keras_anime_gan import cli; cli.build_parser('convert').parse_args(['convert', 'x']); "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_cli_verify_exit_statuses(faces_dir, tmp_path):
    data = tmp_path / "data"
    convert_folder(str(faces_dir), str(data), 32, shard_size=16, progress=False)
    good = run_cli("verify", data, "--quiet")
    assert json.loads(good.stdout) == {"data": str(data), "kind": "converted", "ok": True, "files_checked": 3,
                                       "bytes_checked": json.loads(good.stdout)["bytes_checked"], "num_images": 40,
                                       "damaged": []}
    shard = data / "shard-00001-of-00003.tfrecords"
    raw = bytearray(shard.read_bytes())
    raw[5000] ^= 0xFF
    shard.write_bytes(bytes(raw))
    bad = run_cli("verify", data, "--quiet", check=False)
    assert bad.returncode == 1 and json.loads(bad.stdout)["damaged"] == [shard.name]
    assert bad.stderr.startswith(f"damaged: {shard.name}: SHA-256 differs from dataset.json: record 2")
    missing = run_cli("verify", tmp_path / "nope", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
