"""What the studio draws with: one engine per source, opened by `open_source`, and the projection
jobs that run beside it.

- `LocalEngine` (`local.py`): a Keras generator (a run folder, a .keras file, an NVIDIA .pkl): every
  control, drawn by `edit.draw` with functions compiled once (`edit.Renderer`).
- `SavedModelEngine` (`served.py`): an exported version folder (`keras-anime-gan export`): its
  `serving_default` (latent -> images) and, for psi, its `generate` signature (seed, psi -> images).
- `RestEngine` (`served.py`): a TF Serving model URL (`http://HOST:8501/v1/models/NAME`), through the
  REST predict API (`keras_anime_gan.rest_client` builds the requests and decodes the answers).

The last two see only z -> images: seeds, the seed grid and the interpolation plane (in z) work;
psi works on seed pictures (the model's own truncation, through `generate`); the controls that need
the networks' insides (style mixing, noise, cutoff, directions, projection) are disabled with the
reason (`Engine.disabled`, `interface.py`).
"""

from __future__ import annotations

import os
import threading
import time

from .. import edit
from ..errors import UserError
from .interface import INSIDES, Engine, checked_int
from .local import LocalEngine
from .served import RestEngine, SavedModelEngine


def open_source(source) -> Engine:
    """The engine for anything the studio opens: a TF Serving URL, a SavedModel version folder (or a
    model folder of versions: the highest), a run folder, a .keras file or an NVIDIA .pkl."""
    text = os.fspath(source)
    if text.startswith(("http://", "https://")):
        return RestEngine(text)
    if os.path.isdir(text):
        versions = sorted((int(name) for name in os.listdir(text) if name.isdigit()
                           and os.path.isfile(os.path.join(text, name, "saved_model.pb"))), reverse=True)
        if os.path.isfile(os.path.join(text, "saved_model.pb")):
            return SavedModelEngine(text)
        if versions and not os.path.isfile(os.path.join(text, "config.json")):
            return SavedModelEngine(os.path.join(text, str(versions[0])))
    if text.endswith(".pkl"):
        generator, discriminator = edit.networks(text)
        return LocalEngine(text, generator, discriminator_loader=lambda: discriminator)
    if os.path.isdir(text):
        return LocalEngine(text, edit.generator_of(text), discriminator_loader=lambda: edit.run_discriminator(text))
    return LocalEngine(text, edit.generator_of(text))


class ProjectionJobs:
    """One projection at a time, in a worker thread; the page polls `status(id)`."""

    def __init__(self, engine):
        self.engine = engine
        self.jobs = {}
        self.counter = 0
        self.lock = threading.Lock()

    def start(self, image_bytes, space, steps) -> str:
        if not isinstance(self.engine, LocalEngine):
            raise UserError("projection " + INSIDES.format(what=self.engine.what))
        steps = checked_int(steps, "steps", 1, 5000)
        spaces = ["w", "w+"] if self.engine.style else ["z"]
        if space not in (None, *spaces):
            raise UserError(f"project in {' or '.join(spaces)} here, not {space!r}")
        target = edit.target_image(bytes(image_bytes), self.engine.resolution)  # a bad image fails here, at once
        with self.lock:
            for job in self.jobs.values():
                job["stop"] = True  # a new upload replaces the running projection
            self.counter += 1
            key = f"p{self.counter}"
            job = {"id": key, "step": 0, "steps": steps, "loss": None, "preview": None, "done": False, "error": None,
                   "stop": False, "space": space, "started": time.time(), "target": target}
            self.jobs = {k: v for k, v in self.jobs.items() if not v["done"] or k in list(self.jobs)[-4:]}
            self.jobs[key] = job

        def progress(step, total, loss, preview):
            job.update(step=step, steps=total, loss=float(loss), preview=preview)

        def work():
            try:
                result, _ = self.engine.project(image_bytes, space, steps, progress, lambda: job["stop"])
                self.engine.keep_projection(key, result.latent)
                job.update(preview=result.image, psnr=result.psnr, step=result.steps, seconds=result.seconds)
            except UserError as error:
                job["error"] = str(error)
            except Exception as error:  # noqa: BLE001 - reported to the page, the server keeps serving
                job["error"] = f"projection failed: {type(error).__name__}: {error}"
            finally:
                job["done"] = True

        threading.Thread(target=work, name=f"projection-{key}", daemon=True).start()
        return key

    def status(self, key):
        job = self.jobs.get(key)
        if job is None:
            raise UserError(f"no projection {key!r}")
        return job

    def stop(self, key):
        self.status(key)["stop"] = True
