"""The discv5 service over real UDP sockets on loopback: handshakes, calls, TALKREQ, NODES, refusals.

``RawV5`` is a hand-driven discv5 endpoint built from ``v5wire.Codec`` alone, so a test
can send what ethnode never would (truncated, masked for someone else, tampered, from a
second address) and check what comes back. Every wait is bounded; silence is checked
over a short window, together with the service's drop counters.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from shared_support import subprocess_env

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover.udp import DiscoveryTimeout, UDPv4
from ethnode.p2p.discover.v4wire import Ping as Ping4
from ethnode.p2p.discover.v5_udp import NODES_SIZE_LIMIT, Config, UDPv5, lookup_distances, pack_nodes
from ethnode.p2p.discover.v5wire import Codec, Whoareyou
from ethnode.p2p.discover.v5wire import crypto as v5crypto
from ethnode.p2p.discover.v5wire.messages import Findnode, Nodes, Ping, Pong, TalkRequest, TalkResponse
from ethnode.p2p.enode import Node, log_distance
from ethnode.p2p.enr import ENR

SILENCE = 0.3  # seconds of listening that count as "no reply" (geth's suite waits 300 ms)
STEP = 5.0  # bound on any single expected packet


def run(make: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(make(), timeout)

    return p2p_loop.run(main())


class RawV5(asyncio.DatagramProtocol):
    """A scriptable discv5 endpoint: one codec, any number of local sockets."""

    def __init__(self, dest: Node) -> None:
        self.key = PrivateKey.generate()
        self.record = ENR.create(self.key, 1)
        self.codec = Codec(self.key, self.record.node_id, lambda: self.record)
        self.dest = dest
        self.dest_addr = (str(dest.ip), dest.udp)
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, dest: Node, host: str = "127.0.0.1") -> RawV5:
        peer = cls(dest)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        return peer

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.dest_addr)

    def send(self, packet: Any, challenge: Whoareyou | None = None) -> bytes:
        data, nonce = self.codec.encode(self.dest.id, self.dest_addr, packet, challenge)
        self.send_raw(data)
        return nonce

    async def read(self) -> Any:
        data = await asyncio.wait_for(self.inbox.get(), STEP)
        return self.codec.decode(data, self.dest_addr)[2]

    async def silent(self) -> bool:
        try:
            await asyncio.wait_for(self.inbox.get(), SILENCE)
        except TimeoutError:
            return True
        return False

    async def request(self, packet: Any) -> Any:
        """Send, answer a WHOAREYOU for it with a handshake, return the reply."""
        nonce = self.send(packet)
        reply = await self.read()
        if isinstance(reply, Whoareyou):
            assert reply.nonce == nonce
            reply.node = self.dest
            self.send(packet, reply)
            reply = await self.read()
        return reply

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _service(**cfg: Any) -> UDPv5:
    svc = await UDPv5(PrivateKey.generate(), config=Config(**cfg)).start("127.0.0.1", 0)
    await asyncio.wait_for(svc.initialized.wait(), STEP)
    return svc


def test_ping_enr_and_talk_between_two_services() -> None:
    async def main() -> None:
        a, b = await _service(resp_timeout=0.3), await _service(resp_timeout=0.3)
        try:
            calls: list[tuple[bytes, tuple[str, int], bytes]] = []

            def echo(node: Node, addr: tuple[str, int], msg: bytes) -> bytes:
                calls.append((node.id, addr, msg))
                return msg[::-1]

            async def slow_upper(node: Node, addr: tuple[str, int], msg: bytes) -> bytes:
                await asyncio.sleep(0)
                return msg.upper()

            def broken(node: Node, addr: tuple[str, int], msg: bytes) -> bytes:
                raise RuntimeError("handler bug")

            a.register_talk_handler(b"echo", echo)
            a.register_talk_handler(b"upper", slow_upper)
            a.register_talk_handler(b"broken", broken)
            pong = await b.ping(a.self_node)
            assert pong.enr_seq == a.self_node.seq and pong.to_ip == bytes([127, 0, 0, 1]) and pong.to_port == b.port
            assert a.table.get(b.local.id) is not None  # the handshake put b into a's table
            fetched = await b.request_enr(a.self_node)
            assert fetched.record == a.local.record
            assert await b.talk_request(a.self_node, b"echo", b"hello") == b"olleh"
            assert calls == [(b.local.id, ("127.0.0.1", b.port), b"hello")]
            assert await b.talk_request(a.self_node, b"upper", b"abc") == b"ABC"
            assert await b.talk_request(a.self_node, b"nobody", b"abc") == b""  # unknown protocol: empty
            with pytest.raises(DiscoveryTimeout):  # a failing handler sends nothing
                await b.talk_request(a.self_node, b"broken", b"abc")
            assert a.stats["in:PING/v5"] == 1 and a.stats["out:WHOAREYOU/v5"] == 1  # one handshake for all
        finally:
            await a.close()
            await b.close()

    run(main)


def test_discv4_and_discv5_share_one_socket() -> None:
    async def main() -> None:
        v4 = await UDPv4(PrivateKey.generate()).start("127.0.0.1", 0)
        v5 = UDPv5(v4.key, local=v4.local, db=v4.db).attach(v4)
        other4 = await UDPv4(PrivateKey.generate()).start("127.0.0.1", 0)
        other5 = await _service()
        try:
            assert v5.port == v4.port and v5.local is v4.local  # one key, one record, one port
            assert (await other4.ping(v4.self_node)).enr_seq == v4.self_node.seq
            assert (await other5.ping(v5.self_node)).enr_seq == v4.self_node.seq
            assert v4.stats["in:" + Ping4.NAME] == 1 and v5.stats["in:PING/v5"] == 1
            assert not [k for k in v4.stats if k.startswith("drop:")]  # discv5 packets were handed on
        finally:
            for s in (other5, other4, v5, v4):
                await s.close()

    run(main)


def test_sessions_are_bound_to_the_address() -> None:
    """geth's PingMultiIP: a session from 127.0.0.1 is no session from 127.0.0.2."""

    async def main() -> None:
        svc = await _service()
        one = await RawV5.open(svc.self_node, "127.0.0.1")
        two = RawV5(svc.self_node)
        two.key, two.record, two.codec = one.key, one.record, one.codec  # same node, second address
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: two, local_addr=("127.0.0.2", 0))
        try:
            assert isinstance(await one.request(Ping(b"\x01", 1)), Pong)
            two.send(Ping(b"\x02", 1))
            assert isinstance(await two.read(), Whoareyou)
            one.send(Ping(b"\x03", 1))  # the first address still has its session
            reply = await one.read()
            assert isinstance(reply, Pong) and reply.req_id == b"\x03"
        finally:
            one.close()
            two.close()
            await svc.close()

    run(main)


