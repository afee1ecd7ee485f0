"""Run as a script: compares one training step on 2 logical CPU replicas with one replica.

Logical devices must be configured before TensorFlow initialises, hence a separate process.
Prints one JSON line.
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
from keras_anime_gan.gans import RegularizationPhase  # noqa: E402
from keras_anime_gan import models  # noqa: E402

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


class FixedLatentDCGAN(FixedLatents, DCGAN):
    pass


class FixedLatentWGAN(FixedLatents, WGAN):
    pass


class PhasedDCGAN(FixedLatents, DCGAN):
    """A lazy discriminator regulariser every 2 steps: its update must sum across replicas as the
    main updates do, with no synchronisation inside control flow."""

    def regularization_phases(self):
        return (RegularizationPhase("d_reg", "discriminator", 2, self._penalty),)

    def _penalty(self, real):
        return 0.1 * tf.reduce_sum(tf.square(self.run_discriminator(real)), axis=-1)


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


def main():
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
    for name in sys.argv[1:] or ["dcgan", "wgan-gp"]:
        with mirrored_strategy.scope():
            gan = create_gan(name, 32, 16, width=8, seed=0, **({"n_critic": 2} if name == "wgan-gp" else {}))
            gan.compile()
        logs = gan.fit(faces, batch_size=16, epochs=1, verbose=0).history
        result[name] = {key: float(values[-1]) for key, values in logs.items()}
        result[name]["d_iterations"] = int(gan.d_optimizer.iterations.numpy())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
