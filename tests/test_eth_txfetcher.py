"""The tx fetcher: its sans-IO scheduler on a fake clock (geth tx_fetcher_test.go's cases, plus a
random walk checking the invariants), and the real flow over loopback: announce -> fetch ->
pool, a lying announcer dropped, a silent announcer replaced by the other one."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from eth_support import STEP, EthNode, Scripted, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types import DynamicFeeTx, LegacyTx
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.fetcher.tx_fetcher import TxFetcher, tx_meta
from ethnode.eth.fetcher.tx_scheduler import (
    MAX_TX_ANNOUNCES,
    MAX_TX_RETRIEVALS,
    MAX_TX_UNDERPRICED_TIMEOUT,
    TX_ARRIVE_TIMEOUT,
    TX_FETCH_TIMEOUT,
    DropPeer,
    Fetch,
    FetchTimings,
    TxFetchScheduler,
    TxMeta,
)
from ethnode.eth.protocols.eth.protocol import (
    ETH69,
    GET_POOLED_TRANSACTIONS,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    PooledHashes,
    message,
)
from ethnode.p2p.disconnect import DiscReason


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def hs(*ids: int) -> list[bytes]:
    return [h(i) for i in ids]


def sched() -> TxFetchScheduler:
    return TxFetchScheduler(rng=random.Random(1))


def announce(s: TxFetchScheduler, peer: str, ids: list[int], now: float, kind: int = 2, size: int = 100) -> list[Any]:
    out = s.notify(peer, bytes([kind] * len(ids)), [size] * len(ids), hs(*ids), now)
    s.check()
    return out


def deliver(s: TxFetchScheduler, peer: str, ids: list[int], now: float, reply: bool, kind: int = 2,
            size: int = 100) -> list[Any]:
    out = s.deliver(peer, hs(*ids), [TxMeta(kind, size)] * len(ids), now, reply=reply)
    s.check()
    return out


def tick(s: TxFetchScheduler, now: float) -> list[Any]:
    out = s.tick(now)
    s.check()
    return out


def fetches(actions: list[Any]) -> dict[str, list[bytes]]:
    return {a.peer: list(a.hashes) for a in actions if isinstance(a, Fetch)}


# --- the scheduler on a fake clock ----------------------------------------------------------


def test_announcement_waits_500ms_then_is_requested() -> None:
    s = sched()
    assert announce(s, "A", [1, 2], 0.0) == []
    assert s.next_deadline() == TX_ARRIVE_TIMEOUT
    announce(s, "A", [3], 0.05)  # within the gather slack of the first: fetched with it
    announce(s, "A", [4], 0.2)  # not: its own turn comes later
    assert tick(s, 0.3) == []  # too early, even with the 100 ms slack
    assert fetches(tick(s, 0.5)) == {"A": hs(1, 2, 3)}
    assert s.next_deadline() == 0.2 + TX_ARRIVE_TIMEOUT
    deliver(s, "A", [1, 2, 3], 0.6, reply=True)
    assert fetches(tick(s, 0.7)) == {"A": hs(4)}
    assert s.stats()["fetching_hashes"] == 1 and s.next_deadline() == 0.7 + TX_FETCH_TIMEOUT


def test_broadcast_during_the_wait_cancels_the_fetch() -> None:
    s = sched()
    announce(s, "A", [1, 2], 0.0)
    assert deliver(s, "B", [1], 0.2, reply=False) == []
    assert fetches(tick(s, 0.5)) == {"A": hs(2)}


def test_one_request_per_peer_in_flight_and_its_limits() -> None:
    s = sched()
    announce(s, "A", list(range(300)), 0.0)
    first = fetches(tick(s, 0.5))["A"]
    assert first == hs(*range(MAX_TX_RETRIEVALS))
    announce(s, "A", [1000], 0.6)
    assert fetches(tick(s, 1.1)) == {}  # A is busy: queued, not requested
    actions = deliver(s, "A", list(range(MAX_TX_RETRIEVALS)), 1.2, reply=True)
    assert fetches(actions) == {"A": hs(*range(256, 300), 1000)}
    # Size: requests stop once the announced bytes reach 128 KiB.
    s2 = sched()
    announce(s2, "B", [1, 2, 3], 0.0, size=100 * 1024)
    assert fetches(tick(s2, 0.5)) == {"B": hs(1, 2)}


def test_timeout_retries_from_the_other_announcer_and_never_the_slow_one() -> None:
    s = sched()
    announce(s, "A", [1], 0.0)
    announce(s, "B", [1], 0.1)
    (first,) = fetches(tick(s, 0.5)).items()
    slow, other = first[0], ("B" if first[0] == "A" else "A")
    assert fetches(tick(s, 0.5 + TX_FETCH_TIMEOUT)) == {other: hs(1)}
    announce(s, slow, [2], 6.0)  # the slow peer stays busy until it answers
    assert fetches(tick(s, 6.5)) == {}
    assert fetches(deliver(s, slow, [], 7.0, reply=True)) == {slow: hs(2)}  # its (empty) answer frees it


def test_partial_reply_skipped_hashes_go_to_alternates_cut_ones_to_anyone() -> None:
    s = sched()
    announce(s, "A", [1, 2, 3], 0.0)
    assert fetches(tick(s, 0.5)) == {"A": hs(1, 2, 3)}
    announce(s, "B", [1], 0.6)
    actions = deliver(s, "A", [2], 0.7, reply=True)
    # 1 was skipped by A (it does not have it): B only. 3 was cut off: A may still serve it.
    assert fetches(actions) == {"A": hs(3), "B": hs(1)}
    # An empty reply: A has none of them, and nobody else announced 3: forgotten.
    deliver(s, "A", [], 0.8, reply=True)
    assert s.stats()["queueing_hashes"] == 0 and "A" not in s.announces


def test_delivery_by_another_peer_is_not_rescheduled() -> None:
    s = sched()
    announce(s, "A", [1, 2], 0.0)
    announce(s, "B", [1, 2], 0.0)
    (peer, _), = fetches(tick(s, 0.5)).items()
    other = "B" if peer == "A" else "A"
    deliver(s, other, [1], 0.6, reply=False)  # broadcast by the other one meanwhile
    assert s.requests[peer].stolen == {h(1)}
    assert fetches(deliver(s, peer, [2], 0.7, reply=True)) == {}
    assert s.stats() == {k: 0 for k in s.stats()}


@pytest.mark.parametrize(("kind", "size", "dropped"), [(1, 100, True), (2, 108, False), (2, 91, True)])
def test_metadata_mismatch_drops_the_announcer(kind: int, size: int, dropped: bool) -> None:
    s = sched()
    announce(s, "A", [1], 0.0)
    fetches(tick(s, 0.5))
    actions = deliver(s, "A", [1], 0.6, reply=True, kind=kind, size=size)
    assert [a.peer for a in actions if isinstance(a, DropPeer)] == (["A"] if dropped else [])
    # While still waiting: a broadcast from B shows that A lied.
    s = sched()
    announce(s, "A", [2], 0.0)
    actions = deliver(s, "B", [2], 0.1, reply=False, kind=kind, size=size)
    assert [a.peer for a in actions if isinstance(a, DropPeer)] == (["A"] if dropped else [])


def test_second_announcement_from_the_same_peer_cannot_change_the_metadata() -> None:
    s = sched()
    announce(s, "A", [1], 0.0, kind=2, size=100)
    announce(s, "A", [1], 0.1, kind=1, size=5000)
    assert s.waitslots["A"][h(1)] == TxMeta(2, 100)


def test_dropping_every_peer_leaves_nothing_behind() -> None:
    s = sched()
    announce(s, "A", [1, 2], 0.0)
    announce(s, "B", [2], 0.0)
    announce(s, "C", [3, 4], 0.0)
    tick(s, 0.5)
    announce(s, "C", [5], 0.6)
    for peer in ("A", "B", "C"):
        s.drop(peer, 0.7)
        s.check()
    assert s.stats() == {k: 0 for k in s.stats()} and not s.requests and not s.announces


def test_drop_reschedules_to_an_idle_alternate() -> None:
    s = sched()
    announce(s, "A", [1], 0.0)
    fetches(tick(s, 0.5))
    announce(s, "B", [1], 0.6)  # B joins while A is fetching: an alternate
    assert fetches(s.drop("A", 0.7)) == {"B": hs(1)}
    s.check()


def test_underpriced_hashes_are_not_requested_for_five_minutes() -> None:
    s = sched()
    s.mark_underpriced(hs(1), 0.0)
    assert announce(s, "A", [1], 1.0) == [] and not s.waitlist
    announce(s, "A", [1], MAX_TX_UNDERPRICED_TIMEOUT + 1)
    assert h(1) in s.waitlist and not s.underpriced


def test_announcements_per_peer_are_capped() -> None:
    s = sched()
    announce(s, "A", list(range(MAX_TX_ANNOUNCES + 100)), 0.0)
    assert len(s.waitslots["A"]) == MAX_TX_ANNOUNCES
    assert announce(s, "A", [10**6], 0.1) == [] and h(10**6) not in s.waitlist
    announce(s, "B", [10**6], 0.1)  # other peers are not affected
    assert h(10**6) in s.waitlist


def test_blob_announcements_skip_the_wait() -> None:
    s = sched()
    assert fetches(announce(s, "A", [1], 0.0, kind=3, size=131_000)) == {"A": hs(1)}


def test_random_walk_keeps_the_invariants() -> None:
    """geth fuzzes its fetcher the same way: any sequence of events leaves it consistent."""
    rnd = random.Random(7)
    s = TxFetchScheduler(rng=random.Random(3))
    peers = ["A", "B", "C", "D"]
    now = 0.0
    for _ in range(3000):
        now += rnd.choice([0.0, 0.01, 0.1, 0.6, 5.2])
        op = rnd.random()
        peer = rnd.choice(peers)
        ids = rnd.sample(range(40), rnd.randint(1, 6))
        if op < 0.4:
            s.notify(peer, bytes([rnd.choice([2, 2, 2, 3])] * len(ids)), [100] * len(ids), hs(*ids), now)
        elif op < 0.6:
            req = s.requests.get(peer)
            asked = [int.from_bytes(x, "big") for x in (req.hashes or [])] if req else []
            got = [i for i in asked if rnd.random() < 0.6]
            s.deliver(peer, hs(*got), [TxMeta(2, 100)] * len(got), now, reply=True)
        elif op < 0.75:
            s.deliver(peer, hs(*ids), [TxMeta(2, 100)] * len(ids), now, reply=False)
        elif op < 0.8:
            s.drop(peer, now)
        else:
            s.tick(now)
        s.check()
    for peer in peers:
        s.drop(peer, now)
    s.check()
    assert s.stats()["waiting_hashes"] == s.stats()["queueing_hashes"] == s.stats()["fetching_hashes"] == 0


def test_included_txs_are_not_fetched_until_a_reorg() -> None:
    """geth's txOnChainCache, kept in a KnownCache: a re-announced included tx is skipped."""

    class Pool:
        def has(self, tx_hash: bytes) -> bool:
            return False

    class Block:
        def __init__(self, number: int, parent: bytes, txs: list[bytes]) -> None:
            self.hash, self.parent_hash = h(10**6 + number), parent
            self.transactions = [type("T", (), {"hash": x})() for x in txs]

    async def scenario() -> None:
        fetcher = TxFetcher(Pool())
        one = Block(1, h(0), hs(1, 2))
        fetcher.chain_head(one)
        fetcher.chain_head(Block(2, one.hash, hs(3)))
        fetcher.notify("A", bytes([2, 2, 2, 2]), [100] * 4, hs(1, 2, 3, 4))  # type: ignore[arg-type]
        assert set(fetcher.scheduler.waitlist) == {h(4)}
        fetcher.chain_head(Block(2, h(99), []))  # not a child of the last head: forget
        fetcher.notify("B", b"\x02", [100], hs(1))  # type: ignore[arg-type]
        assert h(1) in fetcher.scheduler.waitlist
        await fetcher.stop()

    asyncio.run(scenario())


