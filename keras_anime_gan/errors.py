"""Errors caused by what the user asked for (a bad path, a bad option value).

The command line prints these as one `error:` line with exit status 2; anything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    pass


class ConfigError(UserError):
    """An option value that cannot work, named in the message."""
