"""What a converted dataset folder holds, shared by the converter (which writes it) and the input
pipeline (which reads it), so neither imports the other.

- `dataset.json` (MANIFEST_NAME): the manifest, written last: its presence means the conversion
  finished; it lists the shards with their image counts and SHA-256.
- `.convert-state.json` (STATE_NAME) and `.progress/` (PROGRESS_DIR): an unfinished conversion's
  state, which a rerun of the same command resumes from.
- `shard-NNNNN-of-MMMMM.tfrecords`, or for `format="stylegan"` NVIDIA's `NAME-rNN.tfrecords`, one
  file per resolution level.
"""

from ..errors import short_repr

MANIFEST_NAME = "dataset.json"
MANIFEST_VERSION = 1
STATE_NAME = ".convert-state.json"
PROGRESS_DIR = ".progress"
FORMATS = ("raw", "png", "stylegan")

# A shard name in dataset.json is a plain file name inside the dataset folder: no path separator,
# no `..`, not absolute, nothing the folder's own file system could not hold.
_MAX_NAME_BYTES = 255


def shard_name_problem(name) -> str | None:
    """Why `name` (a shard entry of dataset.json) is not a plain file name inside the dataset
    folder, or None when it is one."""
    if not isinstance(name, str):
        return f"{short_repr(name, 60)}, not a file name"
    shown = short_repr(name, 80)
    if name in ("", ".", ".."):
        return f"{shown}, not a file name"
    if "/" in name or "\\" in name or "\x00" in name:
        return f"{shown}, a path rather than a plain file name inside the dataset folder"
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return f"a name of {len(name)} characters, longer than a file name can be"
    return None
