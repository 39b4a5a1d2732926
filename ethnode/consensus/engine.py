"""The base class of ethnode's consensus engines, and the errors they share (geth ``consensus``).

An engine judges a header against its parent and a block's uncles; it does not execute
anything. What the chain calls is ``ethnode.core.consensus.ConsensusEngine``; ``Engine``
implements it and adds what the Beacon wrapper and the miner need of the inner engine
(``calc_difficulty``, ``verifies_seal``). Engines say whether they verify the seal (PoW /
signer), so a node running one that does not can say so instead of implying more safety
than it has. The errors and chain readers the chain also deals in are defined in core
and exported here with the rest, so engines import one module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ethnode.core.consensus import ChainHeaderReader, ChainReader, ConsensusError, UnknownAncestorError
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header


class FutureBlockError(ConsensusError):
    """geth consensus.ErrFutureBlock: timestamp too far ahead of the local clock (PoW only)."""

    def __init__(self) -> None:
        super().__init__("block in the future")


class InvalidNumberError(ConsensusError):
    """geth consensus.ErrInvalidNumber: the number is not the parent's plus one."""

    def __init__(self) -> None:
        super().__init__("invalid block number")


class Engine(ABC):
    """A consensus engine (a ``ConsensusEngine``). ``parent`` is passed in because it may not be stored yet."""

    name: str = "engine"
    verifies_seal: bool = True

    def author(self, header: Header) -> bytes:
        """Who gets the block's fees: the coinbase, unless the engine records the signer elsewhere."""
        return header.coinbase  # type: ignore[no-any-return]

    @abstractmethod
    def verify_header(self, chain: ChainHeaderReader, header: Header, parent: Header) -> None:
        """Raise ``ConsensusError`` (or a header-rule error) if ``header`` may not follow ``parent``."""

    @abstractmethod
    def verify_uncles(self, chain: ChainReader, block: Block) -> None:
        """Raise ``ConsensusError`` if the block's uncles break the rules."""

    @abstractmethod
    def calc_difficulty(self, chain: ChainHeaderReader, time: int, parent: Header) -> int:
        """The difficulty a child of ``parent`` made at ``time`` must have."""


__all__ = [
    "Engine",
    "ChainHeaderReader",
    "ChainReader",
    "ConsensusError",
    "UnknownAncestorError",
    "FutureBlockError",
    "InvalidNumberError",
]
