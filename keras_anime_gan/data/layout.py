"""What a converted dataset folder holds, shared by the converter (which writes it) and the input
pipeline (which reads it), so neither imports the other.

- `dataset.json` (MANIFEST_NAME): the manifest, written last: its presence means the conversion
  finished; it lists the shards with their image counts and SHA-256.
- `.convert-state.json` (STATE_NAME) and `.progress/` (PROGRESS_DIR): an unfinished conversion's
  state, which a rerun of the same command resumes from.
- `shard-NNNNN-of-MMMMM.tfrecords`, or for `format="stylegan"` NVIDIA's `NAME-rNN.tfrecords`, one
  file per resolution level.
"""

MANIFEST_NAME = "dataset.json"
MANIFEST_VERSION = 1
STATE_NAME = ".convert-state.json"
PROGRESS_DIR = ".progress"
FORMATS = ("raw", "png", "stylegan")
