"""`RunStatus`: status.json kept current while a run trains, so a monitor can watch it."""

from __future__ import annotations

import os
import time

import keras

from ..atomic import write_json_atomic


class RunStatus(keras.callbacks.Callback):
    """At each epoch's end, writes `{"state": "running", "epoch": epochs done, "checkpoint": the newest,
    "checkpoint_epoch", "updated"}` to `path` (atomically), reading what `checkpointer` (a
    `RunCheckpoint` placed before it) has done. `training.train` writes the final state itself."""

    def __init__(self, path, checkpointer):
        super().__init__()
        self.path, self.checkpointer = path, checkpointer

    def on_epoch_end(self, epoch, logs=None):
        latest = self.checkpointer.last_checkpoint
        write_json_atomic(self.path, {"state": "running", "epoch": self.checkpointer.trained_epochs or epoch + 1,
                                      "checkpoint": latest and os.path.basename(latest),
                                      "checkpoint_epoch": self.checkpointer.completed_epochs if latest else None,
                                      "updated": time.time()}, indent=2)
