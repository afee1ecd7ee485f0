"""`GAN`: the training loop every model shares, as a `keras.Model` whose `train_step` runs its
objective's schedule of discriminator and generator updates, then the lazy regularisation phases
that are due, and keeps the generator's moving average. What a model trains for (losses, schedule,
phases, optimizers, the seams) is its `Objective` (`objective.py`).

Phases need no new loop: `fit` compiles one step function per set of due phases and picks it in
Python before each step, so no gradient synchronisation sits inside control flow and phases work
under every tf.distribute strategy. A step that makes one D and one G update on one real batch
scores the same fakes twice (as the PyTorch DCGAN tutorial does): the generator runs forward once
per step instead of twice.

Real data per step: an objective that updates the discriminator k times per step
(`real_batches_per_step`: WGAN's n_critic, the dynamic schedule's largest) gives every update a
fresh real batch, as Algorithm 1 of the WGAN papers does; `fit` groups k consecutive batches into
one step, so an epoch has len(data) / (batch * k) steps.

Distribution: per-example losses are averaged over the global batch (`passes.Update`), and every
random draw comes from the GAN's `tf.random.Generator`, which gives each replica its own stream and
is saved in checkpoints so a resumed run continues the same sequence.
"""

from __future__ import annotations

import functools
import logging

import keras
import tensorflow as tf

from .. import onednn as onednn_switch
from ..precision import with_loss_scaling
from ..sampling import latent_width, latents_for_seed, render
from . import fitting
from .ema import RampedDecay, RefreshStatistics, average_of, batch_norm_layers, refresh_statistics, update_average
from .objective import Networks, Objective
from .optimizers import GANOptimizers
from .options import GANOptions, MadeFromOptions
from .passes import Update, passes_for

log = logging.getLogger(__name__)
STATISTICS_STREAM = 0x5EED  # seed half of the latents that refresh the EMA generator's BatchNorm statistics
STATISTICS_BATCH = 32  # latents per replica in each refresh


