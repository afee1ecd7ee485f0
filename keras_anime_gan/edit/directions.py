"""Semantic directions: SeFa (the style affine weights) and GANSpace (principal components), and the
networks they read (a generator, a discriminator for projection) from anything the package loads."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .. import explore
from ..errors import UserError
from ..sampling import latent_width, latents_for_seed

METHODS = ("sefa", "ganspace")
DIRECTION_SAMPLES = 2000  # latents drawn to measure each direction's standard deviation


def generator_of(model):
    """A float32 generator from anything `loading.load_generator` takes."""
    from ..loading import load_generator

    return load_generator(model)


def networks(model):
    """(float32 generator, discriminator or None) of a GAN, a run folder (its newest good checkpoint's
    discriminator), an NVIDIA .pkl (its D), or a generator / .keras file (no discriminator)."""
    import keras

    from ..gans import GAN
    from ..precision import float32_model

    if isinstance(model, GAN):
        return generator_of(model), float32_model(model.discriminator)
    if isinstance(model, keras.Model):
        return generator_of(model), None
    path = os.fspath(model)
    if path.endswith(".pkl") and os.path.isfile(path):
        from ..nvidia import load_nvidia_pickle

        gan = load_nvidia_pickle(path)
        return float32_model(gan.ema_generator), float32_model(gan.discriminator)
    return generator_of(path), run_discriminator(path) if os.path.isdir(path) else None


def run_discriminator(run):
    """The float32 discriminator of a run folder's newest good checkpoint, or None when it has none."""
    from ..loading import gan_from_run
    from ..precision import float32_model

    found = gan_from_run(run)
    return None if found is None else float32_model(found[0].discriminator)


def is_style(generator) -> bool:
    return explore.is_style_generator(generator)


def require_style(generator, what):
    """A UserError saying that `what` needs a StyleGAN generator, unless `generator` is one."""
    if not is_style(generator):
        name = getattr(generator, "name", type(generator).__name__)
        raise UserError(f"{what} needs a StyleGAN generator (mapping + synthesis); this generator is a DCGAN-family "
                        f"z -> image model ({name}, no intermediate latent w and no per-layer styles)")


def style_groups(generator) -> dict:
    """The crossover groups this StyleGAN generator has: {"coarse": [0, 1, 2], ...} (empty ones left out)."""
    groups = {}
    for name in explore.CROSSOVERS:
        try:
            groups[name] = explore.crossover_layers(generator, name)
        except UserError:  # this resolution has no such layers
            pass
    return groups


def style_affines(generator) -> list[tuple[int, object]]:
    """(style layer index k, its affine layer) for every modulated convolution, in the order
    `SynthesisNetwork.call` hands the blocks their ws: a block's conv0 and conv1 take ws k, k + 1,
    its toRGB the next one (which the next block's conv0 shares). Each affine maps w (w_dim) to the
    styles of its convolution's input channels; its stored kernel is (w_dim, channels)."""
    require_style(generator, "SeFa (the style affine weights)")
    found, index = [], 0
    for block in generator.synthesis_network.blocks:
        convs = [layer for layer in (block.conv0, block.conv1) if layer is not None]
        for offset, layer in enumerate(convs):
            found.append((index + offset, layer.conv.affine))
        found.append((index + len(convs), block.torgb.conv.affine))
        index += len(convs)
    return found


def style_layer_indices(generator, layers) -> list[int]:
    """None or "all": every style layer; else `explore.crossover_layers` (coarse / middle / fine / indices)."""
    if layers is None or (isinstance(layers, str) and layers == "all"):
        return list(range(generator.num_ws))
    return explore.crossover_layers(generator, layers)


def _check_k(k, width):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= width:
        raise UserError(f"the number of directions k must be an integer in 1..{width} (the latent's width), got {k!r}")
    return int(k)


def _fixed_signs(vectors):
    """Each row flipped so that its largest component is positive: the same directions every time."""
    rows = np.arange(len(vectors))
    signs = np.sign(vectors[rows, np.argmax(np.abs(vectors), axis=1)])
    return vectors * np.where(signs == 0, 1.0, signs)[:, None]





def sefa(model, layers=None, k=10):
    """SeFa directions of a StyleGAN generator (a GAN, a generator or a run folder / file).

    layers: the style layers whose affine weights are factorised: None (all), "coarse", "middle",
    "fine" or layer indices. Returns (directions (k, w_dim) float32 unit rows, eigenvalues (k,)),
    sorted by eigenvalue, largest first."""
    generator = generator_of(model)
    require_style(generator, "SeFa (the style affine weights)")
    k = _check_k(k, generator.w_dim)
    chosen = set(style_layer_indices(generator, layers))
    weight = np.concatenate([np.asarray(affine.kernel, np.float64) for index, affine in style_affines(generator)
                             if index in chosen], axis=1)  # (w_dim, styles)
    weight = weight / np.maximum(np.linalg.norm(weight, axis=0, keepdims=True), 1e-12)
    values, vectors = np.linalg.eigh(weight @ weight.T)
    order = np.argsort(values)[::-1][:k]
    return _fixed_signs(vectors[:, order].T).astype(np.float32), values[order].astype(np.float32)


