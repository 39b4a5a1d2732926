"""The discv4 service over real UDP sockets on loopback: bonding, replies, refusals, a network.

``RawPeer`` is a scriptable discv4 endpoint built from v4wire alone, so a test can send
what ethnode itself never would (expired, unsolicited, forged, from the wrong IP) and
check that the service stays silent. Silence is checked once per test over a short
window after everything was sent, together with the service's drop counters, which
name the reason for each refused packet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from shared_support import subprocess_env

from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover import v4wire
from ethnode.p2p.discover.netutil import check_relay_ip
from ethnode.p2p.discover.udp import RESP_TIMEOUT, Config, DiscoveryTimeout, UDPv4
from ethnode.p2p.discover.v4wire import ENRRequest, ENRResponse, FindNode, Neighbors, Packet, Ping, Pong, WireNode
from ethnode.p2p.enode import Node, parse_enode
from ethnode.p2p.enr import ENR

ROOT = Path(__file__).resolve().parent.parent
SILENCE = 0.3  # seconds of listening that count as "no reply" (geth's suite waits 300 ms)
STEP = 5.0  # bound on any single expected packet


def run(make: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Run on the preferred loop with a hard bound; fail if a task outlives the coroutine."""

    async def main() -> Any:
        result = await asyncio.wait_for(make(), timeout)
        for _ in range(3):
            await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left behind: {left}"
        return result

    return p2p_loop.run(main())


