"""The tx fetcher's scheduler (geth ``eth/fetcher/tx_fetcher.go``), sans-IO.

Announced txs (NewPooledTransactionHashes) go through geth's three stages:

1. **waiting**: for up to 500 ms, since most txs arrive in full from some other peer
   anyway (the ⌈√N⌉ broadcast) and a request would be wasted;
2. **queued**: announced by these peers, not yet asked for;
3. **fetching**: asked from one peer (at most one request in flight per peer, ≤ 256 hashes
   / 128 KiB by announced size), the other announcers kept as alternates. A peer that does
   not answer within 5 s is asked nothing more, and its hashes go back to the queue for
   the alternates; hashes a reply left out are retried from the alternates too.

Each hash is in exactly one stage. Deliveries (fetched, broadcast, or late) clear every
trace of their hashes and are compared with what each announcer said: a different type,
or a size off by more than 8 bytes (geth's tolerance for RLP vs consensus encodings), and
that announcer is dropped.

The scheduler does no I/O and reads no clock: every call takes ``now`` (seconds) and
returns actions, ``Fetch(peer, hashes)`` and ``DropPeer(peer, reason)``; ``next_deadline()``
says when ``tick`` should run next. ``txfetcher_glue.TxFetcher`` runs it on asyncio. Peers
are any hashable keys.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ethnode.core.types.transaction import BLOB_TX_TYPE

TX_ARRIVE_TIMEOUT = 0.5  # s an announced tx may take to arrive in full before it is requested; geth txArriveTimeout
TX_GATHER_SLACK = 0.1  # s: deadlines this close together are handled in one go; geth txGatherSlack
TX_FETCH_TIMEOUT = 5.0  # s a peer has to answer a request; geth txFetchTimeout
MAX_TX_ANNOUNCES = 4096  # hashes tracked per peer (waiting + queued + fetching); geth maxTxAnnounces
MAX_TX_RETRIEVALS = 256  # hashes per GetPooledTransactions; geth maxTxRetrievals
MAX_TX_RETRIEVAL_SIZE = 128 * 1024  # announced bytes per request; geth maxTxRetrievalSize
MAX_TX_UNDERPRICED_SET_SIZE = 32768  # hashes remembered as too cheap; geth maxTxUnderpricedSetSize
MAX_TX_UNDERPRICED_TIMEOUT = 300.0  # s a too-cheap tx is not re-requested; geth maxTxUnderpricedTimeout 5 min
TX_SIZE_TOLERANCE = 8  # bytes a delivered size may differ from the announced one; geth's relaxation

Peer = Hashable


class TxMeta(NamedTuple):
    """What an announcement says about a tx, or what a delivered tx turned out to be.

    eth/72 announces and delivers blob txs without their blobs, earlier versions with them:
    a delivered blob tx carries both sizes (``blobless``), an announcement says which one it
    states (``sparse``), and each announcer is judged by its own (geth ``sizeForVersion``).
    """

    kind: int  # tx type
    size: int  # bytes on the wire with every blob (a blob tx with its whole sidecar)
    blobless: int | None = None  # delivered blob txs: the size without the blobs
    sparse: bool = False  # announcements: by an eth/72 peer, whose blob tx sizes leave the blobs out


class Fetch(NamedTuple):
    """Send GetPooledTransactions(``hashes``) to ``peer`` and report the reply with ``deliver``."""

    peer: Peer
    hashes: tuple[bytes, ...]


class DropPeer(NamedTuple):
    """Disconnect ``peer``: it lied in an announcement or delivered something invalid."""

    peer: Peer
    reason: str


Action = Fetch | DropPeer


@dataclass(slots=True)
class _Request:
    hashes: list[bytes] | None  # None: timed out; the peer stays busy until it answers or leaves
    time: float
    stolen: set[bytes] | None = None  # delivered by someone else meanwhile: never reschedule


@dataclass(frozen=True)
class FetchTimings:
    """The scheduler's clock constants (tests shorten them; the defaults are geth's)."""

    arrive_timeout: float = TX_ARRIVE_TIMEOUT
    gather_slack: float = TX_GATHER_SLACK
    fetch_timeout: float = TX_FETCH_TIMEOUT


class TxFetchScheduler:
    """geth's TxFetcher state machine without its goroutine: waitlist, queue, requests, alternates."""

    def __init__(self, timings: FetchTimings | None = None, *, rng: random.Random | None = None) -> None:
        self.timings = timings or FetchTimings()
        self._rng = rng or random.Random()
        # Stage 1: waiting for a broadcast.
        self.waitlist: dict[bytes, dict[Peer, None]] = {}  # hash -> announcers (ordered set)
        self.waittime: dict[bytes, float] = {}  # hash -> when it entered the waitlist
        self.waitslots: dict[Peer, dict[bytes, TxMeta]] = {}  # peer -> its waiting announcements
        self._wait_deadline: float | None = None  # may be early (then tick recomputes), never late
        # Stage 2: queued for retrieval (announces is shared with stage 3).
        self.announces: dict[Peer, dict[bytes, TxMeta]] = {}
        self.announced: dict[bytes, set[Peer]] = {}  # hash -> peers that can serve it
        # Stage 3: being fetched.
        self.fetching: dict[bytes, Peer] = {}
        self.requests: dict[Peer, _Request] = {}
        self.alternates: dict[bytes, set[Peer]] = {}  # hash -> other peers to try if the request fails
        self.underpriced: OrderedDict[bytes, float] = OrderedDict()  # hash -> when it was found too cheap

    # --- inputs ------------------------------------------------------------------------

    def notify(
        self, peer: Peer, types: bytes | Sequence[int], sizes: Sequence[int], hashes: Sequence[bytes], now: float,
        *, sparse: bool = False,
    ) -> list[Action]:
        """An announcement of txs the caller does not have yet (filter the pool's first);
        ``sparse``: from an eth/72 peer."""
        used = len(self.waitslots.get(peer, ())) + len(self.announces.get(peer, ()))
        room = MAX_TX_ANNOUNCES - used
        if room <= 0:
            return []  # geth: announcements past the cap are dropped (and metered)
        old_peer = peer in self.announces
        blob = False
        count = 0
        for kind, size, tx_hash in zip(types, sizes, hashes, strict=True):
            if self.underpriced and self.is_underpriced(tx_hash, now):
                continue
            if count >= room:
                break
            count += 1
            entry = TxMeta(kind, size, None, sparse)
            alternates = self.alternates.get(tx_hash)
            if alternates is not None:  # being fetched: one more place to get it from
                alternates.add(peer)
                self.announces.setdefault(peer, {})[tx_hash] = entry
                continue
            queued = self.announced.get(tx_hash)
            if queued is not None:  # queued from another peer: track this one too
                queued.add(peer)
                self.announces.setdefault(peer, {})[tx_hash] = entry
                continue
            waiting = self.waitlist.get(tx_hash)
            if waiting is not None:
                # A second announcement from the same peer is ignored, so a peer cannot
                # flip-flop the metadata it is judged against.
                if peer not in waiting:
                    waiting[peer] = None
                    self.waitslots.setdefault(peer, {})[tx_hash] = entry
                continue
            self.waitlist[tx_hash] = {peer: None}
            if kind == BLOB_TX_TYPE:
                # Blob txs are never broadcast in full: no point waiting for one.
                blob = True
                start = now - self.timings.arrive_timeout
            else:
                start = now
            self.waittime[tx_hash] = start
            self.waitslots.setdefault(peer, {})[tx_hash] = entry
            deadline = start + self.timings.arrive_timeout
            if self._wait_deadline is None or deadline < self._wait_deadline:
                self._wait_deadline = deadline
        actions: list[Action] = []
        if blob:
            actions += self.tick(now)
        if not old_peer and self.announces.get(peer):
            actions += self._schedule([peer], now)
        return actions

    def deliver(
        self,
        peer: Peer,
        hashes: Sequence[bytes],
        metas: Sequence[TxMeta],
        now: float,
        *,
        reply: bool,
        violation: str | None = None,
    ) -> list[Action]:
        """Txs arrived from ``peer``: a reply to our request (``reply``), or a broadcast.

        ``hashes``/``metas``: every tx delivered, pooled or not, with its real type and size.
        ``violation``: the delivery broke a rule (an invalid blob proof): drop the sender.
        """
        actions: list[Action] = []
        liars: dict[Peer, str] = {}
        for tx_hash, got in zip(hashes, metas, strict=True):
            if tx_hash in self.waitlist:
                for p in self.waitlist.pop(tx_hash):
                    slots = self.waitslots[p]
                    self._judge(p, tx_hash, slots.pop(tx_hash), got, liars)
                    if not slots:
                        del self.waitslots[p]
                del self.waittime[tx_hash]
                continue
            origins = self.announced.pop(tx_hash, None)
            alternates = self.alternates.pop(tx_hash, None)
            for group in (origins, alternates):
                for p in group or ():
                    slots = self.announces.get(p)
                    if slots is None or tx_hash not in slots:
                        continue
                    self._judge(p, tx_hash, slots.pop(tx_hash), got, liars)
                    if not slots:
                        del self.announces[p]
            origin = self.fetching.pop(tx_hash, None)
            if origin is not None and (origin != peer or not reply):
                # Someone else delivered it (or the fetched peer broadcast it): its own
                # request must not put it back in the queue.
                req = self.requests[origin]
                if req.stolen is None:
                    req.stolen = set()
                req.stolen.add(tx_hash)
        if not self.waittime:
            self._wait_deadline = None
        if reply:
            actions += self._settle_reply(peer, hashes, now)
        for p, why in liars.items():
            actions.append(DropPeer(p, why))
        if violation is not None and peer not in liars:
            actions.append(DropPeer(peer, violation))
        return actions

    def drop(self, peer: Peer, now: float) -> list[Action]:
        """``peer`` is gone: forget it, and hand what it was fetching to the alternates."""
        for tx_hash in self.waitslots.pop(peer, {}):
            waiting = self.waitlist[tx_hash]
            del waiting[peer]
            if not waiting:
                del self.waitlist[tx_hash]
                del self.waittime[tx_hash]
        if not self.waittime:
            self._wait_deadline = None
        req = self.requests.pop(peer, None)
        if req is not None:
            for tx_hash in req.hashes or ():
                if req.stolen is not None and tx_hash in req.stolen:
                    continue
                alternates = self.alternates.pop(tx_hash, set())
                alternates.discard(peer)
                if alternates:
                    self.announced[tx_hash] = alternates
                self.fetching.pop(tx_hash, None)
        for tx_hash in self.announces.pop(peer, {}):
            for index in (self.announced, self.alternates):
                peers = index.get(tx_hash)
                if peers is not None:
                    peers.discard(peer)
                    if not peers:
                        del index[tx_hash]
        return self._schedule(None, now) if req is not None else []

    def tick(self, now: float) -> list[Action]:
        """Move expired waits to the queue, time out slow requests, and request what can be."""
        t = self.timings
        actives: dict[Peer, None] = {}
        if self._wait_deadline is not None and now >= self._wait_deadline - t.gather_slack:
            expired = [h for h, start in self.waittime.items() if now - start + t.gather_slack > t.arrive_timeout]
            for tx_hash in expired:
                peers = self.waitlist.pop(tx_hash)
                del self.waittime[tx_hash]
                self.announced[tx_hash] = set(peers)
                for p in peers:
                    slots = self.waitslots[p]
                    self.announces.setdefault(p, {})[tx_hash] = slots.pop(tx_hash)
                    if not slots:
                        del self.waitslots[p]
                    actives[p] = None
            self._recompute_wait_deadline()
        timed_out = False
        for p, req in self.requests.items():
            if req.hashes is None or now - req.time + t.gather_slack <= t.fetch_timeout:
                continue
            timed_out = True
            slots = self.announces.get(p, {})
            for tx_hash in req.hashes:
                if req.stolen is not None and tx_hash in req.stolen:
                    continue
                alternates = self.alternates.pop(tx_hash, None)
                if alternates is not None:
                    alternates.discard(p)  # never ask a slow peer again for these
                    if alternates:
                        self.announced[tx_hash] = alternates
                slots.pop(tx_hash, None)
                self.fetching.pop(tx_hash, None)
            if not slots:
                self.announces.pop(p, None)
            req.hashes = None
        if timed_out:
            return self._schedule(None, now)
        return self._schedule(list(actives), now) if actives else []

    def mark_underpriced(self, hashes: Iterable[bytes], now: float) -> None:
        """The pool refused these as too cheap: ignore their announcements for a while."""
        under = self.underpriced
        for tx_hash in hashes:
            under[tx_hash] = now
            under.move_to_end(tx_hash)
            if len(under) > MAX_TX_UNDERPRICED_SET_SIZE:
                under.popitem(last=False)

    def is_underpriced(self, tx_hash: bytes, now: float) -> bool:
        """Found too cheap in the last 5 minutes (an older entry is forgotten here)."""
        since = self.underpriced.get(tx_hash)
        if since is None:
            return False
        if now - since > MAX_TX_UNDERPRICED_TIMEOUT:
            del self.underpriced[tx_hash]
            return False
        return True

    # --- timers --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``tick`` has something to do: the first wait to expire or request to time out."""
        deadline = self._wait_deadline
        timeout = self.timings.fetch_timeout
        for req in self.requests.values():
            if req.hashes is not None and (deadline is None or req.time + timeout < deadline):
                deadline = req.time + timeout
        return deadline

    def _recompute_wait_deadline(self) -> None:
        self._wait_deadline = min(self.waittime.values()) + self.timings.arrive_timeout if self.waittime else None

    # --- scheduling ------------------------------------------------------------------------

    def _schedule(self, whitelist: list[Peer] | None, now: float) -> list[Action]:
        """Give every idle peer with queued announcements one request (geth scheduleFetches)."""
        actives = list(self.announces) if whitelist is None else whitelist
        if len(actives) > 1:
            self._rng.shuffle(actives)  # geth ranges over a map: no announcer is always first
        actions: list[Action] = []
        for p in actives:
            if p in self.requests:
                continue
            slots = self.announces.get(p)
            if not slots:
                continue
            hashes: list[bytes] = []
            size = 0
            # Dict order is arrival order (geth sorts by a sequence number to the same end:
            # an account's txs requested in nonce order, so the pool does not see gaps).
            for tx_hash, meta in slots.items():
                if tx_hash in self.fetching:
                    continue
                self.fetching[tx_hash] = p
                self.alternates[tx_hash] = self.announced.pop(tx_hash)
                hashes.append(tx_hash)
                if len(hashes) >= MAX_TX_RETRIEVALS:
                    break
                size += meta.size
                if size >= MAX_TX_RETRIEVAL_SIZE:
                    break
            if hashes:
                self.requests[p] = _Request(hashes, now)
                actions.append(Fetch(p, tuple(hashes)))
        return actions

    def _settle_reply(self, peer: Peer, delivered_hashes: Sequence[bytes], now: float) -> list[Action]:
        """Close ``peer``'s request: requeue what it left out (geth's direct-delivery branch)."""
        req = self.requests.pop(peer, None)
        if req is None:
            return []  # not ours to settle (geth logs "Unexpected transaction delivery")
        delivered = set(delivered_hashes)
        asked = req.hashes or []
        # Hashes before the last delivered one were skipped on purpose: the peer does not
        # have them. Those after may have been cut by the reply size limit: retry them from
        # anyone, this peer included. Nothing delivered: assume it has none of them.
        cutoff = len(asked)
        for i, tx_hash in enumerate(asked):
            if tx_hash in delivered:
                cutoff = i
        slots = self.announces.get(peer)
        for i, tx_hash in enumerate(asked):
            if req.stolen is not None and tx_hash in req.stolen:
                continue
            if tx_hash not in delivered:
                alternates = self.alternates.get(tx_hash)
                if i < cutoff:
                    if alternates is not None:
                        alternates.discard(peer)
                    if slots is not None:
                        slots.pop(tx_hash, None)
                if alternates:
                    self.announced[tx_hash] = alternates
            self.alternates.pop(tx_hash, None)
            self.fetching.pop(tx_hash, None)
        if slots is not None and not slots:
            del self.announces[peer]
        return self._schedule(None, now)

    def _judge(self, peer: Peer, tx_hash: bytes, said: TxMeta, got: TxMeta, liars: dict[Peer, str]) -> None:
        if said.kind != got.kind:
            liars.setdefault(peer, f"announced tx 0x{tx_hash.hex()} as type {said.kind}, it is type {got.kind}")
            return
        size = got.blobless if said.sparse and got.blobless is not None else got.size
        if abs(said.size - size) > TX_SIZE_TOLERANCE:
            liars.setdefault(peer, f"announced tx 0x{tx_hash.hex()} as {said.size} bytes, it is {size}")

    # --- introspection -------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """geth's fetcher gauges: peers and hashes per stage."""
        return {
            "waiting_peers": len(self.waitslots), "waiting_hashes": len(self.waitlist),
            "queueing_peers": len(self.announces) - len(self.requests), "queueing_hashes": len(self.announced),
            "fetching_peers": len(self.requests), "fetching_hashes": len(self.fetching),
            "underpriced": len(self.underpriced),
        }

    def check(self) -> None:
        """Assert the invariants (tests): each hash in one stage, the indexes agreeing both ways."""
        stages = [set(self.waitlist), set(self.announced), set(self.alternates)]
        assert not (stages[0] & stages[1]) and not (stages[0] & stages[2]) and not (stages[1] & stages[2]), stages
        assert set(self.waittime) == stages[0]
        assert set(self.fetching) == stages[2], (set(self.fetching), stages[2])
        for tx_hash, peers in self.waitlist.items():
            assert peers, tx_hash
            for p in peers:
                assert tx_hash in self.waitslots[p]
        for p, slots in self.waitslots.items():
            assert slots, p
            for tx_hash in slots:
                assert p in self.waitlist[tx_hash]
        for index in (self.announced, self.alternates):
            for tx_hash, peers in index.items():
                for p in peers:
                    assert tx_hash in self.announces.get(p, {}), (p, tx_hash)
        for p, slots in self.announces.items():
            assert slots, p
            for tx_hash in slots:
                assert p in self.announced.get(tx_hash, ()) or p in self.alternates.get(tx_hash, ()), (p, tx_hash)
        for tx_hash, p in self.fetching.items():
            req = self.requests[p]
            assert req.hashes is not None and tx_hash in req.hashes


__all__ = [
    "TxFetchScheduler", "FetchTimings", "TxMeta", "Fetch", "DropPeer", "Action", "TX_ARRIVE_TIMEOUT",
    "TX_GATHER_SLACK", "TX_FETCH_TIMEOUT", "MAX_TX_ANNOUNCES", "MAX_TX_RETRIEVALS", "MAX_TX_RETRIEVAL_SIZE",
    "MAX_TX_UNDERPRICED_SET_SIZE", "MAX_TX_UNDERPRICED_TIMEOUT", "TX_SIZE_TOLERANCE",
]
