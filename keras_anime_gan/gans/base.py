"""The GAN family as `keras.Model` subclasses with a custom `train_step`.

`GAN` owns the training loop: each step performs `schedule()` discriminator updates, then generator
updates. Variants change only their losses (`discriminator_loss`, `generator_loss`,
`discriminator_penalty`) or their schedule, never the loop.

Real data per step: a GAN that updates its discriminator k times per step (`real_batches_per_step`:
WGAN's `n_critic`, DynamicGAN's largest schedule) gives every update a fresh real batch, as
Algorithm 1 of the WGAN and WGAN-GP papers does. `fit` groups k consecutive batches of the dataset
into one step, so an epoch (one pass over the data) has len(data) / (batch * k) steps.

Distribution: per-example losses are averaged over the global batch with
`tf.nn.compute_average_loss` (Keras's optimizers sum gradients across replicas), and every random
draw comes from a `tf.random.Generator`, which gives each replica its own stream and is saved in
checkpoints so a resumed run continues the same sequence.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from .. import models
from ..sampling import latents_for_seed, pixel_range, render  # noqa: F401  (public here too)

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- losses
# Each takes logits of shape (batch, 1) and returns per-example losses of shape (batch,).


def bce_discriminator_loss(real_logits, fake_logits, real_target=1.0, fake_target=0.0):
    """Binary cross-entropy on logits, averaged over the real and the fake half:
    L_D = 1/2 [CE(D(x), real_target) + CE(D(G(z)), fake_target)]."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(real_logits), real_target), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(fake_logits), fake_target), fake_logits)
    return 0.5 * (tf.reduce_mean(real, axis=-1) + tf.reduce_mean(fake, axis=-1))


def bce_generator_loss(fake_logits):
    """Non-saturating generator loss: CE(D(G(z)), 1)."""
    return tf.reduce_mean(tf.nn.softplus(-fake_logits), axis=-1)


def least_squares_discriminator_loss(real_logits, fake_logits, real_target=1.0, fake_target=0.0):
    """Mao et al.: 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] with b = real_target, a = fake_target
    (1 and 0 in the paper's 0-1 coding; fuzzy labels move them toward each other)."""
    return tf.reduce_mean(0.5 * tf.square(real_logits - real_target) + 0.5 * tf.square(fake_logits - fake_target),
                          axis=-1)


def least_squares_generator_loss(fake_logits):
    """Mao et al.: 1/2 E[(D(G(z)) - 1)^2]."""
    return tf.reduce_mean(0.5 * tf.square(fake_logits - 1.0), axis=-1)


def wasserstein_critic_loss(real_logits, fake_logits):
    """E[f(G(z))] - E[f(x)]: the critic maximises the gap between real and fake scores."""
    return tf.reduce_mean(fake_logits - real_logits, axis=-1)


def wasserstein_generator_loss(fake_logits):
    return tf.reduce_mean(-fake_logits, axis=-1)


def gradient_penalty(critic, real, fake, alpha):
    """Per-example (||grad_x f(x_hat)||_2 - 1)^2 at x_hat = alpha * real + (1 - alpha) * fake.

    The norm is sqrt(sum g^2 + 1e-12): finite gradients even where the critic's gradient is zero.
    """
    real, fake, alpha = (tf.convert_to_tensor(value, tf.float32) for value in (real, fake, alpha))
    interpolates = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates, training=True)
    gradients = tf.cast(tape.gradient(scores, interpolates), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=list(range(1, len(gradients.shape)))) + 1e-12)
    return tf.square(norms - 1.0)


# ----------------------------------------------------------------------------- base


