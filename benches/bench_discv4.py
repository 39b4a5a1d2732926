"""discv4: packets decoded and verified per second; a lookup on a 1000-node in-memory network.

Decode+verify is keccak (hash check), secp256k1 recovery (~44 µs with coincurve, the
bulk of it) and the typed RLP decode, run once on each RLP backend ("compiled", "pure").
"handle ping" is the whole server-side cost of an incoming Ping: decode and verify, sign
and send the Pong, node DB and table bookkeeping. The lookup runs the real ``Lookup``
over 1000 tables filled as Kademlia fills them (at most 16 per distance), with queries
answered in memory, so it measures the lookup's own work, not the network.

    PYTHONPATH=. python -m pytest benches/bench_discv4.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
from typing import Any

import pytest

import ethnode
from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover import v4wire
from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.table import BUCKET_SIZE, Table
from ethnode.p2p.discover.udp import Config, UDPv4
from ethnode.p2p.enode import Node
from ethnode.rlp import sedes

KEY = PrivateKey.from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
NETWORK_SIZE = 1000


def _packets() -> dict[str, bytes]:
    exp = v4wire.expiration_from_now() + 3600
    ep = v4wire.make_endpoint(ipaddress.IPv4Address("10.1.2.3"), 30303, 30303)
    nodes = [v4wire.WireNode(bytes([10, 0, 0, i]), 30303, 30303, PrivateKey.generate().node_id) for i in range(12)]
    return {
        "ping": v4wire.encode(KEY, v4wire.Ping(4, ep, ep, exp, 42))[0],
        "neighbors12": v4wire.encode(KEY, v4wire.Neighbors(nodes, exp))[0],
    }


PACKETS = _packets()


@pytest.mark.parametrize("kind", ["compiled", "pure"])
@pytest.mark.parametrize("packet", list(PACKETS))
def test_decode_verify(benchmark: Any, monkeypatch: pytest.MonkeyPatch, kind: str, packet: str) -> None:
    try:
        backend = rlp.implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled RLP unavailable: {exc}")
    monkeypatch.setattr(rlp, "_impl", backend)  # the typed layer decodes on this backend
    monkeypatch.setattr(sedes, "_ACTIVE", backend)  # (sedes caches the active codec)
    assert v4wire.Neighbors._sedes.node() is v4wire.Neighbors._sedes.node(backend), "backend switch failed"
    data = PACKETS[packet]
    benchmark.group = f"discv4 decode+verify {packet}"
    benchmark.extra_info.update(impl=kind, items=1)
    decoded, pubkey, _ = benchmark(v4wire.decode, data)
    assert pubkey == KEY.node_id
    benchmark.extra_info["packets_per_s"] = round(1 / benchmark.stats.stats.mean)


def test_handle_ping(benchmark: Any) -> None:
    """Full server-side handling of one Ping, Pong sent (to a socket nobody reads)."""
    loop = p2p_loop.new_event_loop()
    try:
        svc = UDPv4(PrivateKey.generate(), config=Config(ping_interval=3600))
        loop.run_until_complete(svc.start("127.0.0.1", 0))
        sink = loop.run_until_complete(loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                     local_addr=("127.0.0.1", 0)))[0]
        addr = sink.get_extra_info("sockname")
        sender = PrivateKey.generate()
        exp = v4wire.expiration_from_now() + 3600
        ep = v4wire.make_endpoint(ipaddress.IPv4Address("127.0.0.1"), addr[1], 0)
        data = v4wire.encode(sender, v4wire.Ping(4, ep, ep, exp))[0]
        svc.db.update_last_pong_received(keccak256(sender.node_id), ipaddress.IPv4Address("127.0.0.1"))
        benchmark.group = "discv4 handle ping (decode, verify, sign pong, bookkeeping)"
        benchmark.extra_info.update(impl=str(ethnode.backends()["rlp"]), items=1)
        benchmark(svc.handle_packet, data, addr)
        benchmark.extra_info["packets_per_s"] = round(1 / benchmark.stats.stats.mean)
        assert svc.stats["in:PING/v4"] > 0 and not any(k.startswith("drop:") for k in svc.stats)
        sink.close()
        loop.run_until_complete(svc.close())
    finally:
        loop.close()


def _network(size: int, seed: int) -> dict[bytes, Table]:
    """``size`` nodes, each table holding up to 16 nodes per log distance, like a settled network."""
    r = random.Random(seed)
    nodes = [Node(r.randbytes(64), "127.0.0.1", 30303, 30303) for _ in range(size)]
    tables = {}
    for n in nodes:
        t = Table(n.id, rng=random.Random(seed))
        per_distance: dict[int, int] = {}
        for m in r.sample(nodes, len(nodes)):
            d = (n.id_int ^ m.id_int).bit_length()
            if d and per_distance.get(d, 0) < BUCKET_SIZE:
                per_distance[d] = per_distance.get(d, 0) + 1
                t.add_found_node(m)
        tables[n.id] = t
    return tables


def test_lookup_1000_nodes(benchmark: Any) -> None:
    tables = _network(NETWORK_SIZE, 11)
    all_ids = list(tables)
    start_id = all_ids[0]
    start = tables[start_id]
    queries: list[int] = []
    hits: list[float] = []
    loop = p2p_loop.new_event_loop()

    def one_lookup() -> list[Node]:
        target = os.urandom(32)

        async def query(n: Node) -> list[Node]:
            return tables[n.id].find_closest(target, BUCKET_SIZE)

        lookup = Lookup(target, start_id, start.find_closest(target, BUCKET_SIZE), query)
        result = loop.run_until_complete(lookup.run())
        queries.append(lookup.queries)
        t = int.from_bytes(target, "big")
        truth = set(sorted((i for i in all_ids if i != start_id), key=lambda i: int.from_bytes(i, "big") ^ t)[:16])
        hits.append(len(truth & {n.id for n in result}) / 16)
        return result

    try:
        benchmark.group = f"discv4 lookup on a {NETWORK_SIZE}-node in-memory network"
        benchmark.extra_info.update(impl=p2p_loop.loop_implementation(), items=1)
        result = benchmark.pedantic(one_lookup, rounds=30, iterations=1, warmup_rounds=1)
        assert len(result) == BUCKET_SIZE
        benchmark.extra_info["queries_per_lookup"] = round(sum(queries) / len(queries), 1)
        benchmark.extra_info["closest16_found"] = round(sum(hits) / len(hits), 3)
        assert sum(hits) / len(hits) > 0.9
    finally:
        loop.close()
