"""NVIDIA StyleGAN2-ADA networks and ours: their configurations and their weights, both ways.

NVIDIA's networks (NVlabs/stylegan2-ada-pytorch, `training/networks.py`) are described by the
constructor arguments a pickle keeps (`init_kwargs`, without NVIDIA's defaults) and by their
`state_dict()` (PyTorch layouts). This module reads both as plain Python and NumPy values, so it does
not depend on how they were read (`keras_anime_gan.nvidia.safe_pickle` reads them from a pickle):

- `generator_kwargs` / `discriminator_kwargs`: our `StyleGenerator` / `ResidualDiscriminator`
  arguments for NVIDIA's `Generator` / `Discriminator` arguments, and `model_options`: the
  "stylegan2-ada" options that rebuild both (`create_gan("stylegan2-ada", resolution, **options)`);
  what we cannot compute exactly is refused with an `UnsupportedNetworkError` naming it;
- `load_generator_state` / `load_discriminator_state` / `load_nvidia_state`: NVIDIA state dicts into
  our networks (every key used once, every shape checked, a `StateDictError` listing what is missing
  or left over);
- `generator_state` / `discriminator_state` / `nvidia_state_dicts`: our weights as NVIDIA's
  `state_dict()`s, the same keys in the same order with the same layouts and buffers, which NVIDIA's
  networks built with `nvidia_init_kwargs` load with `load_state_dict(..., strict=True)`.

Layouts: a convolution weight is [out, in, kh, kw] there and [kh, kw, in, out] here (no flip: both
up- and downsampling convolutions compute the same correlation / transposed convolution); a dense
weight [out, in] there, [in, out] here; the 4x4 constant [C, 4, 4] there, [4, 4, C] here; the
discriminator's 4x4 dense layer reads a (c, h, w) flatten there and an (h, w, c) flatten here, so its
input rows are permuted. Parameters are stored alike (N(0, 1) weights scaled at run time), so
nothing is rescaled.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..errors import UserError

STANDARD_FILTER = [1, 3, 3, 1]
# The reader's labels of the source files (`safe_pickle.SOURCE_*`), repeated so that this module
# reads plain values from anywhere.
SOURCE_ADA_NETWORKS = "stylegan2-ada-pytorch training/networks.py"
SOURCE_SG3_NETWORKS_STYLEGAN2 = "stylegan3 training/networks_stylegan2.py"
SOURCE_SG3_NETWORKS_STYLEGAN3 = "stylegan3 training/networks_stylegan3.py"
SUPPORTED_SOURCES = (SOURCE_ADA_NETWORKS, SOURCE_SG3_NETWORKS_STYLEGAN2)


class UnsupportedNetworkError(UserError):
    """An NVIDIA network that these networks cannot compute exactly; the message names what the file
    has and what is supported."""


class StateDictError(UserError):
    """A state dict that does not fit the network: missing or unexpected keys, or wrong shapes."""


# ----------------------------------------------------------------------------- configurations

# NVIDIA's constructor defaults (training/networks.py, stylegan2-ada-pytorch d72cc7d).
_GENERATOR_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                         "synthesis_kwargs")
_MAPPING_DEFAULTS = dict(num_layers=8, embed_features=None, layer_features=None, activation="lrelu",
                         lr_multiplier=0.01, w_avg_beta=0.995)
_SYNTHESIS_DEFAULTS = dict(channel_base=32768, channel_max=512, num_fp16_res=0, architecture="skip",
                           resample_filter=STANDARD_FILTER, conv_clamp=None, fp16_channels_last=False,
                           kernel_size=3, use_noise=True, activation="lrelu")
_DISCRIMINATOR_POSITIONAL = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base",
                             "channel_max", "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs",
                             "mapping_kwargs", "epilogue_kwargs")
_DISCRIMINATOR_DEFAULTS = dict(architecture="resnet", channel_base=32768, channel_max=512, num_fp16_res=0,
                               conv_clamp=None, cmap_dim=None, block_kwargs={}, mapping_kwargs={},
                               epilogue_kwargs={})
_BLOCK_DEFAULTS = dict(activation="lrelu", resample_filter=STANDARD_FILTER, fp16_channels_last=False,
                       freeze_layers=0)
_EPILOGUE_DEFAULTS = dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu")


def check_module(class_name: str, source: str | None, expected: str) -> None:
    """Refuse a module that is not a StyleGAN2 `expected` class ("Generator" / "Discriminator"):
    StyleGAN3's alias-free networks, other classes, or a source neither of NVIDIA's StyleGAN2 files.
    `source`: the reader's label of the file that defined the class (`safe_pickle.SOURCE_*`); None
    skips the source check."""
    if source is not None and source not in SUPPORTED_SOURCES:
        if source == SOURCE_SG3_NETWORKS_STYLEGAN3:
            raise UnsupportedNetworkError(
                f"the {expected.lower()} is a StyleGAN3 (alias-free) network; only StyleGAN2 networks are supported "
                f"(stylegan2-ada-pytorch's training/networks.py, or stylegan3's training/networks_stylegan2.py)")
        raise UnsupportedNetworkError(
            f"the {expected.lower()}'s embedded source is not one of NVIDIA's StyleGAN2 network files (it is "
            f"{source}); supported: stylegan2-ada-pytorch's training/networks.py and stylegan3's "
            f"training/networks_stylegan2.py")
    if class_name != expected:
        raise UnsupportedNetworkError(f"expected StyleGAN2-ADA's {expected} class, the file has {class_name!r}")


def _ada_generator_layout(init_kwargs: dict, init_args, source) -> tuple[dict, tuple]:
    """NVIDIA `Generator` arguments in stylegan2-ada-pytorch's layout. stylegan3's
    networks_stylegan2.py computes the same function with the same weights, but takes the synthesis
    arguments at the top level (`**synthesis_kwargs`) and has other defaults (w_avg_beta 0.998, the 4
    highest resolutions in float16, conv_clamp 256): they are made explicit here."""
    if source != SOURCE_SG3_NETWORKS_STYLEGAN2:
        return init_kwargs, init_args
    top = _GENERATOR_POSITIONAL[:6]
    values = _arguments(init_args, init_kwargs, top, "the generator")
    synthesis = {key: values.pop(key) for key in list(values) if key not in top}
    synthesis.pop("fused_modconv_default", None)  # how NVIDIA runs the modulated convolution, not what it computes
    values["mapping_kwargs"] = {"w_avg_beta": 0.998, **(values.get("mapping_kwargs") or {})}
    values["synthesis_kwargs"] = {"num_fp16_res": 4, "conv_clamp": 256, **synthesis}
    return values, ()


def _ada_discriminator_layout(init_kwargs: dict, init_args, source) -> tuple[dict, tuple]:
    """NVIDIA `Discriminator` arguments with stylegan3's networks_stylegan2.py defaults made explicit
    (num_fp16_res 4, conv_clamp 256); its layout is stylegan2-ada-pytorch's."""
    if source != SOURCE_SG3_NETWORKS_STYLEGAN2:
        return init_kwargs, init_args
    values = _arguments(init_args, init_kwargs, _DISCRIMINATOR_POSITIONAL, "the discriminator")
    return {"num_fp16_res": 4, "conv_clamp": 256, **values}, ()


