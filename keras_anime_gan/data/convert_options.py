"""What a conversion is asked to do: its options (`ConvertOptions`, checked by `validate`), its errors,
and the image names a source folder or .zip holds (`list_sources`)."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

from ..errors import UserError
from . import imaging
from .layout import FORMATS


class ConversionError(UserError):
    """A user error (bad path, bad option, nothing to convert): reported, non-zero exit."""


class ConversionFailed(ConversionError):
    """A conversion stopped by a fault of its environment (a full disk), its finished shards kept
    for the same command to resume from. The command line exits with status 1 (`exit_status`)."""

    exit_status = 1


@dataclass(frozen=True)
class ConvertOptions:
    resolution: int = 64
    format: str = "raw"
    transform: str = "center-crop"
    resize_filter: str = "lanczos"
    min_size: int | None = None
    shard_size: int = 1000
    seed: int = 0
    dedupe: bool = False
    max_pixels: int | None = None

    def validate(self) -> None:
        if not isinstance(self.resolution, int) or self.resolution < 8:
            raise ConversionError(f"--resolution must be an integer >= 8, got {self.resolution!r}")
        if self.format not in FORMATS:
            raise ConversionError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.format == "stylegan" and self.resolution & (self.resolution - 1):
            raise ConversionError(
                f"--format stylegan needs a power-of-two --resolution (4x4 ... NxN levels), got {self.resolution}"
            )
        if self.transform not in imaging.TRANSFORMS:
            raise ConversionError(
                f"--transform must be one of {', '.join(imaging.TRANSFORMS)}, got {self.transform!r}"
            )
        if self.resize_filter not in imaging.RESIZE_FILTERS:
            raise ConversionError(
                f"--resize-filter must be one of {', '.join(imaging.RESIZE_FILTERS)}, got {self.resize_filter!r}"
            )
        if self.min_size is not None and self.min_size < 1:
            raise ConversionError(f"--min-size must be >= 1, got {self.min_size}")
        if self.shard_size < 1:
            raise ConversionError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ConversionError(f"--max-pixels must be >= 1, got {self.max_pixels}")

    @property
    def effective_min_size(self) -> int:
        # Default: never upscale silently. Smaller images are skipped unless the user lowers this.
        return self.resolution if self.min_size is None else self.min_size


def list_sources(src: str) -> tuple[list[str], list[dict]]:
    """Candidate image names under `src` (sorted), plus skipped entries for other files."""
    if not os.path.exists(src):
        raise ConversionError(f"source {src!r} does not exist")
    names: list[str] = []
    if os.path.isdir(src):
        for root, dirs, files in os.walk(src):
            dirs.sort()
            # Relative names by slicing: os.path.relpath is slow enough per file to show at 20,000 files.
            prefix = root[len(src) :].lstrip(os.sep)
            names.extend(os.path.join(prefix, file) if prefix else file for file in files)
    elif zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    else:
        raise ConversionError(f"source {src!r} is neither a folder nor a .zip archive")
    names.sort()
    images = [name for name in names if imaging.has_supported_extension(name)]
    skipped = [
        {"path": name, "reason": f"unsupported extension (accepted: {' '.join(imaging.SUPPORTED_EXTENSIONS)})"}
        for name in names
        if not imaging.has_supported_extension(name)
    ]
    return images, skipped
