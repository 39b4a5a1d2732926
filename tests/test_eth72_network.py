"""eth/72 over real loopback connections: serving (blobless PooledTransactions, GetCells,
announcements with a custody mask), fetching blob txs as tx + cells between two ethnode
nodes, and peers breaking eth/72 disconnected with geth's reasons (malformed messages:
SUBPROTOCOL_ERROR; cells failing their KZG proofs: USELESS_PEER, geth's removePeer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import STEP, EthNode, Scripted, connect, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

from ethnode import rlp
from ethnode.core.txpool import NewTxsEvent, TxPool
from ethnode.core.txpool.kzg import KzgVerifier, default_verifier
from ethnode.core.types import BlobTx
from ethnode.core.types.cells import BlobTxWithCells, blobless_item
from ethnode.core.types.custody import CUSTODY_ALL, CUSTODY_DATA, custody_from_bytes, custody_of, custody_to_bytes
from ethnode.core.types.transaction import BLOB_SIZE, BlobTxSidecar, BlobTxWithSidecar, kzg_to_versioned_hash
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.events import TxsAnnounced
from ethnode.eth.protocols.eth.protocol import (
    CELLS,
    ETH71,
    ETH72,
    GET_CELLS,
    GET_POOLED_TRANSACTIONS,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    PooledHashes,
    PooledHashes72,
    message,
)
from ethnode.p2p.disconnect import DiscReason

KEY = PrivateKey(bytes.fromhex("72" * 32))
_CHAIN: list[Any] = []


def chain() -> Any:
    if not _CHAIN:
        _CHAIN.append(ethtest_chain(600))
    return _CHAIN[0]


@pytest.fixture(scope="module")
def kzg() -> KzgVerifier:
    verifier = default_verifier()
    # ckzg is a runtime dependency and the trusted setup ships with ethnode: no verifier is a defect
    assert verifier is not None, "KZG verifier missing: ckzg not importable or the bundled setup unreadable"
    return verifier


@pytest.fixture(scope="module")
def blob(kzg: KzgVerifier) -> dict[str, Any]:
    """A signed 1-blob tx with a real version-1 sidecar, and the blob's 128 cells."""
    ckzg, setup = kzg._ckzg, kzg._setup
    raw = bytearray(BLOB_SIZE)
    for i in range(0, BLOB_SIZE, 32):
        raw[i + 1 : i + 4] = (i // 32 * 7 + 72).to_bytes(3, "big")
    data = bytes(raw)
    commitment = ckzg.blob_to_kzg_commitment(data, setup)
    cells, proofs = ckzg.compute_cells_and_kzg_proofs(data, setup)
    base_fee = chain().current_block.base_fee
    tx = BlobTx(chain().config.chain_id, 0, 10**9, base_fee * 2 + 10**9, 21000, b"\x02" * 20, 0, b"", [], 10**9,
                [kzg_to_versioned_hash(commitment)], 0, 0, 0).sign(KEY)
    full = BlobTxWithSidecar(tx, BlobTxSidecar((data,), (commitment,), tuple(proofs), 1))  # type: ignore[arg-type]
    blobless = BlobTxWithSidecar(tx, BlobTxSidecar((), (commitment,), tuple(proofs), 1))  # type: ignore[arg-type]
    return {"full": full, "blobless": blobless, "cells": list(cells)}


async def node_with_kzg(kzg: KzgVerifier | None) -> EthNode:
    c = chain()
    return await start_node(c, txpool=TxPool(c, kzg=kzg))


def msg(code: int) -> Any:
    m = message(ETH72, code)
    assert m is not None
    return m


async def pooled(node: EthNode, tx_hash: bytes) -> None:
    """Wait for the pool's NewTxsEvent carrying ``tx_hash`` (subscribed as ``node.arrivals``)."""
    async with asyncio.timeout(STEP):
        while True:
            event = await node.arrivals.get()  # type: ignore[attr-defined]
            if any(tx.hash == tx_hash for tx in event.txs):
                return


def index_major(cells: list[bytes], indices: list[int]) -> list[bytes]:
    """One blob: the wire order is just the cells of ``indices``."""
    return [cells[i] for i in indices]


# --- serving ------------------------------------------------------------------------------------


def test_serves_blobless_txs_cells_and_masked_announcements(kzg: KzgVerifier, blob: dict[str, Any]) -> None:
    async def scenario() -> None:
        node = await node_with_kzg(kzg)
        full = blob["full"]
        assert node.txpool.add([full]) == [None]
        s72 = await scripted_peer(node, ETH72)
        s71 = await scripted_peer(node, ETH71)
        try:
            for s, version in ((s72, ETH72), (s71, ETH71)):
                await s.eth.send(GET_POOLED_TRANSACTIONS, msg(GET_POOLED_TRANSACTIONS).encode([full.hash], 1))
                _, items = msg(POOLED_TRANSACTIONS).decode(await s.eth.expect(POOLED_TRANSACTIONS))
                assert items == [blobless_item(full) if version == ETH72 else full.item()]
            mask = custody_to_bytes(custody_of([5, 100]))
            await s72.eth.send(GET_CELLS, msg(GET_CELLS).encode(([full.hash, b"\x09" * 32], mask), 2))
            rid, (hashes, lists, got_mask) = msg(CELLS).decode(await s72.eth.expect(CELLS))
            assert (rid, hashes, lists, got_mask) == (2, [full.hash], [index_major(blob["cells"], [5, 100])], mask)
            # Announcements: eth/72 states the blobless size and the cells we hold (all of them).
            for peer in node.handler.peers.all():
                peer.async_send_pooled_transaction_hashes([full.hash])
            ann = PooledHashes72.decode(await s72.eth.expect(NEW_POOLED_TRANSACTION_HASHES))
            assert (ann.types, ann.hashes, custody_from_bytes(ann.mask)) == (b"\x03", [full.hash], CUSTODY_ALL)
            assert ann.sizes == [len(blob["blobless"].network_encoding())]
            old = PooledHashes.decode(await s71.eth.expect(NEW_POOLED_TRANSACTION_HASHES))
            assert old.sizes == [len(full.network_encoding())]
        finally:
            await s72.stop()
            await s71.stop()
            await node.stop()

    run_checked(scenario)


# --- fetching between two ethnode nodes ---------------------------------------------------------


class Draws:
    def __init__(self, value: int) -> None:
        self.value = value

    def randrange(self, n: int) -> int:
        return self.value


@pytest.mark.parametrize("mode", ["full", "partial"])
def test_blob_tx_travels_as_tx_and_cells(kzg: KzgVerifier, blob: dict[str, Any], mode: str) -> None:
    """Full fetch: B gets the data cells and pools the whole blobs. Partial: two sources announce
    full availability, B fetches its custody cells only and pools a cell tx."""

    async def scenario() -> None:
        sources = [await node_with_kzg(kzg) for _ in range(1 if mode == "full" else 2)]
        sink = await node_with_kzg(kzg)
        arrivals = sink.bus.subscribe(NewTxsEvent, 16)
        sink.arrivals = arrivals  # type: ignore[attr-defined]
        fetcher = sink.handler.blob_fetcher
        custody = custody_of([3, 64, 99, 127])
        if mode == "partial":
            sink.handler.update_custody(custody)
        fetcher.scheduler.rng = Draws(0 if mode == "full" else 99)  # type: ignore[assignment]
        try:
            for src in sources:
                await connect(src, sink)
            for src in sources:
                assert src.txpool.add([blob["full"]]) == [None]  # the broadcast loop announces it
            full = blob["full"]
            await pooled(sink, full.hash)
            got = sink.txpool.get(full.hash)
            if mode == "full":
                assert type(got) is BlobTxWithSidecar and got.sidecar == full.sidecar
            else:
                assert isinstance(got, BlobTxWithCells) and got.sidecar.custody == custody
                assert list(got.sidecar.cells) == index_major(blob["cells"], [3, 64, 99, 127])
            assert fetcher.counts["completed"] == 1 and fetcher.counts["dropped_peers"] == 0
            want = CUSTODY_DATA.bit_count() if mode == "full" else 4
            assert fetcher.counts["requested_cells"] == want
            assert all(len(src.handler.peers) == 1 for src in sources)
        finally:
            for n in (*sources, sink):
                await n.stop()

    run_checked(scenario)


# --- violations ----------------------------------------------------------------------------------


async def _announce_and_answer(node: EthNode, s: Scripted, blob: dict[str, Any], corrupt: bool) -> None:
    """Announce the blob tx with full availability, then answer the node's two requests."""
    full, blobless = blob["full"], blob["blobless"]
    ann = PooledHashes72(b"\x03", [len(blobless.network_encoding())], [full.hash], custody_to_bytes(CUSTODY_ALL))
    await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann.encode())
    rid, hashes = msg(GET_POOLED_TRANSACTIONS).decode(await s.eth.expect(GET_POOLED_TRANSACTIONS))
    assert hashes == [full.hash]
    await s.eth.send(POOLED_TRANSACTIONS, msg(POOLED_TRANSACTIONS).encode([blobless_item(full)], rid))
    rid, (hashes, mask) = msg(GET_CELLS).decode(await s.eth.expect(GET_CELLS))
    assert hashes == [full.hash] and custody_from_bytes(mask) == CUSTODY_DATA  # default custody: all, so full
    cells = index_major(blob["cells"], list(range(64)))
    if corrupt:
        cells[0] = cells[0][:31] + bytes([cells[0][31] ^ 1]) + cells[0][32:]
    await s.eth.send(CELLS, msg(CELLS).encode(([full.hash], [cells], mask), rid))


