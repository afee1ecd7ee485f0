"""NVIDIA StyleGAN2-ADA snapshots as run folders and back: `import-nvidia`, `load_nvidia_pickle`,
`train --init-from` and `export-nvidia`, checked against NVIDIA's own outputs for the fixtures."""

import json
import os
import pickle

import keras
import numpy as np
import pytest

from conftest import NVIDIA_FIXTURES, run_cli
from keras_anime_gan.nvidia import read_snapshot

TINY = NVIDIA_FIXTURES / "tiny32.pkl"


@pytest.fixture(scope="module")
def fixture():
    if not TINY.is_file():
        pytest.skip(f"NVIDIA StyleGAN2-ADA fixtures not found at {NVIDIA_FIXTURES} (set NVIDIA_STYLEGAN2_ADA_DIR)")
    return read_snapshot(TINY), dict(np.load(NVIDIA_FIXTURES / "tiny32.npz"))


@pytest.fixture(scope="module")
def imported(fixture, tmp_path_factory):
    out = tmp_path_factory.mktemp("nvidia") / "imported"
    result = run_cli("import-nvidia", TINY, "--out", out)
    return out, result


def _nhwc(images):
    return np.transpose(images, (0, 2, 3, 1))


def test_import_makes_a_run_folder_that_says_what_it_found_and_left_out(imported, fixture):
    out, result = imported
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["resolution"], summary["z_dim"], summary["w_dim"], summary["mapping_layers"]) == (32, 64, 64, 2)
    assert (summary["channel_base"], summary["channel_max"]) == (1024, 64)
    assert summary["parameters"] == {"G": 263_987, "D": 288_993, "G_ema": 263_987}  # NVIDIA's own counts
    assert set(summary["not_imported"]) == {"augment_pipe", "training_set_kwargs"}
    assert "not imported: augment_pipe" in result.stderr and "p 0.230" in result.stderr
    assert sorted(name for name in os.listdir(out) if not name.startswith(".")) == [
        "checkpoints", "config.json", "generator.keras", "status.json"]
    assert json.loads((out / "status.json").read_text())["state"] == "imported"
    # generator.keras is G_ema, and computes NVIDIA's images (noise const, float32).
    _, outputs = fixture
    from keras_anime_gan.loading import load_generator

    generator = load_generator(out / "generator.keras")
    images = np.asarray(generator(outputs["z"]))
    assert np.abs(images - _nhwc(outputs["img"])).max() <= 2e-3


def test_an_imported_run_is_generated_from_and_trained_on_like_any_run(imported, tmp_path, capsys):
    import shutil

    out = tmp_path / "imported"
    shutil.copytree(imported[0], out)  # trained below: the other tests read the imported weights
    generated = run_cli("generate", out, "--seeds", "0-1", "--truncation", "0.5", "--truncation-cutoff", "4",
                        "--out", tmp_path / "pictures", "--quiet")
    assert json.loads(generated.stdout.strip().splitlines()[-1])["images"] == 2
    from keras_anime_gan.config import resolve_config
    from keras_anime_gan.training import train

    # What `train --out OUT --resume ...` does; path length off and no augmentation, for time only.
    config = resolve_config({"out": str(out), "epochs": 1, "steps_per_epoch": 1, "batch_size": 8, "metrics": "none",
                             "jit": False, "verbose": 0, "model_options": {"pl_weight": 0.0, "augment": "none"}},
                            resume=True)
    assert train(config, resume=True)["state"] == "complete"
    assert "training the imported networks" in capsys.readouterr().out


def test_load_nvidia_pickle_is_a_stylegan2_ada_model_with_g_d_and_g_ema(fixture):
    import keras_anime_gan

    _, outputs = fixture
    gan = keras_anime_gan.load_nvidia_pickle(TINY)
    assert type(gan).__name__ == "StyleGAN2ADA" and gan.generator.resolution == 32
    g_ema, g = np.asarray(gan.ema_generator(outputs["z"])), np.asarray(gan.generator(outputs["z"]))
    assert np.abs(g_ema - _nhwc(outputs["img"])).max() <= 2e-3
    assert np.abs(g - _nhwc(outputs["img_G"])).max() <= 2e-3
    logits = np.asarray(gan.discriminator(_nhwc(outputs["x"])))
    np.testing.assert_allclose(logits, outputs["d_logits_real"], rtol=1e-3, atol=1e-5)
    gan.compile(jit_compile=False)
    assert gan.generate(2, seed=0).shape == (2, 32, 32, 3)


