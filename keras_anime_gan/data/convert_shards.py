"""The converter's writers: converted records into shards, or into NVIDIA StyleGAN's `-rNN.tfrecords`.

Shards (`_convert_sharded`): each shard is the one part file a worker wrote, renamed, or the kept
records of several parts joined; once a shard is renamed into place, its progress record (its images'
hashes and skips) lands in `.progress/`, so a rerun of the same command keeps the finished shards and
converts the rest. StyleGAN files (`_convert_stylegan`) are written in one pass, one per level.
"""

from __future__ import annotations

import math
import os

from ..atomic import replace_durably
from .convert_destination import (_check_progress_folder, _read_state, _remove_leftovers, _shard_name,
                                  _write_json_atomic)
from .convert_workers import _chunk_size, _run_chunks
from .tfrecord import TFRecordFile


def _convert_sharded(src, dest, names, options, workers, progress, resumed):
    """Convert `names` into `shard_size` shards (the finished ones kept when `resumed`); returns
    (images written, the manifest's shard entries, skipped entries)."""
    count = math.ceil(len(names) / options.shard_size)
    progress_dir = _check_progress_folder(dest)
    done = _finished_shards(dest, progress_dir, count, progress) if resumed else {}
    _remove_leftovers(dest)
    seen_hashes = {digest for record in done.values() for digest in record["hashes"] if digest}
    skipped = [entry for record in done.values() for entry in record["skipped"]]
    todo = [i for i in range(count) if i not in done]
    workers = workers or os.cpu_count() or 1
    tasks, parts_of = _shard_tasks(dest, names, options.shard_size, todo, count, workers)
    results = _run_chunks(src, options, tasks, workers, progress, len(names))
    try:
        for index in todo:
            parts = [next(results) for _ in range(parts_of[index])]
            record = _write_shard(dest, _shard_name(index, count), parts, options, seen_hashes)
            _write_json_atomic(os.path.join(progress_dir, f"{index:05d}.json"), record)
            done[index] = record
            skipped.extend(record["skipped"])
    finally:
        results.close()
    shards = [_shard_entry(dest, done[i]) for i in range(count)]
    for shard in shards:  # every file of a shard was skipped: keep no empty file around
        if shard["num_images"] == 0:
            os.remove(os.path.join(dest, shard["file"]))
    shards = [shard for shard in shards if shard["num_images"] > 0]
    return sum(shard["num_images"] for shard in shards), shards, skipped


def _finished_shards(dest, progress_dir, count, progress) -> dict[int, dict]:
    """Shard index -> its progress record, for each shard an interrupted run finished: its file is
    there and its record reads back as one the converter wrote (else it is converted again)."""
    done: dict[int, dict] = {}
    for index in range(count):
        record = os.path.join(progress_dir, f"{index:05d}.json")
        if os.path.exists(record) and os.path.isfile(os.path.join(dest, _shard_name(index, count))):
            loaded = _read_state(record)
            if _good_record(loaded, _shard_name(index, count)):
                done[index] = loaded  # else: damaged, the shard is converted again
    if done and progress:
        print(f"resuming: {len(done)} of {count} shards already complete")
    return done


def _shard_tasks(dest, names, shard_size, todo, count, workers) -> tuple[list, dict[int, int]]:
    """The worker tasks for the shards `todo` (each cut into parts of one chunk size), and how many
    parts each shard has. A shard of one part is written durably by its worker: it is renamed as is."""
    remaining = sum(len(names[i * shard_size : (i + 1) * shard_size]) for i in todo)
    chunk = _chunk_size(shard_size, remaining, workers)
    tasks, parts_of = [], {}
    for index in todo:
        shard_names = names[index * shard_size : (index + 1) * shard_size]
        pieces = [shard_names[i : i + chunk] for i in range(0, len(shard_names), chunk)]
        parts_of[index] = len(pieces)
        for number, piece in enumerate(pieces):
            part = os.path.join(dest, f"{_shard_name(index, count)}.part{number:04d}.tmp")
            tasks.append((piece, [part], len(pieces) == 1))
    return tasks, parts_of


def _write_shard(dest, name, parts, options, seen_hashes) -> dict:
    """The shard `name` from its parts' results, in place under its final name; returns its progress
    record (file, images, bytes, SHA-256, the kept images' hashes, the skips)."""
    final = os.path.join(dest, name)
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
    return {
        "file": os.path.basename(final),
        "num_images": len(hashes),
        "bytes": size,
        "sha256": checksum,
        "hashes": hashes,
        "skipped": shard_skipped,
    }


def _good_record(record, name: str) -> bool:
    """Whether a progress record read back on resume is one the converter wrote for the shard `name`."""
    def count(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    return (isinstance(record, dict) and record.get("file") == name and count(record.get("num_images"))
            and isinstance(record.get("sha256"), str) and (record.get("bytes") is None or count(record["bytes"]))
            and isinstance(record.get("hashes"), list)
            and all(isinstance(h, (str, type(None))) for h in record["hashes"])
            and isinstance(record.get("skipped"), list)
            and all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("reason"), str)
                    for e in record["skipped"]))


def _shard_entry(dest: str, record: dict) -> dict:
    """A manifest's shard entry from a finished shard's progress record (records of earlier
    versions hold no size: the file's is taken)."""
    size = record.get("bytes")
    if size is None:
        size = os.path.getsize(os.path.join(dest, record["file"]))
    return {"file": record["file"], "num_images": record["num_images"], "bytes": size, "sha256": record["sha256"]}


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
