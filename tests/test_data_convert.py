import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import SCRATCH, run_cli, small_tmpfs
from keras_anime_gan.data import ConversionError, ConversionFailed, convert_folder, synthetic_faces


def read_records(path):
    import tensorflow as tf

    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def raw_images(dest):
    """Every image of a raw conversion, parsed here with our documented feature spec."""
    import tensorflow as tf

    manifest = json.loads((dest / "dataset.json").read_text())
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "shape": tf.io.FixedLenFeature([3], tf.int64)}
    images = []
    for shard in manifest["shards"]:
        for record in read_records(dest / shard["file"]):
            parsed = tf.io.parse_single_example(record, spec)
            shape = parsed["shape"].numpy()
            images.append(np.frombuffer(parsed["image"].numpy(), np.uint8).reshape(shape))
    return images


def digest_set(images):
    return sorted(hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images)


def pillow_reference(path, resolution=64):
    return np.asarray(Image.open(path).convert("RGB").resize((resolution, resolution), Image.Resampling.LANCZOS))


def test_raw_round_trip_is_pixel_exact_against_pillow(faces_dir, tmp_path):
    manifest = convert_folder(str(faces_dir), str(tmp_path / "out"), 64, shard_size=16, progress=False)
    assert manifest["num_images"] == 40 and manifest["skipped"] == []
    assert [shard["num_images"] for shard in manifest["shards"]] == [16, 16, 8]
    for shard in manifest["shards"]:
        data = (tmp_path / "out" / shard["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
    expected = [pillow_reference(path) for path in sorted(faces_dir.iterdir())]
    assert digest_set(raw_images(tmp_path / "out")) == digest_set(expected)


def test_png_format_decodes_to_the_same_pixels(faces_dir, tmp_path):
    import tensorflow as tf

    manifest = convert_folder(str(faces_dir), str(tmp_path / "png"), 64, format="png", progress=False)
    assert manifest["format"] == "png"
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "shape": tf.io.FixedLenFeature([3], tf.int64)}
    decoded = []
    for shard in manifest["shards"]:
        for record in read_records(tmp_path / "png" / shard["file"]):
            png = tf.io.parse_single_example(record, spec)["image"].numpy()
            assert png.startswith(b"\x89PNG")
            decoded.append(np.asarray(Image.open(io.BytesIO(png))))
    expected = [pillow_reference(path) for path in sorted(faces_dir.iterdir())]
    assert digest_set(decoded) == digest_set(expected)


def test_stylegan_format_matches_nvidia_layout_and_levels(faces_dir, tmp_path):
    import tensorflow as tf

    dest = tmp_path / "anime"
    convert_folder(str(faces_dir), str(dest), 64, format="stylegan", progress=False)
    names = sorted(name for name in os.listdir(dest) if name.endswith(".tfrecords"))
    assert names == [f"anime-r{level:02d}.tfrecords" for level in range(2, 7)]
    # NVIDIA's reader (training/dataset.py): exactly these two features, CHW uint8.
    spec = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}
    levels = {}
    for level in range(2, 7):
        images = []
        for record in read_records(dest / f"anime-r{level:02d}.tfrecords"):
            parsed = tf.io.parse_single_example(record, spec)
            shape = parsed["shape"].numpy()
            assert list(shape) == [3, 2**level, 2**level]
            images.append(tf.io.decode_raw(parsed["data"], tf.uint8).numpy().reshape(shape))
        levels[level] = np.stack(images)
    assert len(levels[6]) == 40
    expected_full = [pillow_reference(path).transpose(2, 0, 1) for path in sorted(faces_dir.iterdir())]
    assert digest_set(levels[6]) == digest_set(expected_full)
    # Each level: the 2x2 mean of the unrounded level above, rounded once (dataset_tool's float chain).
    chain = levels[6].astype(np.float64)
    for level in range(5, 1, -1):
        chain = (chain[:, :, 0::2, 0::2] + chain[:, :, 0::2, 1::2] + chain[:, :, 1::2, 0::2] + chain[:, :, 1::2, 1::2]) / 4
        np.testing.assert_array_equal(levels[level], np.rint(chain).clip(0, 255).astype(np.uint8))
        above = levels[level + 1].astype(np.float64)
        two_by_two = (above[:, :, 0::2, 0::2] + above[:, :, 0::2, 1::2] + above[:, :, 1::2, 0::2] + above[:, :, 1::2, 1::2]) / 4
        assert np.abs(levels[level] - two_by_two).max() <= 1.0


