#!/usr/bin/env python3
"""Train a GAN on anime faces: `python train.py --help`. With no --data it trains on the embedded
synthetic faces. The same as `keras-anime-gan train`."""

from keras_anime_gan.training import main

if __name__ == "__main__":
    raise SystemExit(main())
