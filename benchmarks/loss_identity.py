"""Per-step losses and weights of every model on fixed seeds, to show that a refactoring of the
training loop changes no number: run it on two commits and compare.

    python benchmarks/loss_identity.py --out before.json     # on the old commit
    python benchmarks/loss_identity.py --out after.json      # on the new one
    python benchmarks/loss_identity.py --compare before.json after.json

Each case trains a tiny model for a few steps on fixed synthetic faces, one thread per op, and records after every step the logged values (as float32 bit patterns) and a
SHA-256 of the generator's, the discriminator's and the EMA generator's weights. The cases cover
every registered model of the time and the loop's paths: the shared-fake step, separate updates
(WGAN's n_critic, the dynamic schedule), micro-batches, lazy R1 / path length / ADA, XLA and
bfloat16. Only public API is used (`create_gan`, `compile`, `fit`, `generator`, `discriminator`,
`ema_generator`), so the same file runs on both sides of a redesign.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSIC = {"width": 8, "latent_dim": 16}
STYLEGAN = {"preset": "tiny", "r1_interval": 2, "pl_interval": 2, "ada_interval": 1, "augment_p": 0.3,
            "ada_kimg": 0.1}
CASES = {  # name -> (model, resolution, options, compile/run settings)
    "dcgan": ("dcgan", 32, {**CLASSIC, "ema": 0.99}, {}),
    "dcgan-fuzzy": ("dcgan", 32, {**CLASSIC, "label_smoothing": 0.1, "d_learning_rate": 1e-4,
                                  "g_learning_rate": 5e-4}, {}),
    "dcgan-xla": ("dcgan", 32, {**CLASSIC, "ema": 0.99}, {"jit": True}),
    "dcgan-bf16": ("dcgan", 32, {**CLASSIC, "ema": 0.99}, {"precision": "bfloat16"}),
    "lsgan": ("lsgan", 32, {**CLASSIC, "label_smoothing": 0.1, "one_sided": True}, {}),
    "wgan": ("wgan", 32, {**CLASSIC, "n_critic": 2}, {}),
    "wgan-gp": ("wgan-gp", 32, {**CLASSIC, "n_critic": 2}, {}),
    "dynamic": ("dynamic", 32, {**CLASSIC, "scale": 3.0, "g_min": 1}, {}),
    "hinge": ("hinge", 32, {**CLASSIC, "margin": 0.5, "ema": 0.99}, {}),
    "stylegan2-ada": ("stylegan2-ada", 16, dict(STYLEGAN), {}),
    "stylegan2-ada-micro": ("stylegan2-ada", 16, {**STYLEGAN, "micro_batch": 4}, {}),
    "stylegan2-ada-xla": ("stylegan2-ada", 16, dict(STYLEGAN), {"jit": True}),
    "stylegan2-ada-bf16": ("stylegan2-ada", 16, dict(STYLEGAN), {"precision": "bfloat16"}),
    "stylegan2-ada-fixed-gamma": ("stylegan2-ada", 16, {**STYLEGAN, "r1_gamma": 0.5, "ema_kimg": 0.05,
                                                         "augment": "fixed"}, {}),
}
STEPS, BATCH = 6, 8


def _digest(weights) -> str:
    import numpy as np

    hasher = hashlib.sha256()
    for value in weights:
        hasher.update(np.ascontiguousarray(np.asarray(value)).tobytes())
    return hasher.hexdigest()[:16]


def _bits(value) -> str:
    import numpy as np

    return np.asarray(value, np.float32).reshape(-1)[0].view(np.uint32).item().to_bytes(4, "big").hex()


def run_case(name) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_anime_gan as kag
    from keras_anime_gan.data import synthetic_faces

    model, resolution, options, settings = CASES[name]
    policy = {"bfloat16": "mixed_bfloat16"}.get(settings.get("precision"), "float32")
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(7)
    if "batch_size" in inspect.signature(kag.create_gan).parameters:  # values derived from the batch (issue 31)
        options = {**options, "batch_size": BATCH}
    gan = kag.create_gan(model, resolution, seed=3, **options)
    gan.compile(jit_compile=settings.get("jit", False))
    k = gan.real_batches_per_step
    faces = synthetic_faces(BATCH * k * STEPS, resolution, seed=5).astype(np.float32) / 127.5 - 1.0
    dataset = tf.data.Dataset.from_tensor_slices(faces).batch(BATCH, drop_remainder=True)
    rows = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rows.append({"step": batch,
                         "logs": {key: _bits(value) for key, value in sorted((logs or {}).items())},
                         "generator": _digest(gan.generator.get_weights()),
                         "discriminator": _digest(gan.discriminator.get_weights()),
                         "ema": _digest(gan.ema_generator.get_weights())})

    gan.fit(dataset, epochs=1, steps_per_epoch=STEPS, verbose=0, callbacks=[Record()])
    keras.mixed_precision.set_global_policy("float32")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the per-step record of every case here (JSON)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two records")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    import tensorflow as tf

    # One thread per op and between ops: the same reduction order on every run (TensorFlow's op
    # determinism would refuse the networks' unseeded random streams).
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    record = {}
    for name in args.cases.split(","):
        record[name] = run_case(name)
        print(f"{name}: {len(record[name])} steps, last {record[name][-1]}", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1)
    return 0


def compare(before_path, after_path) -> int:
    with open(before_path, encoding="utf-8") as file:
        before = json.load(file)
    with open(after_path, encoding="utf-8") as file:
        after = json.load(file)
    differing = 0
    for name in before:
        if name not in after:
            print(f"{name}: missing after")
            differing += 1
            continue
        same = before[name] == after[name]
        steps = len(before[name])
        print(f"{name:28s} {steps} steps: {'bit-identical' if same else 'DIFFERENT'}")
        if not same:
            differing += 1
            for old, new in zip(before[name], after[name]):
                if old != new:
                    print(f"  first difference at step {old['step']}:\n    before {old}\n    after  {new}")
                    break
    print(f"{len(before) - differing} of {len(before)} cases bit-identical")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
