"""Observer mode (``ethnode.eth.observer``): a node holding only the genesis follows the
network's head by headers from its peers, admits txs without state and relays none.

Real nodes on loopback: a full node A holding the ethtest chain, an observer B on the same
genesis with nothing else, and for the relay check a third node C connected to B only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import STEP, connect, ethtest_blocks, ethtest_chain, start_node, start_observer
from p2p_support import run_checked

from ethnode.core.txpool import NewTxsEvent
from ethnode.core.txpool import errors as txerrors
from ethnode.core.types.transaction import DynamicFeeTx
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.observer import LINK_DEPTH, HeadObserver
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69


def _tx(key: PrivateKey, chain_id: int, *, gas: int = 21000, nonce: int = 7) -> DynamicFeeTx:
    return DynamicFeeTx(chain_id, nonce, 10**9, 10**11, gas, b"\x01" * 20, 1, b"", [], 0, 0, 0).sign(key)


@pytest.mark.parametrize("version", [ETH68, ETH69])
def test_observer_follows_the_head_by_linked_headers(version: int) -> None:
    blocks = ethtest_blocks()

    async def main() -> None:
        a = await start_node(ethtest_chain(450), versions=(version,))
        b, observer = await start_observer()
        assert observer is not None
        try:
            await connect(a, b)
            head = await asyncio.wait_for(observer.wait_head(450), STEP)  # from A's Status
            assert head.hash == blocks[449].hash
            # 40 new blocks: A announces the newest (eth/69 BlockRangeUpdate, eth/68 NewBlockHashes);
            # B fetches it and the 39 between, linked by parent hash
            a.chain.insert_chain(blocks[450:490])
            if version == ETH68:
                assert a.handler.broadcast_block(blocks[489], propagate=False) == 1
            head = await asyncio.wait_for(observer.wait_head(490), STEP)
            assert head.hash == blocks[489].hash and observer.reanchors == 0
            assert all(blk.hash in observer.headers for blk in blocks[449:490])
            # a gap longer than LINK_DEPTH is not walked back: the observed chain restarts there
            a.chain.insert_chain(blocks[490:600])
            assert 600 - 490 > LINK_DEPTH
            if version == ETH68:
                a.handler.broadcast_block(blocks[599], propagate=False)
            head = await asyncio.wait_for(observer.wait_head(600), STEP)
            assert head.hash == blocks[599].hash and observer.reanchors == 1
            # nothing was imported: the node serves its genesis, eth_syncing reports the network's head
            assert b.chain.current_block.number == 0
            progress = observer.progress()
            assert (progress.current_block, progress.highest_block) == (0, 600) and observer.syncing
            assert b.txpool.head.number == 600  # the pool judges txs by the network's fork rules
        finally:
            await b.stop()
            await a.stop()

    run_checked(main, timeout=60)


def test_observer_drops_a_peer_that_answers_with_another_header() -> None:
    async def main() -> None:
        a = await start_node(ethtest_chain(100))
        b, observer = await start_observer()
        assert observer is not None
        try:
            _, b_side = await connect(a, b)
            observer.note(b_side, keccak256(b"no such block"), 100)
            # A answers a hash it lacks with nothing: the announcement is let go, the peer stays
            await asyncio.wait_for(observer.wait_head(100), STEP)
            assert len(b.handler.peers) == 1
            lying = ethtest_blocks()[50].hash
            observer.note(b_side, lying, 200)  # A serves block 51 for that hash: not the number announced
            async with asyncio.timeout(STEP):
                await b.handler.wait_for_peers(0)
            assert lying not in observer.headers
        finally:
            await b.stop()
            await a.stop()

    run_checked(main, timeout=60)


@pytest.mark.parametrize("observe", [True, False])
def test_observer_admits_unfunded_txs_and_relays_none(observe: bool) -> None:
    """B takes a tx from an unknown, unfunded sender (no state to check it by); an observer
    passes it to no one (C stays empty), the control node without observer mode relays it."""

    async def main() -> None:
        a = await start_node(ethtest_chain(0))
        b, observer = await start_observer(observe=observe)
        c = await start_node(ethtest_chain(0))
        b_txs = b.bus.subscribe(NewTxsEvent, 16)
        c_txs = c.bus.subscribe(NewTxsEvent, 16)
        try:
            await connect(a, b)
            _, c_on_b = await connect(b, c)  # (B's peer for C, C's peer for B)
            if observer is not None:  # txs are judged once the network's head (here A's genesis) is known
                await asyncio.wait_for(observer.wait_head(0), STEP)
            chain_id = b.chain.config.chain_id
            tx = _tx(PrivateKey.generate(), chain_id)
            assert a.txpool.add_locals([tx]) == [None]
            event = await asyncio.wait_for(b_txs.get(), STEP)  # A relayed it, B admitted it
            assert [t.hash for t in event.txs] == [tx.hash]
            if observe:
                b_on_c = b.handler.peers.peer(keccak256(c.server.node_id))
                assert b_on_c is not None and not b_on_c.knows_transaction(tx.hash)
                assert b_on_c.queued() == {k: 0 for k in b_on_c.queued()}
                assert not c.txpool.has(tx.hash) and c_txs.queue.empty()
            else:
                relayed = await asyncio.wait_for(c_txs.get(), STEP)
                assert [t.hash for t in relayed.txs] == [tx.hash]
            # the stateless rules still hold: chain id, intrinsic gas, signature
            key = PrivateKey.generate()
            bad = b.txpool.add_remotes([_tx(key, chain_id + 1), _tx(key, chain_id, gas=20000)])
            assert isinstance(bad[0], txerrors.InvalidSenderError), bad
            assert isinstance(bad[1], txerrors.IntrinsicGasError)
            assert c_on_b is not None
        finally:
            b_txs.unsubscribe()
            c_txs.unsubscribe()
            await c.stop()
            await b.stop()
            await a.stop()

    run_checked(main, timeout=60)


def test_eth_syncing_reports_the_observed_head_and_block_number_the_held_one() -> None:
    """What a geth user sees of a node that has not synced: eth_blockNumber is the block held
    (genesis), eth_syncing's highestBlock the network's head."""
    from rpc_support import RPCNode

    from ethnode.eth.service import EthConfig

    async def main() -> None:
        a = await start_node(ethtest_chain(100))
        b = await RPCNode(ethtest_chain(0), eth_config=EthConfig(follow_head=True)).start()
        try:
            assert await b.call("eth_syncing") is False  # nothing observed yet
            await b.node.server.dial(a.server.enode)
            await asyncio.wait_for(b.eth.observer.wait_head(100), STEP)
            assert await b.call("eth_blockNumber") == "0x0"
            # a head only its hash is known of (a consensus client's forkchoice) is fetched from a peer:
            # 20 new blocks are not announced on eth/69 (BlockRangeUpdate every 32), sync_to finds them
            blocks = ethtest_blocks()[100:120]
            a.chain.insert_chain(blocks)
            assert b.eth.downloader is b.eth.observer  # what the Engine API and eth_syncing talk to
            b.eth.downloader.sync_to(blocks[-1].hash)
            head = await asyncio.wait_for(b.eth.observer.wait_head(120), STEP)
            assert head.hash == blocks[-1].hash and b.eth.observer.reanchors == 0
            syncing = await b.call("eth_syncing")
            assert (syncing["startingBlock"], syncing["currentBlock"], syncing["highestBlock"]) == ("0x0", "0x0",
                                                                                                     "0x78")
        finally:
            await b.stop()
            await a.stop()

    run_checked(main, timeout=60)


def test_observer_takes_no_tx_before_it_knows_the_networks_head() -> None:
    """Until a head is observed the pool could only judge by the genesis' fork rules: txs are ignored."""
    from eth_support import scripted_peer

    from ethnode.eth.protocols.eth.protocol import BLOCK_HEADERS, GET_BLOCK_HEADERS, TRANSACTIONS, HeaderQuery, message

    async def main() -> None:
        b, observer = await start_observer()
        assert observer is not None
        observer.fetch_timeout = 30.0  # the scripted peer never answers B's header request
        scripted = await scripted_peer(b, ETH69)
        try:
            tx = _tx(PrivateKey.generate(), b.chain.config.chain_id)
            txs = message(ETH69, TRANSACTIONS)
            ask = message(ETH69, GET_BLOCK_HEADERS)
            assert txs is not None and ask is not None
            await scripted.eth.send(TRANSACTIONS, txs.encode([tx.item()]))
            # B handles a peer's messages in order: once this is answered, the txs were handled
            await scripted.eth.send(GET_BLOCK_HEADERS, ask.encode(HeaderQuery(b"", 1, 0, False), 9))
            await scripted.eth.expect(BLOCK_HEADERS)
            assert observer.head is None and len(b.txpool) == 0
        finally:
            await scripted.stop()
            await b.stop()

    run_checked(main, timeout=60)


