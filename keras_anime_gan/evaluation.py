"""`evaluate`: score a generator (from a run folder, a .keras file or a model) against real images
with the metrics of `metrics`, and append the result to metrics.jsonl: what `keras-anime-gan
evaluate` does."""

from __future__ import annotations

import os

from .errors import UserError


def evaluate(source, real, metrics=("swd",), num_images=1000, inception_weights=None, extractor=None, seed=0,
             jsonl_path=None, progress=False, allow_upscale=False) -> dict:
    """Score a generator against real images, as `keras-anime-gan evaluate` does.

    Args:
        source: a run folder (its generator.keras), a .keras generator file or a generator model.
        real: real images: a folder, converted TFRecords or StyleGAN files.
        metrics: names among swd, color, kid, fid.
        num_images: images per side (fewer when `real` holds fewer).
        inception_weights: the InceptionV3 no-top weights file for kid / fid (default: Keras's cache).
        extractor: a .keras feature model (or a loaded one) to use instead of InceptionV3.
        seed: picks the real images and the generator's latents.
        jsonl_path: where the record is appended; default `metrics.jsonl` beside the generator
            (None for a model object: not written).
        progress: progress bars for the generation and the feature extraction.
        allow_upscale: compare with real images smaller than the generator's, upscaled (refused
            otherwise: upscaled real images are blurred, and the metrics would reward blur).

    Returns:
        The record: {"metrics": ["swd1k", ...], "num_images", "results": {...}, "generator", "real",
        "extractor"}.
    """

    from .data.pipeline import load_real_images
    from .loading import load_generator
    from .metrics import METRICS, append_jsonl, compute_metrics, metric_name
    from .sampling import image_size, latent_width, latents_for_seed, render

    metrics = list(metrics)
    if num_images < 2:
        raise UserError("--num-images must be >= 2")
    generator = load_generator(source)
    resolution = image_size(generator)
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise UserError(f"--metrics takes {', '.join(METRICS)}, got {', '.join(unknown)}")
    features = _feature_extractor(extractor, metrics, inception_weights, progress)
    real_images = load_real_images(real, num_images, resolution, seed, allow_upscale=allow_upscale)
    fake = render(generator, latents_for_seed(len(real_images), latent_width(generator), seed), progress=progress)
    results = compute_metrics(real_images, fake, metrics, features, inception_weights)
    described = source if isinstance(source, str) else getattr(source, "name", "generator")
    record = {"metrics": [metric_name(m, len(real_images)) for m in metrics], "num_images": len(real_images),
              "results": results, "generator": os.path.abspath(described) if isinstance(source, str) else described,
              "real": os.path.abspath(real),
              "extractor": (extractor if isinstance(extractor, str) else "custom" if extractor is not None
                            else "inception_v3" if {"kid", "fid"} & set(metrics) else None)}
    if jsonl_path is None and isinstance(source, str):
        folder = source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))
        jsonl_path = os.path.join(folder, "metrics.jsonl")
    if jsonl_path:
        append_jsonl(jsonl_path, record)
    return record


def _feature_extractor(extractor, metrics, inception_weights, progress):
    """The FeatureExtractor `evaluate` scores with, its progress bar set: `extractor` itself, or one
    over it (a .keras file or a model); without one, InceptionV3 when kid or fid is asked for, else None."""
    from .loading import load_keras_file
    from .metrics import FeatureExtractor, inception_extractor

    features = extractor
    if isinstance(extractor, str):
        features = FeatureExtractor(load_keras_file(extractor))
    elif extractor is not None and not isinstance(extractor, FeatureExtractor):
        features = FeatureExtractor(extractor)
    elif extractor is None and {"kid", "fid"} & set(metrics):
        features = inception_extractor(inception_weights)  # before any work: a missing file is a clear error
    if features is not None:
        features.progress = progress
    return features
