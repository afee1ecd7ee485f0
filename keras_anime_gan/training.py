"""The main job: one call from a folder of faces to a trained, resumable, observable run.
`train(resolve_config(...))` does everything `python train.py` does (the command line in `cli.py`
only parses its flags; `config.resolve_config` turns them into a TrainConfig, and `resumed_config`
continues a run from its saved settings).
"""

from __future__ import annotations

import json
import logging
import os

from .config import TrainConfig, check_resumable, read_json, saved_config
from .errors import ConfigError, RunFailed, describe_os_error

log = logging.getLogger(__name__)
UNTIL_BUDGET = 10**9  # fit's epochs when only a budget (--minutes, --kimg) stops the run


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


def writer_folder(config: TrainConfig) -> str:
    """The folder this process writes: the run folder, or `out/.TYPE-N` for a multi-worker task
    other than the chief (every worker writes the same files; the chief's are the run's). Read
    from TF_CONFIG, so that the folder can be locked before TensorFlow starts."""
    if config.strategy not in ("auto", "multi-worker") or not os.environ.get("TF_CONFIG"):
        return config.out
    try:
        cluster = json.loads(os.environ["TF_CONFIG"])
        kind, index = cluster["task"]["type"], int(cluster["task"].get("index", 0))
    except (ValueError, KeyError, TypeError):
        raise ConfigError("TF_CONFIG is not a valid cluster description (JSON with cluster and task)") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster.get("cluster", {}))
    return config.out if chief else os.path.join(config.out, f".{kind}-{index}")


def _run_folder_entries(folder) -> list[str]:
    """What a run folder holds, without the hidden entries a run makes before it writes anything (its
    `.lock`, the `.worker-N` folders of multi-worker tasks)."""
    return [name for name in os.listdir(folder) if not name.startswith(".")] if os.path.isdir(folder) else []


def prepare_run_folder(config: TrainConfig, resume: bool) -> tuple[int, str | None]:
    """Check the output folder; returns (initial epoch, checkpoint to restore or None). Call it
    holding the folder's lock (`train` does), so what it finds cannot change under it.

    A run folder with a readable checkpoint resumes from it: the one latest.json names, or the
    newest complete one when latest.json is broken or a checkpoint's files do not match their
    checksums. A run folder without one starts over only when nothing would be lost (it stopped
    before its first checkpoint and recorded no epoch), and says so; otherwise it is refused. A
    resumed run must have epochs left to train, and be one this configuration can continue
    (`config.check_resumable`)."""
    from .checkpoints import check_format, latest_checkpoint

    if not _run_folder_entries(config.out):
        if resume:
            raise ConfigError(f"--resume: {config.out} holds no run to resume")
        return 0, None
    previous = saved_config(config.out)
    if previous is None:
        raise ConfigError(f"--out {config.out} exists and is not a run folder; choose another --out")
    check_resumable(config.out, previous, config)
    status = _read_status(config.out)
    latest = latest_checkpoint(os.path.join(config.out, "checkpoints"), verify=True)  # never a damaged one
    if status.get("state") == "complete" and not resume:
        raise ConfigError(
            f"--out {config.out} holds a finished run; pass --resume (with a larger --epochs) to continue it, "
            "or choose another --out"
        )
    if latest is None:
        _check_nothing_to_lose(config.out)
        print(f"WARNING: --out {config.out} holds a run that stopped before its first checkpoint: "
              "starting it again from epoch 0", flush=True)
        return 0, None
    path, epoch = latest
    check_format(config.out, path)
    _check_left_to_train(config, path, epoch)
    if status.get("state") == "imported":
        print(f"training the imported networks in {config.out} from {os.path.basename(path)}", flush=True)
    elif status.get("state") == "failed":
        print(f"resuming the failed run in {config.out} from its last good checkpoint {os.path.basename(path)} "
              f"(it failed: {status.get('reason', 'unknown reason')})", flush=True)
    elif not resume:
        print(f"resuming the interrupted run in {config.out} from {os.path.basename(path)}", flush=True)
    return epoch, path


def _check_left_to_train(config, checkpoint, epoch) -> None:
    """A ConfigError when the checkpoint has reached the run's epochs or its budget already."""
    from .checkpoints import checkpoint_progress

    if config.epochs is not None and epoch >= config.epochs:
        raise ConfigError(f"--epochs {config.epochs}: the run in {config.out} has trained {epoch} epoch(s) already; "
                          f"pass --epochs {epoch + 1} or more to continue it")
    progress = checkpoint_progress(checkpoint)
    minutes, kimg = progress["train_seconds"] / 60.0, progress["images_seen"] / 1000.0
    if config.minutes is not None and minutes >= config.minutes:
        raise ConfigError(f"--minutes {config.minutes:g}: the run in {config.out} has trained {minutes:.2f} minutes "
                          "already; pass a larger --minutes to continue it")
    if config.kimg is not None and kimg >= config.kimg:
        raise ConfigError(f"--kimg {config.kimg:g}: the run in {config.out} has seen {kimg:g} thousand images "
                          "already; pass a larger --kimg to continue it")


