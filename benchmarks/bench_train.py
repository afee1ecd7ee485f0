"""DCGAN-64 training speed: our `DCGAN.fit` (its default mode, and XLA) against the reports' legacy
Keras pattern and the PyTorch DCGAN tutorial loop, same architecture, batch 128, in-memory data.

    python benchmarks/bench_train.py [--rounds 3] [--steps 6] [--variants ...] [--mixed-precision] [--gpu]
                                     [--isa AVX2]

The three ways users run it (`path_*` rows: the command line's start-up, a script that imports the
package first, a script that imports TensorFlow first) run from an environment without
TF_ENABLE_ONEDNN_OPTS, as a new user's shell is:

    python benchmarks/bench_train.py --variants path_command_line,path_script,path_script_tensorflow_first,pytorch_tutorial

Each measurement runs in its own process (so peak memory is its own), and the variants are
interleaved round by round because this machine's speed drifts; medians are reported, with each
variant's ratio to PyTorch and to the legacy pattern. The legacy pattern runs twice: with
TensorFlow's plain kernels (its default on CPUs it does not tune for, such as AMD EPYC) and with
oneDNN on, as keras_anime_gan sets it. Results are appended to
benchmarks/results/bench_train.jsonl. PyTorch is a benchmark-only extra (`pip install torch==2.13.0`).

bfloat16 rows: ours under `precision="bfloat16"` (Keras mixed_bfloat16) and the PyTorch loop under
`torch.autocast("cpu", dtype=torch.bfloat16)`, beside the float32 rows, with their speed-up over
float32. The CPU's model and bf16 flags (avx512_bf16, amx_bf16) are printed first: without them
bfloat16 is emulated and slower, so its speed-up only means something on a CPU that has them.

GPU rows (`--gpu`, on a machine with a GPU): ours in float32 with and without TF32, bfloat16 and
float16 (loss scaling), each with XLA and in graph mode, named gpu_<precision>_<xla|graph>; their
fraction of peak is not computed (the peak above is the CPU's).

Fraction of peak: each row's FLOP/s over the CPU's peak in its precision. A step's FLOPs are
counted analytically from the networks' layers (convolutions, transposed convolutions and dense
layers; normalisation, activations and the optimizer are left out, a few per cent): for a step
that runs G forward once, D on the real and the fake batch, then G through D (the tutorial's step
and ours), 3 G_fwd - G_first + 8 D_fwd - 2 D_first, where backward costs twice the forward except
the input gradient of a first layer, which nothing needs. Peak = cores x clock x FLOP per cycle per
core, the clock from /proc/cpuinfo (or --clock-ghz) and FLOP per cycle from the vector units the
flags show (see `flop_per_cycle`).
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
sys.path.insert(0, str(ROOT))  # the package of this checkout, not an installed one
BATCH, LATENT, RESOLUTION = 128, 100, 64


def _data(count=BATCH * 2):
    import numpy as np

    from keras_anime_gan.data import synthetic_faces

    return synthetic_faces(count, RESOLUTION, seed=0).astype(np.float32) / 127.5 - 1.0


def run_ours(steps, jit, precision):
    from keras_anime_gan import create_gan  # before TensorFlow: importing it turns oneDNN on unless set
    import tensorflow as tf

    from keras_anime_gan.precision import apply_precision

    if precision == "float32_strict":  # float32 without TF32 (TensorFlow's default on Ampere and newer GPUs)
        tf.config.experimental.enable_tensor_float_32_execution(False)
        precision = "float32"
    apply_precision(precision)
    gan = create_gan("dcgan", RESOLUTION, LATENT, seed=0)
    gan.compile(jit_compile=jit)
    data = tf.data.Dataset.from_tensor_slices(_data()).batch(BATCH, drop_remainder=True).repeat().prefetch(2)
    gan.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # trace and compile
    started = time.perf_counter()
    gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - started


def run_script_tensorflow_first(steps, jit, precision):
    """A user's script that imports TensorFlow before the package: TensorFlow's own oneDNN default."""
    import tensorflow  # noqa: F401

    return run_ours(steps, jit, precision)


def run_command_line(steps, jit, precision):
    """What `train` does before it trains: the command line's start-up, then the same `fit`."""
    import keras_anime_gan

    keras_anime_gan.quiet_tensorflow_startup()
    return run_ours(steps, jit, precision)


def run_legacy(steps, jit, precision):
    """The reports' recipe: discriminator.train_on_batch on real and fake, then a combined model
    with the discriminator frozen. Keras 3 fixes `trainable` at compile time, so it must be
    toggled around every call or the discriminator silently never trains."""
    import keras
    import numpy as np

    from keras_anime_gan.gans.classic.networks import build_discriminator, build_generator

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