class GAN(MadeFromOptions, keras.Model):
    """A generator and a discriminator trained adversarially for `objective` by `fit`.

    Args:
        generator: latent (batch, latent_dim) -> images in [-1, 1].
        discriminator: images -> logits (batch, 1).
        latent_dim: width of z; read from the generator when omitted.
        objective: an `Objective` (default: the class's `Objective` made from `**options`).
        ema: the generator's moving average: a decay such as 0.999 (`ema.RampedDecay`), a schedule
            (`ema.HalfLife`), or None for none. `generate`, `ema_generator` and the export use it.
        seed: seed of the random stream (latents, penalties, augmentation).
        micro_batch: images per forward and backward pass (None: the whole per-replica batch); a
            smaller divisor accumulates each update's gradients over several passes.
        **options: the objective's options (learning rates, loss settings), checked by the
            model's `Options`.

    Data: `fit` takes float images in [-1, 1] or uint8 pixels (converted in the step); other ranges,
    [0, 1] floats included, are refused with a message on the first batch.
    """

    Options = GANOptions  # the model's options, checked in one place (`options.option` metadata)
    Objective = Objective

    def __init__(self, generator, discriminator, latent_dim=None, *, objective=None, ema=None, seed=None,
                 micro_batch=None, name=None, **options):
        super().__init__(name=name or type(self).__name__.lower(), **_keras_kwargs(options))
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = int(latent_dim or latent_width(generator))
        if objective is not None and options:
            raise TypeError(f"give {type(self).__name__} an objective or its options, not both: {sorted(options)}")
        given = {"micro_batch": micro_batch, **options, **({} if callable(ema) else {"ema": ema})}
        self.Options.checked(given, model=type(self).__name__)  # ConfigError naming a bad value
        self.micro_batch = micro_batch
        self.seed = seed
        self.rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()
        self.objective = objective if objective is not None else self.Objective(**options)
        self.trackers = {name: (LatestValue if name in self.objective.latest_metric_names else keras.metrics.Mean)(
            name=name) for name in self.objective.metric_names}
        self.objective.bind(Networks(generator, discriminator, self.rng, self.trackers, self.latent_dim))
        self.ema = ema if ema is None or callable(ema) else RampedDecay(ema)
        # The average is a frozen clone saved with the GAN; without one, the generator itself.
        self.ema_generator = generator if self.ema is None else average_of(generator)
        self.ema_updates = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float32",
                                           aggregation="only_first_replica", name="ema_updates")
        self.phase_steps = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                           aggregation="only_first_replica", name="phase_steps") \
            if self.objective.phases() else None  # steps counted for the objective's phases
        # The sub-models are built already. Keras would otherwise build this model by calling it
        # on a batch of real images, which `call` (latents -> images) does not accept.
        self.built = True

    # -- Keras plumbing -----------------------------------------------------------------

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def real_batches_per_step(self) -> int:
        return self.objective.real_batches_per_step

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, jit_compile=None, **kwargs):
        """Optimizers default to the objective's recipe (`Objective.optimizers`). Either may have a
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
        self.objective.check_replicas(replicas)
        super().compile(jit_compile=jit_compile, **kwargs)
        default_d, default_g = (None, None) if d_optimizer and g_optimizer else self.objective.optimizers()
        self.d_optimizer = with_loss_scaling(d_optimizer or default_d, self.discriminator)
        self.g_optimizer = with_loss_scaling(g_optimizer or default_g, self.generator)
        # Names that tell the two apart in callbacks' logs (learning_rate_d_optimizer, ...).
        self.d_optimizer.name, self.g_optimizer.name = "d_optimizer", "g_optimizer"
        # Built up front: variables created inside a distributed or XLA step are not allowed.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        # Keras's compile left a default optimizer that nothing uses; callbacks read this one.
        self.optimizer = GANOptimizers(self.d_optimizer, self.g_optimizer)

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, after checking the first batch ([-1, 1] floats or uint8 pixels),
        grouping `real_batches_per_step` batches into each step (`steps_per_epoch` counts steps),
        adding the objective's `training_callbacks()` (and `ema.RefreshStatistics` where the average
        has BatchNorm), refusing data too small for one step, and turning tf.data's autotuner off
        where the dataset did not choose (`fitting`)."""
        model_name = type(self).__name__
        onednn_switch.warn_if_off()  # once: TensorFlow was imported first, so it runs its slower kernels
        fitting.check_first_batch(x)
        x, kwargs = fitting.group_real_batches(x, kwargs, self.real_batches_per_step, self.seed, model_name)
        own = list(self.objective.training_callbacks())
        if self.ema is not None and batch_norm_layers(self.ema_generator):
            own.append(RefreshStatistics(self))
        kwargs = fitting.with_callbacks(own, args, kwargs, model_name)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn it ignores shuffle=True
            fitting.check_one_step(x, self.real_batches_per_step, model_name)
        return super().fit(fitting.without_autotune(x), *args, **kwargs)

    def make_train_function(self, force=False):
        """Keras's step function; with phases, one per set of due phases, picked in Python before each
        step from `phase_steps`."""
        phases = self.objective.phases()
        if not phases:
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution != 1:
            raise ValueError(f"{type(self).__name__} has regularisation phases, which need steps_per_execution=1")
        functions = {}

        def train_function(iterator):
            step = int(keras.ops.convert_to_numpy(self.phase_steps))
            due = frozenset(phase.name for phase in phases if step % phase.every == 0)
            if due not in functions:  # Keras's (private) step builder, as its own make_train_function uses
                functions[due] = self._make_function(functools.partial(self.train_step, due_phases=due))
            return functions[due](iterator)

        self.train_function = train_function
        return train_function

    def training_settings(self) -> dict:
        """The values this compiled model trains with (for a run's start-up line): both learning rates,
        as the optimizers hold them, and the objective's own."""
        return {**self.optimizer.learning_rates(), **self.objective.training_settings()}

    # -- the step -----------------------------------------------------------------------

    def train_step(self, data, due_phases=frozenset()):
        """One step: the objective's D updates, its G updates, then the phases in `due_phases`."""
        real = data[0] if isinstance(data, (tuple, list)) else data
        real = tf.cast(real, tf.float32) / 127.5 - 1.0 if real.dtype == tf.uint8 else tf.cast(real, tf.float32)
        k = self.real_batches_per_step
        if k > 1 and (real.shape.rank < 3 or real.shape[1] not in (k, None)):
            raise ValueError(f"{type(self).__name__} takes {k} real batches per step, grouped as (batch, {k}, ...); "
                             f"GAN.fit groups them for you (got shape {real.shape})")

        def real_batch(index):
            if k == 1:
                return real
            return real[:, index] if isinstance(index, int) else tf.gather(real, index, axis=1)

        d_updates, g_updates = self.objective.schedule(real)
        batch_size = tf.shape(real)[0]
        if (isinstance(d_updates, int) and isinstance(g_updates, int) and d_updates == g_updates == 1 and k == 1
                and passes_for(real.shape[0], self.micro_batch) == 1):
            g_loss, d_loss = self.generator_update(batch_size, shared_real=real)
        else:
            d_loss = _repeat(d_updates, lambda index: self.discriminator_update(real_batch(index)))
            g_loss = _repeat(g_updates, lambda index: self.generator_update(batch_size)[0])
        self._run_due_phases(real_batch(0), due_phases)
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["g_loss"].update_state(g_loss)
        self.objective.end_step()
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs with strategy.reduce(..., axis=0), which needs an axis.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _update(self, network):
        optimizer = self.d_optimizer if network == "discriminator" else self.g_optimizer
        variables = getattr(self, network).trainable_variables
        return Update(optimizer, variables, self.objective.clean_gradients)

    def _in_passes(self, network, losses, inputs):
        unroll = self.jit_compile is True and not tf.config.list_logical_devices("GPU")  # XLA on a CPU
        return self._update(network).in_passes(losses, inputs, self.micro_batch, unroll)

    def discriminator_update(self, real, fake=None):
        """One discriminator update on `real` and `fake` (generated here when None, in the same
        micro-batches as `real`); returns the mean loss without the penalty."""
        objective, given = self.objective, fake is not None
        inputs = (real, tf.stop_gradient(fake)) if given else (real, objective.sample_latent(tf.shape(real)[0]))

        def losses(real, fake_or_latents):
            fake = fake_or_latents if given else tf.stop_gradient(objective.run_generator(fake_or_latents))
            return objective.discriminator_objective(real, fake)

        return self._in_passes("discriminator", losses, inputs)

    def generator_update(self, batch_size, shared_real=None):
        """One generator update on fresh latents; returns (mean loss, discriminator loss or None).

        shared_real: first update the discriminator on these real images and the same fakes, which
        the generator update then scores with the just-updated discriminator (one pass only)."""
        objective = self.objective
        latents = objective.sample_latent(batch_size)
        if shared_real is None:
            def losses(latents):
                per_example = objective.generator_objective(objective.run_generator(latents))
                return per_example, per_example

            g_loss = self._in_passes("generator", losses, (latents,))
            self._update_ema(batch_size)
            return g_loss, None
        with tf.GradientTape() as tape:
            fake = objective.run_generator(latents)
            d_loss = self.discriminator_update(shared_real, fake)
            per_example = objective.generator_objective(fake)
        self._update("generator").apply(tape, per_example)
        self._update_ema(batch_size)
        return tf.reduce_mean(per_example), d_loss

    def _run_due_phases(self, real, due):
        phases = self.objective.phases()
        if not phases:
            return
        global_batch = tf.shape(real)[0] * tf.distribute.get_strategy().num_replicas_in_sync  # the whole step's
        for phase in phases:
            if phase.name not in due:
                continue
            if phase.network is None:
                value = tf.reduce_mean(phase.loss(real, global_batch))
            else:
                value = self._in_passes(phase.network, lambda real: (phase.loss(real, global_batch),) * 2, (real,))
            if phase.name in self.trackers:
                self.trackers[phase.name].update_state(value)
        self.phase_steps.assign_add(1)

    def _update_ema(self, batch_size):
        """Average the generator into `ema_generator` after an update on `batch_size` images per replica."""
        if self.ema is not None:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            decay = self.ema(self.ema_updates, batch_size * replicas)
            update_average(self.ema_generator, self.generator, decay, self.ema.copies_buffers)
            self.ema_updates.assign_add(1.0)

    def refresh_average_statistics(self, batch_size=STATISTICS_BATCH):
        """One training-mode pass of `ema_generator` on `batch_size` latents per replica: its BatchNorm
        statistics move halfway to those of its own activations (`ema.RefreshStatistics` calls this
        during `fit`; a loop of your own calls it now and then). The latents come from a stateless
        stream of their own (per update and replica), so the training stream is untouched. Nothing
        to do without an average or without BatchNorm."""
        if self.ema is None or not batch_norm_layers(self.ema_generator):
            return
        if getattr(self, "_refresh_function", None) is None:
            def refresh(size):
                replica = tf.distribute.get_replica_context().replica_id_in_sync_group
                seed = tf.stack([tf.cast(self.ema_updates, tf.int64) * 1024 + tf.cast(replica, tf.int64),
                                 tf.constant(STATISTICS_STREAM, tf.int64)])
                refresh_statistics(self.ema_generator, tf.random.stateless_normal((size, self.latent_dim), seed=seed))

            self._refresh_function = tf.function(lambda size: self.distribute_strategy.run(refresh, args=(size,)),
                                                 reduce_retracing=True)
        self._refresh_function(tf.constant(int(batch_size)))

    # -- using the trained generator ----------------------------------------------------

    def generate(self, num_images, seed=None, truncation=None, batch_size=256):
        """`num_images` uint8 images (N, H, W, 3) from `ema_generator`, in float32 whatever the
        training precision; the same seed gives the same images here, in `keras-anime-gan generate
        --seeds` (image i of seed s is `generate(i + 1, s)[i]`) and in the exported `generate`
        signature. truncation: psi of the truncation trick (`sampling.generate_images`)."""
        from ..precision import float32_view

        latents = latents_for_seed(num_images, self.latent_dim, seed)
        return render(float32_view(self.ema_generator), latents, batch_size, truncation=truncation)

    def get_config(self):
        return {"latent_dim": self.latent_dim, "seed": self.seed, "micro_batch": self.micro_batch}


