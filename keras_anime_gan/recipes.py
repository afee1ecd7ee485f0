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


RECIPES = {
    "cpu-minutes": Recipe("up to an hour on a CPU", "lightweight", {"spectral_norm": "discriminator", "augment": "none"},
                          "--model lightweight --spectral-norm discriminator --augment none",
                          "at 64 px on 18,985 faces: colour distance 1.50 (1.9x the floor) and SWD 22.7 (2.3x) at "
                          "30 minutes, the truest colours of all runs (at Adam 5e-4 SWD 20.0, but colours that swing); "
                          "on 1,000 faces ahead of DiffAugment (SWD 24.1, colour 4.09 against 24.4, 7.43, first "
                          "page); on 100 faces far truer colours at a slightly higher SWD"),
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
