"""What the web app calls on an engine (`Engine`), and the checks of the page's values that every
engine shares: one clear UserError for a value of the wrong kind or out of range."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

INSIDES = "needs the networks' insides, which a {what} does not expose (it maps z to images only): open a run " \
          "folder, a .keras file or an NVIDIA .pkl instead"
MAX_GRID = 64
DIRECTION_K_MAX = 32


def checked_int(value, name, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise UserError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise UserError(f"{name} must be in {low}..{high}, got {value}")
    return value


def checked_float(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class Engine:
    """The interface the web app calls; `state` is the page's JSON (see `LocalEngine.edit_of`)."""

    kind = "engine"
    style = False
    label = ""

    def info(self) -> dict:
        raise NotImplementedError

    def disabled(self) -> dict:
        return {}

    def render(self, state) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def grid(self, seeds, psi=1.0) -> np.ndarray:
        raise NotImplementedError

    def command(self, state) -> str | None:
        return None

    def _seed_of(self, state):
        return checked_int(state.get("seed", 0), "seed", 0, 2**31 - 1)

    def _plane_of(self, state):
        seeds = [checked_int(seed, "plane seed", 0, 2**31 - 1) for seed in state.get("plane_seeds") or []]
        if state.get("base") == "plane":
            if not 2 <= len(seeds) <= 4:
                raise UserError(f"the interpolation plane needs 2 to 4 chosen seeds, got {len(seeds)}")
            u, v = (state.get("plane") or [0.0, 0.0])[:2]
            return seeds, (checked_float(u, "plane u"), checked_float(v, "plane v"))
        return (), (0.0, 0.0)