class RawPeer(asyncio.DatagramProtocol):
    """A hand-driven discv4 endpoint: send any packet, read what comes back."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.inbox: asyncio.Queue[tuple[Packet, bytes, bytes]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, host: str = "127.0.0.1", key: PrivateKey | None = None) -> RawPeer:
        peer = cls(key or PrivateKey.generate())
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(v4wire.decode(data))

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    @property
    def node_id(self) -> bytes:
        return keccak256(self.key.node_id)

    def send(self, packet: Packet, to: UDPv4) -> bytes:
        data, mac = v4wire.encode(self.key, packet)
        self.send_raw(data, to)
        return mac

    def send_raw(self, data: bytes, to: UDPv4) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", to.port))

    async def recv(self, kind: type[Packet] | None = None) -> tuple[Any, bytes, bytes]:
        packet, pubkey, mac = await asyncio.wait_for(self.inbox.get(), STEP)
        if kind is not None:
            assert isinstance(packet, kind), f"expected {kind.__name__}, got {packet!r}"
        return packet, pubkey, mac

    async def silence(self, allow: tuple[type[Packet], ...] = ()) -> list[Packet]:
        """Listen for SILENCE seconds; fail on anything but ``allow``ed packet types."""
        await asyncio.sleep(SILENCE)
        got = []
        while not self.inbox.empty():
            packet = self.inbox.get_nowait()[0]
            assert isinstance(packet, allow), f"unexpected reply {packet!r}"
            got.append(packet)
        return got

    def ping(self, to: UDPv4, *, expiration: int | None = None) -> bytes:
        ip, port = self.addr
        return self.send(Ping(4, v4wire.Endpoint(ipaddress.ip_address(ip).packed, port, 0),
                              v4wire.make_endpoint(ipaddress.ip_address("127.0.0.1"), to.port, 0),
                              v4wire.expiration_from_now() if expiration is None else expiration), to)

    async def bond(self, to: UDPv4) -> None:
        """Ping, take the Pong, answer the ping-back: the service now holds our endpoint proof."""
        mac = self.ping(to)
        got_pong = got_ping = False
        while not (got_pong and got_ping):
            packet, _, their_mac = await self.recv()
            if isinstance(packet, Pong):
                assert packet.ping_hash == mac
                got_pong = True
            elif isinstance(packet, Ping):
                self.send(Pong(v4wire.make_endpoint(ipaddress.ip_address("127.0.0.1"), to.port, 0), their_mac,
                               v4wire.expiration_from_now()), to)
                got_ping = True
        await self.until(lambda: to.db.last_pong_received(self.node_id, ipaddress.ip_address(self.addr[0])) > 0)

    @staticmethod
    async def until(cond: Callable[[], bool]) -> None:
        async def poll() -> None:
            while not cond():
                await asyncio.sleep(0.005)

        await asyncio.wait_for(poll(), STEP)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


QUIET = 3600.0  # a revalidation interval long enough that no revalidation Ping lands inside a test


async def start(config: Config | None = None, **kw: Any) -> UDPv4:
    """A started service; unless the test configures it, revalidation stays out of the way."""
    svc = UDPv4(PrivateKey.generate(), config=config or Config(ping_interval=QUIET), **kw)
    await svc.start("127.0.0.1", 0)
    await asyncio.wait_for(svc.initialized.wait(), STEP)
    return svc


# -- the happy path -------------------------------------------------------------------------------------


def test_ping_pong_bond_findnode_enr() -> None:
    async def main() -> None:
        svc = await start()
        peer = await RawPeer.open()
        try:
            mac = peer.ping(svc)
            replies = [await peer.recv(), await peer.recv()]
            pong = next(p for p, _, _ in replies if isinstance(p, Pong))
            ping_back = next(p for p, _, _ in replies if isinstance(p, Ping))
            assert pong.ping_hash == mac
            assert (pong.to.ip, pong.to.udp) == (bytes([127, 0, 0, 1]), peer.addr[1])  # where we are seen
            assert pong.enr_seq == svc.local.record.seq
            assert ping_back.enr_seq == svc.local.record.seq and ping_back.to.udp == peer.addr[1]
            assert all(pubkey == svc.key.node_id for _, pubkey, _ in replies)
            # the bond is not complete until we answer its ping: FindNode is still refused
            peer.send(FindNode(peer.key.node_id, v4wire.expiration_from_now()), svc)
            await peer.silence()
            assert svc.stats["drop:unbonded"] == 1
            ping_hash = next(m for p, _, m in replies if isinstance(p, Ping))
            peer.send(Pong(v4wire.make_endpoint(ipaddress.ip_address("127.0.0.1"), svc.port, 0), ping_hash,
                           v4wire.expiration_from_now()), svc)
            await peer.until(lambda: svc.table.get(peer.node_id) is not None)  # admitted once it answered
            # bonded: FindNode is answered, with the peer itself among the nodes
            peer.send(FindNode(peer.key.node_id, v4wire.expiration_from_now()), svc)
            neighbors, _, _ = await peer.recv(Neighbors)
            assert [n.id for n in neighbors.nodes] == [peer.key.node_id]
            # ENRRequest gets our record, echoing the request hash
            req = peer.send(ENRRequest(v4wire.expiration_from_now()), svc)
            resp, _, _ = await peer.recv(ENRResponse)
            assert resp.request_hash == req
            record = ENR.decode(resp.record)
            assert record == svc.local.record and record.node_id == svc.local.id
            assert (str(record.ip), record.udp) == ("127.0.0.1", svc.port)
            # a second Ping while bonded: a Pong, no ping-back
            again = peer.ping(svc)
            assert (await peer.recv(Pong))[0].ping_hash == again
            await peer.silence()
        finally:
            peer.close()
            await svc.close()

    run(main)


def test_empty_table_still_answers_findnode() -> None:
    async def main() -> None:
        svc = await start()
        peer = await RawPeer.open()
        try:
            await peer.bond(svc)
            svc.table.delete_node(peer.node_id)
            peer.send(FindNode(os.urandom(64), v4wire.expiration_from_now()), svc)
            neighbors, _, _ = await peer.recv(Neighbors)
            assert neighbors.nodes == []
        finally:
            peer.close()
            await svc.close()

    run(main)


def test_neighbors_split_into_legal_packets() -> None:
    async def main() -> None:
        svc = await start()
        peer = await RawPeer.open()
        try:
            for i in range(20):  # public IPv6 nodes in distinct /24s, 3-byte ports: the largest entries
                node = Node(PrivateKey.generate().node_id, ipaddress.IPv6Address(f"2a01:{i:02x}00::1"), 65535, 65535)
                svc.table.add_found_node(node, force_live=True)
            await peer.bond(svc)
            peer.send(FindNode(os.urandom(64), v4wire.expiration_from_now()), svc)
            first, _, _ = await peer.recv(Neighbors)
            second, _, _ = await peer.recv(Neighbors)
            assert (len(first.nodes), len(second.nodes)) == (12, 4)
            for p in (first, second):
                assert len(v4wire.encode(svc.key, p)[0]) <= v4wire.MAX_PACKET_SIZE
            await peer.silence()
        finally:
            peer.close()
            await svc.close()

    run(main)


# -- refusals --------------------------------------------------------------------------------------------


def _forged(data: bytes, fix: Callable[[bytearray], None]) -> bytes:
    out = bytearray(data)
    fix(out)
    out[:32] = keccak256(bytes(out[32:]))
    return bytes(out)


def test_bad_input_is_dropped_without_reply() -> None:
    async def main() -> None:
        svc = await start()
        bonded = await RawPeer.open()
        stranger = await RawPeer.open()
        impostor = await RawPeer.open("127.0.0.2", key=bonded.key)  # bonded's key, another IP
        try:
            await bonded.bond(svc)
            exp = v4wire.expiration_from_now()
            past = int(time.time()) - 1
            good, _ = v4wire.encode(stranger.key, FindNode(os.urandom(64), exp))
            body = bytes([v4wire.ENR_REQUEST]) + rlp.encode(b"not a list")  # well signed, broken body
            sig = stranger.key.sign(keccak256(body))
            cases = {
                "PacketTooSmallError": [b"\x01", b"\x00" * 97],
                "PacketTooLargeError": [good + b"\x00" * 1200],
                "BadHashError": [good[:-1] + bytes([good[-1] ^ 1])],
                "BadSignatureError": [_forged(good, lambda b: b.__setitem__(96, 7))],
                "UnknownPacketError": [_forged(good, lambda b: b.__setitem__(97, 66))],
                "MalformedPacketError": [keccak256(sig + body) + sig + body],
            }
            for datagrams in cases.values():
                for d in datagrams:
                    stranger.send_raw(d, svc)
            # expired requests
            stranger.ping(svc, expiration=past)
            stranger.ping(svc, expiration=2**64 - exp)  # "-t" as geth's suite sends it
            bonded.send(FindNode(os.urandom(64), past), svc)
            bonded.send(ENRRequest(past), svc)
            # requests from unbonded nodes, and from a bonded id at another IP
            stranger.send(FindNode(os.urandom(64), exp), svc)
            stranger.send(ENRRequest(exp), svc)
            impostor.send(FindNode(os.urandom(64), exp), svc)
            impostor.send(ENRRequest(exp), svc)
            # replies nobody asked for
            fake = WireNode(bytes([1, 2, 3, 4]), 30303, 30303, PrivateKey.generate().node_id)
            bonded.send(Neighbors([fake], exp), svc)
            bonded.send(Neighbors([fake], past), svc)
            stranger.send(Pong(v4wire.Endpoint(b"", 0, 0), os.urandom(32), exp), svc)
            bonded.send(ENRResponse(os.urandom(32), svc.local.record.encode()), svc)
            for p in (bonded, stranger, impostor):
                await p.silence()
            s = svc.stats
            for reason, datagrams in cases.items():
                assert s["drop:" + reason] == len(datagrams), reason
            assert s["drop:expired"] == 5
            assert s["drop:unbonded"] == 4
            assert s["drop:unsolicited"] == 3
            assert svc.table.get(keccak256(fake.id)) is None  # unsolicited Neighbors never reach the table
        finally:
            for p in (bonded, stranger, impostor):
                p.close()
            await svc.close()

    run(main)


def test_pong_must_echo_the_ping_and_come_from_the_pinged_ip() -> None:
    async def main() -> None:
        svc = await start()
        peer = await RawPeer.open()
        impostor = await RawPeer.open("127.0.0.2", key=peer.key)
        try:
            # the ping-back answered with a wrong hash does not bond (geth suite: InvalidPongHash)
            peer.ping(svc)
            replies = [await peer.recv(), await peer.recv()]
            assert {type(p) for p, _, _ in replies} == {Pong, Ping}
            peer.send(Pong(v4wire.Endpoint(b"", 0, 0), bytes(32), v4wire.expiration_from_now()), svc)
            peer.send(FindNode(os.urandom(64), v4wire.expiration_from_now()), svc)
            await peer.silence()
            assert svc.stats["drop:unsolicited"] == 1 and svc.stats["drop:unbonded"] == 1
            assert svc.db.last_pong_received(peer.node_id, ipaddress.ip_address("127.0.0.1")) == 0
            # a correct Pong from another IP than the one pinged is ignored too
            me = Node(peer.key.node_id, "127.0.0.1", peer.addr[1], 0)
            pinging = asyncio.ensure_future(svc.ping(me))
            ping, _, mac = await peer.recv(Ping)
            impostor.send(Pong(ping.to, mac, v4wire.expiration_from_now()), svc)
            with pytest.raises(DiscoveryTimeout):
                await pinging
            assert svc.stats["drop:unsolicited"] == 2
        finally:
            peer.close()
            impostor.close()
            await svc.close()

    run(main)


def test_relay_rules() -> None:
    ip = ipaddress.ip_address
    assert check_relay_ip(ip("127.0.0.1"), ip("127.0.0.5")) is None
    assert check_relay_ip(ip("8.8.8.8"), ip("127.0.0.5")) is not None  # loopback from a public host
    assert check_relay_ip(ip("8.8.8.8"), ip("192.168.0.1")) is not None  # LAN from a public host
    assert check_relay_ip(ip("10.0.0.1"), ip("192.168.0.1")) is None
    assert check_relay_ip(ip("8.8.8.8"), ip("1.1.1.1")) is None
    assert check_relay_ip(ip("8.8.8.8"), ip("192.0.2.1")) is not None  # documentation range
    assert check_relay_ip(ip("8.8.8.8"), ip("0.0.0.0")) is not None
    assert check_relay_ip(ip("8.8.8.8"), ip("224.0.0.1")) is not None
    assert check_relay_ip(ip("8.8.8.8"), ip("2001:db8::1")) is not None
    assert check_relay_ip(ip("8.8.8.8"), None) is not None


# -- requests between two services ------------------------------------------------------------------


def test_requests_between_services_and_record_updates() -> None:
    async def main() -> None:
        a, b = await start(), await start()
        try:
            pong = await a.ping(b.self_node)
            assert pong.enr_seq == b.local.record.seq
            started = time.monotonic()
            found = await a.findnode(b.self_node, os.urandom(64))
            # the bond wait ends when b pings back, long before geth's fixed 500 ms sleep
            assert time.monotonic() - started < RESP_TIMEOUT * 0.8
            assert [n.id for n in found] == [a.local.id]  # b learned a when a bonded
            got = await a.request_enr(b.self_node)
            assert got.record == b.local.record and got.seq == b.local.record.seq
            old_seq = b.local.record.seq
            b.local.set("x", b"new entry")
            assert (await a.ping(b.self_node)).enr_seq == old_seq + 1
            newer = await a.request_enr(got)
            assert newer.seq == old_seq + 1 and newer.record.get("x") == rlp.encode(b"new entry")  # type: ignore[union-attr]
            # a node that is gone: a timeout, not a hang
            gone = Node(PrivateKey.generate().node_id, "127.0.0.1", 9, 0)
            with pytest.raises(DiscoveryTimeout):
                await a.ping(gone)
            lookup = await a.lookup(b.local.pubkey)
            assert b.local.id in {n.id for n in lookup}
        finally:
            await a.close()
            await b.close()

    run(main)


def test_revalidation_drops_dead_and_confirms_live_nodes() -> None:
    async def main() -> None:
        svc = await start(Config(ping_interval=0.05))
        other = await start()
        dead = Node(PrivateKey.generate().node_id, "127.0.0.1", 9, 0)  # discard port: nobody answers
        try:
            assert svc.table.add_found_node(dead)
            assert svc.table.add_found_node(other.self_node)
            await RawPeer.until(lambda: svc.table.get(dead.id) is None)
            tn = svc.table.get(other.local.id)
            await RawPeer.until(lambda: tn is not None and tn.is_live and tn.reval_list is svc.table.slow)
        finally:
            await svc.close()
            await other.close()

    run(main)


def test_twenty_nodes_with_one_bootnode_find_each_other() -> None:
    count, want = 20, 15

    async def main() -> float:
        boot = await start()
        cfg = Config(bootnodes=[boot.self_node], ping_interval=0.5, refresh_interval=2.0)
        nodes = [boot]
        started = time.monotonic()
        try:
            for _ in range(count - 1):
                svc = UDPv4(PrivateKey.generate(), config=cfg)
                nodes.append(await svc.start("127.0.0.1", 0))

            async def settled() -> None:
                while min(len(n.table) for n in nodes) < want:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(settled(), 18.0)
            ids = {n.local.id for n in nodes}
            for n in nodes:
                known = {x.id for x in n.table.nodes()}
                assert known <= ids and n.local.id not in known and len(known) >= want
            return time.monotonic() - started
        finally:
            await asyncio.gather(*(n.close() for n in nodes))

    elapsed = run(main, timeout=25.0)
    assert elapsed < 20.0


# -- the discover command ----------------------------------------------------------------------------


@pytest.mark.subprocess
def test_discover_command_runs_answers_and_stops(tmp_path: Path) -> None:
    env = subprocess_env()
    cmd = [sys.executable, "-m", "ethnode.commands.discover", "--port", "0", "--listenaddr", "127.0.0.1",
           "--datadir", str(tmp_path), "--log-interval", "0.2", "--verbosity", "3"]

    def launch() -> tuple[subprocess.Popen[str], Node, ENR]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        url, text = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        return proc, parse_enode(url), ENR.from_text(text)

    proc, node, record = launch()
    try:
        assert node.udp and node.tcp == 0 and str(node.ip) == "127.0.0.1" and record.node_id == node.id

        async def talk() -> None:
            peer = await RawPeer.open()
            try:
                mac = peer.send(Ping(4, v4wire.Endpoint(b"", 0, 0),
                                     v4wire.make_endpoint(node.ip, node.udp, 0), v4wire.expiration_from_now()),
                                _Port(node.udp))  # type: ignore[arg-type]
                pong, pubkey, _ = await peer.recv(Pong)
                assert pong.ping_hash == mac and pubkey == node.pubkey
            finally:
                peer.close()

        run(talk, timeout=10.0)
        time.sleep(0.5)  # let a table-size line be logged
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert re.search(r"Discovery table +nodes=0 ", err), err
    # the identity and the record's seq survive a restart through the datadir
    proc2, node2, record2 = launch()
    proc2.send_signal(signal.SIGTERM)
    proc2.communicate(timeout=10)
    assert node2.pubkey == node.pubkey and record2.seq > record.seq
    assert (tmp_path / "ethnode" / "nodes.sqlite3").exists()


class _Port:
    """Stands in for a UDPv4 as RawPeer's destination: only ``port`` is read."""

    def __init__(self, port: int) -> None:
        self.port = port


