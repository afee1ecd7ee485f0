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
5. with `--stylegan2-minutes M`, trains StyleGAN2-ADA (`--stylegan2-preset`, tiny by default; its
   own `--stylegan2-resolution` and `--stylegan2-batch`) for M minutes after the others, which share
   the rest of the budget, and draws stylegan2-samples.png (EMA generator, seed 0, beside held-out
   faces), stylegan2-style-mix.png (`explore.style_mix`) and stylegan2-truncation.png;
6. writes `results.json` (every measured number: machine, CPU model and flags, minutes, images seen,
   updates, metrics) and `results.md` rendered from it, beside the pictures in --out.

`--only-stylegan2 --stylegan2-minutes M` runs the data split and the StyleGAN2-ADA stage alone (the
same held-out faces); when --out already holds a full run's results.json, it adds (or replaces) the
StyleGAN2-ADA section there and keeps everything else, so

    nice -n 15 python benchmarks/showcase.py --only-stylegan2 --stylegan2-minutes 30 --out docs --readme README.md

adds a StyleGAN2 run to the published page and README block.

The budget covers the whole script (conversion, model building, evaluation and figures included;
the StyleGAN2-ADA stage's M minutes and about 2.5 min of its overhead are taken out of it first).
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
import keras_anime_gan  # noqa: E402,F401,I001  (before TensorFlow: oneDNN's kernels on)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import versus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("ANIME_FACES_DIR", str(ROOT.parent / "shared" / "data" / "anime-faces-96"))
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
FIGURE_SUFFIXES = (".png", ".gif", ".webp", ".jpg")
README_START, README_END = "<!-- showcase:start -->", "<!-- showcase:end -->"


def portable_command(command: str) -> str:
    """`command` with every absolute path written relative to the repository root (the shared faces become
    ../shared/data/anime-faces-96), so results.json, the page and the README never name a machine's folders."""
    return re.sub(r"(?<![^\s='\"])/[^\s'\"`]+", lambda match: os.path.relpath(match.group(0), ROOT), command)


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
    if "main" not in results:  # a StyleGAN2-only results.json (--only-stylegan2 into an empty folder)
        return stylegan2_readme_lines(results, with_machine=True)
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
    if results.get("stylegan2"):
        lines += ["", *stylegan2_readme_lines(results)]
    return lines


def _precisions(results) -> str:
    """The training precisions the runs recorded (float32 for results written before they were recorded)."""
    runs = [results.get("main") or {}, *(results.get("versus") or [])]
    found = sorted({run["precision"] for run in runs if run.get("precision")})
    return ", ".join(found) or "float32"


def _separate_run_note(sg) -> str:
    if not sg.get("separate_run"):
        return ""
    return (f" (added by a separate run on {sg['date']}, {sg['wall_minutes']:.1f} min of wall time: "
            f"`{portable_command(sg['command'])}`)")


def stylegan2_readme_lines(results, with_machine=False) -> list[str]:
    """The StyleGAN2-ADA paragraph of the README block."""
    sg = results["stylegan2"]
    final, floor = sg.get("final_metrics") or {}, sg["floor"]
    lines = []
    if with_machine:
        machine = sg.get("machine") or results["machine"]
        lines += [f"Measured by `benchmarks/showcase.py --only-stylegan2` on {machine['cpu_model']} "
                  f"({machine['usable_cores']} cores, {', '.join(machine['simd_flags']) or 'no SIMD flags listed'}; "
                  f"run at nice {machine['niceness']} on a shared machine), on {sg['train_images']:,} training faces; "
                  f"metrics against {sg['num_images']:,} held-out faces that no run trained on.", ""]
    if not final:
        return lines + [f"StyleGAN2-ADA ({sg['preset']} preset, {sg['resolution']} px): {sg['state']}, no generator "
                        f"({sg.get('failure')})."]
    text = (f"StyleGAN2-ADA ({sg['preset']} preset, {sg['generator_params']:,} + {sg['discriminator_params']:,} "
            f"parameters, {sg['resolution']} px, batch {sg['batch_size']}, {sg['precision']}): "
            f"{sg['train_seconds'] / 60:.1f} min of training, {sg['images']:,} real images seen, "
            f"{_fmt(sg['images_per_second'], 0)} images/s, ADA's p {sg['ada_p']:.3f} at the end: SWD "
            f"{_fmt(final['swd'])} (real-vs-real floor {_fmt(floor['swd_floor'])}), colour distance "
            f"{_fmt(final['color'], 2)} (floor {_fmt(floor['color_floor'], 2)}), n={sg['num_images']:,}")
    if "kid" in final:
        text += f", KID {_fmt(final['kid'], 4)}, FID {_fmt(final.get('fid'))}"
    return lines + [text + _separate_run_note(sg) + "."]


def stylegan2_markdown(results) -> list[str]:
    """The StyleGAN2-ADA section of results.md."""
    sg = results["stylegan2"]
    final, floor, n = sg.get("final_metrics") or {}, sg["floor"], sg["num_images"]
    res = sg["resolution"]
    lines = ["## StyleGAN2-ADA", ""]
    if not final:
        return lines + [f"The {sg['preset']} preset at {res} px ended {sg['state']} without a generator: "
                        f"{sg.get('failure')}{_separate_run_note(sg)}.", ""]
    lines += [
        f"`create_gan(\"stylegan2-ada\", {res}, preset=\"{sg['preset']}\")`, trained by the package's `train()` "
        "like every run of this page: NVIDIA's mapping network, modulated and demodulated convolutions, noise "
        "inputs, skip generator and residual discriminator with minibatch standard deviation, style mixing, ADA (p "
        "adapting toward "
        "r_t = 0.6), lazy R1 every 16 and path length every 4 steps, and the EMA generator for every picture and "
        f"number here. {sg['generator_params']:,} generator and {sg['discriminator_params']:,} discriminator "
        f"parameters at {res} px, batch {sg['batch_size']}, {sg['precision']}{_separate_run_note(sg)}.",
        "",
        f"{sg['train_seconds'] / 60:.1f} min of training ({sg['wall_seconds'] / 60:.1f} min with model building, "
        f"graph tracing (the first step took {_fmt(sg.get('trace_seconds'))} s; the steps with the lazy phases "
        "trace when first due, inside the training minutes), evaluations and saving), "
        f"{sg['images']:,} real images seen ({sg['images'] / max(1, sg['train_images']):.1f} passes over the "
        f"{sg['train_images']:,} training faces), {sg['steps']:,} steps: {sg['g_updates']:,} generator and "
        f"{sg['d_updates']:,} discriminator optimizer updates (the lazy regularisation updates included), "
        f"{_fmt(sg['images_per_second'], 0)} images/s. ADA's augmentation probability p ended at {sg['ada_p']:.3f}.",
        "",
        f"Final samples: SWD {_fmt(final['swd'])} (noise floor {_fmt(floor['swd_floor'])}), colour distance "
        f"{_fmt(final['color'], 2)} (floor {_fmt(floor['color_floor'], 2)})"
        + (f", KID {_fmt(final['kid'], 4)} (floor {_fmt(floor.get('kid_floor'), 4)}), FID {_fmt(final.get('fid'))} "
           f"(floor {_fmt(floor.get('fid_floor'))})" if "kid" in final else "")
        + f", n={n:,} held-out faces against {n:,} samples of seed 0.",
        "",
        "![StyleGAN2-ADA samples (EMA generator) beside held-out real faces](stylegan2-samples.png)",
        "",
        f"During training (n={sg['curve'][0]['num_images']}: real-vs-real floor SWD "
        f"{_fmt(sg['curve_floor']['swd_floor'])}, colour {_fmt(sg['curve_floor']['color_floor'], 2)}):",
        "",
        "| training minutes | images seen | steps | SWD x1e3 | colour | ADA p |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {point['minutes']:.2f} | {point['images']:,} | {point['steps']:,} | {_fmt(point['swd'])} | "
          f"{_fmt(point['color'], 2)} | {_fmt(point.get('ada_p'), 3)} |" for point in sg["curve"]],
        "",
        f"Style mixing, the StyleGAN paper's figure 3 (`explore.style_mix`): the top row holds seeds "
        f"{', '.join(map(str, sg['style_mix']['columns']))}, the left column seeds "
        f"{', '.join(map(str, sg['style_mix']['rows']))}; each cell is its row seed with its column seed's "
        f"{sg['style_mix']['crossover']} styles (layers {sg['style_mix']['layers']} of {sg['style_mix']['num_ws']}) "
        "copied in, with the constant noise:",
        "",
        "![style mixing](stylegan2-style-mix.png)",
        "",
        "The truncation trick toward the average w (`explore.truncation`): psi 0 is the average face, 1 no truncation:",
        "",
        "![truncation](stylegan2-truncation.png)",
        "",
    ]
    return lines


