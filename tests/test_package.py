"""The package as users meet it: a library that leaves its caller's process alone, and a command
line that starts quickly and prints only what it means to."""

import os
import subprocess
import sys
import time

from conftest import ROOT

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
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=180)


def _clean_env():
    return {key: value for key, value in os.environ.items()
            if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}


def test_importing_the_library_changes_nothing_in_the_callers_process():
    result = _python(IMPORT_ONLY, _clean_env())
    assert result.returncode == 0, result.stderr[-2000:]
    # No TensorFlow settings, no stderr-silencing import hook, no TensorFlow imported yet.
    assert result.stdout.split() == ["None", "None", "False", "False"]
    used = _python(FIRST_USE, dict(_clean_env(), TF_CPP_MIN_LOG_LEVEL="0"))
    assert used.returncode == 0 and used.stdout.strip() == "ready"
    assert "oneDNN custom operations are" in used.stderr  # TensorFlow's own lines reach the caller's stderr


def test_the_command_line_keeps_tensorflow_start_up_lines_out_and_can_show_them():
    command = [sys.executable, "-m", "keras_anime_gan", "train", "--help"]  # imports every model, so TensorFlow
    quiet = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=_clean_env(), timeout=180)
    assert quiet.returncode == 0 and "--resolution" in quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr[-2000:]  # no cuda, cuInit, oneDNN or absl lines
    loud = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=180,
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
                             cwd=ROOT, timeout=60)
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
