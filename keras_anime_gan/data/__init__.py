"""Data: the converter (image folder -> TFRecords), the input pipeline and the embedded default dataset.

TensorFlow is imported only when the pipeline or the TFRecord writer is used, so converter workers
and `synthetic_faces` start fast.
"""

from .convert import ConversionError, convert_folder
from .imaging import SUPPORTED_EXTENSIONS, ImageSkipped, load_image
from .synthetic import synthetic_faces

_PIPELINE_NAMES = ("load_dataset", "describe_source", "DatasetError", "to_uint8", "steps_per_epoch", "list_image_files", "load_real_images")


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConversionError", "convert_folder", "SUPPORTED_EXTENSIONS", "ImageSkipped", "load_image",
    "synthetic_faces", *_PIPELINE_NAMES,
]
