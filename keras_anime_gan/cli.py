"""`keras-anime-gan` / `python -m keras_anime_gan`: a thin layer over the Python API.

Each sub-command parses its options, calls one library function and prints what it did.
User errors (bad paths, bad option values) print one `error:` line and exit with status 2; faults
of the environment (a full disk, an unreadable file) print one `error:` line and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .errors import UserError, describe_os_error

DESCRIPTION = """\
Train GANs that draw anime faces, and use what they learn: convert a folder of face crops into
TFRecords, train a DCGAN, WGAN-GP, StyleGAN2-ADA or another model on it (resumable, with sample
grids, curves and checkpoints), then generate faces, explore the latent space, score a generator
against real faces, and export it for TensorFlow Serving. Run `keras-anime-gan COMMAND --help` for
a command's options and examples."""

EPILOG = """\
examples:
  python train.py                                     # the embedded default: a DCGAN on synthetic faces
  keras-anime-gan convert my_faces/ tfrecords --resolution 64
  keras-anime-gan train --data tfrecords --model stylegan2-ada --out runs/faces
  keras-anime-gan generate runs/faces --seeds 0-15 --out samples/
  keras-anime-gan export runs/faces --name faces"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and shows defaults only where the help text says them."""


def _command(sub, name, help, examples, description=None):
    return sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                          epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                          formatter_class=_Formatter)


# ----------------------------------------------------------------------------- convert


def _add_convert(sub):
    parser = _command(sub, "convert", "image folder or .zip -> sharded TFRecords (or StyleGAN -rNN files)", [
        "keras-anime-gan convert my_faces/ tfrecords --resolution 64 --dedupe",
        "keras-anime-gan convert faces.zip sg_data --format stylegan --resolution 128",
    ])
    from .data.layout import FORMATS

    parser.add_argument("src", help="folder (searched recursively) or .zip of jpg/png/bmp/webp/gif images")
    parser.add_argument("dest", nargs="?", default="tfrecords", help="output folder (default: tfrecords)")
    parser.add_argument("--resolution", type=int, default=64, help="output size in pixels, >= 8 (default 64)")
    parser.add_argument("--format", default="raw", choices=FORMATS,
                        help="raw: uint8 pixels (fastest to read, the default); png: smaller files; stylegan: "
                             "NVIDIA StyleGAN's dataset-tool layout, one -rNN.tfrecords file per level")
    parser.add_argument("--transform", default="center-crop", choices=["center-crop", "pad", "stretch"],
                        help="how non-square images become square (default center-crop)")
    parser.add_argument("--resize-filter", default="lanczos", choices=["lanczos", "box", "bicubic"],
                        help="Pillow filter used to resize (default lanczos; box matches NVIDIA's FFHQ scaling)")
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


# ----------------------------------------------------------------------------- verify