def _read_status(out) -> dict:
    try:
        return read_json(os.path.join(out, "status.json"))
    except (OSError, ValueError):
        return {}


def _check_nothing_to_lose(out) -> None:
    """Refuse to start over a run folder whose checkpoints are all broken or whose history has epochs."""
    from .callbacks import history_rows
    from .checkpoints import checkpoint_folders

    directory = os.path.join(out, "checkpoints")
    leftovers = [entry for entry, _ in checkpoint_folders(directory)]
    if leftovers or os.path.exists(os.path.join(directory, "latest.json")):
        raise ConfigError(
            f"--out {out} holds checkpoints but none is complete ({', '.join(leftovers) or 'only latest.json'}); "
            "refusing to start the run over: choose another --out, or delete the folder to start again"
        )
    rows = history_rows(os.path.join(out, "history.csv"))
    if rows:
        raise ConfigError(
            f"--out {out} holds {len(rows)} epoch(s) of history but no checkpoint to resume from; "
            "refusing to start the run over and overwrite them: choose another --out, or delete the folder"
        )


def _write_json(path, payload):
    from .atomic import write_json_atomic

    write_json_atomic(path, payload, indent=2)


# ----------------------------------------------------------------------------- data


# A run stopped by a budget on a few hundred faces would otherwise end an epoch (sample grid,
# checkpoint, metrics) every few steps: with 1,000 faces (31-step epochs) a third of a 30-minute
# run went there, and 100 faces make 3-step epochs. (NVIDIA's loop, too, ticks by thousands of
# images, not by passes.)
MIN_BUDGET_EPOCH_IMAGES = 10_000


