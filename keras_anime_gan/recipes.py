"""Which model to train for a budget: the recommendations that docs/time-to-quality.md measured
(`benchmarks/time_to_quality.py`: every model for the same minutes on the same faces, scored against
faces none of them trained on). A run started without `--model` keeps DCGAN, the reports' baseline,
and its start-up line names the recommended recipe for its resolution and budget (`advice`)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Recipe:
    budget: str  # in words
    model: str
    options: dict
    flags: str  # the command-line flags that give it
    why: str
    settings: dict = dataclasses.field(default_factory=dict)  # run settings (TrainConfig fields) beside the options


RECIPES = {
    "cpu-minutes": Recipe("up to an hour on a CPU", "lightweight",
                          {"spectral_norm": "discriminator", "augment": "none", "d_learning_rate": 5e-4,
                           "g_learning_rate": 5e-4},
                          "--model lightweight --spectral-norm discriminator --augment none --d-lr 5e-4 --g-lr 5e-4 "
                          "--lr-decay 0.5",
                          "at 64 px on 18,985 faces, 2 CPU cores: SWD within 2x its floor at 30 minutes in all 5 "
                          "runs (1.6-1.9x) and colour too at one mark in 3 of 5 (1.7-1.9x at 10, 20 or 25 minutes), "
                          "though its colours swing (2.3-3.3x at 30 minutes); SWD ahead of DCGAN, StyleGAN2-ADA tiny "
                          "and NVIDIA's own stylegan2-ada-pytorch at every 5-minute mark; at a constant Adam 2e-4 the "
                          "truest colours on a slower AMD machine (1.50 at 30 minutes, SWD 22.7); on 1,000 faces "
                          "spectral norm in D without augmentation was ahead of DiffAugment (first page)",
                          {"lr_decay": 0.5}),
    "cpu-hours": Recipe("a few hours on a CPU", "lightweight", {}, "--model lightweight",
                        "ahead at 30 minutes and still improving; if its colours drift, --spectral-norm both kept "
                        "them true (slower SWD, less formed faces at 30 minutes); not measured past 30 minutes"),
    "gpu-day": Recipe("a GPU day", "stylegan2-ada", {"preset": "auto"}, "--model stylegan2-ada --preset auto",
                      "NVIDIA's own recipe, which this package computes exactly; not measured here"),
}


def recommend(minutes=None, gpu=False) -> Recipe:
    """The recipe for a budget of `minutes` (None: not given) on a GPU or a CPU."""
    if gpu:
        return RECIPES["gpu-day"]
    return RECIPES["cpu-minutes"] if minutes is not None and minutes <= 60 else RECIPES["cpu-hours"]


def advice(model, resolution, minutes=None, gpu=False) -> str | None:
    """One sentence for a run of `model` that was not chosen (the default): the recommended recipe,
    or None when the default is it."""
    recipe = recommend(minutes, gpu)
    if recipe.model == model:
        return None
    budget = f"{minutes:g} minutes" if minutes is not None else recipe.budget
    return (f"{model} is the default (the reports' baseline); for {budget} at {resolution} px the time-to-quality "
            f"table recommends {recipe.flags} ({recipe.why}; docs/time-to-quality.md)")
