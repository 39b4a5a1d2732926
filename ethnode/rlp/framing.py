"""RLP headers around bytes that are already encoded.

For code that assembles encodings from parts it already holds (trie nodes, typed-tx
envelopes, a block from a stored header and body) without a decode/encode round trip.
The pure codec uses the same helpers, so there is one definition of a header.
"""

from __future__ import annotations

STRING_OFFSET = 0x80
LIST_OFFSET = 0xC0


def header(length: int, offset: int) -> bytes:
    """The header of a string (offset 0x80) or list (offset 0xC0) of ``length`` bytes."""
    if length < 56:
        return bytes((offset + length,))
    lb = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(lb),)) + lb


def list_header(length: int) -> bytes:
    """The header of a list whose payload is ``length`` bytes long."""
    return header(length, LIST_OFFSET)


def wrap_list(payload: bytes) -> bytes:
    """A list from the concatenated encodings of its items."""
    return header(len(payload), LIST_OFFSET) + payload


def wrap_bytes(data: bytes) -> bytes:
    """The encoding of a byte string (a lone byte below 0x80 is its own encoding)."""
    if len(data) == 1 and data[0] < 0x80:
        return data
    return header(len(data), STRING_OFFSET) + data
