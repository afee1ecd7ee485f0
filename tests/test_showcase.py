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
    assert 0 < results["wall_minutes"] < 5 and results["cpu_minutes"] > 0

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
    page = (out / "results.md").read_text()
    assert "| *real vs real (noise floor, n=" in page and "![dcgan](versus-dcgan.png)" in page
    assert showcase.README_START in page and f"{main['images']:,} real images seen" in page
    assert "weights missing" in page or "kid" in main["final_metrics"]

    # --markdown-only renders the same page from results.json alone.
    (out / "results.md").unlink()
    assert showcase.main(["--out", str(out), "--markdown-only"]) == 0
    assert (out / "results.md").read_text() == page
