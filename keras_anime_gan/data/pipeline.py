"""`load_dataset`: converted TFRecords, NVIDIA StyleGAN `-rNN` files or a plain image folder ->
a `tf.data.Dataset` of float32 NHWC batches in [-1, 1]."""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np
import tensorflow as tf

from ..errors import UserError
from ..sampling import to_uint8  # noqa: F401  (re-exported: keras_anime_gan.data.pipeline.to_uint8)
from . import imaging, tfrecord
from .layout import MANIFEST_NAME, STATE_NAME

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 4096
_STYLEGAN_FILE = re.compile(r"-r(\d\d)\.tfrecords$")


class DatasetError(UserError):
    """The path given to load_dataset cannot be read as a dataset; the message says why."""


def describe_source(path: str) -> dict:
    """What `path` holds: kind ('converted', 'stylegan', 'folder'), resolution and image count when known."""
    if not os.path.exists(path):
        raise DatasetError(f"dataset path {path!r} does not exist")
    if os.path.isdir(path):
        manifest_path = os.path.join(path, MANIFEST_NAME)
        if os.path.exists(manifest_path):
            with open(manifest_path, encoding="utf-8") as file:
                manifest = json.load(file)
            if manifest.get("format") != "stylegan":
                return {"kind": "converted", "manifest": manifest, "resolution": manifest["resolution"],
                        "num_images": manifest["num_images"]}
        if os.path.exists(os.path.join(path, STATE_NAME)):
            raise DatasetError(
                f"{path!r} holds an unfinished conversion (no {MANIFEST_NAME}); rerun the convert command to finish it"
            )
        levels = _stylegan_levels(path)
        if levels:
            # Every level file holds every image; the 4x4 one is the quickest to count.
            try:
                count = tfrecord.count_records(levels[min(levels)])
            except ValueError as error:
                raise DatasetError(str(error)) from None
            return {"kind": "stylegan", "levels": levels, "resolution": max(levels), "num_images": count}
        if glob.glob(os.path.join(path, "*.tfrecords")) or glob.glob(os.path.join(path, "*.tfrecord")):
            raise DatasetError(
                f"{path!r} holds TFRecords but no {MANIFEST_NAME} and no StyleGAN -rNN files; "
                "convert the images with `keras-anime-gan convert`"
            )
        files = list_image_files(path)
        if not files:
            raise DatasetError(f"{path!r} holds no images ({' '.join(imaging.SUPPORTED_EXTENSIONS)}) and no TFRecords")
        return {"kind": "folder", "files": files, "resolution": None, "num_images": len(files)}
    if path.endswith(".tfrecords") and _STYLEGAN_FILE.search(path):
        return describe_source(os.path.dirname(path) or ".")
    raise DatasetError(f"dataset path {path!r} is a file; give a folder of images or of TFRecords")


def _stylegan_levels(directory: str) -> dict[int, str]:
    levels = {}
    for file in sorted(glob.glob(os.path.join(directory, "*.tfrecords"))):
        match = _STYLEGAN_FILE.search(file)
        if match:
            levels[2 ** int(match.group(1))] = file
    return levels


def list_image_files(directory: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        files.extend(os.path.join(root, name) for name in sorted(names) if imaging.has_supported_extension(name))
    return files


def load_dataset(
    path: str,
    batch_size: int,
    *,
    resolution: int | None = None,
    flip: bool = True,
    shuffle: bool = True,
    repeat: bool = False,
    seed: int | None = None,
    drop_remainder: bool = True,
    min_size: int | None = None,
) -> tf.data.Dataset:
    """Batches of float32 images in [-1, 1], shape (batch, resolution, resolution, 3).

    `path` is a converted directory (its `dataset.json`), a folder of NVIDIA StyleGAN `-rNN.tfrecords`
    (the level equal to `resolution`, else the largest), or a plain image folder (decoded by tf.io;
    `resolution` then defaults to 64). Images whose resolution differs from `resolution` are resized.
    `flip` mirrors each image left-right with probability 0.5. With `seed` the order and flips repeat.
    """
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    source = describe_source(path)
    kind = source["kind"]
    if kind == "converted":
        manifest = source["manifest"]
        files = [os.path.join(path, shard["file"]) for shard in manifest["shards"]]
        missing = [file for file in files if not os.path.exists(file)]
        if missing:
            raise DatasetError(f"{path!r}: shard files listed in {MANIFEST_NAME} are missing: {missing[:3]}")
        stored = manifest["resolution"]
        records, count = _records(files, shuffle, seed), manifest["num_images"]
        decode = _raw_batch_decoder(stored) if manifest["format"] == "raw" else None
        per_image = _png_decoder(stored) if manifest["format"] == "png" else None
    elif kind == "stylegan":
        levels = source["levels"]
        stored = resolution if resolution in levels else max(levels)
        files = [levels[stored]]
        records, count = _records(files, shuffle, seed), source["num_images"]
        decode, per_image = _stylegan_batch_decoder(stored), None
    else:
        stored = resolution or 64
        files = source["files"]
        count = len(files)
        records = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            records = records.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        decode, per_image = None, _file_decoder(stored, min_size)
    target = resolution or stored

    dataset = records
    if shuffle and kind != "folder":
        buffer = max(1, min(SHUFFLE_BUFFER, count))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if per_image is not None:
        dataset = dataset.map(per_image, num_parallel_calls=AUTOTUNE)
        if kind == "folder":
            # Corrupt or undecodable files are dropped with a logged warning, never stopping training.
            dataset = dataset.ignore_errors(log_warning=True)
            dataset = dataset.filter(lambda image: tf.size(image) > 0)
            dataset = dataset.map(lambda image: tf.ensure_shape(image, [stored, stored, 3]))
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE)
    if not repeat and kind != "folder":
        # A known length: with an unknown one, Keras 3.15's fit performs one extra optimizer update
        # (without a batch) at the end of every epoch.
        batches = count // batch_size if drop_remainder else -(-count // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))
    dataset = dataset.map(
        lambda images, pair: _finish_batch(images, pair, target, flip),
        num_parallel_calls=AUTOTUNE,
    )
    options = tf.data.Options()
    # Each worker reads every file and keeps its 1/N of the elements: right for few, big shards.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Order may vary only where the user asked for neither a seed nor a fixed order.
    options.deterministic = seed is not None or not shuffle
    dataset = dataset.with_options(options)
    return dataset.prefetch(AUTOTUNE)


