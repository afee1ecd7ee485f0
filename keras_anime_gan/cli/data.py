"""`convert` and `verify`: images in, TFRecords out, and their check."""

from __future__ import annotations

import json
import sys

from .common import _command


# ----------------------------------------------------------------------------- convert


def _add_convert(sub):
    parser = _command(sub, "convert", "image folder or .zip -> sharded TFRecords (or StyleGAN -rNN files)", [
        "keras-anime-gan convert my_faces/ tfrecords --resolution 64 --dedupe",
        "keras-anime-gan convert faces.zip sg_data --format stylegan --resolution 128",
    ])
    from ..data.layout import FORMATS

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
    from ..data.convert import convert_folder

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
    from ..data.verify import verify_dataset

    report = verify_dataset(args.data, progress=not args.quiet)
    for entry in report["bad"]:
        print(f"damaged: {entry['file']}: {entry['reason']}", file=sys.stderr)
    print(json.dumps({"data": args.data, "kind": report["kind"], "ok": report["ok"],
                      "files_checked": report["files_checked"], "bytes_checked": report["bytes_checked"],
                      "num_images": report["num_images"], "damaged": [entry["file"] for entry in report["bad"]]}))
    return 0 if report["ok"] else 1
