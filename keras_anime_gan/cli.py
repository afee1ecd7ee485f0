"""`keras-anime-gan` / `python -m keras_anime_gan`: a thin layer over the Python API.

Each sub-command parses its options, calls one library function and prints what it did.
User errors (bad paths, bad option values) print one `error:` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-anime-gan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub)
    for extend in _EXTENSIONS:
        extend(sub)
    return parser


def _add_train(sub):
    from .training import add_train_arguments, run_train_command

    parser = sub.add_parser("train", help="train a GAN (the same as python train.py)")
    add_train_arguments(parser)
    parser.set_defaults(run=run_train_command)


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


def _parse_seeds(text: str) -> list[int]:
    """'0-99' -> 0..99, '1,5,9' -> [1, 5, 9], mixed forms allowed."""
    seeds = []
    for part in text.split(","):
        if "-" in part.strip()[1:]:
            low, high = part.rsplit("-", 1)
            seeds.extend(range(int(low), int(high) + 1))
        elif part.strip():
            seeds.append(int(part))
    if not seeds:
        raise UserError(f"--seeds {text!r} names no seed (use e.g. 0-99 or 1,5,9)")
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
    import os

    import keras

    from .data.pipeline import load_real_images
    from .export import load_generator
    from .sampling import latents_for_seed, render
    from .metrics import FeatureExtractor, append_jsonl, compute_metrics, metric_name

    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
    if args.num_images < 2:
        raise UserError("--num-images must be >= 2")
    generator = load_generator(args.source)
    resolution = int(generator.output_shape[1])
    real = load_real_images(args.real, args.num_images, resolution, args.seed)
    latents = latents_for_seed(len(real), int(generator.input_shape[-1]), args.seed)
    fake = render(generator, latents)
    extractor = FeatureExtractor(keras.models.load_model(args.extractor, compile=False)) if args.extractor else None
    results = compute_metrics(real, fake, metrics, extractor, args.inception_weights)
    record = {"metrics": [metric_name(m, len(real)) for m in metrics], "num_images": len(real), "results": results,
              "generator": os.path.abspath(args.source), "real": os.path.abspath(args.real),
              "extractor": args.extractor or ("inception_v3" if {"kid", "fid"} & set(metrics) else None)}
    folder = args.source if os.path.isdir(args.source) else os.path.dirname(os.path.abspath(args.source))
    append_jsonl(os.path.join(folder, "metrics.jsonl"), record)
    print(json.dumps(record))
    return 0


def _add_generate(sub):
    parser = sub.add_parser("generate", help="one PNG per seed")
    parser.add_argument("source", help="run folder or .keras generator")
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-99 or 1,5,9 (default 0-15)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--truncation", type=float, default=None, help="psi: scale latents (below 1: safer faces)")
    parser.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    import os

    from PIL import Image

    from .export import load_generator
    from .sampling import latents_for_seeds, render

    generator = load_generator(args.source)
    seeds = _parse_seeds(args.seeds)
    latents = latents_for_seeds(seeds, int(generator.input_shape[-1]))  # seed s: the image of generate(1, s)
    os.makedirs(args.out, exist_ok=True)
    for seed, image in zip(seeds, render(generator, latents, truncation=args.truncation)):
        Image.fromarray(image).save(os.path.join(args.out, f"seed{seed:04d}.png"))
    print(json.dumps({"out": args.out, "images": len(seeds)}))
    return 0


def _add_explore(sub):
    parser = sub.add_parser("explore", help="latent-space pictures: z-grid, interpolate, truncation, neighbours")
    parser.add_argument("source", help="run folder or .keras generator")
    parser.add_argument("--kind", required=True, choices=["z-grid", "interpolate", "truncation", "neighbours"])
    parser.add_argument("--out", required=True, help="output .png")
    parser.add_argument("--seed", type=int, default=0, help="z-grid / neighbours seed")
    parser.add_argument("--seeds", default="0-4", help="interpolate / truncation seeds (default 0-4)")
    parser.add_argument("--indices", default=None, help="z-grid: z indices (default 0,10,...,90)")
    parser.add_argument("--steps", type=int, default=8, help="interpolate: steps per pair")
    parser.add_argument("--method", default="slerp", choices=["slerp", "linear"])
    parser.add_argument("--real", default=None, help="neighbours: the training images")
    parser.add_argument("--num-real", type=int, default=2000, help="neighbours: real images searched")
    parser.set_defaults(run=_run_explore)


def _run_explore(args) -> int:
    import os

    from . import explore
    from .export import load_generator

    generator = load_generator(args.source)
    written = [args.out]
    if args.kind == "z-grid":
        indices = [int(i) for i in args.indices.split(",")] if args.indices else None
        explore.z_grid(generator, args.out, seed=args.seed, indices=indices)
    elif args.kind == "interpolate":
        gif = os.path.splitext(args.out)[0] + ".gif"
        explore.interpolate(generator, args.out, _parse_seeds(args.seeds), args.steps, args.method, gif)
        written.append(gif)
    elif args.kind == "truncation":
        explore.truncation(generator, args.out, _parse_seeds(args.seeds))
    else:
        if not args.real:
            raise UserError("--kind neighbours needs --real (the training images)")
        from .data.pipeline import load_real_images

        real = load_real_images(args.real, args.num_real, int(generator.output_shape[1]))
        explore.neighbours(generator, real, args.out, seed=args.seed)
    print(json.dumps({"written": written}))
    return 0


_EXTENSIONS: list = [_add_train, _add_export, _add_evaluate, _add_generate, _add_explore]


def main(argv=None) -> int:
    parser = build_parser()
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
