"""Trie nodes and code over the chain store, with a read cache and per-block write overlays.

Every entry is content-addressed (key = keccak256 of the value), so a cached entry can
never go stale and entries are never rewritten or deleted: the cache needs no
invalidation and a failed block leaves nothing behind but its discarded overlay.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from ethnode.core.genesis import Genesis, state_nodes
from ethnode.core.rawdb import schema
from ethnode.core.rawdb.accessors import Writer
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.trie import EMPTY_ROOT

# Entries kept decoded in memory. The upper levels of the account trie are read by every
# block; 64k entries of ~100-500 bytes is ~30 MB at most (geth keeps 256 MB of clean nodes).
NODE_CACHE_SIZE = 65_536


class StateDatabase:
    """The state's entries in ``store``; shared by every reader and executor of one chain."""

    def __init__(self, store: KeyValueStore, cache_size: int = NODE_CACHE_SIZE) -> None:
        self.store = store
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_size = cache_size

    def get(self, key: bytes) -> bytes | None:
        """The node or code whose hash is ``key``, or None if the store does not have it."""
        cache = self._cache
        value = cache.get(key)
        if value is not None:
            try:
                cache.move_to_end(key)
            except KeyError:  # evicted meanwhile by a writer on another thread: the value is still right
                pass
            return value
        value = self.store.get(schema.STATE_PREFIX + key)
        if value is not None:
            self._remember(key, value)
        return value

    def has_state(self, root: bytes) -> bool:
        """Whether the state with this root can be read (its root node is stored)."""
        return root == EMPTY_ROOT or self.get(root) is not None

    def new_overlay(self) -> StateOverlay:
        return StateOverlay(self)

    def _remember(self, key: bytes, value: bytes) -> None:
        cache = self._cache
        cache[key] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)

    def committed(self, overlay: StateOverlay) -> None:
        """The batch holding ``overlay`` was written: its entries are now readable from the cache."""
        for key, value in overlay.items():
            self._remember(key, value)


class StateOverlay:
    """The state entries one block (or one block being built) adds, held until its batch is written."""

    def __init__(self, db: StateDatabase) -> None:
        self.db = db
        self._writes: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self._writes.get(key)
        return value if value is not None else self.db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._writes[key] = value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._writes.items())

    def __len__(self) -> int:
        return len(self._writes)

    def write_to(self, batch: Writer) -> None:
        """Queue every entry in ``batch`` (the block's batch: block and state land together)."""
        prefix = schema.STATE_PREFIX
        for key, value in self._writes.items():
            batch.put(prefix + key, value)


def write_genesis_state(batch: Writer, genesis: Genesis) -> bytes:
    """Queue the genesis allocation's nodes and code in ``batch``; returns the state root."""
    root, nodes = state_nodes(genesis.alloc)
    prefix = schema.STATE_PREFIX
    for key, value in nodes.items():
        batch.put(prefix + key, value)
    return root


__all__ = ["StateDatabase", "StateOverlay", "write_genesis_state", "NODE_CACHE_SIZE"]
