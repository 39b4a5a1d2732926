"""eth/70 (EIP-7975: receipts from an index, replies cut at the packet limit) and eth/71
(EIP-8159: block access lists) between real nodes over loopback.

The chain is geth v1.17.5's eth-test chain executed (receipts stored). Access lists come
from a short Amsterdam chain built with ethnode's own payload builder on revm, so they are
the lists execution stored, checked against each header's hash on the requesting side.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_support import STEP, connect, executed_ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

import ethnode.eth.protocols.eth.serve as serve
from ethnode import rlp
from ethnode.core.execution import compiled_engine_error
from ethnode.core.rawdb import accessors as rawdb
from ethnode.crypto.keccak import keccak256
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_ACCESS_LISTS,
    ETH69,
    ETH70,
    ETH71,
    GET_BLOCK_ACCESS_LISTS,
    GET_RECEIPTS,
    RECEIPTS,
    message,
)

_CHAIN: list[Any] = []


def chain() -> Any:
    if not _CHAIN:
        _CHAIN.append(executed_ethtest_chain(600))
    return _CHAIN[0]


def _busy_block(c: Any) -> tuple[int, bytes]:
    """The first block with at least 3 txs and small receipts, followed by one with receipts
    (the chain's block 11 has 10 MB of them: GetLargeReceipts' block)."""
    for n in range(1, 600):
        block = c.get_block_by_number(n)
        size = len(c.db.get(b"r" + n.to_bytes(8, "big") + block.hash) or b"")
        if len(block.transactions) >= 3 and size < 100_000 and c.get_block_by_number(n + 1).transactions:
            return n, block.hash
    raise AssertionError("no block with 3 txs")


def test_receipts_from_an_index_and_a_cut_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        c = chain()
        node = await start_node(c, versions=(ETH70,))
        scripted = await scripted_peer(node, ETH70)
        try:
            n, block_hash = _busy_block(c)
            stored = rlp.decode(c.db.get(b"r" + n.to_bytes(8, "big") + block_hash))
            msg = message(ETH70, GET_RECEIPTS)
            assert msg is not None
            # From receipt 1 of the busy block, then the next block whole.
            nxt = c.get_canonical_hash(n + 1)
            await scripted.eth.send(GET_RECEIPTS, msg.encode((1, [block_hash, nxt]), 5))
            rid, incomplete, lists = rlp.decode(await scripted.eth.expect(RECEIPTS))
            assert int.from_bytes(rid, "big") == 5 and incomplete == b""
            assert lists[0] == stored[1:] and len(lists) == 2
            # A packet limit that fits two receipts only: the reply ends inside the block.
            two = sum(len(rlp.encode(item)) for item in stored[:2])
            monkeypatch.setattr(serve, "MAX_PACKET_SIZE", 64 + two + 9 + 1)
            await scripted.eth.send(GET_RECEIPTS, msg.encode((0, [block_hash, nxt]), 6))
            rid, incomplete, lists = rlp.decode(await scripted.eth.expect(RECEIPTS))
            assert incomplete == b"\x01" and len(lists) == 1 and lists[0] == stored[:2]
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def test_a_requester_reassembles_cut_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        c = chain()
        n, block_hash = _busy_block(c)
        want = [c.get_receipts(c.get_canonical_hash(k), k) for k in (n, n + 1)]
        stored = rlp.decode(c.db.get(b"r" + n.to_bytes(8, "big") + block_hash))
        one = len(rlp.encode(stored[0]))
        monkeypatch.setattr(serve, "MAX_PACKET_SIZE", 64 + one + 9 + 1)  # one receipt per reply
        server_node = await start_node(c, versions=(ETH71, ETH70))
        client = await start_node(executed_ethtest_chain(0), versions=(ETH71, ETH70))
        try:
            _, peer = await connect(server_node, client)
            assert peer.version == ETH71
            got = await peer.request_receipts([block_hash, c.get_canonical_hash(n + 1)])
            assert got[0] == want[0]  # every receipt of the busy block, from several replies
            assert len(got) >= 1 and peer.pending_requests == 0
        finally:
            await client.stop()
            await server_node.stop()

    run_checked(scenario)


@pytest.mark.skipif(compiled_engine_error() is not None, reason="access lists need the revm engine (Amsterdam)")
def test_block_access_lists_served_and_checked_by_hash() -> None:
    from test_engine_payloads import AMSTERDAM, _drive, _genesis, _node
    from txpool_support import make_pool

    from ethnode.eth.catalyst.api import EngineAPI

    obj = _genesis(AMSTERDAM)
    builder, server_chain = _node(obj, "revm"), _node(obj, "revm")
    pool = make_pool(builder, state=builder.head_state_reader())
    _drive(EngineAPI(builder, pool), EngineAPI(server_chain), pool, "amsterdam", 3)

    async def scenario() -> None:
        server_node = await start_node(server_chain, versions=(ETH71, ETH69))
        client = await start_node(_node(obj, "revm"), versions=(ETH71, ETH69))
        scripted = await scripted_peer(server_node, ETH71)
        try:
            _, peer = await connect(server_node, client)
            hashes = [server_chain.get_canonical_hash(n) for n in (1, 2, 3)]
            unknown = b"\x09" * 32
            got = await peer.request_block_access_lists([*hashes, unknown])
            assert got[3] is None and all(isinstance(b, bytes) for b in got[:3])
            for n, bal in zip((1, 2, 3), got[:3], strict=True):
                header = server_chain.get_header_by_number(n)
                assert keccak256(bal) == header.block_access_list_hash
                assert bal == rawdb.read_block_access_list(server_chain.db, hashes[n - 1], n)
            # Raw: the empty string marks the unknown block.
            msg = message(ETH71, GET_BLOCK_ACCESS_LISTS)
            assert msg is not None
            await scripted.eth.send(GET_BLOCK_ACCESS_LISTS, msg.encode([unknown, hashes[0]], 9))
            rid, items = rlp.decode(await scripted.eth.expect(BLOCK_ACCESS_LISTS, STEP))
            assert items[0] == b"" and rlp.encode(items[1]) == got[0]
            with pytest.raises(ValueError, match="does not exist on eth/69"):
                other = await scripted_peer(server_node, ETH69)
                try:
                    eth69_peer = server_node.handler.peers.peer(keccak256(other.server.node_id))
                    assert eth69_peer is not None and eth69_peer.version == ETH69
                    await eth69_peer.request_block_access_lists(hashes)
                finally:
                    await other.stop()
        finally:
            await scripted.stop()
            await client.stop()
            await server_node.stop()

    run_checked(scenario)
