"""Run as a script: compares one training step on 2 logical CPU replicas with one replica.

Logical devices must be configured before TensorFlow initialises, hence a separate process.
Prints one JSON line. `mirrored_check.py --stylegan2` runs only the StyleGAN2-ADA comparison
(`compare_stylegan2`); other arguments name the registry models trained at the end.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_anime_gan import DCGAN, WGAN, create_gan  # noqa: E402
from keras_anime_gan.gans import DCGANObjective, RegularizationPhase, WGANObjective  # noqa: E402
from keras_anime_gan.gans.classic import networks as models  # noqa: E402

GLOBAL_BATCH, LATENT = 8, 6
LATENTS = np.random.default_rng(1).normal(size=(GLOBAL_BATCH, LATENT)).astype(np.float32)
REAL = np.random.default_rng(2).uniform(-1, 1, size=(GLOBAL_BATCH, 8, 8, 3)).astype(np.float32)
REAL_3 = np.random.default_rng(5).uniform(-1, 1, size=(3 * GLOBAL_BATCH, 8, 8, 3)).astype(np.float32)
REAL_16 = np.random.default_rng(4).uniform(-1, 1, size=(2 * GLOBAL_BATCH, 16, 16, 3)).astype(np.float32)


class FixedLatents:
    """Each replica takes its slice of one fixed latent table, so both runs see the same global batch."""

    def sample_latent(self, batch_size):
        context = tf.distribute.get_replica_context()
        start = context.replica_id_in_sync_group * batch_size
        return tf.slice(tf.constant(LATENTS), [start, 0], [batch_size, LATENT])


class FixedLatentDCGAN(DCGAN):
    Objective = type("FixedLatentDCGANObjective", (FixedLatents, DCGANObjective), {})


class FixedLatentWGAN(WGAN):
    Objective = type("FixedLatentWGANObjective", (FixedLatents, WGANObjective), {})


class PhasedObjective(FixedLatents, DCGANObjective):
    """A lazy discriminator regulariser every 2 steps: its update must sum across replicas as the
    main updates do, with no synchronisation inside control flow."""

    def phases(self):
        return (RegularizationPhase("d_reg", "discriminator", 2, self._penalty),)

    def _penalty(self, real, global_batch):
        return 0.1 * tf.reduce_sum(tf.square(self.run_discriminator(real)), axis=-1)


class PhasedDCGAN(DCGAN):
    Objective = PhasedObjective


def phased_steps(strategy):
    with strategy.scope():
        generator, discriminator = small_networks()
        gan = PhasedDCGAN(generator, discriminator, LATENT)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.5), g_optimizer=keras.optimizers.SGD(0.5))
    gan.fit(REAL_3, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False)
    return gan


def compare_phases(mirrored_strategy):
    one, two = phased_steps(tf.distribute.OneDeviceStrategy("/cpu:0")), phased_steps(mirrored_strategy)
    weights = [gan.generator.get_weights() + gan.discriminator.get_weights() for gan in (one, two)]
    return {"max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(*weights)),
            "d_iterations": [int(gan.d_optimizer.iterations.numpy()) for gan in (one, two)],
            "phase_steps": [int(gan.phase_steps.numpy()) for gan in (one, two)]}


def small_networks():
    keras.utils.set_random_seed(0)
    z = keras.Input((LATENT,))
    image = keras.layers.Reshape((8, 8, 3))(keras.layers.Dense(8 * 8 * 3, activation="tanh")(keras.layers.Dense(32, activation="relu")(z)))
    x = keras.Input((8, 8, 3))
    logit = keras.layers.Dense(1)(keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(x)))
    return keras.Model(z, image), keras.Model(x, logit)


def one_step(strategy):
    with strategy.scope():
        generator, discriminator = small_networks()
        gan = FixedLatentDCGAN(generator, discriminator, LATENT, label_smoothing=0.1)
        # Plain SGD: an update proportional to the gradient, so a wrong loss scale would show.
        gan.compile(d_optimizer=keras.optimizers.SGD(0.5), g_optimizer=keras.optimizers.SGD(0.5))
    history = gan.fit(REAL, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False).history
    return gan, history


def real_networks_step(strategy, cls, **options):
    """The package's own 16 px networks: BatchNorm (synchronized under 2 replicas) in both, and for
    WGAN the clip constraint on a critic with n_critic=2 fresh batches per step."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator = models.build_generator(16, LATENT, 4)
        discriminator = models.build_discriminator(16, 4, norm="batch")
        gan = cls(generator, discriminator, LATENT, **options)
        # Plain SGD, big enough that WGAN's updates hit its clip bound.
        gan.compile(d_optimizer=keras.optimizers.SGD(0.5), g_optimizer=keras.optimizers.SGD(0.1))
    gan.fit(REAL_16, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False)
    return gan


