"""NVIDIA StyleGAN2-ADA weights and ours, both ways.

NVIDIA's networks keep their weights in `state_dict()`s (PyTorch layouts), read here as NumPy arrays,
so this module does not depend on how they were read (`keras_anime_gan.nvidia.safe_pickle` reads them
from a pickle):

- `generator_entries` / `discriminator_entries`: NVIDIA's state-dict keys in order, each with the
  variable of ours it maps to and the layout conversions;
- `load_generator_state` / `load_discriminator_state` / `load_nvidia_state`: NVIDIA state dicts into
  our networks (every key used once, every shape checked, a `StateDictError` listing what is missing
  or left over);
- `generator_state` / `discriminator_state` / `nvidia_state_dicts`: our weights as NVIDIA's
  `state_dict()`s, the same keys in the same order with the same layouts and buffers, which NVIDIA's
  networks built with `configs.nvidia_init_kwargs` load with `load_state_dict(..., strict=True)`.

Layouts: a convolution weight is [out, in, kh, kw] there and [kh, kw, in, out] here (no flip: both
up- and downsampling convolutions compute the same correlation / transposed convolution); a dense
weight [out, in] there, [in, out] here; the 4x4 constant [C, 4, 4] there, [4, 4, C] here; the
discriminator's 4x4 dense layer reads a (c, h, w) flatten there and an (h, w, c) flatten here, so its
input rows are permuted. Parameters are stored alike (N(0, 1) weights scaled at run time), so
nothing is rescaled.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..errors import UserError
from .configs import STANDARD_FILTER, UnsupportedNetworkError, _listed, _show


class StateDictError(UserError):
    """A state dict that does not fit the network: missing or unexpected keys, wrong shapes, or values
    that are not finite numbers."""


def _filter_2d():
    taps = np.asarray(STANDARD_FILTER, np.float32)
    taps = np.outer(taps, taps)
    return (taps / taps.sum()).astype(np.float32)


class _Entry:
    """One state-dict key: our variable (None for a constant buffer) and the layout conversions."""

    def __init__(self, key, variable=None, to_nvidia=None, to_ours=None, constant=None):
        self.key, self.variable, self.constant = key, variable, constant
        self.to_nvidia = to_nvidia or (lambda a: a)
        self.to_ours = to_ours or (lambda a: a)

    def nvidia_shape(self):
        if self.variable is None:
            return tuple(self.constant.shape)
        return tuple(self.to_nvidia(np.zeros(tuple(self.variable.shape), np.float32)).shape)


def _conv(key, variable):  # [kh, kw, in, out] <-> [out, in, kh, kw]
    return _Entry(key, variable, lambda a: a.transpose(3, 2, 0, 1), lambda a: a.transpose(2, 3, 1, 0))


def _dense(key, variable):  # [in, out] <-> [out, in]
    return _Entry(key, variable, lambda a: a.T, lambda a: a.T)


def _plain(key, variable):
    return _Entry(key, variable)


def _filter(key):
    return _Entry(key, constant=_filter_2d())


def _modulated_layer(prefix, layer, noise):
    """SynthesisLayer / ToRGBLayer, in NVIDIA's state-dict order (parameters, buffers, then the affine)."""
    entries = [_conv(f"{prefix}.weight", layer.conv.kernel)]
    if noise:
        entries += [_plain(f"{prefix}.noise_strength", layer.noise_strength), _plain(f"{prefix}.bias", layer.bias),
                    _filter(f"{prefix}.resample_filter"), _plain(f"{prefix}.noise_const", layer.noise_const)]
    else:
        entries.append(_plain(f"{prefix}.bias", layer.bias))
    return entries + [_dense(f"{prefix}.affine.weight", layer.conv.affine.kernel),
                      _plain(f"{prefix}.affine.bias", layer.conv.affine.bias)]