@pytest.mark.parametrize("corrupt", [False, True])
def test_cells_checked_against_proofs(kzg: KzgVerifier, blob: dict[str, Any], corrupt: bool) -> None:
    async def scenario() -> None:
        node = await node_with_kzg(kzg)
        node.arrivals = node.bus.subscribe(NewTxsEvent, 16)  # type: ignore[attr-defined]
        observed = node.bus.subscribe(TxsAnnounced, 16)  # observers see the mask too
        s = await scripted_peer(node, ETH72)
        try:
            await _announce_and_answer(node, s, blob, corrupt)
            seen = await asyncio.wait_for(observed.get(), STEP)
            assert seen.hashes == [blob["full"].hash] and seen.mask == CUSTODY_ALL
            if corrupt:
                assert await asyncio.wait_for(s.peer.wait_ended(), STEP) is DiscReason.USELESS_PEER
                assert not node.txpool.has(blob["full"].hash)
            else:
                await pooled(node, blob["full"].hash)
                assert node.txpool.get(blob["full"].hash).sidecar == blob["full"].sidecar
                assert s.peer.reason is None
        finally:
            await s.stop()
            await node.stop()

    run_checked(scenario)


async def _solicit_cells(node: EthNode, s: Scripted, mask: int) -> int:
    (peer,) = node.handler.peers.all()
    task = asyncio.ensure_future(peer.request_cells([b"\x01" * 32], mask, timeout=STEP))
    node.extra_tasks = [task]  # type: ignore[attr-defined]
    rid, _ = msg(GET_CELLS).decode(await s.eth.expect(GET_CELLS))
    return int(rid)