def compare_real_networks(mirrored_strategy, cls, **options):
    one = real_networks_step(tf.distribute.OneDeviceStrategy("/cpu:0"), cls, **options)
    two = real_networks_step(mirrored_strategy, cls, **options)
    keras.utils.set_random_seed(0)
    initial_generator = models.build_generator(16, LATENT, 4).get_weights()
    weights = [gan.generator.get_weights() + gan.discriminator.get_weights() for gan in (one, two)]
    return {
        "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(*weights)),
        "generator_min_update": min(float(np.abs(a - b).max()) for a, b in zip(weights[0], initial_generator)),
        "max_abs_critic_weight": max(float(np.abs(w.numpy()).max()) for w in two.discriminator.trainable_weights),
        "d_iterations": int(two.d_optimizer.iterations.numpy()),
    }


class ReplicaSlicedRandom:
    """Stands in for a GAN's tf.random.Generator so that 1 and 2 replicas draw the same numbers.

    Under a strategy each replica of a tf.random.Generator has its own stream, so a 2-replica step
    could never equal the 1-replica one. Here every draw is made for the global batch (the first
    axis times the replicas; a scalar as it is) from a stateless stream seeded by (the draw's
    number within the traced step on this replica, the step's `phase_steps`, which the step only
    increments after its last draw), and each replica keeps the rows of its share of the batch:
    the rows the one-replica run draws for the same images."""

    def __init__(self, gan):
        self.gan, self.draws = gan, {}

    def _seed(self):
        context = tf.distribute.get_replica_context()
        key = (tf.compat.v1.get_default_graph(), int(tf.get_static_value(context.replica_id_in_sync_group)))
        index = self.draws[key] = self.draws.get(key, -1) + 1
        step = tf.cast(tf.convert_to_tensor(self.gan.phase_steps), tf.int64)
        return tf.stack([tf.constant(1000 + index, tf.int64), step])

    def _draw(self, function, shape, **kwargs):
        context = tf.distribute.get_replica_context()
        shape = tf.convert_to_tensor(shape, tf.int32)
        seed = self._seed()
        if shape.shape[0] == 0:
            return function(shape, seed=seed, **kwargs)
        rows = shape[0]
        values = function(tf.concat([[rows * context.num_replicas_in_sync], shape[1:]], 0), seed=seed, **kwargs)
        start = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
        return values[start:start + rows]

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=tf.float32):
        return self._draw(tf.random.stateless_normal, shape, mean=mean, stddev=stddev, dtype=dtype)

    def uniform(self, shape, minval=0, maxval=None, dtype=tf.float32):
        return self._draw(tf.random.stateless_uniform, shape, minval=minval, maxval=maxval, dtype=dtype)


STYLEGAN2_STEPS = 3
REAL_SG = np.random.default_rng(6).uniform(-1, 1, size=(STYLEGAN2_STEPS * GLOBAL_BATCH, 8, 8, 3)).astype(np.float32)


def stylegan2_steps(strategy):
    """3 steps of the tiny StyleGAN2-ADA at 8 px with R1, path length and ADA due on steps 0 and 2,
    style mixing 0.9, random noise, ADA p from 0.3; SGD, so a wrong loss scale would show."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        gan = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8,
                         mbstd_group=1, r1_interval=2, pl_interval=2, ada_interval=2, r1_gamma=1.0,
                         augment="ada", augment_p=0.3, ada_kimg=1.0)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    gan.objective.nets.rng = gan.objective.augmenter.rng = ReplicaSlicedRandom(gan)
    history = gan.fit(REAL_SG, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False).history
    return gan, {name: float(values[-1]) for name, values in history.items()}


def stylegan2_micro_batch_step(strategy):
    """One step (D main, G main, R1) of the tiny StyleGAN2-ADA in passes of 2 images: on one device
    the passes loop in a tf.while_loop, on 2 replicas they are unrolled. Minibatch std, style mixing,
    augmentation and path length are off and the noise strengths start at 0 (their own gradients are
    left out of the comparison), so only the latents, drawn for the whole batch before it is split,
    are random."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        gan = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8,
                         mbstd_group=1, style_mixing=0.0, augment="none", pl_weight=0.0, r1_interval=2,
                         r1_gamma=1.0, micro_batch=2)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    gan.objective.nets.rng = ReplicaSlicedRandom(gan)
    # The latents get their own stand-in: the draws inside the passes (noise, style mixing) are
    # counted per traced graph, once in a while_loop body but per pass when unrolled.
    latents = ReplicaSlicedRandom(gan)
    gan.objective.sample_latent = lambda batch_size: latents.normal((batch_size, gan.latent_dim))
    history = gan.fit(REAL_SG[:GLOBAL_BATCH], batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False).history
    return gan, {name: float(values[-1]) for name, values in history.items()}