class LatestValue(keras.metrics.Metric):
    """A metric whose result is the last value given to `update_state` (0 after a reset)."""

    def __init__(self, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.latest = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="latest",
                                        aggregation="only_first_replica")

    def update_state(self, value):
        self.latest.assign(tf.cast(value, self.dtype))

    def result(self):
        return tf.identity(self.latest)

    def reset_state(self):
        self.latest.assign(0.0)


def _keras_kwargs(options):
    """Keras's own Model arguments (trainable, dtype) out of `options`."""
    return {key: options.pop(key) for key in ("trainable", "dtype") if key in options}


def _repeat(times, step):
    """Run `step(index)` for index 0..times-1; a Python int unrolls, a tensor becomes a tf.while_loop.
    Returns the last step's value."""
    if isinstance(times, int):
        value = step(0)
        for index in range(1, times):
            value = step(index)
        return value
    _, value = tf.while_loop(lambda index, _: index < times, lambda index, _: (index + 1, step(index)),
                             (tf.constant(0), tf.constant(0.0)))
    return value


def xla_is_faster() -> bool:
    """Whether XLA beats TensorFlow's own kernels for these GANs here: yes on a GPU; on a CPU only
    when oneDNN is off (docs/benchmarks.md has the measured ratios)."""
    if tf.config.list_physical_devices("GPU"):
        return True
    onednn = onednn_switch.is_on()
    if not onednn:
        log.info("TensorFlow's oneDNN kernels are off: training with XLA, which beats TensorFlow's plain kernels")
    return not onednn
