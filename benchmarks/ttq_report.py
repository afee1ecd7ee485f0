"""The time-to-quality page from WORK/results.jsonl (benchmarks/time_to_quality.py): per setting, a
table of SWD and colour distance every few minutes beside the noise floor, the curves, and the
runs' samples at the end side by side (each run's row also kept as a PNG in OUT/ttq-samples, so the
page survives its run folders); results, each run's machine and the notes in docs/time-to-quality.json.
WORK/notes.md, when present, is the page's reading of the runs, placed after its introduction. Runs,
facts and notes that WORK lacks (made on another machine) are kept from that JSON, so a new
session's WORK adds to the page instead of replacing it."""

from __future__ import annotations

import json
import re
from pathlib import Path

LABELS = {"dcgan": "DCGAN", "stylegan2-tiny": "StyleGAN2-ADA tiny", "stylegan2-auto": "StyleGAN2-ADA auto",
          "lightweight": "lightweight + DiffAugment", "lightweight-noaug": "lightweight, no augmentation",
          "lightweight-translation-cutout": "lightweight + DiffAugment translation,cutout",
          "lightweight-sn": "lightweight + DiffAugment + spectral norm",
          "lightweight-sn-translation-cutout": "lightweight + DiffAugment translation,cutout + spectral norm",
          "lightweight-snd-noaug": "lightweight, no augmentation, spectral norm in D",
          "lightweight-snd-noaug-lr5e-4": "lightweight, no augmentation, spectral norm in D, Adam 5e-4",
          "lightweight-snd-noaug-lr5e-4-g1024": "lightweight, no augmentation, spectral norm in D, Adam 5e-4, "
                                                "generator twice as wide at 32-64 px",
          "lightweight-snd-noaug-lr5e-4-blur": "lightweight, no augmentation, spectral norm in D, Adam 5e-4, "
                                               "output blur",
          "lightweight-snd-noaug-lr5e-4-bnavg": "lightweight, no augmentation, spectral norm in D, Adam 5e-4, "
                                                "EMA BatchNorm statistics averaged (before the fix)",
          "lightweight-snd-noaug-ema9998": "lightweight, no augmentation, spectral norm in D, EMA decay 0.9998",
          "lightweight-snd-noaug-decay": "lightweight, no augmentation, spectral norm in D, rates decayed to zero "
                                         "over the second half",
          "lightweight-snd-noaug-lr5e-4-decay": "lightweight, no augmentation, spectral norm in D, Adam 5e-4 decayed "
                                                "to zero over the second half",
          "lightweight-snd-noaug-lr5e-4-decay-best": "lightweight, no augmentation, spectral norm in D, Adam 5e-4 "
                                                     "decayed to zero over the second half, metrics during training",
          "lightweight-snd-noaug-lr5e-4-decay-mbstd4": "lightweight, no augmentation, spectral norm in D, Adam 5e-4 "
                                                       "decayed to zero over the second half, minibatch std in D",
          "nvidia": "NVIDIA stylegan2-ada-pytorch (auto)",
          "lightweight-lr1e-3": "lightweight + DiffAugment, Adam 1e-3 (the earlier preset)"}
SAMPLES = 8


def seeded(name: str, seed: int) -> str:
    """The folder and results name of run `name` trained with `seed`: the name itself for seed 0, so a
    second seed sits beside the first in one setting's table and curves."""
    return name if not seed else f"{name}-seed{seed}"


def unseeded(key: str) -> tuple[str, int]:
    """(run name, seed) of a folder and results name (`seeded`'s inverse)."""
    match = re.fullmatch(r"(.+)-seed(\d+)", key)
    return (match[1], int(match[2])) if match else (key, 0)


