"""`synthetic_faces`: procedural anime-style faces, the embedded default dataset (no download).

Each face varies in background, hair colour, hair length and fringe, skin tone, face and chin
shape, eye colour/size/spacing/height, mouth and blush, so a GAN has structure to learn and
mode collapse (many identical faces) is visible. Drawn at twice the size and box-averaged down
for smooth edges. Vectorised over the batch with NumPy.
"""

from __future__ import annotations

import numpy as np

HAIR_COLOURS = np.array(
    [
        (30, 28, 40), (95, 60, 40), (235, 205, 120), (240, 150, 180), (90, 140, 230),
        (200, 200, 215), (200, 60, 55), (140, 90, 190), (80, 170, 120), (250, 140, 60),
    ],
    dtype=np.float32,
)
SKIN_TONES = np.array([(255, 228, 210), (250, 215, 185), (235, 190, 160), (255, 240, 232)], dtype=np.float32)
EYE_COLOURS = np.array(
    [(60, 110, 200), (150, 70, 40), (60, 160, 90), (190, 50, 70), (140, 70, 190), (220, 160, 40), (40, 40, 60)],
    dtype=np.float32,
)
_CHUNK = 128


def synthetic_faces(num_images: int, resolution: int = 64, seed: int = 0) -> np.ndarray:
    """`num_images` faces as a uint8 array (N, resolution, resolution, 3); same seed, same faces."""
    if num_images < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    if resolution < 8:
        raise ValueError(f"resolution must be >= 8, got {resolution}")
    rng = np.random.default_rng(seed)
    params = _sample_parameters(rng, num_images)
    out = np.empty((num_images, resolution, resolution, 3), np.uint8)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        chunk = {key: value[start:stop] for key, value in params.items()}
        out[start:stop] = _draw(chunk, resolution)
    return out


def _sample_parameters(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    u = lambda low, high: rng.uniform(low, high, n).astype(np.float32)  # noqa: E731
    hue = rng.uniform(0, 2 * np.pi, n)
    background = 215 + 35 * np.stack([np.cos(hue), np.cos(hue - 2.1), np.cos(hue + 2.1)], 1) * rng.uniform(0, 1, (n, 1))
    return {
        "background": np.clip(background, 150, 255).astype(np.float32),
        "hair": HAIR_COLOURS[rng.integers(0, len(HAIR_COLOURS), n)] * u(0.8, 1.1)[:, None],
        "skin": SKIN_TONES[rng.integers(0, len(SKIN_TONES), n)],
        "iris": EYE_COLOURS[rng.integers(0, len(EYE_COLOURS), n)],
        "cx": u(0.45, 0.55), "cy": u(0.53, 0.6), "rx": u(0.25, 0.31), "ry": u(0.27, 0.33),
        "chin": u(0.25, 0.55), "hair_length": u(0.4, 1.6),
        "fringe_depth": u(0.12, 0.3), "spikes": rng.integers(3, 7, n).astype(np.float32), "spike_phase": u(0, 1),
        "spike_amount": u(0.05, 0.12),
        "eye_y": u(0.03, 0.1), "eye_dx": u(0.11, 0.15), "eye_rx": u(0.05, 0.075), "eye_ry": u(0.06, 0.1),
        "mouth_w": u(0.02, 0.06), "mouth_open": (rng.uniform(0, 1, n) < 0.35).astype(np.float32),
        "blush": (rng.uniform(0, 1, n) < 0.5).astype(np.float32),
    }


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0


def _paint(canvas, mask, colour, alpha=1.0):
    if alpha == 1.0:  # opaque: one pass instead of a blend
        np.copyto(canvas, np.broadcast_to(colour[:, None, None, :], canvas.shape), where=mask[..., None])
        return
    weight = mask[..., None].astype(np.float32) * alpha
    canvas *= 1.0 - weight
    canvas += weight * colour[:, None, None, :]


def _draw(p: dict[str, np.ndarray], resolution: int) -> np.ndarray:
    size = resolution * 2
    n = len(p["cx"])
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    y, x = grid[None, :, None], grid[None, None, :]
    col = lambda key: p[key][:, None, None]  # noqa: E731
    cx, cy, rx, ry = col("cx"), col("cy"), col("rx"), col("ry")

    canvas = np.broadcast_to(p["background"][:, None, None, :], (n, size, size, 3)).copy()
    canvas *= (1.0 - 0.12 * y)[..., None]  # soft vertical gradient

    # Hair behind the head, long hair falling to the sides.
    hair_back = _ellipse(x, y, cx, cy - 0.06, rx * 1.35, ry * 1.22)
    falls = (np.abs(x - cx) < rx * 1.3) & (y > cy - 0.06) & (y < cy + ry * col("hair_length"))
    _paint(canvas, hair_back | falls, p["hair"] * 0.85)

    # Face with a tapered chin.
    below = np.clip((y - cy) / ry, 0.0, 1.0)
    face = _ellipse(x, y, cx, cy, rx * (1.0 - col("chin") * below**2), ry)
    _paint(canvas, face, p["skin"])

    eye_y = cy + col("eye_y")
    erx, ery = col("eye_rx"), col("eye_ry")
    for side in (-1.0, 1.0):
        ex = cx + side * col("eye_dx")
        blush = _ellipse(x, y, ex + side * 0.02, eye_y + ery + 0.04, erx * 1.1, 0.025) & (col("blush") > 0)
        _paint(canvas, blush, np.full((n, 3), (240, 120, 130), np.float32), alpha=0.45)
        lash = _ellipse(x, y, ex, eye_y, erx * 1.2, ery * 1.12) & (y < eye_y - ery * 0.25)
        _paint(canvas, lash, np.full((n, 3), (35, 25, 35), np.float32))
        _paint(canvas, _ellipse(x, y, ex, eye_y, erx, ery), np.full((n, 3), 252.0, np.float32))
        _paint(canvas, _ellipse(x, y, ex, eye_y + ery * 0.12, erx * 0.78, ery * 0.82), p["iris"])
        _paint(canvas, _ellipse(x, y, ex, eye_y + ery * 0.18, erx * 0.38, ery * 0.42), p["iris"] * 0.3)
        highlight = _ellipse(x, y, ex - erx * 0.3, eye_y - ery * 0.25, erx * 0.25, erx * 0.25)
        _paint(canvas, highlight, np.full((n, 3), 255.0, np.float32))

    mouth_y = cy + ry * 0.6
    mouth_h = np.where(col("mouth_open") > 0, 0.022, 0.007)
    mouth_colour = np.where(p["mouth_open"][:, None] > 0, (200, 70, 80), (120, 50, 50)).astype(np.float32)
    _paint(canvas, _ellipse(x, y, cx, mouth_y, col("mouth_w"), mouth_h), mouth_colour)

    # Fringe: a jagged row of spikes over the forehead, always ending above the eyes.
    phase = (x - cx) * col("spikes") / (2 * rx) + col("spike_phase")
    triangle = 1.0 - np.abs(2.0 * (phase - np.floor(phase)) - 1.0)
    base = np.minimum(cy - ry + col("fringe_depth") * ry * 2.0, eye_y - ery * 1.25 - col("spike_amount"))
    edge = base + col("spike_amount") * triangle
    crown = _ellipse(x, y, cx, cy - 0.05, rx * 1.22, ry * 1.12)
    _paint(canvas, crown & (y < edge), p["hair"])

    small = canvas.reshape(n, resolution, 2, resolution, 2, 3).mean(axis=(2, 4))
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)
