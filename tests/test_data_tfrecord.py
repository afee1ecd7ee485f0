import hashlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import SCRATCH
from keras_anime_gan.data.tfrecord import TFRecordFile, encode_example, frame_record


def tensorflow_example(features):
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(value)))

    example = tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))
    return example.SerializeToString(deterministic=True)


CASES = [
    {"image": np.arange(64 * 64 * 3, dtype=np.uint8).tobytes(), "shape": (64, 64, 3)},
    {"shape": (3, 4, 4), "data": bytes(48)},  # StyleGAN's layout, keys given out of order
    {"z": b"", "a": (0, 1, 127, 128, 300, 2**31, 2**40, -1, -(2**63), 2**63 - 1), "m": b"\x00\xff" * 200},
    {"only": ()},
]


@pytest.mark.parametrize("features", CASES)
def test_examples_are_byte_identical_to_tensorflow_deterministic_serialization(features):
    assert encode_example(features) == tensorflow_example(features)


def test_files_are_byte_identical_to_tensorflow_writer_and_read_back(tmp_path):
    records = [encode_example(features) for features in CASES] + [b"", b"x" * 70000]
    ours = tmp_path / "ours.tfrecords"
    with TFRecordFile(str(ours)) as file:
        for record in records[:3]:
            file.write(record)
        for record in records[3:]:
            file.write_framed(frame_record(record))
    checksum = file.close()
    reference = tmp_path / "tf.tfrecords"
    with tf.io.TFRecordWriter(str(reference)) as writer:
        for record in records:
            writer.write(record)
    assert ours.read_bytes() == reference.read_bytes()
    assert checksum == hashlib.sha256(ours.read_bytes()).hexdigest()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == records


def test_a_corrupted_record_fails_tensorflow_crc_check(tmp_path):
    path = tmp_path / "bad.tfrecords"
    with TFRecordFile(str(path)) as file:
        file.write(b"hello world")
    data = bytearray(path.read_bytes())
    data[14] ^= 0xFF  # a byte of the payload: the data CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_converter_never_imports_tensorflow(tmp_path):
    script = f"""
import sys
from keras_anime_gan.data import convert_folder, synthetic_faces
from PIL import Image
import os
os.makedirs({str(tmp_path / 'src')!r})
for index, face in enumerate(synthetic_faces(80, 32, seed=0)):
    Image.fromarray(face).save(os.path.join({str(tmp_path / 'src')!r}, f"{{index}}.png"))
for fmt in ("raw", "stylegan"):
    manifest = convert_folder({str(tmp_path / 'src')!r}, os.path.join({str(tmp_path)!r}, fmt), 32, format=fmt,
                              shard_size=30, progress=False)
    assert manifest["num_images"] == 80, manifest
print("tensorflow" in sys.modules)
"""
    path = tmp_path / "convert_only.py"
    path.write_text(script)
    result = subprocess.run([sys.executable, str(path)], cwd=SCRATCH, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_a_shard_is_never_written_through_a_link_planted_at_its_name(tmp_path):
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    part = tmp_path / "shard-00000-of-00001.tfrecords.part0000.tmp"
    os.symlink(victim, part)
    with TFRecordFile(str(part)) as file:
        file.write(b"record")
    assert victim.read_text() == "the user's file\n" and not part.is_symlink()
    assert part.read_bytes() == frame_record(b"record")
