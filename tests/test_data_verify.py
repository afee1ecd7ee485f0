"""Damaged datasets: sizes checked when a dataset is opened, verify_dataset reading every file, and
a DataLossError met while reading turned into a line that names the shard."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import ROOT
from keras_anime_gan.data import DatasetError, convert_folder, explain_data_loss, load_dataset, verify_dataset


@pytest.fixture
def converted(faces_dir, tmp_path):
    convert_folder(str(faces_dir), str(tmp_path / "raw"), 32, shard_size=16, progress=False)
    return tmp_path / "raw"


SHARD = "shard-00001-of-00003.tfrecords"


def flip_a_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_good_dataset_verifies(converted, capsys):
    report = verify_dataset(str(converted))
    assert report["ok"] and report["bad"] == [] and report["kind"] == "converted"
    assert report["files_checked"] == 3 and report["num_images"] == 40
    assert report["bytes_checked"] == sum(os.path.getsize(converted / name) for name in os.listdir(converted)
                                          if name.endswith(".tfrecords"))
    assert "verify" in capsys.readouterr().err  # the progress bar


def test_a_truncated_or_missing_shard_is_named_when_the_dataset_is_opened(converted):
    shard = converted / SHARD
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size - 100])
    with pytest.raises(DatasetError) as opened:
        load_dataset(str(converted), 8)
    assert str(opened.value) == (
        f"{converted}: shard {SHARD} is {size - 100:,} bytes, dataset.json records {size:,} (truncated); "
        f"`keras-anime-gan verify {converted}` checks every file, and reconverting the images replaces the damaged "
        "ones")
    shard.unlink()
    with pytest.raises(DatasetError, match=f"shard {SHARD} is missing \\(listed in dataset.json\\)"):
        load_dataset(str(converted), 8)
    report = verify_dataset(str(converted), progress=False)
    assert not report["ok"] and report["bad"] == [{"file": SHARD, "reason": "missing (listed in dataset.json)"}]


def test_a_flipped_byte_is_named_when_reading_fails(converted):
    shard = converted / SHARD
    flip_a_byte(shard, 5000)  # inside the second record's image: same size, the data CRC fails
    dataset = load_dataset(str(converted), 8, shuffle=False)  # the size check passes
    with pytest.raises(tf.errors.DataLossError) as failed:
        for _ in dataset:
            pass
    assert SHARD not in failed.value.message  # TensorFlow's own message names no file ...
    line = explain_data_loss(str(converted), failed.value)  # ... this does
    record = shard.stat().st_size // 16  # 16 records of one size
    assert line == (f"{converted} is damaged ({SHARD}: SHA-256 differs from dataset.json: record 2 (at byte {record}) "
                    f"is corrupt: its data fails its CRC); reconvert it (keras-anime-gan convert {converted.parent / 'faces'} "
                    f"{converted} --overwrite, with the options in dataset.json) or restore the damaged files from a copy "
                    f"(TensorFlow: corrupted record at {record + 12})")
    report = verify_dataset(str(converted), progress=False)
    assert not report["ok"] and [entry["file"] for entry in report["bad"]] == [SHARD]
    assert report["num_images"] == 24  # the two intact shards


def test_stylegan_folders_are_checked_record_by_record(faces_dir, tmp_path):
    dest = tmp_path / "sg"
    convert_folder(str(faces_dir), str(dest), 32, format="stylegan", progress=False)
    os.remove(dest / "dataset.json")  # as NVIDIA's dataset_tool leaves them: no manifest
    report = verify_dataset(str(dest / "sg-r05.tfrecords"), progress=False)
    assert report["ok"] and report["kind"] == "stylegan" and report["files_checked"] == 4 and report["num_images"] == 40
    flip_a_byte(dest / "sg-r03.tfrecords", 100)
    truncated = dest / "sg-r05.tfrecords"
    size = truncated.stat().st_size // 40
    truncated.write_bytes(truncated.read_bytes()[:-10])
    report = verify_dataset(str(dest), progress=False)
    assert not report["ok"] and report["bad"] == [
        {"file": "sg-r05.tfrecords", "reason": f"record 40 (at byte {39 * size}) is truncated: the file ends inside it"},
        {"file": "sg-r03.tfrecords", "reason": "record 1 (at byte 0) is corrupt: its data fails its CRC"}]
    with pytest.raises(DatasetError, match="sg-r05.tfrecords is truncated .*keras-anime-gan verify"):
        load_dataset(str(dest), 8, resolution=32)


def test_verify_of_what_is_no_dataset_is_a_user_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        verify_dataset(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        verify_dataset(str(tmp_path / "empty"))


def test_describing_and_verifying_need_no_tensorflow(converted):
    # describe_source runs before a run's distribution strategy exists, and `verify` should start fast.
    script = ("import sys\nfrom keras_anime_gan.data import describe_source, verify_dataset\n"
              f"describe_source({str(converted)!r})\nassert verify_dataset({str(converted)!r}, progress=False)['ok']\n"
              "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
