"""The converter's destination folder: the names it writes there, whether a conversion starts, resumes or
is refused (`_prepare_destination`), what --overwrite removes (decided before anything is removed), and
the unfinished files and progress records it clears.

Every output file is written under a `.tmp` name and renamed when complete; a small record per
finished shard lands in `.progress/` after the rename (`convert_shards`), and `dataset.json` is
written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat

from ..atomic import write_json_atomic
from ..locks import LOCK_NAME
from .convert_options import ConversionError
from .layout import MANIFEST_NAME, PROGRESS_DIR, STATE_NAME


def _write_json_atomic(path: str, payload) -> None:
    write_json_atomic(path, payload, indent=2)


def _shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.tfrecords"


_TMP_TAIL = r"(?:\.part\d{4,5})?(?:\.\d+)?\.tmp"  # unfinished shards, their parts, manifests (PID.tmp)
_RECORD = re.compile(rf"\d{{5}}\.json(?:{_TMP_TAIL})?\Z")  # .progress/NNNNN.json and its temporary file


def _our_names(dest: str):
    """The names the converter writes in `dest` (a compiled pattern): the manifest, the resume
    state, `shard-NNNNN-of-MMMMM.tfrecords`, StyleGAN's `DEST-rNN.tfrecords`, and their temporary
    files. Nothing else is ever removed."""
    stylegan = re.escape(os.path.basename(os.path.normpath(os.path.abspath(dest))))
    names = "|".join([re.escape(MANIFEST_NAME), re.escape(STATE_NAME), r"shard-\d{5}-of-\d{5}\.tfrecords",
                      rf"{stylegan}-r\d\d\.tfrecords"])
    return re.compile(rf"(?:{names})(?:{_TMP_TAIL})?\Z")


def _listed_shards(dest: str) -> set[str]:
    """The shard names the destination's own dataset.json lists (plain file names only)."""
    from .sources import DatasetError, read_manifest

    try:
        manifest = read_manifest(dest)
    except DatasetError:
        return set()
    return {shard["file"] for shard in manifest["shards"]} if manifest else set()


def _prepare_destination(dest: str, state: dict, overwrite: bool) -> bool:
    """Returns True when an unfinished conversion with the same inputs and options is resumed."""
    os.makedirs(dest, exist_ok=True)
    entries = [name for name in os.listdir(dest) if not name.startswith(".git") and name != LOCK_NAME]
    state_path = os.path.join(dest, STATE_NAME)
    if overwrite:
        _remove_planned(dest, _overwrite_plan(dest))
        return False
    if not entries:
        return False
    if os.path.exists(state_path) and not os.path.exists(os.path.join(dest, MANIFEST_NAME)):
        previous = _read_state(state_path)
        if previous == state:
            return True
        raise ConversionError(
            f"destination {dest!r} holds an unfinished conversion of other inputs or options; "
            "rerun that exact command to finish it, or pass --overwrite to start over"
        )
    raise ConversionError(f"destination {dest!r} is not empty; pass --overwrite to replace its dataset files")


def _read_state(path: str):
    """The JSON of a resume state, or None when it cannot be read as one."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.loads(file.read(64 << 20))  # a record of a 100,000-image shard is ~7 MB
    except (OSError, ValueError, RecursionError):
        return None


def _overwrite_plan(dest: str) -> list[str]:
    """The files --overwrite removes, in order (the manifest first: a dataset is never left listing
    removed shards): regular files with the converter's names, the shards its manifest lists, and
    the records in `.progress/`. Decided before anything is removed: an entry at one of those
    names that is not a regular file (a link, a folder) stops it with a ConversionError naming it,
    and nothing is removed; a link is never followed."""
    ours, listed = _our_names(dest), _listed_shards(dest)
    plan = []

    def take(path, name):
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            plan.append(path)
            return
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode) \
            else "not a regular file"
        raise ConversionError(f"{path} is {what}, where the converter writes {name}; --overwrite removes only "
                              "regular files the converter wrote: move it away and rerun")

    for name in sorted(os.listdir(dest), key=lambda n: n != MANIFEST_NAME):
        path = os.path.join(dest, name)
        if name == PROGRESS_DIR:
            if os.path.islink(path) or not os.path.isdir(path):
                take(path, "its progress records")
            for record in sorted(os.listdir(path)):
                if _RECORD.match(record):
                    take(os.path.join(path, record), "its progress records")
        elif ours.match(name) or name in listed:
            take(path, "its own files")
    return plan


def _remove_planned(dest: str, plan: list[str]) -> None:
    for path in plan:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    with contextlib.suppress(OSError):  # only when empty: what is not ours stays
        os.rmdir(os.path.join(dest, PROGRESS_DIR))


def _remove_progress(dest: str) -> None:
    """Remove the progress records (regular files with the records' names) and then `.progress`
    itself when that left it empty; never follows a link."""
    progress = os.path.join(dest, PROGRESS_DIR)
    if os.path.islink(progress) or not os.path.isdir(progress):
        return
    for name in os.listdir(progress):
        path = os.path.join(progress, name)
        if _RECORD.match(name) and os.path.isfile(path) and not os.path.islink(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(progress)


def _check_progress_folder(dest: str) -> str:
    """`dest/.progress`, created when absent; a ConversionError when something else is at that name
    (a link would send the progress records elsewhere)."""
    path = os.path.join(dest, PROGRESS_DIR)
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        raise ConversionError(f"{path} is not the converter's progress folder (a link or a file is there); move it "
                              "away and rerun")
    os.makedirs(path, exist_ok=True)
    return path


def _remove_leftovers(dest: str) -> None:
    """Remove an interrupted run's unfinished files: temporary names of the converter's own files
    only (a user's `notes.tmp` stays), never a folder; a link is removed as a name."""
    ours = _our_names(dest)
    for name in os.listdir(dest):
        path = os.path.join(dest, name)
        if name.endswith(".tmp") and ours.match(name) and not (os.path.isdir(path) and not os.path.islink(path)):
            os.remove(path)
