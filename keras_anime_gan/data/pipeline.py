"""`load_dataset`: converted TFRecords, NVIDIA StyleGAN `-rNN` files or a plain image folder ->
a `tf.data.Dataset` of float32 NHWC batches in [-1, 1]. What a path holds, and the cheap checks
made when it is opened, are in `sources` (no TensorFlow)."""

from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf

from ..sampling import to_uint8
from . import sources
from .sources import DEFAULT_FOLDER_RESOLUTION, DatasetError, describe_source

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 4096


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
    allow_upscale: bool = False,
) -> tf.data.Dataset:
    """Batches of float32 images in [-1, 1], shape (batch, resolution, resolution, 3).

    `path` is a converted directory (its `dataset.json`), a folder of NVIDIA StyleGAN `-rNN.tfrecords`
    (the level equal to `resolution`, else the largest), or a plain image folder (decoded by tf.io).
    `resolution` defaults to the data's (for a folder: 64, or its largest images if smaller).
    Images larger than `resolution` are downscaled; a `resolution` above the data's is a
    DatasetError unless `allow_upscale`. In a folder, images whose shorter side is below
    `min_size` (default: `resolution`, or none with `allow_upscale`) are skipped, and so are files
    that do not decode: one warning line at the end of the first pass says how many.
    `flip` mirrors each image left-right with probability 0.5. With `seed` the order and flips repeat.
    """
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    source = describe_source(path)
    kind = source["kind"]
    target = resolution or (min(DEFAULT_FOLDER_RESOLUTION, source["resolution"]) if kind == "folder"
                            else source["resolution"])
    _check_upscale(path, source, target, allow_upscale)
    if kind == "folder":
        if min_size is None and not allow_upscale:
            min_size = target
        dataset = _folder_images(path, source["files"], target, min_size, shuffle, seed, repeat)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = _record_batches(path, source, target, batch_size, shuffle, seed, repeat, drop_remainder)
    return _finish_pipeline(dataset, target, flip, seed, shuffle)


def _record_batches(path, source, target, batch_size, shuffle, seed, repeat, drop_remainder) -> tf.data.Dataset:
    """Decoded uint8 batches of converted TFRecords or of the StyleGAN level `target` (else the
    largest), with a known length unless `repeat`."""
    if source["kind"] == "converted":
        manifest = source["manifest"]
        files = [os.path.join(path, shard["file"]) for shard in manifest["shards"]]
        stored, count = manifest["resolution"], manifest["num_images"]
        decode = _raw_batch_decoder(stored) if manifest["format"] == "raw" else None
        per_image = _png_decoder(stored) if manifest["format"] == "png" else None
    else:
        levels = source["levels"]
        stored = target if target in levels else max(levels)
        files, count = [levels[stored]], source["num_images"]
        _check_level(path, levels[stored], count)
        decode, per_image = _stylegan_batch_decoder(stored), None
    dataset = _records(files, shuffle, seed)
    if shuffle:
        dataset = dataset.shuffle(max(1, min(SHUFFLE_BUFFER, count)), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if per_image is not None:
        dataset = dataset.map(per_image, num_parallel_calls=AUTOTUNE)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(decode, num_parallel_calls=AUTOTUNE)
    if not repeat:
        # A known length: with an unknown one, Keras 3.15's fit performs one extra optimizer update
        # (without a batch) at the end of every epoch.
        batches = count // batch_size if drop_remainder else -(-count // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset


def _finish_pipeline(dataset, target, flip, seed, shuffle) -> tf.data.Dataset:
    """Image batches -> float32 [-1, 1] batches of `target` px (`_finish_batch`, with a seed pair per
    batch), with the options every pipeline shares, prefetched."""
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


def _check_upscale(path: str, source: dict, target: int, allow_upscale: bool) -> None:
    """DatasetError when `target` is above the data's resolution and upscaling was not asked for."""
    stored = source["resolution"]
    if target <= stored or allow_upscale:
        return
    if source["kind"] == "folder":
        what = f"{path}: its largest images are {stored} px (shorter side, of the {source['checked']} files checked)"
    else:
        what = f"{path} holds {stored} px images"
    raise DatasetError(f"{what} and {target} px were asked for, which would upscale them (blurred training "
                       f"images); train at --resolution {stored}, reconvert from larger images, or allow upscaling "
                       "(--allow-upscale)")


def _check_level(path: str, file: str, count: int) -> None:
    """The StyleGAN level file to read holds as many records as the folder has images (a framing
    walk: cheap); DatasetError if it is truncated."""
    found = sources.count_level(file, path)
    if found != count:
        raise DatasetError(f"{file} holds {found} records and the folder {count} images (a damaged or partly "
                           f"copied level file); {sources.verify_hint(path)}")


def _folder_images(path, files, resolution, min_size, shuffle, seed, repeat):
    """The decoded images of a folder, one pass, or endless with `repeat`. Files that do not decode
    (tf.io raises: `ignore_errors` drops them) and images smaller than `min_size` are skipped; at
    the end of the first pass one warning line says how many. A pass that yields no image stops
    with an error naming the folder, never an endless search for one."""
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    images = names.map(_file_decoder(resolution, min_size), num_parallel_calls=AUTOTUNE).ignore_errors()
    # (image, kind): kind 0 an image, 1 too small (decoded as an empty image), 2 the end of a pass.
    marked = images.map(lambda image: (image, tf.cast(tf.size(image) == 0, tf.int32)))
    end_of_pass = tf.data.Dataset.from_tensors((tf.zeros([0, 0, 3], tf.uint8), tf.constant(2)))
    stream = marked.concatenate(end_of_pass)
    if repeat:
        stream = stream.repeat()
    stream = stream.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64), tf.constant(False)),
                         _pass_counter(path, len(files), min_size))
    stream = stream.filter(lambda image, kind: tf.equal(kind, 0))
    return stream.map(lambda image, kind: tf.ensure_shape(image, [resolution, resolution, 3]))


