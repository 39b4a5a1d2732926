"""Snappy message compression for devp2p v5 (EIP-706), on cramjam's raw block format.

After a Hello with version >= 5 both sides compress every message payload (not the
code) with snappy's block format, no framing. A payload announces its uncompressed size
in a varint at its very start, so a peer could make a 20-byte message claim 4 GiB; the
length is therefore read and bounded here *before* cramjam allocates anything, as geth
does with snappy.DecodedLen.
"""

from __future__ import annotations

import cramjam

from ethnode.errors import EthnodeError

# Largest uncompressed payload either way; geth: maxUint24 (errPlainMessageTooLarge).
MAX_UNCOMPRESSED_SIZE = 0xFF_FFFF
# A varint longer than this cannot be valid; Go's binary.Uvarint gives up after 10 bytes.
_MAX_VARINT_LEN = 10


class SnappyError(EthnodeError):
    """A compressed payload is corrupt: bad length header or bad snappy block."""


class PlainMessageTooLargeError(SnappyError):
    """The uncompressed payload is, or claims to be, over MAX_UNCOMPRESSED_SIZE."""


def decoded_length(data: bytes) -> int:
    """The uncompressed length a raw snappy block declares (its leading uvarint)."""
    value = 0
    for i, byte in enumerate(memoryview(data)[:_MAX_VARINT_LEN]):
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value
    raise SnappyError("corrupt snappy length header")


def compress(data: bytes) -> bytes:
    """Snappy-compress a message payload (raw block format)."""
    size = len(data) if type(data) is bytes else memoryview(data).nbytes
    if size > MAX_UNCOMPRESSED_SIZE:
        raise PlainMessageTooLargeError(f"message of {size} bytes exceeds {MAX_UNCOMPRESSED_SIZE}")
    return bytes(cramjam.snappy.compress_raw(data))


def decompress(data: bytes) -> bytes:
    """Decompress a payload, refusing before any allocation one that claims too much."""
    size = decoded_length(data)
    if size > MAX_UNCOMPRESSED_SIZE:
        raise PlainMessageTooLargeError(f"message claims {size} bytes uncompressed, over the maximum")
    try:
        out = cramjam.snappy.decompress_raw(data)
    except cramjam.DecompressionError as exc:
        raise SnappyError(f"corrupt snappy payload: {exc}") from None
    if len(out) != size:  # pragma: no cover - cramjam checks this itself
        raise SnappyError(f"snappy payload decoded to {len(out)} bytes, header said {size}")
    return bytes(out)


__all__ = [
    "compress",
    "decompress",
    "decoded_length",
    "SnappyError",
    "PlainMessageTooLargeError",
    "MAX_UNCOMPRESSED_SIZE",
]