def _arguments(init_args, init_kwargs, positional, what):
    values = dict(init_kwargs or {})
    init_args = tuple(init_args or ())
    if len(init_args) > len(positional):
        raise UnsupportedNetworkError(f"{what} has {len(init_args)} positional arguments; NVIDIA's takes at most "
                                      f"{len(positional)}")
    for name, value in zip(positional, init_args):
        if name in values:
            raise UnsupportedNetworkError(f"{what} has {name} both as a positional and a keyword argument")
        values[name] = value
    return values


def _filled(given, defaults, what):
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UnsupportedNetworkError(f"{what} has arguments NVIDIA's StyleGAN2-ADA does not take or we do not "
                                      f"know: {', '.join(unknown)} (known: {', '.join(sorted(defaults))})")
    return {**defaults, **given}


def _require(what, name, value, supported):
    if value not in supported:
        allowed = " or ".join(repr(v) for v in supported)
        raise UnsupportedNetworkError(f"{what} {name}={value!r} is not supported (supported: {allowed})")


def _check_filter(what, taps):
    if taps is None or [float(t) for t in np.ravel(taps)] != [float(t) for t in STANDARD_FILTER] \
            or np.ndim(taps) != 1:
        raise UnsupportedNetworkError(f"{what} resample_filter={taps!r} is not supported (supported: the standard "
                                      f"{STANDARD_FILTER})")