def _figures_and_readme_heading(results) -> list[str]:
    """The results page's figure list and the heading of its README block."""
    return ["## Figures", "",
            f"{len(results['figures'])} files, {sum(results['figures'].values()) / 1e6:.2f} MB in all: "
            + ", ".join(f"`{name}` {size / 1e3:.0f} kB" for name, size in results["figures"].items()) + ".",
            "", "## For the README", ""]


def render_stylegan2_page(results) -> str:
    """results.md for a results.json that holds only the StyleGAN2-ADA run."""
    machine, software, data = results["machine"], results["software"], results["data"]
    lines = [
        "# Results: StyleGAN2-ADA on a 2-core CPU",
        "",
        f"Everything on this page was written by one command, on {results['date']}:",
        "",
        "```bash",
        portable_command(results["command"]),
        "```",
        "",
        f"It took {results['wall_minutes']:.1f} min of wall time ({results['cpu_minutes']:.1f} min of CPU time) on "
        f"{machine['cpu_model']}, {machine['usable_cores']} usable cores, at nice {machine['niceness']}; "
        f"keras-anime-gan {software['keras_anime_gan']} (commit {software['git_commit']}), TensorFlow "
        f"{software['tensorflow']}. Data: "
        f"{data['source']}, training faces {data['train_range'][0]} .. {data['train_range'][1]}, held out "
        f"{data['heldout_range'][0]} .. {data['heldout_range'][1]}. Every measured number is in "
        "[results.json](results.json).",
        "",
        *stylegan2_markdown({**results, "stylegan2": {**results["stylegan2"], "separate_run": False}}),
        *_figures_and_readme_heading(results),
        README_START,
        *readme_block(results),
        README_END,
        "",
    ]
    return "\n".join(lines)


