"""What the eth wire layer posts on the node's bus, for observers (``ethnode.api``, ``record``).

Posted where the messages are received and checked (``EthPeer.handle``, ``handlers``),
after the checks pass, so an observer sees exactly what the node accepted. Each kind is
built only when someone subscribed to it (``EventBus.subscribed``): an unwatched node
pays one dict lookup per message, no timestamp, no decode, no object.

``received_ns`` is ``time.time_ns()`` taken when the message reached the eth layer (after
the frame was read and decompressed, before it is decoded), so timestamps of different
peers compare. It is taken only while some kind here is watched (``EthPeer.handle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ethnode.core.types.block import Block
    from ethnode.eth.protocols.eth.backend import WireTx
    from ethnode.eth.protocols.eth.handshake import AnyStatus
    from ethnode.eth.protocols.eth.peer import EthPeer
    from ethnode.eth.protocols.eth.protocol import BlockAnnouncement, BlockRange


@dataclass(frozen=True, slots=True)
class EthMessageReceived:
    """Every eth message after Status, decoded (request/response messages: ``(request_id, value)``)."""

    peer: EthPeer
    code: int
    name: str
    value: Any
    size: int  # payload bytes, uncompressed
    received_ns: int


@dataclass(frozen=True, slots=True)
class TxsAnnounced:
    """A NewPooledTransactionHashes announcement (parallel hashes, types and sizes); on eth/72
    also the custody mask of its blob txs (a bitmap of cell indices, ``ethnode.core.types.custody``)."""

    peer: EthPeer
    hashes: Sequence[bytes]
    types: bytes
    sizes: Sequence[int]
    received_ns: int
    mask: int | None = None  # eth/72 only


@dataclass(frozen=True, slots=True)
class TxsReceived:
    """Full transactions: a Transactions broadcast (``pooled`` False) or a PooledTransactions reply."""

    peer: EthPeer
    txs: Sequence[WireTx]
    pooled: bool
    received_ns: int


@dataclass(frozen=True, slots=True)
class BlocksAnnounced:
    """eth/68 block propagation: NewBlockHashes (``block`` None) or NewBlock (one entry, with the block)."""

    peer: EthPeer
    announcements: Sequence[BlockAnnouncement]
    block: Block | None
    td: int | None
    received_ns: int


@dataclass(frozen=True, slots=True)
class BlockRangeUpdated:
    """eth/69+ BlockRangeUpdate, valid."""

    peer: EthPeer
    block_range: BlockRange
    received_ns: int


@dataclass(frozen=True, slots=True)
class EthPeerRegistered:
    """The eth handshake passed and the handler registered the peer (its Status is final)."""

    peer: EthPeer
    status: AnyStatus
    received_ns: int


OBSERVER_KINDS: tuple[type, ...] = (EthMessageReceived, TxsAnnounced, TxsReceived, BlocksAnnounced, BlockRangeUpdated)

__all__ = [
    "OBSERVER_KINDS", "EthMessageReceived", "TxsAnnounced", "TxsReceived", "BlocksAnnounced", "BlockRangeUpdated",
    "EthPeerRegistered",
]
