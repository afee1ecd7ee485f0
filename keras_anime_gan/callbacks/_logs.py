"""What the callbacks read from `fit`: log values as floats, the non-finite ones, and whether an
epoch ran all its batches."""

from __future__ import annotations

import math

import keras
import numpy as np


def _scalar(value):
    """A float from a log value (Python number, NumPy or tensor scalar, 1-element array), else None."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value) if hasattr(value, "shape") else value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


def _non_finite_logs(logs) -> list[str]:
    return [key for key, value in (logs or {}).items() if (number := _scalar(value)) is not None and not math.isfinite(number)]


class _EpochProgress:
    """Tells an epoch that ran all its batches from one cut short by a stop at a batch (an
    interrupt, a failure, a time budget): Keras calls `on_epoch_end` for both."""

    def __init__(self):
        self.epoch, self.batches, self.stopped_in_batch = None, 0, False

    def begin(self, epoch):
        self.epoch, self.batches, self.stopped_in_batch = epoch, 0, False

    def batch_end(self, batch, model):
        self.batches = batch + 1  # the index of the last step run, also with steps_per_execution > 1
        self.stopped_in_batch = bool(getattr(model, "stop_training", False))

    def complete(self, params) -> bool:
        steps = (params or {}).get("steps")
        if steps:
            return self.batches >= steps
        return not self.stopped_in_batch  # unknown length: an epoch ends early only by a stop
