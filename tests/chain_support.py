"""Opening a chain the way the node does: the consensus engine its stored config asks for.

``BlockChain`` is handed its engine (core does not know the engines); tests that just
want "the chain in this database" go through here. ``events`` is the bus a node would
pass, for tests that watch what the chain posts.
"""

from __future__ import annotations

from typing import Any

from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config
from ethnode.core.rawdb.store import KeyValueStore


def open_chain(db: KeyValueStore, **kwargs: Any) -> BlockChain:
    """``BlockChain(db, <engine for its config>, **kwargs)``."""
    config = read_chain_config(db)
    return BlockChain(db, create_engine(config, db), config=config, **kwargs)


class EventLog:
    """An event sink that keeps everything posted, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def post(self, event: Any) -> int:
        self.events.append(event)
        return 1

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def clear(self) -> None:
        self.events.clear()