def _add_verify(sub):
    parser = _command(sub, "verify", "check every file of a dataset: shard sizes and SHA-256 against dataset.json, "
                                     "TFRecord CRCs of StyleGAN files, images that decode", [
        "keras-anime-gan verify tfrecords",
        "keras-anime-gan verify sg_data --quiet",
    ], description="Read every file of a dataset once and name the damaged ones. Exit status 0: intact; 1: damaged "
                   "(each file on stderr with its reason); 2: not a dataset.")
    parser.add_argument("data", help="converted TFRecord folder, NVIDIA StyleGAN -rNN folder or image folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from .data.verify import verify_dataset

    report = verify_dataset(args.data, progress=not args.quiet)
    for entry in report["bad"]:
        print(f"damaged: {entry['file']}: {entry['reason']}", file=sys.stderr)
    print(json.dumps({"data": args.data, "kind": report["kind"], "ok": report["ok"],
                      "files_checked": report["files_checked"], "bytes_checked": report["bytes_checked"],
                      "num_images": report["num_images"], "damaged": [entry["file"] for entry in report["bad"]]}))
    return 0 if report["ok"] else 1


# ----------------------------------------------------------------------------- train


def _add_train(sub, flags=True):
    parser = _command(sub, "train", "train a GAN (the same as python train.py)", [
        "python train.py                                   # the embedded default run, ~2 min on 2 CPU cores",
        "python train.py --data tfrecords --model dcgan --resolution 64 --epochs 50 --out runs/faces",
        "python train.py --data tfrecords --model stylegan2-ada --preset auto --out runs/sg2",
        "python train.py --out runs/faces --resume --epochs 80   # continue a run with more epochs",
    ], description="Train a GAN. With no --data it trains on the embedded synthetic faces. Every option below can "
                   "also come from a --config JSON file; the resolved configuration is saved as OUT/config.json.")
    if flags:
        add_train_arguments(parser)
    parser.set_defaults(run=run_train_command)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-level flags of `train`, then one group per set of models with the options they share,
    generated from the registry's options dataclasses."""
    from .config import STRATEGIES, TrainConfig
    from .gans.registry import model_names
    from .metrics import METRICS
    from .precision import PRECISIONS

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
    add("--steps-per-epoch", type=int, help="training steps per epoch; a step uses one real batch per D update "
                                            "(n_critic for wgan) (default: one pass over the data)")
    add("--synthetic-images", type=int, help=f"size of the embedded default dataset (default {defaults.synthetic_images})")
    add("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    add("--seed", type=int, help=f"seed of the weights, the latents and the data order (default {defaults.seed})")
    add("--jit", dest="jit", action="store_true", default=None,
        help="XLA on (default: XLA on a GPU, graph mode with oneDNN on a CPU)")
    add("--no-jit", dest="jit", action="store_false", help="XLA off (graph mode)")
    add("--precision", choices=PRECISIONS,
        help="auto (the default): bfloat16 on GPUs of compute capability >= 8.0 and on CPUs with avx512_bf16 or "
             "amx_bf16, float16 with loss scaling on GPUs of compute capability 7.x, float32 elsewhere")
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


def config_from_args(args: argparse.Namespace):
    """The resolved TrainConfig the flags describe (`config.resolve_config`)."""
    import dataclasses

    from .config import TrainConfig, resolve_config

    names = {item.name for item in dataclasses.fields(TrainConfig)}
    stated = {key: value for key, value in vars(args).items() if key in names and value is not None}
    if args.quiet:
        stated["verbose"] = 0
    stated["model_options"] = {key[len(MODEL_OPTION_PREFIX):]: value for key, value in vars(args).items()
                               if key.startswith(MODEL_OPTION_PREFIX) and value is not None}
    return resolve_config(stated, config_file=args.config, resume=args.resume)


def run_train_command(args) -> int:
    from .training import train

    config = config_from_args(args)
    summary = train(config, resume=args.resume)
    print(json.dumps(summary))
    if summary["interrupted"]:
        return 130
    return 1 if summary.get("state") == "failed" else 0


# ----------------------------------------------------------------------------- export


def _add_export(sub):
    parser = _command(sub, "export", "write a generator as a TF Serving SavedModel (saved_models/NAME/VERSION)", [
        "keras-anime-gan export runs/faces --name faces",
        "keras-anime-gan export runs/faces/generator.keras --name faces --base /srv/models --version 3",
        "keras-anime-gan export runs/sg2 --name faces_batched --batching-parameters docs/serving/batching_params.pbtxt",
    ])
    parser.add_argument("source", help="run folder (its generator.keras), a .keras generator file or an NVIDIA "
                                       "network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--name", required=True, help="model name, as clients will call it")
    parser.add_argument("--base", default="saved_models", help="export root (default saved_models)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: one above the highest)")
    parser.add_argument("--max-images", type=int, default=256, help="largest batch a request may ask for (default 256)")
    parser.add_argument("--serving-base-path", default=None,
                        help="where the model server sees --base (e.g. /models in Docker); written to models.config")
    parser.add_argument("--truncation-cutoff", type=int, default=None, metavar="N",
                        help="StyleGAN2-ADA only: the generate signatures truncate only the first N style layers "
                             "toward w_avg (NVIDIA's truncation_cutoff); default: all of them")
    parser.add_argument("--batching-parameters", default=None, metavar="FILE",
                        help="export for TF Serving's batching: serving_default only, with FILE (BatchingParameters "
                             "text format, e.g. docs/serving/batching_params.pbtxt) copied in as batching_params.pbtxt")
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .export import export_generator

    path = export_generator(args.source, args.base, args.name, args.version, max_images=args.max_images,
                            serving_base_path=args.serving_base_path, truncation_cutoff=args.truncation_cutoff,
                            batching_parameters=args.batching_parameters)
    print(json.dumps({"exported": path, "models_config": f"{args.base}/models.config"}))
    return 0


# ----------------------------------------------------------------------------- NVIDIA StyleGAN2-ADA


def _add_import_nvidia(sub):
    parser = _command(sub, "import-nvidia", "an NVIDIA StyleGAN2-ADA network-snapshot-*.pkl -> a run folder", [
        "keras-anime-gan import-nvidia network-snapshot-000400.pkl --out runs/imported",
        "keras-anime-gan generate runs/imported --seeds 0-15 --truncation 0.7 --out samples/",
        "python train.py --init-from network-snapshot-000400.pkl --data my_faces --out runs/finetuned",
    ], description="Import an NVIDIA StyleGAN2-ADA network pickle (stylegan2-ada-pytorch, or stylegan3's StyleGAN2 "
                   "networks) as a run folder: config.json, a checkpoint holding G, D and G_ema, and generator.keras "
                   "from G_ema. The pickle is read without running any code from it; anything but the globals "
                   "NVIDIA's files need is refused.")
    parser.add_argument("pickle", help="the network-snapshot-*.pkl file")
    parser.add_argument("--out", required=True, help="the run folder to write (must be new or empty)")
    parser.add_argument("--preset", default="auto",
                        help="the StyleGAN2-ADA preset (as train --preset) whose training settings the run trains with: "
                             "batch, learning rate, R1 gamma, EMA, which the pickle does not record; the networks are "
                             "the pickle's (default auto)")
    parser.add_argument("--data", default=None, help="the images `train --resume` on this run trains on (default: "
                                                     "none recorded; use train --init-from for a new run on your faces)")
    parser.set_defaults(run=_run_import_nvidia)


def _run_import_nvidia(args) -> int:
    from .nvidia_runs import import_snapshot

    summary = import_snapshot(args.pickle, args.out, preset=args.preset, data=args.data)
    sizes = ", ".join(f"{name} {count:,}" for name, count in summary["parameters"].items())
    print(f"imported {args.pickle}: {summary['resolution']} px, z {summary['z_dim']}, w {summary['w_dim']}, "
          f"{summary['mapping_layers']} mapping layers, channel_base {summary['channel_base']}, channel_max "
          f"{summary['channel_max']}; parameters {sizes}", file=sys.stderr)
    for name, why in summary["not_imported"].items():
        print(f"not imported: {name}: {why}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _add_export_nvidia(sub):
    parser = _command(sub, "export-nvidia", "a StyleGAN2-ADA run's G, D and G_ema -> NVIDIA state dicts in one .npz", [
        "keras-anime-gan export-nvidia runs/faces faces-nvidia.npz",
    ], description="Write a StyleGAN2-ADA run's networks (its newest good checkpoint) as arrays named exactly as "
                   "NVIDIA's state_dict() keys, under G/, D/ and G_ema/, with NVIDIA's layouts and buffers, plus "
                   "NVIDIA's constructor arguments as JSON under init_kwargs. The README shows the one "
                   "load_state_dict line that loads them into NVIDIA's networks.")
    parser.add_argument("source", help="a StyleGAN2-ADA run folder (made by train or import-nvidia)")
    parser.add_argument("out", help="the .npz file to write")
    parser.set_defaults(run=_run_export_nvidia)


def _run_export_nvidia(args) -> int:
    from .nvidia_runs import export_state_dicts

    print(json.dumps(export_state_dicts(args.source, args.out)))
    return 0


# ----------------------------------------------------------------------------- evaluate / generate / explore


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


def _parse_integers(text: str, flag: str, noun: str = "seeds", example: str = "0-99 or 1,5,9") -> list[int]:
    """`_parse_ranges` for a flag, a UserError naming the flag when it names no integer."""
    try:
        values = _parse_ranges(text)
    except ValueError:
        values = []
    if not values:
        raise UserError(f"{flag} {text!r} names no {noun} (use e.g. {example})")
    return values


def _add_evaluate(sub):
    parser = _command(sub, "evaluate", "SWD / KID / FID of a generator against real images", [
        "keras-anime-gan evaluate runs/faces --real tfrecords --metrics swd,color",
        "keras-anime-gan evaluate runs/faces --real tfrecords --metrics fid,kid --inception-weights inception.h5",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--real", required=True, help="real images: folder, converted TFRecords or StyleGAN files")
    parser.add_argument("--metrics", default="swd", help="comma-separated: swd, color, kid, fid (default swd)")
    parser.add_argument("--num-images", type=int, default=1000, help="images per side (default 1000)")
    parser.add_argument("--inception-weights", default=None, help="path of the InceptionV3 no-top .h5 file")
    parser.add_argument("--extractor", default=None, help="a .keras model to use instead of InceptionV3 for kid/fid")
    parser.add_argument("--seed", type=int, default=0, help="picks the real images and the generated latents "
                                                             "(default 0)")
    parser.add_argument("--allow-upscale", action="store_true",
                        help="compare with real images smaller than the generator's output, upscaled (refused otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from .evaluation import evaluate

    record = evaluate(args.source, args.real, [name.strip() for name in args.metrics.split(",") if name.strip()],
                      num_images=args.num_images, inception_weights=args.inception_weights,
                      extractor=args.extractor, seed=args.seed, progress=not args.quiet,
                      allow_upscale=args.allow_upscale)
    print(json.dumps(record))
    return 0


def _add_generate(sub):
    parser = _command(sub, "generate", "one PNG per seed", [
        "keras-anime-gan generate runs/faces --seeds 0-99 --out samples/",
        "keras-anime-gan generate runs/sg2 --seeds 1,5,9 --truncation 0.7 --out samples/",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-99 or 1,5,9 (default 0-15)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--truncation", type=float, default=None,
                        help="psi, truncation toward the average: in W toward w_avg for StyleGAN2-ADA, latents "
                             "scaled in Z for the DCGAN family (below 1: safer faces)")
    parser.add_argument("--truncation-cutoff", type=int, default=None,
                        help="StyleGAN generators only: truncate only the style layers below this index, as "
                             "NVIDIA's truncation_cutoff (default: all layers)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    from .explore import write_seed_images
    from .loading import load_generator

    seeds = _parse_integers(args.seeds, "--seeds")
    paths = write_seed_images(load_generator(args.source), seeds, args.out, truncation=args.truncation,
                              cutoff=args.truncation_cutoff, progress=not args.quiet)
    print(json.dumps({"out": args.out, "images": len(paths)}))
    return 0


EXPLORE_KINDS = ("z-grid", "interpolate", "truncation", "style-mix", "neighbours")


def _add_explore(sub):
    parser = _command(sub, "explore", "latent-space pictures: z-grid, interpolate, truncation, style-mix, neighbours", [
        "keras-anime-gan explore runs/faces --kind z-grid --out z-grid.png",
        "keras-anime-gan explore runs/faces --kind interpolate --seeds 0-4 --out walk.png   # and walk.gif",
        "keras-anime-gan explore runs/sg2 --kind style-mix --rows 0-3 --columns 4-7 --crossover middle --out mix.png",
        "keras-anime-gan explore runs/faces --kind neighbours --real tfrecords --out neighbours.png",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--kind", required=True, choices=EXPLORE_KINDS,
                        help="z-grid: one latent coordinate scaled per row; interpolate: paths between seeds (and a "
                             "GIF); truncation: psi from -1 to 1.5; style-mix: StyleGAN styles crossed between seeds; "
                             "neighbours: samples beside their nearest real faces")
    parser.add_argument("--out", required=True, help="output .png")
    parser.add_argument("--seed", type=int, default=0, help="z-grid / neighbours seed (default 0)")
    parser.add_argument("--seeds", default="0-4", help="interpolate / truncation seeds (default 0-4)")
    parser.add_argument("--indices", default=None, help="z-grid: the z coordinates, one per row, e.g. 0,10,20 "
                                                        "(default 0,10,...,90)")
    parser.add_argument("--steps", type=int, default=8, help="interpolate: steps per pair (default 8)")
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
    parser.add_argument("--num-real", type=int, default=2000, help="neighbours: real images searched (default 2000)")
    parser.set_defaults(run=_run_explore)


# Flags that only one --kind reads: given with another kind, they are an error rather than ignored.
_EXPLORE_KIND_FLAGS = {"space": "interpolate", "cutoff": "truncation", "psis": "truncation", "rows": "style-mix",
                       "columns": "style-mix", "crossover": "style-mix", "truncation": "style-mix",
                       "indices": "z-grid", "real": "neighbours"}


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
    for name, kind in _EXPLORE_KIND_FLAGS.items():
        if getattr(args, name) is not None and args.kind != kind:
            raise UserError(f"--{name} is an option of --kind {kind}, not of --kind {args.kind}")
    if args.truncation is not None and not math.isfinite(args.truncation):
        raise UserError(f"--truncation must be a finite number, got {args.truncation}")
    indices = _parse_integers(args.indices, "--indices", "indices", "0,10,20") if args.indices else None

    from . import explore
    from .loading import load_generator

    generator = load_generator(args.source)
    written = [args.out]
    if args.kind == "z-grid":
        explore.z_grid(generator, args.out, seed=args.seed, indices=indices)
    elif args.kind == "interpolate":
        gif = os.path.splitext(args.out)[0] + ".gif"
        explore.interpolate(generator, args.out, _parse_integers(args.seeds, "--seeds"), args.steps, args.method, gif,
                            space=args.space or "z")
        written.append(gif)
    elif args.kind == "truncation":
        options = {"psis": _explore_psis(args.psis)} if args.psis is not None else {}
        explore.truncation(generator, args.out, _parse_integers(args.seeds, "--seeds"), cutoff=args.cutoff, **options)
    elif args.kind == "style-mix":
        explore.style_mix(generator, args.out, _parse_integers(args.rows or "0-3", "--rows"),
                          _parse_integers(args.columns or "4-7", "--columns"),
                          _explore_crossover(args.crossover or "coarse"), truncation=args.truncation)
    else:
        if not args.real:
            raise UserError("--kind neighbours needs --real (the training images)")
        if args.num_real < 1:
            raise UserError(f"--num-real must be at least 1, got {args.num_real}")
        from .data.pipeline import load_real_images
        from .sampling import image_size

        # A visual look-up: smaller real faces are shown upscaled rather than refused.
        real = load_real_images(args.real, args.num_real, image_size(generator), allow_upscale=True)
        explore.neighbours(generator, real, args.out, seed=args.seed)
    print(json.dumps({"written": written}))
    return 0


# ----------------------------------------------------------------------------- main


_EXTENSIONS: list = [_add_verify, _add_train, _add_export, _add_evaluate, _add_generate, _add_explore,
                     _add_import_nvidia, _add_export_nvidia]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. `command`: the one about to be parsed, when known; the train
    flags are generated only for `train` (they import every model, and so TensorFlow, which `--help`
    and the converter must not pay for: its workers are forked from a TensorFlow-free process)."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="keras-anime-gan", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub)
    for extend in _EXTENSIONS:
        if extend is _add_train:
            _add_train(sub, flags=command == "train")
        else:
            extend(sub)
    return parser


def main(argv=None) -> int:
    from . import quiet_tensorflow_startup

    quiet_tensorflow_startup()  # before anything imports TensorFlow: a command line's output stays readable
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 2)
    except FileNotFoundError as error:  # a wrong path: the user's to fix
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, an unreadable file: one line, never a traceback
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
