"""Keep TensorFlow's C++ start-up chatter out of a user's terminal.

On a CPU machine, importing TensorFlow prints lines such as "Could not find cuda drivers", "failed
call to cuInit: ... (303)" and oneDNN notices, and graph optimisation can log "remapper failed"
errors for steps that run fine: the first things a new user sees, and they look like failures.

Unless the user set TF_CPP_MIN_LOG_LEVEL themselves, the package sets it to 3 (C++ errors
included; Python exceptions are unaffected) and silences file descriptor 2 while the
`tensorflow` module itself is imported, because a few of those lines are printed before
TensorFlow reads the variable. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything again.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            self.loader.exec_module(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, then runs its import with stderr silenced; used once."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return  # the user chose what to see
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