def _check_resolution(what, resolution):
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise UnsupportedNetworkError(f"{what} img_resolution={resolution!r} is not supported (a power of two >= 4)")


def nvidia_generator_config(init_kwargs: dict, init_args=()) -> dict:
    """NVIDIA `Generator` arguments with its defaults filled in (mapping_kwargs and synthesis_kwargs
    too), after refusing what our `StyleGenerator` cannot compute exactly."""
    what = "the generator"
    values = _arguments(init_args, init_kwargs, _GENERATOR_POSITIONAL, what)
    missing = [name for name in _GENERATOR_POSITIONAL[:5] if name not in values]
    if missing:
        raise UnsupportedNetworkError(f"{what} lacks the arguments {', '.join(missing)}")
    config = _filled(values, dict.fromkeys(_GENERATOR_POSITIONAL[:5]) | {"mapping_kwargs": {}, "synthesis_kwargs": {}},
                     what)
    mapping = _filled(config["mapping_kwargs"], _MAPPING_DEFAULTS, f"{what}'s mapping_kwargs")
    synthesis = _filled(config["synthesis_kwargs"], _SYNTHESIS_DEFAULTS, f"{what}'s synthesis_kwargs")
    config.update(mapping_kwargs=mapping, synthesis_kwargs=synthesis)
    _require(what, "c_dim", config["c_dim"], (0,))  # conditional models: no label embedding here
    _require(what, "img_channels", config["img_channels"], (3,))
    _check_resolution(what, config["img_resolution"])
    for name in ("z_dim", "w_dim"):
        if not isinstance(config[name], int) or config[name] < 1:
            raise UnsupportedNetworkError(f"{what} {name}={config[name]!r} is not supported (a positive integer)")
    _require(what, "architecture", synthesis["architecture"], ("skip",))
    _require(what, "kernel_size", synthesis["kernel_size"], (3,))
    _require(what, "activation", synthesis["activation"], ("lrelu",))
    _require(what, "use_noise", synthesis["use_noise"], (True,))
    _check_filter(what, synthesis["resample_filter"])
    _require(f"{what}'s mapping network", "activation", mapping["activation"], ("lrelu",))
    if mapping["layer_features"] not in (None, config["w_dim"]):
        raise UnsupportedNetworkError(f"{what}'s mapping network layer_features={mapping['layer_features']!r} is not "
                                      f"supported (supported: None, i.e. w_dim = {config['w_dim']})")
    # embed_features only sizes the label embedding, which c_dim 0 leaves out (NVIDIA sets it to 0).
    if not isinstance(mapping["num_layers"], int) or mapping["num_layers"] < 1:
        raise UnsupportedNetworkError(f"{what}'s mapping num_layers={mapping['num_layers']!r} is not supported "
                                      f"(supported: 1 or more)")
    beta = mapping["w_avg_beta"]
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
        raise UnsupportedNetworkError(f"{what}'s mapping w_avg_beta={beta!r} is not supported (supported: a number "
                                      f"in [0, 1]; None, no tracked w_avg, is not)")
    if isinstance(mapping["lr_multiplier"], bool) or not isinstance(mapping["lr_multiplier"], (int, float)) \
            or mapping["lr_multiplier"] <= 0:
        raise UnsupportedNetworkError(f"{what}'s mapping lr_multiplier={mapping['lr_multiplier']!r} is not supported "
                                      f"(supported: a positive number)")
    _check_clamp(what, synthesis["conv_clamp"])
    _check_fp16_res(what, synthesis["num_fp16_res"])
    return config


