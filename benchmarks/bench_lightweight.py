"""The lightweight networks' training throughput against StyleGAN2-ADA `tiny`'s, as a ratio in one run.

    python benchmarks/bench_lightweight.py [--resolution 64] [--variants float32,bfloat16] [--batch 16]
                                           [--rounds 5] [--steps 3] [--override key=value ...]

Networks only, no loop: for each model, one compiled function (a `tf.function`, graph mode; the
`_xla` variants with jit_compile) computes what one training step's networks compute:

- D: the generator's fakes (outside the tape), D on a real and on a fake batch, the hinge loss,
  for the lightweight model plus the MSE of its two reconstructions of the reals (a random
  quadrant), and the gradients with respect to D's weights;
- G: a fake batch, D on it, the generator's hinge loss and its gradients with respect to G's weights.

No optimizer update, no augmentation, no regularisation (StyleGAN2's lazy R1 and path length are
left out: they would only widen the gap). The networks: `create_gan("stylegan2-ada", res,
preset="tiny")`'s generator and discriminator, and `lightweight.networks.build_networks(res)` (the
preset, with any `--override`). Each variant runs in its own process (the Keras policy is global);
in it the two models are timed in alternating rounds of `--steps` steps each, so a busy machine
slows both alike, and the median round counts. Images/s = batch / wall seconds per step; the
ratio is also given in the process's CPU time per step, which a machine shared with other jobs
disturbs less than the wall clock. Results are appended to benchmarks/results/bench_lightweight.jsonl.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import cpu_info  # noqa: E402

VARIANTS = {"float32": ("float32", False), "bfloat16": ("bfloat16", False), "float32_xla": ("float32", True),
            "bfloat16_xla": ("bfloat16", True)}
RESULTS = ROOT / "benchmarks" / "results" / "bench_lightweight.jsonl"


def _parse_overrides(pairs):
    overrides = {}
    for pair in pairs or ():
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def training_step(generator, discriminator, latent_dim, reals, rng, jit, reconstruction):
    """A compiled function: D's gradients, then G's (see the module docstring); returns the losses."""
    import tensorflow as tf

    batch = reals.shape[0]

    def hinge_d(real_logits, fake_logits):
        return tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))

    @tf.function(jit_compile=jit)
    def step():
        fakes = generator(rng.normal((batch, latent_dim)), training=True)
        with tf.GradientTape() as tape:
            if reconstruction:
                crop = rng.uniform([], 0, 4, dtype=tf.int32)
                real_logits, reconstructions = discriminator(reals, crop=crop, training=True)
                targets = discriminator.reconstruction_targets(reals, crop)
                rec = tf.add_n([tf.reduce_mean(tf.square(r - t)) for r, t in zip(reconstructions, targets)])
            else:
                real_logits, rec = discriminator(reals, training=True), 0.0
            d_loss = hinge_d(real_logits, discriminator(fakes, training=True)) + rec
        d_grads = tape.gradient(d_loss, discriminator.trainable_weights)
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(discriminator(generator(rng.normal((batch, latent_dim)), training=True),
                                                   training=True))
        g_grads = tape.gradient(g_loss, generator.trainable_weights)
        norms = tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in d_grads + g_grads])
        return d_loss, g_loss, norms

    return step


def child(resolution, variant, batch, rounds, steps, overrides):
    import numpy as np
    import tensorflow as tf

    from keras_anime_gan import create_gan
    from keras_anime_gan.data import synthetic_faces
    from keras_anime_gan.gans.lightweight.networks import build_networks
    from keras_anime_gan.gans.stylegan2.networks import trainable_count
    from keras_anime_gan.precision import apply_precision

    precision, jit = VARIANTS[variant]
    apply_precision(precision)
    reals = tf.constant(synthetic_faces(batch, resolution, seed=0).astype(np.float32) / 127.5 - 1.0)
    rng = tf.random.Generator.from_seed(0)
    style = create_gan("stylegan2-ada", resolution, preset="tiny", seed=0)
    generator, discriminator = build_networks(resolution, **overrides)
    models = {
        "stylegan2_tiny": (training_step(style.generator, style.discriminator, style.latent_dim, reals, rng, jit,
                                         False), style.generator, style.discriminator),
        "lightweight": (training_step(generator, discriminator, generator.latent_dim, reals, rng, jit, True),
                        generator, discriminator),
    }
    result = {"resolution": resolution, "variant": variant, "batch": batch, "overrides": overrides, "trace_s": {},
              "params": {}, "round_s": {name: [] for name in models},
              "round_cpu_s": {name: [] for name in models}}
    for name, (step, g, d) in models.items():
        started = time.perf_counter()
        values = [float(value) for value in step()]
        result["trace_s"][name] = round(time.perf_counter() - started, 1)
        result["params"][name] = {"generator": trainable_count(g), "discriminator": trainable_count(d)}
        if not all(np.isfinite(values)):
            raise SystemExit(f"{name}: non-finite losses {values}")
    for _ in range(rounds):
        for name, (step, _, _) in models.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(steps):
                outputs = step()
            float(outputs[0])
            result["round_s"][name].append(round((time.perf_counter() - started) / steps, 4))
            result["round_cpu_s"][name].append(round((time.process_time() - cpu_started) / steps, 4))
    step_s = {name: statistics.median(values) for name, values in result["round_s"].items()}
    cpu_s = {name: statistics.median(values) for name, values in result["round_cpu_s"].items()}
    result["images_per_s"] = {name: round(batch / seconds, 2) for name, seconds in step_s.items()}
    result["images_per_cpu_s"] = {name: round(batch / seconds, 2) for name, seconds in cpu_s.items()}
    result["ratio"] = round(step_s["stylegan2_tiny"] / step_s["lightweight"], 2)
    result["cpu_ratio"] = round(cpu_s["stylegan2_tiny"] / cpu_s["lightweight"], 2)
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--variants", default="float32,bfloat16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per model (the median counts)")
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--override", action="append", metavar="KEY=VALUE",
                        help="a lightweight preset key (channel_base=1024, sle=false, ...), JSON values")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = _parse_overrides(args.override)
    if args.child:
        return child(args.resolution, args.child, args.batch, args.rounds, args.steps, overrides)
    unknown = [name for name in args.variants.split(",") if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    info = cpu_info()
    print(f"CPU {info['model']} ({info['vendor']} family {info['family']}), {info['cores']} cores, "
          f"{', '.join(info['vector'])}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for variant in args.variants.split(","):
        command = [sys.executable, __file__, "--child", variant, "--resolution", str(args.resolution),
                   "--batch", str(args.batch), "--rounds", str(args.rounds), "--steps", str(args.steps)]
        for pair in args.override or ():
            command += ["--override", pair]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            print(f"{variant}: failed\n{done.stderr[-3000:]}", flush=True)
            continue
        result = {**json.loads(lines[-1]), "cpu": info}
        with RESULTS.open("a", encoding="utf-8") as file:
            file.write(json.dumps(result) + "\n")
        rates = result["images_per_s"]
        print(f"{args.resolution} px {variant:13s} batch {args.batch}: lightweight {rates['lightweight']:8.2f} "
              f"images/s, stylegan2-ada tiny {rates['stylegan2_tiny']:7.2f} images/s: {result['ratio']:.2f}x "
              f"(CPU time: {result['cpu_ratio']:.2f}x) "
              f"(params G/D lightweight {result['params']['lightweight']}, tiny {result['params']['stylegan2_tiny']})",
              flush=True)


if __name__ == "__main__":
    main()
