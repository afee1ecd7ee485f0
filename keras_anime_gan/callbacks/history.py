"""`history.csv`: `HistoryLog` writes it, `history_rows` is its one reader (a resumed run's rows,
the loss plot's columns through `history_columns`)."""

from __future__ import annotations

import contextlib
import csv
import math
import os

import keras

from ..atomic import write_atomic
from ._logs import _EpochProgress
from .run import Run


class HistoryLog(keras.callbacks.Callback):
    """`history.csv`, one row per completed epoch, for runs that stop and resume (it replaces
    keras.callbacks.CSVLogger, whose header is fixed at the first epoch):

    - a column that appears later (a metric computed every few epochs) is added to the header,
      with empty cells where it was not computed; there are no empty `val_*` columns;
    - the run's history rows (`run.history`, from a checkpoint when the run resumes, which
      `RunCheckpoint` saves) are the history so far: the file is rewritten from them when training
      begins, so a resumed run has exactly one row per epoch, whatever a killed process had
      written after its checkpoint or not yet written; `rows` starts a run of its own with them;
    - an epoch cut short by a stop at a batch gets no row: its numbers cover part of an epoch.

    The whole file is rewritten atomically after each epoch (it is small)."""

    def __init__(self, path, rows=None, run=None):
        super().__init__()
        self.path = path
        self.run = run or Run(history=rows or [])
        self._progress = _EpochProgress()

    @property
    def rows(self) -> list[dict]:
        return self.run.history

    def columns(self) -> list[str]:
        return _column_names(self.rows)

    def write(self) -> None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        columns = self.columns()

        def write(tmp):
            with open(tmp, "w", newline="", encoding="utf-8") as file:
                writer = csv.DictWriter(file, fieldnames=columns, restval="")
                writer.writeheader()
                for row in self.rows:
                    writer.writerow({key: value if key == "epoch" else repr(float(value)) for key, value in row.items()})

        write_atomic(self.path, write)

    def on_train_begin(self, logs=None):
        self.write()

    def on_epoch_begin(self, epoch, logs=None):
        self._progress.begin(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._progress.batch_end(batch, self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self._progress.complete(self.params):
            self.run.record_epoch(epoch, logs)
            self.write()


def _column_names(rows) -> list[str]:
    """"epoch", then every other key of `rows` in the order they first appear (a header's order)."""
    names = {"epoch": None}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def history_rows(history_csv, before_epoch=None) -> list[dict]:
    """The rows of a history.csv (HistoryLog's or keras.callbacks.CSVLogger's) as dicts, in epoch
    order, one per epoch (the last one written wins), optionally only epochs < `before_epoch`.
    Each row holds its epoch (an int) and its numbers (floats); empty cells, CSVLogger's "NA" and
    anything else that is not a number are left out, and so is a row without an epoch. No file:
    no rows. How a run resumed from a checkpoint that holds no history gets its rows, and what the
    loss plot draws."""
    if not os.path.exists(history_csv):
        return []
    with open(history_csv, newline="", encoding="utf-8") as file:
        by_epoch = {}
        for raw in csv.DictReader(file):
            try:
                epoch = int(float(raw.get("epoch", "")))
            except ValueError:
                continue
            row = {"epoch": epoch}
            for key, value in raw.items():
                if key not in ("epoch", None) and value not in ("", None, "NA"):
                    with contextlib.suppress(ValueError):
                        row[key] = float(value)
            by_epoch[epoch] = row
    return [by_epoch[epoch] for epoch in sorted(by_epoch) if before_epoch is None or epoch < before_epoch]


def history_columns(rows) -> dict[str, list[float]]:
    """`rows` (as `history_rows` reads them) as columns of floats, "epoch" first, one value per
    row: NaN where a row has none (a metric computed every few epochs). A column with no value in
    any row (CSVLogger's empty `val_*`) is absent."""
    return {name: [float(row.get(name, math.nan)) for row in rows] for name in _column_names(rows)} if rows else {}
