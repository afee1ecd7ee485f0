"""Time to quality: the best faces per CPU-minute. Each model trains for the same minutes on the same
faces, one run at a time; its EMA generator is saved every few minutes and scored afterwards (SWD
and colour distance, n = --eval-images) against faces that no run trained on, beside the
real-vs-real noise floor. NVIDIA's stylegan2-ada-pytorch trains as the peer on the same data.

    python benchmarks/time_to_quality.py --data ../shared/data/anime-faces-96 --work ../ttq \\
        --runs dcgan,stylegan2-tiny,stylegan2-auto,lightweight,lightweight-noaug,nvidia \\
        --torch-python ../torchenv/bin/python --nvidia-dir ../nvidia-sg2ada --out docs
    python benchmarks/time_to_quality.py --work ../ttq --report --out docs      # tables and curves only

--train-faces N trains on the first N training faces only (the small-data regime); --resolution
128 at 128 px; --tag names the setting (its runs live in WORK/TAG/); --precision sets our
runs' (auto by default); --seed N > 0 trains the runs with seed N as RUN-seedN, beside seed 0's in
their setting's table, curves and grid. Each run's summary records the machine it trained on; the page names it.
Every run keeps its run folder (WORK/TAG/RUN/run), its snapshots and its log under WORK/TAG/RUN,
and every score is a line of WORK/results.jsonl, so the page (docs/time-to-quality.md, its curves
and sample grids) can be written again without training.

The held-out split: the last --heldout distinct files in name order (byte-identical files kept
once, as benchmarks/showcase.py splits), converted as the training faces are (WORK/split/RESpx/).
The floor: the held-out faces against as many training faces.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import keras_anime_gan  # noqa: E402,F401,I001  (before TensorFlow: oneDNN's kernels on, as the command line has them)
from ttq_report import machine, seeded, unseeded  # noqa: E402

# name -> (model, options); every run: --precision (auto unless given), the model's default batch,
# no metrics in training.
RUNS = {
    "dcgan": ("dcgan", {}),
    "stylegan2-tiny": ("stylegan2-ada", {"preset": "tiny"}),
    "stylegan2-auto": ("stylegan2-ada", {"preset": "auto"}),
    "lightweight": ("lightweight", {}),
    "lightweight-noaug": ("lightweight", {"augment": "none"}),
    # DiffAugment without its colour transform (lightweight-gan's default policy): brightness and
    # saturation drawn over wide ranges for every image can leak into what G learns to draw.
    "lightweight-translation-cutout": ("lightweight", {"augment": "diffaugment:translation,cutout"}),
    "lightweight-sn": ("lightweight", {"spectral_norm": "both"}),  # FastGAN's spectral normalisation
    "lightweight-sn-translation-cutout": ("lightweight", {"spectral_norm": "both",
                                                          "augment": "diffaugment:translation,cutout"}),
    "lightweight-snd-noaug": ("lightweight", {"spectral_norm": "discriminator", "augment": "none"}),
    # Spectral norm bounds D's steps, so the same recipe may take larger ones (1e-3 without it diverged).
    "lightweight-snd-noaug-lr5e-4": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                     "d_learning_rate": 5e-4, "g_learning_rate": 5e-4}),
    # The preset's generator is 8 channels wide at 64 px and 16 at 32 px, and every run's finest SWD
    # scale stalled near 25 from 15 minutes on: twice the width there (16 and 32), at about 0.6x the
    # networks' images/s.
    "lightweight-snd-noaug-lr5e-4-g1024": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                           "d_learning_rate": 5e-4, "g_learning_rate": 5e-4,
                                                           "g_channel_base": 1024}),
    # Every lightweight run's samples carry more energy at the pixel pitch than the real faces (the
    # finest pyramid level's std 19.6 against 16.8) and a 0.6 px Gaussian blur of the finished samples
    # alone took SWD at 64 px from 29.4 to 13.0: the blur trained in, so D judges what G draws (it did not
    # help: G learned to sharpen through it).
    "lightweight-snd-noaug-lr5e-4-blur": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                          "d_learning_rate": 5e-4, "g_learning_rate": 5e-4,
                                                          "output_blur": True}),
    # The EMA generator's colours swung from mark to mark (colour distance 1.5-3.5 at 2e-4) while
    # its statistics were its own (a batch-statistics pass of 2,048 latents moved one mark by 0.5
    # only): a longer average of the weights. Its decay still ramps as (1 + u) / (10 + u).
    "lightweight-snd-noaug-ema9998": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                      "ema": 0.9998}),
    # The 30-minute runs' colours swung from mark to mark with the live generator's (colour distance
    # 10.7 for the live generator where its EMA had 1.63): both rates decayed linearly to zero over
    # the second half of the budget (pix2pix's policy), so the last minutes settle.
    "lightweight-snd-noaug-decay": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                    "lr_decay": 0.5}),
    # The larger step's faster start (SWD 1.99-2.06x at 30 minutes, colours that swung 3.0-10.9),
    # settled by the same decay.
    "lightweight-snd-noaug-lr5e-4-decay": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                           "d_learning_rate": 5e-4, "g_learning_rate": 5e-4,
                                                           "lr_decay": 0.5}),
    # The same with the training-time metrics on (the command line's default, SWD and colour of 512
    # samples against training faces every epoch, counted in its minutes): its best_generator.keras,
    # the epoch with the lowest worst ratio to the floor, is scored beside its snapshots.
    "lightweight-snd-noaug-lr5e-4-decay-best": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                                "d_learning_rate": 5e-4, "g_learning_rate": 5e-4,
                                                                "lr_decay": 0.5, "metrics": "swd,color"}),
    # The recipe's colours still swung by 2-4x between marks in 5 runs, and its sample sets varied
    # more in brightness from face to face than the held-out faces, a property of the set that a
    # discriminator of single images cannot see: StyleGAN's minibatch standard deviation in D's head,
    # groups of 4.
    "lightweight-snd-noaug-lr5e-4-decay-mbstd4": ("lightweight", {"spectral_norm": "discriminator", "augment": "none",
                                                                  "d_learning_rate": 5e-4, "g_learning_rate": 5e-4,
                                                                  "lr_decay": 0.5, "mbstd_group": 4}),
    "nvidia": ("nvidia", {}),
}
RUN_SETTINGS = ("lr_decay", "metrics")  # keys of a run's options that are the run's settings, not the model's
EVAL_SEED = 0


def prepare(args) -> dict:
    """WORK/split (once) and WORK/TAG/data: the training TFRecords at the resolution (the first
    --train-faces), the held-out and floor faces, and a zip of the training faces as PNGs for
    NVIDIA's loader. Returns what was made."""
    import numpy as np

    from keras_anime_gan.data import convert_folder
    from keras_anime_gan.data.pipeline import load_real_images
    from showcase import split_faces

    split = Path(args.work) / "split"
    if not (split / "heldout-src").is_dir():
        split.mkdir(parents=True, exist_ok=True)
        (split / "split.json").write_text(json.dumps(split_faces(Path(args.data), split, args.heldout, None)))
    data = tag_dir(args) / "data"
    source = split / "train-src"
    if args.train_faces:
        source = data / "train-subset"
        if not source.is_dir():
            source.mkdir(parents=True)
            names = sorted(os.listdir(split / "train-src"), key=lambda name: (len(name), name))[:args.train_faces]
            for name in names:
                os.symlink(os.readlink(split / "train-src" / name), source / name)
    records = data / "train"
    if not (records / "dataset.json").is_file():
        convert_folder(str(source), str(records), args.resolution, seed=0)
    heldout_file = data / "heldout.npy"
    if not heldout_file.is_file():
        # The held-out and floor faces pass through the converter exactly as the training faces do:
        # read from the source folders, they were resized by tf.image (bilinear) instead of the
        # converter's Lanczos, and the training faces themselves scored SWD 14.2 against them (1.42x
        # the floor, 2.2x at 64 px), a handicap of every generator that learned them well.
        # On all the training faces their records are that conversion already.
        converted = split / f"{args.resolution}px"
        sources = {"heldout": converted / "heldout", "train": records if not args.train_faces else converted / "train"}
        for name, folder in sources.items():
            if not (folder / "dataset.json").is_file():
                convert_folder(str(split / f"{name}-src"), str(folder), args.resolution, seed=0)
        heldout = load_real_images(str(sources["heldout"]), args.eval_images, args.resolution)
        floor = load_real_images(str(sources["train"]), len(heldout), args.resolution, seed=1)
        np.save(heldout_file, heldout)
        np.save(data / "floor.npy", floor)
    zipped = data / "train-png.zip"
    if "nvidia" in args.runs and not zipped.is_file():
        write_png_zip(records, zipped, args.resolution)
    return {"records": str(records), "heldout": str(heldout_file), "floor": str(data / "floor.npy"),
            "zip": str(zipped), "split": json.loads((split / "split.json").read_text())}


