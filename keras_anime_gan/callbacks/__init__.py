"""Keras callbacks for GAN training, one concern per module. Each works in any `gan.fit(...)`;
`training.train` combines them.

- `pictures`: `SampleGrid` (a fixed latent grid every few epochs), `Timelapse` / `make_timelapse`;
- `history`: `HistoryLog` writes history.csv, `history_rows` reads it (`history_columns` as columns);
- `monitor`: `TrainingMonitor` (non-finite metrics, D has won or a critic diverged, mode collapse),
  `sample_diversity`;
- `run_checkpoint`: `RunCheckpoint`, when to checkpoint (`keras_anime_gan.checkpoints` is how);
- `metric`: `MetricCallback`, sample-quality metrics during training;
- `best`: `BestGenerator`, the generator of the epoch with the best metric;
- `plotting`: `LossPlot` / `plot_history` (history.csv), `plot_metrics` (metrics.jsonl);
- `status`: `RunStatus`, status.json's epoch kept current while a run trains;
- `run`: `Run`, the state of one run, which the other callbacks of `training.train` share;
- `budget`: `TrainingBudget`, the run's images and minutes, and the budget that stops it;
  `LearningRateDecay`, both learning rates decayed to zero over the last part of a run.
"""

from .best import BestGenerator
from .budget import LearningRateDecay, TrainingBudget
from .history import HistoryLog, history_columns, history_rows
from .metric import MetricCallback
from .monitor import TrainingMonitor, sample_diversity
from .pictures import SampleGrid, Timelapse, make_timelapse
from .plotting import LossPlot, plot_history, plot_metrics
from .run import Run
from .run_checkpoint import RunCheckpoint
from .status import RunStatus

__all__ = [
    "BestGenerator", "HistoryLog", "LearningRateDecay", "LossPlot", "MetricCallback", "Run", "RunCheckpoint", "TrainingBudget", "RunStatus", "SampleGrid", "Timelapse", "TrainingMonitor",
    "history_columns", "history_rows", "make_timelapse", "plot_history", "plot_metrics", "sample_diversity",
]
