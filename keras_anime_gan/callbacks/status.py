"""`RunStatus`: status.json kept current while a run trains, so a monitor can watch it."""

from __future__ import annotations

import keras

from ..atomic import write_json_atomic


class RunStatus(keras.callbacks.Callback):
    """At each epoch's end, writes `run.running_status()` (`{"state": "running", "epoch": epochs done,
    "checkpoint": the newest, "checkpoint_epoch", "updated"}`) to `path`, atomically. Place it after
    the run's `RunCheckpoint`, which records the epoch; `training.train` writes the final state."""

    def __init__(self, path, run):
        super().__init__()
        self.path, self.run = path, run

    def on_epoch_end(self, epoch, logs=None):
        write_json_atomic(self.path, self.run.running_status(), indent=2)
