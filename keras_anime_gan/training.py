"""The main job: one call from a folder of faces to a trained, resumable, observable run.
`train(TrainConfig(...))` does everything `python train.py` does (the command line in `cli.py` only
parses its flags into a TrainConfig); `resumed_config(out)` continues a run from its saved settings.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field

from .errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
METRICS = ("swd", "color", "kid", "fid")
DEFAULT_SYNTHETIC_IMAGES = 2048


@dataclass
class TrainConfig:
    """What every run has; the model's own options are in `model_options` (see
    `keras_anime_gan.gans.registry`: `model_class(model).Options` says which there are). With no
    `data` the run uses the embedded synthetic faces. Defaults reproduce the DCGAN paper at 64 px."""

    data: str | None = None
    out: str = "runs/dcgan"
    model: str = "dcgan"
    resolution: int = 64
    batch_size: int | None = None  # None: the model's (`default_batch_size`: 128, StyleGAN2-ADA its preset's)
    epochs: int = 50
    steps_per_epoch: int | None = None
    synthetic_images: int = DEFAULT_SYNTHETIC_IMAGES
    flip: bool = True
    seed: int = 0
    jit: bool | None = None
    precision: str = "auto"
    mixed_precision: bool = False  # the older flag: an alias of precision="float16"
    strategy: str = "auto"
    sample_interval: int = 1
    checkpoint_interval: int = 1
    metric_interval: int = 1
    metrics: str = "swd,color"
    metric_images: int = 512
    inception_weights: str | None = None
    keep_checkpoints: int = 2
    stop_on_failure: bool = False
    verbose: int | str = "auto"
    model_options: dict = field(default_factory=dict)

    # Run-level options a resumed run keeps; the model's `fixed` options (its networks, EMA) too.
    # Not the precision: checkpoints hold float32 variables, so a run resumes in any precision.
    IDENTITY = ("model", "resolution", "data")

    def validate(self) -> None:
        """Raise ConfigError naming the option, before any work starts."""
        from .gans.registry import model_class

        cls = model_class(self.model)  # ConfigError listing the models
        options = self.options()  # ConfigError naming a bad or unknown option
        positive = {"resolution": self.resolution, "batch_size": self.batch_size, "epochs": self.epochs,
                    "sample_interval": self.sample_interval, "checkpoint_interval": self.checkpoint_interval,
                    "metric_interval": self.metric_interval, "synthetic_images": self.synthetic_images,
                    "metric_images": self.metric_images}
        if self.batch_size is None:
            del positive["batch_size"]  # the model's, once the resolution is known to be good
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        check = getattr(cls, "check_resolution", None)
        if check is not None:
            try:
                check(self.resolution, options)
            except ValueError as error:
                details = ", ".join(f"{key} {value}" for key, value in options.values("network").items())
                raise ConfigError(f"--resolution {self.resolution} is not supported by {self.model} ({details}): "
                                  f"{error}") from None
        if self.batch_size is None:
            self.batch_size = cls.default_batch_size(self.resolution, options)
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch must be >= 1, got {self.steps_per_epoch}")
        unknown = [m for m in self.metric_list if m not in METRICS]
        if unknown:
            raise ConfigError(f"--metrics takes {', '.join(METRICS)} (comma-separated, or none), got {unknown}")
        if {"kid", "fid"} & set(self.metric_list):
            from .metrics import inception_weights_path

            inception_weights_path(self.inception_weights)  # MissingWeightsError says what to download
        from .precision import PRECISIONS

        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.mixed_precision and self.precision not in ("auto", "float16"):
            raise ConfigError(f"--mixed-precision means --precision float16; it contradicts --precision {self.precision}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.data is not None:
            from .data.pipeline import describe_source

            source = describe_source(self.data)  # raises DatasetError (a UserError) with the reason
            count = source["num_images"]
            if count < self.batch_size:
                raise ConfigError(
                    f"--data {self.data} has {count} images, fewer than one batch of {self.batch_size}: "
                    "lower --batch-size"
                )

    def options(self):
        """The model's options dataclass, filled from `model_options` and validated."""
        from .gans.registry import model_options

        return model_options(self.model, self.model_options)

    @property
    def requested_precision(self) -> str:
        """`precision`, with the older `mixed_precision=True` read as float16."""
        return "float16" if self.mixed_precision and self.precision == "auto" else self.precision

    @property
    def metric_list(self) -> list[str]:
        return [m.strip() for m in self.metrics.split(",") if m.strip() and m.strip() != "none"]

    def to_json(self) -> dict:
        """{run-level options..., "model": ..., "model_options": {...}}: what config.json holds."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        """A config from `to_json`'s layout, or from the flat one of earlier versions (model options
        beside the run's, e.g. "width": 32, "dynamic_scale": 10): those move into `model_options`
        when the model has them and are dropped when it does not (earlier versions stored every
        model's options in every run). Unknown names are a ConfigError."""
        values = dict(values)
        run_fields = {item.name for item in dataclasses.fields(cls)}
        legacy = {key: values.pop(key) for key in list(values) if key in LEGACY_MODEL_OPTIONS}
        values.pop("extra", None)  # an unused field of earlier versions
        unknown = sorted(set(values) - run_fields)
        if unknown:
            raise ConfigError(f"unknown option(s) in config: {', '.join(unknown)}")
        config = cls(**values)
        if legacy:
            from .gans.registry import model_class

            names = set(model_class(config.model).Options.names())
            upgraded = {LEGACY_MODEL_OPTIONS[key]: value for key, value in legacy.items()
                        if LEGACY_MODEL_OPTIONS[key] in names and value is not None}
            config.model_options = {**upgraded, **(config.model_options or {})}
        return config


# Flat option names of earlier versions -> the model option they are now.
LEGACY_MODEL_OPTIONS = {
    "arch": "arch", "latent_dim": "latent_dim", "width": "width", "norm": "norm", "ema": "ema",
    "d_learning_rate": "d_learning_rate", "g_learning_rate": "g_learning_rate", "beta_1": "beta_1",
    "beta_2": "beta_2", "label_smoothing": "label_smoothing", "one_sided_smoothing": "one_sided",
    "n_critic": "n_critic", "gp_weight": "gp_weight", "clip_value": "clip_value", "dynamic_scale": "scale",
    "dynamic_d_min": "d_min", "dynamic_g_min": "g_min",
}
# Run-level options a resumed run may not change (the model's fixed options are refused too).
FIXED_RUN_OPTIONS = ("model", "resolution", "data")


def saved_config(out: str) -> TrainConfig | None:
    """The configuration of the run in `out` (its config.json, in any version's layout), or None."""
    path = os.path.join(out, "config.json")
    if not os.path.exists(path):
        return None
    try:
        return TrainConfig.from_json(_read_json(path))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path} is unreadable ({error}); choose another --out") from None