def _cells(rid: int, hashes: list[bytes], lists: list[list[bytes]], mask: int) -> bytes:
    return msg(CELLS).encode((hashes, lists, custody_to_bytes(mask)), rid)  # type: ignore[no-any-return]


CELL = b"\x00" * 2048
TWO = custody_of([1, 2])


async def short_mask(node: EthNode, s: Scripted) -> None:
    await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, rlp.encode([b"\x03", [100], [b"\x01" * 32], b"\xff" * 15]))


async def announcement_without_mask(node: EthNode, s: Scripted) -> None:
    await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, PooledHashes(b"\x03", [100], [b"\x01" * 32]).encode())


async def unsolicited_cells(node: EthNode, s: Scripted) -> None:
    await s.eth.send(CELLS, _cells(777, [b"\x01" * 32], [[CELL]], custody_of([1])))


async def cells_lengths_differ(node: EthNode, s: Scripted) -> None:
    rid = await _solicit_cells(node, s, TWO)
    await s.eth.send(CELLS, _cells(rid, [b"\x01" * 32], [[CELL, CELL], [CELL, CELL]], TWO))


async def cells_not_whole_blobs(node: EthNode, s: Scripted) -> None:
    rid = await _solicit_cells(node, s, TWO)
    await s.eth.send(CELLS, _cells(rid, [b"\x01" * 32], [[CELL, CELL, CELL]], TWO))


