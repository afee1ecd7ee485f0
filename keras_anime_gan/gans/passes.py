"""One optimizer update from per-example losses, in one pass or accumulated over micro-batches.

`Update(optimizer, variables, clean)` applies to `variables` the gradient of an objective averaged
over the global batch (`tf.nn.compute_average_loss`: Keras's optimizers sum gradients across
replicas), scaled for float16 by a LossScaleOptimizer, after `clean` (the objective's
`clean_gradients`). With `micro_batch` m below the per-replica batch, the inputs go through in
passes of m examples and the passes' gradients are summed before the one update (NVIDIA's
batch_gpu): the same update, up to each pass's minibatch statistics, for the activation memory of
m examples.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf


@contextlib.contextmanager
def tape_of(variables):
    """A tape recording only what depends on `variables`: the losses may run the other network (the
    discriminator update generates its fakes inside them), whose activations it need not keep."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([getattr(v, "value", v) for v in variables])  # Keras variables wrap a tf.Variable
        yield tape


def passes_for(batch_size, micro_batch):
    """How many micro-batches a per-replica batch of `batch_size` (a Python int, or None when unknown)
    is split into: 1 without `micro_batch` or when the batch is no larger; None when unknown."""
    if not micro_batch or (batch_size is not None and batch_size <= micro_batch):
        return 1
    if batch_size is not None and batch_size % micro_batch:
        raise ValueError(f"micro_batch {micro_batch} does not divide the per-replica batch {batch_size}; "
                         f"pick a divisor of it")
    return None if batch_size is None else batch_size // micro_batch


class Update:
    """Updates of `variables` by `optimizer`; `clean(gradients)` makes gradients safe to apply."""

    def __init__(self, optimizer, variables, clean):
        self.optimizer, self.variables, self.clean = optimizer, variables, clean

    def apply(self, tape, per_example):
        """Average `per_example` over the global batch, scale it for float16, apply its gradients.
        Call after the tape's `with` block."""
        with tape:
            scaled = self.optimizer.scale_loss(tf.nn.compute_average_loss(per_example))
        self.apply_gradients(tape.gradient(scaled, self.variables))

    def apply_gradients(self, gradients):
        gradients = self.clean(gradients)
        # A regulariser may not reach every variable (R1 never reaches D's output bias).
        self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, self.variables) if g is not None])

    def in_passes(self, losses, inputs, micro_batch=None, unroll=False):
        """Apply the update of `losses(*inputs)` -> (objective, reported) per-example values; return
        the reported loss's mean over this replica's batch.

        One replica loops over the passes in a `tf.while_loop` (traced once). `unroll` (several
        replicas, or XLA on a CPU) unrolls them: the cross-replica sums of ADA and path length cannot
        sit inside control flow under MirroredStrategy, and XLA on a CPU runs convolution gradients
        inside a loop's body far slower (docs/benchmarks.md)."""
        passes = passes_for(inputs[0].shape[0], micro_batch)
        if passes == 1:
            with tape_of(self.variables) as tape:
                objective, reported = losses(*inputs)
            self.apply(tape, objective)
            return tf.reduce_mean(reported)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if passes is None:  # a batch of unknown size (e.g. the last, partial batch of an array)
            if replicas > 1:
                raise ValueError("micro_batch under several replicas needs batches of a fixed size: batch a "
                                 "tf.data.Dataset with drop_remainder=True")
            tf.debugging.assert_equal(tf.shape(inputs[0])[0] % micro_batch, 0, message=(
                f"micro_batch {micro_batch} does not divide this batch; use batches of a multiple of it "
                f"(drop_remainder=True)"))
        count = tf.shape(inputs[0])[0] // micro_batch
        split = [tf.reshape(x, tf.concat([[-1, micro_batch], tf.shape(x)[1:]], 0)) for x in inputs]
        reached = []  # which variables the objective reaches, found while tracing a pass

        def one_pass(index):
            chunk = [tf.ensure_shape(x[index], [micro_batch, *inputs[i].shape[1:]]) for i, x in enumerate(split)]
            with tape_of(self.variables) as tape:
                objective, reported = losses(*chunk)
                share = tf.shape(objective)[0] * count * replicas  # this pass's part of the global batch
                scaled = self.optimizer.scale_loss(tf.nn.compute_average_loss(objective, global_batch_size=share))
            gradients = tape.gradient(scaled, self.variables)
            reached[:] = [g is not None for g in gradients]
            gradients = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                         for g, v in zip(gradients, self.variables)]
            return gradients, tf.reduce_sum(tf.cast(reported, tf.float32)), tf.cast(tf.size(reported), tf.float32)

        if replicas > 1 or (unroll and passes is not None):
            results = [one_pass(index) for index in range(passes)]
            sums = [tf.add_n(parts) for parts in zip(*(r[0] for r in results))]
            total, size = tf.add_n([r[1] for r in results]), tf.add_n([r[2] for r in results])
        else:
            def body(index, sums, total, size):
                gradients, part, part_size = one_pass(index)
                return index + 1, [a + g for a, g in zip(sums, gradients)], total + part, size + part_size

            zeros = [tf.zeros_like(v) for v in self.variables]
            _, sums, total, size = tf.while_loop(lambda index, *_: index < count, body,
                                                 (tf.constant(0), zeros, tf.constant(0.0), tf.constant(0.0)))
        self.apply_gradients([g if ok else None for g, ok in zip(sums, reached)])
        return total / size
