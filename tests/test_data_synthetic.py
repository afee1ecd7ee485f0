import numpy as np
import pytest

from keras_anime_gan.data import synthetic_faces


def test_shape_dtype_and_determinism():
    faces = synthetic_faces(16, 32, seed=5)
    assert faces.shape == (16, 32, 32, 3) and faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, synthetic_faces(16, 32, seed=5))
    assert not np.array_equal(faces, synthetic_faces(16, 32, seed=6))
    assert synthetic_faces(0, 32).shape == (0, 32, 32, 3)


def test_faces_vary_enough_to_learn_and_to_show_collapse():
    faces = synthetic_faces(64, 32, seed=0).astype(np.float32)
    flat = faces.reshape(64, -1)
    distances = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1))
    off_diagonal = distances[~np.eye(64, dtype=bool)]
    assert off_diagonal.min() > 5.0  # no two faces alike
    # Structure shared by all faces: each is nearly mirror-symmetric, far more than two faces are alike.
    mirror_gap = np.abs(faces - faces[:, :, ::-1]).mean()
    assert mirror_gap < 0.5 * np.abs(faces[1:] - faces[:-1]).mean()
    hair_top = faces[:, 6, 16]  # top of the head shows the hair colour
    assert len({tuple((c // 32).astype(int)) for c in hair_top}) >= 6


@pytest.mark.parametrize("bad", [dict(num_images=-1), dict(num_images=2, resolution=4)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        synthetic_faces(**bad)