def _sample_ws(generator, samples, seed, batch=1024) -> np.ndarray:
    """(samples, w_dim) float32: mapped w of `samples` latents of `seed`."""
    z = latents_for_seed(samples, latent_width(generator), seed)
    return np.concatenate([np.asarray(generator.mapping(z[i : i + batch]), np.float32)[:, 0]
                           for i in range(0, samples, batch)])


def _first_hidden_layer(generator):
    """The first activation layer of a functional generator (after its dense projection), or None."""
    import keras

    kinds = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.Activation)
    for layer in getattr(generator, "layers", []):
        if isinstance(layer, kinds):
            return layer
    return None


def _pca(data, k):
    """(components (k, D) float64 unit rows, variances (k,)) of the rows of `data`."""
    centred = data - data.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:k], singular[:k] ** 2 / max(len(data) - 1, 1)


def ganspace(model, k=10, samples=None, seed=0):
    """GANSpace directions. StyleGAN: PCA of `samples` (default 10000) mapped ws; DCGAN family:
    PCA of the first hidden layer's activations of `samples` (default 2000) latents, each component
    carried into z by linear regression of z on the components' coordinates (GANSpace's recipe for
    BigGAN; a generator without such a layer gets the PCA of z itself).

    Returns (directions (k, latent width) float32 unit rows, variances (k,)), by variance, largest
    first; the variances are those of the PCA (in w, or in the hidden layer's activations)."""
    generator = generator_of(model)
    style = is_style(generator)
    width = generator.w_dim if style else latent_width(generator)
    k = _check_k(k, width)
    samples = int(samples or (10000 if style else 2000))
    if samples < k + 1:
        raise UserError(f"ganspace needs more samples than directions (k={k}), got {samples}")
    if style:
        vectors, values = _pca(_sample_ws(generator, samples, seed).astype(np.float64), k)
        return _fixed_signs(vectors).astype(np.float32), values.astype(np.float32)
    z = latents_for_seed(samples, width, seed).astype(np.float64)
    hidden = _first_hidden_layer(generator)
    if hidden is None:
        vectors, values = _pca(z, k)
        return _fixed_signs(vectors).astype(np.float32), values.astype(np.float32)
    import keras

    features_model = keras.Model(generator.inputs, hidden.output)
    features = np.concatenate([np.asarray(features_model([z[i : i + 500].astype(np.float32)], training=False))
                               .reshape(min(500, samples - i), -1) for i in range(0, samples, 500)]).astype(np.float64)
    components, values = _pca(features, k)
    coordinates = (features - features.mean(axis=0)) @ components.T  # (samples, k)
    regression, *_ = np.linalg.lstsq(coordinates, z - z.mean(axis=0), rcond=None)  # (k, z_dim)
    vectors = regression / np.maximum(np.linalg.norm(regression, axis=1, keepdims=True), 1e-12)
    return _fixed_signs(vectors).astype(np.float32), values.astype(np.float32)


@dataclasses.dataclass
class Directions:
    """Directions with what the studio and `explore --kind directions` need to use them."""

    method: str
    vectors: np.ndarray  # (k, width) float32 unit rows, in w (StyleGAN) or z
    values: np.ndarray  # (k,) eigenvalues (SeFa) or variances (GANSpace)
    sigmas: np.ndarray  # (k,) standard deviation of sampled latents along each direction
    layers: list | None  # StyleGAN: the style layers SeFa factorised (None: all)


def find_directions(generator, method="sefa", k=10, layers=None, samples=None) -> Directions:
    """`sefa` or `ganspace` of a loaded generator, with each direction's standard deviation over
    `DIRECTION_SAMPLES` sampled latents (ws for StyleGAN, z for the DCGAN family)."""
    if method not in METHODS:
        raise UserError(f"direction method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "sefa":
        if not is_style(generator):
            raise UserError("SeFa factorises the style affine weights of a StyleGAN generator; this generator is a "
                            "DCGAN-family z -> image model (no styles): use the ganspace method")
        vectors, values = sefa(generator, layers, k)
    else:
        if layers is not None and not is_style(generator):
            raise UserError("direction layers need a StyleGAN generator (style layers); leave them out for the DCGAN "
                            "family, whose directions live in z")
        if layers is not None:
            style_layer_indices(generator, layers)  # checked here, used when applied
        vectors, values = ganspace(generator, k, samples)
    if is_style(generator):
        reference = _sample_ws(generator, DIRECTION_SAMPLES, seed=1)
    else:
        reference = latents_for_seed(DIRECTION_SAMPLES, latent_width(generator), 1)
    sigmas = np.std(reference @ vectors.T, axis=0).astype(np.float32)
    return Directions(method, vectors, values, sigmas, layers)


