"""TensorFlow's oneDNN CPU kernels, on by default for programs that import this package first.

TensorFlow turns its oneDNN kernels on by itself only on some Intel CPUs; on AMD CPUs (and Intel ones
it does not list) its plain kernels train these GANs 1.4-1.8x slower (docs/benchmarks.md). The
switch, TF_ENABLE_ONEDNN_OPTS, is read once, when TensorFlow loads, so the package sets it to 1 when
it is imported before TensorFlow and the variable is unset. `TF_ENABLE_ONEDNN_OPTS=0` in the
environment keeps TensorFlow's plain kernels; nothing else in the caller's process changes.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
FIX = (f"put `import keras_anime_gan` before `import tensorflow` (or `import keras`), "
       f"or set {VARIABLE}=1 in the environment")

log = logging.getLogger(__name__)
_checked = False  # fit asks on every call; the answer cannot change within a process


def default_on() -> bool:
    """TF_ENABLE_ONEDNN_OPTS=1 unless it is set or TensorFlow has loaded (then it can no longer
    matter); returns whether it was set here."""
    if VARIABLE in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ[VARIABLE] = "1"
    return True


def is_on() -> bool:
    """Whether TensorFlow runs its oneDNN kernels (imports TensorFlow); False when it cannot tell."""
    import tensorflow  # noqa: F401  (loads the flag from the environment)

    try:
        from tensorflow.python.util import _pywrap_util_port  # private: TensorFlow has no public reader

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def turned_off_by_user() -> bool:
    return os.environ.get(VARIABLE, "").strip().lower() in ("0", "false", "off", "no")


def warn_if_off() -> bool:
    """Once per process, when training on an x86 CPU with oneDNN off although nobody asked for that
    (TensorFlow was imported before this package): says so with the line that fixes it. Returns
    whether it warned now."""
    global _checked
    if _checked:
        return False
    _checked = True
    if turned_off_by_user() or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU") or is_on():
        return False
    log.warning("TensorFlow's oneDNN CPU kernels are off because TensorFlow was imported before keras_anime_gan: "
                "training runs 1.4-1.8x slower on AMD CPUs. To fix it, %s.", FIX)
    return True
