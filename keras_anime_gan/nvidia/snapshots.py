"""Whole NVIDIA StyleGAN2-ADA snapshots: checked before any network is built, then built.

- `check_networks`: a snapshot's G, D and G_ema are there, are StyleGAN2-ADA's networks, and G_ema is
  built like G;
- `nvidia_state_shapes` / `check_state_dicts`: the keys and shapes NVIDIA's state dicts have for a set
  of "stylegan2-ada" options, computed without building anything, and a snapshot's state dicts checked
  against them (finite floating-point values, standard filters, no shared data);
- `gan_from_nvidia`: a "stylegan2-ada" model holding a snapshot's G, D and G_ema.

A snapshot is given as its networks: name -> a module record (`keras_anime_gan.nvidia.safe_pickle.ModuleRecord`).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .configs import SOURCE_ADA_NETWORKS, UnsupportedNetworkError, _show, check_module, model_options
from .weights import StateDictError, _filter_2d, _key_problems, _raise_problems, _value_problem, load_nvidia_state


def _channels(resolution, channel_base, channel_max, resolutions):
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def nvidia_state_shapes(resolution: int, options: dict) -> dict:
    """{"G": {key: shape}, "D": {key: shape}}: NVIDIA's `state_dict()` keys, in order, with their
    shapes, for the networks `create_gan("stylegan2-ada", resolution, **options)` builds (`options`
    as `model_options` gives them), computed without building them: a snapshot is checked against
    them before any network exists. The same keys and shapes as `generator_entries` and
    `discriminator_entries` of the built networks (a test holds them equal)."""
    z_dim, w_dim, base, top = options["z_dim"], options["w_dim"], options["channel_base"], options["channel_max"]
    levels = [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]
    channels = _channels(resolution, base, top, levels)
    g = OrderedDict()
    for res in levels:
        prefix, out = f"synthesis.b{res}", channels[res]
        if res == 4:
            g[f"{prefix}.const"] = (out, 4, 4)
        g[f"{prefix}.resample_filter"] = (4, 4)
        layers = [("conv0", channels[res // 2]), ("conv1", out)] if res > 4 else [("conv1", out)]
        for name, inputs in layers:
            g.update({f"{prefix}.{name}.weight": (out, inputs, 3, 3), f"{prefix}.{name}.noise_strength": (),
                      f"{prefix}.{name}.bias": (out,), f"{prefix}.{name}.resample_filter": (4, 4),
                      f"{prefix}.{name}.noise_const": (res, res), f"{prefix}.{name}.affine.weight": (inputs, w_dim),
                      f"{prefix}.{name}.affine.bias": (inputs,)})
        g.update({f"{prefix}.torgb.weight": (3, out, 1, 1), f"{prefix}.torgb.bias": (3,),
                  f"{prefix}.torgb.affine.weight": (out, w_dim), f"{prefix}.torgb.affine.bias": (out,)})
    g["mapping.w_avg"] = (w_dim,)
    for index in range(options["mapping_layers"]):
        g[f"mapping.fc{index}.weight"] = (w_dim, z_dim if index == 0 else w_dim)
        g[f"mapping.fc{index}.bias"] = (w_dim,)
    d = OrderedDict()
    channels = _channels(resolution, base, top, levels)
    for res in reversed(levels[1:]):
        prefix, inner, out = f"b{res}", channels[res], channels[res // 2]
        d[f"{prefix}.resample_filter"] = (4, 4)
        layers = [("fromrgb", inner, 3, 1)] if res == resolution else []
        layers += [("conv0", inner, inner, 3), ("conv1", out, inner, 3), ("skip", out, inner, 1)]
        for name, outputs, inputs, kernel in layers:
            d[f"{prefix}.{name}.weight"] = (outputs, inputs, kernel, kernel)
            if name != "skip":
                d[f"{prefix}.{name}.bias"] = (outputs,)
            d[f"{prefix}.{name}.resample_filter"] = (4, 4)
    last = channels[4]
    d.update({"b4.conv.weight": (last, last + options["mbstd_channels"], 3, 3), "b4.conv.bias": (last,),
              "b4.conv.resample_filter": (4, 4), "b4.fc.weight": (last, last * 16), "b4.fc.bias": (last,),
              "b4.out.weight": (1, last), "b4.out.bias": (1,)})
    return {"G": g, "D": d}


def check_state_dicts(networks: dict, resolution: int, options: dict) -> None:
    """Before any network is built: the G, G_ema and D records' state dicts hold exactly the keys of
    `nvidia_state_shapes(resolution, options)`, each of that shape, floating point and finite (NaN or
    inf in a weight or w_avg is refused here, before anything is written), with the standard
    resampling filters; and no two of their arrays share memory, so each is backed by its own data in
    the file and the networks built are no larger than the file. StateDictError (or
    UnsupportedNetworkError for a filter) naming what does not fit."""
    expected = nvidia_state_shapes(resolution, options)
    standard = _filter_2d()
    spans = []
    for name, kind, what in (("G", "G", "the generator's"), ("G_ema", "G", "the generator moving average (G_ema)'s"),
                             ("D", "D", "the discriminator's")):
        state = networks[name].state_dict()
        problems = _key_problems(list(expected[kind]), state)
        for key, shape in expected[kind].items():
            if key in state:
                value = np.asarray(state[key])
                problem = _value_problem(key, value, shape, standard if key.endswith("resample_filter") else None)
                if problem is not None:
                    problems.append(problem)
                elif value.size:
                    spans.append((*_byte_bounds(value), f"{name} {key}"))
        _raise_problems(what, problems)
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise StateDictError(f"{first} and {second} share their data; each tensor of NVIDIA's snapshots has its "
                                 f"own storage")


def _byte_bounds(array) -> tuple[int, int]:
    bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None) or np.byte_bounds
    return bounds(array)




def check_networks(networks: dict) -> None:
    """Refuse a snapshot's networks we cannot import: G, D and G_ema must be there, be StyleGAN2-ADA's
    Generator / Discriminator (class and source), and G_ema must be built like G.

    networks: name -> a module record with `class_name`, `source` (None: not checked),
    `init_args` and `init_kwargs` (`keras_anime_gan.nvidia.safe_pickle.ModuleRecord`)."""
    missing = [name for name in ("G", "D", "G_ema") if name not in networks]
    if missing:
        raise UnsupportedNetworkError(f"the snapshot has no {', '.join(missing)} network (it has "
                                      f"{', '.join(sorted(networks)) or 'none'}); G, D and G_ema are needed")
    for name, expected in (("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")):
        record = networks[name]
        check_module(record.class_name, getattr(record, "source", None), expected)
    g, ema = networks["G"], networks["G_ema"]
    if not _equal((g.init_args, g.init_kwargs), (ema.init_args, ema.init_kwargs)):
        raise UnsupportedNetworkError("G_ema is not built like G (their constructor arguments differ): "
                                      f"G {_show(g.init_kwargs)}, G_ema {_show(ema.init_kwargs)}")


def _equal(a, b, depth=0) -> bool:
    """a == b for plain values read from a file, where an array (a tensor where a number belongs) is
    compared as a whole rather than raising, and () equals None (no positional arguments)."""
    if a is b:
        return True
    if depth > 100:
        return False
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape \
            and a.dtype == b.dtype and np.array_equal(a, b)
    if depth == 1 and {type(a), type(b)} <= {tuple, type(None)}:  # init_args: None or ()
        a, b = tuple(a or ()), tuple(b or ())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key], depth + 1) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y, depth + 1) for x, y in zip(a, b))
    if type(a) is float and type(b) is float and math.isnan(a) and math.isnan(b):
        return True  # the same value, which the checks of each option then judge
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def gan_from_nvidia(networks: dict, preset: str = "auto", seed=None):
    """(resolution, options, gan): a "stylegan2-ada" model built from `model_options` and holding the
    snapshot's weights (G, D, and G_ema as its generator moving average). `networks` as for
    `check_networks`, whose records also have `state_dict()`; `preset` only picks the training
    settings the snapshot does not record."""
    from ..gans.registry import create_gan

    check_networks(networks)
    g, d = networks["G"], networks["D"]
    resolution, options = model_options(g.init_kwargs, d.init_kwargs, preset=preset, generator_init_args=g.init_args,
                                        discriminator_init_args=d.init_args,
                                        generator_source=getattr(g, "source", None) or SOURCE_ADA_NETWORKS,
                                        discriminator_source=getattr(d, "source", None) or SOURCE_ADA_NETWORKS)
    check_state_dicts(networks, resolution, options)  # before any network is built
    gan = create_gan("stylegan2-ada", resolution, seed=seed, **options)
    load_nvidia_state(gan, {name: networks[name].state_dict() for name in ("G", "D", "G_ema")})
    return resolution, options, gan
