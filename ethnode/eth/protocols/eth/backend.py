"""What the eth wire layer needs from the node (geth ``eth/protocols/eth.Backend``).

The wire layer decodes, checks, serves and settles on its own; everything that needs a
decision of the node (is this Status acceptable, what to do with announced or broadcast
txs and blocks) goes to the backend as a typed packet, one method per kind. The handler
(``ethnode.eth.handler.EthHandler``) is the backend of a running node; tests can plug in
their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ethnode.core.rawdb.store import KeyValueStore
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import BlobTxWithSidecar, Transaction

if TYPE_CHECKING:
    from ethnode.eth.protocols.eth.handshake import AnyStatus
    from ethnode.eth.protocols.eth.peer import EthPeer
    from ethnode.eth.protocols.eth.protocol import BlockAnnouncement, BlockRange, PooledHashes, PooledHashes72


WireTx = Transaction | BlobTxWithSidecar  # a tx as it travels: blob txs with their sidecar in pooled replies


class ChainReader(Protocol):
    """The chain data the wire layer serves: headers, bodies and receipts by hash or number."""

    @property
    def db(self) -> KeyValueStore: ...

    def get_header(self, block_hash: bytes, number: int) -> Header | None: ...

    def get_header_by_hash(self, block_hash: bytes) -> Header | None: ...


class PooledTx(Protocol):
    def item(self) -> bytes: ...


class TxPoolReader(Protocol):
    """The pool as the wire layer sees it: txs to serve and announce."""

    def get(self, tx_hash: bytes) -> PooledTx | None: ...

    def get_metadata(self, tx_hash: bytes) -> tuple[int, int] | None: ...

    def custody(self, tx_hash: bytes) -> int | None:
        """eth/72: the cells of a pooled blob tx it can serve (a bitmap), None for other txs."""
        ...

    def announce_size(self, tx_hash: bytes, version: int) -> int | None:
        """The size an announcement states on ``version`` (eth/72: without blobs)."""
        ...

    def cells(self, tx_hash: bytes, indices: Sequence[int], *, may_compute: bool = True) -> list[bytes] | None:
        """eth/72 GetCells: the cells ``indices`` of every blob, index-major; None if any is missing
        (or would have to be computed and ``may_compute`` is False)."""
        ...


class EthBackend(Protocol):
    """The node side of every eth peer; the wire layer never asks more of it than this."""

    @property
    def chain(self) -> ChainReader: ...

    @property
    def txpool(self) -> TxPoolReader: ...

    @property
    def accept_txs(self) -> bool:
        """geth AcceptTxs: False while syncing; tx messages are then ignored undecoded."""
        ...

    def pos_finalized(self) -> bool:
        """Block gossip is over (the consensus layer finalized a block); NewBlock* then drop the peer."""
        ...

    def accept_status(self, peer: EthPeer, status: AnyStatus) -> None:
        """Judge the peer's Status; raise a HandshakeError to refuse it."""
        ...

    async def run_peer(self, peer: EthPeer) -> None:
        """The peer's life after Hello: handshake, registration, until the connection ends."""
        ...

    def on_transactions(self, peer: EthPeer, txs: Sequence[WireTx]) -> None:
        """A Transactions broadcast, decoded, deduplicated and marked known."""
        ...

    def on_pooled_hashes(self, peer: EthPeer, announcement: PooledHashes | PooledHashes72) -> None:
        """A NewPooledTransactionHashes announcement, consistent and marked known (eth/72: with its mask)."""
        ...

    def on_pooled_transactions(self, peer: EthPeer, txs: Sequence[WireTx]) -> None:
        """PooledTransactions answering a request whose caller stopped waiting (sidecars checked)."""
        ...

    def on_new_block_hashes(self, peer: EthPeer, announcements: Sequence[BlockAnnouncement]) -> None:
        """eth/68 NewBlockHashes, marked known."""
        ...

    def on_new_block(self, peer: EthPeer, block: Block, td: int) -> None:
        """eth/68 NewBlock with a sane header, TD and body, marked known."""
        ...

    def on_block_range(self, peer: EthPeer, block_range: BlockRange) -> None:
        """eth/69 BlockRangeUpdate, valid and already recorded on the peer."""
        ...


__all__ = ["EthBackend", "ChainReader", "TxPoolReader", "PooledTx", "WireTx"]