def _save(image, path, **kwargs):
    image.save(path, **kwargs)
    return path.name


def make_bad_and_odd_inputs(folder, good_face):
    """Every awkward kind of input; returns (names that must convert, {name: reason keyword})."""
    folder.mkdir()
    face = Image.open(good_face).convert("RGB")
    good = [
        _save(face, folder / "plain.jpg"),
        _save(face.convert("L"), folder / "grey.png"),
        _save(face.convert("P", palette=Image.Palette.ADAPTIVE), folder / "palette.png"),
        _save(face.convert("RGBA"), folder / "rgba.png"),
        _save(face.convert("LA"), folder / "la.png"),
        _save(face.convert("CMYK"), folder / "cmyk.jpg"),
        _save(Image.fromarray((np.asarray(face.convert("L"), np.uint16) * 257)), folder / "sixteen.png"),
        _save(face.resize((150, 96)), folder / "wide.bmp"),
        _save(face, folder / "face.webp"),
        _save(face, folder / "anim.gif", save_all=True, append_images=[face.rotate(90)]),
    ]
    (folder / "nested").mkdir()
    good.append("nested/" + _save(face, folder / "nested" / "deep.jpg"))
    jpeg = (folder / "plain.jpg").read_bytes()
    bad = {}
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    bad["truncated.jpg"] = "decode"
    (folder / "corrupt.jpg").write_bytes(os.urandom(2000))
    bad["corrupt.jpg"] = "not an image"
    (folder / "empty.png").write_bytes(b"")
    bad["empty.png"] = "empty"
    (folder / "text.png").write_text("this is not a picture")
    bad["text.png"] = "not an image"
    (folder / "notes.txt").write_text("readme")
    bad["notes.txt"] = "unsupported extension"
    _save(Image.new("RGB", (300, 300), "red"), folder / "bomb.png")
    bad["bomb.png"] = "decompression-bomb"
    _save(face.resize((20, 20)), folder / "tiny.png")
    bad["tiny.png"] = "too small"
    return good, bad


