"""SampleGrid and the timelapse made of its grids."""

import numpy as np
from PIL import Image

from keras_anime_gan import create_gan
from keras_anime_gan.callbacks.pictures import SampleGrid, make_timelapse


def test_a_sample_grid_every_few_epochs_draws_the_same_latents(tmp_path):
    gan = create_gan("dcgan", 32, 8, width=4, seed=0)
    grid = SampleGrid(str(tmp_path / "samples"), rows=2, every=2)
    grid.set_model(gan)
    for epoch in range(4):
        grid.on_epoch_end(epoch)
    assert sorted(path.name for path in (tmp_path / "samples").iterdir()) == ["epoch_0002.png", "epoch_0004.png"]
    first = np.asarray(Image.open(tmp_path / "samples" / "epoch_0002.png"))
    assert first.shape == (64, 64, 3)  # 2 x 2 images of 32 px
    assert np.array_equal(first, np.asarray(Image.open(tmp_path / "samples" / "epoch_0004.png")))  # fixed latents


def test_a_timelapse_has_a_frame_per_grid_in_epoch_order(tmp_path):
    for epoch, value in ((2, 200), (1, 0), (3, 100)):
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(tmp_path / f"epoch_{epoch:04d}.png")
    written = make_timelapse(str(tmp_path), str(tmp_path / "timelapse.gif"), frame_ms=100)
    assert written[0] == str(tmp_path / "timelapse.gif")
    gif = Image.open(tmp_path / "timelapse.gif")
    assert gif.n_frames == 3
    firsts = []
    for index in range(3):
        gif.seek(index)
        firsts.append(gif.convert("RGB").getpixel((0, 0))[0])
    assert firsts == [0, 200, 100]
    assert make_timelapse(str(tmp_path / "none"), str(tmp_path / "none.gif")) == []