def build_dataset(config: TrainConfig, global_batch: int, epoch_seed: int, batches_per_step: int = 1):
    """(endless dataset of global batches, steps per epoch): one pass over the data, each step
    consuming `batches_per_step` batches (a GAN's `real_batches_per_step`, e.g. WGAN's n_critic);
    a run with no --epochs (stopped by --minutes or --kimg) and no --steps-per-epoch makes each
    epoch at least MIN_BUDGET_EPOCH_IMAGES images.

    Always repeated with an explicit epoch length: with a dataset of unknown length Keras 3.15's
    fit performs one extra optimizer update at the end of every epoch."""
    import numpy as np
    import tensorflow as tf

    from .data import load_dataset, synthetic_faces
    from .data.sources import describe_source

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
                               shuffle=True, repeat=True, seed=epoch_seed, allow_upscale=config.allow_upscale)
        count = describe_source(config.data)["num_images"]
    images_per_step = global_batch * batches_per_step
    steps = config.steps_per_epoch or count // images_per_step
    if steps < 1:
        raise ConfigError(f"{count} images make no full batch of {global_batch}: lower --batch-size")
    if config.steps_per_epoch is None and config.epochs is None and steps * images_per_step < MIN_BUDGET_EPOCH_IMAGES:
        steps = -(-MIN_BUDGET_EPOCH_IMAGES // images_per_step)
        print(f"an epoch is {steps} steps ({steps * images_per_step:,} images, {steps * images_per_step / count:.3g} "
              f"passes over the {count:,}): a run stopped by --minutes or --kimg ticks (samples, checkpoints, "
              f"metrics) at least every {MIN_BUDGET_EPOCH_IMAGES:,} images; --steps-per-epoch sets it", flush=True)
    return dataset, steps


# ----------------------------------------------------------------------------- the run


def build_gan(config: TrainConfig):
    """The run's GAN from its resolved options (nothing derived again), uncompiled (in the caller's
    strategy scope)."""
    from .gans import model_class

    return model_class(config.model).from_options(config.resolution, config.options(), seed=config.seed,
                                                  batch_size=config.batch_size)


def train(config: TrainConfig, resume: bool = False, callbacks: list | None = None) -> dict:
    """Run (or resume) training as configured (checked and resolved once, `TrainConfig.resolved`);
    see `_train`. The run folder is locked while it trains (`locks.folder_lock`: a second process
    is refused), and the global Keras dtype policy is put back afterwards, so a mixed-precision run
    does not leak into the caller's next models."""
    import keras

    from .locks import folder_lock

    config = config if config.is_resolved else config.resolved()
    previous_policy = keras.mixed_precision.global_policy()
    try:
        with folder_lock(writer_folder(config), "run folder"):
            return _train(config, resume, callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(config: TrainConfig, resume: bool = False, callbacks: list | None = None) -> dict:
    """Run (or resume) training as configured; returns a summary dict. `callbacks` are added to the
    run's own (e.g. a time budget). Leaves in `config.out`:
    config.json, checkpoints/, samples/epoch_NNNN.png, timelapse.gif, history.csv, losses.png,
    tensorboard/, generator.keras, status.json.

    status.json `state`: "running" while it trains (and after a kill; `epoch` counts the epochs
    done, updated at each epoch's end); then "complete" (all epochs), "stopped" (a callback
    stopped it early), "interrupted" (SIGTERM/SIGINT, with an interrupt checkpoint) or "failed"
    (the monitor stopped it, the weights went non-finite, or a fault such as a full disk: `failure`
    and `reason` say why). Each names `checkpoint` / `checkpoint_epoch`, the checkpoint a new run
    resumes from, and `generator`, what generator.keras was written from: the final weights, the
    weights at the interrupt, or for a failed run the last good checkpoint's (never non-finite
    weights). A fault of the environment (OSError, a damaged data shard) raises `RunFailed` after
    status.json says so."""
    import tensorflow as tf

    initial_epoch, checkpoint = prepare_run_folder(config, resume)
    strategy = make_strategy(config.strategy)  # first: multi-worker needs an uninitialised runtime
    out = writer_folder(config)
    os.makedirs(out, exist_ok=True)
    try:
        return _run(config, strategy, out, initial_epoch, checkpoint, callbacks)
    except (OSError, tf.errors.DataLossError) as error:
        raise RunFailed(_record_fault(config, out, error)) from error
    except Exception as error:  # a bug or an unforeseen fault: the traceback stays, status.json tells the truth
        try:
            _write_json(os.path.join(out, "status.json"), {"state": "failed", "failure": "error",
                                                           "reason": f"{type(error).__name__}: {error}"[:2000]})
        except OSError:
            pass
        raise


def _record_fault(config, out, error) -> str:
    """status.json "failed" for a fault of the environment; returns the reason it gives."""
    from .checkpoints import latest_checkpoint

    found = latest_checkpoint(os.path.join(out, "checkpoints"))
    kept = (f"the last good checkpoint is {os.path.basename(found[0])}, which running the command again resumes "
            "from" if found else "no checkpoint was written yet")
    if isinstance(error, OSError):
        reason = f"{describe_os_error(error)}; {kept}"
    else:  # a damaged shard: TensorFlow's message names no file, explain_data_loss finds it
        from .data import explain_data_loss

        reason = f"{explain_data_loss(config.data, error)}; {kept}"
    try:
        _write_json(os.path.join(out, "status.json"), {
            "state": "failed", "failure": "os_error" if isinstance(error, OSError) else "data_loss", "reason": reason,
            "checkpoint": found and os.path.basename(found[0]), "checkpoint_epoch": found and found[1]})
    except OSError:
        reason += " (status.json could not be updated either)"
    return reason


def _run(config, strategy, out, initial_epoch, checkpoint, callbacks) -> dict:
    """The run's steps: start (precision, strategy, config.json, the GAN), fit, finish."""
    import time

    from . import callbacks as cb
    from .callbacks import Run

    precision, precision_reason = _start(config, strategy, out, initial_epoch, checkpoint)
    gan, restored = _build(config, strategy, checkpoint)
    dataset, steps = build_dataset(config, config.batch_size, config.seed + initial_epoch, gan.real_batches_per_step)
    _print_settings(config, gan, precision)
    run = Run(initial_epoch, history=_history_so_far(config, out, restored, checkpoint, initial_epoch),
              **restored.get("progress", {}))
    budget = cb.TrainingBudget(config.batch_size * gan.real_batches_per_step, config.minutes, config.kimg, run)
    decay = [cb.LearningRateDecay(config.lr_decay, budget)] if config.lr_decay else []
    started = time.time()
    gan.fit(dataset, epochs=config.epochs or UNTIL_BUDGET, initial_epoch=initial_epoch, steps_per_epoch=steps,
            callbacks=[budget, *decay, *(callbacks or []),
                       *_run_callbacks(config, out, run, next(iter(dataset)).numpy())],
            verbose=config.verbose)
    return _finish(config, gan, out, run, time.time() - started,
                   {"precision": precision, "precision_reason": precision_reason})


def _start(config, strategy, out, initial_epoch, checkpoint) -> tuple[str, str]:
    """Precision and seeds set, the strategy checked, config.json and a "running" status.json written."""
    import keras
    import tensorflow as tf

    from .gans.registry import model_class
    from .precision import apply_precision, choose_precision

    float32_on_cpu = model_class(config.model).float32_on_cpu_reason(config.resolution, config.options())
    precision, precision_reason = choose_precision(config.precision, float32_on_cpu=float32_on_cpu)
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
    # The precision as requested ("auto" stays auto: a resumed run chooses again on its machine);
    # status.json records the choice.
    _write_json(os.path.join(out, "config.json"), config.to_json())
    _write_json(os.path.join(out, "status.json"), {"state": "running", "epoch": initial_epoch,
                                                   "checkpoint": checkpoint and os.path.basename(checkpoint)})
    return precision, precision_reason


def _build(config, strategy, checkpoint):
    """(the compiled GAN, the restored checkpoint's state or {}): from the checkpoint, from the
    networks of --init-from, or new."""
    from . import checkpoints

    with strategy.scope():
        gan = build_gan(config)
        gan.compile(jit_compile=config.jit)  # the objective's optimizers with the options' rates and betas
        restored = {}
        if checkpoint:
            configured = gan.optimizer.learning_rates()
            restored = checkpoints.restore_checkpoint(gan, checkpoint)
            gan.optimizer.set_learning_rates(configured)  # the run's options, which --resume may have changed
            print(f"restored {checkpoint}: epoch {restored['epoch']}, {restored['g_updates']} generator updates",
                  flush=True)
        elif config.init_from:
            from .nvidia.weights import load_nvidia_state
            from .nvidia_runs import init_states

            # G, D and G_ema only: fresh optimizers, ADA's p at 0 and counters at 0, as NVIDIA's resume does.
            load_nvidia_state(gan, init_states(config.init_from))
            print(f"started from the networks of {config.init_from} (G, D and G_ema)", flush=True)
    return gan, restored


def _print_settings(config, gan, precision) -> None:
    import tensorflow as tf

    from .recipes import advice

    network = ", ".join(f"{key} {value}" for key, value in config.options().values("network").items())
    print(f"model {config.model} ({network}) at {config.resolution}px, XLA {'on' if gan.jit_compile else 'off'}, "
          f"{precision}", flush=True)
    recommended = None if config.model_chosen else advice(config.model, config.resolution, config.minutes,
                                                          bool(tf.config.list_physical_devices("GPU")))
    if recommended:
        print(f"note: {recommended}", flush=True)
    derived = ", ".join(f"{key} {value:.6g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in gan.training_settings().items())
    decay = f", decayed linearly to zero over the last {config.lr_decay:g} of the run" if config.lr_decay else ""
    print(f"training with {derived}{decay}", flush=True)


def _history_so_far(config, out, restored, checkpoint, initial_epoch) -> list[dict]:
    """The history rows the run starts from: the checkpoint's, or for a checkpoint from before
    checkpoints held them, history.csv's up to it."""
    from .callbacks import history_rows

    rows = restored.get("history")
    if rows is None:
        rows = history_rows(os.path.join(out, "history.csv"), before_epoch=initial_epoch) if checkpoint else []
    return rows


def _run_callbacks(config, out, run, real_batch) -> list:
    """The run's callbacks, all sharing `run`. Order matters only in one way: the monitor and the
    metrics add values to the epoch's logs, so they come before what records the logs (the history,
    the checkpoint that holds it, TensorBoard)."""
    import keras

    from . import callbacks as cb

    history_csv = os.path.join(out, "history.csv")
    samples = os.path.join(out, "samples")
    metrics = _metric_callbacks(config, out)
    tensorboard_dir = os.path.join(out, "tensorboard")
    return [
        cb.TrainingMonitor(real_images=real_batch[:64], stop_on_failure=config.stop_on_failure,
                           check_every=config.metric_interval, run=run),
        *metrics,
        cb.HistoryLog(history_csv, run=run),
        cb.RunCheckpoint(os.path.join(out, "checkpoints"), every=config.checkpoint_interval,
                         keep=config.keep_checkpoints, run=run),
        *_best_generator_callbacks(config, out, run, metrics),  # after the checkpoint, which resuming needs more
        cb.RunStatus(os.path.join(out, "status.json"), run),
        cb.LossPlot(history_csv, os.path.join(out, "losses.png")),
        cb.SampleGrid(samples, every=config.sample_interval, seed=config.seed, tensorboard_dir=tensorboard_dir),
        keras.callbacks.TensorBoard(tensorboard_dir, update_freq="epoch", write_graph=False),
        cb.Timelapse(samples, os.path.join(out, "timelapse.gif")),
    ]


def _finish(config, gan, out, run, elapsed, extra) -> dict:
    """generator.keras from the right weights (never non-finite ones), status.json's final state
    (with `extra`); returns the summary."""
    import keras

    from . import checkpoints
    from .precision import float32_model

    failure = run.failure
    if failure is None and not run.interrupted_by:
        bad = checkpoints.non_finite_variables(gan)
        if bad:
            failure = {"kind": "non_finite", "message": f"non-finite weights at the end of training ({', '.join(bad[:3])})"}
    found = checkpoints.latest_checkpoint(os.path.join(out, "checkpoints"), verify=True)
    generator_path, generator_from = os.path.join(out, "generator.keras"), None
    if failure is not None:
        state = "failed"
        if found is not None:  # the last good weights, never the failed ones
            checkpoints.load_gan_weights(gan, os.path.join(found[0], "gan.weights.h5"))
            checkpoints.save_generator(float32_model(gan.ema_generator), generator_path)
            generator_from = os.path.basename(found[0])
    else:
        # A float32 graph whatever the training precision. After an interrupt the weights are those
        # of the interrupt checkpoint (saved only when finite), so a stopped run can generate too.
        checkpoints.save_generator(float32_model(gan.ema_generator), generator_path)
        if run.interrupted_by:
            state, generator_from = "interrupted", os.path.basename(found[0]) if found else "weights at the interrupt"
        else:
            done = run.budget_reached or (config.epochs is not None and run.trained_epochs >= config.epochs)
            state, generator_from = ("complete" if done else "stopped"), "final weights"
    images = run.batches_run * gan.real_batches_per_step * config.batch_size  # batches_run counts steps
    summary = {
        "out": config.out, "state": state, "epoch": run.trained_epochs, "epochs": run.trained_epochs,
        "g_updates": int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations)), "seconds": round(elapsed, 1),
        "interrupted": run.interrupted_by, "images_per_second": round(images / elapsed, 1) if images and elapsed > 0
        else None, "monitor_events": [event["kind"] for event in run.events],
        "failure": failure and failure["kind"], "reason": failure and failure["message"],
        "checkpoint": found and os.path.basename(found[0]), "checkpoint_epoch": found and found[1],
        "generator": generator_from, "kimg": round(run.images_seen / 1000, 3),
        "train_minutes": round(run.train_seconds / 60, 3), "budget_reached": run.budget_reached,
        "best_generator": _best_generator(out), **extra}
    _write_json(os.path.join(out, "status.json"), summary)
    if failure is not None:
        print(f"training failed ({failure['kind']}, see status.json); last good checkpoint: "
              f"{summary['checkpoint'] or 'none'}, which running the command again resumes from", flush=True)
    return summary


def _best_generator(out) -> dict | None:
    """best_generator.keras's epoch, monitor, value and minutes (from its JSON), or None."""
    from .callbacks.best import read_best
    from .loading import BEST_GENERATOR_FILE

    record = read_best(os.path.join(out, BEST_GENERATOR_FILE))
    return record and {key: record.get(key) for key in ("epoch", "monitor", "value", "train_minutes", "kimg")}


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
        real = load_real_images(config.data, 2 * count, config.resolution, seed=config.seed,
                                allow_upscale=config.allow_upscale)
    reference, floor = real[:count], real[count:]
    if len(floor) < len(reference):
        print(f"note: {len(real)} real images are too few for a noise floor at {len(reference)} metric images "
              "(it needs twice as many); metrics are reported without it", flush=True)
        floor = None
    return [MetricCallback(reference, config.metric_list, every=config.metric_interval, num_images=len(reference),
                           inception_weights=config.inception_weights, jsonl_path=os.path.join(out, "metrics.jsonl"),
                           plot_path=os.path.join(out, "metrics.png"), floor_images=floor)]


def _best_generator_callbacks(config: TrainConfig, out: str, run, metrics) -> list:
    """The BestGenerator that keeps best_generator.keras by the metrics' worst ratio to their floor
    (without a floor: by the first metric alone); none without metrics."""
    from .callbacks import BestGenerator
    from .callbacks.metric import FLOOR_RATIO_METRICS
    from .loading import BEST_GENERATOR_FILE

    if not metrics:
        return []
    ratio = metrics[0].floor_images is not None and set(config.metric_list) & set(FLOOR_RATIO_METRICS)
    return [BestGenerator(os.path.join(out, BEST_GENERATOR_FILE), monitor="floor_ratio" if ratio
                          else config.metric_list[0], run=run, resume=run.trained_epochs > 0)]