def write_png_zip(records, path, resolution) -> None:
    """The converted training faces (the very pixels our runs train on) as PNGs in a zip."""
    import io
    import zipfile

    from PIL import Image

    from keras_anime_gan.data.pipeline import load_real_images

    images = load_real_images(str(records), 10**7, resolution)
    with zipfile.ZipFile(str(path) + ".tmp", "w", zipfile.ZIP_STORED) as archive:
        for index, image in enumerate(images):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            archive.writestr(f"{index:05d}/img{index:08d}.png", buffer.getvalue())
    os.replace(str(path) + ".tmp", path)


def tag_dir(args) -> Path:
    return Path(args.work) / (args.tag or f"{args.resolution}px-{args.train_faces or 'all'}")


# ----------------------------------------------------------------------------- training


def train_ours(args, name, records) -> None:
    """One run of ours, in-process (the child): `train` with a time budget, the EMA generator saved
    every --every minutes of training."""
    import keras

    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.loading import load_generator
    from keras_anime_gan.training import train

    out = tag_dir(args) / name
    model, options = RUNS[unseeded(name)[0]]
    run_settings = {key: options[key] for key in RUN_SETTINGS if key in options}
    options = {key: value for key, value in options.items() if key not in RUN_SETTINGS}

    class Snapshots(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started, self.saved = time.monotonic(), 0

        def on_train_batch_end(self, batch, logs=None):
            minutes = (time.monotonic() - self.started) / 60.0
            if minutes >= (self.saved + 1) * args.every:
                self.saved += 1
                path = out / "snapshots" / f"minute-{self.saved * args.every:06.2f}.keras"
                path.parent.mkdir(parents=True, exist_ok=True)
                load_generator(self.model).save(path)
                with open(out / "snapshots" / "times.jsonl", "a", encoding="utf-8") as file:
                    file.write(json.dumps({"file": path.name, "minutes": minutes,
                                           "g_updates": int(self.model.g_optimizer.iterations.numpy())}) + "\n")

    settings = {**dict(data=records, out=str(out / "run"), model=model, resolution=args.resolution, epochs=None,
                       minutes=args.minutes, metrics="none", seed=args.seed, precision=args.precision, verbose=2,
                       model_options=options, sample_interval=1, keep_checkpoints=1), **run_settings}
    if args.train_faces:
        # An epoch (its sample grid and checkpoint) as many images as one over all the training faces,
        # so every tag spends the same share of its minutes on epoch-end work (a 31-step epoch over
        # 1,000 faces spent a third; the library's budget-run minimum of 10,000 images would differ).
        all_faces = len(os.listdir(Path(args.work) / "split" / "train-src"))
        batch = TrainConfig(**settings).resolved().batch_size
        settings["steps_per_epoch"] = max(1, all_faces // batch)
    config = TrainConfig(**settings)
    summary = train(config, callbacks=[Snapshots()])
    (out / "summary.json").write_text(json.dumps({**summary, "machine": machine()}, indent=2))


def train_nvidia(args, name, prepared) -> None:
    out = tag_dir(args) / name
    out.mkdir(parents=True, exist_ok=True)
    command = [args.torch_python, str(ROOT / "benchmarks" / "nvidia_cpu_train.py"), "--nvidia-dir", args.nvidia_dir,
               "--data", prepared["zip"], "--outdir", str(out / "run"), "--minutes", str(args.minutes),
               "--kimg-per-tick", str(args.nvidia_kimg_per_tick), "--every", str(args.every), "--seed", str(args.seed)]
    (out / "machine.json").write_text(json.dumps(machine()))
    with open(out / "log.txt", "w", encoding="utf-8") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})


