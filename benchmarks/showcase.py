"""What the package makes, measured: from a folder of faces to every picture and number of docs/.

    nice -n 15 python benchmarks/showcase.py --data ../shared/data/anime-faces-96 --budget-minutes 45 --out docs

One run of this script
1. splits the faces into training faces and held-out faces (byte-identical duplicates dropped first,
   so no held-out face is also a training face) through folders of symlinks in a temporary work
   folder, and converts both with `convert_folder`;
2. trains a DCGAN (`TrainConfig.from_json` + `train`) for about a third of the budget, taking sample
   grids at a few points and SWD / colour distance against the held-out faces as it goes;
3. draws the latent-space figures of the GAN Versus report from the trained generator
   (`explore.z_grid`, `interpolate`, `neighbours` against the training faces);
4. trains every model of the family for the same share of the rest (`versus.py`'s helpers) and
   evaluates each against the held-out faces, beside the real-vs-real noise floor at the same n;
5. writes `results.json` (every measured number: machine, CPU model and flags, minutes, images seen,
   updates, metrics) and `results.md` rendered from it, beside the pictures in --out.

The budget covers the whole script (conversion, model building, evaluation and figures included).
A progress line is printed every 20 s. `--markdown-only` re-renders results.md from results.json;
`--readme README.md` also replaces the text between `<!-- showcase:start -->` and
`<!-- showcase:end -->` in that file with the generated summary (numbers are never typed by hand).
`--data synthetic` uses the embedded synthetic faces (no download), e.g. for a smoke test.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one
import keras_anime_gan  # noqa: E402,F401,I001  (first: it sets TensorFlow's oneDNN and logging options)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import versus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("ANIME_FACES_DIR", str(ROOT.parent / "shared" / "data" / "anime-faces-96"))
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
FIGURE_SUFFIXES = (".png", ".gif", ".webp", ".jpg")
README_START, README_END = "<!-- showcase:start -->", "<!-- showcase:end -->"


# ----------------------------------------------------------------------------- machine


def machine_info() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "os_cpu_count": os.cpu_count()}
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cores"] = os.cpu_count()
    try:
        text = Path("/proc/cpuinfo").read_text()
        first = text.split("\n\n")[0]
        fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        flags = fields.get("flags", "").split()
        info.update(cpu_model=fields.get("model name", "unknown"), cpu_mhz=fields.get("cpu MHz"),
                    processors=text.count("processor\t:"), simd_flags=[f for f in SIMD_FLAGS if f in flags],
                    cpu_flags=flags)
    except OSError:
        info.update(cpu_model=platform.processor() or "unknown", simd_flags=[], cpu_flags=[])
    try:
        meminfo = Path("/proc/meminfo").read_text()
        info["memory_gb"] = round(int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    info["niceness"] = os.nice(0)
    return info


def software_info() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"keras_anime_gan": keras_anime_gan.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "git_commit": commit}


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ----------------------------------------------------------------------------- data


def _natural(name: str):
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def write_synthetic(folder: Path, count: int, seed: int = 0) -> Path:
    from PIL import Image

    from keras_anime_gan.data import synthetic_faces

    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(synthetic_faces(count, 64, seed=seed)):
        Image.fromarray(image).save(folder / f"{index}.png")
    return folder


def split_faces(source: Path, work: Path, heldout: int, limit: int | None) -> dict:
    """Symlink folders work/train-src and work/heldout-src: the last `heldout` distinct files (in
    natural name order) are held out, the rest train. Byte-identical files are kept once, so a
    held-out face never appears among the training faces."""
    from keras_anime_gan.data import SUPPORTED_EXTENSIONS

    names = sorted((n for n in os.listdir(source) if n.lower().endswith(SUPPORTED_EXTENSIONS)), key=_natural)
    if limit:
        names = names[:limit]
    seen, unique, duplicates = set(), [], []
    for name in names:
        digest = hashlib.sha1((source / name).read_bytes()).hexdigest()
        (duplicates if digest in seen else unique).append(name)
        seen.add(digest)
    if heldout >= len(unique) // 2:
        heldout = len(unique) // 3
    train_names, heldout_names = unique[:-heldout], unique[-heldout:]
    for folder, chosen in (("train-src", train_names), ("heldout-src", heldout_names)):
        target = work / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            os.symlink((source / name).resolve(), target / name)
    return {"files": len(names), "duplicates_dropped": len(duplicates), "train_files": len(train_names),
            "heldout_files": len(heldout_names), "train_range": [train_names[0], train_names[-1]],
            "heldout_range": [heldout_names[0], heldout_names[-1]]}


def convert(src: Path, dest: Path, resolution: int, seed: int) -> dict:
    from keras_anime_gan.data import convert_folder

    manifest = convert_folder(str(src), str(dest), resolution, dedupe=True, seed=seed, progress=sys.stderr.isatty())
    return {"images": manifest["num_images"], "skipped": len(manifest["skipped"])}


# ----------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path, dpi=100):
    figure.savefig(path, dpi=dpi)
    _plt().close(figure)
    _optimize_png(path)


def _optimize_png(path):
    from PIL import Image

    if str(path).endswith(".png"):
        with Image.open(path) as image:
            image = image.convert("RGB")
        image.save(path, optimize=True)


def panel_figure(panels, path, columns=None, scale=2.2, figsize=None):
    """panels: (title, uint8 grid image); rows of images with titles, pixels kept sharp."""
    plt = _plt()
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    figsize = figsize or (scale * columns, scale * rows + 0.55 * rows)
    figure, axes = plt.subplots(rows, columns, figsize=figsize, squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (title, image) in zip(axes.ravel(), panels):
        axis.imshow(image, interpolation="nearest")
        axis.set_title(title, fontsize=8.5)
    figure.tight_layout()
    _save(figure, path)


def curves_figure(losses, curve, floor, path):
    plt = _plt()
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    x = [row["images"] / 1000 for row in losses]
    for key, colour in (("d_loss", "tab:red"), ("g_loss", "tab:blue")):
        if any(key in row for row in losses):
            axes[0].plot([x[i] for i, row in enumerate(losses) if key in row], [row[key] for row in losses if key in row],
                         color=colour, label=key, linewidth=1)
    axes[0].set_title("losses (mean per epoch of 50-100 steps)")
    axes[0].legend(fontsize="small")
    for axis, name, label in ((axes[1], "swd", "SWD x1e3 vs held-out faces"), (axes[2], "color", "colour distance vs held-out")):
        points = [(point["images"] / 1000, point[name]) for point in curve if name in point]
        axis.plot(*zip(*points), marker="o", markersize=3, color="tab:purple", label="DCGAN samples")
        if f"{name}_floor" in floor:
            axis.axhline(floor[f"{name}_floor"], color="grey", linestyle="--", label="real vs real (noise floor)")
        axis.set_title(f"{label} (n={curve[0]['num_images']})")
        axis.set_yscale("log")
        axis.legend(fontsize="small")
    for axis in axes:
        axis.set_xlabel("real images seen (thousands)")
    figure.tight_layout()
    _save(figure, path, dpi=90)


def figure_sizes(out: Path) -> dict:
    return {path.name: path.stat().st_size for path in sorted(out.iterdir()) if path.suffix in FIGURE_SUFFIXES}


# ----------------------------------------------------------------------------- markdown


def _fmt(value, digits=1):
    return "n/a" if value is None else f"{value:,.{digits}f}"


def readme_block(results) -> list[str]:
    """The summary pasted into the README: numbers only (no image paths, which differ there)."""
    main, setup = results["main"], results["setup"]
    final, floor = main["final_metrics"], results["floor"]
    machine = results["machine"]
    lines = [
        f"Measured by `benchmarks/showcase.py` on {machine['cpu_model']} ({machine['usable_cores']} cores, "
        f"{', '.join(machine['simd_flags']) or 'no SIMD flags listed'}; run at nice {machine['niceness']} on a shared "
        f"machine) in {results['wall_minutes']:.1f} min of wall time for the whole script, at {setup['resolution']} px "
        f"(width {setup['width']}, batch {setup['batch_size']}, EMA {setup['ema']}) on "
        f"{results['data']['train_images']:,} training faces; metrics against {results['num_images']:,} held-out "
        f"faces that no run trained on.",
        "",
        f"DCGAN alone: {main['train_seconds'] / 60:.1f} min of training, {main['images']:,} real images seen, "
        f"{main['g_updates']:,} generator updates, {_fmt(main['images_per_second'], 0)} images/s: SWD "
        f"{_fmt(final['swd'])} (real-vs-real floor {_fmt(floor['swd_floor'])}), colour distance "
        f"{_fmt(final['color'], 2)} (floor {_fmt(floor['color_floor'], 2)}).",
        "",
        f"GAN Versus, {results['versus_budget_seconds'] / 60:.1f} min of training per model:",
        "",
        *versus.versus_table(results["versus"], floor, results["num_images"], results.get("kid_fid_missing"), grids=False),
    ]
    return lines


def render_markdown(results) -> str:
    machine, software, data, setup, main = (results[key] for key in ("machine", "software", "data", "setup", "main"))
    floor, n = results["floor"], results["num_images"]
    res = setup["resolution"]
    lines = [
        "# Results: what keras-anime-gan makes on a 2-core CPU",
        "",
        "Everything on this page (pictures and numbers) was written by one command, "
        f"on {results['date']}:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"It took {results['wall_minutes']:.1f} min of wall time ({results['cpu_minutes']:.1f} min of CPU time) for the "
        f"whole script (conversion, {1 + len(results['versus'])} trainings, evaluation, figures). Every measured number "
        "is in [results.json](results.json); this page is rendered from it.",
        "",
        "![DCGAN samples beside held-out real faces](hero.png)",
        "",
        "## Setup",
        "",
        "| | |",
        "| --- | --- |",
        f"| machine | {machine['cpu_model']}, {machine['usable_cores']} usable cores ({machine.get('processors')} "
        f"listed), {machine.get('memory_gb')} GB; SIMD flags {', '.join(machine['simd_flags']) or 'none listed'} "
        f"(all {len(machine['cpu_flags'])} flags from /proc/cpuinfo in results.json) |",
        f"| load | run at nice {machine['niceness']} on a machine shared with other work: load average "
        f"{results['load_average_start'][0]:.2f} at the start, {results['load_average_end'][0]:.2f} at the end; "
        "images/s are what this script got, not the machine's best |",
        f"| software | keras-anime-gan {software['keras_anime_gan']} (commit {software['git_commit']}), TensorFlow "
        f"{software['tensorflow']}, Keras {software['keras']}, Python {machine['python']}, float32 |",
        f"| data | {data['source']}: {data['files']:,} files, {data['duplicates_dropped']} byte-identical duplicates "
        f"dropped; training faces {data['train_range'][0]} .. {data['train_range'][1]} ({data['train_images']:,} "
        f"after conversion), held out {data['heldout_range'][0]} .. {data['heldout_range'][1]} "
        f"({data['heldout_images']:,}); converted to {res} px in {data['convert_seconds']:.1f} s |",
        f"| evaluation | {n:,} held-out faces against {n:,} samples (seed 0); the noise floor is the same metric "
        f"between those {n:,} and {n:,} other held-out faces |",
        f"| networks | `arch=dcgan` at {res} px, width {setup['width']}, batch {setup['batch_size']}, generator EMA "
        f"{setup['ema']} for every model, each model's paper optimizer |",
        "",
        f"**Why {res} px.** {setup['resolution_note']}",
        "",
        "## DCGAN: how training went",
        "",
        f"{main['train_seconds'] / 60:.1f} min of training ({main['wall_seconds'] / 60:.1f} min with model building, "
        f"graph tracing, evaluations and saving), {main['images']:,} real images seen "
        f"({main['images'] / max(1, data['train_images']):.1f} passes over the training faces), "
        f"{main['g_updates']:,} generator and {main['d_updates']:,} discriminator updates, "
        f"{_fmt(main['images_per_second'], 0)} images/s.",
        "",
        "![samples during training](progress.png)",
        "",
        "| grid | training minutes | images seen | G updates |",
        "| --- | --- | --- | --- |",
        *[f"| {index + 1} | {snap['minutes']:.2f} | {snap['images']:,} | {snap['g_updates']:,} |"
          for index, snap in enumerate(main["snapshots"])],
        "",
        f"Final samples: SWD {_fmt(main['final_metrics']['swd'])} (noise floor {_fmt(floor['swd_floor'])}), colour "
        f"distance {_fmt(main['final_metrics']['color'], 2)} (floor {_fmt(floor['color_floor'], 2)}), n={n:,}. "
        f"The curves use n={main['curve'][0]['num_images']} (floor SWD {_fmt(main['curve_floor']['swd_floor'])}, "
        f"colour {_fmt(main['curve_floor']['color_floor'], 2)}), so their values sit higher than the final n={n:,} ones.",
        "",
        "![losses, SWD and colour distance during training](curves.png)",
        "",
        "## The latent space (GAN Versus figures 2-3)",
        "",
        "One fixed z; each row multiplies one coordinate by K from -3 to 3 (`explore.z_grid`):",
        "",
        "![z manipulation](z-grid.png)",
        "",
        "Spherical interpolation between the latents of seeds 0, 1, 2 and 3 (`explore.interpolate`; "
        "[as a GIF](interpolation.gif)):",
        "",
        "![interpolation](interpolation.png)",
        "",
        f"Memorisation check: each sample beside its 5 nearest training faces by pixel distance, searched among all "
        f"{data['train_images']:,} (`explore.neighbours`). Close copies would show as near-identical neighbours:",
        "",
        "![nearest real neighbours](neighbours.png)",
        "",
        "## GAN Versus: every model under the same budget",
        "",
        f"Each model trained for {results['versus_budget_seconds'] / 60:.1f} min (training clock; the wall column adds "
        "model building, graph tracing and saving), then drew the same 36-face grid and the evaluation samples from "
        "seed 0. Images seen counts real images drawn from the data (steps x real batches per step x batch: WGANs "
        "draw n_critic=5 batches per generator update, the dynamic schedule up to 10). A model that draws more "
        "batches per step makes fewer generator updates in the same time, so these rows compare models at equal "
        "CPU time, not equal updates.",
        "",
        *versus.versus_table(results["versus"], floor, n, results.get("kid_fid_missing"), grids=True),
        "",
        "SWD (x1e3, averaged over the Laplacian pyramid levels) compares 7x7 patch statistics and is blind to colour; "
        "the colour distance (grey levels) covers that. Lower is better; the first row is what a perfect generator "
        "would score with this many images.",
        "",
        "## Figures",
        "",
        f"{len(results['figures'])} files, {sum(results['figures'].values()) / 1e6:.2f} MB in all: "
        + ", ".join(f"`{name}` {size / 1e3:.0f} kB" for name, size in results["figures"].items()) + ".",
        "",
        "## For the README",
        "",
        "The README's Results section is this block, pasted by `--readme README.md`:",
        "",
        README_START,
        *readme_block(results),
        README_END,
        "",
    ]
    return "\n".join(lines)


def update_readme(path: Path, results) -> bool:
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        print(f"note: {path} has no {README_START} ... {README_END} markers; not changed", flush=True)
        return False
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    path.write_text(before + README_START + "\n" + "\n".join(readme_block(results)) + "\n" + README_END + after,
                    encoding="utf-8")
    print(f"updated the results block of {path}", flush=True)
    return True


# ----------------------------------------------------------------------------- the run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder of face images, or 'synthetic' "
                                                             f"(default: {DEFAULT_DATA})")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the pictures, results.json and results.md go")
    parser.add_argument("--budget-minutes", type=float, default=45.0, help="wall time of the whole script")
    parser.add_argument("--main-share", type=float, default=0.33, help="share of the training time for the DCGAN run")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=None, help="network width (default 32 at <=32 px, else 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ema", type=float, default=0.999, help="generator EMA decay (0: none)")
    parser.add_argument("--heldout", type=int, default=2000, help="faces held out for evaluation (half of them "
                                                                  "for the metrics, half for the noise floor)")
    parser.add_argument("--eval-images", type=int, default=1000, help="at most this many per evaluation set")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files (smoke tests)")
    parser.add_argument("--models", default=None, help="GAN Versus models, comma-separated slugs (default: all)")
    parser.add_argument("--inception-weights", default=None, help="InceptionV3 no-top weights for KID/FID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="work folder for symlinks, conversions and runs "
                                                     "(default: a new temporary folder, removed at the end)")
    parser.add_argument("--readme", default=None, help="also paste the summary between the markers of this README")
    parser.add_argument("--markdown-only", action="store_true", help="only re-render results.md from results.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.markdown_only:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
        (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
        if args.readme:
            update_readme(Path(args.readme), results)
        return 0

    started, cpu_started = time.time(), cpu_seconds()
    deadline = started + args.budget_minutes * 60
    load_start = os.getloadavg()
    overall = lambda: f"{(time.time() - started) / 60:.1f}/{args.budget_minutes:g} min"  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="showcase-"))
    work.mkdir(parents=True, exist_ok=True)
    entries = versus.select_entries(args.models)
    res = args.resolution
    width = args.width or (32 if res <= 32 else 64)
    ema = args.ema or None
    stages = {}
    try:
        # ---------------------------------------------------------------- 1. data
        print(f"== 1/5 data: splitting and converting {args.data} at {res} px (work folder {work})", flush=True)
        began = time.time()
        if args.data == "synthetic":
            source = write_synthetic(work / "synthetic-src", args.limit or 2400, seed=args.seed)
        else:
            source = Path(args.data)
            if not source.is_dir():
                print(f"error: --data {source} is not a folder", file=sys.stderr)
                return 2
        data = {"source": "embedded synthetic faces" if args.data == "synthetic" else source.name,
                **split_faces(source, work, args.heldout, args.limit)}
        convert_began = time.time()
        train_dir, heldout_dir = work / "train", work / "heldout"
        train_manifest = convert(work / "train-src", train_dir, res, args.seed)
        heldout_manifest = convert(work / "heldout-src", heldout_dir, res, args.seed)
        data.update(train_images=train_manifest["images"], heldout_images=heldout_manifest["images"],
                    convert_seconds=round(time.time() - convert_began, 1),
                    skipped=train_manifest["skipped"] + heldout_manifest["skipped"])
        print(f"   {data['train_images']:,} training faces ({data['train_range'][0]} .. {data['train_range'][1]}), "
              f"{data['heldout_images']:,} held out ({data['heldout_range'][0]} .. {data['heldout_range'][1]}), "
              f"{data['duplicates_dropped']} duplicates dropped, converted in {data['convert_seconds']} s", flush=True)

        import numpy as np
        from PIL import Image

        from keras_anime_gan import explore
        from keras_anime_gan.data import load_real_images
        from keras_anime_gan.export import load_generator
        from keras_anime_gan.metrics import compute_metrics, noise_floor
        from keras_anime_gan.sampling import image_grid, latents_for_seed, render

        n = min(args.eval_images, data["heldout_images"] // 2)
        heldout = load_real_images(str(heldout_dir), 2 * n, res, seed=1)
        real_a, real_b = heldout[:n], heldout[n : 2 * n]
        train_real = load_real_images(str(train_dir), data["train_images"], res, seed=2)
        extractor, missing = versus.load_extractor(args.inception_weights)
        names = versus.metric_names(extractor)
        floor = {key: round(value, 4) for key, value in noise_floor(real_a, real_b, names, extractor).items()}
        n_curve = min(512, n)
        curve_floor = {key: round(value, 4) for key, value in
                       noise_floor(real_a[:n_curve], real_b[:n_curve], ["swd", "color"]).items()}
        print(f"   noise floor at n={n}: SWD {floor['swd_floor']:.1f}, colour {floor['color_floor']:.2f}"
              f"{'' if extractor else '; KID/FID: weights missing'}", flush=True)
        stages["data"] = round(time.time() - began, 1)

        # ---------------------------------------------------------------- 2. the DCGAN run
        runs = work / "runs"
        per_run_overhead = 30.0  # model building, tracing, saving, evaluation: measured below, guessed here
        available = deadline - time.time() - (1 + len(entries)) * per_run_overhead - 45
        main_seconds = max(5.0, args.main_share * available)
        print(f"== 2/5 DCGAN: {main_seconds / 60:.1f} min of training", flush=True)
        began = time.time()
        snapshots, curve = [], []

        def snapshot(gan, callback):
            snapshots.append({**callback.stats(), "grid": image_grid(gan.generate(36, seed=0), 6)})

        def measure(gan, callback):
            values = compute_metrics(real_a[:n_curve], gan.generate(n_curve, seed=0), ["swd", "color"])
            curve.append({**callback.stats(), "num_images": n_curve, **{k: round(v, 4) for k, v in values.items()}})

        hooks = [(fraction * main_seconds, snapshot) for fraction in (0.0, 0.05, 0.2, 0.5)]
        hooks += [(index * main_seconds / 12, measure) for index in range(12)]
        main_out = runs / "dcgan-main"
        values = versus.run_values(str(train_dir), str(main_out), "dcgan", res, width, args.batch_size, args.seed, ema,
                                   steps_per_epoch=100, sample_interval=10)
        run = versus.train_for(values, "DCGAN", main_seconds, hooks=hooks, overall=overall)
        generator = load_generator(str(main_out))
        eval_began = time.time()
        dim = int(generator.input_shape[-1])
        final_images = render(generator, latents_for_seed(36, dim, 0))
        progress = run["progress"]
        snapshots.append({**{k: progress[k] for k in ("minutes", "images", "steps", "g_updates", "d_updates")},
                          "grid": image_grid(final_images, 6)})
        fake = render(generator, latents_for_seed(n, dim, 0))
        curve_values = compute_metrics(real_a[:n_curve], fake[:n_curve], ["swd", "color"])
        curve.append({**{k: progress[k] for k in ("minutes", "images", "steps", "g_updates", "d_updates")},
                      "num_images": n_curve, **{k: round(v, 4) for k, v in curve_values.items()}})
        final_metrics = {k: round(v, 4) for k, v in compute_metrics(real_a, fake, names, extractor).items()}
        eval_seconds = time.time() - eval_began
        main = {"budget_seconds": round(main_seconds, 1), "wall_seconds": round(time.time() - began, 1),
                **progress, "state": run["summary"]["state"], "monitor_events": run["summary"]["monitor_events"],
                "final_metrics": final_metrics, "curve": curve, "curve_floor": curve_floor, "losses": run["losses"],
                "snapshots": [{k: v for k, v in snap.items() if k != "grid"} for snap in snapshots]}
        print(f"   DCGAN: SWD {final_metrics['swd']:.1f} (floor {floor['swd_floor']:.1f}), colour "
              f"{final_metrics['color']:.2f} (floor {floor['color_floor']:.2f})", flush=True)

        # ---------------------------------------------------------------- 3. figures of the DCGAN run
        print("== 3/5 figures: progress, curves, z grid, interpolation, neighbours", flush=True)
        fig_began = time.time()
        real_grid = image_grid(train_real[:36], 6)
        panels = [("real faces (training set)", real_grid)]
        for index, snap in enumerate(snapshots):
            last = index == len(snapshots) - 1
            panels.append((f"{'final, ' if last else ''}{snap['minutes']:.1f} min\n{snap['images']:,} images, "
                           f"{snap['g_updates']:,} updates", snap["grid"]))
        panel_figure(panels, out / "progress.png")
        curves_figure(run["losses"], curve, curve_floor, out / "curves.png")
        explore.z_grid(generator, str(out / "z-grid.png"), seed=0)
        explore.interpolate(generator, str(out / "interpolation.png"), seeds=(0, 1, 2, 3), steps=8,
                            gif_path=str(out / "interpolation.gif"))
        _optimize_png(out / "z-grid.png")
        _optimize_png(out / "interpolation.png")
        explore.neighbours(generator, train_real, str(out / "neighbours.png"), num_samples=6, k=5, seed=0)
        _optimize_png(out / "neighbours.png")
        panel_figure([("held-out real faces", image_grid(real_a[:32], 8)),
                      (f"DCGAN samples after {progress['train_seconds'] / 60:.{0 if progress['train_seconds'] >= 600 else 1}f} min on {machine_info()['usable_cores']} "
                       f"CPU cores ({res} px)", image_grid(fake[:32], 8))], out / "hero.png", figsize=(11, 3.1))
        stages["main"] = round(time.time() - began, 1)
        # What a versus run costs beyond its training clock: building, tracing, saving, one evaluation.
        overhead = run["wall_seconds"] - progress["train_seconds"] - progress["paused_seconds"] + eval_seconds
        print(f"   figures in {time.time() - fig_began:.1f} s", flush=True)

        # ---------------------------------------------------------------- 4. GAN Versus
        per_model_overhead = max(15.0, 1.3 * overhead)
        versus_seconds = max(5.0, (deadline - time.time() - 30) / len(entries) - per_model_overhead)
        print(f"== 4/5 GAN Versus: {len(entries)} models x {versus_seconds / 60:.1f} min of training", flush=True)
        began = time.time()
        for old in out.glob("versus-*.png"):
            old.unlink()
        rows = versus.run_versus(entries, str(train_dir), str(runs), str(out), versus_seconds, real_a, res, width,
                                 args.batch_size, extractor, seed=args.seed, ema=ema, grid_prefix="versus-",
                                 overall=overall)
        stages["versus"] = round(time.time() - began, 1)

        # ---------------------------------------------------------------- 5. results
        print("== 5/5 results.json and results.md", flush=True)
        niceness = os.nice(0)
        command = f"{f'nice -n {niceness} ' if niceness else ''}python benchmarks/showcase.py " + " ".join(
            _quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
        results = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command, "machine": machine_info(), "software": software_info(),
            "load_average_start": [round(x, 2) for x in load_start], "load_average_end": None,
            "setup": {"resolution": res, "width": width, "batch_size": args.batch_size, "ema": ema, "seed": args.seed,
                      "budget_minutes": args.budget_minutes,
                      "resolution_note": resolution_note(res, main)},
            "data": data, "num_images": n, "floor": floor, "kid_fid_missing": missing,
            "main": main, "versus_budget_seconds": round(versus_seconds, 1), "versus": rows, "stages": stages,
        }
        results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        results["wall_minutes"] = round((time.time() - started) / 60, 2)
        results["cpu_minutes"] = round((cpu_seconds() - cpu_started) / 60, 2)
        # The page lists the figures' sizes: write it once, measure, write again with the numbers.
        results["figures"] = figure_sizes(out)
        (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        total = sum(results["figures"].values())
        print(f"figures: {len(results['figures'])} files, {total / 1e6:.2f} MB; wall time {results['wall_minutes']:.1f} "
              f"min; wrote {out / 'results.md'} and {out / 'results.json'}", flush=True)
        if total > 3e6:
            print("WARNING: the figures exceed 3 MB", flush=True)
        print("\n".join(versus.versus_table(rows, floor, n, missing, grids=False)), flush=True)
        if args.readme:
            update_readme(Path(args.readme), results)
        return 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def resolution_note(res, main) -> str:
    text = f"At {res} px the DCGAN here trained at {_fmt(main.get('images_per_second'), 0)} images/s. "
    if res <= 32:
        text += ("The 64 px DCGAN (width 64) runs at about 27-45 images/s on these 2 cores (README, Benchmarks), "
                 "so a 45-minute budget shared by seven trainings would give each 64 px model well under one pass "
                 "over the faces and a few hundred updates: not a meaningful run. 32 px gives every model thousands "
                 "of updates; pass `--resolution 64` on a faster machine.")
    return text


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w./=:,+-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
