"""Known-hash caches per peer: which txs and blocks a peer already has (geth knownCache).

The compiled cache lives in the Rust extension; its twin is ``_knowncache_pure``. Batch
calls (``add_many``, ``filter_unknown``) take packed 32-byte hashes, one call per
message, since a per-hash call into native code cannot beat a Python set.

Every peer holds two, and peers churn: a cache costs what it holds, not its capacity, and
a dropped compiled cache hands its pages back to the kernel at once (malloc kept them;
tests/test_knowncache_churn.py checks it against the twin).
"""

from __future__ import annotations

from ethnode._native import RUST_MODULE, select
from ethnode._native import implementation as _implementation

MAX_KNOWN_TXS = 32768  # geth eth/protocols/eth/peer.go maxKnownTxs
MAX_KNOWN_BLOCKS = 1024  # geth maxKnownBlocks

_impl = select("known_cache", RUST_MODULE, "ethnode.eth.protocols.eth._knowncache_pure")
KnownCache = _impl.KnownCache


def implementation(kind: str) -> type:
    """The ``"compiled"`` or ``"pure"`` KnownCache class (ImportError if unavailable)."""
    return _implementation(kind, RUST_MODULE, "ethnode.eth.protocols.eth._knowncache_pure").KnownCache  # type: ignore[no-any-return]


__all__ = ["KnownCache", "MAX_KNOWN_TXS", "MAX_KNOWN_BLOCKS", "implementation"]