async def cells_under_empty_mask(node: EthNode, s: Scripted) -> None:
    rid = await _solicit_cells(node, s, TWO)
    await s.eth.send(CELLS, _cells(rid, [b"\x01" * 32], [[CELL]], 0))


async def short_cell(node: EthNode, s: Scripted) -> None:
    rid = await _solicit_cells(node, s, TWO)
    await s.eth.send(CELLS, rlp.encode([rid, [b"\x01" * 32], [[CELL, CELL[:-1]]], custody_to_bytes(TWO)]))


async def get_cells_bad_mask(node: EthNode, s: Scripted) -> None:
    await s.eth.send(GET_CELLS, rlp.encode([1, [b"\x01" * 32], b"\xff" * 17]))


async def blobs_in_pooled_txs_on_72(node: EthNode, s: Scripted, blob: dict[str, Any]) -> None:
    (peer,) = node.handler.peers.all()
    task = asyncio.ensure_future(peer.request_pooled_txs([blob["full"].hash], timeout=STEP))
    node.extra_tasks = [task]  # type: ignore[attr-defined]
    rid, _ = msg(GET_POOLED_TRANSACTIONS).decode(await s.eth.expect(GET_POOLED_TRANSACTIONS))
    await s.eth.send(POOLED_TRANSACTIONS, msg(POOLED_TRANSACTIONS).encode([blob["full"].item()], rid))


VIOLATIONS = {
    "mask of 15 bytes": (ETH72, short_mask),
    "eth/71 announcement on eth/72": (ETH72, announcement_without_mask),
    "unsolicited Cells": (ETH72, unsolicited_cells),
    "Cells: hashes and lists differ": (ETH72, cells_lengths_differ),
    "Cells: not whole blobs of the mask": (ETH72, cells_not_whole_blobs),
    "Cells: cells under an empty mask": (ETH72, cells_under_empty_mask),
    "Cells: a cell of 2047 bytes": (ETH72, short_cell),
    "GetCells: mask of 17 bytes": (ETH72, get_cells_bad_mask),
    "blobs in PooledTransactions on eth/72": (ETH72, blobs_in_pooled_txs_on_72),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_malformed_eth72_disconnects_with_subprotocol_error(case: str, request: pytest.FixtureRequest) -> None:
    version, action = VIOLATIONS[case]
    blob = request.getfixturevalue("blob") if action is blobs_in_pooled_txs_on_72 else None

    async def scenario() -> None:
        node = await start_node(chain())
        s = await scripted_peer(node, version)
        try:
            if action is blobs_in_pooled_txs_on_72:
                await action(node, s, blob)
            else:
                await action(node, s)
            assert await asyncio.wait_for(s.peer.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
            await asyncio.wait_for(node.handler.wait_for_peers(0), STEP)
        finally:
            for task in getattr(node, "extra_tasks", []):
                await asyncio.gather(task, return_exceptions=True)
            await s.stop()
            await node.stop()

    run_checked(scenario)
