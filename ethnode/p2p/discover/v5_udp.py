"""The discv5 service on asyncio: sessions, calls, the table's loop, TALKREQ handlers.

Packet handling is synchronous, straight from the socket callback: ``v5wire.Codec``
decodes (unmasking, decrypting, completing handshakes), then one handler per message.
The rules, as geth's ``UDPv5``:

- a message we cannot decrypt is answered with WHOAREYOU; while a challenge to that
  (node, address) is in flight the same challenge is repeated, byte for byte;
- a completed handshake proves the sender holds its key *at that address*, and puts it
  into the table; sessions are per (node id, address), so the same node from another
  address is challenged again;
- requests are "calls": one active call per node, the rest queued; a reply counts only
  when it comes from the called address with the call's request id and expected type, so
  unsolicited NODES never reach the table. A WHOAREYOU for a call's nonce re-sends the
  call as a handshake, once per call;
- responses are sent with whatever session exists and never start a handshake.

The socket is either our own (``start``) or discv4's (``attach``): geth gives discv4 every
packet first and hands on those it cannot parse, which is what ``UDPv4.unhandled`` does.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
import os
import socket
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.maintenance import TableMaintenance
from ethnode.p2p.discover.netutil import check_relay_ip
from ethnode.p2p.discover.nodedb import NodeDB
from ethnode.p2p.discover.table import (
    BUCKET_SIZE,
    PING_INTERVAL,
    REFRESH_INTERVAL,
    SEED_COUNT,
    SEED_MAX_AGE,
    Table,
)
from ethnode.p2p.discover.udp import RESP_TIMEOUT, DiscoveryError, DiscoveryTimeout
from ethnode.p2p.discover.v5wire import Codec, InvalidHeader, PacketError, Unknown, Whoareyou
from ethnode.p2p.discover.v5wire.messages import (
    NODES,
    PONG,
    TALKRESP,
    Findnode,
    Message,
    Nodes,
    Ping,
    Pong,
    TalkRequest,
    TalkResponse,
)
from ethnode.p2p.enode import IPAddress, LocalNode, Node, log_distance, parse_ip
from ethnode.p2p.enr import ENR

if TYPE_CHECKING:
    from ethnode.p2p.discover.udp import UDPv4

log = logging.getLogger("ethnode.p2p.discover.v5")

LOOKUP_REQUEST_LIMIT = 3  # geth lookupRequestLimit: distances asked per FINDNODE in a lookup
FINDNODE_RESULT_LIMIT = 16  # geth findnodeResultLimit
TOTAL_NODES_RESPONSE_LIMIT = 5  # geth totalNodesResponseLimit: NODES packets accepted per call
NODES_SIZE_LIMIT = 1000  # geth packNodes sizeLimit: record bytes per NODES packet
LOW_PORT = 1024  # geth errLowPort
RANDOM_LOOKUPS_PER_REFRESH = 3
MAX_ACTIVE_TALK_REQUESTS = 1024  # geth maxActiveTalkRequests: async handlers running at once; more are dropped

Addr = tuple[str, int]  # the session address: (ip text, port)
TalkHandler = Callable[[Node, Addr, bytes], "bytes | Awaitable[bytes]"]


@dataclass
class Config:
    """Knobs of the service; the defaults are geth's. Tests shorten the intervals."""

    bootnodes: Sequence[Node] = ()
    ping_interval: float = PING_INTERVAL
    refresh_interval: float = REFRESH_INTERVAL
    resp_timeout: float = RESP_TIMEOUT
    no_findnode_liveness_check: bool = False