def test_a_resent_challenge_is_the_same_challenge() -> None:
    async def main() -> None:
        svc = await _service()
        peer = await RawV5.open(svc.self_node)
        try:
            peer.send(Ping(b"\x01", 1))
            first = await peer.read()
            peer.send(Ping(b"\x02", 1))
            second = await peer.read()
            assert isinstance(first, Whoareyou) and isinstance(second, Whoareyou)
            assert (second.nonce, second.challenge_data) == (first.nonce, first.challenge_data)
        finally:
            peer.close()
            await svc.close()

    run(main)


def _node_at(svc: UDPv5, dist: int, port: int) -> Node:
    while True:
        key = PrivateKey.generate()
        record = ENR.create(key, 1, {"ip": bytes([127, 0, 0, 1]), "udp": port})
        if log_distance(svc.local.id, record.node_id) == dist:
            return Node.from_enr(record)


def test_findnode_answers_over_several_nodes_packets() -> None:
    async def main() -> None:
        svc = await _service()
        client = await _service()
        try:
            nodes = [_node_at(svc, 256, 40000 + i) for i in range(16)]
            for n in nodes:
                assert svc.table.add_found_node(n, force_live=True)
            found = await client.findnode(svc.self_node, [256, 256, 300])
            assert {n.id for n in found} == {n.id for n in nodes}
            assert svc.stats["out:NODES/v5"] >= 2  # 16 records do not fit 1000 bytes
            assert [n.id for n in await client.findnode(svc.self_node, [0])] == [svc.local.id]
            peer = await RawV5.open(svc.self_node)
            try:  # every NODES packet of one answer names the same total
                reply = await peer.request(Findnode(b"\x07", [256]))
                replies = [reply] + [await peer.read() for _ in range(reply.resp_count - 1)]
                assert all(isinstance(r, Nodes) and r.resp_count == len(replies) for r in replies)
                assert sum(len(r.records) for r in replies) == 16
            finally:
                peer.close()
        finally:
            await client.close()
            await svc.close()

    run(main)


def test_pack_nodes_and_lookup_distances() -> None:
    key = PrivateKey.generate()
    nodes = [Node.from_enr(ENR.create(PrivateKey.generate(), 1, {"ip": bytes([10, 0, 0, i]), "udp": 30303}))
             for i in range(16)]
    packets = pack_nodes(b"\x01", nodes)
    assert len(packets) > 1 and all(p.resp_count == len(packets) for p in packets)
    assert all(sum(len(r.encode()) for r in p.records) <= NODES_SIZE_LIMIT for p in packets)
    assert [r for p in packets for r in p.records] == [n.record for n in nodes]
    assert pack_nodes(b"\x02", []) == [Nodes(b"\x02", 1, [])]
    me = ENR.create(key, 1).node_id
    assert lookup_distances(me, me) == [0, 1, 2]
    for _ in range(20):
        other = os.urandom(32)
        d = log_distance(me, other)
        got = lookup_distances(other, me)
        assert got[0] == d and len(got) == 3 and all(0 < x <= 256 for x in got[1:])


