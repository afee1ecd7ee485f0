import numpy as np
import pytest
from PIL import Image

from keras_anime_gan.data import DatasetError, convert_folder, load_dataset, synthetic_faces


@pytest.fixture
def converted(faces_dir, tmp_path):
    convert_folder(str(faces_dir), str(tmp_path / "raw"), 32, shard_size=16, progress=False)
    return tmp_path / "raw"


def collect(dataset):
    return np.concatenate([batch.numpy() for batch in dataset])


def test_batches_shape_dtype_and_range(converted):
    dataset = load_dataset(str(converted), 8, seed=0)
    batches = [batch.numpy() for batch in dataset]
    assert len(batches) == 5  # 40 images, drop_remainder
    assert all(batch.shape == (8, 32, 32, 3) and batch.dtype == np.float32 for batch in batches)
    values = np.concatenate(batches)
    assert values.min() >= -1.0 and values.max() <= 1.0 and values.min() < -0.5 and values.max() > 0.5
    kept = load_dataset(str(converted), 16, drop_remainder=False, shuffle=False)
    assert [batch.shape[0] for batch in kept] == [16, 16, 8]


def test_same_seed_same_stream_and_different_seed_differs(converted):
    first = collect(load_dataset(str(converted), 8, seed=3))
    second = collect(load_dataset(str(converted), 8, seed=3))
    other = collect(load_dataset(str(converted), 8, seed=4))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_flip_happens_about_half_the_time(converted):
    plain = collect(load_dataset(str(converted), 40, shuffle=False, flip=False))
    flipped = collect(load_dataset(str(converted), 40, shuffle=False, flip=True, seed=1))
    mirrored = np.array([np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain)])
    unchanged = np.array([np.array_equal(f, p) for f, p in zip(flipped, plain)])
    assert np.all(mirrored | unchanged)
    assert 8 <= mirrored.sum() <= 32  # Binomial(40, 0.5): outside this is < 1e-4 likely


def test_repeat_and_values_match_the_stored_pixels(converted):
    from keras_anime_gan.data import to_uint8

    dataset = load_dataset(str(converted), 8, flip=False, shuffle=False, repeat=True)
    taken = list(dataset.take(12))  # more than one pass
    assert len(taken) == 12
    pixels = to_uint8(taken[0].numpy())
    roundtrip = to_uint8(pixels.astype(np.float32) / 127.5 - 1.0)
    np.testing.assert_array_equal(pixels, roundtrip)


def test_stylegan_files_pick_the_level_for_the_resolution(faces_dir, tmp_path):
    convert_folder(str(faces_dir), str(tmp_path / "sg"), 64, format="stylegan", progress=False)
    for resolution in (64, 32, 8):
        batch = next(iter(load_dataset(str(tmp_path / "sg"), 4, resolution=resolution)))
        assert batch.shape == (4, resolution, resolution, 3)
    full = collect(load_dataset(str(tmp_path / "sg"), 40, resolution=64, shuffle=False, flip=False))
    quarter = collect(load_dataset(str(tmp_path / "sg"), 40, resolution=16, shuffle=False, flip=False))
    # r04 stores the 4x4 box means of r06 (same order in every level file)
    means = full.reshape(40, 16, 4, 16, 4, 3).mean(axis=(2, 4))
    assert np.abs(means - quarter).max() <= 1.0 / 127.5 + 1e-6


def test_plain_image_folder_with_odd_files(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    faces = synthetic_faces(6, 48, seed=2)
    for index, face in enumerate(faces):
        Image.fromarray(face).save(folder / f"{index}.png")
    Image.new("RGBA", (48, 48), (255, 0, 0, 0)).save(folder / "transparent.png")
    Image.fromarray(faces[0]).convert("L").save(folder / "grey.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    images = collect(load_dataset(str(folder), 1, resolution=32, shuffle=False, flip=False))
    assert images.shape == (8, 32, 32, 3)  # 6 faces + transparent + grey, broken dropped
    assert any(np.allclose(image, 1.0) for image in images)  # transparent -> white


def test_clear_errors_for_bad_paths(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"), 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(str(tmp_path / "empty"), 4)
    with pytest.raises(DatasetError, match="batch_size"):
        load_dataset(str(tmp_path / "empty"), 0)


def test_fit_makes_exactly_one_update_per_batch(converted):
    # With a dataset of unknown length Keras 3.15 adds one optimizer update at each epoch end;
    # load_dataset declares its length so this does not happen.
    from keras_anime_gan import create_gan

    from keras_anime_gan.data import steps_per_epoch

    dataset = load_dataset(str(converted), 8, seed=0)
    assert int(dataset.cardinality()) == 5 == steps_per_epoch(str(converted), 8)
    gan = create_gan("dcgan", 32, 16, width=8, seed=0)
    gan.compile(jit_compile=False)
    gan.fit(dataset, epochs=2, verbose=0)
    assert int(gan.g_optimizer.iterations) == 10 and int(gan.d_optimizer.iterations) == 10
