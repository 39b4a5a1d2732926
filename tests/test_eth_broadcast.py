"""The handler's loops over loopback: txBroadcastLoop's ⌈√N⌉ policy, minedBroadcastLoop on eth/68
(NewBlock to √N, NewBlockHashes to the rest) and eth/69 (BlockRangeUpdate), the 32-block range
rule on head changes, txsync on connect, and the syncer's triggers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from eth_support import STEP, EthNode, Scripted, connect, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

from ethnode import rlp
from ethnode.core.events import NewMinedBlockEvent
from ethnode.core.types import BlobTx, DynamicFeeTx
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.downloader import Downloader
from ethnode.eth.handler import TX_MAX_BROADCAST_SIZE, BroadcastChoice
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_RANGE_UPDATE,
    ETH68,
    ETH69,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    TRANSACTIONS,
    BlockRange,
    NewBlock,
    PooledHashes,
    message,
)
from ethnode.eth.sync import Syncer

_CHAIN: list[Any] = []


def chain() -> Any:
    if not _CHAIN:
        _CHAIN.append(ethtest_chain(600))
    return _CHAIN[0]


def signed(key: PrivateKey, nonce: int, data: bytes = b"") -> Any:
    gas = 21000 + 40 * len(data)
    return DynamicFeeTx(chain().config.chain_id, nonce, 10**9, 10**11, gas, b"\x01" * 20, 1, data, [], 0, 0,
                        0).sign(key)


class Tap:
    """Every eth message the scripted peers receive, in one queue, sorted per peer and code."""

    def __init__(self, peers: list[Scripted]) -> None:
        self.queue: asyncio.Queue[tuple[Any, int, bytes]] = asyncio.Queue()
        self.index = {id(p.eth): i for i, p in enumerate(peers)}
        self.got: list[dict[int, list[bytes]]] = [{} for _ in peers]
        for p in peers:
            p.eth.tap = self.queue

    async def until(self, done: Callable[[list[dict[int, list[bytes]]]], bool]) -> list[dict[int, list[bytes]]]:
        async with asyncio.timeout(STEP):
            while not done(self.got):
                eth, code, payload = await self.queue.get()
                self.got[self.index[id(eth)]].setdefault(code, []).append(payload)
        return self.got

    def items(self, code: int, decode: Callable[[bytes], list[Any]]) -> list[list[Any]]:
        return [[x for payload in g.get(code, []) for x in decode(payload)] for g in self.got]

    def count(self, code: int, decode: Callable[[bytes], list[Any]]) -> int:
        return sum(map(len, self.items(code, decode)))


async def star(node: EthNode, count: int, version: int = ETH69) -> list[Scripted]:
    return [await scripted_peer(node, version) for _ in range(count)]


async def stop_all(node: EthNode, peers: list[Scripted]) -> None:
    for p in peers:
        await p.stop()
    await node.stop()


def _tx_hashes(payload: bytes) -> list[bytes]:
    from ethnode.core.types.transaction import decode_tx_item

    return [decode_tx_item(rlp.encode(i)).hash for i in rlp.decode(payload)]


def _ann_hashes(payload: bytes) -> list[bytes]:
    return list(PooledHashes.decode(payload).hashes)


def _new_block(payload: bytes) -> list[Any]:
    return [NewBlock.decode(payload)]


def _block_anns(payload: bytes) -> list[Any]:
    return message(ETH68, NEW_BLOCK_HASHES).decode(payload)  # type: ignore[no-any-return,union-attr]


def _range(payload: bytes) -> list[Any]:
    return [BlockRange.decode(payload)]


def test_choice_is_ceil_sqrt_deterministic_per_sender() -> None:
    class P:
        def __init__(self, i: int) -> None:
            self.id = i.to_bytes(32, "big")

    choice = BroadcastChoice(b"\x01" * 32, b"k" * 16)
    for n, want in ((1, 1), (2, 2), (4, 2), (5, 3), (9, 3), (10, 4), (25, 5), (26, 6)):
        peers = [P(i) for i in range(n)]
        assert len(choice.choose(peers, b"\x02" * 20)) == want == math.ceil(math.sqrt(n))  # type: ignore[arg-type]
    peers = [P(i) for i in range(25)]
    first = choice.choose(peers, b"\xaa" * 20)  # type: ignore[arg-type]
    assert choice.choose(list(reversed(peers)), b"\xaa" * 20) == first  # type: ignore[arg-type]
    others = {choice.choose(peers, bytes([i]) * 20) for i in range(20)}  # type: ignore[arg-type]
    assert len(others) > 1  # senders spread over different peers


def test_nine_peers_three_get_full_txs_six_get_announcements() -> None:
    async def scenario() -> None:
        node = await start_node(chain())
        peers = await star(node, 9)
        tap = Tap(peers)
        try:
            key = PrivateKey(bytes.fromhex("46" * 32))
            txs = [signed(key, n) for n in range(5)]
            assert node.txpool.add(txs, local=True) == [None] * 5  # -> NewTxsEvent -> txBroadcastLoop
            await tap.until(lambda _: tap.count(TRANSACTIONS, _tx_hashes) + tap.count(
                NEW_POOLED_TRANSACTION_HASHES, _ann_hashes) == 45)
            full = tap.items(TRANSACTIONS, _tx_hashes)
            ann = tap.items(NEW_POOLED_TRANSACTION_HASHES, _ann_hashes)
            hashes = sorted(t.hash for t in txs)
            direct = [i for i in range(9) if full[i]]
            assert len(direct) == 3  # ⌈√9⌉, the same three for all txs of one sender
            for i in range(9):
                assert sorted(full[i] if i in direct else ann[i]) == hashes
                assert (ann[i] if i in direct else full[i]) == []
            # Peers that know the txs get nothing more.
            assert node.handler.broadcast_transactions(txs) == (0, 0)
        finally:
            await stop_all(node, peers)

    run_checked(scenario)


def test_large_and_blob_txs_are_only_announced() -> None:
    async def scenario() -> None:
        node = await start_node(chain())
        peers = await star(node, 4)
        tap = Tap(peers)
        try:
            key = PrivateKey(bytes.fromhex("47" * 32))
            big = signed(key, 0, b"\x01" * 5000)
            assert big.size > TX_MAX_BROADCAST_SIZE
            assert node.txpool.add([big], local=True) == [None]
            await tap.until(lambda _: tap.count(NEW_POOLED_TRANSACTION_HASHES, _ann_hashes) == 4)
            assert tap.items(NEW_POOLED_TRANSACTION_HASHES, _ann_hashes) == [[big.hash]] * 4
            assert tap.count(TRANSACTIONS, _tx_hashes) == 0
            blob = BlobTx(chain().config.chain_id, 0, 10**9, 10**11, 21000, b"\x02" * 20, 0, b"", [], 10**9,
                          [b"\x01" + b"\x00" * 31], 0, 0, 0).sign(key)
            assert node.handler.broadcast_transactions([blob]) == (0, 4)
        finally:
            await stop_all(node, peers)

    run_checked(scenario)


def test_mined_block_on_eth68_and_eth69() -> None:
    async def scenario() -> None:
        node = await start_node(chain())
        old = await star(node, 9, ETH68)
        new = await star(node, 2, ETH69)
        tap = Tap(old + new)
        try:
            block = chain().get_block_by_number(600)
            node.bus.post(NewMinedBlockEvent(block))
            await tap.until(lambda _: tap.count(NEW_BLOCK, _new_block) == 3 and tap.count(
                NEW_BLOCK_HASHES, _block_anns) == 6 and tap.count(BLOCK_RANGE_UPDATE, _range) == 2)
            props, anns = tap.items(NEW_BLOCK, _new_block), tap.items(NEW_BLOCK_HASHES, _block_anns)
            got_block = [i for i in range(9) if props[i]]
            assert len(got_block) == 3  # ⌊√9⌋, as geth
            td = chain().get_td(block.hash, 600)
            for i in range(9):
                if i in got_block:
                    assert props[i][0].block == block and props[i][0].td == td and anns[i] == []
                else:
                    assert [(a.hash, a.number) for a in anns[i]] == [(block.hash, 600)]
            ranges = tap.items(BLOCK_RANGE_UPDATE, _range)
            assert ranges[9:] == [[BlockRange(0, 600, block.hash)]] * 2 and ranges[:9] == [[]] * 9
            assert props[9:] == [[], []] and anns[9:] == [[], []]
        finally:
            await stop_all(node, old + new)

    run_checked(scenario)


def test_block_range_update_every_32_blocks_or_when_the_head_moves_back() -> None:
    async def scenario() -> None:
        c = ethtest_chain(600)
        node = await start_node(c)
        peers = await star(node, 1, ETH69)
        tap = Tap(peers)
        try:
            hashes = {n: c.get_canonical_hash(n) for n in (560, 570, 592, 600)}
            c.set_canonical(hashes[560])  # the chain's ChainHeadEvent reaches the head loop: back at once
            await tap.until(lambda _: tap.count(BLOCK_RANGE_UPDATE, _range) == 1)
            assert tap.items(BLOCK_RANGE_UPDATE, _range)[0] == [BlockRange(0, 560, hashes[560])]
            sent = [node.handler.broadcast_block_range(c.get_header_by_hash(hashes[n])) for n in (570, 592, 600)]
            assert sent == [0, 1, 0]  # 570: too soon; 592: 32 on; 600: too soon again
            await tap.until(lambda _: tap.count(BLOCK_RANGE_UPDATE, _range) == 2)
            assert tap.items(BLOCK_RANGE_UPDATE, _range)[0][1].latest == 592
        finally:
            await stop_all(node, peers)

    run_checked(scenario)


def test_txsync_announces_pending_txs_in_packs() -> None:
    async def scenario() -> None:
        c = chain()
        node = await start_node(c)
        try:
            key = PrivateKey(bytes.fromhex("48" * 32))
            txs = [signed(key, n) for n in range(3300)]
            assert node.txpool.add(txs, local=True) == [None] * 3300
            (peer,) = await star(node, 1)
            packs: list[int] = []
            while sum(packs) < 3300:
                packs.append(len(_ann_hashes(await peer.eth.expect(NEW_POOLED_TRANSACTION_HASHES))))
            assert packs == [3200, 100]  # ~100 KiB of hashes per announcement
            await peer.stop()
        finally:
            await node.stop()

    run_checked(scenario, timeout=60)


class StubDownloader:
    """Records what the handler and the syncer ask; ahead-ness as the real downloader judges it."""

    syncing = False

    def __init__(self, chain: Any = None) -> None:
        self.synced: list[Any] = []
        self.registered: list[Any] = []
        self.called = asyncio.Event()
        self._judge = Downloader(chain) if chain is not None else None

    def is_ahead(self, peer: Any) -> bool:
        return self._judge is not None and self._judge.is_ahead(peer)

    def register_peer(self, peer: Any) -> None:
        self.registered.append(peer)

    def unregister_peer(self, peer: Any) -> None:
        self.registered.remove(peer)

    async def synchronise(self, peer: Any) -> bool:
        self.synced.append(peer)
        self.called.set()
        return True

    async def stop(self) -> None:
        pass


def test_syncer_waits_for_five_peers_or_the_forced_cycle() -> None:
    async def scenario() -> None:
        short = ethtest_chain(10)
        stub = StubDownloader(short)
        node = await start_node(short, loops=False, downloader=stub)
        node.handler.syncer.force_cycle = 0.3  # geth: 10 s
        await node.handler.start()
        ahead = await start_node(chain())
        try:
            await connect(ahead, node)  # one peer, ahead of us: not enough peers for a peer-event sync
            assert node.handler.syncer.next_sync_target(forced=False) is None
            best = node.handler.peers.best_peer()
            assert node.handler.syncer.next_sync_target(forced=True) is best
            await asyncio.wait_for(stub.called.wait(), STEP)  # the forced cycle fired
            assert stub.synced[0] is best and stub.registered == [best]
            assert node.handler.syncer.attempts >= 1 and node.handler.syncer.last_target is best
            others = [await start_node(ethtest_chain(5)) for _ in range(4)]
            for other in others:
                await connect(other, node)
            assert len(node.handler.peers) == 5
            assert node.handler.syncer.next_sync_target(forced=False) is best  # 5 peers: peer events count
            for other in others:
                await other.stop()
        finally:
            await ahead.stop()
            await node.stop()

    run_checked(scenario)


def test_forced_sync_cycle_is_not_postponed_by_peer_events() -> None:
    """A NewBlock per second wakes the syncer more often than every 10 s; with one peer ahead the
    forced cycle must still come (geth's force ticker), else an eth/68 follower never catches up."""

    class OnePeer:
        def __init__(self, peer: Any) -> None:
            self.peer = peer

        def __len__(self) -> int:
            return 1

        def best_peer(self) -> Any:
            return self.peer

    async def scenario() -> None:
        stub = StubDownloader()
        stub.is_ahead = lambda peer: True  # type: ignore[method-assign]
        handler = type("Handler", (), {"peers": OnePeer(object()), "max_peers": None, "chain": None})()
        syncer = Syncer(handler, stub, force_cycle=0.3)  # type: ignore[arg-type]
        task = asyncio.create_task(syncer.run())
        try:
            for _ in range(20):  # a peer event every 50 ms for 1 s
                syncer.peer_event()
                await asyncio.sleep(0.05)
            assert stub.synced, "the forced cycle never fired"
        finally:
            task.cancel()

    run_checked(scenario)
