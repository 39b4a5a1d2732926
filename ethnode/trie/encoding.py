"""The byte forms a trie node is made of: hex-prefix paths and raw RLP framing.

Paths are kept as strings of hex digits (``bytes.hex()``), one character per nibble:
slicing and comparing them is what the builder does most, and ``str`` does both in C.
"""

from __future__ import annotations

_LEAF_FLAG = 2  # hex-prefix flag nibble for a leaf (terminated) path; 0 for an extension
_ODD_FLAG = 1   # added when the path has an odd number of nibbles


def hex_prefix(path: str, leaf: bool) -> bytes:
    """The compact (hex-prefix) encoding of a nibble path, as stored in leaf/extension nodes.

    The flag nibble says leaf or extension and whether the path length is odd; an even
    path gets a zero pad nibble so the result is whole bytes.
    """
    flag = _LEAF_FLAG if leaf else 0
    if len(path) & 1:
        return bytes.fromhex(f"{flag | _ODD_FLAG:x}{path}")
    return bytes.fromhex(f"{flag:x}0{path}")

