"""MetricCallback: the real images it takes."""

import numpy as np
import pytest

from keras_anime_gan.callbacks.metric import MetricCallback
from keras_anime_gan.sampling import to_uint8


def test_the_metric_callback_takes_uint8_or_signed_float_images_and_refuses_others():
    faces = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    pixels = to_uint8(faces)
    for images in (pixels, faces):
        callback = MetricCallback(images, ("swd",))
        assert callback.real.dtype == np.uint8 and np.array_equal(callback.real, pixels)
    unit = (faces + 1) / 2  # [0, 1] floats: ambiguous, refused
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MetricCallback(unit, ("swd",))
    with pytest.raises(ValueError, match="255"):
        MetricCallback(pixels.astype(np.float32), ("swd",))  # 0..255 floats
