"""Keras callbacks for GAN training: pictures, curves, failure watching and checkpoints.

Each works in any `gan.fit(...)`; `train.py` simply combines them.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import logging
import math
import os
import signal
import time

import keras
import numpy as np
from PIL import Image

from .atomic import write_atomic as _write_atomic
from .atomic import write_json_atomic  # noqa: F401  (public here too)
from .checkpoints import (CHECKPOINT_FILES, NonFiniteError, checkpoint_folders, find_latest, latest_checkpoint,  # noqa: F401
                          load_gan_weights, non_finite_variables, restore_checkpoint, save_checkpoint)
from .sampling import as_uint8_images, image_grid, latents_for_seed, render, to_uint8  # noqa: F401  (image_grid, to_uint8 public here too)

log = logging.getLogger(__name__)


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


class SampleGrid(keras.callbacks.Callback):
    """After every `every` epochs, save `samples/epoch_NNNN.png`: the generator (its EMA weights when
    the GAN keeps them) on the same fixed latents, `rows` x `rows` images. Optionally also logs the
    grid to TensorBoard under `tensorboard_dir`."""

    def __init__(self, directory, rows=8, seed=0, every=1, tensorboard_dir=None):
        super().__init__()
        self.directory, self.rows, self.seed, self.every = directory, rows, seed, every
        self.tensorboard_dir = tensorboard_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        gan = self.model
        latents = latents_for_seed(self.rows * self.rows, gan.latent_dim, self.seed)
        images = render(gan.ema_generator, latents)
        grid = image_grid(images, self.rows)
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
        _write_atomic(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
        if self.tensorboard_dir:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.tensorboard_dir, "samples"))
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self._writer.flush()


class Timelapse(keras.callbacks.Callback):
    """At the end of training, turn `samples/epoch_*.png` into `timelapse.gif` (and `.mp4` when
    imageio with its ffmpeg plugin is installed), like the reports' training timelapses."""

    def __init__(self, samples_directory, output_path, frame_ms=250):
        super().__init__()
        self.samples_directory, self.output_path, self.frame_ms = samples_directory, output_path, frame_ms

    def on_train_end(self, logs=None):
        make_timelapse(self.samples_directory, self.output_path, self.frame_ms)


def make_timelapse(samples_directory, output_path, frame_ms=250) -> list[str]:
    frames = sorted(glob.glob(os.path.join(samples_directory, "epoch_*.png")))
    if not frames:
        return []
    images = [Image.open(frame).convert("RGB") for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 4]  # linger on the last grid
    _write_atomic(
        output_path,
        lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0),
    )
    written = [output_path]
    try:
        import imageio.v2 as imageio

        video = os.path.splitext(output_path)[0] + ".mp4"
        with imageio.get_writer(video, fps=max(1, round(1000 / frame_ms)), macro_block_size=1) as writer:
            for image in images:
                writer.append_data(np.asarray(image))
        written.append(video)
    except Exception as error:  # imageio or its ffmpeg backend missing: the GIF is enough
        log.debug("no mp4 timelapse: %s", error)
    return written


