"""Data: the converter (image folder -> TFRecords), the input pipeline and the embedded default dataset.

TensorFlow is imported only when the pipeline is used, so converter workers, `synthetic_faces`,
`describe_source` and `verify_dataset` start fast.
"""

from .convert import convert_folder
from .convert_options import ConversionError, ConversionFailed
from .imaging import SUPPORTED_EXTENSIONS, ImageSkipped, load_image
from .sources import DatasetError, describe_source, list_image_files
from .synthetic import synthetic_faces
from .verify import explain_data_loss, verify_dataset

_PIPELINE_NAMES = ("load_dataset", "steps_per_epoch", "load_real_images")


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConversionError", "ConversionFailed", "convert_folder", "SUPPORTED_EXTENSIONS", "ImageSkipped", "load_image",
    "synthetic_faces", "DatasetError", "describe_source", "list_image_files", "verify_dataset", "explain_data_loss",
    *_PIPELINE_NAMES,
]
