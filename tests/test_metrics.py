import json

import keras
import numpy as np
import pytest
import scipy.ndimage

from keras_anime_gan import metrics
from keras_anime_gan.data import synthetic_faces
from keras_anime_gan.errors import UserError
from keras_anime_gan.metrics import swd


def test_frechet_distance_matches_closed_form_and_eigenvalues():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    d1, d2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    # Diagonal covariances: |mu1-mu2|^2 + sum(s1 + s2 - 2 sqrt(s1 s2))
    expected = ((mu1 - mu2) ** 2).sum() + (d1 + d2 - 2 * np.sqrt(d1 * d2)).sum()
    assert metrics.frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-10)
    # Full covariances: Tr sqrt(S1 S2) = sum of sqrt of the (real, positive) eigenvalues of S1 S2.
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(60, 6)) * 1.5 + 0.3
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    m1, m2 = a.mean(0), b.mean(0)
    trace_sqrt = np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    direct = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert metrics.frechet_distance(m1, s1, m2, s2) == pytest.approx(direct, rel=1e-8)
    assert metrics.frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_survives_singular_covariances():
    features = np.random.default_rng(1).normal(size=(5, 20))  # 5 samples in 20-d: rank-deficient
    mu, sigma = metrics.feature_statistics(features)
    value = metrics.frechet_distance(mu, sigma, mu + 0.1, sigma)
    assert np.isfinite(value) and value == pytest.approx(20 * 0.01, abs=1e-2)


def test_kid_matches_a_direct_loop():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
    k = lambda x, y: (x @ y / 5 + 1) ** 3  # noqa: E731
    m = 12
    same_a = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    same_b = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    assert metrics.polynomial_mmd(a, b) == pytest.approx(same_a + same_b - 2 * cross, rel=1e-10)
    mean, std = metrics.kernel_inception_distance(a, b, num_subsets=10, subset_size=12)
    assert mean == pytest.approx(metrics.polynomial_mmd(a, b), rel=1e-10) and std == pytest.approx(0.0, abs=1e-12)
    far, _ = metrics.kernel_inception_distance(a, b + 2.0, num_subsets=10, subset_size=12)
    assert far > mean > 0


def test_kid_std_is_positive_at_the_training_default_of_256_images():
    # Subsets as large as the set all give the same MMD: the std must come from smaller subsets.
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(256, 8)), rng.normal(size=(256, 8)) + 0.3
    mean, std = metrics.kernel_inception_distance(a, b)
    assert std > 0.01 * mean > 0
    # Subset MMDs are unbiased too: their mean stays near the full-set value.
    assert abs(mean - metrics.polynomial_mmd(a, b)) < 3 * std
    assert metrics.kid_subset_size(256, 256) == 128 and metrics.kid_subset_size(50000, 50000) == 1000
    assert metrics.kid_subset_size(3, 256) == 2

    # compute_metrics, as MetricCallback calls it, with a tiny extractor (mean colour per 8x8 block).
    def extractor(images):
        scaled = np.asarray(images, np.float64) / 127.5 - 1
        return scaled.reshape(len(images), 8, 8, 8, 8, 3).mean(axis=(2, 4)).reshape(len(images), -1)

    faces, others = rng.integers(0, 256, (2, 256, 64, 64, 3), dtype=np.uint8)
    results = metrics.compute_metrics(faces, others, ("kid",), extractor)
    assert results["kid_std"] > 1e-6 and np.isfinite(results["kid"])  # not rounding noise (~1e-16)


def test_swd_on_small_images_is_one_level_and_below_its_patch_size_a_clear_error():
    rng = np.random.default_rng(0)
    for size in (8, 12):  # below NVIDIA's 16 px pyramid floor: one level of 7x7 patches
        a, b = (rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8) for _ in range(2))
        result = swd(a, b)
        assert sorted(result) == ["swd", f"swd_{size}"] and result["swd"] > 0 and swd(a, a)["swd"] == 0
    with pytest.raises(UserError, match="needs images of at least 7 px, got 4 px"):
        swd(*(rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8) for _ in range(2)))


