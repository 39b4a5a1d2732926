"""py-evm's key-value database API over a ``StateOverlay`` (so state lands in the chain store).

py-evm's account database reads and writes trie nodes and code through a ``BaseDB``
mapping wrapped in ``AtomicDB``; here reads fall through the block's overlay to the
shared node cache and the store, and writes stay in the overlay until the chain writes
the block's batch. Deletes are ignored: py-evm persists with ``apply_deletes=False``
anyway, and content-addressed entries may be shared by other states (archive node).
"""

from __future__ import annotations

from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

from ethnode.core.state.database import StateOverlay


class OverlayDB(BaseDB):
    """A ``BaseDB`` whose keys are node/code hashes, backed by a ``StateOverlay``."""

    def __init__(self, overlay: StateOverlay) -> None:
        self.overlay = overlay

    def __getitem__(self, key: bytes) -> bytes:
        value = self.overlay.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.overlay.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        pass  # never delete a content-addressed entry: other states may share it

    def _exists(self, key: bytes) -> bool:
        return self.overlay.get(key) is not None


def atomic_db(overlay: StateOverlay) -> AtomicDB:
    return AtomicDB(OverlayDB(overlay))


__all__ = ["OverlayDB", "atomic_db"]
