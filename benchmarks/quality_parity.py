"""Quality parity of the precisions on the real faces: the same short DCGAN run in float32 and in
bfloat16 (and any other precision), SWD on 512 images after each epoch beside the real-vs-real
noise floor and its spread.

    python benchmarks/quality_parity.py [--data /tmp/faces32] [--epochs 3] [--steps 100] [--seeds 0]

The data is the shared anime faces converted to 32 px (`keras-anime-gan convert ... --resolution 32`;
done here when --data does not exist). Each run is its own process. The floor's spread is the
standard deviation of the SWD between `--floor-pairs` pairs of disjoint 512-image real sets: two
runs whose SWDs differ by less than it are not told apart by the metric; with several seeds the
seed-to-seed spread of each precision is printed too (at a short budget it is much larger). Results are appended to
benchmarks/results/quality_parity.jsonl. On a CPU without native bf16 the bfloat16 run is
emulated and several times slower; its quality is what this measures, not its speed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package of this checkout, not an installed one
SHARED = ROOT.parent / "shared" / "data" / "anime-faces-96"


def run_child(args):
    from keras_anime_gan.config import TrainConfig
    from keras_anime_gan.training import train

    config = TrainConfig(data=args.data, out=args.out, resolution=32, model_options={"width": args.width, "latent_dim": 100},
                         batch_size=args.batch, epochs=args.epochs, steps_per_epoch=args.steps, metrics="swd",
                         metric_images=512, precision=args.precision, seed=args.seed, verbose=0, jit=False,
                         sample_interval=args.epochs)
    started = time.time()
    summary = train(config)
    with open(os.path.join(args.out, "metrics.jsonl"), encoding="utf-8") as file:
        records = [record for record in map(json.loads, file) if "epoch" in record]
    print(json.dumps({"precision": summary["precision"], "seed": args.seed, "state": summary["state"],
                      "seconds": round(time.time() - started, 1), "images_per_second": summary["images_per_second"],
                      "swd": [round(record["results"]["swd"], 2) for record in records],
                      "run_floor": records[-1].get("noise_floor", {}).get("swd_floor")}))


def floor_spread(data, pairs):
    import numpy as np

    from keras_anime_gan.data.pipeline import load_real_images
    from keras_anime_gan.metrics import noise_floor

    real = load_real_images(data, 1024 * pairs, 32, seed=123)
    values = [noise_floor(real[2 * i * 512:(2 * i + 1) * 512], real[(2 * i + 1) * 512:(2 * i + 2) * 512])["swd_floor"]
              for i in range(pairs)]
    return float(np.mean(values)), float(np.std(values, ddof=1)), values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/faces32")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="steps (batches) per epoch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--floor-pairs", type=int, default=5)
    parser.add_argument("--runs", default="/tmp/quality_parity")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child:
        return run_child(args)
    if not os.path.exists(args.data):
        subprocess.run([sys.executable, "-m", "keras_anime_gan", "convert", str(SHARED), args.data, "--resolution", "32"],
                       check=True, cwd=ROOT)
    from keras_anime_gan.precision import describe_cpu

    cpu = describe_cpu()
    floor_mean, floor_std, floors = floor_spread(args.data, args.floor_pairs)
    print(f"CPU {cpu['model']}, {cpu['cores']} cores, bf16 flags: {', '.join(cpu['bf16_flags']) or 'none'}")
    print(f"SWD noise floor at 512 images: {floor_mean:.2f} +- {floor_std:.2f} over {args.floor_pairs} real-vs-real pairs")
    results = []
    for seed in args.seeds.split(","):
        for precision in args.precisions.split(","):
            out = os.path.join(args.runs, f"{precision}-seed{seed}-{int(time.time())}")
            command = [sys.executable, __file__, "--child", "--precision", precision, "--seed", seed, "--out", out,
                       "--data", args.data, "--epochs", str(args.epochs), "--steps", str(args.steps),
                       "--batch", str(args.batch), "--width", str(args.width)]
            result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if result.returncode:
                raise SystemExit(f"{precision} failed:\n{result.stderr[-3000:]}")
            record = json.loads(result.stdout.strip().splitlines()[-1])
            results.append(record)
            print(f"{precision} seed {seed}: SWD per epoch {record['swd']} ({record['seconds']} s, "
                  f"{record['images_per_second']} img/s)", flush=True)
    final = {}
    for record in results:
        final.setdefault(record["precision"], []).append(record["swd"][-1])
    summary = {"benchmark": "quality_parity", "cpu": cpu, "epochs": args.epochs, "steps": args.steps,
               "batch": args.batch, "width": args.width, "resolution": 32,
               "floor_mean": round(floor_mean, 2), "floor_std": round(floor_std, 2),
               "floors": [round(value, 2) for value in floors],
               "final_swd": final, "runs": results}
    summary["final_swd_mean"] = {name: round(statistics.mean(values), 2) for name, values in final.items()}
    summary["final_swd_seed_std"] = {name: round(statistics.stdev(values), 2) if len(values) > 1 else None
                                     for name, values in final.items()}
    for name, values in final.items():
        spread = summary["final_swd_seed_std"][name]
        print(f"{name}: final SWD over seeds {values}: mean {statistics.mean(values):.2f}"
              + (f", seed-to-seed std {spread:.2f}" if spread is not None else ""))
    if "float32" in final:
        reference = statistics.mean(final["float32"])
        summary["gap_to_float32"] = {name: round(statistics.mean(values) - reference, 2) for name, values in final.items()}
        for name, gap in summary["gap_to_float32"].items():
            verdict = "within" if gap <= floor_std else "outside"
            print(f"{name}: final SWD {statistics.mean(final[name]):.2f}, {gap:+.2f} vs float32: {verdict} the floor's "
                  f"spread ({floor_std:.2f})")
    print(json.dumps({key: value for key, value in summary.items() if key != "runs"}))
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    with open(results_dir / "quality_parity.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps({**summary, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
