"""What `--lr-decay` costs a training step: the lightweight model's `fit` (64 px preset, spectral
norm in D, no augmentation, the time-to-quality recipe) with `callbacks.LearningRateDecay` (both
rates set before every batch) and without, as a ratio in one process.

    python benchmarks/bench_lr_decay.py [--resolution 64] [--rounds 5] [--steps 40]

One GAN, one compiled step: the two variants take turns for `--steps` steps per round on the same
cached batches, so a busy machine slows them alike, and the median round counts. Results are
appended to benchmarks/results/bench_lr_decay.jsonl.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import keras_anime_gan  # noqa: E402,F401,I001  (before TensorFlow: oneDNN's kernels on, as the command line has them)
import fit_rounds  # noqa: E402
from bench_train import cpu_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_lr_decay.jsonl"


def main(argv=None) -> int:
    args = fit_rounds.parser(__doc__).parse_args(argv)

    from keras_anime_gan import create_gan
    from keras_anime_gan.callbacks import LearningRateDecay

    batch = 32
    data = fit_rounds.cached_batches(args.resolution, batch)
    gan = create_gan("lightweight", args.resolution, seed=0, spectral_norm="discriminator", augment="none")
    gan.compile()
    gan.fit(data, steps_per_epoch=10, epochs=1, verbose=0)  # trace and warm up
    # Over its last half of each round's steps: from the second half of a round on, every batch a new rate.
    variants = {"constant rates": lambda: [], "LearningRateDecay(0.5)": lambda: [LearningRateDecay(0.5)]}
    median = fit_rounds.median_seconds_per_step(
        {name: lambda steps, callbacks=callbacks: gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0,
                                                          callbacks=callbacks())
         for name, callbacks in variants.items()}, args.rounds, args.steps)
    base = median["constant rates"]
    record = {"resolution": args.resolution, "batch": batch, "steps": args.steps, "rounds": args.rounds,
              "cpu": cpu_info(), "seconds_per_step": median,
              "ratio_to_constant": {name: median[name] / base for name in median}}
    for name in median:
        print(f"{name:24s}: {1000 * median[name]:6.1f} ms/step, {median[name] / base:.3f}x the constant rates' step",
              flush=True)
    fit_rounds.append_result(RESULTS, record)
    return 0

if __name__ == "__main__":
    sys.exit(main())