def test_discover_command_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from ethnode.commands import discover

    assert discover.main(["--nodekeyhex", "zz"]) == 1
    assert discover.main(["--bootnodes", "enode://abc@1.2.3.4:1"]) == 1
    assert discover.main(["--port", "70000"]) == 1
    assert discover.main(["--nodekey", "/nonexistent/key", "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("Fatal: ") for line in err)
    parser = argparse.ArgumentParser()
    discover.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["discover", "--port", "5", "--bootnodes", "x,y"])
    assert args.func is discover.run and args.port == 5 and args.bootnodes == "x,y"


def test_table_is_seeded_from_the_node_db() -> None:
    from ethnode.p2p.discover.nodedb import NodeDB

    async def main() -> None:
        other = await start()
        db = NodeDB(None)
        db.update_node(other.self_node)
        db.update_last_pong_received(other.local.id, ipaddress.ip_address("127.0.0.1"))
        svc = await start(Config(ping_interval=QUIET), db=db)
        try:
            assert svc.table.get(other.local.id) is not None  # loaded by the initial refresh
        finally:
            await svc.close()
            await other.close()
            db.close()

    run(main)


def test_handler_failure_is_contained() -> None:
    import sqlite3

    async def main() -> None:
        svc = await start()
        peer = await RawPeer.open()
        try:
            original = svc.db.update_last_ping_received

            def broken(*args: Any) -> None:
                raise sqlite3.OperationalError("disk I/O error")

            svc.db.update_last_ping_received = broken  # type: ignore[method-assign]
            peer.ping(svc)
            await peer.recv(Pong)  # answered before the failing bookkeeping
            await peer.until(lambda: svc.stats["error"] == 1)
            svc.db.update_last_ping_received = original  # type: ignore[method-assign]
            mac = peer.ping(svc)
            while True:  # the service is still serving
                packet, _, _ = await peer.recv()
                if isinstance(packet, Pong):
                    assert packet.ping_hash == mac
                    break
        finally:
            peer.close()
            await svc.close()

    run(main)
