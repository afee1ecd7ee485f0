"""The converter's worker side: decoding, resizing and encoding images into TFRecord part files.

Worker processes decode, resize and encode images and write the TFRecord files themselves (a shard,
or a part of one), so no pixels travel between processes; the converting process only renames
finished shards, or joins parts where a shard spans several tasks or --dedupe drops an image
(`convert_shards`). `_run_chunks` runs the tasks in a pool of processes, or in the caller's process
for one worker or few images. TensorFlow is never imported (see `tfrecord`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import multiprocessing
import os
import signal
import sys
import zipfile

import numpy as np
from tqdm.auto import tqdm

from . import imaging
from .convert_options import ConversionError, ConvertOptions
from .tfrecord import TFRecordFile, encode_example, frame_record


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
        current = (current[:, 0::2, 0::2] + current[:, 0::2, 1::2] + current[:, 1::2, 0::2]
                   + current[:, 1::2, 1::2]) * 0.25
        levels.append(np.rint(current).clip(0, 255).astype(np.uint8))
    return levels


# ----------------------------------------------------------------------------- the pool


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
