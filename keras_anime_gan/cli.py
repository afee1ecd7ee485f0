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


_EXTENSIONS: list = [_add_train, _add_export]


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
