"""The consensus engine as the chain sees it (geth ``consensus.Engine``, the part ``core`` calls).

It lives in ``core`` so that the chain is handed an engine instead of importing every
engine there is: ``ethnode.consensus`` implements this protocol (and picks the engine for
a chain config, ``create_engine``), whoever builds a ``BlockChain`` passes one in. The
readers are what an engine may look at in return; ``BlockChain`` implements them.

The two errors are here because the chain itself deals in them: it rejects a block on any
``ConsensusError`` and raises ``UnknownAncestorError`` when a parent is not stored.
"""

from __future__ import annotations

from typing import Protocol

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError


class ConsensusError(EthnodeError):
    """A header or block the consensus rules reject."""


class UnknownAncestorError(ConsensusError):
    """geth consensus.ErrUnknownAncestor: the parent is not in the database."""

    def __init__(self) -> None:
        super().__init__("unknown ancestor")


class ChainHeaderReader(Protocol):
    """What an engine may read from the chain: headers and total difficulties by hash."""

    @property
    def config(self) -> ChainConfig: ...

    def get_header(self, block_hash: bytes, number: int) -> Header | None: ...

    def get_td(self, block_hash: bytes, number: int) -> int | None: ...


class ChainReader(ChainHeaderReader, Protocol):
    """Adds whole blocks, which uncle verification needs (ancestors' uncles)."""

    def get_block(self, block_hash: bytes, number: int) -> Block | None: ...


class ConsensusEngine(Protocol):
    """What the chain asks of its engine. ``parent`` is passed in because it may not be stored yet."""

    name: str  # for messages: which rules (and whether the seal is checked)

    def author(self, header: Header) -> bytes:
        """Who gets the block's fees (the executor pays them there)."""
        ...

    def verify_header(self, chain: ChainHeaderReader, header: Header, parent: Header) -> None:
        """Raise ``ConsensusError`` (or a header-rule error) if ``header`` may not follow ``parent``."""
        ...

    def verify_uncles(self, chain: ChainReader, block: Block) -> None:
        """Raise ``ConsensusError`` if the block's uncles break the rules."""
        ...


__all__ = ["ConsensusEngine", "ChainHeaderReader", "ChainReader", "ConsensusError", "UnknownAncestorError"]