class _HeaderServer:
    """The linking rules alone, over headers served from a dict as a peer's GetBlockHeaders would
    (by hash, walking parents when reversed); the wire path is the other tests' business."""

    def __init__(self, *branches: list[Any]) -> None:
        self.by_hash = {h.hash: h for branch in branches for h in branch}
        self.requests = 0

    async def request_headers(self, origin: bytes, amount: int, skip: int = 0, reverse: bool = False,
                              *, timeout: float = 0.0) -> list[Any]:
        self.requests += 1
        out = []
        h = self.by_hash.get(origin)
        while h is not None and len(out) < amount:
            out.append(h)
            h = self.by_hash.get(h.parent_hash) if reverse else None
        return out


def test_observer_follows_a_reorg_to_a_longer_branch_and_drops_a_broken_link() -> None:
    from txpool_support import child_header, make_chain

    genesis = make_chain().current_header
    trunk = [genesis]
    for _ in range(10):
        trunk.append(child_header(trunk[-1]))
    fork = [child_header(trunk[6], extra=b"fork")]  # forks below the head (#10), grows past it
    for _ in range(6):
        fork.append(child_header(fork[-1], extra=b"fork"))
    dropped: list[Any] = []

    async def main() -> None:
        peer = _HeaderServer(trunk, fork)
        observer = HeadObserver(lambda: genesis, drop_peer=dropped.append)
        await observer.add_header(peer, trunk[4])  # the anchor
        await observer.add_header(peer, trunk[10])  # linked back to it
        assert observer.head == trunk[10] and all(h.hash in observer.headers for h in trunk[4:])
        await observer.add_header(peer, fork[-1])  # #13 on the fork: walked back to #6, its common ancestor
        assert observer.head == fork[-1] and observer.reanchors == 0
        assert all(h.hash in observer.headers for h in fork) and not dropped
        # a header whose parent claims another number is no link: the peer is dropped
        bad = child_header(fork[-1]).replace(number=fork[-1].number + 2)
        liar = _HeaderServer(trunk, fork, [bad])
        await observer.add_header(liar, child_header(bad))
        assert dropped == [liar] and observer.head == fork[-1]

    run_checked(main, timeout=10)
