"""GAN Versus in one command: train every model of the family under the same time budget, then
compare them in one table (SWD and colour distance beside their real-vs-real noise floor at the
same n, KID/FID when the Inception weights exist, images/s, wall time, updates) with one sample
grid per model, like the reports' comparison tables.

    python benchmarks/versus.py --data PATH --budget-minutes 12 [--resolution 32] [--real HELD_OUT] [--out versus]

With no --data it uses the embedded synthetic faces. --real names faces the runs never train on
(converted TFRecords or a folder); without it the metrics compare against faces of --data itself
(two disjoint sets of them give the noise floor). KID and FID use InceptionV3 when its weights file
is present (see keras_anime_gan.metrics); otherwise the table says so.

Only the package's public interface is used (`TrainConfig.from_json`, `train(..., callbacks=)`,
`loading.load_generator`, `sampling`, `metrics`), so `benchmarks/showcase.py` reuses these helpers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
import keras_anime_gan  # noqa: E402,F401,I001  (before TensorFlow: oneDNN's kernels on)

ENTRIES = [  # (label, slug, model, options: flat TrainConfig fields, or "model_options": {...} for a model's own)
    ("DCGAN", "dcgan", "dcgan", {}),
    ("DCGAN fuzzy labels + separate rates", "dcgan-fuzzy", "dcgan",
     {"label_smoothing": 0.1, "d_learning_rate": 1e-4, "g_learning_rate": 5e-4}),
    ("LSGAN", "lsgan", "lsgan", {}),
    ("WGAN (clipping)", "wgan", "wgan", {}),
    ("WGAN-GP", "wgan-gp", "wgan-gp", {"norm": "layer"}),
    ("Dynamic schedule (CSC412)", "dynamic", "dynamic", {}),
    # NVIDIA's networks with a few channels (the tiny preset: 64 at most, z and w 64-d), ADA, lazy R1 and path
    # length. `width` does not apply (its channels come from the preset; run_values' width is dropped for it), nor
    # `--ema` (its EMA is always on, a half-life of batch x 10/32 kimg, ramped up over the first images): ema None.
    ("StyleGAN2-ADA (tiny preset)", "stylegan2-ada", "stylegan2-ada",
     {"ema": None, "model_options": {"preset": "tiny"}}),
]


def select_entries(only: str | None) -> list:
    """ENTRIES named in the comma-separated `only` by slug (dcgan, dcgan-fuzzy, lsgan, wgan, wgan-gp, dynamic,
    stylegan2-ada); all without it."""
    if not only:
        return list(ENTRIES)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    slugs = {entry[1] for entry in ENTRIES}
    # A slug names one entry; a model name that is no slug (lsgan is both) names all its entries.
    chosen = [entry for entry in ENTRIES if entry[1] in wanted or (entry[2] in wanted and entry[2] not in slugs)]
    unknown = wanted - {entry[1] for entry in ENTRIES} - {entry[2] for entry in ENTRIES}
    if unknown or not chosen:
        raise SystemExit(f"error: unknown model(s) {sorted(unknown)}; choose from "
                         f"{', '.join(entry[1] for entry in ENTRIES)}")
    return chosen


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def budget_progress(label, seconds, batch_size, hooks=(), report_every=20.0, overall=None, at_end=()):
    """A Keras callback that gives a run a training-time budget, counts what it did and prints a
    progress line every `report_every` seconds. (Built here, so that importing this module does
    not import TensorFlow: the converter's worker processes re-import the main script.)

    The training clock starts at the end of the first step, which also traces (compiles) the step
    function; `trace_seconds` records that first step. hooks: (seconds of training, function(gan,
    callback)) pairs, each called once when the training clock passes it (sample grids, metrics);
    time spent inside hooks does not count as training. `overall`: a function returning text for
    the whole script's progress, appended to each line. `at_end`: functions(gan, callback) called
    once when training ends, before the final numbers are taken (e.g. to read the model's state)."""
    import keras

    class BudgetProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.label, self.seconds, self.batch_size = label, seconds, batch_size
            self.hooks = sorted(hooks, key=lambda hook: hook[0])
            self.report_every, self.overall = report_every, overall
            self.steps, self.paused, self.losses = 0, 0.0, []
            self.began = self.clock_start = self.trace_seconds = None
            self.last_report = 0.0
            self.final: dict = {}

        @property
        def images(self) -> int:
            """Real images drawn from the data: steps x real batches per step x batch size."""
            return self.steps * self.model.real_batches_per_step * self.batch_size

        def training_seconds(self) -> float:
            return 0.0 if self.clock_start is None else time.time() - self.clock_start - self.paused

        def updates(self) -> tuple[int, int]:
            return (int(keras.ops.convert_to_numpy(self.model.g_optimizer.iterations)),
                    int(keras.ops.convert_to_numpy(self.model.d_optimizer.iterations)))

        def stats(self) -> dict:
            g_updates, d_updates = self.updates()
            return {"minutes": round(self.training_seconds() / 60, 3), "images": self.images,
                    "steps": self.steps, "g_updates": g_updates, "d_updates": d_updates}

        def rate(self) -> float | None:
            """Images/s on the training clock (after the first, tracing step; hook time excluded)."""
            seconds = self.training_seconds()
            return (self.steps - 1) * self.images / self.steps / seconds if self.steps > 1 and seconds > 0 else None

        def on_train_begin(self, logs=None):
            self.began = self.last_report = time.time()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.clock_start is None:
                self.clock_start = time.time()
                self.trace_seconds = self.clock_start - self.began
            while self.hooks and self.hooks[0][0] <= self.training_seconds():
                _, function = self.hooks.pop(0)
                began = time.time()
                function(self.model, self)
                self.paused += time.time() - began
            if time.time() - self.last_report >= self.report_every:
                self.report(logs)
            if self.training_seconds() >= self.seconds:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "images": self.images, "minutes": round(self.training_seconds() / 60, 3)}
            for key, value in (logs or {}).items():
                if key in ("d_loss", "g_loss", "gp", "d_acc") and math.isfinite(float(value)):
                    row[key] = round(float(value), 5)
            self.losses.append(row)

        def on_train_end(self, logs=None):
            for function in at_end:
                function(self.model, self)
            rate = self.rate()
            self.final = {**self.stats(), "train_seconds": round(self.training_seconds(), 1),
                          "trace_seconds": None if self.trace_seconds is None else round(self.trace_seconds, 1),
                          "paused_seconds": round(self.paused, 1),
                          "images_per_second": None if rate is None else round(rate, 1)}
            self.report(logs, final=True)

        def report(self, logs, final=False):
            self.last_report = time.time()
            stats, rate = self.stats(), self.rate()
            losses = "".join(f" | {key} {float(value):.3f}" for key, value in (logs or {}).items()
                             if key in ("d_loss", "g_loss"))
            print(f"[{self.label}] {'done: ' if final else ''}{_minutes(self.training_seconds())}/"
                  f"{_minutes(self.seconds)} min | {stats['images']:,} images{f' ({rate:.0f}/s)' if rate else ''}"
                  f" | G {stats['g_updates']:,} D {stats['d_updates']:,} updates{losses}"
                  f"{' | script ' + self.overall() if self.overall else ''}", flush=True)

    return BudgetProgress()


def train_for(values: dict, label: str, seconds: float, hooks=(), overall=None, at_end=()) -> dict:
    """Train the run described by the TrainConfig `values` (`run_values`) for `seconds` of training;
    returns {"summary": train()'s summary, "progress": the callback's numbers, "losses": rows per
    epoch, "wall_seconds": the whole call (model building, tracing, saving included)}."""
    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.training import train

    config = TrainConfig.from_json(values)
    callback = budget_progress(label, seconds, config.batch_size, hooks=hooks, overall=overall, at_end=at_end)
    began = time.time()
    summary = train(config, callbacks=[callback])
    return {"summary": summary, "progress": callback.final, "losses": callback.losses,
            "wall_seconds": round(time.time() - began, 1)}


def run_values(data, out, model, resolution, width, batch_size, seed=0, ema=0.999, options=None,
               steps_per_epoch=50, sample_interval=1000000) -> dict:
    """The TrainConfig of one budgeted run (epochs: effectively unlimited), as `TrainConfig.from_json`
    takes it. `width` and `ema` are the classic models' options: they go into `model_options` for a
    model that has them (stylegan2-ada has no `width`, and its entry sets `ema` None: its own
    half-life). In `options`, TrainConfig fields are run-level options, `model_options` and any
    other name the model's options; a None value leaves the model's default."""
    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.gans.registry import model_class

    options = dict(options or {})
    model_options = dict(options.pop("model_options", None) or {})
    run_fields = set(TrainConfig.__dataclass_fields__)
    model_options.update({key: options.pop(key) for key in list(options) if key not in run_fields})
    names = model_class(model).Options.names()
    model_options = {**{key: value for key, value in (("width", width), ("ema", ema)) if key in names}, **model_options}
    model_options = {key: value for key, value in model_options.items() if value is not None}  # None: the model's own
    return {"data": data, "out": out, "model": model, "resolution": resolution, "batch_size": batch_size,
            "epochs": 100000, "steps_per_epoch": steps_per_epoch, "metrics": "none", "verbose": 0, "seed": seed,
            "sample_interval": sample_interval, "checkpoint_interval": 5, "keep_checkpoints": 1, **options,
            "model_options": model_options}


def metric_names(extractor) -> list[str]:
    return ["swd", "color"] + (["kid", "fid"] if extractor is not None else [])


def evaluate_generator(generator, real, extractor=None, seed=0):
    """(metrics dict, the generated uint8 images): as many samples as `real`, from `seed`."""
    from keras_anime_gan.metrics import compute_metrics
    from keras_anime_gan.sampling import latent_width, latents_for_seed, render

    # latent_width: a StyleGAN generator is a subclassed model (z_dim), without a functional input shape.
    fake = render(generator, latents_for_seed(len(real), latent_width(generator), seed))
    return compute_metrics(real, fake, metric_names(extractor), extractor), fake


def load_extractor(weights=None):
    """InceptionV3 for KID/FID, or None (with the reason) when its weights file is absent."""
    from keras_anime_gan.metrics import MissingWeightsError, inception_extractor

    try:
        return inception_extractor(weights), None
    except MissingWeightsError as error:
        return None, str(error).split(" (")[0]


def run_versus(entries, data, runs_dir, grid_dir, seconds_each, real, resolution, width, batch_size,
               extractor=None, seed=0, ema=0.999, grid_prefix="", overall=None, seconds_for=None) -> list[dict]:
    """Train each entry for `seconds_each` (or `seconds_for(index)`), evaluate it against `real`
    and save a 6x6 grid; returns one row per model."""
    from PIL import Image

    from keras_anime_gan.loading import load_generator
    from keras_anime_gan.sampling import image_grid

    rows = []
    for index, (label, slug, model, options) in enumerate(entries):
        seconds = seconds_for(index) if seconds_for else seconds_each
        out = os.path.join(runs_dir, slug)
        if os.path.exists(os.path.join(out, "config.json")):
            shutil.rmtree(out)  # a previous versus run of ours: start it again
        print(f"== versus {index + 1}/{len(entries)}: {label}, {_minutes(seconds)} min of training", flush=True)
        values = run_values(data, out, model, resolution, width, batch_size, seed, ema, options)
        run = train_for(values, f"versus {index + 1}/{len(entries)} {slug}", seconds, overall=overall)
        summary, progress = run["summary"], run["progress"]
        row = {"model": label, "slug": slug, "loss": model, "options": options, "state": summary["state"],
               "budget_seconds": round(seconds, 1), "train_seconds": progress.get("train_seconds"),
               "wall_seconds": run["wall_seconds"], "images": progress.get("images"),
               "images_per_second": progress.get("images_per_second"), "g_updates": progress.get("g_updates"),
               "d_updates": progress.get("d_updates"), "monitor_events": summary.get("monitor_events"),
               "precision": summary.get("precision"), "losses": run["losses"]}
        if summary.get("generator") is None:
            row.update(grid=None, metrics=None, failure=summary.get("reason"))
            print(f"   {label}: no generator ({summary.get('reason')})", flush=True)
        else:
            began = time.time()
            generator = load_generator(out)
            metrics, fake = evaluate_generator(generator, real, extractor, seed=0)
            grid = os.path.join(grid_dir, f"{grid_prefix}{slug}.png")
            Image.fromarray(image_grid(fake[:36], 6)).save(grid, optimize=True)
            row.update(grid=os.path.basename(grid), metrics={key: round(value, 4) for key, value in metrics.items()},
                       eval_seconds=round(time.time() - began, 1))
            print(f"   {label}: SWD {metrics['swd']:.1f}, colour {metrics['color']:.2f}", flush=True)
        rows.append(row)
    return rows


def _fmt(value, digits):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def versus_table(rows, floor, num_images, kid_fid_note=None, grids=True) -> list[str]:
    """Markdown lines: the GAN-Versus table, its first row the real-vs-real noise floor."""
    has_kid = any(row.get("metrics") and "kid" in row["metrics"] for row in rows)
    head = (f"| model | SWD x1e3 ↓ | colour ↓ | KID ↓ | FID ↓ | images/s | train min | wall min | images seen | "
            f"G updates | D updates |{' samples |' if grids else ''}")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    kid_floor = _fmt(floor.get("kid_floor"), 4) if has_kid else "weights missing"
    fid_floor = _fmt(floor.get("fid_floor"), 1) if has_kid else "weights missing"
    lines.append(f"| *real vs real (noise floor, n={num_images})* | {_fmt(floor.get('swd_floor'), 1)} | "
                 f"{_fmt(floor.get('color_floor'), 2)} | {kid_floor} | {fid_floor} | | | | | | |{' |' if grids else ''}")
    for row in rows:
        metrics = row.get("metrics") or {}
        kid = _fmt(metrics.get("kid"), 4) if has_kid else "weights missing"
        fid = _fmt(metrics.get("fid"), 1) if has_kid else "weights missing"
        name = row["model"] if row.get("metrics") else f"{row['model']} ({row['state']}: no generator)"
        cells = [name, _fmt(metrics.get("swd"), 1), _fmt(metrics.get("color"), 2), kid, fid,
                 _fmt(row.get("images_per_second"), 0), _minutes(row["train_seconds"] or 0),
                 _minutes(row["wall_seconds"]), f"{row['images'] or 0:,}", f"{row['g_updates'] or 0:,}",
                 f"{row['d_updates'] or 0:,}"]
        if grids:
            cells.append(f"![{row['slug']}]({row['grid']})" if row.get("grid") else "")
        lines.append("| " + " | ".join(cells) + " |")
    if kid_fid_note:
        lines += ["", f"KID and FID: weights missing ({kid_fid_note}; see docs/evaluation.md)."]
    if any(row.get("loss") == "stylegan2-ada" for row in rows):
        lines += ["", "StyleGAN2-ADA's G and D updates include its lazy regularisation updates (path length every "
                      "4 steps, R1 every 16) besides one main update of each per step."]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="faces: folder, converted TFRecords or StyleGAN files (default: synthetic)")
    parser.add_argument("--real", default=None, help="held-out faces for the metrics (default: faces of --data)")
    parser.add_argument("--budget-minutes", type=float, default=12.0, help="total training time, split evenly")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=None, help="network width of the classic models (default 32 at "
                                                                "<=32 px, else 64; stylegan2-ada: its preset's)")
    parser.add_argument("--eval-images", type=int, default=512, help="images per metric set (the floor uses as many more)")
    parser.add_argument("--ema", type=float, default=0.999, help="generator EMA decay for every classic model (0: "
                                                                  "none; stylegan2-ada keeps its half-life EMA)")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--out", default="versus")
    parser.add_argument("--only", default=None, help="comma-separated slugs or model names (e.g. dcgan,wgan-gp)")
    args = parser.parse_args(argv)

    from keras_anime_gan.data import load_real_images, synthetic_faces
    from keras_anime_gan.metrics import noise_floor

    os.makedirs(args.out, exist_ok=True)
    entries = select_entries(args.only)
    seconds_each = args.budget_minutes * 60 / len(entries)
    width = args.width or (32 if args.resolution <= 32 else 64)
    source = args.real or args.data
    n = args.eval_images
    if source:
        real = load_real_images(source, 2 * n, args.resolution, seed=123)
    else:
        real = synthetic_faces(2 * n, args.resolution, seed=123)  # seed 123: faces the runs (seed 0) never see
    n = len(real) // 2
    real_a, real_b = real[:n], real[n : 2 * n]
    extractor, missing = load_extractor(args.inception_weights)
    if missing:
        print(f"KID/FID skipped: {missing}", flush=True)
    floor = {key: round(value, 4) for key, value in noise_floor(real_a, real_b, metric_names(extractor), extractor).items()}
    rows = run_versus(entries, args.data, os.path.join(args.out, "runs"), args.out, seconds_each, real_a,
                      args.resolution, width, args.batch_size, extractor, ema=args.ema or None)
    lines = [f"# GAN Versus ({args.resolution}px, width {width}, batch {args.batch_size}, {n} evaluation images, "
             f"{args.budget_minutes:g} min budget, data: {args.data or 'synthetic faces'}"
             f"{', held out: ' + args.real if args.real else ''})", ""]
    lines += versus_table(rows, floor, n, missing)
    with open(os.path.join(args.out, "versus.md"), "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "versus.json"), "w", encoding="utf-8") as file:
        json.dump({"floor": floor, "num_images": n, "rows": rows}, file, indent=2)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
