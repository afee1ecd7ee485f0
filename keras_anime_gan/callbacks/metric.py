"""`MetricCallback`: sample-quality metrics (SWD, colour, KID, FID) during training, with their noise
floor, into the epoch logs, metrics.jsonl and metrics.png."""

from __future__ import annotations

import keras

from ..sampling import as_uint8_images
from .plotting import plot_metrics


FLOOR_RATIO_METRICS = ("swd", "color", "fid")


class MetricCallback(keras.callbacks.Callback):
    """Every `every` epochs: generate `num_images` from fixed seeds, compute `metrics` ("swd",
    "color", "kid", "fid") against a fixed set of real images (uint8 pixels or [-1, 1] floats), add
    them to the epoch logs (so history.csv and TensorBoard get them), append a stylegan2-ada style
    line to `jsonl_path`, and plot every metric over epochs into `plot_path` (the GAN Versus
    report's FID-during-training figure).

    floor_images: a second set of real images, disjoint from `real_images`; the metrics between the
    two at the same n (the noise floor: what a perfect generator would score) are computed once and
    reported beside every value (`swd_floor`, ... in the records, dashed in the plot), and the logs
    gain `floor_ratio`: the largest of SWD's, colour's and FID's ratios to their floors (1: as close
    to the real images as other real images are), the one number `BestGenerator` keeps the best
    epoch by. KID is left out of it: its unbiased floor is about zero, so its ratio measures nothing."""

    def __init__(self, real_images, metrics=("swd", "color"), every=1, num_images=None, extractor=None,
                 inception_weights=None, jsonl_path=None, plot_path=None, seed=0, floor_images=None):
        super().__init__()
        self.real = as_uint8_images(real_images, "MetricCallback real_images")
        self.metrics, self.every = tuple(metrics), every
        self.num_images = num_images or len(self.real)
        self.extractor, self.inception_weights = extractor, inception_weights
        self.jsonl_path, self.plot_path, self.seed = jsonl_path, plot_path, seed
        self.floor_images = None if floor_images is None else as_uint8_images(floor_images, "MetricCallback floor_images")
        self.floor: dict | None = None
        self.records: list[dict] = []

    def _noise_floor(self):
        from ..metrics import noise_floor

        if self.floor is None and self.floor_images is not None:
            count = min(self.num_images, len(self.floor_images))
            self.floor = noise_floor(self.real[:count], self.floor_images[:count], self.metrics, self.extractor,
                                     self.inception_weights)
        return self.floor or {}

    def on_epoch_end(self, epoch, logs=None):
        from ..metrics import append_jsonl, compute_metrics, metric_name

        if (epoch + 1) % self.every:
            return
        gan = self.model
        fake = gan.generate(self.num_images, seed=self.seed)
        results = compute_metrics(self.real[: self.num_images], fake, self.metrics, self.extractor, self.inception_weights)
        floor = self._noise_floor()
        ratios = [results[name] / floor[f"{name}_floor"] for name in FLOOR_RATIO_METRICS
                  if name in results and floor.get(f"{name}_floor", 0) > 0]
        if ratios:
            results["floor_ratio"] = max(ratios)
        if logs is not None:
            logs.update(results)
        record = {"epoch": epoch + 1, "num_images": self.num_images, "results": results,
                  "metrics": [metric_name(m, self.num_images) for m in self.metrics]}
        if floor:
            record["noise_floor"] = floor
        self.records.append(record)
        if self.jsonl_path:
            append_jsonl(self.jsonl_path, record)
        if self.plot_path:
            plot_metrics(self.jsonl_path, self.plot_path, records=None if self.jsonl_path else self.records)
