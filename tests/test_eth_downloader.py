"""The downloader: its sans-IO schedulers (ancestor search, header skeleton/fill, bodies) and the
asyncio sync over fake peers served from the ethtest chain: peers that stall or lie are dropped and
the sync goes on with the others, including when the peer we sync from is the one that fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import ETHTEST_HEAD, ethtest_chain
from p2p_support import run_checked
from sync_support import FakePeer, ethtest_with_genesis, relinked

from ethnode.core.types.block import Body, has_empty_body
from ethnode.core.types.header import EMPTY_UNCLE_HASH
from ethnode.eth.downloader import AncestorSearch, BadResponseError, BodyScheduler, Downloader, HeaderScheduler
from ethnode.eth.downloader.ancestor import request_span
from ethnode.eth.downloader.headers import FILL, SKELETON, TAIL
from ethnode.eth.protocols.eth.protocol import ETH68
from ethnode.trie import EMPTY_ROOT

# --- ancestor search -------------------------------------------------------------------------------

# geth eth/downloader TestRemoteHeaderRequestSpan: (remote, local) -> the sampled block numbers.
GETH_SPANS = [
    (1500, 1000, [1323, 1339, 1355, 1371, 1387, 1403, 1419, 1435, 1451, 1467, 1483, 1499]),
    (15000, 13006, [14823, 14839, 14855, 14871, 14887, 14903, 14919, 14935, 14951, 14967, 14983, 14999]),
    (1200, 1150, [1149, 1154, 1159, 1164, 1169, 1174, 1179, 1184, 1189, 1194, 1199]),
    (1500, 1500, [1497, 1499]),
    (1000, 1500, [997, 999]),
    (0, 1500, [0, 2]),
    (6000000, 0, [5999823, 5999839, 5999855, 5999871, 5999887, 5999903, 5999919, 5999935, 5999951, 5999967,
                  5999983, 5999999]),
    (0, 0, [0, 2]),
]


@pytest.mark.parametrize(("remote", "local", "samples"), GETH_SPANS)
def test_request_span_matches_geth(remote: int, local: int, samples: list[int]) -> None:
    start, count, skip, top = request_span(remote, local)
    assert [start + i * (skip + 1) for i in range(count)] == samples
    assert top == samples[-1]


def _answer(blocks: list[Any], query: Any) -> list[Any]:
    return [blocks[n].header for n in range(query.origin, len(blocks), query.skip + 1)][: query.amount]


def test_ancestor_span_search_finds_the_highest_shared_sample() -> None:
    blocks = ethtest_with_genesis()
    ours = {b.hash for b in blocks[:591]}  # we hold 0..590
    search = AncestorSearch(b"m", 600, 590, lambda h, n: h in ours, blocks[0].hash)
    query = search.next_request()
    assert query is not None and (query.origin, query.amount, query.skip) == (589, 6, 1)  # 589, 591, .., 599
    search.deliver(_answer(blocks, query))
    assert search.done and (search.number, search.hash) == (589, blocks[589].hash) and search.requests == 1


def test_ancestor_binary_search_on_a_fork() -> None:
    blocks = ethtest_with_genesis()
    fork = relinked(blocks, 301, extra=b"fork")  # the remote chain leaves ours after #300
    ours = {b.hash for b in blocks[:501]}  # we hold the original 0..500
    search = AncestorSearch(b"m", 600, 500, lambda h, n: h in ours, blocks[0].hash)
    while not search.done:
        query = search.next_request()
        assert query is not None
        search.deliver(_answer(fork, query))
    assert (search.number, search.hash) == (300, blocks[300].hash)
    assert search.requests <= 12  # one span request, then log2(600) probes


def test_ancestor_search_from_genesis_needs_no_request() -> None:
    search = AncestorSearch(b"m", 600, 0, lambda h, n: False, b"\x01" * 32)
    assert search.done and search.number == 0 and search.next_request() is None


def test_ancestor_search_rejects_answers_that_cannot_be_true() -> None:
    blocks = ethtest_with_genesis()
    known = lambda h, n: True  # noqa: E731
    search = AncestorSearch(b"m", 600, 590, known, blocks[0].hash)
    with pytest.raises(BadResponseError, match="empty head header set"):
        search.deliver([])
    search = AncestorSearch(b"m", 600, 590, known, blocks[0].hash)
    with pytest.raises(BadResponseError, match="chain ordering"):
        search.deliver([blocks[589].header, blocks[590].header])  # skip 1 was asked
    search = AncestorSearch(b"m", 600, 100, lambda h, n: False, blocks[0].hash)
    search.deliver(_answer(blocks, search.next_request()))  # nothing known: binary search
    with pytest.raises(BadResponseError, match="single-header"):
        search.deliver([blocks[300].header, blocks[301].header])
    search = AncestorSearch(b"m", 600, 100, lambda h, n: False, blocks[0].hash)
    search.deliver(_answer(blocks, search.next_request()))
    with pytest.raises(BadResponseError, match="answered with"):
        search.deliver([blocks[7].header])


# --- header skeleton and fill ---------------------------------------------------------------------


def _headers(blocks: list[Any], req: Any) -> list[Any]:
    return [blocks[req.origin + i * (req.skip + 1)].header for i in range(req.amount)]


def test_skeleton_then_fills_across_peers_then_tail() -> None:
    blocks = ethtest_with_genesis()
    sched = HeaderScheduler("m", 0, blocks[0].hash, 600, ETHTEST_HEAD)
    skeleton = sched.master_request()
    assert skeleton == (skeleton.__class__)(192, 3, 191, SKELETON)  # 192, 384, 576
    assert sched.master_request() is None  # one master request at a time
    assert sched.reserve("a") is None  # nothing to fill before the skeleton
    sched.deliver("m", skeleton, _headers(blocks, skeleton))
    fills = {p: sched.reserve(p) for p in ("m", "a", "b")}
    assert [(f.origin, f.amount, f.kind) for f in fills.values()] == [(1, 192, FILL), (193, 192, FILL),
                                                                        (385, 192, FILL)]
    assert sched.reserve("c") is None
    tail = sched.master_request()  # the next round is known as soon as the skeleton is
    assert (tail.origin, tail.amount, tail.kind) == (577, 24, TAIL)
    sched.deliver("b", fills["b"], _headers(blocks, fills["b"]))
    assert sched.take() == []  # in order: #1.. first
    sched.deliver("m", fills["m"], _headers(blocks, fills["m"]))
    sched.deliver("a", fills["a"], _headers(blocks, fills["a"]))
    sched.deliver("m", tail, _headers(blocks, tail))
    chunks = sched.take()
    assert [source for _, source in chunks] == ["m", "a", "b", "m"]
    assert [h.number for chunk, _ in chunks for h in chunk] == list(range(1, 601))
    assert sched.done and sched.queued == 0


def test_fill_that_breaks_its_chain_is_the_fillers_lie() -> None:
    blocks = ethtest_with_genesis()
    sched = HeaderScheduler("m", 0, blocks[0].hash, 600, ETHTEST_HEAD)
    skeleton = sched.master_request()
    sched.deliver("m", skeleton, _headers(blocks, skeleton))
    fill = sched.reserve("liar")
    bad = _headers(blocks, fill)
    bad[5], bad[6] = bad[6], bad[5]
    with pytest.raises(BadResponseError, match="fill header #7 at 5"):
        sched.deliver("liar", fill, bad)
    again = sched.reserve("honest")  # the task is open again
    assert again is not None and again.origin == fill.origin


def test_fill_off_the_skeleton_is_settled_by_the_master() -> None:
    blocks = ethtest_with_genesis()
    fork = relinked(blocks, 1, extra=b"other")
    sched = HeaderScheduler("m", 0, blocks[0].hash, 600, ETHTEST_HEAD)
    skeleton = sched.master_request()
    sched.deliver("m", skeleton, _headers(blocks, skeleton))
    fill = sched.reserve("x")
    assert sched.deliver("x", fill, _headers(fork, fill)) == []  # a chain in itself, not the skeleton's
    assert sched.reserve("y").origin == 193  # the disputed task is the master's alone now
    own = sched.reserve("m")
    assert own.origin == 1
    assert sched.deliver("m", own, _headers(blocks, own)) == ["x"]  # the master confirms: x lied


def test_short_fills_mean_lacking_and_stuck_says_so() -> None:
    blocks = ethtest_with_genesis()
    sched = HeaderScheduler("m", 0, blocks[0].hash, 600, ETHTEST_HEAD)
    skeleton = sched.master_request()
    sched.deliver("m", skeleton, _headers(blocks, skeleton))
    fill = sched.reserve("a")
    assert sched.deliver("a", fill, _headers(blocks, fill)[:100]) == []
    assert sched.stuck({"a"}) == "no peer serves headers #1..#192"
    assert sched.stuck({"a", "m"}) is None
    assert sched.reserve("a").origin == 193  # not offered #1.. again


def test_master_answers_are_held_to_the_announced_head() -> None:
    blocks = ethtest_with_genesis()
    sched = HeaderScheduler("m", 0, blocks[0].hash, 600, b"\x42" * 32)
    skeleton = sched.master_request()
    with pytest.raises(BadResponseError, match="2 skeleton headers for 3"):
        sched.deliver("m", skeleton, _headers(blocks, skeleton)[:2])
    sched = HeaderScheduler("m", 576, blocks[576].hash, 600, b"\x42" * 32)
    tail = sched.master_request()
    with pytest.raises(BadResponseError, match="not the announced head"):
        sched.deliver("m", tail, _headers(blocks, tail))


# --- bodies ----------------------------------------------------------------------------------------


def test_bodies_in_order_with_partial_and_empty_answers() -> None:
    blocks = ethtest_with_genesis()
    sched = BodyScheduler()
    sched.add([b.header for b in blocks[1:301]], "m")
    a = sched.reserve("a")
    b = sched.reserve("b")
    assert [len(a.headers), len(b.headers)] == [128, 128] and a.headers[0].number == 1 and b.headers[0].number == 129
    sched.deliver("b", b, [blk.body() for blk in blocks[129:257]])
    assert sched.take(1000) == []  # #1 is not in yet
    sched.deliver("a", a, [blk.body() for blk in blocks[1:51]])  # stops early: the rest waits again
    assert [r.block.number for r in sched.take(1000)] == list(range(1, 51))
    c = sched.reserve("c", 10)
    assert [h.number for h in c.headers] == list(range(51, 61))
    sched.deliver("c", c, [])  # c lacks them
    again = sched.reserve("c", 10)
    assert again.headers[0].number == 61  # not asked for them again
    sched.fail("c", again)
    assert sched.stuck({"c"}) == "no peer serves the body of #51" and sched.stuck({"c", "m"}) is None
    results = []
    while len(sched):
        req = sched.reserve("m")
        if req is not None:
            sched.deliver("m", req, [blocks[h.number].body() for h in req.headers])
        results += sched.take(1000)
    assert [r.block.number for r in results] == list(range(51, 301))
    assert all(r.block.hash == blocks[r.block.number].hash for r in results)


def test_a_body_that_is_not_its_headers_is_a_lie() -> None:
    blocks = ethtest_with_genesis()
    sched = BodyScheduler()
    sched.add([b.header for b in blocks[1:11]], "m")
    req = sched.reserve("liar")
    bodies = [blk.body() for blk in blocks[1:11]]
    bodies[3] = blocks[20].body()
    with pytest.raises(BadResponseError, match="body of #4 does not match its header"):
        sched.deliver("liar", req, bodies)
    assert [r.block.number for r in sched.take(100)] == [1, 2, 3]  # the matching ones are kept
    assert sched.reserve("other").headers[0].number == 4


def test_empty_bodies_need_no_request_and_the_cache_bounds_reservations() -> None:
    blocks = ethtest_with_genesis()
    empty = blocks[1].header.replace(tx_root=EMPTY_ROOT, uncle_hash=EMPTY_UNCLE_HASH, withdrawals_root=EMPTY_ROOT)
    assert has_empty_body(empty)
    sched = BodyScheduler(cache_limit=4)
    sched.add([empty], "m")
    (result,) = sched.take(10)
    assert result.block.body() == Body([], [], []) and result.body_source is None
    sched.add([b.header for b in blocks[2:12]], "m")
    assert len(sched.reserve("a").headers) == 4  # #2..#5: no further than 4 past the oldest


# --- the downloader over fake peers ----------------------------------------------------------------


def _downloader(chain: Any, *peers: FakePeer, **options: Any) -> Downloader:
    dl: Downloader

    def drop(peer: Any) -> None:
        peer.disconnect()
        dl.unregister_peer(peer)

    dl = Downloader(chain, drop_peer=drop, **options)
    for p in peers:
        dl.register_peer(p)
    return dl


def _synced(chain: Any) -> bool:
    return chain.current_block.hash == ETHTEST_HEAD  # type: ignore[no-any-return]


def run_sync(master: FakePeer, *others: FakePeer, local: int = 0, **options: Any) -> tuple[Any, Downloader]:
    chain = ethtest_chain(local)
    box: list[Downloader] = []

    async def scenario() -> None:
        dl = _downloader(chain, master, *others, **options)
        box.append(dl)
        assert await dl.synchronise(master)

    run_checked(scenario, timeout=30)
    return chain, box[0]


def test_sync_spreads_fills_and_bodies_across_peers_and_reports_progress() -> None:
    blocks = ethtest_with_genesis()
    seen: list[Any] = []
    peers = [FakePeer(n, blocks) for n in ("a", "b", "c")]
    box: list[Downloader] = []
    peers[2].on_bodies = lambda hashes, bodies: seen.append(box[0].progress()) or bodies  # type: ignore[func-returns-value]
    chain = ethtest_chain(0)

    async def scenario() -> None:
        dl = _downloader(chain, *peers)
        box.append(dl)
        assert await dl.synchronise(peers[0])

    run_checked(scenario)
    dl = box[0]
    assert _synced(chain)
    assert [p.count("headers", 192) for p in peers] == [1, 1, 1]  # one fill each (the master also the skeleton)
    assert sum(p.count("bodies") for p in peers) >= 5 and all(p.count("bodies") for p in peers)
    assert seen and seen[0].starting_block == 0 and seen[0].highest_block == 600
    assert dl.progress() == type(dl.progress())(0, 600, 600)
    assert dl.last_sync is not None and dl.last_sync.blocks == 600 and dl.drops == 0


def test_partial_local_chain_syncs_from_the_common_ancestor() -> None:
    blocks = ethtest_with_genesis()
    master = FakePeer("a", blocks, version=ETH68)
    chain, dl = run_sync(master, local=590)
    assert _synced(chain)
    head_query, span_query = master.requests[0], master.requests[1]
    assert head_query == ("headers", ETHTEST_HEAD, 1, 0, False)  # eth/68: fetch the head header first
    assert span_query[1:4] == (589, 6, 1)


def test_stalling_peer_is_dropped_and_the_sync_goes_on() -> None:
    blocks = ethtest_with_genesis()
    good, staller = FakePeer("good", blocks), FakePeer("staller", blocks, stall=("headers", "bodies"))
    chain, dl = run_sync(good, staller)
    assert _synced(chain) and staller.dropped and not good.dropped and dl.drops == 1


def test_real_timeout_drops_a_hanging_peer() -> None:
    blocks = ethtest_with_genesis()
    good, hanging = FakePeer("good", blocks), FakePeer("hanging", blocks, hang=("bodies",))
    chain, dl = run_sync(good, hanging, request_timeout=0.2)
    assert _synced(chain) and hanging.dropped and not good.dropped


@pytest.mark.parametrize("lie", ["broken fill", "other chain", "wrong body", "too many bodies"])
def test_lying_peer_is_dropped_and_the_sync_goes_on(lie: str) -> None:
    blocks = ethtest_with_genesis()
    other = relinked(blocks, 1, extra=b"other")

    def headers(query: Any, out: list[Any]) -> list[Any]:
        if query[1] == 192 and query[2] == 0:  # a fill
            if lie == "broken fill":
                return out[:10] + out[11:] + out[10:11]
            if lie == "other chain":
                return [other[h.number].header for h in out]
        return out

    def bodies(hashes: list[bytes], out: list[Body]) -> list[Body]:
        if lie == "wrong body":
            return [blocks[1].body()] * len(out)
        if lie == "too many bodies":
            return out + out[:1]
        return out

    liar = FakePeer("liar", blocks, on_headers=headers, on_bodies=bodies)
    master, helper = FakePeer("master", blocks), FakePeer("helper", blocks)
    chain, dl = run_sync(master, liar, helper)
    assert _synced(chain) and liar.dropped and not master.dropped and not helper.dropped


@pytest.mark.parametrize("fault", ["stalls", "lies about its skeleton", "leaves", "serves an invalid chain"])
def test_failing_master_is_replaced_by_the_next_best_peer(fault: str) -> None:
    blocks = ethtest_with_genesis()
    options: dict[str, Any] = {}
    served = blocks
    if fault == "stalls":
        options["stall"] = ("headers",)
    elif fault == "lies about its skeleton":
        options["on_headers"] = lambda q, out: out[:1] * len(out) if q[2] == 191 else out
    elif fault == "leaves":
        options["gone_after"] = 3
    else:
        served = relinked(blocks, 300, gas_limit=blocks[299].header.gas_limit * 2)  # breaks the 1/1024 rule
    master = FakePeer("master", served, **options)
    backup = FakePeer("backup", blocks)
    chain, dl = run_sync(master, backup)
    assert _synced(chain)
    assert master.dropped == (fault != "leaves")
    assert not backup.dropped
    if fault == "serves an invalid chain":  # the backup resumed from the valid part
        spans = [r for r in backup.requests if r[0] == "headers" and r[3] not in (0, 191)]
        assert spans and spans[0][1] > 250  # the ancestor search found the last valid block


def test_nothing_to_do_when_the_peer_is_not_ahead() -> None:
    blocks = ethtest_with_genesis()
    peer = FakePeer("a", blocks)
    chain, dl = run_sync(peer, local=600)
    assert peer.requests == [] and dl.last_sync is not None and dl.last_sync.blocks == 0


def test_sync_to_a_named_head_uses_a_peer_that_has_it() -> None:
    blocks = ethtest_with_genesis()
    lacking, holder = FakePeer("short", blocks[:301]), FakePeer("full", blocks)
    chain = ethtest_chain(0)

    async def scenario() -> None:
        dl = _downloader(chain, lacking, holder)
        master, header = await dl._find_holder(ETHTEST_HEAD, set())
        assert master is holder and header.number == 600
        dl.sync_to(ETHTEST_HEAD)
        await asyncio.gather(*dl._tasks)
        await dl.stop()

    run_checked(scenario)
    assert _synced(chain)


def test_forkchoice_naming_an_unknown_head_starts_a_sync_to_it() -> None:
    """The Engine API hands an unknown head to the downloader (geth beacon-sync style): SYNCING
    first, VALID once the blocks are in."""
    from ethnode.eth.catalyst.api import EngineAPI

    blocks = ethtest_with_genesis()
    chain = ethtest_chain(0)
    state = {k: "0x" + blocks[500].hash.hex() for k in ("headBlockHash", "safeBlockHash", "finalizedBlockHash")}

    async def scenario() -> None:
        dl = _downloader(chain, FakePeer("a", blocks))
        api = EngineAPI(chain)
        api.on_unknown_head = dl.sync_to
        assert api.forkchoice_updated_v3(state)["payloadStatus"]["status"] == "SYNCING"
        await asyncio.gather(*dl._tasks)
        assert chain.current_block.hash == blocks[500].hash  # the named head, not the peer's 600
        assert api.forkchoice_updated_v3(state)["payloadStatus"]["status"] == "VALID"
        await dl.stop()

    run_checked(scenario)


def test_blocks_this_node_cannot_execute_end_the_sync_without_blaming_peers() -> None:
    """An ExecutionError (fork the engine lacks, state missing) is ours: no peer is dropped."""
    from ethnode.core.execution.api import UnsupportedForkError

    blocks = ethtest_with_genesis()
    peers = [FakePeer(n, blocks) for n in ("a", "b")]
    chain = ethtest_chain(0)

    def refuse(batch: Any) -> None:
        raise UnsupportedForkError("block #1 is under a fork this engine cannot execute")

    chain.insert_chain = refuse  # type: ignore[method-assign]
    box: list[bool] = []

    async def scenario() -> None:
        dl = _downloader(chain, *peers)
        box.append(await dl.synchronise(peers[0]))

    run_checked(scenario, timeout=30)
    assert len(box) == 1  # the attempt ended instead of hanging or raising
    assert not any(p.dropped for p in peers)
    assert chain.current_block.number == 0


def test_executing_chains_import_in_small_batches() -> None:
    """Execution makes a block cost milliseconds: batches shrink so the event loop keeps turning."""
    from types import SimpleNamespace

    from ethnode.eth.downloader.downloader import EXEC_IMPORT_BATCH, IMPORT_BATCH

    headers_only = SimpleNamespace(executor=None)
    executing = SimpleNamespace(executor=object())
    assert Downloader(headers_only).import_batch == IMPORT_BATCH
    assert Downloader(executing).import_batch == EXEC_IMPORT_BATCH < IMPORT_BATCH
    assert Downloader(executing, import_batch=7).import_batch == 7
