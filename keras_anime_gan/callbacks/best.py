"""`BestGenerator`: the generator of the epoch with the best sample-quality metric, kept beside the
last one (a GAN's last epoch is seldom its best: its samples swing from epoch to epoch, and NVIDIA's
users pick the snapshot with the best FID)."""

from __future__ import annotations

import json
import math
import os

import keras

from ..atomic import write_json_atomic
from ._logs import _scalar


def _record_path(path) -> str:
    return os.path.splitext(str(path))[0] + ".json"


def read_best(path) -> dict | None:
    """The record `BestGenerator` wrote beside the generator at `path`; None when either is missing or
    the record is unreadable (a later best epoch writes both again)."""
    try:
        with open(_record_path(path), encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and os.path.exists(path) and "value" in record else None


class BestGenerator(keras.callbacks.Callback):
    """At each epoch's end whose logs hold `monitor` (a `MetricCallback` placed before this one puts
    it there), saves the GAN's EMA generator (float32) to `path` when the value is the best so far,
    lowest for mode "min", and writes `<path without .keras>.json`: `{"epoch": epochs done,
    "monitor", "value", "logs": the epoch's numeric logs, "train_minutes", "kimg"}` (the last two
    from `run`, when given). A non-finite value is never the best.

    monitor: a log key; "floor_ratio" (`MetricCallback`'s largest ratio of a metric to its noise
    floor) by default. resume: start from the best that file records (a resumed run keeps the best
    of all its epochs); False for a new run, whose first scored epoch replaces an old one."""

    def __init__(self, path, monitor="floor_ratio", mode="min", run=None, resume=True):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"BestGenerator mode is 'min' or 'max', got {mode!r}")
        self.path, self.monitor, self.mode, self.run = str(path), monitor, mode, run
        self.record_path = _record_path(self.path)
        record = read_best(self.path) if resume else None
        self.best = record if record and record.get("monitor") == monitor else None

    def _better(self, value) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best["value"] if self.mode == "min" else value > self.best["value"]

    def on_epoch_end(self, epoch, logs=None):
        from ..checkpoints import save_generator
        from ..precision import float32_model

        value = _scalar((logs or {}).get(self.monitor))
        if value is None or not self._better(value):
            return
        save_generator(float32_model(self.model.ema_generator), self.path)
        numbers = {key: _scalar(item) for key, item in (logs or {}).items()}
        self.best = {"epoch": int(epoch) + 1, "monitor": self.monitor, "value": value,
                     "logs": {key: number for key, number in numbers.items()
                              if number is not None and math.isfinite(number)}}
        if self.run is not None:
            self.best.update(train_minutes=round(self.run.train_seconds / 60, 3),
                             kimg=round(self.run.images_seen / 1000, 3))
        write_json_atomic(self.record_path, self.best, indent=2)