def _label(run: str, runs=()) -> str:
    """A run's name on the page; a run trained with another seed (RUN-seedN) is its run's name and
    the seed, and so is seed 0's once another seed of it is in `runs`."""
    name, seed = unseeded(run)
    label = LABELS.get(name, name)
    seeds = {unseeded(other)[1] for other in runs if unseeded(other)[0] == name}
    return f"{label}, seed {seed}" if seed or seeds - {0} else label


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _settings(rows) -> dict:
    tags = {}
    for row in rows:
        tags.setdefault(row["tag"], {}).setdefault(row["run"], []).append(row)
    def in_order(runs):  # in order of first appearance, a run's seeds together and in order
        first = {}
        for run in runs:
            first.setdefault(unseeded(run)[0], len(first))
        return sorted(runs, key=lambda run: (first[unseeded(run)[0]], unseeded(run)[1]))

    return {tag: {run: sorted(runs[run], key=lambda p: p["minutes"]) for run in in_order(runs)}
            for tag, runs in tags.items()}


def _run_facts(work: Path, tag: str, run: str) -> dict:
    """images seen, images/s, G updates, precision and machine of a run, from its summary (ours) or log
    (NVIDIA's; its machine from WORK/TAG/nvidia/machine.json when there is one)."""
    folder = work / tag / run
    summary = folder / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        return {"kimg": data.get("kimg"), "images_per_second": data.get("images_per_second"),
                "g_updates": data.get("g_updates"), "precision": data.get("precision"), "machine": data.get("machine")}
    stats = folder / "run" / "stats.jsonl"
    if stats.is_file():
        last = json.loads(stats.read_text().splitlines()[-1])
        kimg, seconds = last["Progress/kimg"]["mean"], last["Timing/total_sec"]["mean"]
        machine = folder / "machine.json"
        return {"kimg": round(kimg, 3), "images_per_second": round(1000 * kimg / max(seconds, 1e-9), 1),
                "g_updates": None, "precision": "float32",
                "machine": json.loads(machine.read_text()) if machine.is_file() else None}
    return {}


def _mark(minutes, every=5.0):
    """The column of a snapshot: the nearest whole multiple of `every` minutes (at least one)."""
    return max(every, round(minutes / every) * every)


def _table(runs, key, digits, floor_key) -> list[str]:
    marks = sorted({_mark(p["minutes"]) for points in runs.values() for p in points})
    head = "| model | " + " | ".join(f"{m:g} min" for m in marks) + " |"
    lines = [head, "|" + " --- |" * (len(marks) + 1)]
    floor = next(iter(runs.values()))[0][floor_key]
    lines.append("| *real vs real (noise floor)* | " + " | ".join(f"{floor:.{digits}f}" for _ in marks) + " |")
    for run, points in runs.items():
        by_mark = {_mark(p["minutes"]): p[key] for p in points}
        cells = [f"{by_mark[m]:.{digits}f} ({by_mark[m] / floor:.1f}x)" if m in by_mark else "" for m in marks]
        lines.append(f"| {_label(run, runs)} | " + " | ".join(cells) + " |")
    return lines


def _best_table(rows, runs) -> list[str]:
    """The runs' kept best generators (training's best_generator.keras) against the held-out faces."""
    if not rows:
        return []
    lines = ["The generator each run kept as its best (`best_generator.keras`: the epoch whose training-time "
             "metrics, 512 samples against training faces, had the lowest worst ratio to their floor), against "
             "the held-out faces:", "", "| model | at minute | SWD | colour |", "| --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {_label(row['run'], runs)} | {row['minutes']:.1f} | {row['swd']:.1f} "
                     f"({row['swd'] / row['swd_floor']:.2f}x) | {row['color']:.2f} "
                     f"({row['color'] / row['color_floor']:.2f}x) |")
    return lines + [""]


