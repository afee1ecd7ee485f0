"""What `GAN.fit` does before Keras's fit: check the first batch, group the real batches a step
consumes, add the objective's callbacks, refuse data too small for one step, and keep tf.data's
autotuner from idling at the end of `fit`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..sampling import pixel_range


def check_first_batch(x) -> None:
    """Refuse images in the wrong range before training on them (see `sampling.pixel_range`);
    data that is not a batch of images (N, H, W, C), such as 2-D toy points, is not checked."""
    if isinstance(x, tf.data.Dataset):
        element = next(iter(x.take(1)), None)
        if element is None:
            return
        first = element[0] if isinstance(element, (tuple, list)) else element
        if isinstance(first, dict):
            return
        first = first.numpy()
    elif isinstance(x, np.ndarray):
        first = x[:256]
    else:
        return
    if np.ndim(first) == 4:
        pixel_range(first, "the training images")


def group_real_batches(x, kwargs, k, seed, model_name):
    """(data, kwargs) with k consecutive batches per element, shaped (B, k, H, W, C) so that
    tf.distribute splits the first axis over replicas and each replica gets its share of every one
    of the k batches; an array is batched by `batch_size` first."""
    if k == 1:
        return x, kwargs
    if isinstance(x, np.ndarray):
        batch_size = kwargs.pop("batch_size", None) or 32
        dataset = tf.data.Dataset.from_tensor_slices(x)
        if kwargs.pop("shuffle", True):
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        x = dataset.batch(batch_size, drop_remainder=True)
    if not isinstance(x, tf.data.Dataset):
        raise ValueError(f"{model_name} takes {k} real batches per step: pass a tf.data.Dataset of "
                         f"batches or an array to fit, not {type(x).__name__}")
    grouped = x.batch(k, drop_remainder=True).map(
        lambda group: tf.experimental.numpy.swapaxes(group, 0, 1), num_parallel_calls=tf.data.AUTOTUNE)
    return grouped, kwargs


def with_callbacks(own, args, kwargs, model_name):
    """`fit`'s kwargs with each of `own` callbacks added whose class the caller did not give."""
    if not own:
        return kwargs
    if len(args) > 4:
        raise TypeError(f"{model_name}.fit: pass callbacks as a keyword argument (callbacks=[...])")
    callbacks = kwargs.get("callbacks")
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return kwargs  # an already assembled list: left as given
    callbacks = list(callbacks or [])
    callbacks += [callback for callback in own if not any(isinstance(c, type(callback)) for c in callbacks)]
    return {**kwargs, "callbacks": callbacks}


def check_one_step(x, k, model_name) -> None:
    """A ValueError where a dataset holds fewer full batches than one step needs: Keras would train
    nothing and return an empty history without a word."""
    if not isinstance(x, tf.data.Dataset):
        return
    cardinality = int(x.cardinality())
    if cardinality == 0 or (cardinality == tf.data.UNKNOWN_CARDINALITY and k > 1
                            and next(iter(x.take(1)), None) is None):
        per_step = f"{k} real batches per step (one per discriminator update)" if k > 1 else "one real batch per step"
        raise ValueError(f"{model_name} would train nothing: the data holds fewer full batches than one step "
                         f"needs, {per_step}; give more images or a smaller batch size")


def without_autotune(dataset):
    """`dataset` with tf.data's autotuner off unless its options chose; anything else unchanged. In
    TensorFlow 2.21 freeing the iterator at the end of `fit` waits for the autotuner's next wake-up,
    up to 60 s of idling after the last batch. AUTOTUNE parallelism then defaults to the cores."""
    if isinstance(dataset, tf.data.Dataset) and dataset.options().autotune.enabled is None:
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options)
    return dataset
