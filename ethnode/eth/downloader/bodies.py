"""Body download across all peers, results in block order (geth ``queue`` for bodies), sans-IO.

Headers arrive in order from the header scheduler. A header that commits to an empty
body (no txs, no uncles, no withdrawals) is complete at once, as in geth. The rest wait
to be reserved: up to 128 per request (geth MaxBlockFetch), lowest numbers first, and only
within 8192 blocks of the oldest unfinished one (geth blockCacheMaxItems), so a fast peer
cannot fill memory far ahead of a slow one.

A response lists bodies in request order and may stop early (the 2 MiB reply limit, or
blocks the peer lacks): each body is matched to its header by the roots the header
commits to (tx root, uncle hash, withdrawals root); a body that does not match is a lie.
What a response leaves out goes back to the queue, and an empty response marks those
blocks as lacking at that peer.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ethnode.core.types.block import Block, Body, body_mismatch, empty_body, has_empty_body
from ethnode.core.types.header import Header
from ethnode.eth.downloader.errors import BadResponseError

MAX_BLOCK_FETCH = 128  # bodies per request; geth MaxBlockFetch
BLOCK_CACHE_MAX_ITEMS = 8192  # blocks in flight or waiting for import; geth blockCacheMaxItems


@dataclass(frozen=True)
class BodyRequest:
    """One GetBlockBodies: these headers' hashes, in this order."""

    id: int
    headers: tuple[Header, ...]

    @property
    def hashes(self) -> list[bytes]:
        return [h.hash for h in self.headers]


@dataclass
class _Item:
    header: Header
    header_source: bytes | str
    body: Body | None = None
    body_source: bytes | str | None = None
    inflight: bytes | str | None = None
    lacking: set[bytes | str] = field(default_factory=set)


@dataclass(frozen=True)
class FetchResult:
    """A complete block and who served its header and its body (for blame on import)."""

    block: Block
    header_source: bytes | str
    body_source: bytes | str | None  # None: an empty body nobody had to send


class BodyScheduler:
    """Bodies for the headers ``add``-ed, handed out complete and in order by ``take``."""

    def __init__(self, *, cache_limit: int = BLOCK_CACHE_MAX_ITEMS) -> None:
        self.cache_limit = cache_limit
        self._items: OrderedDict[int, _Item] = OrderedDict()  # by number, in order
        self._waiting: list[int] = []  # heap of numbers without a body and not in flight
        self._ids = itertools.count()
        self._requests: dict[int, tuple[bytes | str, BodyRequest]] = {}
        self.fetched = 0  # bodies delivered and accepted

    def __len__(self) -> int:
        """Blocks added but not yet taken."""
        return len(self._items)

    def add(self, headers: Sequence[Header], source: bytes | str) -> None:
        """Queue headers (a linked run following the previous ones) for their bodies."""
        for header in headers:
            item = _Item(header, source)
            if has_empty_body(header):
                item.body = empty_body(header)
            else:
                heapq.heappush(self._waiting, header.number)
            self._items[header.number] = item

    def stuck(self, peer_ids: set[bytes | str]) -> str | None:
        """Why no peer in ``peer_ids`` can serve a waiting body, or None."""
        for number in self._waiting:
            item = self._items[number]
            if not peer_ids - item.lacking:
                return f"no peer serves the body of #{number}"
        return None

    def reserve(self, peer_id: bytes | str, limit: int = MAX_BLOCK_FETCH) -> BodyRequest | None:
        """Up to ``limit`` of the lowest waiting bodies ``peer_id`` does not lack, or None."""
        if not self._waiting:
            return None
        first = next(iter(self._items))
        picked: list[Header] = []
        skipped: list[int] = []
        while self._waiting and len(picked) < limit:
            number = self._waiting[0]
            if number >= first + self.cache_limit:
                break
            heapq.heappop(self._waiting)
            item = self._items[number]
            if peer_id in item.lacking:
                skipped.append(number)
                continue
            item.inflight = peer_id
            picked.append(item.header)
        for number in skipped:
            heapq.heappush(self._waiting, number)
        if not picked:
            return None
        req = BodyRequest(next(self._ids), tuple(picked))
        self._requests[req.id] = (peer_id, req)
        return req

    def fail(self, peer_id: bytes | str, req: BodyRequest) -> None:
        """No answer: the request's bodies wait again."""
        if self._requests.pop(req.id, None) is None:
            return
        for header in req.headers:
            self._requeue(header.number, peer_id)

    def _requeue(self, number: int, peer_id: bytes | str, lacks: bool = False) -> None:
        item = self._items.get(number)
        if item is None or item.body is not None or item.inflight != peer_id:
            return
        item.inflight = None
        if lacks:
            item.lacking.add(peer_id)
        heapq.heappush(self._waiting, number)

    def deliver(self, peer_id: bytes | str, req: BodyRequest, bodies: Sequence[Body]) -> None:
        """Match bodies to the request's headers in order; ``BadResponseError`` on a lie.

        The bodies before a bad one are kept (they matched their headers).
        """
        if self._requests.pop(req.id, None) is None:
            return
        if len(bodies) > len(req.headers):
            for header in req.headers:
                self._requeue(header.number, peer_id)
            raise BadResponseError(peer_id, f"{len(bodies)} bodies for {len(req.headers)} asked")
        try:
            for header, body in zip(req.headers, bodies, strict=False):
                problem = body_mismatch(header, body)
                if problem is not None:
                    raise BadResponseError(peer_id, f"body of #{header.number} does not match its header: {problem}")
                item = self._items.get(header.number)
                if item is not None and item.body is None and item.inflight == peer_id:
                    item.body, item.body_source, item.inflight = body, peer_id, None
                    self.fetched += 1
        finally:
            for header in req.headers[len(bodies):] if bodies else req.headers:
                self._requeue(header.number, peer_id, lacks=not bodies)
            if bodies:  # a bad body: the ones from it on wait again too
                for header in req.headers[: len(bodies)]:
                    self._requeue(header.number, peer_id)

    def take(self, limit: int) -> list[FetchResult]:
        """Up to ``limit`` complete blocks from the oldest on, in order."""
        out = []
        items = self._items
        while items and len(out) < limit:
            number, item = next(iter(items.items()))
            if item.body is None:
                break
            del items[number]
            out.append(FetchResult(Block.from_body(item.header, item.body), item.header_source, item.body_source))
        return out


__all__ = ["BodyScheduler", "BodyRequest", "FetchResult", "MAX_BLOCK_FETCH", "BLOCK_CACHE_MAX_ITEMS", "has_empty_body",
           "empty_body", "body_mismatch"]
