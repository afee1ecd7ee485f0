"""What the fit-step benchmarks share (`bench_ema.py`, `bench_lr_decay.py`): their options, cached
batches of uniform noise, variants timed in alternating rounds (a busy machine slows them alike; the
median round counts), and the results appended as a JSON line."""

import argparse
import json
import statistics
import time


def parser(doc: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    return parser


def cached_batches(resolution: int, batch: int):
    """Four batches of images in [-1, 1], cached and repeated: the steps time the networks, not the reader."""
    import tensorflow as tf

    images = tf.random.stateless_uniform((4 * batch, resolution, resolution, 3), seed=[0, 1], minval=-1.0, maxval=1.0)
    return tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True).repeat().cache()


def median_seconds_per_step(variants: dict, rounds: int, steps: int) -> dict:
    """name -> the median over `rounds` of the seconds per step of `variants[name](steps)`, which
    trains `steps` steps; the variants take turns within each round."""
    seconds = {name: [] for name in variants}
    for _ in range(rounds):
        for name, train_steps in variants.items():
            started = time.perf_counter()
            train_steps(steps)
            seconds[name].append((time.perf_counter() - started) / steps)
    return {name: statistics.median(values) for name, values in seconds.items()}


def append_result(path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")