def curves(runs, path: Path, title: str) -> None:
    plt = _plt()
    longest = max(len(_label(run, runs)) for run in runs)
    columns = 1 if longest > 90 else 2 if longest > 50 else 3  # long labels: fewer to a row, none cut off
    legend_rows = -(-(len(runs) + 2) // columns)  # the runs and the two floor lines
    height = 4 + 0.22 * legend_rows
    figure, axes = plt.subplots(1, 2, figsize=(11 if columns == 3 else 14, height))
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    for axis, key, label in ((axes[0], "swd", "SWD x1e3"), (axes[1], "color", "colour distance")):
        floor = next(iter(runs.values()))[0][f"{key}_floor"]
        for index, (run, points) in enumerate(runs.items()):
            axis.plot([p["minutes"] for p in points], [p[key] for p in points], marker="o",
                      color=colours[index % len(colours)], label=_label(run, runs))
        axis.axhline(floor, color="grey", linestyle="--", label="real vs real (noise floor)")
        axis.axhline(2 * floor, color="grey", linestyle=":", label="2 x the floor")
        axis.set_xlabel("training minutes (2 CPU cores)")
        axis.set_ylabel(label)
        axis.set_yscale("log")
    # Below both plots: inside one, a dozen labels hid the curves.
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=columns, fontsize="small",
                  frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, (0.22 * legend_rows + 0.1) / height, 1, 1))
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _strip_file(strips: Path, tag: str, name: str) -> Path:
    return strips / f"{tag}--{name}.png"


def _end_samples(work: Path, tag: str, run: str, last: dict, strips: Path):
    """SAMPLES images (seed 1) of a run's last snapshot, side by side in one uint8 array. Rendered when
    the snapshot is on disk and kept as a PNG strip in `strips` (lossless, beside the page), so the
    page can be written again when the run's folder is gone (a run made on another machine)."""
    import numpy as np
    from PIL import Image

    folder = work / tag / run
    nvidia = unseeded(run)[0] == "nvidia"
    source = folder / "run" / last["file"] if nvidia else folder / "snapshots" / last["file"]
    strip = _strip_file(strips, tag, run)
    if source.exists():
        from keras_anime_gan.loading import load_generator
        from keras_anime_gan.sampling import latent_width, latents_for_seed, render

        generator = load_generator(str(source))
        row = np.concatenate(list(render(generator, latents_for_seed(SAMPLES, latent_width(generator), 1))), axis=1)
        strips.mkdir(parents=True, exist_ok=True)
        Image.fromarray(row).save(strip)
        return row
    if strip.is_file():
        return np.asarray(Image.open(strip).convert("RGB"))
    print(f"{tag} {run}: no samples on the page (neither {source} nor {strip} exists)", flush=True)
    return None