def render_markdown(results) -> str:
    if "main" not in results:
        return render_stylegan2_page(results)
    machine, software, data, setup, main = (results[key] for key in ("machine", "software", "data", "setup", "main"))
    floor, n = results["floor"], results["num_images"]
    trainings = 1 + len(results["versus"]) + (1 if results.get("stylegan2") and
                                              not results["stylegan2"].get("separate_run") else 0)
    res = setup["resolution"]
    lines = [
        "# Results: what keras-anime-gan makes on a 2-core CPU",
        "",
        "Everything on this page (pictures and numbers) was written by one command, "
        f"on {results['date']}:",
        "",
        "```bash",
        portable_command(results["command"]),
        "```",
        "",
        f"It took {results['wall_minutes']:.1f} min of wall time ({results['cpu_minutes']:.1f} min of CPU time) for the "
        f"whole script (conversion, {trainings} trainings, evaluation, figures). Every measured number "
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
        f"{software['tensorflow']}, Keras {software['keras']}, Python {machine['python']}, {_precisions(results)} |",
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
        *(stylegan2_markdown(results) if results.get("stylegan2") else []),
        *_figures_and_readme_heading(results),
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


def convert_split(work: Path, resolution: int, seed: int, suffix: str = "") -> dict:
    """Convert the split's symlink folders (work/train-src, work/heldout-src) at one resolution into
    work/train{suffix} and work/heldout{suffix}."""
    began = time.time()
    train_dir, heldout_dir = work / f"train{suffix}", work / f"heldout{suffix}"
    train_manifest = convert(work / "train-src", train_dir, resolution, seed)
    heldout_manifest = convert(work / "heldout-src", heldout_dir, resolution, seed)
    return {"resolution": resolution, "train_dir": train_dir, "heldout_dir": heldout_dir,
            "train_images": train_manifest["images"], "heldout_images": heldout_manifest["images"],
            "skipped": train_manifest["skipped"] + heldout_manifest["skipped"],
            "seconds": round(time.time() - began, 1)}


def _rounded(values: dict) -> dict:
    return {key: round(value, 4) for key, value in values.items()}


def run_classic(args, out, runs, data, train_dir, n, real_a, train_real, floor, curve_floor, extractor, names,
                entries, width, ema, deadline, overall, header, stages) -> dict:
    """Stages 2-4: the DCGAN run with its figures, then GAN Versus, all before `deadline`.
    Returns {"main": ..., "versus": rows, "versus_budget_seconds": ...}."""
    from keras_anime_gan import explore
    from keras_anime_gan.loading import load_generator
    from keras_anime_gan.metrics import compute_metrics
    from keras_anime_gan.sampling import image_grid, latents_for_seed, render

    res = args.resolution
    n_curve = min(512, n)
    # ---------------------------------------------------------------- 2. the DCGAN run
    per_run_overhead = 30.0  # model building, tracing, saving, evaluation: measured below, guessed here
    available = deadline - time.time() - (1 + len(entries)) * per_run_overhead - 45
    main_seconds = max(5.0, args.main_share * available)
    header("DCGAN", f"DCGAN: {main_seconds / 60:.1f} min of training")
    began = time.time()
    snapshots, curve = [], []

    def snapshot(gan, callback):
        snapshots.append({**callback.stats(), "grid": image_grid(gan.generate(36, seed=0), 6)})

    def measure(gan, callback):
        values = compute_metrics(real_a[:n_curve], gan.generate(n_curve, seed=0), ["swd", "color"])
        curve.append({**callback.stats(), "num_images": n_curve, **_rounded(values)})

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
                  "num_images": n_curve, **_rounded(curve_values)})
    final_metrics = _rounded(compute_metrics(real_a, fake, names, extractor))
    eval_seconds = time.time() - eval_began
    main = {"budget_seconds": round(main_seconds, 1), "wall_seconds": round(time.time() - began, 1),
            **progress, "state": run["summary"]["state"], "monitor_events": run["summary"]["monitor_events"],
            "precision": run["summary"].get("precision"),
            "final_metrics": final_metrics, "curve": curve, "curve_floor": curve_floor, "losses": run["losses"],
            "snapshots": [{k: v for k, v in snap.items() if k != "grid"} for snap in snapshots]}
    print(f"   DCGAN: SWD {final_metrics['swd']:.1f} (floor {floor['swd_floor']:.1f}), colour "
          f"{final_metrics['color']:.2f} (floor {floor['color_floor']:.2f})", flush=True)

    # ---------------------------------------------------------------- 3. figures of the DCGAN run
    header("figures", "figures: progress, curves, z grid, interpolation, neighbours")
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
    minutes = progress["train_seconds"] / 60
    panel_figure([("held-out real faces", image_grid(real_a[:32], 8)),
                  (f"DCGAN samples after {minutes:.{0 if minutes >= 10 else 1}f} min on "
                   f"{machine_info()['usable_cores']} CPU cores ({res} px)", image_grid(fake[:32], 8))],
                 out / "hero.png", figsize=(11, 3.1))
    stages["main"] = round(time.time() - began, 1)
    # What a versus run costs beyond its training clock: building, tracing, saving, one evaluation.
    overhead = run["wall_seconds"] - progress["train_seconds"] - progress["paused_seconds"] + eval_seconds
    print(f"   figures in {time.time() - fig_began:.1f} s", flush=True)

    # ---------------------------------------------------------------- 4. GAN Versus
    per_model_overhead = max(15.0, 1.3 * overhead)
    versus_seconds = max(5.0, (deadline - time.time() - 30) / len(entries) - per_model_overhead)
    header("GAN Versus", f"GAN Versus: {len(entries)} models x {versus_seconds / 60:.1f} min of training")
    began = time.time()
    for old in out.glob("versus-*.png"):
        old.unlink()
    rows = versus.run_versus(entries, str(train_dir), str(runs), str(out), versus_seconds, real_a, res, width,
                             args.batch_size, extractor, seed=args.seed, ema=ema, grid_prefix="versus-",
                             overall=overall)
    stages["versus"] = round(time.time() - began, 1)
    return {"main": main, "versus": rows, "versus_budget_seconds": round(versus_seconds, 1)}


