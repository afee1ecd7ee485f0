"""Noise floor of SWD and the colour metric on the shared faces, against clearly worse "generators".

    python benchmarks/metric_noise.py [--faces ../shared/data/anime-faces-96] [--sizes 256,512,1000,2000]
                                      [--pairs 3] [--out benchmarks/results]

For each n: `--pairs` disjoint pairs of real sets of n faces (96 -> 64 px, Pillow bilinear) give the
floor (mean, std and range over pairs) and the time per metric. Then the first pair's second set is
degraded (blur, noise, tint, lower contrast, down- then up-sampling) and scored against its first
set, as a generator's samples would be: "none" is that pair's floor, so each degraded value minus
it is how far that "generator" moves the metric. Prints a table and appends one JSON line to
benchmarks/results/metric_noise.jsonl. Takes a few minutes on 2 cores at the default sizes.
"""

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's metrics, not another installed copy

from keras_anime_gan import metrics  # noqa: E402


def load_faces(folder, indices, resolution):
    from PIL import Image

    images = []
    for index in indices:
        with Image.open(os.path.join(folder, f"{index}.jpg")) as image:
            images.append(np.asarray(image.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)))
    return np.stack(images)


def resample(images, size):
    """Down to size x size and back up (bilinear both ways): the detail of a size-px generator."""
    from PIL import Image

    resolution = images.shape[1]
    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
                                .resize((resolution, resolution), Image.Resampling.BILINEAR)) for image in images])


def degradations(resolution):
    import scipy.ndimage

    def box(k):
        return lambda x: np.rint(scipy.ndimage.uniform_filter(x.astype(np.float32), (0, k, k, 0))).astype(np.uint8)

    def clip(x):
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    noise = np.random.default_rng(123)
    return {
        "blur_half": lambda x: np.rint(0.5 * x + 0.5 * box(3)(x)).astype(np.uint8),  # a slight softening
        "box3": box(3),
        "noise8": lambda x: clip(x + noise.normal(0, 8, x.shape)),
        "tint12": lambda x: clip(x.astype(np.float32) + [12, 0, -12]),
        "contrast0.8": lambda x: clip(x * 0.8 + 20),  # nothing clips: SWD's blind spot
        "down2x": lambda x: resample(x, resolution // 2),
        "down4x": lambda x: resample(x, resolution // 4),  # 16x fewer pixels
    }


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def cpu_description():
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
        model = found.group(1) if found else model
        flags = sorted(set(re.findall(r"\bavx512[a-z_0-9]*", text)))
    except OSError:
        pass
    return {"cpu": model, "avx512": flags, "cores": os.cpu_count()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_faces = os.environ.get("ANIME_FACES_DIR", str(ROOT.parent / "shared" / "data" / "anime-faces-96"))
    parser.add_argument("--faces", default=default_faces)
    parser.add_argument("--sizes", default="256,512,1000,2000")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if not os.path.isdir(args.faces):
        sys.exit(f"faces not found at {args.faces}")
    sizes = [int(size) for size in args.sizes.split(",")]
    available = len([name for name in os.listdir(args.faces) if name.endswith(".jpg")])
    needed = 2 * args.pairs * max(sizes)
    if needed > available:
        sys.exit(f"{needed} faces needed for {args.pairs} pairs at n={max(sizes)}, {available} found")

    order = np.random.default_rng(args.seed).permutation(available)[:needed]
    started = time.perf_counter()
    pool = load_faces(args.faces, order, args.resolution)
    load_seconds = time.perf_counter() - started
    digests = {metrics._image_digest(image) for image in pool}
    degraders = degradations(args.resolution)

    rows = []
    for n in sizes:
        sets = [pool[k * n:(k + 1) * n] for k in range(2 * args.pairs)]
        floors = {"swd": [], "color": []}
        seconds = {"swd": [], "color": []}
        for pair in range(args.pairs):
            for metric in floors:
                floor, took = timed(metrics.noise_floor, sets[2 * pair], sets[2 * pair + 1], (metric,))
                floors[metric].append(floor[f"{metric}_floor"])
                seconds[metric].append(took)
        reference, source = sets[0], sets[1]
        degraded = {"none": {"swd": floors["swd"][0], "color": floors["color"][0]}}
        for name, degrade in degraders.items():
            fake = degrade(source)
            result = metrics.compute_metrics(reference, fake, ("swd", "color"))
            degraded[name] = {"swd": result["swd"], "color": result["color"]}
        row = {"n": n, "swd_seconds": float(np.mean(seconds["swd"])), "color_seconds": float(np.mean(seconds["color"])),
               "degraded": degraded}
        for metric, values in floors.items():
            spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row[f"{metric}_floor"] = {"mean": float(np.mean(values)), "std": spread, "min": float(np.min(values)),
                                      "max": float(np.max(values)), "values": values}
        rows.append(row)
        print_row(row, first=len(rows) == 1)

    record = {"benchmark": "metric_noise", **cpu_description(), "load_average": os.getloadavg(),
              "seconds": time.perf_counter() - started, "faces": os.path.abspath(args.faces),
              "resolution": args.resolution, "pairs": args.pairs, "seed": args.seed, "load_seconds": load_seconds,
              "loaded": len(pool), "distinct_loaded": len(digests), "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    metrics.append_jsonl(os.path.join(args.out, "metric_noise.jsonl"), record)
    print(f"\n{record['cpu']} ({record['cores']} cores, avx512: {' '.join(record['avx512']) or 'none'}); "
          f"{len(pool)} faces loaded in {load_seconds:.1f} s, {len(digests)} distinct; "
          f"{record['seconds']:.0f} s in all, load average {record['load_average'][1]:.1f} at the end")
    print("shift = degraded - none (the same pair's floor), in units of the floor's std over pairs")


def print_row(row, first):
    names = list(row["degraded"])
    if first:
        print(f"{'n':>5} {'metric':>6} {'floor mean':>10} {'std':>6} {'min..max':>13} {'s/call':>7} | "
              + " ".join(f"{name:>11}" for name in names))
    for metric in ("swd", "color"):
        floor = row[f"{metric}_floor"]
        values = " ".join(f"{row['degraded'][name][metric]:11.2f}" for name in names)
        none = row["degraded"]["none"][metric]
        gaps = " ".join(f"{(row['degraded'][name][metric] - none) / max(floor['std'], 1e-9):9.1f}sd"
                        for name in names)
        print(f"{row['n']:>5} {metric:>6} {floor['mean']:10.2f} {floor['std']:6.2f} "
              f"{floor['min']:6.2f}..{floor['max']:<6.2f} {row[f'{metric}_seconds']:7.3f} | {values}")
        print(f"{'':>5} {'shift':>6} {'':>10} {'':>6} {'':>13} {'':>7} | {gaps}")


if __name__ == "__main__":
    main()
