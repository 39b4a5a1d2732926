"""One persistent JSON-RPC connection (WebSocket or IPC): requests in; replies and notifications out.

HTTP answers one body per request; a persistent connection interleaves replies with
notifications, so both go through one outgoing queue drained by one writer task (the
transport sees one writer, and a notification can never overtake the reply that gave its
subscription id: feeds start after that reply is queued, see ``ethnode.rpc.subscription``).

Requests are served concurrently, as geth serves each message of a connection in its own
goroutine, but at most ``MAX_INFLIGHT`` at a time: past that the connection stops reading,
so one client cannot pile up unbounded work.

The outgoing queue is bounded (``NOTIFICATION_BUFFER`` messages, geth's client-side
subscription buffer, or ``MAX_QUEUED_BYTES``): a client that stops reading while its
subscriptions keep firing is disconnected, not buffered for forever. Its socket buffer
fills, the writer blocks, the queue fills, and the connection is aborted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ethnode.logctx import kv
from ethnode.rpc.jsonrpc import SERVER_ERROR, Dispatcher, RPCError, encode_notification
from ethnode.rpc.subscription import Feed, new_id

log = logging.getLogger("ethnode.rpc")

NOTIFICATION_BUFFER = 20_000  # messages queued for a client; geth maxClientSubscriptionBuffer
MAX_QUEUED_BYTES = 64 * 1024 * 1024  # bytes queued for a client (one reply alone may be bigger); ours
MAX_INFLIGHT = 64  # requests of one connection served at once; geth: unbounded goroutines
MAX_SUBSCRIPTIONS = 10_000  # per connection; ours, geth has no bound
DRAIN_TIMEOUT = 5.0  # seconds to finish requests in flight and flush replies once the client stops sending


class MessageTransport(Protocol):
    """Framing: what turns a byte stream (or WebSocket frames) into JSON-RPC bodies and back."""

    def messages(self) -> AsyncIterator[bytes | str]:
        """Request bodies, one JSON value each, until the peer closes."""

    async def send(self, data: bytes) -> None:
        """Write one reply or notification (blocks while the peer does not read)."""

    def abort(self) -> None:
        """Drop the connection at once (a client too slow to read, shutdown)."""

    async def close(self) -> None:
        """Close cleanly after what was sent (a WebSocket close frame)."""


@dataclass
class _Sub:
    namespace: str
    feed: Feed
    task: asyncio.Task[None] | None = None


@dataclass
class _CallScope:
    """The ``Subscriber`` one message's calls see: subscriptions it creates start after its reply."""

    conn: RPCConnection
    pending: list[str] = field(default_factory=list)

    def subscribe(self, namespace: str, feed: Feed) -> str:
        return self.conn._add_subscription(namespace, feed, self.pending)

    def unsubscribe(self, sub_id: str) -> bool:
        return self.conn._stop_subscription(sub_id)

    def activate(self) -> None:
        for sub_id in self.pending:
            self.conn._start_subscription(sub_id)


