"""The block fetcher: announcement bookkeeping and the import queue (sans-IO), then over loopback:
eth/68 NewBlockHashes -> header and body fetched -> imported -> propagated as NewBlock to the next
node, which imports it too; eth/69 BlockRangeUpdate a few blocks ahead -> those blocks fetched and
imported; peers answering with the wrong header or body dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import STEP, EthNode, connect, ethtest_blocks, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked
from sync_support import FakePeer, ethtest_with_genesis

from ethnode import rlp
from ethnode.core.events import ChainHeadEvent
from ethnode.eth.fetcher.block_fetcher import MAX_QUEUE_DIST, AnnounceTracker, BlockFetcher, BlockQueue, useful_distance
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_BODIES,
    BLOCK_HEADERS,
    ETH68,
    ETH69,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    NEW_BLOCK_HASHES,
    BlockAnnouncement,
    BlockRange,
    message,
)
from ethnode.p2p.disconnect import DiscReason

FAST_ARRIVE = 0.05  # seconds; geth waits 0.5 s for the block itself before fetching it

# --- bookkeeping -----------------------------------------------------------------------------------


def test_announcements_wait_then_come_due_with_every_announcer() -> None:
    a, b = FakePeer("a", []), FakePeer("b", [])
    tracker = AnnounceTracker(arrive_timeout=0.5, hash_limit=2)
    assert tracker.add(b, b"\x01" * 32, 10, 100.0) and tracker.add(a, b"\x01" * 32, 10, 100.2)
    assert not tracker.add(a, b"\x01" * 32, 10, 100.3)  # a repeat
    assert tracker.add(a, b"\x02" * 32, 11, 100.3)
    assert not tracker.add(a, b"\x03" * 32, 12, 100.3)  # over a's limit of 2 outstanding
    assert tracker.next_due() == 100.5
    assert tracker.due(100.35) == []  # due 0.4 s after the first announcement (arrive - gather slack)
    (due,) = tracker.due(100.45)
    assert due[0] == b"\x01" * 32 and due[1] == 10 and {p.name for p in due[2]} == {"a", "b"}
    assert b"\x01" * 32 in tracker and not tracker.add(b, b"\x01" * 32, 10, 101.0)  # being fetched
    tracker.forget(b"\x01" * 32)
    tracker.drop_peer(a.id)
    assert tracker.count(a.id) == 0 and tracker.next_due() is None


def test_block_queue_orders_bounds_and_discards() -> None:
    blocks = ethtest_with_genesis()
    peer = FakePeer("p", [])
    queue = BlockQueue(block_limit=3)
    assert useful_distance(100 - 7, 100) and not useful_distance(100 - 8, 100) and not useful_distance(133, 100)
    assert not queue.push(peer, blocks[140], 100)  # too far ahead
    assert queue.push(peer, blocks[103], 100) and queue.push(peer, blocks[101], 100) and queue.push(peer, blocks[95],
                                                                                                     100)
    assert not queue.push(peer, blocks[102], 100)  # over the peer's limit
    assert queue.pop_ready(100)[1].number == 95
    assert queue.pop_ready(100)[1].number == 101
    assert queue.pop_ready(100) is None  # #103 waits for #102
    queue.drop_peer(peer.id)
    assert len(queue) == 0


# --- over loopback ---------------------------------------------------------------------------------


async def _head_reaches(node: EthNode, number: int) -> None:
    sub = node.bus.subscribe(ChainHeadEvent)
    try:
        async with asyncio.timeout(STEP):
            while node.chain.current_block.number < number:
                await sub.get()
    finally:
        sub.unsubscribe()


def _fetcher(node: EthNode) -> BlockFetcher:
    fetcher = BlockFetcher(node.chain, node.handler, arrive_timeout=FAST_ARRIVE)
    node.handler.block_fetcher = fetcher
    return fetcher


def test_eth68_announcement_is_fetched_imported_and_propagated() -> None:
    async def scenario() -> None:
        a = await start_node(ethtest_chain(600), versions=(ETH68,))
        b = await start_node(ethtest_chain(599), versions=(ETH68,))
        c = await start_node(ethtest_chain(599), versions=(ETH68,))
        fb, fc = _fetcher(b), _fetcher(c)
        direct: list[int] = []
        enqueue = fc.enqueue
        fc.enqueue = lambda peer, block, td: (direct.append(block.number), enqueue(peer, block, td))[1]  # type: ignore[method-assign]
        try:
            await connect(a, b)
            await connect(b, c)
            block = a.chain.get_block_by_number(600)
            assert a.handler.broadcast_block(block, False) == 1  # NewBlockHashes to b
            await asyncio.gather(_head_reaches(b, 600), _head_reaches(c, 600))
            assert b.chain.current_block.hash == c.chain.current_block.hash == block.hash
            assert fb.imported == 1 and fc.imported == 1
            assert direct == [600]  # c got the block itself: b propagated it as NewBlock
        finally:
            await fb.stop()
            await fc.stop()
            for node in (c, b, a):
                await node.stop()

    run_checked(scenario)


def test_eth69_range_update_a_few_blocks_ahead_is_fetched() -> None:
    async def scenario() -> None:
        a = await start_node(ethtest_chain(600), versions=(ETH69,))
        b = await start_node(ethtest_chain(580), versions=(ETH69,))
        fb = _fetcher(b)
        try:
            await connect(a, b)
            assert a.handler.broadcast_block_range(force=True) == 1
            await _head_reaches(b, 600)
            assert b.chain.current_block.hash == a.chain.current_block.hash and fb.imported == 20
        finally:
            await fb.stop()
            await b.stop()
            await a.stop()

    run_checked(scenario)


def test_eth69_range_update_far_ahead_is_left_to_the_downloader() -> None:
    async def scenario() -> None:
        chain = ethtest_chain(600 - MAX_QUEUE_DIST - 1)
        fetcher = BlockFetcher(chain, handler=None)
        peer = FakePeer("far", ethtest_with_genesis())
        fetcher.notify_range(peer, peer.block_range)
        assert peer.requests == [] and not fetcher._tasks
        await fetcher.stop()

    run_checked(scenario)


@pytest.mark.parametrize("lie", ["header", "body"])
def test_peer_answering_an_announcement_wrongly_is_dropped(lie: str) -> None:
    async def scenario() -> None:
        blocks = ethtest_blocks()
        node = await start_node(ethtest_chain(598), versions=(ETH68,))
        fetcher = _fetcher(node)
        scripted = await scripted_peer(node, ETH68)
        try:
            target = blocks[598]  # block #599
            await scripted.eth.send(NEW_BLOCK_HASHES, rlp.encode([[target.hash, 599]]))
            rid, _ = message(ETH68, GET_BLOCK_HEADERS).decode(await scripted.eth.expect(GET_BLOCK_HEADERS))
            header = blocks[597].header if lie == "header" else target.header
            await scripted.eth.send(BLOCK_HEADERS, message(ETH68, BLOCK_HEADERS).encode([header], rid))
            if lie == "body":
                rid, _ = message(ETH68, GET_BLOCK_BODIES).decode(await scripted.eth.expect(GET_BLOCK_BODIES))
                await scripted.eth.send(BLOCK_BODIES, message(ETH68, BLOCK_BODIES).encode([blocks[10].body()], rid))
            assert await asyncio.wait_for(scripted.peer.wait_ended(), STEP) == DiscReason.USELESS_PEER
            assert node.chain.current_block.number == 598 and fetcher.imported == 0
        finally:
            await fetcher.stop()
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def test_announcement_far_from_our_head_is_ignored() -> None:
    async def scenario() -> None:
        blocks = ethtest_with_genesis()
        fetcher = BlockFetcher(ethtest_chain(100), handler=None, arrive_timeout=FAST_ARRIVE)
        peer = FakePeer("p", blocks)
        fetcher.notify(peer, [BlockAnnouncement(blocks[200].hash, 200), BlockAnnouncement(blocks[50].hash, 50),
                              BlockAnnouncement(blocks[100].hash, 100)])  # too far ahead, too old, known
        assert fetcher.announces.count(peer.id) == 0
        await fetcher.stop()

    run_checked(scenario)


def test_range_fetch_with_a_bad_link_drops_the_peer() -> None:
    dropped: list[Any] = []

    class Handler:
        syncing = False

        def remove_peer(self, peer: Any, reason: Any = None) -> None:
            dropped.append((peer, reason))

        def broadcast_block(self, block: Any, propagate: bool) -> int:
            return 0

    async def scenario() -> None:
        blocks = ethtest_with_genesis()
        chain = ethtest_chain(590)
        fetcher = BlockFetcher(chain, Handler())
        peer = FakePeer("liar", blocks, on_headers=lambda q, out: out[:3] + out[4:])
        fetcher.notify_range(peer, BlockRange(0, 600, blocks[600].hash))
        await asyncio.gather(*fetcher._tasks)
        assert [p for p, _ in dropped] == [peer] and chain.current_block.number == 590
        await fetcher.stop()

    run_checked(scenario)
