"""argparse ``type=`` helpers shared by every flag module, so one kind of value is read one way.

A bad value raises ``argparse.ArgumentTypeError``: argparse reports it in one line naming
the flag, before anything starts. Numbers are read as geth's flags read them (Go's
``strconv.ParseInt(s, 0, 64)``: decimal, or ``0x``/``0o``/``0b`` prefixed); ports are
decimal only.
"""

from __future__ import annotations

import argparse


def integer(text: str) -> int:
    """A number in any base Python's ``int(text, 0)`` takes."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def non_negative_int(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def port(text: str) -> int:
    """A TCP/UDP port, 0 (any free port) to 65535."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def boolean(text: str) -> bool:
    """A boolean flag's value as Go's strconv.ParseBool reads it (``--discovery.v4=false``)."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def split_and_trim(text: str) -> list[str]:
    """``" a, b,,c "`` -> ["a", "b", "c"]: geth's SplitAndTrim for comma-separated list flags."""
    return [part.strip() for part in text.split(",") if part.strip()]


__all__ = ["integer", "non_negative_int", "port", "boolean", "split_and_trim"]
