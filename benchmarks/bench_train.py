"""DCGAN-64 training speed: our `DCGAN.fit` (its default mode, and XLA) against the reports' legacy
Keras pattern and the PyTorch DCGAN tutorial loop, same architecture, batch 128, in-memory data.

    python benchmarks/bench_train.py [--rounds 3] [--steps 6] [--mixed-precision]

Each measurement runs in its own process (so peak memory is its own), and the variants are
interleaved round by round because this machine's speed drifts; medians are reported, with each
variant's ratio to PyTorch and to the legacy pattern. The legacy pattern runs twice: with
TensorFlow's plain kernels (its default on CPUs it does not tune for, such as AMD EPYC) and with
oneDNN on, as keras_anime_gan sets it. Results are appended to
benchmarks/results/bench_train.jsonl. PyTorch is a benchmark-only extra (`pip install torch==2.13.0`).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH, LATENT, RESOLUTION = 128, 100, 64


def _data(count=BATCH * 2):
    import numpy as np

    from keras_anime_gan.data import synthetic_faces

    return synthetic_faces(count, RESOLUTION, seed=0).astype(np.float32) / 127.5 - 1.0


def run_ours(steps, jit, mixed_precision):
    from keras_anime_gan import create_gan  # first: it turns on oneDNN before TensorFlow loads
    import keras
    import tensorflow as tf

    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    gan = create_gan("dcgan", RESOLUTION, LATENT, seed=0)
    gan.compile(jit_compile=jit)
    data = tf.data.Dataset.from_tensor_slices(_data()).batch(BATCH, drop_remainder=True).repeat().prefetch(2)
    gan.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and compile
    started = time.perf_counter()
    gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - started


def run_legacy(steps, jit, mixed_precision):
    """The reports' recipe: discriminator.train_on_batch on real and fake, then a combined model
    with the discriminator frozen. Keras 3 fixes `trainable` at compile time, so it must be
    toggled around every call or the discriminator silently never trains."""
    import keras
    import numpy as np

    from keras_anime_gan.models import build_discriminator, build_generator

    generator, discriminator = build_generator(RESOLUTION, LATENT), build_discriminator(RESOLUTION)
    discriminator.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.losses.BinaryCrossentropy(from_logits=True))
    z = keras.Input((LATENT,))
    combined = keras.Model(z, discriminator(generator(z)))
    discriminator.trainable = False
    combined.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.losses.BinaryCrossentropy(from_logits=True))
    real = _data()[:BATCH]
    ones, zeros = np.ones((BATCH, 1), np.float32), np.zeros((BATCH, 1), np.float32)
    rng = np.random.default_rng(0)

    def step():
        noise = rng.normal(size=(BATCH, LATENT)).astype(np.float32)
        fake = generator.predict(noise, verbose=0, batch_size=BATCH)
        discriminator.trainable = True
        discriminator.train_on_batch(real, ones)
        discriminator.train_on_batch(fake, zeros)
        discriminator.trainable = False
        combined.train_on_batch(noise, ones)

    step()
    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def run_torch(steps, jit, mixed_precision):
    """The PyTorch DCGAN tutorial's networks and loop (CPU, eager)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    ngf = ndf = 64
    netG = nn.Sequential(
        nn.ConvTranspose2d(LATENT, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
    netD = nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.from_numpy(_data()[:BATCH]).permute(0, 3, 1, 2).contiguous()
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)

    def step():
        netD.zero_grad()
        errD_real = criterion(netD(real).view(-1), ones)
        errD_real.backward()
        fake = netG(torch.randn(BATCH, LATENT, 1, 1))
        errD_fake = criterion(netD(fake.detach()).view(-1), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        errG = criterion(netD(fake).view(-1), ones)
        errG.backward()
        optG.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


# name: (function, jit_compile, TF_ENABLE_ONEDNN_OPTS, or None to leave the environment alone)
VARIANTS = {
    "ours": (run_ours, None, "1"),  # what `fit` picks: graph mode with oneDNN on a CPU, XLA on a GPU
    "ours_xla": (run_ours, True, "1"),
    # TensorFlow's plain kernels: its own default on CPUs it does not tune for (AMD EPYC here).
    "legacy_keras": (run_legacy, False, "0"),
    "legacy_keras_onednn": (run_legacy, False, "1"),
    "pytorch_tutorial": (run_torch, False, None),
}


def child(name, steps, mixed_precision):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    function, jit, _ = VARIANTS[name]
    seconds = function(steps, jit, mixed_precision)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": name, "images_per_s": steps * BATCH / seconds, "peak_rss_mb": round(peak_mb)}))


def child_environment(name):
    onednn = VARIANTS[name][2]
    return dict(os.environ) if onednn is None else dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 for our variants (GPU)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.mixed_precision)
    names = args.variants.split(",")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("pytorch_tutorial skipped: torch is not installed (pip install torch==2.13.0)")
        names = [name for name in names if name != "pytorch_tutorial"]
    samples = {name: [] for name in names}
    memory = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[: round_index % len(names)]  # rotate the order
        for name in order:
            command = [sys.executable, __file__, "--child", name, "--steps", str(args.steps)]
            if args.mixed_precision:
                command.append("--mixed-precision")
            result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=child_environment(name))
            if result.returncode:
                raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
            record = json.loads(result.stdout.strip().splitlines()[-1])
            samples[name].append(record["images_per_s"])
            memory[name].append(record["peak_rss_mb"])
            print(f"round {round_index + 1} {name}: {record['images_per_s']:.1f} img/s, peak {record['peak_rss_mb']} MB", flush=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    summary = {"benchmark": "bench_train", "batch": BATCH, "resolution": RESOLUTION, "rounds": args.rounds,
               "steps": args.steps, "mixed_precision": args.mixed_precision,
               "images_per_s": {name: round(value, 1) for name, value in medians.items()},
               "peak_rss_mb": {name: max(values) for name, values in memory.items()}}
    for reference in ("pytorch_tutorial", "legacy_keras"):
        if reference in medians:
            summary[f"ratio_to_{reference}"] = {name: round(value / medians[reference], 2) for name, value in medians.items()}
    print(json.dumps(summary))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_train.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps({**summary, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
