"""Dial candidates from discovery: geth's ``RandomNodes()`` iterator over our UDPv4 service.

The discv4 service offers ``lookup_random()`` (one lookup, a list of nodes) but no
iterator, so this adapter runs lookups back to back and hands their results out one
node at a time. The Server pulls only while the dial scheduler has free slots, so
lookups stop while the peer set is full (geth's dialer does the same by not reading).
Lookups start at most once per ``min_interval``; after lookups that found nothing the
interval doubles up to ``MAX_LOOKUP_INTERVAL``, so a node alone on its network (or with
dead bootnodes) does not keep refreshing every second.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from ethnode.p2p.dial import TRACE
from ethnode.p2p.enode import Node

log = logging.getLogger("ethnode.p2p.dial")

MAX_LOOKUP_INTERVAL = 30.0  # seconds; ours: the longest pause after empty lookups


class _Lookups(Protocol):
    async def lookup_random(self) -> list[Node]: ...


class FairLookups:
    """Several discovery services as one: each ``lookup_random`` asks the next in turn.

    discv4 and discv5 keep a table each, as in geth, whose dialer reads both through an
    ``enode.FairMix``; taking turns gives each the same share of dial candidates.
    """

    def __init__(self, sources: list[_Lookups]) -> None:
        self.sources = sources
        self._next = 0

    async def lookup_random(self) -> list[Node]:
        source = self.sources[self._next % len(self.sources)]
        self._next += 1
        return await source.lookup_random()


class LookupCandidates:
    """``await next()`` yields discovered nodes forever (duplicates included: the dialer filters)."""

    def __init__(self, discovery: _Lookups, min_interval: float) -> None:
        self.discovery = discovery
        self.min_interval = min_interval
        self._buffer: deque[Node] = deque()
        self._last_start: float | None = None
        self._interval = min_interval
        self.lookups = 0

    async def next(self) -> Node:
        loop = asyncio.get_running_loop()
        while not self._buffer:
            if self._last_start is not None:
                wait = self._last_start + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._last_start = loop.time()
            self.lookups += 1
            found = await self.discovery.lookup_random()
            log.log(TRACE, "Discovery lookup for dial candidates found=%d", len(found))
            if found:
                self._interval = self.min_interval
            else:
                self._interval = min(max(self._interval * 2, self.min_interval), MAX_LOOKUP_INTERVAL)
            self._buffer.extend(found)
        return self._buffer.popleft()


__all__ = ["LookupCandidates", "FairLookups", "MAX_LOOKUP_INTERVAL"]
