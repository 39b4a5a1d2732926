"""Blob txs as eth/72 (EIP-8070, the sparse blobpool) moves them: without their blobs.

A blob tx travels in two parts on eth/72: the tx with its commitments and cell proofs but
an empty blob list (PooledTransactions), and cells, 2048-byte pieces of the extended blobs
(GetCells/Cells). A node that fetched only the cells of its custody keeps the tx as a
``BlobTxWithCells``; one that holds whole blobs keeps a ``BlobTxWithSidecar`` and cuts
cells from it when asked (geth keeps both as a ``BlobTxCellSidecar``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode import rlp
from ethnode.core.types.custody import custody_indices
from ethnode.core.types.transaction import (
    BLOB_TX_TYPE,
    KZG_COMMITMENT_SIZE,
    KZG_PROOF_SIZE,
    BlobTx,
    BlobTxWithSidecar,
)
from ethnode.rlp.framing import wrap_bytes, wrap_list
from ethnode.rlp.sedes import FixedBytes, List

CELL_SIZE = 2048  # bytes per cell: 64 field elements x 32 bytes (geth kzg4844.Cell)

_commitments = List(FixedBytes(KZG_COMMITMENT_SIZE))
_proofs = List(FixedBytes(KZG_PROOF_SIZE))
_EMPTY_LIST = b"\xc0"


def blobless_encoding(tx: BlobTx, version: int, commitments: tuple[bytes, ...], proofs: tuple[bytes, ...]) -> bytes:
    """``0x03 || rlp([tx_fields, (version,) [], commitments, proofs])``: the eth/72 network form."""
    parts = [rlp.encode(tx)]
    if version != 0:
        parts.append(rlp.encode(version))
    parts += [_EMPTY_LIST, _commitments.encode(list(commitments)), _proofs.encode(list(proofs))]
    return bytes((BLOB_TX_TYPE,)) + wrap_list(b"".join(parts))


def blobless_item(tx: BlobTxWithSidecar | BlobTxWithCells) -> bytes:
    """The PooledTransactions item eth/72 serves for a pooled blob tx (geth encodeForNetwork)."""
    sc = tx.sidecar
    return wrap_bytes(blobless_encoding(tx.tx, sc.version, sc.commitments, sc.proofs))


@dataclass(frozen=True)
class CellSidecar:
    """Commitments, all cell proofs, and the cells of ``custody`` only (geth BlobTxCellSidecar).

    ``cells`` is blob-major: blob 0's cells in ascending index order, then blob 1's, ...
    """

    cells: tuple[bytes, ...]
    custody: int
    commitments: tuple[bytes, ...]
    proofs: tuple[bytes, ...]
    version: int = 1

    @property
    def indices(self) -> list[int]:
        return custody_indices(self.custody)

    def cell(self, blob: int, index: int) -> bytes | None:
        """Blob ``blob``'s cell ``index``, or None when it is not in custody."""
        if not (self.custody >> index) & 1:
            return None
        per_blob = self.custody.bit_count()
        pos = (self.custody & ((1 << index) - 1)).bit_count()
        return self.cells[blob * per_blob + pos]


@dataclass(frozen=True)
class BlobTxWithCells(BlobTxWithSidecar):
    """A pooled blob tx held as custody cells instead of whole blobs (eth/72 partial fetch).

    A ``BlobTxWithSidecar`` to everything that only unwraps the tx (RPC, ordering); the
    code that needs blobs (engine_getBlobs, the payload builder) tells the two apart.
    """

    sidecar: CellSidecar  # type: ignore[assignment]

    def network_encoding(self) -> bytes:
        """The eth/72 form (no blobs): all a peer can be served of it."""
        sc = self.sidecar
        return blobless_encoding(self.tx, sc.version, sc.commitments, sc.proofs)

    def item(self) -> bytes:
        return wrap_bytes(self.network_encoding())


__all__ = ["CELL_SIZE", "CellSidecar", "BlobTxWithCells", "blobless_encoding", "blobless_item"]
