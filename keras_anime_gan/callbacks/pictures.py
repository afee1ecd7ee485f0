"""Pictures of a run: a fixed latent grid after every few epochs, and the timelapse made of them."""

from __future__ import annotations

import glob
import logging
import os

import keras
import numpy as np
from PIL import Image

from ..atomic import write_atomic
from ..sampling import image_grid, latents_for_seed, render

log = logging.getLogger(__name__)


class SampleGrid(keras.callbacks.Callback):
    """After every `every` epochs, save `samples/epoch_NNNN.png`: the generator (its EMA weights when
    the GAN keeps them) on the same fixed latents, `rows` x `rows` images. Optionally also logs the
    grid to TensorBoard under `tensorboard_dir`."""

    def __init__(self, directory, rows=8, seed=0, every=1, tensorboard_dir=None):
        super().__init__()
        self.directory, self.rows, self.seed, self.every = directory, rows, seed, every
        self.tensorboard_dir = tensorboard_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        gan = self.model
        latents = latents_for_seed(self.rows * self.rows, gan.latent_dim, self.seed)
        images = render(gan.ema_generator, latents)
        grid = image_grid(images, self.rows)
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
        write_atomic(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
        if self.tensorboard_dir:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.tensorboard_dir, "samples"))
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch + 1)
            self._writer.flush()


class Timelapse(keras.callbacks.Callback):
    """At the end of training, turn `samples/epoch_*.png` into `timelapse.gif` (and `.mp4` when
    imageio with its ffmpeg plugin is installed), like the reports' training timelapses."""

    def __init__(self, samples_directory, output_path, frame_ms=250):
        super().__init__()
        self.samples_directory, self.output_path, self.frame_ms = samples_directory, output_path, frame_ms

    def on_train_end(self, logs=None):
        make_timelapse(self.samples_directory, self.output_path, self.frame_ms)


def make_timelapse(samples_directory, output_path, frame_ms=250) -> list[str]:
    frames = sorted(glob.glob(os.path.join(samples_directory, "epoch_*.png")))
    if not frames:
        return []
    images = [Image.open(frame).convert("RGB") for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 4]  # linger on the last grid
    write_atomic(
        output_path,
        lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0),
    )
    written = [output_path]
    try:
        import imageio.v2 as imageio

        video = os.path.splitext(output_path)[0] + ".mp4"
        with imageio.get_writer(video, fps=max(1, round(1000 / frame_ms)), macro_block_size=1) as writer:
            for image in images:
                writer.append_data(np.asarray(image))
        written.append(video)
    except Exception as error:  # imageio or its ffmpeg backend missing: the GIF is enough
        log.debug("no mp4 timelapse: %s", error)
    return written
