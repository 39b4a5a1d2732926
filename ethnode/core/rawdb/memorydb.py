"""An in-memory store for tests and throw-away chains (geth ``ethdb/memorydb``)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

from ethnode.core.rawdb.store import Batch, DatabaseError, KeyValueStore, prefix_end


class MemoryDB(KeyValueStore):
    """A dict behind a lock; iteration sorts the keys on demand (fine at test sizes)."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise DatabaseError("database closed")

    def get(self, key: bytes) -> bytes | None:
        self._check()
        return self._data.get(bytes(key))

    def put(self, key: bytes, value: bytes) -> None:
        self._check()
        with self._lock:
            self._data[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._check()
        with self._lock:
            self._data.pop(bytes(key), None)

    def new_batch(self) -> Batch:
        return _MemoryBatch(self)

    def iterate(self, prefix: bytes = b"", start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        self._check()
        with self._lock:
            keys = sorted(self._data)
            snapshot = dict(self._data)
        end = prefix_end(prefix)
        for i in range(bisect.bisect_left(keys, prefix + start), len(keys)):
            k = keys[i]
            if end is not None and k >= end:
                break
            yield k, snapshot[k]

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        self._closed = True

    def _apply(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        self._check()
        with self._lock:
            for key, value in ops:
                if value is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = value


class _MemoryBatch(Batch):
    def __init__(self, db: MemoryDB) -> None:
        super().__init__()
        self._db = db

    def write(self) -> None:
        self._db._apply(self._ops)


__all__ = ["MemoryDB"]