def resumed_config(out: str, overrides: dict | None = None) -> TrainConfig:
    """The saved configuration of the run in `out` with `overrides` applied where that is safe.

    `overrides` holds run-level options and `model_options`, as given (what the user stated).
    Epochs, intervals, metrics, batch size, precision, strategy and the model's non-fixed options
    (learning rates, loss settings) may change; the model, the resolution, the data and the model's
    fixed options (its networks, the EMA) may not: a different value is a ConfigError that says so.
    """
    config = saved_config(out)
    if config is None:
        raise ConfigError(f"--resume: {out} holds no run to resume (no config.json)")
    overrides = dict(overrides or {})
    option_overrides = dict(overrides.pop("model_options", None) or {})
    refused = [f"--{key.replace('_', '-')} {value} (the run has {getattr(config, key)})"
               for key, value in overrides.items() if key in FIXED_RUN_OPTIONS and value != getattr(config, key)]
    saved_options = config.options().values()
    fixed = set(type(config.options()).fixed_names())
    refused += [f"{key}={value} (the run has {saved_options.get(key)})" for key, value in option_overrides.items()
                if key in fixed and value != saved_options.get(key)]
    if refused:
        raise ConfigError(f"--out {out} holds a run whose networks and data stay as they were; it cannot resume "
                          f"with {'; '.join(refused)}. Choose another --out to train a new run")
    for key, value in overrides.items():
        setattr(config, key, value)
    config.model_options = {**config.model_options, **option_overrides}
    config.out = out
    return config


# ----------------------------------------------------------------------------- strategy


def make_strategy(name: str):
    """auto: MultiWorkerMirrored when TF_CONFIG is set, Mirrored with >1 GPU, else the default."""
    import tensorflow as tf

    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# ----------------------------------------------------------------------------- run folder


