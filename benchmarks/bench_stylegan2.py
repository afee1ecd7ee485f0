"""StyleGAN2-ADA training speed on this machine, per phase, against NVIDIA's PyTorch figure.

    python benchmarks/bench_stylegan2.py [--resolutions 64,128] [--variants float32,bfloat16,float32_xla]
                                         [--batch 32] [--cycle 16] [--steps 1] [--augment-p 0.2]
                                         [--micro-batch 16]

Each (resolution, variant) runs in its own process, so peak memory is its own. In a process,
`create_gan("stylegan2-ada", res, preset="auto")` trains on synthetic faces with `fit`. Each set of
lazy phases that can be due is its own compiled step (the phases are picked in Python from the step
counter), so each is traced once first; then `--cycle` consecutive steps are trained from step 0,
as a run does, and every step is timed by a callback:

- main: G main and D main (our step shares one generator forward between them);
- main + G reg: with path length (every 4 steps; ADA's p adjustment, also every 4, rides along);
- main + G reg + D reg: with lazy R1 as well (every 16 steps, step 0 of a cycle).

Images/s is the whole 16-step cycle's (12 main steps, 3 with G reg, 1 with both: NVIDIA's
amortisation, measured rather than computed); with a shorter --cycle it is computed from the
medians with the same weights. G reg and D reg are differences of medians. G main and D main
alone are timed as NVIDIA splits them (`generator_update` without the shared D update, and
`discriminator_update` with its own generator forward), and augmentation as ADA's forward and
backward on a real batch at p. Results, every step's time included, are appended to
benchmarks/results/bench_stylegan2.jsonl.

FLOPs: TensorFlow's profiler counts the float operations of one generator and one discriminator
forward pass at batch 1 (convolutions and matrix products, from the traced graphs); a main step is
about 3 G + 8 D forward passes per image, as for DCGAN (see bench_train.py), since backward costs
twice the forward. The peak is bench_train's (cores x clock x FLOP per cycle of the vector units).

NVIDIA's figure, from the StyleGAN2-ADA issue: stylegan2-ada-pytorch on a 2-core AMD EPYC Zen 4
(family 25, model 17; AVX-512 with bf16), 2 threads, auto preset at 64 px, batch 32, ADA p 0.2,
float32: 0.383 images/s (2,613 s/kimg). It is printed beside ours when this CPU is the same model.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_train import cpu_info, peak_flops  # noqa: E402

NVIDIA = {"cpu": ("25", "17"), "resolution": 64, "images_per_s": 0.383,
          "phases_s": {"g_main": 41.2, "d_main": 32.7, "g_reg": 31.3, "d_reg": 29.8}}
VARIANTS = {"float32": ("float32", False), "bfloat16": ("bfloat16", False), "float32_xla": ("float32", True),
            "bfloat16_xla": ("bfloat16", True)}
# step counter -> the phases due (r1 every 16; path length and ADA every 4)
DUE_STEPS = {"main": 1, "main+g_reg": 4, "main+g_reg+d_reg": 16}


def _timed(function, repeats):
    function()  # trace (and compile)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def forward_flops(network, input_shape, call):
    """Float operations of one forward pass at batch 1, counted by TensorFlow's profiler."""
    import tensorflow as tf

    graph = tf.function(call).get_concrete_function(tf.TensorSpec((1, *input_shape), tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def step_clock():
    """A Keras callback recording the wall seconds of every training step in `.seconds` (built here, so
    the parent process never imports Keras)."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self._began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self._began)

    return StepClock()


def due_set(step):
    """The name in DUE_STEPS of the phases due at this step counter (R1 every 16; path length and ADA every 4)."""
    return "main+g_reg+d_reg" if step % 16 == 0 else "main+g_reg" if step % 4 == 0 else "main"


def child(resolution, variant, batch, steps, augment_p, preset="auto", cycle=16, micro_batch=None):
    from keras_anime_gan import create_gan
    import numpy as np
    import tensorflow as tf

    from keras_anime_gan.data import synthetic_faces
    from keras_anime_gan.precision import apply_precision

    precision, jit = VARIANTS[variant]
    apply_precision(precision)
    gan = create_gan("stylegan2-ada", resolution, preset=preset, seed=0, augment="ada", augment_p=augment_p,
                     micro_batch=micro_batch)
    gan.compile(jit_compile=jit)
    images = synthetic_faces(batch * 2, resolution, seed=0)
    data = tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True).repeat().prefetch(2)
    result = {"resolution": resolution, "variant": variant, "preset": preset, "batch": batch, "precision": precision,
              "xla": jit, "micro_batch": micro_batch, "cycle_steps": cycle, "trace_s": {}}
    # Trace (and compile) each set of due phases once, then train `cycle` consecutive steps from step 0
    # as a run does (step 0 has everything due, every 4th path length and ADA, the rest the main step).
    for name, step in DUE_STEPS.items():
        gan.phase_steps.assign(step)
        started = time.perf_counter()
        gan.fit(data, steps_per_epoch=1, epochs=1, verbose=0)
        result["trace_s"][name] = round(time.perf_counter() - started, 1)
    gan.phase_steps.assign(0)
    clock = step_clock()
    started = time.perf_counter()
    gan.fit(data, steps_per_epoch=cycle, epochs=1, verbose=0, callbacks=[clock])
    cycle_seconds = time.perf_counter() - started
    by_set = {name: [] for name in DUE_STEPS}
    for step, seconds in enumerate(clock.seconds):
        by_set[due_set(step)].append(seconds)
    result["step_times_s"] = {name: [round(value, 2) for value in values] for name, values in by_set.items()}
    result["step_s"] = {name: round(statistics.median(values), 3) for name, values in by_set.items() if values}
    main, g_reg, both = (result["step_s"].get(name) for name in DUE_STEPS)
    result["phases_s"] = {"main": main, "g_reg": round(g_reg - main, 3) if g_reg else None,
                          "d_reg": round(both - g_reg, 3) if both and g_reg else None}
    # A run's rate: whole 16-step cycles are NVIDIA's amortisation exactly; any other length is
    # weighted to 12 main, 3 path-length and 1 R1 step per 16 from the medians.
    if cycle % 16 == 0:
        result["images_per_s"] = round(batch * cycle / cycle_seconds, 4)
    else:
        result["images_per_s"] = round(batch / ((12 * main + 3 * g_reg + both) / 16), 4)
    result["s_per_kimg"] = round(1000 / result["images_per_s"], 1)

    real = tf.constant(images[:batch].astype(np.float32) / 127.5 - 1.0)
    compile_options = {"jit_compile": True} if jit else {}
    g_main = tf.function(lambda: gan.generator_update(batch)[0], **compile_options)
    d_main = tf.function(lambda: gan.discriminator_update(real), **compile_options)

    @tf.function(**compile_options)
    def augmentation():
        with tf.GradientTape() as tape:
            tape.watch(real)
            total = tf.reduce_sum(tf.cast(gan.objective.augmenter(real, training=True), tf.float32))
        return tape.gradient(total, real)

    gan.objective.augmenter.p.assign(augment_p)
    for name, function in (("g_main", g_main), ("d_main", d_main), ("augment", augmentation)):
        result["phases_s"][name] = round(_timed(lambda function=function: tf.nest.map_structure(
            lambda t: t.numpy(), function()), steps), 3)

    g = forward_flops(gan.generator, (gan.latent_dim,), lambda z: gan.generator(z, training=True))
    d = forward_flops(gan.discriminator, (resolution, resolution, 3), lambda x: gan.discriminator(x, training=True))
    result["flops_per_image"] = {"g_forward": g, "d_forward": d, "main_step": 3 * g + 8 * d}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="64,128")
    parser.add_argument("--variants", default="float32,bfloat16,float32_xla")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1,
                        help="timed repeats of the G main, D main and augmentation parts (the fastest counts)")
    parser.add_argument("--cycle", type=int, default=16,
                        help="consecutive training steps timed from step 0 (16: one whole lazy-regularisation cycle)")
    parser.add_argument("--augment-p", type=float, default=0.2)
    parser.add_argument("--preset", default="auto", help="auto as NVIDIA's figure; tiny for a quick check of this script")
    parser.add_argument("--micro-batch", type=int,
                        help="images per pass, gradients accumulated over batch / this (for less memory, e.g. "
                             "float32 at 128 px on 24 GB); default: the whole batch")
    parser.add_argument("--clock-ghz", type=float)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1], args.batch, args.steps, args.augment_p, args.preset,
                     args.cycle, args.micro_batch)
    if args.cycle < 5:
        parser.error("--cycle must be at least 5: steps 0-4 hold each set of phases (R1 at 0, path length at 4)")
    unknown = [name for name in args.variants.split(",") if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    info = cpu_info()
    peak = peak_flops(info, args.clock_ghz)
    print(f"CPU {info['model']} ({info['vendor']} family {info['family']}), {info['cores']} cores; vector flags "
          f"{', '.join(info['vector'])}; peak float32 {peak['float32'] / 1e9:.1f}, bfloat16 "
          f"{peak['bfloat16'] / 1e9:.1f} GFLOP/s ({peak['how']})", flush=True)
    model = _cpu_model()
    rows = []
    for resolution in (int(value) for value in args.resolutions.split(",")):
        for variant in args.variants.split(","):
            command = [sys.executable, __file__, "--child", str(resolution), variant, "--batch", str(args.batch),
                       "--steps", str(args.steps), "--augment-p", str(args.augment_p), "--preset", args.preset,
                       "--cycle", str(args.cycle)] + (["--micro-batch", str(args.micro_batch)] if args.micro_batch else [])
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                why = " (SIGKILL: most likely the out-of-memory killer)" if done.returncode == -9 else ""
                print(f"{resolution} px {variant}: failed ({done.returncode}){why}\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(lines[-1])
            row["wall_s"] = round(time.perf_counter() - started, 1)
            flops = row["flops_per_image"]["main_step"] * row["images_per_s"]
            row["fraction_of_peak_main"] = round(
                row["flops_per_image"]["main_step"] * args.batch / row["step_s"]["main"]
                / peak[row["precision"]], 3)
            row["achieved_gflops_amortised"] = round(flops / 1e9, 1)
            rows.append(row)
            phases = ", ".join(f"{name} {value:.1f} s" for name, value in row["phases_s"].items())
            print(f"{resolution} px {variant:<12} {row['images_per_s']:.3f} img/s  {row['s_per_kimg']:.0f} s/kimg  "
                  f"peak {row['peak_rss_mb']} MB  main step {row['fraction_of_peak_main']:.0%} of "
                  f"{row['precision']} peak  [{phases}]  (traces {sum(row['trace_s'].values()):.0f} s)", flush=True)
            if (info.get("family"), model) == NVIDIA["cpu"] and resolution == NVIDIA["resolution"]:
                print(f"    NVIDIA stylegan2-ada-pytorch, same CPU model, float32: {NVIDIA['images_per_s']} img/s "
                      f"-> ours {row['images_per_s'] / NVIDIA['images_per_s']:.2f}x", flush=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "bench_stylegan2.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps({"benchmark": "bench_stylegan2", "cpu": {**info, "model_number": model},
                               "peak_gflops": {"float32": round(peak["float32"] / 1e9, 1),
                                               "bfloat16": round(peak["bfloat16"] / 1e9, 1)},
                               "nvidia_reference": NVIDIA, "rows": rows}) + "\n")


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.split(":")[0].strip() == "model":
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