def test_swd_grows_with_blur_but_is_blind_to_unclipped_colour_brightness_and_contrast():
    faces = synthetic_faces(128, 32, seed=0)
    assert metrics.swd(faces, faces) == {"swd_32": 0.0, "swd_16": 0.0, "swd": 0.0}
    floor = metrics.swd(faces, synthetic_faces(128, 32, seed=1))["swd"]  # another set of the same faces
    blurred = [metrics.swd(faces, np.clip(scipy.ndimage.gaussian_filter(faces.astype(float), (0, s, s, 0)), 0, 255)
                           .astype(np.uint8))["swd"] for s in (0.5, 1.0, 2.0)]
    assert 0 < blurred[0] < blurred[1] < blurred[2]
    # NVIDIA's per-set, per-channel patch normalisation removes any x -> gain_c * x + offset_c that does
    # not clip: brightness/contrast (0..255 -> 20..224) and a red tint are invisible to SWD.
    for gain, offset in ((0.8, 20.0), (np.array([0.85, 1.0, 0.85]), np.array([30.0, 0.0, 0.0]))):
        changed = faces * gain + offset
        assert 0 <= changed.min() and changed.max() <= 255
        assert metrics.swd(faces, changed)["swd"] < 0.01  # exactly the affine map: 0 up to float32 rounding
        rounded = metrics.swd(faces, np.rint(changed).astype(np.uint8))["swd"]  # only uint8 rounding left
        assert rounded < 0.1 * floor and rounded < 0.2 * blurred[0]
        assert metrics.color_distance(faces, np.rint(changed).astype(np.uint8))["color"] > 10  # what it is for


def load_faces(folder, indices, resolution=64):
    from PIL import Image

    return np.stack([np.asarray(Image.open(folder / f"{index}.jpg").convert("RGB")
                                .resize((resolution, resolution), Image.BILINEAR)) for index in indices])


def test_on_real_faces_swd_misses_brightness_and_contrast_that_color_sees(shared_faces_dir):
    faces, others = load_faces(shared_faces_dir, range(48)), load_faces(shared_faces_dir, range(48, 96))
    darker = np.rint(faces * 0.8 + 20).astype(np.uint8)  # lower contrast, nothing clips
    box = scipy.ndimage.uniform_filter(faces.astype(float), (0, 3, 3, 0)).round().astype(np.uint8)
    swd_floor = metrics.swd(faces, others)["swd"]
    assert metrics.swd(faces, darker)["swd"] < 0.1 * swd_floor < metrics.swd(faces, box)["swd"]
    color_floor = metrics.color_distance(faces, others)["color"]
    assert metrics.color_distance(faces, darker)["color"] > 2 * color_floor


def expected_color_distance(a, b):
    """The documented formula with plain NumPy/SciPy over the pixels themselves (no histograms)."""
    import scipy.stats

    a, b = a.reshape(-1, 3).astype(np.float64), b.reshape(-1, 3).astype(np.float64)
    moments = np.sqrt(np.mean((a.mean(0) - b.mean(0)) ** 2 + (a.std(0) - b.std(0)) ** 2))
    emd = np.mean([scipy.stats.wasserstein_distance(a[:, c], b[:, c]) for c in range(3)])
    return {"color": (moments + emd) / 2, "color_moments": moments, "color_hist": emd}


def test_color_distance_matches_an_independent_computation_and_is_symmetric():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    b = np.clip(rng.normal([150, 110, 90], [40, 60, 30], (30, 16, 16, 3)), 0, 255).astype(np.uint8)  # other size
    result = metrics.color_distance(a, b)
    for key, value in expected_color_distance(a, b).items():
        assert result[key] == pytest.approx(value, rel=1e-9)
    # Equal sizes: the 1-D earth mover's distance is the mean gap between the sorted pixel values.
    c = b[:20]
    sorted_gap = np.mean([np.abs(np.sort(a[..., k].ravel()).astype(float) - np.sort(c[..., k].ravel())).mean()
                          for k in range(3)])
    assert metrics.color_distance(a, c)["color_hist"] == pytest.approx(sorted_gap, rel=1e-9)
    assert metrics.color_distance(b, a) == pytest.approx(result, rel=1e-12)
    assert metrics.color_distance(a, a) == {"color": 0.0, "color_moments": 0.0, "color_hist": 0.0}
    # A shift of every pixel by d grey levels that does not clip: each part is exactly d.
    shifted = metrics.color_distance(a // 2, a // 2 + 7)
    assert shifted == pytest.approx({"color": 7.0, "color_moments": 7.0, "color_hist": 7.0}, rel=1e-12)


def test_color_grows_monotonically_with_colour_shift_brightness_and_contrast():
    faces = synthetic_faces(64, 32, seed=0)
    pixels = faces.astype(np.float64)
    mean = pixels.mean(axis=(0, 1, 2))
    changes = {
        "tint": [np.clip(pixels + [d, 0, -d], 0, 255) for d in (0, 5, 10, 20, 40, 80)],  # clips at the ends
        "brightness": [np.clip(pixels + d, 0, 255) for d in (0, 5, 10, 20, 40, 80)],
        "contrast": [np.clip(mean + k * (pixels - mean), 0, 255) for k in (1.0, 0.9, 0.8, 0.6, 0.4)],
    }
    for name, images in changes.items():
        values = [metrics.color_distance(faces, np.rint(x).astype(np.uint8))["color"] for x in images]
        assert values[0] == 0 and all(np.diff(values) > 0), (name, values)
    results = metrics.compute_metrics(faces, np.rint(changes["tint"][2]).astype(np.uint8), ("color", "swd"))
    assert {"color", "color_moments", "color_hist", "swd"} <= set(results) and results["color"] > 0
    assert metrics.metric_name("color", 256) == "color256" and metrics.metric_name("color", 1000) == "color1k"


def test_color_is_cheap():
    import time

    faces, others = np.random.default_rng(5).integers(0, 256, (2, 256, 64, 64, 3), dtype=np.uint8)
    start = time.perf_counter()
    metrics.color_distance(faces, others)
    assert time.perf_counter() - start < 1.0  # a few histogram passes: milliseconds, even on a busy machine


def test_missing_inception_weights_say_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(metrics.MissingWeightsError) as error:
        metrics.fid(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8))
    message = str(error.value)
    assert metrics.INCEPTION_FILE in message and metrics.INCEPTION_URL in message and "--inception-weights" in message


