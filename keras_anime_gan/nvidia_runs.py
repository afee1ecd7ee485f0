"""NVIDIA StyleGAN2-ADA snapshots as run folders, and run folders as NVIDIA state dicts (the
format itself, read safely and mapped onto our networks, is `keras_anime_gan.nvidia`'s):

- `import_snapshot(path, out)`: a run folder (config.json, a checkpoint holding G, D and G_ema,
  generator.keras from G_ema, status.json) that `generate`, `explore`, `evaluate`, `export` and
  `train --resume` take like any run;
- `init_states(source)`: G, D and G_ema as NVIDIA state dicts from a snapshot or a run folder, the
  start of a fine-tuning run (`train --init-from`);
- `export_state_dicts(run, path)`: G, D and G_ema of a run as one .npz of arrays named by NVIDIA's
  `state_dict()` keys under "G/", "D/" and "G_ema/" (NVIDIA's layouts and scales, buffers included),
  plus NVIDIA's constructor arguments as JSON under "init_kwargs".

Snapshots are read by `safe_pickle.read_snapshot`: no code from the file runs.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from .errors import UserError, short_repr
from .nvidia import NETWORKS, read_snapshot, snapshot_options
from .nvidia.configs import nvidia_init_kwargs
from .nvidia.snapshots import gan_from_nvidia
from .nvidia.weights import nvidia_state_dicts

INIT_KWARGS_KEY = "init_kwargs"


def _augment_probability(pipe):
    """ADA's p of an augment_pipe record as a float, or None when it has none; a UserError when it is
    not one finite number (NVIDIA's is a 0-d tensor)."""
    p = pipe.buffers.get("p")
    if p is None:
        return None
    p = np.asarray(p)
    if p.size != 1 or not np.issubdtype(p.dtype, np.floating) or not np.isfinite(p).all():
        raise UserError(f"the snapshot's augment_pipe has p {short_repr(p)} (values "
                        f"{short_repr(p.ravel()[:4].tolist())}), not one finite number; NVIDIA's is a 0-d tensor")
    return float(p.reshape(()))


def describe_snapshot(snapshot) -> dict:
    """What a snapshot holds, and what an import leaves out and why (for the command's summary). Every
    check of the snapshot happens here, before anything is built or written."""
    resolution, options = snapshot_options(snapshot)
    left_out = {}
    pipe = snapshot.networks.get("augment_pipe")
    if pipe is not None:
        p = _augment_probability(pipe)
        left_out["augment_pipe"] = (f"ADA's augmentation pipeline{'' if p is None else f' (p {p:.3f})'}: "
                                    "ours is configured by --augment options, and ADA's p starts at 0 on training, "
                                    "as when NVIDIA's train.py resumes from a snapshot")
    if snapshot.training_set_kwargs:
        path = snapshot.training_set_kwargs.get("path")
        shown = path if isinstance(path, str) and path.isprintable() and len(path) <= 300 else short_repr(path)
        left_out["training_set_kwargs"] = (f"the dataset it was trained on ({shown}): "
                                           "a path on the machine that trained it; give --data to train on")
    others = snapshot.other_keys
    for key in others[:20]:
        left_out[short_repr(key, 60).strip("'")] = "not a network"
    if len(others) > 20:
        left_out[f"{len(others) - 20} more keys"] = "not networks"
    return {"resolution": resolution, "z_dim": options["z_dim"], "w_dim": options["w_dim"],
            "mapping_layers": options["mapping_layers"], "channel_base": options["channel_base"],
            "channel_max": options["channel_max"], "conv_clamp": options["conv_clamp"] or None,
            "float16_resolutions": options["reduced_precision_res"],
            "parameters": {name: snapshot.networks[name].num_parameters() for name in NETWORKS},
            "source": snapshot.networks["G"].source, "not_imported": left_out, "options": options}


def import_snapshot(path, out, *, preset="auto", data=None, seed=0, overwrite=False) -> dict:
    """Write the run folder `out` for the NVIDIA snapshot `path`; returns the summary it printed.

    out/config.json holds a stylegan2-ada TrainConfig whose network options reproduce the snapshot's
    networks (`data` is recorded for `train --resume`; without it a resumed run trains on the
    embedded synthetic faces), out/checkpoints/epoch-0000 their weights with fresh optimizers,
    out/generator.keras the float32 G_ema, and out/status.json `"state": "imported"`.

    The snapshot is checked whole (`describe_snapshot`: its options, every state-dict shape, finite
    weights) before anything is written. The run folder's files are written beside their places, in
    a temporary folder inside `out`, and moved in at the end, status.json last: a failed import
    leaves `out` as it found it, and removes it when it made it."""
    from .atomic import filled_folder, remove_stale_directories, write_json_atomic
    from .locks import folder_lock

    path, out = os.fspath(path), os.fspath(out)
    snapshot = read_snapshot(path)
    summary = describe_snapshot(snapshot)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out} exists and is not a folder; choose a new or empty folder for the imported run")
    created = not os.path.lexists(out)
    try:
        with folder_lock(out, "run folder"):
            if [name for name in os.listdir(out) if not name.startswith(".")] and not overwrite:
                raise UserError(f"--out {out} is not empty; choose another folder for the imported run")
            remove_stale_directories(out, "fill")  # the temporary folder of an import that was killed
            # TensorFlow only now: a file refused above costs neither its start-up time nor its memory
            from .checkpoints import save_checkpoint, save_generator
            from .config import TrainConfig
            from .precision import float32_model

            config = TrainConfig(out=out, model="stylegan2-ada", resolution=summary["resolution"], data=data,
                                 seed=seed, model_options=dict(summary["options"], preset=preset)).resolved()
            resolution, options, gan = gan_from_nvidia(snapshot.networks, preset=preset, seed=seed)
            gan.compile()  # fresh optimizers: the snapshot holds none
            with filled_folder(out, last="status.json", replace=overwrite) as tmp:
                write_json_atomic(os.path.join(tmp, "config.json"), config.to_json(), indent=2)
                checkpoint = save_checkpoint(gan, os.path.join(tmp, "checkpoints"), 0)
                save_generator(float32_model(gan.ema_generator), os.path.join(tmp, "generator.keras"))
                summary = {"out": out, **{k: v for k, v in summary.items() if k != "options"},
                           "checkpoint": os.path.basename(checkpoint), "generator": "G_ema"}
                write_json_atomic(os.path.join(tmp, "status.json"),
                                  {"state": "imported", "epoch": 0, "checkpoint": summary["checkpoint"],
                                   "checkpoint_epoch": 0, "generator": "G_ema", "imported_from": os.path.abspath(path)},
                                  indent=2)
    except BaseException:
        if created:  # the folder this import made, and only while it is empty (the lock file is gone)
            with contextlib.suppress(OSError):
                os.rmdir(out)
        raise
    return summary


