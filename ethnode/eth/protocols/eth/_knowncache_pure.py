"""Pure-Python twin of the Rust ``KnownCache`` (rust/src/knowncache.rs).

Same API, same eviction order (oldest first), same errors. An OrderedDict gives O(1)
oldest-first eviction; Python's bytes hash is already keyed per process (SipHash with a
random seed), so ground hashes cannot collide on purpose here either.
"""

from __future__ import annotations

from collections import OrderedDict

HASH_LEN = 32


def _check_hash(h: bytes) -> bytes:
    if len(h) != HASH_LEN:
        raise ValueError(f"a hash must be 32 bytes, got {len(h)}")
    return bytes(h)


def _check_packed(packed: bytes) -> memoryview:
    view = memoryview(packed).cast("B")
    if len(view) % HASH_LEN:
        raise ValueError(f"packed hashes must be a multiple of 32 bytes, got {len(view)}")
    return view


class KnownCache:
    """A bounded set of 32-byte hashes that forgets its oldest entries first."""

    __slots__ = ("_entries", "_capacity")

    def __init__(self, capacity: int) -> None:
        if not 0 < capacity <= 2**32 - 1:
            raise ValueError("capacity must be between 1 and 2**32-1")
        self._capacity = capacity
        self._entries: OrderedDict[bytes, None] = OrderedDict()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, hash: bytes) -> bool:
        return _check_hash(hash) in self._entries

    def _insert(self, h: bytes) -> None:
        entries = self._entries
        if h in entries:
            return
        if len(entries) >= self._capacity:
            entries.popitem(last=False)
        entries[h] = None

    def add(self, hash: bytes) -> None:
        self._insert(_check_hash(hash))

    def add_many(self, packed: bytes) -> None:
        view = _check_packed(packed)
        raw = view.tobytes()
        for i in range(0, len(raw), HASH_LEN):
            self._insert(raw[i : i + HASH_LEN])

    def filter_unknown(self, packed: bytes) -> bytes:
        view = _check_packed(packed)
        raw = view.tobytes()
        entries = self._entries
        return b"".join(
            h for h in (raw[i : i + HASH_LEN] for i in range(0, len(raw), HASH_LEN)) if h not in entries
        )

    def nbytes(self) -> int:
        """Rough heap bytes at the current size (OrderedDict node + key object per entry)."""
        import sys

        per_key = sys.getsizeof(b"\x00" * HASH_LEN)
        return sys.getsizeof(self._entries) + len(self._entries) * (per_key + 56)