def nvidia_discriminator_config(init_kwargs: dict, init_args=()) -> dict:
    """NVIDIA `Discriminator` arguments with its defaults filled in (block_kwargs and
    epilogue_kwargs too), after refusing what our `ResidualDiscriminator` cannot compute exactly."""
    what = "the discriminator"
    values = _arguments(init_args, init_kwargs, _DISCRIMINATOR_POSITIONAL, what)
    missing = [name for name in _DISCRIMINATOR_POSITIONAL[:3] if name not in values]
    if missing:
        raise UnsupportedNetworkError(f"{what} lacks the arguments {', '.join(missing)}")
    config = _filled(values, dict.fromkeys(_DISCRIMINATOR_POSITIONAL[:3]) | _DISCRIMINATOR_DEFAULTS, what)
    block = _filled(config["block_kwargs"], _BLOCK_DEFAULTS, f"{what}'s block_kwargs")
    epilogue = _filled(config["epilogue_kwargs"], _EPILOGUE_DEFAULTS, f"{what}'s epilogue_kwargs")
    config.update(block_kwargs=block, epilogue_kwargs=epilogue, mapping_kwargs=dict(config["mapping_kwargs"] or {}))
    _require(what, "c_dim", config["c_dim"], (0,))  # the label mapping and cmap projection: not here
    _require(what, "img_channels", config["img_channels"], (3,))
    _check_resolution(what, config["img_resolution"])
    _require(what, "architecture", config["architecture"], ("resnet",))
    _require(what, "activation", block["activation"], ("lrelu",))
    _require(f"{what}'s epilogue", "activation", epilogue["activation"], ("lrelu",))
    _require(what, "freeze_layers", block["freeze_layers"], (0,))  # frozen layers are buffers, not parameters
    _check_filter(what, block["resample_filter"])
    group = epilogue["mbstd_group_size"]
    if not isinstance(group, int) or group < 1:
        raise UnsupportedNetworkError(f"{what} mbstd_group_size={group!r} is not supported (supported: a positive "
                                      f"integer; None, the whole minibatch, is not)")
    channels = epilogue["mbstd_num_channels"]
    if not isinstance(channels, int) or channels < 1:
        raise UnsupportedNetworkError(f"{what} mbstd_num_channels={channels!r} is not supported (supported: 1 or "
                                      f"more)")
    _check_clamp(what, config["conv_clamp"])
    _check_fp16_res(what, config["num_fp16_res"])
    return config


def _check_fp16_res(what, count):
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise UnsupportedNetworkError(f"{what} num_fp16_res={count!r} is not supported (supported: 0 or more)")


def _check_clamp(what, clamp):
    if clamp is not None and (isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or clamp <= 0):
        raise UnsupportedNetworkError(f"{what} conv_clamp={clamp!r} is not supported (supported: None or a positive "
                                      f"number)")