def generator_entries(generator) -> list[_Entry]:
    """NVIDIA `Generator.state_dict()` keys in order, each with the variable of ours it maps to."""
    entries = []
    for block in generator.synthesis_network.blocks:
        prefix = f"synthesis.b{block.resolution}"
        if block.const is not None:
            entries.append(_Entry(f"{prefix}.const", block.const, lambda a: a.transpose(2, 0, 1),
                                  lambda a: a.transpose(1, 2, 0)))
        entries.append(_filter(f"{prefix}.resample_filter"))
        if block.conv0 is not None:
            entries += _modulated_layer(f"{prefix}.conv0", block.conv0, noise=True)
        entries += _modulated_layer(f"{prefix}.conv1", block.conv1, noise=True)
        entries += _modulated_layer(f"{prefix}.torgb", block.torgb, noise=False)
    mapping = generator.mapping_network
    entries.append(_plain("mapping.w_avg", mapping.w_avg))
    for index, fc in enumerate(mapping.fcs):
        entries += [_dense(f"mapping.fc{index}.weight", fc.kernel), _plain(f"mapping.fc{index}.bias", fc.bias)]
    return entries


def _conv_layer(prefix, layer):
    entries = [_conv(f"{prefix}.weight", layer.kernel)]
    if layer.bias is not None:
        entries.append(_plain(f"{prefix}.bias", layer.bias))
    return entries + [_filter(f"{prefix}.resample_filter")]


def discriminator_entries(discriminator) -> list[_Entry]:
    """NVIDIA `Discriminator.state_dict()` keys in order, each with the variable of ours it maps to."""
    entries = []
    for block in discriminator.blocks:
        prefix = f"b{block.resolution}"
        entries.append(_filter(f"{prefix}.resample_filter"))
        if block.fromrgb is not None:
            entries += _conv_layer(f"{prefix}.fromrgb", block.fromrgb)
        for name in ("conv0", "conv1", "skip"):
            entries += _conv_layer(f"{prefix}.{name}", getattr(block, name))
    epilogue = discriminator.epilogue
    channels, size = epilogue.in_channels, epilogue.resolution
    entries += _conv_layer("b4.conv", epilogue.conv)

    # NVIDIA flattens (c, h, w), we flatten (h, w, c): the rows of the dense weight are permuted.
    def fc_to_nvidia(a):
        return a.reshape(size, size, channels, -1).transpose(3, 2, 0, 1).reshape(-1, channels * size * size)

    def fc_to_ours(a):
        return a.reshape(-1, channels, size, size).transpose(2, 3, 1, 0).reshape(channels * size * size, -1)

    entries += [_Entry("b4.fc.weight", epilogue.fc.kernel, fc_to_nvidia, fc_to_ours),
                _plain("b4.fc.bias", epilogue.fc.bias),
                _dense("b4.out.weight", epilogue.out.kernel), _plain("b4.out.bias", epilogue.out.bias)]
    return entries


def _key_problems(expected_keys, state) -> list[str]:
    """Missing and unexpected keys of `state` (a dict) against the expected ones, listed briefly."""
    expected = set(expected_keys)
    missing = [key for key in expected_keys if key not in state]
    unexpected = [_show(key).strip("'") for key in state if key not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    return problems


def _value_problem(key, value, shape, constant=None) -> str | None:
    """Why the array `value` cannot be the state-dict entry `key` of `shape` (None when it can): its
    shape, a dtype that is not floating point, NaN or inf, or a resampling filter that is not the
    standard one (`constant`)."""
    if tuple(value.shape) != tuple(shape):
        return f"{key} has shape {list(value.shape)}, expected {list(shape)}"
    if not np.issubdtype(value.dtype, np.floating):
        return f"{key} has dtype {value.dtype}, expected floating point"
    finite = np.isfinite(value)
    if not finite.all():
        return f"{key} holds NaN or inf ({int(finite.size - np.count_nonzero(finite)):,} of {finite.size:,} values)"
    if constant is not None and not np.allclose(value, constant, rtol=0, atol=1e-6):
        return (f"{key} is not the standard [1, 3, 3, 1] resampling filter (found "
                f"{_show(np.round(value, 4).tolist())})")
    return None


def _raise_problems(what, problems):
    if problems:
        error = UnsupportedNetworkError if all("resampling filter" in p for p in problems) else StateDictError
        raise error(f"{what} state dict does not fit: " + "; ".join(problems[:10])
                    + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))