class _Call:
    """One request to one node: its reply queue, nonce, handshake state and timer."""

    __slots__ = ("id", "addr", "node", "packet", "response_type", "reqid", "replies", "nonce",
                 "handshakes", "challenge", "timer")

    def __init__(self, node_id: bytes, addr: Addr, node: Node | None, packet: Message, response_type: int) -> None:
        self.id = node_id
        self.addr = addr
        self.node = node
        self.packet = packet
        self.response_type = response_type
        self.reqid = os.urandom(8)
        packet.req_id = self.reqid
        self.replies: asyncio.Queue[Message | DiscoveryError] = asyncio.Queue()
        self.nonce: bytes | None = None
        self.handshakes = 0
        self.challenge: Whoareyou | None = None
        self.timer: asyncio.TimerHandle | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, service: UDPv5) -> None:
        self.service = service

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.service.handle_packet(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class UDPv5(TableMaintenance):
    """discv5; ``await start(host, port)`` on its own socket or ``attach(v4)`` to share discv4's.

    ``local`` is the LocalNode to publish (shared with discv4 when both run: one key, one
    record); without it the service makes its own.
    """

    protocol_name = "discv5"

    def __init__(self, key: PrivateKey, *, local: LocalNode | None = None, db: NodeDB | None = None,
                 config: Config | None = None, tcp_port: int = 0) -> None:
        self.key = key
        self.config = config or Config()
        self._owns_db = db is None
        self.db = db if db is not None else NodeDB(None)
        if local is None:
            local = LocalNode(key, seq=self.db.local_seq(keccak256(key.node_id)),
                              on_seq=lambda s: self.db.store_local_seq(self.local.id, s))
            local.set_tcp(tcp_port)
        self.local = local
        self.codec = Codec(key, local.id, lambda: self.local.record)
        self.table = Table(local.id, ping_interval=self.config.ping_interval, on_schedule=self._wake_loop)
        self.table.set_fallback_nodes(self.config.bootnodes)
        self.stats: Counter[str] = Counter()
        self.unhandled: Callable[[bytes, Any], None] | None = None  # where non-discv5 packets go
        self._talk: dict[bytes, TalkHandler] = {}
        self._talk_active = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._v4_mapped = False
        self._active_by_node: dict[bytes, _Call] = {}
        self._active_by_nonce: dict[bytes, _Call] = {}
        self._queue: dict[bytes, deque[_Call]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.initialized = asyncio.Event()
        self._closing = False
        self._shared = False
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "0.0.0.0", port: int = 30303) -> UDPv5:
        """Listen on a socket of our own (discv5 alone)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, port))
        sock = transport.get_extra_info("socket")
        self.port = transport.get_extra_info("sockname")[1]
        bound = None
        try:
            bound = parse_ip(host or "0.0.0.0")
        except ValueError:
            pass
        if bound is not None and not bound.is_unspecified:
            self.local.set_static_ip(bound)
        else:
            self.local.set_fallback_ip("127.0.0.1")
        self.local.set_fallback_udp(self.port)
        self._run(transport, sock is not None and sock.family == socket.AF_INET6)  # type: ignore[arg-type]
        return self

    def attach(self, v4: UDPv4) -> UDPv5:
        """Share discv4's started socket: it passes on what it cannot parse (geth setupDiscovery)."""
        transport, v4_mapped = v4.share_socket(self.handle_packet)
        self._shared = True
        self.port = v4.port
        self._run(transport, v4_mapped)
        return self

    def _run(self, transport: asyncio.DatagramTransport, v4_mapped: bool) -> None:
        self._transport = transport
        self._v4_mapped = v4_mapped
        log.debug("discv5 up self=%s", self.local.record.to_text())
        self._loop_task = asyncio.ensure_future(self._table_loop())

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        tasks = [t for t in (self._loop_task, self._refresh_task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for call in [*self._active_by_node.values(), *(c for q in self._queue.values() for c in q)]:
            if call.timer is not None:
                call.timer.cancel()
            call.replies.put_nowait(DiscoveryError("discv5 closed"))
        self._active_by_node.clear()
        self._active_by_nonce.clear()
        self._queue.clear()
        if self._transport is not None and not self._shared:
            self._transport.close()
        if self._owns_db:
            self.db.close()

    @property
    def self_node(self) -> Node:
        return self.local.node

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
            log.error("discv5 task failed", exc_info=task.exception())

    # -- TALKREQ -------------------------------------------------------------------------

    def register_talk_handler(self, protocol: bytes, handler: TalkHandler) -> None:
        """Serve TALKREQ for ``protocol`` with ``handler(node, (ip, port), request) -> response``.

        The handler may be a plain function or a coroutine function; what it returns is
        sent back as the TALKRESP message. It should answer within ~200 ms (the caller's
        timeout is 500 ms). If it raises, nothing is sent and the error is logged.
        Requests for unregistered protocols get an empty TALKRESP, as geth answers.
        """
        self._talk[bytes(protocol)] = handler

    async def talk_request(self, node: Node, protocol: bytes, request: bytes) -> bytes:
        """Send TALKREQ to ``node`` and return the TALKRESP message (DiscoveryTimeout if none)."""
        call = self._call_node(node, TALKRESP, TalkRequest(b"", bytes(protocol), bytes(request)))
        try:
            reply = await call.replies.get()
        finally:
            self._call_done(call)
        if isinstance(reply, DiscoveryError):
            raise reply
        assert isinstance(reply, TalkResponse)
        return reply.message

    # -- sending -------------------------------------------------------------------------

    def _write(self, data: bytes, addr: Addr, name: str) -> None:
        if self._transport is None or self._closing:
            return
        self.stats["out:" + name] += 1
        host = f"::ffff:{addr[0]}" if self._v4_mapped and ":" not in addr[0] else addr[0]
        self._transport.sendto(data, (host, addr[1]))

    def _send(self, to_id: bytes, addr: Addr, packet: Any, challenge: Whoareyou | None = None) -> bytes:
        data, nonce = self.codec.encode(to_id, addr, packet, challenge)
        self._write(data, addr, packet.NAME)
        return nonce

    def _call_node(self, node: Node, response_type: int, packet: Message) -> _Call:
        if node.ip is None or not node.udp:
            raise DiscoveryError(f"{node!r} has no UDP endpoint")
        call = _Call(node.id, (str(node.ip), node.udp), node, packet, response_type)
        if self._closing:
            call.replies.put_nowait(DiscoveryError("discv5 closed"))
            return call
        self._queue.setdefault(call.id, deque()).append(call)
        self._send_next_call(call.id)
        return call

    def _send_next_call(self, node_id: bytes) -> None:
        queue = self._queue.get(node_id)
        if not queue or node_id in self._active_by_node:
            return
        call = queue.popleft()
        if not queue:
            del self._queue[node_id]
        self._active_by_node[node_id] = call
        self._send_call(call)

    def _send_call(self, call: _Call) -> None:
        if call.nonce is not None:
            self._active_by_nonce.pop(call.nonce, None)
        try:
            call.nonce = self._send(call.id, call.addr, call.packet, call.challenge)
        except PacketError as exc:
            call.replies.put_nowait(DiscoveryError(str(exc)))
            return
        self._active_by_nonce[call.nonce] = call
        self._start_timeout(call)

    def _start_timeout(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
        call.timer = asyncio.get_running_loop().call_later(self.config.resp_timeout, self._timed_out, call)

    def _timed_out(self, call: _Call) -> None:
        if self._active_by_node.get(call.id) is call:
            call.replies.put_nowait(DiscoveryTimeout(f"{call.packet.NAME} to {call.id.hex()[:16]} timed out"))

    def _call_done(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
        if self._active_by_node.get(call.id) is not call:
            queue = self._queue.get(call.id)
            if queue is not None and call in queue:
                queue.remove(call)
            return
        del self._active_by_node[call.id]
        if call.nonce is not None:
            self._active_by_nonce.pop(call.nonce, None)
        if not self._closing:
            self._send_next_call(call.id)

    # -- receiving -----------------------------------------------------------------------

    def handle_packet(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """One datagram; malformed or unwanted packets are counted and dropped, never raised."""
        try:
            ip, host = _source_ip(addr[0])
        except ValueError:
            return
        from_addr: Addr = (host, addr[1])
        try:
            from_id, node, packet = self.codec.decode(data, from_addr)
        except InvalidHeader as exc:
            if self.unhandled is not None:
                self.unhandled(data, addr)
                return
            self._drop(type(exc).__name__, from_addr, str(exc))
            return
        except PacketError as exc:
            self._drop(type(exc).__name__, from_addr, str(exc))
            return
        self.stats["in:" + packet.NAME] += 1
        try:
            if node is not None:  # handshake completed: the sender proved its key at this address
                self.table.add_inbound_node(node)
            self._handle(packet, from_id, from_addr, ip)
        except Exception:  # a bug must not take the socket down
            self.stats["error"] += 1
            log.exception("Error handling %s from %s:%d", packet.NAME, *from_addr)

    def _drop(self, reason: str, addr: Addr, detail: str = "") -> None:
        self.stats["drop:" + reason] += 1
        log.debug("Bad discv5 packet from %s:%d: %s %s", addr[0], addr[1], reason, detail)

    def _handle(self, p: Any, from_id: bytes, addr: Addr, ip: IPAddress) -> None:
        if isinstance(p, Unknown):
            self._on_unknown(p, from_id, addr)
        elif isinstance(p, Whoareyou):
            self._on_whoareyou(p, addr)
        elif isinstance(p, Ping):
            self._send(from_id, addr, Pong(p.req_id, self.local.node.seq, ip.packed, addr[1]))
        elif isinstance(p, Pong):
            if self._call_response(from_id, addr, p):
                to_ip = parse_ip(p.to_ip) if p.to_ip else None
                if to_ip is not None:
                    self.local.udp_endpoint_statement(ip, (to_ip, p.to_port))
        elif isinstance(p, Findnode):
            nodes = self._collect_table_nodes(ip, p.distances, FINDNODE_RESULT_LIMIT)
            for resp in pack_nodes(p.req_id, nodes):
                self._send(from_id, addr, resp)
        elif isinstance(p, Nodes | TalkResponse):
            self._call_response(from_id, addr, p)
        elif isinstance(p, TalkRequest):
            self._on_talk_request(p, from_id, addr)

    def _on_unknown(self, p: Unknown, from_id: bytes, addr: Addr) -> None:
        current = self.codec.current_challenge(from_id, addr)
        if current is not None:  # concurrent requests: they must finish the handshake in flight
            self._send(from_id, addr, current)
            return
        challenge = Whoareyou(p.nonce, os.urandom(16))
        known = self.get_node(from_id)
        if known is not None and known.record is not None:
            challenge.node = known
            challenge.record_seq = known.seq
        self._send(from_id, addr, challenge)

    def _on_whoareyou(self, p: Whoareyou, addr: Addr) -> None:
        call = self._active_by_nonce.get(p.nonce)
        if call is None:
            self._drop("unsolicited", addr, p.NAME)
            return
        if call.handshakes > 0:
            self._drop("second-handshake", addr, p.NAME)
            return
        if call.node is None:
            call.replies.put_nowait(DiscoveryError("remote wants handshake, but call has no ENR"))
            return
        call.handshakes += 1
        p.node = call.node
        call.challenge = p
        self._send_call(call)

    def _call_response(self, from_id: bytes, addr: Addr, p: Message) -> bool:
        call = self._active_by_node.get(from_id)
        if call is None or p.req_id != call.reqid:
            self._drop("unsolicited", addr, p.NAME)
            return False
        if addr != call.addr:
            self._drop("wrong-endpoint", addr, p.NAME)
            return False
        if p.TYPE != call.response_type:
            self._drop("wrong-type", addr, p.NAME)
            return False
        self._start_timeout(call)
        call.replies.put_nowait(p)
        return True

    def _on_talk_request(self, p: TalkRequest, from_id: bytes, addr: Addr) -> None:
        node = self.codec.session_node(from_id, addr)
        handler = self._talk.get(p.protocol)
        if handler is None or node is None:
            self._send(from_id, addr, TalkResponse(p.req_id, b""))
            return
        try:
            result = handler(node, addr, p.message)
        except Exception:
            log.exception("TALKREQ handler for %r failed", p.protocol)
            return
        if inspect.isawaitable(result):
            if self._talk_active >= MAX_ACTIVE_TALK_REQUESTS:  # overloaded: drop, as geth does
                self.stats["drop:talk-overload"] += 1
                if inspect.iscoroutine(result):
                    result.close()
                return
            self._talk_active += 1
            self._spawn(self._finish_talk(result, p, from_id, addr))
        else:
            self._send(from_id, addr, TalkResponse(p.req_id, bytes(result)))

    async def _finish_talk(self, result: Awaitable[bytes], p: TalkRequest, from_id: bytes, addr: Addr) -> None:
        try:
            message = await result
        except Exception:
            log.exception("TALKREQ handler for %r failed", p.protocol)
            return
        finally:
            self._talk_active -= 1
        self._send(from_id, addr, TalkResponse(p.req_id, bytes(message)))

    def _collect_table_nodes(self, rip: IPAddress, distances: list[int], limit: int) -> list[Node]:
        """geth collectTableNodes: the (live) bucket contents at each asked distance."""
        nodes: list[Node] = []
        seen: set[int] = set()
        check_live = not self.config.no_findnode_liveness_check
        for dist in distances:
            if dist in seen or dist > 256:
                continue
            seen.add(dist)
            for n in self._bucket_nodes(dist, check_live):
                if check_relay_ip(rip, n.ip) is not None:
                    continue
                nodes.append(n)
                if len(nodes) >= limit:
                    return nodes
        return nodes

    def _bucket_nodes(self, dist: int, check_live: bool) -> list[Node]:
        if dist == 0:
            return [self.self_node]
        found = [tn.node for tn in self.table.bucket_at_distance(dist).entries
                 if (tn.is_live or not check_live) and tn.node.record is not None]
        self.table.rng.shuffle(found)
        return found

    def get_node(self, node_id: bytes) -> Node | None:
        tn = self.table.get(node_id)
        if tn is not None:
            return tn.node
        node = self.db.node(node_id)
        return node if node is not None and node.record is not None else None

    # -- requests ------------------------------------------------------------------------

    async def ping(self, node: Node) -> Pong:
        """PING ``node`` (handshaking first if needed) and return its PONG."""
        call = self._call_node(node, PONG, Ping(b"", self.local.node.seq))
        try:
            reply = await call.replies.get()
        finally:
            self._call_done(call)
        if isinstance(reply, DiscoveryError):
            raise reply
        assert isinstance(reply, Pong)
        return reply

    async def findnode(self, node: Node, distances: list[int]) -> list[Node]:
        """FINDNODE at ``distances``; the verified nodes of up to 5 NODES replies."""
        call = self._call_node(node, NODES, Findnode(b"", list(distances)))
        nodes: list[Node] = []
        seen: set[bytes] = set()
        received, total = 0, -1
        try:
            while True:
                reply = await call.replies.get()
                if isinstance(reply, DiscoveryError):
                    if received:
                        return nodes
                    raise reply
                assert isinstance(reply, Nodes)
                for record in reply.records:
                    n = self._verify_response_node(call, record, distances, seen)
                    if n is not None:
                        nodes.append(n)
                if total == -1:
                    total = min(reply.resp_count, TOTAL_NODES_RESPONSE_LIMIT)
                received += 1
                if received >= total:
                    return nodes
        finally:
            self._call_done(call)

    def _verify_response_node(self, call: _Call, record: ENR, distances: list[int] | None,
                              seen: set[bytes]) -> Node | None:
        try:
            node = Node.from_enr(record)
        except Exception:
            return None
        if node.ip is None or check_relay_ip(parse_ip(call.addr[0]), node.ip) is not None:  # type: ignore[arg-type]
            return None
        if node.udp <= LOW_PORT:
            return None
        if distances is not None and log_distance(call.id, node.id) not in distances:
            return None
        if node.id in seen:
            return None
        seen.add(node.id)
        return node

    async def request_enr(self, node: Node) -> Node:
        """``node``'s current record: FINDNODE at distance 0."""
        nodes = await self.findnode(node, [0])
        if len(nodes) != 1:
            raise DiscoveryError(f"{len(nodes)} nodes in response for distance zero")
        return nodes[0]

    # -- lookups -------------------------------------------------------------------------

    async def _query(self, node: Node, target: bytes) -> list[Node]:
        try:
            found = await self.findnode(node, lookup_distances(target, node.id))
        except DiscoveryError as exc:
            log.debug("FINDNODE/v5 to %r failed: %s", node, exc)
            found = []
        if self._closing:
            return found
        fails = 0 if found else self.db.find_fails(node.id, node.ip) + 1
        self.db.update_find_fails(node.id, node.ip, fails)
        found = [n for n in found if n.id != self.local.id]
        self.table.track_request(node, fails, found)
        return found

    async def lookup(self, target: bytes) -> list[Node]:
        """The nodes closest to ``target`` (a 32-byte node id) the network knows of."""
        if len(self.table) == 0:
            await self.refresh()
        return await self._lookup(target)

    async def _lookup(self, target: bytes) -> list[Node]:
        initial = self.table.find_closest(target, BUCKET_SIZE)
        return await Lookup(target, self.local.id, initial, lambda n: self._query(n, target)).run()

    async def lookup_random(self) -> list[Node]:
        return await self.lookup(os.urandom(32))

    async def _do_refresh(self) -> None:
        seeds = [n for n in self.db.query_seeds(SEED_COUNT, SEED_MAX_AGE) if n.record is not None]
        self.table.load_seeds(seeds)
        await self._lookup(self.local.id)
        for _ in range(RANDOM_LOOKUPS_PER_REFRESH):
            await self._lookup(os.urandom(32))

    def _cleans_db(self) -> bool:
        """The database's owner expires it: discv4 does when the two share one."""
        return self._owns_db


@functools.lru_cache(maxsize=4096)
def _source_ip(host: str) -> tuple[IPAddress, str]:
    """A datagram's source address, IPv4-in-IPv6 unwrapped (geth dispatchReadPacket); cached,
    because parsing it is a fifth of the cost of answering a PING."""
    ip = parse_ip(host)
    if ip is None:
        raise ValueError("no source address")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, str(ip)


def lookup_distances(target: bytes, dest: bytes) -> list[int]:
    """geth lookupDistances: logdist(target, dest) and its neighbours, three in all."""
    td = log_distance(target, dest)
    dists = [td]
    i = 1
    while len(dists) < LOOKUP_REQUEST_LIMIT:
        if td + i <= 256:
            dists.append(td + i)
        if td - i > 0:
            dists.append(td - i)
        i += 1
    return dists


def pack_nodes(req_id: bytes, nodes: list[Node]) -> list[Nodes]:
    """geth packNodes: NODES packets of at most ~1000 record bytes, each naming the total."""
    if not nodes:
        return [Nodes(req_id, 1, [])]
    packets: list[Nodes] = []
    pending = [n.record for n in nodes if n.record is not None]
    while pending:
        p = Nodes(req_id, 0, [])
        size = 0
        while pending:
            size += len(pending[0].encode())
            if size > NODES_SIZE_LIMIT and p.records:
                break
            p.records.append(pending.pop(0))
        packets.append(p)
    for p in packets:
        p.resp_count = len(packets)
    return packets


__all__ = ["UDPv5", "Config", "TalkHandler", "pack_nodes", "lookup_distances"]
