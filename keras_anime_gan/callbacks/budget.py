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

    def used(self) -> float | None:
        """The share of the budget spent (the larger of minutes and kimg, at most 1), or None without
        a budget."""
        shares = [self.run.train_seconds / (60.0 * self.minutes)] if self.minutes is not None else []
        if self.kimg is not None:
            shares.append(self.run.images_seen / (1000.0 * self.kimg))
        return min(max(shares), 1.0) if shares else None

    def reached(self) -> str | None:
        """Which budget the run has reached ("minutes", "kimg"), or None."""
        if self.minutes is not None and self.run.train_seconds >= 60.0 * self.minutes:
            return "minutes"
        if self.kimg is not None and self.run.images_seen >= 1000.0 * self.kimg:
            return "kimg"
        return None


class LearningRateDecay(keras.callbacks.Callback):
    """Both learning rates held for the first part of a run, then decayed linearly to zero over its
    last `fraction` (pix2pix and CycleGAN's `linear` policy, there over their last epochs): the
    rates' oscillation shrinks as the budget ends, so the last generator is the settled one. Progress
    is `budget.used()` (minutes or kimg, counting a resumed run's) or, without a budget, epochs and
    batches of `fit`'s own count. Each batch sets `rate x min(1, (1 - progress) / fraction)` from
    the rates the optimizers had when `fit` began (a resumed run: its configured ones)."""

    def __init__(self, fraction: float, budget: TrainingBudget | None = None):
        super().__init__()
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"the decay's fraction must be in (0, 1], got {fraction!r}")
        self.fraction, self.budget = float(fraction), budget
        self.rates, self._epoch, self._factor = {}, 0, None

    def on_train_begin(self, logs=None):
        self.rates, self._factor = self.model.optimizer.learning_rates(), None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def progress(self, batch: int) -> float:
        used = self.budget.used() if self.budget is not None else None
        if used is not None:
            return used
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        return (self._epoch + batch / steps) / epochs if epochs and steps else 0.0

    def factor(self, batch: int) -> float:
        return max(0.0, min(1.0, (1.0 - self.progress(batch)) / self.fraction))

    def on_train_batch_begin(self, batch, logs=None):
        factor = self.factor(batch)
        if factor == self._factor:  # held: nothing to assign
            return
        self._factor = factor
        self.model.optimizer.set_learning_rates({name: None if rate is None else rate * factor
                                                 for name, rate in self.rates.items()})

    def on_train_end(self, logs=None):
        # What a resumed or continued `fit` starts from: the rates as configured, not the decayed ones.
        self.model.optimizer.set_learning_rates(self.rates)
