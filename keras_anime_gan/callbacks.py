"""Keras callbacks for GAN training: pictures, curves, failure watching and checkpoints.

Each works in any `gan.fit(...)`; `train.py` simply combines them.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import math
import os
import shutil
import signal
import time

import keras
import numpy as np
from PIL import Image

from .sampling import as_uint8_images, image_grid, latents_for_seed, render, to_uint8  # noqa: F401  (image_grid, to_uint8 public here too)

log = logging.getLogger(__name__)


def _write_atomic(path: str, write) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def _scalar(value):
    """A float from a log value (Python number, NumPy or tensor scalar, 1-element array), else None."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value) if hasattr(value, "shape") else value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


def _non_finite_logs(logs) -> list[str]:
    return [key for key, value in (logs or {}).items() if (number := _scalar(value)) is not None and not math.isfinite(number)]


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


class LossPlot(keras.callbacks.Callback):
    """After each epoch, plot every column of `history.csv` (as written by keras.callbacks.CSVLogger,
    resumed runs included): G and D losses together, as in the GAN Versus report, and each other
    tracked metric in its own panel."""

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
        axis.plot(epochs, history[key], color="tab:green")
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
    least_squares: the squared errors can reach their targets exactly, so 0 with any targets."""
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
    Diversity is added to the epoch logs as `diversity`. Each kind of warning is logged once (a
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
        self.real_diversity = None
        if real_images is not None:
            self.real_diversity = sample_diversity(as_uint8_images(real_images, "TrainingMonitor real_images"))
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
            if family in ("bce", "least_squares"):
                self._rule = (family, discriminator_loss_minimum(self.model))
            elif family == "wasserstein":
                bound = self.critic_bound if self.critic_bound is not None else lipschitz_critic_bound(self.model)
                self._rule = (family, bound)
            else:
                self._rule = (family, None)  # an unknown family: no rule to apply
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
    optimizers' state, the GAN's random-stream state and the epoch counter.

    Each checkpoint is written to a temporary folder and renamed into place, then `latest.json` is
    replaced atomically, so a kill at any moment leaves the previous checkpoint intact. SIGTERM and
    the first Ctrl-C (SIGINT) ask for a checkpoint at the end of the current batch and a clean stop.
    """

    def __init__(self, directory, every=1, keep=2, handle_signals=True):
        super().__init__()
        self.directory, self.every, self.keep = directory, every, keep
        self.handle_signals = handle_signals
        self.interrupted_by = None
        self.completed_epochs = 0  # what the last checkpoint holds
        self._previous_handlers = {}
        self._epoch = 0

    # -- signals --
    def on_train_begin(self, logs=None):
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
        if self.interrupted_by is not None and not self.model.stop_training:
            # The interrupted epoch is not complete: resume repeats it from its start.
            self.save(self._epoch)
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 and self.interrupted_by is None:
            self.save(epoch + 1)

    def on_train_end(self, logs=None):
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # -- saving / loading --
    def save(self, completed_epochs):
        self.completed_epochs = completed_epochs
        return save_checkpoint(self.model, self.directory, completed_epochs, keep=self.keep)


def _optimizer_arrays(optimizer):
    return {f"v{index}": keras.ops.convert_to_numpy(variable) for index, variable in enumerate(optimizer.variables)}


def save_checkpoint(gan, directory, completed_epochs, keep=2) -> str:
    os.makedirs(directory, exist_ok=True)
    name = f"epoch-{completed_epochs:04d}"
    final = os.path.join(directory, name)
    tmp = os.path.join(directory, f".tmp-{name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    gan.save_weights(os.path.join(tmp, "gan.weights.h5"))
    np.savez(os.path.join(tmp, "d_optimizer.npz"), **_optimizer_arrays(gan.d_optimizer))
    np.savez(os.path.join(tmp, "g_optimizer.npz"), **_optimizer_arrays(gan.g_optimizer))
    np.save(os.path.join(tmp, "rng_state.npy"), keras.ops.convert_to_numpy(gan.rng.state))
    with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as file:
        json.dump({"epoch": completed_epochs, "g_updates": int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations)),
                   "d_updates": int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)), "time": time.time()}, file)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(os.path.join(directory, "latest.json"),
                  lambda path: open(path, "w", encoding="utf-8").write(json.dumps({"checkpoint": name, "epoch": completed_epochs})))
    existing = sorted(entry for entry in os.listdir(directory) if entry.startswith("epoch-"))
    for old in existing[:-keep] if keep else []:
        shutil.rmtree(os.path.join(directory, old), ignore_errors=True)
    return final


def latest_checkpoint(directory) -> tuple[str, int] | None:
    """(path, completed epochs) of the newest complete checkpoint, or None."""
    pointer = os.path.join(directory, "latest.json")
    if not os.path.exists(pointer):
        return None
    with open(pointer, encoding="utf-8") as file:
        latest = json.load(file)
    path = os.path.join(directory, latest["checkpoint"])
    return (path, int(latest["epoch"])) if os.path.isdir(path) else None


def restore_checkpoint(gan, path) -> dict:
    """Load a `save_checkpoint` folder into a compiled GAN of the same configuration."""
    gan.load_weights(os.path.join(path, "gan.weights.h5"))
    for optimizer, file in ((gan.d_optimizer, "d_optimizer.npz"), (gan.g_optimizer, "g_optimizer.npz")):
        arrays = np.load(os.path.join(path, file))
        if len(arrays.files) != len(optimizer.variables):
            raise ValueError(f"checkpoint {path} does not match this model's {file[:-4]} ({len(arrays.files)} vs "
                             f"{len(optimizer.variables)} variables): was it made with other options?")
        for index, variable in enumerate(optimizer.variables):
            variable.assign(arrays[f"v{index}"])
    gan.rng.reset(np.load(os.path.join(path, "rng_state.npy")))
    with open(os.path.join(path, "state.json"), encoding="utf-8") as file:
        return json.load(file)


class MetricCallback(keras.callbacks.Callback):
    """Every `every` epochs: generate `num_images` from fixed seeds, compute `metrics` ("swd", "kid",
    "fid") against a fixed set of real images (uint8 pixels or [-1, 1] floats), add them to the epoch logs (so history.csv
    and TensorBoard get them), append a stylegan2-ada style line to `jsonl_path`, and plot every
    metric over epochs into `plot_path` (the GAN Versus report's FID-during-training figure)."""

    def __init__(self, real_images, metrics=("swd",), every=1, num_images=None, extractor=None,
                 inception_weights=None, jsonl_path=None, plot_path=None, seed=0):
        super().__init__()
        self.real = as_uint8_images(real_images, "MetricCallback real_images")
        self.metrics, self.every = tuple(metrics), every
        self.num_images = num_images or len(self.real)
        self.extractor, self.inception_weights = extractor, inception_weights
        self.jsonl_path, self.plot_path, self.seed = jsonl_path, plot_path, seed
        self.records: list[dict] = []

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
    names = sorted({key for record in records for key in record["results"] if not key.endswith("_std")
                    and not key.startswith("swd_")})
    if not names:
        return False
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 2.6 * len(names)), squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        points = [(record["epoch"], record["results"][name]) for record in records if name in record["results"]]
        axis.plot(*zip(*points), marker="o", color="tab:purple")
        axis.set_ylabel(name.upper() if name != "swd" else "SWD x1e3")
        axis.set_xlabel("epoch")
    axes[0, 0].set_title("Sample quality during training (lower is better)")
    figure.tight_layout()
    _write_atomic(output_path, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
    return True
