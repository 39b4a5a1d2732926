"""Acceptance 9(b): ten ethnode nodes on loopback (Node + p2p Server + EthereumService each, one
event loop), a hub joined to a ring of nine:

    hub (N=9 eth peers: ⌈√9⌉ = 3 get full txs, 6 announcements)
    ring nodes (N=3 each: hub + two neighbours: 2 full, 1 announcement)

A tx submitted to one pool reaches every pool, and every Transactions / NewPooledTransactionHashes
a node sends follows the √N policy: full txs only to the ⌈√N⌉ peers its keyed choice picks for
the sender, announcements only to the others, and from the origin exactly that split. A tx over
4 KiB is only ever announced, so every node gets it through its tx fetcher.

Messages are counted on the receiving side (the wire layer's handlers for the three codes are
wrapped while the net runs), which knows the sending peer and the receiving backend; nothing
sleeps, every wait is for a recorded event and bounded.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain_support import open_chain
from eth_support import STEP, ethtest_chain
from p2p_support import run_checked

from ethnode import rlp
from ethnode.commands.flags.p2p import server_factory
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types import DynamicFeeTx
from ethnode.core.types.transaction import decode_tx_item
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.handler import TX_MAX_BROADCAST_SIZE
from ethnode.eth.protocols.eth import handlers as eth_handlers
from ethnode.eth.protocols.eth.protocol import (
    GET_POOLED_TRANSACTIONS,
    NEW_POOLED_TRANSACTION_HASHES,
    TRANSACTIONS,
)
from ethnode.eth.service import EthereumService
from ethnode.event import EventBus
from ethnode.node import Node, NodeConfig
from ethnode.p2p.config import ServerConfig

NODES = 10
HUB = 0
RING = list(range(1, NODES))
EDGES = [(HUB, i) for i in RING] + [(i, i % (NODES - 1) + 1) for i in RING]  # hub spokes + ring


@dataclass
class Traffic:
    """What each node received, from whom: full txs, announcements, requests (hash sets)."""

    full: dict[tuple[int, int], set[bytes]] = field(default_factory=lambda: defaultdict(set))  # (from, to)
    ann: dict[tuple[int, int], set[bytes]] = field(default_factory=lambda: defaultdict(set))
    requests: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))  # hash -> times requested
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(STEP):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Net:
    nodes: list[Node]
    services: list[EthereumService]
    index: dict[bytes, int]  # eth peer id (keccak of the node id) -> node index
    traffic: Traffic
    untap: Callable[[], None] = lambda: None

    def handler(self, i: int) -> Any:
        return self.services[i].handler

    def neighbours(self, i: int) -> list[int]:
        return [self.index[p.id] for p in self.handler(i).peers.all()]

    async def stop(self) -> None:
        try:
            await asyncio.gather(*(n.stop() for n in self.nodes))
        finally:
            self.untap()


def _decode_full(payload: bytes) -> list[bytes]:
    return [decode_tx_item(rlp.encode(item)).hash for item in rlp.decode(payload)]


def _tap(net: Net) -> Callable[[], None]:
    """Count Transactions, NewPooledTransactionHashes and GetPooledTransactions as each node receives them."""
    t = net.traffic
    saved = {code: eth_handlers._HANDLERS[code] for code in (TRANSACTIONS, NEW_POOLED_TRANSACTION_HASHES,
                                                             GET_POOLED_TRANSACTIONS)}

    def wrap(code: int) -> Any:
        inner = saved[code]

        def handle(backend: Any, peer: Any, payload: bytes) -> Any:
            receiver = next(i for i, s in enumerate(net.services) if s.handler is backend)
            sender = net.index[peer.id]
            if code == TRANSACTIONS:
                t.full[sender, receiver].update(_decode_full(payload))
            elif code == NEW_POOLED_TRANSACTION_HASHES:
                t.ann[sender, receiver].update(eth_handlers.decode(peer.version, code, payload).hashes)
            else:
                for x in rlp.decode(payload)[1]:
                    t.requests[bytes(x)] += 1
            t.changed.set()
            return inner(backend, peer, payload)

        return handle

    eth_handlers._HANDLERS.update({code: wrap(code) for code in saved})
    return lambda: eth_handlers._HANDLERS.update(saved)


async def start_net(chain: Any) -> Net:
    """Ten nodes over ``chain``'s database, each with its own chain object posting on its own bus."""
    nodes, services = [], []
    for _ in range(NODES):
        bus = EventBus()
        node = Node(NodeConfig(), server_factory(ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True), bus),
                    bus=bus)
        own = open_chain(chain.db, events=bus, verify_senders=False)
        node.register(lambda ctx, own=own: EthereumService(ctx, chain=own))
        nodes.append(node)
    net = Net(nodes, services, {}, Traffic())
    net.untap = _tap(net)
    try:
        for node in nodes:
            await node.start()
            services.append(node.services[EthereumService])  # type: ignore[arg-type]
            net.index[keccak256(node.server.node_id)] = len(services) - 1  # type: ignore[union-attr]
        for a, b in EDGES:  # b dials a; both must have registered the other before the next dial
            ha, hb = net.handler(a), net.handler(b)
            na, nb = len(ha.peers), len(hb.peers)
            await nodes[b].server.dial(nodes[a].server.enode)  # type: ignore[union-attr]
            await asyncio.wait_for(asyncio.gather(ha.wait_for_peers(na + 1), hb.wait_for_peers(nb + 1)), STEP)
    except BaseException:
        await net.stop()
        raise
    return net