STYLEGAN2_SLUG = "stylegan2-ada"
STYLEGAN2_OVERHEAD = 150.0  # seconds beyond its training clock: building, tracing, metrics on the way, figures
STYLE_MIX_ROWS, STYLE_MIX_COLUMNS = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
TRUNCATION_SEEDS, TRUNCATION_PSIS = (0, 1, 2, 3, 4, 5), (0.0, 0.25, 0.5, 0.75, 1.0)


def versus_entries(models: str | None) -> list:
    """GAN Versus entries: those named in `models`, or all but stylegan2-ada (which has its own stage)."""
    if models:
        return versus.select_entries(models)
    return [entry for entry in versus.ENTRIES if entry[1] != STYLEGAN2_SLUG]


def run_stylegan2(args, out, runs, split, n, real_a, real_b, floor, extractor, names, overall, header) -> dict:
    """The StyleGAN2-ADA stage: `--stylegan2-minutes` of training (the tiny preset by default, versus.py's
    entry) on the split's training faces at its resolution, SWD / colour of the EMA generator along the way,
    then the final metrics against the held-out faces and three figures: stylegan2-samples.png,
    stylegan2-style-mix.png and stylegan2-truncation.png."""
    import keras

    from keras_anime_gan import explore
    from keras_anime_gan.loading import load_generator
    from keras_anime_gan.gans.stylegan2.networks import trainable_count
    from keras_anime_gan.metrics import compute_metrics, noise_floor
    from keras_anime_gan.sampling import image_grid

    res, batch, seconds = split["resolution"], args.stylegan2_batch, args.stylegan2_minutes * 60
    header("StyleGAN2-ADA", f"StyleGAN2-ADA ({args.stylegan2_preset} preset, {res} px, batch {batch}): "
                            f"{seconds / 60:.1f} min of training")
    began = time.time()
    sg_out = runs / STYLEGAN2_SLUG
    if (sg_out / "config.json").exists():
        shutil.rmtree(sg_out)  # a previous showcase run of ours: start it again
    n_curve = min(512, n)
    curve_floor = _rounded(noise_floor(real_a[:n_curve], real_b[:n_curve], ["swd", "color"]))
    curve, state = [], {}

    def ada_p(gan):
        return round(float(keras.ops.convert_to_numpy(gan.objective.augmenter.p)), 4)

    def measure(gan, callback):
        if curve and curve[-1]["steps"] == callback.steps:
            return  # hooks that fell due together (the clock ran on while a phase's step traced): one point
        values = compute_metrics(real_a[:n_curve], gan.generate(n_curve, seed=0), ["swd", "color"])
        curve.append({**callback.stats(), "num_images": n_curve, "ada_p": ada_p(gan), **_rounded(values)})

    def finish(gan, callback):
        state.update(ada_p=ada_p(gan), generator_params=trainable_count(gan.generator),
                     discriminator_params=trainable_count(gan.discriminator),
                     pl_mean=round(float(keras.ops.convert_to_numpy(gan.objective.pl_mean)), 4))

    (label, _, model, options), = versus.select_entries(STYLEGAN2_SLUG)
    options = {**options, "model_options": {**options.get("model_options", {}), "preset": args.stylegan2_preset}}
    options["precision"] = args.stylegan2_precision
    values = versus.run_values(str(split["train_dir"]), str(sg_out), model, res, None, batch, args.seed, None,
                               options, steps_per_epoch=100)
    hooks = [(index * seconds / 10, measure) for index in range(10)]
    run = versus.train_for(values, "StyleGAN2-ADA", seconds, hooks=hooks, overall=overall, at_end=[finish])
    summary, progress = run["summary"], run["progress"]
    result = {"label": label, "preset": args.stylegan2_preset, "resolution": res, "batch_size": batch,
              "precision": summary.get("precision"), "precision_reason": summary.get("precision_reason"),
              "budget_seconds": round(seconds, 1), **progress, "state": summary["state"],
              "monitor_events": summary.get("monitor_events"), **state, "train_images": split["train_images"],
              "heldout_images": split["heldout_images"], "num_images": n, "floor": floor,
              "curve_floor": curve_floor, "curve": curve, "losses": run["losses"], "final_metrics": None}
    if summary.get("generator") is None:
        result.update(failure=summary.get("reason"), wall_seconds=round(time.time() - began, 1))
        print(f"   StyleGAN2-ADA: no generator ({summary.get('reason')})", flush=True)
        return result
    generator = load_generator(str(sg_out))  # the EMA generator, float32
    metrics, fake = versus.evaluate_generator(generator, real_a, extractor, seed=0)
    result["final_metrics"] = _rounded(metrics)
    if curve and curve[-1]["steps"] == progress["steps"]:
        curve.pop()  # measured at the last step already: the final point replaces it
    curve.append({**{k: progress[k] for k in ("minutes", "images", "steps", "g_updates", "d_updates")},
                  "num_images": n_curve, "ada_p": state.get("ada_p"),
                  **_rounded(compute_metrics(real_a[:n_curve], fake[:n_curve], ["swd", "color"]))})
    minutes = progress["train_seconds"] / 60
    panel_figure([("held-out real faces", image_grid(real_a[:64], 8)),
                  (f"StyleGAN2-ADA samples (EMA generator, seed 0) after {minutes:.{0 if minutes >= 10 else 1}f} min, "
                   f"{progress['images']:,} images ({res} px)", image_grid(fake[:64], 8))],
                 out / "stylegan2-samples.png", figsize=(11, 5.9))
    crossover = args.stylegan2_crossover
    layers = explore.crossover_layers(generator, crossover)
    explore.style_mix(generator, str(out / "stylegan2-style-mix.png"), row_seeds=STYLE_MIX_ROWS,
                      column_seeds=STYLE_MIX_COLUMNS, crossover=crossover)
    explore.truncation(generator, str(out / "stylegan2-truncation.png"), seeds=TRUNCATION_SEEDS, psis=TRUNCATION_PSIS)
    for name in ("stylegan2-style-mix.png", "stylegan2-truncation.png"):
        _optimize_png(out / name)
    result["style_mix"] = {"rows": list(STYLE_MIX_ROWS), "columns": list(STYLE_MIX_COLUMNS), "crossover": crossover,
                           "layers": f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0]),
                           "num_ws": int(generator.num_ws)}
    result["truncation"] = {"seeds": list(TRUNCATION_SEEDS), "psis": list(TRUNCATION_PSIS)}
    result["figures"] = ["stylegan2-samples.png", "stylegan2-style-mix.png", "stylegan2-truncation.png"]
    result["wall_seconds"] = round(time.time() - began, 1)
    print(f"   StyleGAN2-ADA: SWD {metrics['swd']:.1f} (floor {floor['swd_floor']:.1f}), colour {metrics['color']:.2f} "
          f"(floor {floor['color_floor']:.2f}), p {state.get('ada_p', float('nan')):.3f}", flush=True)
    return result


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
    parser.add_argument("--models", default=None, help="GAN Versus models, comma-separated slugs (default: all but "
                                                       "stylegan2-ada, which has its own stage)")
    parser.add_argument("--inception-weights", default=None, help="InceptionV3 no-top weights for KID/FID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="work folder for symlinks, conversions and runs "
                                                     "(default: a new temporary folder, removed at the end)")
    parser.add_argument("--readme", default=None, help="also paste the summary between the markers of this README")
    parser.add_argument("--markdown-only", action="store_true", help="only re-render results.md from results.json")
    group = parser.add_argument_group("StyleGAN2-ADA (off unless --stylegan2-minutes is given)")
    group.add_argument("--stylegan2-minutes", type=float, default=0.0,
                       help="train stylegan2-ada for this many minutes of training (after GAN Versus, outside the "
                            "share of --budget-minutes the other runs get); 0: no StyleGAN2 stage")
    group.add_argument("--stylegan2-resolution", type=int, default=32, help="its resolution (a power of two)")
    group.add_argument("--stylegan2-batch", type=int, default=32, help="its batch size")
    group.add_argument("--stylegan2-preset", default="tiny", help="its preset (tiny: a few channels, for CPUs)")
    group.add_argument("--stylegan2-precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                       help="its training precision (auto: bfloat16 where the CPU computes it natively)")
    group.add_argument("--stylegan2-crossover", default="coarse", choices=("coarse", "middle"),
                       help="the styles the style-mixing figure copies from its columns")
    group.add_argument("--only-stylegan2", action="store_true",
                       help="skip the DCGAN run, its figures and GAN Versus; with a results.json in --out, add "
                            "(or replace) its StyleGAN2-ADA section and keep the rest (--budget-minutes unused)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.markdown_only:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
        (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
        if args.readme:
            update_readme(Path(args.readme), results)
        return 0
    stylegan = args.stylegan2_minutes > 0
    only = args.only_stylegan2
    if only and not stylegan:
        print("error: --only-stylegan2 needs --stylegan2-minutes M (M > 0)", file=sys.stderr)
        return 2
    if stylegan:
        res_log2 = math.log2(args.stylegan2_resolution) if args.stylegan2_resolution > 0 else 0.5
        if args.stylegan2_resolution < 4 or res_log2 != int(res_log2):
            print(f"error: --stylegan2-resolution must be a power of two >= 4, got {args.stylegan2_resolution}",
                  file=sys.stderr)
            return 2

    started, cpu_started = time.time(), cpu_seconds()
    deadline = started + args.budget_minutes * 60
    load_start = os.getloadavg()
    if only:
        overall = lambda: f"{(time.time() - started) / 60:.1f} min"  # noqa: E731
    else:
        overall = lambda: f"{(time.time() - started) / 60:.1f}/{args.budget_minutes:g} min"  # noqa: E731
    plan = ["data"] + ([] if only else ["DCGAN", "figures", "GAN Versus"]) + (["StyleGAN2-ADA"] if stylegan else [])
    plan.append("results")

    def header(stage, text):
        print(f"== {plan.index(stage) + 1}/{len(plan)} {text}", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="showcase-"))
    work.mkdir(parents=True, exist_ok=True)
    entries = versus_entries(args.models)
    res, sg_res = args.resolution, args.stylegan2_resolution
    width = args.width or (32 if res <= 32 else 64)
    ema = args.ema or None
    stages = {}
    try:
        # ---------------------------------------------------------------- 1. data
        resolutions = ([] if only else [res]) + ([sg_res] if stylegan and (only or sg_res != res) else [])
        header("data", f"data: splitting and converting {args.data} at {', '.join(map(str, resolutions))} px "
                       f"(work folder {work})")
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
        splits = {r: convert_split(work, r, args.seed, "" if index == 0 else f"-{r}px")
                  for index, r in enumerate(resolutions)}
        first = splits[resolutions[0]]
        data.update(train_images=first["train_images"], heldout_images=first["heldout_images"],
                    convert_seconds=first["seconds"], skipped=first["skipped"])
        print(f"   {data['train_images']:,} training faces ({data['train_range'][0]} .. {data['train_range'][1]}), "
              f"{data['heldout_images']:,} held out ({data['heldout_range'][0]} .. {data['heldout_range'][1]}), "
              f"{data['duplicates_dropped']} duplicates dropped, converted in "
              f"{sum(split['seconds'] for split in splits.values()):.1f} s", flush=True)

        from keras_anime_gan.data import load_real_images
        from keras_anime_gan.metrics import noise_floor

        n = min(args.eval_images, data["heldout_images"] // 2)
        extractor, missing = versus.load_extractor(args.inception_weights)
        names = versus.metric_names(extractor)
        evaluation = {}  # resolution -> (real_a, real_b, floor at n)
        for r, split in splits.items():
            heldout = load_real_images(str(split["heldout_dir"]), 2 * n, r, seed=1)
            real_a, real_b = heldout[:n], heldout[n : 2 * n]
            evaluation[r] = (real_a, real_b, _rounded(noise_floor(real_a, real_b, names, extractor)))
            print(f"   noise floor at {r} px, n={n}: SWD {evaluation[r][2]['swd_floor']:.1f}, colour "
                  f"{evaluation[r][2]['color_floor']:.2f}{'' if extractor else '; KID/FID: weights missing'}",
                  flush=True)
        stages["data"] = round(time.time() - began, 1)
        runs = work / "runs"

        classic = {}
        if not only:
            real_a, real_b, floor = evaluation[res]
            n_curve = min(512, n)
            curve_floor = _rounded(noise_floor(real_a[:n_curve], real_b[:n_curve], ["swd", "color"]))
            train_real = load_real_images(str(splits[res]["train_dir"]), data["train_images"], res, seed=2)
            # The StyleGAN2 stage comes last with its own minutes: the other runs share what is left.
            reserve = args.stylegan2_minutes * 60 + STYLEGAN2_OVERHEAD if stylegan else 0.0
            classic = run_classic(args, out, runs, data, splits[res]["train_dir"], n, real_a, train_real, floor,
                                  curve_floor, extractor, names, entries, width, ema, deadline - reserve, overall,
                                  header, stages)

        sg = None
        if stylegan:
            began = time.time()
            sg_split = splits[sg_res]
            sg_real_a, sg_real_b, sg_floor = evaluation[sg_res]
            sg = run_stylegan2(args, out, runs, sg_split, n, sg_real_a, sg_real_b, sg_floor, extractor, names,
                               overall, header)
            sg["convert_seconds"] = sg_split["seconds"]
            stages["stylegan2"] = round(time.time() - began, 1)

        # ---------------------------------------------------------------- results
        header("results", "results.json and results.md")
        niceness = os.nice(0)
        command = portable_command(f"{f'nice -n {niceness} ' if niceness else ''}python benchmarks/showcase.py "
                                   + " ".join(_quote(arg) for arg in (sys.argv[1:] if argv is None else argv)))
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine = machine_info()
        existing = out / "results.json"
        if only and existing.is_file() and "main" in json.loads(existing.read_text(encoding="utf-8")):
            # Add (or replace) the StyleGAN2-ADA section of an earlier full run; keep everything else.
            results = json.loads(existing.read_text(encoding="utf-8"))
            sg.update(separate_run=True, command=command, date=date, data=data,
                      wall_minutes=round((time.time() - started) / 60, 2),
                      cpu_minutes=round((cpu_seconds() - cpu_started) / 60, 2),
                      machine={key: machine.get(key) for key in ("cpu_model", "usable_cores", "simd_flags",
                                                                 "niceness")},
                      software=software_info(), load_average=[round(x, 2) for x in os.getloadavg()])
            results["stylegan2"] = sg
        else:
            results = {
                "date": date, "command": command, "machine": machine, "software": software_info(),
                "load_average_start": [round(x, 2) for x in load_start], "load_average_end": None,
                "data": data, "num_images": n, "kid_fid_missing": missing, "stages": stages,
            }
            if only:
                results["setup"] = {"resolution": sg_res, "batch_size": args.stylegan2_batch, "seed": args.seed,
                                    "stylegan2_minutes": args.stylegan2_minutes}
                results["floor"] = evaluation[sg_res][2]
            else:
                results["setup"] = {"resolution": res, "width": width, "batch_size": args.batch_size, "ema": ema,
                                    "seed": args.seed, "budget_minutes": args.budget_minutes,
                                    "resolution_note": resolution_note(res, classic["main"])}
                results.update(floor=evaluation[res][2], **classic)
            if sg is not None:
                results["stylegan2"] = {**sg, "separate_run": False}
            results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            results["wall_minutes"] = round((time.time() - started) / 60, 2)
            results["cpu_minutes"] = round((cpu_seconds() - cpu_started) / 60, 2)
        # The page lists the figures' sizes: write it once, measure, write again with the numbers.
        results["figures"] = figure_sizes(out)
        (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        total = sum(results["figures"].values())
        print(f"figures: {len(results['figures'])} files, {total / 1e6:.2f} MB; wall time "
              f"{(time.time() - started) / 60:.1f} min; wrote {out / 'results.md'} and {out / 'results.json'}",
              flush=True)
        if total > 3e6:
            print("WARNING: the figures exceed 3 MB", flush=True)
        if "versus" in results and not only:
            print("\n".join(versus.versus_table(results["versus"], results["floor"], n, missing, grids=False)),
                  flush=True)
        if sg is not None:
            print("\n".join(stylegan2_readme_lines(results)), flush=True)
        if args.readme:
            update_readme(Path(args.readme), results)
        return 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def resolution_note(res, main) -> str:
    text = f"At {res} px the DCGAN here trained at {_fmt(main.get('images_per_second'), 0)} images/s. "
    if res <= 32:
        text += ("The 64 px DCGAN (width 64) runs at about 27-45 images/s on these 2 cores (docs/benchmarks.md), "
                 "so a 45-minute budget shared by seven trainings would give each 64 px model well under one pass "
                 "over the faces and a few hundred updates: not a meaningful run. 32 px gives every model thousands "
                 "of updates; pass `--resolution 64` on a faster machine.")
    return text


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w./=:,+-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
