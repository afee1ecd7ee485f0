"""`export`, `import-nvidia` and `export-nvidia`: generators out to TF Serving, NVIDIA snapshots in and out."""

from __future__ import annotations

import json
import sys

from .common import _command


def _add_export(sub):
    parser = _command(sub, "export", "write a generator as a TF Serving SavedModel (saved_models/NAME/VERSION)", [
        "keras-anime-gan export runs/faces --name faces",
        "keras-anime-gan export runs/faces/generator.keras --name faces --base /srv/models --version 3",
        "keras-anime-gan export runs/sg2 --name faces_batched --batching-parameters docs/serving/batching_params.pbtxt",
    ])
    parser.add_argument("source", help="run folder (its generator.keras), a .keras generator file or an NVIDIA "
                                       "network-snapshot-*.pkl (its G_ema)")
    parser.add_argument("--name", required=True, help="model name, as clients will call it")
    parser.add_argument("--base", default="saved_models", help="export root (default saved_models)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: one above the highest)")
    parser.add_argument("--max-images", type=int, default=256,
                        help="largest batch a request may ask for (default 256); at most what one response can hold: "
                             "TF Serving sends at most 2**31 - 1 bytes per response (protobuf's limit, which its gRPC "
                             "server sets), and an image takes H*W*3 bytes (a PNG at worst a little more), so at most "
                             "172,580 images at 64 px and 681 at 1024 px; gRPC clients receive 4 MiB by default "
                             "(331 images at 64 px) unless they raise max_receive_message_length")
    parser.add_argument("--serving-base-path", default=None,
                        help="where the model server sees --base (e.g. /models in Docker); written to models.config")
    parser.add_argument("--truncation-cutoff", type=int, default=None, metavar="N",
                        help="StyleGAN2-ADA only: the generate signatures truncate only the first N style layers "
                             "toward w_avg (NVIDIA's truncation_cutoff); default: all of them")
    parser.add_argument("--batching-parameters", default=None, metavar="FILE",
                        help="export for TF Serving's batching: serving_default only, with FILE (BatchingParameters "
                             "text format, e.g. docs/serving/batching_params.pbtxt) copied in as batching_params.pbtxt")
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from ..export import export_generator

    path = export_generator(args.source, args.base, args.name, args.version, max_images=args.max_images,
                            serving_base_path=args.serving_base_path, truncation_cutoff=args.truncation_cutoff,
                            batching_parameters=args.batching_parameters)
    print(json.dumps({"exported": path, "models_config": f"{args.base}/models.config"}))
    return 0


def _add_import_nvidia(sub):
    parser = _command(sub, "import-nvidia", "an NVIDIA StyleGAN2-ADA network-snapshot-*.pkl -> a run folder", [
        "keras-anime-gan import-nvidia network-snapshot-000400.pkl --out runs/imported",
        "keras-anime-gan generate runs/imported --seeds 0-15 --truncation 0.7 --out samples/",
        "python train.py --init-from network-snapshot-000400.pkl --data my_faces --out runs/finetuned",
    ], description="Import an NVIDIA StyleGAN2-ADA network pickle (stylegan2-ada-pytorch, or stylegan3's StyleGAN2 "
                   "networks) as a run folder: config.json, a checkpoint holding G, D and G_ema, and generator.keras "
                   "from G_ema. The pickle is read without running any code from it; anything but the globals "
                   "NVIDIA's files need is refused.")
    parser.add_argument("pickle", help="the network-snapshot-*.pkl file")
    parser.add_argument("--out", required=True, help="the run folder to write (must be new or empty)")
    parser.add_argument("--preset", default="auto",
                        help="the StyleGAN2-ADA preset (as train --preset) whose training settings the run trains with: "
                             "batch, learning rate, R1 gamma, EMA, which the pickle does not record; the networks are "
                             "the pickle's (default auto)")
    parser.add_argument("--data", default=None, help="the images `train --resume` on this run trains on (default: "
                                                     "none recorded; use train --init-from for a new run on your faces)")
    parser.set_defaults(run=_run_import_nvidia)


def _run_import_nvidia(args) -> int:
    from ..nvidia_runs import import_snapshot

    summary = import_snapshot(args.pickle, args.out, preset=args.preset, data=args.data)
    sizes = ", ".join(f"{name} {count:,}" for name, count in summary["parameters"].items())
    print(f"imported {args.pickle}: {summary['resolution']} px, z {summary['z_dim']}, w {summary['w_dim']}, "
          f"{summary['mapping_layers']} mapping layers, channel_base {summary['channel_base']}, channel_max "
          f"{summary['channel_max']}; parameters {sizes}", file=sys.stderr)
    for name, why in summary["not_imported"].items():
        print(f"not imported: {name}: {why}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _add_export_nvidia(sub):
    parser = _command(sub, "export-nvidia", "a StyleGAN2-ADA run's G, D and G_ema -> NVIDIA state dicts in one .npz", [
        "keras-anime-gan export-nvidia runs/faces faces-nvidia.npz",
    ], description="Write a StyleGAN2-ADA run's networks (its newest good checkpoint) as arrays named exactly as "
                   "NVIDIA's state_dict() keys, under G/, D/ and G_ema/, with NVIDIA's layouts and buffers, plus "
                   "NVIDIA's constructor arguments as JSON under init_kwargs. docs/nvidia.md shows the one "
                   "load_state_dict line that loads them into NVIDIA's networks.")
    parser.add_argument("source", help="a StyleGAN2-ADA run folder (made by train or import-nvidia)")
    parser.add_argument("out", help="the .npz file to write")
    parser.set_defaults(run=_run_export_nvidia)


def _run_export_nvidia(args) -> int:
    from ..nvidia_runs import export_state_dicts

    print(json.dumps(export_state_dicts(args.source, args.out)))
    return 0
