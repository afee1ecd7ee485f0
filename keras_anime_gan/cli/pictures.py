"""`evaluate`, `generate`, `explore`, `project` and `studio`: what a trained generator draws."""

from __future__ import annotations

import json
import math
import os

from ..errors import UserError
from .common import _command, _parse_integers, _parse_ranges


def _add_evaluate(sub):
    parser = _command(sub, "evaluate", "SWD / KID / FID of a generator against real images", [
        "keras-anime-gan evaluate runs/faces --real tfrecords --metrics swd,color",
        "keras-anime-gan evaluate runs/faces --real tfrecords --metrics fid,kid --inception-weights inception.h5",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--real", required=True, help="real images: folder, converted TFRecords or StyleGAN files")
    parser.add_argument("--metrics", default="swd", help="comma-separated: swd, color, kid, fid (default swd)")
    parser.add_argument("--num-images", type=int, default=1000, help="images per side (default 1000)")
    parser.add_argument("--inception-weights", default=None, help="path of the InceptionV3 no-top .h5 file")
    parser.add_argument("--extractor", default=None, help="a .keras model to use instead of InceptionV3 for kid/fid")
    parser.add_argument("--seed", type=int, default=0, help="picks the real images and the generated latents "
                                                             "(default 0)")
    parser.add_argument("--allow-upscale", action="store_true",
                        help="compare with real images smaller than the generator's output, upscaled (refused otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from ..evaluation import evaluate

    record = evaluate(args.source, args.real, [name.strip() for name in args.metrics.split(",") if name.strip()],
                      num_images=args.num_images, inception_weights=args.inception_weights,
                      extractor=args.extractor, seed=args.seed, progress=not args.quiet,
                      allow_upscale=args.allow_upscale)
    print(json.dumps(record))
    return 0


def _add_generate(sub):
    parser = _command(sub, "generate", "one PNG per seed", [
        "keras-anime-gan generate runs/faces --seeds 0-99 --out samples/",
        "keras-anime-gan generate runs/sg2 --seeds 1,5,9 --truncation 0.7 --out samples/",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-99 or 1,5,9 (default 0-15)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--truncation", type=float, default=None,
                        help="psi, truncation toward the average: in W toward w_avg for StyleGAN2-ADA, latents "
                             "scaled in Z for the DCGAN family (below 1: safer faces)")
    parser.add_argument("--truncation-cutoff", type=int, default=None,
                        help="StyleGAN generators only: truncate only the style layers below this index, as "
                             "NVIDIA's truncation_cutoff (default: all layers)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    from ..explore import write_seed_images
    from ..loading import load_generator

    seeds = _parse_integers(args.seeds, "--seeds")
    paths = write_seed_images(load_generator(args.source), seeds, args.out, truncation=args.truncation,
                              cutoff=args.truncation_cutoff, progress=not args.quiet)
    print(json.dumps({"out": args.out, "images": len(paths)}))
    return 0


def _add_explore(sub):
    parser = _command(sub, "explore", "latent-space pictures: z-grid, interpolate, truncation, style-mix, neighbours", [
        "keras-anime-gan explore runs/faces --kind z-grid --out z-grid.png",
        "keras-anime-gan explore runs/faces --kind interpolate --seeds 0-4 --out walk.png   # and walk.gif",
        "keras-anime-gan explore runs/sg2 --kind style-mix --rows 0-3 --columns 4-7 --crossover middle --out mix.png",
        "keras-anime-gan explore runs/faces --kind neighbours --real tfrecords --out neighbours.png",
        "keras-anime-gan explore runs/sg2 --kind directions --direction-method sefa --layers coarse --out sefa.png",
    ])
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--kind", required=True,  # checked by explore.explore (no TensorFlow for --help here)
                        help="z-grid: one latent coordinate scaled per row; interpolate: paths between seeds (and a "
                             "GIF); truncation: psi from -1 to 1.5; style-mix: StyleGAN styles crossed between seeds; "
                             "neighbours: samples beside their nearest real faces; directions: SeFa / GANSpace "
                             "directions walked from one picture (and STEM-picture.png, the picture itself)")
    parser.add_argument("--out", required=True, help="output .png")
    parser.add_argument("--seed", type=int, default=0, help="z-grid / neighbours seed (default 0)")
    parser.add_argument("--seeds", default="0-4", help="interpolate / truncation seeds (default 0-4)")
    parser.add_argument("--indices", default=None, help="z-grid: the z coordinates, one per row, e.g. 0,10,20 "
                                                        "(default 0,10,...,90)")
    parser.add_argument("--steps", type=int, default=8, help="interpolate: steps per pair (default 8)")
    parser.add_argument("--method", default=None, choices=["slerp", "linear"],
                        help="interpolate: path shape (default slerp in z, linear in w; w takes only linear)")
    parser.add_argument("--space", default=None, choices=["z", "w"],
                        help="interpolate: between the seeds' latents z (default) or, for StyleGAN generators, "
                             "linearly between their mapped ws")
    parser.add_argument("--cutoff", type=int, default=None,
                        help="truncation, StyleGAN generators only: truncate the style layers below this index; "
                             "layers at or above it keep their w (default: all layers)")
    parser.add_argument("--psis", default=None,
                        help="truncation: the columns' psi values, comma-separated (default -1,-0.5,0,0.5,0.75,1,1.5)")
    parser.add_argument("--rows", default=None, help="style-mix: row seeds, whose styles are kept (default 0-3)")
    parser.add_argument("--columns", default=None,
                        help="style-mix: column seeds, whose styles are copied in (default 4-7)")
    parser.add_argument("--crossover", default=None,
                        help="style-mix: the layers copied from the column seed: coarse (4-8 px), middle "
                             "(16-32 px), fine (64 px and up), or layer indices such as 0-3 or 0,2,5 "
                             "(default coarse)")
    parser.add_argument("--truncation", type=float, default=None,
                        help="style-mix: psi, truncation toward the average w before mixing (default none)")
    parser.add_argument("--real", default=None, help="neighbours: the training images")
    parser.add_argument("--num-real", type=int, default=2000, help="neighbours: real images searched (default 2000)")
    _add_directions_arguments(parser)
    parser.set_defaults(run=_run_explore)


def _explore_psis(text):
    """--psis: comma-separated numbers, e.g. 0,0.5,1."""
    try:
        psis = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        psis = []
    if not psis or not all(math.isfinite(psi) for psi in psis):
        raise UserError(f"--psis {text!r}: give comma-separated numbers such as 0,0.5,0.7,1")
    return psis


def _explore_crossover(text):
    """--crossover: a group name, or layer indices as 0-3 / 0,2,5 (mixed forms allowed)."""
    text = text.strip()
    if text in ("coarse", "middle", "fine"):
        return text
    try:
        layers = _parse_ranges(text)
    except ValueError:
        layers = []
    if not layers:
        raise UserError(f"--crossover {text!r}: use coarse, middle, fine or layer indices such as 0-3 or 0,2,5")
    return layers


def _run_explore(args) -> int:
    if args.kind == "directions":
        return _run_explore_directions(args)
    given = [name for name in DIRECTIONS_FLAGS if getattr(args, name) is not None]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} is an option of --kind directions, not of --kind {args.kind}")
    from .. import explore

    def integers(text, flag, noun="seeds", example="0-99 or 1,5,9"):
        return None if text is None else _parse_integers(text, flag, noun, example)

    written = explore.explore(
        args.source, args.kind, args.out, seed=args.seed, seeds=_parse_integers(args.seeds, "--seeds"),
        steps=args.steps, method=args.method, indices=integers(args.indices, "--indices", "indices", "0,10,20"),
        space=args.space, cutoff=args.cutoff, psis=None if args.psis is None else _explore_psis(args.psis),
        rows=integers(args.rows, "--rows"), columns=integers(args.columns, "--columns"),
        crossover=None if args.crossover is None else _explore_crossover(args.crossover),
        truncation=args.truncation, real=args.real, num_real=args.num_real)
    print(json.dumps({"written": written}))
    return 0


def _add_directions_arguments(parser):
    group = parser.add_argument_group("--kind directions (rows: directions, columns: offsets from the picture; the "
                                      "studio shows the command line of its picture); also reads --seed, "
                                      "--truncation, --cutoff and --crossover")
    group.add_argument("--direction-method", default=None, choices=["sefa", "ganspace"],
                       help="sefa (StyleGAN: the style affine weights' eigenvectors) or ganspace (principal "
                            "components; the only one for the DCGAN family) (default: sefa for StyleGAN)")
    group.add_argument("--layers", default=None,
                       help="StyleGAN: the style layers SeFa factorises and the edits move: all, coarse, middle, "
                            "fine or indices such as 0-3 (default all)")
    group.add_argument("--num-directions", type=int, default=None, help="directions found, one row each (default 5)")
    group.add_argument("--edit", default=None, metavar="I=A,...",
                       help="the picture's own edits: direction I moved by A standard deviations, e.g. 0=1.5,3=-2")
    group.add_argument("--offsets", default=None,
                       help="the columns, standard deviations added to each row's direction (default -3,-2,-1,0,1,2,3)")
    group.add_argument("--latent", default=None, metavar="FILE.npy",
                       help="start from this latent (the studio's download or `project`'s latent.npy) instead of "
                            "--seed")
    group.add_argument("--noise-mode", default=None, choices=["const", "random", "none"],
                       help="StyleGAN noise inputs (default const; random is seeded by --seed)")
    group.add_argument("--mix-seed", type=int, default=None,
                       help="StyleGAN: copy this seed's styles into the --crossover layers (default coarse)")


def _parse_edits(text):
    """--edit: I=A pairs, comma-separated, e.g. 0=1.5,3=-2."""
    edits = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        index, _, amount = item.partition("=")
        try:
            edits[int(index)] = float(amount)
        except ValueError:
            raise UserError(f"--edit {text!r}: give direction=amount pairs such as 0=1.5,3=-2") from None
        if not math.isfinite(edits[int(index)]):
            raise UserError(f"--edit {text!r}: amounts must be finite numbers")
    return edits


DIRECTIONS_FLAGS = ("direction_method", "layers", "num_directions", "edit", "offsets", "latent", "noise_mode",
                    "mix_seed")


def _run_explore_directions(args) -> int:
    from ..edit import explore_directions
    from ..explore import KIND_OPTIONS
    from ..loading import load_generator

    if args.truncation is not None and not math.isfinite(args.truncation):
        raise UserError(f"--truncation must be a finite number, got {args.truncation}")
    for name in ("space", "psis", "rows", "columns", "indices", "real", "method"):
        if getattr(args, name) is not None:
            raise UserError(f"--{name} is an option of --kind {KIND_OPTIONS.get(name, 'interpolate')}, "
                            "not of --kind directions")
    layers = None if args.layers in (None, "all") else _explore_crossover(args.layers)
    offsets = _explore_psis(args.offsets) if args.offsets is not None else None
    explore_directions(load_generator(args.source), args.out, method=args.direction_method, layers=layers,
                       k=5 if args.num_directions is None else args.num_directions, seed=args.seed,
                       latent=args.latent, psi=args.truncation, cutoff=args.cutoff,
                       noise_mode=args.noise_mode or "const", mix_seed=args.mix_seed,
                       crossover=_explore_crossover(args.crossover) if args.crossover else None,
                       edits=_parse_edits(args.edit) if args.edit else None, offsets=offsets)
    picture = os.path.splitext(args.out)[0] + "-picture.png"
    print(json.dumps({"written": [args.out, picture]}))
    return 0


def _add_project(sub):
    parser = _command(sub, "project", "find the latent that draws a face (StyleGAN: W or W+; DCGAN family: z)", [
        "keras-anime-gan project runs/sg2 my_drawing.png --out projected/",
        "keras-anime-gan project runs/sg2 face.jpg --space w+ --steps 1000 --out projected/",
        "keras-anime-gan explore runs/sg2 --kind directions --latent projected/latent.npy --out edits.png",
    ], description="Project an image into a generator's latent space with losses that need no downloaded weights: "
                   "pixels at four scales plus the run's own discriminator features (a run folder or NVIDIA .pkl). "
                   "Writes OUT/latent.npy, OUT/projected.png, OUT/target.png and OUT/losses.csv.")
    parser.add_argument("source", help="run folder, .keras generator or NVIDIA network-snapshot-*.pkl")
    parser.add_argument("image", help="the face to project (any size: centre-cropped and resized)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--space", default=None, choices=["w", "w+", "z"],
                        help="w (StyleGAN default: one w), w+ (one w per style layer) or z (DCGAN family)")
    parser.add_argument("--steps", type=int, default=400, help="optimisation steps (default 400)")
    parser.add_argument("--recipe", default="ours", choices=["ours", "nvidia"],
                        help="ours (the default) or nvidia: NVIDIA's projector recipe with a pixel loss in place "
                             "of VGG16 (noise maps optimised, the picture drawn with them)")
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting latents (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_project)


def _run_project(args) -> int:
    from ..edit import project_to_folder

    print(json.dumps(project_to_folder(args.source, args.image, args.out, steps=args.steps, space=args.space,
                                       recipe=args.recipe, seed=args.seed, time_limit=args.time_limit,
                                       progress=not args.quiet)))
    return 0


def _add_studio(sub):
    parser = _command(sub, "studio", "explore and edit a generator in the browser: seeds, interpolation, "
                                     "truncation, style mixing, SeFa / GANSpace directions, projection", [
        "keras-anime-gan studio runs/sg2                      # then open http://127.0.0.1:7860/",
        "keras-anime-gan studio saved_models/faces/1 --port 8000",
        "keras-anime-gan studio http://localhost:8501/v1/models/faces",
    ], description="Serve the studio, a local web page for a generator, until Ctrl-C. Needs the extra: "
                   'pip install -e ".[studio]".')
    parser.add_argument("source", help="run folder, .keras generator, NVIDIA .pkl, an exported SavedModel version "
                                       "folder, or a TF Serving model URL (http://HOST:8501/v1/models/NAME)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.set_defaults(run=_run_studio)


def _run_studio(args) -> int:
    from ..studio import serve

    serve(args.source, host=args.host, port=args.port)
    return 0
