"""What a dataset path holds (`describe_source`), found without TensorFlow: it runs before a run's
distribution strategy exists (MultiWorkerMirroredStrategy must be created before TensorFlow's
runtime starts), and `keras-anime-gan verify` should not pay for importing it.

Cheap checks happen here, every time a dataset is opened: each shard of a converted dataset must
exist and have the size `dataset.json` records (a stat each), and a folder of images must hold
files that decode (a bounded sample is decoded with Pillow). `verify.py` does the expensive ones.

`dataset.json` is data from the folder, not trusted: each shard it lists must be a plain file name
(no separator, no `..`, not absolute; `layout.shard_name_problem`) whose entry is a regular file,
or a link to one inside the dataset folder. Anything else is damage, named, and nothing outside
the folder is read.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re

from ..errors import UserError, short_repr
from . import imaging, tfrecord
from .layout import FORMATS, MANIFEST_NAME, STATE_NAME, shard_name_problem

STYLEGAN_FILE = re.compile(r"-r(\d\d)\.tfrecords$")
# Image files decoded to check a folder: spread over its listing, so a few seconds at most even
# for large photos, and every file of a small folder.
FOLDER_SAMPLE = 64
DEFAULT_FOLDER_RESOLUTION = 64


class DatasetError(UserError):
    """The path given to load_dataset cannot be read as a dataset; the message says why."""


def verify_hint(path: str) -> str:
    return f"`keras-anime-gan verify {path}` checks every file"


def describe_source(path: str) -> dict:
    """What `path` holds, as a dict with `kind`, `resolution` and `num_images`:

    - "converted" (our TFRecords, `dataset.json`): + `manifest`. Each shard must exist with the
      size the manifest records, else DatasetError naming it.
    - "stylegan" (NVIDIA's `-rNN.tfrecords`, ours or theirs): + `levels` {resolution: file};
      `resolution` is the largest level.
    - "folder" (image files, searched recursively): + `files`, `num_files`, `checked` (files
      decoded with Pillow to check them: up to FOLDER_SAMPLE spread over the listing, every file
      of a small folder) and `undecodable` ({"path", "reason"} of those that failed).
      `num_images` counts the files not found undecodable (exact when every file was checked);
      `resolution` is the largest shorter side among the checked images (sizes vary; a run at a
      larger resolution would upscale). DatasetError when none of the checked files decodes.
    """
    if not os.path.exists(path):
        raise DatasetError(f"dataset path {path!r} does not exist")
    if os.path.isdir(path):
        manifest = read_manifest(path)
        if manifest is not None:
            check_shards(path, manifest)
            if manifest.get("format") != "stylegan":
                return {"kind": "converted", "manifest": manifest, "resolution": manifest["resolution"],
                        "num_images": manifest["num_images"]}
        elif os.path.exists(os.path.join(path, STATE_NAME)):
            raise DatasetError(
                f"{path!r} holds an unfinished conversion (no {MANIFEST_NAME}); rerun the convert command to finish it"
            )
        levels = stylegan_levels(path)
        if levels:  # every level file holds every image: the 4x4 one is the quickest to count
            return {"kind": "stylegan", "levels": levels, "resolution": max(levels),
                    "num_images": manifest["num_images"] if manifest else count_level(levels[min(levels)], path)}
        if glob.glob(os.path.join(path, "*.tfrecords")) or glob.glob(os.path.join(path, "*.tfrecord")):
            raise DatasetError(
                f"{path!r} holds TFRecords but no {MANIFEST_NAME} and no StyleGAN -rNN files; "
                "convert the images with `keras-anime-gan convert`"
            )
        files = list_image_files(path)
        if not files:
            raise DatasetError(f"{path!r} holds no images ({' '.join(imaging.SUPPORTED_EXTENSIONS)}) and no TFRecords")
        return describe_folder(path, files)
    if path.endswith(".tfrecords") and STYLEGAN_FILE.search(path):
        return describe_source(os.path.dirname(path) or ".")
    raise DatasetError(f"dataset path {path!r} is a file; give a folder of images or of TFRecords")


def read_manifest(path: str) -> dict | None:
    """The folder's `dataset.json`, or None when it has none; DatasetError when it is unreadable."""
    manifest_path = os.path.join(path, MANIFEST_NAME)
    if not os.path.exists(manifest_path):
        return None
    try:
        with open(manifest_path, encoding="utf-8") as file:
            manifest = json.load(file)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
            raise ValueError("it is not a dataset manifest (no list of shards)")
        missing = sorted({"num_images", "resolution", "format"} - set(manifest))
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        _check_manifest(manifest)
    except (OSError, ValueError, RecursionError) as error:
        reason = error if not isinstance(error, RecursionError) else "it is nested too deeply to be a manifest"
        raise DatasetError(f"{manifest_path} is damaged ({reason}); reconvert the images") from None
    return manifest


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_manifest(manifest: dict) -> None:
    """ValueError naming the first entry of a manifest that the readers could not use safely."""
    if not _count(manifest["num_images"]):
        raise ValueError(f"num_images is {_shown(manifest['num_images'])}, not a count")
    if not _count(manifest["resolution"]) or manifest["resolution"] < 1:
        raise ValueError(f"resolution is {_shown(manifest['resolution'])}, not a size in pixels")
    if manifest["format"] not in FORMATS:
        raise ValueError(f"format is {_shown(manifest['format'])}, not one of {', '.join(FORMATS)}")
    seen = set()
    for index, shard in enumerate(manifest["shards"]):
        if not isinstance(shard, dict) or "file" not in shard:
            raise ValueError(f"shard entry {index} is {_shown(shard)}, not a shard")
        problem = shard_name_problem(shard["file"])
        if problem is not None:
            raise ValueError(f"shard entry {index} names {problem}")
        if shard["file"] in seen:
            raise ValueError(f"shard {shard['file']} is listed twice")
        seen.add(shard["file"])
        if not _count(shard.get("num_images")):
            raise ValueError(f"shard {shard['file']} has num_images {_shown(shard.get('num_images'))}, not a count")
        if shard.get("bytes") is not None and not _count(shard["bytes"]):
            raise ValueError(f"shard {shard['file']} has bytes {_shown(shard['bytes'])}, not a size")
        if not isinstance(shard.get("sha256"), str):
            raise ValueError(f"shard {shard['file']} has no sha256")


def _shown(value, limit=60) -> str:
    return short_repr(value, limit)


def outside_folder(path: str, file: str) -> bool:
    """Whether `file` (an entry of the dataset folder `path`) is a link that leads outside it."""
    if not os.path.islink(file):
        return False
    folder = os.path.realpath(path)
    return os.path.commonpath([folder, os.path.realpath(file)]) != folder


def entry_problem(path: str, name: str) -> str | None:
    """Why the shard `name` of the dataset folder `path` cannot be read (missing, not a regular
    file, a link out of the folder), or None."""
    file = os.path.join(path, name)
    if outside_folder(path, file):
        return "a symbolic link to a file outside the dataset folder (not read)"
    if not os.path.exists(file):
        return f"missing (listed in {MANIFEST_NAME})"
    if not os.path.isfile(file):
        return "not a regular file (not read)"
    return None


def shard_problems(path: str, manifest: dict) -> list[dict]:
    """{"file", "reason"} for each shard the manifest lists that is missing or has another size
    than recorded (manifests of earlier versions record no size: only existence is checked)."""
    problems = []
    for shard in manifest["shards"]:
        file = os.path.join(path, shard["file"])
        problem = entry_problem(path, shard["file"])
        if problem is not None:
            problems.append({"file": shard["file"], "reason": problem})
            continue
        try:
            size = os.path.getsize(file)
        except OSError:
            problems.append({"file": shard["file"], "reason": f"missing (listed in {MANIFEST_NAME})"})
            continue
        expected = shard.get("bytes")
        if expected is not None and size != expected:
            problems.append({"file": shard["file"], "reason": f"{size:,} bytes, {MANIFEST_NAME} records {expected:,} "
                                                              f"({'truncated' if size < expected else 'overwritten'})"})
    return problems


def check_shards(path: str, manifest: dict) -> None:
    """DatasetError naming the first missing or resized shard (one stat per shard)."""
    problems = shard_problems(path, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = problems[0]
        raise DatasetError(f"{path}: shard {first['file']} is {first['reason']}{more}; {verify_hint(path)}, "
                           "and reconverting the images replaces the damaged ones")


def stylegan_levels(directory: str) -> dict[int, str]:
    """{resolution: file} of the folder's StyleGAN `-rNN.tfrecords` files: regular files (or links
    to them inside the folder) only, so a FIFO never blocks a reader and nothing outside is read."""
    levels = {}
    for file in sorted(glob.glob(os.path.join(directory, "*.tfrecords"))):
        match = STYLEGAN_FILE.search(file)
        if match and os.path.isfile(file) and not outside_folder(directory, file):
            levels[2 ** int(match.group(1))] = file
    return levels


def count_level(file: str, path: str) -> int:
    """Records in one StyleGAN level file, from its framing (cheap); DatasetError if truncated."""
    try:
        return tfrecord.count_records(file)
    except ValueError as error:
        raise DatasetError(f"{error}; {verify_hint(path)}") from None


def list_image_files(directory: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        files.extend(os.path.join(root, name) for name in sorted(names) if imaging.has_supported_extension(name))
    return files


def describe_folder(path: str, files: list[str]) -> dict:
    """`describe_source` of an image folder: decodes a sample of its files (see there)."""
    count = min(len(files), FOLDER_SAMPLE)
    sample = [files[index * len(files) // count] for index in range(count)]
    sides, undecodable = [], []
    for file in sample:
        try:
            width, height = imaging.probe_image(file)
        except imaging.ImageSkipped as reason:
            undecodable.append({"path": os.path.relpath(file, path), "reason": str(reason)})
        else:
            sides.append(min(width, height))
    if not sides:
        tried = "of which none decodes" if count == len(files) else f"none of the {count} tried decodes"
        raise DatasetError(f"{path}: {len(files)} image files, {tried} ({summarize_reasons(undecodable)}); "
                           f"`keras-anime-gan verify {path}` lists each file's reason")
    return {"kind": "folder", "files": files, "num_files": len(files), "num_images": len(files) - len(undecodable),
            "checked": count, "undecodable": undecodable, "resolution": max(sides)}


def summarize_reasons(skipped: list[dict], examples: int = 2) -> str:
    """'5 not an image Pillow can identify, e.g. a.jpg; 1 cannot decode, e.g. b.jpg': counts per
    kind of reason, the most common first."""
    groups = collections.defaultdict(list)
    for entry in skipped:
        groups[re.split(r"[:(]", entry["reason"], maxsplit=1)[0].strip()].append(entry["path"])
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    parts = [f"{len(paths)} {reason}, e.g. {paths[0]}" for reason, paths in ranked[:examples]]
    if len(ranked) > examples:
        parts.append(f"{sum(len(paths) for _, paths in ranked[examples:])} for other reasons")
    return "; ".join(parts)