def test_export_nvidia_gives_back_every_array_of_the_snapshot(imported, fixture, tmp_path):
    out, _ = imported
    snapshot, _ = fixture
    result = run_cli("export-nvidia", out, tmp_path / "out.npz")
    assert json.loads(result.stdout.strip().splitlines()[-1])["arrays"] == 75 + 37 + 75
    arrays = np.load(tmp_path / "out.npz")
    for name in ("G", "D", "G_ema"):
        state = snapshot.networks[name].state_dict()
        keys = [key.split("/", 1)[1] for key in arrays.files if key.startswith(f"{name}/")]
        assert keys == list(state), name  # NVIDIA's keys, in NVIDIA's order
        for key, value in state.items():
            exported = arrays[f"{name}/{key}"]
            assert exported.dtype == value.dtype and exported.shape == value.shape
            np.testing.assert_array_equal(exported, value, err_msg=f"{name}/{key}")
    kwargs = json.loads(str(arrays["init_kwargs"]))
    assert kwargs["G"]["z_dim"] == 64 and kwargs["D"]["channel_base"] == 1024


def test_init_from_starts_a_new_run_from_the_networks_with_fresh_training_state(fixture, faces_dir, tmp_path):
    from keras_anime_gan.config import resolve_config
    from keras_anime_gan.data import convert_folder
    from keras_anime_gan.errors import UserError
    from keras_anime_gan.nvidia import load_nvidia_pickle
    from keras_anime_gan.training import train

    data = tmp_path / "data"
    convert_folder(str(faces_dir), str(data), 32, progress=False)
    expected = load_nvidia_pickle(TINY)

    class AtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            gan = self.model
            self.same = all(np.array_equal(a, b) for a, b in zip(gan.generator.get_weights(), expected.generator.get_weights()))
            self.same &= all(np.array_equal(a, b) for a, b in zip(gan.discriminator.get_weights(),
                                                                   expected.discriminator.get_weights()))
            self.same &= all(np.array_equal(np.asarray(a), np.asarray(b))
                             for a, b in zip(gan.ema_generator.variables, expected.ema_generator.variables))
            self.fresh = (float(gan.objective.augmenter.p.numpy()), int(gan.g_optimizer.iterations.numpy()),
                          int(gan.d_optimizer.iterations.numpy()))

    probe = AtStart()
    config = resolve_config({"data": str(data), "init_from": str(TINY), "epochs": 1, "steps_per_epoch": 1,
                             "batch_size": 8, "metrics": "none", "jit": False, "verbose": 0, "out": str(tmp_path / "run"),
                             "model_options": {"pl_weight": 0.0}})  # path length off, for time only
    assert (config.model, config.resolution, config.model_options["z_dim"]) == ("stylegan2-ada", 32, 64)
    assert train(config, callbacks=[probe])["state"] == "complete"
    assert probe.same and probe.fresh == (0.0, 0, 0)  # G, D, G_ema copied; optimizers and ADA's p fresh
    bigger = tmp_path / "data64"
    convert_folder(str(faces_dir), str(bigger), 64, progress=False)
    with pytest.raises(UserError, match="holds 64 px images and the networks of --init-from .* are 32 px"):
        resolve_config({"data": str(bigger), "init_from": str(TINY), "out": str(tmp_path / "other")})


def test_a_hostile_pickle_is_refused_by_the_command_with_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(pickle.dumps({"G": Evil()}))
    for command in (["import-nvidia", path, "--out", tmp_path / "run"], ["generate", path, "--out", tmp_path / "x"]):
        result = run_cli(*command, check=False)
        errors = [line for line in result.stderr.splitlines() if line.startswith(("error", "Traceback"))]
        assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
        assert "refusing NVIDIA pickle: it references" in errors[0] and "which a network file never needs" in errors[0]
        assert not marker.exists()


def test_a_failed_import_leaves_no_run_folder_and_an_empty_one_as_it_was(fixture, tmp_path, monkeypatch):
    import errno

    from keras_anime_gan import checkpoints
    from keras_anime_gan.nvidia_runs import import_snapshot

    def full_disk(model, path):  # the last large file written: everything before it is in place
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(checkpoints, "save_generator", full_disk)
    new = tmp_path / "new"
    with pytest.raises(OSError) as failed:
        import_snapshot(TINY, new)
    assert failed.value.errno == errno.ENOSPC
    assert not new.exists()  # made by the import, removed by it
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError):
        import_snapshot(TINY, empty)
    assert os.listdir(empty) == []  # as it was: the next import will take it, not call it "not empty"


def test_the_summary_of_a_snapshot_is_one_line_whatever_its_paths(fixture):
    import copy

    from keras_anime_gan.nvidia_runs import describe_snapshot

    snapshot = copy.copy(fixture[0])
    snapshot.training_set_kwargs = {"path": "/data/faces\nerror: injected" + "x" * 10_000}
    snapshot.other_keys = ["progress\nline", *[f"key{i}" for i in range(100)]]
    left_out = describe_snapshot(snapshot)["not_imported"]
    assert all("\n" not in key and "\n" not in text and len(text) < 400 for key, text in left_out.items())
    assert left_out["81 more keys"] == "not networks" and "progress\\nline" in left_out
