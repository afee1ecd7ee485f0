"""benchmarks/showcase.py: a tiny-budget run on a few dozen real faces writes every figure, a sane
results.json and the results page; the held-out split and the README paste are checked alone."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("hero.png", "progress.png", "curves.png", "z-grid.png", "interpolation.png", "interpolation.gif",
           "neighbours.png", "versus-dcgan.png")


@pytest.fixture(scope="module")
def showcase():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("showcase", ROOT / "benchmarks" / "showcase.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_holds_out_faces_never_trained_on(showcase, tmp_path):
    source = tmp_path / "faces"
    source.mkdir()
    for index in range(12):
        (source / f"{index}.jpg").write_bytes(b"face %d" % (index % 10))  # 10.jpg, 11.jpg repeat 0.jpg, 1.jpg
    (source / "notes.txt").write_text("not an image")
    split = showcase.split_faces(source, tmp_path / "work", heldout=3, limit=None)
    train = {path.read_bytes() for path in (tmp_path / "work" / "train-src").iterdir()}
    heldout = {path.read_bytes() for path in (tmp_path / "work" / "heldout-src").iterdir()}
    assert split["duplicates_dropped"] == 2 and split["files"] == 12
    assert (split["train_files"], split["heldout_files"]) == (7, 3)
    assert split["heldout_range"] == ["7.jpg", "9.jpg"]  # natural order: 9.jpg before 10.jpg
    assert not train & heldout
    assert all(path.is_symlink() for path in (tmp_path / "work" / "heldout-src").iterdir())


def test_readme_paste_only_between_markers(showcase, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nkept\n\n## Results\n\n{showcase.README_START}\nold numbers\n{showcase.README_END}\n\n"
                      "## Next\n\nkept too\n")
    monkeypatch.setattr(showcase, "readme_block", lambda results: ["new | numbers"])
    assert showcase.update_readme(readme, {})
    text = readme.read_text()
    assert "old numbers" not in text and "new | numbers" in text
    assert text.startswith("# title\n\nkept\n") and text.endswith("## Next\n\nkept too\n")
    other = tmp_path / "OTHER.md"
    other.write_text("no markers\n")
    assert not showcase.update_readme(other, {}) and other.read_text() == "no markers\n"


def test_tiny_run_writes_figures_and_sane_numbers(showcase, shared_faces_dir, tmp_path):
    out = tmp_path / "docs"
    code = showcase.main(["--data", str(shared_faces_dir), "--limit", "96", "--heldout", "32", "--batch-size", "16",
                          "--budget-minutes", "0.6", "--models", "dcgan", "--out", str(out),
                          "--work", str(tmp_path / "work")])
    assert code == 0
    for name in FIGURES + ("results.json", "results.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())

    machine = results["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1 and isinstance(machine["cpu_flags"], list)
    assert results["wall_minutes"] > 0 and results["cpu_minutes"] > 0

    data = results["data"]
    assert data["files"] == 96 and data["heldout_files"] == 32
    assert data["train_images"] + data["heldout_images"] <= 96 and data["heldout_images"] >= 30
    assert int(Path(data["train_range"][1]).stem) < int(Path(data["heldout_range"][0]).stem)  # disjoint ranges
    assert results["num_images"] == data["heldout_images"] // 2

    main = results["main"]
    assert main["train_seconds"] > 0 and main["g_updates"] >= 1 and main["d_updates"] >= 1
    assert main["images"] == main["steps"] * 16 and main["images"] >= 16
    assert len(main["snapshots"]) == 5 and main["snapshots"][-1]["images"] == main["images"]
    assert len(main["curve"]) >= 2 and all(math.isfinite(point["swd"]) for point in main["curve"])
    floor = results["floor"]
    for value in (main["final_metrics"]["swd"], main["final_metrics"]["color"], floor["swd_floor"], floor["color_floor"]):
        assert math.isfinite(value) and value > 0
    assert results["kid_fid_missing"] or "kid" in main["final_metrics"]

    (row,) = results["versus"]
    assert row["slug"] == "dcgan" and row["grid"] == "versus-dcgan.png"
    assert row["g_updates"] >= 1 and row["images"] >= 16 and row["train_seconds"] > 0
    assert row["wall_seconds"] >= row["train_seconds"] and math.isfinite(row["metrics"]["swd"])

    assert set(FIGURES) <= set(results["figures"]) and sum(results["figures"].values()) < 3e6
    # The page says what results.json holds: the headline numbers, the noise floor, the Versus row.
    page = (out / "results.md").read_text()
    fmt, final = showcase._fmt, main["final_metrics"]
    assert (f"{main['images']:,} real images seen, {main['g_updates']:,} generator updates" in page
            and f"SWD {fmt(final['swd'])} (real-vs-real floor {fmt(floor['swd_floor'])})" in page
            and f"colour distance {fmt(final['color'], 2)} (floor {fmt(floor['color_floor'], 2)})" in page)
    assert (f"| *real vs real (noise floor, n={results['num_images']})* | {fmt(floor['swd_floor'])} | "
            f"{fmt(floor['color_floor'], 2)} |") in page
    assert (f"| {row['model']} | {fmt(row['metrics']['swd'])} | {fmt(row['metrics']['color'], 2)} |" in page
            and f"{row['g_updates']:,} | {row['d_updates']:,} | ![dcgan](versus-dcgan.png) |" in page)
    assert showcase.README_START in page and ("weights missing" in page or "kid" in final)
    assert all(f"({name})" in page for name in FIGURES)  # every figure shown (or linked) on the page

    # --markdown-only renders the same page from results.json alone.
    (out / "results.md").unlink()
    assert showcase.main(["--out", str(out), "--markdown-only"]) == 0
    assert (out / "results.md").read_text() == page


def test_stylegan2_ada_is_a_versus_row_trained_through_train_config(showcase):
    from keras_anime_gan.config import TrainConfig

    versus = showcase.versus
    ((label, slug, model, options),) = versus.select_entries("stylegan2-ada")
    assert slug == model == "stylegan2-ada" and "StyleGAN2" in label
    values = versus.run_values(None, "runs/x", model, 16, 32, 32, 0, 0.999, options)
    assert values["model_options"] == {"preset": "tiny"}  # no width (it has none), no ema (its own half-life)
    config = TrainConfig.from_json(values).resolved()
    assert config.model_options["preset"] == "tiny" and config.model_options["z_dim"] == 64  # resolved preset values
    # The classic rows' options go into model_options; run-level ones stay run-level.
    dcgan = TrainConfig.from_json(versus.run_values(None, "runs/y", "dcgan", 32, 32, 64, 0, 0.999,
                                                    {"label_smoothing": 0.1, "flip": False}))
    assert dcgan.model_options == {"width": 32, "ema": 0.999, "label_smoothing": 0.1} and dcgan.flip is False
    # The showcase's GAN Versus leaves it out unless named: StyleGAN2-ADA has a stage of its own.
    assert "stylegan2-ada" not in [entry[1] for entry in showcase.versus_entries(None)]
    assert [entry[1] for entry in showcase.versus_entries("dcgan,stylegan2-ada")] == ["dcgan", "stylegan2-ada"]
    lines = versus.versus_table([{"model": label, "slug": slug, "loss": model, "metrics": {"swd": 50.0, "color": 5.0},
                                  "images_per_second": 90.0, "train_seconds": 60, "wall_seconds": 90, "images": 5000,
                                  "g_updates": 190, "d_updates": 160, "grid": "versus-stylegan2-ada.png"}],
                                {"swd_floor": 30.0, "color_floor": 3.0}, 256)
    assert any(line.startswith("| StyleGAN2-ADA (tiny preset) | 50.0 | 5.00 |") for line in lines)
    assert "lazy regularisation updates" in lines[-1]


def _stylegan2_section(**changes):
    curve = [{"minutes": m, "images": i, "steps": i // 32, "g_updates": i // 25, "d_updates": i // 30,
              "num_images": 100, "ada_p": p, "swd": s, "color": c}
             for m, i, p, s, c in ((0.01, 32, 0.0, 230.0, 50.0), (1.0, 6400, 0.012, 80.5, 9.5))]
    return {"label": "StyleGAN2-ADA (tiny preset)", "preset": "tiny", "resolution": 16, "batch_size": 32,
            "precision": "float32", "budget_seconds": 60.0, "minutes": 1.0, "images": 6400, "steps": 200,
            "g_updates": 250, "d_updates": 212, "train_seconds": 60.0, "trace_seconds": 20.0, "paused_seconds": 3.0,
            "images_per_second": 107.0, "state": "stopped", "monitor_events": [], "ada_p": 0.012,
            "generator_params": 227854, "discriminator_params": 259329, "pl_mean": 0.5, "train_images": 400,
            "heldout_images": 200, "num_images": 100, "floor": {"swd_floor": 34.7, "color_floor": 5.78},
            "curve_floor": {"swd_floor": 34.7, "color_floor": 5.78}, "curve": curve, "losses": [],
            "final_metrics": {"swd": 80.5, "color": 9.5}, "wall_seconds": 95.0,
            "style_mix": {"rows": [0, 1], "columns": [5, 6], "crossover": "coarse", "layers": "0-2", "num_ws": 6},
            "figures": ["stylegan2-samples.png", "stylegan2-style-mix.png", "stylegan2-truncation.png"],
            "separate_run": False, **changes}


def test_a_stylegan2_only_results_page_and_readme_block(showcase, tmp_path):
    assert showcase.main(["--only-stylegan2", "--out", str(tmp_path / "x")]) == 2  # needs --stylegan2-minutes
    machine = {"cpu_model": "Test CPU", "usable_cores": 2, "simd_flags": ["avx2"], "niceness": 19}
    results = {"date": "2026-12-04 19:00 UTC", "command": "python benchmarks/showcase.py --only-stylegan2",
               "machine": machine, "software": {"keras_anime_gan": "0.1.0", "git_commit": "abc", "tensorflow": "2.21"},
               "data": {"source": "faces", "train_range": ["0.jpg", "399.jpg"],
                        "heldout_range": ["400.jpg", "599.jpg"]},
               "wall_minutes": 2.0, "cpu_minutes": 3.0, "stylegan2": _stylegan2_section(),
               "figures": {"stylegan2-samples.png": 1000, "stylegan2-style-mix.png": 1000}}
    page = showcase.render_markdown(results)
    for link in ("(stylegan2-samples.png)", "(stylegan2-style-mix.png)", "(stylegan2-truncation.png)"):
        assert link in page
    assert "SWD 80.5 (noise floor 34.7)" in page and "6,400 real images seen" in page
    assert "| 1.00 | 6,400 | 200 | 80.5 | 9.50 | 0.012 |" in page and "layers 0-2 of 6" in page
    block = "\n".join(showcase.readme_block(results))
    assert "Test CPU" in block and "227,854 + 259,329 parameters" in block and "SWD 80.5" in block
    # Added by a separate run to a full page: the README paragraph says which command and when.
    separate = _stylegan2_section(separate_run=True, command="cmd", date="d", wall_minutes=31.0)
    (paragraph,) = showcase.stylegan2_readme_lines({"stylegan2": separate})
    assert paragraph.endswith("(added by a separate run on d, 31.0 min of wall time: `cmd`).")
