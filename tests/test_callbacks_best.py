"""BestGenerator: the generator of the epoch with the best metric, and MetricCallback's floor_ratio
that chooses it."""

import json

import keras
import numpy as np
import pytest

from keras_anime_gan import create_gan
from keras_anime_gan.callbacks import BestGenerator, MetricCallback
from keras_anime_gan.callbacks.best import read_best
from keras_anime_gan.data import synthetic_faces
from keras_anime_gan.loading import load_generator

LATENTS = np.random.default_rng(5).normal(size=(4, 16)).astype(np.float32)


class GeneratorOutputs(keras.callbacks.Callback):
    """What the EMA generator draws from LATENTS at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.outputs = []

    def on_epoch_end(self, epoch, logs=None):
        self.outputs.append(np.asarray(load_generator(self.model)(LATENTS)))


def tiny_gan():
    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    gan.compile(jit_compile=False)
    return gan


def test_keeps_the_generator_of_the_epoch_with_the_lowest_floor_ratio(tmp_path):
    real = synthetic_faces(64, 32, seed=2)
    metric = MetricCallback(real[:32], ("swd", "color"), jsonl_path=str(tmp_path / "metrics.jsonl"),
                            floor_images=real[32:])
    best, outputs = BestGenerator(tmp_path / "best.keras"), GeneratorOutputs()
    history = tiny_gan().fit(real.astype(np.float32) / 127.5 - 1, batch_size=8, epochs=4, verbose=0,
                             callbacks=[metric, best, outputs]).history
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for ratio, record in zip(history["floor_ratio"], records):
        floor, results = record["noise_floor"], record["results"]
        assert ratio == pytest.approx(max(results["swd"] / floor["swd_floor"], results["color"] / floor["color_floor"]))
    chosen = int(np.argmin(history["floor_ratio"]))
    assert len(set(np.round(history["floor_ratio"], 6))) > 1  # the epochs differ, so the choice means something
    record = read_best(tmp_path / "best.keras")
    assert record["epoch"] == chosen + 1 and record["monitor"] == "floor_ratio"
    assert record["value"] == pytest.approx(min(history["floor_ratio"]))
    assert record["logs"]["swd"] == pytest.approx(history["swd"][chosen])
    saved = keras.models.load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(np.asarray(saved(LATENTS)), outputs.outputs[chosen], atol=1e-5)
    if chosen != 3:  # the last epoch's generator differs from the kept one
        assert not np.allclose(outputs.outputs[3], outputs.outputs[chosen], atol=1e-5)


def test_a_resumed_run_keeps_the_best_of_all_its_epochs_and_a_new_run_starts_again(tmp_path):
    path = tmp_path / "best.keras"
    first = BestGenerator(path, monitor="swd")
    first.set_model(tiny_gan())
    first.on_epoch_end(0, {"swd": 5.0})
    first.on_epoch_end(1, {"swd": 7.0})  # worse: kept as it was
    first.on_epoch_end(2, {"swd": float("nan")})  # a NaN is never the best
    first.on_epoch_end(3, {"d_loss": 1.0})  # no metric this epoch
    assert read_best(path)["epoch"] == 1 and read_best(path)["value"] == 5.0
    resumed = BestGenerator(path, monitor="swd")
    resumed.set_model(tiny_gan())
    resumed.on_epoch_end(4, {"swd": 6.0})
    assert read_best(path)["epoch"] == 1
    resumed.on_epoch_end(5, {"swd": 4.0})
    assert read_best(path)["epoch"] == 6 and read_best(path)["value"] == 4.0
    fresh = BestGenerator(path, monitor="swd", resume=False)
    fresh.set_model(tiny_gan())
    fresh.on_epoch_end(0, {"swd": 9.0})
    assert read_best(path)["epoch"] == 1 and read_best(path)["value"] == 9.0
    highest = BestGenerator(tmp_path / "other.keras", monitor="accuracy", mode="max")
    highest.set_model(tiny_gan())
    highest.on_epoch_end(0, {"accuracy": 0.5})
    highest.on_epoch_end(1, {"accuracy": 0.7})
    assert read_best(tmp_path / "other.keras")["epoch"] == 2
    with pytest.raises(ValueError, match="'min' or 'max'"):
        BestGenerator(path, mode="lowest")


def test_an_unreadable_record_is_no_best(tmp_path):
    path = tmp_path / "best.keras"
    path.write_bytes(b"a generator")
    (tmp_path / "best.json").write_text('{"epoch": 3, "val')  # cut off mid-write by another tool
    assert read_best(path) is None
    (tmp_path / "best.json").write_text("[1, 2]")
    assert read_best(path) is None
    callback = BestGenerator(path, monitor="swd")
    callback.set_model(tiny_gan())
    callback.on_epoch_end(0, {"swd": 30.0})  # any value beats no best
    assert read_best(path)["value"] == 30.0
    path.unlink()
    assert read_best(path) is None  # a record without its generator
