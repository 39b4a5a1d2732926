"""EIP-8070 custody bitmaps: which of a blob's 128 extended cells a node keeps or a message covers.

On the wire a bitmap is 16 bytes, bit ``i`` of cell index ``i`` in byte ``i // 8`` at
position ``i % 8`` (geth ``types.CustodyBitmap``, little endian). Here it is a plain
``int`` with bit ``i`` for index ``i``, so set algebra is ``&``, ``|`` and ``& ~``;
``int.from_bytes(b, "little")`` is exactly that layout.
"""

from __future__ import annotations

from collections.abc import Iterable

CELLS_PER_BLOB = 128  # EIP-7594 extended blob: 128 cells (geth kzg4844.CellsPerBlob)
DATA_PER_BLOB = 64  # the first 64 cells are the blob itself (geth kzg4844.DataPerBlob)
CUSTODY_BITMAP_SIZE = 16  # bytes on the wire
CUSTODY_ALL = (1 << CELLS_PER_BLOB) - 1  # geth CustodyBitmapAll
CUSTODY_DATA = (1 << DATA_PER_BLOB) - 1  # geth CustodyBitmapData: enough to rebuild every blob


def custody_from_bytes(data: bytes) -> int:
    """The bitmap a 16-byte wire field holds."""
    if len(data) != CUSTODY_BITMAP_SIZE:
        raise ValueError(f"custody bitmap: invalid length {len(data)}, want {CUSTODY_BITMAP_SIZE}")
    return int.from_bytes(data, "little")


def custody_to_bytes(mask: int) -> bytes:
    """The 16-byte wire field of a bitmap."""
    return mask.to_bytes(CUSTODY_BITMAP_SIZE, "little")


def custody_of(indices: Iterable[int]) -> int:
    """The bitmap with ``indices`` set (geth NewCustodyBitmap); ValueError past cell 127."""
    mask = 0
    for i in indices:
        if not 0 <= i < CELLS_PER_BLOB:
            raise ValueError(f"custody bitmap: bit index {i} out of range")
        mask |= 1 << i
    return mask


def custody_indices(mask: int) -> list[int]:
    """The set indices in ascending order (geth Indices)."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def one_count(mask: int) -> int:
    return mask.bit_count()


__all__ = [
    "CELLS_PER_BLOB", "DATA_PER_BLOB", "CUSTODY_BITMAP_SIZE", "CUSTODY_ALL", "CUSTODY_DATA",
    "custody_from_bytes", "custody_to_bytes", "custody_of", "custody_indices", "one_count",
]
