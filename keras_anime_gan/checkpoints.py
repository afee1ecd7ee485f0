"""Resumable checkpoints of a compiled GAN: writing them safely, finding the one to resume from,
and restoring it in any precision. `callbacks.RunCheckpoint` decides when to write them.

A checkpoint is a folder `epoch-NNNN` (or `epoch-NNNN-interrupted-bBBBB`) holding the GAN's
weights (gan.weights.h5: both networks, EMA weights and the model's own state), each optimizer's
variables (.npz), the random stream (rng_state.npy) and state.json, which records each file's
size and SHA-256; `latest.json` names the one to resume from. A checkpoint whose files do not
match what state.json recorded (truncated, or damaged in place) is never resumed from: the newest
one that matches is.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time

import keras
import numpy as np

from .atomic import atomic_directory, write_atomic, write_json_atomic
from .errors import UserError

log = logging.getLogger(__name__)


class CheckpointError(UserError):
    """A checkpoint that cannot be restored (missing, incomplete or damaged files)."""


class NonFiniteError(ValueError):
    """Weights or metrics that are NaN or infinite: nothing to checkpoint or export."""


CHECKPOINT_FILES = ("gan.weights.h5", "d_optimizer.npz", "g_optimizer.npz", "rng_state.npy", "state.json")
# The layout of gan.weights.h5: 2 since the loop and the objective were split (the EMA generator a
# sub-model, the objective's state under `objective/`); 1 (no "format" in state.json) before.
CHECKPOINT_FORMAT = 2


def checkpoint_progress(path) -> dict:
    """{"images_seen", "train_seconds"} the checkpoint recorded of its run (0 for one that did not)."""
    try:
        with open(os.path.join(path, "state.json"), encoding="utf-8") as file:
            progress = json.load(file).get("progress") or {}
    except (OSError, ValueError, AttributeError):
        progress = {}
    return {"images_seen": int(progress.get("images_seen", 0)),
            "train_seconds": float(progress.get("train_seconds", 0.0))}


def check_format(run, path) -> None:
    """A CheckpointError (one line) for a checkpoint whose weights layout this version cannot read."""
    try:
        with open(os.path.join(path, "state.json"), encoding="utf-8") as file:
            found = json.load(file).get("format", 1)
    except (OSError, ValueError, AttributeError):
        return  # an unreadable state.json is the completeness checks' to report
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{run} was trained by an earlier keras-anime-gan (checkpoint format {found}; this version reads "
            f"format {CHECKPOINT_FORMAT}), so its training cannot be continued or its networks read from "
            f"{os.path.basename(path)}; its generator.keras still works with generate, explore, evaluate, export "
            "and studio. Start a new run to train on")


def _optimizer_arrays(optimizer):
    """v0, v1, ...: the variables of the optimizer proper, the same in every precision; under float16
    also `loss_scale` and `loss_scale_steps`, the state of the LossScaleOptimizer wrapped around it."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    arrays = {f"v{index}": keras.ops.convert_to_numpy(variable) for index, variable in enumerate(inner.variables)}
    if inner is not optimizer:
        arrays["loss_scale"] = keras.ops.convert_to_numpy(optimizer.dynamic_scale)
        arrays["loss_scale_steps"] = keras.ops.convert_to_numpy(optimizer.step_counter)
    return arrays


def _restore_optimizer(optimizer, arrays, description) -> None:
    """Load `_optimizer_arrays` into `optimizer`, in any precision: a float32 or bfloat16 checkpoint
    into a float16 run keeps the LossScaleOptimizer's initial scale, a float16 one into another
    precision drops its scale. Checkpoints from before the loss scale was saved apart indexed every
    variable of the optimizer as it was: those restore into an optimizer of the same kind."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    indexed = [name for name in arrays.files if name.startswith("v") and name[1:].isdigit()]
    if len(indexed) == len(inner.variables):
        targets = inner.variables
    elif inner is not optimizer and len(indexed) == len(optimizer.variables):
        targets = optimizer.variables  # an older float16 checkpoint into a float16 run
    else:
        raise ValueError(f"{description} does not match this model's optimizer ({len(indexed)} vs "
                         f"{len(inner.variables)} variables): was it made with other options?")
    for index, variable in enumerate(targets):
        variable.assign(arrays[f"v{index}"])
    if inner is not optimizer and "loss_scale" in arrays.files:
        optimizer.dynamic_scale.assign(arrays["loss_scale"])
        optimizer.step_counter.assign(arrays["loss_scale_steps"])


def load_gan_weights(gan, path) -> None:
    """`gan.load_weights(path)` for a checkpoint's gan.weights.h5 of any precision. The file also
    holds the optimizers, in the layout of the precision it was written in (float16 wraps them in a
    LossScaleOptimizer); their state comes from the checkpoint's .npz files instead, so Keras's
    warnings that it skipped them are silenced."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        gan.load_weights(path)


