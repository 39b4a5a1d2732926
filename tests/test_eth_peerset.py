"""EthPeer and PeerSet without sockets: registration starts the broadcast task, queues drop their
oldest entries at geth's bounds, known caches filter, packs stay near 100 KiB, BestPeer ranks by
TD on eth/68 and by head on eth/69."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Any

import pytest
from p2p_support import run_checked

from ethnode import rlp
from ethnode.core.types import Block, Header
from ethnode.eth.peerset import PeerSet, PeerSetError
from ethnode.eth.protocols.eth.knowncache import MAX_KNOWN_BLOCKS, MAX_KNOWN_TXS
from ethnode.eth.protocols.eth.peer import (
    MAX_QUEUED_BLOCK_ANNS,
    MAX_QUEUED_BLOCKS,
    MAX_QUEUED_TX_ANNS,
    MAX_QUEUED_TXS,
    MAX_TX_PACKET_SIZE,
    EthPeer,
)
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_RANGE_UPDATE,
    ETH68,
    ETH69,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    TRANSACTIONS,
    BlockRange,
    PooledHashes,
)


class FakeTx:
    def __init__(self, h: bytes, size: int) -> None:
        self.hash, self._item, self.type = h, rlp.encode(b"\x01" * size), 2

    def item(self) -> bytes:
        return self._item


class FakePool:
    def __init__(self) -> None:
        self.txs: dict[bytes, FakeTx] = {}

    def put(self, count: int, size: int = 100) -> list[bytes]:
        hashes = [os.urandom(32) for _ in range(count)]
        for h in hashes:
            self.txs[h] = FakeTx(h, size)
        return hashes

    def get(self, h: bytes) -> FakeTx | None:
        return self.txs.get(h)

    def get_metadata(self, h: bytes) -> tuple[int, int] | None:
        tx = self.txs.get(h)
        return None if tx is None else (tx.type, len(tx.item()))


class FakeChannel:
    """What EthPeer needs of a ProtocolChannel; records what it sends."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.peer = SimpleNamespace(remote_id=os.urandom(64))
        self.sent: list[tuple[int, bytes]] = []
        self.arrived = asyncio.Event()
        self.reason: Any = None

    async def send(self, code: int, payload: bytes) -> None:
        self.sent.append((code, payload))
        self.arrived.set()

    def disconnect(self, reason: Any) -> None:
        self.reason = reason


def make_peer(version: int = ETH69, pool: FakePool | None = None) -> EthPeer:
    backend = SimpleNamespace(txpool=pool or FakePool())
    return EthPeer(FakeChannel(version), backend)  # type: ignore[arg-type]


def block(number: int) -> Block:
    header = Header(os.urandom(32), bytes(32), bytes(20), bytes(32), bytes(32), bytes(32), bytes(256), 1, number,
                    8_000_000, 0, number, b"", bytes(32), bytes(8))
    return Block.new(header)


def test_queues_drop_oldest_at_geth_bounds() -> None:
    async def scenario() -> None:
        assert (MAX_QUEUED_TXS, MAX_QUEUED_TX_ANNS, MAX_QUEUED_BLOCKS, MAX_QUEUED_BLOCK_ANNS) == (4096, 4096, 4, 4)
        peer = make_peer(ETH68)
        hashes = [i.to_bytes(32, "big") for i in range(5000)]
        peer.async_send_transactions(hashes[:3000])
        peer.async_send_transactions(hashes[3000:])
        peer.async_send_pooled_transaction_hashes(hashes)
        blocks = [block(n) for n in range(6)]
        for b in blocks:
            peer.async_send_new_block(b, 1)
            peer.async_send_new_block_hash(b)
        assert peer.queued() == {"txs": 4096, "tx_anns": 4096, "blocks": 4, "block_anns": 4}
        assert peer.dropped == {"txs": 904, "tx_anns": 904, "blocks": 2, "block_anns": 2}
        assert list(peer._txs)[0] == hashes[904] and list(peer._txs)[-1] == hashes[-1]
        assert [b for b, _ in peer._blocks] == blocks[2:] and list(peer._block_anns) == blocks[2:]
        # Everything queued is marked known, dropped or not (geth marks on queueing too).
        assert all(peer.knows_transaction(h) for h in hashes[:10]) and peer.knows_block(blocks[0].hash)
        with pytest.raises(ValueError):
            make_peer(ETH69).async_send_new_block(blocks[0], 1)

    run_checked(scenario)


def test_known_caches_are_bounded_oldest_first() -> None:
    async def scenario() -> None:
        peer = make_peer()
        assert (MAX_KNOWN_TXS, MAX_KNOWN_BLOCKS) == (32768, 1024)
        hashes = [i.to_bytes(32, "big") for i in range(MAX_KNOWN_TXS + 10)]
        peer.mark_transactions(b"".join(hashes))
        assert len(peer.known_txs) == MAX_KNOWN_TXS
        assert not peer.knows_transaction(hashes[9]) and peer.knows_transaction(hashes[10])
        for i in range(MAX_KNOWN_BLOCKS + 1):
            peer.mark_block(i.to_bytes(32, "big"))
        assert not peer.knows_block(bytes(32)) and peer.knows_block((1).to_bytes(32, "big"))

    run_checked(scenario)


