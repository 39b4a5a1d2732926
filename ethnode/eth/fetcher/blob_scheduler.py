"""The blob fetcher's scheduler (geth v1.17.10 ``eth/fetcher/blob_fetcher.go``), sans-IO.

eth/72 (EIP-8070) fetches a blob tx's blob data as cells, apart from the tx itself. For
each newly announced blob tx the node decides once, at random:

- **full fetch** (probability ``fetch_probability``, at least 15 %, or always when the
  custody holds 64 cells or more): ask announcers of full availability (mask = all 128
  cells) for the 64 data cells, from which the blobs follow;
- **partial fetch** otherwise: wait until ``AVAILABILITY_THRESHOLD`` (2) peers announced
  full availability, then ask them for the cells of our custody only (the consensus
  client sets it through ``engine_forkchoiceUpdatedV4``). A tx that does not reach the
  threshold within 2 s turns into a full fetch from the peers that did announce it.
  Announcers of partial availability overlapping our custody are sources as well.

Requests go out at most one batch per peer at a time (one GetCells per distinct mask), up
to 128 txs, within a per-peer token bucket of cells (256, refilled 9 per second); a
request unanswered for 5 s is given up and its cells asked elsewhere. Delivered cells are
merged per peer and handed on once a tx's cells are complete (``AddCells``); whoever takes
them verifies them against the KZG proofs and drops the peers whose cells fail.

The scheduler does no I/O and reads no clock: every call takes ``now`` and returns
actions; ``next_deadline()`` says when ``tick`` should run; the random choice comes from
the ``rng`` it is given, so tests replay it exactly.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ethnode.core.types.custody import CUSTODY_ALL, CUSTODY_DATA, DATA_PER_BLOB, custody_indices, custody_of

DEFAULT_FETCH_PROBABILITY = 15  # percent of blob txs fetched in full; geth DefaultFetchProbability (the floor)
AVAILABILITY_THRESHOLD = 2  # full-availability announcers a partial fetch waits for; geth availabilityThreshold
AVAILABILITY_TIMEOUT = 2.0  # s before a partial fetch turns full; geth blobAvailabilityTimeout
FETCH_TIMEOUT = 5.0  # s a peer has to answer GetCells; geth blobFetchTimeout
GATHER_SLACK = 0.1  # s; geth txGatherSlack
MAX_PAYLOAD_RETRIEVALS = 128  # txs per GetCells batch; geth maxPayloadRetrievals
MAX_PAYLOAD_ANNOUNCES = 4096  # blob txs tracked per peer; geth maxPayloadAnnounces
MAX_CELL_REQUESTS = 256  # a peer's cell token bucket; geth maxCellRequests
REFILL_INTERVAL = 1.0 / 9  # s per token; geth refillInterval

Peer = Hashable


class FetchCells(NamedTuple):
    """Send GetCells(``hashes``, ``mask``) to ``peer``; report the reply with ``deliver``."""

    peer: Peer
    hashes: tuple[bytes, ...]
    mask: int


class CellsComplete(NamedTuple):
    """Every cell ``custody`` of tx ``tx_hash`` arrived: verify and pool (geth AddCells)."""

    tx_hash: bytes
    deliveries: dict[Peer, PeerCells]
    custody: int


class DropPeer(NamedTuple):
    peer: Peer
    reason: str


Action = FetchCells | CellsComplete | DropPeer


@dataclass
class PeerCells:
    """The cells one peer delivered for one tx: blob-major, ``indices`` ascending (geth PeerCellDelivery)."""

    cells: list[bytes]
    indices: list[int]

    def merge(self, cells: Sequence[bytes], indices: Sequence[int]) -> None:
        """Fold a later delivery of other indices in, keeping blob-major, ascending order."""
        n1, n2 = len(self.indices), len(indices)
        if n1 == 0 or len(self.cells) % n1:
            raise ValueError("corrupted cell delivery")
        blobs = len(self.cells) // n1
        if len(cells) != blobs * n2:
            raise ValueError("inconsistent cell count across deliveries")
        for index in indices:
            pos = bisect_left(self.indices, index)
            if pos < n1 and self.indices[pos] == index:
                raise ValueError(f"duplicate cell index across deliveries: {index}")
        order = sorted([(ix, 0, k) for k, ix in enumerate(self.indices)] + [(ix, 1, k) for k, ix in enumerate(indices)])
        merged: list[bytes] = []
        for b in range(blobs):
            for _, source, k in order:
                merged.append(self.cells[b * n1 + k] if source == 0 else cells[b * n2 + k])
        self.cells = merged
        self.indices = [ix for ix, _, _ in order]


@dataclass
class _FetchStatus:
    fetching: int = 0  # cells asked for (or already here)
    fetched: list[int] = field(default_factory=list)
    deliveries: dict[Peer, PeerCells] = field(default_factory=dict)


@dataclass
class _CellRequest:
    hashes: list[bytes]
    mask: int
    time: float


class BlobFetchScheduler:
    """geth's BlobFetcher state machine without its goroutine."""

    def __init__(
        self,
        custody: int = CUSTODY_ALL,
        *,
        rng: random.Random | None = None,
        fetch_probability: int = DEFAULT_FETCH_PROBABILITY,
    ) -> None:
        self.custody = custody  # geth starts at all cells (eager) until the consensus client says otherwise
        self.rng = rng or random.Random()
        self.fetch_probability = max(fetch_probability, DEFAULT_FETCH_PROBABILITY)
        self.full: set[bytes] = set()
        self.partial: set[bytes] = set()
        # Buffer 1: partial fetches waiting for enough full-availability announcements.
        self.waitlist: dict[bytes, dict[Peer, None]] = {}
        self.waittime: dict[bytes, float] = {}
        self.waitslots: dict[Peer, set[bytes]] = {}
        # Buffer 2: fetch sources per peer (hash -> (arrival seq, cells it can give)).
        self.announces: dict[Peer, dict[bytes, tuple[int, int]]] = {}
        # Stage 3: in flight.
        self.fetches: dict[bytes, _FetchStatus] = {}
        self.requests: dict[Peer, list[_CellRequest]] = {}
        self.alternates: dict[bytes, dict[Peer, int]] = {}
        self.tokens: dict[Peer, list[float]] = {}  # peer -> [amount, last refill]
        self._seq = 0

    # --- inputs ----------------------------------------------------------------------------

    def update_custody(self, custody: int) -> None:
        """The consensus client's custody cells (engine_forkchoiceUpdatedV4)."""
        self.custody = custody

    def notify(self, peer: Peer, hashes: Sequence[bytes], mask: int, now: float) -> list[Action]:
        """Blob txs announced by ``peer`` with availability ``mask`` (filter out those already held)."""
        used = len(self.waitslots.get(peer, ())) + len(self.announces.get(peer, ()))
        if used >= MAX_PAYLOAD_ANNOUNCES:
            return []
        hashes = list(hashes)[: MAX_PAYLOAD_ANNOUNCES - used]
        old_peer = peer in self.announces
        reschedule: dict[Peer, None] = {}
        for tx_hash in hashes:
            mine = self.announces.get(peer)
            if mine is not None and tx_hash in mine:
                continue  # a re-announcement cannot change the cells offered
            if tx_hash not in self.full and tx_hash not in self.partial:
                eager = self.custody.bit_count() >= DATA_PER_BLOB
                if self.rng.randrange(100) < self.fetch_probability or eager:
                    self.full.add(tx_hash)
                else:
                    self.partial.add(tx_hash)
                    self.waitlist[tx_hash] = {}
                    self.waittime[tx_hash] = now
            if tx_hash in self.full:
                if mask != CUSTODY_ALL:
                    continue  # a full fetch needs a peer that has every cell
                self._announce(peer, tx_hash, CUSTODY_DATA)
                reschedule[peer] = None
                continue
            waiting = self.waitlist.get(tx_hash)
            if waiting is not None:
                if mask != CUSTODY_ALL:
                    continue  # only full availability counts towards the threshold
                waiting[peer] = None
                self.waitslots.setdefault(peer, set()).add(tx_hash)
                if len(waiting) >= AVAILABILITY_THRESHOLD:
                    for p in waiting:
                        self._announce(p, tx_hash, self.custody)
                        self._leave_waitslot(p, tx_hash)
                        reschedule[p] = None
                    del self.waitlist[tx_hash], self.waittime[tx_hash]
                continue
            overlap = mask & self.custody
            if overlap:
                self._announce(peer, tx_hash, overlap)
                reschedule[peer] = None
        for tx_hash in hashes:
            if tx_hash in self.full:
                self._forget_if_sourceless(tx_hash)
        if not old_peer and self.announces.get(peer):
            return self._schedule(reschedule, now)
        return []

    def deliver(
        self, peer: Peer, hashes: Sequence[bytes], cells: Sequence[Sequence[bytes]], mask: int, now: float
    ) -> list[Action]:
        """A Cells reply from ``peer``: per hash, its cells blob-major (already shape-checked)."""
        reqs = self.requests.get(peer, [])
        request = next((r for r in reqs if r.mask == mask and any(h in r.hashes for h in hashes)), None)
        if request is None:
            return []  # cells nobody asked for (or asked for too long ago): ignored, as geth
        actions: list[Action] = []
        indices = custody_indices(mask)
        delivered = set(hashes)
        for tx_hash, tx_cells in zip(hashes, cells, strict=True):
            status = self.fetches.get(tx_hash)
            if tx_hash not in request.hashes or status is None:
                continue
            if indices:
                prev = status.deliveries.get(peer)
                if prev is not None:
                    try:
                        prev.merge(tx_cells, indices)
                    except ValueError as exc:
                        actions.append(DropPeer(peer, str(exc)))
                        continue
                else:
                    status.deliveries[peer] = PeerCells(list(tx_cells), list(indices))
                status.fetched.extend(indices)
            self._forget_source(peer, tx_hash)
            if tx_hash in self.full:
                complete = len(status.fetched) >= DATA_PER_BLOB
            else:
                complete = sorted(status.fetched) == custody_indices(self.custody)
            if complete:
                actions.append(CellsComplete(tx_hash, status.deliveries, custody_of(status.fetched)))
                self._discard(tx_hash)
        reqs.remove(request)
        if not reqs:
            self.requests.pop(peer, None)
        # What the reply left out: before the last delivered hash, the peer does not have it.
        cutoff = len(request.hashes)
        for i, tx_hash in enumerate(request.hashes):
            if tx_hash in delivered:
                cutoff = i
        for i, tx_hash in enumerate(request.hashes):
            if tx_hash in delivered:
                continue
            if i < cutoff:
                self.alternates.get(tx_hash, {}).pop(peer, None)
                self._forget_announce(peer, tx_hash)
            status = self.fetches.get(tx_hash)
            if status is not None:
                status.fetching &= ~mask
        return actions + self._schedule(None, now)

    def drop(self, peer: Peer, now: float) -> list[Action]:
        """``peer`` is gone: forget it; what it was fetching goes to others, or is given up."""
        self.tokens.pop(peer, None)
        for tx_hash in self.waitslots.pop(peer, set()):
            waiting = self.waitlist.get(tx_hash)
            if waiting is None:
                continue
            waiting.pop(peer, None)
            if not waiting:
                del self.waitlist[tx_hash], self.waittime[tx_hash]
                self.partial.discard(tx_hash)
        for tx_hash in self.announces.pop(peer, {}):
            alts = self.alternates.get(tx_hash)
            if alts is not None:
                alts.pop(peer, None)
                if not alts:
                    del self.alternates[tx_hash]
        reqs = self.requests.pop(peer, None)
        if not reqs:
            return []
        for req in reqs:
            for tx_hash in req.hashes:
                status = self.fetches.get(tx_hash)
                if status is None:
                    continue
                status.fetching &= ~req.mask
                self.alternates.get(tx_hash, {}).pop(peer, None)
                if not self._recoverable(tx_hash):
                    self._discard(tx_hash)
        return self._schedule(None, now)

    def tick(self, now: float) -> list[Action]:
        """Turn partial fetches that waited too long into full ones; give up slow requests."""
        reschedule: dict[Peer, None] = {}
        for tx_hash, since in list(self.waittime.items()):
            if now - since + GATHER_SLACK <= AVAILABILITY_TIMEOUT:
                continue
            self.partial.discard(tx_hash)
            self.full.add(tx_hash)
            waiting = self.waitlist.pop(tx_hash)
            if not waiting:  # only partial announcers, ignored while waiting: nobody to fetch from
                del self.waittime[tx_hash]
                self._forget_if_sourceless(tx_hash)
                continue
            for p in waiting:
                self._announce(p, tx_hash, CUSTODY_DATA)
                self._leave_waitslot(p, tx_hash)
                reschedule[p] = None
            del self.waittime[tx_hash]
        actions = self._schedule(reschedule, now) if reschedule else []
        for peer, reqs in list(self.requests.items()):
            keep = []
            for req in reqs:
                if now - req.time + GATHER_SLACK <= FETCH_TIMEOUT:
                    keep.append(req)
                    continue
                for tx_hash in req.hashes:  # never ask this peer for them again
                    self._forget_announce(peer, tx_hash)
                    self.alternates.get(tx_hash, {}).pop(peer, None)
                    status = self.fetches.get(tx_hash)
                    if status is None:
                        continue
                    status.fetching &= ~req.mask
                    if not self._recoverable(tx_hash):
                        self._discard(tx_hash)
            if keep:
                self.requests[peer] = keep
            else:
                del self.requests[peer]
        return actions + self._schedule(None, now)

    def next_deadline(self) -> float | None:
        """When ``tick`` has something to do: the first wait or request to run out (those within
        ``GATHER_SLACK`` of it are handled in the same tick)."""
        times = [t + AVAILABILITY_TIMEOUT for t in self.waittime.values()]
        times += [r.time + FETCH_TIMEOUT for reqs in self.requests.values() for r in reqs]
        return min(times) if times else None

    def tracks(self, tx_hash: bytes) -> bool:
        return tx_hash in self.full or tx_hash in self.partial

    # --- internals ------------------------------------------------------------------------

    def _announce(self, peer: Peer, tx_hash: bytes, cells: int) -> None:
        self.announces.setdefault(peer, {})[tx_hash] = (self._seq, cells)
        self._seq += 1

    def _leave_waitslot(self, peer: Peer, tx_hash: bytes) -> None:
        slots = self.waitslots.get(peer)
        if slots is not None:
            slots.discard(tx_hash)
            if not slots:
                del self.waitslots[peer]

    def _forget_announce(self, peer: Peer, tx_hash: bytes) -> None:
        mine = self.announces.get(peer)
        if mine is not None:
            mine.pop(tx_hash, None)
            if not mine:
                del self.announces[peer]

    def _forget_source(self, peer: Peer, tx_hash: bytes) -> None:
        self._forget_announce(peer, tx_hash)
        alts = self.alternates.get(tx_hash)
        if alts is not None:
            alts.pop(peer, None)
            if not alts:
                del self.alternates[tx_hash]

    def _recoverable(self, tx_hash: bytes) -> bool:
        """Can the cells still missing come from the peers that announced them? (geth recoverable)"""
        status = self.fetches.get(tx_hash)
        covered = custody_of(status.fetched) if status is not None else 0
        for anns in self.announces.values():
            entry = anns.get(tx_hash)
            if entry is not None:
                covered |= entry[1]
        if tx_hash in self.full:
            return covered.bit_count() >= DATA_PER_BLOB
        return not self.custody & ~covered

    def _forget_if_sourceless(self, tx_hash: bytes) -> None:
        """Drop the decision on a tx nobody can serve, so announcements of hashes that are never
        fetched cannot pile up (geth keeps such decisions for ever); a later announcer starts over."""
        if tx_hash in self.fetches or tx_hash in self.waitlist:
            return
        if any(tx_hash in anns for anns in self.announces.values()):
            return
        self._discard(tx_hash)

    def _discard(self, tx_hash: bytes) -> None:
        for peer in [p for p, anns in self.announces.items() if tx_hash in anns]:
            self._forget_announce(peer, tx_hash)
        self.alternates.pop(tx_hash, None)
        self.fetches.pop(tx_hash, None)
        self.full.discard(tx_hash)
        self.partial.discard(tx_hash)

    def _consume(self, peer: Peer, n: int, now: float) -> bool:
        bucket = self.tokens.get(peer)
        if bucket is None:
            bucket = self.tokens[peer] = [float(MAX_CELL_REQUESTS), now]
        else:
            add = int((now - bucket[1]) / REFILL_INTERVAL)
            if add > 0:
                bucket[0] = min(float(MAX_CELL_REQUESTS), bucket[0] + add)
                bucket[1] += add * REFILL_INTERVAL
        if bucket[0] < n:
            return False
        bucket[0] -= n
        return True

    def _schedule(self, whitelist: Iterable[Peer] | None, now: float) -> list[Action]:
        """Request what idle peers can give (geth scheduleFetches); peers in arrival order of their hashes."""
        peers = list(self.announces) if whitelist is None else list(whitelist)
        actions: list[Action] = []
        for peer in peers:
            anns = self.announces.get(peer)
            if not anns or self.requests.get(peer):
                continue
            batch: dict[int, list[bytes]] = {}
            count = 0
            for tx_hash, (_, cells) in sorted(anns.items(), key=lambda kv: kv[1][0]):
                if not self._recoverable(tx_hash):
                    continue
                status = self.fetches.get(tx_hash)
                unfetched = cells if status is None else cells & ~status.fetching
                if unfetched and self._consume(peer, unfetched.bit_count(), now):
                    if status is None:
                        status = self.fetches[tx_hash] = _FetchStatus()
                    status.fetching |= unfetched
                    batch.setdefault(unfetched, []).append(tx_hash)
                    count += 1
                self.alternates.setdefault(tx_hash, {})[peer] = cells
                if count >= MAX_PAYLOAD_RETRIEVALS:
                    break
            if batch:
                self.requests[peer] = [_CellRequest(hashes, mask, now) for mask, hashes in batch.items()]
                actions += [FetchCells(peer, tuple(hashes), mask) for mask, hashes in batch.items()]
        return actions


__all__ = [
    "BlobFetchScheduler", "FetchCells", "CellsComplete", "DropPeer", "PeerCells", "Action",
    "DEFAULT_FETCH_PROBABILITY", "AVAILABILITY_THRESHOLD", "AVAILABILITY_TIMEOUT", "FETCH_TIMEOUT",
    "MAX_PAYLOAD_RETRIEVALS", "MAX_PAYLOAD_ANNOUNCES", "MAX_CELL_REQUESTS", "REFILL_INTERVAL",
]