class GANOptimizers:
    """What `GAN.optimizer` is: both networks' optimizers, in the shape Keras's callbacks expect of a
    multi-optimizer (an `optimizers` list). `LearningRateScheduler` and `ReduceLROnPlateau` then set
    the rate of D and G (each from its own current value), and `TensorBoard` logs both as
    `learning_rate_d_optimizer` / `learning_rate_g_optimizer`. Not a Keras optimizer itself: the
    GAN's `train_step` applies each network's gradients with its own optimizer."""

    built = True  # Keras's fit builds an unbuilt `model.optimizer` on all of the GAN's variables

    def __init__(self, d_optimizer, g_optimizer):
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def optimizers(self):
        return [self.d_optimizer, self.g_optimizer]

    @property
    def iterations(self):
        """TensorBoard's step counter: generator updates."""
        return self.g_optimizer.iterations

    @property
    def learning_rate(self):
        raise AttributeError("a GAN has two learning rates: use gan.d_optimizer.learning_rate and "
                             "gan.g_optimizer.learning_rate")

    def build(self, variables):
        pass


class GAN(keras.Model):
    """A generator and a discriminator trained adversarially by `fit`.

    Args:
        generator: latent (batch, latent_dim) -> images in [-1, 1].
        discriminator: images -> logits (batch, 1).
        latent_dim: width of z; read from the generator when omitted.
        ema: decay of an exponential moving average of the generator's variables (e.g. 0.999);
            `generate`, `ema_generator` and the export then use the averaged generator. The decay
            is ramped up as TensorFlow's `ExponentialMovingAverage(num_updates=...)` does,
            min(ema, (1 + t) / (10 + t)) after t updates, so a short run does not export mostly its
            random initialisation. BatchNorm statistics are averaged alongside the weights, so the
            averaged generator normalises with statistics of (nearly) its own weights.
        seed: seed of the random stream (latents, interpolation weights).

    Data: `fit` takes float images in [-1, 1] or uint8 pixels (converted in the step); other ranges,
    [0, 1] floats included, are refused with a message on the first batch.
    """

    metric_names: tuple[str, ...] = ("d_loss", "g_loss")
    default_d_learning_rate = 2e-4
    default_g_learning_rate = 2e-4
    loss_family = "bce"  # how the failure monitor reads d_loss: "bce", "least_squares" or "wasserstein"

    def __init__(self, generator, discriminator, latent_dim=None, *, ema=None, seed=None, name=None, **kwargs):
        super().__init__(name=name or type(self).__name__.lower(), **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim or generator.input_shape[-1])
        if ema is not None and not 0.0 < ema < 1.0:
            raise ValueError(f"ema must be in (0, 1), e.g. 0.999; got {ema}")
        self.ema_decay = ema
        self.seed = seed
        self.rng = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.Generator.from_non_deterministic_state()
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        self._ema_weights = []
        if ema is not None:
            # Every replica computes the same average; take the first instead of syncing.
            self._ema_weights = [
                self.add_weight(shape=variable.shape,
                                initializer=keras.initializers.Constant(keras.ops.convert_to_numpy(variable)),
                                trainable=False, aggregation="only_first_replica", name=f"ema_{index}")
                for index, variable in enumerate(generator.variables)
            ]
            self.ema_updates = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32",
                                               aggregation="only_first_replica", name="ema_updates")
        self.__dict__["_ema_generator_cache"] = None  # a plain attribute: not tracked, not saved twice
        # The sub-models are built already. Keras would otherwise build this model by calling it
        # on a batch of real images, which `call` (latents -> images) does not accept.
        self.built = True

    # -- Keras plumbing -----------------------------------------------------------------

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, jit_compile=None, **kwargs):
        """Optimizers default to this GAN's paper settings (`default_optimizers`). Either may have a
        `keras.optimizers.schedules` learning rate; `model.optimizer` exposes both to Keras's
        learning-rate callbacks (see `GANOptimizers`).

        jit_compile: None picks the faster working mode: XLA on a GPU, and on a CPU only when
        TensorFlow's oneDNN kernels are off (see `xla_is_faster`); never under a strategy with
        more than one replica, where Keras cannot combine XLA with the cross-replica gradient sum.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if jit_compile is None:
            jit_compile = replicas == 1 and xla_is_faster()
        elif jit_compile and replicas > 1:
            log.warning("jit_compile=True is not supported with %d replicas in Keras; training without XLA", replicas)
            jit_compile = False
        super().compile(jit_compile=jit_compile, **kwargs)
        default_d, default_g = self.default_optimizers()
        self.d_optimizer = _with_loss_scaling(d_optimizer or default_d, self.discriminator)
        self.g_optimizer = _with_loss_scaling(g_optimizer or default_g, self.generator)
        # Names that tell the two apart in callbacks' logs (learning_rate_d_optimizer, ...).
        self.d_optimizer.name, self.g_optimizer.name = "d_optimizer", "g_optimizer"
        # Built up front: variables created inside a distributed or XLA step are not allowed.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        # Keras's compile left a default optimizer that nothing uses; callbacks read this one.
        self.optimizer = GANOptimizers(self.d_optimizer, self.g_optimizer)

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, with three additions:

        - the first batch is checked: [-1, 1] floats or uint8 pixels, anything else a ValueError;
        - with `real_batches_per_step` k > 1, k consecutive batches form one step (a `tf.data`
          dataset is grouped, an array is batched by `batch_size` x k), so `steps_per_epoch` counts
          steps of k batches;
        - a `tf.data.Dataset` that did not choose `autotune.enabled` trains with tf.data's
          autotuner off: in TensorFlow 2.21 freeing the iterator at the end of `fit` waits for the
          autotuner's next wake-up, up to 60 s of idling after the last batch. AUTOTUNE
          parallelism then defaults to the number of CPU cores."""
        _check_first_batch(x)
        x, kwargs = self._group_real_batches(x, kwargs)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn it ignores shuffle=True
        return super().fit(without_autotune(x), *args, **kwargs)

    def _group_real_batches(self, x, kwargs):
        k = self.real_batches_per_step
        if k == 1:
            return x, kwargs
        if isinstance(x, np.ndarray):
            batch_size = kwargs.pop("batch_size", None) or 32
            dataset = tf.data.Dataset.from_tensor_slices(x)
            if kwargs.pop("shuffle", True):
                dataset = dataset.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
            x = dataset.batch(batch_size, drop_remainder=True)
        if not isinstance(x, tf.data.Dataset):
            raise ValueError(f"{type(self).__name__} takes {k} real batches per step: pass a tf.data.Dataset of "
                             f"batches or an array to fit, not {type(x).__name__}")
        # (k, B, H, W, C) -> (B, k, H, W, C): tf.distribute splits the first axis over replicas,
        # so each replica gets its share of every one of the k batches.
        grouped = x.batch(k, drop_remainder=True).map(
            lambda group: tf.experimental.numpy.swapaxes(group, 0, 1), num_parallel_calls=tf.data.AUTOTUNE)
        return grouped, kwargs

    def default_optimizers(self):
        """(discriminator optimizer, generator optimizer): Adam(2e-4, beta_1=0.5) as in DCGAN."""
        return (
            keras.optimizers.Adam(self.default_d_learning_rate, beta_1=0.5),
            keras.optimizers.Adam(self.default_g_learning_rate, beta_1=0.5),
        )

    # -- what variants override ---------------------------------------------------------

    def discriminator_loss(self, real_logits, fake_logits):
        raise NotImplementedError

    def generator_loss(self, fake_logits):
        raise NotImplementedError

    def discriminator_penalty(self, real, fake):
        """Extra per-example discriminator loss (e.g. a gradient penalty); None for none."""
        return None

    def schedule(self, real):
        """(discriminator updates, generator updates) for this step: Python ints or int32 tensors,
        at most `real_batches_per_step` discriminator updates."""
        return 1, 1

    @property
    def real_batches_per_step(self) -> int:
        """Real batches one step consumes: one per discriminator update."""
        return 1

    # -- the training loop --------------------------------------------------------------

    def sample_latent(self, batch_size):
        return self.rng.normal((batch_size, self.latent_dim))

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        real = tf.cast(real, tf.float32) / 127.5 - 1.0 if real.dtype == tf.uint8 else tf.cast(real, tf.float32)
        k = self.real_batches_per_step
        if k > 1 and (real.shape.rank < 3 or real.shape[1] not in (k, None)):
            raise ValueError(f"{type(self).__name__} takes {k} real batches per step, grouped as (batch, {k}, ...); "
                             f"GAN.fit groups them for you (got shape {real.shape})")
        d_updates, g_updates = self.schedule(real)
        if isinstance(d_updates, int) and isinstance(g_updates, int) and d_updates == g_updates == 1 and k == 1:
            d_loss, g_loss = self.shared_fake_step(real)
        else:
            batch_size = tf.shape(real)[0]

            def real_batch(index):
                if k == 1:
                    return real
                return real[:, index] if isinstance(index, int) else tf.gather(real, index, axis=1)

            d_loss = _repeat(d_updates, lambda index: self.discriminator_step(real_batch(index)))
            g_loss = _repeat(g_updates, lambda index: self.generator_step(batch_size))
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["g_loss"].update_state(g_loss)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs with strategy.reduce(..., axis=0), which needs an axis.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def discriminator_step(self, real):
        latents = self.sample_latent(tf.shape(real)[0])
        with tf.GradientTape() as tape:
            fake = self.generator(latents, training=True)
            real_logits = self.score(real)
            fake_logits = self.score(fake)
            per_example = self.discriminator_loss(real_logits, fake_logits)
            penalty = self.discriminator_penalty(real, fake)
            total = per_example if penalty is None else per_example + penalty
            loss = tf.nn.compute_average_loss(total)
            scaled = self.d_optimizer.scale_loss(loss)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.observe_discriminator(real_logits, fake_logits)
        return tf.reduce_mean(per_example)

    def score(self, images):
        """The discriminator's logits in training mode, float32 whatever its compute dtype: the losses
        are computed in float32 under mixed precision too."""
        return tf.cast(self.discriminator(images, training=True), tf.float32)

    def observe_discriminator(self, real_logits, fake_logits):
        """Called with the logits of every discriminator update (DynamicGAN keeps its accuracy)."""

    def shared_fake_step(self, real):
        """One D update then one G update on the same fake batch, as the PyTorch DCGAN tutorial does:
        the generator runs forward once per step instead of twice (about 1/4 less compute at 64 px).
        The G update scores the fakes with the just-updated discriminator."""
        latents = self.sample_latent(tf.shape(real)[0])
        with tf.GradientTape() as g_tape:
            fake = self.generator(latents, training=True)
            with tf.GradientTape() as d_tape:
                real_logits = self.score(real)
                fake_logits = self.score(tf.stop_gradient(fake))
                d_per_example = self.discriminator_loss(real_logits, fake_logits)
                penalty = self.discriminator_penalty(real, tf.stop_gradient(fake))
                d_total = d_per_example if penalty is None else d_per_example + penalty
                d_scaled = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_total))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_variables), d_variables))
            g_per_example = self.generator_loss(self.score(fake))
            g_scaled = self.g_optimizer.scale_loss(tf.nn.compute_average_loss(g_per_example))
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_variables), g_variables))
        self._update_ema()
        return tf.reduce_mean(d_per_example), tf.reduce_mean(g_per_example)

    def ema_decay_now(self, updates):
        """The ramped decay after `updates` previous updates: min(ema, (1 + t) / (10 + t))."""
        return tf.minimum(tf.constant(self.ema_decay, tf.float32), (1.0 + updates) / (10.0 + updates))

    def _update_ema(self):
        if self._ema_weights:
            decay = self.ema_decay_now(self.ema_updates)
            for average, variable in zip(self._ema_weights, self.generator.variables):
                average.assign(decay * average + (1.0 - decay) * tf.cast(variable, average.dtype))
            self.ema_updates.assign_add(1.0)

    def generator_step(self, batch_size):
        latents = self.sample_latent(batch_size)
        with tf.GradientTape() as tape:
            fake = self.generator(latents, training=True)
            fake_logits = self.score(fake)
            per_example = self.generator_loss(fake_logits)
            loss = tf.nn.compute_average_loss(per_example)
            scaled = self.g_optimizer.scale_loss(loss)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self._update_ema()
        return tf.reduce_mean(per_example)

    # -- using the trained generator ----------------------------------------------------

    @property
    def ema_generator(self):
        """The generator with the moving-average variables (the generator itself without `ema`)."""
        if not self._ema_weights:
            return self.generator
        cache = self.__dict__["_ema_generator_cache"]
        if cache is None:
            cache = keras.models.clone_model(self.generator)
            self.__dict__["_ema_generator_cache"] = cache
        for target, average in zip(cache.variables, self._ema_weights):
            target.assign(tf.cast(average, target.dtype))
        return cache

    def generate(self, num_images, seed=None, truncation=None, batch_size=256):
        """`num_images` uint8 images (N, H, W, 3); the same seed gives the same images here, in
        `keras-anime-gan generate --seeds` (image i of seed s is `generate(i + 1, s)[i]`) and in the
        exported `generate` signature.

        truncation: scale latents by this factor (psi); values below 1 trade variety for quality.
        """
        latents = latents_for_seed(num_images, self.latent_dim, seed)
        if truncation is not None:
            latents = latents * float(truncation)
        return render(self.ema_generator, latents, batch_size)

    def get_config(self):
        return {"latent_dim": self.latent_dim, "ema": self.ema_decay, "seed": self.seed}


