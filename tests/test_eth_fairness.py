"""Serving under load, in one process: a pipelining peer cannot hold the loop, replies stay
under the message cap, and a peer that stops reading is dropped for the connection's fault.

The same scenarios against a separate ``ethnode-fast run`` process, at full size and with
the node's own loop-lag histogram, are in ``test_load.py`` (slow).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from eth_support import ethtest_chain, shared_ethtest_chain, start_node
from load_support import LightPeer, percentile, shared_chain
from p2p_support import run_checked

from ethnode.core.rawdb import schema
from ethnode.eth.protocols.eth import serve
from ethnode.eth.protocols.eth.protocol import ETH69, MAX_MESSAGE_SIZE
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.rlpx import transport

pytestmark = pytest.mark.skipif(shared_chain() is None, reason="../shared/chains/ethtest is absent")

def chain() -> Any:
    return shared_ethtest_chain()


def test_a_pipelining_peer_leaves_room_for_others() -> None:
    """300 GetBlockHeaders(0, 1024) written at once: about 2.5 s of serving, which once ran
    in one go (every other peer waited that long); now peers take turns in small slices."""

    async def scenario() -> None:
        node = await start_node(chain(), versions=[ETH69])
        port, node_id = node.server.port, node.server.node_id
        prober = await LightPeer.connect(port, node_id)
        attacker = await LightPeer.connect(port, node_id)
        attacker.sink = True
        for peer in (prober, attacker):
            peer.start()
        try:
            await prober.probe()
            await attacker.pipeline(300)
            rtts = []
            started = time.perf_counter()
            while attacker.received < 300:
                rtts.append(await prober.probe())
                assert time.perf_counter() - started < 60, "the pipelined requests were never all served"
            assert len(rtts) >= 10, f"only {len(rtts)} probes while 300 requests were served"
            assert max(rtts) < 0.25 and percentile(rtts, 0.9) < 0.1, rtts
        finally:
            await prober.close()
            await attacker.close()
            await node.stop()

    run_checked(scenario, timeout=90)


def test_a_peer_that_stops_reading_is_dropped_with_network_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies pile up until a write times out: geth's reason is DiscNetworkError (0x10 once)."""
    monkeypatch.setattr(transport, "FRAME_WRITE_TIMEOUT", 0.5)

    async def scenario() -> None:
        node = await start_node(chain(), versions=[ETH69])
        reader = await LightPeer.connect(node.server.port, node.server.node_id, buffer=64 * 1024)
        try:
            await node.handler.wait_for_peers(1)
            (p2p_peer,) = node.server.peers()
            await reader.pipeline(200)  # ~70 MB of replies; this peer never reads them
            reason = await asyncio.wait_for(p2p_peer.wait_ended(), 20)
            assert reason is DiscReason.NETWORK_ERROR and not p2p_peer.remote_requested
        finally:
            await reader.close()
            await node.stop()

    run_checked(scenario, timeout=60)


def test_replies_stay_under_the_message_cap() -> None:
    """geth's 2 MiB limit is soft (the item crossing it is the last); the cap every peer
    enforces on what it receives is not: an item that would cross it is left out."""
    c = ethtest_chain(20)
    hashes = [c.get_header_by_number(n).hash for n in range(1, 6)]

    def store(number: int, size: int) -> None:
        blob = b"\xb9" + (size - 3).to_bytes(2, "big") if size < 65536 else b"\xba" + (size - 4).to_bytes(3, "big")
        blob += b"\x00" * (size - len(blob))
        c.db.put(schema.block_receipts_key(number, hashes[number - 1]), blob)

    store(1, 1_500_000)  # under the soft limit: the next item is looked at
    store(2, 9_000_000)  # would make the reply 10.5 MB: left out
    got = serve.serve_receipts(c, hashes, ETH69)
    assert [len(x) for x in got] == [1_500_000]
    store(1, 11 * 1024 * 1024)  # a single item over the cap: not served at all
    assert serve.serve_receipts(c, hashes, ETH69) == []
    store(1, 500_000)
    store(2, 2_000_000)  # crosses 2 MiB: served, and the last one (geth's soft limit)
    assert [len(x) for x in serve.serve_receipts(c, hashes, ETH69)] == [500_000, 2_000_000]
    assert serve.HARD_RESPONSE_LIMIT < MAX_MESSAGE_SIZE


def test_collect_yields_between_slices() -> None:
    """A long query is drained in slices: another task runs before it is complete."""

    def slow_items() -> Any:
        for i in range(20):
            time.sleep(0.001)
            yield bytes([i])

    async def scenario() -> None:
        ran: list[int] = []

        async def other() -> None:
            ran.append(len(ran))

        task = asyncio.get_running_loop().create_task(other())
        items = await serve.collect(slow_items(), slice_seconds=0.002)
        assert len(items) == 20 and ran == [0]
        assert task.done()

    run_checked(scenario)
