#!/usr/bin/env python3
"""Train a GAN on anime faces: `python train.py --help`. With no --data it trains on the embedded
synthetic faces. The same as `keras-anime-gan train`."""

import sys

from keras_anime_gan.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
