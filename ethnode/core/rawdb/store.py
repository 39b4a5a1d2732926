"""The key-value store interface the chain database is written against (geth ``ethdb``).

Everything above this layer sees bytes keys and values, point reads, ordered prefix
iteration and atomic batches. A batch is the unit of crash safety: after a crash the
store holds every batch written before it in full and nothing of any later one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType

from ethnode.errors import EthnodeError


class DatabaseError(EthnodeError):
    """The store cannot be opened, read or written (locked, corrupt, wrong version, closed)."""


class Batch(ABC):
    """Writes collected in memory and applied atomically by ``write``; reusable after ``reset``."""

    def __init__(self) -> None:
        self._ops: list[tuple[bytes, bytes | None]] = []
        self._size = 0

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))
        self._size += len(key) + len(value)

    def delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), None))
        self._size += len(key)

    @property
    def value_size(self) -> int:
        """Bytes queued so far (geth ValueSize), for callers that flush by size."""
        return self._size

    def __len__(self) -> int:
        return len(self._ops)

    def reset(self) -> None:
        self._ops = []
        self._size = 0

    @abstractmethod
    def write(self) -> None:
        """Apply every queued operation, in order, atomically."""


class KeyValueStore(ABC):
    """A sorted bytes -> bytes store with atomic batches."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    def has(self, key: bytes) -> bool:
        return self.get(key) is not None

    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def delete(self, key: bytes) -> None: ...

    @abstractmethod
    def new_batch(self) -> Batch: ...

    @abstractmethod
    def iterate(self, prefix: bytes = b"", start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Pairs whose key starts with ``prefix``, from ``prefix + start`` on, in key order."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> KeyValueStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None


__all__ = ["KeyValueStore", "Batch", "DatabaseError", "prefix_end"]
