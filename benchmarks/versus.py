"""GAN Versus in one command: train every model of the family under the same time budget, then
compare them in one table (SWD, KID, FID when weights exist, images/s, wall time) with one sample
grid per model, like the reports' comparison tables.

    python benchmarks/versus.py --data PATH --budget-minutes 12 [--resolution 32] [--out versus]

With no --data it uses the embedded synthetic faces. KID and FID use InceptionV3 when its weights
file is present (see keras_anime_gan.metrics); otherwise the table says so.
"""

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENTRIES = [  # (label, model, options)
    ("DCGAN", "dcgan", {}),
    ("DCGAN fuzzy labels + separate rates", "dcgan", {"label_smoothing": 0.1, "d_learning_rate": 1e-4, "g_learning_rate": 5e-4}),
    ("LSGAN", "lsgan", {}),
    ("WGAN (clipping)", "wgan", {}),
    ("WGAN-GP", "wgan-gp", {}),
    ("Dynamic schedule (CSC412)", "dynamic", {}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="faces: folder, converted TFRecords or StyleGAN files (default: synthetic)")
    parser.add_argument("--budget-minutes", type=float, default=12.0, help="total training time, split evenly")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=None, help="network width (default 32 at <=32 px, else 64)")
    parser.add_argument("--eval-images", type=int, default=512)
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--out", default="versus")
    parser.add_argument("--only", default=None, help="comma-separated labels' model names to run (e.g. dcgan,wgan-gp)")
    args = parser.parse_args()

    import keras
    import numpy as np
    from PIL import Image

    from keras_anime_gan.callbacks import image_grid
    from keras_anime_gan.data import synthetic_faces
    from keras_anime_gan.data.pipeline import load_real_images
    from keras_anime_gan.metrics import MissingWeightsError, compute_metrics, inception_extractor
    from keras_anime_gan.training import TrainConfig, train

    os.makedirs(args.out, exist_ok=True)
    entries = [e for e in ENTRIES if not args.only or e[1] in args.only.split(",")]
    budget = args.budget_minutes * 60 / len(entries)
    width = args.width or (32 if args.resolution <= 32 else 64)
    if args.data:
        real = load_real_images(args.data, args.eval_images, args.resolution, seed=123)
    else:
        real = synthetic_faces(args.eval_images, args.resolution, seed=123)
    try:
        extractor = inception_extractor(args.inception_weights)
    except MissingWeightsError as error:
        extractor = None
        print(f"KID/FID skipped: {str(error).split('.')[0]}", flush=True)

    class TimeBudget(keras.callbacks.Callback):
        def __init__(self, seconds):
            super().__init__()
            self.seconds = seconds

        def on_train_begin(self, logs=None):
            self.started = time.time()

        def on_train_batch_end(self, batch, logs=None):
            if time.time() - self.started > self.seconds:
                self.model.stop_training = True

    rows = []
    for label, model, options in entries:
        slug = label.split(" (")[0].lower().replace(" ", "-").replace("+", "and")
        out = os.path.join(args.out, slug)
        config = TrainConfig(data=args.data, out=out, model=model, resolution=args.resolution, width=width,
                             batch_size=args.batch_size, epochs=1000, steps_per_epoch=20, metrics="none",
                             verbose=0, seed=0, **options)
        if model in ("wgan", "wgan-gp"):
            config.norm = "layer" if model == "wgan-gp" else None
        started = time.time()
        summary = train(config, callbacks=[TimeBudget(budget)])  # a time budget instead of an epoch count
        wall = time.time() - started
        generator = keras.models.load_model(os.path.join(out, "generator.keras"), compile=False)
        from keras_anime_gan.gans import latents_for_seed, render

        fake = render(generator, latents_for_seed(len(real), int(generator.input_shape[-1]), 0))
        metrics = ["swd"] + (["kid", "fid"] if extractor else [])
        results = compute_metrics(real, fake, metrics, extractor)
        grid_path = os.path.join(args.out, f"{slug}.png")
        Image.fromarray(image_grid(fake[:36], 6)).save(grid_path)
        rows.append({"model": label, "swd": results["swd"], "kid": results.get("kid"), "fid": results.get("fid"),
                     "images_per_s": summary["images_per_second"], "wall_s": round(wall), "g_updates": summary["g_updates"],
                     "grid": os.path.basename(grid_path)})
        print(json.dumps(rows[-1]), flush=True)

    lines = [
        f"# GAN Versus ({args.resolution}px, {len(real)} evaluation images, {args.budget_minutes:g} min budget, "
        f"data: {args.data or 'synthetic faces'})", "",
        "| model | SWD x1e3 ↓ | KID ↓ | FID ↓ | images/s | wall s | G updates |", "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    fmt = lambda value, digits: "n/a" if value is None else f"{value:.{digits}f}"  # noqa: E731
    for row in rows:
        lines.append(f"| {row['model']} | {fmt(row['swd'], 1)} | {fmt(row['kid'], 4)} | {fmt(row['fid'], 1)} | "
                     f"{row['images_per_s']} | {row['wall_s']} | {row['g_updates']} |")
    if extractor is None:
        lines += ["", "KID and FID: n/a, the InceptionV3 weights file is not on this machine (see README, Evaluation)."]
    lines += [""] + [f"## {row['model']}\n\n![{row['model']}]({row['grid']})\n" for row in rows]
    with open(os.path.join(args.out, "versus.md"), "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    with open(os.path.join(args.out, "versus.json"), "w", encoding="utf-8") as file:
        json.dump(rows, file, indent=2)
    print("\n".join(lines[:len(rows) + 4]))


if __name__ == "__main__":
    main()