def run_torch(steps, jit, precision):
    """The PyTorch DCGAN tutorial's networks and loop (CPU, eager); in bfloat16 its forward passes
    and losses run under `torch.autocast("cpu", dtype=torch.bfloat16)`, as PyTorch's AMP recipe does."""
    import contextlib

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

    def autocast():
        if precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loss(output, target):  # BCE in float32, as autocast would run it
        return criterion(output.float().view(-1), target)

    def step():
        netD.zero_grad()
        with autocast():
            errD_real = loss(netD(real), ones)
        errD_real.backward()
        with autocast():
            fake = netG(torch.randn(BATCH, LATENT, 1, 1))
            errD_fake = loss(netD(fake.detach()), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        with autocast():
            errG = loss(netD(fake), ones)
        errG.backward()
        optG.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


# name: (function, jit_compile, TF_ENABLE_ONEDNN_OPTS (None: left as the environment has it; UNSET:
# removed, as a new user's shell has it), precision)
UNSET = "unset"
VARIANTS = {
    "ours": (run_ours, None, "1", "float32"),  # what `fit` picks: graph mode with oneDNN on a CPU, XLA on a GPU
    # The three ways users run it, from a shell that never heard of TF_ENABLE_ONEDNN_OPTS:
    "path_command_line": (run_command_line, None, UNSET, "float32"),
    "path_script": (run_ours, None, UNSET, "float32"),  # `import keras_anime_gan` first, then `fit`
    "path_script_tensorflow_first": (run_script_tensorflow_first, None, UNSET, "float32"),
    "ours_bf16": (run_ours, None, "1", "bfloat16"),
    "ours_xla": (run_ours, True, "1", "float32"),
    # TensorFlow's plain kernels: its own default on CPUs it does not tune for (AMD EPYC here).
    "legacy_keras": (run_legacy, False, "0", "float32"),
    "legacy_keras_onednn": (run_legacy, False, "1", "float32"),
    "pytorch_tutorial": (run_torch, False, None, "float32"),
    "pytorch_tutorial_bf16": (run_torch, False, None, "bfloat16"),
}
CPU_VARIANTS = tuple(VARIANTS)
# `--gpu`: ours on a GPU in each precision, XLA on and off. "tf32" is float32 as TensorFlow runs it by
# default on compute capability 8.0 and newer (TF32 matrix units); "float32" turns TF32 off.
GPU_PRECISIONS = {"tf32": "float32", "float32": "float32_strict", "bf16": "bfloat16", "fp16": "float16"}
VARIANTS.update({f"gpu_{short}_{mode}": (run_ours, mode == "xla", "1", precision)
                 for short, precision in GPU_PRECISIONS.items() for mode in ("xla", "graph")})
TORCH_VARIANTS = ("pytorch_tutorial", "pytorch_tutorial_bf16")
BF16_PAIRS = {"ours_bf16": "ours", "pytorch_tutorial_bf16": "pytorch_tutorial"}


def variant_precision(name, mixed_precision=False):
    """A variant's precision; --mixed-precision runs our float32 variants in float16 (GPU)."""
    precision = VARIANTS[name][3]
    if mixed_precision and name in ("ours", "ours_xla"):
        return "float16"
    return precision


def child(name, steps, mixed_precision):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    function, jit, _, _ = VARIANTS[name]
    seconds = function(steps, jit, variant_precision(name, mixed_precision))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": name, "images_per_s": steps * BATCH / seconds, "peak_rss_mb": round(peak_mb)}))


# ----------------------------------------------------------------------------- FLOPs and peak


def layer_macs(layer):
    """Multiply-accumulates of one forward pass of a layer, per image (0 for layers without weights)."""
    import keras

    if isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel scatters a k x k x Cout patch
        _, height, width, channels = layer.input.shape
        kh, kw = layer.kernel_size
        return height * width * channels * kh * kw * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, filters = layer.output.shape
        kh, kw = layer.kernel_size
        return height * width * filters * kh * kw * layer.input.shape[-1]
    if isinstance(layer, keras.layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def step_flops(batch=BATCH):
    """FLOPs of one DCGAN-64 training step (one D and one G update on a shared fake batch)."""
    from keras_anime_gan.gans.classic.networks import build_discriminator, build_generator

    counts = {}
    for name, model in (("G", build_generator(RESOLUTION, LATENT)), ("D", build_discriminator(RESOLUTION))):
        macs = [layer_macs(layer) for layer in model.layers if layer_macs(layer)]
        counts[name] = (2 * sum(macs), 2 * macs[0])  # forward FLOPs, first layer's forward FLOPs
    (g, g_first), (d, d_first) = counts["G"], counts["D"]
    per_image = 3 * g - g_first + 8 * d - 2 * d_first
    return {"g_forward_per_image": g, "d_forward_per_image": d, "step_per_image": per_image,
            "step": per_image * batch}


def cpu_info():
    from keras_anime_gan.precision import cpu_bf16_flags, cpu_flags, describe_cpu

    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = cpu_flags()
    return {**describe_cpu(), "vendor": fields.get("vendor_id"), "family": fields.get("cpu family"),
            "mhz": float(fields["cpu MHz"]) if fields.get("cpu MHz") else None,
            "vector": [flag for flag in ("avx512f", "avx2", "fma", "avx512_bf16", "amx_bf16") if flag in flags],
            "bf16_flags": cpu_bf16_flags(flags)}


def flop_per_cycle(info):
    """(float32, bfloat16) FLOP per cycle per core of the detected vector units, with how.

    Assumes two FMA pipes per core, the width the flags show: 2 x 8 lanes x 2 = 32 float32 FLOP
    with AVX2+FMA, 2 x 16 x 2 = 64 with AVX-512, except AMD Zen 4 (family 25 with avx512f), which
    runs 512-bit operations on its two 256-bit pipes: 32. avx512_bf16's dot product (VDPBF16PS)
    does two bf16 multiply-adds per float32 lane: twice float32. amx_bf16: 1024 bf16 FLOP per cycle
    (one 16x32 by 32x16 tile product per 16 cycles). Without native bf16 a bf16 convolution is
    converted to float32 and computed there: at best float32's peak."""
    vector = set(info["vector"])
    if "avx512f" in vector:
        float32 = 32 if info.get("vendor") == "AuthenticAMD" and info.get("family") == "25" else 64
        how = "AVX-512" + (" on 2 x 256-bit pipes (Zen 4)" if float32 == 32 else ", 2 FMA pipes")
    elif {"avx2", "fma"} <= vector:
        float32, how = 32, "AVX2 + FMA, 2 x 256-bit FMA pipes"
    else:
        float32, how = 16, "no FMA: 2 x 256-bit add/multiply pipes at most"
    if "amx_bf16" in vector:
        bfloat16, bf_how = 1024, "AMX-BF16 tiles"
    elif "avx512_bf16" in vector:
        bfloat16, bf_how = 2 * float32, "avx512_bf16 dot products, twice float32"
    else:
        bfloat16, bf_how = float32, "no native bf16: emulated through float32, float32's peak at best"
    return float32, bfloat16, f"{how}; bfloat16: {bf_how}"


def peak_flops(info, clock_ghz=None):
    cores = info["cores"] or 1
    clock = clock_ghz or (info["mhz"] or 0) / 1000
    float32, bfloat16, how = flop_per_cycle(info)
    return {"cores": cores, "clock_ghz": round(clock, 3), "flop_per_cycle": {"float32": float32, "bfloat16": bfloat16},
            "float32": cores * clock * 1e9 * float32, "bfloat16": cores * clock * 1e9 * bfloat16,
            "how": f"{cores} cores x {clock:.3f} GHz x FLOP/cycle ({how})"}


def child_environment(name, isa=None):
    onednn = VARIANTS[name][2]
    environment = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa) if isa else dict(os.environ)
    if onednn == UNSET:
        environment.pop("TF_ENABLE_ONEDNN_OPTS", None)
    elif onednn is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = onednn
    return environment


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", default=",".join(CPU_VARIANTS))
    parser.add_argument("--gpu", action="store_true", help="the GPU rows instead: float32, TF32, bfloat16 and "
                                                            "float16, XLA on and off (gpu_* variants)")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 for our float32 variants (GPU)")
    parser.add_argument("--bf16-steps", type=int, help="timed steps of the bfloat16 rows (default --steps); fewer "
                        "on a CPU without native bf16, where PyTorch's emulated bf16 takes minutes a step")
    parser.add_argument("--clock-ghz", type=float, help="clock for the peak (default: cpu MHz of /proc/cpuinfo)")
    parser.add_argument("--isa", help="cap oneDNN's instruction set in every child (ONEDNN_MAX_CPU_ISA, e.g. AVX2: "
                        "what an AVX2-only CPU runs, measured on an AVX-512 one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.mixed_precision)
    names = [name for name in VARIANTS if name.startswith("gpu_")] if args.gpu else args.variants.split(",")
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    info = cpu_info()
    print(f"CPU {info['model']} ({info['vendor']} family {info['family']}), {info['cores']} cores at "
          f"{info['mhz']} MHz; vector flags {', '.join(info['vector'])}; bf16 flags: "
          f"{', '.join(info['bf16_flags']) or 'none (bfloat16 is emulated here: slower than float32)'}", flush=True)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("pytorch_tutorial rows skipped: torch is not installed (pip install torch==2.13.0)")
        names = [name for name in names if name not in TORCH_VARIANTS]
    samples = {name: [] for name in names}
    memory = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[: round_index % len(names)]  # rotate the order
        for name in order:
            steps = args.bf16_steps if args.bf16_steps and VARIANTS[name][3] == "bfloat16" else args.steps
            command = [sys.executable, __file__, "--child", name, "--steps", str(steps)]
            if args.mixed_precision:
                command.append("--mixed-precision")
            result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=child_environment(name, args.isa))
            if result.returncode:
                raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
            record = json.loads(result.stdout.strip().splitlines()[-1])
            samples[name].append(record["images_per_s"])
            memory[name].append(record["peak_rss_mb"])
            print(f"round {round_index + 1} {name}: {record['images_per_s']:.1f} img/s, peak {record['peak_rss_mb']} MB", flush=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    flops = step_flops()
    peak = peak_flops(info, args.clock_ghz)
    precisions = {name: variant_precision(name, args.mixed_precision) for name in names}
    summary = {"benchmark": "bench_train", "isa_cap": args.isa, "batch": BATCH, "resolution": RESOLUTION, "rounds": args.rounds,
               "steps": args.steps, "bf16_steps": args.bf16_steps or args.steps,
               "mixed_precision": args.mixed_precision, "cpu": info,
               "precision": precisions,
               "images_per_s": {name: round(value, 1) for name, value in medians.items()},
               "peak_rss_mb": {name: max(values) for name, values in memory.items()},
               "step_gflop": round(flops["step"] / 1e9, 2), "peak_gflops": {
                   key: round(peak[key] / 1e9, 1) for key in ("float32", "bfloat16")}, "peak_how": peak["how"]}
    for reference in ("pytorch_tutorial", "legacy_keras"):
        if reference in medians:
            summary[f"ratio_to_{reference}"] = {name: round(value / medians[reference], 2) for name, value in medians.items()}
    if "pytorch_tutorial_bf16" in medians:
        summary["ratio_to_pytorch_tutorial_bf16"] = {
            name: round(value / medians["pytorch_tutorial_bf16"], 2) for name, value in medians.items()}
    summary["bf16_speedup"] = {name: round(medians[name] / medians[base], 2)
                               for name, base in BF16_PAIRS.items() if name in medians and base in medians}
    summary["achieved_gflops"], summary["fraction_of_peak"] = {}, {}
    for name, value in medians.items():
        achieved = value / BATCH * flops["step"]
        summary["achieved_gflops"][name] = round(achieved / 1e9, 1)
        if peak["float32"] > 0 and precisions[name] in ("float32", "bfloat16") and not name.startswith("gpu_"):
            summary["fraction_of_peak"][name] = round(achieved / peak[precisions[name]], 3)
    print(f"step: {flops['step'] / 1e9:.1f} GFLOP ({flops['step_per_image'] / 1e9:.2f} per image; G forward "
          f"{flops['g_forward_per_image'] / 1e6:.0f} MFLOP, D forward {flops['d_forward_per_image'] / 1e6:.0f} MFLOP)")
    print(f"peak: float32 {peak['float32'] / 1e9:.1f} GFLOP/s, bfloat16 {peak['bfloat16'] / 1e9:.1f} GFLOP/s = {peak['how']}")
    for name in names:
        line = (f"{name:24s} {precisions[name]:9s} {medians[name]:7.1f} img/s  peak {max(memory[name]):5d} MB  "
                f"{summary['achieved_gflops'][name]:6.1f} GFLOP/s")
        if name in summary["fraction_of_peak"]:
            line += f"  {100 * summary['fraction_of_peak'][name]:5.1f}% of {precisions[name]} peak"
        if name in summary["bf16_speedup"]:
            line += f"  {summary['bf16_speedup'][name]:.2f}x its float32 row"
        print(line)
    print(json.dumps(summary))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_train.jsonl", "a", encoding="utf-8") as file:
        file.write(json.dumps({**summary, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
