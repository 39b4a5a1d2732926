"""Header download: a skeleton from the peer we sync from, filled across all peers (sans-IO).

geth's skeleton sync (``fetchHeaders`` + ``fillHeaderSkeleton``): the master peer is asked
for every 192nd header (up to 128 of them, one request), which pins the chain; each gap of
192 headers ending at a skeleton header is a fill task any peer may serve, one request
each. A fill must be 192 headers numbered from the task's start, each the parent of the
next, linking to the header before the gap and ending at the skeleton header. Less than
192 fewer than the remote head means fewer than 192 remain: the master sends those
directly (the "tail"), and the last one must be the head it announced.

Whose fault a bad fill is: wrong numbers or broken links are the filler's lie. A fill that
is a chain in itself but does not meet the skeleton could be either side's: the task then
goes to the master alone, and if the master's own fill matches its skeleton, the
contradicting fillers are the liars once the master's chain imports (the master
contradicting itself is the master's lie).
An empty or short fill only means the peer lacks those blocks; the task is not offered
to it again.

The scheduler never does I/O: ``master_request``/``reserve`` return what to ask,
``deliver``/``fail`` take what happened, ``take`` hands out verified headers in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ethnode.core.types.header import Header
from ethnode.eth.downloader.ancestor import MAX_HEADER_FETCH
from ethnode.eth.downloader.errors import BadResponseError

MAX_SKELETON_SIZE = 128  # skeleton headers per request (fills per round); geth MaxSkeletonSize
MAX_QUEUED_HEADERS = 32 * 1024  # headers fetched but not yet handed on; geth maxQueuedHeaders

SKELETON = "skeleton"
TAIL = "tail"
FILL = "fill"


@dataclass(frozen=True)
class HeaderRequest:
    """One GetBlockHeaders to send: by number, ``amount`` headers ``skip`` apart."""

    origin: int
    amount: int
    skip: int
    kind: str  # SKELETON and TAIL go to the master; FILL to anyone
    task: int = -1  # the fill task it serves


@dataclass
class _Task:
    id: int
    start: int
    count: int
    parent_hash: bytes  # what the first header's parent must be
    end_hash: bytes  # what the last header must hash to
    headers: list[Header] | None = None
    source: bytes | str | None = None
    inflight: bytes | str | None = None
    lacking: set[bytes | str] = field(default_factory=set)
    disputed: set[bytes | str] = field(default_factory=set)  # fills that missed the skeleton


class HeaderScheduler:
    """The headers from ``anchor`` (exclusive, ours) to ``target`` (the master's head)."""

    def __init__(
        self,
        master_id: bytes | str,
        anchor_number: int,
        anchor_hash: bytes,
        target_number: int,
        target_hash: bytes,
        *,
        fill_size: int = MAX_HEADER_FETCH,
        skeleton_size: int = MAX_SKELETON_SIZE,
        max_queued: int = MAX_QUEUED_HEADERS,
    ) -> None:
        self.master_id = master_id
        self.target_number = target_number
        self.target_hash = target_hash
        self.fill_size = fill_size
        self.skeleton_size = skeleton_size
        self.max_queued = max_queued
        self._next = anchor_number + 1  # first number no round has covered yet
        self._next_parent = anchor_hash
        self._tasks: dict[int, _Task] = {}  # in block order (created in increasing order)
        self._ids = itertools.count()
        self._master_pending: HeaderRequest | None = None

    # --- state --------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Every header up to the target was handed out by ``take``."""
        return self._next > self.target_number and not self._tasks and self._master_pending is None

    @property
    def queued(self) -> int:
        """Headers scheduled or fetched but not yet taken."""
        return sum(t.count for t in self._tasks.values())

    def stuck(self, peer_ids: set[bytes | str]) -> str | None:
        """Why no peer in ``peer_ids`` can serve an open task, or None."""
        for task in self._tasks.values():
            if task.headers is not None or task.inflight is not None:
                continue
            able = {self.master_id} if task.disputed else peer_ids
            if not (able & peer_ids) - task.lacking:
                return f"no peer serves headers #{task.start}..#{task.start + task.count - 1}"
        return None

    # --- requests -----------------------------------------------------------------------

    def master_request(self, backlog: int = 0) -> HeaderRequest | None:
        """The next skeleton (or tail) request for the master, if one is due.

        ``backlog``: headers handed on but not yet imported, counted against the queue limit.
        """
        if self._master_pending is not None or self._next > self.target_number:
            return None
        remaining = self.target_number - self._next + 1
        if remaining >= self.fill_size:
            n = min(self.skeleton_size, remaining // self.fill_size)
            if self.queued + backlog + n * self.fill_size > self.max_queued and (self._tasks or backlog):
                return None
            req = HeaderRequest(self._next + self.fill_size - 1, n, self.fill_size - 1, SKELETON)
        else:
            if self.queued + backlog + remaining > self.max_queued and (self._tasks or backlog):
                return None
            req = HeaderRequest(self._next, remaining, 0, TAIL)
        self._master_pending = req
        return req

    def reserve(self, peer_id: bytes | str) -> HeaderRequest | None:
        """The lowest open fill task ``peer_id`` may serve, or None."""
        for task in self._tasks.values():
            if task.headers is not None or task.inflight is not None or peer_id in task.lacking:
                continue
            if task.disputed and peer_id != self.master_id:
                continue
            task.inflight = peer_id
            return HeaderRequest(task.start, task.count, 0, FILL, task.id)
        return None

    def fail(self, peer_id: bytes | str, req: HeaderRequest) -> None:
        """The request got no answer (timeout, peer gone): its work is open again."""
        if req.kind == FILL:
            task = self._tasks.get(req.task)
            if task is not None and task.inflight == peer_id:
                task.inflight = None
        elif self._master_pending == req:
            self._master_pending = None

    # --- deliveries ---------------------------------------------------------------------

    def deliver(self, peer_id: bytes | str, req: HeaderRequest, headers: Sequence[Header]) -> list[bytes | str]:
        """Judge a response; ``BadResponseError`` if ``peer_id`` lied. Returns the peers whose
        fills contradicted the skeleton this master fill confirms: liars, unless the master's
        chain turns out invalid on import (so the caller settles it then)."""
        if req.kind == FILL:
            return self._deliver_fill(peer_id, req, headers)
        if self._master_pending != req:
            raise ValueError("not the pending master request")
        self._master_pending = None
        if len(headers) != req.amount:
            raise BadResponseError(peer_id, f"{len(headers)} {req.kind} headers for {req.amount} asked, "
                                            f"head #{self.target_number} announced")
        step = req.skip + 1
        for i, header in enumerate(headers):
            if header.number != req.origin + i * step:
                raise BadResponseError(peer_id, f"{req.kind} header #{header.number} at {i}, "
                                                f"want #{req.origin + i * step}")
        last = headers[-1]
        if last.number == self.target_number and last.hash != self.target_hash:
            raise BadResponseError(peer_id, f"header #{last.number} is not the announced head "
                                            f"0x{self.target_hash.hex()}")
        if req.kind == TAIL:
            self._check_links(peer_id, headers, self._next_parent, "tail")
            self._new_task(self._next, len(headers), self._next_parent, last.hash, list(headers), peer_id)
        else:
            parent = self._next_parent
            for i, header in enumerate(headers):
                self._new_task(self._next + i * self.fill_size, self.fill_size, parent, header.hash)
                parent = header.hash
        self._next = last.number + 1
        self._next_parent = last.hash
        return []

    def _deliver_fill(self, peer_id: bytes | str, req: HeaderRequest, headers: Sequence[Header]) -> list[bytes | str]:
        task = self._tasks.get(req.task)
        if task is None or task.inflight != peer_id:
            return []  # a late answer to a task re-assigned meanwhile
        task.inflight = None
        for i, header in enumerate(headers):
            if header.number != task.start + i:
                raise BadResponseError(peer_id, f"fill header #{header.number} at {i}, want #{task.start + i}")
            if i and header.parent_hash != headers[i - 1].hash:
                raise BadResponseError(peer_id, f"fill header #{header.number} does not link to its predecessor")
        if len(headers) < task.count:
            task.lacking.add(peer_id)  # it does not have them (all of them): ask someone else
            return []
        if headers[0].parent_hash != task.parent_hash or headers[-1].hash != task.end_hash:
            if peer_id == self.master_id:
                raise BadResponseError(peer_id, f"fill #{task.start}..#{task.start + task.count - 1} contradicts "
                                                "its own skeleton")
            task.disputed.add(peer_id)  # it or the master lies; the master's own fill will tell
            return []
        task.headers = list(headers)
        task.source = peer_id
        return sorted(task.disputed, key=str) if peer_id == self.master_id else []

    def _check_links(self, peer_id: bytes | str, headers: Sequence[Header], parent: bytes, what: str) -> None:
        for header in headers:
            if header.parent_hash != parent:
                raise BadResponseError(peer_id, f"{what} header #{header.number} does not link to its predecessor")
            parent = header.hash

    def _new_task(self, start: int, count: int, parent: bytes, end: bytes, headers: list[Header] | None = None,
                  source: bytes | str | None = None) -> None:
        task = _Task(next(self._ids), start, count, parent, end, headers, source)
        self._tasks[task.id] = task

    # --- output -------------------------------------------------------------------------

    def take(self) -> list[tuple[list[Header], bytes | str]]:
        """Filled tasks from the lowest on, in order, with who served each: a linked chain."""
        out = []
        while self._tasks:
            task = next(iter(self._tasks.values()))
            if task.headers is None:
                break
            del self._tasks[task.id]
            assert task.source is not None
            out.append((task.headers, task.source))
        return out


__all__ = ["HeaderScheduler", "HeaderRequest", "MAX_SKELETON_SIZE", "MAX_QUEUED_HEADERS", "SKELETON", "TAIL", "FILL"]