def test_register_starts_and_unregister_stops_the_broadcast_task() -> None:
    async def scenario() -> None:
        pool = FakePool()
        peers = PeerSet()
        a, b = make_peer(pool=pool), make_peer(pool=pool)
        peers.register(a)
        peers.register(b)
        assert a._broadcast_task is not None and not a._broadcast_task.done()
        with pytest.raises(PeerSetError, match="already registered"):
            peers.register(a)
        hashes = pool.put(3)
        a.async_send_transactions(hashes[:2])
        b.async_send_pooled_transaction_hashes(hashes)
        await asyncio.wait_for(asyncio.gather(a.channel.arrived.wait(), b.channel.arrived.wait()), 5)
        assert [c for c, _ in a.channel.sent] == [TRANSACTIONS]
        assert rlp.decode(a.channel.sent[0][1]) == [rlp.decode(pool.txs[h].item()) for h in hashes[:2]]
        ann = PooledHashes.decode(b.channel.sent[0][1])
        assert list(ann.hashes) == hashes and ann.types == b"\x02\x02\x02"
        assert list(ann.sizes) == [len(pool.txs[h].item()) for h in hashes]
        assert peers.peers_without_tx(hashes[1]) == [] and peers.peers_without_tx(hashes[2]) == [a]
        assert peers.peers_without_tx(os.urandom(32)) == [a, b]
        assert peers.unregister(a) and not peers.unregister(a)
        await asyncio.sleep(0)
        assert a._broadcast_task.cancelled() or a._broadcast_task.done()
        assert peers.close() == [b]
        with pytest.raises(PeerSetError, match="closed"):
            peers.register(make_peer())
        b.close()
        await asyncio.gather(a._broadcast_task, b._broadcast_task, return_exceptions=True)

    run_checked(scenario)


def test_broadcast_packs_and_priorities() -> None:
    async def scenario() -> None:
        pool = FakePool()
        peer = make_peer(ETH68, pool)
        txs = pool.put(250, size=1000)
        gone = pool.put(5)
        for h in gone:
            del pool.txs[h]  # left the pool before being sent: skipped
        ann = pool.put(4000, size=50)
        peer.async_send_transactions(txs + gone)
        peer.async_send_pooled_transaction_hashes(ann)
        b = block(9)
        peer.async_send_new_block(b, 77)
        peer.async_send_new_block_hash(b)
        peer.start_broadcast()
        while peer.queued() != {"txs": 0, "tx_anns": 0, "blocks": 0, "block_anns": 0}:
            peer.channel.arrived.clear()
            await asyncio.wait_for(peer.channel.arrived.wait(), 5)
        await asyncio.sleep(0)
        codes = [c for c, _ in peer.channel.sent]
        assert codes[:2] == [NEW_BLOCK, NEW_BLOCK_HASHES]  # blocks go first
        tx_msgs = [rlp.decode(p) for c, p in peer.channel.sent if c == TRANSACTIONS]
        assert sum(len(m) for m in tx_msgs) == 250
        assert all(sum(len(rlp.encode(t)) for t in m) < MAX_TX_PACKET_SIZE + 1100 for m in tx_msgs)
        assert len(tx_msgs) == 3  # 1 KiB txs, ~100 KiB per pack
        anns = [PooledHashes.decode(p) for c, p in peer.channel.sent if c == NEW_POOLED_TRANSACTION_HASHES]
        assert [len(a.hashes) for a in anns] == [3200, 800]  # 100 KiB of 32-byte hashes per pack
        peer.close()
        await asyncio.gather(peer._broadcast_task, return_exceptions=True)

    run_checked(scenario)


def test_block_range_update_keeps_only_the_newest() -> None:
    async def scenario() -> None:
        peer = make_peer(ETH69)
        for n in range(1, 4):
            peer.send_block_range_update(BlockRange(0, n, n.to_bytes(32, "big")))
        peer.start_broadcast()
        await asyncio.wait_for(peer.channel.arrived.wait(), 5)
        await asyncio.sleep(0)
        assert [(c, BlockRange.decode(p).latest) for c, p in peer.channel.sent] == [(BLOCK_RANGE_UPDATE, 3)]
        make_peer(ETH68).send_block_range_update(BlockRange(0, 1, b"\x01" * 32))  # not on eth/68: ignored
        peer.close()
        await asyncio.gather(peer._broadcast_task, return_exceptions=True)

    run_checked(scenario)


def test_best_peer_by_td_on_68_and_head_on_69() -> None:
    async def scenario() -> None:
        peers = PeerSet()
        assert peers.best_peer() is None
        low, high = make_peer(ETH68), make_peer(ETH68)
        low.set_head(b"\x01" * 32, 100)
        high.set_head(b"\x02" * 32, 10**20)
        peers.register(low)
        peers.register(high)
        assert peers.best_peer() is high
        short, tall = make_peer(ETH69), make_peer(ETH69)
        short.set_block_range(BlockRange(0, 50, b"\x03" * 32))
        tall.set_block_range(BlockRange(0, 600, b"\x04" * 32))
        peers.register(short)
        peers.register(tall)
        assert peers.best_peer() is tall  # eth/69 peers win: post-merge heads are comparable, TDs are not
        peers.unregister(tall)
        peers.unregister(short)
        assert peers.best_peer() is high
        for p in (low, high, short, tall):
            p.close()
        await asyncio.sleep(0)

    run_checked(scenario)