# --- the real flow over loopback ---------------------------------------------------------------

FAST = FetchTimings(arrive_timeout=0.2, gather_slack=0.05, fetch_timeout=0.6)
_CHAIN: list[Any] = []


def chain() -> Any:
    if not _CHAIN:
        _CHAIN.append(ethtest_chain(600))
    return _CHAIN[0]


def signed(key: PrivateKey, nonce: int) -> Any:
    return DynamicFeeTx(chain().config.chain_id, nonce, 10**9, 10**11, 21000, b"\x01" * 20, 1, b"", [], 0, 0,
                        0).sign(key)


async def fetcher_node() -> tuple[EthNode, TxFetcher]:
    node = await start_node(chain(), loops=False)
    fetcher = TxFetcher(node.txpool, remove_peer=node.handler.remove_peer, timings=FAST)
    node.handler.tx_fetcher = fetcher
    await node.handler.start()
    return node, fetcher


def ann(txs: list[Any], size_delta: int = 0, kind: int | None = None) -> bytes:
    metas = [tx_meta(t) for t in txs]
    return PooledHashes(bytes(kind if kind is not None else m.kind for m in metas),
                        [m.size + size_delta for m in metas], [t.hash for t in txs]).encode()


async def serve_request(s: Scripted, txs: list[Any], timeout: float = STEP) -> list[bytes]:
    """Answer the next GetPooledTransactions with whichever of ``txs`` it asks for."""
    rid, wanted = message(ETH69, GET_POOLED_TRANSACTIONS).decode(  # type: ignore[union-attr]
        await s.eth.expect(GET_POOLED_TRANSACTIONS, timeout))
    by_hash = {t.hash: t for t in txs}
    items = [by_hash[x].item() for x in wanted if x in by_hash]
    await s.eth.send(POOLED_TRANSACTIONS, message(ETH69, POOLED_TRANSACTIONS).encode(items, rid))  # type: ignore[union-attr]
    return list(wanted)