def compare_stylegan2_micro_batches(mirrored_strategy):
    (one, one_logs), (two, two_logs) = (stylegan2_micro_batch_step(tf.distribute.OneDeviceStrategy("/cpu:0")),
                                        stylegan2_micro_batch_step(mirrored_strategy))
    # Left out: the noise strengths (their gradients sum over noise drawn per pass) and w_avg, with
    # its EMA copy (it moves once per pass: 4 passes here, 2 on each replica there).
    skip = {index for index, v in enumerate(one.generator.variables) if "noise_strength" in v.path or "w_avg" in v.path}
    skipped = {id(v) for i, v in enumerate(one.generator.variables) if i in skip}
    skipped |= {id(one.ema_generator.variables[i]) for i in skip}
    pairs = [(a.numpy(), b.numpy()) for a, b in zip(one.weights, two.weights) if id(a) not in skipped]
    return {"max_weight_difference": max(float(np.abs(a - b).max()) for a, b in pairs),
            "variables_compared": len(pairs), "logs": [one_logs, two_logs],
            "d_iterations": [int(gan.d_optimizer.iterations.numpy()) for gan in (one, two)]}


def compare_stylegan2(mirrored_strategy):
    (one, one_logs), (two, two_logs) = (stylegan2_steps(tf.distribute.OneDeviceStrategy("/cpu:0")),
                                        stylegan2_steps(mirrored_strategy))
    keras.utils.set_random_seed(0)
    fresh = create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8, mbstd_group=1)
    initial = [np.asarray(w) for w in fresh.generator.trainable_weights + fresh.discriminator.trainable_weights]

    def values(gan):  # every variable of the GAN: networks, EMA, w_avg, pl_mean, ADA's p and counters, phase_steps
        return [np.asarray(v.numpy(), np.float64) for v in gan.weights]

    trained = [np.asarray(w) for w in one.generator.trainable_weights + one.discriminator.trainable_weights]
    moved = [float(np.abs(a - b).max()) for a, b in zip(trained, initial)]
    return {
        "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(values(one), values(two))),
        "variables_compared": len(one.weights),
        "min_update": min(moved), "median_update": float(np.median(moved)),
        "ada_p": [float(gan.objective.augmenter.p.numpy()) for gan in (one, two)],
        "r_t": [float(gan.objective.augmenter.rt.numpy()) for gan in (one, two)],
        "pl_mean": [float(gan.objective.pl_mean.numpy()) for gan in (one, two)],
        "phase_steps": [int(gan.phase_steps.numpy()) for gan in (one, two)],
        "d_iterations": [int(gan.d_optimizer.iterations.numpy()) for gan in (one, two)],
        "g_iterations": [int(gan.g_optimizer.iterations.numpy()) for gan in (one, two)],
        "logs": [one_logs, two_logs],
    }


def main():
    if sys.argv[1:] == ["--stylegan2"]:
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "stylegan2": compare_stylegan2(strategy),
                          "stylegan2_micro_batches": compare_stylegan2_micro_batches(strategy)}))
        return
    single, single_history = one_step(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored, mirrored_history = one_step(mirrored_strategy)
    initial_generator, initial_discriminator = small_networks()
    pairs = list(zip(single.generator.get_weights() + single.discriminator.get_weights(),
                     mirrored.generator.get_weights() + mirrored.discriminator.get_weights()))
    moved = [float(np.abs(a - b).max()) for a, b in zip(
        single.generator.get_weights() + single.discriminator.get_weights(),
        initial_generator.get_weights() + initial_discriminator.get_weights())]
    result = {
        "replicas": mirrored_strategy.num_replicas_in_sync,
        "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in pairs),
        "min_update": min(moved),
        "jit_compile_mirrored": bool(mirrored.jit_compile),
        "d_loss": [single_history["d_loss"][-1], mirrored_history["d_loss"][-1]],
        "g_loss": [single_history["g_loss"][-1], mirrored_history["g_loss"][-1]],
        "batchnorm_dcgan": compare_real_networks(mirrored_strategy, FixedLatentDCGAN),
        "clipped_wgan": compare_real_networks(mirrored_strategy, FixedLatentWGAN, n_critic=2, clip_value=0.01),
        "phases": compare_phases(mirrored_strategy),
    }
    # The real networks (BatchNorm included) and the dynamic schedule also train on 2 replicas.
    faces = np.random.default_rng(3).uniform(-1, 1, size=(32, 32, 32, 3)).astype(np.float32)
    try:
        with mirrored_strategy.scope():
            create_gan("dynamic", 32, 16, width=8).compile()
        result["dynamic_refused"] = False
    except ValueError as error:
        result["dynamic_refused"] = "single replica" in str(error)
    # lightweight: DiffAugment, decoders and spectral norm (u assigned in replica context) on
    small = {"dcgan": {"width": 8}, "wgan-gp": {"width": 8, "n_critic": 2},
             "lightweight": {"g_channel_max": 16, "d_channel_max": 16, "spectral_norm": "both"}}
    for name in sys.argv[1:] or list(small):
        with mirrored_strategy.scope():
            gan = create_gan(name, 32, 16, seed=0, **small.get(name, {}))
            gan.compile()
        logs = gan.fit(faces, batch_size=16, epochs=1, verbose=0).history
        result[name] = {key: float(values[-1]) for key, values in logs.items()}
        result[name]["d_iterations"] = int(gan.d_optimizer.iterations.numpy())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
