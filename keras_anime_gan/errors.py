"""Errors caused by what the user asked for (a bad path, a bad option value), and by faults of the
environment (a full disk).

The command line prints these as one `error:` line, with exit status 2 (`exit_status` 1 for
`RunFailed`); an OSError that escapes a command gets one line too (`describe_os_error`). Anything
else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    pass


class ConfigError(UserError):
    """An option value that cannot work, named in the message."""


class RunFailed(UserError):
    """A command stopped on a fault of its environment (a full disk, a damaged file); the run's
    status.json says `failed` with the same reason. The command line exits with status 1."""

    exit_status = 1


def describe_os_error(error: OSError) -> str:
    """One line for an OSError: what happened, and to which file."""
    import errno
    import os

    target = getattr(error, "filename", None)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "disk full" if error.errno == errno.ENOSPC else "disk quota exceeded"
        return f"{what} while writing {describe_target(target)}" if target else what
    what = (error.strerror or str(error)).rstrip(".")
    return f"{what}: {os.fspath(target)}" if target else what


def describe_target(path) -> str:
    """What a file of a run folder is, for messages: `checkpoint epoch-0003`, or the path itself."""
    import os

    parts = os.path.normpath(os.fspath(path)).split(os.sep)
    if "checkpoints" in parts[:-1]:
        name = parts[parts.index("checkpoints") + 1]
        if name.startswith(".tmp-"):  # atomic_directory's temporary name: .tmp-NAME-PID
            name = name[len(".tmp-"):].rsplit("-", 1)[0]
        return f"checkpoint {name}"
    return os.fspath(path)