async def pooled(node: EthNode, sub: Any, hashes: set[bytes]) -> None:
    async with asyncio.timeout(STEP):
        while not all(node.txpool.has(x) for x in hashes):
            await sub.get()


def test_announce_fetch_pool_over_loopback() -> None:
    async def scenario() -> None:
        node, fetcher = await fetcher_node()
        s = await scripted_peer(node, ETH69)
        sub = node.bus.subscribe(NewTxsEvent, 16)
        try:
            key = PrivateKey(bytes.fromhex("51" * 32))
            chain_id = chain().config.chain_id
            legacy = LegacyTx(3, 10**11, 21000, b"\x02" * 20, 5, b"", 0, 0, 0).sign(key, chain_id=chain_id)
            txs = [signed(key, n) for n in range(3)] + [legacy]
            await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann(txs))
            asked = await serve_request(s, txs)
            assert asked == [t.hash for t in txs]
            await pooled(node, sub, set(asked))
            assert fetcher.counts["requests"] == 1 and fetcher.counts["replied"] == 4
            # Announcing what the pool has: nothing is requested.
            await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann(txs[:1]))
            with pytest.raises(TimeoutError):
                await s.eth.expect(GET_POOLED_TRANSACTIONS, FAST.arrive_timeout * 3)
            assert fetcher.counts["requests"] == 1
        finally:
            sub.unsubscribe()
            await fetcher.stop()
            await s.stop()
            await node.stop()

    run_checked(scenario)