def _check_first_batch(x):
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


def xla_is_faster() -> bool:
    """Whether XLA beats TensorFlow's own kernels for these GANs here: yes on a GPU; on a CPU only
    when oneDNN is off. On a 2-core AMD EPYC, DCGAN-64 steps ran 1.3x faster in graph mode with
    oneDNN than with XLA, and 1.9x faster with XLA than in graph mode with TF's plain kernels
    (benchmarks/bench_train.py)."""
    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = _pywrap_util_port.IsMklEnabled()
    except (ImportError, AttributeError):  # private API: assume the plain kernels
        onednn = False
    if not onednn:
        log.info("TensorFlow's oneDNN kernels are off (TF_ENABLE_ONEDNN_OPTS=0, or TensorFlow was imported "
                 "before keras_anime_gan): training with XLA. Import keras_anime_gan first for faster CPU training.")
    return not onednn


def without_autotune(dataset):
    """`dataset` with tf.data's autotuner off unless its options chose; anything else unchanged."""
    if isinstance(dataset, tf.data.Dataset) and dataset.options().autotune.enabled is None:
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options)
    return dataset


def _repeat(times, step):
    """Run `step(index)` for index 0..times-1; a Python int unrolls, a tensor becomes a tf.while_loop.
    Returns the last step's value."""
    if isinstance(times, int):
        value = step(0)
        for index in range(1, times):
            value = step(index)
        return value

    def body(index, _):
        return index + 1, step(index)

    _, value = tf.while_loop(lambda index, _: index < times, body, (tf.constant(0), tf.constant(0.0)))
    return value


