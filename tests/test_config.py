"""config.py: what the user states (flags, a --config file, the run in --out) resolved once into a
validated TrainConfig. The command line's side of it (flags -> stated options) is in test_cli.py."""

import json
import os

import pytest

from keras_anime_gan.config import TrainConfig, resolve_config
from keras_anime_gan.errors import UserError


def test_the_embedded_default_run_is_resolved_by_the_library():
    config = resolve_config({})
    assert (config.resolution, config.epochs, config.batch_size, config.model_options["width"]) == (32, 12, 64, 32)
    assert config.out == os.path.join("runs", "dcgan-synthetic")
    stated = resolve_config({"resolution": 64})  # a stated resolution: the model's own defaults
    assert (stated.epochs, stated.batch_size, stated.model_options["width"]) == (50, 128, 64)


def test_nan_and_infinite_option_values_are_refused():
    for stated, message in [({"model_options": {"ema": float("nan")}}, "ema: must be a finite number"),
                            ({"model_options": {"d_learning_rate": float("inf")}}, "d_learning_rate: must be a finite"),
                            ({"epochs": 0}, "--epochs must be a positive integer")]:
        with pytest.raises(UserError, match=message):
            resolve_config({**stated, "out": "x"})


def test_multi_worker_without_tf_config_is_refused_at_start(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="--strategy multi-worker needs TF_CONFIG"):
        resolve_config({"strategy": "multi-worker", "out": "x"})


def test_a_config_value_of_the_wrong_type_is_one_error_naming_it(tmp_path):
    for values, message in [({"metrics": 5}, "metrics must be a string"), ({"seed": "x"}, "--seed must be an integer"),
                            ({"out": 5}, "out must be a string"), ({"jit": "yes"}, "jit must be true, false or null"),
                            ({"epochs": 1.5}, "--epochs must be a positive integer")]:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(values))
        with pytest.raises(UserError, match=message):
            resolve_config({"out": str(tmp_path / "run")} if "out" not in values else {}, config_file=str(path))
    with pytest.raises(UserError, match="must be a JSON object"):
        TrainConfig.from_json([1, 2])
