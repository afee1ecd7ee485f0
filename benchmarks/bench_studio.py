"""The studio's numbers: the latency of a control change, and what projection reaches in a time budget.

    PYTHONPATH=. nice -n 15 python benchmarks/bench_studio.py --out bench-studio [--run RUN] [--stage all]

Stages (--stage latency, projection or all):

1. A trained tiny run, unless --run names one: the first --train-images faces of
   ../shared/data/anime-faces-96 converted to 64 px TFRecords and a StyleGAN2-ADA "tiny" run trained
   on them with the command line (`keras-anime-gan convert`, `keras-anime-gan train`), --epochs x
   --steps-per-epoch steps.
2. Latency: the studio served by uvicorn on 127.0.0.1 in this process, and a client that changes one
   control per request (seed, psi, a direction slider, style mixing, in turn) and decodes the PNG it
   gets back: p50 / p95 of that round trip over --requests requests after a warm-up, and of the draw
   alone (`engine.render`), for the tiny run (64 px), random-initialised StyleGAN2-ADA "auto" at 64 and
   128 px, NVIDIA's small64.pkl fixture when present, and a DCGAN at 64 px. The compiled functions'
   trace counts before and after show that no request retraces.
3. Projection on the trained run (64 px), each projection given --budget seconds of wall time (the
   steps that fit, measured on a 20-step run after the first call, which traces the step once:
   its seconds are reported apart as first_call_s): faces the generator drew itself (seeds 1000...,
   const noise: a known answer) and held-out real faces (19000... of the shared folder, never trained
   on); PSNR per face and SWD of the set of projections against the set of targets, for our recipe in
   W (with the run's discriminator features, and with pixels only) and W+, and for NVIDIA's projector
   recipe with a pixel loss in place of VGG16, in W.

Everything goes to OUT/results.json and a Markdown table on stdout; the CPU (model and flags) is named
beside the numbers.
"""

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FACES = ROOT.parent / "shared" / "data" / "anime-faces-96"
NVIDIA_SMALL64 = ROOT.parent / "shared" / "nvidia-stylegan2-ada" / "small64.pkl"


def cpu():
    flags = set()
    model = "?"
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    wanted = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    return {"model": model, "cores": os.cpu_count(), "flags": wanted}


def train_run(out, images, epochs, steps):
    """Convert the first `images` shared faces and train a tiny StyleGAN2-ADA run on them (CLI)."""
    faces = out / "train_faces"
    faces.mkdir(parents=True, exist_ok=True)
    for index in range(images):
        link = faces / f"{index}.jpg"
        if not link.exists():
            link.symlink_to(FACES / f"{index}.jpg")
    command = [sys.executable, "-m", "keras_anime_gan"]
    records = out / "tfrecords64"
    if not (records / "dataset.json").exists():
        subprocess.run(command + ["convert", str(faces), str(records), "--resolution", "64", "--quiet"], check=True)
    run = out / "run_tiny64"
    started = time.time()
    subprocess.run(command + ["train", "--data", str(records), "--model", "stylegan2-ada", "--preset", "tiny",
                              "--resolution", "64", "--epochs", str(epochs), "--steps-per-epoch", str(steps),
                              "--metrics", "none", "--sample-interval", str(epochs), "--out", str(run), "--quiet"]
                   + (["--resume"] if (run / "config.json").exists() else []), check=True)
    print(f"trained {run} in {time.time() - started:.0f} s", flush=True)
    return run


# ----------------------------------------------------------------------------- latency


def _serve(engine):
    import socket

    import uvicorn

    from keras_anime_gan.studio.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _states(style, count):
    """`count` page states, each one control away from the previous one."""
    states, state = [], {"seed": 0, "psi": 1.0, "directions": {"method": "sefa" if style else "ganspace",
                                                                 "layers": "all", "k": 8, "amounts": {}}}
    for index in range(count):
        state = json.loads(json.dumps(state))
        control = index % 4
        if control == 0:
            state["seed"] = index
        elif control == 1:
            state["psi"] = round(0.5 + 0.05 * (index % 10), 2)
        elif control == 2:
            state["directions"]["amounts"] = {str(index % 8): round(-2 + 0.1 * (index % 40), 1)}
        elif style:
            state["mix"] = {"on": index % 8 == 3, "seed": index, "crossover": "coarse"}
        else:
            state["seed"] = index + 1
        states.append(state)
    return states


def _traces(engine):
    renderer = engine.renderer
    functions = list(renderer._synthesis.values()) + [renderer._mapping] if renderer.style else [renderer._generate]
    return sum(function.experimental_get_tracing_count() for function in functions)


def _percentiles(values):
    ordered = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 1),
            "n": len(ordered)}


