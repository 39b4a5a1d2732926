"""eth/72 cells: KZG cell-proof checks (ckzg, c-kzg-4844), the blob buffer that joins a
blobless tx with its cells, and the pool serving cells and blobless sizes.

Real blobs, real proofs, with the trusted setup ethnode ships.
"""

from __future__ import annotations

from typing import Any

import pytest
from txpool_support import blob_tx, make_chain

from ethnode.core.txpool import TxPool, TxPoolConfig, errors
from ethnode.core.txpool.blobbuffer import BlobBuffer
from ethnode.core.txpool.kzg import KzgVerifier, default_verifier
from ethnode.core.types.cells import BlobTxWithCells, blobless_encoding
from ethnode.core.types.custody import CUSTODY_ALL, custody_of
from ethnode.core.types.transaction import BLOB_SIZE, BlobTxSidecar, BlobTxWithSidecar
from ethnode.eth.fetcher.blob_scheduler import PeerCells

OSAKA = ("shanghaiTime", "cancunTime", "pragueTime", "osakaTime")
CUSTODY = [5, 21, 40, 58]


@pytest.fixture(scope="module")
def kzg() -> KzgVerifier:
    verifier = default_verifier()
    # ckzg is a runtime dependency and the trusted setup ships with ethnode: no verifier is a defect
    assert verifier is not None, "KZG verifier missing: ckzg not importable or the bundled setup unreadable"
    return verifier


