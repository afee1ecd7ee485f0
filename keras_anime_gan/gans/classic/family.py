"""The classic family: DCGAN, LSGAN, WGAN, WGAN-GP and the CSC412 dynamic schedule, on the networks
of `networks.py`. Each model is its options, its networks and its objective (`objectives.py`)."""

from __future__ import annotations

import dataclasses

from ..loop import GAN
from ..options import GANOptions, option
from . import networks
from .objectives import DCGANObjective, DynamicObjective, LSGANObjective, WGANGPObjective, WGANObjective

ARCHS = {"dcgan": ("dcgan", "dcgan"), "csc412": ("upsample", "dropout")}  # arch -> (generator, discriminator)


@dataclasses.dataclass
class ClassicOptions(GANOptions):
    """The networks of the classic family."""

    arch: str = option("dcgan", "dcgan (Radford et al.) or csc412 (the CSC412 report's upsampling G and "
                                "dropout D)", kind="network", choices=tuple(ARCHS))
    latent_dim: int = option(100, "width of the latent z", kind="network", minimum=1)
    width: int = option(64, "base channel count of both networks", kind="network", minimum=1)
    norm: str = option("batch", "discriminator normalisation", kind="network",
                       choices=("batch", "layer", "instance", "none"))


@dataclasses.dataclass
class DCGANOptions(ClassicOptions):
    label_smoothing: float = option(0.0, "fuzzy labels: 0.1 gives targets 0.9 (real) / 0.1 (fake)",
                                    minimum=0.0, check=lambda value: f"must be below 0.5, got {value}" if value >= 0.5 else None)
    one_sided: bool = option(False, "smooth only the real targets", flag="one-sided-smoothing")


@dataclasses.dataclass
class WGANOptions(ClassicOptions):
    n_critic: int = option(5, "critic updates (each on its own real batch) per generator update", minimum=1)
    clip_value: float | None = option(0.01, "weight clipping bound of the critic", minimum=0.0, exclusive=True)


@dataclasses.dataclass
class WGANGPOptions(ClassicOptions):
    norm: str = option("layer", "critic normalisation (the paper advises against batch norm here)", kind="network",
                       choices=("batch", "layer", "instance", "none"))
    n_critic: int = option(5, "critic updates (each on its own real batch) per generator update", minimum=1)
    gp_weight: float = option(10.0, "gradient penalty weight lambda", minimum=0.0)


@dataclasses.dataclass
class DynamicOptions(DCGANOptions):
    scale: float = option(10.0, "updates per step scale: D gets int(scale * acc), G int(scale * (1 - acc))",
                          minimum=0.0, exclusive=True, flag="dynamic-scale")
    d_min: int = option(1, "fewest discriminator updates per step", minimum=1, flag="dynamic-d-min")
    g_min: int = option(3, "fewest generator updates per step", minimum=1, flag="dynamic-g-min")
    initial_accuracy: float = option(0.5, "accuracy assumed before the first discriminator update",
                                     minimum=0.0, maximum=1.0, flag="dynamic-initial-accuracy")


class ClassicGAN(GAN):
    """A GAN on the classic family's networks (`networks.build_generator` / `build_discriminator`)."""

    Options = ClassicOptions

    @classmethod
    def build_networks(cls, resolution, options):
        g_arch, d_arch = ARCHS[options.arch]
        norm = None if options.norm == "none" else options.norm
        generator = networks.build_generator(resolution, options.latent_dim, options.width, g_arch)
        discriminator = networks.build_discriminator(resolution, options.width, d_arch, norm)
        return generator, discriminator

    @classmethod
    def check_resolution(cls, resolution, options):
        """A ValueError when the networks cannot be built at `resolution` (before building them)."""
        networks.base_size(resolution, ARCHS[options.arch][0])


class DCGAN(ClassicGAN):
    """DCGAN (Radford et al.), with the report's fuzzy labels and separate rates as options."""

    Options, Objective = DCGANOptions, DCGANObjective


class LSGAN(ClassicGAN):
    """Least-squares GAN (Mao et al.) on DCGAN's networks and optimizers."""

    Options, Objective = DCGANOptions, LSGANObjective


class WGAN(ClassicGAN):
    """Wasserstein GAN with weight clipping; one step consumes `n_critic` real batches, so an epoch
    has len(data) / (batch * n_critic) steps."""

    Options, Objective = WGANOptions, WGANObjective


class WGANGP(ClassicGAN):
    """Wasserstein GAN with a gradient penalty (Gulrajani et al.)."""

    Options, Objective = WGANGPOptions, WGANGPObjective


class DynamicGAN(ClassicGAN):
    """DCGAN's losses on the CSC412 report's accuracy-weighted schedule of updates."""

    Options, Objective = DynamicOptions, DynamicObjective