def non_finite_variables(gan) -> list[str]:
    """Names of the GAN's variables (weights, EMA weights, optimizer state) holding NaN or inf."""
    variables = list(gan.weights)
    for optimizer in (getattr(gan, "d_optimizer", None), getattr(gan, "g_optimizer", None)):
        if optimizer is not None:
            variables += list(optimizer.variables)
    bad = []
    for variable in variables:
        value = keras.ops.convert_to_numpy(variable)
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad.append(getattr(variable, "path", None) or variable.name)
    return bad


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_state(path, verify=False) -> dict | None:
    """The state.json of a complete checkpoint folder, or None when anything is missing, unreadable,
    or of another size than recorded; with `verify`, also when a file's SHA-256 differs from the
    one recorded (checkpoints from before checksums were recorded are checked by size only)."""
    try:
        with open(os.path.join(path, "state.json"), encoding="utf-8") as file:
            state = json.load(file)
        int(state["epoch"])
        for name in CHECKPOINT_FILES:
            size = os.path.getsize(os.path.join(path, name))
            expected = state.get("files", {}).get(name)  # older checkpoints do not list their files
            if expected is not None and size != expected:
                return None
        if verify:
            for name, digest in state.get("sha256", {}).items():
                if file_sha256(os.path.join(path, name)) != digest:
                    log.warning("checkpoints: %s in %s does not match its recorded SHA-256 (damaged on disk)",
                                name, path)
                    return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _order(state):
    """Newest last: more epochs, then an interrupt's extra batches, then the later save."""
    return int(state["epoch"]), int(state.get("batch") or 0), float(state.get("time", 0.0))


def checkpoint_folders(directory, verify=False) -> list[tuple[str, dict | None]]:
    """(name, state or None when incomplete) of every checkpoint folder in `directory`, by name."""
    if not os.path.isdir(directory):
        return []
    entries = sorted(entry for entry in os.listdir(directory) if entry.startswith("epoch-"))
    return [(entry, _checkpoint_state(os.path.join(directory, entry), verify))
            for entry in entries if os.path.isdir(os.path.join(directory, entry))]


def find_latest(directory, verify=False):
    """(path, state, note) of the checkpoint to resume from: the one latest.json names when it is
    complete (and, with `verify`, matches its checksums), else the newest one that is (`note` then
    says why), or None."""
    pointer = os.path.join(directory, "latest.json")
    note = None
    if os.path.exists(pointer):
        try:
            with open(pointer, encoding="utf-8") as file:
                name = json.load(file)["checkpoint"]
            path = os.path.join(directory, os.path.basename(str(name)))
            state = _checkpoint_state(path, verify)
            if state is not None:
                return path, state, None
            note = f"{pointer} names {name}, which is missing, incomplete or damaged"
        except (OSError, ValueError, KeyError, TypeError) as error:
            note = f"{pointer} is unreadable ({error})"
    else:
        note = f"{pointer} is missing"
    complete = [(entry, state) for entry, state in checkpoint_folders(directory, verify) if state is not None]
    if not complete:
        return None
    entry, state = max(complete, key=lambda item: _order(item[1]))
    return os.path.join(directory, entry), state, f"{note}: using the newest good checkpoint, {entry}"


def _prune(directory, keep, current) -> None:
    """After latest.json names `current`: drop superseded interrupt checkpoints, incomplete
    leftovers and temporary folders, and keep the `keep` newest checkpoints (0: all), `current`
    always among them."""
    for entry in os.listdir(directory):
        if entry.startswith(".tmp-"):
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
    if not keep:
        return
    clean = []
    for entry, state in checkpoint_folders(directory):
        if entry == current:
            continue
        if state is None or state.get("kind") in ("interrupt", "budget"):  # superseded mid-epoch stops
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
        else:
            clean.append((entry, state))
    clean.sort(key=lambda item: _order(item[1]))
    for entry, _ in clean[: max(0, len(clean) - (keep - 1))]:
        shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)