def real_blob(seed: int) -> bytes:
    blob = bytearray(BLOB_SIZE)
    for i in range(0, BLOB_SIZE, 32):
        blob[i + 1 : i + 4] = (i // 32 * 31 + seed).to_bytes(3, "big")  # field elements below the modulus
    return bytes(blob)


@pytest.fixture(scope="module")
def blobs(kzg: KzgVerifier) -> dict[str, Any]:
    """Two real blobs: sidecar (version 1) and each blob's 128 cells."""
    ckzg, setup = kzg._ckzg, kzg._setup
    raw = [real_blob(1), real_blob(2)]
    commitments, proofs, cells = [], [], []
    for blob in raw:
        commitments.append(ckzg.blob_to_kzg_commitment(blob, setup))
        c, p = ckzg.compute_cells_and_kzg_proofs(blob, setup)
        cells.append(list(c))
        proofs.extend(p)
    return {"sidecar": BlobTxSidecar(tuple(raw), tuple(commitments), tuple(proofs), 1), "cells": cells}


def pick(cells: list[list[bytes]], indices: list[int]) -> list[bytes]:
    """Blob-major cells of ``indices``."""
    return [blob_cells[i] for blob_cells in cells for i in indices]


def test_cell_proofs_valid_and_invalid(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    sc, cells = blobs["sidecar"], blobs["cells"]
    kzg.verify_cells(pick(cells, CUSTODY), sc.commitments, sc.proofs, CUSTODY)
    kzg.verify_cells(pick(cells, list(range(64))), sc.commitments, sc.proofs, list(range(64)))
    corrupted = pick(cells, CUSTODY)
    corrupted[0] = corrupted[0][:31] + bytes([corrupted[0][31] ^ 1]) + corrupted[0][32:]  # devp2p's corruption
    with pytest.raises(errors.KZGVerificationError):
        kzg.verify_cells(corrupted, sc.commitments, sc.proofs, CUSTODY)
    swapped = pick(cells, [21, 5, 40, 58])  # right cells, wrong indices
    with pytest.raises(errors.KZGVerificationError):
        kzg.verify_cells(swapped, sc.commitments, sc.proofs, CUSTODY)
    with pytest.raises(errors.KZGVerificationError, match="cells for 2 blobs"):
        kzg.verify_cells(pick(cells, CUSTODY)[:-1], sc.commitments, sc.proofs, CUSTODY)


def test_compute_and_recover(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    sc, cells = blobs["sidecar"], blobs["cells"]
    assert kzg.compute_cells(sc.blobs[0]) == cells[0]
    assert b"".join(cells[1][:64]) == sc.blobs[1]  # the data cells are the blob
    odd = list(range(1, 128, 2))  # extension cells only: the blob must be recovered
    assert kzg.recover_blob([cells[0][i] for i in odd], odd) == sc.blobs[0]


class Drops:
    def __init__(self) -> None:
        self.peers: list[tuple[Any, str]] = []

    def __call__(self, peer: Any, reason: str) -> None:
        self.peers.append((peer, reason))


def setup_buffer(kzg: KzgVerifier) -> tuple[TxPool, BlobBuffer, Drops]:
    pool = TxPool(make_chain(time_forks=OSAKA), TxPoolConfig(), kzg=kzg)
    drops = Drops()
    return pool, BlobBuffer(pool, drops), drops


def blobless(tx: BlobTxWithSidecar) -> BlobTxWithSidecar:
    sc = tx.sidecar
    return BlobTxWithSidecar(tx.tx, BlobTxSidecar((), sc.commitments, sc.proofs, sc.version))


@pytest.mark.parametrize("tx_first", [True, False])
def test_custody_cells_make_a_cell_tx(kzg: KzgVerifier, blobs: dict[str, Any], tx_first: bool) -> None:
    pool, buffer, drops = setup_buffer(kzg)
    full = blob_tx(0, 0, sidecar=blobs["sidecar"])
    tx = blobless(full)
    deliveries = {"a": PeerCells(pick(blobs["cells"], CUSTODY[:2]), CUSTODY[:2]),
                  "b": PeerCells(pick(blobs["cells"], CUSTODY[2:]), CUSTODY[2:])}
    if tx_first:
        assert buffer.add_txs([tx], "a") == [None] and buffer.has_tx(tx.hash)
        buffer.add_cells(tx.hash, deliveries, custody_of(CUSTODY))
    else:
        buffer.add_cells(tx.hash, deliveries, custody_of(CUSTODY))
        assert buffer.has_cells(tx.hash)
        assert buffer.add_txs([tx], "a") == [None]
    assert buffer.results[tx.hash] is None and not drops.peers
    assert not buffer.txs and not buffer.cells and buffer.held == 0 and not buffer.peer_bytes
    pooled = pool.get(tx.hash)
    assert isinstance(pooled, BlobTxWithCells) and pooled.sidecar.custody == custody_of(CUSTODY)
    # Served as it came: without blobs, its custody cells only, never to a pre-eth/72 peer.
    assert pool.custody(tx.hash) == custody_of(CUSTODY)
    assert pool.cells(tx.hash, [21, 58]) == [blobs["cells"][b][i] for i in (21, 58) for b in (0, 1)]
    assert pool.cells(tx.hash, [21, 22]) is None  # cell 22 is not held: nothing for this tx
    assert pool.announce_size(tx.hash, 72) == len(tx.network_encoding()) == pool.announce_size(tx.hash, 71)
    assert pool.blobs(full.tx.blob_hashes) == [None, None]  # engine_getBlobs needs whole blobs


def test_data_cells_give_whole_blobs(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    pool, buffer, drops = setup_buffer(kzg)
    full = blob_tx(0, 0, sidecar=blobs["sidecar"])
    data = list(range(64))
    assert buffer.add_txs([blobless(full)], "a") == [None]
    buffer.add_cells(full.hash, {"a": PeerCells(pick(blobs["cells"], data), data)}, custody_of(data))
    assert buffer.results[full.hash] is None
    pooled = pool.get(full.hash)
    assert type(pooled) is BlobTxWithSidecar and pooled.sidecar == full.sidecar
    assert pool.custody(full.hash) == CUSTODY_ALL
    # Cells are cut from the blobs on request, index-major.
    assert pool.cells(full.hash, [100, 3]) == [blobs["cells"][b][i] for i in (100, 3) for b in (0, 1)]
    sc = full.sidecar
    assert pool.announce_size(full.hash, 72) == len(blobless_encoding(full.tx, 1, sc.commitments, sc.proofs))
    assert pool.announce_size(full.hash, 71) == len(full.network_encoding())


def test_invalid_cells_drop_their_sender_only(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    pool, buffer, drops = setup_buffer(kzg)
    full = blob_tx(0, 0, sidecar=blobs["sidecar"])
    good = PeerCells(pick(blobs["cells"], CUSTODY[:2]), CUSTODY[:2])
    bad_cells = pick(blobs["cells"], CUSTODY[2:])
    bad_cells[1] = bytes(2048)
    buffer.add_cells(full.hash, {"good": good, "bad": PeerCells(bad_cells, CUSTODY[2:])}, custody_of(CUSTODY))
    assert buffer.add_txs([blobless(full)], "good") == [None]
    assert [p for p, _ in drops.peers] == ["bad"] and "invalid cells" in drops.peers[0][1]
    assert not pool.has(full.hash) and isinstance(buffer.results[full.hash], errors.KZGVerificationError)
    assert not buffer.txs and not buffer.cells


def test_blobless_tx_checks(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    pool, buffer, _ = setup_buffer(kzg)
    full = blob_tx(0, 0, sidecar=blobs["sidecar"])
    (err,) = buffer.add_txs([full], "a")  # blobs present where eth/72 sends none
    assert isinstance(err, errors.BlobSidecarError)
    cheap = blobless(blob_tx(0, 1, tip=0, sidecar=blobs["sidecar"]))
    (err,) = buffer.add_txs([cheap], "a")
    assert isinstance(err, errors.TxGasPriceTooLowError)  # the pool's rules apply before any cell is fetched
    assert not buffer.txs


def test_buffer_limits(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    pool = TxPool(make_chain(time_forks=OSAKA), TxPoolConfig(), kzg=kzg)
    tx = blobless(blob_tx(0, 0, sidecar=blobs["sidecar"]))
    size = len(tx.network_encoding())
    buffer = BlobBuffer(pool, Drops(), max_peer_bytes=size + 10)
    other = blobless(blob_tx(1, 0, sidecar=blobs["sidecar"]))
    assert buffer.add_txs([tx], "a") == [None]
    (err,) = buffer.add_txs([other], "a")
    assert isinstance(err, errors.TxPoolOverflowError)  # a's allowance is spent
    assert buffer.add_txs([other], "b") == [None]
    now = [0.0]
    buffer.clock = lambda: now[0]
    buffer.txs[tx.hash].added = 0.0
    now[0] = 121.0  # past the 2-minute lifetime
    buffer.add_cells(b"\x00" * 32, {}, 0)
    assert not buffer.has_tx(tx.hash)


def test_get_cells_computes_a_bounded_number_of_txs(kzg: KzgVerifier, blobs: dict[str, Any]) -> None:
    """Data cells are slices of the blob (free); extension cells are computed for at most
    MAX_CELL_COMPUTES txs per GetCells, the rest of such a request is left out."""
    from ethnode.eth.protocols.eth.serve import MAX_CELL_COMPUTES, serve_cells

    pool = TxPool(make_chain(time_forks=OSAKA), TxPoolConfig(), kzg=kzg)
    txs = [blob_tx(k, 0, sidecar=blobs["sidecar"]) for k in range(MAX_CELL_COMPUTES + 2)]
    assert pool.add(txs) == [None] * len(txs)
    hashes = [t.hash for t in txs]
    served, cells = serve_cells(pool, hashes, custody_of([0, 63]))
    assert served == hashes and cells[0] == [blobs["cells"][b][i] for i in (0, 63) for b in (0, 1)]
    served, cells = serve_cells(pool, hashes, custody_of([5, 100]))
    assert served == hashes[:MAX_CELL_COMPUTES]
    assert cells[-1] == [blobs["cells"][b][i] for i in (5, 100) for b in (0, 1)]
    served, _ = serve_cells(pool, hashes, custody_of([5, 100]))  # computed ones are kept: more fit now
    assert served == hashes