def _read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def prepare_run_folder(config: TrainConfig, resume: bool) -> tuple[int, str | None]:
    """Check the output folder; returns (initial epoch, checkpoint to restore or None).

    A run folder with a readable checkpoint resumes from it: the one latest.json names, or the
    newest complete one when latest.json is broken. A run folder without one starts over only
    when nothing would be lost (it stopped before its first checkpoint and recorded no epoch),
    and says so; otherwise it is refused."""
    from .callbacks import history_rows
    from .checkpoints import _checkpoints, latest_checkpoint

    config_path = os.path.join(config.out, "config.json")
    if not os.path.exists(config.out) or not os.listdir(config.out):
        if resume:
            raise ConfigError(f"--resume: {config.out} holds no run to resume")
        return 0, None
    if not os.path.exists(config_path):
        raise ConfigError(f"--out {config.out} exists and is not a run folder; choose another --out")
    previous = saved_config(config.out)
    differing = [key for key in TrainConfig.IDENTITY if getattr(previous, key) != getattr(config, key)]
    if not differing:
        before, now = previous.options(), config.options()
        differing = [key for key in type(now).fixed_names() if getattr(before, key, None) != getattr(now, key)]
    if differing:
        raise ConfigError(
            f"--out {config.out} holds another run (different {', '.join(differing)}); choose another --out"
        )
    status_path = os.path.join(config.out, "status.json")
    try:
        status = _read_json(status_path) if os.path.exists(status_path) else {}
    except ValueError:
        status = {}
    directory = os.path.join(config.out, "checkpoints")
    latest = latest_checkpoint(directory)
    if status.get("state") == "complete" and not resume:
        raise ConfigError(
            f"--out {config.out} holds a finished run; pass --resume (with a larger --epochs) to continue it, "
            "or choose another --out"
        )
    if latest is None:
        leftovers = [entry for entry, _ in _checkpoints(directory)]
        if leftovers or os.path.exists(os.path.join(directory, "latest.json")):
            raise ConfigError(
                f"--out {config.out} holds checkpoints but none is complete ({', '.join(leftovers) or 'only latest.json'}); "
                "refusing to start the run over: choose another --out, or delete the folder to start again"
            )
        rows = history_rows(os.path.join(config.out, "history.csv"))
        if rows:
            raise ConfigError(
                f"--out {config.out} holds {len(rows)} epoch(s) of history but no checkpoint to resume from; "
                "refusing to start the run over and overwrite them: choose another --out, or delete the folder"
            )
        print(f"WARNING: --out {config.out} holds a run that stopped before its first checkpoint: "
              "starting it again from epoch 0", flush=True)
        return 0, None
    path, epoch = latest
    if status.get("state") == "failed":
        print(f"resuming the failed run in {config.out} from its last good checkpoint {os.path.basename(path)} "
              f"(it failed: {status.get('reason', 'unknown reason')})", flush=True)
    elif not resume:
        print(f"resuming the interrupted run in {config.out} from {os.path.basename(path)}", flush=True)
    return epoch, path


def _write_json(path, payload):
    from .atomic import write_json_atomic

    write_json_atomic(path, payload, indent=2)


# ----------------------------------------------------------------------------- data


def build_dataset(config: TrainConfig, global_batch: int, epoch_seed: int, batches_per_step: int = 1):
    """(endless dataset of global batches, steps per epoch): one pass over the data, each step
    consuming `batches_per_step` batches (a GAN's `real_batches_per_step`, e.g. WGAN's n_critic).

    Always repeated with an explicit epoch length: with a dataset of unknown length Keras 3.15's
    fit performs one extra optimizer update at the end of every epoch."""
    import numpy as np
    import tensorflow as tf

    from .data import load_dataset, synthetic_faces
    from .data.pipeline import describe_source

    if config.data is None:
        faces = synthetic_faces(config.synthetic_images, config.resolution, seed=config.seed)
        images = faces.astype(np.float32) / 127.5 - 1.0
        dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=epoch_seed).repeat()
        if config.flip:
            dataset = dataset.map(lambda image: tf.image.random_flip_left_right(image, seed=epoch_seed))
        dataset = dataset.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        count = len(images)
    else:
        dataset = load_dataset(config.data, global_batch, resolution=config.resolution, flip=config.flip,
                               shuffle=True, repeat=True, seed=epoch_seed)
        count = describe_source(config.data)["num_images"]
    steps = config.steps_per_epoch or count // (global_batch * batches_per_step)
    if steps < 1:
        raise ConfigError(f"{count} images make no full batch of {global_batch}: lower --batch-size")
    return dataset, steps


# ----------------------------------------------------------------------------- the run