def test_lying_announcer_is_dropped_and_the_tx_still_pooled() -> None:
    async def scenario() -> None:
        node, fetcher = await fetcher_node()
        s = await scripted_peer(node, ETH69)
        sub = node.bus.subscribe(NewTxsEvent, 16)
        try:
            tx = signed(PrivateKey(bytes.fromhex("52" * 32)), 0)
            await s.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann([tx], size_delta=64))
            await serve_request(s, [tx])
            reason = await asyncio.wait_for(s.peer.wait_ended(), STEP)
            assert reason is DiscReason.USELESS_PEER
            await pooled(node, sub, {tx.hash})
            assert fetcher.counts["dropped_peers"] == 1
        finally:
            sub.unsubscribe()
            await fetcher.stop()
            await s.stop()
            await node.stop()

    run_checked(scenario)


def test_silent_announcer_times_out_and_the_other_one_serves() -> None:
    async def scenario() -> None:
        node, fetcher = await fetcher_node()
        a = await scripted_peer(node, ETH69)
        b = await scripted_peer(node, ETH69)
        sub = node.bus.subscribe(NewTxsEvent, 16)
        try:
            tx = signed(PrivateKey(bytes.fromhex("53" * 32)), 0)
            await a.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann([tx]))
            await b.eth.send(NEW_POOLED_TRANSACTION_HASHES, ann([tx]))
            tap: asyncio.Queue[Any] = asyncio.Queue()
            a.eth.tap = b.eth.tap = tap
            async with asyncio.timeout(STEP):
                while True:  # the first request goes to either; it stays unanswered
                    silent, code, _ = await tap.get()
                    if code == GET_POOLED_TRANSACTIONS:
                        break
            other = b if silent is a.eth else a
            a.eth.tap = b.eth.tap = None
            loop = asyncio.get_running_loop()
            started = loop.time()
            await serve_request(other, [tx])
            assert loop.time() - started >= FAST.fetch_timeout - FAST.gather_slack - 0.05
            await pooled(node, sub, {tx.hash})
            assert len(node.handler.peers) == 2  # a slow peer is not dropped, only not asked again
            assert fetcher.counts["requests"] == 2
        finally:
            sub.unsubscribe()
            await fetcher.stop()
            await a.stop()
            await b.stop()
            await node.stop()

    run_checked(scenario)


def test_constants_are_geths() -> None:
    from ethnode.eth.fetcher import tx_scheduler as tf

    assert (tf.TX_ARRIVE_TIMEOUT, tf.TX_GATHER_SLACK, TX_FETCH_TIMEOUT) == (0.5, 0.1, 5.0)
    assert (tf.MAX_TX_ANNOUNCES, tf.MAX_TX_RETRIEVALS, tf.MAX_TX_RETRIEVAL_SIZE) == (4096, 256, 131072)
    assert (tf.MAX_TX_UNDERPRICED_SET_SIZE, tf.MAX_TX_UNDERPRICED_TIMEOUT, tf.TX_SIZE_TOLERANCE) == (32768, 300.0, 8)