def _records(files, shuffle, seed):
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and len(files) > 1:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return names.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 4),
        num_parallel_calls=AUTOTUNE,
    )


def _raw_batch_decoder(resolution):
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "shape": tf.io.FixedLenFeature([3], tf.int64)}

    def decode(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        pixels = tf.io.decode_raw(parsed["image"], tf.uint8)
        return tf.reshape(pixels, [-1, resolution, resolution, 3])

    return decode


def _png_decoder(resolution):
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "shape": tf.io.FixedLenFeature([3], tf.int64)}

    def decode(serialized):
        parsed = tf.io.parse_single_example(serialized, spec)
        image = tf.io.decode_png(parsed["image"], channels=3)
        return tf.ensure_shape(image, [resolution, resolution, 3])

    return decode


def _stylegan_batch_decoder(resolution):
    # NVIDIA's own feature spec (training/dataset.py, parse_tfrecord_tf).
    spec = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string)}

    def decode(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        pixels = tf.io.decode_raw(parsed["data"], tf.uint8)
        channels_first = tf.reshape(pixels, [-1, 3, resolution, resolution])
        return tf.transpose(channels_first, [0, 2, 3, 1])

    return decode


def _file_decoder(resolution, min_size):
    """tf.io decoding with the converter's conversions: alpha composited on white, grey -> RGB,
    16-bit scaled down, centre crop to a square, antialiased resize. Images below min_size become
    empty and are filtered out (never silently upscaled when min_size is given)."""

    def decode(path):
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)  # 16-bit scaled to [0, 1]
        channels = tf.shape(image)[-1]
        image = tf.concat([image, image, image, image], axis=-1)[..., :4]  # pad so every branch can slice
        grey, grey_alpha = image[..., :1], image[..., 1:2]
        rgb = tf.switch_case(
            tf.clip_by_value(channels, 1, 4) - 1,
            [
                lambda: tf.tile(grey, [1, 1, 3]),
                lambda: tf.tile(grey * grey_alpha + (1.0 - grey_alpha), [1, 1, 3]),  # LA on white
                lambda: image[..., :3],
                lambda: image[..., :3] * image[..., 3:] + (1.0 - image[..., 3:]),  # RGBA on white
            ],
        )
        height, width = tf.shape(rgb)[0], tf.shape(rgb)[1]
        side = tf.minimum(height, width)
        rgb = tf.image.crop_to_bounding_box(rgb, (height - side) // 2, (width - side) // 2, side, side)
        rgb = tf.image.resize(rgb, [resolution, resolution], method="bilinear", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(rgb * 255.0), 0, 255), tf.uint8)
        if min_size is not None:
            image = tf.cond(side < min_size, lambda: tf.zeros([0, 0, 3], tf.uint8), lambda: image)
        return image

    return decode


def _finish_batch(images, seed_pair, resolution, flip):
    images = tf.cast(images, tf.float32)
    if images.shape[1] != resolution:
        images = tf.image.resize(images, [resolution, resolution], antialias=True)
    if flip:
        coin = tf.random.stateless_uniform([tf.shape(images)[0]], seed=seed_pair) < 0.5
        images = tf.where(coin[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images / 127.5 - 1.0


def steps_per_epoch(path: str, batch_size: int) -> int:
    """Full batches in one pass over `path` (for fit's steps_per_epoch with repeat=True)."""
    return describe_source(path)["num_images"] // batch_size


def load_real_images(path: str, count: int, resolution: int, seed: int = 0) -> np.ndarray:
    """Up to `count` real images from any dataset path as uint8 (N, resolution, resolution, 3):
    the fixed reference set for metrics and nearest-neighbour checks (no flips)."""
    dataset = load_dataset(path, 256, resolution=resolution, flip=False, shuffle=True, seed=seed, drop_remainder=False)
    images, total = [], 0
    for batch in dataset:
        images.append(to_uint8(batch.numpy()))
        total += len(images[-1])
        if total >= count:
            break
    return np.concatenate(images)[:count]
