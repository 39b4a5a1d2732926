"""A minimal devp2p endpoint: accept and dial RLPx connections and run a Peer on each.

This is the least that lets ``ethnode-fast run`` and the tests meet other nodes; the
p2p Server proper (dial scheduling, discovery, peer set) arrives with its own issue.
It owns every task it starts: ``close()`` stops accepting, drops every peer with
QUITTING and returns once all of them have finished.

Bounds: at most ``max_peers`` running peers (beyond that a new connection gets
Disconnect TOO_MANY_PEERS after its handshake) and ``MAX_PENDING_HANDSHAKES`` inbound
connections still in the handshake (beyond that a new socket is closed at once); both
drop the newcomer, never an established peer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ethnode.crypto.keys import NODE_ID_LENGTH, PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.peer import (
    DISC_WRITE_TIMEOUT,
    DISCONNECT,
    DISCONNECT_LINGER,
    PING_INTERVAL,
    Hello,
    Peer,
    default_client_id,
)
from ethnode.p2p.protocol import Protocol
from ethnode.p2p.rlpx import transport
from ethnode.p2p.rlpx.transport import HANDSHAKE_TIMEOUT, Connection

log = logging.getLogger("ethnode.p2p.listener")

MAX_PEERS = 50  # geth's default --maxpeers
MAX_PENDING_HANDSHAKES = 50  # inbound connections still in the handshake; geth defaultMaxPendingPeers
CLOSE_TIMEOUT = 5.0  # how long close() waits for peers to finish before cancelling them


class EnodeError(EthnodeError, ValueError):
    """An enode URL that cannot be dialed."""


def format_enode(node_id: bytes, host: str, port: int) -> str:
    """``enode://<hex node id>@host:port``; an unspecified address shows as 127.0.0.1, as geth does."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"enode://{node_id.hex()}@{host}:{port}"


def parse_enode(url: str) -> tuple[bytes, str, int]:
    """(node id, IP, TCP port) of an ``enode://`` URL with an IP address (no DNS names)."""
    parts = urlsplit(url.strip())
    if parts.scheme != "enode" or not parts.username:
        raise EnodeError(f"not an enode URL: {url!r}")
    try:
        node_id = bytes.fromhex(parts.username)
        host = parts.hostname or ""
        ipaddress.ip_address(host)
        port = parts.port
    except ValueError as exc:
        raise EnodeError(f"invalid enode URL {url!r}: {exc}") from None
    if len(node_id) != NODE_ID_LENGTH:
        raise EnodeError(f"enode node id must be {NODE_ID_LENGTH} bytes, got {len(node_id)}")
    if not port:
        raise EnodeError(f"enode URL {url!r} has no TCP port")
    return node_id, host, port


class Listener:
    """Accepts inbound connections, dials outbound ones, and runs a ``Peer`` on each."""

    def __init__(
        self,
        privkey: PrivateKey,
        *,
        protocols: Sequence[Protocol] = (),
        client_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_peers: int = MAX_PEERS,
        ping_interval: float = PING_INTERVAL,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        on_peer: Callable[[Peer], Any] | None = None,
        frame_codec: type | None = None,
    ) -> None:
        self.privkey = privkey
        self.protocols = tuple(protocols)
        self.client_id = client_id or default_client_id()
        self.host = host
        self.port = port
        self.max_peers = max_peers
        self.ping_interval = ping_interval
        self.handshake_timeout = handshake_timeout
        self.on_peer = on_peer
        self.frame_codec = frame_codec
        self.peers: set[Peer] = set()
        self._pending: set[Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self.hello()  # a client id that makes Hello too big fails here, not at the first peer

    @property
    def node_id(self) -> bytes:
        return self.privkey.node_id

    @property
    def enode(self) -> str:
        return format_enode(self.node_id, self.host, self.port)

    def hello(self) -> Hello:
        caps = [p.capability for p in self.protocols]
        return Hello.create(self.client_id, caps, self.port if self._server else 0, self.node_id)

    async def start(self) -> None:
        """Listen on (host, port); port 0 picks a free one, readable from ``port`` afterwards."""
        self._server = await transport.start_server(
            self.host, self.port, self._accepted, frame_codec=self.frame_codec
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.debug("Listening for RLPx connections addr=%s:%d", self.host, self.port)

    async def dial(self, enode: str) -> Peer:
        """Connect to ``enode``, complete the handshake and start its Peer (Hello follows).

        Raises on TCP or handshake failure; after that the peer's fate is reported by
        ``Peer.wait_ready()`` / ``Peer.wait_ended()``.
        """
        if self._closing:
            raise transport.ConnectionClosedError("listener is closing")
        node_id, host, port = parse_enode(enode)
        conn = await transport.dial(
            host, port, self.privkey, PublicKey(node_id),
            handshake_timeout=self.handshake_timeout, frame_codec=self.frame_codec,
        )
        if self._closing:
            conn.abort()
            raise transport.ConnectionClosedError("listener is closing")
        return self._start_peer(conn, inbound=False)

    async def close(self) -> None:
        """Stop accepting, drop every peer with QUITTING, wait for every task."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._pending):
            conn.abort()
        for peer in list(self.peers):
            peer.disconnect(DiscReason.QUITTING)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=CLOSE_TIMEOUT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Listener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _accepted(self, conn: Connection) -> None:
        if self._closing or len(self._pending) >= MAX_PENDING_HANDSHAKES:
            pending = len(self._pending)
            log.debug("Inbound connection refused addr=%s pending=%d", conn.remote_address, pending)
            conn.abort()
            return
        self._pending.add(conn)
        self._spawn(self._serve_inbound(conn), name="rlpx-inbound")

    async def _serve_inbound(self, conn: Connection) -> None:
        try:
            await conn.respond(self.privkey, timeout=self.handshake_timeout)
        except (EthnodeError, OSError) as exc:
            log.debug("Inbound RLPx handshake failed addr=%s err=%s: %s", conn.remote_address,
                      type(exc).__name__, exc)
            conn.abort()
            return
        finally:
            self._pending.discard(conn)
        if self._closing or len(self.peers) >= self.max_peers:
            reason = DiscReason.QUITTING if self._closing else DiscReason.TOO_MANY_PEERS
            log.debug("Inbound peer refused addr=%s reason=%r", conn.remote_address, reason.description)
            try:
                await conn.write_message(DISCONNECT, reason.encode_payload(), timeout=DISC_WRITE_TIMEOUT)
            except EthnodeError:
                pass
            await conn.close_gracefully(DISCONNECT_LINGER)
            return
        self._start_peer(conn, inbound=True)

    def _start_peer(self, conn: Connection, *, inbound: bool) -> Peer:
        peer = Peer(conn, self.hello(), self.protocols, inbound=inbound, ping_interval=self.ping_interval,
                    hello_timeout=self.handshake_timeout)
        self.peers.add(peer)
        if self.on_peer is not None:
            self.on_peer(peer)
        self._spawn(self._run_peer(peer), name=f"peer-{'in' if inbound else 'out'}")
        return peer

    async def _run_peer(self, peer: Peer) -> None:
        try:
            await peer.run()
        finally:
            self.peers.discard(peer)


__all__ = ["Listener", "format_enode", "parse_enode", "EnodeError", "MAX_PEERS", "MAX_PENDING_HANDSHAKES"]
