"""`Run`: the state of one training run, which its callbacks read and write instead of each other's
fields: epochs done, steps run, the newest checkpoint, the failure or interruption that stopped it,
the history rows and the monitor's events. `training.train` gives one to every callback of a run;
a callback used alone in `gan.fit` makes its own."""

from __future__ import annotations

import os
import time

from ._logs import _scalar


class Run:
    def __init__(self, initial_epoch=0, history=(), images_seen=0, train_seconds=0.0):
        self.trained_epochs = initial_epoch  # epochs run to their end, counted from the run's start
        self.batches_run = 0  # steps run by this process
        self.images_seen = int(images_seen)  # real images trained on, counted from the run's start
        self.train_seconds = float(train_seconds)  # time in `fit`, counted from the run's start
        self.budget_reached: str | None = None  # "minutes" or "kimg" when a budget stopped the run
        self.checkpoint: str | None = None  # the newest good checkpoint's folder
        self.checkpoint_epoch = 0  # the complete epochs it holds
        self.failure: dict | None = None  # {"kind", "message"} of what stopped the run
        self.interrupted_by: str | None = None  # SIGTERM / SIGINT
        self.events: list[dict] = []  # the failure monitor's events
        self.history: list[dict] = sorted((dict(row) for row in history), key=lambda row: row["epoch"])

    def record_epoch(self, epoch, logs) -> dict:
        """Make `logs` the history row of `epoch` (0-based), dropping any rows from it on."""
        row = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            number = _scalar(value)
            if number is not None and key != "epoch":
                row[key] = number
        self.history = [old for old in self.history if int(old["epoch"]) < epoch] + [row]
        self.trained_epochs = max(self.trained_epochs, int(epoch) + 1)
        return row

    def fail(self, kind, message) -> None:
        """Record what stopped the run; the first failure is the one reported."""
        if self.failure is None:
            self.failure = {"kind": kind, "message": message}

    def saved(self, path, completed_epochs) -> None:
        self.checkpoint, self.checkpoint_epoch = path, int(completed_epochs)

    @property
    def stopping(self) -> str | None:
        """What asked the run to stop at the end of this batch: a signal's name or "budget"."""
        return self.interrupted_by or (self.budget_reached and "budget")

    def progress(self) -> dict:
        """What a checkpoint records of the run's progress, and a resumed run starts from."""
        return {"images_seen": self.images_seen, "train_seconds": round(self.train_seconds, 3)}

    def running_status(self) -> dict:
        """status.json while the run trains."""
        return {"state": "running", "epoch": self.trained_epochs, "kimg": round(self.images_seen / 1000, 3),
                "train_minutes": round(self.train_seconds / 60, 3),
                "checkpoint": self.checkpoint and os.path.basename(self.checkpoint),
                "checkpoint_epoch": self.checkpoint_epoch if self.checkpoint else None, "updated": time.time()}