def test_malformed_packets_are_dropped_and_the_socket_keeps_serving() -> None:
    async def main() -> None:
        svc = await _service()
        peer = await RawV5.open(svc.self_node)
        try:
            assert isinstance(await peer.request(Ping(b"\x01", 1)), Pong)  # a session exists
            good, _ = peer.codec.encode(svc.local.id, peer.dest_addr, Ping(b"\x02", 1))
            peer.send_raw(good[:40])  # truncated below 63 bytes
            peer.send_raw(os.urandom(120))  # noise: unmasks to a wrong protocol id
            wrong_mask, _ = peer.codec.encode(os.urandom(32), peer.dest_addr, Ping(b"\x03", 1))
            peer.send_raw(wrong_mask)  # masked with another node's id
            iv = os.urandom(16)  # a header that declares more authdata than the packet has
            static = b"discv5" + b"\x00\x01" + b"\x00" + os.urandom(12) + b"\xff\xff"
            peer.send_raw(iv + v5crypto.mask(svc.local.id, iv, static) + os.urandom(60))
            peer.send_raw(good[:-8])  # cut inside the GCM tag
            peer.send_raw(good + os.urandom(1300))  # beyond the 1280-byte packet limit
            assert await peer.silent()
            tampered = bytearray(good)
            tampered[-1] ^= 0xFF  # bad auth tag: undecryptable, so the sender is challenged
            peer.send_raw(bytes(tampered))
            assert isinstance(await peer.read(), Whoareyou)
            assert svc.stats["drop:InvalidHeader"] >= 3 and svc.stats["drop:PacketError"] >= 1
            assert svc.stats["error"] == 0
            fresh = await RawV5.open(svc.self_node)  # still serving
            try:
                assert isinstance(await fresh.request(TalkRequest(b"\x09", b"x", b"")), TalkResponse)
                reply = await fresh.request(Ping(b"\x0a", 1))
                assert isinstance(reply, Pong) and reply.req_id == b"\x0a"
            finally:
                fresh.close()
        finally:
            peer.close()
            await svc.close()

    run(main)


def test_oversized_request_id_gets_no_answer() -> None:
    """geth's PingLargeRequestID: a 9-byte request id is not a request."""

    async def main() -> None:
        svc = await _service()
        peer = await RawV5.open(svc.self_node)
        try:
            nonce = peer.send(Ping(bytes(9), 1))
            challenge = await peer.read()
            assert isinstance(challenge, Whoareyou) and challenge.nonce == nonce
            challenge.node = peer.dest
            peer.send(Ping(bytes(9), 1), challenge)
            assert await peer.silent()
            assert svc.stats["drop:PacketError"] == 1
        finally:
            peer.close()
            await svc.close()

    run(main)


def test_a_small_network_finds_itself_through_lookups() -> None:
    async def main() -> None:
        boot = await _service(ping_interval=0.5)
        others = [await _service(bootnodes=[boot.self_node], ping_interval=0.5) for _ in range(4)]
        everyone = [boot, *others]
        ids = {s.local.id for s in everyone}
        try:
            async def settled() -> None:
                while True:
                    for s in others:
                        await s.lookup_random()
                    if all({n.id for n in s.table.nodes()} >= ids - {s.local.id} for s in everyone):
                        return

            await asyncio.wait_for(settled(), 20)
        finally:
            for s in everyone:
                await s.close()

    run(main)


def _discover(*flags: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ethnode.commands.discover", "--port", "0", "--listenaddr", "127.0.0.1",
           "--log-interval", "0.2", "--verbosity", "3", *flags]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


@pytest.mark.subprocess
def test_discover_command_with_discv5_alone() -> None:
    proc = _discover("--discovery.v4=false")
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        record = ENR.from_text(proc.stdout.readline().strip())
        node = Node.from_enr(record)

        async def talk() -> None:
            svc = await _service()
            try:
                pong = await svc.ping(node)
                assert pong.enr_seq == record.seq
            finally:
                await svc.close()

        run(talk, timeout=15)
        time.sleep(0.5)  # let a table-size line be logged
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "proto=v5" in err and "proto=v4" not in err


@pytest.mark.subprocess
def test_discover_command_refuses_to_run_nothing() -> None:
    proc = _discover("--discovery.v4=false", "--discv5=false")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and err.strip().splitlines() == [
        "Fatal: nothing to run: --discovery.v4=false and --discovery.v5=false"]


def test_async_talk_handlers_beyond_the_limit_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """geth's maxActiveTalkRequests: with every slot busy, a TALKREQ is dropped unanswered."""
    from ethnode.p2p.discover import v5_udp

    monkeypatch.setattr(v5_udp, "MAX_ACTIVE_TALK_REQUESTS", 1)

    async def main() -> None:
        a, b, c = await _service(), await _service(resp_timeout=3.0), await _service(resp_timeout=0.3)
        release = asyncio.Event()

        async def held(node: Node, addr: tuple[str, int], msg: bytes) -> bytes:
            await release.wait()
            return b"done"

        a.register_talk_handler(b"held", held)
        try:
            first = asyncio.ensure_future(b.talk_request(a.self_node, b"held", b""))
            while a._talk_active == 0:  # the first request holds the only slot
                await asyncio.sleep(0.01)
            with pytest.raises(DiscoveryTimeout):
                await c.talk_request(a.self_node, b"held", b"")
            assert a.stats["drop:talk-overload"] == 1
            release.set()
            assert await first == b"done"
        finally:
            for s in (a, b, c):
                await s.close()

    run(main)
