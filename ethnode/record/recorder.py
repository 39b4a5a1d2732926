"""The recorder: everything an ``EthNode`` sees, as rows, in batches, in bounded memory.

It is an ordinary ``ethnode.api`` consumer: one event stream (bounded; a recorder that
falls behind loses the oldest events and counts them in ``lost``), rows buffered until
``batch_rows`` or ``flush_interval`` seconds, then handed to the sink on a worker thread
while the next batch fills. A tx's raw bytes are stored once, when first seen; the
first-seen check remembers the last ``SEEN_WINDOW`` hashes (older repeats are caught by
SQLite's primary key; a Parquet recording may then hold a second row for one tx).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

from ethnode.api import (
    BlockAnnouncement,
    BlockRangeUpdate,
    EthNode,
    PeerAdded,
    PeerDropped,
    Transactions,
    TxAnnouncement,
)
from ethnode.record.sinks import TABLES, Rows, Sink

log = logging.getLogger("ethnode.record")

BATCH_ROWS = 5_000  # rows buffered before a write
FLUSH_INTERVAL = 1.0  # seconds a row may wait for its batch
STREAM_SIZE = 200_000  # events queued between the node and the recorder (drop oldest)
SEEN_WINDOW = 1 << 20  # tx hashes remembered for the first-seen check (~100 MB at most)
KINDS = (PeerAdded, PeerDropped, TxAnnouncement, Transactions, BlockAnnouncement, BlockRangeUpdate)


@dataclass(frozen=True)
class Summary:
    """What a recording holds, printed when it stops."""

    seconds: float
    peers: int  # distinct peers added
    tx_announcements: int  # announced hashes (one per hash per peer)
    tx_deliveries: int  # full txs received (broadcast or pooled)
    unique_txs: int
    block_announcements: int
    block_range_updates: int
    lost: int  # events dropped because the recorder fell behind

    @property
    def announcements_per_second(self) -> float:
        return self.tx_announcements / self.seconds if self.seconds > 0 else 0.0

    @property
    def duplicates_per_tx(self) -> float:
        """Observations of a tx (announced or delivered, any peer) beyond the first, on average."""
        if not self.unique_txs:
            return 0.0
        return (self.tx_announcements + self.tx_deliveries) / self.unique_txs - 1

    def lines(self) -> list[str]:
        return [
            f"peers={self.peers} seconds={self.seconds:.1f} tx_announcements={self.tx_announcements} "
            f"announcements/s={self.announcements_per_second:.2f} tx_deliveries={self.tx_deliveries} "
            f"unique_txs={self.unique_txs} duplicates_per_tx={self.duplicates_per_tx:.2f} "
            f"block_announcements={self.block_announcements} block_range_updates={self.block_range_updates} "
            f"lost={self.lost}",
        ]


class Recorder:
    """Attach to a started ``EthNode``: ``await start()``, later ``summary = await stop()``."""

    def __init__(self, node: EthNode, sink: Sink, *, batch_rows: int = BATCH_ROWS,
                 flush_interval: float = FLUSH_INTERVAL, stream_size: int = STREAM_SIZE) -> None:
        self.node, self.sink = node, sink
        self.batch_rows, self.flush_interval, self.stream_size = batch_rows, flush_interval, stream_size
        self._rows: Rows = {table: [] for table in TABLES}
        self._pending = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._peers: set[bytes] = set()
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None
        self._stream: Any = None
        self._started = 0.0
        self.unique_txs = 0
        self.flushes = 0

    async def start(self) -> None:
        self._stream = self.node.subscribe(*KINDS, maxsize=self.stream_size)
        self._started = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder")

    async def stop(self) -> Summary:
        """Write what is buffered, close the sink, return the summary."""
        if self._task is not None:
            self._stream.close()  # the loop drains what is queued, then ends
            await self._task
            self._task = None
        await asyncio.to_thread(self.sink.close)
        return self.summary()

    def summary(self) -> Summary:
        c = self._counts
        lost = self._stream.dropped if self._stream is not None else 0
        return Summary(time.monotonic() - self._started, len(self._peers), c["tx_announcements"], c["tx_deliveries"],
                       self.unique_txs, c["block_announcements"], c["block_range_updates"], lost)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_interval
        stream = self._stream
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await stream.get()
            except TimeoutError:
                await self._flush()
                deadline = loop.time() + self.flush_interval
                continue
            except StopAsyncIteration:
                await self._flush()
                return
            self._add(event)
            if self._pending >= self.batch_rows:
                await self._flush()
                deadline = loop.time() + self.flush_interval

    async def _flush(self) -> None:
        if not self._pending:
            return
        rows, self._rows, self._pending = self._rows, {table: [] for table in TABLES}, 0
        await asyncio.to_thread(self.sink.write, rows)
        self.flushes += 1
        log.info("Recorded batch events=%d txs=%d unique_txs=%d", len(rows["events"]), len(rows["txs"]),
                 self.unique_txs)

    def _row(self, table: str, row: tuple[Any, ...]) -> None:
        self._rows[table].append(row)
        self._pending += 1

    def _add(self, ev: Any) -> None:
        if isinstance(ev, TxAnnouncement):
            peer = ev.peer.id_hex
            for h, t, s in zip(ev.hashes, ev.types, ev.sizes, strict=True):
                self._row("events", (ev.time_ns, "tx_announcement", peer, h.hex(), None, t, s, None))
            self._counts["tx_announcements"] += len(ev.hashes)
        elif isinstance(ev, Transactions):
            peer, kind = ev.peer.id_hex, "tx_pooled" if ev.pooled else "tx_broadcast"
            for tx in ev.txs:
                self._row("events", (ev.time_ns, kind, peer, tx.hash.hex(), None, tx.type, len(tx.raw), None))
                if self._first_seen(tx.hash):
                    self._row("txs", (tx.hash.hex(), ev.time_ns, peer, tx.type, len(tx.raw), tx.raw))
            self._counts["tx_deliveries"] += len(ev.txs)
        elif isinstance(ev, BlockAnnouncement):
            kind = "new_block" if ev.block is not None else "block_hash"
            self._row("events", (ev.time_ns, kind, ev.peer.id_hex, ev.hash.hex(), ev.number, None, None, None))
            self._counts["block_announcements"] += 1
        elif isinstance(ev, BlockRangeUpdate):
            self._row("events", (ev.time_ns, "block_range", ev.peer.id_hex, ev.latest_hash.hex(), ev.latest, None,
                                 None, ev.earliest))
            self._counts["block_range_updates"] += 1
        elif isinstance(ev, PeerAdded):
            self._peers.add(ev.peer.id)
            self._row("peers", self._peer_row(ev, "add"))
        elif isinstance(ev, PeerDropped):
            self._row("peers", self._peer_row(ev, "drop"))

    def _first_seen(self, tx_hash: bytes) -> bool:
        seen = self._seen
        if tx_hash in seen:
            seen.move_to_end(tx_hash)
            return False
        seen[tx_hash] = None
        if len(seen) > SEEN_WINDOW:
            seen.popitem(last=False)
        self.unique_txs += 1
        return True

    @staticmethod
    def _peer_row(ev: PeerAdded | PeerDropped, event: str) -> tuple[Any, ...]:
        p = ev.peer
        address = f"{p.address[0]}:{p.address[1]}" if p.address else None
        base = (ev.time_ns, event, p.id_hex, p.client_id, ",".join(p.caps), address, int(p.inbound))
        if isinstance(ev, PeerDropped):
            return (*base, *([None] * 9), ev.reason, ev.reason_code, int(ev.remote_requested))
        s = ev.status
        if s is None:
            return (*base, ev.eth_version, *([None] * 11))
        return (*base, ev.eth_version, s.network_id, s.genesis.hex(), s.fork_hash.hex(), s.fork_next, s.head.hex(),
                None if s.td is None else str(s.td), s.earliest, s.latest, None, None, None)


__all__ = ["Recorder", "Summary", "KINDS", "BATCH_ROWS", "FLUSH_INTERVAL", "STREAM_SIZE", "SEEN_WINDOW"]
