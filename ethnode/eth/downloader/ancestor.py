"""Finding the common ancestor with the peer we sync from (geth ``findAncestor``), sans-IO.

First a span search: up to 12 headers sampled below the remote head, down to just under
our own head; the highest one we hold is the ancestor. If none is ours (we are far
behind, or on a fork), a binary search with one header per request between the
genesis (or the fork floor) and the remote head. Every answer is checked against what
was asked: wrong numbers, the wrong count or an empty span reply mean the peer lied.

``AncestorSearch`` only says which request to send next and judges the answers; the
downloader sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ethnode.core.types.header import Header
from ethnode.eth.downloader.errors import BadResponseError

MAX_HEADER_FETCH = 192  # headers per request; geth MaxHeaderFetch
MAX_FORK_ANCESTRY = 90_000  # deepest reorg a sync may cause; geth params.FullImmutabilityThreshold


def request_span(remote_height: int, local_height: int) -> tuple[int, int, int, int]:
    """(from, count, skip, max) of the span request (geth calculateRequestSpan).

    The samples end one below the remote head (so a peer one or two blocks ahead still
    lands a sample on our head) and reach down to just under our head, at most 12 of
    them (``MAX_HEADER_FETCH // 16``), 2..16 blocks apart.
    """
    max_count = MAX_HEADER_FETCH // 16
    request_head = max(remote_height - 1, 0)
    request_bottom = max(local_height - 1, 0)
    total_span = request_head - request_bottom
    span = min(max(1 + total_span // max_count, 2), 16)
    count = min(max(1 + total_span // span, 2), max_count)
    start = max(request_head - (count - 1) * span, 0)
    return start, count, span - 1, start + (count - 1) * span


@dataclass(frozen=True)
class HeaderQuery:
    """A GetBlockHeaders by number, as the schedulers ask for it."""

    origin: int
    amount: int
    skip: int = 0


class AncestorSearch:
    """geth's findAncestor as a state machine: ``next_request`` / ``deliver`` until ``done``.

    ``is_known(hash, number)`` says whether we hold that block with its body (geth
    HasBlock in full sync); ``genesis_hash`` is the fallback ancestor.
    """

    def __init__(
        self,
        peer_id: bytes | str,
        remote_height: int,
        local_height: int,
        is_known: Callable[[bytes, int], bool],
        genesis_hash: bytes,
        *,
        max_fork_ancestry: int = MAX_FORK_ANCESTRY,
    ) -> None:
        self.peer_id = peer_id
        self.remote_height = remote_height
        self.is_known = is_known
        self.genesis_hash = genesis_hash
        self.floor = local_height - max_fork_ancestry if local_height >= max_fork_ancestry else -1
        self.number: int | None = None  # the ancestor, once found
        self.hash: bytes | None = None
        self.requests = 0
        self._span: tuple[int, int, int, int] | None = None
        self._bisect: tuple[int, int] | None = None  # (start, end) of the binary search
        self._bisect_hash = genesis_hash
        if local_height == 0:
            self._finish(0, genesis_hash)  # only the genesis is ours, and the handshake matched it
        else:
            self._span = request_span(remote_height, local_height)

    @property
    def done(self) -> bool:
        return self.number is not None

    def next_request(self) -> HeaderQuery | None:
        if self.done:
            return None
        if self._span is not None:
            start, count, skip, _ = self._span
            return HeaderQuery(start, count, skip)
        assert self._bisect is not None
        start, end = self._bisect
        return HeaderQuery((start + end) // 2, 1)

    def deliver(self, headers: Sequence[Header]) -> None:
        """Judge the answer to ``next_request()``; ``BadResponseError`` if it cannot be right."""
        self.requests += 1
        if self._span is not None:
            self._deliver_span(headers)
        else:
            self._deliver_bisect(headers)

    def _deliver_span(self, headers: Sequence[Header]) -> None:
        assert self._span is not None
        start, count, skip, top = self._span
        if not headers:
            raise BadResponseError(self.peer_id, "empty head header set")  # geth errEmptyHeaderSet
        if len(headers) > count:
            raise BadResponseError(self.peer_id, f"{len(headers)} headers for {count} asked")
        for i, header in enumerate(headers):
            want = start + i * (skip + 1)
            if header.number != want:
                raise BadResponseError(self.peer_id, f"head headers broke chain ordering: #{header.number} at {i}, "
                                                     f"want #{want}")
        self._span = None
        for header in reversed(headers):
            if header.number <= top and self.is_known(header.hash, header.number):
                if header.number <= self.floor:
                    raise BadResponseError(self.peer_id, f"invalid ancestor #{header.number} (floor #{self.floor})")
                self._finish(header.number, header.hash)
                return
        self._bisect = (max(self.floor, 0), self.remote_height)
        self._settle_bisect()

    def _deliver_bisect(self, headers: Sequence[Header]) -> None:
        assert self._bisect is not None
        start, end = self._bisect
        check = (start + end) // 2
        if len(headers) != 1:
            raise BadResponseError(self.peer_id, f"{len(headers)} headers for a single-header ancestor probe")
        header = headers[0]
        if header.number != check:
            raise BadResponseError(self.peer_id, f"ancestor probe #{check} answered with #{header.number}")
        if self.is_known(header.hash, header.number):
            self._bisect = (check, end)
            self._bisect_hash = header.hash
        else:
            self._bisect = (start, check)
        self._settle_bisect()

    def _settle_bisect(self) -> None:
        assert self._bisect is not None
        start, end = self._bisect
        if start + 1 < end:
            return
        if start <= self.floor:
            raise BadResponseError(self.peer_id, f"invalid ancestor #{start} (floor #{self.floor})")
        self._finish(start, self._bisect_hash if start > 0 else self.genesis_hash)

    def _finish(self, number: int, block_hash: bytes) -> None:
        self.number, self.hash = number, block_hash
        self._span = self._bisect = None


__all__ = ["AncestorSearch", "HeaderQuery", "request_span", "MAX_HEADER_FETCH", "MAX_FORK_ANCESTRY"]