def sample_grid(work: Path, tag: str, runs, path: Path, strips: Path) -> None:
    """SAMPLES images of each run's last snapshot in a row, under a row of held-out faces."""
    import numpy as np
    from PIL import Image

    plt = _plt()
    heldout_file, heldout_strip = work / tag / "data" / "heldout.npy", _strip_file(strips, tag, "heldout")
    if heldout_file.is_file():
        heldout = np.concatenate(list(np.load(heldout_file)[:SAMPLES]), axis=1)
        strips.mkdir(parents=True, exist_ok=True)
        Image.fromarray(heldout).save(heldout_strip)
    else:
        heldout = np.asarray(Image.open(heldout_strip).convert("RGB"))
    rows = [("held-out real faces", heldout)]
    for run, points in runs.items():
        row = _end_samples(work, tag, run, points[-1], strips)
        if row is not None:
            rows.append((f"{_label(run, runs)}, {points[-1]['minutes']:.0f} min", row))
    figure, axes = plt.subplots(len(rows), 1, figsize=(SAMPLES * 1.1, 1.35 * len(rows)), squeeze=False)
    for axis, (label, images) in zip(axes[:, 0], rows):
        axis.imshow(images)
        axis.set_title(label, fontsize=9, loc="left")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def machine() -> dict:
    """This CPU as the page names it: model, cores and the flags that decide its speed."""
    from keras_anime_gan.precision import cpu_flags, describe_cpu

    return {**describe_cpu(), "flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})}


def write_report(work: Path, out: Path) -> None:
    from time_to_quality import read_results

    from keras_anime_gan.loading import BEST_GENERATOR_FILE

    out.mkdir(parents=True, exist_ok=True)
    rows = read_results(work / "results.jsonl")
    # The page's own record keeps runs made on other machines: their scores and facts come from it
    # where WORK does not have them (results.jsonl's rows win, and so do summaries on disk).
    kept = json.loads((out / "time-to-quality.json").read_text()) if (out / "time-to-quality.json").is_file() else {}
    scored = {(row["tag"], row["run"], row["file"]) for row in rows}
    rows += [row for runs in kept.get("settings", {}).values() for points in runs.values() for row in points
             if (row["tag"], row["run"], row["file"]) not in scored]
    rows += [row for row in kept.get("best", []) if (row["tag"], row["run"], row["file"]) not in scored]
    best = [row for row in rows if row["file"] == BEST_GENERATOR_FILE]  # not a mark: a table of its own
    settings = _settings([row for row in rows if row["file"] != BEST_GENERATOR_FILE])
    lines = ["# Time to quality: the best faces per CPU-minute", "",
             "Written by `benchmarks/time_to_quality.py` (the runs' folders and logs are kept, so this page can be "
             "written again with `--report`). Each model trained alone for the same minutes on the same faces; its "
             "EMA generator was saved every 5 training minutes and scored afterwards: SWD x1e3 and colour distance "
             "of 1,000 samples (seed 0) against 1,000 held-out faces that no run trained on, converted as the training "
             "faces are, beside the real-vs-real noise floor (the held-out faces against 1,000 training faces). In "
             "brackets: the value over the floor. Minutes are comparable within a setting, whose runs trained on one "
             "kind of machine (named under its title).", ""]
    notes = work / "notes.md"  # what the runs say, written by whoever ran them, kept beside them
    notes = notes.read_text().strip() if notes.is_file() else kept.get("notes", "")
    if notes:
        lines += [notes, ""]
    facts = {}
    for tag, runs in settings.items():
        title = f"{tag}: {next(iter(runs.values()))[0]['train_faces']:,} training faces"
        facts[tag] = {run: _run_facts(work, tag, run) or kept.get("runs", {}).get(tag, {}).get(run, {})
                      for run in runs}
        machines = list({json.dumps(data.get("machine"), sort_keys=True): data.get("machine")
                         for data in facts[tag].values()}.values())
        lines += [f"## {title}", "", "Machine: " + "; ".join(json.dumps(m) if m else "not recorded" for m in machines)
                  + ".", "", "SWD x1e3 (lower is better):", "", *_table(runs, "swd", 1, "swd_floor"), "",
                  "Colour distance:", "", *_table(runs, "color", 2, "color_floor"), ""]
        lines += _best_table([row for row in best if row["tag"] == tag], runs)
        lines += ["| model | precision | images seen (k) | images/s | G updates |", "| --- | --- | --- | --- | --- |"]
        for run, data in facts[tag].items():
            lines.append(f"| {_label(run, runs)} | {data.get('precision')} | {data.get('kimg')} | "
                         f"{data.get('images_per_second')} | {data.get('g_updates') or ''} |")
        curves(runs, out / f"ttq-{tag}.png", title)
        sample_grid(work, tag, runs, out / f"ttq-{tag}-samples.png", out / "ttq-samples")
        lines += ["", f"![curves](ttq-{tag}.png)", "", f"![samples at the end](ttq-{tag}-samples.png)", ""]
    (out / "time-to-quality.md").write_text("\n".join(lines) + "\n")
    (out / "time-to-quality.json").write_text(json.dumps({"settings": settings, "best": best, "runs": facts,
                                                          "notes": notes}, indent=1))
