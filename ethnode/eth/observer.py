"""Observer mode: follow a network's head by headers alone, for a node that cannot execute it.

A node joining mainnet on an empty datadir holds the genesis state and nothing else: it
cannot import the chain (no history here, and no consensus client naming the head), but it
can still handshake, serve what it has, watch transactions and know where the network is.
``HeadObserver`` does the last part: every head a peer names (Status, eth/69
BlockRangeUpdate, eth/68 NewBlockHashes and NewBlock) is fetched as a header from that
peer, checked against the hash it was announced by, and linked to the headers already
observed by parent hash (up to ``LINK_DEPTH`` ancestors are fetched to close a gap; a longer
gap re-anchors the observed chain at the new header). Nothing is executed or stored: the
headers live in memory (the newest ``KEEP_HEADERS``) and the observed head is reported
through ``progress()`` as geth's ``highestBlock`` (``eth_syncing``), while ``eth_blockNumber``
stays the block the node holds, as a geth node that has not synced would answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError
from ethnode.eth.downloader.downloader import SyncProgress
from ethnode.logctx import kv

log = logging.getLogger("ethnode.eth.observer")

LINK_DEPTH = 64  # ancestors fetched at most to link an announced head (one GetBlockHeaders)
KEEP_HEADERS = 1024  # observed headers kept in memory, oldest dropped first
ANNOUNCE_QUEUE = 256  # announced heads waiting to be fetched; the oldest is dropped when full
FETCH_TIMEOUT = 5.0  # seconds for one header request


class HeadObserver:
    """The network's head as peers name it, its headers linked by parent hash, nothing executed."""

    def __init__(
        self,
        local_head: Callable[[], Header],
        *,
        on_head: Callable[[Header], None] | None = None,
        drop_peer: Callable[[Any], None] | None = None,
        keep: int = KEEP_HEADERS,
        fetch_timeout: float = FETCH_TIMEOUT,
        peers: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        """``peers``: the eth peers to ask for a head only its hash is known of (``sync_to``)."""
        self.local_head = local_head
        self.peers = peers
        self.on_head = on_head
        self.drop_peer = drop_peer
        self.keep = keep
        self.fetch_timeout = fetch_timeout
        self.headers: OrderedDict[bytes, Header] = OrderedDict()
        self.head: Header | None = None
        self.reanchors = 0  # times a gap was too long to link and the observed chain restarted
        self._pending: OrderedDict[bytes, tuple[Any, int | None]] = OrderedDict()
        self._wake = asyncio.Event()
        self._head_moved = asyncio.Event()
        self._starting = local_head().number

    # --- what peers say ----------------------------------------------------------------------

    def note(self, peer: Any, block_hash: bytes, number: int | None = None) -> None:
        """A peer names a block as its head (``number`` unknown for an eth/68 Status)."""
        if block_hash in self.headers or block_hash in self._pending:
            return
        if number is not None and self.head is not None and number <= self.head.number:
            return
        if len(self._pending) >= ANNOUNCE_QUEUE:
            self._pending.popitem(last=False)
        self._pending[block_hash] = (peer, number)
        self._wake.set()

    def note_many(self, peer: Any, announced: Sequence[tuple[bytes, int]]) -> None:
        best = max(announced, key=lambda a: a[1], default=None)  # the newest is enough: it links the rest
        if best is not None:
            self.note(peer, best[0], best[1])

    async def add_header(self, peer: Any, header: Header) -> None:
        """A header that came whole (eth/68 NewBlock): link it without fetching it."""
        await self._link(peer, header)

    # --- sync progress (eth_syncing, the sync display) ---------------------------------------

    @property
    def syncing(self) -> bool:
        return self.head is not None and self.head.number > self.local_head().number

    def progress(self) -> SyncProgress:
        current = self.local_head().number
        highest = max(self.head.number if self.head is not None else 0, current)
        return SyncProgress(self._starting, current, highest)

    def sync_to(self, head_hash: bytes) -> None:
        """A consensus client names a head (Engine API): fetch it from a peer like an announced one."""
        peers = list(self.peers()) if self.peers is not None else []
        if not peers:
            log.debug("No peer to fetch the head named by the consensus layer from hash=0x%s", head_hash.hex())
            return
        self.note(peers[0], head_hash)

    async def wait_head(self, number: int) -> Header:
        """Return once the observed head is at ``number`` or beyond (tests and tools)."""
        while self.head is None or self.head.number < number:
            self._head_moved.clear()
            await self._head_moved.wait()
        return self.head

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            block_hash, (peer, number) = self._pending.popitem(last=False)
            try:
                await self._fetch(peer, block_hash, number)
            except (EthnodeError, TimeoutError) as exc:
                log.debug("Could not fetch announced head hash=0x%s: %s", block_hash.hex(), exc)

    async def _fetch(self, peer: Any, block_hash: bytes, number: int | None) -> None:
        if block_hash in self.headers:
            return
        got = await peer.request_headers(block_hash, 1, timeout=self.fetch_timeout)
        if not got:
            return  # not served (pruned, or the peer moved on): someone else will name a head
        header = got[0]
        if header.hash != block_hash or (number is not None and header.number != number):
            log.debug("Peer answered a head request with another header peer=%r", peer)
            self._drop(peer)
            return
        await self._link(peer, header)

    async def _link(self, peer: Any, header: Header) -> None:
        head = self.head
        if head is None:
            self._anchor(header)
            return
        if header.hash in self.headers or header.number <= head.number:
            return  # not ahead of what we observe: no reorg below the tip is tracked
        chain = [header]
        cur = header
        while cur.parent_hash not in self.headers:
            # Walk back until a header we hold: the gap to our head, more if the new head forks
            # below it (a reorg), never more than LINK_DEPTH.
            if header.number - head.number > LINK_DEPTH or len(chain) > LINK_DEPTH:
                log.info("Observed head jumped, re-anchoring", extra=kv(
                    number=header.number, hash=header.hash, previous=head.number))
                self.reanchors += 1
                self.headers.clear()
                self._anchor(header)
                return
            ancestors = await peer.request_headers(cur.parent_hash, LINK_DEPTH + 1 - len(chain), reverse=True,
                                                   timeout=self.fetch_timeout)
            if not ancestors:
                return
            for parent in ancestors:
                if not _is_parent(parent, cur):
                    self._drop(peer)
                    return
                chain.append(parent)
                cur = parent
                if cur.parent_hash in self.headers:
                    break
        if not _is_parent(self.headers[cur.parent_hash], cur):
            self._drop(peer)
            return
        if self.head is not None and header.number <= self.head.number:
            return  # another peer's announcement got there first while we fetched
        for h in reversed(chain):
            self._store(h)
        self._set_head(header)

    def _anchor(self, header: Header) -> None:
        self._store(header)
        self._set_head(header)

    def _store(self, header: Header) -> None:
        self.headers[header.hash] = header
        while len(self.headers) > self.keep:
            self.headers.popitem(last=False)

    def _set_head(self, header: Header) -> None:
        self.head = header
        self._head_moved.set()
        log.info("Observed chain head", extra=kv(number=header.number, hash=header.hash))
        if self.on_head is not None:
            self.on_head(header)

    def _drop(self, peer: Any) -> None:
        if self.drop_peer is not None:
            self.drop_peer(peer)


def _is_parent(parent: Header, child: Header) -> bool:
    """The links a header-only observer can check: hash, number and time order (geth's header rules)."""
    return child.parent_hash == parent.hash and child.number == parent.number + 1 and child.time > parent.time


__all__ = ["HeadObserver", "LINK_DEPTH", "KEEP_HEADERS", "ANNOUNCE_QUEUE"]
