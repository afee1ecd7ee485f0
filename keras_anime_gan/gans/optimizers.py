"""The two optimizers of a GAN as Keras's callbacks see them, and their learning rates."""

from __future__ import annotations

import keras

NAMES = ("d_learning_rate", "g_learning_rate")


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

    def learning_rates(self) -> dict:
        """{"d_learning_rate", "g_learning_rate"}: each optimizer's current rate (None for a schedule,
        whose rate is a function of the step)."""
        rates = {}
        for name, optimizer in zip(NAMES, self.optimizers):
            inner = getattr(optimizer, "inner_optimizer", optimizer)
            # `_learning_rate` is Keras's (private) storage: callable for a schedule.
            rates[name] = None if callable(getattr(inner, "_learning_rate", None)) else \
                float(keras.ops.convert_to_numpy(inner.learning_rate))
        return rates

    def set_learning_rates(self, rates: dict) -> None:
        """Assign `learning_rates()`-style rates (None: left alone), e.g. a run's configured rates after a
        checkpoint's optimizer state brought back the ones it had."""
        for name, optimizer in zip(NAMES, self.optimizers):
            if rates.get(name) is not None:
                getattr(optimizer, "inner_optimizer", optimizer).learning_rate = rates[name]
