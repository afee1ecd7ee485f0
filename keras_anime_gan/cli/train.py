"""`train` (and `python train.py`): the run-level flags, one flag per model option, the run."""

from __future__ import annotations

import argparse
import json

from .common import _command


def _add_train(sub, flags=True):
    parser = _command(sub, "train", "train a GAN (the same as python train.py)", [
        "python train.py                                   # the embedded default run, ~2 min on 2 CPU cores",
        "python train.py --data tfrecords --model dcgan --resolution 64 --epochs 50 --out runs/faces",
        "python train.py --data tfrecords --model stylegan2-ada --preset auto --out runs/sg2",
        "python train.py --out runs/faces --resume --epochs 80   # continue a run with more epochs",
        "python train.py --data tfrecords --minutes 30 --out runs/half-hour   # a time budget; --kimg counts images",
    ], description="Train a GAN. With no --data it trains on the embedded synthetic faces. Every option below can "
                   "also come from a --config JSON file; the resolved configuration is saved as OUT/config.json.")
    if flags:
        add_train_arguments(parser)
    parser.set_defaults(run=run_train_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-level flags of `train`, then one group per set of models with the options they share,
    generated from the registry's options dataclasses."""
    from ..config import STRATEGIES, TrainConfig
    from ..gans.registry import model_names
    from ..metrics import METRICS
    from ..precision import PRECISIONS

    defaults = TrainConfig()
    add = parser.add_argument
    add("--config", help="JSON file of a TrainConfig ({\"model\": ..., \"model_options\": {...}, ...}); "
                         "flags override it")
    add("--data", help="image folder, converted TFRecord folder or NVIDIA StyleGAN -rNN folder "
                       "(default: the embedded synthetic faces)")
    add("--out", help="run folder (default runs/MODEL, or runs/MODEL-synthetic without --data)")
    add("--init-from", metavar="SNAPSHOT_OR_RUN",
        help="start a new StyleGAN2-ADA run from these networks: an NVIDIA network-snapshot-*.pkl (read without "
             "running its code) or a StyleGAN2-ADA run folder; G, D and G_ema are copied, the optimizers and ADA's p "
             "start fresh (fine-tuning, as NVIDIA's --resume=PKL)")
    add("--resume", action="store_true",
        help="continue the run in --out with its saved settings; flags given change epochs, intervals, metrics, "
             "learning rates and the like, but not the model, resolution, data, seed or networks")
    add("--model", choices=model_names(), help=f"which GAN (default {defaults.model})")
    add("--resolution", type=int, help=f"image size in pixels (default {defaults.resolution})")
    add("--allow-upscale", action="store_true", default=None,
        help="train at a --resolution above the data's own (its images are upscaled); refused otherwise")
    add("--batch-size", type=int, help="global batch size, split over replicas (default: the model's; 128, StyleGAN2-ADA "
                                       "its preset's, e.g. 32 at 64 px for auto)")
    add("--epochs", type=int, help=f"epochs to train in all, counting those a resumed run has done "
                                   f"(default {defaults.epochs})")
    add("--minutes", type=float, help="a training budget: stop after this many minutes of training in all, counting "
                                      "what a resumed run had done, with a final checkpoint; --resume with a larger "
                                      "one continues (without --epochs: no epoch limit)")
    add("--kimg", type=float, help="a training budget in thousands of real images shown, counted as --minutes is")
    add("--lr-decay", type=float, metavar="SHARE",
        help="decay both learning rates linearly to zero over the last SHARE of the run (its --minutes, --kimg or "
             "--epochs; 0.5: the second half, as pix2pix and CycleGAN do); default: constant rates")
    add("--steps-per-epoch", type=int, help="training steps per epoch; a step uses one real batch per D update "
                                            "(n_critic for wgan) (default: one pass over the data; at least "
                                            "10,000 images for a --minutes or --kimg run without --epochs)")
    add("--synthetic-images", type=int, help=f"size of the embedded default dataset (default {defaults.synthetic_images})")
    add("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    add("--seed", type=int, help=f"seed of the weights, the latents and the data order (default {defaults.seed})")
    add("--jit", dest="jit", action="store_true", default=None,
        help="XLA on (default: XLA on a GPU, graph mode with oneDNN on a CPU)")
    add("--no-jit", dest="jit", action="store_false", help="XLA off (graph mode)")
    add("--precision", choices=PRECISIONS,
        help="auto (the default): bfloat16 on GPUs of compute capability >= 8.0 and on CPUs with avx512_bf16 or "
             "amx_bf16 (where the model's networks gain from it there), float16 with loss scaling on GPUs of compute "
             "capability 7.x, float32 elsewhere")
    add("--strategy", choices=STRATEGIES,
        help="auto (the default): multi-worker when TF_CONFIG is set, mirrored with several GPUs, else default "
             "(one device); multi-worker needs TF_CONFIG in every worker's environment")
    add("--sample-interval", type=int, help="epochs between sample grids (default 1)")
    add("--checkpoint-interval", type=int, help="epochs between checkpoints (default 1)")
    add("--metric-interval", type=int, help="epochs between metric and diversity checks (default 1)")
    add("--metrics", help=f"quality metrics during training, comma-separated: {', '.join(METRICS)} or none "
                          f"(default {defaults.metrics}: they need no weights)")
    add("--metric-images", type=int, help=f"real and generated images per metric evaluation (default "
                                          f"{defaults.metric_images}; the noise floor uses as many more real ones)")
    add("--inception-weights", help="InceptionV3 no-top weights file for kid/fid (default: Keras's cache)")
    add("--stop-on-failure", action="store_true", default=None, help="stop when the monitor sees D win or collapse")
    add("--quiet", action="store_true", help="no progress bars")
    _add_model_option_arguments(parser)


MODEL_OPTION_PREFIX = "model_option__"  # argparse dest of a model option: the prefix + its field name


def model_option_flags() -> dict[str, dict]:
    """field name -> {"flag", "aliases", "type", "choices", "models": {model: field}} over every
    registered model; a field name means the same option wherever it appears."""
    import typing

    from ..gans.options import value_types
    from ..gans.registry import model_class, model_names

    flags: dict[str, dict] = {}
    for model in model_names():
        options = model_class(model).Options
        hints = typing.get_type_hints(options)
        for item in options.fields():
            types = [kind for kind in value_types(hints[item.name]) if kind is not type(None)]
            entry = flags.setdefault(item.name, {
                "flag": "--" + (item.metadata.get("flag") or item.name).replace("_", "-"),
                "aliases": item.metadata.get("aliases", ()), "type": types[0] if types else str,
                "choices": item.metadata.get("choices"), "models": {}})
            entry["models"][model] = item
    return flags


def _add_model_option_arguments(parser) -> None:
    from ..gans.registry import model_names

    every = model_names()
    groups: dict[tuple, list] = {}
    for name, entry in model_option_flags().items():
        groups.setdefault(tuple(m for m in every if m in entry["models"]), []).append((name, entry))
    for models, entries in sorted(groups.items(), key=lambda item: -len(item[0])):
        title = ("options of every model" if len(models) == len(every)
                 else f"options of {', '.join(models)}")
        group = parser.add_argument_group(title)
        for name, entry in entries:
            items = entry["models"]
            first = next(iter(items.values()))
            defaults = {model: item.default for model, item in items.items()}
            shown = sorted({repr(value) for value in defaults.values()})
            default_text = (f"default {next(iter(defaults.values()))}" if len(shown) == 1 else
                            "default " + ", ".join(f"{model}: {value}" for model, value in defaults.items()))
            help_text = first.metadata["help"] if shown == ["None"] else f"{first.metadata['help']} ({default_text})"
            dest = MODEL_OPTION_PREFIX + name
            names = [entry["flag"], *entry["aliases"]]
            if entry["type"] is bool:
                group.add_argument(*names, dest=dest, action="store_true", default=None, help=help_text)
                group.add_argument("--no-" + entry["flag"][2:], dest=dest, action="store_false",
                                   help=argparse.SUPPRESS)
            else:
                group.add_argument(*names, dest=dest, type=entry["type"], choices=entry["choices"], default=None,
                                   metavar=None if entry["choices"] else name.upper(), help=help_text)


def config_from_args(args: argparse.Namespace):
    """The resolved TrainConfig the flags describe (`config.resolve_config`)."""
    import dataclasses

    from ..config import TrainConfig, resolve_config

    names = {item.name for item in dataclasses.fields(TrainConfig)}
    stated = {key: value for key, value in vars(args).items() if key in names and value is not None}
    if args.quiet:
        stated["verbose"] = 0
    stated["model_options"] = {key[len(MODEL_OPTION_PREFIX):]: value for key, value in vars(args).items()
                               if key.startswith(MODEL_OPTION_PREFIX) and value is not None}
    return resolve_config(stated, config_file=args.config, resume=args.resume)


def run_train_command(args) -> int:
    from ..training import train

    config = config_from_args(args)
    summary = train(config, resume=args.resume)
    print(json.dumps(summary))
    if summary["interrupted"]:
        return 130
    return 1 if summary.get("state") == "failed" else 0
