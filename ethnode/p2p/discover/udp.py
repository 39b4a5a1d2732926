"""The discv4 service on asyncio: one UDP socket, reply matching, bonding, the table's loop.

Packet handling is synchronous, straight from ``datagram_received``: decode and verify
(v4wire), then one handler per type, each of which first decides whether to answer at
all. The rules that keep discovery from being an amplifier or a poisoning vector:

- every request carries an expiration; expired packets are dropped;
- FindNode and ENRRequest are answered only for a *bonded* sender: one that answered our
  Ping from that same IP within 24 h (the endpoint proof), so a spoofed source address
  cannot make us send large Neighbors packets to a victim;
- a Ping is always answered with a (small) Pong, and when our proof of the sender is
  stale we ping back, so the sender becomes bonded once it answers;
- replies (Pong, Neighbors, ENRResponse) are accepted only when a request of ours is
  waiting for that type from that node id *at that IP*; a Pong must echo our Ping's hash
  and an ENRResponse our request's hash. Anything else is unsolicited and ignored, so
  nobody can push nodes into our table with Neighbors we never asked for.

Outgoing requests register a matcher that lives ``RESP_TIMEOUT``; its future resolves
with the reply or None, never with an exception, so fire-and-forget pings leave no
unretrieved errors behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ethnode.crypto import keccak256
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.logctx import kv
from ethnode.p2p.discover import v4wire
from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.maintenance import TableMaintenance
from ethnode.p2p.discover.netutil import check_relay_ip
from ethnode.p2p.discover.nodedb import NodeDB
from ethnode.p2p.discover.table import (
    BUCKET_SIZE,
    MAX_FINDNODE_FAILURES,
    PING_INTERVAL,
    REFRESH_INTERVAL,
    SEED_COUNT,
    SEED_MAX_AGE,
    Table,
)
from ethnode.p2p.discover.v4wire import (
    ENR_RESPONSE,
    NEIGHBORS,
    PONG,
    ENRRequest,
    ENRResponse,
    FindNode,
    Neighbors,
    Packet,
    Ping,
    Pong,
    WireNode,
)
from ethnode.p2p.enode import IPAddress, LocalNode, Node, parse_ip
from ethnode.p2p.enr import ENR, ENRError

log = logging.getLogger("ethnode.p2p.discover")

RESP_TIMEOUT = 0.5  # seconds; geth respTimeout
BOND_EXPIRATION = 24 * 3600.0  # seconds; geth bondExpiration
LOW_PORT = 1024  # geth nodeFromRPC: relayed nodes must use a UDP port above this (errLowPort)
RANDOM_LOOKUPS_PER_REFRESH = 3  # geth doRefresh: self lookup plus three random ones


class DiscoveryError(EthnodeError):
    """A discovery request that failed: timeout, closed service, bad reply."""


class DiscoveryTimeout(DiscoveryError, TimeoutError):
    """No (matching) reply within RESP_TIMEOUT."""


@dataclass
class Config:
    """Knobs of the service; the defaults are geth's. Tests shorten the intervals."""

    bootnodes: Sequence[Node] = ()
    ping_interval: float = PING_INTERVAL
    refresh_interval: float = REFRESH_INTERVAL
    resp_timeout: float = RESP_TIMEOUT
    bond_expiration: float = BOND_EXPIRATION
    # geth NoFindnodeLivenessCheck: answer FindNode from all entries, not only revalidated ones
    no_findnode_liveness_check: bool = False


class _Matcher:
    """A request waiting for replies of one type from one node id at one IP."""

    __slots__ = ("key", "callback", "future", "timer", "reply")

    def __init__(self, key: tuple[bytes, IPAddress, int], callback: Callable[[Any], tuple[bool, bool]],
                 future: asyncio.Future[Any]) -> None:
        self.key = key
        self.callback = callback
        self.future = future
        self.timer: asyncio.TimerHandle | None = None
        self.reply: Packet | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, service: UDPv4) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.service.handle_packet(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) surface here on Linux; they are expected in discovery
        log.debug("UDP error: %s", exc)