def generator_kwargs(init_kwargs: dict, init_args=(), source=SOURCE_ADA_NETWORKS) -> dict:
    """Our `StyleGenerator` arguments for NVIDIA's `Generator(**init_kwargs)` (of the file `source`)."""
    config = nvidia_generator_config(*_ada_generator_layout(init_kwargs, init_args, source))
    mapping, synthesis = config["mapping_kwargs"], config["synthesis_kwargs"]
    return dict(resolution=config["img_resolution"], z_dim=config["z_dim"], w_dim=config["w_dim"],
                img_channels=config["img_channels"], mapping_layers=mapping["num_layers"],
                mapping_lr_multiplier=float(mapping["lr_multiplier"]), w_avg_beta=float(mapping["w_avg_beta"]),
                channel_base=synthesis["channel_base"], channel_max=synthesis["channel_max"],
                conv_clamp=None if synthesis["conv_clamp"] is None else float(synthesis["conv_clamp"]),
                num_reduced_precision_res=int(synthesis["num_fp16_res"]))


def discriminator_kwargs(init_kwargs: dict, init_args=(), source=SOURCE_ADA_NETWORKS) -> dict:
    """Our `ResidualDiscriminator` arguments for NVIDIA's `Discriminator(**init_kwargs)` (of `source`)."""
    config = nvidia_discriminator_config(*_ada_discriminator_layout(init_kwargs, init_args, source))
    epilogue = config["epilogue_kwargs"]
    return dict(resolution=config["img_resolution"], img_channels=config["img_channels"],
                channel_base=config["channel_base"], channel_max=config["channel_max"],
                mbstd_group_size=epilogue["mbstd_group_size"], mbstd_channels=epilogue["mbstd_num_channels"],
                conv_clamp=None if config["conv_clamp"] is None else float(config["conv_clamp"]),
                num_reduced_precision_res=int(config["num_fp16_res"]))


_SHARED = ("channel_base", "channel_max", "conv_clamp", "num_reduced_precision_res", "resolution")


def model_options(generator_init_kwargs: dict, discriminator_init_kwargs: dict, preset: str = "auto",
                  generator_init_args=(), discriminator_init_args=(), generator_source=SOURCE_ADA_NETWORKS,
                  discriminator_source=SOURCE_ADA_NETWORKS) -> tuple[int, dict]:
    """(resolution, options): `create_gan("stylegan2-ada", resolution, **options)` builds networks of
    exactly the shape of NVIDIA's G and D. Every network option is explicit, so `preset` only picks
    the training settings (batch, learning rate, R1 gamma, EMA) the pickle does not record.

    Our model gives both networks one channel_base, channel_max, conv_clamp and number of
    reduced-precision resolutions: G and D that differ in one are refused."""
    g = generator_kwargs(generator_init_kwargs, generator_init_args, generator_source)
    d = discriminator_kwargs(discriminator_init_kwargs, discriminator_init_args, discriminator_source)
    differing = [f"{name} (G {g[name]!r}, D {d[name]!r})" for name in _SHARED if g[name] != d[name]]
    if differing:
        raise UnsupportedNetworkError(f"the generator and discriminator differ in {', '.join(differing)}; our model "
                                      f"gives both the same value")
    options = dict(preset=preset, z_dim=g["z_dim"], w_dim=g["w_dim"], mapping_layers=g["mapping_layers"],
                   channel_base=g["channel_base"], channel_max=g["channel_max"],
                   mbstd_group=d["mbstd_group_size"], mbstd_channels=d["mbstd_channels"],
                   conv_clamp=0.0 if g["conv_clamp"] is None else g["conv_clamp"],  # 0: no clamp
                   reduced_precision_res=g["num_reduced_precision_res"], mapping_lr=g["mapping_lr_multiplier"],
                   w_avg_beta=g["w_avg_beta"])
    return g["resolution"], options