def test_bad_inputs_are_skipped_with_reasons_and_good_ones_kept(shared_faces_dir, tmp_path):
    good, bad = make_bad_and_odd_inputs(tmp_path / "mixed", shared_faces_dir / "0.jpg")
    manifest = convert_folder(
        str(tmp_path / "mixed"), str(tmp_path / "out"), 64, max_pixels=50_000, progress=False, workers=2
    )
    reasons = {entry["path"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(reasons) == set(bad), reasons
    for name, keyword in bad.items():
        assert keyword in reasons[name], (name, reasons[name])
    assert manifest["num_images"] == len(good)
    images = raw_images(tmp_path / "out")
    assert len(images) == len(good)
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in images)


def test_colour_conversions(tmp_path):
    from keras_anime_gan.data import load_image

    transparent = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    half = Image.new("RGBA", (64, 64), (0, 0, 0, 128))
    sixteen = Image.fromarray(np.full((64, 64), 65535, np.uint16))
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    paths = {}
    for name, image in {"transparent.png": transparent, "half.png": half, "sixteen.png": sixteen, "cmyk.jpg": cmyk}.items():
        image.save(tmp_path / name, **({"quality": 100} if name.endswith(".jpg") else {}))
        paths[name] = tmp_path / name
    white = load_image(str(paths["transparent.png"]), 64)[0]
    assert (white == 255).all()  # alpha composited on white, not on black
    grey = load_image(str(paths["half.png"]), 64)[0]
    assert 120 <= grey.mean() <= 135
    assert (load_image(str(paths["sixteen.png"]), 64)[0] == 255).all()  # 16-bit full scale -> 255
    red = load_image(str(paths["cmyk.jpg"]), 64)[0].reshape(-1, 3).mean(0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


@pytest.mark.parametrize(
    "transform, expected_left, expected_right",
    [("center-crop", (0, 0, 255), (0, 0, 255)), ("pad", (255, 255, 255), (255, 255, 255)), ("stretch", (255, 0, 0), (0, 255, 0))],
)
def test_transforms_for_non_square_images(tmp_path, transform, expected_left, expected_right):
    from keras_anime_gan.data import load_image

    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, :100] = (255, 0, 0)
    wide[:, 100:200] = (0, 0, 255)
    wide[:, 200:] = (0, 255, 0)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    image = load_image(str(tmp_path / "wide.png"), 32, transform=transform, resize_filter="box")[0]
    # crop keeps the blue middle; pad adds white bands top and bottom; stretch keeps all three colours
    assert tuple(image[0 if transform == "pad" else 16, 1]) == expected_left
    assert tuple(image[0 if transform == "pad" else 16, 30]) == expected_right


def test_small_images_are_skipped_not_upscaled_unless_allowed(tmp_path):
    source = tmp_path / "small"
    source.mkdir()
    Image.fromarray(synthetic_faces(1, 32)[0]).save(source / "a.png")
    Image.fromarray(synthetic_faces(1, 96)[0]).save(source / "b.png")
    manifest = convert_folder(str(source), str(tmp_path / "out"), 64, progress=False)
    assert manifest["num_images"] == 1
    assert manifest["skipped"][0]["path"] == "a.png" and "too small" in manifest["skipped"][0]["reason"]
    allowed = convert_folder(str(source), str(tmp_path / "out2"), 64, min_size=16, progress=False)
    assert allowed["num_images"] == 2


def test_dedupe_zip_input_and_deterministic_shuffle(faces_dir, tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(faces_dir.iterdir()):
            handle.write(path, f"faces/{path.name}")
        handle.write(faces_dir / "3.jpg", "faces/copy-of-3.jpg")
    first = convert_folder(str(archive), str(tmp_path / "a"), 32, dedupe=True, seed=7, progress=False)
    assert first["num_images"] == 40
    assert [entry["path"] for entry in first["skipped"] if "duplicate" in entry["reason"]] in (
        ["faces/copy-of-3.jpg"], ["faces/3.jpg"]
    )
    again = convert_folder(str(archive), str(tmp_path / "b"), 32, dedupe=True, seed=7, progress=False)
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in first["shards"]]
    other = convert_folder(str(archive), str(tmp_path / "c"), 32, dedupe=True, seed=8, progress=False)
    assert [s["sha256"] for s in other["shards"]] != [s["sha256"] for s in first["shards"]]
    assert digest_set(raw_images(tmp_path / "c")) == digest_set(raw_images(tmp_path / "a"))


@pytest.mark.parametrize("format", ["raw", "stylegan"])
def test_worker_processes_write_the_same_files_as_one_process(shared_faces_dir, tmp_path, capsys, format):
    """84 files in worker processes: shards are assembled from several workers' parts, later
    copies are dropped, and every file is byte-identical to a conversion in this process."""
    from keras_anime_gan.data.convert_workers import _chunk_size, _pool_context

    source = tmp_path / "src"
    source.mkdir()
    for index in range(80):
        shutil.copy(shared_faces_dir / f"{index}.jpg", source / f"{index:03d}.jpg")
    for index in range(4):
        shutil.copy(source / f"{index:03d}.jpg", source / f"copy-{index}.jpg")
    options = dict(format=format, shard_size=50, dedupe=True, seed=3)
    assert _pool_context() is not None and _chunk_size(50, 84, 2) == 32  # 2-3 parts a shard
    pool, one = tmp_path / "pool" / "out", tmp_path / "one" / "out"  # StyleGAN files are named after the folder
    pooled = convert_folder(str(source), str(pool), 32, workers=2, progress=True, **options)
    bar = capsys.readouterr().err
    single = convert_folder(str(source), str(one), 32, workers=1, progress=False, **options)
    assert pooled["num_images"] == single["num_images"] == 80
    assert [s["sha256"] for s in pooled["shards"]] == [s["sha256"] for s in single["shards"]]
    for shard in pooled["shards"]:
        assert hashlib.sha256((pool / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
    duplicates = [entry["path"] for entry in pooled["skipped"] if "duplicate" in entry["reason"]]
    assert len(duplicates) == 4 and pooled["skipped"] == single["skipped"]
    assert "84/84" in bar
    assert sorted(os.listdir(pool)) == sorted(os.listdir(one))  # no parts or other leftovers


def test_user_errors(faces_dir, tmp_path):
    with pytest.raises(ConversionError, match="does not exist"):
        convert_folder(str(tmp_path / "missing"), str(tmp_path / "o"), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no images"):
        convert_folder(str(tmp_path / "empty"), str(tmp_path / "o"), progress=False)
    with pytest.raises(ConversionError, match="resolution"):
        convert_folder(str(faces_dir), str(tmp_path / "o"), 4, progress=False)
    with pytest.raises(ConversionError, match="power-of-two"):
        convert_folder(str(faces_dir), str(tmp_path / "o"), 48, format="stylegan", progress=False)
    with pytest.raises(ConversionError, match="shard-size"):
        convert_folder(str(faces_dir), str(tmp_path / "o"), shard_size=0, progress=False)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(ConversionError, match="no image could be converted"):
        convert_folder(str(only_bad), str(tmp_path / "o2"), progress=False)

    convert_folder(str(faces_dir), str(tmp_path / "done"), 32, progress=False)
    with pytest.raises(ConversionError, match="not empty"):
        convert_folder(str(faces_dir), str(tmp_path / "done"), 32, progress=False)
    (tmp_path / "done" / "keep-me.txt").write_text("user data")
    convert_folder(str(faces_dir), str(tmp_path / "done"), 32, overwrite=True, progress=False)
    assert (tmp_path / "done" / "keep-me.txt").read_text() == "user data"  # never deletes what is not ours


def test_a_lock_file_left_by_a_killed_converter_is_not_content(faces_dir, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / ".lock").write_text('{"pid": 999999, "command": "keras-anime-gan convert", "started": 0}')  # after a kill -9
    manifest = convert_folder(str(faces_dir), str(dest), 32, progress=False)  # not "DEST is not empty"
    assert sorted(os.listdir(dest)) == ["dataset.json", "shard-00000-of-00001.tfrecords"]  # nor in the manifest
    assert [shard["file"] for shard in manifest["shards"]] == ["shard-00000-of-00001.tfrecords"]


def test_cli_convert_exit_codes_and_messages(faces_dir, tmp_path):
    result = run_cli("convert", faces_dir, tmp_path / "out", "--resolution", 32, "--quiet")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["num_images"] == 40 and summary["files"] == 1
    again = run_cli("convert", faces_dir, tmp_path / "out", "--resolution", 32, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr and "--overwrite" in again.stderr
    missing = run_cli("convert", tmp_path / "nope", tmp_path / "x", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_option = run_cli("convert", faces_dir, tmp_path / "y", "--format", "jpeg2000", check=False)
    assert bad_option.returncode == 2 and "invalid choice" in bad_option.stderr


@pytest.fixture(scope="module")
def synthetic_pngs(tmp_path_factory):
    """600 synthetic faces as PNG files, shared by the interruption tests."""
    folder = tmp_path_factory.mktemp("synthetic") / "src"
    folder.mkdir()
    for index, image in enumerate(synthetic_faces(600, 96, seed=3)):
        Image.fromarray(image).save(folder / f"{index:04d}.png", compress_level=9)
    return folder


def _convert_command(source, dest, workers):
    return [sys.executable, "-m", "keras_anime_gan", "convert", str(source), str(dest),
            "--shard-size", "50", "--workers", str(workers), "--format", "png", "--quiet"]


def _children(pid):
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as file:
                if int(file.read().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone
    return sorted(children)


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_the_converting_process():
    script = (
        "import os, time\n"
        "from keras_anime_gan.data.convert_workers import _die_with_parent\n"
        "parent = os.getpid()\n"
        "if os.fork() == 0:\n"
        "    _die_with_parent(parent)\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=SCRATCH, stdout=subprocess.PIPE, text=True)
    worker = int(process.stdout.readline())
    assert _running(worker)
    process.kill()
    process.wait()
    deadline = time.time() + 5
    while _running(worker):
        if time.time() > deadline:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the worker outlived the process that started it")
        time.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_conversion_leaves_nothing_readable_and_resumes(synthetic_pngs, tmp_path, workers):
    from keras_anime_gan.data import DatasetError, load_dataset

    source, dest = synthetic_pngs, tmp_path / "out"
    command = _convert_command(source, dest, workers)
    process = subprocess.Popen(command, cwd=SCRATCH, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (dest / ".progress" / "00000.json").exists():
        assert process.poll() is None, "conversion ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    pool = _children(process.pid) if sys.platform.startswith("linux") else []
    assert len(pool) == (workers if workers > 1 else 0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 5
    while any(map(_running, pool)):  # workers die with the converting process
        assert time.time() < deadline, [pid for pid in pool if _running(pid)]
        time.sleep(0.02)
    assert not (dest / "dataset.json").exists()
    finished = sorted(name for name in os.listdir(dest) if name.endswith(".tfrecords"))
    assert 1 <= len(finished) < 12
    for name in finished:  # every file under a final name is complete and uncorrupted
        assert len(read_records(dest / name)) == 50
    with pytest.raises(DatasetError, match="unfinished conversion"):
        load_dataset(str(dest), 8)
    assert (dest / ".lock").exists()  # the killed converter's lock file stays, but the lock died with it:

    subprocess.run(command, cwd=SCRATCH, check=True, capture_output=True)  # the same command resumes
    manifest = json.loads((dest / "dataset.json").read_text())
    assert manifest["num_images"] == 600 and len(manifest["shards"]) == 12
    assert not [name for name in os.listdir(dest) if name.endswith(".tmp") or name.startswith(".")]
    reference = convert_folder(str(source), str(tmp_path / "ref"), 64, shard_size=50, format="png", progress=False)
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in reference["shards"]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_a_worker_killed_mid_run_gives_a_clear_error_not_a_hang(synthetic_pngs, tmp_path):
    dest = tmp_path / "out"
    command = _convert_command(synthetic_pngs, dest, 2)
    process = subprocess.Popen(command, cwd=SCRATCH, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (dest.is_dir() and any(".part" in name for name in os.listdir(dest))):  # workers are busy
        assert process.poll() is None and time.time() < deadline, "conversion ended before a worker was killed"
        time.sleep(0.01)
    os.kill(_children(process.pid)[0], signal.SIGKILL)  # as the OOM killer would
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the conversion hung after losing a worker")
    assert process.returncode == 2 and "worker process died" in stderr, stderr
    assert not (dest / "dataset.json").exists()
    subprocess.run(command, cwd=SCRATCH, check=True, capture_output=True)
    manifest = json.loads((dest / "dataset.json").read_text())
    assert manifest["num_images"] == 600
    assert not [name for name in os.listdir(dest) if name.endswith(".tmp") or name.startswith(".")]


def _shard_checksums_match(dest):
    manifest = json.loads((dest / "dataset.json").read_text())
    for shard in manifest["shards"]:
        data = (dest / shard["file"]).read_bytes()
        assert len(data) == shard["bytes"] and hashlib.sha256(data).hexdigest() == shard["sha256"], shard["file"]
    return manifest


def test_a_second_conversion_into_the_same_destination_is_refused_at_once(synthetic_pngs, tmp_path):
    dest = tmp_path / "out"
    first = subprocess.Popen(_convert_command(synthetic_pngs, dest, 1), cwd=SCRATCH, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (dest / ".convert-state.json").exists():  # written under the lock
        assert first.poll() is None and time.time() < deadline, "the first conversion ended too soon"
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # it keeps the lock for as long as this test needs, whatever the machine
    try:
        before = sorted(os.listdir(dest))
        for extra in ([], ["--overwrite"]):  # --overwrite would delete the first one's shards
            started = time.time()
            second = run_cli(*_convert_command(synthetic_pngs, dest, 1)[3:], *extra, check=False, timeout=60)
            assert second.returncode == 2 and time.time() - started < 20, second.stderr
            [line] = second.stderr.strip().splitlines()
            assert line.startswith(f"error: destination {dest} is in use by process {first.pid} (python -m "
                                   f"keras_anime_gan convert {synthetic_pngs} {dest} --shard-size 50"), line
            assert line.endswith("; wait for it to finish or choose another destination"), line
            assert sorted(os.listdir(dest)) == before  # it touched nothing
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert _shard_checksums_match(dest)["num_images"] == 600
    assert ".lock" not in os.listdir(dest)  # released and removed


class _SmallDisk:
    """A file object whose disk fills up after `budget` bytes, as a write to a full disk fails."""

    def __init__(self, file, disk):
        self._file, self._disk = file, disk

    def write(self, data):
        if len(data) > self._disk["left"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk["left"] -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


def test_a_full_disk_stops_with_one_line_keeps_the_finished_shards_and_resumes(faces_dir, tmp_path, monkeypatch):
    from keras_anime_gan.data.tfrecord import TFRecordFile

    options = dict(shard_size=8, workers=1, progress=False)  # in this process, where the patch applies
    reference = convert_folder(str(faces_dir), str(tmp_path / "reference"), 32, **options)
    disk = {"left": int(reference["shards"][0]["bytes"] * 2.5)}  # room for two and a half shards
    real_init = TFRecordFile.__init__

    def on_a_small_disk(self, path, durable=True):
        real_init(self, path, durable)
        self._file = _SmallDisk(self._file, disk)

    monkeypatch.setattr(TFRecordFile, "__init__", on_a_small_disk)
    dest = tmp_path / "out"
    with pytest.raises(ConversionFailed) as failed:  # a ConversionError, exit status 1
        convert_folder(str(faces_dir), str(dest), 32, **options)
    assert str(failed.value) == (f"disk full while writing shard-00002-of-00005.tfrecords in {dest}: 2 of 5 shards "
                                 "are complete; free space and rerun the same command to resume")
    # The finished shards and the resume state stay; the unfinished file is gone (its space freed).
    assert sorted(os.listdir(dest)) == [".convert-state.json", ".progress", "shard-00000-of-00005.tfrecords",
                                        "shard-00001-of-00005.tfrecords"]
    monkeypatch.undo()  # space freed
    resumed = convert_folder(str(faces_dir), str(dest), 32, **options)
    assert [s["sha256"] for s in resumed["shards"]] == [s["sha256"] for s in reference["shards"]]
    _shard_checksums_match(dest)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a tmpfs")
def test_a_real_full_disk_gives_one_line_and_the_same_command_resumes(synthetic_pngs, tmp_path):
    """Worker processes (--workers 2) writing onto a 600 KB tmpfs: two of the ~220 KB shards fit."""
    with small_tmpfs(tmp_path / "disk", "600k") as disk:
        dest = disk / "out"
        command = _convert_command(synthetic_pngs, dest, 2)
        full = subprocess.run(command, cwd=SCRATCH, capture_output=True, text=True, timeout=120)
        kept = sorted(name for name in os.listdir(dest) if name.endswith(".tfrecords"))
        # The file that meets the full disk is a shard or, as the workers race, a shard's progress record.
        line = re.fullmatch(rf"error: disk full while writing (shard-\d{{5}}-of-00012\.tfrecords|\.progress/\d{{5}}\.json) "
                            rf"in {re.escape(str(dest))}: (\d) of 12 shards are complete; free space and rerun the same "
                            "command to resume", full.stderr.strip())
        assert full.returncode == 1 and line, full.stderr
        assert int(line.group(2)) <= len(kept)  # a shard renamed just before its record was written counts once resumed
        assert len(kept) <= 2 and not [name for name in os.listdir(dest) if name.endswith(".tmp")]  # a shard may not be renamed yet
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)  # space freed
        resumed = subprocess.run(command, cwd=SCRATCH, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert _shard_checksums_match(dest)["num_images"] == 600


# ----------------------------------------------------------------------------- --overwrite in a hostile folder


def test_overwrite_removes_only_the_converters_regular_files(faces_dir, tmp_path):
    dest = tmp_path / "out"
    convert_folder(str(faces_dir), str(dest), 32, shard_size=16, progress=False)
    (dest / "notes.tfrecords").write_text("mine")  # a user's file with our extension
    (dest / "data.tmp").write_text("mine")  # and with our temporary extension
    (dest / "older.tfrecords").mkdir()  # a folder that ends like a shard
    (dest / "older.tfrecords" / "x").write_text("mine")
    (dest / ".progress").mkdir()
    (dest / ".progress" / "00001.json").write_text("{}")  # a record of an earlier conversion: ours
    (dest / ".progress" / "mine.txt").write_text("mine")  # not ours
    (dest / f"dataset.json.{os.getpid() + 1}.tmp").write_text("{")  # an unfinished manifest: ours
    manifest = convert_folder(str(faces_dir), str(dest), 32, shard_size=40, overwrite=True, progress=False)
    assert [shard["file"] for shard in manifest["shards"]] == ["shard-00000-of-00001.tfrecords"]
    assert sorted(os.listdir(dest)) == [".progress", "data.tmp", "dataset.json", "notes.tfrecords", "older.tfrecords",
                                        "shard-00000-of-00001.tfrecords"]
    assert sorted(os.listdir(dest / ".progress")) == ["mine.txt"] and (dest / "older.tfrecords" / "x").exists()
    assert (dest / "notes.tfrecords").read_text() == "mine" and (dest / "data.tmp").read_text() == "mine"


@pytest.mark.parametrize("plant, named", [
    (lambda dest, victim: os.symlink(victim, dest / "shard-00001-of-00003.tfrecords"),
     "shard-00001-of-00003.tfrecords"),
    (lambda dest, victim: (dest / "shard-00009-of-00010.tfrecords").mkdir(), "shard-00009-of-00010.tfrecords"),
    (lambda dest, victim: os.symlink(victim.parent, dest / ".progress"), ".progress"),
    (lambda dest, victim: os.mkfifo(dest / "dataset.json.123.tmp"), "dataset.json.123.tmp"),
])
def test_overwrite_decides_before_it_removes_and_never_follows_a_link(faces_dir, tmp_path, plant, named):
    dest = tmp_path / "out"
    convert_folder(str(faces_dir), str(dest), 32, shard_size=16, progress=False)
    victim = tmp_path / "victims" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("the user's file\n")
    if named == "shard-00001-of-00003.tfrecords":
        (dest / named).unlink()
    plant(dest, victim)
    before = sorted(os.listdir(dest))
    with pytest.raises(ConversionError) as refused:
        convert_folder(str(faces_dir), str(dest), 32, shard_size=16, overwrite=True, progress=False)
    assert str(refused.value).startswith(f"{dest / named} is ") and "move it away and rerun" in str(refused.value)
    assert sorted(os.listdir(dest)) == before  # nothing removed, the manifest included
    assert victim.read_text() == "the user's file\n" and sorted(os.listdir(victim.parent)) == ["victim.txt"]


def test_a_damaged_resume_state_or_progress_record_is_no_traceback(synthetic_pngs, tmp_path):
    dest = tmp_path / "out"
    convert_folder(str(synthetic_pngs), str(dest), 32, shard_size=100, progress=False, workers=1)
    manifest = json.loads((dest / "dataset.json").read_text())
    # an unfinished conversion whose state file is damaged: a clear refusal
    os.remove(dest / "dataset.json")
    (dest / ".convert-state.json").write_text("[" * 100_000)
    with pytest.raises(ConversionError, match="unfinished conversion of other inputs or options"):
        convert_folder(str(synthetic_pngs), str(dest), 32, shard_size=100, progress=False, workers=1)
    # a progress record pointing outside the folder, or malformed: that shard is converted again
    shutil.rmtree(dest)
    convert_folder(str(synthetic_pngs), str(dest), 32, shard_size=100, progress=False, workers=1)
    os.remove(dest / "dataset.json")
    (dest / ".progress").mkdir()
    for index in range(len(manifest["shards"])):
        (dest / ".progress" / f"{index:05d}.json").write_text(json.dumps({"file": "../../escape", "num_images": 1}))
    (dest / ".convert-state.json").write_text(json.dumps(_state_of(synthetic_pngs)))
    again = convert_folder(str(synthetic_pngs), str(dest), 32, shard_size=100, progress=False, workers=1)
    assert [shard["file"] for shard in again["shards"]] == [shard["file"] for shard in manifest["shards"]]
    assert [shard["sha256"] for shard in again["shards"]] == [shard["sha256"] for shard in manifest["shards"]]


def _state_of(source):
    """The resume state convert_folder writes for `source` with the options used above."""
    import hashlib as _hashlib
    from dataclasses import asdict

    from keras_anime_gan.data.convert_options import ConvertOptions, list_sources

    source = os.path.abspath(str(source))
    names, _ = list_sources(source)
    order = np.random.default_rng(0).permutation(len(names))
    names = [names[i] for i in order]
    options = ConvertOptions(resolution=32, format="raw", transform="center-crop", resize_filter="lanczos",
                             min_size=None, shard_size=100, seed=0, dedupe=False, max_pixels=None)
    return {"source": source, "listing_sha256": _hashlib.sha256("\n".join(names).encode()).hexdigest(),
            "options": asdict(options)}