class UDPv4(TableMaintenance):
    """discv4 on one UDP socket; ``await start()``, ``await close()``.

    ``db`` defaults to an in-memory NodeDB owned (and closed) by the service.
    ``tcp_port`` is advertised in our record and in Pings (0: no RLPx listener).
    """

    protocol_name = "discv4"

    def __init__(
        self, key: PrivateKey, *, db: NodeDB | None = None, config: Config | None = None, tcp_port: int = 0,
    ) -> None:
        self.key = key
        self.config = config or Config()
        self._owns_db = db is None
        self.db = db if db is not None else NodeDB(None)
        self.local = LocalNode(key, seq=self.db.local_seq(keccak256(key.node_id)),
                               on_seq=lambda s: self.db.store_local_seq(self.local.id, s))
        self.local.set_tcp(tcp_port)
        self.table = Table(self.local.id, ping_interval=self.config.ping_interval,
                           on_schedule=self._wake_loop)
        self.table.set_fallback_nodes(self.config.bootnodes)
        self.stats: Counter[str] = Counter()  # packets in/out and drop reasons, for logs and tests
        # where packets that are not discv4 go (discv5 sharing the socket, geth's unhandled channel)
        self.unhandled: Callable[[bytes, Any], None] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._matchers: dict[tuple[bytes, IPAddress, int], list[_Matcher]] = {}
        self._ping_waiters: dict[tuple[bytes, IPAddress], list[asyncio.Future[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.initialized = asyncio.Event()  # set once the first refresh finished
        self._closing = False
        self.port = 0
        self._v4_mapped = False  # on a dual-stack IPv6 socket, IPv4 peers are addressed as ::ffff:a.b.c.d
        self._handlers: dict[int, Callable[..., None]] = {
            v4wire.PING: self._on_ping, v4wire.PONG: self._on_pong, v4wire.FINDNODE: self._on_findnode,
            v4wire.NEIGHBORS: self._on_reply, v4wire.ENR_REQUEST: self._on_enr_request,
            v4wire.ENR_RESPONSE: self._on_reply,
        }

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "0.0.0.0", port: int = 30303) -> UDPv4:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, port))
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self._v4_mapped = sock is not None and sock.family == socket.AF_INET6
        self.port = transport.get_extra_info("sockname")[1]
        try:
            bound = parse_ip(host or "0.0.0.0")
        except ValueError:  # a host name: the endpoint is learned from peers instead
            bound = None
        if bound is not None and not bound.is_unspecified:
            self.local.set_static_ip(bound)
        else:
            self.local.set_fallback_ip("127.0.0.1")  # as geth's Server does until the endpoint is predicted
        self.local.set_fallback_udp(self.port)
        log.debug("UDP listener up self=%s", self.self_node.enode_url())
        self._loop_task = asyncio.ensure_future(self._table_loop())
        return self

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        tasks = [t for t in (self._loop_task, self._refresh_task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for matchers in list(self._matchers.values()):
            for m in list(matchers):
                self._finish(m)
        for waiters in self._ping_waiters.values():
            for w in waiters:
                if not w.done():
                    w.cancel()
        if self._transport is not None:
            self._transport.close()
        if self._owns_db:
            self.db.close()

    @property
    def self_node(self) -> Node:
        return self.local.node

    def share_socket(self, unhandled: Callable[[bytes, Any], None]) -> tuple[asyncio.DatagramTransport, bool]:
        """Hand packets that are not discv4 to ``unhandled``; returns (transport, IPv4-mapped) to send on.

        geth's setupDiscovery: discv5 runs on discv4's socket and reads what discv4 passes on.
        """
        if self._transport is None:
            raise DiscoveryError("discv4 is not started")
        self.unhandled = unhandled
        return self._transport, self._v4_mapped

    def _spawn(self, coro: Any) -> None:
        if self._closing:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("discovery task failed", exc_info=task.exception())

    # -- sending -------------------------------------------------------------------------

    def _send(self, packet: Packet, ip: IPAddress, port: int) -> bytes:
        data, mac = v4wire.encode(self.key, packet)
        self._write(data, ip, port, packet.NAME)
        return mac

    def _write(self, data: bytes, ip: IPAddress, port: int, name: str) -> None:
        if self._transport is None or self._closing:
            return
        self.stats["out:" + name] += 1
        host = f"::ffff:{ip}" if self._v4_mapped and ip.version == 4 else str(ip)
        self._transport.sendto(data, (host, port))

    def _our_endpoint(self) -> v4wire.Endpoint:
        me = self.self_node
        if me.ip is None or not me.udp:
            return v4wire.Endpoint(b"", 0, 0)
        return v4wire.make_endpoint(me.ip, me.udp, me.tcp)

    def _pending(self, node_id: bytes, ip: IPAddress, ptype: int,
                 callback: Callable[[Any], tuple[bool, bool]]) -> _Matcher:
        loop = asyncio.get_running_loop()
        key = (node_id, ip, ptype)
        m = _Matcher(key, callback, loop.create_future())
        if self._closing:
            m.future.set_result(None)
            return m
        self._matchers.setdefault(key, []).append(m)
        m.timer = loop.call_later(self.config.resp_timeout, self._finish, m)
        return m

    def _finish(self, m: _Matcher) -> None:
        """Retire a matcher: with its last matching reply, or None after a timeout."""
        lst = self._matchers.get(m.key)
        if lst is not None:
            try:
                lst.remove(m)
            except ValueError:
                pass
            if not lst:
                del self._matchers[m.key]
        if m.timer is not None:
            m.timer.cancel()
        if not m.future.done():
            m.future.set_result(m.reply)

    def _send_ping(self, node_id: bytes, ip: IPAddress, port: int,
                   on_pong: Callable[[], None] | None = None) -> _Matcher:
        ping = Ping(v4wire.VERSION, self._our_endpoint(), v4wire.make_endpoint(ip, port, 0),
                    v4wire.expiration_from_now(), self.local.node.seq)
        data, mac = v4wire.encode(self.key, ping)

        def match(pong: Pong) -> tuple[bool, bool]:
            ok = pong.ping_hash == mac
            if ok and on_pong is not None:
                on_pong()
            return ok, ok

        m = self._pending(node_id, ip, PONG, match)
        self._write(data, ip, port, Ping.NAME)
        return m

    # -- receiving -----------------------------------------------------------------------

    def handle_packet(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """One datagram from ``addr``; bad or unwanted packets are counted and dropped."""
        try:
            ip = parse_ip(addr[0])
        except ValueError:
            return
        if ip is None:
            return
        port = addr[1]
        try:
            packet, pubkey, mac = v4wire.decode(data)
        except v4wire.PacketError as exc:
            if self.unhandled is not None:  # maybe discv5's: geth passes on what v4 cannot parse
                self.unhandled(data, addr)
                return
            self._drop(type(exc).__name__, ip, port, str(exc))
            return
        self.stats["in:" + packet.NAME] += 1
        try:
            self._handlers[packet.TYPE](packet, ip, port, keccak256(pubkey), pubkey, mac)
        except Exception:  # a bug or a failing node DB must not take the socket down
            self.stats["error"] += 1
            log.exception("Error handling %s from %s:%d", packet.NAME, ip, port)

    def _drop(self, reason: str, ip: IPAddress, port: int, detail: str = "") -> None:
        self.stats["drop:" + reason] += 1
        log.debug("Dropped discv4 packet from %s:%d: %s %s", ip, port, reason, detail)

    def _bonded(self, node_id: bytes, ip: IPAddress) -> bool:
        return time.time() - self.db.last_pong_received(node_id, ip) < self.config.bond_expiration

    def _on_ping(
        self, req: Ping, ip: IPAddress, port: int, from_id: bytes, pubkey: bytes, mac: bytes,
    ) -> None:
        if v4wire.expired(req.expiration):
            self._drop("expired", ip, port, req.NAME)
            return
        self._send(Pong(v4wire.make_endpoint(ip, port, req.from_.tcp), mac, v4wire.expiration_from_now(),
                        self.local.node.seq), ip, port)
        node = Node(pubkey, ip, port, req.from_.tcp, node_id=from_id)
        if time.time() - self.db.last_pong_received(from_id, ip) > self.config.bond_expiration:
            # our proof of this endpoint is stale: ping back, and admit the node once it answers
            self._send_ping(from_id, ip, port, on_pong=lambda: self.table.add_inbound_node(node))
        else:
            self.table.add_inbound_node(node)
        self.db.update_last_ping_received(from_id, ip)
        for waiter in self._ping_waiters.pop((from_id, ip), ()):
            if not waiter.done():
                waiter.set_result(None)
        if self._bonded(from_id, ip):  # only bonded nodes may tell us our endpoint
            to_ip = parse_ip(req.to.ip)
            if to_ip is not None:
                self.local.udp_endpoint_statement(ip, (to_ip, req.to.udp))

    def _on_pong(
        self, req: Pong, ip: IPAddress, port: int, from_id: bytes, pubkey: bytes, mac: bytes,
    ) -> None:
        if v4wire.expired(req.expiration):
            self._drop("expired", ip, port, req.NAME)
            return
        if not self._handle_reply(from_id, ip, req):
            self._drop("unsolicited", ip, port, req.NAME)
            return
        to_ip = parse_ip(req.to.ip)
        if to_ip is not None:
            self.local.udp_endpoint_statement(ip, (to_ip, req.to.udp))
        self.db.update_last_pong_received(from_id, ip)

    def _on_findnode(self, req: FindNode, ip: IPAddress, port: int, from_id: bytes, pubkey: bytes,
                     mac: bytes) -> None:
        if v4wire.expired(req.expiration):
            self._drop("expired", ip, port, req.NAME)
            return
        if not self._bonded(from_id, ip):
            # no endpoint proof: answering could flood a spoofed victim address with Neighbors
            self._drop("unbonded", ip, port, req.NAME)
            return
        closest = self.table.find_closest(keccak256(req.target), BUCKET_SIZE,
                                          prefer_live=not self.config.no_findnode_liveness_check)
        wire = [v4wire.node_to_wire(n) for n in closest if check_relay_ip(ip, n.ip) is None]
        for packet in v4wire.neighbors_packets(wire, v4wire.expiration_from_now()):
            self._send(packet, ip, port)

    def _on_enr_request(self, req: ENRRequest, ip: IPAddress, port: int, from_id: bytes, pubkey: bytes,
                        mac: bytes) -> None:
        if v4wire.expired(req.expiration):
            self._drop("expired", ip, port, req.NAME)
            return
        if not self._bonded(from_id, ip):
            self._drop("unbonded", ip, port, req.NAME)
            return
        self._send(ENRResponse(mac, self.local.record.encode()), ip, port)

    def _on_reply(
        self, req: Packet, ip: IPAddress, port: int, from_id: bytes, pubkey: bytes, mac: bytes,
    ) -> None:
        if isinstance(req, Neighbors) and v4wire.expired(req.expiration):
            self._drop("expired", ip, port, req.NAME)
            return
        if not self._handle_reply(from_id, ip, req):
            self._drop("unsolicited", ip, port, req.NAME)

    def _handle_reply(self, from_id: bytes, ip: IPAddress, packet: Packet) -> bool:
        matchers = self._matchers.get((from_id, ip, packet.TYPE))
        if not matchers:
            return False
        matched = False
        for m in list(matchers):
            ok, done = m.callback(packet)
            if ok:
                matched = True
                m.reply = packet
            if done:
                self._finish(m)
        return matched

    # -- requests ------------------------------------------------------------------------

    @staticmethod
    def _addr(node: Node) -> tuple[IPAddress, int]:
        if node.ip is None or not node.udp:
            raise DiscoveryError(f"{node!r} has no UDP endpoint")
        return node.ip, node.udp

    async def ping(self, node: Node) -> Pong:
        """Ping ``node`` and return its Pong; DiscoveryTimeout when none matches in time."""
        ip, port = self._addr(node)
        reply = await self._send_ping(node.id, ip, port).future
        if reply is None:
            raise DiscoveryTimeout(f"no PONG from {node!r}")
        return reply  # type: ignore[no-any-return]

    async def _ensure_bond(self, node_id: bytes, ip: IPAddress, port: int) -> None:
        """Make sure ``node`` will answer our FindNode/ENRRequest (geth ensureBond).

        Only needed when it has not pinged us for a day (so its proof of us is stale too)
        or keeps failing: ping it, and give it RESP_TIMEOUT to ping back and take our
        Pong. geth sleeps that long; here the wait ends as soon as its Ping arrives.
        """
        too_old = time.time() - self.db.last_ping_received(node_id, ip) > self.config.bond_expiration
        if not too_old and self.db.find_fails(node_id, ip) <= MAX_FINDNODE_FAILURES:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ping_waiters.setdefault((node_id, ip), []).append(waiter)
        try:
            if await self._send_ping(node_id, ip, port).future is not None:
                await asyncio.wait_for(asyncio.shield(waiter), self.config.resp_timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._ping_waiters.get((node_id, ip))
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._ping_waiters[(node_id, ip)]
            if not waiter.done():
                waiter.cancel()

    async def findnode(self, node: Node, target: bytes) -> list[Node]:
        """Ask ``node`` for its nodes closest to ``target`` (a 64-byte public key).

        Replies span several Neighbors packets; collection ends after 16 nodes, after a
        packet with fewer than 12 (senders fill every packet but the last, so that was
        the last one), or at the timeout, which is not an error if something arrived.
        """
        ip, port = self._addr(node)
        await self._ensure_bond(node.id, ip, port)
        nodes: list[Node] = []
        received = 0

        def collect(reply: Neighbors) -> tuple[bool, bool]:
            nonlocal received
            for rn in reply.nodes:
                received += 1
                n = self._node_from_rpc(ip, rn)
                if n is not None:
                    nodes.append(n)
            return True, received >= BUCKET_SIZE or len(reply.nodes) < v4wire.MAX_NEIGHBORS

        m = self._pending(node.id, ip, NEIGHBORS, collect)
        self._send(FindNode(target, v4wire.expiration_from_now()), ip, port)
        if await m.future is None:
            raise DiscoveryTimeout(f"no NEIGHBORS from {node!r}")
        return nodes

    def _node_from_rpc(self, sender: IPAddress, rn: WireNode) -> Node | None:
        if rn.udp <= LOW_PORT:
            return None
        ip = parse_ip(rn.ip)
        if check_relay_ip(sender, ip) is not None:
            return None
        try:
            PublicKey(rn.id)
        except InvalidKeyError:
            return None
        return Node(rn.id, ip, rn.udp, rn.tcp)

    async def request_enr(self, node: Node) -> Node:
        """Fetch ``node``'s current record (EIP-868); returns ``node`` itself if ours is newer."""
        ip, port = self._addr(node)
        await self._ensure_bond(node.id, ip, port)
        data, mac = v4wire.encode(self.key, ENRRequest(v4wire.expiration_from_now()))

        def match(reply: ENRResponse) -> tuple[bool, bool]:
            ok = reply.request_hash == mac
            return ok, ok

        m = self._pending(node.id, ip, ENR_RESPONSE, match)
        self._write(data, ip, port, ENRRequest.NAME)
        reply = await m.future
        if reply is None:
            raise DiscoveryTimeout(f"no ENRRESPONSE from {node!r}")
        try:
            record = ENR.decode(reply.record)
        except ENRError as exc:
            raise DiscoveryError(f"invalid record from {node!r}: {exc}") from None
        if record.node_id != node.id:
            raise DiscoveryError("invalid ID in response record")
        if record.seq < node.seq:
            return node
        new = Node.from_enr(record)
        why = check_relay_ip(ip, new.ip)
        if why is not None:
            raise DiscoveryError(f"invalid IP in response record: {why}")
        return new

    # -- lookups -------------------------------------------------------------------------

    async def _query(self, node: Node, target: bytes) -> list[Node]:
        try:
            found = await self.findnode(node, target)
        except DiscoveryError as exc:
            log.debug("FINDNODE failed", extra=kv(id=node, addr=f"{node.ip}:{node.udp}", err=exc))
            found = []
        if self._closing:
            return found
        if found:
            fails = 0
        else:
            fails = self.db.find_fails(node.id, node.ip) + 1
        self.db.update_find_fails(node.id, node.ip, fails)
        self.table.track_request(node, fails, found)
        return found

    async def _lookup(self, target: bytes, on_found: Callable[[list[Node]], None] | None = None) -> list[Node]:
        target_id = keccak256(target)
        initial = self.table.find_closest(target_id, BUCKET_SIZE)

        async def query(n: Node) -> list[Node]:
            found = await self._query(n, target)
            if on_found is not None:
                on_found(found)
            return found

        lookup = Lookup(target_id, self.local.id, initial, query)
        return await lookup.run()

    async def lookup(self, target: bytes, on_found: Callable[[list[Node]], None] | None = None) -> list[Node]:
        """The nodes closest to ``target`` (a 64-byte public key) the network knows of.

        ``on_found`` sees every reply on the way, not only the closest (geth's lookup
        iterator yields those: a crawler wants every node it can learn of).
        """
        if len(self.table) == 0:
            await self.refresh()  # everyone was dropped (or we just started): bootstrap first
        return await self._lookup(target, on_found)

    async def lookup_random(self, on_found: Callable[[list[Node]], None] | None = None) -> list[Node]:
        return await self.lookup(os.urandom(64), on_found)

    async def _do_refresh(self) -> None:
        """Seeds and bootnodes in, then a self lookup (our neighbourhood) and random ones."""
        self.table.load_seeds(self.db.query_seeds(SEED_COUNT, SEED_MAX_AGE))
        await self._lookup(self.local.pubkey)
        for _ in range(RANDOM_LOOKUPS_PER_REFRESH):
            await self._lookup(os.urandom(64))


__all__ = ["UDPv4", "Config", "DiscoveryError", "DiscoveryTimeout", "RESP_TIMEOUT", "BOND_EXPIRATION"]
