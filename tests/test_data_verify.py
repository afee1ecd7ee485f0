"""Damaged datasets: sizes checked when a dataset is opened, verify_dataset reading every file, and
a DataLossError met while reading turned into a line that names the shard."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import SCRATCH
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
    result = subprocess.run([sys.executable, "-c", script], cwd=SCRATCH, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


# ----------------------------------------------------------------------------- dataset.json from a hostile folder


@pytest.mark.parametrize("name, reason", [
    ("../shard.tfrecords",
     "names '../shard.tfrecords', a path rather than a plain file name inside the dataset folder"),
    ("/etc/passwd", "names '/etc/passwd', a path rather than a plain file name inside the dataset folder"),
    ("sub/shard.tfrecords", "names 'sub/shard.tfrecords', a path rather than a plain file name"),
    ("..", "names '..', not a file name"),
    ("", "names '', not a file name"),
    (7, "names 7, not a file name"),
    ("x" * 300, "names a name of 300 characters, longer than a file name can be"),
])
def test_shard_names_that_leave_the_folder_are_damage_named_by_entry(converted, name, reason):
    import json

    manifest_path = converted / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][1]["file"] = name
    manifest_path.write_text(json.dumps(manifest))
    expected = f"{manifest_path} is damaged (shard entry 1 {reason}"
    with pytest.raises(DatasetError) as opened:
        load_dataset(str(converted), 8)
    assert str(opened.value).startswith(expected), str(opened.value)
    report = verify_dataset(str(converted), progress=False)
    assert not report["ok"] and report["bad"][0]["file"] == "dataset.json"
    assert report["bad"][0]["reason"].startswith(expected) and report["bytes_checked"] == 0


def test_malformed_manifest_entries_are_damage_not_a_traceback(converted):
    import json

    manifest_path = converted / "dataset.json"
    good = json.loads(manifest_path.read_text())
    for change, reason in [
        (lambda m: m["shards"].append("shard.tfrecords"), "shard entry 3 is 'shard.tfrecords', not a shard"),
        (lambda m: m["shards"].append(["x"] * 10**5), r"shard entry 3 is \['x', 'x', .*\.\.\., not a shard"),
        (lambda m: m["shards"][0].update(num_images="16"), "has num_images '16', not a count"),
        (lambda m: m["shards"][0].update(bytes=-1), "has bytes -1, not a size"),
        (lambda m: m["shards"][0].pop("sha256"), "has no sha256"),
        (lambda m: m["shards"].append(dict(m["shards"][0])), "is listed twice"),
        (lambda m: m.update(num_images=True), "num_images is True, not a count"),
        (lambda m: m.update(format="jpeg"), "format is 'jpeg', not one of raw, png, stylegan"),
    ]:
        manifest = json.loads(json.dumps(good))
        change(manifest)
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(DatasetError, match="is damaged .*" + reason.replace("(", r"\(").replace(")", r"\)")):
            load_dataset(str(converted), 8)
    manifest_path.write_text("[" * 100_000 + "]" * 100_000)  # deeper than json's recursion
    with pytest.raises(DatasetError, match="is damaged"):
        load_dataset(str(converted), 8)


def test_shards_that_link_outside_or_are_no_regular_files_are_never_read(converted, tmp_path):
    outside = tmp_path / "secret.tfrecords"
    outside.write_bytes((converted / SHARD).read_bytes())  # even a valid shard: not the dataset's
    (converted / SHARD).unlink()
    os.symlink(outside, converted / SHARD)
    with pytest.raises(DatasetError, match=f"shard {SHARD} is a symbolic link to a file outside the dataset folder"):
        load_dataset(str(converted), 8)
    report = verify_dataset(str(converted), progress=False)
    assert report["bad"] == [{"file": SHARD,
                              "reason": "a symbolic link to a file outside the dataset folder (not read)"}]
    (converted / SHARD).unlink()
    os.symlink("shard-00000-of-00003.tfrecords", converted / SHARD)  # a link inside the folder is allowed ...
    reason = verify_dataset(str(converted), progress=False)["bad"][0]["reason"]
    assert reason.startswith("SHA-256 differs")  # (it is another shard)
    (converted / SHARD).unlink()
    os.mkfifo(converted / SHARD)  # ... a FIFO would block every reader
    report = verify_dataset(str(converted), progress=False)
    assert report["bad"] == [{"file": SHARD, "reason": "not a regular file (not read)"}]
    with pytest.raises(DatasetError, match="not a regular file"):
        load_dataset(str(converted), 8)


def test_stylegan_levels_are_regular_files_inside_the_folder(faces_dir, tmp_path):
    dest = tmp_path / "sg"
    convert_folder(str(faces_dir), str(dest), 32, format="stylegan", progress=False)
    os.remove(dest / "dataset.json")
    os.mkfifo(dest / "other-r06.tfrecords")  # a FIFO level would block the count and the reader
    os.symlink(tmp_path / "elsewhere-r07.tfrecords", dest / "link-r07.tfrecords")
    (tmp_path / "elsewhere-r07.tfrecords").write_bytes(b"")
    report = verify_dataset(str(dest), progress=False)
    assert report["ok"] and report["files_checked"] == 4
