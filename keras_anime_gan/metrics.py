"""Sample-quality metrics: FID, KID, the sliced Wasserstein distance (SWD) and a colour distance.

- `fid` / `kid` compare feature statistics of real and generated images. The features come from
  InceptionV3's 2048-d pool layer (bilinear resize to 299, Inception preprocessing), loaded only
  from the standard Keras weights file on disk (never downloaded, never random), or from any Keras
  model you pass as `extractor` (a classifier trained on anime faces, a discriminator's features).
- `swd` needs no weights: NVIDIA's progressive-GAN metric over a Laplacian pyramid of 7x7 patches.
  It normalises each set's patches by that set's own per-channel mean and std, so it is blind to
  colour, brightness and contrast changes that do not clip; `color_distance` ("color") covers them.
- `noise_floor` gives each metric between two disjoint real sets of the same size: what a generator
  indistinguishable from the data would score with that many images, to report beside the value.
Results use stylegan2-ada-style names (`swd1k`, `kid256`, `fid10k`) and are appended as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings

import numpy as np
import scipy.linalg

from .errors import UserError

METRICS = ("swd", "color", "kid", "fid")
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{INCEPTION_FILE}"


class MissingWeightsError(UserError):
    pass


# ----------------------------------------------------------------------------- Fréchet / KID


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.

    A singular product gets `eps` added to both diagonals; the tiny imaginary parts that sqrtm
    returns from rounding are dropped, large ones are an error."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary component {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def polynomial_mmd(features_a, features_b) -> float:
    """Unbiased MMD^2 with the cubic kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al.)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    d = a.shape[1]
    k_aa, k_bb, k_ab = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
    m, n = len(a), len(b)
    return float(
        (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1)) - 2 * k_ab.mean()
    )


