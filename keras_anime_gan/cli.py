"""`keras-anime-gan` / `python -m keras_anime_gan`: a thin layer over the Python API.

Each sub-command parses its options, calls one library function and prints what it did.
User errors (bad paths, bad option values) print one `error:` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .errors import UserError


def _add_convert(sub):
    parser = sub.add_parser("convert", help="image folder or .zip -> sharded TFRecords (or StyleGAN -rNN files)")
    parser.add_argument("src", help="folder (searched recursively) or .zip of jpg/png/bmp/webp/gif images")
    parser.add_argument("dest", nargs="?", default="tfrecords", help="output folder (default: tfrecords)")
    parser.add_argument("--resolution", type=int, default=64, help="output size in pixels, >= 8 (default 64)")
    parser.add_argument("--format", default="raw", choices=["raw", "png", "stylegan"])
    parser.add_argument("--transform", default="center-crop", choices=["center-crop", "pad", "stretch"],
                        help="how non-square images become square")
    parser.add_argument("--resize-filter", default="lanczos", choices=["lanczos", "box", "bicubic"])
    parser.add_argument("--min-size", type=int, default=None,
                        help="skip images whose shorter side is below this (default: --resolution, so nothing is upscaled)")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    parser.add_argument("--dedupe", action="store_true", help="drop exact duplicate images")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="decompression-bomb guard: skip images with more pixels (default: Pillow's limit)")
    parser.add_argument("--workers", type=int, default=None, help="decode processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in DEST")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_convert)


def _run_convert(args) -> int:
    from .data.convert import convert_folder

    manifest = convert_folder(
        args.src, args.dest, args.resolution, format=args.format, transform=args.transform,
        resize_filter=args.resize_filter, min_size=args.min_size, shard_size=args.shard_size, seed=args.seed,
        dedupe=args.dedupe, max_pixels=args.max_pixels, workers=args.workers, overwrite=args.overwrite,
        progress=not args.quiet,
    )
    for entry in manifest["skipped"]:
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    print(json.dumps({
        "dest": args.dest, "num_images": manifest["num_images"], "resolution": manifest["resolution"],
        "format": manifest["format"], "files": len(manifest["shards"]), "skipped": len(manifest["skipped"]),
    }))
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. `command`: the one about to be parsed, when known; the train
    flags are then generated only for `train` (they import every model, and so TensorFlow, which
    the converter must not pay for: its workers are forked from a TensorFlow-free process)."""
    parser = argparse.ArgumentParser(prog="keras-anime-gan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub)
    for extend in _EXTENSIONS:
        if extend is _add_train:
            _add_train(sub, flags=command in (None, "train"))
        else:
            extend(sub)
    return parser


# ----------------------------------------------------------------------------- train

STRATEGY_CHOICES = ("auto", "default", "mirrored", "multi-worker")
PRECISION_CHOICES = ("auto", "float32", "bfloat16", "float16")


def _add_train(sub, flags=True):
    parser = sub.add_parser("train", help="train a GAN (the same as python train.py)")
    if flags:
        add_train_arguments(parser)
    parser.set_defaults(run=run_train_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-level flags of `train`, then one group per set of models with the options they share,
    generated from the registry's options dataclasses."""
    from .gans.registry import model_names
    from .training import TrainConfig

    defaults = TrainConfig()
    add = parser.add_argument
    add("--config", help="JSON file of a TrainConfig ({\"model\": ..., \"model_options\": {...}, ...}); "
                         "flags override it")
    add("--data", help="image folder, converted TFRecord folder or NVIDIA StyleGAN -rNN folder "
                       "(default: the embedded synthetic faces)")
    add("--out", help="run folder (default runs/MODEL)")
    add("--resume", action="store_true",
        help="continue the run in --out with its saved settings; flags given change epochs, intervals, metrics, "
             "learning rates and the like, but not the model, resolution, data or networks")
    add("--model", choices=model_names(), help=f"default {defaults.model}")
    add("--resolution", type=int, help=f"image size (default {defaults.resolution})")
    add("--batch-size", type=int, help="global batch size, split over replicas (default: the model's; 128, StyleGAN2-ADA "
                                    "its preset's, e.g. 32 at 64 px for auto)")
    add("--epochs", type=int)
    add("--steps-per-epoch", type=int, help="training steps per epoch; a step uses one real batch per D update "
                                            "(n_critic for wgan) (default: one pass over the data)")
    add("--synthetic-images", type=int, help="size of the embedded default dataset")
    add("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    add("--seed", type=int)
    add("--jit", dest="jit", action="store_true", default=None, help="XLA on (default: XLA on a GPU, graph mode with oneDNN on a CPU)")
    add("--no-jit", dest="jit", action="store_false", help="XLA off (graph mode)")
    add("--precision", choices=PRECISION_CHOICES,
        help="auto (the default): bfloat16 on GPUs of compute capability >= 8.0 and on CPUs with avx512_bf16 or "
             "amx_bf16, float16 with loss scaling on GPUs of compute capability 7.x, float32 elsewhere")
    add("--mixed-precision", action="store_true", default=None, help="the same as --precision float16")
    add("--strategy", choices=STRATEGY_CHOICES)
    add("--sample-interval", type=int, help="epochs between sample grids")
    add("--checkpoint-interval", type=int, help="epochs between checkpoints")
    add("--metric-interval", type=int, help="epochs between metric and diversity checks")
    add("--metrics", help="quality metrics during training, comma-separated: swd and color (the default; no "
                          "weights needed), kid, fid, or none")
    add("--metric-images", type=int, help=f"real and generated images per metric evaluation (default "
                                          f"{defaults.metric_images}; the noise floor uses as many more real ones)")
    add("--inception-weights", help="InceptionV3 no-top weights file for kid/fid")
    add("--stop-on-failure", action="store_true", default=None, help="stop when the monitor sees D win or collapse")
    add("--quiet", action="store_true", help="no progress bars")
    _add_model_option_arguments(parser)


MODEL_OPTION_PREFIX = "model_option__"  # argparse dest of a model option: the prefix + its field name


def model_option_flags() -> dict[str, dict]:
    """field name -> {"flag", "aliases", "type", "choices", "models": {model: field}} over every
    registered model; a field name means the same option wherever it appears."""
    import typing

    from .gans.options import value_types
    from .gans.registry import model_class, model_names

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
    from .gans.registry import model_names

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


def _stated_model_options(args) -> dict:
    return {key[len(MODEL_OPTION_PREFIX):]: value for key, value in vars(args).items()
            if key.startswith(MODEL_OPTION_PREFIX) and value is not None}


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the flags describe. A --out that holds a run (and --resume) starts from that
    run's saved configuration, changed by what the flags state (`training.resumed_config`)."""
    import dataclasses

    from .gans.registry import model_class
    from .training import TrainConfig, resumed_config, saved_config

    values = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as file:
                values.update(json.load(file))
        except (OSError, ValueError) as error:
            raise UserError(f"--config {args.config}: {error}") from None
    file_config = TrainConfig.from_json(values)  # upgrades an earlier version's flat layout
    stated = {key: value for key, value in dataclasses.asdict(file_config).items()
              if key in values or key == "model_options" and file_config.model_options}
    names = {item.name for item in dataclasses.fields(TrainConfig)}
    stated.update({key: value for key, value in vars(args).items() if key in names and value is not None})
    if getattr(args, "quiet", False):
        stated["verbose"] = 0
    options = {**stated.pop("model_options", {}), **_stated_model_options(args)}
    out = stated.get("out")
    if out is None and not args.resume:
        model = stated.get("model", TrainConfig.model)
        out = os.path.join("runs", model if stated.get("data") else f"{model}-synthetic")
    if out is None:
        raise UserError("--resume needs --out, the run folder to continue")
    if args.resume or saved_config(out) is not None:
        stated.pop("out", None)
        config = resumed_config(out, {**stated, "model_options": options}) if saved_config(out) else None
        if config is None:
            raise UserError(f"--resume: {out} holds no run to resume")
        _check_options_belong(config.model, options)
        return config
    config = TrainConfig.from_json({**stated, "out": out})
    _check_options_belong(config.model, options)
    config.model_options = options
    if config.data is None and not {"resolution", "epochs"} & set(stated) and not args.config:
        # The embedded default: small enough to finish in a few minutes on a 2-core CPU.
        config.resolution, config.epochs, config.batch_size = 32, 12, 64
        if "width" in model_class(config.model).Options.names():
            config.model_options.setdefault("width", 32)
    return config


def _check_options_belong(model, options) -> None:
    """A flag of another model's option is an error that says whose it is."""
    from .gans.registry import model_class

    valid = set(model_class(model).Options.names())
    flags = model_option_flags()
    for name in options:
        if name not in valid:
            owners = ", ".join(flags[name]["models"]) if name in flags else "no model"
            raise UserError(f"{flags[name]['flag'] if name in flags else name} is an option of {owners}, not of "
                            f"{model}; {model} takes {', '.join(sorted(valid))}")


def run_train_command(args) -> int:
    from .training import train

    config = config_from_args(args)
    summary = train(config, resume=args.resume)
    print(json.dumps(summary))
    if summary["interrupted"]:
        return 130
    return 1 if summary.get("state") == "failed" else 0


def _add_export(sub):
    parser = sub.add_parser("export", help="write a generator as a TF Serving SavedModel (saved_models/NAME/VERSION)")
    parser.add_argument("source", help="run folder (its generator.keras) or a .keras generator file")
    parser.add_argument("--name", required=True, help="model name, as clients will call it")
    parser.add_argument("--base", default="saved_models", help="export root (default saved_models)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: one above the highest)")
    parser.add_argument("--max-images", type=int, default=256, help="largest batch a request may ask for (default 256)")
    parser.add_argument("--serving-base-path", default=None,
                        help="where the model server sees --base (e.g. /models in Docker); written to models.config")
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .export import export_generator

    path = export_generator(args.source, args.base, args.name, args.version, max_images=args.max_images,
                            serving_base_path=args.serving_base_path)
    print(json.dumps({"exported": path, "models_config": f"{args.base}/models.config"}))
    return 0


def _parse_ranges(text: str) -> list[int]:
    """'0-99' -> 0..99, '1,5,9' -> [1, 5, 9], mixed forms allowed; ValueError for what is no integer."""
    values = []
    for part in text.split(","):
        if "-" in part.strip()[1:]:
            low, high = part.rsplit("-", 1)
            values.extend(range(int(low), int(high) + 1))
        elif part.strip():
            values.append(int(part))
    return values


def _parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """`_parse_ranges` for a seeds flag, a UserError naming the flag when it names no seed."""
    try:
        seeds = _parse_ranges(text)
    except ValueError:
        seeds = []
    if not seeds:
        raise UserError(f"{flag} {text!r} names no seeds (use e.g. 0-99 or 1,5,9)")
    return seeds


def _add_evaluate(sub):
    parser = sub.add_parser("evaluate", help="SWD / KID / FID of a generator against real images")
    parser.add_argument("source", help="run folder or .keras generator")
    parser.add_argument("--real", required=True, help="real images: folder, converted TFRecords or StyleGAN files")
    parser.add_argument("--metrics", default="swd", help="comma-separated: swd,kid,fid (default swd)")
    parser.add_argument("--num-images", type=int, default=1000, help="images per side (default 1000)")
    parser.add_argument("--inception-weights", default=None, help="path of the InceptionV3 no-top .h5 file")
    parser.add_argument("--extractor", default=None, help="a .keras model to use instead of InceptionV3 for kid/fid")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from .metrics import evaluate

    record = evaluate(args.source, args.real, [name.strip() for name in args.metrics.split(",") if name.strip()],
                      num_images=args.num_images, inception_weights=args.inception_weights,
                      extractor=args.extractor, seed=args.seed)
    print(json.dumps(record))
    return 0


def _add_generate(sub):
    parser = sub.add_parser("generate", help="one PNG per seed")
    parser.add_argument("source", help="run folder or .keras generator")
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-99 or 1,5,9 (default 0-15)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--truncation", type=float, default=None,
                        help="psi, truncation toward the average: in W toward w_avg for StyleGAN2-ADA, latents "
                             "scaled in Z for the DCGAN family (below 1: safer faces)")
    parser.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    import os

    from PIL import Image

    from .loading import load_generator
    from .sampling import latent_width, latents_for_seeds, render

    generator = load_generator(args.source)
    seeds = _parse_seeds(args.seeds)
    latents = latents_for_seeds(seeds, latent_width(generator))  # seed s: the image of generate(1, s)
    os.makedirs(args.out, exist_ok=True)
    for seed, image in zip(seeds, render(generator, latents, truncation=args.truncation)):
        Image.fromarray(image).save(os.path.join(args.out, f"seed{seed:04d}.png"))
    print(json.dumps({"out": args.out, "images": len(seeds)}))
    return 0


EXPLORE_KINDS = ("z-grid", "interpolate", "truncation", "style-mix", "neighbours")


def _add_explore(sub):
    parser = sub.add_parser("explore", help="latent-space pictures: z-grid, interpolate, truncation, style-mix, "
                                            "neighbours")
    parser.add_argument("source", help="run folder or .keras generator")
    parser.add_argument("--kind", required=True, choices=EXPLORE_KINDS)
    parser.add_argument("--out", required=True, help="output .png")
    parser.add_argument("--seed", type=int, default=0, help="z-grid / neighbours seed")
    parser.add_argument("--seeds", default="0-4", help="interpolate / truncation seeds (default 0-4)")
    parser.add_argument("--indices", default=None, help="z-grid: z indices (default 0,10,...,90)")
    parser.add_argument("--steps", type=int, default=8, help="interpolate: steps per pair")
    parser.add_argument("--method", default=None, choices=["slerp", "linear"],
                        help="interpolate: path shape (default slerp in z, linear in w; w takes only linear)")
    parser.add_argument("--space", default=None, choices=["z", "w"],
                        help="interpolate: between the seeds' latents z (default) or, for StyleGAN generators, "
                             "linearly between their mapped ws")
    parser.add_argument("--cutoff", type=int, default=None,
                        help="truncation, StyleGAN generators only: truncate the style layers below this index; "
                             "layers at or above it keep their w (default: all layers)")
    parser.add_argument("--psis", default=None,
                        help="truncation: the columns' psi values, comma-separated (default -1,-0.5,0,0.5,0.75,1,1.5)")
    parser.add_argument("--rows", default=None, help="style-mix: row seeds, whose styles are kept (default 0-3)")
    parser.add_argument("--columns", default=None,
                        help="style-mix: column seeds, whose styles are copied in (default 4-7)")
    parser.add_argument("--crossover", default=None,
                        help="style-mix: the layers copied from the column seed: coarse (4-8 px), middle "
                             "(16-32 px), fine (64 px and up), or layer indices such as 0-3 or 0,2,5 "
                             "(default coarse)")
    parser.add_argument("--truncation", type=float, default=None,
                        help="style-mix: psi, truncation toward the average w before mixing (default none)")
    parser.add_argument("--real", default=None, help="neighbours: the training images")
    parser.add_argument("--num-real", type=int, default=2000, help="neighbours: real images searched")
    parser.set_defaults(run=_run_explore)


# Flags that only one --kind reads: given with another kind, they are an error rather than ignored.
_EXPLORE_KIND_FLAGS = {"space": "interpolate", "cutoff": "truncation", "psis": "truncation", "rows": "style-mix",
                       "columns": "style-mix", "crossover": "style-mix", "truncation": "style-mix"}


def _explore_psis(text):
    """--psis: comma-separated numbers, e.g. 0,0.5,1."""
    try:
        psis = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        psis = []
    if not psis or not all(math.isfinite(psi) for psi in psis):
        raise UserError(f"--psis {text!r}: give comma-separated numbers such as 0,0.5,0.7,1")
    return psis


def _explore_crossover(text):
    """--crossover: a group name, or layer indices as 0-3 / 0,2,5 (mixed forms allowed)."""
    text = text.strip()
    if text in ("coarse", "middle", "fine"):
        return text
    try:
        layers = _parse_ranges(text)
    except ValueError:
        layers = []
    if not layers:
        raise UserError(f"--crossover {text!r}: use coarse, middle, fine or layer indices such as 0-3 or 0,2,5")
    return layers


def _run_explore(args) -> int:
    import os

    for name, kind in _EXPLORE_KIND_FLAGS.items():
        if getattr(args, name) is not None and args.kind != kind:
            raise UserError(f"--{name} is an option of --kind {kind}, not of --kind {args.kind}")

    from . import explore
    from .loading import load_generator

    generator = load_generator(args.source)
    written = [args.out]
    if args.kind == "z-grid":
        indices = [int(i) for i in args.indices.split(",")] if args.indices else None
        explore.z_grid(generator, args.out, seed=args.seed, indices=indices)
    elif args.kind == "interpolate":
        gif = os.path.splitext(args.out)[0] + ".gif"
        explore.interpolate(generator, args.out, _parse_seeds(args.seeds), args.steps, args.method, gif,
                            space=args.space or "z")
        written.append(gif)
    elif args.kind == "truncation":
        options = {"psis": _explore_psis(args.psis)} if args.psis is not None else {}
        explore.truncation(generator, args.out, _parse_seeds(args.seeds), cutoff=args.cutoff, **options)
    elif args.kind == "style-mix":
        explore.style_mix(generator, args.out, _parse_seeds(args.rows or "0-3", "--rows"),
                          _parse_seeds(args.columns or "4-7", "--columns"),
                          _explore_crossover(args.crossover or "coarse"), truncation=args.truncation)
    else:
        if not args.real:
            raise UserError("--kind neighbours needs --real (the training images)")
        from .data.pipeline import load_real_images
        from .sampling import image_size

        real = load_real_images(args.real, args.num_real, image_size(generator))
        explore.neighbours(generator, real, args.out, seed=args.seed)
    print(json.dumps({"written": written}))
    return 0


_EXTENSIONS: list = [_add_train, _add_export, _add_evaluate, _add_generate, _add_explore]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UserError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
