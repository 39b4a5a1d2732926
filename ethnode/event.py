"""A small in-process event bus shared by services (geth's event.Feed, one per kind).

Subscribers get a bounded queue each; a slow subscriber loses its oldest events rather
than stalling the publisher (geth's feeds block instead, but every ethnode queue is
bounded with its drop policy next to it).

A leaf module so that any layer can post: the chain in ``core`` posts its head moves,
``p2p`` its peer events, and neither has to know the node that owns the bus.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Protocol

DEFAULT_QUEUE_SIZE = 1024


class EventSink(Protocol):
    """Where a publisher posts: the node's ``EventBus``, or anything a test wants to count."""

    def post(self, event: Any) -> object: ...


class Subscription:
    """Events of one kind for one subscriber; ``dropped`` counts what overflowed."""

    def __init__(self, bus: EventBus, kind: type, maxsize: int) -> None:
        self._bus, self.kind = bus, kind
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _deliver(self, event: Any) -> None:
        if self.queue.full():  # drop oldest
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Any:
        return await self.queue.get()

    def unsubscribe(self) -> None:
        self._bus._subs[self.kind].discard(self)
        self._bus.generation += 1


class EventBus:
    """Publish events by their type; subscribe to a type."""

    def __init__(self) -> None:
        self._subs: defaultdict[type, set[Subscription]] = defaultdict(set)
        # bumped by every subscribe and unsubscribe: a publisher may cache what it derived from
        # ``subscribed`` and recheck only when this moved (one int compare on its hot path)
        self.generation = 0

    def subscribe(self, kind: type, maxsize: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        sub = Subscription(self, kind, maxsize)
        self._subs[kind].add(sub)
        self.generation += 1
        return sub

    def subscribed(self, kind: type) -> bool:
        """Whether anyone listens for ``kind``: publishers test this before building an event
        that costs something (a decode, a timestamp), so an unwatched event costs one lookup."""
        return bool(self._subs.get(kind))

    def post(self, event: Any) -> int:
        """Deliver to every subscriber of ``type(event)``; returns how many got it."""
        subs = self._subs.get(type(event), ())
        for sub in list(subs):
            sub._deliver(event)
        return len(subs)


__all__ = ["EventBus", "EventSink", "Subscription", "DEFAULT_QUEUE_SIZE"]
