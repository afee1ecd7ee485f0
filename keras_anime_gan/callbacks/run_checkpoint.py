"""`RunCheckpoint`: when a run is checkpointed (complete epochs, signals, never non-finite weights);
`checkpoints.py` is how."""

from __future__ import annotations

import logging
import math
import os
import signal

import keras

from .. import checkpoints
from ._logs import _EpochProgress, _non_finite_logs
from .run import Run

log = logging.getLogger(__name__)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves everything needed to resume: the GAN's weights (generator, discriminator, EMA), both
    optimizers' state, the GAN's random-stream state, the epoch counter and the run's history rows
    so far (`run.history`: the epoch's own row is recorded before saving).

    A checkpoint is written only from finite weights (and finite epoch logs), and only
    - at the end of an epoch that ran all its batches, every `every` epochs, at the last epoch,
      and when training stops there; an epoch cut short (a failure, a time budget) is never
      saved as complete;
    - or on SIGTERM / the first Ctrl-C (SIGINT), or when a `TrainingBudget` is reached, at the end
      of the current batch, under its own name (`epoch-NNNN-interrupted-bBBBB`, or `-budget-` for a
      budget: NNNN complete epochs and BBBB batches of the next; resume repeats that epoch's data
      from its start), then training stops cleanly. A stop during an epoch's last batch saves that
      complete epoch instead.
    Non-finite weights are never saved: `run.failure` says why, and training stops. What it did is
    in `run` (a `Run`): `checkpoint`, `trained_epochs`, `batches_run`, `interrupted_by`. See
    `checkpoints.save_checkpoint` for how a checkpoint replaces the previous one.
    """

    def __init__(self, directory, every=1, keep=2, handle_signals=True, run=None):
        super().__init__()
        self.directory, self.every, self.keep = directory, every, keep
        self.handle_signals = handle_signals
        self.run = run or Run()
        self._previous_handlers = {}
        self._epoch = 0
        self._progress = _EpochProgress()
        self._interrupt_handled = False

    @property
    def interrupted_by(self):
        return self.run.interrupted_by

    @interrupted_by.setter
    def interrupted_by(self, value):
        self.run.interrupted_by = value

    # -- signals --
    def on_train_begin(self, logs=None):
        found = checkpoints.find_latest(self.directory)  # quietly: resuming from it has warned of a broken latest.json
        if found is not None:
            self.run.saved(found[0], found[1]["epoch"])
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not the main thread
                    pass

    def _on_signal(self, signum, frame):
        if self.interrupted_by is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.run.interrupted_by = signal.Signals(signum).name
        print(f"\n{self.interrupted_by} received: saving a checkpoint after this batch, then stopping", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.run.batches_run += max(1, batch + 1 - self._progress.batches)
        self._progress.batch_end(batch, self.model)
        if self.run.stopping is None or self._interrupt_handled:
            return
        self.model.stop_training = True
        steps = (self.params or {}).get("steps")
        if steps and batch + 1 >= steps:
            return  # the epoch is complete: on_epoch_end saves it as such
        self._interrupt_handled = True
        self._save_checked(self._epoch, logs, interrupted_at_batch=batch + 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._progress.begin(epoch)
        self.run.trained_epochs = max(self.run.trained_epochs, epoch)

    def on_epoch_end(self, epoch, logs=None):
        if not self._progress.complete(self.params):
            log.info("epoch %d stopped after %d batches: not checkpointed", epoch + 1, self._progress.batches)
            return
        self.run.record_epoch(epoch, logs)  # the checkpoint holds its own epoch's row
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        stopping = bool(self.model.stop_training) or self.run.stopping is not None
        if (epoch + 1) % self.every == 0 or last or stopping:
            self._save_checked(epoch + 1, logs)
        if self.run.stopping is not None:
            self._interrupt_handled = True
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # -- saving / loading --
    def _save_checked(self, completed_epochs, logs, interrupted_at_batch=None):
        bad = _non_finite_logs(logs)
        try:
            if bad:
                raise checkpoints.NonFiniteError(f"non-finite metrics {bad}")
            return self.save(completed_epochs, interrupted_at_batch=interrupted_at_batch)
        except checkpoints.NonFiniteError as error:
            where = (f"epoch {completed_epochs + 1}, batch {interrupted_at_batch}" if interrupted_at_batch
                     else f"the end of epoch {completed_epochs}")
            kept = os.path.basename(self.run.checkpoint) if self.run.checkpoint else "none"
            message = f"{error} at {where}: not checkpointed (last good checkpoint: {kept}); stopping"
            self.run.fail("non_finite", message)
            log.warning("checkpoint: %s", message)
            self.model.stop_training = True
            return None

    def save(self, completed_epochs, interrupted_at_batch=None):
        path = checkpoints.save_checkpoint(self.model, self.directory, completed_epochs, keep=self.keep,
                                           interrupted_at_batch=interrupted_at_batch, history=self.run.history,
                                           progress=self.run.progress(),
                                           stopped_by="budget" if self.run.budget_reached else "interrupt")
        self.run.saved(path, completed_epochs)
        return path
