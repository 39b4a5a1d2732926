"""A connected peer: the devp2p base protocol (Hello, Ping/Pong, Disconnect) and the
routing of every other message to the sub-protocol that owns its code.

Tasks per peer: one reader (reads Hello, then every message, and answers Ping inline so
a peer that does not read our Pongs slows its own pings, as in geth), one pinger, and
one per sub-protocol handler that has a ``run``. ``Peer.run`` owns them all and returns
only after every one has finished.

Whatever ends the peer (a disconnect asked for locally, the remote's Disconnect, a bad
message, a timeout, a handler error) is reduced to a ``DiscReason``. Unless the
connection itself failed or the remote asked, that reason is sent in a Disconnect before
closing. Each peer logs exactly one line, when it ends, at DEBUG (ERROR with a traceback
if ethnode itself raised an unexpected exception).

As in geth, a connection whose read or write fails or times out ends with NETWORK_ERROR
and nothing is sent. Deliberate difference from geth: a second Hello is a protocol error
here (geth ignores it), and a peer silent from our Ping until the next one is due is
dropped with READ_TIMEOUT (geth relies on its 30 s read timeout alone).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.logctx import kv
from ethnode.metrics.p2p import EGRESS_MESSAGES, INGRESS_MESSAGES
from ethnode.p2p.disconnect import DisconnectRequested, DiscReason
from ethnode.p2p.protocol import (
    BASE_PROTOCOL_LENGTH,
    Capability,
    MatchedProtocol,
    Protocol,
    ProtocolChannel,
    ProtocolHandler,
    find_protocol,
    match_protocols,
)
from ethnode.p2p.rlpx.frame import MAX_FRAME_SIZE
from ethnode.p2p.rlpx.transport import (
    HANDSHAKE_TIMEOUT,
    Connection,
    ConnectionClosedError,
    MessageTooLargeError,
    ReadTimeoutError,
    TransportError,
    WriteTimeoutError,
)
from ethnode.rlp.errors import DecodingError
from ethnode.rlp.sedes import List, Record, binary, uint64
from ethnode.version import __version__

log = logging.getLogger("ethnode.p2p.peer")

BASE_PROTOCOL_VERSION = 5  # geth p2p/peer.go baseProtocolVersion
SNAPPY_PROTOCOL_VERSION = 5  # both sides compress after Hello from this version; geth snappyProtocolVersion
BASE_PROTOCOL_MAX_MSG_SIZE = 2 * 1024  # Hello and other base messages; geth baseProtocolMaxMsgSize
PING_INTERVAL = 15.0  # seconds; geth p2p/peer.go pingInterval
HELLO_TIMEOUT = HANDSHAKE_TIMEOUT  # for the Hello exchange after the RLPx handshake, geth handshakeTimeout
DISC_WRITE_TIMEOUT = 1.0  # seconds to get our Disconnect out; geth p2p/transport.go discWriteTimeout
DISCONNECT_LINGER = 1.0  # after sending Disconnect, how long the peer may take to close its side
NODE_ID_LENGTH = 64

# Base protocol message codes (devp2p rlpx.md), geth handshakeMsg/discMsg/pingMsg/pongMsg
HELLO = 0x00
DISCONNECT = 0x01
PING = 0x02
PONG = 0x03
_EMPTY_LIST = b"\xc0"
_MAX_CODE_BYTES = 9  # rlp(uint64) is at most 9 bytes; frames before Hello hold code + Hello


class HelloCapability(Record):
    fields = (("name", binary), ("version", uint64))


class Hello(Record):
    """[protocolVersion, clientId, [[cap-name, cap-version], ...], listenPort, nodeId, ...]."""

    fields = (
        ("version", uint64),
        ("client_id", binary),
        ("capabilities", List(HelloCapability)),
        ("listen_port", uint64),
        ("node_id", binary),
    )
    allow_extra = True  # later versions may append fields (EIP-8 style); geth: rlp:"tail"

    @classmethod
    def create(
        cls, client_id: str, capabilities: Iterable[Capability], listen_port: int, node_id: bytes
    ) -> Hello:
        caps = [HelloCapability(c.name.encode("ascii"), c.version) for c in capabilities]
        hello = cls(BASE_PROTOCOL_VERSION, client_id.encode("utf-8"), caps, listen_port, bytes(node_id))
        if len(hello.encode()) > BASE_PROTOCOL_MAX_MSG_SIZE:
            raise ValueError(f"Hello would exceed {BASE_PROTOCOL_MAX_MSG_SIZE} bytes (client id too long?)")
        return hello

    @property
    def client_name(self) -> str:
        return bytes(self.client_id).decode("utf-8", "replace")

    @property
    def caps(self) -> list[Capability]:
        # latin-1 keeps every byte and geth's byte-wise name order.
        return [Capability(bytes(c.name).decode("latin-1"), c.version) for c in self.capabilities]


def default_client_id(identity: str | None = None) -> str:
    """geth's shape, ``Name/identity/version/os-arch/runtime``: what peers show as our name."""
    parts = ["ethnode"]
    if identity:
        parts.append(identity)
    parts.append(f"v{__version__}")
    parts.append(f"{sys.platform}-{platform.machine().lower()}")
    parts.append(f"python{sys.version_info.major}.{sys.version_info.minor}")
    return "/".join(parts)


