"""Time and memory of importing an NVIDIA StyleGAN2-ADA network pickle, stage by stage.

    PYTHONPATH=. python benchmarks/bench_nvidia_import.py [--pkl SNAPSHOT.pkl] [--repeats 5]

Stages:
- 'read': `keras_anime_gan.nvidia.safe_pickle.read_snapshot` (the safe reader: no NVIDIA code runs);
- 'build': `keras_anime_gan.nvidia.snapshots.gan_from_nvidia` on the read snapshot (our networks built
  and G, D and G_ema assigned), what `load_nvidia_pickle` adds to 'read';
- 'import': `keras_anime_gan.nvidia_runs.import_snapshot`, the whole `keras-anime-gan import-nvidia`
  (read, build, a checkpoint with fresh optimizers and generator.keras written to a temporary folder);
- 'generate': 16 images from the imported G_ema against 16 from a StyleGAN2-ADA of the same options
  built by `create_gan` (the same code path: the ratio should be 1).
Each stage runs --repeats times; the script prints the median seconds, the file size in MB, MB/s, the
parameter count of each network, and the process's peak RSS (and how far it rose above the RSS before the
first stage). The default file is a 64 px snapshot made with NVIDIA's train.py 'auto' config (~270 MB);
when it is absent the script says so and exits with status 0.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PKL = str(ROOT.parent / "nvref" / "full64-auto.pkl")  # beside the checkout, made with NVIDIA's train.py


def rss_mb():
    """Resident memory now, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_stage(run, repeats):
    """Median seconds of `run()` over `repeats` calls, and the last result (the previous one is freed first)."""
    seconds, result = [], None
    for _ in range(repeats):
        result = None  # so two snapshots never coexist and the peak stays one read's
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds, result


def stage_read(path):
    """Stage 'read': the safe reader, file -> Snapshot of NumPy arrays."""
    from keras_anime_gan.nvidia.safe_pickle import read_snapshot

    return read_snapshot(path)


def stage_build(snapshot):
    """Stage 'build': the snapshot's records -> a stylegan2-ada GAN holding G, D and G_ema."""
    from keras_anime_gan.nvidia.snapshots import gan_from_nvidia

    return gan_from_nvidia(snapshot.networks)[2]


def stage_import(path):
    """Stage 'import': the whole import-nvidia command into a fresh temporary run folder."""
    import tempfile

    from keras_anime_gan.nvidia_runs import import_snapshot

    with tempfile.TemporaryDirectory() as folder:
        return import_snapshot(path, os.path.join(folder, "run"))


def stage_generate(imported, repeats):
    """Seconds per 16 images, imported G_ema against our own generator of the same options, interleaved."""
    import numpy as np

    from keras_anime_gan.gans import create_gan
    from keras_anime_gan.gans.stylegan2.model import StyleGAN2ADA

    ours = create_gan("stylegan2-ada", imported.resolution,
                      **StyleGAN2ADA.resolve_options(imported.resolution, imported_options(imported)).values())
    z = np.random.default_rng(0).standard_normal((16, imported.latent_dim)).astype("float32")
    times = {"imported": [], "ours": []}
    for _ in range(repeats + 1):  # the first round traces
        for name, gan in (("imported", imported), ("ours", ours)):
            started = time.perf_counter()
            np.asarray(gan.ema_generator(z))
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def imported_options(gan):
    from keras_anime_gan.gans.registry import model_options

    generator, discriminator = gan.generator, gan.discriminator
    return model_options("stylegan2-ada", dict(
        z_dim=generator.z_dim, w_dim=generator.w_dim, mapping_layers=generator.mapping_layers,
        channel_base=generator.channel_base, channel_max=generator.channel_max,
        mbstd_group=discriminator.mbstd_group_size, conv_clamp=generator.conv_clamp or 0.0,
        reduced_precision_res=generator.num_reduced_precision_res))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pkl", default=DEFAULT_PKL, help="an NVIDIA network-snapshot-*.pkl")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not os.path.isfile(args.pkl):
        print(f"skipped: {args.pkl} not found (make it with NVIDIA's code, or give --pkl)")
        return 0

    import keras_anime_gan.nvidia.safe_pickle  # noqa: F401  imported before the baseline RSS is taken

    size_mb = os.path.getsize(args.pkl) / 1e6
    rss_before = rss_mb()
    median, runs, snapshot = time_stage(lambda: stage_read(args.pkl), args.repeats)
    peak = peak_rss_mb()
    counts = {name: record.num_parameters() for name, record in snapshot.networks.items()}
    arrays_mb = sum(a.nbytes for record in snapshot.networks.values() for a in record.state_dict().values()) / 1e6

    print(f"file        {args.pkl}  {size_mb:.1f} MB")
    print(f"read        median {median:.3f} s over {len(runs)} runs ({', '.join(f'{s:.3f}' for s in runs)}), "
          f"{size_mb / median:.0f} MB/s")
    print("parameters  " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    print(f"arrays      {arrays_mb:.1f} MB in the state_dicts")
    rise = f" (+{peak - rss_before:.0f} MB above the {rss_before:.0f} MB before reading)" if rss_before else ""
    print(f"peak RSS    {peak:.0f} MB{rise} after reading")
    build, build_runs, gan = time_stage(lambda: stage_build(snapshot), max(1, args.repeats // 2))
    print(f"build       median {build:.2f} s over {len(build_runs)} runs (networks built, G, D and G_ema assigned)")
    whole, whole_runs, _ = time_stage(lambda: stage_import(args.pkl), max(1, args.repeats // 2))
    print(f"import      median {whole:.2f} s over {len(whole_runs)} runs (the whole import-nvidia: read, build, "
          "checkpoint, generator.keras)")
    generate = stage_generate(gan, args.repeats)
    print(f"generate    16 images: imported {generate['imported']:.3f} s, ours {generate['ours']:.3f} s "
          f"(ratio {generate['imported'] / generate['ours']:.2f})")
    print(f"peak RSS    {peak_rss_mb():.0f} MB at the end")
    print(json.dumps(dict(pkl=args.pkl, size_mb=round(size_mb, 1), read_median_s=round(median, 4),
                          read_runs_s=[round(s, 4) for s in runs], read_mb_per_s=round(size_mb / median, 1),
                          build_median_s=round(build, 3), import_median_s=round(whole, 3),
                          generate_16_s={name: round(value, 4) for name, value in generate.items()},
                          parameters=counts, peak_rss_mb=round(peak_rss_mb()),
                          rss_before_mb=round(rss_before) if rss_before else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