def test_inception_extractor_loads_a_weights_file_without_downloading(tmp_path):
    # A file in the downloaded one's legacy HDF5 layout stands in for it; loading must use it.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    path = tmp_path / metrics.INCEPTION_FILE
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    extractor = metrics.inception_extractor(str(path), batch_size=2)
    features = extractor(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    assert features.shape == (2, 2048)
    np.testing.assert_array_equal(extractor.model.get_weights()[0], model.get_weights()[0])


def small_extractor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    return metrics.FeatureExtractor(keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)))


def test_pluggable_extractor_for_fid_and_kid():
    extractor = small_extractor()
    faces, others = synthetic_faces(64, 32, seed=0), synthetic_faces(64, 32, seed=1)
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    assert metrics.fid(faces, faces, extractor) == pytest.approx(0.0, abs=1e-6)
    assert metrics.fid(faces, others, extractor) < metrics.fid(faces, noise, extractor)
    assert metrics.kid(faces, others, extractor, num_subsets=5)[0] < metrics.kid(faces, noise, extractor, num_subsets=5)[0]
    results = metrics.compute_metrics(faces, others, ("swd", "kid", "fid"), extractor)
    assert {"swd", "swd_32", "swd_16", "kid", "kid_std", "fid"} <= set(results)
    assert metrics.metric_name("fid", 50000) == "fid50k" and metrics.metric_name("kid", 256) == "kid256"


def test_metric_callback_logs_jsonl_history_and_plot(tmp_path):
    from keras_anime_gan import create_gan
    from keras_anime_gan.callbacks import MetricCallback

    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    gan.compile(jit_compile=False)
    real = synthetic_faces(32, 32, seed=2)
    callback = MetricCallback(real, ("swd", "kid"), every=1, extractor=small_extractor(),
                              jsonl_path=str(tmp_path / "metrics.jsonl"), plot_path=str(tmp_path / "metrics.png"))
    history = gan.fit(real.astype(np.float32) / 127.5 - 1, batch_size=16, epochs=2, verbose=0, callbacks=[callback]).history
    assert len(history["swd"]) == 2 and len(history["kid"]) == 2 and all(np.isfinite(history["swd"]))
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2] and lines[0]["metrics"] == ["swd32", "kid32"]
    assert (tmp_path / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_noise_floor_is_each_metric_between_two_disjoint_real_sets(shared_faces_dir):
    small, large = [[load_faces(shared_faces_dir, range(start, start + n)) for start in (1000, 1000 + n)]
                    for n in (48, 192)]
    floor = metrics.noise_floor(*small, ("swd", "color"))
    expected = metrics.compute_metrics(*small, ("swd", "color"))
    assert floor == {f"{key}_floor": value for key, value in expected.items()}
    assert {"swd_floor", "swd_64_floor", "color_floor", "color_hist_floor"} <= set(floor)
    larger = metrics.real_noise_floor(*large, ("swd", "color"))
    assert 0 < larger["swd_floor"] < floor["swd_floor"]  # SWD's small-sample bias: the floor falls with n
    assert 0 < larger["color_floor"] and 0 < floor["color_floor"]


def test_noise_floor_checks_its_sets():
    faces, others = synthetic_faces(40, 32, seed=0), synthetic_faces(40, 32, seed=1)
    some_pixels = lambda images: images.reshape(len(images), -1)[:, ::97] / 255  # noqa: E731  a tiny extractor
    kid = metrics.noise_floor(faces, others, ("kid",), extractor=some_pixels)
    assert set(kid) == {"kid_floor", "kid_std_floor"} and kid["kid_std_floor"] > 0
    with pytest.raises(metrics.UserError, match="same size"):
        metrics.noise_floor(faces, others[:30])
    with pytest.raises(metrics.UserError, match="disjoint"):
        metrics.noise_floor(faces, faces.copy())
    with pytest.warns(UserWarning, match="5 of 40 images appear in both"):
        metrics.noise_floor(faces, np.concatenate([others[:35], faces[:5]]), ("color",))
