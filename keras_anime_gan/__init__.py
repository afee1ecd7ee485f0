"""keras-anime-gan: train, compare, evaluate, explore and serve GANs that draw anime faces."""

__version__ = "0.1.0"
