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


def short_repr(value, limit: int = 80) -> str:
    """A one-line, ASCII repr of `value` cut to `limit` characters (then "..."), made without ever
    building the whole repr: strings and bytes are cut before they are shown, containers show
    their first items three levels deep, an int of more than 256 bits its size, and any other
    object only its type (its own __repr__ is never called). For values read from untrusted files,
    which may be huge or shared exponentially many times over."""
    text = _bounded_repr(value, limit + 1, 0)
    text = text.encode("ascii", "backslashreplace").decode("ascii").replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[:limit] + "..."


_SCALARS = (bool, float, complex, type(None))


def _bounded_repr(value, budget: int, depth: int) -> str:
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value[:budget]) + ("..." if len(value) > budget else "")
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value.bit_length()
        return repr(value) if bits <= 256 else f"<an int of {bits} bits>"
    if isinstance(value, _SCALARS):
        return repr(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        opening, closing = ("{", "}") if isinstance(value, (dict, set, frozenset)) else \
            ("(", ")") if isinstance(value, tuple) else ("[", "]")
        if depth >= 3:
            return f"{opening}...{closing}"
        parts, used = [], 0
        items = value.items() if isinstance(value, dict) else value
        for item in items:
            if used >= budget:
                parts.append("...")
                break
            if isinstance(value, dict):
                key, item = item
                piece = (_bounded_repr(key, budget - used, depth + 1) + ": "
                         + _bounded_repr(item, budget - used, depth + 1))
            else:
                piece = _bounded_repr(item, budget - used, depth + 1)
            parts.append(piece)
            used += len(piece) + 2
        trailing = "," if isinstance(value, tuple) and len(parts) == 1 and len(value) == 1 else ""
        return opening + ", ".join(parts) + trailing + closing
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and all(type(n) is int for n in shape):
        return f"<a {dtype} array of shape {shape}>"  # a NumPy array: never its values
    return f"<a {type(value).__name__}>"
