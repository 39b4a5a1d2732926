"""A live sync progress bar on a terminal, drawn with the ``ImportProgress`` that ``import`` uses too.

Only when stderr is a TTY: otherwise the downloader's "Imported new chain segment" lines
already say the same thing in a form a log collector can read. The display polls the
downloader (a few times a second) rather than hooking into it, so sync itself does not
know it is being watched.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Protocol, TextIO

from ethnode.core.blockchain import BlockChain
from ethnode.eth.downloader.downloader import SyncProgress
from ethnode.monitoring.progress import REDRAW_INTERVAL, ImportProgress

POLL_INTERVAL = 0.25  # seconds between looks at the downloader


class SyncStatus(Protocol):
    """What the display reads of the downloader."""

    @property
    def syncing(self) -> bool: ...

    def progress(self) -> SyncProgress: ...


class SyncDisplay:
    def __init__(self, downloader: SyncStatus, chain: BlockChain, stream: TextIO | None = None,
                 poll: float = POLL_INTERVAL) -> None:
        self.downloader = downloader
        self.chain = chain
        self.stream = stream if stream is not None else sys.stderr
        self.poll = poll
        self.progress: ImportProgress | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sync-display")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.update()  # close a bar left open

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            self.update()

    def update(self) -> None:
        """One look at the downloader: draw, or finish the bar once the sync is over."""
        syncing = self._task is not None and not self._task.done() and self.downloader.syncing
        if not syncing:
            if self.progress is not None:
                self.progress.finish()
                self.progress = None
            return
        p = self.downloader.progress()
        if self.progress is None:
            self.progress = ImportProgress("chain", stream=self.stream, bar=True, interval=REDRAW_INTERVAL,
                                           verb="Syncing")
        self.progress.total_bytes = max(p.highest_block - p.starting_block, 1)
        done = p.current_block - p.starting_block
        self.progress.show(self.chain.current_block, done, done)


__all__ = ["SyncDisplay", "POLL_INTERVAL"]
