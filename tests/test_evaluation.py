"""evaluation.py: a generator scored against real images, as `keras-anime-gan evaluate` does."""

import json

import pytest

from keras_anime_gan.errors import UserError


def _generator_and_faces(tmp_path):
    import keras
    from PIL import Image

    from keras_anime_gan.data import synthetic_faces

    faces = synthetic_faces(12, 16, seed=0)
    folder = tmp_path / "real"
    folder.mkdir()
    for index, face in enumerate(faces):
        Image.fromarray(face).save(folder / f"{index}.png")
    z = keras.Input((4,))
    generator = keras.Model(z, keras.layers.Reshape((16, 16, 3))(keras.layers.Dense(768, activation="tanh")(z)))
    generator.save(tmp_path / "g.keras")
    return tmp_path / "g.keras", folder


def test_evaluate_is_a_library_function_that_records_its_result(tmp_path):
    """What `keras-anime-gan evaluate` does, from Python: a .keras generator against a real folder."""
    from keras_anime_gan.evaluation import evaluate

    generator, folder = _generator_and_faces(tmp_path)
    record = evaluate(str(generator), str(folder), ["swd", "color"], num_images=10)
    assert record["metrics"] == ["swd10", "color10"] and record["num_images"] == 10
    assert record["results"]["swd"] > 0 and 0 < record["results"]["color"]
    saved = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert saved[-1]["results"] == record["results"]


def test_bad_inputs_are_one_clear_error(tmp_path):
    from keras_anime_gan.data import convert_folder
    from keras_anime_gan.evaluation import evaluate

    generator, folder = _generator_and_faces(tmp_path)
    with pytest.raises(UserError, match="missing.keras does not exist"):
        evaluate(str(generator), str(folder), ["kid"], num_images=4, extractor=str(tmp_path / "missing.keras"))
    with pytest.raises(UserError, match="--metrics takes swd, color, kid, fid, got ssim"):
        evaluate(str(generator), str(folder), ["ssim"], num_images=4)
    data = tmp_path / "data"
    convert_folder(str(folder), str(data), 16, progress=False)
    shard = next(data.glob("*.tfrecords"))
    damaged = bytearray(shard.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    shard.write_bytes(bytes(damaged))
    with pytest.raises(UserError, match=f"is damaged \\({shard.name}"):  # TensorFlow's message names no file
        evaluate(str(generator), str(data), ["swd"], num_images=8)
