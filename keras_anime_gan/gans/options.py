"""Model options as dataclasses: one field per option, with its default, its check and a one-line
help, so that `create_gan`, `train.py --help`, `--config` files and resumed runs all read the same
definition.

    @dataclasses.dataclass
    class HingeOptions(ClassicOptions):
        margin: float = option(1.0, "hinge margin of the discriminator", minimum=0.0, exclusive=True)

`kind` says which part of the model owns an option: "network" (read by the model's network
builder), "model" or "optimizer" (passed to the GAN class's constructor, which hands the objective
its own; optimizer options end in `Objective.optimizers`). `fixed` options cannot change when a run resumes (all network options).
"""

from __future__ import annotations

import dataclasses
import math
import typing

from ..errors import ConfigError

KINDS = ("network", "model", "optimizer")


def option(default, help, *, kind="model", fixed=None, choices=None, minimum=None, maximum=None,
           exclusive=False, flag=None, aliases=(), check=None):
    """A dataclass field for a model option.

    Args:
        default: the value when the option is not given (None: "the model's own default").
        help: one line for `--help`.
        kind: "network", "model" or "optimizer" (see the module docstring).
        fixed: whether a run keeps the value for its whole life (resuming cannot change it);
            network options always are, e.g. the EMA decay (it changes what the checkpoints hold).
        choices: the allowed values, when they are few.
        minimum, maximum: bounds of a number; `exclusive` makes both strict.
        flag: the command-line name without dashes when it differs from the field name (for
            names that would be ambiguous on the command line, e.g. `dynamic-scale`).
        aliases: more command-line names (with dashes), e.g. ("--d-lr",).
        check: `check(value)` returns an error message or None, for rules the bounds cannot say.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    metadata = {"help": help, "kind": kind, "fixed": kind == "network" if fixed is None else bool(fixed), "choices": choices, "minimum": minimum, "maximum": maximum,
                "exclusive": exclusive, "flag": flag, "aliases": tuple(aliases), "check": check}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class ModelOptions:
    """Base of every model's options; subclasses add fields made with `option`."""

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field, ...]:
        return dataclasses.fields(cls)

    @classmethod
    def names(cls) -> list[str]:
        return [item.name for item in cls.fields()]

    @classmethod
    def from_values(cls, values: dict, model: str = "this model") -> "ModelOptions":
        """Options from a dict, checked: an unknown name is an error that lists the valid ones."""
        known = cls.names()
        unknown = sorted(set(values) - set(known))
        if unknown:
            close = {name: _closest(name, known) for name in unknown}
            hints = "; ".join(f"{name!r} (did you mean {guess!r}?)" if guess else repr(name)
                              for name, guess in close.items())
            raise ConfigError(f"unknown option(s) for {model}: {hints}. Valid options: {', '.join(known)}")
        options = cls(**values)
        options.validate(model)
        return options

    def validate(self, model: str = "this model") -> None:
        """Raise ConfigError naming the first option whose value its field refuses."""
        hints = typing.get_type_hints(type(self))
        for item in self.fields():
            value = getattr(self, item.name)
            message = _check_value(value, item, hints.get(item.name))
            if message:
                raise ConfigError(f"{model} option {item.name}: {message}")

    def values(self, kind: str | None = None) -> dict:
        """The options as a dict; only those of one `kind` when given."""
        return {item.name: getattr(self, item.name) for item in self.fields()
                if kind is None or item.metadata.get("kind", "model") == kind}

    @classmethod
    def checked(cls, values: dict, model: str = "this model") -> dict:
        """`values` (some of the options) after the same checks as `from_values`."""
        cls.from_values(values, model)
        return values

    def to_json(self) -> dict:
        return self.values()

    @classmethod
    def fixed_names(cls) -> list[str]:
        """Options a resumed run must keep (its checkpoints depend on them)."""
        return [item.name for item in cls.fields() if item.metadata.get("fixed")]


def _check_augment(value, others=()):
    from .diffaugment import check_augment  # TensorFlow: only once a value is checked

    return check_augment(value, others)


def _closest(name, known):
    import difflib

    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else None


def value_types(hint) -> tuple[type, ...]:
    """The concrete types a field's annotation allows, e.g. `float | None` -> (float, NoneType)."""
    if hint is None:
        return ()
    args = typing.get_args(hint)
    return tuple(arg for arg in args) if args else (hint,)


