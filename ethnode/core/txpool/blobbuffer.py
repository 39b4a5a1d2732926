"""Where an eth/72 blob tx is put together before it enters the pool (geth ``blobpool.BlobBuffer``).

eth/72 delivers a blob tx in two parts that arrive in either order: the tx without its
blobs (PooledTransactions, through the tx fetcher) and the cells the blob fetcher
collected, per delivering peer. Once both are here each peer's cells are checked against
the tx's KZG cell proofs; a peer whose cells fail is dropped (the caller's
``drop_peer``) and the tx forgotten, else the cells are merged by index and the tx goes
to the pool: with whole blobs when 64 or more cells per blob arrived (the blobs follow
from them), as a ``BlobTxWithCells`` holding its custody cells otherwise.

Parts wait at most 2 minutes; the bytes held are capped in total (128 MiB) and per peer
(16 MiB), the oldest part of the peer holding most going first (geth's limits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ethnode.core.txpool import errors
from ethnode.core.types.cells import CELL_SIZE, BlobTxWithCells, CellSidecar
from ethnode.core.types.custody import DATA_PER_BLOB
from ethnode.core.types.transaction import BlobTxSidecar, BlobTxWithSidecar

if TYPE_CHECKING:
    from ethnode.core.txpool.pool import TxPool

log = logging.getLogger("ethnode.core.txpool")

BUFFER_LIFETIME = 120.0  # s a part waits for the other; geth bufferLifetime
MAX_BUFFERED_BYTES = 128 * 1024 * 1024  # geth maxBufferedBytes
MAX_BUFFERED_PEER_BYTES = 16 * 1024 * 1024  # geth maxBufferedPeerBytes

Peer = Hashable


class CellDelivery(Protocol):
    """One peer's cells of one tx: blob-major, ``indices`` ascending."""

    cells: list[bytes]
    indices: list[int]


@dataclass
class _TxPart:
    tx: BlobTxWithSidecar
    peer: Peer
    added: float
    size: int


@dataclass
class _CellPart:
    deliveries: Mapping[Peer, CellDelivery]
    added: float
    size: int


def _cells_size(d: CellDelivery) -> int:
    return len(d.cells) * CELL_SIZE + len(d.indices) * 8


