"""JSON parsing for untrusted input: nesting depth bounded before parsing, no NaN/Infinity.

The standard library's C decoder recurses once per nesting level and only stops at the
interpreter's recursion limit. py-evm and py_ecc raise that limit process-wide (py_ecc to
100000), and 100000 levels of ``[`` overflow the C stack: the process dies with a
segfault instead of an error. ``ethnode.recursionlimit`` lowers the limit again; this
module makes parsing safe whatever the limit is, by refusing input nested deeper than
``MAX_DEPTH`` before the decoder sees it. The bound is Go's ``encoding/json`` one
(geth's decoder), so every document geth accepts is accepted here.

``NaN``, ``Infinity`` and ``-Infinity`` are Python extensions, not JSON (geth rejects
them); letting them through lets a number compare false both ways in a range check.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

MAX_DEPTH = 10000  # nesting levels; Go encoding/json maxNestingDepth

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Opening brackets become +1, closing ones -1 (as signed bytes), everything else is deleted.
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JSONDepthError(ValueError):
    """The document nests deeper than the bound; raised before any parsing."""


def nesting_depth(data: bytes | str) -> int:
    """The deepest array/object nesting in ``data`` (brackets inside strings do not count)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    signs = _STRING.sub(b"", raw).translate(_SIGNS, _NOT_BRACKETS)
    return max(accumulate(array("b", signs)), default=0)


def check_depth(data: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``JSONDepthError`` if ``data`` nests deeper than ``max_depth``.

    Cheap in the common case: a document with fewer opening brackets than the bound in all
    cannot be deeper, so only bracket-heavy input pays for the scan (one regex pass and a
    C-level running sum, about 40 ms per MiB of brackets).
    """
    if isinstance(data, str):
        opened = data.count("[") + data.count("{")
    else:
        opened = data.count(b"[") + data.count(b"{")
    if opened > max_depth and nesting_depth(data) > max_depth:
        raise JSONDepthError(f"exceeded max depth of {max_depth} nested arrays/objects")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted input: ``ValueError`` (never a crash) for anything not strict JSON.

    ``JSONDepthError`` (a ``ValueError``) for input nested too deep; a ``RecursionError``
    from an interpreter whose limit is below ``max_depth`` is reported the same way.
    """
    check_depth(data, max_depth)
    if isinstance(data, bytes | bytearray):  # what json.loads does, without building a decoder per call
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    elif not isinstance(data, str):
        raise TypeError(f"the JSON object must be str or bytes, not {type(data).__name__}")
    if data.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    try:
        return _DECODER.decode(data)
    except RecursionError:
        raise JSONDepthError("nested too deep for this interpreter's recursion limit") from None


def load_file(path: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``loads`` of a UTF-8 file (``OSError`` and ``UnicodeDecodeError`` propagate)."""
    with open(path, "rb") as f:
        data = f.read()
    return loads(data.decode("utf-8"), max_depth=max_depth)


__all__ = ["MAX_DEPTH", "JSONDepthError", "nesting_depth", "check_depth", "loads", "load_file"]