def _pass_counter(path, total, min_size):
    """The scan function of `_folder_images`: counts each pass's images and too-small ones; at a
    pass's end, reports the skipped files once and fails a pass without images."""
    no_image = (f"{path}: no image in a whole pass over its {total} files (none decodes"
                + (f" at {min_size} px or more" if min_size else "") + f"); {sources.verify_hint(path)}")

    def report(kept, small):
        pieces = ["warning: ", tf.strings.as_string(total - kept), f" of {total} files in {path} were skipped: ",
                  tf.strings.as_string(total - kept - small), " undecodable"]
        if min_size:
            pieces += [", ", tf.strings.as_string(small), f" smaller than {min_size} px (not upscaled)"]
        pieces.append(f"; `keras-anime-gan verify {path}` lists the undecodable ones")
        tf.print(tf.strings.join(pieces), output_stream=sys.stderr)
        return tf.constant(True)

    def count(state, element):
        kept, small, reported = state
        image, kind = element
        if kind == 2:
            tf.debugging.Assert(kept > 0, [no_image])
            if kept < total and not reported:
                reported = report(kept, small)
            return (tf.constant(0, tf.int64), tf.constant(0, tf.int64), reported), element
        return (kept + tf.cast(kind == 0, tf.int64), small + tf.cast(kind == 1, tf.int64), reported), element

    return count


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
    16-bit scaled down, centre crop to a square, Lanczos resize (the converter's default filter).
    Images below min_size become empty (skipped by the caller, never upscaled). A file that does
    not decode raises."""

    def decode(path):
        data = tf.io.read_file(path)
        # JPEGs with the accurate DCT, as Pillow and the converter decode them (tf's default fast one
        # differs by 1.8 levels on average); everything else as decode_image does (16-bit scaled to [0, 1]).
        image = tf.cond(
            tf.io.is_jpeg(data),
            lambda: tf.image.convert_image_dtype(tf.io.decode_jpeg(data, dct_method="INTEGER_ACCURATE"), tf.float32),
            lambda: tf.io.decode_image(data, dtype=tf.float32, expand_animations=False),
        )
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
        # Lanczos, as the converter resizes by default (Pillow's LANCZOS; tf's lanczos3 with antialias
        # is within 0.2 of a level of it): a folder and its conversion give the same faces, so that
        # metrics against a folder do not penalise a generator for the filter it was trained on.
        rgb = tf.image.resize(rgb, [resolution, resolution], method="lanczos3", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(rgb * 255.0), 0, 255), tf.uint8)
        if min_size is not None:
            image = tf.cond(side < min_size, lambda: tf.zeros([0, 0, 3], tf.uint8), lambda: image)
        return image

    return decode


def _finish_batch(images, seed_pair, resolution, flip):
    images = tf.cast(images, tf.float32)
    if images.shape[1] != resolution:  # Lanczos as the converter's default, clipped (it overshoots)
        images = tf.clip_by_value(tf.image.resize(images, [resolution, resolution], method="lanczos3",
                                                  antialias=True), 0.0, 255.0)
    if flip:
        coin = tf.random.stateless_uniform([tf.shape(images)[0]], seed=seed_pair) < 0.5
        images = tf.where(coin[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images / 127.5 - 1.0


def steps_per_epoch(path: str, batch_size: int) -> int:
    """Full batches in one pass over `path` (for fit's steps_per_epoch with repeat=True)."""
    return describe_source(path)["num_images"] // batch_size


def load_real_images(path: str, count: int, resolution: int, seed: int = 0, allow_upscale: bool = False) -> np.ndarray:
    """Up to `count` real images from any dataset path as uint8 (N, resolution, resolution, 3):
    the fixed reference set for metrics and nearest-neighbour checks (no flips). A `resolution`
    above the data's is a DatasetError unless `allow_upscale` (see `load_dataset`)."""
    dataset = load_dataset(path, 256, resolution=resolution, flip=False, shuffle=True, seed=seed, drop_remainder=False,
                           allow_upscale=allow_upscale)
    images, total = [], 0
    try:
        for batch in dataset:
            images.append(to_uint8(batch.numpy()))
            total += len(images[-1])
            if total >= count:
                break
    except tf.errors.DataLossError as error:  # TensorFlow's message names no file: find the damaged one
        from .verify import explain_data_loss

        raise DatasetError(explain_data_loss(path, error)) from None
    return np.concatenate(images)[:count]
