"""Which floating-point precision a run trains in, and why.

`choose_precision("auto")` picks from the hardware: bfloat16 on a GPU of compute capability 8.0 or
higher (Ampere and newer) and on a CPU with native bfloat16 instructions (the `avx512_bf16` or
`amx_bf16` flags) unless the model trains faster in float32 there (its `float32_on_cpu_reason`:
the lightweight model at 64 px), float16 with loss scaling on GPUs of compute capability 7.x
(Volta, Turing), float32 everywhere else. An explicit choice is kept, with a warning in the reason
where it runs slowly (bfloat16 or float16 emulated on a CPU without them).

Whatever the precision, the variables (weights, EMA weights, BatchNorm statistics, optimizer
states) stay float32 and so do the discriminator's logits, the losses, the gradient penalty's norm
and every metric: Keras's mixed policies keep variables in float32 and compute in the reduced
type; the output layers of the networks and the loss code of `gans` cast to float32.
"""

from __future__ import annotations

import os
import sys
import weakref

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
REDUCED_DTYPES = ("float16", "bfloat16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


def cpu_flags(path: str = CPUINFO) -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (`flags` lines; `Features` on
    ARM); an empty set where there is no such file (macOS, Windows)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_bf16_flags(flags: set[str] | None = None) -> list[str]:
    """The native-bfloat16 flags this CPU has, of `BF16_CPU_FLAGS`."""
    flags = cpu_flags() if flags is None else flags
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def gpu_compute_capabilities() -> list[tuple[int, int] | None]:
    """(major, minor) for each visible GPU, None where TensorFlow does not report one."""
    import tensorflow as tf

    result = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        except (RuntimeError, ValueError):
            capability = None
        result.append(tuple(capability) if capability else None)
    return result


def check_precision(name: str) -> str:
    """`name` when it is one of PRECISIONS; else a ConfigError that lists them."""
    if name not in PRECISIONS:
        from .errors import ConfigError

        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def choose_precision(requested: str = "auto", *, gpus: list | None = None, flags: set[str] | None = None,
                     float32_on_cpu: str | None = None) -> tuple[str, str]:
    """(precision, reason): the precision to train in ("float32", "bfloat16" or "float16") and a
    sentence saying why. `gpus` (compute capabilities, as `gpu_compute_capabilities` returns) and
    `flags` (as `cpu_flags`) default to this machine's. `float32_on_cpu`: the model's reason to
    train in float32 on a CPU even where it computes bfloat16 natively (`float32_on_cpu_reason`)."""
    check_precision(requested)
    gpus = gpu_compute_capabilities() if gpus is None else list(gpus)
    if gpus:
        known = [capability for capability in gpus if capability is not None]
        lowest = min(known) if len(known) == len(gpus) else None
        device = f"GPU compute capability {lowest[0]}.{lowest[1]}" if lowest else "GPU of unknown compute capability"
        if requested != "auto":
            if requested == "bfloat16" and lowest is not None and lowest < (8, 0):
                return requested, f"requested; the {device} has no fast bfloat16 (it needs 8.0): expect it to be slow"
            return requested, "requested"
        if lowest is None:
            return "float32", f"auto: {device}, so no reduced precision is known to pay"
        if lowest >= (8, 0):
            return "bfloat16", f"auto: {device} >= 8.0 computes bfloat16 natively (no loss scaling needed)"
        if lowest >= (7, 0):
            return "float16", f"auto: {device} < 8.0 has float16 tensor cores but no fast bfloat16: float16 with loss scaling"
        return "float32", f"auto: {device} < 7.0 has neither fast float16 nor bfloat16"
    native = cpu_bf16_flags(flags)
    if requested == "auto":
        if native and float32_on_cpu:
            return "float32", (f"auto: no GPU; this CPU computes bfloat16 natively ({', '.join(native)}), "
                               f"but {float32_on_cpu}")
        if native:
            return "bfloat16", f"auto: no GPU, and this CPU computes bfloat16 natively ({', '.join(native)})"
        return "float32", (f"auto: no GPU, and this CPU has no native bfloat16 ({' or '.join(BF16_CPU_FLAGS)} "
                           "not in its flags)")
    if requested == "bfloat16" and native and float32_on_cpu:
        return requested, f"requested; {float32_on_cpu}"
    if requested == "bfloat16" and not native:
        return requested, (f"requested; this CPU has no native bfloat16 ({' or '.join(BF16_CPU_FLAGS)}): it is "
                           "emulated and runs much slower than float32, with the same results")
    if requested == "float16":
        return requested, ("requested; on a CPU float16 math is emulated and runs slower: "
                           "it pays on GPUs (bfloat16 pays on CPUs with avx512_bf16 or amx_bf16)")
    return requested, "requested"


def policy_name(precision: str) -> str:
    """The Keras dtype policy of a precision: float32, mixed_bfloat16 or mixed_float16."""
    try:
        return POLICIES[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {', '.join(POLICIES)}, got {precision!r}") from None


def apply_precision(precision: str) -> str:
    """Set Keras's global dtype policy for `precision` (not "auto": choose first); returns the
    policy's name. Models built afterwards compute in it; float16 optimizers then get loss scaling
    in `GAN.compile`."""
    import keras

    name = policy_name(precision)
    keras.mixed_precision.set_global_policy(name)
    return name


def describe_cpu() -> dict:
    """The CPU's model name, core count and bfloat16 flags (for benchmarks and run logs)."""
    model = None
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.split(":")[0].strip() == "model name":
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = None
    return {"model": model or sys.platform, "cores": os.cpu_count(), "bf16_flags": cpu_bf16_flags()}


# ----------------------------------------------------------------------------- networks


def _nested_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _nested_layers(layer)


def reduced_precision_layers(model, dtypes=REDUCED_DTYPES) -> list:
    """`model` and its nested layers that compute in one of `dtypes` (bfloat16 or float16)."""
    return [layer for layer in [model, *_nested_layers(model)] if getattr(layer, "compute_dtype", None) in dtypes]


def float32_model(model):
    """`model` itself when it and every layer compute in float32; else a float32 copy of it: the
    same architecture rebuilt under the float32 policy, each mixed-precision layer's policy replaced
    by float32 (its variables were float32 already), with the same weights. A generator trained
    under mixed_bfloat16 or mixed_float16 then exports and saves as a float32 graph."""
    import keras

    from .errors import UserError
    from .sampling import latent_width

    if not reduced_precision_layers(model):
        return model

    def rebuild(layer):
        config = layer.get_config()
        if getattr(layer, "compute_dtype", None) in REDUCED_DTYPES:
            config["dtype"] = layer.variable_dtype
        return layer.__class__.from_config(config)

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for what clone_model creates without a config
    try:
        if isinstance(model, keras.Sequential) or type(model).__name__ == "Functional":
            copy = keras.models.clone_model(model, clone_function=rebuild, recursive=True)
        else:  # a subclassed generator (StyleGAN's): its own config, built on one latent
            config = model.get_config()
            config.pop("dtype", None)
            copy = model.__class__.from_config(config)
            copy(keras.ops.zeros((1, latent_width(model))))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    leftover = reduced_precision_layers(copy)
    if leftover:  # e.g. a subclassed model that clone_model cannot rebuild layer by layer
        raise UserError(f"cannot rebuild {model.name} in float32: {leftover[0].name} still computes in "
                        f"{leftover[0].compute_dtype}")
    return copy


_FLOAT32_COPIES = weakref.WeakKeyDictionary()


def float32_view(model):
    """`float32_model(model)`, cached per model and refreshed with its current weights: what a GAN
    samples with during and after training, so `generate` gives the pictures the float32 export and
    `generate --seeds` give, whatever the training precision."""
    if not reduced_precision_layers(model):
        return model
    copy = _FLOAT32_COPIES.get(model)
    if copy is None:
        copy = _FLOAT32_COPIES[model] = float32_model(model)
    else:
        copy.set_weights(model.get_weights())
    return copy


def with_loss_scaling(optimizer, *networks):
    """Wrap the optimizer so small gradients do not underflow when the networks it trains compute
    in float16 (built under mixed_float16), or, with no networks given, under a float16 global
    policy. bfloat16 has float32's range and needs no loss scaling."""
    import keras

    if networks:
        float16 = any(reduced_precision_layers(network, ("float16",)) for network in networks)
    else:
        float16 = keras.mixed_precision.dtype_policy().compute_dtype == "float16"
    if float16 and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
