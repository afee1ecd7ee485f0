"""StyleGAN2-ADA through the real run path (`training.train`, checkpoints, export), issue 13:

- a run stopped after its first checkpoint resumes with every piece of its state as it was saved
  (networks, EMA, w_avg, path-length mean, ADA's p and sign accumulators, optimizer states,
  phase_steps, the random stream), and its counters go on from there;
- it trains on the converter's NVIDIA-layout output (`NAME-rNN.tfrecords`) directly;
- its export has the classic models' three signatures, and `truncation_psi` truncates in W.

One tiny network (8 px, 8 channels, z and w of 8) keeps it to a few traced step functions.
"""

import io
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_anime_gan import checkpoints
from keras_anime_gan.data import convert_folder
from keras_anime_gan.data import describe_source, load_dataset
from keras_anime_gan.export import export_generator
from keras_anime_gan.sampling import latents_for_seed, to_uint8
from keras_anime_gan.config import TrainConfig, resumed_config
from keras_anime_gan.training import train

Z_DIM = 8
TINY = dict(preset="tiny", channel_max=8, z_dim=Z_DIM, w_dim=8)
# Every phase due on the same steps (0, 4, 8, ...): two step functions to trace, {all} and {}.
# ADA starts at p = 0.5 and moves by batch * interval / (ada_kimg * 1000) = 8 * 4 / 1000 = 0.032.
ADA = dict(TINY, augment="ada", augment_p=0.5, ada_kimg=1.0, ada_interval=4, r1_interval=4, pl_interval=4)
P_STEP = 8 * 4 / 1000.0


def _config(out, **overrides):
    values = dict(out=str(out), model="stylegan2-ada", resolution=8, batch_size=8, epochs=2, steps_per_epoch=3,
                  synthetic_images=64, metrics="none", precision="float32", jit=False, verbose=0,
                  model_options=dict(ADA))
    values.update(overrides)
    return TrainConfig.from_json(values)


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(variable), copy=True) for variable in variables]


def _scalar(variable):
    return np.array(keras.ops.convert_to_numpy(variable), copy=True)


def gan_state(gan) -> dict:
    """Everything issue 13 says a resume restores, as NumPy arrays (lists of them per network)."""
    augmenter = gan.objective.augmenter
    return {
        "generator": _values(gan.generator.variables),
        "discriminator": _values(gan.discriminator.variables),
        "ema": _values(gan.ema_generator.variables),
        "ema_updates": _scalar(gan.ema_updates),
        "w_avg": _scalar(gan.generator.w_avg),
        "pl_mean": _scalar(gan.objective.pl_mean),
        "ada_p": _scalar(augmenter.p),
        "ada_sign_sum": _scalar(augmenter.sign_sum),
        "ada_sign_count": _scalar(augmenter.sign_count),
        "ada_rt": _scalar(augmenter.rt),
        "d_optimizer": _values(gan.d_optimizer.variables),
        "g_optimizer": _values(gan.g_optimizer.variables),
        "d_iterations": int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)),
        "g_iterations": int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations)),
        "phase_steps": _scalar(gan.phase_steps),
        "rng": _scalar(gan.rng.state),
    }


def _differing(state, reference) -> list[str]:
    """Keys whose values are not exactly equal (lists compared element by element)."""
    assert set(state) == set(reference)
    differing = []
    for key, value in reference.items():
        mine = state[key]
        if isinstance(value, list):
            same = len(mine) == len(value) and all(a.shape == b.shape and np.array_equal(a, b)
                                                    for a, b in zip(mine, value))
        else:
            same = np.array_equal(mine, value)
        if not same:
            differing.append(key)
    return differing


class ResumeProbe(keras.callbacks.Callback):
    """The GAN's state when the resumed fit begins and after each of its first two steps."""

    def __init__(self):
        super().__init__()
        self.first_epoch, self.after = None, []

    def on_train_begin(self, logs=None):
        self.begin = gan_state(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if len(self.after) < 2:
            self.after.append(gan_state(self.model))


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """A 2-epoch run (3 steps each) stopped right after its epoch-1 checkpoint is written, then resumed
    as `train.py --out OUT --resume` does; the GAN's state is snapshotted as the checkpoint is saved. Returns (run folder, state at the checkpoint, checkpoint path, first summary, probe,
    resumed summary); probe.model is the resumed GAN."""
    out = tmp_path_factory.mktemp("stylegan2") / "run"
    saved = {}
    save_checkpoint = checkpoints.save_checkpoint

    def save_and_stop(gan, directory, completed_epochs, *args, **kwargs):
        path = save_checkpoint(gan, directory, completed_epochs, *args, **kwargs)
        saved[completed_epochs] = (path, gan_state(gan))  # what the checkpoint was written from
        gan.stop_training = True  # stop after the first checkpoint
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoints, "save_checkpoint", save_and_stop)
        first = train(_config(out))
    assert list(saved) == [1]
    path, state = saved[1]
    probe = ResumeProbe()
    resumed = train(resumed_config(str(out)), resume=True, callbacks=[probe])  # train.py --out OUT --resume
    return out, state, path, first, probe, resumed


