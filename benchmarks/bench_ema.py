"""What the EMA generator's own BatchNorm statistics cost: training steps per second of the lightweight
model (64 px preset, spectral norm in D, no augmentation, the time-to-quality recipe) with the
average's statistics refreshed as `fit` does (`ema.RefreshStatistics`: every tenth step), after
every step (on the whole batch, or on 8 latents), and not at all, as ratios in one process.

    python benchmarks/bench_ema.py [--resolution 64] [--rounds 5] [--steps 40]

Every variant is its own GAN with its own compiled step; the variants take turns for `--steps`
steps per round on the same cached batches, so a busy machine slows them alike, and the median
round counts. Results are appended to benchmarks/results/bench_ema.jsonl.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import keras_anime_gan  # noqa: E402,F401,I001  (before TensorFlow: oneDNN's kernels on, as the command line has them)
import fit_rounds  # noqa: E402
from bench_train import cpu_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_ema.jsonl"


def variants():
    """name -> (refresh every N batches, function that refreshes)."""
    from keras_anime_gan.gans import ema

    def part(size):
        return lambda average, latents: ema.refresh_statistics(average, latents[:size])

    return {"every 10th step": (ema.RefreshStatistics.every, ema.refresh_statistics),
            "every step": (1, ema.refresh_statistics), "every step, 8 latents": (1, part(8)),
            "none": (10**9, lambda average, latents: None)}


def main(argv=None) -> int:
    args = fit_rounds.parser(__doc__).parse_args(argv)

    from keras_anime_gan import create_gan
    from keras_anime_gan.gans import ema, loop

    batch = 32
    data = fit_rounds.cached_batches(args.resolution, batch)
    runs = {}
    for name, (every, refresh) in variants().items():
        loop.refresh_statistics = refresh  # read when the refresh is traced, in the first fit below
        gan = create_gan("lightweight", args.resolution, seed=0, ema=0.999, spectral_norm="discriminator",
                         augment="none")
        gan.compile()
        ema.RefreshStatistics.every = every
        gan.fit(data, steps_per_epoch=10, epochs=1, verbose=0)  # trace and warm up (the refresh at step 10)

        def train_steps(steps, gan=gan, every=every):
            ema.RefreshStatistics.every = every
            gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

        runs[name] = train_steps
    median = fit_rounds.median_seconds_per_step(runs, args.rounds, args.steps)
    record = {"resolution": args.resolution, "batch": batch, "steps": args.steps, "rounds": args.rounds,
              "cpu": cpu_info(), "seconds_per_step": median,
              "ratio_to_none": {name: median[name] / median["none"] for name in median}}
    for name in median:
        print(f"refresh {name:22s}: {1000 * median[name]:6.1f} ms/step, {record['ratio_to_none'][name]:.3f}x "
              "the step without a refresh", flush=True)
    fit_rounds.append_result(RESULTS, record)
    return 0

if __name__ == "__main__":
    sys.exit(main())