def build_gan(config: TrainConfig):
    """The run's GAN, uncompiled (in the caller's strategy scope)."""
    from .gans import create_gan

    return create_gan(config.model, config.resolution, seed=config.seed, **config.model_options)


def train(config: TrainConfig, resume: bool = False, callbacks: list | None = None) -> dict:
    """Run (or resume) training as configured; see `_train`. The global Keras dtype policy is put
    back afterwards, so a mixed-precision run does not leak into the caller's next models."""
    import keras

    previous_policy = keras.mixed_precision.global_policy()
    try:
        return _train(config, resume, callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(config: TrainConfig, resume: bool = False, callbacks: list | None = None) -> dict:
    """Run (or resume) training as configured; returns a summary dict. `callbacks` are added to the
    run's own (e.g. a time budget). Leaves in `config.out`:
    config.json, checkpoints/, samples/epoch_NNNN.png, timelapse.gif, history.csv, losses.png,
    tensorboard/, generator.keras, status.json.

    status.json `state`: "running" while it trains (and after a kill); then "complete" (all
    epochs), "stopped" (a callback stopped it early), "interrupted" (SIGTERM/SIGINT, with an
    interrupt checkpoint) or "failed" (the monitor stopped it, or the weights went non-finite:
    `failure` and `reason` say why). Each names `checkpoint` / `checkpoint_epoch`, the checkpoint
    a new run resumes from, and `generator`, what generator.keras was written from: the final
    weights, or for a failed run the last good checkpoint's (never non-finite weights)."""
    config.validate()
    initial_epoch, checkpoint = prepare_run_folder(config, resume)

    import keras
    import tensorflow as tf

    from . import callbacks as cb
    from . import checkpoints
    from .precision import float32_model

    strategy = make_strategy(config.strategy)  # first: multi-worker needs an uninitialised runtime
    from .precision import apply_precision, choose_precision

    precision, precision_reason = choose_precision(config.requested_precision)
    policy = apply_precision(precision)
    print(f"precision {precision} (Keras policy {policy}): {precision_reason}", flush=True)
    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas")
    label = next((name for name in ("MultiWorkerMirroredStrategy", "MirroredStrategy")
                  if isinstance(strategy, getattr(tf.distribute, name))), "default strategy")
    print(f"strategy {label}: global batch {config.batch_size} = {replicas} replica(s) x "
          f"{config.batch_size // replicas}", flush=True)

    resolver = getattr(strategy, "cluster_resolver", None)
    task_id = getattr(resolver, "task_id", None) if resolver is not None else None
    # Every worker writes the same files; the chief's (task 0) are the run's, the others' go to .worker-N.
    out = config.out if task_id in (0, None) else os.path.join(config.out, f".worker-{task_id}")
    os.makedirs(out, exist_ok=True)
    _write_json(os.path.join(out, "config.json"), {**config.to_json(), "precision": precision, "mixed_precision": False})
    _write_json(os.path.join(out, "status.json"), {"state": "running", "epoch": initial_epoch,
                                                   "checkpoint": checkpoint and os.path.basename(checkpoint)})

    with strategy.scope():
        gan = build_gan(config)
        gan.compile(jit_compile=config.jit)  # the model's paper optimizers with the options' rates and betas
        restored = {}
        if checkpoint:
            restored = checkpoints.restore_checkpoint(gan, checkpoint)
            print(f"restored {checkpoint}: epoch {restored['epoch']}, {restored['g_updates']} generator updates",
                  flush=True)
    dataset, steps = build_dataset(config, config.batch_size, config.seed + initial_epoch, gan.real_batches_per_step)
    network = ", ".join(f"{key} {value}" for key, value in config.options().values("network").items())
    print(f"model {config.model} ({network}) at {config.resolution}px, XLA {'on' if gan.jit_compile else 'off'}, "
          f"{precision}", flush=True)

    tensorboard_dir = os.path.join(out, "tensorboard")
    real_batch = next(iter(dataset)).numpy()
    history_csv = os.path.join(out, "history.csv")
    rows = restored.get("history")
    if rows is None:  # a checkpoint from before checkpoints held the history: trust history.csv up to it
        rows = cb.history_rows(history_csv, before_epoch=initial_epoch) if checkpoint else []
    history_log = cb.HistoryLog(history_csv, rows=rows)
    checkpointer = cb.RunCheckpoint(os.path.join(out, "checkpoints"), every=config.checkpoint_interval,
                                    keep=config.keep_checkpoints, history=history_log)
    monitor = cb.TrainingMonitor(real_images=real_batch[:64], stop_on_failure=config.stop_on_failure,
                                 check_every=config.metric_interval)
    callbacks = [
        *(callbacks or []),
        monitor,  # before the checkpoint, the history and TensorBoard: they record the diversity and metrics it adds
        *_metric_callbacks(config, out),
        checkpointer,  # stores the epoch's history row: history.csv is rebuilt from it on resume
        history_log,
        cb.LossPlot(history_csv, os.path.join(out, "losses.png")),
        cb.SampleGrid(os.path.join(out, "samples"), every=config.sample_interval, seed=config.seed,
                      tensorboard_dir=tensorboard_dir),
        keras.callbacks.TensorBoard(tensorboard_dir, update_freq="epoch", write_graph=False),
        cb.Timelapse(os.path.join(out, "samples"), os.path.join(out, "timelapse.gif")),
    ]
    started = time.time()
    gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                      callbacks=callbacks, verbose=config.verbose)
    elapsed = time.time() - started
    epochs_done = max(initial_epoch, checkpointer.trained_epochs or 0)  # epochs run to their end
    interrupted = checkpointer.interrupted_by
    failure = monitor.failure or checkpointer.failure
    g_updates = int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations))
    generator_path = os.path.join(out, "generator.keras")
    generator_from = None
    if failure is None and not interrupted:
        bad = checkpoints.non_finite_variables(gan)
        if bad:
            failure = {"kind": "non_finite", "message": f"non-finite weights at the end of training ({', '.join(bad[:3])})"}
    found = checkpoints.latest_checkpoint(os.path.join(out, "checkpoints"))
    if failure is not None:
        state = "failed"
        if found is not None:  # the last good weights, never the failed ones
            checkpoints.load_gan_weights(gan, os.path.join(found[0], "gan.weights.h5"))
            float32_model(gan.ema_generator).save(generator_path)
            generator_from = os.path.basename(found[0])
    elif interrupted:
        state = "interrupted"
    else:
        float32_model(gan.ema_generator).save(generator_path)  # a float32 graph whatever the training precision
        generator_from = "final weights"
        state = "complete" if epochs_done >= config.epochs else "stopped"
    summary = {
        "out": config.out, "state": state, "epochs": epochs_done,
        "g_updates": g_updates, "seconds": round(elapsed, 1), "interrupted": interrupted,
        "images_per_second": None, "monitor_events": [event["kind"] for event in monitor.events],
        "failure": failure and failure["kind"], "reason": failure and failure["message"],
        "checkpoint": found and os.path.basename(found[0]), "checkpoint_epoch": found and found[1],
        "generator": generator_from, "precision": precision, "precision_reason": precision_reason,
    }
    if checkpointer.batches_run and elapsed > 0:
        images = checkpointer.batches_run * gan.real_batches_per_step * config.batch_size  # batches_run counts steps
        summary["images_per_second"] = round(images / elapsed, 1)
    _write_json(os.path.join(out, "status.json"), summary)
    if failure is not None:
        print(f"training failed ({failure['kind']}, see status.json); last good checkpoint: "
              f"{summary['checkpoint'] or 'none'}, which running the command again resumes from", flush=True)
    return summary


# ----------------------------------------------------------------------------- metrics


def _metric_callbacks(config: TrainConfig, out: str) -> list:
    """The MetricCallback of a run: `metric_images` fixed real images against as many samples, and a
    second, disjoint set of as many real images for the noise floor (when the data has that many)."""
    if not config.metric_list:
        return []
    from .callbacks import MetricCallback
    from .data import synthetic_faces
    from .data.pipeline import load_real_images

    count = config.metric_images
    if config.data is None:
        real = synthetic_faces(2 * count, config.resolution, seed=config.seed + 1)  # faces the run never sees
    else:
        real = load_real_images(config.data, 2 * count, config.resolution, seed=config.seed)
    reference, floor = real[:count], real[count:]
    if len(floor) < len(reference):
        print(f"note: {len(real)} real images are too few for a noise floor at {len(reference)} metric images "
              "(it needs twice as many); metrics are reported without it", flush=True)
        floor = None
    return [MetricCallback(reference, config.metric_list, every=config.metric_interval, num_images=len(reference),
                           inception_weights=config.inception_weights, jsonl_path=os.path.join(out, "metrics.jsonl"),
                           plot_path=os.path.join(out, "metrics.png"), floor_images=floor)]
