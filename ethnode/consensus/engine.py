"""The consensus-engine interface (geth ``consensus.Engine``) and its shared errors.

An engine judges a header against its parent and a block's uncles; it does not execute
anything. The chain asks ``verify_header`` before writing a header and ``verify_uncles``
before writing a body. Engines say whether they verify the seal (PoW / signer), so a node
running one that does not can say so instead of implying more safety than it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class FutureBlockError(ConsensusError):
    """geth consensus.ErrFutureBlock: timestamp too far ahead of the local clock (PoW only)."""

    def __init__(self) -> None:
        super().__init__("block in the future")


class InvalidNumberError(ConsensusError):
    """geth consensus.ErrInvalidNumber: the number is not the parent's plus one."""

    def __init__(self) -> None:
        super().__init__("invalid block number")


class ChainHeaderReader(Protocol):
    """What an engine may read from the chain: headers and total difficulties by hash."""

    @property
    def config(self) -> ChainConfig: ...

    def get_header(self, block_hash: bytes, number: int) -> Header | None: ...

    def get_td(self, block_hash: bytes, number: int) -> int | None: ...


class ChainReader(ChainHeaderReader, Protocol):
    """Adds whole blocks, which uncle verification needs (ancestors' uncles)."""

    def get_block(self, block_hash: bytes, number: int) -> Block | None: ...


class Engine(ABC):
    """A consensus engine. ``parent`` is passed in because it may not be stored yet."""

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
