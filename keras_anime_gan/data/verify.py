"""`verify_dataset`: read every file of a dataset once and say which are damaged (the
`keras-anime-gan verify DATA` command), and `explain_data_loss`: the same check turned into one
line for a DataLossError met while training, whose own message names no file.

No TensorFlow: the checks are TFRecord's own (framing and CRC-32C, see `tfrecord`), the SHA-256
and sizes `dataset.json` records, and Pillow decoding for image folders.
"""

from __future__ import annotations

import hashlib
import os
import re

from tqdm.auto import tqdm

from . import imaging, tfrecord
from .layout import MANIFEST_NAME, STATE_NAME
from .sources import (STYLEGAN_FILE, DatasetError, describe_source, entry_problem, list_image_files, read_manifest,
                      stylegan_levels)

_BLOCK = 1 << 24


def verify_dataset(path: str, progress: bool = True) -> dict:
    """Check every file of the dataset at `path`, reading each once (seconds per GB), and return
    {"path", "kind", "ok", "files_checked", "bytes_checked", "num_images", "checks", "bad"}:
    `bad` lists {"file", "reason"} per damaged file, `ok` is True when it is empty, `checks` says
    what was checked, `num_images` counts the images found intact.

    - converted (`dataset.json`): each shard exists with the recorded size and SHA-256 and holds
      the recorded number of records, and the shards add up to the dataset's image count;
    - StyleGAN `-rNN` files: every record of every level is whole with intact CRC-32Cs (what
      TensorFlow checks while reading), and every level holds as many images; with our
      `dataset.json` also its sizes and SHA-256;
    - image folders: every image file decodes (Pillow).

    DatasetError (a UserError) when `path` holds no dataset or an unfinished conversion. With
    `progress`, a tqdm bar over the bytes read (over the files of an image folder).
    """
    if not os.path.exists(path):
        raise DatasetError(f"dataset path {path!r} does not exist")
    if os.path.isfile(path) and STYLEGAN_FILE.search(path):
        path = os.path.dirname(path) or "."
    if os.path.isdir(path):
        try:
            manifest = read_manifest(path)
        except DatasetError as error:
            return _report(path, "converted", [MANIFEST_NAME], 0, 0, [{"file": MANIFEST_NAME, "reason": str(error)}])
        if manifest is not None and manifest["format"] != "stylegan":
            return _verify_shards(path, manifest, progress)
        levels = stylegan_levels(path)
        if levels and (manifest is not None or not os.path.exists(os.path.join(path, STATE_NAME))):
            return _verify_stylegan(path, levels, manifest, progress)
        files = list_image_files(path)
        if files and not os.path.exists(os.path.join(path, STATE_NAME)):
            return _verify_folder(path, files, progress)
    describe_source(path)  # raises the DatasetError that says what `path` is instead
    raise DatasetError(f"{path!r} holds no dataset to verify")


