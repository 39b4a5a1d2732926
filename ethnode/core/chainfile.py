"""Chain files: blocks as concatenated RLP, the format of ``geth export`` / ``geth import``.

The reader streams: it holds one block at a time and never reads ahead further than the
block it is decoding, so a file of any size (or a pipe still being written) imports in
constant memory, and an import can commit each block as soon as it has been read. Files
ending in ``.gz`` are gunzipped, as geth does.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from typing import BinaryIO

from ethnode import rlp
from ethnode.core.types.block import Block
from ethnode.errors import EthnodeError

MAX_BLOCK_BYTES = 64 * 1024 * 1024  # refuse a declared block size beyond this (a corrupt length prefix)
_READ_SIZE = 1 << 16


class ChainFileError(EthnodeError):
    """A chain file that cannot be read: names the block's position and byte offset."""

    def __init__(self, index: int, offset: int, reason: str) -> None:
        super().__init__(f"block {index} of the file (byte offset {offset}): {reason}")
        self.index = index
        self.offset = offset
        self.reason = reason


def open_chain_file(path: str | os.PathLike[str], mode: str = "rb") -> BinaryIO:
    """Open for reading (unbuffered, so pipes yield what is there) or writing; ``.gz`` transparently."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    if mode == "rb":
        return open(path, "rb", buffering=0)
    return open(path, mode)  # type: ignore[return-value]


class BlockReader:
    """Iterate over the blocks of a chain file; ``offset`` is where the next block starts."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = bytearray()
        self.offset = 0  # file offset of _buf[0]
        self.index = 0  # 1-based position of the last block yielded

    def _fill(self, need: int) -> bool:
        """Read until ``need`` bytes are buffered; False at end of file before that."""
        while len(self._buf) < need:
            chunk = self._stream.read(max(_READ_SIZE, need - len(self._buf)))
            if not chunk:
                return False
            self._buf += chunk
        return True

    def _next_raw(self) -> bytes | None:
        if not self._fill(1):
            return None
        position = self.index + 1
        b0 = self._buf[0]
        if b0 < 0xC0:
            raise ChainFileError(position, self.offset, f"not an RLP list (first byte 0x{b0:02x})")
        if b0 <= 0xF7:
            total = 1 + b0 - 0xC0
        else:
            size_len = b0 - 0xF7
            if not self._fill(1 + size_len):
                raise ChainFileError(
                    position, self.offset, "truncated block (file ends inside the length prefix)"
                )
            total = 1 + size_len + int.from_bytes(self._buf[1 : 1 + size_len], "big")
        if total > MAX_BLOCK_BYTES:
            raise ChainFileError(
                position, self.offset, f"declared block size {total} exceeds {MAX_BLOCK_BYTES}"
            )
        if not self._fill(total):
            raise ChainFileError(
                position,
                self.offset,
                f"truncated block (needs {total} bytes, file has {len(self._buf)} left)",
            )
        data = bytes(self._buf[:total])
        del self._buf[:total]
        return data

    def __iter__(self) -> Iterator[Block]:
        while True:
            start = self.offset
            data = self._next_raw()
            if data is None:
                return
            try:
                block = Block.decode(data)
            except rlp.DecodingError as exc:
                raise ChainFileError(self.index + 1, start, f"cannot decode block: {exc}") from None
            self.offset += len(data)
            self.index += 1
            yield block


def read_blocks(data: bytes) -> list[Block]:
    """Every block of an in-memory chain file (tests, small files)."""
    return list(BlockReader(io.BytesIO(data)))  # type: ignore[arg-type]


__all__ = ["BlockReader", "ChainFileError", "open_chain_file", "read_blocks", "MAX_BLOCK_BYTES"]