def test_resume_restores_every_piece_of_state_and_counters_go_on(resumed_run):
    out, saved, path, first, probe, resumed = resumed_run
    assert first["state"] == "stopped" and first["epochs"] == 1 and first["checkpoint"] == "epoch-0001"
    state_json = json.loads(open(os.path.join(path, "state.json")).read())
    # Steps 0, 1, 2: every phase ran at step 0 (R1 on D, path length on G, ADA's adjustment), none after.
    assert state_json["g_updates"] == state_json["d_updates"] == 4  # 3 main + 1 lazy each
    # The saved state is one where each item matters: nothing is at its initial value.
    assert int(saved["phase_steps"]) == 3 and float(saved["ema_updates"]) == 3.0
    assert abs(float(saved["ada_p"]) - 0.5) == pytest.approx(P_STEP)  # p moved once, at step 0
    assert float(saved["ada_sign_count"]) == 16.0  # signs of steps 1 and 2 (8 reals each), not yet used
    assert abs(float(saved["ada_sign_sum"])) <= 16.0 and -1.0 <= float(saved["ada_rt"]) <= 1.0
    assert float(saved["pl_mean"]) > 0 and np.abs(saved["w_avg"]).max() > 0
    assert any(not np.array_equal(a, b) for a, b in zip(saved["ema"], saved["generator"]))
    assert saved["d_iterations"] == saved["g_iterations"] == 4
    index = [variable.path for variable in probe.model.generator.variables].index(
        probe.model.generator.w_avg.path)
    np.testing.assert_array_equal(saved["ema"][index], saved["w_avg"])  # the EMA copies w_avg

    # The resumed fit began from exactly the checkpointed state, every item of it ...
    assert probe.first_epoch == 1
    not_restored = _differing(probe.begin, saved)
    assert not not_restored, f"not restored as checkpointed: {', '.join(not_restored)}"

    # ... and went on from it. Step 3: no phase due; the counters advance by one main update.
    one = probe.after[0]
    assert int(one["phase_steps"]) == 4
    assert one["g_iterations"] == one["d_iterations"] == 5
    assert float(one["ema_updates"]) == 4.0
    assert float(one["ada_sign_count"]) == 24.0 and float(one["ada_p"]) == float(saved["ada_p"])
    assert float(one["pl_mean"]) == float(saved["pl_mean"])
    # The EMA averages on with the decay of its saved count: 0.5 ** (batch / (updates * batch * 0.05)).
    decay = 0.5 ** (8.0 / (3 * 8 * 0.05))
    for variable, average, before, weight in zip(probe.model.generator.variables, one["ema"], saved["ema"],
                                                 one["generator"]):
        expected = decay * before + (1 - decay) * weight if variable.trainable else weight
        np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-7, err_msg=variable.path)
    # Step 4: every phase due again, 4 steps after the last: R1, path length and ADA's adjustment.
    two = probe.after[1]
    assert int(two["phase_steps"]) == 5
    assert two["g_iterations"] == two["d_iterations"] == 7  # + 1 main + 1 lazy
    assert float(two["ada_sign_count"]) == 0.0  # used and reset
    assert abs(float(two["ada_p"]) - float(saved["ada_p"])) == pytest.approx(P_STEP, rel=1e-5)
    assert float(two["pl_mean"]) != float(saved["pl_mean"])

    assert resumed["state"] == "complete" and resumed["epochs"] == 2 and resumed["g_updates"] == 8
    latest = json.loads((out / "checkpoints" / "latest.json").read_text())
    assert latest["checkpoint"] == "epoch-0002" and latest["epoch"] == 2
    rows = [line.split(",")[0] for line in (out / "history.csv").read_text().splitlines()[1:]]
    assert rows == ["0", "1"]


def test_trains_on_the_converters_nvidia_layout_directly(faces_dir, tmp_path):
    data = tmp_path / "nvidia"
    convert_folder(str(faces_dir), str(data), 8, format="stylegan", progress=False)
    levels = sorted(name for name in os.listdir(data) if name.endswith(".tfrecords"))
    assert len(levels) == 2 and levels[0].endswith("-r02.tfrecords") and levels[1].endswith("-r03.tfrecords")
    top = str(data / levels[1])
    # NVIDIA's layout is all a reader needs: without our dataset.json, or given the top-level file itself.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in levels:
        shutil.copy(data / name, bare / name)
    for source in (data, bare, top):
        described = describe_source(str(source))
        assert described["kind"] == "stylegan" and described["resolution"] == 8 and described["num_images"] == 40
    first = next(iter(load_dataset(str(data), 40, resolution=8, shuffle=False, flip=False))).numpy()
    for source in (bare, top):
        np.testing.assert_array_equal(
            next(iter(load_dataset(str(source), 40, resolution=8, shuffle=False, flip=False))).numpy(), first)

    # One pass over the 40 faces in batches of 8: 5 steps, each with its R1, path-length and ADA
    # phase (every 1 step: one traced step function). Augmentation is off here (the resume test has it).
    options = dict(TINY, augment="none", r1_interval=1, pl_interval=1, ada_interval=1)
    summary = train(_config(tmp_path / "run", data=str(data), epochs=1, steps_per_epoch=None, model_options=options))
    assert summary["state"] == "complete" and summary["epochs"] == 1
    assert summary["g_updates"] == 10  # 5 main + 5 path-length updates
    state = json.loads(open(os.path.join(tmp_path / "run" / "checkpoints" / "epoch-0001" / "state.json")).read())
    assert state["d_updates"] == 10  # 5 main + 5 R1 updates
    generator = keras.models.load_model(tmp_path / "run" / "generator.keras")
    images = generator(np.zeros((2, Z_DIM), np.float32))
    assert images.shape == (2, 8, 8, 3) and np.isfinite(images.numpy()).all()


