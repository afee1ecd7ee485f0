"""`TrainingBudget`: a run's progress in images and minutes, and the budget that stops it."""

from __future__ import annotations

import time

import keras

from .run import Run


class TrainingBudget(keras.callbacks.Callback):
    """Counts the real images trained on (`images_per_step` a step) and the time spent in `fit` into
    `run` (both carry over a resume through the checkpoints), and stops training at the end of the
    batch where either reaches its budget: `minutes` of training or `kimg` thousand images, in all,
    counting what a resumed run had done. `run.budget_reached` then says which; `RunCheckpoint`
    saves the weights there (mid-epoch, as for an interrupt) and `training.train` reports the run
    complete. Without a budget it only counts."""

    def __init__(self, images_per_step, minutes=None, kimg=None, run=None):
        super().__init__()
        self.images_per_step, self.minutes, self.kimg = int(images_per_step), minutes, kimg
        self.run = run or Run()
        self._last = None

    def on_train_begin(self, logs=None):
        self._last = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        self.run.train_seconds += now - self._last
        self._last = now
        self.run.images_seen += self.images_per_step
        reached = self.reached()
        if reached and not self.run.budget_reached:
            self.run.budget_reached = reached
            self.model.stop_training = True
            print(f"\nbudget of {self.minutes:g} minutes reached" if reached == "minutes" else
                  f"\nbudget of {self.kimg:g} kimg reached", "(saving a checkpoint after this batch)", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()  # the epoch's callbacks (pictures, metrics) count as training time
        self.run.train_seconds += now - self._last
        self._last = now

    def reached(self) -> str | None:
        """Which budget the run has reached ("minutes", "kimg"), or None."""
        if self.minutes is not None and self.run.train_seconds >= 60.0 * self.minutes:
            return "minutes"
        if self.kimg is not None and self.run.images_seen >= 1000.0 * self.kimg:
            return "kimg"
        return None