def _computes_in_float16(*networks) -> bool:
    def layers(model):
        for layer in getattr(model, "layers", []):
            yield layer
            yield from layers(layer)

    return any(getattr(layer, "compute_dtype", None) == "float16" for network in networks for layer in layers(network))


def _with_loss_scaling(optimizer, *networks):
    """Wrap the optimizer so small gradients do not underflow when the networks it trains compute
    in float16 (built under mixed_float16), or, with no networks given, under a float16 global
    policy. bfloat16 has float32's range and needs no loss scaling."""
    float16 = _computes_in_float16(*networks) if networks else keras.mixed_precision.dtype_policy().compute_dtype == "float16"
    if float16 and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


# ----------------------------------------------------------------------------- variants


class DCGAN(GAN):
    """Non-saturating BCE. `label_smoothing=0.1` gives the fuzzy targets 0.9 (real) / 0.1 (fake)
    of the Artificial Anime Character Design report; `one_sided=True` smooths only the real side.
    That report trained with separate rates (G 5e-4, D 1e-4): pass `d_learning_rate` and
    `g_learning_rate`. Defaults: Adam 2e-4 for both, beta_1 0.5 (Radford et al.)."""

    def __init__(self, generator, discriminator, latent_dim=None, *, label_smoothing=0.0, one_sided=False,
                 d_learning_rate=None, g_learning_rate=None, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), e.g. 0.1; got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.one_sided = bool(one_sided)
        self.default_d_learning_rate = d_learning_rate or type(self).default_d_learning_rate
        self.default_g_learning_rate = g_learning_rate or type(self).default_g_learning_rate

    def targets(self):
        """(real target, fake target) of the discriminator: 1 - s and s (0 when one-sided)."""
        return 1.0 - self.label_smoothing, 0.0 if self.one_sided else self.label_smoothing

    def discriminator_loss(self, real_logits, fake_logits):
        return bce_discriminator_loss(real_logits, fake_logits, *self.targets())

    def generator_loss(self, fake_logits):
        return bce_generator_loss(fake_logits)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "one_sided": self.one_sided}


