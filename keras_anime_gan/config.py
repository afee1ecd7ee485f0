"""A run's configuration: `TrainConfig`, and `resolve_config`, the one function that turns what a
user stated (flags, a `--config` file, the run already in `--out`) into a checked, resolved
TrainConfig (`TrainConfig.resolved`: checked once, every derived value computed once). `train()`
and `config.json` then hold the values actually used: the batch size and the model's options with
every derived value filled in (StyleGAN2-ADA's preset widths, R1 gamma and EMA half-life, every
model's learning rates). `check_resumable` is the one check that a configuration can continue a run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from .errors import ConfigError

STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
DEFAULT_SYNTHETIC_IMAGES = 2048
# The embedded default run (no --data, no --config, neither --resolution nor --epochs stated):
# small enough to finish in a few minutes on a 2-core CPU.
EMBEDDED_DEFAULT = {"resolution": 32, "epochs": 12, "batch_size": 64}
EMBEDDED_DEFAULT_OPTIONS = {"width": 32}
# Run-level options a resumed run keeps (the model's `fixed` options are kept too): they define its
# networks and data, and its random streams come back from the checkpoint. Not the precision:
# checkpoints hold float32 variables, so a run resumes in any precision.
FIXED_RUN_OPTIONS = ("model", "resolution", "data", "synthetic_images", "seed", "init_from")


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
    epochs: int | None = 50  # None: until a budget (minutes, kimg) stops the run
    steps_per_epoch: int | None = None
    minutes: float | None = None  # a training budget in minutes, counting what a resumed run had done
    kimg: float | None = None  # a budget of real images shown, in thousands
    lr_decay: float | None = None  # decay both learning rates linearly to zero over this last share of the run
    synthetic_images: int = DEFAULT_SYNTHETIC_IMAGES
    flip: bool = True
    allow_upscale: bool = False
    seed: int = 0
    jit: bool | None = None
    precision: str = "auto"
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
    init_from: str | None = None  # a new StyleGAN2-ADA run starts from these networks (an NVIDIA .pkl or a run folder)
    model_options: dict = field(default_factory=dict)
    is_resolved = False  # not a field: True on what `resolved()` returns
    model_chosen = True  # not a field: False for a new run of `resolve_config` that named no --model

    def validate(self) -> None:
        """Check every option (a ConfigError naming it, before any work starts); changes nothing."""
        from .gans.registry import checked_options, model_class
        from .precision import check_precision

        self._check_types()
        model_class(self.model)  # ConfigError listing the models
        positive = {"epochs": self.epochs, "sample_interval": self.sample_interval,
                    "checkpoint_interval": self.checkpoint_interval, "metric_interval": self.metric_interval,
                    "synthetic_images": self.synthetic_images, "metric_images": self.metric_images,
                    "resolution": self.resolution, "batch_size": self.batch_size,
                    "steps_per_epoch": self.steps_per_epoch}
        for name, value in positive.items():
            if (value is not None or name not in ("batch_size", "steps_per_epoch", "epochs")) and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for name in ("minutes", "kimg"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ConfigError(f"--{name} must be a positive number, got {value!r}")
        if self.epochs is None and self.minutes is None and self.kimg is None:
            raise ConfigError("a run needs --epochs, --minutes or --kimg to know when to stop")
        if self.lr_decay is not None and (isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, (int, float))
                                          or not 0.0 < self.lr_decay <= 1.0):
            raise ConfigError(f"--lr-decay must be a share of the run in (0, 1], e.g. 0.5 for its second half, "
                              f"got {self.lr_decay!r}")
        if isinstance(self.keep_checkpoints, bool) or not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 0:
            raise ConfigError(f"keep_checkpoints must be an integer >= 0 (0: keep all), got {self.keep_checkpoints!r}")
        for name in ("flip", "allow_upscale", "stop_on_failure"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        options = checked_options(self.model, self.resolution, self.model_options)  # ConfigError naming the option
        from .metrics import METRICS

        unknown = [m for m in self.metric_list if m not in METRICS]
        if unknown:
            raise ConfigError(f"--metrics takes {', '.join(METRICS)} (comma-separated, or none), got {unknown}")
        if {"kid", "fid"} & set(self.metric_list):
            from .metrics import inception_weights_path

            inception_weights_path(self.inception_weights)  # MissingWeightsError says what to download
        check_precision(self.precision)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy == "multi-worker" and not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multi-worker needs TF_CONFIG (the cluster and this worker's task) in the "
                              "environment of every worker; see docs/training.md, distributed training")
        if self.data is not None:
            self._check_data(self.batch_size or model_class(self.model).default_batch_size(self.resolution, options))

    def resolved(self) -> "TrainConfig":
        """This configuration, checked (`validate`), with every derived value filled in once: the model's
        default batch when none is given, and every model option for that batch (preset values,
        learning rates, StyleGAN2-ADA's R1 gamma and EMA half-life; `GAN.resolve_options`). What
        `train()` runs and config.json holds."""
        from .gans.registry import model_class, resolved_options

        self.validate()
        batch = self.batch_size or model_class(self.model).default_batch_size(self.resolution, self.options())
        options = resolved_options(self.model, self.resolution, self.model_options, batch)
        config = dataclasses.replace(self, batch_size=batch, model_options=options.values())
        config.is_resolved = True
        return config

    def _check_types(self) -> None:
        """A value of the wrong JSON type (from a --config file) is one ConfigError naming the option."""
        texts = ("out", "model", "precision", "strategy", "metrics")
        optional_texts = ("data", "inception_weights", "init_from")
        for name in texts + optional_texts:
            value = getattr(self, name, None)
            if not isinstance(value, str) and not (value is None and name in optional_texts):
                raise ConfigError(f"{name} must be a string, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"--seed must be an integer, got {self.seed!r}")
        if self.jit not in (None, True, False):
            raise ConfigError(f"jit must be true, false or null (the faster mode), got {self.jit!r}")
        if not (self.verbose in ("auto", 0, 1, 2) and not isinstance(self.verbose, bool)):
            raise ConfigError(f"verbose must be \"auto\", 0, 1 or 2, got {self.verbose!r}")

    def _check_data(self, batch_size) -> None:
        from .data.sources import describe_source  # no TensorFlow

        source = describe_source(self.data)  # raises DatasetError (a UserError) with the reason
        count = source["num_images"]
        if count < batch_size:
            raise ConfigError(f"--data {self.data} has {count} images, fewer than one batch of {batch_size}: "
                              "lower --batch-size")
        stored = source.get("resolution")
        if self.init_from and stored and stored != self.resolution:
            raise ConfigError(f"--data {self.data} holds {stored} px images and the networks of --init-from "
                              f"{self.init_from} are {self.resolution} px: convert the images at --resolution "
                              f"{self.resolution} (keras-anime-gan convert SRC DEST --resolution {self.resolution})")
        if stored and stored < self.resolution and not self.allow_upscale:
            raise ConfigError(f"--data {self.data} holds {stored} px images and --resolution {self.resolution} would "
                              f"upscale them: train at --resolution {stored}, reconvert larger images, or pass "
                              "--allow-upscale")

    def options(self):
        """The model's options dataclass, filled from `model_options` and validated."""
        from .gans.registry import model_options

        return model_options(self.model, self.model_options)

    @property
    def metric_list(self) -> list[str]:
        return [m.strip() for m in self.metrics.split(",") if m.strip() and m.strip() != "none"]

    def to_json(self) -> dict:
        """{run-level options..., "model": ..., "model_options": {...}}: what config.json holds."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values) -> "TrainConfig":
        """A config from `to_json`'s layout (a config.json or a --config file). Unknown names are a
        ConfigError; so is anything but a JSON object."""
        if not isinstance(values, dict):
            raise ConfigError(f"a configuration must be a JSON object of option names and values, got "
                              f"{type(values).__name__} {json.dumps(values)[:60]}")
        values = dict(values)
        values.pop("mixed_precision", None)  # written (always false) by 0.1 development versions
        unknown = sorted(set(values) - {item.name for item in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown option(s) in config: {', '.join(unknown)}")
        if not isinstance(values.get("model_options", {}), dict):
            raise ConfigError(f"model_options must be a JSON object, got {values['model_options']!r}")
        return cls(**values)


def read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def saved_config(out: str) -> TrainConfig | None:
    """The configuration of the run in `out` (its config.json), or None."""
    path = os.path.join(out, "config.json")
    if not os.path.exists(path):
        return None
    try:
        return TrainConfig.from_json(read_json(path))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path} is unreadable ({error}); choose another --out") from None


def load_config_file(path) -> dict:
    """The options a --config JSON file states, as a dict; a ConfigError for an unreadable file or
    anything but a JSON object of known names."""
    try:
        values = read_json(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"--config {path}: {error}") from None
    try:
        TrainConfig.from_json(values)
    except ConfigError as error:
        raise ConfigError(f"--config {path}: {error}") from None
    return values


def check_resumable(out: str, saved: TrainConfig, config: TrainConfig) -> None:
    """A ConfigError when `config` cannot continue the run `saved` in `out`: the one check of resume
    compatibility. A run keeps its `FIXED_RUN_OPTIONS` and its model's fixed options (networks, the
    EMA): its checkpoints and random streams depend on them."""
    refused = [f"--{key.replace('_', '-')} {getattr(config, key)} (the run has {getattr(saved, key)})"
               for key in FIXED_RUN_OPTIONS if getattr(config, key) != getattr(saved, key)]
    if not refused:
        before, now = saved.options(), config.options()
        refused = [f"{key}={getattr(now, key)} (the run has {getattr(before, key, None)})"
                   for key in type(now).fixed_names() if getattr(before, key, None) != getattr(now, key)]
    if refused:
        raise ConfigError(f"--out {out} holds a run whose networks, data and random streams stay as they were; it "
                          f"cannot continue with {'; '.join(refused)}. Choose another --out to train a new run")


def resumed_config(out: str, overrides: dict | None = None, saved: TrainConfig | None = None) -> TrainConfig:
    """The saved configuration of the run in `out` (`saved`, when the caller read it already) with
    `overrides` applied where that is safe (`check_resumable`).

    `overrides` holds run-level options and `model_options`, as given (what the user stated).
    Epochs, intervals, metrics, batch size, precision, strategy and the model's non-fixed options
    (learning rates, loss settings) may change; `FIXED_RUN_OPTIONS` and the model's fixed options
    (its networks, the EMA) may not.
    """
    saved = saved or saved_config(out)
    if saved is None:
        raise ConfigError(f"--resume: {out} holds no run to resume (no config.json)")
    overrides = dict(overrides or {})
    option_overrides = dict(overrides.pop("model_options", None) or {})
    config = dataclasses.replace(saved, **overrides, out=out,
                                 model_options={**saved.model_options, **option_overrides})
    check_resumable(out, saved, config)
    return config


def default_out(model: str, data: str | None) -> str:
    return os.path.join("runs", model if data else f"{model}-synthetic")


def resolve_config(stated: dict | None = None, config_file: str | None = None, resume: bool = False) -> TrainConfig:
    """The resolved, validated TrainConfig of a run: the one place the command line's flags, a
    --config file and the run already in `out` are combined.

    stated: run-level options and `model_options` the user gave (flags), None values meaning
        "not given"; they override the --config file's.
    config_file: a --config JSON file (TrainConfig's layout).
    resume: continue the run in `out`. A folder that holds a run is resumed without it too (an
        interrupted run continues); `out` defaults to runs/MODEL (runs/MODEL-synthetic without data).

    A run in `out` supplies every option not stated (`resumed_config` refuses what cannot change);
    a new run without data, --config, --resolution or --epochs is the embedded default run
    (`EMBEDDED_DEFAULT`). The result is checked and resolved (`TrainConfig.resolved`).
    """
    stated = {key: value for key, value in (stated or {}).items() if value is not None}
    options = dict(stated.pop("model_options", None) or {})
    if config_file:
        from_file = load_config_file(config_file)
        options = {**(from_file.pop("model_options", None) or {}), **options}
        stated = {**from_file, **stated}
    out = stated.pop("out", None)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"out must be a string (the run folder), got {out!r}")
    if out is not None:
        out = os.fspath(out)
    if out is None:
        if resume:
            raise ConfigError("--resume needs --out, the run folder to continue")
        out = default_out(stated.get("model", TrainConfig.model), stated.get("data"))
    saved = saved_config(out)
    if resume or saved is not None:
        if saved is None:
            raise ConfigError(f"--resume: {out} holds no run to resume")
        _check_options_belong(saved.model, options)
        config = resumed_config(out, {**stated, "model_options": options}, saved=saved)
    else:
        if stated.get("init_from"):
            stated, options = _with_init_from(stated, options)
        config = TrainConfig.from_json({**stated, "out": out})
        _check_options_belong(config.model, options)
        if config.data is None and not config_file and not {"resolution", "epochs", "init_from"} & set(stated):
            for key, value in EMBEDDED_DEFAULT.items():
                if key not in stated:
                    setattr(config, key, value)
            from .gans.registry import model_class

            names = model_class(config.model).Options.names()
            options = {**{k: v for k, v in EMBEDDED_DEFAULT_OPTIONS.items() if k in names}, **options}
        config.model_options = options
    if {"minutes", "kimg"} & set(stated) and "epochs" not in stated:
        config.epochs = None  # a budget without --epochs: until the budget
    resolved = config.resolved()
    resolved.model_chosen = "model" in stated or saved is not None or bool(stated.get("init_from"))
    return resolved


def _check_options_belong(model, options) -> None:
    """An option of another model is an error that says whose it is."""
    from .gans.registry import model_class, model_names

    valid = set(model_class(model).Options.names())
    for name in options:
        if name not in valid:
            owners = {other: item for other in model_names() for item in model_class(other).Options.fields()
                      if item.name == name}
            flag = "--" + (next((item.metadata.get("flag") for item in owners.values()), None) or name).replace("_", "-")
            raise ConfigError(f"{flag if owners else name} is an option of {', '.join(owners) or 'no model'}, not of "
                              f"{model}; {model} takes {', '.join(sorted(valid))}")


def init_from_network(source) -> tuple[int, dict]:
    """(resolution, network options) of the networks `--init-from` names: an NVIDIA StyleGAN2-ADA
    snapshot (.pkl, read safely) or a StyleGAN2-ADA run folder."""
    source = os.fspath(source)
    if os.path.isdir(source):
        saved = saved_config(source)
        if saved is None or saved.model != "stylegan2-ada":
            raise ConfigError(f"--init-from {source}: a StyleGAN2-ADA run folder or NVIDIA snapshot is needed"
                              f"{'' if saved is None else f', this folder holds a {saved.model} run'}")
        return saved.resolution, saved.options().values("network")
    if not os.path.exists(source):
        raise ConfigError(f"--init-from {source} does not exist")
    from .nvidia import read_snapshot, snapshot_options

    resolution, options = snapshot_options(read_snapshot(source))
    options.pop("preset", None)  # the new run's own training settings
    return resolution, options


def _with_init_from(stated: dict, options: dict) -> tuple[dict, dict]:
    """A new run's stated options completed with the networks of `--init-from`: the model, the
    resolution and every network option are the source's; a stated one that differs is refused."""
    source = stated["init_from"]
    resolution, network = init_from_network(source)
    if stated.get("model", "stylegan2-ada") != "stylegan2-ada":
        raise ConfigError(f"--init-from starts a StyleGAN2-ADA run; --model {stated['model']} cannot take its networks")
    clashes = [f"--resolution {stated['resolution']} (the networks are {resolution} px)"] \
        if stated.get("resolution") not in (None, resolution) else []
    clashes += [f"{key}={value} (the networks have {network[key]})" for key, value in options.items()
                if key in network and value != network[key]]
    if clashes:
        raise ConfigError(f"--init-from {source} fixes the networks; it cannot start a run with {'; '.join(clashes)}")
    return {**stated, "model": "stylegan2-ada", "resolution": resolution}, {**options, **network}
