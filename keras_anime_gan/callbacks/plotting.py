"""Figures of a run: the losses and tracked metrics of history.csv (`LossPlot`, `plot_history`), and
the sample-quality metrics of metrics.jsonl (`plot_metrics`, drawn by `MetricCallback`). Each figure
is built by a function that returns it (`history_figure`, `metrics_figure`; None: nothing to draw),
so what it shows can be checked, and written by one that saves it atomically and closes it."""

from __future__ import annotations

import json
import math
import os

import keras

from ..atomic import write_atomic
from .history import history_columns, history_rows


class LossPlot(keras.callbacks.Callback):
    """After each epoch, plot every column of `history.csv` (as written by HistoryLog or
    keras.callbacks.CSVLogger, resumed runs included): G and D losses together, as in the GAN
    Versus report, and each other tracked metric in its own panel."""

    def __init__(self, history_csv, output_path):
        super().__init__()
        self.history_csv, self.output_path = history_csv, output_path

    def on_epoch_end(self, epoch, logs=None):
        plot_history(self.history_csv, self.output_path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, output_path) -> bool:
    if figure is None:
        return False
    figure.tight_layout()
    write_atomic(output_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    _pyplot().close(figure)
    return True


def plot_history(history_csv, output_path) -> bool:
    """Write `history_figure(history_csv)` as a PNG; False (nothing written) when there is nothing to draw."""
    return _save(history_figure(history_csv), output_path)


def history_figure(history_csv):
    """G and D losses over epochs in the first panel, every other column with a value in a panel of
    its own (only the epochs that have one); None without an epoch."""
    plt = _pyplot()
    history = history_columns(history_rows(history_csv))
    if not history.get("epoch"):
        return None
    epochs = [value + 1 for value in history["epoch"]]
    others = [key for key in history if key not in ("epoch", "d_loss", "g_loss")
              and not all(math.isnan(value) for value in history[key])]  # only NaN values: nothing to draw
    figure, axes = plt.subplots(1 + len(others), 1, figsize=(7, 3 + 2 * len(others)), squeeze=False)
    axis = axes[0, 0]
    for key, label in (("g_loss", "G loss"), ("d_loss", "D loss")):
        if key in history:
            axis.plot(epochs, history[key], label=label, marker="." if len(epochs) < 30 else None)
    axis.set_title("Generator and discriminator loss during training")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.legend()
    for axis, key in zip(axes[1:, 0], others):
        # Only the epochs where it was computed: a line through empty cells would draw nothing.
        points = [(epoch, value) for epoch, value in zip(epochs, history[key]) if not math.isnan(value)]
        axis.plot(*zip(*points), color="tab:green", marker="." if len(points) < 30 else None)
        axis.set_ylabel(key)
        axis.set_xlabel("epoch")
    return figure


def plot_metrics(jsonl_path, output_path, records=None) -> bool:
    """Write `metrics_figure(...)` as a PNG; False (nothing written) when there is nothing to draw."""
    return _save(metrics_figure(jsonl_path, records), output_path)


def metrics_figure(jsonl_path, records=None):
    """Each headline metric of a metrics.jsonl (or of `records`) over epochs, one panel each, with the
    latest real-vs-real noise floor as a dashed line; None when no record has an epoch."""
    plt = _pyplot()
    if records is None:
        if not jsonl_path or not os.path.exists(jsonl_path):
            return None
        with open(jsonl_path, encoding="utf-8") as file:
            records = [json.loads(line) for line in file if line.strip()]
    records = [record for record in records if "epoch" in record]
    # The headline value of each metric; per-level and per-part keys (swd_64, color_hist, kid_std) stay in the file.
    names = sorted({key for record in records for key in record["results"] if "_" not in key})
    if not names:
        return None
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 2.6 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        points = [(record["epoch"], record["results"][name]) for record in records if name in record["results"]]
        axis.plot(*zip(*points), marker="o", color="tab:purple", label=name)
        floors = [record["noise_floor"][f"{name}_floor"] for record in records
                  if f"{name}_floor" in record.get("noise_floor", {})]
        if floors:
            axis.axhline(floors[-1], color="grey", linestyle="--", label="real vs real (noise floor)")
            axis.legend(fontsize="small")
        axis.set_ylabel({"swd": "SWD x1e3", "color": "colour distance"}.get(name, name.upper()))
        axis.set_xlabel("epoch")
    axes[0, 0].set_title("Sample quality during training (lower is better)")
    return figure
