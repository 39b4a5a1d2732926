"""Import and sync progress on stderr: a redrawn bar on a terminal, log lines otherwise.

Lines go out at most once per ``interval`` seconds (geth logs "Imported new chain segment"
every 8 s); ``interval=0`` writes one line per block, which is what a supervising process
(or a test) reads to know a block has been committed.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol, TextIO

from ethnode.core.types.block import Block
from ethnode.logctx import kv

log = logging.getLogger("ethnode.monitoring.progress")

BAR_WIDTH = 30
REDRAW_INTERVAL = 0.1  # seconds between bar redraws on a terminal
DEFAULT_LOG_INTERVAL = 8.0  # geth statsReportLimit


class ChainHead(Protocol):
    """What a progress line names: a block or a header."""

    @property
    def number(self) -> int: ...

    @property
    def hash(self) -> bytes: ...


class ImportProgress:
    """Tracks blocks/s; ``update`` after each committed (or skipped) block."""

    def __init__(
        self,
        name: str,
        total_bytes: int | None = None,
        *,
        stream: TextIO | None = None,
        interval: float = DEFAULT_LOG_INTERVAL,
        bar: bool | None = None,
        verb: str = "Importing",
    ) -> None:
        self.name = name
        self.verb = verb
        self.total_bytes = total_bytes
        self.stream = stream if stream is not None else sys.stderr
        self.bar = self.stream.isatty() if bar is None else bar
        self.interval = REDRAW_INTERVAL if self.bar else interval
        self.start = time.monotonic()
        self._last_out = self.start
        self.count = 0
        self.known = 0
        self.last: ChainHead | None = None
        self._drawn = False
        self._width = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        elapsed = self.elapsed
        return self.count / elapsed if elapsed > 0 else 0.0

    def update(self, block: Block, known: bool, offset: int | None = None) -> None:
        self.count += 1
        self.known += known
        self.last = block
        now = time.monotonic()
        if now - self._last_out >= self.interval:
            self._last_out = now
            self._emit(offset)

    def show(self, head: ChainHead, count: int, offset: int | None = None) -> None:
        """Polled progress (sync): ``head`` is the chain's head now, ``count`` blocks so far.

        The first call draws at once; later ones at most once per interval.
        """
        first = self.last is None
        self.count = count
        self.last = head
        now = time.monotonic()
        if first or now - self._last_out >= self.interval:
            self._last_out = now
            self._emit(offset)

    def _emit(self, offset: int | None) -> None:
        block = self.last
        if block is None:
            return
        if self.bar:
            pct = ""
            filled = 0
            if self.total_bytes and offset is not None:
                frac = min(offset / self.total_bytes, 1.0)
                pct = f"{frac * 100:5.1f}% "
                filled = int(frac * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            line = f"{self.verb} {self.name} [{bar}] {pct}#{block.number} {self.rate:,.0f} blk/s "
            self.stream.write("\r" + line.ljust(self._width))  # blank out a longer previous line
            self._width = len(line)
            self._drawn = True
        else:  # a log line like every other (geth's "Imported new chain segment" every 8 s)
            log.info("Imported blocks", extra=kv(("count", self.count), ("known", self.known),
                                                 ("number", block.number), ("hash", block.hash),
                                                 ("blk/s", round(self.rate))))
            return
        self.stream.flush()

    def finish(self, offset: int | None = None) -> None:
        """Final state, then end the bar's line."""
        if self.bar and self.last is not None:
            self._emit(offset)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


__all__ = ["ImportProgress", "ChainHead", "DEFAULT_LOG_INTERVAL", "REDRAW_INTERVAL"]