def save_checkpoint(gan, directory, completed_epochs, keep=2, *, interrupted_at_batch=None, history=None,
                    progress=None, stopped_by="interrupt") -> str:
    """Write a resumable checkpoint of a compiled GAN; returns its folder.

    `directory` holds `latest.json` ({"checkpoint": name, "epoch": N, "kind": ...}) and one folder
    per checkpoint, `epoch-NNNN` after N complete epochs, or `epoch-NNNN-interrupted-bBBBB` for
    an interrupt BBBB batches into the next epoch (`epoch-NNNN-budget-bBBBB` when a training budget
    stopped it there; a `-2`, `-3`... suffix when the name is taken), holding gan.weights.h5,
    d_optimizer.npz, g_optimizer.npz, rng_state.npy and state.json (format, epoch, kind, batch,
    update counts, time, each file's size and SHA-256, `history`: the history rows, and `progress`:
    the run's images seen and training seconds).

    The replacement is safe against a kill at any moment: the folder is written under a temporary
    name, flushed to disk and renamed to a name no other checkpoint has; then latest.json is
    replaced atomically; only then are older checkpoints pruned (`keep` newest, 0 for all). The
    previous checkpoint is never touched before the new one is complete and named in latest.json.
    Raises NonFiniteError, writing nothing, when any weight or optimizer variable is NaN or inf,
    and OSError (ENOSPC), writing nothing, when the disk has clearly too little room for it.
    """
    bad = non_finite_variables(gan)
    if bad:
        raise NonFiniteError(f"non-finite weights in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    os.makedirs(directory, exist_ok=True)
    base = f"epoch-{completed_epochs:04d}"
    if interrupted_at_batch:
        base += f"-{'budget' if stopped_by == 'budget' else 'interrupted'}-b{interrupted_at_batch:04d}"
    name, suffix = base, 1
    while os.path.exists(os.path.join(directory, name)):
        suffix += 1
        name = f"{base}-{suffix}"
    final = os.path.join(directory, name)
    _check_free_space(gan, final)
    with atomic_directory(final) as tmp:
        gan.save_weights(os.path.join(tmp, "gan.weights.h5"))
        np.savez(os.path.join(tmp, "d_optimizer.npz"), **_optimizer_arrays(gan.d_optimizer))
        np.savez(os.path.join(tmp, "g_optimizer.npz"), **_optimizer_arrays(gan.g_optimizer))
        np.save(os.path.join(tmp, "rng_state.npy"), keras.ops.convert_to_numpy(gan.rng.state))
        files = {file_name: os.path.getsize(os.path.join(tmp, file_name)) for file_name in CHECKPOINT_FILES[:-1]}
        digests = {file_name: file_sha256(os.path.join(tmp, file_name)) for file_name in CHECKPOINT_FILES[:-1]}
        state = {"format": CHECKPOINT_FORMAT, "epoch": int(completed_epochs),
                 "kind": stopped_by if interrupted_at_batch else "epoch",
                 "batch": int(interrupted_at_batch) if interrupted_at_batch else None,
                 "g_updates": int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations)),
                 "d_updates": int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)),
                 "time": time.time(), "files": files, "sha256": digests}
        if history is not None:
            state["history"] = [dict(row) for row in history]
        if progress is not None:
            state["progress"] = dict(progress)
        with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as file:
            json.dump(state, file)
    write_json_atomic(os.path.join(directory, "latest.json"),
                      {"checkpoint": name, "epoch": int(completed_epochs), "kind": state["kind"]})
    _prune(directory, keep, name)
    return final


def _check_free_space(gan, final) -> None:
    """Refuse to start the checkpoint `final` when the disk cannot hold it (an OSError ENOSPC naming
    it): a full disk in the middle of h5py's writing ends in worse errors. The need is the newest
    checkpoint's size, or four bytes per weight and optimizer variable before the first, with 10 %
    and a megabyte to spare."""
    directory = os.path.dirname(final)
    found = find_latest(directory)
    if found is not None:
        needed = sum(found[1].get("files", {}).values())
    else:
        variables = list(gan.weights) + list(gan.d_optimizer.variables) + list(gan.g_optimizer.variables)
        needed = sum(4 * int(np.prod(variable.shape)) for variable in variables)
    needed = int(needed * 1.1) + (1 << 20)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: a checkpoint needs about {needed / 2**20:.1f} MB, "
                                    f"{free / 2**20:.1f} MB are free", final)


def latest_checkpoint(directory, verify=False) -> tuple[str, int] | None:
    """(path, completed epochs) of the checkpoint to resume from, or None: the one latest.json
    names, or, when latest.json is missing, unreadable or names a missing or incomplete folder, the
    newest complete checkpoint (with a logged warning). Complete: every file present, at the size
    state.json recorded, and with `verify` (on resume) at the SHA-256 it recorded."""
    found = find_latest(directory, verify)
    if found is None:
        return None
    path, state, note = found
    if note:
        log.warning("checkpoints: %s", note)
    return path, int(state["epoch"])


def restore_checkpoint(gan, path) -> dict:
    """Load a `save_checkpoint` folder into a compiled GAN of the same configuration, in any precision
    (the variables are float32 in all of them); returns its state.json (epoch, update counts, and `history` rows when it holds them)."""
    state = _checkpoint_state(path, verify=True)
    if state is None:
        raise CheckpointError(f"checkpoint {path} is incomplete, unreadable or damaged (it needs {', '.join(CHECKPOINT_FILES)})")
    check_format(os.path.dirname(os.path.dirname(path)), path)
    load_gan_weights(gan, os.path.join(path, "gan.weights.h5"))
    for optimizer, file in ((gan.d_optimizer, "d_optimizer.npz"), (gan.g_optimizer, "g_optimizer.npz")):
        with np.load(os.path.join(path, file)) as arrays:
            _restore_optimizer(optimizer, arrays, f"checkpoint {path}'s {file}")
    gan.rng.reset(np.load(os.path.join(path, "rng_state.npy")))
    return state


def save_generator(generator, path) -> None:
    """`generator.save(path)` (a run's generator.keras) written beside and renamed: a kill or a full
    disk while saving leaves the previous file (or none), never a truncated one."""
    write_atomic(path, generator.save, suffix=".keras")  # Keras saves only to names ending in .keras
