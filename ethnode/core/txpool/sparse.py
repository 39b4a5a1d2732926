"""What the pool tells eth/72 (EIP-8070, the sparse blobpool) peers about its blob txs.

An eth/72 announcement states a blob tx's size without its blobs and which cells the pool
can serve (its custody); GetCells asks for cells by index. A tx held with whole blobs
serves every cell, computed from the blobs once and kept for a while (computing a blob's
128 cells takes ~12 ms); a tx fetched as custody cells serves those only (geth
``BlobPool.GetCustody``, ``GetBlobCells``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ethnode.core.txpool import errors
from ethnode.core.txpool.config import BLOB_TX_MAX_SIZE, MAX_BLOBS_PER_TX
from ethnode.core.txpool.validation import BLOB_POOL_TX_TYPES, ValidationOptions, validate_transaction
from ethnode.core.types.cells import CELL_SIZE, BlobTxWithCells, blobless_encoding
from ethnode.core.types.custody import CUSTODY_ALL, DATA_PER_BLOB
from ethnode.core.types.transaction import BlobTxWithSidecar

if TYPE_CHECKING:
    from ethnode.core.chainconfig import ChainConfig
    from ethnode.core.txpool.blobpool import BlobLane
    from ethnode.core.txpool.config import TxPoolConfig
    from ethnode.core.txpool.kzg import KzgVerifier
    from ethnode.core.txpool.list import PoolTx
    from ethnode.core.types.header import Header
    from ethnode.core.types.signer import Signer

SPARSE_BLOBPOOL_VERSION = 72  # eth/72 peers get blob txs without blobs (the wire layer sits above the pool)
CELL_CACHE_TXS = 64  # ours: blob txs whose computed cells are kept for GetCells (~256 KiB per blob)


class SparseBlobServing:
    """The eth/72 side of ``TxPool`` (a mixin: it reads the pool's blob lane and KZG verifier)."""

    _blob: BlobLane
    _cells: dict[bytes, list[list[bytes]]]
    _head: Header
    chain_config: ChainConfig
    signer: Signer
    config: TxPoolConfig

    def has(self, tx_hash: bytes) -> bool: ...  # provided by TxPool

    def _lookup(self, tx_hash: bytes) -> PoolTx | None: ...  # provided by TxPool

    def _kzg_verifier(self) -> KzgVerifier | None: ...  # provided by TxPool

    def preload_kzg(self) -> None:
        """Load the KZG trusted setup now (2-5 s; call it in a thread at start-up), so the first
        blob tx or cell delivery does not stall the event loop while peers wait for an answer."""
        self._kzg_verifier()

    def validate_blobless(self, tx: BlobTxWithSidecar) -> None:
        """The rules an eth/72 blob tx must pass before its cells are fetched (geth
        ValidateTxBasics): the pool's stateless checks with the blobs left out."""
        if tx.sidecar.blobs:
            raise errors.BlobSidecarError("blob transaction with blob payload where eth/72 sends none")
        if self.has(tx.hash):
            raise errors.AlreadyKnownError()
        opts = ValidationOptions(accept=BLOB_POOL_TX_TYPES, max_size=BLOB_TX_MAX_SIZE,
                                 max_blob_count=MAX_BLOBS_PER_TX, min_tip=self.config.price_limit)
        validate_transaction(tx.tx, len(tx.network_encoding()), self._head, self.chain_config, self.signer, opts,
                             sidecar=tx.sidecar, blobless=True)

    def custody(self, tx_hash: bytes) -> int | None:
        """The cells of a pooled blob tx's blobs this pool can serve (geth GetCustody): all 128
        when it holds the blobs, its custody when it fetched cells only; None for others."""
        ptx = self._blob.all.get(tx_hash)
        if ptx is None:
            return None
        return ptx.tx.sidecar.custody if isinstance(ptx.tx, BlobTxWithCells) else CUSTODY_ALL

    def announce_size(self, tx_hash: bytes, version: int) -> int | None:
        """The size an announcement to an eth/``version`` peer states: eth/72 leaves the blobs out."""
        ptx = self._lookup(tx_hash)
        if ptx is None:
            return None
        tx = ptx.tx
        blobless = version >= SPARSE_BLOBPOOL_VERSION or isinstance(tx, BlobTxWithCells)
        if isinstance(tx, BlobTxWithSidecar) and blobless:
            sc = tx.sidecar
            return len(blobless_encoding(tx.tx, sc.version, sc.commitments, sc.proofs))
        return ptx.size

    def cells(self, tx_hash: bytes, indices: Sequence[int], *, may_compute: bool = True) -> list[bytes] | None:
        """A pooled blob tx's cells ``indices``, index-major as Cells carries them (for each
        index, every blob's cell); None when the tx or any of those cells is not held.

        The 64 data cells are slices of the blob; the extension cells of a tx held with
        whole blobs are computed (and kept a while) unless ``may_compute`` is False.
        """
        ptx = self._blob.all.get(tx_hash)
        if ptx is None or not indices:
            return None
        tx = ptx.tx
        if isinstance(tx, BlobTxWithCells):
            sc = tx.sidecar
            if any(not (sc.custody >> i) & 1 for i in indices):
                return None
            blobs = len(sc.commitments)
            return [sc.cell(b, i) for i in indices for b in range(blobs)]  # type: ignore[misc]
        blob_list = tx.sidecar.blobs  # type: ignore[union-attr]
        if max(indices) < DATA_PER_BLOB:
            return [blob[i * CELL_SIZE:(i + 1) * CELL_SIZE] for i in indices for blob in blob_list]
        per_blob = self._cells.get(tx_hash)
        if per_blob is None:
            kzg = self._kzg_verifier()
            if kzg is None or not may_compute:
                return None
            per_blob = [kzg.compute_cells(blob) for blob in blob_list]
            self._cells[tx_hash] = per_blob
            while len(self._cells) > CELL_CACHE_TXS:
                self._cells.pop(next(iter(self._cells)))
        return [cells[i] for i in indices for cells in per_blob]


__all__ = ["SparseBlobServing", "SPARSE_BLOBPOOL_VERSION", "CELL_CACHE_TXS"]
