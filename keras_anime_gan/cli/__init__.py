"""`keras-anime-gan` / `python -m keras_anime_gan`: a thin layer over the Python API.

Each sub-command parses its options, calls one library function and prints what it did.
User errors (bad paths, bad option values) print one `error:` line and exit with status 2; faults
of the environment (a full disk, an unreadable file) print one `error:` line and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError, describe_os_error
from .common import _Formatter
from .data import _add_convert, _add_verify
from .pictures import _add_evaluate, _add_explore, _add_generate, _add_project, _add_studio
from .serve import _add_export, _add_export_nvidia, _add_import_nvidia
from .train import _add_train, add_train_arguments, config_from_args, model_option_flags  # noqa: F401

DESCRIPTION = """\
Train GANs that draw anime faces, and use what they learn: convert a folder of face crops into
TFRecords, train a DCGAN, WGAN-GP, StyleGAN2-ADA or another model on it (resumable, with sample
grids, curves and checkpoints), then generate faces, explore the latent space, score a generator
against real faces, and export it for TensorFlow Serving. Run `keras-anime-gan COMMAND --help` for
a command's options and examples."""

EPILOG = """\
examples:
  python train.py                                     # the embedded default: a DCGAN on synthetic faces
  keras-anime-gan convert my_faces/ tfrecords --resolution 64
  keras-anime-gan train --data tfrecords --model stylegan2-ada --out runs/faces
  keras-anime-gan generate runs/faces --seeds 0-15 --out samples/
  keras-anime-gan export runs/faces --name faces"""


_EXTENSIONS: list = [_add_verify, _add_train, _add_export, _add_evaluate, _add_generate, _add_explore,
                     _add_import_nvidia, _add_export_nvidia, _add_project, _add_studio]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command. `command`: the one about to be parsed, when known; the train
    flags are generated only for `train` (they import every model, and so TensorFlow, which `--help`
    and the converter must not pay for: its workers are forked from a TensorFlow-free process)."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="keras-anime-gan", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub)
    for extend in _EXTENSIONS:
        if extend is _add_train:
            _add_train(sub, flags=command == "train")
        else:
            extend(sub)
    return parser


def main(argv=None) -> int:
    from .. import quiet_tensorflow_startup

    quiet_tensorflow_startup()  # before anything imports TensorFlow: a command line's output stays readable
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 2)
    except FileNotFoundError as error:  # a wrong path: the user's to fix
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, an unreadable file: one line, never a traceback
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

