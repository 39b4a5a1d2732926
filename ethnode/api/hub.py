"""From the node's internal bus to public events: one pump per internal kind, only while watched.

The wire layer builds an event only when its kind is subscribed (``EventBus.subscribed``),
so the hub takes a bus subscription for an internal kind when the first public listener
that needs it arrives and drops it with the last: a node nobody watches pays nothing.

Listeners are callbacks or streams. A stream is a bounded queue that forgets its oldest
event when its reader falls behind (the ``EventBus`` rule), counting what it lost in
``dropped``; a callback runs on the event loop as the pump delivers (an async one is
scheduled as a task), and an exception in it is logged, never raised into the node.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from ethnode.event import EventBus

log = logging.getLogger("ethnode.api")

DEFAULT_STREAM_SIZE = 10_000  # events a stream holds before it drops its oldest
PUMP_QUEUE_SIZE = 65_536  # internal events buffered per kind between the node and the hub (drop oldest)

Convert = Callable[[Any], Iterable[Any]]


class _Listener:
    def __init__(self, hub: Hub, kinds: frozenset[type]) -> None:
        self._hub = hub
        self.kinds = kinds
        self.closed = False

    def deliver(self, event: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop receiving; idempotent."""
        if not self.closed:
            self.closed = True
            self._hub._remove(self)


class Callback(_Listener):
    """A registered callback; ``close()`` (or ``cancel()``) unregisters it."""

    def __init__(self, hub: Hub, kinds: frozenset[type], fn: Callable[[Any], Any]) -> None:
        super().__init__(hub, kinds)
        self.fn = fn

    def deliver(self, event: Any) -> None:
        try:
            result = self.fn(event)
            if inspect.isawaitable(result):
                self._hub._spawn(result)
        except Exception:
            log.exception("Event callback %r failed on %s", self.fn, type(event).__name__)

    cancel = _Listener.close


class EventStream(_Listener):
    """An async iterator of events; ``async with`` closes it, ``dropped`` counts lost events."""

    def __init__(self, hub: Hub, kinds: frozenset[type], maxsize: int) -> None:
        super().__init__(hub, kinds)
        self._queue: deque[Any] = deque()
        self.maxsize = maxsize
        self.dropped = 0
        self._ready = asyncio.Event()

    def deliver(self, event: Any) -> None:
        if len(self._queue) >= self.maxsize:  # drop oldest, as the EventBus
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        super().close()
        self._ready.set()  # wake a reader so it sees the end

    async def get(self) -> Any:
        """The next event; StopAsyncIteration once closed and drained."""
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Hub:
    """Public listeners by public kind; internal kinds pumped from ``bus`` while anyone needs them."""

    def __init__(self, bus: EventBus, routes: dict[type, list[tuple[type, Convert]]]) -> None:
        """``routes``: public kind -> [(internal kind, converter to public events)]."""
        self.bus = bus
        self.routes = routes
        self._listeners: dict[type, list[_Listener]] = {}
        self._pumps: dict[type, tuple[Any, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active = False  # pumps run from activate() on: listeners may be added before the node starts

    def activate(self) -> None:
        """Start pumping (called by the node as it starts, so nothing it posts while starting is missed)."""
        self._active = True
        for kind, group in self._listeners.items():
            if group:
                for internal, _ in self.routes[kind]:
                    self._ensure_pump(internal)

    def add(self, listener: _Listener) -> _Listener:
        for kind in listener.kinds:
            if kind not in self.routes:
                raise TypeError(f"not an ethnode.api event type: {kind!r}")
        for kind in listener.kinds:
            self._listeners.setdefault(kind, []).append(listener)
            if self._active:
                for internal, _ in self.routes[kind]:
                    self._ensure_pump(internal)
        return listener

    def _remove(self, listener: _Listener) -> None:
        for kind in listener.kinds:
            group = self._listeners.get(kind, [])
            if listener in group:
                group.remove(listener)
        needed = {internal for kind, group in self._listeners.items() if group for internal, _ in self.routes[kind]}
        for internal in list(self._pumps):
            if internal not in needed:
                sub, task = self._pumps.pop(internal)
                sub.unsubscribe()
                task.cancel()

    def _ensure_pump(self, internal: type) -> None:
        if internal in self._pumps:
            return
        sub = self.bus.subscribe(internal, PUMP_QUEUE_SIZE)
        task = asyncio.get_running_loop().create_task(self._pump(internal, sub), name=f"api-{internal.__name__}")
        self._pumps[internal] = (sub, task)

    async def _pump(self, internal: type, sub: Any) -> None:
        converters = [(kind, convert) for kind, routes in self.routes.items()
                      for source, convert in routes if source is internal]
        while True:
            event = await sub.get()
            for kind, convert in converters:
                listeners = self._listeners.get(kind)
                if not listeners:
                    continue
                try:
                    converted = convert(event)
                except Exception:  # a bug here must not end the pump: later events still flow
                    log.exception("Converting %s to %s failed", internal.__name__, kind.__name__)
                    continue
                for public in converted:
                    for listener in list(listeners):
                        listener.deliver(public)

    def pump_drops(self) -> int:
        """Internal events lost because the hub fell behind the node."""
        return sum(sub.dropped for sub, _ in self._pumps.values())

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Async event callback failed", exc_info=task.exception())

    async def close(self) -> None:
        for group in list(self._listeners.values()):
            for listener in list(group):
                listener.close()
        for sub, task in self._pumps.values():
            sub.unsubscribe()
            task.cancel()
        tasks = [task for _, task in self._pumps.values()] + list(self._tasks)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pumps.clear()
        self._active = False


__all__ = ["Hub", "EventStream", "Callback", "DEFAULT_STREAM_SIZE", "PUMP_QUEUE_SIZE"]
