"""The AccountRange walk, compiled (Rust, ``snapwalk.rs``) or its pure twin (``_walk_pure``).

A whole 2 MiB reply is ~40k accounts: in pure Python the walk and the slim encoding cost
~7 µs an account, so the seam is one call per chunk of accounts (never one per node or per
account), and the handler yields to other peers between chunks.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ethnode._native import PURE, RUST_MODULE, Backend, record, select
from ethnode._native import implementation as _implementation

_PURE = "ethnode.eth.protocols.snap._walk_pure"
_impl = select("snap_walk", RUST_MODULE, _PURE)
if not hasattr(_impl, "snap_account_chunk"):  # an extension built before the walk existed
    _impl = importlib.import_module(_PURE)
    record("snap_walk", Backend(PURE, "the Rust extension predates snap_account_chunk: rebuild it"))
account_chunk = _impl.snap_account_chunk


def implementation(kind: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` module holding ``snap_account_chunk`` (tests, benchmarks)."""
    return _implementation(kind, RUST_MODULE, _PURE)


__all__ = ["account_chunk", "implementation"]
