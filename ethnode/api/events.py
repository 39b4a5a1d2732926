"""The public event types of ``ethnode.api``: plain frozen dataclasses, stable names.

They are what subscribers receive; the node converts its internal bus events (which hold
live peer objects) into these, so a consumer can keep, pickle or print them without
holding a connection alive. Every event has ``time_ns``: ``time.time_ns()`` taken when
the node received what it reports (not when the subscriber got round to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who a peer is, as its Hello and the connection told us."""

    id: bytes  # the enode ID: keccak256 of the public key (what geth logs as the peer id)
    pubkey: bytes  # the 64-byte public key, as enode URLs carry it
    client_id: str | None  # its Hello client name, e.g. "Geth/v1.17.10-stable/linux-amd64/go1.24"
    caps: tuple[str, ...]  # its Hello capabilities, "eth/69", "snap/1", ...
    address: tuple[str, int] | None
    inbound: bool

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @property
    def enode(self) -> str | None:
        """Its enode URL with the address we see (for an inbound peer the port is its source port)."""
        if self.address is None:
            return None
        return f"enode://{self.pubkey.hex()}@{self.address[0]}:{self.address[1]}"


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """A peer's eth Status (eth/68: ``td`` and ``head``; eth/69+: the block range instead)."""

    version: int
    network_id: int
    genesis: bytes
    fork_hash: bytes
    fork_next: int
    head: bytes
    td: int | None = None
    earliest: int | None = None
    latest: int | None = None


@dataclass(frozen=True, slots=True)
class PeerAdded:
    """A peer finished Hello (and, on a node running eth, the Status handshake)."""

    peer: PeerInfo
    status: StatusInfo | None  # None on a node without eth
    eth_version: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class PeerDropped:
    """A peer that finished Hello is gone; ``reason`` is the devp2p disconnect reason's text."""

    peer: PeerInfo
    reason: str
    reason_code: int
    remote_requested: bool  # the reason came in the peer's Disconnect, not from us
    time_ns: int


@dataclass(frozen=True, slots=True)
class EthMessage:
    """Any eth message after Status, decoded by ethnode's message table.

    ``value`` is the decoded payload (request/response messages: ``(request_id, value)``);
    ``size`` the uncompressed payload bytes.
    """

    peer: PeerInfo
    eth_version: int
    code: int
    name: str
    value: Any
    size: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class TxAnnouncement:
    """One NewPooledTransactionHashes message: parallel ``hashes``, ``types``, ``sizes``."""

    peer: PeerInfo
    hashes: tuple[bytes, ...]
    types: bytes
    sizes: tuple[int, ...]
    time_ns: int


@dataclass(frozen=True, slots=True)
class ReceivedTx:
    """One transaction as it came over the wire."""

    hash: bytes
    type: int
    raw: bytes  # the canonical encoding (typed txs: type byte + payload; blob txs with their sidecar)
    tx: Any  # ethnode's decoded transaction object


@dataclass(frozen=True, slots=True)
class Transactions:
    """Full transactions: a Transactions broadcast (``pooled`` False) or a PooledTransactions reply."""

    peer: PeerInfo
    txs: tuple[ReceivedTx, ...]
    pooled: bool
    time_ns: int


@dataclass(frozen=True, slots=True)
class BlockAnnouncement:
    """eth/68 NewBlockHashes (one event per hash) or NewBlock (``block`` set)."""

    peer: PeerInfo
    hash: bytes
    number: int
    block: Any  # ethnode's Block for NewBlock, None for NewBlockHashes
    td: int | None
    time_ns: int


@dataclass(frozen=True, slots=True)
class BlockRangeUpdate:
    """eth/69+ BlockRangeUpdate: the blocks the peer serves."""

    peer: PeerInfo
    earliest: int
    latest: int
    latest_hash: bytes
    time_ns: int


@dataclass(frozen=True, slots=True)
class NodeFound:
    """Discovery added a node to its table.

    ``protocol`` is ``"discv4"`` or ``"discv5"``: each protocol keeps its own table, as geth's
    do, so a node both protocols find is reported once by each.
    """

    enode: str
    id: bytes
    ip: str | None
    udp: int
    tcp: int
    protocol: str
    time_ns: int


EVENT_TYPES: tuple[type, ...] = (
    PeerAdded, PeerDropped, EthMessage, TxAnnouncement, Transactions, BlockAnnouncement, BlockRangeUpdate,
    NodeFound,
)

__all__ = [
    "PeerInfo", "StatusInfo", "PeerAdded", "PeerDropped", "EthMessage", "TxAnnouncement", "ReceivedTx",
    "Transactions", "BlockAnnouncement", "BlockRangeUpdate", "NodeFound", "EVENT_TYPES",
]