class BlobBuffer:
    """Blobless txs and their cells until both are here; then verified and pooled."""

    def __init__(
        self,
        pool: TxPool,
        drop_peer: Callable[[Peer, str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_BUFFERED_BYTES,
        max_peer_bytes: int = MAX_BUFFERED_PEER_BYTES,
    ) -> None:
        self.pool = pool
        self.drop_peer = drop_peer
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_peer_bytes = max_peer_bytes
        self.txs: dict[bytes, _TxPart] = {}
        self.cells: dict[bytes, _CellPart] = {}
        self.peer_bytes: dict[Peer, int] = {}
        self.held = 0
        # What became of completed txs: tx hash -> None (pooled) or the pool's refusal (tests, metrics).
        self.results: dict[bytes, Exception | None] = {}

    def has_tx(self, tx_hash: bytes) -> bool:
        return tx_hash in self.txs

    def has_cells(self, tx_hash: bytes) -> bool:
        return tx_hash in self.cells

    def add_txs(self, txs: Sequence[BlobTxWithSidecar], peer: Peer) -> list[Exception | None]:
        """Blobless blob txs from an eth/72 peer (geth AddTx); one error or None each.

        A ``KZGVerificationError``/``BlobSidecarError`` means the peer sent something
        invalid (the tx fetcher drops it).
        """
        self._evict_expired()
        errs: list[Exception | None] = []
        for tx in txs:
            try:
                self.pool.validate_blobless(tx)
            except errors.TxPoolError as exc:
                errs.append(exc)
                continue
            tx_hash = tx.hash
            if tx_hash in self.cells:
                errs.append(None)
                self._complete(tx, self._pop_cells(tx_hash))
                continue
            size = len(tx.network_encoding())
            if self.peer_bytes.get(peer, 0) + size > self.max_peer_bytes:
                errs.append(errors.TxPoolOverflowError("peer blob buffer allowance exhausted"))
                continue
            while self.held + size > self.max_bytes and self._evict_one():
                pass
            self._pop_tx(tx_hash)
            self.txs[tx_hash] = _TxPart(tx, peer, self.clock(), size)
            self._charge(peer, size)
            errs.append(None)
        return errs

    def add_cells(self, tx_hash: bytes, deliveries: Mapping[Peer, CellDelivery], custody: int) -> None:
        """Every cell ``custody`` of a tx, per delivering peer (geth AddCells)."""
        self._evict_expired()
        part = _CellPart(dict(deliveries), self.clock(), sum(_cells_size(d) for d in deliveries.values()))
        tx_part = self._pop_tx(tx_hash)
        if tx_part is not None:
            self._complete(tx_part.tx, part)
            return
        while self.held + part.size > self.max_bytes and self._evict_one():
            pass
        self._pop_cells(tx_hash)
        self.cells[tx_hash] = part
        self.held += part.size
        for peer, d in part.deliveries.items():
            self.peer_bytes[peer] = self.peer_bytes.get(peer, 0) + _cells_size(d)

    # --- completion ----------------------------------------------------------------------

    def _complete(self, tx: BlobTxWithSidecar, part: _CellPart) -> None:
        """Verify per peer, merge, pool (geth storeCompleted + Flush)."""
        sc = tx.sidecar
        kzg = self.pool._kzg_verifier()
        if kzg is not None:
            bad: list[tuple[Peer, str]] = []
            for peer, d in part.deliveries.items():
                try:
                    kzg.verify_cells(d.cells, sc.commitments, sc.proofs, d.indices)
                except errors.KZGVerificationError as exc:
                    bad.append((peer, str(exc)))
            if bad:
                for peer, reason in bad:
                    log.debug("Cell verification failed for tx 0x%s from %r: %s", tx.hash.hex(), peer, reason)
                    self.drop_peer(peer, f"invalid cells for blob tx 0x{tx.hash.hex()}: {reason}")
                self.results[tx.hash] = errors.KZGVerificationError("invalid cells")
                return
        blobs = len(sc.commitments)
        by_index: dict[int, list[bytes]] = {}
        for d in part.deliveries.values():
            n = len(d.indices)
            if n == 0 or len(d.cells) != n * blobs:
                self.results[tx.hash] = errors.BlobSidecarError("cell delivery of the wrong size")
                return
            for k, index in enumerate(d.indices):
                if index in by_index:
                    log.warning("Dropping blob tx 0x%s with overlapping cell deliveries", tx.hash.hex())
                    self.results[tx.hash] = errors.BlobSidecarError("duplicate cell index across deliveries")
                    return
                by_index[index] = [d.cells[b * n + k] for b in range(blobs)]
        indices = sorted(by_index)
        pooled: BlobTxWithSidecar
        if len(indices) >= DATA_PER_BLOB:
            try:
                whole = tuple(self._recover(kzg, [by_index[i][b] for i in indices], indices) for b in range(blobs))
            except errors.KZGVerificationError as exc:
                self.results[tx.hash] = exc
                return
            pooled = BlobTxWithSidecar(tx.tx, BlobTxSidecar(whole, sc.commitments, sc.proofs, sc.version))
        else:
            cells = tuple(by_index[i][b] for b in range(blobs) for i in indices)
            custody = sum(1 << i for i in indices)
            pooled = BlobTxWithCells(tx.tx, CellSidecar(cells, custody, sc.commitments, sc.proofs, sc.version))
        (err,) = self.pool.add([pooled], local=False, source="pooled")
        if err is not None:
            log.debug("Assembled blob tx 0x%s refused by the pool: %s", tx.hash.hex(), err)
        self.results[tx.hash] = err
        while len(self.results) > 4096:
            self.results.pop(next(iter(self.results)))

    @staticmethod
    def _recover(kzg: object, cells: list[bytes], indices: list[int]) -> bytes:
        if indices[:DATA_PER_BLOB] == list(range(DATA_PER_BLOB)):
            return b"".join(cells[:DATA_PER_BLOB])  # the data cells are the blob
        if kzg is None:
            raise errors.KZGVerificationError("cannot recover a blob from extension cells without ckzg")
        return kzg.recover_blob(cells, indices)  # type: ignore[attr-defined,no-any-return]

    # --- accounting ------------------------------------------------------------------------

    def _charge(self, peer: Peer, size: int) -> None:
        self.held += size
        self.peer_bytes[peer] = self.peer_bytes.get(peer, 0) + size

    def _release(self, peer: Peer, size: int) -> None:
        left = self.peer_bytes.get(peer, 0) - size
        if left > 0:
            self.peer_bytes[peer] = left
        else:
            self.peer_bytes.pop(peer, None)

    def _pop_tx(self, tx_hash: bytes) -> _TxPart | None:
        part = self.txs.pop(tx_hash, None)
        if part is not None:
            self.held -= part.size
            self._release(part.peer, part.size)
        return part

    def _pop_cells(self, tx_hash: bytes) -> _CellPart:
        part = self.cells.pop(tx_hash, None)
        if part is None:
            return _CellPart({}, 0.0, 0)
        self.held -= part.size
        for peer, d in part.deliveries.items():
            self._release(peer, _cells_size(d))
        return part

    def _evict_expired(self) -> None:
        cutoff = self.clock() - BUFFER_LIFETIME
        for tx_hash in [h for h, p in self.txs.items() if p.added < cutoff]:
            self._pop_tx(tx_hash)
        for tx_hash in [h for h, p in self.cells.items() if p.added < cutoff]:
            self._pop_cells(tx_hash)

    def _evict_one(self) -> bool:
        """Drop the oldest part of the peer holding most: its txs first, cells cost more to refetch."""
        if not self.peer_bytes:
            return False
        worst = max(self.peer_bytes, key=lambda p: self.peer_bytes[p])
        txs = [(p.added, h) for h, p in self.txs.items() if p.peer == worst]
        if txs:
            self._pop_tx(min(txs)[1])
            return True
        cells = [(p.added, h) for h, p in self.cells.items() if worst in p.deliveries]
        if cells:
            self._pop_cells(min(cells)[1])
            return True
        self.peer_bytes.pop(worst, None)
        return bool(self.peer_bytes)


__all__ = ["BlobBuffer", "CellDelivery", "BUFFER_LIFETIME", "MAX_BUFFERED_BYTES", "MAX_BUFFERED_PEER_BYTES"]
