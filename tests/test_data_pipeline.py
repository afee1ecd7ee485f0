import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import SCRATCH
from keras_anime_gan.data import DatasetError, convert_folder, describe_source, load_dataset, synthetic_faces


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
    from keras_anime_gan.sampling import to_uint8

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


# ----------------------------------------------------------------------------- undecodable folders

FOLDER_SCRIPT = """
import json, sys
import tensorflow as tf
from keras_anime_gan.data import DatasetError, load_dataset

garbage, mixed = sys.argv[1], sys.argv[2]
try:  # issue 24: this hung at 150% CPU
    next(iter(load_dataset(garbage, 4, repeat=True)))
    print(json.dumps({"garbage": "no error"}), flush=True)
except DatasetError as error:
    print(json.dumps({"garbage": str(error)}), flush=True)
try:  # the images decode but every one is skipped (smaller than min_size): an error, not an endless search
    next(iter(load_dataset(mixed, 4, resolution=32, repeat=True, min_size=1000)))
    print(json.dumps({"none_kept": "no error"}), flush=True)
except tf.errors.InvalidArgumentError as error:
    print(json.dumps({"none_kept": error.message}), flush=True)
batches = list(load_dataset(mixed, 4, resolution=32, repeat=True, seed=0).take(12))  # three passes
print(json.dumps({"batches": [list(batch.shape) for batch in batches]}), flush=True)
"""


def test_a_folder_where_nothing_decodes_fails_at_once_and_one_where_some_do_trains_on(faces_dir, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    for index in range(5):
        (garbage / f"{index}.jpg").write_bytes(os.urandom(3000))
    message = ("5 image files, of which none decodes (5 not an image Pillow can identify, e.g. 0.jpg); "
               f"`keras-anime-gan verify {garbage}` lists each file's reason")
    with pytest.raises(DatasetError) as refused:
        describe_source(str(garbage))
    assert str(refused.value) == f"{garbage}: {message}"
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for index in range(16):
        shutil.copy(faces_dir / f"{index}.jpg", mixed / f"{index}.jpg")
    (mixed / "broken.jpg").write_bytes((faces_dir / "0.jpg").read_bytes()[:700])  # truncated
    (mixed / "noise.png").write_bytes(os.urandom(500))
    Image.fromarray(synthetic_faces(1, 24)[0]).save(mixed / "small.png")  # decodes, below 32 px
    source = describe_source(str(mixed))
    assert (source["num_files"], source["num_images"], source["checked"], source["resolution"]) == (19, 17, 19, 96)
    assert sorted(entry["path"] for entry in source["undecodable"]) == ["broken.jpg", "noise.png"]

    # In a fresh process with a timeout: a regression that hangs costs a minute, not the whole run.
    try:
        result = subprocess.run([sys.executable, "-c", FOLDER_SCRIPT, str(garbage), str(mixed)], cwd=SCRATCH,
                                capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError("load_dataset hung on a folder of undecodable files")
    outcome = {key: value for line in result.stdout.splitlines() for key, value in json.loads(line).items()}
    assert outcome.get("garbage") == f"{garbage}: {message}", (outcome, result.stderr[-2000:])
    assert f"{mixed}: no image in a whole pass over its 19 files (none decodes at 1000 px or more)" in outcome["none_kept"]
    assert outcome["batches"] == [[4, 32, 32, 3]] * 12  # 16 images a pass: training goes on
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: 3 of 19 files in {mixed} were skipped: 2 undecodable, 1 smaller than 32 px (not "
                        f"upscaled); `keras-anime-gan verify {mixed}` lists the undecodable ones"], result.stderr[-2000:]


# ----------------------------------------------------------------------------- upscaling


def test_a_resolution_above_the_datas_is_refused_unless_upscaling_is_allowed(converted, faces_dir, tmp_path):
    assert describe_source(str(converted))["resolution"] == 32
    with pytest.raises(DatasetError) as refused:
        load_dataset(str(converted), 8, resolution=64)
    assert str(refused.value) == (
        f"{converted} holds 32 px images and 64 px were asked for, which would upscale them (blurred training "
        "images); train at --resolution 32, reconvert from larger images, or allow upscaling (--allow-upscale)")
    upscaled = next(iter(load_dataset(str(converted), 8, resolution=64, allow_upscale=True)))
    assert upscaled.shape == (8, 64, 64, 3)  # today's behaviour, when asked for

    convert_folder(str(faces_dir), str(tmp_path / "sg"), 16, format="stylegan", progress=False)
    with pytest.raises(DatasetError, match="holds 16 px images and 32 px were asked for"):
        load_dataset(str(tmp_path / "sg"), 8, resolution=32)

    # A folder: its largest images decide (the smaller ones are skipped); resolution defaults to at most them.
    folder = tmp_path / "folder"
    folder.mkdir()
    for index, face in enumerate(synthetic_faces(8, 48, seed=1)):
        Image.fromarray(face).save(folder / f"{index}.png")
    assert describe_source(str(folder))["resolution"] == 48
    with pytest.raises(DatasetError) as refused:
        load_dataset(str(folder), 4, resolution=64)
    assert str(refused.value).startswith(f"{folder}: its largest images are 48 px (shorter side, of the 8 files "
                                         "checked) and 64 px were asked for")
    assert next(iter(load_dataset(str(folder), 4))).shape == (4, 48, 48, 3)  # not 64
    assert next(iter(load_dataset(str(folder), 4, resolution=64, allow_upscale=True))).shape == (4, 64, 64, 3)


def test_a_folder_and_larger_records_read_as_the_converter_resizes(faces_dir, tmp_path):
    """The same faces by every route: a folder read directly, and records stored at 64 px read at
    32, match the converter's own 32 px records (Lanczos) to a fraction of a level. With a different
    filter the training faces scored 1.4x the real-vs-real SWD against held-out faces read from a folder."""
    from keras_anime_gan.sampling import to_uint8

    convert_folder(str(faces_dir), str(tmp_path / "r32"), 32, progress=False)
    convert_folder(str(faces_dir), str(tmp_path / "r64"), 64, progress=False)
    converted = to_uint8(collect(load_dataset(str(tmp_path / "r32"), 40, shuffle=False, flip=False)))
    for route in (str(faces_dir), str(tmp_path / "r64")):
        read = to_uint8(collect(load_dataset(route, 40, resolution=32, shuffle=False, flip=False)))
        assert read.shape == converted.shape == (40, 32, 32, 3)
        # Orders differ between routes: pair each face with its nearest converted face.
        distance = np.abs(read[:, None].astype(np.float32) - converted[None].astype(np.float32)).mean(axis=(2, 3, 4))
        nearest = distance.min(axis=1)
        assert len(set(distance.argmin(axis=1))) == 40, route
        assert nearest.mean() < 0.6, (route, nearest.mean())