def _converted(entries, state, what):
    """[(variable, value)] for `state` (a dict of arrays), checked: every key once, every shape, finite
    floating-point values."""
    state = dict(state)
    problems = _key_problems([entry.key for entry in entries], state)
    pairs = []
    for entry in entries:
        if entry.key not in state:
            continue
        value = np.asarray(state[entry.key])
        problem = _value_problem(entry.key, value, entry.nvidia_shape(), entry.constant)
        if problem is not None:
            problems.append(problem)
        elif entry.variable is not None:
            pairs.append((entry.variable, entry.to_ours(value.astype(np.float32))))
    _raise_problems(what, problems)
    return pairs


def _state(entries, values=None):
    """OrderedDict key -> float32 array in NVIDIA's layout; `values` maps a variable to its value
    (the variable's own value when None)."""
    state = OrderedDict()
    for entry in entries:
        if entry.variable is None:
            state[entry.key] = entry.constant.copy()
            continue
        value = values(entry.variable) if values is not None else entry.variable.numpy()
        state[entry.key] = np.array(entry.to_nvidia(np.asarray(value, np.float32)), np.float32, order="C")
    return state


def load_generator_state(generator, state: dict) -> None:
    """Set our `StyleGenerator`'s variables (w_avg and every noise_const included) from NVIDIA's
    `Generator.state_dict()` arrays; a StateDictError lists missing / unexpected keys and bad shapes
    before anything is assigned."""
    for variable, value in _converted(generator_entries(generator), state, "the generator's"):
        variable.assign(value)


def load_discriminator_state(discriminator, state: dict) -> None:
    """Set our `ResidualDiscriminator`'s variables from NVIDIA's `Discriminator.state_dict()` arrays."""
    for variable, value in _converted(discriminator_entries(discriminator), state, "the discriminator's"):
        variable.assign(value)


def generator_state(generator) -> "OrderedDict[str, np.ndarray]":
    """NVIDIA's `Generator.state_dict()` for our generator, as float32 NumPy arrays."""
    return _state(generator_entries(generator))


def discriminator_state(discriminator) -> "OrderedDict[str, np.ndarray]":
    """NVIDIA's `Discriminator.state_dict()` for our discriminator, as float32 NumPy arrays."""
    return _state(discriminator_entries(discriminator))


def _ema_index(gan):
    """id(generator variable) -> its moving average (the same variable of `gan.ema_generator`, a clone)."""
    if gan.ema_generator is gan.generator:
        raise ValueError("this GAN keeps no moving average of its generator (G_ema)")
    return {id(variable): average for variable, average in zip(gan.generator.variables, gan.ema_generator.variables)}


def nvidia_state_dicts(gan) -> dict:
    """{"G": ..., "D": ..., "G_ema": ...}: our StyleGAN2-ADA model's generator, discriminator and
    generator moving average (`gan.ema_generator`) as NVIDIA's state dicts."""
    averages = _ema_index(gan)
    entries = generator_entries(gan.generator)
    return {"G": _state(entries), "D": discriminator_state(gan.discriminator),
            "G_ema": _state(entries, lambda variable: averages[id(variable)].numpy())}


def load_nvidia_state(gan, states: dict) -> None:
    """Set a built StyleGAN2-ADA model's generator from states["G"], its discriminator from
    states["D"] and its generator moving average (G_ema, what `generate` and the export use) from
    states["G_ema"]. Everything is checked before anything is assigned."""
    missing = [name for name in ("G", "D", "G_ema") if name not in states]
    if missing:
        raise StateDictError(f"no {', '.join(missing)} state dict given (need G, D and G_ema)")
    averages = _ema_index(gan)
    entries = generator_entries(gan.generator)
    g = _converted(entries, states["G"], "the generator (G)'s")
    ema = _converted(entries, states["G_ema"], "the generator moving average (G_ema)'s")
    d = _converted(discriminator_entries(gan.discriminator), states["D"], "the discriminator's")
    for variable, value in g + d:
        variable.assign(value)
    for variable, value in ema:
        averages[id(variable)].assign(value)
