"""NVIDIA's StyleGAN2-ADA network configurations and ours: constructor arguments checked and mapped.

NVIDIA's networks (NVlabs/stylegan2-ada-pytorch, `training/networks.py`) are described by the
constructor arguments a pickle keeps (`init_kwargs`, without NVIDIA's defaults). This module reads them
as plain Python values, so it does not depend on how they were read (`keras_anime_gan.nvidia.safe_pickle`
reads them from a pickle):

- `check_module`: a module record is StyleGAN2-ADA's `Generator` / `Discriminator`, from one of NVIDIA's
  StyleGAN2 network files;
- `nvidia_generator_config` / `nvidia_discriminator_config`: NVIDIA's arguments with its defaults filled
  in, every value checked for its type and bound;
- `generator_kwargs` / `discriminator_kwargs`: our `StyleGenerator` / `ResidualDiscriminator`
  arguments for NVIDIA's `Generator` / `Discriminator` arguments, and `model_options`: the
  "stylegan2-ada" options that rebuild both (`create_gan("stylegan2-ada", resolution, **options)`);
  what we cannot compute exactly is refused with an `UnsupportedNetworkError` naming it;
- `nvidia_init_kwargs`: the other way, NVIDIA's arguments for networks of the shape of ours.

Their weights: `keras_anime_gan.nvidia.weights`; whole snapshots: `keras_anime_gan.nvidia.snapshots`.
"""

from __future__ import annotations

import math

from ..errors import UserError, short_repr

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


# Bounds on the options a snapshot may state, far above NVIDIA's largest published configurations
# (1024 px; z and w 512; 8 mapping layers; channel_base 65536 and channel_max 1024 in StyleGAN3-R;
# minibatch-stddev groups of 4 to 32 with one channel): they are checked before any array is shaped
# or any network is built, so a file cannot ask for networks it does not hold (docs/security.md).
MAX_RESOLUTION = 4096
MAX_LATENT = 4096  # z_dim, w_dim
MAX_MAPPING_LAYERS = 64
MAX_CHANNEL_BASE = 1 << 20
MAX_CHANNELS = 8192  # channel_max
MAX_MBSTD_GROUP = 256
MAX_MBSTD_CHANNELS = 64
MAX_FP16_RES = 64  # any count at or above the number of blocks means all of them


def _show(value) -> str:
    """A value from a file in a message: one line, bounded (`errors.short_repr`)."""
    return short_repr(value, 80)


def _listed(names, limit=10) -> str:
    names = [str(name) for name in names]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


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
        raise UnsupportedNetworkError(f"expected StyleGAN2-ADA's {expected} class, the file has {_show(class_name)}")


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
    values["mapping_kwargs"] = {"w_avg_beta": 0.998, **_dict_of(values.get("mapping_kwargs"),
                                                                 "the generator's mapping_kwargs")}
    values["synthesis_kwargs"] = {"num_fp16_res": 4, "conv_clamp": 256, **synthesis}
    return values, ()


def _ada_discriminator_layout(init_kwargs: dict, init_args, source) -> tuple[dict, tuple]:
    """NVIDIA `Discriminator` arguments with stylegan3's networks_stylegan2.py defaults made explicit
    (num_fp16_res 4, conv_clamp 256); its layout is stylegan2-ada-pytorch's."""
    if source != SOURCE_SG3_NETWORKS_STYLEGAN2:
        return init_kwargs, init_args
    values = _arguments(init_args, init_kwargs, _DISCRIMINATOR_POSITIONAL, "the discriminator")
    return {"num_fp16_res": 4, "conv_clamp": 256, **values}, ()


def _dict_of(given, what) -> dict:
    """`given` (None: empty) as a dict with string keys; UnsupportedNetworkError for anything else."""
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(isinstance(key, str) for key in given):
        raise UnsupportedNetworkError(f"{what} is {_show(given)}, not a dict of named arguments")
    return dict(given)


def _arguments(init_args, init_kwargs, positional, what):
    values = _dict_of(init_kwargs, f"{what}'s keyword arguments")
    if init_args is not None and not isinstance(init_args, (tuple, list)):
        raise UnsupportedNetworkError(f"{what}'s positional arguments are {_show(init_args)}, not a tuple")
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
    given = _dict_of(given, what)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UnsupportedNetworkError(f"{what} has arguments NVIDIA's StyleGAN2-ADA does not take or we do not "
                                      f"know: {_listed(_show(name).strip(chr(39)) for name in unknown)} "
                                      f"(known: {', '.join(sorted(defaults))})")
    return {**defaults, **given}


def _same(value, options) -> bool:
    """`value` is one of `options`, of the same type: a bool is no int, and an array (a tensor where a
    number belongs) is none of them."""
    return any(type(value) is type(option) and value == option for option in options)


def _require(what, name, value, supported):
    if not _same(value, supported):
        allowed = " or ".join(repr(v) for v in supported)
        raise UnsupportedNetworkError(f"{what} {name}={_show(value)} is not supported (supported: {allowed})")


def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_int(what, name, value, low, high, meaning):
    if not _is_int(value) or not low <= value <= high:
        raise UnsupportedNetworkError(f"{what} {name}={_show(value)} is not supported (supported: {meaning} up to "
                                      f"{high:,})")


