"""One structured log line per significant chain event, in geth's ``key=value`` style.

Already logged where they happen: p2p peers added and dropped ("Adding p2p peer",
"Peer disconnected", debug, as geth), sync start and finish and import batches (the
downloader), forkchoice head moves (the Engine API), submitted txs (``eth_sendRawTransaction``).
This fills the one gap: a head change from any source (downloader, block fetcher, miner,
forkchoice) gets geth's "Chain head was updated" line, at debug while a sync is running
(the downloader's segment lines say it better then) and info otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ethnode.core.events import ChainHeadEvent
from ethnode.event import EventBus

log = logging.getLogger("ethnode.chain")

HEAD_QUEUE = 128  # head events buffered for the logger; drop oldest (a newer head supersedes them)


def pretty_age(seconds: float) -> str:
    """geth common.PrettyAge: the two largest units, e.g. ``3s``, ``5m2s``, ``2h7m``, ``3d4h``."""
    seconds = max(0, int(seconds))
    units = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
            if len(parts) == 2:
                break
    return "".join(parts)


class EventLogger:
    """Subscribes to ``ChainHeadEvent``; ``syncing()`` says whether a sync is running."""

    def __init__(self, bus: EventBus, syncing: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.time) -> None:
        self.bus = bus
        self.syncing = syncing
        self.clock = clock
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sub = self.bus.subscribe(ChainHeadEvent, HEAD_QUEUE)
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub), name="chain-event-log")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.unsubscribe()
            self._sub = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, sub: Any) -> None:
        while True:
            event = await sub.get()
            self.log_head(event.header)

    def log_head(self, header: Any) -> None:
        level = logging.DEBUG if self.syncing() else logging.INFO
        log.log(level, "Chain head was updated number=%d hash=0x%s root=0x%s age=%s", header.number,
                header.hash.hex(), header.state_root.hex(), pretty_age(self.clock() - header.time))


__all__ = ["EventLogger", "pretty_age"]