def run(args, name, prepared) -> None:
    out = tag_dir(args) / name
    nvidia = unseeded(name)[0] == "nvidia"
    if (out / "summary.json").is_file() or (out / "run" / "stats.jsonl").is_file() and nvidia:
        print(f"{name}: trained already ({out})", flush=True)
        return
    started = time.time()
    if nvidia:
        train_nvidia(args, name, prepared)
    else:
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--child", name, "--records", prepared["records"], *child_flags(args)]
        with open(out / "log.txt", "w", encoding="utf-8") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    print(f"{name}: trained in {(time.time() - started) / 60:.1f} min of wall time", flush=True)


def child_flags(args) -> list[str]:
    flags = ["--work", args.work, "--resolution", str(args.resolution), "--minutes", str(args.minutes),
             "--every", str(args.every), "--seed", str(args.seed), "--precision", args.precision]
    if args.tag:
        flags += ["--tag", args.tag]
    if args.train_faces:
        flags += ["--train-faces", str(args.train_faces)]
    return flags


# ----------------------------------------------------------------------------- scoring


def snapshots(args, name) -> list[tuple[float, Path]]:
    """(training minutes, generator file) of a run, one per --every minutes, and its kept best
    generator when it trained with metrics."""
    from keras_anime_gan.callbacks.best import read_best
    from keras_anime_gan.loading import BEST_GENERATOR_FILE

    out = tag_dir(args) / name
    if unseeded(name)[0] != "nvidia":
        times = out / "snapshots" / "times.jsonl"
        if not times.is_file():
            return []
        rows = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
        found = [(row["minutes"], out / "snapshots" / row["file"]) for row in rows]
        best = out / "run" / BEST_GENERATOR_FILE  # the run's kept best generator, at the minute its epoch ended
        if best.is_file():
            found.append((read_best(best)["train_minutes"], best))
        return found
    stats = out / "run" / "stats.jsonl"
    if not stats.is_file():
        return []
    ticks = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
    minutes = [tick["Timing/total_sec"]["mean"] / 60.0 for tick in ticks]
    kept = sorted((out / "run").glob("tick-*.pkl"))  # nvidia_cpu_train.py's copies, named by tick index
    if kept:
        written = [(minutes[int(pkl.stem[5:])], pkl) for pkl in kept if int(pkl.stem[5:]) < len(ticks)]
    else:  # NVIDIA's own names only: network-snapshot-K.pkl holds the last tick that ended within kimg K
        last_tick = {int(tick["Progress/kimg"]["mean"] + 1e-9): index for index, tick in enumerate(ticks)}
        written = [(minutes[last_tick[int(pkl.stem.rsplit("-", 1)[1])]], pkl)
                   for pkl in sorted((out / "run").glob("network-snapshot-*.pkl"))]
    found = []
    for mark in range(1, int(args.minutes // args.every) + 1):  # the last snapshot written by each mark
        before = [item for item in written if item[0] <= mark * args.every]
        if before and before[-1] not in found:
            found.append(before[-1])
    if written and written[-1] not in found:  # where the clock stopped it (the first tick end past it)
        found.append(written[-1])
    return found


def score(args, prepared, name) -> list[dict]:
    """SWD and colour distance of each snapshot of `name` against the held-out faces; appended to
    WORK/results.jsonl (snapshots scored already are read back from it)."""
    import numpy as np

    from keras_anime_gan import metrics
    from keras_anime_gan.loading import load_generator
    from keras_anime_gan.sampling import latent_width, latents_for_seed, render

    results_file = Path(args.work) / "results.jsonl"
    done = {(row["tag"], row["run"], row["file"]) for row in read_results(results_file)}
    heldout, floor = np.load(prepared["heldout"]), np.load(prepared["floor"])
    rows = []
    for minutes, path in snapshots(args, name):
        key = (tag_dir(args).name, name, str(path.name))
        if key in done:
            continue
        generator = load_generator(str(path))
        fake = render(generator, latents_for_seed(len(heldout), latent_width(generator), EVAL_SEED))
        row = {"tag": key[0], "run": name, "file": key[2], "minutes": round(minutes, 3),
               "resolution": args.resolution, "train_faces": args.train_faces or prepared["split"]["train_files"],
               **metrics.compute_metrics(heldout, fake, ("swd", "color")),
               **metrics.noise_floor(heldout, floor, ("swd", "color")), "n": len(heldout)}
        with open(results_file, "a", encoding="utf-8") as file:
            file.write(json.dumps(row) + "\n")
        rows.append(row)
        print(f"{name} {minutes:5.1f} min: SWD {row['swd']:.1f} (floor {row['swd_floor']:.1f}), colour "
              f"{row['color']:.2f} (floor {row['color_floor']:.2f})", flush=True)
    return rows


def read_results(path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the shared faces (a folder of images)")
    parser.add_argument("--work", required=True, help="where the split, the runs and results.jsonl live")
    parser.add_argument("--runs", default="dcgan,stylegan2-tiny,stylegan2-auto,lightweight,lightweight-noaug",
                        help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=5.0, help="minutes between scored snapshots")
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--train-faces", type=int, default=None, help="train on the first N training faces only")
    parser.add_argument("--tag", default=None)
    parser.add_argument("--seed", type=int, default=0,
                        help="the runs' training seed; a run trained with seed N > 0 is named RUN-seedN in its setting")
    parser.add_argument("--precision", default="auto", help="the runs' --precision (ours; NVIDIA's trains in float32)")
    parser.add_argument("--torch-python", default=None, help="a Python with PyTorch for the nvidia run")
    parser.add_argument("--nvidia-dir", default=None, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--nvidia-kimg-per-tick", type=float, default=0.032,
                        help="NVIDIA's snapshot interval (one batch of 32 by default: its loop stops only at a tick end, "
                             "and on a CPU it trains well under one image a second)")
    parser.add_argument("--out", default=None, help="write the page, its curves and grids into this folder")
    parser.add_argument("--report", action="store_true", help="only write the page from WORK/results.jsonl")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--records", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.runs = [name.strip() for name in args.runs.split(",") if name.strip()]
    if args.child:
        train_ours(args, args.child, args.records)
        return 0
    if not args.report:
        unknown = [name for name in args.runs if name not in RUNS]
        if unknown or ("nvidia" in args.runs and not (args.torch_python and args.nvidia_dir)):
            parser.error(f"unknown runs {unknown}" if unknown else "the nvidia run needs --torch-python and --nvidia-dir")
        if not args.data or not Path(args.data).is_dir():
            print(f"no faces at {args.data}: nothing to measure (give --data)", flush=True)
            return 0
        prepared = prepare(args)
        for name in (seeded(name, args.seed) for name in args.runs):
            run(args, name, prepared)
            score(args, prepared, name)
    if args.out:
        from ttq_report import write_report

        write_report(Path(args.work), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
