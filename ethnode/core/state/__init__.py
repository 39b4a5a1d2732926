"""World state on the chain store: trie nodes and code, and reads of accounts at any block.

``StateDatabase`` is the state's window on the node's own key-value store (no separate
database file): nodes and code live under ``rawdb.schema.STATE_PREFIX``, keyed by their
hash, never deleted (an archive: any executed block's state stays readable, which is
what a reorg onto a side branch needs). A block's new nodes are collected in a
``StateOverlay`` and written in the same atomic batch as the block itself.

``StateView`` reads accounts at one state root; ``HeadState`` follows the chain's head
and is what the tx pool asks.
"""

from ethnode.core.state.database import StateDatabase, StateOverlay, write_genesis_state
from ethnode.core.state.reader import HeadState, MissingStateError, StateView
from ethnode.core.state.trie import MissingNodeError, trie_get, trie_prove

__all__ = [
    "StateDatabase",
    "StateOverlay",
    "StateView",
    "HeadState",
    "MissingStateError",
    "MissingNodeError",
    "trie_get", "trie_prove",
    "write_genesis_state",
]
