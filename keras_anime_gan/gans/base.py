"""`GAN`: the training loop every model of the family shares, as a `keras.Model` whose
`train_step` runs `schedule()` discriminator updates, then generator updates.

A variant changes only what it owns: its losses (`discriminator_loss`, `generator_loss`,
`discriminator_penalty`), its schedule, its networks (`build_networks`, `Options`), or a seam:

- `run_generator(latents, training)` and `run_discriminator(images, training)` are the only places
  the networks run during training, so augmentation, style mixing or a precision cast is added
  in one place;
- `discriminator_update(real, fake)` and `generator_update(batch_size)` are the one implementation
  of "forward, loss, penalty, scale, apply";
- `regularization_phases()` declares lazy regularisation (StyleGAN2's R1 every 16 steps, path
  length every 4) that runs after the main updates of the steps it is due on, without a new loop:
  `fit` compiles one step function per set of due phases and picks it in Python, so no
  synchronisation sits inside control flow and it works under every tf.distribute strategy.

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

import contextlib
import dataclasses
import functools
import logging
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ..precision import float32_model, reduced_precision_layers, with_loss_scaling
from ..sampling import latent_width, latents_for_seed, pixel_range, render
from .options import ModelOptions, option

log = logging.getLogger(__name__)


@dataclasses.dataclass
class GANOptions(ModelOptions):
    """What every GAN of the family takes."""

    ema: float | None = option(None, "decay of the generator's weight moving average, e.g. 0.999 (none: off)",
                               minimum=0.0, maximum=1.0, exclusive=True, fixed=True)
    d_learning_rate: float | None = option(None, "discriminator learning rate (default: the model's paper value)",
                                           minimum=0.0, kind="optimizer", aliases=("--d-lr",))
    g_learning_rate: float | None = option(None, "generator learning rate (default: the model's paper value)",
                                           minimum=0.0, kind="optimizer", aliases=("--g-lr",))
    beta_1: float | None = option(None, "Adam beta_1 of both optimizers (default: the model's paper value)",
                                  minimum=0.0, maximum=1.0, kind="optimizer")
    beta_2: float | None = option(None, "Adam beta_2 of both optimizers (default: the model's paper value)",
                                  minimum=0.0, maximum=1.0, kind="optimizer")


@dataclasses.dataclass(frozen=True)
class RegularizationPhase:
    """A lazy regulariser: after the main updates of every `every`-th step, one more update of
    `network` ("discriminator" or "generator") on `loss(real, global_batch)`, per-example values
    (batch,) that already carry their weight (StyleGAN2 multiplies by `every`); `real` may be one
    micro-batch of the step, `global_batch` is the whole step's batch over all replicas. Tracked as
    the metric `name`. `network=None` is a bookkeeping phase: `loss(real, global_batch)` runs for its
    effect (ADA's adjustment of its augmentation probability) and its value is tracked; nothing is
    trained."""

    name: str
    network: str
    every: int
    loss: Callable


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
        micro_batch: images per forward and backward pass (None: the whole per-replica batch). A
            smaller divisor of the batch accumulates each update's gradients over several passes
            (NVIDIA's batch_gpu): the same update for the memory of `micro_batch` images, at some
            speed. Networks with batch statistics (BatchNorm, minibatch stddev) see each pass's.
        d_learning_rate, g_learning_rate, beta_1, beta_2: override the paper optimizers'
            settings (`default_optimizers`); None keeps the model's own.

    Data: `fit` takes float images in [-1, 1] or uint8 pixels (converted in the step); other ranges,
    [0, 1] floats included, are refused with a message on the first batch.
    """

    Options = GANOptions
    metric_names: tuple[str, ...] = ("d_loss", "g_loss")
    default_d_learning_rate = 2e-4
    default_g_learning_rate = 2e-4
    ema_copies_buffers = False  # EMA of non-trainable generator variables: averaged (BatchNorm statistics) or copied

    def __init__(self, generator, discriminator, latent_dim=None, *, ema=None, seed=None, d_learning_rate=None,
                 g_learning_rate=None, beta_1=None, beta_2=None, micro_batch=None, name=None, **kwargs):
        super().__init__(name=name or type(self).__name__.lower(), **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim or latent_width(generator))
        if ema is not None and not 0.0 < ema < 1.0:
            raise ValueError(f"ema must be in (0, 1), e.g. 0.999; got {ema}")
        self.ema_decay = ema
        self.seed = seed
        if micro_batch is not None and int(micro_batch) < 1:
            raise ValueError(f"micro_batch must be a positive number of images, got {micro_batch}")
        self.micro_batch = None if micro_batch is None else int(micro_batch)
        self.optimizer_overrides = {"d_learning_rate": d_learning_rate, "g_learning_rate": g_learning_rate,
                                    "beta_1": beta_1, "beta_2": beta_2}
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
        self.phase_steps = None  # steps counted for `regularization_phases`, a variable when there are any
        # The sub-models are built already. Keras would otherwise build this model by calling it
        # on a batch of real images, which `call` (latents -> images) does not accept.
        self.built = True

    # -- made from options (the registry's way) ----------------------------------------

    @classmethod
    def build_networks(cls, resolution: int, options) -> tuple[keras.Model, keras.Model]:
        """(generator, discriminator) for `resolution` from this model's `Options`."""
        raise NotImplementedError(f"{cls.__name__} does not build its own networks; pass them to the constructor")

    @classmethod
    def from_options(cls, resolution: int, options, seed=None) -> "GAN":
        """The GAN with networks built from `options` (an instance of `cls.Options`, validated)."""
        generator, discriminator = cls.build_networks(resolution, options)
        values = {**options.values("model"), **options.values("optimizer")}
        return cls(generator, discriminator, seed=seed, **values)

    @classmethod
    def resolve_options(cls, resolution: int, options):
        """`options` with every value the model would otherwise derive later filled in (StyleGAN2-ADA:
        its preset's widths and depths at `resolution`), so that a run's config.json and start-up
        line show the values in use. Here: `options` as they are."""
        return options

    @classmethod
    def default_batch_size(cls, resolution: int, options) -> int:
        """The global batch a run trains with when none is given: the DCGAN paper's 128."""
        return 128

    # -- Keras plumbing -----------------------------------------------------------------

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, jit_compile=None, **kwargs):
        """Optimizers default to this GAN's paper settings with its overrides (`default_optimizers`).
        Either may have a `keras.optimizers.schedules` learning rate; `model.optimizer` exposes both
        to Keras's learning-rate callbacks (see `GANOptimizers`).

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
        self.d_optimizer = with_loss_scaling(d_optimizer or default_d, self.discriminator)
        self.g_optimizer = with_loss_scaling(g_optimizer or default_g, self.generator)
        # Names that tell the two apart in callbacks' logs (learning_rate_d_optimizer, ...).
        self.d_optimizer.name, self.g_optimizer.name = "d_optimizer", "g_optimizer"
        # Built up front: variables created inside a distributed or XLA step are not allowed.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        # Keras's compile left a default optimizer that nothing uses; callbacks read this one.
        self.optimizer = GANOptimizers(self.d_optimizer, self.g_optimizer)
        if self.regularization_phases() and self.phase_steps is None:
            self.phase_steps = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                               aggregation="only_first_replica", name="phase_steps")

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, with these additions:

        - the first batch is checked: [-1, 1] floats or uint8 pixels, anything else a ValueError;
        - with `real_batches_per_step` k > 1, k consecutive batches form one step (a `tf.data`
          dataset is grouped, an array is batched by `batch_size` x k), so `steps_per_epoch` counts
          steps of k batches; data too small for one step is a ValueError (Keras would train
          nothing and return an empty history);
        - the model's `training_callbacks()` are added;
        - a `tf.data.Dataset` that did not choose `autotune.enabled` trains with tf.data's
          autotuner off: in TensorFlow 2.21 freeing the iterator at the end of `fit` waits for the
          autotuner's next wake-up, up to 60 s of idling after the last batch. AUTOTUNE
          parallelism then defaults to the number of CPU cores."""
        _check_first_batch(x)
        x, kwargs = self._group_real_batches(x, kwargs)
        kwargs = self._with_training_callbacks(args, kwargs)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn it ignores shuffle=True
            cardinality = int(x.cardinality())
            if cardinality == 0 or (cardinality == tf.data.UNKNOWN_CARDINALITY and self.real_batches_per_step > 1
                                    and next(iter(x.take(1)), None) is None):
                # Keras would train nothing and return an empty history without a word.
                raise ValueError(self._no_step_message())
        return super().fit(without_autotune(x), *args, **kwargs)

    def _no_step_message(self) -> str:
        k = self.real_batches_per_step
        per_step = f"{k} real batches per step (one per discriminator update)" if k > 1 else "one real batch per step"
        return (f"{type(self).__name__} would train nothing: the data holds fewer full batches than one step needs, "
                f"{per_step}; give more images or a smaller batch size")

    def learning_rates(self) -> dict:
        """{"d_learning_rate", "g_learning_rate"}: each optimizer's current rate (None for a schedule,
        whose rate is a function of the step)."""
        rates = {}
        for name, optimizer in (("d_learning_rate", self.d_optimizer), ("g_learning_rate", self.g_optimizer)):
            inner = getattr(optimizer, "inner_optimizer", optimizer)
            rates[name] = None if callable(getattr(inner, "_learning_rate", None)) else \
                float(keras.ops.convert_to_numpy(inner.learning_rate))
        return rates

    def set_learning_rates(self, rates: dict) -> None:
        """Assign `learning_rates()`-style rates (None: left alone), e.g. a run's configured rates after a
        checkpoint's optimizer state brought back the ones it had."""
        for name, optimizer in (("d_learning_rate", self.d_optimizer), ("g_learning_rate", self.g_optimizer)):
            if rates.get(name) is not None:
                getattr(optimizer, "inner_optimizer", optimizer).learning_rate = rates[name]

    def training_settings(self, global_batch: int) -> dict:
        """The values this compiled model trains with that its options may leave to be derived (for a
        run's start-up line): both learning rates, as the optimizers hold them."""
        return self.learning_rates()

    def training_callbacks(self) -> list:
        """Callbacks this model needs in every `fit` (StyleGAN2-ADA's watch on p); `fit` adds each
        one whose class is not among the caller's callbacks already."""
        return []

    def _with_training_callbacks(self, args, kwargs):
        own = self.training_callbacks()
        if not own:
            return kwargs
        if len(args) > 4:
            raise TypeError(f"{type(self).__name__}.fit: pass callbacks as a keyword argument (callbacks=[...])")
        callbacks = kwargs.get("callbacks")
        if isinstance(callbacks, keras.callbacks.CallbackList):
            return kwargs  # an already assembled list: left as given
        callbacks = list(callbacks or [])
        callbacks += [callback for callback in own if not any(isinstance(c, type(callback)) for c in callbacks)]
        return {**kwargs, "callbacks": callbacks}

    def make_train_function(self, force=False):
        """Keras's step function; with regularisation phases, one per set of due phases, picked in
        Python before each step from `phase_steps` (see the module docstring)."""
        phases = self.regularization_phases()
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

    def paper_optimizers(self):
        """(discriminator optimizer, generator optimizer) as the model's paper has them:
        Adam(2e-4, beta_1=0.5) as in DCGAN."""
        return (
            keras.optimizers.Adam(self.default_d_learning_rate, beta_1=0.5),
            keras.optimizers.Adam(self.default_g_learning_rate, beta_1=0.5),
        )

    def default_optimizers(self):
        """`paper_optimizers` with the learning rates and betas given to the constructor."""
        overrides = self.optimizer_overrides
        result = []
        for optimizer, rate in zip(self.paper_optimizers(), (overrides["d_learning_rate"], overrides["g_learning_rate"])):
            settings = optimizer.get_config()
            changes = {"learning_rate": rate, "beta_1": overrides["beta_1"], "beta_2": overrides["beta_2"]}
            changed = {key: value for key, value in changes.items() if value is not None and key in settings}
            if not changed:
                result.append(optimizer)
                continue
            result.append(type(optimizer).from_config({**settings, **changed}))
        return tuple(result)

    # -- what variants override ---------------------------------------------------------

    def discriminator_loss(self, real_logits, fake_logits):
        """Per-example discriminator losses (batch,); see `losses`."""
        raise NotImplementedError

    def generator_loss(self, fake_logits):
        """Per-example generator losses (batch,); see `losses`."""
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

    def regularization_phases(self) -> tuple[RegularizationPhase, ...]:
        """Lazy regularisers of this model (none here)."""
        return ()

    def observe_discriminator(self, real_logits, fake_logits):
        """Called with the logits of every discriminator update (DynamicGAN keeps its accuracy)."""

    def discriminator_loss_minimum(self) -> float | None:
        """The lowest discriminator loss this model can reach, which the failure monitor's "D has
        won" rule watches for; None where a lowest value means nothing. Here 0: losses made of
        terms that can each come down to 0 (logistic without label smoothing, hinge, least squares)."""
        return 0.0

    def critic_divergence_bound(self) -> float | None:
        """For a Wasserstein critic, the largest |d_loss| it can give while it stays 1-Lipschitz: the
        failure monitor reports a diverged critic above it. None here: a discriminator that is not
        such a critic."""
        return None

    # -- the seams every forward pass goes through --------------------------------------

    def sample_latent(self, batch_size):
        return self.rng.normal((batch_size, self.latent_dim))

    def run_generator(self, latents, training=True):
        """The generator during training (style mixing would go here)."""
        return self.generator(latents, training=training)

    def run_discriminator(self, images, training=True):
        """The discriminator's logits during training, float32 whatever its compute dtype, so the
        losses are computed in float32 under mixed precision too (augmentation would go here)."""
        return tf.cast(self.discriminator(images, training=training), tf.float32)

    # -- the training loop --------------------------------------------------------------

    def train_step(self, data, due_phases=frozenset()):
        """One step: `schedule()` D updates, the G updates, then the regularisation phases named in
        `due_phases` (the step function of `make_train_function` says which are due)."""
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

        d_updates, g_updates = self.schedule(real)
        batch_size = tf.shape(real)[0]
        if (isinstance(d_updates, int) and isinstance(g_updates, int) and d_updates == g_updates == 1 and k == 1
                and self._passes(real.shape[0]) == 1):
            # One D then one G update on the same fakes, as the PyTorch DCGAN tutorial does: the
            # generator runs forward once per step instead of twice (about 1/4 less compute at 64 px).
            g_loss, d_loss = self.generator_update(batch_size, shared_real=real)
        else:
            d_loss = _repeat(d_updates, lambda index: self.discriminator_update(real_batch(index)))
            g_loss = _repeat(g_updates, lambda index: self.generator_update(batch_size)[0])
        self._run_due_phases(real_batch(0), due_phases)
        self.trackers["d_loss"].update_state(d_loss)
        self.trackers["g_loss"].update_state(g_loss)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs with strategy.reduce(..., axis=0), which needs an axis.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def discriminator_update(self, real, fake=None):
        """One discriminator update on `real` and `fake` (generated here when None, in the same
        micro-batches as `real`); returns the mean loss without the penalty."""
        given = fake is not None
        inputs = (real, tf.stop_gradient(fake)) if given else (real, self.sample_latent(tf.shape(real)[0]))

        def losses(real, fake_or_latents):
            fake = fake_or_latents if given else tf.stop_gradient(self.run_generator(fake_or_latents, training=True))
            real_logits = self.run_discriminator(real)
            fake_logits = self.run_discriminator(fake)
            per_example = self.discriminator_loss(real_logits, fake_logits)
            penalty = self.discriminator_penalty(real, fake)
            self.observe_discriminator(tf.stop_gradient(real_logits), tf.stop_gradient(fake_logits))
            return (per_example if penalty is None else per_example + penalty), per_example

        return self._apply_in_passes(self.d_optimizer, self.discriminator.trainable_variables, losses, inputs)

    def generator_update(self, batch_size, shared_real=None):
        """One generator update on fresh latents; returns (mean loss, discriminator loss or None).

        shared_real: first update the discriminator on these real images and the same fakes, which
        the generator update then scores with the just-updated discriminator (one pass only)."""
        latents = self.sample_latent(batch_size)
        if shared_real is None:
            def losses(latents):
                per_example = self.generator_loss(self.run_discriminator(self.run_generator(latents, training=True)))
                return per_example, per_example

            g_loss = self._apply_in_passes(self.g_optimizer, self.generator.trainable_variables, losses, (latents,))
            self._update_ema(batch_size)
            return g_loss, None
        with tf.GradientTape() as tape:
            fake = self.run_generator(latents, training=True)
            d_loss = self.discriminator_update(shared_real, fake)
            per_example = self.generator_loss(self.run_discriminator(fake))
        self._apply(self.g_optimizer, tape, per_example, self.generator.trainable_variables)
        self._update_ema(batch_size)
        return tf.reduce_mean(per_example), d_loss

    def _apply(self, optimizer, tape, per_example, variables):
        """Average `per_example` over the global batch, scale it for float16, apply its gradients.
        Call after the tape's `with` block."""
        with tape:
            scaled = optimizer.scale_loss(tf.nn.compute_average_loss(per_example))
        self._apply_gradients(optimizer, tape.gradient(scaled, variables), variables)

    def _apply_gradients(self, optimizer, gradients, variables):
        gradients = self.clean_gradients(gradients)
        # A regulariser may not reach every variable (R1 never reaches D's output bias).
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])

    def _passes(self, batch_size):
        """How many micro-batches a per-replica batch of `batch_size` (a Python int, or None when
        unknown) is split into: 1 without `micro_batch` or when the batch is no larger."""
        if not self.micro_batch or (batch_size is not None and batch_size <= self.micro_batch):
            return 1
        if batch_size is not None and batch_size % self.micro_batch:
            raise ValueError(f"micro_batch {self.micro_batch} does not divide the per-replica batch {batch_size}; "
                             f"pick a divisor of it")
        return None if batch_size is None else batch_size // self.micro_batch

    def _apply_in_passes(self, optimizer, variables, losses, inputs):
        """Apply to `variables` the gradient of the objective averaged over the global batch, and
        return the reported loss's mean over this replica's batch.

        losses(*inputs) -> (objective, reported), per-example values (n,), run under a tape. With
        `micro_batch` m below the batch, `inputs` (split along their first axis) go through in
        passes of m examples and the passes' gradients are summed before one update: the same
        update (up to the minibatch statistics of each pass, as NVIDIA's batch_gpu) with the
        activation memory of m examples. One replica loops in a `tf.while_loop` (traced once);
        several unroll the passes, since the cross-replica sums of ADA and path length cannot
        sit inside control flow under MirroredStrategy. XLA on a CPU unrolls them too: it runs
        convolution gradients inside a loop's body far slower (a filter gradient ~90x, measured
        on TensorFlow 2.21), so the loop made a tiny StyleGAN2-ADA's passes ~9x slower."""
        passes = self._passes(inputs[0].shape[0])
        if passes == 1:
            with _tape_of(variables) as tape:
                objective, reported = losses(*inputs)
            self._apply(optimizer, tape, objective, variables)
            return tf.reduce_mean(reported)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        micro = self.micro_batch
        if passes is None:  # a batch of unknown size (e.g. the last, partial batch of an array)
            if replicas > 1:
                raise ValueError("micro_batch under several replicas needs batches of a fixed size: batch a "
                                 "tf.data.Dataset with drop_remainder=True")
            tf.debugging.assert_equal(tf.shape(inputs[0])[0] % micro, 0, message=(
                f"micro_batch {micro} does not divide this batch; use batches of a multiple of it "
                f"(drop_remainder=True)"))
        count = tf.shape(inputs[0])[0] // micro
        split = [tf.reshape(x, tf.concat([[-1, micro], tf.shape(x)[1:]], 0)) for x in inputs]
        reached = []  # which variables the objective reaches, found while tracing a pass

        def one_pass(index):
            chunk = [tf.ensure_shape(x[index], [micro, *inputs[i].shape[1:]]) for i, x in enumerate(split)]
            with _tape_of(variables) as tape:
                objective, reported = losses(*chunk)
                share = tf.shape(objective)[0] * count * replicas  # this pass's part of the global batch
                scaled = optimizer.scale_loss(tf.nn.compute_average_loss(objective, global_batch_size=share))
            gradients = tape.gradient(scaled, variables)
            reached[:] = [g is not None for g in gradients]
            gradients = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                         for g, v in zip(gradients, variables)]
            return gradients, tf.reduce_sum(tf.cast(reported, tf.float32)), tf.cast(tf.size(reported), tf.float32)

        xla_on_cpu = self.jit_compile is True and not tf.config.list_logical_devices("GPU")
        if replicas > 1 or (xla_on_cpu and passes is not None):
            results = [one_pass(index) for index in range(passes)]
            sums = [tf.add_n(parts) for parts in zip(*(r[0] for r in results))]
            total, size = tf.add_n([r[1] for r in results]), tf.add_n([r[2] for r in results])
        else:
            def body(index, sums, total, size):
                gradients, part, part_size = one_pass(index)
                return index + 1, [a + g for a, g in zip(sums, gradients)], total + part, size + part_size

            zeros = [tf.zeros_like(v) for v in variables]
            _, sums, total, size = tf.while_loop(lambda index, *_: index < count, body,
                                                 (tf.constant(0), zeros, tf.constant(0.0), tf.constant(0.0)))
        self._apply_gradients(optimizer, [g if ok else None for g, ok in zip(sums, reached)], variables)
        return total / size

    def clean_gradients(self, gradients):
        """The gradients an update applies; a model may make them safe here (StyleGAN2 replaces
        non-finite values so one bad batch cannot destroy a run)."""
        return gradients

    def _run_due_phases(self, real, due):
        if self.phase_steps is None:
            return
        global_batch = global_batch_size(real)  # of the whole step: the passes below may split `real`
        for phase in self.regularization_phases():
            if phase.name not in due:
                continue
            if phase.network is None:
                per_example = phase.loss(real, global_batch)
            else:
                network = self.discriminator if phase.network == "discriminator" else self.generator
                optimizer = self.d_optimizer if phase.network == "discriminator" else self.g_optimizer
                mean = self._apply_in_passes(optimizer, network.trainable_variables,
                                             lambda real: (phase.loss(real, global_batch),) * 2, (real,))
            if phase.name in self.trackers:
                self.trackers[phase.name].update_state(mean if phase.network else tf.reduce_mean(per_example))
        self.phase_steps.assign_add(1)

    def ema_decay_now(self, updates, global_batch):
        """The ramped decay after `updates` previous updates: min(ema, (1 + t) / (10 + t)). A model
        whose decay depends on the batch (StyleGAN2's half-life in images) reads `global_batch`."""
        return tf.minimum(tf.constant(self.ema_decay, tf.float32), (1.0 + updates) / (10.0 + updates))

    def _update_ema(self, batch_size):
        """Average the generator into the EMA weights after an update on `batch_size` images per replica."""
        if self._ema_weights:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            decay = self.ema_decay_now(self.ema_updates, batch_size * replicas)
            for average, variable in zip(self._ema_weights, self.generator.variables):
                value = tf.cast(variable, average.dtype)
                if self.ema_copies_buffers and not variable.trainable:
                    average.assign(value)  # e.g. StyleGAN's w_avg: the live value, not an average of it
                else:
                    average.assign(decay * average + (1.0 - decay) * value)
            self.ema_updates.assign_add(1.0)

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

        truncation: psi of the generator's truncation trick (`sampling.generate_images`); values
        below 1 trade variety for quality.
        """
        latents = latents_for_seed(num_images, self.latent_dim, seed)
        return render(self.sampling_generator(), latents, batch_size, truncation=truncation)

    def sampling_generator(self):
        """`ema_generator` as a float32 model: what `generate` draws with. A generator trained in
        bfloat16 or float16 is copied into float32 (`precision.float32_model`, cached and refreshed with
        the current weights), so `generate` gives the pictures the float32 export and
        `generate --seeds` give, whatever the training precision. A method, not a property: Keras's
        weight saving visits every property, and would save the copy a second time."""
        generator = self.ema_generator
        if not reduced_precision_layers(generator):
            return generator
        cache = self.__dict__.get("_float32_generator_cache")
        if cache is None:
            cache = float32_model(generator)
            self.__dict__["_float32_generator_cache"] = cache
        else:
            cache.set_weights(generator.get_weights())
        return cache

    def get_config(self):
        return {"latent_dim": self.latent_dim, "ema": self.ema_decay, "seed": self.seed, "micro_batch": self.micro_batch}


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
    when oneDNN is off (the README's benchmark section has the measured ratios)."""
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


@contextlib.contextmanager
def _tape_of(variables):
    """A tape recording only what depends on `variables`: `losses` may run the other network (the
    discriminator update generates its fakes inside it), whose activations it need not keep."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([getattr(v, "value", v) for v in variables])  # Keras variables wrap a tf.Variable
        yield tape


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


def global_batch_size(images):
    """The batch of a whole step: this replica's `images` times the replicas (an int32 tensor)."""
    return tf.shape(images)[0] * tf.distribute.get_strategy().num_replicas_in_sync
