"""Converter and reader throughput on the 20,000 shared faces (96 -> 64 px).

    python benchmarks/bench_data.py [--faces ../shared/data/anime-faces-96] [--out benchmarks/results]

Prints one JSON line and appends it to benchmarks/results/bench_data.jsonl. The reader is compared
with what a DCGAN-64 training step consumes, measured in the same script (target: >= 20x). The
converter is compared with the plain Pillow loop it replaces (read, decode, resize, one core),
timed here on the first 2,000 faces: on a noisy machine the ratio says more than images/s.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pillow_loop_rate(folder, count):
    """Images/s of the straightforward conversion loop, in this process: read, decode, resize."""
    from PIL import Image

    names = sorted(os.listdir(folder))[:count]
    started = time.perf_counter()
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            image.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS).tobytes()
    return len(names) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(ROOT.parent / "shared" / "data" / "anime-faces-96"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--train-steps", type=int, default=8)
    args = parser.parse_args()
    if not os.path.isdir(args.faces):
        raise SystemExit(f"skipped: faces folder {args.faces} not found (pass --faces)")

    # Imported inside main: converter workers re-import this module under spawn. TensorFlow only
    # after converting, as in `keras-anime-gan convert`, which never loads it.
    from keras_anime_gan.data import convert_folder

    work = tempfile.mkdtemp(prefix="bench_data_")
    results = {"benchmark": "bench_data", "cpus": os.cpu_count()}
    try:
        results["pillow_one_core_images_per_s"] = round(pillow_loop_rate(args.faces, 2000))
        for fmt in ("raw", "png", "stylegan"):
            started = time.perf_counter()
            manifest = convert_folder(args.faces, os.path.join(work, fmt), 64, format=fmt, progress=False)
            seconds = time.perf_counter() - started
            results[f"convert_{fmt}_images_per_s"] = round(manifest["num_images"] / seconds)
        results["images"] = manifest["num_images"]
        results["convert_raw_over_pillow_one_core"] = round(
            results["convert_raw_images_per_s"] / results["pillow_one_core_images_per_s"], 2
        )

        import numpy as np
        import tensorflow as tf

        from keras_anime_gan import create_gan
        from keras_anime_gan.data import load_dataset
        from keras_anime_gan.gans import without_autotune

        # As iterated directly (tf.data autotuning on), and as GAN.fit reads it (autotuning off).
        for kind, name, wrap in (("raw", "raw", None), ("stylegan", "stylegan", None), ("raw", "raw_fit", without_autotune)):
            dataset = load_dataset(os.path.join(work, kind), 128, resolution=64, seed=0)
            dataset = wrap(dataset) if wrap else dataset
            next(iter(dataset))  # warm-up
            started, count = time.perf_counter(), 0
            for batch in dataset:
                count += int(batch.shape[0])
            results[f"read_{name}_images_per_s"] = round(count / (time.perf_counter() - started))

        # What a DCGAN-64 step consumes here: batch 128, the default mode, in-memory batch.
        gan = create_gan("dcgan", 64, 100, seed=0)
        gan.compile()
        batch = next(iter(load_dataset(os.path.join(work, "raw"), 128, seed=0))).numpy()
        data = tf.data.Dataset.from_tensors(batch).repeat()
        gan.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # compile
        started = time.perf_counter()
        gan.fit(data, steps_per_epoch=args.train_steps, epochs=1, verbose=0)
        train_rate = args.train_steps * 128 / (time.perf_counter() - started)
        results["dcgan64_train_images_per_s"] = round(train_rate, 1)
        results["reader_over_training_ratio"] = round(results["read_raw_fit_images_per_s"] / train_rate, 1)
        results["numpy"] = np.__version__
        results["tensorflow"] = tf.__version__
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench_data.jsonl"), "a", encoding="utf-8") as file:
        file.write(json.dumps({**results, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
