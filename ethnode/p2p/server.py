"""The p2p Server: listen, dial, keep the peer set within its limits (geth p2p/server.go).

One asyncio task per connection takes it through geth's stages:

1. inbound only: the source IP must pass NetRestrict and the per-IP inbound throttle,
   and at most MaxPendingPeers connections may be in the RLPx handshake at once;
2. the RLPx handshake, which reveals (inbound) or confirms (dialed) the remote key;
3. the checkpoint, synchronous so nothing can interleave: self, duplicates, MaxPeers,
   and the inbound cap ``MaxPeers - MaxPeers/DialRatio`` (trusted nodes skip the
   limits). A refused connection gets a Disconnect with the reason, as in geth. A
   connection that passes holds its peer slot from here on, so limits cannot be
   overrun while Hellos are in flight;
4. the Peer runs (Hello, then protocols); once Hello is done the peer is "added": it
   shows in ``peers()`` and a PeerEvent ADD is posted; when it ends, DROP with the reason.

Dialing is decided by ``DialScheduler`` (sans-IO, ``dial.py``); this module only feeds it
events and discovery candidates and runs the tasks it returns.

Deliberate difference from geth: when two nodes dial each other at the same moment,
geth may keep neither connection (each side refuses the second as "already connected").
Here both sides keep the one dialed by the node with the smaller public key and drop
the other with ALREADY_CONNECTED, so simultaneous dials converge on one connection. The
surviving peer is announced only after the dropped one has ended, so subscribers never
see two live peers with one id.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.event import EventBus
from ethnode.logctx import kv
from ethnode.metrics import p2p as p2p_metrics
from ethnode.p2p.candidates import FairLookups, LookupCandidates
from ethnode.p2p.config import ServerConfig, join_host_port, parse_static_node, split_host_port
from ethnode.p2p.dial import TRACE, ConnFlag, DialRefused, DialScheduler, DialTask
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.discover.nodedb import NodeDB
from ethnode.p2p.discover.udp import Config as DiscoveryConfig
from ethnode.p2p.discover.udp import UDPv4
from ethnode.p2p.discover.v5_udp import Config as DiscoveryV5Config
from ethnode.p2p.discover.v5_udp import UDPv5
from ethnode.p2p.enode import LocalNode, Node, parse_ip, parse_node
from ethnode.p2p.netutil import InboundThrottle, is_lan
from ethnode.p2p.peer import DISC_WRITE_TIMEOUT, DISCONNECT, DISCONNECT_LINGER, Hello, Peer, default_client_id
from ethnode.p2p.protocol import Capability, Protocol
from ethnode.p2p.rlpx import transport
from ethnode.p2p.rlpx.transport import Connection, ConnectionClosedError

log = logging.getLogger("ethnode.p2p.server")


class ServerError(EthnodeError):
    """The server was used in the wrong state."""


class PeerEventType(enum.Enum):
    ADD = "add"  # geth PeerEventTypeAdd
    DROP = "drop"  # geth PeerEventTypeDrop


@dataclass(frozen=True)
class PeerEvent:
    """Posted on the node's EventBus when a peer is added (after Hello) or dropped."""

    type: PeerEventType
    node_id: bytes  # the 64-byte public key, as Peer.remote_id
    remote_address: tuple[str, int] | None
    inbound: bool
    reason: DiscReason | None = None  # DROP: why the peer ended
    remote_requested: bool = False  # DROP: the reason came in the remote's Disconnect
    client_id: str | None = None  # from its Hello
    caps: tuple[Capability, ...] = ()  # from its Hello

    @property
    def id(self) -> bytes:
        """geth's enode.ID: keccak256 of the public key."""
        return keccak256(self.node_id)


@dataclass(eq=False)
class _Conn:
    """A connection past the RLPx handshake and the checkpoint: it holds a peer slot."""

    node: Node
    flags: ConnFlag
    peer: Peer
    replaces: _Conn | None = None  # the duplicate it displaced, which must end before this is added
    ready: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: asyncio.Future[bool] | None = None  # True once added, False if it ended before


def _caps(peer: Peer) -> tuple[Capability, ...]:
    return tuple(peer.remote_hello.caps) if peer.remote_hello is not None else ()


def _dialer_key(conn_flags: ConnFlag, local: bytes, remote: bytes) -> bytes:
    """The public key of the node that dialed a connection (for the duplicate tie-break)."""
    return remote if conn_flags & ConnFlag.INBOUND else local