def tx(chain: Any, key: PrivateKey, data: bytes = b"") -> Any:
    return DynamicFeeTx(chain.config.chain_id, 0, 10**9, 10**11, 21000 + 40 * len(data), b"\x01" * 20, 1, data, [],
                        0, 0, 0).sign(key)


def test_ten_nodes_tx_reaches_every_pool_with_sqrt_n_full_deliveries() -> None:
    async def scenario() -> None:
        chain = ethtest_chain(600)
        net = await start_net(chain)
        subs = [n.bus.subscribe(NewTxsEvent, 64) for n in net.nodes]
        try:
            degree = {i: len(net.handler(i).peers) for i in range(NODES)}
            assert degree == {HUB: 9, **{i: 3 for i in RING}}
            keys = [PrivateKey(bytes([0x60 + k]) * 32) for k in range(4)]
            small_hub = [tx(chain, keys[0]), tx(chain, keys[1])]
            small_ring = tx(chain, keys[2])
            big = tx(chain, keys[3], b"\x01" * 5000)
            assert big.size > TX_MAX_BROADCAST_SIZE
            origin = {t.hash: HUB for t in small_hub} | {small_ring.hash: 1, big.hash: HUB}
            assert net.services[HUB].txpool.add([*small_hub, big], local=True) == [None] * 3
            assert net.services[1].txpool.add([small_ring], local=True) == [None]
            everything = set(origin)

            async def pooled(i: int) -> None:
                pool = net.services[i].txpool
                while not all(pool.has(x) for x in everything):
                    await subs[i].get()

            # 1. Every pool gets every tx (the big one only by fetching it, hop by hop).
            await asyncio.wait_for(asyncio.gather(*(pooled(i) for i in range(NODES))), STEP)

            # 2. The origin's own broadcast: each of its peers got the tx, full or announced.
            t = net.traffic

            def origin_done() -> bool:
                return all(x in t.full[o, p] or x in t.ann[o, p] for x, o in origin.items() for p in net.neighbours(o))

            await t.until(origin_done)
            txs = {t_.hash: t_ for t_ in [*small_hub, small_ring, big]}
            for x, o in origin.items():
                peers = net.handler(o).peers.all()
                ids = net.neighbours(o)
                full = {p for p in ids if x in t.full[o, p]}
                ann = {p for p in ids if x in t.ann[o, p]}
                assert not full & ann and full | ann == set(ids)
                if x == big.hash:
                    assert full == set() and len(ann) == len(ids)  # over 4 KiB: announced only
                    continue
                chosen = {net.index[pid] for pid in net.handler(o).choice.choose(peers, txs[x].sender)}
                assert len(chosen) == math.ceil(math.sqrt(len(ids)))  # 3 of 9 at the hub, 2 of 3 on the ring
                assert full == chosen

            # 3. Every relay follows the same policy among the peers that did not know the tx yet.
            for i in range(NODES):
                peers = net.handler(i).peers.all()
                for x, t_ in txs.items():
                    chosen = {net.index[pid] for pid in net.handler(i).choice.choose(peers, t_.sender)}
                    full = {p for p in net.neighbours(i) if x in t.full[i, p]}
                    ann = {p for p in net.neighbours(i) if x in t.ann[i, p]}
                    assert not full & ann
                    assert len(full) <= math.ceil(math.sqrt(len(peers)))
                    if x == big.hash:
                        assert not full
                    else:
                        assert full <= chosen and not ann & chosen, (i, full, ann, chosen)

            # 4. The big tx was fetched once by each of the other nine nodes.
            assert t.requests[big.hash] == NODES - 1
            fetched = sum(s.tx_fetcher.counts["replied"] for s in net.services)
            assert fetched >= NODES - 1
        finally:
            for sub in subs:
                sub.unsubscribe()
            await net.stop()

    run_checked(scenario, timeout=40)
