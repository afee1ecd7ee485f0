"""What every command's parser shares: the help formatter, the command factory, integer ranges."""

from __future__ import annotations

import argparse

from ..errors import UserError


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and shows defaults only where the help text says them."""


def _command(sub, name, help, examples, description=None):
    return sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                          epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                          formatter_class=_Formatter)


def _parse_ranges(text: str) -> list[int]:
    """'0-99' -> 0..99, '1,5,9' -> [1, 5, 9], mixed forms allowed; ValueError for what is no integer."""
    values = []
    for part in text.split(","):
        if "-" in part.strip()[1:]:
            low, high = part.rsplit("-", 1)
            values.extend(range(int(low), int(high) + 1))
        elif part.strip():
            values.append(int(part))
    return values


def _parse_integers(text: str, flag: str, noun: str = "seeds", example: str = "0-99 or 1,5,9") -> list[int]:
    """`_parse_ranges` for a flag, a UserError naming the flag when it names no integer."""
    try:
        values = _parse_ranges(text)
    except ValueError:
        values = []
    if not values:
        raise UserError(f"{flag} {text!r} names no {noun} (use e.g. {example})")
    return values