def latency(name, source, requests):
    from PIL import Image

    from keras_anime_gan.studio.engine import LocalEngine, open_source

    started = time.perf_counter()
    engine = source if isinstance(source, LocalEngine) else open_source(str(source))
    opened = time.perf_counter() - started
    states = _states(engine.style, requests + 10)
    server, url = _serve(engine)
    try:
        for state in states[:10]:  # warm-up: directions computed, every function traced
            engine.render(state)
        traces = _traces(engine)
        draw = []
        for state in states[10:]:
            begin = time.perf_counter()
            engine.render(state)
            draw.append(time.perf_counter() - begin)
        round_trip = []
        for state in states[10:]:
            begin = time.perf_counter()
            request = urllib.request.Request(url + "/api/render", data=json.dumps(state).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                answer = json.loads(response.read())
            Image.open(io.BytesIO(base64.b64decode(answer["image"]))).load()
            round_trip.append(time.perf_counter() - begin)
        retraced = _traces(engine) - traces
    finally:
        server.should_exit = True
    result = {"source": name, "kind": engine.kind, "resolution": engine.resolution,
              "parameters": int(engine.generator.count_params()), "open_s": round(opened, 1),
              "round_trip": _percentiles(round_trip), "draw": _percentiles(draw), "retraced": retraced}
    print(f"  {name}: round trip p50 {result['round_trip']['p50_ms']} ms, p95 {result['round_trip']['p95_ms']} ms; "
          f"draw p50 {result['draw']['p50_ms']} ms; retraced {retraced}", flush=True)
    return result


def latency_stage(run, requests, work):
    from keras_anime_gan import create_gan

    work.mkdir(parents=True, exist_ok=True)
    sources = [("StyleGAN2-ADA tiny, 64 px (trained run)", run)]
    for preset, resolution in (("auto", 64), ("auto", 128)):
        path = work / f"random-{preset}{resolution}.keras"
        if not path.exists():
            create_gan("stylegan2-ada", resolution, preset=preset, seed=0).ema_generator.save(path)
        sources.append((f"StyleGAN2-ADA {preset}, {resolution} px (random weights)", path))
    if NVIDIA_SMALL64.exists():
        sources.append(("NVIDIA small64.pkl fixture, 64 px (read by the safe loader)", NVIDIA_SMALL64))
    path = work / "random-dcgan64.keras"
    if not path.exists():
        create_gan("dcgan", 64, seed=0).generator.save(path)
    sources.append(("DCGAN, 64 px, width 64 (random weights)", path))
    return [latency(name, source, requests) for name, source in sources]


# ----------------------------------------------------------------------------- projection


def _steps_for(budget, run_steps):
    """Steps that fit `budget` seconds, from a 20-step run after a 2-step one (which pays the one-time
    tracing of the projector's step: the studio and `project` keep it for the next projection)."""
    traced = run_steps(2)
    seconds = run_steps(20)
    return max(20, int(0.9 * budget * 20 / seconds)), traced


def projection_stage(run, budget, count):
    import numpy as np

    from keras_anime_gan import edit
    from keras_anime_gan.metrics import swd

    generator, discriminator = edit.networks(str(run))
    known = [edit.draw(generator, edit.Edit(seed=1000 + index)) for index in range(count)]
    real = [edit.target_image(FACES / f"{19000 + index}.jpg", generator.resolution) for index in range(count)]
    methods = [("ours, W", dict(space="w", recipe="ours", discriminator=discriminator)),
               ("ours, W, pixels only", dict(space="w", recipe="ours", discriminator=None)),
               ("ours, W+", dict(space="w+", recipe="ours", discriminator=discriminator)),
               ("NVIDIA recipe, pixel loss, W", dict(space="w", recipe="nvidia"))]
    results = []
    for set_name, targets in (("drawn by the generator (known latent)", known), ("held-out real faces", real)):
        for method, options in methods:
            def run_steps(steps, options=options):
                begin = time.perf_counter()
                edit.project(generator, targets[0], steps=steps, **options)
                return time.perf_counter() - begin

            steps, traced = _steps_for(budget, run_steps)
            found = [edit.project(generator, target, steps=steps, time_limit=budget, **options) for target in targets]
            values = [item.psnr for item in found]
            pictures = np.stack([item.image for item in found])
            distance = swd(np.stack(targets), pictures, min_resolution=16)["swd"]
            row = {"set": set_name, "method": method, "budget_s": budget, "steps": steps,
                   "first_call_s": round(traced, 1),
                   "steps_done": [item.steps for item in found], "seconds": [round(item.seconds, 1) for item in found],
                   "psnr": [round(value, 2) for value in values], "psnr_median": round(statistics.median(values), 2),
                   "swd": round(float(distance), 1), "n": len(found)}
            results.append(row)
            print(f"  {set_name}, {method}: {steps} steps, median PSNR {row['psnr_median']} dB "
                  f"({min(values):.1f}-{max(values):.1f}), SWD {row['swd']}", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-studio")
    parser.add_argument("--run", default=None, help="a trained 64 px StyleGAN2-ADA run (default: train one)")
    parser.add_argument("--stage", default="all", choices=["all", "latency", "projection"])
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of wall time per projection")
    parser.add_argument("--faces", type=int, default=5, help="faces per projection set")
    args = parser.parse_args()

    import keras_anime_gan

    keras_anime_gan.quiet_tensorflow_startup()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["cpu"] = cpu()
    print(f"CPU: {results['cpu']}", flush=True)
    run = Path(args.run) if args.run else train_run(out, args.train_images, args.epochs, args.steps_per_epoch)
    results["run"] = str(run)
    if args.stage in ("all", "latency"):
        print("latency (control change -> decoded picture):", flush=True)
        results["latency"] = latency_stage(run, args.requests, Path(tempfile.mkdtemp(prefix="bench-studio-")))
        results_path.write_text(json.dumps(results, indent=1))
    if args.stage in ("all", "projection"):
        print(f"projection ({args.budget:g} s per face):", flush=True)
        results["projection"] = projection_stage(run, args.budget, args.faces)
        results_path.write_text(json.dumps(results, indent=1))
    print(f"\n{results['cpu']['model']}, {results['cpu']['cores']} cores, flags {' '.join(results['cpu']['flags'])}")
    for row in results.get("latency", []):
        print(f"| {row['source']} | {row['round_trip']['p50_ms']} | {row['round_trip']['p95_ms']} | "
              f"{row['draw']['p50_ms']} | {row['draw']['p95_ms']} | {row['retraced']} |")
    for row in results.get("projection", []):
        print(f"| {row['set']} | {row['method']} | {row['steps']} | {row['psnr_median']} | "
              f"{min(row['psnr']):.1f}-{max(row['psnr']):.1f} | {row['swd']} |")


if __name__ == "__main__":
    main()