def check_hello(
    hello: Hello, handshake_id: bytes | None, protocols: Sequence[Protocol]
) -> tuple[DiscReason, str] | None:
    """Why a decoded Hello is unacceptable (reason, detail), or None (geth's checks)."""
    node_id = bytes(hello.node_id)
    if len(node_id) != NODE_ID_LENGTH or not any(node_id):
        return DiscReason.INVALID_IDENTITY, f"Hello node id is {len(node_id)} bytes or all zero"
    if handshake_id is not None and node_id != handshake_id:
        return DiscReason.UNEXPECTED_IDENTITY, "Hello node id differs from the handshake key"
    if protocols and not match_protocols(protocols, hello.caps):
        caps = ", ".join(map(str, hello.caps)) or "none"
        return DiscReason.USELESS_PEER, f"no shared capability (theirs: {caps})"
    return None


class _Drop(Exception):
    """Internal: ends the peer with a reason (raised inside the reader task)."""

    def __init__(self, reason: DiscReason, detail: str, *, remote: bool = False) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.remote = reason, detail, remote


def _reason_for(exc: BaseException) -> tuple[DiscReason, str, bool]:
    """(reason, detail, is_bug) for an exception that ended a peer's task."""
    if isinstance(exc, _Drop):
        return exc.reason, exc.detail, False
    if isinstance(exc, DisconnectRequested):
        return exc.reason, str(exc), False
    detail = f"{type(exc).__name__}: {exc}"
    # geth p2p.Peer.run: any failed read or write of the connection (timeouts included) is
    # DiscNetworkError, which is never sent (the connection is what failed).
    if isinstance(exc, (ConnectionClosedError, WriteTimeoutError, ReadTimeoutError, OSError)):
        return DiscReason.NETWORK_ERROR, detail, False
    if isinstance(exc, MessageTooLargeError):
        return DiscReason.PROTOCOL_ERROR, detail, False
    if isinstance(exc, TransportError):
        return DiscReason.NETWORK_ERROR, detail, False
    if isinstance(exc, EthnodeError):  # bad frame MAC, bad snappy, bad RLP from the peer
        return DiscReason.PROTOCOL_ERROR, detail, False
    return DiscReason.SUBPROTOCOL_ERROR, detail, True


