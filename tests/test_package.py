"""The package as users meet it: a library that leaves its caller's process alone, and a command
line that starts quickly and prints only what it means to."""

import os
import subprocess
import sys
import time

from conftest import SCRATCH

FIRST_USE = """
import keras_anime_gan
from keras_anime_gan import create_gan
gan = create_gan("wgan", 32, 8, width=4)
gan.compile()
print("ready")
"""

IMPORT_ONLY = """
import os, sys
import keras_anime_gan
print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"), os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
      any("Quiet" in type(finder).__name__ for finder in sys.meta_path), "tensorflow" in sys.modules)
"""


def _python(code, env, *args):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=SCRATCH, env=env,
                          timeout=180)


def _clean_env():
    return {key: value for key, value in os.environ.items()
            if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}


def test_importing_the_library_sets_only_the_onednn_default_before_tensorflow():
    result = _python(IMPORT_ONLY, _clean_env())
    assert result.returncode == 0, result.stderr[-2000:]
    # oneDNN's switch on (TensorFlow reads it once, when it loads); no log settings, no stderr-silencing
    # import hook, no TensorFlow imported yet.
    assert result.stdout.split() == ["None", "1", "False", "False"]
    kept = _python(IMPORT_ONLY, dict(_clean_env(), TF_ENABLE_ONEDNN_OPTS="0"))
    assert kept.stdout.split() == ["None", "0", "False", "False"]  # the user's choice stands
    late = _python("import tensorflow\n" + IMPORT_ONLY, _clean_env())
    assert late.stdout.split() == ["None", "None", "False", "True"]  # too late to matter: left alone
    used = _python(FIRST_USE, dict(_clean_env(), TF_CPP_MIN_LOG_LEVEL="0"))
    assert used.returncode == 0 and used.stdout.strip() == "ready"
    assert "cpu_feature_guard" in used.stderr or "cuda" in used.stderr  # TensorFlow's own lines reach stderr


FIT_ONCE = """
import sys
if sys.argv[1] == "tensorflow-first":
    import tensorflow
import keras_anime_gan
from keras_anime_gan import create_gan, onednn
import numpy as np
gan = create_gan("dcgan", 32, 8, width=4)
gan.compile(jit_compile=False)
images = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 3)).astype("float32")
gan.fit(images, batch_size=8, epochs=1, verbose=0)
gan.fit(images, batch_size=8, epochs=1, verbose=0)
print("onednn", onednn.is_on())
"""


def test_fit_says_once_when_tensorflow_came_first_and_onednn_is_off():
    # Package first: oneDNN on whatever the CPU, no warning.
    first = _python(FIT_ONCE, _clean_env(), "package-first")
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.split()[-2:] == ["onednn", "True"] and "oneDNN CPU kernels are off" not in first.stderr
    # TensorFlow first: TensorFlow's own default (on for some Intel CPUs only); a warning exactly
    # when it is off, once for two fits, naming the fix.
    late = _python(FIT_ONCE, _clean_env(), "tensorflow-first")
    assert late.returncode == 0, late.stderr[-2000:]
    off = late.stdout.split()[-1] == "False"
    assert late.stderr.count("oneDNN CPU kernels are off") == (1 if off else 0), late.stderr[-2000:]
    if off:
        assert "put `import keras_anime_gan` before `import tensorflow`" in late.stderr
    # Turned off on purpose: the user's choice, no warning.
    chosen = _python(FIT_ONCE, dict(_clean_env(), TF_ENABLE_ONEDNN_OPTS="0"), "package-first")
    assert chosen.returncode == 0 and chosen.stdout.split()[-1] == "False"
    assert "oneDNN CPU kernels are off" not in chosen.stderr


def test_the_command_line_keeps_tensorflow_start_up_lines_out_and_can_show_them():
    command = [sys.executable, "-m", "keras_anime_gan", "train", "--help"]  # imports every model, so TensorFlow
    quiet = subprocess.run(command, capture_output=True, text=True, cwd=SCRATCH, env=_clean_env(), timeout=180)
    assert quiet.returncode == 0 and "--resolution" in quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr[-2000:]  # no cuda, cuInit, oneDNN or absl lines
    loud = subprocess.run(command, capture_output=True, text=True, cwd=SCRATCH, timeout=180,
                          env=dict(_clean_env(), TF_CPP_MIN_LOG_LEVEL="0"))
    assert loud.returncode == 0 and "oneDNN custom operations are on" in loud.stderr


def test_top_level_help_and_version_do_not_import_tensorflow():
    code = ("import sys; from keras_anime_gan import cli\n"
            "try:\n    cli.main([sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    for flag in ("--help", "--version"):
        started = time.perf_counter()
        result = _python(code, _clean_env(), flag)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == "False", flag
        assert time.perf_counter() - started < 30  # generous: a loaded CI machine; TensorFlow alone takes seconds
    version = subprocess.run([sys.executable, "-m", "keras_anime_gan", "--version"], capture_output=True, text=True,
                             cwd=SCRATCH, timeout=60)
    assert version.stdout.strip().startswith("keras-anime-gan 0.")


def test_every_flag_of_every_command_has_help():
    from keras_anime_gan import cli

    parser = cli.build_parser("train")
    commands = next(action for action in parser._actions if action.dest == "command").choices
    missing = [f"{name} {', '.join(action.option_strings) or action.dest}"
               for name, command in commands.items() for action in command._actions
               if action.help is None and action.dest != "help"]
    assert missing == []
    assert all(command.epilog and "examples:" in command.epilog for command in commands.values())
