"""The generator's exponential moving average: its decay schedules and the update.

The average is a tracked Keras sub-model of the GAN (`GAN.ema_generator`, a clone of the generator),
saved and restored with it; the loop calls `update_average` after every generator update.

- `RampedDecay(decay)`: min(decay, (1 + t) / (10 + t)) after t updates, as TensorFlow's
  `ExponentialMovingAverage(num_updates=...)`, so a short run does not export mostly its random
  initialisation.
- BatchNorm's moving statistics: averaged alongside the weights, and every `RefreshStatistics.every`
  steps of `fit` moved halfway to the average's own (BigGAN's "standing statistics", kept current):
  the average runs once in training mode on latents of their own stream
  (`GAN.refresh_average_statistics`). The live generator's statistics describe the live weights'
  activations, not the average's: with them alone the lightweight model's EMA samples had too
  little contrast (colour distance 3.65 against 1.83 with its own statistics, at 25 minutes). A
  refresh after every update cost 24% of the lightweight model's step (benchmarks/bench_ema.py);
  the average moves slowly (decay 0.999), so every tenth step keeps the statistics as current for a
  tenth of that, and the averaging in between keeps a short run's statistics right from the start.
- `HalfLife(kimg, rampup)`: StyleGAN2-ADA's beta = 0.5 ** (batch / ema_nimg), ema_nimg =
  min(kimg * 1000, images seen * rampup) (rampup 0: off); buffers (w_avg) are copied, not averaged.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class RampedDecay:
    copies_buffers = False

    def __init__(self, decay: float):
        self.decay = float(decay)

    def __call__(self, updates, global_batch):
        return tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + updates) / (10.0 + updates))


class HalfLife:
    copies_buffers = True

    def __init__(self, kimg: float, rampup: float | None = None):
        self.kimg, self.rampup = float(kimg), rampup

    def __call__(self, updates, global_batch):
        batch = tf.cast(global_batch, tf.float32)
        ema_nimg = self.kimg * 1000.0
        if self.rampup:  # None or 0: off
            ema_nimg = tf.minimum(ema_nimg, updates * batch * self.rampup)
        return tf.pow(0.5, batch / tf.maximum(ema_nimg, 1e-8))


def batch_norm_layers(model) -> list:
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def own_statistics(model) -> set:
    """ids of the moving statistics of `model`'s BatchNormalization layers."""
    return {id(variable) for layer in batch_norm_layers(model)
            for variable in (layer.moving_mean, layer.moving_variance)}


def average_of(generator) -> keras.Model:
    """A frozen clone of `generator` holding its current weights: the start of its average. Its
    BatchNormalization layers stay trainable (the model is not: nothing optimises them), so that a
    training-mode call updates their statistics (`refresh_statistics`)."""
    average = keras.models.clone_model(generator)
    average.set_weights(generator.get_weights())
    average.trainable = False
    for layer in batch_norm_layers(average):
        layer.trainable = True
    return average


class RefreshStatistics(keras.callbacks.Callback):
    """`gan.refresh_average_statistics()` every `every` batches of `fit` (the GAN adds this callback
    itself where its average has BatchNorm). Not at the end of `fit`: the last checkpoint and the
    generator saved after it hold the same average."""

    every = 10

    def __init__(self, gan):
        super().__init__()
        self.gan, self.batches = gan, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches % self.every == 0:
            self.gan.refresh_average_statistics()


REFRESH_MOMENTUM = 0.5  # each refresh moves the statistics halfway to those of one batch


def refresh_statistics(average, latents) -> None:
    """One training-mode pass of the average: its BatchNorm moving statistics move halfway to the
    statistics of its own activations on `latents`. The layers' momentum is changed only while the
    pass runs (and is traced), so their configuration stays the generator's. Nothing to do without
    BatchNorm."""
    layers = batch_norm_layers(average)
    if not layers:
        return
    kept = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = REFRESH_MOMENTUM
    try:
        average(latents, training=True)
    finally:
        for layer, momentum in zip(layers, kept):
            layer.momentum = momentum


def update_average(average, generator, decay, copies_buffers) -> None:
    """average <- decay * average + (1 - decay) * generator, variable by variable; non-trainable
    variables copied instead where `copies_buffers`."""
    for target, variable in zip(average.variables, generator.variables):
        value = tf.cast(variable, target.dtype)
        if copies_buffers and not variable.trainable:
            target.assign(value)  # e.g. StyleGAN's w_avg: the live value, not an average of it
        else:
            target.assign(decay * target + (1.0 - decay) * value)