class HistoryLog(keras.callbacks.Callback):
    """`history.csv`, one row per completed epoch, for runs that stop and resume (it replaces
    keras.callbacks.CSVLogger, whose header is fixed at the first epoch):

    - a column that appears later (a metric computed every few epochs) is added to the header,
      with empty cells where it was not computed; there are no empty `val_*` columns;
    - `rows` (from a checkpoint: `RunCheckpoint(history=...)` stores them) are the history so far:
      the file is rewritten from them when training begins, so a resumed run has exactly one row
      per epoch, whatever a killed process had written after its checkpoint or not yet written;
    - an epoch cut short by a stop at a batch gets no row: its numbers cover part of an epoch.

    The whole file is rewritten atomically after each epoch (it is small)."""

    def __init__(self, path, rows=None):
        super().__init__()
        self.path = path
        self.rows: list[dict] = sorted((dict(row) for row in rows or []), key=lambda row: row["epoch"])
        self._progress = _EpochProgress()

    def record(self, epoch, logs) -> dict:
        """Make `logs` the row of `epoch` (0-based), dropping any rows from it on."""
        row = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            number = _scalar(value)
            if number is not None and key != "epoch":
                row[key] = number
        self.rows = [old for old in self.rows if int(old["epoch"]) < epoch] + [row]
        return row

    def columns(self) -> list[str]:
        names = {"epoch": None}
        for row in self.rows:
            names.update(dict.fromkeys(row))
        return list(names)

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

        _write_atomic(self.path, write)

    def on_train_begin(self, logs=None):
        self.write()

    def on_epoch_begin(self, epoch, logs=None):
        self._progress.begin(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._progress.batch_end(batch, self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self._progress.complete(self.params):
            self.record(epoch, logs)
            self.write()


def history_rows(history_csv, before_epoch=None) -> list[dict]:
    """The rows of a history.csv as dicts (empty cells left out), one per epoch (the last one
    written wins), optionally only epochs < `before_epoch`: how a run resumed from a checkpoint
    that holds no history gets its rows."""
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


class LossPlot(keras.callbacks.Callback):
    """After each epoch, plot every column of `history.csv` (as written by HistoryLog or
    keras.callbacks.CSVLogger, resumed runs included): G and D losses together, as in the GAN
    Versus report, and each other tracked metric in its own panel."""

    def __init__(self, history_csv, output_path):
        super().__init__()
        self.history_csv, self.output_path = history_csv, output_path

    def on_epoch_end(self, epoch, logs=None):
        plot_history(self.history_csv, self.output_path)


def read_history(history_csv) -> dict[str, list[float]]:
    if not os.path.exists(history_csv):
        return {}
    with open(history_csv, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    columns = {key: [] for key in (rows[0] if rows else {})}
    for row in rows:
        for key in columns:
            value = row.get(key, "")
            columns[key].append(float(value) if value not in ("", None, "NA") else float("nan"))  # CSVLogger: NA
    return columns


def plot_history(history_csv, output_path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_history(history_csv)
    if not history.get("epoch"):
        return False
    epochs = [value + 1 for value in history["epoch"]]
    others = [key for key in history if key not in ("epoch", "d_loss", "g_loss")
              and not all(math.isnan(value) for value in history[key])]  # CSVLogger's empty val_ columns
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
    figure.tight_layout()
    _write_atomic(output_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
    return True


def sample_diversity(images: np.ndarray) -> float:
    """Mean pairwise RMS distance between images in [0, 1] units: near 0 when samples collapse."""
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    squared = (flat**2).sum(1)
    distances = np.maximum(squared[:, None] + squared[None] - 2 * flat @ flat.T, 0.0) / flat.shape[1]
    upper = np.triu_indices(len(images), 1)
    return float(np.sqrt(distances[upper]).mean())


def binary_entropy(p: float) -> float:
    """H(p) in nats (TensorFlow's cross-entropy uses natural logs); 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


def discriminator_loss_minimum(gan) -> float | None:
    """The lowest discriminator loss `gan`'s loss family can reach, or None where a lowest value
    means nothing (a Wasserstein critic's loss is unbounded below).

    bce: each side's cross-entropy against target t is at least H(t), so the minimum is
    0.5 * (H(1 - s) + H(s)), or 0.5 * H(1 - s) with one-sided smoothing (0 without smoothing).
    least_squares: the squared errors can reach their targets exactly, so 0 with any targets.
    A model of another family says its own with a `discriminator_loss_minimum()` method."""
    own = getattr(gan, "discriminator_loss_minimum", None)
    if callable(own):
        return own()
    family = getattr(gan, "loss_family", "bce")
    if family == "bce":
        smoothing = float(getattr(gan, "label_smoothing", 0.0) or 0.0)
        fake_target = 0.0 if getattr(gan, "one_sided", False) else smoothing
        return 0.5 * (binary_entropy(1.0 - smoothing) + binary_entropy(fake_target))
    if family == "least_squares":
        return 0.0
    return None


def lipschitz_critic_bound(gan) -> float | None:
    """The largest Wasserstein estimate |E f(x) - E f(G(z))| a 1-Lipschitz critic can give on
    images in [-1, 1]: at most the largest distance between two such images, 2 * sqrt(pixels x
    channels). None when the critic's input shape is unknown."""
    try:
        shape = gan.discriminator.input_shape
    except AttributeError:
        return None
    if isinstance(shape, list):
        shape = shape[0]
    dims = [int(d) for d in tuple(shape)[1:] if d is not None]
    if not dims or len(dims) != len(tuple(shape)) - 1:
        return None
    return 2.0 * math.sqrt(float(np.prod(dims)))


class TrainingMonitor(keras.callbacks.Callback):
    """Watches for the failures the reports watched for by eye.

    - any metric NaN or infinite: warns, and always stops (nothing useful follows);
    - the discriminator has won, by the GAN's `loss_family` (DCGAN and DynamicGAN: "bce"; LSGAN:
      "least_squares"; WGAN and WGAN-GP: "wasserstein"; "bce" when the GAN does not say):
      bce and least_squares: D's loss stays within `d_loss_margin` of the lowest value it can
      reach for `patience` consecutive batches. That minimum is 0 without label smoothing, but
      with smoothing s the BCE targets 1 - s and s (0 when one-sided) cannot be hit with zero
      loss: the minimum is 0.5 * (H(1 - s) + H(s)), about 0.325 for s = 0.1
      (`discriminator_loss_minimum`). Least-squares targets are reachable: 0 with any targets.
    - wasserstein: a critic's loss has no floor, so "D has won" means nothing there; instead the
      critic has diverged when its Wasserstein estimate |d_loss| stays above `critic_bound` for
      `patience` consecutive batches. By default that is the most a 1-Lipschitz critic can give
      on these images, 2 * sqrt(height x width x channels) (`lipschitz_critic_bound`): beyond it
      the Lipschitz constraint (gradient penalty or clipping, both keep the constant near or
      below 1) has failed. A bound relative to the estimate's own running level would misfire:
      |d_loss| rightly grows by orders of magnitude early on, from about 0 for an untrained
      critic. Where it explodes to inf or NaN, the first rule stops the run;
    - mode collapse, from the sample diversity of a fixed latent grid: it falls below
      `collapse_ratio` x the highest diversity this run has shown (a collapse after training went
      well), or, after `warmup_epochs`, below `collapse_ratio` x the diversity of `real_images`
      (uint8 pixels or [-1, 1] floats; an untrained generator is nearly constant, so the real
      reference waits for the warm-up).
    Diversity is added to the epoch logs as `diversity`, and with `real_images` the colour distance
    of the same samples to them (`metrics.color_distance`) as `sample_color`. Each kind of warning is logged once (a
    `logging` warning, shown on stderr when logging is not configured), every occurrence is kept
    in `events`, and it stops training when `stop_on_failure` is set; `failure` holds the event
    that stopped training. `d_loss_floor` is the old name of `d_loss_margin`.
    """

    def __init__(self, d_loss_margin=0.01, patience=50, collapse_ratio=0.25, real_images=None, num_samples=64,
                 seed=1234, stop_on_failure=False, check_every=1, warmup_epochs=5, critic_bound=None, *,
                 d_loss_floor=None):
        super().__init__()
        self.d_loss_margin = d_loss_margin if d_loss_floor is None else d_loss_floor
        self.patience, self.collapse_ratio = patience, collapse_ratio
        self.critic_bound = critic_bound
        self.real_diversity = self.real_images = None
        if real_images is not None:
            self.real_images = as_uint8_images(real_images, "TrainingMonitor real_images")
            self.real_diversity = sample_diversity(self.real_images)
        self.num_samples, self.seed, self.stop_on_failure, self.check_every = num_samples, seed, stop_on_failure, check_every
        self.warmup_epochs = warmup_epochs
        self.peak_diversity = 0.0
        self.events: list[dict] = []
        self.failure: dict | None = None
        self._streak = 0
        self._rule = None
        self._reported = set()

    def _event(self, kind, message, stop):
        event = {"kind": kind, "message": message, "time": time.time()}
        self.events.append(event)
        if kind not in self._reported:
            log.warning("training monitor: %s", message)
            self._reported.add(kind)
        if stop:
            if self.failure is None:
                self.failure = event
            self.model.stop_training = True

    def _discriminator_rule(self):
        """(loss family, threshold): D-won below minimum + margin, or critic-diverged above a bound."""
        if self._rule is None:
            family = getattr(self.model, "loss_family", "bce")
            if family == "wasserstein":
                bound = self.critic_bound if self.critic_bound is not None else lipschitz_critic_bound(self.model)
                self._rule = (family, bound)
            else:  # None for a family without a known minimum: no rule to apply
                self._rule = (family, discriminator_loss_minimum(self.model))
        return self._rule

    def on_train_begin(self, logs=None):
        self._rule, self._streak = None, 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = _non_finite_logs(logs)
        if bad:
            self._event("non_finite", f"non-finite metrics {bad} at batch {batch}; stopping", stop=True)
            return
        d_loss = _scalar(logs["d_loss"]) if "d_loss" in logs else None
        family, threshold = self._discriminator_rule()
        if d_loss is None or threshold is None:
            return
        if family == "wasserstein":
            flagged = abs(d_loss) > threshold
        else:
            flagged = d_loss < threshold + self.d_loss_margin
        self._streak = self._streak + 1 if flagged else 0
        if self._streak != self.patience:
            return
        if family == "wasserstein":
            self._event(
                "critic_diverged",
                f"the critic's Wasserstein estimate |d_loss| has stayed above {threshold:.4g} (the most a 1-Lipschitz "
                f"critic can give on these images) for {self.patience} batches, now {abs(d_loss):.4g}: the critic has "
                "diverged (try a lower critic learning rate, a larger --gp-weight, or a critic without BatchNorm)",
                stop=self.stop_on_failure,
            )
        else:
            lowest = f"its lowest possible value {threshold:.4f}" if threshold else "0, its lowest possible value"
            self._event(
                "d_won",
                f"discriminator loss within {self.d_loss_margin} of {lowest} for {self.patience} batches: D has "
                "won, G gets no useful gradient (try label smoothing, a lower D learning rate, or WGAN-GP)",
                stop=self.stop_on_failure,
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.check_every:
            return
        gan = self.model
        latents = latents_for_seed(self.num_samples, gan.latent_dim, self.seed)
        images = render(gan.ema_generator, latents)
        diversity = sample_diversity(images)
        if logs is not None:
            logs["diversity"] = diversity
            if self.real_images is not None:
                # Colour statistics against the real images: a drift that SWD cannot see (milliseconds).
                from .metrics import color_distance

                logs["sample_color"] = float(color_distance(self.real_images, images)["color"])
        references = [("this run's peak", self.peak_diversity)]
        if self.real_diversity is not None and epoch + 1 >= self.warmup_epochs:
            references.append(("real images", self.real_diversity))
        for name, reference in references:
            if reference > 0 and diversity < self.collapse_ratio * reference:
                self._event(
                    "mode_collapse",
                    f"sample diversity {diversity:.4f} is below {self.collapse_ratio} x {name} ({reference:.4f}): "
                    "the generator is collapsing onto few outputs",
                    stop=self.stop_on_failure,
                )
                break
        self.peak_diversity = max(self.peak_diversity, diversity)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves everything needed to resume: the GAN's weights (generator, discriminator, EMA), both
    optimizers' state, the GAN's random-stream state, the epoch counter and, given a `history`
    (`HistoryLog`), the history rows so far.

    A checkpoint is written only from finite weights (and finite epoch logs), and only
    - at the end of an epoch that ran all its batches, every `every` epochs, at the last epoch,
      and when training stops there; an epoch cut short (a failure, a time budget) is never
      saved as complete;
    - or on SIGTERM / the first Ctrl-C (SIGINT), at the end of the current batch, under its own
      name (`epoch-NNNN-interrupted-bBBBB`: NNNN complete epochs and BBBB batches of the next;
      resume repeats that epoch from its start), then training stops cleanly. A signal during
      an epoch's last batch saves that complete epoch instead.
    Non-finite weights are never saved: `failure` says why, and training stops. See
    `save_checkpoint` for how a checkpoint replaces the previous one.
    """

    def __init__(self, directory, every=1, keep=2, handle_signals=True, history=None):
        super().__init__()
        self.directory, self.every, self.keep = directory, every, keep
        self.handle_signals = handle_signals
        self.history = history
        self.interrupted_by = None
        self.completed_epochs = 0  # what the last checkpoint holds
        self.last_checkpoint: str | None = None  # its path: the newest good checkpoint in `directory`
        self.trained_epochs = None  # epochs run to their end, counted from the start of the run
        self.batches_run = 0
        self.failure: dict | None = None
        self._previous_handlers = {}
        self._epoch = 0
        self._progress = _EpochProgress()
        self._interrupt_handled = False

    # -- signals --
    def on_train_begin(self, logs=None):
        found = find_latest(self.directory)
        if found is not None:
            self.last_checkpoint, self.completed_epochs = found[0], int(found[1]["epoch"])
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not the main thread
                    pass

    def _on_signal(self, signum, frame):
        if self.interrupted_by is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.interrupted_by = signal.Signals(signum).name
        print(f"\n{self.interrupted_by} received: saving a checkpoint after this batch, then stopping", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.batches_run += max(1, batch + 1 - self._progress.batches)
        self._progress.batch_end(batch, self.model)
        if self.interrupted_by is None or self._interrupt_handled:
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
        if self.trained_epochs is None:
            self.trained_epochs = epoch

    def on_epoch_end(self, epoch, logs=None):
        if not self._progress.complete(self.params):
            log.info("epoch %d stopped after %d batches: not checkpointed", epoch + 1, self._progress.batches)
            return
        self.trained_epochs = epoch + 1
        if self.history is not None:
            self.history.record(epoch, logs)  # the checkpoint holds its own epoch's row
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        stopping = bool(self.model.stop_training) or self.interrupted_by is not None
        if (epoch + 1) % self.every == 0 or last or stopping:
            self._save_checked(epoch + 1, logs)
        if self.interrupted_by is not None:
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
                raise NonFiniteError(f"non-finite metrics {bad}")
            return self.save(completed_epochs, interrupted_at_batch=interrupted_at_batch)
        except NonFiniteError as error:
            where = (f"epoch {completed_epochs + 1}, batch {interrupted_at_batch}" if interrupted_at_batch
                     else f"the end of epoch {completed_epochs}")
            kept = os.path.basename(self.last_checkpoint) if self.last_checkpoint else "none"
            self.failure = {"kind": "non_finite", "message": f"{error} at {where}: not checkpointed "
                                                             f"(last good checkpoint: {kept}); stopping"}
            log.warning("checkpoint: %s", self.failure["message"])
            self.model.stop_training = True
            return None

    def save(self, completed_epochs, interrupted_at_batch=None):
        path = save_checkpoint(self.model, self.directory, completed_epochs, keep=self.keep,
                               interrupted_at_batch=interrupted_at_batch,
                               history=None if self.history is None else self.history.rows)
        self.completed_epochs, self.last_checkpoint = completed_epochs, path
        return path


class MetricCallback(keras.callbacks.Callback):
    """Every `every` epochs: generate `num_images` from fixed seeds, compute `metrics` ("swd",
    "color", "kid", "fid") against a fixed set of real images (uint8 pixels or [-1, 1] floats), add
    them to the epoch logs (so history.csv and TensorBoard get them), append a stylegan2-ada style
    line to `jsonl_path`, and plot every metric over epochs into `plot_path` (the GAN Versus
    report's FID-during-training figure).

    floor_images: a second set of real images, disjoint from `real_images`; the metrics between the
    two at the same n (the noise floor: what a perfect generator would score) are computed once and
    reported beside every value (`swd_floor`, ... in the records, dashed in the plot)."""

    def __init__(self, real_images, metrics=("swd", "color"), every=1, num_images=None, extractor=None,
                 inception_weights=None, jsonl_path=None, plot_path=None, seed=0, floor_images=None):
        super().__init__()
        self.real = as_uint8_images(real_images, "MetricCallback real_images")
        self.metrics, self.every = tuple(metrics), every
        self.num_images = num_images or len(self.real)
        self.extractor, self.inception_weights = extractor, inception_weights
        self.jsonl_path, self.plot_path, self.seed = jsonl_path, plot_path, seed
        self.floor_images = None if floor_images is None else as_uint8_images(floor_images, "MetricCallback floor_images")
        self.floor: dict | None = None
        self.records: list[dict] = []

    def _noise_floor(self):
        from .metrics import noise_floor

        if self.floor is None and self.floor_images is not None:
            count = min(self.num_images, len(self.floor_images))
            self.floor = noise_floor(self.real[:count], self.floor_images[:count], self.metrics, self.extractor,
                                     self.inception_weights)
        return self.floor or {}

    def on_epoch_end(self, epoch, logs=None):
        from .metrics import append_jsonl, compute_metrics, metric_name

        if (epoch + 1) % self.every:
            return
        gan = self.model
        fake = gan.generate(self.num_images, seed=self.seed)
        results = compute_metrics(self.real[: self.num_images], fake, self.metrics, self.extractor, self.inception_weights)
        if logs is not None:
            logs.update(results)
        record = {"epoch": epoch + 1, "num_images": self.num_images, "results": results,
                  "metrics": [metric_name(m, self.num_images) for m in self.metrics]}
        floor = self._noise_floor()
        if floor:
            record["noise_floor"] = floor
        self.records.append(record)
        if self.jsonl_path:
            append_jsonl(self.jsonl_path, record)
        if self.plot_path:
            plot_metrics(self.jsonl_path, self.plot_path, records=None if self.jsonl_path else self.records)


def plot_metrics(jsonl_path, output_path, records=None) -> bool:
    """Each metric of a metrics.jsonl (or of `records`) over epochs, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if records is None:
        if not jsonl_path or not os.path.exists(jsonl_path):
            return False
        with open(jsonl_path, encoding="utf-8") as file:
            records = [json.loads(line) for line in file if line.strip()]
    records = [record for record in records if "epoch" in record]
    # The headline value of each metric; per-level and per-part keys (swd_64, color_hist, kid_std) stay in the file.
    names = sorted({key for record in records for key in record["results"] if "_" not in key})
    if not names:
        return False
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
    figure.tight_layout()
    _write_atomic(output_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
    return True