def _check_filter(what, taps):
    numbers = isinstance(taps, (list, tuple)) and all(_is_number(t) for t in taps)
    if not numbers or [float(t) for t in taps] != [float(t) for t in STANDARD_FILTER]:
        raise UnsupportedNetworkError(f"{what} resample_filter={_show(taps)} is not supported (supported: the "
                                      f"standard {STANDARD_FILTER})")


def _check_resolution(what, resolution):
    if not _is_int(resolution) or not 4 <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise UnsupportedNetworkError(f"{what} img_resolution={_show(resolution)} is not supported (a power of two "
                                      f">= 4, up to {MAX_RESOLUTION})")


def _check_channels(what, config):
    _check_int(what, "channel_base", config["channel_base"], 1, MAX_CHANNEL_BASE, "a positive integer")
    _check_int(what, "channel_max", config["channel_max"], 1, MAX_CHANNELS, "a positive integer")
    if config["channel_base"] // config["img_resolution"] < 1:
        raise UnsupportedNetworkError(f"{what} channel_base={config['channel_base']} leaves its "
                                      f"{config['img_resolution']} px layers no channels")


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
        _check_int(what, name, config[name], 1, MAX_LATENT, "a positive integer")
    _check_channels(what, {**synthesis, "img_resolution": config["img_resolution"]})
    _require(what, "architecture", synthesis["architecture"], ("skip",))
    _require(what, "kernel_size", synthesis["kernel_size"], (3,))
    _require(what, "activation", synthesis["activation"], ("lrelu",))
    _require(what, "use_noise", synthesis["use_noise"], (True,))
    _check_filter(what, synthesis["resample_filter"])
    _require(f"{what}'s mapping network", "activation", mapping["activation"], ("lrelu",))
    if not _same(mapping["layer_features"], (None, config["w_dim"])):
        raise UnsupportedNetworkError(f"{what}'s mapping network layer_features={_show(mapping['layer_features'])} "
                                      f"is not "
                                      f"supported (supported: None, i.e. w_dim = {config['w_dim']})")
    # embed_features only sizes the label embedding, which c_dim 0 leaves out (NVIDIA sets it to 0).
    if not _is_int(mapping["num_layers"]) or not 1 <= mapping["num_layers"] <= MAX_MAPPING_LAYERS:
        raise UnsupportedNetworkError(f"{what}'s mapping num_layers={_show(mapping['num_layers'])} is not supported "
                                      f"(supported: 1 or more, up to {MAX_MAPPING_LAYERS})")
    beta = mapping["w_avg_beta"]
    if not _is_number(beta) or not 0 <= beta <= 1:
        raise UnsupportedNetworkError(f"{what}'s mapping w_avg_beta={_show(beta)} is not supported (supported: a "
                                      f"number in [0, 1]; None, no tracked w_avg, is not)")
    if not _is_number(mapping["lr_multiplier"]) or mapping["lr_multiplier"] <= 0:
        raise UnsupportedNetworkError(f"{what}'s mapping lr_multiplier={_show(mapping['lr_multiplier'])} is not "
                                      f"supported (supported: a positive number)")
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
    config.update(block_kwargs=block, epilogue_kwargs=epilogue,
                  mapping_kwargs=_dict_of(config["mapping_kwargs"], f"{what}'s mapping_kwargs"))
    _require(what, "c_dim", config["c_dim"], (0,))  # the label mapping and cmap projection: not here
    _require(what, "img_channels", config["img_channels"], (3,))
    _check_resolution(what, config["img_resolution"])
    _require(what, "architecture", config["architecture"], ("resnet",))
    _require(what, "activation", block["activation"], ("lrelu",))
    _require(f"{what}'s epilogue", "activation", epilogue["activation"], ("lrelu",))
    _require(what, "freeze_layers", block["freeze_layers"], (0,))  # frozen layers are buffers, not parameters
    _check_filter(what, block["resample_filter"])
    _check_channels(what, config)
    group = epilogue["mbstd_group_size"]
    if not _is_int(group) or not 1 <= group <= MAX_MBSTD_GROUP:
        raise UnsupportedNetworkError(f"{what} mbstd_group_size={_show(group)} is not supported (supported: a "
                                      f"positive integer up to {MAX_MBSTD_GROUP}; None, the whole minibatch, is not)")
    channels = epilogue["mbstd_num_channels"]
    if not _is_int(channels) or not 1 <= channels <= MAX_MBSTD_CHANNELS:
        raise UnsupportedNetworkError(f"{what} mbstd_num_channels={_show(channels)} is not supported (supported: 1 or "
                                      f"more, up to {MAX_MBSTD_CHANNELS})")
    _check_clamp(what, config["conv_clamp"])
    _check_fp16_res(what, config["num_fp16_res"])
    return config


def _check_fp16_res(what, count):
    if not _is_int(count) or not 0 <= count <= MAX_FP16_RES:
        raise UnsupportedNetworkError(f"{what} num_fp16_res={_show(count)} is not supported (supported: 0 or more, up "
                                      f"to {MAX_FP16_RES})")


def _check_clamp(what, clamp):
    if clamp is not None and (not _is_number(clamp) or clamp <= 0):
        raise UnsupportedNetworkError(f"{what} conv_clamp={_show(clamp)} is not supported (supported: None or a "
                                      f"positive number)")


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
    differing = [f"{name} (G {_show(g[name])}, D {_show(d[name])})" for name in _SHARED if g[name] != d[name]]
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