class Peer:
    """One connected peer over a handshaken ``Connection``; ``await run()`` until it ends."""

    def __init__(
        self,
        conn: Connection,
        local_hello: Hello,
        protocols: Sequence[Protocol] = (),
        *,
        inbound: bool = False,
        ping_interval: float = PING_INTERVAL,
        hello_timeout: float = HELLO_TIMEOUT,
        trusted: bool = False,
    ) -> None:
        self.conn = conn
        # geth's trusted flag (--trustednodes, admin_addTrustedPeer): protocols let it past their peer limits
        self.trusted = trusted
        self.local_hello = local_hello
        self.protocols = tuple(protocols)
        self.inbound = inbound
        self.ping_interval = ping_interval
        self.hello_timeout = hello_timeout
        self.remote_hello: Hello | None = None
        self.matched: list[MatchedProtocol] = []
        self.handlers: dict[str, ProtocolHandler] = {}
        self.reason: DiscReason | None = None  # why it ended, once it has
        self.remote_requested = False  # the reason came in the remote's Disconnect
        self._end: asyncio.Future[tuple[DiscReason, str, bool, BaseException | None]] | None = None
        self._started = False
        self._ready: asyncio.Future[Hello | None] | None = None  # None: ended before Hello
        self._ended = asyncio.Event()
        self._ending = False
        self._awaiting_pong = False
        self._read_since_ping = False  # a message arrived after our last Ping went out
        self.last_pong: float | None = None  # loop time of the latest Pong, for liveness checks
        self._tasks: list[asyncio.Task[Any]] = []

    # -- public ---------------------------------------------------------------------------
    @property
    def remote_id(self) -> bytes:
        assert self.conn.remote_id is not None
        return self.conn.remote_id

    @property
    def client_id(self) -> str | None:
        return self.remote_hello.client_name if self.remote_hello is not None else None

    def disconnect(self, reason: DiscReason = DiscReason.REQUESTED) -> None:
        """Ask the peer to end with ``reason``; returns at once (``run`` does the rest)."""
        self._finish(reason, "disconnect requested locally")

    async def send(self, code: int, payload: bytes) -> None:
        """Send a message with an absolute code (sub-protocols use their ProtocolChannel)."""
        if self._ending:
            raise ConnectionClosedError("peer is disconnecting")
        size = await self.conn.write_message(code, payload)
        if code >= BASE_PROTOCOL_LENGTH:
            matched = find_protocol(self.matched, code)
            if matched is not None:
                proto = matched.protocol
                EGRESS_MESSAGES.mark(proto.name, proto.version, code - matched.offset, size)

    async def wait_ready(self) -> Hello:
        """The remote Hello, once exchanged; ConnectionClosedError if the peer ended first."""
        hello = await asyncio.shield(self._ready_future())
        if hello is None:
            raise ConnectionClosedError(f"peer ended before Hello: {self.reason}")
        return hello

    async def wait_ended(self) -> DiscReason:
        await self._ended.wait()
        assert self.reason is not None
        return self.reason

    async def run(self) -> DiscReason:
        """Exchange Hello, serve the peer until it ends, clean up; returns why it ended."""
        loop = asyncio.get_running_loop()
        if self._started:
            raise RuntimeError("Peer.run called twice")
        self._started = True
        if self._end is None:  # not yet ended by an early disconnect()
            self._end = loop.create_future()
        self._ready_future()
        reader = loop.create_task(self._read_loop(), name=f"peer-reader-{self._short_id()}")
        try:
            reason, detail, remote, bug = await asyncio.shield(self._end)
        except asyncio.CancelledError:
            self._finish(DiscReason.QUITTING, "peer task cancelled")
            self._ending = True
            self.conn.abort()
            await self._stop_tasks(reader, linger=0.0)
            self._record_end(DiscReason.QUITTING, "peer task cancelled", False, None)
            raise
        await self._shutdown(reader, reason, remote)
        self._record_end(reason, detail, remote, bug)
        return reason

    # -- internals ------------------------------------------------------------------------
    def _short_id(self) -> str:
        return self.conn.remote_id.hex()[:8] if self.conn.remote_id else "?"

    def _ready_future(self) -> asyncio.Future[Hello | None]:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
        return self._ready

    def _finish(
        self, reason: DiscReason, detail: str, *, remote: bool = False, bug: BaseException | None = None
    ) -> None:
        if self._end is not None and not self._end.done():
            self._end.set_result((reason, detail, remote, bug))
        elif self._end is None:  # disconnect() before run(): run will end at once
            self._end = asyncio.get_running_loop().create_future()
            self._end.set_result((reason, detail, remote, bug))

    def _finish_from(self, exc: BaseException) -> None:
        reason, detail, is_bug = _reason_for(exc)
        remote = isinstance(exc, _Drop) and exc.remote
        self._finish(reason, detail, remote=remote, bug=exc if is_bug else None)

    async def _read_loop(self) -> None:
        try:
            await self._exchange_hello()
            self._start_protocols()
            read, dispatch, turn = self.conn.read_message, self._dispatch, asyncio.sleep
            while True:
                code, payload = await read()
                self._read_since_ping = True
                if not self._ending:
                    await dispatch(code, payload)
                # One message per turn: with requests already buffered neither the read nor
                # the reply's write suspends, so without this a pipelining peer would keep
                # the loop until its backlog is served (geth serves each peer on its own
                # goroutine; here peers take turns).
                await turn(0)
        except Exception as exc:  # everything ends the peer, nothing escapes the task
            self._finish_from(exc)

    async def _exchange_hello(self) -> None:
        conn = self.conn
        conn.max_frame_size = BASE_PROTOCOL_MAX_MSG_SIZE + _MAX_CODE_BYTES
        try:
            await conn.write_message(HELLO, self.local_hello.encode())
        except ConnectionClosedError:
            pass  # like geth, prefer what the peer said before closing (a Disconnect) to this error
        code, payload = await conn.read_message(timeout=self.hello_timeout)
        if code == DISCONNECT:
            reason = DiscReason.decode_payload(payload)
            raise _Drop(reason, "disconnected by remote before Hello", remote=True)
        if code != HELLO:
            raise _Drop(DiscReason.PROTOCOL_ERROR, f"expected Hello, got message {code:#x}")
        if len(payload) > BASE_PROTOCOL_MAX_MSG_SIZE:
            raise _Drop(DiscReason.PROTOCOL_ERROR, f"Hello of {len(payload)} bytes is over the limit")
        try:
            hello = Hello.decode(payload)
        except DecodingError as exc:
            raise _Drop(DiscReason.PROTOCOL_ERROR, f"malformed Hello: {exc}") from None
        problem = check_hello(hello, conn.remote_id, self.protocols)
        if problem is not None and problem[0] is not DiscReason.USELESS_PEER:
            raise _Drop(*problem)  # identity errors: geth fails the handshake before snappy is on
        if hello.version >= SNAPPY_PROTOCOL_VERSION and self.local_hello.version >= SNAPPY_PROTOCOL_VERSION:
            conn.snappy = True
        if problem is not None:
            raise _Drop(*problem)  # no shared capability: geth decides it after turning snappy on
        self.remote_hello = hello
        self.matched = match_protocols(self.protocols, hello.caps)
        conn.max_frame_size = MAX_FRAME_SIZE
        self._ready_future().set_result(hello)

    def _start_protocols(self) -> None:
        if self._ending:  # ended while Hello was in flight: shutdown has already swept the tasks
            return
        loop = asyncio.get_running_loop()
        for m in self.matched:
            handler = m.protocol.new_handler(ProtocolChannel(self, m))
            self.handlers[m.protocol.name] = handler
            run = getattr(handler, "run", None)
            if run is not None:
                name = f"peer-{m.protocol.capability}-{self._short_id()}"
                self._tasks.append(loop.create_task(self._run_handler(m, run), name=name))
        self._tasks.append(loop.create_task(self._ping_loop(), name=f"peer-ping-{self._short_id()}"))

    async def _dispatch(self, code: int, payload: bytes) -> None:
        if code >= BASE_PROTOCOL_LENGTH:
            matched = find_protocol(self.matched, code)
            if matched is None:
                detail = f"message code {code:#x} belongs to no shared protocol"
                raise _Drop(DiscReason.PROTOCOL_ERROR, detail)
            proto = matched.protocol
            INGRESS_MESSAGES.mark(proto.name, proto.version, code - matched.offset, self.conn.last_read_size)
            handler = self.handlers[proto.name]
            try:
                await handler.handle(code - matched.offset, payload)
            except (asyncio.CancelledError, _Drop, TransportError):
                raise  # a reply that could not be written is the connection's fault (geth: network error)
            except DisconnectRequested as exc:
                raise _Drop(exc.reason, f"{matched.protocol.capability}: {exc}") from None
            except EthnodeError as exc:
                detail = f"{matched.protocol.capability}: {type(exc).__name__}: {exc}"
                raise _Drop(DiscReason.SUBPROTOCOL_ERROR, detail) from None
        elif code == PING:
            await self.conn.write_message(PONG, _EMPTY_LIST)
        elif code == PONG:
            self._awaiting_pong = False
            self.last_pong = asyncio.get_running_loop().time()
        elif code == DISCONNECT:
            raise _Drop(DiscReason.decode_payload(payload), "disconnected by remote", remote=True)
        elif code == HELLO:
            raise _Drop(DiscReason.PROTOCOL_ERROR, "second Hello")
        # other codes below 0x10 are reserved: ignored, as geth does

    async def _run_handler(self, matched: MatchedProtocol, run: Any) -> None:
        cap = matched.protocol.capability
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except DisconnectRequested as exc:
            self._finish(exc.reason, f"{cap}: {exc}")
        except TransportError as exc:
            self._finish_from(exc)
        except EthnodeError as exc:
            self._finish(DiscReason.SUBPROTOCOL_ERROR, f"{cap}: {type(exc).__name__}: {exc}")
        except Exception as exc:
            self._finish(DiscReason.SUBPROTOCOL_ERROR, f"{cap}: {type(exc).__name__}: {exc}", bug=exc)
        else:
            self._finish(DiscReason.QUITTING, f"{cap} handler returned")

    async def _ping_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                # A peer that sent nothing at all since our Ping is gone. One that kept sending
                # is alive: its Pong may sit behind requests we are still working through (we
                # read in order, one message per turn), as geth, whose liveness is its read
                # deadline, would see it too.
                if self._awaiting_pong and not self._read_since_ping:
                    self._finish(DiscReason.READ_TIMEOUT, f"no Pong within {self.ping_interval:g} s")
                    return
                self._awaiting_pong = True
                self._read_since_ping = False
                await self.conn.write_message(PING, _EMPTY_LIST)
        except Exception as exc:
            self._finish_from(exc)

    async def _shutdown(self, reader: asyncio.Task[Any], reason: DiscReason, remote: bool) -> None:
        self._ending = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        polite = not remote and reason not in (DiscReason.NETWORK_ERROR, DiscReason.INVALID)
        if polite and not self.conn.closed:
            try:
                await self.conn.write_message(DISCONNECT, reason.encode_payload(), timeout=DISC_WRITE_TIMEOUT)
            except EthnodeError:
                pass
            await self.conn.close_gracefully(DISCONNECT_LINGER)
        else:
            self.conn.close()
        await self._stop_tasks(reader, linger=DISCONNECT_LINGER)

    async def _stop_tasks(self, reader: asyncio.Task[Any], linger: float) -> None:
        """Wait for the reader to see the close; cancel it if a handler holds it up."""
        for task in self._tasks:
            task.cancel()
        if linger > 0:
            await asyncio.wait([reader], timeout=linger)
        if not reader.done():
            self.conn.abort()
            reader.cancel()
        await asyncio.gather(reader, *self._tasks, return_exceptions=True)

    def _record_end(self, reason: DiscReason, detail: str, remote: bool, bug: BaseException | None) -> None:
        self.reason, self.remote_requested = reason, remote
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        addr = self.conn.remote_address
        where = f"{addr[0]}:{addr[1]}" if addr else "?"
        side = "remote" if remote else "local"
        level = logging.ERROR if bug is not None else logging.DEBUG
        fields = kv(id=self._short_id(), addr=where, inbound=self.inbound, name=self.client_id or None,
                    reason=reason.description, side=side, detail=detail)
        log.log(level, "Peer disconnected", extra=fields, exc_info=bug)
        self._ended.set()

    def __repr__(self) -> str:
        return f"Peer({self._short_id()} {self.client_id or '?'})"

    def terminal_string(self) -> str:
        """In a log line (geth enode.ID.TerminalString): the first 8 bytes of the id."""
        return self.conn.remote_id.hex()[:16] if self.conn.remote_id else "?"


__all__ = [
    "Peer", "Hello", "HelloCapability", "check_hello", "default_client_id",
    "BASE_PROTOCOL_VERSION", "BASE_PROTOCOL_MAX_MSG_SIZE", "PING_INTERVAL",
    "HELLO", "DISCONNECT", "PING", "PONG",
]