class Server:
    """A devp2p server: ``await start()``, ``await stop()``; peers come and go in between."""

    def __init__(
        self,
        key: PrivateKey,
        config: ServerConfig | None = None,
        *,
        protocols: Sequence[Protocol] = (),
        bus: EventBus | None = None,
        on_peer: Callable[[Peer], Any] | None = None,
        frame_codec: type | None = None,
    ) -> None:
        self.key = key
        self.config = config or ServerConfig()
        self.protocols = tuple(protocols)
        self.bus = bus
        self.on_peer = on_peer  # called with every Peer as it starts (before Hello), for tests and tools
        self.frame_codec = frame_codec
        self.client_id = self.config.name or default_client_id()
        self.node_id = key.node_id  # 64-byte public key
        self.id = keccak256(self.node_id)  # geth enode.ID
        self.port = 0  # TCP listening port once started (0: not listening)
        self.discovery: UDPv4 | None = None
        self.discovery_v5: UDPv5 | None = None  # on discv4's socket when both run (geth setupDiscovery)
        self.local: LocalNode | None = None
        self.running = False
        self._closing = False
        self._stopped = False
        self._db: NodeDB | None = None
        self._tcp: asyncio.Server | None = None
        self._sched: DialScheduler | None = None
        self._throttle = InboundThrottle(
            self.config.inbound_throttle_time, exempt=(lambda ip: False) if self.config.throttle_lan else is_lan
        )
        self._trusted: set[bytes] = {n.id for n in self.config.trusted_nodes}
        self._static_backlog: list[Node] = list(self.config.static_nodes)
        self._conns: dict[bytes, _Conn] = {}
        self._pending: set[Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()  # connections (inbound and established)
        self._dials: set[asyncio.Task[Any]] = set()  # outbound dials still connecting
        self._loops: list[asyncio.Task[Any]] = []
        self._wake = asyncio.Event()
        self._want_candidates = asyncio.Event()
        self.hello()  # a client id that makes Hello too big fails here, not at the first peer

    # -- identity ------------------------------------------------------------------------------
    @property
    def self_node(self) -> Node:
        """Our node as others should dial it (geth Server.Self)."""
        if self.local is not None:
            return self.local.node
        return Node(self.node_id, "127.0.0.1", 0, self.port)

    @property
    def enode(self) -> str:
        return self.self_node.enode_url()

    def hello(self) -> Hello:
        caps = [p.capability for p in self.protocols]
        return Hello.create(self.client_id, caps, self.port, self.node_id)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (TCP), start discovery (UDP) and the dialer; ServerError naming a port that is taken."""
        if self.running or self._closing:
            raise ServerError("server already started")
        cfg = self.config
        try:
            try:
                self._db = NodeDB(cfg.node_database)
            except (OSError, sqlite3.Error) as exc:
                raise ServerError(f"node database {cfg.node_database}: {exc}") from None
            host = ""
            if cfg.listen_addr:
                host, port = split_host_port(cfg.listen_addr)
                try:
                    self._tcp = await transport.start_server(host, port, self._accepted,
                                                             frame_codec=self.frame_codec)
                except OSError as exc:
                    raise ServerError(f"could not listen on {cfg.listen_addr} (TCP): {exc.strerror or exc}") from None
                self.port = self._tcp.sockets[0].getsockname()[1]
                log.debug("TCP listener up addr=%s", join_host_port(host, self.port))
            await self._setup_local_node(host)
            self._sched = DialScheduler(
                self.id, max_dial_peers=cfg.max_dialed_conns(), max_active_dials=cfg.pending_limit(),
                net_restrict=cfg.net_restrict, history_expiration=cfg.dial_history_expiration,
                max_backoff=cfg.max_dial_backoff,
            )
            for node in self._static_backlog:
                self._sched.add_static(node)
            self._static_backlog.clear()
            loop = asyncio.get_running_loop()
            self._loops.append(loop.create_task(self._dial_loop(), name="p2p-dial-loop"))
            lookups = [d for d in (self.discovery, self.discovery_v5) if d is not None]
            if lookups and cfg.max_dialed_conns() > 0:
                source = LookupCandidates(FairLookups(lookups), cfg.lookup_interval)
                self._loops.append(loop.create_task(self._feed_candidates(source), name="p2p-dial-candidates"))
        except BaseException:
            await self._shutdown()
            raise
        self.running = True
        log.info("Started P2P networking self=%s", self.enode)

    async def _setup_local_node(self, host: str) -> None:
        cfg = self.config
        assert self._db is not None
        ext_ip = cfg.nat.external_ip() if cfg.nat is not None else None
        if cfg.nat is not None and ext_ip is None:  # "any", the default: no port mapping, say so once
            log.info("No NAT port mapping (UPnP/NAT-PMP not implemented) nat=%s endpoint=\"learned from discovery\"",
                     cfg.nat)
        if not cfg.no_discovery and (cfg.discovery_v4 or cfg.discovery_v5):
            if cfg.disc_addr:
                udp_host, udp_port = split_host_port(cfg.disc_addr)
            else:
                udp_host, udp_port = host, self.port  # geth: the TCP address, with the port TCP got
            # geth: --bootnodes feeds both (BootstrapNodesV5); enode:// ones have a key, enough to handshake
            v5cfg = replace(cfg.discovery_v5_config or DiscoveryV5Config(), bootnodes=list(cfg.bootnodes))
            if cfg.discovery_v4:
                dcfg = replace(cfg.discovery or DiscoveryConfig(), bootnodes=list(cfg.bootnodes))
                self.discovery = UDPv4(self.key, db=self._db, config=dcfg, tcp_port=self.port)
                self.local = self.discovery.local
            else:
                self.discovery_v5 = UDPv5(self.key, db=self._db, config=v5cfg, tcp_port=self.port)
                self.local = self.discovery_v5.local
            if ext_ip is not None:
                self.local.set_static_ip(ext_ip)
            try:
                if self.discovery is not None:
                    await self.discovery.start(udp_host or "0.0.0.0", udp_port)
                    if cfg.discovery_v5:  # one socket: discv4 hands on what it cannot parse
                        self.discovery_v5 = UDPv5(self.key, local=self.local, db=self._db, config=v5cfg)
                        self.discovery_v5.attach(self.discovery)
                elif self.discovery_v5 is not None:
                    await self.discovery_v5.start(udp_host or "0.0.0.0", udp_port)
            except OSError as exc:
                where = join_host_port(udp_host, udp_port)
                raise ServerError(f"could not listen on {where} (UDP): {exc.strerror or exc}") from None
            if ext_ip is not None:  # start() pins the bound address; the NAT's word wins
                self.local.set_static_ip(ext_ip)
            return
        db = self._db
        local = LocalNode(self.key, seq=db.local_seq(self.id), on_seq=lambda s: db.store_local_seq(self.id, s))
        local.set_tcp(self.port)
        bound = parse_ip(host) if host else None
        if ext_ip is not None:
            local.set_static_ip(ext_ip)
        elif bound is not None and not bound.is_unspecified:
            local.set_static_ip(bound)
        else:
            local.set_fallback_ip("127.0.0.1")  # as geth's Server until something better is known
        self.local = local

    async def stop(self) -> None:
        """Stop listening and dialing, send Disconnect QUITTING (0x08) to every peer, wait for them."""
        if self._stopped:
            return
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopped = True
        self._closing = True
        self.running = False
        if self._tcp is not None:
            self._tcp.close()
        for task in [*self._loops, *self._dials]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._dials, return_exceptions=True)
        self._loops.clear()
        for conn in list(self._pending):
            conn.abort()
        if self.discovery_v5 is not None:
            await self.discovery_v5.close()
        if self.discovery is not None:
            await self.discovery.close()
        for entry in list(self._conns.values()):
            entry.peer.disconnect(DiscReason.QUITTING)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.config.close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._db is not None:
            self._db.close()
            self._db = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the admin API (geth admin_addPeer & co) ---------------------------------------------
    def peers(self) -> list[Peer]:
        """Peers past Hello, as geth's Server.Peers."""
        return [c.peer for c in self._conns.values() if c.ready]

    def peer_count(self) -> int:
        return sum(1 for c in self._conns.values() if c.ready)

    def peer_node(self, peer: Peer) -> tuple[Node, ConnFlag] | None:
        """A connected peer's node and how the connection came about (inbound, static, trusted)."""
        entry = self._conns.get(keccak256(peer.remote_id))
        return (entry.node, entry.flags) if entry is not None and entry.peer is peer else None

    def add_peer(self, node: Node | str) -> bool:
        """Make ``node`` a static peer: dialed when there is room, redialed when it drops."""
        node = parse_static_node(node) if isinstance(node, str) else node
        if self._sched is None:
            if any(n.id == node.id for n in self._static_backlog):
                return False
            self._static_backlog.append(node)
            return True
        added = self._sched.add_static(node)
        self._wake.set()
        return added

    def remove_peer(self, node: Node | str) -> bool:
        """Forget ``node`` as a static peer and disconnect it if connected (DiscRequested)."""
        node = parse_node(node) if isinstance(node, str) else node
        removed = False
        if self._sched is not None:
            removed = self._sched.remove_static(node.id)
        else:
            before = len(self._static_backlog)
            self._static_backlog = [n for n in self._static_backlog if n.id != node.id]
            removed = len(self._static_backlog) != before
        entry = self._conns.get(node.id)
        if entry is not None:
            entry.peer.disconnect(DiscReason.REQUESTED)
            removed = True
        return removed

    def add_trusted_peer(self, node: Node | str) -> None:
        """Let ``node`` connect even when the peer slots are full."""
        node = parse_node(node) if isinstance(node, str) else node
        self._trusted.add(node.id)
        entry = self._conns.get(node.id)
        if entry is not None:
            entry.flags |= ConnFlag.TRUSTED
            entry.peer.trusted = True

    def remove_trusted_peer(self, node: Node | str) -> None:
        node = parse_node(node) if isinstance(node, str) else node
        self._trusted.discard(node.id)
        entry = self._conns.get(node.id)
        if entry is not None:
            entry.flags &= ~ConnFlag.TRUSTED
            entry.peer.trusted = False

    async def dial(self, node: Node | str) -> Peer:
        """Connect to ``node`` now, outside the scheduler; returns its Peer before Hello.

        Raises on TCP or handshake failure or when the checkpoint refuses the connection;
        after that the peer's fate is told by ``Peer.wait_ready()`` / ``wait_ended()``.
        """
        node = parse_static_node(node) if isinstance(node, str) else node
        if not self.running:
            raise ServerError("server is not running")
        entry = await self._connect(node, ConnFlag.DYN_DIALED)
        return entry.peer

    # -- dialing ------------------------------------------------------------------------------
    async def _dial_loop(self) -> None:
        sched = self._sched
        assert sched is not None
        loop = asyncio.get_running_loop()
        while not self._closing:
            self._wake.clear()
            now = loop.time()
            for task in sched.poll(now):
                self._start_dial(task)
            stats = sched.stats_due(now)
            if stats is not None:
                log.info("Looking for peers peercount=%d tried=%d static=%d",
                         stats["peercount"], stats["tried"], stats["static"])
            if sched.wants_candidates():
                self._want_candidates.set()
            else:
                self._want_candidates.clear()
            deadline = sched.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - now)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the wake-up
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _feed_candidates(self, source: LookupCandidates) -> None:
        sched = self._sched
        assert sched is not None
        loop = asyncio.get_running_loop()
        while not self._closing:
            await self._want_candidates.wait()
            node = await source.next()
            result = sched.offer(node, loop.time())
            if isinstance(result, DialRefused):
                log.log(TRACE, "Discarding dial candidate id=%s ip=%s reason=%s", node.id.hex()[:16], node.ip,
                        result.value)
            else:
                self._start_dial(result)
            if not sched.wants_candidates():
                self._want_candidates.clear()

    def _start_dial(self, task: DialTask) -> None:
        log.log(TRACE, "Starting p2p dial id=%s ip=%s flag=%s", task.node.id.hex()[:16], task.node.ip,
                task.flags.describe())
        dial = asyncio.get_running_loop().create_task(self._run_dial(task), name="p2p-dial")
        self._dials.add(dial)
        dial.add_done_callback(self._dials.discard)

    async def _run_dial(self, task: DialTask) -> None:
        ok = False
        try:
            entry = await self._connect(task.node, task.flags)
            assert entry.outcome is not None
            ok = await asyncio.shield(entry.outcome)
            if not ok and entry.peer.reason is DiscReason.ALREADY_CONNECTED:
                ok = True  # the other side kept its own connection to us: not a failure of this node
        except _Refused as exc:
            ok = exc.reason is DiscReason.ALREADY_CONNECTED
        except (EthnodeError, OSError, TimeoutError) as exc:
            level = logging.DEBUG if task.static else TRACE
            log.log(level, "Dial failed id=%s addr=%s:%d conn=%s err=%s: %s", task.node.pubkey.hex()[:16],
                    task.node.ip, task.node.tcp, task.flags.describe(), type(exc).__name__, exc)
        finally:
            if not self._closing and self._sched is not None:
                self._sched.dial_done(task, ok)
                self._wake.set()

    async def _connect(self, node: Node, flags: ConnFlag) -> _Conn:
        p2p_metrics.DIALS.inc()
        conn = await transport.dial(
            str(node.ip), node.tcp, self.key, node.pubkey,
            handshake_timeout=self.config.handshake_timeout, frame_codec=self.frame_codec,
        )
        result = self._checkpoint(conn, node, flags)
        if isinstance(result, DiscReason):
            await self._refuse(conn, result)
            raise _Refused(result)
        self._spawn(self._run_conn(result), name="peer-out")
        return result

    # -- accepting ----------------------------------------------------------------------------
    def _accepted(self, conn: Connection) -> None:
        try:
            self._accept(conn)
        except Exception:  # a bug here must not leave the socket open with nobody reading it
            log.exception("Failed to accept connection addr=%s", conn.remote_address)
            conn.abort()

    def _accept(self, conn: Connection) -> None:
        addr = conn.remote_address
        if self._closing or len(self._pending) >= self.config.pending_limit():
            log.debug("Inbound connection refused addr=%s pending=%d", addr, len(self._pending))
            conn.abort()
            return
        try:
            ip = parse_ip(addr[0].split("%")[0]) if addr else None
        except ValueError:
            ip = None
        if ip is not None:
            why = self._check_inbound(ip)
            if why is not None:
                log.debug("Rejected inbound connection addr=%s err=%s", addr, why)
                conn.abort()
                return
        self._pending.add(conn)
        p2p_metrics.SERVES.inc()
        self._spawn(self._serve_inbound(conn, ip), name="rlpx-inbound")

    def _check_inbound(self, ip: Any) -> str | None:
        """geth checkInboundConn: NetRestrict, then the per-IP attempt throttle."""
        restrict = self.config.net_restrict
        if restrict is not None and not restrict.contains(ip):
            return "not in netrestrict list"
        return self._throttle.check(ip, asyncio.get_running_loop().time())

    async def _serve_inbound(self, conn: Connection, ip: Any) -> None:
        try:
            await conn.respond(self.key, timeout=self.config.handshake_timeout)
        except (EthnodeError, OSError) as exc:
            log.debug("Inbound RLPx handshake failed addr=%s err=%s: %s", conn.remote_address,
                      type(exc).__name__, exc)
            conn.abort()
            return
        finally:
            self._pending.discard(conn)
        assert conn.remote_id is not None
        port = conn.remote_address[1] if conn.remote_address else 0
        node = Node(conn.remote_id, ip, port, port)  # geth nodeFromConn: the source port stands for both
        result = self._checkpoint(conn, node, ConnFlag.INBOUND)
        if isinstance(result, DiscReason):
            await self._refuse(conn, result)
            return
        await self._run_conn(result)

    # -- the peer set -------------------------------------------------------------------------
    def _checkpoint(self, conn: Connection, node: Node, flags: ConnFlag) -> _Conn | DiscReason:
        """geth postHandshakeChecks, synchronous: admit (reserving a slot) or give the reason."""
        if self._closing:
            return DiscReason.QUITTING
        node_id = node.id
        if node_id in self._trusted:
            flags |= ConnFlag.TRUSTED
        if node_id == self.id:
            return DiscReason.SELF
        existing = self._conns.get(node_id)
        if existing is not None:
            if (existing.flags & ConnFlag.INBOUND) == (flags & ConnFlag.INBOUND):
                return DiscReason.ALREADY_CONNECTED
            keep_new = _dialer_key(flags, self.node_id, node.pubkey) < _dialer_key(
                existing.flags, self.node_id, node.pubkey)
            if not keep_new:
                return DiscReason.ALREADY_CONNECTED
        elif not flags & ConnFlag.TRUSTED:
            if len(self._conns) >= self.config.max_peers:
                return DiscReason.TOO_MANY_PEERS
            if flags & ConnFlag.INBOUND and self._inbound_count() >= self.config.max_inbound_conns():
                return DiscReason.TOO_MANY_PEERS
        peer = Peer(conn, self.hello(), self.protocols, inbound=bool(flags & ConnFlag.INBOUND),
                    ping_interval=self.config.ping_interval, hello_timeout=self.config.handshake_timeout,
                    trusted=bool(flags & ConnFlag.TRUSTED))
        entry = _Conn(node, flags, peer, replaces=existing)
        entry.outcome = asyncio.get_running_loop().create_future()
        self._conns[node_id] = entry
        if existing is not None:
            log.debug("Replacing duplicate connection id=%s kept=%s", node.pubkey.hex()[:16], flags.describe())
            existing.peer.disconnect(DiscReason.ALREADY_CONNECTED)
        if flags & ConnFlag.INBOUND and self._sched is not None:
            self._sched.inbound_pending(node_id)
        if self.on_peer is not None:
            self.on_peer(peer)
        return entry

    def _inbound_count(self) -> int:
        return sum(1 for c in self._conns.values() if c.flags & ConnFlag.INBOUND)

    async def _refuse(self, conn: Connection, reason: DiscReason) -> None:
        """Tell the remote why before closing, as geth's transport close(err) does."""
        log.debug("Rejected peer", extra=kv(addr=conn.remote_address, id=conn.remote_id.hex()[:16] if conn.remote_id
                                            else "?", reason=reason.description))
        try:
            await conn.write_message(DISCONNECT, reason.encode_payload(), timeout=DISC_WRITE_TIMEOUT)
        except EthnodeError:
            pass
        await conn.close_gracefully(DISCONNECT_LINGER)

    async def _run_conn(self, entry: _Conn) -> None:
        watcher = asyncio.get_running_loop().create_task(self._watch_ready(entry), name="peer-ready")
        reason: DiscReason | None = None
        try:
            reason = await entry.peer.run()
        finally:
            # bookkeeping first, in this same step: whoever wakes on the peer's end finds it gone
            watcher.cancel()
            self._conn_ended(entry, reason)
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch_ready(self, entry: _Conn) -> None:
        peer = entry.peer
        try:
            await peer.wait_ready()
        except ConnectionClosedError:
            return
        if entry.replaces is not None:
            await entry.replaces.ended.wait()
        if peer.reason is None and self._conns.get(entry.node.id) is entry:
            self._peer_added(entry)

    def _peer_added(self, entry: _Conn) -> None:
        entry.ready = True
        (p2p_metrics.SERVES_SUCCESS if entry.flags & ConnFlag.INBOUND else p2p_metrics.DIALS_SUCCESS).inc()
        node_id = entry.node.id
        if self._sched is not None:
            if entry.flags & ConnFlag.INBOUND:
                self._sched.inbound_completed(node_id)
            self._sched.peer_added(node_id, entry.flags)
        peer = entry.peer
        log.debug("Adding p2p peer", extra=kv(peercount=self.peer_count(), id=peer.remote_id.hex()[:16],
                                              conn=entry.flags.describe(), addr=peer.conn.remote_address,
                                              name=peer.client_id))
        self._post(PeerEvent(PeerEventType.ADD, peer.remote_id, peer.conn.remote_address, peer.inbound,
                             client_id=peer.client_id, caps=_caps(peer)))
        if entry.outcome is not None and not entry.outcome.done():
            entry.outcome.set_result(True)
        self._wake.set()

    def _conn_ended(self, entry: _Conn, reason: DiscReason | None) -> None:
        entry.ended.set()
        node_id = entry.node.id
        if self._conns.get(node_id) is entry:
            del self._conns[node_id]
        if entry.outcome is not None and not entry.outcome.done():
            entry.outcome.set_result(False)
        if self._sched is not None and not self._closing:
            if entry.ready:
                self._sched.peer_removed(node_id, entry.flags)
            elif entry.flags & ConnFlag.INBOUND:
                self._sched.inbound_completed(node_id)
            self._wake.set()
        if entry.ready:
            peer = entry.peer
            self._post(PeerEvent(PeerEventType.DROP, peer.remote_id, peer.conn.remote_address, peer.inbound,
                                 reason, peer.remote_requested, peer.client_id, _caps(peer)))

    def _post(self, event: PeerEvent) -> None:
        if self.bus is not None:
            self.bus.post(event)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Refused(EthnodeError):
    """Our checkpoint refused a connection we dialed."""

    def __init__(self, reason: DiscReason) -> None:
        super().__init__(f"refused: {reason.description}")
        self.reason = reason


NODE_DB_FILE = "nodes.sqlite3"  # under <datadir>/ethnode/, as ``ethnode-fast discover``; geth: geth/nodes

__all__ = ["Server", "ServerError", "PeerEvent", "PeerEventType", "NODE_DB_FILE"]
