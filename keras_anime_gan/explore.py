"""Latent-space exploration pictures, all from Python and from `keras-anime-gan explore`.

- `z_grid`: the GAN Versus report's figures 2-3: one fixed z; each row scales one coordinate
  (default 0, 10, ..., 90) by K from -3 to 3, the others held fixed.
- `interpolate`: linear or spherical (slerp) paths between the latents of successive seeds,
  as a grid and a GIF; in z, or (StyleGAN) linear in W between the mapped ws.
- `truncation`: latents scaled by psi (the truncation trick on z; on w for StyleGAN models, where
  a `cutoff` truncates only the layers below it).
- `style_mix`: the StyleGAN paper's figure 3 (StyleGAN models only): row seeds' images with the
  column seeds' styles copied into the coarse, middle or fine layers.
- `neighbours`: each generated sample beside its nearest real images (a memorisation check).
- `write_seed_images`: one PNG per seed (what `keras-anime-gan generate` writes);
- `explore`: any of the pictures above from a generator source, by kind (what `keras-anime-gan
  explore` does).

StyleGAN layers. The synthesis network consumes `num_ws = 2 log2(res) - 2` style vectors w_0 ...
w_{num_ws-1} (`networks.SynthesisNetwork.call`): the 4 px block takes w_0 (conv1) and w_1 (toRGB);
every later block at resolution r takes three consecutive ws starting where the previous block's
toRGB was: conv0 (the upsampling conv to r) shares its w with the toRGB of r / 2, then conv1, then
its own toRGB. Layer k therefore drives the convolution at 2 ** (2 + (k + 1) // 2) px (and, for
odd k, the toRGB of half that), and the last layer only the final toRGB. `style_layers` assigns
each layer to the resolution of its convolution (the last one to the output resolution), which
gives the crossovers (the StyleGAN paper's figure 3 groups):

    coarse  4-8 px     layers 0-2
    middle  16-32 px   layers 3-6
    fine    64 px up   layers 7 ... num_ws - 1     (64 px: 7-9; 256 px: 7-13; 1024 px: 7-17)

The last layer counts with the output resolution: at 32 px, layer 7 (the final toRGB) is middle,
at 8 px layer 3 is coarse. A generator below 64 px has no fine layers (16 px: coarse 0-2, middle
3-5) and one of 8 px no middle ones either: asking for an empty group is a UserError that lists
the groups it has; pass explicit layer indices instead.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import UserError
from .sampling import (checked_truncation_cutoff, image_grid, image_size, latent_width, latents_for_seed,
                       latents_for_seeds, render, to_uint8)

CROSSOVERS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, None)}  # resolutions, inclusive; None: no top
KINDS = ("z-grid", "interpolate", "truncation", "style-mix", "neighbours")
# Options that only one kind reads: given with another kind, they are an error rather than ignored.
KIND_OPTIONS = {"space": "interpolate", "cutoff": "truncation", "psis": "truncation", "rows": "style-mix",
                "columns": "style-mix", "crossover": "style-mix", "truncation": "style-mix", "indices": "z-grid",
                "real": "neighbours"}


def _latent_dim(generator) -> int:
    return latent_width(generator)


def is_style_generator(generator) -> bool:
    """True for a StyleGAN generator: `mapping` (z -> ws), `synthesis` (ws -> images) and `num_ws`."""
    return (callable(getattr(generator, "mapping", None)) and callable(getattr(generator, "synthesis", None))
            and callable(getattr(generator, "truncate", None)) and isinstance(getattr(generator, "num_ws", None), int))


def _require_style(generator, what):
    if not is_style_generator(generator):
        name = getattr(generator, "name", type(generator).__name__)
        raise UserError(f"{what} needs a StyleGAN generator (mapping + synthesis); this generator is a DCGAN-family "
                        f"z -> image model ({name}, no intermediate latent w and no per-layer styles): "
                        "train one with --model stylegan2-ada")


def style_layers(generator) -> list[int]:
    """The resolution each style layer k (0 ... num_ws - 1) belongs to: that of the convolution its w
    modulates, 2 ** (2 + (k + 1) // 2), the last layer (the final toRGB only) the output resolution.

    Walks the synthesis network's blocks as `SynthesisNetwork.call` hands them their ws when it can
    (conv layers at their block's resolution, a toRGB at its block's unless the next block's conv0
    shares its w), else uses the formula."""
    _require_style(generator, "style layers")
    num_ws = generator.num_ws
    blocks = getattr(getattr(generator, "synthesis_network", None), "blocks", None)
    if blocks:
        owner, index = {}, 0
        for block in blocks:
            for k in range(index, index + block.num_conv):
                owner[k] = block.resolution
            owner.setdefault(index + block.num_conv, block.resolution)  # toRGB
            index += block.num_conv
        if sorted(owner) == list(range(num_ws)):
            return [owner[k] for k in range(num_ws)]
    return [min(2 ** (2 + (k + 1) // 2), image_size(generator)) for k in range(num_ws)]


def _layer_groups(resolutions):
    groups = {}
    for name, (low, high) in CROSSOVERS.items():
        groups[name] = [k for k, res in enumerate(resolutions) if res >= low and (high is None or res <= high)]
    return groups


def _describe_groups(groups):
    return ", ".join(f"{name} {layers[0]}-{layers[-1]}" for name, layers in groups.items() if layers)


def crossover_layers(generator, crossover) -> list[int]:
    """The style layer indices a crossover names: "coarse" (4-8 px), "middle" (16-32 px), "fine"
    (64 px and up), see the module docstring; or explicit indices (any iterable of ints, e.g.
    range(0, 3); empty: no layer), each in 0 ... num_ws - 1."""
    resolutions = style_layers(generator)
    num_ws = len(resolutions)
    groups = _layer_groups(resolutions)
    if isinstance(crossover, str):
        if crossover not in CROSSOVERS:
            raise UserError(f"crossover must be coarse, middle, fine or layer indices, got {crossover!r}")
        layers = groups[crossover]
        if not layers:
            low, high = CROSSOVERS[crossover]
            span = f"{low} px and up" if high is None else f"{low}-{high} px"
            raise UserError(f"this {image_size(generator)} px generator has no {crossover} style layers ({span}); "
                            f"its {num_ws} layers are {_describe_groups(groups)}: use one of those or explicit "
                            f"layer indices (e.g. 0-{num_ws - 1})")
        return layers
    try:
        layers = sorted({int(k) for k in crossover})
    except (TypeError, ValueError):
        raise UserError(f"crossover must be coarse, middle, fine or layer indices, got {crossover!r}") from None
    if any(not 0 <= k < num_ws for k in layers):
        raise UserError(f"crossover layers must be in 0..{num_ws - 1} (this generator has {num_ws} style layers: "
                        f"{_describe_groups(groups)}), got {layers}")
    return layers


def _mapped_ws(generator, seeds, psi=None, cutoff=None) -> np.ndarray:
    """(len(seeds), num_ws, w_dim) float32: the seeds' latents (`latents_for_seeds`) mapped to W,
    truncated toward w_avg at psi (layers below `cutoff`, all when None) when psi is given."""
    ws = generator.mapping(latents_for_seeds(seeds, _latent_dim(generator)))
    if psi is not None:
        ws = generator.truncate(ws, psi, cutoff)
    return np.asarray(ws, np.float32)


def _synthesize(generator, ws, batch_size=256) -> np.ndarray:
    """uint8 images of ws (N, num_ws, w_dim), with the const noise (the same pictures every time)."""
    ws = np.asarray(ws, np.float32)
    images = [np.asarray(generator.synthesis(ws[i : i + batch_size], noise_mode="const"), np.float32)
              for i in range(0, len(ws), batch_size)]
    return to_uint8(np.concatenate(images))


def labelled_grid(images, rows, columns, row_labels, column_labels, title, xlabel, ylabel, path):
    """`images` (uint8, rows * columns of them, row by row) as one grid, saved to `path` as a figure
    with each row and column labelled, and the axes and the title named. Returns the grid (uint8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    size = images.shape[1]
    figure, axis = plt.subplots(figsize=(1.1 * columns + 1.5, 1.1 * rows + 1.2))
    axis.imshow(grid)
    axis.set_xticks([size * (i + 0.5) for i in range(columns)], column_labels)
    axis.set_yticks([size * (i + 0.5) for i in range(rows)], row_labels)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return grid


def z_grid(generator, path, seed=0, indices=None, factors=None) -> np.ndarray:
    """Rows: z[i] * K for each chosen index i; columns: K. Returns the image grid (uint8)."""
    dim = _latent_dim(generator)
    indices = list(range(0, dim, 10))[:10] if indices is None else list(indices)
    factors = np.linspace(-3, 3, 7) if factors is None else np.asarray(factors, np.float32)
    if any(not 0 <= index < dim for index in indices):
        raise UserError(f"z indices must be in 0..{dim - 1}, got {indices}")
    base = latents_for_seed(1, dim, seed)[0]
    latents = np.repeat(base[None], len(indices) * len(factors), axis=0)
    for row, index in enumerate(indices):
        for column, factor in enumerate(factors):
            latents[row * len(factors) + column, index] = base[index] * factor
    images = render(generator, latents)
    return labelled_grid(images, len(indices), len(factors), [f"z[{i}]" for i in indices],
                         [f"{k:g}" for k in factors], f"Manipulating one z coordinate (seed {seed})",
                         "manipulation factor K", "z variable", path)


def slerp(a, b, t):
    """Spherical interpolation between latent vectors a and b (t in [0, 1])."""
    a_n, b_n = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = np.arccos(np.clip(np.dot(a_n, b_n), -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def _lerp(a, b, t):
    return (1 - t) * a + t * b


def interpolate(generator, path, seeds=(0, 1, 2, 3), steps=8, method=None, gif_path=None, space="z") -> np.ndarray:
    """Rows: seed[i] -> seed[i+1]; columns: interpolation steps. Also a GIF through all seeds.

    space "z": between the seeds' latents, slerp by default (z ~ N(0, I) lives near a sphere) or
    method="linear". space "w" (StyleGAN generators): linear between the seeds' mapped ws, each
    step rendered by `synthesis` with the const noise; t = 0 and 1 are the seeds' own images."""
    if space not in ("z", "w"):
        raise UserError(f"space must be z or w, got {space!r}")
    if method not in (None, "slerp", "linear"):
        raise UserError(f"method must be slerp or linear, got {method!r}")
    if space == "w":
        _require_style(generator, "interpolation in W")
        if method == "slerp":
            raise UserError("interpolation in W is linear (W is not a Gaussian sphere; slerp is for z): "
                            "leave the method out or pass linear")
    method = method or ("slerp" if space == "z" else "linear")
    if len(seeds) < 2 or steps < 2:
        raise UserError("interpolate needs at least 2 seeds and 2 steps")
    ts = np.linspace(0, 1, steps)
    if space == "w":
        ends = _mapped_ws(generator, seeds)
        path_ws = [_lerp(a, b, np.float32(t)) for a, b in zip(ends[:-1], ends[1:]) for t in ts]
        images = _synthesize(generator, np.stack(path_ws))
    else:
        dim = _latent_dim(generator)
        ends = [latents_for_seed(1, dim, seed)[0] for seed in seeds]
        mix = slerp if method == "slerp" else _lerp
        latents = [mix(a, b, t) for a, b in zip(ends[:-1], ends[1:]) for t in ts]
        images = render(generator, np.stack(latents))
    grid = labelled_grid(images, len(seeds) - 1, steps, [f"{a}->{b}" for a, b in zip(seeds[:-1], seeds[1:])],
                         [f"{t:.2f}" for t in ts], f"{method} interpolation in {space.upper()}", "t", "seeds", path)
    if gif_path:
        # One path through all seeds: each pair's first frame repeats the previous pair's last.
        path_images = [image for index, image in enumerate(images) if index == 0 or index % steps]
        frames = [Image.fromarray(image).resize((image.shape[1] * 2,) * 2, Image.Resampling.NEAREST) for image in path_images]
        frames[0].save(gif_path, save_all=True, append_images=frames[1:], duration=120, loop=0)
    return grid


def truncation(generator, path, seeds=(0, 1, 2, 3), psis=(-1.0, -0.5, 0.0, 0.5, 0.75, 1.0, 1.5),
               cutoff=None) -> np.ndarray:
    """Rows: seeds; columns: psi, the generator's own truncation trick (`sampling.generate_images`):
    z' = psi z for the classic family (the Gaussian's mean is 0), toward the average w for StyleGAN.

    cutoff (StyleGAN generators only, 0 ... num_ws): truncate only the style layers below it;
    layers at or above it keep their untruncated w (`StyleGenerator.truncated(z, psi, cutoff=...)`).
    None truncates every layer."""
    cutoff = checked_truncation_cutoff(generator, cutoff)
    dim = _latent_dim(generator)
    latents = latents_for_seeds(seeds, dim)
    if cutoff is None:
        by_psi = [render(generator, latents, truncation=psi) for psi in psis]  # (psis, seeds, H, W, 3)
    else:
        by_psi = [to_uint8(np.asarray(generator.truncated(latents, psi, training=False, cutoff=cutoff), np.float32))
                  for psi in psis]
    images = np.stack(by_psi, axis=1).reshape(-1, *by_psi[0].shape[1:])
    title = "Truncation trick" + ("" if cutoff is None else f" (layers below {cutoff})")
    return labelled_grid(images, len(seeds), len(psis), [str(seed) for seed in seeds], [f"{p:g}" for p in psis],
                         title, "psi", "seed", path)


_truncation_figure = truncation  # `explore`'s option of the same name (style-mix's psi) hides it there


def style_mix(generator, path, row_seeds=(0, 1, 2), column_seeds=(3, 4, 5), crossover="coarse",
              truncation=None) -> np.ndarray:
    """The StyleGAN paper's figure 3: a (rows + 1) x (columns + 1) grid of tiles. The top row holds
    the column seeds' images, the left column the row seeds' (the corner is blank), and cell (i, j)
    is row seed i's ws with column seed j's w copied into the crossover layers.

    crossover: "coarse" (4-8 px: pose, face shape), "middle" (16-32 px: features, hair style),
    "fine" (64 px and up: colours, micro-structure), see the module docstring; or explicit layer
    indices (`crossover_layers`). truncation: psi toward w_avg in W (every layer) before mixing.
    Every tile uses the const noise, so the pictures are reproducible. Returns the grid (uint8)."""
    _require_style(generator, "style-mix")
    layers = crossover_layers(generator, crossover)
    row_seeds, column_seeds = list(row_seeds), list(column_seeds)
    if not row_seeds or not column_seeds:
        raise UserError("style-mix needs at least one row seed and one column seed")
    row_ws = _mapped_ws(generator, row_seeds, truncation)
    column_ws = _mapped_ws(generator, column_seeds, truncation)
    mixed = np.repeat(row_ws[:, None], len(column_seeds), axis=1)  # (rows, columns, num_ws, w_dim)
    mixed[:, :, layers] = column_ws[None, :, layers]
    # One synthesis batch for all tiles: headers column_ws, row_ws, then the cells row by row.
    images = _synthesize(generator, np.concatenate([column_ws, row_ws, mixed.reshape(-1, *row_ws.shape[1:])]))
    columns_img = images[: len(column_seeds)]
    rows_img = images[len(column_seeds) : len(column_seeds) + len(row_seeds)]
    cells = images[len(column_seeds) + len(row_seeds) :].reshape(len(row_seeds), len(column_seeds), *images.shape[1:])
    blank = np.full_like(images[:1], 255)
    tiles = [np.concatenate([blank, columns_img])]
    tiles += [np.concatenate([rows_img[i : i + 1], cells[i]]) for i in range(len(row_seeds))]
    name = crossover if isinstance(crossover, str) else "chosen"
    span = f"{layers[0]}-{layers[-1]}" if layers and layers == list(range(layers[0], layers[-1] + 1)) else \
        ",".join(map(str, layers)) or "none"
    psi = "" if truncation is None else f", psi {truncation:g}"
    return labelled_grid(np.concatenate(tiles), len(row_seeds) + 1, len(column_seeds) + 1,
                         [""] + [str(seed) for seed in row_seeds], [""] + [str(seed) for seed in column_seeds],
                         f"Style mixing: {name} styles (layers {span}) from the columns{psi}",
                         "column seed (source of the crossover styles)", "row seed", path)


def nearest_real(samples, real, k=5) -> np.ndarray:
    """Indices (len(samples), k) of the k nearest real images by pixel L2 distance."""
    a = samples.reshape(len(samples), -1).astype(np.float64)
    b = real.reshape(len(real), -1).astype(np.float64)
    distances = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.argsort(distances, axis=1)[:, :k]


def neighbours(generator, real_images, path, num_samples=8, k=5, seed=0) -> np.ndarray:
    """Row i: generated sample i, then its k nearest real images."""
    dim = _latent_dim(generator)
    samples = render(generator, latents_for_seed(num_samples, dim, seed))
    real = np.asarray(real_images)
    if real.shape[1:] != samples.shape[1:]:
        raise UserError(f"real images are {real.shape[1:]}, the generator makes {samples.shape[1:]}")
    nearest = nearest_real(samples, real, k)
    tiles = np.concatenate([np.concatenate([samples[i : i + 1], real[nearest[i]]]) for i in range(num_samples)])
    return labelled_grid(tiles, num_samples, k + 1, [f"sample {i}" for i in range(num_samples)],
                         ["generated"] + [f"#{j + 1}" for j in range(k)], "Nearest real images (pixel L2)",
                         "", "", path)


def write_seed_images(generator, seeds, folder, truncation=None, cutoff=None, progress=False) -> list[str]:
    """One PNG per seed, `folder/seedNNNN.png`: the image of `GAN.generate(1, seed)`, truncated at
    psi = `truncation` (in the style layers below `cutoff`) when given. Each file is written
    beside and renamed, so a kill leaves whole pictures. Returns the paths."""
    import os

    from .atomic import write_atomic

    seeds = [int(seed) for seed in seeds]
    if truncation is not None and not np.isfinite(truncation):
        raise UserError(f"truncation must be a finite number, got {truncation}")
    checked_truncation_cutoff(generator, cutoff)
    latents = latents_for_seeds(seeds, latent_width(generator))  # seed s: the image of generate(1, s)
    images = render(generator, latents, truncation=truncation, cutoff=cutoff, progress=progress)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for seed, image in zip(seeds, images):
        path = os.path.join(folder, f"seed{seed:04d}.png")
        write_atomic(path, lambda tmp, image=image: Image.fromarray(image).save(tmp, format="PNG"), durable=False)
        paths.append(path)
    return paths


def explore(source, kind, out, *, seed=0, seeds=(0, 1, 2, 3, 4), steps=8, method=None, indices=None, space=None,
            cutoff=None, psis=None, rows=None, columns=None, crossover=None, truncation=None, real=None,
            num_real=2000) -> list[str]:
    """Draw the `kind` picture (one of `KINDS`) of the generator `source` (anything
    `loading.load_generator` takes) into `out` (.png; interpolate also writes a .gif beside it);
    returns the paths written. Each kind reads the options its function takes; an option of another
    kind (`KIND_OPTIONS`) is a UserError, not ignored."""
    import math
    import os

    from .loading import load_generator

    if kind not in KINDS:
        raise UserError(f"explore kind must be one of {', '.join(KINDS)}, got {kind!r}")
    given = {"space": space, "cutoff": cutoff, "psis": psis, "rows": rows, "columns": columns,
             "crossover": crossover, "truncation": truncation, "indices": indices, "real": real}
    for name, owner in KIND_OPTIONS.items():
        if given[name] is not None and kind != owner:
            raise UserError(f"--{name} is an option of --kind {owner}, not of --kind {kind}")
    if truncation is not None and not math.isfinite(truncation):
        raise UserError(f"--truncation must be a finite number, got {truncation}")
    if kind == "neighbours" and not real:
        raise UserError("--kind neighbours needs --real (the training images)")
    if num_real < 1:
        raise UserError(f"--num-real must be at least 1, got {num_real}")
    generator = load_generator(source)
    if kind == "z-grid":
        z_grid(generator, out, seed=seed, indices=indices)
    elif kind == "interpolate":
        gif = os.path.splitext(out)[0] + ".gif"
        interpolate(generator, out, list(seeds), steps, method, gif, space=space or "z")
        return [out, gif]
    elif kind == "truncation":
        _truncation_figure(generator, out, list(seeds), cutoff=cutoff, **({"psis": psis} if psis is not None else {}))
    elif kind == "style-mix":
        style_mix(generator, out, list(rows or range(4)), list(columns or range(4, 8)), crossover or "coarse",
                  truncation=truncation)
    else:
        from .data.pipeline import load_real_images

        # A visual look-up: smaller real faces are shown upscaled rather than refused.
        neighbours(generator, load_real_images(real, num_real, image_size(generator), allow_upscale=True), out,
                   seed=seed)
    return [out]