def _check_value(value, item, hint) -> str | None:
    meta = item.metadata
    types = value_types(hint)
    if value is None:
        return None if type(None) in types or not types else "must be given (None is not allowed)"
    if bool in types:
        if not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
    elif int in types and float not in types:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
    elif float in types:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):  # NaN passes every bound check below
            return f"must be a finite number, got {value!r}"
    elif str in types and not isinstance(value, str):
        return f"must be a string, got {value!r}"
    if meta.get("choices") is not None and value not in meta["choices"]:
        return f"must be one of {', '.join(map(str, meta['choices']))}, got {value!r}"
    low, high, strict = meta.get("minimum"), meta.get("maximum"), meta.get("exclusive")
    if low is not None and (value <= low if strict else value < low):
        return f"must be {'>' if strict else '>='} {low}, got {value!r}"
    if high is not None and (value >= high if strict else value > high):
        return f"must be {'<' if strict else '<='} {high}, got {value!r}"
    if meta.get("check") is not None:
        return meta["check"](value)
    return None


@dataclasses.dataclass
class GANOptions(ModelOptions):
    """What every GAN of the family takes."""

    ema: float | None = option(None, "decay of the generator's weight moving average, e.g. 0.999 (none: off)",
                               minimum=0.0, maximum=1.0, exclusive=True, fixed=True)
    augment: str = option("none", "augmentation of every image the discriminator sees: none, or diffaugment[:POLICY] "
                                  "(DiffAugment: POLICY a comma-separated list of color, translation, cutout; all "
                                  "three by default)", check=lambda value: _check_augment(value))
    micro_batch: int | None = option(None, "images per forward/backward pass; a divisor of the per-replica batch "
                                           "accumulates gradients over batch / micro_batch passes, for less memory "
                                           "(NVIDIA's batch_gpu; default: the whole batch)", minimum=1)
    d_learning_rate: float | None = option(None, "discriminator learning rate (default: the model's paper value)",
                                           minimum=0.0, kind="optimizer", aliases=("--d-lr",))
    g_learning_rate: float | None = option(None, "generator learning rate (default: the model's paper value)",
                                           minimum=0.0, kind="optimizer", aliases=("--g-lr",))
    beta_1: float | None = option(None, "Adam beta_1 of both optimizers (default: the model's paper value)",
                                  minimum=0.0, maximum=1.0, kind="optimizer")
    beta_2: float | None = option(None, "Adam beta_2 of both optimizers (default: the model's paper value)",
                                  minimum=0.0, maximum=1.0, kind="optimizer")


class MadeFromOptions:
    """How the registry makes a model from its options (`registry.create_gan`); `GAN` has it, a model
    overrides what it needs."""

    @classmethod
    def build_networks(cls, resolution: int, options):
        """(generator, discriminator) for `resolution` from this model's resolved `Options`."""
        raise NotImplementedError(f"{cls.__name__} does not build its own networks; pass them to the constructor")

    @classmethod
    def resolve_options(cls, resolution: int, options, batch_size=None):
        """`options` with every value the model derives filled in, so that config.json and the start-up
        line show the values in use: here the objective's paper learning rates and betas."""
        paper = {name: getattr(cls.Objective, name) for name in ("d_learning_rate", "g_learning_rate", "beta_1",
                                                                 "beta_2")}
        return dataclasses.replace(options, **{name: value for name, value in paper.items()
                                               if getattr(options, name) is None and value is not None})

    @classmethod
    def from_options(cls, resolution: int, options, seed=None, batch_size=None):
        """The GAN with networks built from resolved `options` (`registry.resolved_options`)."""
        generator, discriminator = cls.build_networks(resolution, options)
        return cls(generator, discriminator, seed=seed, **options.values("model"), **options.values("optimizer"))

    @classmethod
    def default_batch_size(cls, resolution: int, options) -> int:
        """The global batch a run trains with when none is given: the DCGAN paper's 128."""
        return 128

    @classmethod
    def float32_on_cpu_reason(cls, resolution: int, options) -> str | None:
        """Why `--precision auto` trains this model in float32 even on a CPU with native bfloat16
        (a sentence), or None where bfloat16 is the faster there (measured for the model's networks)."""
        return None
