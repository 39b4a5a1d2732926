"""A peer's outstanding requests (geth ``p2p/tracker`` with the eth dispatcher's matching).

Each request gets a random 64-bit id and a future. A response settles the request with
its id when the code and the item count fit (anything else is a protocol violation: a
response nobody asked for, of the wrong kind, or with more items than asked). A request
whose caller stopped waiting stays tracked for 5 minutes, so a late answer is dropped
quietly rather than punished, as in geth.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.protocol import ProtocolViolation

TRACKER_TIMEOUT = 300.0  # seconds a request stays answerable; geth tracker timeout 5 min
MAX_TRACKED_REQUESTS = 10000  # pending requests per peer; geth maxTrackedPackets


class RequestError(EthnodeError):
    """A request to a peer did not get its answer."""


class RequestTimeoutError(RequestError):
    """No answer within the caller's timeout (the peer is not dropped for it here)."""


class PeerDroppedError(RequestError):
    """The peer ended before answering."""


@dataclass(slots=True)
class _Pending:
    want: int  # response code
    size: int  # items asked for
    sent: float  # loop time
    future: asyncio.Future[Any]


class RequestTracker:
    """Pending requests of one peer, oldest first."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def open(self, want: int, size: int) -> tuple[int, asyncio.Future[Any]]:
        """A new request expecting response code ``want`` with at most ``size`` items: (id, future)."""
        loop = asyncio.get_running_loop()
        self.expire(loop.time())
        if len(self._pending) >= MAX_TRACKED_REQUESTS:
            raise RequestError("request limit reached")
        rid = secrets.randbits(64)
        while rid in self._pending:
            rid = secrets.randbits(64)
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[rid] = _Pending(want, size, loop.time(), future)
        return rid, future

    def forget(self, rid: int) -> None:
        """The request never went out (its send failed)."""
        self._pending.pop(rid, None)

    def expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            rid, entry = next(iter(pending.items()))
            if now - entry.sent < TRACKER_TIMEOUT:
                break
            del pending[rid]
            if not entry.future.done():
                entry.future.cancel()

    def fulfil(self, code: int, name: str, request_id: int, count: int) -> asyncio.Future[Any] | None:
        """Settle the request answered by a response (geth tracker.Fulfil); ProtocolViolation if none fits.

        Returns the waiting future, or None when the requester stopped waiting.
        """
        entry = self._pending.get(request_id)
        if entry is None:
            raise ProtocolViolation(f"{name}: no matching request (id {request_id})")
        if entry.want != code:
            raise ProtocolViolation(f"{name}: wrong response code for request (id {request_id})")
        if count > entry.size:
            raise ProtocolViolation(f"{name}: response is larger than request allows ({count} > {entry.size})")
        del self._pending[request_id]
        return None if entry.future.done() else entry.future

    def fail_all(self, error: BaseException) -> None:
        """The peer ended: every waiting caller gets ``error``."""
        for entry in self._pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)
                entry.future.exception()  # the awaiting caller still sees it; nobody else must
        self._pending.clear()


__all__ = [
    "RequestTracker", "RequestError", "RequestTimeoutError", "PeerDroppedError", "TRACKER_TIMEOUT",
    "MAX_TRACKED_REQUESTS",
]
