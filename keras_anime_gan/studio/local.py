"""`LocalEngine`: a Keras generator in the studio's process (a run folder, a .keras file, an NVIDIA
.pkl), with every control: drawn by `edit.draw` with functions compiled once (`edit.Renderer`),
its directions found once per setting, projection in a worker thread, and the `explore` command
line of each picture."""

from __future__ import annotations

import dataclasses
import io
import json
import shlex
import threading

import numpy as np

from .. import edit
from ..errors import UserError
from ..sampling import image_size, latent_width
from .interface import DIRECTION_K_MAX, Engine, checked_float, checked_int


class LocalEngine(Engine):
    """A Keras generator in this process (and its discriminator for projection, when the source has one)."""

    def __init__(self, source, generator, discriminator_loader=None, label=None):
        self.source = source
        self.generator = generator
        self.style = edit.is_style(generator)
        self.kind = "stylegan2" if self.style else "dcgan-family"
        self.label = label or str(source)
        self.renderer = edit.renderer_for(generator)
        self.resolution = image_size(generator)
        self.latent_dim = latent_width(generator)
        self._discriminator_loader = discriminator_loader
        self._discriminator = None
        self._directions = {}
        self._lock = threading.Lock()
        self.projections = {}  # id -> latent, the newest kept
        self._warm_up()

    def _warm_up(self):
        """Trace the compiled functions now, not on the first click."""
        edit.draw(self.generator, edit.Edit(seed=0), self.renderer)
        if self.style:
            for mode in ("random", "none"):
                edit.draw(self.generator, edit.Edit(seed=0, noise_mode=mode), self.renderer)

    def info(self):
        info = {"kind": self.kind, "label": self.label, "resolution": self.resolution, "latent_dim": self.latent_dim,
                "style": self.style, "insides": True, "methods": list(edit.METHODS) if self.style else ["ganspace"],
                "spaces": ["w", "w+"] if self.style else ["z"], "disabled": self.disabled()}
        if self.style:
            info.update(num_ws=self.generator.num_ws, w_dim=self.generator.w_dim,
                        groups=edit.style_groups(self.generator))
        return info

    def disabled(self):
        if self.style:
            return {}
        why = ("belongs to StyleGAN generators (per-layer styles and noise inputs); this is a DCGAN-family z -> image "
               "model")
        return {"cutoff": why, "noise": why, "mixing": why, "sefa": "SeFa factorises style affine weights: " + why}

    # -- settings -> picture

    def directions(self, method, layers, k) -> edit.Directions:
        k = checked_int(k, "number of directions", 1, min(DIRECTION_K_MAX, self.generator.w_dim if self.style
                                                   else self.latent_dim))
        layers = None if layers in (None, "all") else layers
        key = (method, json.dumps(layers), k)
        with self._lock:
            if key not in self._directions:
                self._directions[key] = edit.find_directions(self.generator, method, k, layers)
            return self._directions[key]

    def edit_of(self, state) -> edit.Edit:
        """The page's state -> an `edit.Edit`. state: {seed, base: "seed" | "plane" | "projection",
        plane_seeds, plane: [u, v], projection: id, psi, cutoff, noise, mix: {on, seed, crossover},
        directions: {method, layers, k, amounts: {index: amount}}}."""
        seeds, plane = self._plane_of(state)
        latent = None
        if state.get("base") == "projection":
            latent = self.projections.get(str(state.get("projection")))
            if latent is None:
                raise UserError("that projection is gone (the studio keeps the newest 16): project the image again")
        psi = checked_float(state.get("psi", 1.0), "psi")
        cutoff = state.get("cutoff")
        cutoff = None if cutoff is None else checked_int(cutoff, "cutoff", 0)
        for name in ("mix", "directions"):
            if not isinstance(state.get(name) or {}, dict):
                raise UserError(f"{name} must be an object, got {state.get(name)!r}")
        mix = state.get("mix") or {}
        mix_seed = checked_int(mix.get("seed", 0), "mixing seed", 0, 2**31 - 1) if mix.get("on") else None
        crossover = mix.get("crossover", "coarse")
        if mix_seed is not None and not self.style:
            edit.require_style(self.generator, "style mixing")
        found, amounts, layers = None, {}, None
        spec = state.get("directions") or {}
        amounts_given = spec.get("amounts") or {}
        if not isinstance(amounts_given, dict):
            raise UserError("direction amounts must be an object {index: amount}")
        raw = {}
        for index, value in amounts_given.items():
            if not str(index).isdigit():
                raise UserError(f"direction indices must be integers, got {index!r}")
            raw[int(index)] = checked_float(value, "direction amount")
        if spec.get("method") and any(value != 0 for value in raw.values()):
            layers = spec.get("layers") or "all"
            found = self.directions(spec["method"], layers, spec.get("k", 8))
            amounts = {index: value for index, value in raw.items() if value != 0}
        noise = state.get("noise", "const")
        return edit.Edit(seed=self._seed_of(state), latent=latent, plane_seeds=tuple(seeds), plane=plane, psi=psi,
                         cutoff=cutoff, noise_mode=noise, mix_seed=mix_seed, crossover=crossover, directions=found,
                         amounts=amounts, direction_layers=None if layers in (None, "all") else layers)

    def render(self, state):
        settings = self.edit_of(state)
        latent = edit.edited_latent(self.generator, settings, self.renderer)
        image = edit.draw_latents(self.generator, latent[None], settings.noise_mode, settings.noise_seed(),
                                  self.renderer)[0]
        return image, latent

    def grid(self, seeds, psi=1.0):
        latents = [edit.edited_latent(self.generator, edit.Edit(seed=seed, psi=psi), self.renderer) for seed in seeds]
        return edit.draw_latents(self.generator, np.stack(latents), renderer=self.renderer)

    def walk_gif(self, state, index, frames=12) -> bytes:
        settings = self.edit_of(state)
        spec = state.get("directions") or {}
        if not spec.get("method"):
            raise UserError("pick a direction method first (sefa or ganspace)")
        if settings.directions is None:
            layers = spec.get("layers") or "all"
            settings = dataclasses.replace(settings, directions=self.directions(spec["method"], layers,
                                                                                spec.get("k", 8)),
                                           direction_layers=None if layers == "all" else layers)
        index = checked_int(index, "direction", 0, len(settings.directions.vectors) - 1)
        latents = edit.walk_latents(self.generator, settings, index, frames=frames, renderer=self.renderer)
        images = edit.draw_latents(self.generator, latents, settings.noise_mode, settings.noise_seed(), self.renderer)
        return _gif_bytes(images)

    def plane_gif(self, state, frames_per_edge=8) -> bytes:
        seeds = state.get("plane_seeds") or []
        if not 2 <= len(seeds) <= 4:
            raise UserError("choose 2 to 4 seeds for the interpolation plane first (click + on the seed grid)")
        corners = {2: [(0, 0), (1, 0)], 3: [(0, 0), (1, 0), (0, 1)], 4: [(0, 0), (1, 0), (1, 1), (0, 1)]}[len(seeds)]
        path = corners + [corners[0]]
        points = [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for a, b in zip(path[:-1], path[1:])
                  for t in np.linspace(0, 1, frames_per_edge, endpoint=False)]
        latents, settings = [], None
        for u, v in points:
            settings = self.edit_of({**state, "base": "plane", "plane": [u, v]})
            latents.append(edit.edited_latent(self.generator, settings, self.renderer))
        images = edit.draw_latents(self.generator, np.stack(latents), settings.noise_mode, settings.noise_seed(),
                                   self.renderer)
        return _gif_bytes(images)

    def command(self, state):
        """`keras-anime-gan explore SOURCE --kind directions ...` whose STEM-picture.png is this picture
        (a plane or projection base: the downloaded latent, which holds every setting, stands in)."""
        settings = self.edit_of(state)
        spec = state.get("directions") or {}
        method = spec.get("method") or ("sefa" if self.style else "ganspace")
        layers = spec.get("layers") or "all"
        k = checked_int(spec.get("k", 8), "number of directions", 1)
        words = ["keras-anime-gan", "explore", str(self.source), "--kind", "directions", "--direction-method", method]
        if self.style and layers != "all":
            words += ["--layers", layers if isinstance(layers, str) else ",".join(map(str, layers))]
        words += ["--num-directions", str(k)]
        if settings.noise_mode != "const":
            words += ["--noise-mode", settings.noise_mode]
        if settings.latent is not None or settings.plane_seeds:
            words += ["--latent", "studio-latent.npy"]  # the page's latent download
            if settings.noise_mode == "random":
                words += ["--seed", str(settings.seed)]  # the random noise's seed
        else:
            words += ["--seed", str(settings.seed)]
            if settings.psi != 1.0:
                words += ["--truncation", f"{settings.psi:g}"]
            if settings.cutoff is not None and settings.psi != 1.0:
                words += ["--cutoff", str(settings.cutoff)]
            if settings.mix_seed is not None:
                crossover = settings.crossover
                words += ["--mix-seed", str(settings.mix_seed), "--crossover",
                          crossover if isinstance(crossover, str) else ",".join(map(str, crossover))]
            if settings.amounts:
                pairs = sorted(settings.amounts.items())
                words += ["--edit", ",".join(f"{index}={amount:g}" for index, amount in pairs)]
        words += ["--out", "directions.png"]
        return " ".join(shlex.quote(word) for word in words)

    # -- projection

    def discriminator(self):
        if self._discriminator is None and self._discriminator_loader is not None:
            self._discriminator = self._discriminator_loader()
            self._discriminator_loader = None
        return self._discriminator

    def project(self, image_bytes, space, steps, progress, stop):
        """Project in a worker thread: progress(step, steps, loss, preview uint8); stop() -> True ends it."""
        space = space or ("w" if self.style else "z")
        target = edit.target_image(bytes(image_bytes), self.resolution)
        discriminator = self.discriminator()

        def callback(step, total, loss, latent):
            preview = edit.draw_latents(self.generator, latent[None], renderer=self.renderer)[0]
            progress(step, total, loss, preview)
            return stop()

        return edit.project(self.generator, target, steps=steps, space=space, discriminator=discriminator,
                            callback=callback), target

    def keep_projection(self, key, latent):
        self.projections[key] = latent
        while len(self.projections) > 16:
            self.projections.pop(next(iter(self.projections)))


def _gif_bytes(images) -> bytes:
    buffer = io.BytesIO()
    edit.write_gif(images, buffer)
    return buffer.getvalue()
