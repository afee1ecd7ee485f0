"""Image folder (or .zip) -> sharded TFRecords, or NVIDIA StyleGAN's `-rNN.tfrecords` layout.

Atomicity and resume: every output file is written under a `.tmp` name and renamed when complete,
and a small record per finished shard lands in `.progress/` after the rename. A reader only trusts
`dataset.json`, which is written last. Re-running the same command on an unfinished destination
keeps the finished shards and converts the rest: after a kill, or after a full disk, which stops
the conversion with a ConversionFailed error saying how many shards were kept.

One converter at a time per destination: DEST is locked (`locks.folder_lock`, DEST/.lock) for the
whole conversion, so a second command is refused at once, naming the running one, rather than
writing the same shards.

Speed: worker processes decode, resize and encode images and write the TFRecord files themselves
(a shard, or a part of one), so no pixels travel between processes; the main process only renames
finished shards, or joins parts where a shard spans several tasks or --dedupe drops an image.
TensorFlow is never imported (see `tfrecord`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import errno
import hashlib
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import zipfile
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from ..atomic import replace_durably, write_json_atomic
from ..errors import UserError
from ..locks import LOCK_NAME, folder_lock
from . import imaging
from .layout import FORMATS, MANIFEST_NAME, MANIFEST_VERSION, PROGRESS_DIR, STATE_NAME  # noqa: F401
from .tfrecord import TFRecordFile, encode_example, frame_record


class ConversionError(UserError):
    """A user error (bad path, bad option, nothing to convert): reported, non-zero exit."""


class ConversionFailed(ConversionError):
    """A conversion stopped by a fault of its environment (a full disk), its finished shards kept
    for the same command to resume from. The command line exits with status 1 (`exit_status`)."""

    exit_status = 1


@dataclass(frozen=True)
class ConvertOptions:
    resolution: int = 64
    format: str = "raw"
    transform: str = "center-crop"
    resize_filter: str = "lanczos"
    min_size: int | None = None
    shard_size: int = 1000
    seed: int = 0
    dedupe: bool = False
    max_pixels: int | None = None

    def validate(self) -> None:
        if not isinstance(self.resolution, int) or self.resolution < 8:
            raise ConversionError(f"--resolution must be an integer >= 8, got {self.resolution!r}")
        if self.format not in FORMATS:
            raise ConversionError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.format == "stylegan" and self.resolution & (self.resolution - 1):
            raise ConversionError(
                f"--format stylegan needs a power-of-two --resolution (4x4 ... NxN levels), got {self.resolution}"
            )
        if self.transform not in imaging.TRANSFORMS:
            raise ConversionError(
                f"--transform must be one of {', '.join(imaging.TRANSFORMS)}, got {self.transform!r}"
            )
        if self.resize_filter not in imaging.RESIZE_FILTERS:
            raise ConversionError(
                f"--resize-filter must be one of {', '.join(imaging.RESIZE_FILTERS)}, got {self.resize_filter!r}"
            )
        if self.min_size is not None and self.min_size < 1:
            raise ConversionError(f"--min-size must be >= 1, got {self.min_size}")
        if self.shard_size < 1:
            raise ConversionError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConversionError(f"--max-pixels must be >= 1, got {self.max_pixels}")

    @property
    def effective_min_size(self) -> int:
        # Default: never upscale silently. Smaller images are skipped unless the user lowers this.
        return self.resolution if self.min_size is None else self.min_size


# ----------------------------------------------------------------------------- sources


def list_sources(src: str) -> tuple[list[str], list[dict]]:
    """Candidate image names under `src` (sorted), plus skipped entries for other files."""
    if not os.path.exists(src):
        raise ConversionError(f"source {src!r} does not exist")
    names: list[str] = []
    if os.path.isdir(src):
        for root, dirs, files in os.walk(src):
            dirs.sort()
            # Relative names by slicing: os.path.relpath is slow enough per file to show at 20,000 files.
            prefix = root[len(src) :].lstrip(os.sep)
            names.extend(os.path.join(prefix, file) if prefix else file for file in files)
    elif zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    else:
        raise ConversionError(f"source {src!r} is neither a folder nor a .zip archive")
    names.sort()
    images = [name for name in names if imaging.has_supported_extension(name)]
    skipped = [
        {"path": name, "reason": f"unsupported extension (accepted: {' '.join(imaging.SUPPORTED_EXTENSIONS)})"}
        for name in names
        if not imaging.has_supported_extension(name)
    ]
    return images, skipped


_worker_state: dict = {}


def _worker_init(src: str, options: ConvertOptions, counter=None, parent: int | None = None) -> None:
    """Per worker process, once. `counter`: a shared integer the main process reads for its
    progress bar (None when converting in the caller's process, which updates its bar itself);
    `parent`: the converting process's pid."""
    _worker_state["src"] = src
    _worker_state["options"] = options
    _worker_state["zip"] = zipfile.ZipFile(src) if os.path.isfile(src) else None
    _worker_state["counter"] = counter
    if counter is not None:  # a worker process: its own Pillow state, set for its whole life
        imaging.pixel_limit(options.max_pixels).__enter__()
        _die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the converting process's to handle


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when the converting process dies, kill -9 included.
    Otherwise an orphan finishes its task, writing a part file the next run deletes, and dies on a
    BrokenPipeError traceback."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _process(name: str):
    """One source file -> (framed TFRecord entries, content hash) or (None, skip reason).
    Raw and PNG give one entry; StyleGAN one per level, full resolution first."""
    options: ConvertOptions = _worker_state["options"]
    try:
        archive = _worker_state["zip"]
        if archive is not None:
            data = archive.read(name)
        else:
            path = os.path.join(_worker_state["src"], name)
            if os.path.getsize(path) == 0:
                raise imaging.ImageSkipped("empty file (0 bytes)")
            with open(path, "rb") as file:
                data = file.read()
        image, digest = imaging.load_pil_image(
            data,
            options.resolution,
            transform=options.transform,
            resize_filter=options.resize_filter,
            min_size=options.effective_min_size,
            with_hash=options.dedupe,
        )
    except imaging.ImageSkipped as reason:
        return None, str(reason)
    except Exception as error:  # never let one odd file stop the run
        return None, f"unexpected {type(error).__name__}: {error}"
    shape = (options.resolution, options.resolution, 3)
    if options.format == "stylegan":
        hwc = np.asarray(image, np.uint8).reshape(shape)
        return [frame_record(serialize_stylegan_example(level)) for level in stylegan_levels(hwc)], digest
    payload = imaging.encode_png(image) if options.format == "png" else image.tobytes()
    return [frame_record(serialize_example(payload, shape))], digest


_PROGRESS_EVERY = 16


def _convert_chunk(task) -> dict:
    """Worker: converts a list of source names into part files, one per output stream (raw and png:
    one; stylegan: one per level), so no pixels travel between processes. Returns what the main
    process needs to assemble shards: the converted names with their hashes, each record's size
    per stream, the skips, and each part's SHA-256."""
    names, paths, durable = task
    files = [TFRecordFile(path, durable=durable) for path in paths]
    images, skipped, sizes = [], [], [[] for _ in paths]
    counter = _worker_state["counter"]
    try:
        for position, name in enumerate(names, 1):
            records, info = _process(name)
            if records is None:
                skipped.append({"path": name, "reason": info})
            else:
                images.append((name, info))
                for file, record, stream_sizes in zip(files, records, sizes):
                    file.write_framed(record)
                    stream_sizes.append(len(record))
            if counter is not None and (position % _PROGRESS_EVERY == 0 or position == len(names)):
                with counter.get_lock():
                    counter.value += position % _PROGRESS_EVERY or _PROGRESS_EVERY
    finally:
        checksums = [file.close() for file in files]
    return {"paths": paths, "sha256": checksums, "bytes": [file.size for file in files], "images": images,
            "sizes": sizes, "skipped": skipped}


def _copy_records(part: str, sizes: list[int], keep: list[bool], out: TFRecordFile) -> None:
    """Appends the kept records of a part file to `out`, then deletes the part. Reads 16 MiB or one
    record at a time: parts of high-resolution datasets can be gigabytes."""
    with open(part, "rb") as file:
        if all(keep):
            while block := file.read(1 << 24):
                out.write_framed(block)
        else:
            for size, wanted in zip(sizes, keep):
                if wanted:
                    out.write_framed(file.read(size))
                else:
                    file.seek(size, os.SEEK_CUR)
    os.remove(part)


# ----------------------------------------------------------------------------- records


def serialize_example(payload: bytes, shape) -> bytes:
    """Our raw/png record: `image` (raw HWC uint8 bytes or PNG bytes) and `shape` [H, W, C]."""
    return encode_example({"image": payload, "shape": shape})


def serialize_stylegan_example(chw: np.ndarray) -> bytes:
    """NVIDIA dataset_tool record: `shape` int64 [C, H, W] and `data` raw uint8 CHW bytes."""
    return encode_example({"shape": chw.shape, "data": chw.tobytes()})


def stylegan_levels(hwc: np.ndarray) -> list[np.ndarray]:
    """All levels of one image, full resolution first, CHW uint8, as NVIDIA's dataset_tool makes them:
    each level is the 2x2 mean of the (unrounded) level above, rounded only when stored."""
    image = hwc.transpose(2, 0, 1)
    levels = [np.ascontiguousarray(image)]
    current = image.astype(np.float32)
    while current.shape[1] > 4:
        current = (current[:, 0::2, 0::2] + current[:, 0::2, 1::2] + current[:, 1::2, 0::2] + current[:, 1::2, 1::2]) * 0.25
        levels.append(np.rint(current).clip(0, 255).astype(np.uint8))
    return levels


def _write_json_atomic(path: str, payload) -> None:
    write_json_atomic(path, payload, indent=2)


def _shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.tfrecords"


def _is_our_output(name: str) -> bool:
    return (
        name in (MANIFEST_NAME, STATE_NAME, PROGRESS_DIR)
        or name.endswith(".tfrecords")
        or (name.startswith((MANIFEST_NAME, STATE_NAME)) and name.endswith(".tmp"))  # unfinished manifests
        or (".tfrecords" in name and name.endswith(".tmp"))  # unfinished shards and their parts
    )


def _prepare_destination(dest: str, state: dict, overwrite: bool) -> bool:
    """Returns True when an unfinished conversion with the same inputs and options is resumed."""
    os.makedirs(dest, exist_ok=True)
    entries = [name for name in os.listdir(dest) if not name.startswith(".git") and name != LOCK_NAME]
    state_path = os.path.join(dest, STATE_NAME)
    if overwrite:
        for name in entries:
            if _is_our_output(name):
                path = os.path.join(dest, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return False
    if not entries:
        return False
    if os.path.exists(state_path) and not os.path.exists(os.path.join(dest, MANIFEST_NAME)):
        with open(state_path, encoding="utf-8") as file:
            previous = json.load(file)
        if previous == state:
            return True
        raise ConversionError(
            f"destination {dest!r} holds an unfinished conversion of other inputs or options; "
            "rerun that exact command to finish it, or pass --overwrite to start over"
        )
    raise ConversionError(f"destination {dest!r} is not empty; pass --overwrite to replace its dataset files")


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
    shutil.rmtree(os.path.join(dest, PROGRESS_DIR), ignore_errors=True)
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


def _pool_context():
    """The multiprocessing context for decode workers, or None to decode in this process.

    fork is cheapest but unsafe once TensorFlow's threads exist in the caller; spawn re-imports the
    main module, which is impossible for code read from stdin (workers would die and be restarted
    forever)."""
    if "fork" in multiprocessing.get_all_start_methods() and "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.isfile(main_file):
        return None
    return multiprocessing.get_context("spawn")


def _chunk_size(shard_size: int, images: int, workers: int) -> int:
    """Images per worker task: a whole shard when that still gives every worker a few tasks (the
    part then becomes the shard by renaming), smaller for small sets or huge shards."""
    return max(1, min(shard_size, 1000, max(32, math.ceil(images / (4 * workers)))))


def _progress_bar(total: int, images: int, progress: bool):
    """The images/s bar over all `total` images, `images` of them still to convert."""
    return tqdm(total=total, initial=total - images, unit="img", desc="convert", disable=not progress, smoothing=0.1)


def _run_chunks(src, options, tasks, workers, progress, total):
    """`_convert_chunk` results in task order, from a pool of processes (all cores by default), or
    in this process for one worker or few images, with a progress bar over `total` images."""
    images = sum(len(task[0]) for task in tasks)
    context = _pool_context() if workers > 1 and images >= 64 else None
    if context is None:
        with imaging.pixel_limit(options.max_pixels), _progress_bar(total, images, progress) as bar:
            _worker_init(src, options)
            for task in tasks:
                result = _convert_chunk(task)
                bar.update(len(task[0]))
                yield result
        return
    counter = context.Value("q", 0)
    # concurrent.futures rather than multiprocessing.Pool: a worker killed mid-task (the OOM killer,
    # a crashing decoder) breaks the executor and raises here; Pool would wait forever.
    executor = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(src, options, counter, os.getpid())
    )
    finished, bar = False, None
    try:
        futures = [executor.submit(_convert_chunk, task) for task in tasks]
        # The bar after the workers exist: its monitor thread would otherwise be forked with them.
        bar = _progress_bar(total, images, progress)
        start = bar.n
        for future in futures:
            while not future.done():
                concurrent.futures.wait([future], timeout=0.25)
                bar.update(start + counter.value - bar.n)
            try:
                result = future.result()
            except concurrent.futures.BrokenExecutor:
                raise ConversionError(
                    "a converter worker process died (killed by the system, e.g. out of memory, or crashed "
                    "decoding a file); the shards finished so far are kept: run the same command again to "
                    "continue, and if it dies again, lower --max-pixels or --workers"
                ) from None
            bar.update(start + counter.value - bar.n)
            yield result
        finished = True
    finally:
        if not finished:  # Ctrl-C or an error: stop the workers now, not after their current task
            _terminate_workers(executor)
        executor.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()


def _terminate_workers(executor) -> None:
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def _keep(result, options, seen_hashes, skipped) -> list[bool]:
    """Which converted images of a chunk result to write: all, except later copies of an image
    under --dedupe (the first in the shuffled order stays). Appends the chunk's skips to `skipped`."""
    skipped.extend(result["skipped"])
    keep = []
    for name, digest in result["images"]:
        duplicate = options.dedupe and digest in seen_hashes
        if duplicate:
            skipped.append({"path": name, "reason": "exact duplicate of an earlier image (--dedupe)"})
        elif options.dedupe:
            seen_hashes.add(digest)
        keep.append(not duplicate)
    return keep


def _remove_leftovers(dest: str) -> None:
    for name in os.listdir(dest):
        if name.endswith(".tmp"):
            os.remove(os.path.join(dest, name))  # an interrupted run's unfinished files


def _convert_sharded(src, dest, names, options, workers, progress, resumed):
    count = math.ceil(len(names) / options.shard_size)
    progress_dir = os.path.join(dest, PROGRESS_DIR)
    os.makedirs(progress_dir, exist_ok=True)
    done: dict[int, dict] = {}
    if resumed:
        for index in range(count):
            record = os.path.join(progress_dir, f"{index:05d}.json")
            if os.path.exists(record) and os.path.exists(os.path.join(dest, _shard_name(index, count))):
                with open(record, encoding="utf-8") as file:
                    done[index] = json.load(file)
        if done and progress:
            print(f"resuming: {len(done)} of {count} shards already complete")
    _remove_leftovers(dest)
    seen_hashes = {digest for record in done.values() for digest in record["hashes"] if digest}
    skipped = [entry for record in done.values() for entry in record["skipped"]]
    todo = [i for i in range(count) if i not in done]
    workers = workers or os.cpu_count() or 1
    remaining = sum(len(names[i * options.shard_size : (i + 1) * options.shard_size]) for i in todo)
    chunk = _chunk_size(options.shard_size, remaining, workers)
    tasks, parts_of = [], {}
    for index in todo:
        shard_names = names[index * options.shard_size : (index + 1) * options.shard_size]
        pieces = [shard_names[i : i + chunk] for i in range(0, len(shard_names), chunk)]
        parts_of[index] = len(pieces)
        for number, piece in enumerate(pieces):
            part = os.path.join(dest, f"{_shard_name(index, count)}.part{number:04d}.tmp")
            tasks.append((piece, [part], len(pieces) == 1))
    results = _run_chunks(src, options, tasks, workers, progress, len(names))
    try:
        for index in todo:
            final = os.path.join(dest, _shard_name(index, count))
            parts = [next(results) for _ in range(parts_of[index])]
            shard_skipped: list[dict] = []
            keeps = [_keep(part, options, seen_hashes, shard_skipped) for part in parts]
            if len(parts) == 1 and all(keeps[0]):  # the worker wrote the shard itself
                replace_durably(parts[0]["paths"][0], final)
                checksum, size = parts[0]["sha256"][0], parts[0]["bytes"][0]
            else:
                with TFRecordFile(final + ".tmp") as shard:
                    for part, keep in zip(parts, keeps):
                        _copy_records(part["paths"][0], part["sizes"][0], keep, shard)
                checksum, size = shard.close(), shard.size
                replace_durably(shard.path, final)
            hashes = [digest for part, keep in zip(parts, keeps)
                      for (_, digest), kept in zip(part["images"], keep) if kept]
            record = {
                "file": os.path.basename(final),
                "num_images": len(hashes),
                "bytes": size,
                "sha256": checksum,
                "hashes": hashes,
                "skipped": shard_skipped,
            }
            _write_json_atomic(os.path.join(progress_dir, f"{index:05d}.json"), record)
            done[index] = record
            skipped.extend(shard_skipped)
    finally:
        results.close()
    shards = [_shard_entry(dest, done[i]) for i in range(count)]
    empty = [shard for shard in shards if shard["num_images"] == 0]
    for shard in empty:  # every file of a shard was skipped: keep no empty file around
        os.remove(os.path.join(dest, shard["file"]))
    shards = [shard for shard in shards if shard["num_images"] > 0]
    return sum(shard["num_images"] for shard in shards), shards, skipped


def _shard_entry(dest: str, record: dict) -> dict:
    """A manifest's shard entry from a finished shard's progress record (records of earlier
    versions hold no size: the file's is taken)."""
    size = record.get("bytes")
    if size is None:
        size = os.path.getsize(os.path.join(dest, record["file"]))
    return {"file": record["file"], "num_images": record["num_images"], "bytes": size, "sha256": record["sha256"]}


def _convert_stylegan(src, dest, names, options, workers, progress):
    prefix = os.path.join(dest, os.path.basename(os.path.normpath(os.path.abspath(dest))))
    log2 = int(round(math.log2(options.resolution)))
    paths = [f"{prefix}-r{level:02d}.tfrecords" for level in range(log2, 1, -1)]
    _remove_leftovers(dest)
    workers = workers or os.cpu_count() or 1
    chunk = _chunk_size(1000, len(names), workers)
    tasks = []
    for number, start in enumerate(range(0, len(names), chunk)):
        parts = [f"{path}.part{number:05d}.tmp" for path in paths]
        tasks.append((names[start : start + chunk], parts, False))
    results = _run_chunks(src, options, tasks, workers, progress, len(names))
    files = [TFRecordFile(path + ".tmp") for path in paths]
    skipped, seen, written = [], set(), 0
    try:
        for result in results:
            keep = _keep(result, options, seen, skipped)
            for file, part, sizes in zip(files, result["paths"], result["sizes"]):
                _copy_records(part, sizes, keep, file)
            written += sum(keep)
    finally:
        results.close()
        checksums = [file.close() for file in files]
    shards = []
    for path, checksum, file in zip(paths, checksums, files):
        if written:
            replace_durably(path + ".tmp", path)
            shards.append({"file": os.path.basename(path), "num_images": written, "bytes": file.size,
                           "sha256": checksum})
        else:
            os.remove(path + ".tmp")
    return written, shards, skipped
