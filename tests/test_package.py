import os
import subprocess
import sys

from conftest import ROOT

FIRST_USE = """
import keras_anime_gan
from keras_anime_gan import create_gan
gan = create_gan("wgan", 32, 8, width=4)
gan.compile()
print("ready")
"""


def _run(env):
    return subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=180)


def test_tensorflow_start_up_lines_stay_out_of_the_default_output_and_can_be_turned_back_on():
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = _run(env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout.strip() == "ready"
    assert quiet.stderr.strip() == "", quiet.stderr[-2000:]  # no cuda, cuInit, oneDNN or absl lines
    loud = _run(dict(env, TF_CPP_MIN_LOG_LEVEL="0"))
    assert loud.returncode == 0 and "oneDNN custom operations are on" in loud.stderr