def kid_subset_size(num_real, num_fake, max_size=1000) -> int:
    """Default KID subset size: half the smaller set, at most `max_size` (and at least 2).

    Subsets must be smaller than the sets: subsets that are the whole set all give the same MMD,
    so the reported std would be 0 whatever the noise (Binkowski et al. draw subsets of 1000 from
    far larger sets)."""
    return max(2, min(max_size, min(num_real, num_fake) // 2))


def kernel_inception_distance(features_real, features_fake, num_subsets=100, subset_size=None, seed=0):
    """(mean, std) of polynomial_mmd over `num_subsets` random subsets of both feature sets, each
    drawn without replacement. `subset_size` defaults to `kid_subset_size` (half the smaller set, at
    most 1000) and is capped at the smaller set; a subset as large as the set gives a std of 0."""
    features_real, features_fake = np.asarray(features_real), np.asarray(features_fake)
    if min(len(features_real), len(features_fake)) < 2:
        raise UserError("KID needs at least 2 images on each side")
    if subset_size is None:
        subset_size = kid_subset_size(len(features_real), len(features_fake))
    size = min(subset_size, len(features_real), len(features_fake))
    if size < 2:
        raise UserError(f"KID subsets need at least 2 images, got subset_size={subset_size}")
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd(features_real[rng.choice(len(features_real), size, replace=False)],
                       features_fake[rng.choice(len(features_fake), size, replace=False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# ----------------------------------------------------------------------------- extractors


class FeatureExtractor:
    """Any Keras model as a feature extractor: uint8 images -> (N, D) float64 features.

    Images are resized (bilinear) to the model's input size when it has one and scaled to
    [-1, 1] (Inception preprocessing) unless `preprocess` says otherwise."""

    def __init__(self, model, preprocess=None, batch_size=64, name=None, progress=False):
        self.model, self.batch_size, self.progress = model, batch_size, progress
        self.preprocess = preprocess or (lambda images: images / 127.5 - 1.0)
        self.name = name or model.name
        shape = model.input_shape
        self.size = tuple(shape[1:3]) if None not in shape[1:3] else None

    def __call__(self, images) -> np.ndarray:
        import tensorflow as tf
        from tqdm.auto import tqdm

        outputs = []
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc=f"{self.name} features", unit="batch", disable=not self.progress, leave=False):
            batch = tf.convert_to_tensor(np.asarray(images[start : start + self.batch_size]), tf.float32)
            if self.size is not None and tuple(batch.shape[1:3]) != self.size:
                batch = tf.image.resize(batch, self.size, method="bilinear")
            features = self.model(self.preprocess(batch), training=False)
            outputs.append(np.asarray(features, np.float64).reshape(len(batch), -1))
        return np.concatenate(outputs)


def inception_weights_path(path=None) -> str:
    """The InceptionV3 no-top weights file: `path`, or the standard file in the Keras cache."""
    candidates = [path] if path else [
        os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models", INCEPTION_FILE),
        os.path.join("/tmp/.keras/models", INCEPTION_FILE),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    raise MissingWeightsError(
        f"InceptionV3 weights not found ({', '.join(str(c) for c in candidates)}). FID/KID need the standard Keras file "
        f"{INCEPTION_FILE}: download it from {INCEPTION_URL} into ~/.keras/models/ (or pass --inception-weights PATH). "
        "Nothing is downloaded automatically, and a metric called FID is never computed with random weights; "
        "SWD needs no weights."
    )


def inception_extractor(weights_path=None, batch_size=64) -> FeatureExtractor:
    import keras

    weights = inception_weights_path(weights_path)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    model.load_weights(weights)
    return FeatureExtractor(model, batch_size=batch_size, name="inception_v3")


def fid(real, fake, extractor=None, weights_path=None) -> float:
    """FID between two uint8 image sets (N, H, W, 3), with InceptionV3 unless `extractor` is given."""
    extractor = extractor or inception_extractor(weights_path)
    return frechet_distance(*feature_statistics(extractor(real)), *feature_statistics(extractor(fake)))


def kid(real, fake, extractor=None, weights_path=None, num_subsets=100, subset_size=None, seed=0):
    """(KID, its std over subsets) between two uint8 image sets; subsets as in `kernel_inception_distance`."""
    extractor = extractor or inception_extractor(weights_path)
    return kernel_inception_distance(extractor(real), extractor(fake), num_subsets, subset_size, seed)


# ----------------------------------------------------------------------------- SWD

_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float32) / 16.0  # NVIDIA's 5x5 Gaussian is its outer product


def _blur(images, factor=1.0):
    """5x5 Gaussian (times `factor`) per channel, reflect-padded. images: (N, C, H, W) float32.

    The kernel is separable, so two 1-D passes give the 2-D convolution at a fraction of its cost."""
    import scipy.ndimage

    kernel = _BINOMIAL * np.float32(np.sqrt(factor))
    rows = scipy.ndimage.correlate1d(images, kernel, axis=2, mode="mirror")
    return scipy.ndimage.correlate1d(rows, kernel, axis=3, mode="mirror")


def laplacian_pyramid(images, levels):
    """NVIDIA's pyramid: each level minus the upsampled next-coarser one; the coarsest kept as is."""
    pyramid = [images]
    for _ in range(1, levels):
        pyramid.append(_blur(pyramid[-1])[:, :, ::2, ::2])
    for index in range(levels - 1):
        up = np.zeros_like(pyramid[index])
        up[:, :, ::2, ::2] = pyramid[index + 1]
        pyramid[index] = pyramid[index] - _blur(up, 4.0)
    return pyramid


PATCH_SIZE = 7


def _descriptors(level, per_image, rng, size=PATCH_SIZE):
    n, c, h, w = level.shape
    ys = rng.integers(0, h - size + 1, (n, per_image))
    xs = rng.integers(0, w - size + 1, (n, per_image))
    windows = np.lib.stride_tricks.sliding_window_view(level, (size, size), axis=(2, 3))  # (n, c, y, x, 7, 7)
    patches = np.array(windows[np.arange(n)[:, None], :, ys, xs], np.float32).reshape(n * per_image, c, size, size)
    patches -= patches.mean(axis=(0, 2, 3), keepdims=True)  # per-channel normalisation, per set
    patches /= patches.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return patches.reshape(len(patches), -1)


def sliced_wasserstein(a, b, repeats=4, directions=128, rng=None):
    rng = rng or np.random.default_rng(0)
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions)).astype(np.float32)
        dirs /= np.sqrt(np.sum(dirs**2, axis=0, keepdims=True))
        # One row per direction: sorting contiguous rows is faster than sorting columns.
        projected_a, projected_b = np.sort(dirs.T @ a.T, axis=1), np.sort(dirs.T @ b.T, axis=1)
        results.append(np.abs(projected_a - projected_b).mean())
    return float(np.mean(results))


def swd(real, fake, patches_per_image=64, min_resolution=16, seed=0) -> dict[str, float]:
    """Sliced Wasserstein distance x 1e3 per pyramid level ({"swd_64": ..., "swd_32": ..., "swd_16": ...})
    and their average ("swd"), as in NVIDIA's progressive GAN. Both sets: uint8 (N, H, W, 3), same size.
    The same seed picks the same patches, so a set against itself gives 0.

    As in NVIDIA's code, each set's patches are normalised by that set's own per-channel mean and
    std, so SWD compares textures and detail but not colour: a brightness, contrast or per-channel
    colour change x -> a_c x + b_c (a_c > 0) leaves it unchanged, up to rounding, unless pixels clip.
    Use "color" for those."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"image sizes differ: {real.shape[1:]} vs {fake.shape[1:]}")
    count = min(len(real), len(fake))
    resolution = real.shape[1]
    if resolution < PATCH_SIZE:
        raise UserError(f"SWD compares {PATCH_SIZE}x{PATCH_SIZE} patches: it needs images of at least {PATCH_SIZE} px, "
                        f"got {resolution} px (use --metrics color, kid or fid)")
    levels = 1 + int(np.log2(resolution // min_resolution)) if resolution >= 2 * min_resolution else 1
    result = {}
    pyramids = [laplacian_pyramid(images[:count].transpose(0, 3, 1, 2).astype(np.float32), levels) for images in (real, fake)]
    for level in range(levels):
        rng_real, rng_fake = np.random.default_rng(seed + level), np.random.default_rng(seed + level)
        descriptors_real = _descriptors(pyramids[0][level], patches_per_image, rng_real)
        descriptors_fake = _descriptors(pyramids[1][level], patches_per_image, rng_fake)
        distance = sliced_wasserstein(descriptors_real, descriptors_fake, rng=np.random.default_rng(seed + 100 + level))
        result[f"swd_{resolution >> level}"] = distance * 1e3
    result["swd"] = float(np.mean(list(result.values())))
    return result


# ----------------------------------------------------------------------------- colour statistics


def color_histograms(images) -> np.ndarray:
    """(3, 256) per-channel histograms (pixel counts) of a set (N, H, W, 3) of uint8 pixels or
    [-1, 1] floats (`sampling.as_uint8_images`)."""
    from .sampling import as_uint8_images

    pixels = as_uint8_images(images, "color_distance images").reshape(-1, 3)
    return np.stack([np.bincount(pixels[:, channel], minlength=256) for channel in range(3)]).astype(np.float64)


def color_distance(real, fake) -> dict[str, float]:
    """Distance between the colour statistics of two image sets, in grey levels (0..255 units).

    With mu_c, sigma_c the mean and std of channel c over all pixels of a set, and F_c its
    cumulative histogram (fraction of pixels <= v, v = 0..255):

        color_moments = sqrt(mean_c[(mu_real,c - mu_fake,c)^2 + (sigma_real,c - sigma_fake,c)^2])
        color_hist    = mean_c sum_v |F_real,c(v) - F_fake,c(v)|
        color         = (color_moments + color_hist) / 2

    color_moments is the RMS over channels of the 2-Wasserstein distance between per-channel
    Gaussian fits; color_hist is the mean over channels of the earth mover's distance between the
    per-channel histograms. Both are 0 for a set against itself, symmetric, and equal d for a shift
    of every pixel by d grey levels (so color = d too); they grow with a colour shift or a
    brightness or contrast change, which SWD's per-set patch normalisation cannot see. Channels are
    compared one at a time, so a change of the colour correlations alone is not seen. Both sets may
    differ in size; the cost is a few histogram passes."""
    histograms = [color_histograms(images) for images in (real, fake)]
    levels = np.arange(256, dtype=np.float64)
    moments, cdfs = [], []
    for histogram in histograms:
        weights = histogram / histogram.sum(axis=1, keepdims=True)
        mean = weights @ levels
        std = np.sqrt((weights * (levels - mean[:, None]) ** 2).sum(axis=1))
        moments.append((mean, std))
        cdfs.append(np.cumsum(weights, axis=1))
    (mean_a, std_a), (mean_b, std_b) = moments
    color_moments = float(np.sqrt(np.mean((mean_a - mean_b) ** 2 + (std_a - std_b) ** 2)))
    color_hist = float(np.abs(cdfs[0] - cdfs[1])[:, :-1].sum(axis=1).mean())
    return {"color": (color_moments + color_hist) / 2, "color_moments": color_moments, "color_hist": color_hist}


# ----------------------------------------------------------------------------- named results


def metric_name(metric: str, num_images: int) -> str:
    """stylegan2-ada style: swd + 1000 images -> 'swd1k', kid + 256 -> 'kid256'."""
    count = f"{num_images // 1000}k" if num_images % 1000 == 0 else str(num_images)
    return f"{metric}{count}"


def compute_metrics(real, fake, metrics=("swd",), extractor=None, inception_weights=None) -> dict:
    """The requested metrics between two uint8 sets, as a flat dict of floats: "swd" (swd, swd_64, ...),
    "color" (color, color_moments, color_hist), "kid" (kid, kid_std), "fid" (fid)."""
    results = {}
    needs_features = [metric for metric in metrics if metric in ("fid", "kid")]
    features = None
    if needs_features:
        extractor = extractor or inception_extractor(inception_weights)
        features = (extractor(real), extractor(fake))
    for metric in metrics:
        if metric == "swd":
            results.update(swd(real, fake))
        elif metric == "color":
            results.update(color_distance(real, fake))
        elif metric == "fid":
            results["fid"] = frechet_distance(*feature_statistics(features[0]), *feature_statistics(features[1]))
        elif metric == "kid":
            results["kid"], results["kid_std"] = kernel_inception_distance(*features, num_subsets=50)
        else:
            raise UserError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return results


def noise_floor(real_a, real_b, metrics=("swd",), extractor=None, inception_weights=None) -> dict:
    """The requested metrics between two disjoint real sets of the same size, every key suffixed
    "_floor" ("swd_floor", "swd_64_floor", "color_floor", "kid_floor", "kid_std_floor", "fid_floor").

    That is what a generator indistinguishable from the data scores with that many images: SWD and
    FID are biased upwards at small sample sizes, so a value means little without its floor. Use as
    many images per set as for the value itself; the floor shrinks as the sets grow."""
    real_a, real_b = np.asarray(real_a), np.asarray(real_b)
    if len(real_a) != len(real_b):
        raise UserError(f"the noise floor needs two real sets of the same size, got {len(real_a)} and {len(real_b)}")
    digests_a = {_image_digest(image) for image in real_a}
    shared = len(digests_a & {_image_digest(image) for image in real_b})
    if digests_a and shared == len(digests_a):
        raise UserError("the two real sets hold the same images: the noise floor needs two disjoint sets")
    if shared:
        # A dataset may hold duplicate images; a few barely move the floor, many would lower it.
        warnings.warn(f"{shared} of {len(real_a)} images appear in both real sets; the floor is lowered", stacklevel=2)
    results = compute_metrics(real_a, real_b, metrics, extractor, inception_weights)
    return {f"{key}_floor": value for key, value in results.items()}


real_noise_floor = noise_floor


def _image_digest(image) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def append_jsonl(path, record) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps({**record, "timestamp": time.time()}) + "\n")
