"""Structured log fields: ``log.info("Started P2P networking", extra=kv(self=url))``.

geth logs a fixed message and then key/value pairs, and its formats (terminal, logfmt,
JSON) render the values by type: numbers with thousands separators, strings quoted only
when needed, lists without Python's brackets. Passing the values rather than a formatted
string lets the command line's formatter (``ethnode.commands.logformat``) do the same,
and keeps the values typed in the JSON output. Here, at the bottom layer, so any module
may use it without importing the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CTX_ATTR = "ctx"  # the LogRecord attribute that carries the pairs


def kv(*pairs: tuple[str, Any] | Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """``extra=`` for a logging call: the pairs in order (keys that are no Python names as tuples or a dict)."""
    items: list[tuple[str, Any]] = []
    for pair in pairs:
        if isinstance(pair, Mapping):
            items.extend(pair.items())
        else:
            items.append((pair[0], pair[1]))
    items.extend(fields.items())
    return {CTX_ATTR: tuple(items)}


__all__ = ["CTX_ATTR", "kv"]