def _generate(loaded, count, seed, psi, signature="generate"):
    outputs = loaded.signatures[signature](num_images=tf.constant(count, tf.int32), seed=tf.constant(seed, tf.int64),
                                           truncation_psi=tf.constant(psi, tf.float32))
    return next(iter(outputs.values())).numpy()


def _max_difference(a, b):
    return int(np.abs(np.asarray(a, np.int32) - np.asarray(b, np.int32)).max())


def test_export_has_the_three_signatures_and_truncates_in_w(resumed_run, tmp_path):
    out, _, _, _, probe, _ = resumed_run
    gan = probe.model  # the trained GAN that wrote out/generator.keras
    path = export_generator(str(out), str(tmp_path / "saved_models"), "faces", max_images=8)  # `keras-anime-gan export OUT`
    loaded = tf.saved_model.load(path)

    # (a) The classic models' signatures, inputs and outputs.
    assert set(loaded.signatures) == {"serving_default", "generate", "generate_png"}
    scalars = {"num_images": tf.TensorSpec([], tf.int32, "num_images"), "seed": tf.TensorSpec([], tf.int64, "seed"),
               "truncation_psi": tf.TensorSpec([], tf.float32, "truncation_psi")}
    images_spec = {"images": tf.TensorSpec([None, 8, 8, 3], tf.uint8, "images")}
    assert loaded.signatures["serving_default"].structured_input_signature == (
        (), {"latent": tf.TensorSpec([None, Z_DIM], tf.float32, "latent")})
    assert loaded.signatures["serving_default"].structured_outputs == images_spec
    for name, outputs in (("generate", images_spec), ("generate_png", {"png_bytes": tf.TensorSpec([None], tf.string,
                                                                                                 "png_bytes")})):
        assert loaded.signatures[name].structured_input_signature == ((), scalars)
        assert loaded.signatures[name].structured_outputs == outputs
    ema = gan.ema_generator

    # (c) psi = 1: the same faces as gan.generate for the same seed, in every signature.
    latents = latents_for_seed(5, Z_DIM, 3)
    python = gan.generate(5, seed=3)
    full = _generate(loaded, 5, 3, 1.0)
    assert full.dtype == np.uint8 and full.shape == (5, 8, 8, 3)
    assert _max_difference(full, python) <= 1
    assert _max_difference(loaded.signatures["serving_default"](latent=tf.constant(latents))["images"].numpy(),
                           python) <= 1
    pngs = _generate(loaded, 5, 3, 1.0, "generate_png")
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(io.BytesIO(png))) for png in pngs]),
                                  full)
    assert _max_difference(full[0], full[1]) > 8  # different seeds, different faces

    # (b) psi = 0: every latent becomes w_avg, and the noise is constant: one face for every seed.
    collapsed = np.concatenate([_generate(loaded, 4, 3, 0.0), _generate(loaded, 4, 11, 0.0)])
    for image in collapsed[1:]:
        np.testing.assert_array_equal(image, collapsed[0])
    w_avg_ws = tf.tile(ema.w_avg[None, None], [1, ema.num_ws, 1])
    assert _max_difference(collapsed[0], to_uint8(ema.synthesis(w_avg_ws, noise_mode="const").numpy()[0])) <= 1

    # (d) 0 < psi < 1 pulls w toward w_avg: exactly the generator's truncation in W. Scaling z instead
    # would change nothing (the mapping normalises z's second moment), so the faces would stay at psi = 1's.
    half = _generate(loaded, 5, 3, 0.5)
    in_w = ema.synthesis(ema.truncate(ema.mapping(latents), 0.5), noise_mode="const")
    assert _max_difference(half, to_uint8(in_w.numpy())) <= 1
    in_z = to_uint8(ema(latents * 0.5, training=False).numpy())
    assert _max_difference(in_z, full) <= 1  # why a truncation in Z would be caught
    assert _max_difference(half, in_z) > 8
    assert _max_difference(half, gan.generate(5, seed=3, truncation=0.5)) <= 1
