"""The command line as a thin layer: flags -> TrainConfig, resuming from a run's saved settings."""

import json

import pytest

from keras_anime_gan import cli
from keras_anime_gan.errors import UserError
from keras_anime_gan.training import TrainConfig

TINY = ["--resolution", "32", "--batch-size", "8", "--synthetic-images", "16", "--metric-images", "8",
        "--steps-per-epoch", "1", "--no-jit", "--quiet"]


def _config(*argv):
    parser = cli.build_parser()
    return cli.config_from_args(parser.parse_args(["train", *map(str, argv)]))


def test_flags_become_run_options_and_model_options():
    config = _config("--model", "wgan-gp", "--width", "8", "--gp-weight", "5", "--epochs", "3", "--out", "x")
    assert (config.model, config.epochs, config.out) == ("wgan-gp", 3, "x")
    assert config.model_options == {"width": 8, "gp_weight": 5.0}
    assert config.options().norm == "layer" and config.options().n_critic == 5


def test_a_config_file_in_either_layout_and_flags_over_it(tmp_path):
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"model": "dynamic", "epochs": 2, "model_options": {"scale": 4.0, "width": 8}}))
    config = _config("--config", new, "--dynamic-g-min", "2", "--out", tmp_path / "a")
    assert config.model_options == {"scale": 4.0, "width": 8, "g_min": 2} and config.epochs == 2
    old = tmp_path / "old.json"  # the flat layout of earlier versions, every model's options in it
    old.write_text(json.dumps({"model": "wgan", "width": 8, "n_critic": 3, "label_smoothing": 0.0, "dynamic_scale": 10.0,
                               "norm": None, "extra": {}}))
    assert _config("--config", old, "--out", tmp_path / "b").model_options == {"width": 8, "n_critic": 3}


def test_resume_takes_the_saved_configuration_and_changes_only_what_is_safe(tmp_path):
    out = tmp_path / "run"
    first = ["train", "--model", "wgan-gp", "--width", "8", "--latent-dim", "16", "--n-critic", "2", "--epochs", "1",
             "--out", out, *TINY]
    assert cli.main(list(map(str, first))) == 0
    # Nothing restated: the run's own model, resolution and widths (today's defaults would be dcgan, 64, 64).
    config = _config("--out", out, "--resume", "--epochs", "2", "--metric-interval", "2", "--d-lr", "0.001")
    assert (config.model, config.resolution, config.epochs, config.metric_interval) == ("wgan-gp", 32, 2, 2)
    assert config.model_options == {"width": 8, "latent_dim": 16, "n_critic": 2, "d_learning_rate": 0.001}
    assert cli.main(list(map(str, ["train", "--out", out, "--resume", "--epochs", "2", "--quiet"]))) == 0
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "complete" and status["epochs"] == 2 and status["g_updates"] == 2
    for unsafe, message in [(["--width", "16"], "width=16 \\(the run has 8\\)"),
                            (["--model", "dcgan"], "--model dcgan \\(the run has wgan-gp\\)"),
                            (["--resolution", "64"], "--resolution 64 \\(the run has 32\\)")]:
        with pytest.raises(UserError, match=message):
            _config("--out", out, "--resume", *unsafe)


def test_a_run_folder_of_the_earlier_flat_layout_still_resumes(tmp_path):
    out = tmp_path / "run"
    assert cli.main(list(map(str, ["train", "--model", "lsgan", "--width", "8", "--latent-dim", "16",
                                   "--label-smoothing", "0.1", "--epochs", "1", "--out", out, *TINY]))) == 0
    saved = json.loads((out / "config.json").read_text())
    flat = {key: value for key, value in saved.items() if key != "model_options"}
    flat.update({"arch": "dcgan", "latent_dim": 16, "width": 8, "norm": None, "ema": None, "label_smoothing": 0.1,
                 "one_sided_smoothing": False, "n_critic": 5, "gp_weight": 10.0, "clip_value": 0.01,
                 "dynamic_scale": 10.0, "dynamic_d_min": 1, "dynamic_g_min": 3, "d_learning_rate": None,
                 "g_learning_rate": None, "beta_1": None, "beta_2": None, "extra": {}})
    (out / "config.json").write_text(json.dumps(flat))
    config = TrainConfig.from_json(flat)
    assert config.model_options == {"arch": "dcgan", "latent_dim": 16, "width": 8, "label_smoothing": 0.1,
                                    "one_sided": False}
    assert cli.main(list(map(str, ["train", "--out", out, "--resume", "--epochs", "2", "--quiet"]))) == 0
    assert json.loads((out / "status.json").read_text())["epochs"] == 2
    assert json.loads((out / "config.json").read_text())["model_options"]["label_smoothing"] == 0.1


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