def nvidia_init_kwargs(generator, discriminator) -> dict:
    """{"G": ..., "D": ...}: NVIDIA constructor arguments (as its train.py writes them, with every
    value that differs from a default) that build networks of the shape of ours."""
    for network, names in ((generator, ("conv_clamp", "channel_base")), (discriminator, ("mbstd_group_size",))):
        if not all(hasattr(network, name) for name in names):
            raise TypeError(f"expected a StyleGenerator and a ResidualDiscriminator, got {type(network).__name__}")

    def fp16_res(network):
        n = network.num_reduced_precision_res
        return max(int(math.log2(network.resolution)) - 2, 0) if n is None else int(n)  # None: every block

    def clamp(value):
        return None if value is None else (int(value) if float(value).is_integer() else float(value))

    g = dict(z_dim=generator.z_dim, w_dim=generator.w_dim,
             mapping_kwargs=dict(num_layers=generator.mapping_layers, lr_multiplier=generator.mapping_lr_multiplier,
                                 w_avg_beta=generator.w_avg_beta),
             synthesis_kwargs=dict(channel_base=generator.channel_base, channel_max=generator.channel_max,
                                   num_fp16_res=fp16_res(generator), conv_clamp=clamp(generator.conv_clamp)),
             c_dim=0, img_resolution=generator.resolution, img_channels=generator.img_channels)
    d = dict(block_kwargs={}, mapping_kwargs={},
             epilogue_kwargs=dict(mbstd_group_size=discriminator.mbstd_group_size,
                                  mbstd_num_channels=discriminator.mbstd_channels),
             channel_base=discriminator.channel_base, channel_max=discriminator.channel_max,
             num_fp16_res=fp16_res(discriminator), conv_clamp=clamp(discriminator.conv_clamp), c_dim=0,
             img_resolution=discriminator.resolution, img_channels=discriminator.img_channels)
    return {"G": g, "D": d}


# ----------------------------------------------------------------------------- weights


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


def _converted(entries, state, what):
    """[(variable, value)] for `state` (a dict of arrays), checked: every key once, every shape."""
    state = dict(state)
    expected = [entry.key for entry in entries]
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in set(expected)]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    pairs = []
    for entry in entries:
        if entry.key not in state:
            continue
        value = np.asarray(state[entry.key])
        if tuple(value.shape) != entry.nvidia_shape():
            problems.append(f"{entry.key} has shape {list(value.shape)}, expected {list(entry.nvidia_shape())}")
            continue
        if not np.issubdtype(value.dtype, np.floating):
            problems.append(f"{entry.key} has dtype {value.dtype}, expected floating point")
            continue
        if entry.variable is None:
            if not np.allclose(value, entry.constant, rtol=0, atol=1e-6):
                problems.append(f"{entry.key} is not the standard [1, 3, 3, 1] resampling filter (found "
                                f"{np.round(value, 4).tolist()})")
            continue
        pairs.append((entry.variable, entry.to_ours(value.astype(np.float32))))
    if problems:
        error = UnsupportedNetworkError if all("resampling filter" in p for p in problems) else StateDictError
        raise error(f"{what} state dict does not fit: " + "; ".join(problems))
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
    """id(generator variable) -> its moving average (GAN keeps them in `generator.variables` order)."""
    if not gan._ema_weights:
        raise ValueError("this GAN keeps no moving average of its generator (G_ema)")
    return {id(variable): average for variable, average in zip(gan.generator.variables, gan._ema_weights)}


def nvidia_state_dicts(gan) -> dict:
    """{"G": ..., "D": ..., "G_ema": ...}: our StyleGAN2-ADA model's generator, discriminator and
    generator moving average (`gan._ema_weights`) as NVIDIA's state dicts."""
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


# ----------------------------------------------------------------------------- whole snapshots


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
    if (tuple(g.init_args or ()), g.init_kwargs) != (tuple(ema.init_args or ()), ema.init_kwargs):
        raise UnsupportedNetworkError("G_ema is not built like G (their constructor arguments differ): "
                                      f"G {g.init_kwargs!r}, G_ema {ema.init_kwargs!r}")


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
    gan = create_gan("stylegan2-ada", resolution, seed=seed, **options)
    load_nvidia_state(gan, {name: networks[name].state_dict() for name in ("G", "D", "G_ema")})
    return resolution, options, gan
