"""One RLPx connection on asyncio: the ECIES handshake over TCP, then framed messages.

The crypto lives in sans-IO objects (``handshake.Initiator``/``Recipient``, ``FrameCodec``,
``snappy``); this module only moves bytes. It uses an ``asyncio.Protocol`` rather than
streams for the whole connection: received bytes accumulate in one buffer and a frame is
taken out of it only once all of its bytes are there, so the header MAC state can never
run ahead of a frame that was abandoned half-read.

Reading: exactly one task may call ``read_message`` (the peer's reader task). A message
must arrive completely within the read timeout; any read error, timeout included, is
fatal for the connection, and so is cancelling a read after its header was consumed.

Writing: a frame is encrypted and handed to the socket in one synchronous step, so
concurrent writers can never interleave frames or feed the egress MAC out of order.
Writers wait (bounded by the write timeout) only while the socket's send buffer is over
its high-water mark, and then queue in FIFO order on a lock.

Buffers are bounded: the send buffer by the transport's high-water mark plus one frame
per waiting writer (nothing is dropped: a writer that cannot proceed within the write
timeout fails the connection); the receive buffer by pausing the socket at
``READ_HIGH_WATER`` (no drop either: TCP flow control holds the peer back).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from ethnode.crypto.keys import PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.metrics.p2p import EGRESS_BYTES, INGRESS_BYTES
from ethnode.p2p.rlpx import snappy
from ethnode.p2p.rlpx.frame import HEADER_SIZE, MAX_FRAME_SIZE, FrameCodec
from ethnode.p2p.rlpx.handshake import Initiator, Recipient, Secrets

HANDSHAKE_TIMEOUT = 5.0  # seconds for the whole ECIES handshake; geth p2p/transport.go handshakeTimeout
FRAME_READ_TIMEOUT = 30.0  # one whole message, i.e. the longest idle time; geth p2p/server.go
FRAME_WRITE_TIMEOUT = 20.0  # one whole message; geth p2p/server.go frameWriteTimeout
DIAL_TIMEOUT = 15.0  # TCP connect; geth p2p/server.go defaultDialTimeout

# Receive buffer: stop reading from the socket beyond this many buffered bytes (unless the
# frame being waited for is itself larger), resume below the low mark.
READ_HIGH_WATER = 4 * 1024 * 1024
READ_LOW_WATER = 1024 * 1024
# Send buffer: writers wait above this (asyncio's default is 64 KiB; larger batches better).
WRITE_HIGH_WATER = 1024 * 1024
# Consumed bytes at the buffer's front are dropped once there are this many of them.
_COMPACT_THRESHOLD = 256 * 1024
_MAC_SIZE = 16
_BLOCK = 16


class TransportError(EthnodeError):
    """The connection failed below the devp2p protocol: closed, timed out, over a limit."""


class ConnectionClosedError(TransportError):
    """The peer closed or reset the connection, or we closed it."""


class HandshakeTimeoutError(TransportError):
    """The ECIES handshake did not complete within its timeout."""


class ReadTimeoutError(TransportError):
    """No complete message arrived within the read timeout."""


class WriteTimeoutError(TransportError):
    """The socket accepted no more data within the write timeout."""


class MessageTooLargeError(TransportError):
    """A frame is larger than this connection currently accepts (e.g. before Hello)."""


def _padded(size: int) -> int:
    return (size + _BLOCK - 1) // _BLOCK * _BLOCK


def _wake(fut: asyncio.Future[None] | None, exc: BaseException | None = None) -> None:
    if fut is not None and not fut.done():
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


class _Stream(asyncio.Protocol):
    """Socket plumbing: a receive buffer with one waiter, write flow control, close state."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_connected: Any = None) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._on_connected = on_connected
        self._buf = bytearray()
        self._pos = 0
        self._need = 0
        self._waiter: asyncio.Future[None] | None = None
        self._read_paused = False
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed_error: ConnectionClosedError | None = None
        self.lost = loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self._on_connected is not None:
            self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        available = len(self._buf) - self._pos
        if self._waiter is not None and available >= self._need:
            _wake(self._waiter)
        if available >= READ_HIGH_WATER and available >= self._need and not self._read_paused:
            self._read_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> None:
        # Returning None lets the transport close itself: a half-closed peer is gone.
        self._set_closed("connection closed by peer")

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_closed(f"connection lost: {exc}" if exc else "connection closed")
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        _wake(self._drain_waiter)

    # -- used by Connection ----------------------------------------------------------------
    def _set_closed(self, why: str) -> None:
        if self.closed_error is None:
            self.closed_error = ConnectionClosedError(why)
        _wake(self._waiter, self.closed_error)
        _wake(self._drain_waiter, self.closed_error)

    @property
    def available(self) -> int:
        return len(self._buf) - self._pos

    def peek(self) -> bytes:
        return bytes(self._buf[self._pos :])

    def take(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        data = bytes(self._buf[pos:end])
        if end == len(self._buf):
            self._buf.clear()
            end = 0
        elif end >= _COMPACT_THRESHOLD:
            del self._buf[:end]
            end = 0
        self._pos = end
        if self._read_paused and self.available < READ_LOW_WATER:
            self._read_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return data

    async def wait_bytes(self, n: int, deadline: float) -> None:
        """Until ``n`` bytes are buffered; ReadTimeoutError at ``deadline`` (loop time)."""
        while self.available < n:
            if self.closed_error is not None:
                raise self.closed_error
            if self._read_paused and self.transport is not None:
                self._read_paused = False  # the frame we wait for is larger than the high mark
                self.transport.resume_reading()
            waiter = self.loop.create_future()
            self._waiter, self._need = waiter, n
            timer = self.loop.call_at(deadline, _wake, waiter, ReadTimeoutError("read timed out"))
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None

    async def wait_writable(self) -> None:
        """Until the send buffer is below its high-water mark (callers bound the wait)."""
        while self.write_paused:
            if self.closed_error is not None:
                raise self.closed_error
            waiter = self.loop.create_future()
            self._drain_waiter = waiter
            try:
                await waiter
            finally:
                self._drain_waiter = None


class Connection:
    """An RLPx connection: handshake, then ``read_message``/``write_message`` of whole messages.

    ``remote_id`` is the peer's 64-byte node id once the handshake is done. ``snappy`` is
    switched on by the base protocol after Hello (devp2p v5). ``max_frame_size`` bounds
    the frames read; the base protocol lowers it until Hello so a peer cannot make us
    buffer 16 MiB before it has even said who it is.
    """

    def __init__(self, stream: _Stream, *, frame_codec: type | None = None) -> None:
        self._stream = stream
        self._frame_codec = frame_codec or FrameCodec
        self._codec: Any = None
        self._write_lock = asyncio.Lock()
        self._read_broken: BaseException | None = None
        self.remote_id: bytes | None = None
        self.snappy = False
        self.max_frame_size = MAX_FRAME_SIZE
        self.read_timeout = FRAME_READ_TIMEOUT
        self.write_timeout = FRAME_WRITE_TIMEOUT
        self.last_read_size = 0  # wire bytes of the last message read (geth msg.meterSize), for metering

    # -- handshake --------------------------------------------------------------------------
    async def initiate(
        self, privkey: PrivateKey, remote: PublicKey | bytes, *, timeout: float = HANDSHAKE_TIMEOUT
    ) -> None:
        """Run the handshake as the dialer: send auth, read ack."""
        deadline = self._stream.loop.time() + timeout
        side = Initiator(privkey, remote)
        self._write_raw(side.auth_message())
        packet = await self._read_packet(side, deadline)
        self._start_framing(side.receive_ack(packet))

    async def respond(self, privkey: PrivateKey, *, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        """Run the handshake as the listener: read auth, send ack."""
        deadline = self._stream.loop.time() + timeout
        side = Recipient(privkey)
        side.receive_auth(await self._read_packet(side, deadline))
        self._write_raw(side.ack_message())
        self._start_framing(side.secrets())

    async def _read_packet(self, side: Initiator | Recipient, deadline: float) -> bytes:
        stream = self._stream
        while True:
            size = side.packet_size(stream.peek())
            if stream.available >= size:
                INGRESS_BYTES.value += size
                return stream.take(size)
            try:
                await stream.wait_bytes(size, deadline)
            except ReadTimeoutError:
                raise HandshakeTimeoutError("RLPx handshake timed out") from None

    def _write_raw(self, data: bytes) -> None:
        if self._stream.closed_error is not None:
            raise self._stream.closed_error
        assert self._stream.transport is not None
        EGRESS_BYTES.value += len(data)
        self._stream.transport.write(data)

    def _start_framing(self, secrets: Secrets) -> None:
        self.remote_id = secrets.remote_pubkey
        self._codec = self._frame_codec(
            secrets.aes, secrets.mac, secrets.egress_mac_seed, secrets.ingress_mac_seed
        )

    # -- messages ---------------------------------------------------------------------------
    async def read_message(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next (code, payload); only ever called from one task. Every error is final."""
        if self._read_broken is not None:
            raise TransportError(f"connection unreadable after an earlier error: {self._read_broken!r}")
        stream, codec = self._stream, self._codec
        deadline = stream.loop.time() + (self.read_timeout if timeout is None else timeout)
        mid_frame = False
        try:
            if stream.available < HEADER_SIZE:
                await stream.wait_bytes(HEADER_SIZE, deadline)
            mid_frame = True
            need = codec.read_header(stream.take(HEADER_SIZE))
            if need - _MAC_SIZE > _padded(self.max_frame_size):
                raise MessageTooLargeError(
                    f"frame of ~{need - _MAC_SIZE} bytes exceeds the current limit of {self.max_frame_size}"
                )
            if stream.available < need:
                await stream.wait_bytes(need, deadline)
            code, payload = codec.read_body(stream.take(need))
            self.last_read_size = HEADER_SIZE + need
            INGRESS_BYTES.value += HEADER_SIZE + need
            if self.snappy:
                payload = snappy.decompress(payload)
            return code, payload
        except asyncio.CancelledError:
            if mid_frame:  # the ingress MAC has moved on: nothing after this can be read
                self._read_broken = asyncio.CancelledError()
                self.abort()
            raise
        except BaseException as exc:
            self._read_broken = exc
            raise

    async def write_message(self, code: int, payload: bytes, *, timeout: float | None = None) -> int:
        """Send one message; waits only while the send buffer is full (up to the write timeout).

        Returns the bytes it took on the wire (geth meters messages by this size).
        """
        if self.snappy:
            payload = snappy.compress(payload)
        stream = self._stream
        if not (stream.write_paused or self._write_lock.locked()):
            return self._send_frame(code, payload)  # the common case: no waiting, no lock
        deadline = stream.loop.time() + (self.write_timeout if timeout is None else timeout)
        try:
            async with asyncio.timeout_at(deadline):  # covers the queue for the lock, too
                async with self._write_lock:
                    await stream.wait_writable()
                    return self._send_frame(code, payload)
        except TimeoutError:
            self.abort()  # the peer is not reading; what is queued will never drain
            raise WriteTimeoutError("write timed out") from None

    def _send_frame(self, code: int, payload: bytes) -> int:
        stream = self._stream
        if stream.closed_error is not None:
            raise stream.closed_error
        assert stream.transport is not None
        if stream.transport.is_closing():
            raise ConnectionClosedError("connection is closing")
        frame = self._codec.write(code, payload)
        EGRESS_BYTES.value += len(frame)
        stream.transport.write(frame)
        return len(frame)

    # -- closing ----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        transport = self._stream.transport
        return self._stream.closed_error is not None or transport is None or transport.is_closing()

    def close(self) -> None:
        """Flush what is queued, then close."""
        if self._stream.transport is not None:
            self._stream.transport.close()

    def abort(self) -> None:
        """Close at once, dropping anything queued."""
        if self._stream.transport is not None:
            self._stream.transport.abort()

    async def close_gracefully(self, linger: float) -> None:
        """Flush, half-close, and give the peer ``linger`` seconds to close its side.

        Reading continues meanwhile so the peer's last bytes do not turn our close into a
        reset that could destroy the message we just sent.
        """
        transport = self._stream.transport
        if transport is None or transport.is_closing():
            self.close()
        elif transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._stream.lost), linger)
        except TimeoutError:
            self.abort()

    async def wait_closed(self) -> None:
        await self._stream.lost

    # -- information ------------------------------------------------------------------------
    @property
    def remote_address(self) -> tuple[str, int] | None:
        transport = self._stream.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return (peer[0], peer[1]) if peer else None

    @property
    def local_address(self) -> tuple[str, int] | None:
        transport = self._stream.transport
        sock = transport.get_extra_info("sockname") if transport is not None else None
        return (sock[0], sock[1]) if sock else None

    def __repr__(self) -> str:
        who = self.remote_id.hex()[:16] if self.remote_id else "?"
        addr = self.remote_address
        return f"Connection({who} {addr[0]}:{addr[1]})" if addr else f"Connection({who})"


async def dial(
    host: str,
    port: int,
    privkey: PrivateKey,
    remote: PublicKey | bytes,
    *,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    dial_timeout: float = DIAL_TIMEOUT,
    frame_codec: type | None = None,
) -> Connection:
    """Connect over TCP and complete the handshake as initiator; closes on any failure."""
    loop = asyncio.get_running_loop()
    connecting = loop.create_connection(lambda: _Stream(loop), host, port)
    _, stream = await asyncio.wait_for(connecting, dial_timeout)
    conn = Connection(stream, frame_codec=frame_codec)
    try:
        await conn.initiate(privkey, remote, timeout=handshake_timeout)
    except BaseException:
        conn.abort()
        raise
    return conn


async def start_server(
    host: str, port: int, on_connection: Any, *, frame_codec: type | None = None
) -> asyncio.Server:
    """Listen for TCP; ``on_connection(conn)`` gets each new, not yet handshaken Connection.

    It is called synchronously from the event loop and must not block; it typically
    starts a task that calls ``conn.respond(...)``. An empty ``host`` means every
    interface through one dual-stack socket where possible, as geth's ``:port`` does, so
    that port 0 yields one port rather than one per address family.
    """
    loop = asyncio.get_running_loop()

    def connected(stream: _Stream) -> None:
        on_connection(Connection(stream, frame_codec=frame_codec))

    if host:
        return await loop.create_server(lambda: _Stream(loop, connected), host, port)
    if socket.has_dualstack_ipv6():
        sock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        sock = socket.create_server(("0.0.0.0", port))
    try:
        return await loop.create_server(lambda: _Stream(loop, connected), sock=sock)
    except BaseException:
        sock.close()
        raise


__all__ = [
    "Connection", "dial", "start_server",
    "TransportError", "ConnectionClosedError", "HandshakeTimeoutError", "ReadTimeoutError",
    "WriteTimeoutError", "MessageTooLargeError",
    "HANDSHAKE_TIMEOUT", "FRAME_READ_TIMEOUT", "FRAME_WRITE_TIMEOUT", "DIAL_TIMEOUT",
]