class RPCConnection:
    """Serve ``dispatcher`` on ``transport`` until either side closes; ``name`` for logs (ws, ipc)."""

    def __init__(self, dispatcher: Dispatcher, transport: MessageTransport, name: str, remote: str = "") -> None:
        self.dispatcher = dispatcher
        self.transport = transport
        self.name, self.remote = name, remote
        self.closed = False
        self._aborted = False
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._subs: dict[str, _Sub] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_INFLIGHT)

    @property
    def subscriptions(self) -> int:
        return len(self._subs)

    async def serve(self) -> None:
        writer = asyncio.get_running_loop().create_task(self._write_loop(), name=f"{self.name}-writer")
        try:
            async for message in self.transport.messages():
                await self._slots.acquire()
                if self.closed:
                    self._slots.release()
                    break
                task = asyncio.get_running_loop().create_task(self._handle(message), name=f"{self.name}-call")
                self._calls.add(task)
                task.add_done_callback(self._call_done)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self._finish(writer)

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._slots.release()

    async def _handle(self, message: bytes | str) -> None:
        scope = _CallScope(self)
        reply = await self.dispatcher.handle(message, scope)
        if reply is not None:
            self.push(reply)
        scope.activate()

    async def _finish(self, writer: asyncio.Task[None]) -> None:
        """The client stopped sending (or is dropped): end its subscriptions, then answer what it asked."""
        for sub_id in list(self._subs):
            self._stop_subscription(sub_id)
        if not self._aborted and self._calls:
            await asyncio.wait(list(self._calls), timeout=DRAIN_TIMEOUT)
        for task in list(self._calls):
            task.cancel()
        if not self._aborted:
            self.closed = True
            self._wake.set()  # the writer flushes what is queued, then returns
            try:
                await asyncio.wait_for(asyncio.shield(writer), DRAIN_TIMEOUT)
            except TimeoutError:
                self.abort("could not flush replies")
        self.closed = True
        writer.cancel()
        await asyncio.gather(writer, *self._calls, return_exceptions=True)
        for sub_id in list(self._subs):  # a subscribe call that finished while draining
            self._stop_subscription(sub_id)
        if not self._aborted:
            try:
                await self.transport.close()
            except Exception:  # the peer is gone already
                pass

    # --- outgoing ---------------------------------------------------------------------------

    def push(self, data: bytes) -> bool:
        """Queue one message for the client; a client this far behind is disconnected (False)."""
        if self.closed:
            return False
        over_bytes = bool(self._queue) and self._queued_bytes + len(data) > MAX_QUEUED_BYTES
        if len(self._queue) >= NOTIFICATION_BUFFER or over_bytes:
            self.abort("client too slow to read its notifications")
            return False
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wake.set()
        return True

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self.closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            data = self._queue.popleft()
            self._queued_bytes -= len(data)
            try:
                await self.transport.send(data)
            except (ConnectionError, RuntimeError, OSError):  # the peer went away
                self.abort(None)
                return

    def abort(self, reason: str | None) -> None:
        """Drop the connection now; ``reason`` is logged (None: the peer left)."""
        if self._aborted:
            return
        if reason is not None:
            log.warning("RPC connection dropped", extra=kv(transport=self.name, remote=self.remote, reason=reason,
                                                          queued=len(self._queue)))
        self.closed = self._aborted = True
        self._queue.clear()
        self._queued_bytes = 0
        self._wake.set()
        for sub_id in list(self._subs):
            self._stop_subscription(sub_id)
        self.transport.abort()

    # --- subscriptions ------------------------------------------------------------------------

    def _add_subscription(self, namespace: str, feed: Feed, pending: list[str]) -> str:
        if self.closed or len(self._subs) >= MAX_SUBSCRIPTIONS:
            feed.close()
            raise RPCError(SERVER_ERROR, f"too many subscriptions on this connection (max {MAX_SUBSCRIPTIONS})")
        sub_id = new_id()
        while sub_id in self._subs:
            sub_id = new_id()
        self._subs[sub_id] = _Sub(namespace, feed)
        pending.append(sub_id)
        return sub_id

    def _start_subscription(self, sub_id: str) -> None:
        sub = self._subs.get(sub_id)
        if sub is None or sub.task is not None or self.closed:
            return
        sub.task = asyncio.get_running_loop().create_task(self._pump(sub_id, sub), name=f"{self.name}-sub")

    async def _pump(self, sub_id: str, sub: _Sub) -> None:
        def notify(result: Any) -> None:
            if sub_id in self._subs:
                self.push(encode_notification(sub.namespace, sub_id, result))

        try:
            await sub.feed.run(notify)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Subscription feed failed namespace=%s id=%s", sub.namespace, sub_id)
        if self._subs.get(sub_id) is sub:  # the feed ended by itself
            self._subs.pop(sub_id)
            sub.feed.close()

    def _stop_subscription(self, sub_id: str) -> bool:
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return False
        if sub.task is not None:
            sub.task.cancel()
        try:
            sub.feed.close()
        except Exception:
            log.exception("Closing a subscription feed failed id=%s", sub_id)
        return True


__all__ = ["RPCConnection", "MessageTransport", "NOTIFICATION_BUFFER", "MAX_QUEUED_BYTES", "MAX_INFLIGHT",
           "MAX_SUBSCRIPTIONS"]
