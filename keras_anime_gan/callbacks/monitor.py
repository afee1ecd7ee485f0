"""The failure monitor: non-finite metrics, a discriminator that has won (or a critic that has
diverged) and mode collapse, the failures the reports watched for by eye."""

from __future__ import annotations

import logging
import time

import keras
import numpy as np

from ..sampling import as_uint8_images, latents_for_seed, render
from ._logs import _non_finite_logs, _scalar
from .run import Run

log = logging.getLogger(__name__)


def sample_diversity(images: np.ndarray) -> float:
    """Mean pairwise RMS distance between images in [0, 1] units: near 0 when samples collapse."""
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    squared = (flat**2).sum(1)
    distances = np.maximum(squared[:, None] + squared[None] - 2 * flat @ flat.T, 0.0) / flat.shape[1]
    upper = np.triu_indices(len(images), 1)
    return float(np.sqrt(distances[upper]).mean())


class TrainingMonitor(keras.callbacks.Callback):
    """Watches for the failures the reports watched for by eye.

    - any metric NaN or infinite: warns, and always stops (nothing useful follows);
    - the discriminator has won: D's loss stays within `d_loss_margin` of the lowest value it can
      reach, the objective's `discriminator_loss_minimum()`, for `patience` consecutive batches. That
      minimum is 0 for most losses, but DCGAN's label smoothing s moves its BCE targets to 1 - s
      and s (0 when one-sided), which cannot be hit with zero loss: its minimum is
      0.5 * (H(1 - s) + H(s)), about 0.325 for s = 0.1. No rule where the model has no minimum;
    - a Wasserstein critic (an objective whose `critic_divergence_bound()` is not None) has no floor,
      so "D has won" means nothing there; instead the critic has diverged when its Wasserstein
      estimate |d_loss| stays above `critic_bound` for `patience` consecutive batches. By default
      that is the model's bound, the most a 1-Lipschitz critic can give on its images,
      2 * sqrt(height x width x channels): beyond it the Lipschitz constraint (gradient penalty or
      clipping, both keep the constant near or below 1) has failed. A bound relative to the
      estimate's own running level would misfire: |d_loss| rightly grows by orders of magnitude
      early on, from about 0 for an untrained critic. Where it explodes to inf or NaN, the first
      rule stops the run;
    - mode collapse, from the sample diversity of a fixed latent grid: it falls below
      `collapse_ratio` x the highest diversity this run has shown (a collapse after training went
      well), or, after `warmup_epochs`, below `collapse_ratio` x the diversity of `real_images`
      (uint8 pixels or [-1, 1] floats; an untrained generator is nearly constant, so the real
      reference waits for the warm-up).
    Diversity is added to the epoch logs as `diversity`, and with `real_images` the colour distance
    of the same samples to them (`metrics.color_distance`) as `sample_color`. Each kind of warning is logged once (a
    `logging` warning, shown on stderr when logging is not configured), every occurrence is kept
    in `run.events`, and it stops training when `stop_on_failure` is set; `run.failure` holds the
    event that stopped training.
    """

    def __init__(self, d_loss_margin=0.01, patience=50, collapse_ratio=0.25, real_images=None, num_samples=64,
                 seed=1234, stop_on_failure=False, check_every=1, warmup_epochs=5, critic_bound=None, run=None):
        super().__init__()
        self.run = run or Run()
        self.d_loss_margin = d_loss_margin
        self.patience, self.collapse_ratio = patience, collapse_ratio
        self.critic_bound = critic_bound
        self.real_diversity = self.real_images = None
        if real_images is not None:
            self.real_images = as_uint8_images(real_images, "TrainingMonitor real_images")
            self.real_diversity = sample_diversity(self.real_images)
        self.num_samples, self.seed, self.stop_on_failure, self.check_every = num_samples, seed, stop_on_failure, check_every
        self.warmup_epochs = warmup_epochs
        self.peak_diversity = 0.0
        self._streak = 0
        self._rule = None
        self._reported = set()

    @property
    def events(self) -> list[dict]:
        return self.run.events

    @property
    def failure(self) -> dict | None:
        return self.run.failure

    def _event(self, kind, message, stop):
        self.run.events.append({"kind": kind, "message": message, "time": time.time()})
        if kind not in self._reported:
            log.warning("training monitor: %s", message)
            self._reported.add(kind)
        if stop:
            self.run.fail(kind, message)
            self.model.stop_training = True

    def _discriminator_rule(self):
        """(critic, threshold), asked of the model's objective once: a critic has diverged above the
        bound, any other discriminator has won below its minimum + `d_loss_margin` (None: no rule)."""
        if self._rule is None:
            objective = self.model.objective
            bound = objective.critic_divergence_bound()
            if bound is not None:
                self._rule = (True, self.critic_bound if self.critic_bound is not None else bound)
            else:
                self._rule = (False, objective.discriminator_loss_minimum())
        return self._rule

    def on_train_begin(self, logs=None):
        self._rule, self._streak = None, 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = _non_finite_logs(logs)
        if bad:
            self._event("non_finite", f"non-finite metrics {bad} at batch {batch}; stopping", stop=True)
            return
        d_loss = _scalar(logs["d_loss"]) if "d_loss" in logs else None
        if d_loss is None:
            return
        critic, threshold = self._discriminator_rule()
        if threshold is None:
            return
        if critic:
            flagged = abs(d_loss) > threshold
        else:
            flagged = d_loss < threshold + self.d_loss_margin
        self._streak = self._streak + 1 if flagged else 0
        if self._streak != self.patience:
            return
        if critic:
            self._event(
                "critic_diverged",
                f"the critic's Wasserstein estimate |d_loss| has stayed above {threshold:.4g} (the most a 1-Lipschitz "
                f"critic can give on these images) for {self.patience} batches, now {abs(d_loss):.4g}: the critic has "
                "diverged (try a lower critic learning rate, a larger --gp-weight, or a critic without BatchNorm)",
                stop=self.stop_on_failure,
            )
        else:
            lowest = f"its lowest possible value {threshold:.4f}" if threshold else "0, its lowest possible value"
            self._event(
                "d_won",
                f"discriminator loss within {self.d_loss_margin} of {lowest} for {self.patience} batches: D has "
                "won, G gets no useful gradient (try label smoothing, a lower D learning rate, or WGAN-GP)",
                stop=self.stop_on_failure,
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.check_every:
            return
        gan = self.model
        latents = latents_for_seed(self.num_samples, gan.latent_dim, self.seed)
        images = render(gan.ema_generator, latents)
        diversity = sample_diversity(images)
        if logs is not None:
            logs["diversity"] = diversity
            if self.real_images is not None:
                # Colour statistics against the real images: a drift that SWD cannot see (milliseconds).
                from ..metrics import color_distance

                logs["sample_color"] = float(color_distance(self.real_images, images)["color"])
        references = [("this run's peak", self.peak_diversity)]
        if self.real_diversity is not None and epoch + 1 >= self.warmup_epochs:
            references.append(("real images", self.real_diversity))
        for name, reference in references:
            if reference > 0 and diversity < self.collapse_ratio * reference:
                self._event(
                    "mode_collapse",
                    f"sample diversity {diversity:.4f} is below {self.collapse_ratio} x {name} ({reference:.4f}): "
                    "the generator is collapsing onto few outputs",
                    stop=self.stop_on_failure,
                )
                break
        self.peak_diversity = max(self.peak_diversity, diversity)
