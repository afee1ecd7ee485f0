"""NVIDIA StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`), read without running their code
(`safe_pickle`) and mapped onto our StyleGAN2-ADA networks both ways: their configurations (`configs`),
their weights (`weights`) and whole snapshots (`snapshots`).

`load_nvidia_pickle(path)` is the one call: a `create_gan("stylegan2-ada", ...)` model holding the
snapshot's G, D and G_ema. Run folders made from snapshots, and snapshots' state dicts made from run
folders: `keras_anime_gan.nvidia_runs`.
"""

from __future__ import annotations

import os

from .configs import UnsupportedNetworkError, model_options  # noqa: F401
from .safe_pickle import NvidiaPickleError, RefusedPickleError, read_snapshot  # noqa: F401
from .snapshots import check_networks, check_state_dicts, gan_from_nvidia
from .weights import StateDictError  # noqa: F401

NETWORKS = ("G", "D", "G_ema")


def load_nvidia_pickle(path, preset="auto", seed=None):
    """The snapshot's networks as an uncompiled "stylegan2-ada" GAN: G as its generator, D as its
    discriminator and G_ema as its generator moving average, ready for `compile()`, `fit`,
    `generate` and export. `preset` picks only the training settings a snapshot does not record
    (batch, learning rate, R1 gamma, EMA half-life)."""
    return gan_from_nvidia(read_snapshot(os.fspath(path)).networks, preset=preset, seed=seed)[2]


def snapshot_options(snapshot, preset="auto") -> tuple[int, dict]:
    """(resolution, "stylegan2-ada" options) that rebuild a snapshot's networks, after checking that
    they can be imported (`check_networks`) and that their state dicts fit those options, finite
    (`check_state_dicts`): all before any network is built."""
    check_networks(snapshot.networks)
    g, d = snapshot.networks["G"], snapshot.networks["D"]
    resolution, options = model_options(g.init_kwargs, d.init_kwargs, preset=preset, generator_init_args=g.init_args,
                                        discriminator_init_args=d.init_args, generator_source=g.source,
                                        discriminator_source=d.source)
    check_state_dicts(snapshot.networks, resolution, options)
    return resolution, options