class LSGAN(DCGAN):
    """Least-squares objectives (Mao et al.) as written in the Artificial Anime Character Design
    report; the same networks and optimizers as DCGAN, no sigmoid on the discriminator.
    `label_smoothing` / `one_sided` move the least-squares targets as they move DCGAN's: real
    1 - s, fake s (0 when one-sided); the generator still aims at 1."""

    loss_family = "least_squares"

    def discriminator_loss(self, real_logits, fake_logits):
        real_target, fake_target = self.targets()
        return least_squares_discriminator_loss(real_logits, fake_logits, real_target, fake_target)

    def generator_loss(self, fake_logits):
        return least_squares_generator_loss(fake_logits)


class WGAN(GAN):
    """Wasserstein GAN with weight clipping: every critic weight stays in [-clip_value, clip_value]
    (enforced as a Keras constraint, applied by the optimizer after each update, so it also holds
    under tf.distribute), RMSprop(5e-5), `n_critic` critic updates per generator update, each with
    its own real batch and fresh latents (Algorithm 1 of the paper): one step consumes `n_critic`
    batches, so an epoch has len(data) / (batch * n_critic) steps."""

    default_d_learning_rate = 5e-5
    default_g_learning_rate = 5e-5
    loss_family = "wasserstein"

    def __init__(self, generator, discriminator, latent_dim=None, *, n_critic=5, clip_value=0.01, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        self.n_critic = int(n_critic)
        self.clip_value = None if clip_value is None else float(clip_value)
        if self.clip_value is not None:
            clip = ClipWeights(self.clip_value)
            for variable in discriminator.trainable_variables:
                variable.constraint = clip
                variable.assign(clip(variable))

    def default_optimizers(self):
        return (keras.optimizers.RMSprop(self.default_d_learning_rate), keras.optimizers.RMSprop(self.default_g_learning_rate))

    def schedule(self, real):
        return self.n_critic, 1

    @property
    def real_batches_per_step(self):
        return self.n_critic

    def discriminator_loss(self, real_logits, fake_logits):
        return wasserstein_critic_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return wasserstein_generator_loss(fake_logits)

    def get_config(self):
        return {**super().get_config(), "n_critic": self.n_critic, "clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package="keras_anime_gan")
class ClipWeights(keras.constraints.Constraint):
    def __init__(self, clip_value):
        self.clip_value = clip_value

    def __call__(self, weights):
        return keras.ops.clip(weights, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


class WGANGP(WGAN):
    """WGAN with a gradient penalty (Gulrajani et al.): lambda * (||grad f(x_hat)|| - 1)^2 on uniform
    random interpolates instead of clipping; Adam(1e-4, beta_1=0.5, beta_2=0.9). Tracks `gp`, the
    mean unweighted penalty. Use a critic without BatchNorm (`norm="layer"` or `"instance"`)."""

    metric_names = GAN.metric_names + ("gp",)
    default_d_learning_rate = 1e-4
    default_g_learning_rate = 1e-4

    def __init__(self, generator, discriminator, latent_dim=None, *, n_critic=5, gp_weight=10.0, beta_1=0.5, **kwargs):
        super().__init__(generator, discriminator, latent_dim, n_critic=n_critic, clip_value=None, **kwargs)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight = float(gp_weight)
        self.beta_1 = float(beta_1)

    def default_optimizers(self):
        return (
            keras.optimizers.Adam(self.default_d_learning_rate, beta_1=self.beta_1, beta_2=0.9),
            keras.optimizers.Adam(self.default_g_learning_rate, beta_1=self.beta_1, beta_2=0.9),
        )

    def discriminator_penalty(self, real, fake):
        alpha = self.rng.uniform([tf.shape(real)[0]] + [1] * (len(real.shape) - 1))  # one weight per example
        penalty = gradient_penalty(self.discriminator, real, tf.cast(fake, real.dtype), alpha)
        self.trackers["gp"].update_state(tf.reduce_mean(penalty))
        return self.gp_weight * penalty

    def get_config(self):
        return {**super().get_config(), "gp_weight": self.gp_weight, "beta_1": self.beta_1}


class DynamicGAN(DCGAN):
    """The CSC412 report's dynamic schedule: with the discriminator's accuracy `acc` (real: logit > 0,
    fake: logit < 0), a step performs int(max(scale * acc, d_min)) discriminator updates and
    int(max(scale * (1 - acc), g_min)) generator updates (scale 10, d_min 1, g_min 3 in the report;
    these are the report's formulas, although its prose describes the opposite direction).

    `acc` is measured as the report does, on the discriminator's own work: the accuracy of the
    previous discriminator update on its batch (real and fake), read from the logits that update
    computed anyway, so no extra forward pass. The first step, with no update behind it, uses
    `initial_accuracy` (0.5, chance level). The accuracy is a GAN variable, saved in checkpoints.

    Each discriminator update gets a fresh real batch: a step receives `real_batches_per_step`
    = max(int(scale), d_min) batches (the most the rule can ask for) and uses as many as it
    performs updates, so an epoch has len(data) / (batch * that) steps. The loop runs inside the
    compiled graph (tf.while_loop), also under XLA.

    One replica only: TensorFlow cannot synchronise gradients across replicas inside a loop whose
    trip count is data-dependent (`merge_call` inside control flow), so `compile` refuses a
    strategy with several replicas instead of failing in the middle of `fit`."""

    metric_names = GAN.metric_names + ("d_acc", "d_steps", "g_steps")

    def __init__(self, generator, discriminator, latent_dim=None, *, scale=10.0, d_min=1, g_min=3,
                 initial_accuracy=0.5, **kwargs):
        super().__init__(generator, discriminator, latent_dim, **kwargs)
        if scale <= 0 or d_min < 1 or g_min < 1:
            raise ValueError(f"need scale > 0, d_min >= 1 and g_min >= 1; got {scale}, {d_min}, {g_min}")
        if not 0.0 <= initial_accuracy <= 1.0:
            raise ValueError(f"initial_accuracy must be in [0, 1], got {initial_accuracy}")
        self.scale, self.d_min, self.g_min = float(scale), int(d_min), int(g_min)
        self.initial_accuracy = float(initial_accuracy)
        # (correct, total) of the last discriminator update, float64 so 10 * 7/10 is exactly 7. The
        # initial accuracy as a count out of 10^6: initialisers pass through float32, integers stay exact.
        self.last_correct = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_correct",
                                            initializer=keras.initializers.Constant(round(self.initial_accuracy * 1e6)))
        self.last_total = self.add_weight(shape=(), dtype="float64", trainable=False, name="last_total",
                                          initializer=keras.initializers.Constant(1e6))

    def compile(self, *args, **kwargs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            raise ValueError(
                f"DynamicGAN needs a single replica (this strategy has {replicas}): its data-dependent number of "
                "updates per step cannot contain tf.distribute's gradient synchronisation. Train it without a "
                "multi-device strategy, or use dcgan/lsgan/wgan/wgan-gp for multi-device runs."
            )
        super().compile(*args, **kwargs)

    @property
    def real_batches_per_step(self):
        return max(int(self.scale), self.d_min)

    def observe_discriminator(self, real_logits, fake_logits):
        correct = tf.reduce_sum(tf.cast(real_logits > 0, tf.float64)) + tf.reduce_sum(tf.cast(fake_logits < 0, tf.float64))
        self.last_correct.assign(correct)
        self.last_total.assign(tf.cast(tf.size(real_logits) + tf.size(fake_logits), tf.float64))

    def updates_for(self, correct, total):
        """The report's rule in float64, multiplying before dividing so 10 * 7/10 is exactly 7."""
        d_updates = tf.floor(tf.maximum(self.scale * correct / total, self.d_min))
        g_updates = tf.floor(tf.maximum(self.scale * (total - correct) / total, self.g_min))
        return tf.cast(d_updates, tf.int32), tf.cast(g_updates, tf.int32)

    def schedule(self, real):
        correct, total = tf.identity(self.last_correct), tf.identity(self.last_total)
        d_updates, g_updates = self.updates_for(correct, total)
        d_updates = tf.minimum(d_updates, self.real_batches_per_step)
        self.trackers["d_acc"].update_state(tf.cast(correct / total, tf.float32))
        self.trackers["d_steps"].update_state(tf.cast(d_updates, tf.float32))
        self.trackers["g_steps"].update_state(tf.cast(g_updates, tf.float32))
        return d_updates, g_updates

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "d_min": self.d_min, "g_min": self.g_min,
                "initial_accuracy": self.initial_accuracy}


# ----------------------------------------------------------------------------- factory

GAN_CLASSES = {"dcgan": DCGAN, "lsgan": LSGAN, "wgan": WGAN, "wgan-gp": WGANGP, "dynamic": DynamicGAN}
ARCHS = {"dcgan": ("dcgan", "dcgan"), "csc412": ("upsample", "dropout")}


def create_gan(name="dcgan", resolution=64, latent_dim=100, *, arch="dcgan", width=64, norm=None, **options) -> GAN:
    """Any GAN of the family with networks that fit it.

    name: dcgan, lsgan, wgan, wgan-gp or dynamic. arch: "dcgan" (Radford et al.) or "csc412" (the
    CSC412 report's upsampling generator and dropout discriminator). norm: the discriminator's
    normalisation; defaults to batch, except layer normalisation for the WGAN-GP critic (the paper
    advises against BatchNorm there). Other options go to the GAN class (label_smoothing, n_critic,
    ema, ...).
    """
    if name not in GAN_CLASSES:
        raise ValueError(f"unknown GAN {name!r}; choose from {', '.join(GAN_CLASSES)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    g_arch, d_arch = ARCHS[arch]
    if norm is None:
        norm = "layer" if name == "wgan-gp" else "batch"
    norm = None if norm == "none" else norm
    generator = models.build_generator(resolution, latent_dim, width, g_arch)
    discriminator = models.build_discriminator(resolution, width, d_arch, norm)
    return GAN_CLASSES[name](generator, discriminator, latent_dim, **options)

