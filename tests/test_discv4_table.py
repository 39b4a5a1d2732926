"""The Kademlia table (no I/O), the node database and the lookup, without sockets.

Node ids are chosen rather than derived (``Node(..., node_id=...)``) so that every test
places nodes at exactly the log distance it needs; the table never looks at the public
key. Time is a list the test advances by hand.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random

import pytest

from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.nodedb import NODE_EXPIRATION, NodeDB
from ethnode.p2p.discover.table import (
    BUCKET_MIN_DISTANCE,
    BUCKET_SIZE,
    MAX_FINDNODE_FAILURES,
    MAX_REPLACEMENTS,
    N_BUCKETS,
    Table,
)
from ethnode.p2p.enode import Node
from ethnode.p2p.enr import ENR

SELF = bytes(32)
rng = random.Random(1234)


def node_at(distance: int, ip: str = "127.0.0.1", udp: int = 30303, *, base: bytes = SELF) -> Node:
    """A node whose id lies at ``distance`` (1..256) from ``base``."""
    low = rng.getrandbits(distance - 1) if distance > 1 else 0
    nid = int.from_bytes(base, "big") ^ ((1 << (distance - 1)) | low)
    return Node(os.urandom(64), ipaddress.ip_address(ip), udp, udp, node_id=nid.to_bytes(32, "big"))


def make_table(**kw: object) -> tuple[Table, list[float]]:
    clock = [1000.0]
    table = Table(SELF, clock=lambda: clock[0], rng=random.Random(7), **kw)  # type: ignore[arg-type]
    table.init_done = True
    return table, clock


# -- layout ----------------------------------------------------------------------------------------


def test_bucket_layout() -> None:
    table, _ = make_table()
    assert N_BUCKETS == 17 and BUCKET_MIN_DISTANCE == 239 and len(table.buckets) == 17
    assert table.bucket_at_distance(256) is table.buckets[16]
    assert table.bucket_at_distance(241) is table.buckets[1]
    assert table.bucket_at_distance(240) is table.buckets[0]
    assert table.bucket_at_distance(1) is table.buckets[0]
    n = node_at(250)
    assert table.bucket(n.id) is table.buckets[250 - 240]
    assert not table.add_found_node(Node(os.urandom(64), "127.0.0.1", 1, 1, node_id=SELF))  # ourselves


def test_full_bucket_overflows_into_replacements() -> None:
    table, _ = make_table()
    entries = [node_at(256) for _ in range(BUCKET_SIZE)]
    assert all(table.add_found_node(n) for n in entries)
    assert not table.add_found_node(entries[0])  # already there
    bucket = table.buckets[16]
    extra = [node_at(256) for _ in range(MAX_REPLACEMENTS + 2)]
    for n in extra:
        assert not table.add_found_node(n)
    assert len(bucket.entries) == BUCKET_SIZE
    assert [r.node for r in bucket.replacements] == extra[::-1][:MAX_REPLACEMENTS]  # newest first, capped
    table.add_found_node(extra[-1])  # a replacement seen again is not duplicated
    assert len(bucket.replacements) == MAX_REPLACEMENTS
    # a dead entry is replaced by one of the replacements
    promoted = table.delete_node(entries[3].id)
    assert promoted is not None and promoted.node in extra
    assert len(bucket.entries) == BUCKET_SIZE and table.get(entries[3].id) is None
    assert len(bucket.replacements) == MAX_REPLACEMENTS - 1
    assert promoted in table.fast.nodes  # the newcomer gets revalidated soon
    assert table.delete_node(entries[3].id) is None


def test_ip_limits_per_bucket_and_table() -> None:
    table, _ = make_table()
    # at most two per /24 in one bucket
    assert table.add_found_node(node_at(256, "8.8.8.1"))
    assert table.add_found_node(node_at(256, "8.8.8.2"))
    assert not table.add_found_node(node_at(256, "8.8.8.3"))
    assert table.add_found_node(node_at(256, "8.8.9.3"))  # another /24
    # at most ten per /24 in the whole table
    added = 2
    for d in range(255, 248, -1):
        for i in range(2):
            if table.add_found_node(node_at(d, f"8.8.8.{10 * (256 - d) + i + 10}")):
                added += 1
    assert added == 10
    assert not table.add_found_node(node_at(240, "8.8.8.200"))
    # deleting one frees its slot
    victim = next(e.node for e in table.entries() if str(e.node.ip).startswith("8.8.8."))
    table.delete_node(victim.id)
    assert table.add_found_node(node_at(240, "8.8.8.201"))
    # replacements count towards the limit too
    full, _ = make_table()
    for _ in range(BUCKET_SIZE):
        full.add_found_node(node_at(256))
    for i in range(4):
        full.add_found_node(node_at(256, f"9.9.9.{i}"))
    assert [str(r.node.ip) for r in full.buckets[16].replacements] == ["9.9.9.1", "9.9.9.0"]


def test_lan_and_loopback_exempt_and_no_ip_refused() -> None:
    table, _ = make_table()
    for i in range(BUCKET_SIZE):
        assert table.add_found_node(node_at(256, f"10.0.0.{i}"))
    for i in range(12):
        assert table.add_found_node(node_at(255, f"192.168.1.{i}"))
        assert table.add_found_node(node_at(254, f"127.0.0.{i + 1}"))
    assert not table.add_found_node(node_at(250, "0.0.0.0"))
    no_ip = Node(os.urandom(64), None, 0, 0, node_id=node_at(250).id)
    assert not table.add_found_node(no_ip)


def test_inbound_nodes_wait_for_the_initial_refresh() -> None:
    table, _ = make_table()
    table.init_done = False
    n = node_at(256)
    assert not table.add_inbound_node(n)
    assert table.add_found_node(n)
    table.init_done = True
    assert not table.add_inbound_node(n)  # already present


def test_updates_found_need_newer_seq_inbound_always_apply() -> None:
    table, _ = make_table()
    key = PrivateKey.generate()
    v1 = Node.from_enr(ENR.create(key, 1, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 1000}))
    v2 = Node.from_enr(ENR.create(key, 2, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 2000}))
    table.self_id = SELF
    assert table.add_found_node(v1)
    tn = table.get(v1.id)
    assert tn is not None
    tn.is_live = True
    table._move(tn, table.slow)
    assert not table.add_found_node(v1)  # same seq: nothing
    table.add_found_node(v2)
    assert tn.node is v2 and not tn.is_live and tn.reval_list is table.fast  # endpoint changed
    table.add_found_node(v1)
    assert tn.node is v2  # an older record from a third party is ignored
    inbound = v1.with_endpoint(ipaddress.IPv4Address("127.0.0.2"), 3000, 0)
    table.add_inbound_node(inbound)
    assert tn.node is inbound  # the node itself may even go back in seq


def test_find_closest_orders_by_distance_and_prefers_live() -> None:
    table, _ = make_table()
    nodes = [node_at(d) for d in (256, 250, 245, 241, 240, 200)]
    for n in nodes:
        table.add_found_node(n)
    closest = table.find_closest(SELF, 3)
    assert [n.id for n in closest] == [nodes[5].id, nodes[4].id, nodes[3].id]
    assert len(table.find_closest(SELF, 100)) == 6
    table.get(nodes[0].id).is_live = True  # type: ignore[union-attr]
    assert table.find_closest(SELF, 3, prefer_live=True) == [nodes[0]]
    assert len(table.find_closest(SELF, 3, prefer_live=False)) == 3


# -- revalidation ------------------------------------------------------------------------------------


def test_revalidation_outcomes() -> None:
    woken: list[int] = []
    table, clock = make_table(ping_interval=1.0, on_schedule=lambda: woken.append(1))
    a, b = node_at(256), node_at(255)
    table.add_found_node(a)
    assert woken == [1]  # the idle fast list got a deadline
    table.add_found_node(b)
    assert woken == [1]
    ta, tb = table.get(a.id), table.get(b.id)
    assert ta is not None and tb is not None
    assert ta.reval_list is table.fast and not ta.is_live
    clock[0] += 1.0
    due, next_time = table.revalidation_due()
    assert len(due) == 1 and next_time > clock[0]
    first = due[0]
    # an entry in flight is not handed out twice
    for _ in range(20):
        clock[0] += 1.0
        more, _ = table.revalidation_due()
        assert first not in more
        for tn in more:
            table.revalidation_result(tn, True)
    # success: live, one more check, on to the slow list
    assert not table.revalidation_result(first, True)
    assert first.is_live and first.reval_list is table.slow and first.liveness_checks >= 1
    # failure divides the count by three; at zero the entry is dropped
    first.liveness_checks = 4
    table.revalidation_result(first, False)
    assert first.liveness_checks == 1 and first.reval_list is table.fast
    table.revalidation_result(first, False)
    assert table.get(first.node.id) is None and first.reval_list is None
    # a result for an entry removed meanwhile changes nothing
    assert not table.revalidation_result(first, True)
    assert table.get(first.node.id) is None


def test_revalidation_earns_a_seed_and_replaces_dead_nodes() -> None:
    table, _ = make_table()
    entries = [node_at(256) for _ in range(BUCKET_SIZE)]
    for n in entries:
        table.add_found_node(n)
    spare = node_at(256)
    table.add_found_node(spare)
    tn = table.get(entries[0].id)
    assert tn is not None
    results = [table.revalidation_result(tn, True) for _ in range(7)]
    assert results == [False] * 5 + [True, True]  # more than five checks: store as a DB seed
    dead = table.get(entries[1].id)
    assert dead is not None
    table.revalidation_result(dead, False)
    assert table.get(entries[1].id) is None and table.get(spare.id) is not None


def test_revalidation_with_new_record_changing_endpoint() -> None:
    table, _ = make_table()
    key = PrivateKey.generate()
    old = Node.from_enr(ENR.create(key, 1, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 1000}))
    table.add_found_node(old)
    tn = table.get(old.id)
    assert tn is not None
    same = Node.from_enr(ENR.create(key, 2, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 1000, "x": 1}))
    table.revalidation_result(tn, True, same)
    assert tn.node is same and tn.reval_list is table.slow
    moved = Node.from_enr(ENR.create(key, 3, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 1001}))
    table.revalidation_result(tn, True, moved)
    assert tn.node is moved and tn.reval_list is table.fast and not tn.is_live


def test_track_request_drops_failing_nodes_only_in_populated_buckets() -> None:
    table, _ = make_table()
    sparse = node_at(250)
    table.add_found_node(sparse)
    table.track_request(sparse, MAX_FINDNODE_FAILURES, [])
    assert table.get(sparse.id) is not None  # bucket nearly empty: kept for small networks
    crowd = [node_at(256) for _ in range(4)]
    for n in crowd:
        table.add_found_node(n)
    table.track_request(crowd[0], MAX_FINDNODE_FAILURES - 1, [])
    assert table.get(crowd[0].id) is not None
    found = [node_at(244), node_at(243)]
    table.track_request(crowd[0], MAX_FINDNODE_FAILURES, found)
    assert table.get(crowd[0].id) is None
    assert all(table.get(n.id) is not None for n in found)


def test_bootnodes_and_seeds() -> None:
    table, _ = make_table()
    boot = Node(PrivateKey.generate().node_id, "127.0.0.1", 30303, 30303)
    table.set_fallback_nodes([boot])
    seed = node_at(250)
    table.load_seeds([seed])
    assert {n.id for n in table.nodes()} == {boot.id, seed.id}
    with pytest.raises(ValueError):
        table.set_fallback_nodes([Node(boot.pubkey, None, 0, 0)])


# -- node database ----------------------------------------------------------------------------------


def test_nodedb_bonds_and_failures() -> None:
    now = [5000.0]
    db = NodeDB(None, clock=lambda: now[0])
    nid, ip = os.urandom(32), ipaddress.IPv4Address("1.2.3.4")
    assert db.last_ping_received(nid, ip) == 0 == db.last_pong_received(nid, ip) == db.find_fails(nid, ip)
    db.update_last_ping_received(nid, ip)
    db.update_last_pong_received(nid, ip, 4000.0)
    db.update_find_fails(nid, ip, 3)
    assert (db.last_ping_received(nid, ip), db.last_pong_received(nid, ip), db.find_fails(nid, ip)) == (
        5000.0, 4000.0, 3)
    mapped = ipaddress.IPv6Address("::ffff:1.2.3.4")
    assert db.find_fails(nid, mapped) == 3  # one row per address, whatever its spelling
    assert db.find_fails(nid, ipaddress.IPv4Address("1.2.3.5")) == 0  # per IP
    assert db.last_pong_received(nid, None) == 0
    db.update_last_pong_received(nid, None)  # no IP: ignored
    db.close()


def test_nodedb_nodes_seeds_and_expiry() -> None:
    now = [10 * NODE_EXPIRATION]
    db = NodeDB(None, clock=lambda: now[0])
    key = PrivateKey.generate()
    rec_node = Node.from_enr(ENR.create(key, 5, {"ip": ipaddress.IPv4Address("9.9.9.9"), "udp": 30303}))
    plain = Node(PrivateKey.generate().node_id, "8.8.8.8", 30301, 30302)
    stale = Node(PrivateKey.generate().node_id, "7.7.7.7", 30303, 30303)
    for n in (rec_node, plain, stale):
        db.update_node(n)
    db.update_last_pong_received(rec_node.id, rec_node.ip)
    db.update_last_pong_received(plain.id, plain.ip, now[0] - 3600)
    db.update_last_pong_received(stale.id, stale.ip, now[0] - 2 * NODE_EXPIRATION)
    assert db.node(rec_node.id) == rec_node and db.node(rec_node.id).record == rec_node.record  # type: ignore[union-attr]
    assert db.node(plain.id) == plain
    assert db.node(os.urandom(32)) is None
    db.update_node(Node.from_enr(ENR.create(key, 4, {"udp": 1})))  # older record: ignored
    assert db.node(rec_node.id).seq == 5  # type: ignore[union-attr]
    seeds = db.query_seeds(10, 7200)
    assert {n.id for n in seeds} == {rec_node.id, plain.id}
    assert {n.id for n in db.query_seeds(10, 60)} == {rec_node.id}
    assert len(db.query_seeds(1, 7200)) == 1
    assert len(db) == 3
    db.expire_nodes()
    assert len(db) == 2 and db.node(stale.id) is None
    huge = Node.from_enr(ENR.create(key, 2**64 - 1))
    db.update_node(huge)  # a uint64 seq does not fit SQLite's INTEGER; stored as bytes
    assert db.node(huge.id).seq == 2**64 - 1  # type: ignore[union-attr]
    db.delete_node(huge.id)
    assert db.node(huge.id) is None
    db.close()


def test_nodedb_persists_and_resets_on_version_change(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "sub" / "nodes.sqlite3"  # type: ignore[operator]
    db = NodeDB(path)
    nid = os.urandom(32)
    db.store_local_seq(nid, 77)
    db.update_last_pong_received(nid, ipaddress.IPv4Address("1.1.1.1"), 123.0)
    db.close()
    db = NodeDB(path)
    assert db.local_seq(nid) == 77 and db.last_pong_received(nid, ipaddress.IPv4Address("1.1.1.1")) == 123.0
    db._conn.execute("PRAGMA user_version=999")
    db.close()
    db = NodeDB(path)
    assert db.local_seq(nid) == 0  # an unknown schema version is wiped, as geth does
    db.close()
    path.write_bytes(b"this is not a database" * 100)
    db = NodeDB(path)
    assert db.local_seq(nid) == 0
    db.close()


# -- lookup ---------------------------------------------------------------------------------------------


def _network(size: int, seed: int) -> dict[bytes, tuple[Node, Table]]:
    r = random.Random(seed)
    nodes = [Node(r.randbytes(64), "127.0.0.1", 30303, 30303) for _ in range(size)]
    net = {}
    for n in nodes:
        t = Table(n.id, rng=random.Random(seed))
        for m in nodes:
            t.add_found_node(m)
        net[n.id] = (n, t)
    return net


def test_lookup_finds_the_closest_nodes() -> None:
    net = _network(300, 3)
    start_node, start_table = next(iter(net.values()))
    target = keccak256(b"target")
    asked: list[Node] = []

    async def query(n: Node) -> list[Node]:
        asked.append(n)
        await asyncio.sleep(0)
        return net[n.id][1].find_closest(target, BUCKET_SIZE)

    initial = start_table.find_closest(target, BUCKET_SIZE)
    result = asyncio.run(Lookup(target, start_node.id, initial, query).run())
    t = int.from_bytes(target, "big")
    truth = sorted((n for n, _ in net.values() if n.id != start_node.id), key=lambda n: n.id_int ^ t)[:16]
    assert [n.id for n in result] == [n.id for n in truth]
    assert len({n.id for n in asked}) == len(asked)  # nobody asked twice
    assert start_node not in asked


def test_lookup_survives_failing_and_cancelled_queries() -> None:
    net = _network(40, 4)
    start_node, start_table = next(iter(net.values()))
    target = os.urandom(32)

    async def flaky(n: Node) -> list[Node]:
        if n.id_int % 3 == 0:
            raise RuntimeError("broken query")
        return net[n.id][1].find_closest(target, BUCKET_SIZE)

    initial = start_table.find_closest(target, BUCKET_SIZE)
    assert len(asyncio.run(Lookup(target, start_node.id, initial, flaky).run())) == BUCKET_SIZE

    started = asyncio.Event()
    cancelled: list[Node] = []

    async def hanging(n: Node) -> list[Node]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return []

    async def main() -> None:
        task = asyncio.ensure_future(Lookup(target, start_node.id, initial, hanging).run())
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(cancelled) == 3  # α queries were in flight, all cleaned up
