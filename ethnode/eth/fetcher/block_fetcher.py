"""The block fetcher: blocks announced by peers, fetched, checked, imported and passed on.

geth ``eth/fetcher/block_fetcher.go`` for eth/68, plus eth/69's counterpart:

- **eth/68 NewBlockHashes** (``notify``): an announcement near our head (7 behind to 32
  ahead) waits ~0.5 s, in case the block itself arrives by NewBlock meanwhile; then its
  header is fetched by hash from one announcer, and its body unless the header commits to
  an empty one. A header that is not the announced one (hash or number) or a body that is
  not the header's (tx root, uncle hash, withdrawals root) gets that peer dropped; a
  timeout or empty answer only moves on to the next announcer (5 s each, as geth).
- **eth/68 NewBlock** (``enqueue``): the block goes straight to the import queue (the
  handler has checked its body against its header).
- **eth/69 BlockRangeUpdate** (``notify_range``): eth/69 has no block propagation; a peer
  whose announced head is 1..32 blocks ahead of ours is asked for the missing headers
  (one reverse request from that head), then their bodies, and those blocks are queued.
  Further ahead is the downloader's job (the handler wakes the syncer).
- **Import queue**: blocks are imported lowest first once their parent is ours. As in
  geth, a block whose header verifies is propagated at once (NewBlock to √N eth/68 peers),
  imported, then announced to the rest; a header that fails verification drops the peer
  that sent it, while a failed import is only logged.

``AnnounceTracker`` and ``BlockQueue`` hold the bookkeeping without I/O; ``BlockFetcher``
is the asyncio side the handler calls.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ethnode.consensus.engine import FutureBlockError
from ethnode.core.errors import InvalidBlockError
from ethnode.core.execution.api import ExecutionError
from ethnode.core.types.block import Block, body_mismatch, empty_body, has_empty_body
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.peer import RequestError
from ethnode.eth.protocols.eth.protocol import BlockAnnouncement, BlockRange
from ethnode.logctx import kv
from ethnode.p2p.disconnect import DiscReason

log = logging.getLogger("ethnode.eth.fetcher.block_fetcher")

ARRIVE_TIMEOUT = 0.5  # seconds before an announced block is fetched; geth arriveTimeout
GATHER_SLACK = 0.1  # announcements this close to due are fetched together; geth gatherSlack
FETCH_TIMEOUT = 5.0  # seconds per header or body request; geth fetchTimeout
MAX_UNCLE_DIST = 7  # blocks behind our head still worth having; geth maxUncleDist
MAX_QUEUE_DIST = 32  # blocks ahead of our head we queue; geth maxQueueDist
HASH_LIMIT = 256  # outstanding announcements per peer; geth hashLimit
BLOCK_LIMIT = 64  # queued blocks per peer; geth blockLimit


def useful_distance(number: int, head: int) -> bool:
    """Near enough to our head to fetch or queue (geth's -maxUncleDist..maxQueueDist window)."""
    return -MAX_UNCLE_DIST <= number - head <= MAX_QUEUE_DIST


@dataclass(frozen=True)
class _Announce:
    peer: Any
    number: int
    time: float


class AnnounceTracker:
    """Which hashes were announced, by whom and when; which are due for fetching."""

    def __init__(self, *, arrive_timeout: float = ARRIVE_TIMEOUT, hash_limit: int = HASH_LIMIT) -> None:
        self.arrive_timeout = arrive_timeout
        self.hash_limit = hash_limit
        self._announced: dict[bytes, list[_Announce]] = {}
        self._fetching: set[bytes] = set()
        self._counts: Counter[bytes] = Counter()

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._announced or block_hash in self._fetching

    def count(self, peer_id: bytes) -> int:
        return self._counts[peer_id]

    def add(self, peer: Any, block_hash: bytes, number: int, now: float) -> bool:
        """Note an announcement; False if ignored (being fetched, repeated, or over the peer's limit)."""
        if block_hash in self._fetching or self._counts[peer.id] >= self.hash_limit:
            return False
        entries = self._announced.setdefault(block_hash, [])
        if any(a.peer.id == peer.id for a in entries):
            return False
        entries.append(_Announce(peer, number, now))
        self._counts[peer.id] += 1
        return True

    def next_due(self) -> float | None:
        """When the oldest waiting announcement is due, or None."""
        if not self._announced:
            return None
        return min(entries[0].time for entries in self._announced.values()) + self.arrive_timeout

    def due(self, now: float) -> list[tuple[bytes, int, list[Any]]]:
        """Announcements to fetch now: (hash, number, announcers in random order); they move to fetching."""
        out = []
        for block_hash, entries in list(self._announced.items()):
            if now - entries[0].time < self.arrive_timeout - GATHER_SLACK:
                continue
            del self._announced[block_hash]
            self._release(entries)
            self._fetching.add(block_hash)
            peers = [a.peer for a in entries]
            random.shuffle(peers)
            out.append((block_hash, entries[0].number, peers))
        return out

    def forget(self, block_hash: bytes) -> None:
        self._release(self._announced.pop(block_hash, []))
        self._fetching.discard(block_hash)

    def drop_peer(self, peer_id: bytes) -> None:
        for block_hash, entries in list(self._announced.items()):
            kept = [a for a in entries if a.peer.id != peer_id]
            if len(kept) != len(entries):
                self._release([a for a in entries if a.peer.id == peer_id])
                if kept:
                    self._announced[block_hash] = kept
                else:
                    del self._announced[block_hash]

    def _release(self, entries: Sequence[_Announce]) -> None:
        for a in entries:
            self._counts[a.peer.id] -= 1
            if self._counts[a.peer.id] <= 0:
                del self._counts[a.peer.id]


class BlockQueue:
    """Fetched or propagated blocks waiting for import, lowest number first."""

    def __init__(self, *, block_limit: int = BLOCK_LIMIT) -> None:
        self.block_limit = block_limit
        self._blocks: dict[bytes, tuple[Any, Block]] = {}
        self._counts: Counter[bytes] = Counter()

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._blocks

    def push(self, peer: Any, block: Block, head: int) -> bool:
        """Queue ``block`` from ``peer``; False if known, too far from ``head`` or over the peer's limit."""
        if block.hash in self._blocks or not useful_distance(block.number, head):
            return False
        if self._counts[peer.id] >= self.block_limit:
            return False
        self._blocks[block.hash] = (peer, block)
        self._counts[peer.id] += 1
        return True

    def pop_ready(self, head: int) -> tuple[Any, Block] | None:
        """The lowest queued block no higher than ``head + 1``; stale ones are discarded on the way."""
        while self._blocks:
            block_hash, (peer, block) = min(self._blocks.items(), key=lambda kv: kv[1][1].number)
            if block.number > head + 1:
                return None
            self._remove(block_hash)
            if block.number + MAX_UNCLE_DIST < head:
                continue
            return peer, block
        return None

    def drop_peer(self, peer_id: bytes) -> None:
        for block_hash, (peer, _) in list(self._blocks.items()):
            if peer.id == peer_id:
                self._remove(block_hash)

    def _remove(self, block_hash: bytes) -> None:
        peer, _ = self._blocks.pop(block_hash)
        self._counts[peer.id] -= 1
        if self._counts[peer.id] <= 0:
            del self._counts[peer.id]


class BlockFetcherHost(Protocol):
    """What the fetcher asks of the handler: drop a peer, propagate a block, is a sync running."""

    @property
    def syncing(self) -> bool: ...

    def remove_peer(self, peer: Any, reason: DiscReason = DiscReason.USELESS_PEER) -> None: ...

    def broadcast_block(self, block: Block, propagate: bool) -> int: ...


class BlockFetcher:
    """The handler's ``block_fetcher``: announcements in, imported and propagated blocks out."""

    def __init__(
        self,
        chain: Any,
        handler: BlockFetcherHost | None,
        *,
        arrive_timeout: float = ARRIVE_TIMEOUT,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.chain = chain
        self.handler = handler
        self.fetch_timeout = fetch_timeout
        self.announces = AnnounceTracker(arrive_timeout=arrive_timeout)
        self.queue = BlockQueue()
        self._ranges: set[bytes] = set()  # eth/69 heads being fetched
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.imported = 0  # blocks this fetcher imported

    # --- the handler's hooks ------------------------------------------------------------

    def notify(self, peer: Any, announcements: Sequence[BlockAnnouncement]) -> None:
        """eth/68 NewBlockHashes."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        head = self.chain.current_block.number
        now = loop.time()
        for ann in announcements:
            if not useful_distance(ann.number, head) or ann.hash in self.queue:
                continue
            if self.chain.has_block(ann.hash, ann.number):
                continue
            self.announces.add(peer, ann.hash, ann.number, now)
        self._arm_timer()

    def enqueue(self, peer: Any, block: Block, td: int) -> None:
        """eth/68 NewBlock (its body already matches its header: the handler checked)."""
        if self._closed:
            return
        self.announces.forget(block.hash)
        if self.chain.has_block(block.hash, block.number):
            return
        if self.queue.push(peer, block, self.chain.current_block.number):
            self._process_queue()

    def notify_range(self, peer: Any, block_range: BlockRange) -> None:
        """eth/69 BlockRangeUpdate: fetch a head at most 32 blocks ahead of ours."""
        if self._closed:
            return
        head = self.chain.current_block.number
        gap = block_range.latest - head
        if not 0 < gap <= MAX_QUEUE_DIST or block_range.latest_hash in self._ranges:
            return
        if self.handler is not None and self.handler.syncing:
            return  # the downloader is on it
        if self.chain.get_header_by_hash(block_range.latest_hash) is not None:
            return
        self._ranges.add(block_range.latest_hash)
        self._spawn(self._fetch_range(peer, block_range.latest, block_range.latest_hash, gap), "eth-fetch-range")

    def drop(self, peer: Any) -> None:
        self.announces.drop_peer(peer.id)
        self.queue.drop_peer(peer.id)

    async def stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- fetching -----------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm_timer(self) -> None:
        due = self.announces.next_due()
        if due is None or self._closed:
            return
        if self._timer is not None:
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        for block_hash, number, peers in self.announces.due(asyncio.get_running_loop().time()):
            self._spawn(self._fetch_announced(block_hash, number, peers), "eth-fetch-block")
        self._arm_timer()

    def _drop_peer(self, peer: Any, reason: str) -> None:
        log.debug("Dropping peer from the block fetcher", extra=kv(peer=peer, reason=reason))
        self.drop(peer)
        self.handler.remove_peer(peer, DiscReason.USELESS_PEER)

    async def _fetch_announced(self, block_hash: bytes, number: int, peers: list[Any]) -> None:
        try:
            for peer in peers:
                if peer.closed:
                    continue
                if block_hash in self.queue or self.chain.has_block(block_hash, number):
                    return
                block = await self._fetch_block(peer, block_hash, number)
                if block is not None:
                    if self.queue.push(peer, block, self.chain.current_block.number):
                        self._process_queue()
                    return
        finally:
            self.announces.forget(block_hash)

    async def _fetch_block(self, peer: Any, block_hash: bytes, number: int) -> Block | None:
        """The announced block from ``peer``, checked; None if it has not got it (or lied)."""
        try:
            headers = await peer.request_headers(block_hash, 1, timeout=self.fetch_timeout)
        except RequestError as exc:
            log.debug("Block header fetch failed", extra=kv(peer=peer, err=exc))
            return None
        if not headers:
            return None
        header = headers[0]
        if header.hash != block_hash:
            self._drop_peer(peer, f"header 0x{header.hash.hex()[:12]} for 0x{block_hash.hex()[:12]}")
            return None
        if header.number != number:
            self._drop_peer(peer, f"invalid block number fetched: #{header.number}, announced #{number}")
            return None
        if has_empty_body(header):
            return Block.from_body(header, empty_body(header))
        try:
            bodies = await peer.request_bodies([block_hash], timeout=self.fetch_timeout)
        except RequestError as exc:
            log.debug("Block body fetch failed", extra=kv(peer=peer, err=exc))
            return None
        if not bodies:
            return None
        problem = body_mismatch(header, bodies[0])
        if problem is not None:
            self._drop_peer(peer, f"body of #{header.number} does not match its header: {problem}")
            return None
        return Block.from_body(header, bodies[0])

    async def _fetch_range(self, peer: Any, latest: int, latest_hash: bytes, gap: int) -> None:
        try:
            await self._fetch_range_blocks(peer, latest, latest_hash, gap)
        finally:
            self._ranges.discard(latest_hash)

    async def _fetch_range_blocks(self, peer: Any, latest: int, latest_hash: bytes, gap: int) -> None:
        try:
            headers = await peer.request_headers(latest_hash, gap, 0, True, timeout=self.fetch_timeout)
        except RequestError as exc:
            log.debug("Range fetch failed", extra=kv(peer=peer, err=exc))
            return
        if not headers:
            return
        if headers[0].hash != latest_hash or headers[0].number != latest:
            self._drop_peer(peer, f"announced head #{latest} 0x{latest_hash.hex()[:12]} served as #{headers[0].number}")
            return
        for child, parent in zip(headers, headers[1:], strict=False):
            if parent.number != child.number - 1 or child.parent_hash != parent.hash:
                self._drop_peer(peer, f"range headers do not link at #{child.number}")
                return
        chain = self.chain
        headers = [h for h in reversed(headers) if not chain.has_block(h.hash, h.number)]
        need = [h for h in headers if not has_empty_body(h)]
        bodies: dict[bytes, Any] = {}
        if need:
            try:
                got = await peer.request_bodies([h.hash for h in need], timeout=self.fetch_timeout)
            except RequestError as exc:
                log.debug("Range body fetch failed", extra=kv(peer=peer, err=exc))
                return
            for header, body in zip(need, got, strict=False):
                problem = body_mismatch(header, body)
                if problem is not None:
                    self._drop_peer(peer, f"body of #{header.number} does not match its header: {problem}")
                    return
                bodies[header.hash] = body
        head = chain.current_block.number
        for header in headers:
            body = empty_body(header) if has_empty_body(header) else bodies.get(header.hash)
            if body is None:
                break  # the answer stopped early; what follows cannot be imported yet
            self.queue.push(peer, Block.from_body(header, body), head)
        self._process_queue()

    # --- import -------------------------------------------------------------------------

    def _process_queue(self) -> None:
        chain = self.chain
        while not self._closed:
            item = self.queue.pop_ready(chain.current_block.number)
            if item is None:
                return
            peer, block = item
            if not chain.has_block(block.hash, block.number):
                self._import(peer, block)

    def _import(self, peer: Any, block: Block) -> None:
        chain = self.chain
        parent = chain.get_header(block.parent_hash, block.number - 1)
        if parent is None or not chain.has_block(parent.hash, parent.number):
            log.debug("Unknown parent of propagated block #%d 0x%s", block.number, block.hash.hex()[:12])
            return
        propagate = True
        try:
            chain.engine.verify_header(chain, block.header, parent)
        except FutureBlockError:
            propagate = False  # geth: a weird future block is neither failed nor propagated
        except EthnodeError as exc:
            self._drop_peer(peer, f"propagated block #{block.number} failed verification: {exc}")
            return
        if propagate:
            self.handler.broadcast_block(block, True)
        before = chain.current_block.hash
        try:
            chain.insert_chain([block])
        except InvalidBlockError as exc:
            log.debug("Propagated block import failed: %s", exc)
            return
        except ExecutionError as exc:  # this node cannot execute it: keep the peer, say why once per block
            log.warning("Propagated block not imported", extra=kv(number=block.number, hash=block.hash, err=exc))
            return
        self.imported += 1
        self.handler.broadcast_block(block, False)
        if chain.current_block.hash != before:  # the chain posted ChainHeadEvent
            log.info("Imported propagated block number=%d hash=0x%s", block.number, block.hash.hex()[:12])


__all__ = [
    "BlockFetcher", "AnnounceTracker", "BlockQueue", "useful_distance", "ARRIVE_TIMEOUT", "GATHER_SLACK",
    "FETCH_TIMEOUT", "MAX_UNCLE_DIST", "MAX_QUEUE_DIST", "HASH_LIMIT", "BLOCK_LIMIT",
]