def _run_gan(run):
    """The StyleGAN2-ADA GAN of the run folder `run`, holding its newest good checkpoint's weights."""
    from .config import saved_config
    from .loading import gan_from_run

    config = saved_config(run)
    if config is None:
        raise UserError(f"{run} is not a run folder (no config.json)")
    if config.model != "stylegan2-ada":
        raise UserError(f"{run} holds a {config.model} run; NVIDIA's format holds StyleGAN2-ADA networks only")
    found = gan_from_run(run)
    if found is None:
        raise UserError(f"{run} has no good checkpoint (its discriminator is needed too, which generator.keras "
                        "does not hold)")
    return found[0]


def init_states(source) -> dict:
    """{"G", "D", "G_ema": NVIDIA state dict} of a snapshot (.pkl) or a StyleGAN2-ADA run folder: what
    `train --init-from` starts a new run from (its network options are `config.init_from_network`'s)."""
    source = os.fspath(source)
    if os.path.isdir(source):
        return nvidia_state_dicts(_run_gan(source))
    snapshot = read_snapshot(source)
    return {name: snapshot.networks[name].state_dict() for name in NETWORKS}


def export_state_dicts(run, path) -> dict:
    """Write the run folder `run`'s G, D and G_ema as NVIDIA state dicts into the .npz `path`
    (atomically); returns {"out", "arrays", "init_kwargs"}. In PyTorch, with NVIDIA's code:

        G_ema = Generator(**init_kwargs["G"]); arrays = np.load(path)
        G_ema.load_state_dict({k[6:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("G_ema/")})
    """
    from .atomic import write_atomic

    gan = _run_gan(os.fspath(run))
    states = nvidia_state_dicts(gan)
    kwargs = nvidia_init_kwargs(gan.generator, gan.discriminator)
    arrays = {f"{name}/{key}": value for name in NETWORKS for key, value in states[name].items()}
    arrays[INIT_KWARGS_KEY] = np.array(json.dumps(kwargs))

    def write(tmp):
        with open(tmp, "wb") as file:  # a file object: np.savez would add .npz to a name
            np.savez(file, **arrays)

    write_atomic(os.fspath(path), write)
    return {"out": os.fspath(path), "arrays": len(arrays) - 1, "init_kwargs": kwargs}
