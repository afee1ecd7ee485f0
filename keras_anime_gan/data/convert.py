"""Image folder (or .zip) -> sharded TFRecords, or NVIDIA StyleGAN's `-rNN.tfrecords` layout.

Atomicity and resume: every output file is written under a `.tmp` name and renamed when complete,
and a small record per finished shard lands in `.progress/` after the rename. A reader only trusts
`dataset.json`, which is written last. Re-running the same command on an unfinished destination
keeps the finished shards and converts the rest: after a kill, or after a full disk, which stops
the conversion with a ConversionFailed error saying how many shards were kept.

One converter at a time per destination: DEST is locked (`locks.folder_lock`, DEST/.lock) for the
whole conversion, so a second command is refused at once, naming the running one, rather than
writing the same shards.

The parts: `convert_options` (the options, the errors, the source's names), `convert_destination`
(the destination's files: start, resume, --overwrite, leftovers), `convert_workers` (worker processes
decode, resize and encode images and write TFRecord files themselves, so no pixels travel between
processes) and `convert_shards` (shards, their progress records, StyleGAN's files). TensorFlow is
never imported (see `tfrecord`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import re
import time
from dataclasses import asdict

import numpy as np

from ..locks import folder_lock
from . import imaging
from .convert_destination import (_prepare_destination, _remove_leftovers, _remove_progress, _shard_name,
                                  _write_json_atomic)
from .convert_options import ConversionError, ConversionFailed, ConvertOptions, list_sources
from .convert_shards import _convert_sharded, _convert_stylegan
from .layout import MANIFEST_NAME, MANIFEST_VERSION, PROGRESS_DIR, STATE_NAME


def convert_folder(
    src: str,
    dest: str = "tfrecords",
    resolution: int = 64,
    *,
    format: str = "raw",
    transform: str = "center-crop",
    resize_filter: str = "lanczos",
    min_size: int | None = None,
    shard_size: int = 1000,
    seed: int = 0,
    dedupe: bool = False,
    max_pixels: int | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Convert every image under `src` (folder, recursive, or .zip) and return the manifest.

    Bad files are skipped and listed in the manifest's `skipped` with a reason; user errors raise
    ConversionError; a failed write (a full disk) raises its subclass ConversionFailed, after
    keeping the finished shards for a rerun to resume from. `dest` is locked while converting:
    FolderInUseError (a UserError) when another process converts into it. See the module docstring
    for atomicity and resume.
    """
    options = ConvertOptions(
        resolution=resolution,
        format=format,
        transform=transform,
        resize_filter=resize_filter,
        min_size=min_size,
        shard_size=shard_size,
        seed=seed,
        dedupe=dedupe,
        max_pixels=max_pixels,
    )
    options.validate()
    src = os.path.abspath(src)
    names, skipped = list_sources(src)
    if not names:
        raise ConversionError(
            f"no images in {src!r} (looked for {' '.join(imaging.SUPPORTED_EXTENSIONS)}; {len(skipped)} other files)"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    names = [names[i] for i in order]
    listing_hash = hashlib.sha256("\n".join(names).encode()).hexdigest()
    state = {"source": src, "listing_sha256": listing_hash, "options": asdict(options)}
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ConversionError(f"destination {dest!r} exists and is not a folder")
    with folder_lock(dest, "destination"):
        resumed = _prepare_destination(dest, state, overwrite)
        try:
            return _convert_into(src, dest, names, skipped, options, state, resumed, workers, progress)
        except OSError as error:
            # A full disk and the like: the unfinished files go (a rerun deletes them anyway, and
            # freeing their space now helps); the finished shards and the resume state stay.
            with contextlib.suppress(OSError):
                _remove_leftovers(dest)
            raise ConversionFailed(_write_failure(error, dest, options, len(names))) from error


def _convert_into(src, dest, names, skipped, options, state, resumed, workers, progress) -> dict:
    """The conversion proper, in a locked and prepared `dest`; returns the manifest."""
    _write_json_atomic(os.path.join(dest, STATE_NAME), state)
    if options.format == "stylegan":
        written, shards, more_skipped = _convert_stylegan(src, dest, names, options, workers, progress)
    else:
        written, shards, more_skipped = _convert_sharded(src, dest, names, options, workers, progress, resumed)
    skipped.extend(more_skipped)
    skipped.sort(key=lambda entry: entry["path"])
    if written == 0:
        reasons = sorted({entry["reason"].split(" (")[0] for entry in skipped})
        raise ConversionError(f"no image could be converted from {src!r}; skip reasons: {'; '.join(reasons)}")
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "num_images": written,
        "resolution": options.resolution,
        "channels": 3,
        "format": options.format,
        "features": (
            {"shape": "int64 [C, H, W]", "data": "bytes, uint8 CHW"}
            if options.format == "stylegan"
            else {"image": "bytes, " + ("uint8 HWC" if options.format == "raw" else "PNG"), "shape": "int64 [H, W, C]"}
        ),
        "shards": shards,
        "skipped": skipped,
        "source": src,
        "options": asdict(options),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json_atomic(os.path.join(dest, MANIFEST_NAME), manifest)
    os.remove(os.path.join(dest, STATE_NAME))
    _remove_progress(dest)
    return manifest


def _write_failure(error: OSError, dest: str, options: ConvertOptions, images: int) -> str:
    """One line for a write that failed mid-conversion: what, in which file, what was kept."""
    what = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}.get(error.errno)
    fix = "free space and rerun" if what else "fix that and rerun"
    what = what or (error.strerror or str(error)).rstrip(".")
    where = f"while writing {_output_name(error.filename, dest) if error.filename else 'a file'} in {dest}"
    if options.format == "stylegan":
        return (f"{what} {where}: StyleGAN files are written in one pass, so none was kept; {fix} the same command "
                "to convert again")
    count = math.ceil(images / options.shard_size)
    progress_dir = os.path.join(dest, PROGRESS_DIR)
    done = sum(
        os.path.exists(os.path.join(progress_dir, f"{index:05d}.json"))
        and os.path.exists(os.path.join(dest, _shard_name(index, count)))
        for index in range(count)
    )
    return f"{what} {where}: {done} of {count} shards are complete; {fix} the same command to resume"


def _output_name(path, dest: str) -> str:
    """The output a temporary file becomes, relative to `dest`: `shard-00003-of-00020.tfrecords`
    for its parts, `.progress/00003.json` for that record's temporary file."""
    name = os.fspath(path)
    with contextlib.suppress(ValueError):
        name = os.path.relpath(name, dest)
    return re.sub(r"(\.part\d+|\.\d+)?\.tmp$", "", name)