def explain_data_loss(path: str, error: BaseException) -> str:
    """One line for a `tf.errors.DataLossError` raised while reading the dataset at `path`:
    TensorFlow's own message ("corrupted record at 2044", "truncated record at 2032") names no
    file, so this verifies the dataset (`verify_dataset`, reading every file once) and names the
    damaged files and what to do. Never raises; when the check itself fails or finds nothing, the
    line says so and keeps TensorFlow's words."""
    said = tensorflow_message(error)
    try:
        report = verify_dataset(path, progress=False)
    except (DatasetError, OSError) as failure:
        return f"reading {path} failed ({said}), and checking it failed too: {failure}"
    if report["ok"]:
        return (f"reading {path} failed ({said}), but every file now matches its checksums (a read error of the "
                f"disk or network?); `keras-anime-gan verify {path}` checks it again")
    bad = report["bad"]
    named = "; ".join(f"{entry['file']}: {entry['reason']}" for entry in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"{path} is damaged ({named}{more}); {_repair_hint(path)} (TensorFlow: {said})"


def tensorflow_message(error: BaseException) -> str:
    """TensorFlow's words without the graph node and op decorations around them."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text, flags=re.S)
    return " ".join(text.split()) or type(error).__name__


def _repair_hint(path: str) -> str:
    try:
        manifest = read_manifest(path)
    except DatasetError:
        manifest = None
    source = manifest.get("source") if manifest else None
    if isinstance(source, str) and source.isprintable() and len(source) <= 4096:
        return (f"reconvert it (keras-anime-gan convert {manifest['source']} {path} --overwrite, with the options "
                f"in {MANIFEST_NAME}) or restore the damaged files from a copy")
    return "restore the damaged files from a copy, or recreate the dataset"


def _report(path, kind, checks, files, size, bad, images=0) -> dict:
    return {"path": path, "kind": kind, "ok": not bad, "files_checked": files, "bytes_checked": size,
            "num_images": images, "checks": checks, "bad": bad}


def _bytes_bar(total: int, progress: bool):
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="verify", disable=not progress)


def _sizes(path: str, names) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in names if entry_problem(path, name) is None)


def _sha256(file: str, bar) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _damage(file: str) -> str:
    """Where a shard whose checksum differs is damaged, for the report."""
    try:
        tfrecord.check_records(file)
    except ValueError as error:
        return str(error)
    return "its records are intact: replaced by another file?"


def _verify_shards(path: str, manifest: dict, progress: bool) -> dict:
    shards = manifest["shards"]
    bad, images, checked = [], 0, 0
    with _bytes_bar(_sizes(path, [shard["file"] for shard in shards]), progress) as bar:
        for shard in shards:
            file = os.path.join(path, shard["file"])
            problem = entry_problem(path, shard["file"])
            if problem is not None:  # missing, a FIFO or folder, a link out of the folder: never read
                bad.append({"file": shard["file"], "reason": problem})
                continue
            size, expected = os.path.getsize(file), shard.get("bytes")
            checked += size
            if expected is not None and size != expected:
                bar.update(size)
                bad.append({"file": shard["file"], "reason": f"{size:,} bytes, {MANIFEST_NAME} records {expected:,} "
                                                             f"({'truncated' if size < expected else 'overwritten'})"})
                continue
            if _sha256(file, bar) != shard["sha256"]:
                bad.append({"file": shard["file"], "reason": f"SHA-256 differs from {MANIFEST_NAME}: {_damage(file)}"})
                continue
            records = tfrecord.count_records(file)
            if records != shard["num_images"]:
                bad.append({"file": shard["file"], "reason": f"{records} records, {MANIFEST_NAME} records "
                                                             f"{shard['num_images']}"})
                continue
            images += records
    listed = sum(shard["num_images"] for shard in shards)
    if listed != manifest["num_images"]:
        bad.append({"file": MANIFEST_NAME,
                    "reason": f"its shards hold {listed} images and it says {manifest['num_images']}"})
    checks = ["every shard's size and SHA-256 against dataset.json", "record counts"]
    return _report(path, "converted", checks, len(shards), checked, bad, images)


def _verify_stylegan(path: str, levels: dict[int, str], manifest: dict | None, progress: bool) -> dict:
    recorded = {shard["file"]: shard for shard in manifest["shards"]} if manifest else {}
    names = {os.path.basename(file) for file in levels.values()}
    bad = [{"file": name, "reason": f"missing (listed in {MANIFEST_NAME})"} for name in sorted(set(recorded) - names)]
    counts, checked = {}, 0
    with _bytes_bar(_sizes(path, names), progress) as bar:
        for _, file in sorted(levels.items(), reverse=True):  # full resolution first
            name = os.path.basename(file)
            checked += os.path.getsize(file)
            try:
                counts[name], digest = tfrecord.check_records(file, bar.update)
            except ValueError as error:
                bad.append({"file": name, "reason": str(error)})
                continue
            shard = recorded.get(name)
            if shard is not None and digest != shard["sha256"]:
                bad.append({"file": name, "reason": f"SHA-256 differs from {MANIFEST_NAME}, its records are intact: "
                                                    "replaced by another file?"})
    images = max(counts.values(), default=0)
    bad += [{"file": name, "reason": f"{count} images, other levels {images}"}
            for name, count in counts.items() if count != images]
    checks = ["every record's framing and CRC-32C", "the same image count in every level"]
    if recorded:
        checks.append("sizes and SHA-256 against dataset.json")
    return _report(path, "stylegan", checks, len(levels), checked, bad, images)


def _verify_folder(path: str, files: list[str], progress: bool) -> dict:
    bad, checked = [], 0
    for file in tqdm(files, unit="file", desc="verify", disable=not progress):
        try:
            checked += os.path.getsize(file)
            imaging.probe_image(file)
        except imaging.ImageSkipped as reason:
            bad.append({"file": os.path.relpath(file, path), "reason": str(reason)})
        except OSError as error:  # vanished since listed
            bad.append({"file": os.path.relpath(file, path), "reason": str(error)})
    return _report(path, "folder", ["every image file decodes (Pillow)"], len(files), checked, bad,
                   len(files) - len(bad))
