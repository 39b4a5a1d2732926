"""An iterative Kademlia lookup: ask the closest unasked nodes, α at a time, until none is left.

Transport-agnostic: ``query(node)`` is any coroutine returning the nodes that node
reported (the UDP service sends FindNode; the benchmark walks an in-memory network),
and must not raise: a failed query simply returns nothing. The result is the
``result_size`` closest nodes seen, whether or not they answered (as in geth).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable, Iterable

from ethnode.logctx import kv
from ethnode.p2p.discover.table import ALPHA, BUCKET_SIZE
from ethnode.p2p.enode import Node

log = logging.getLogger("ethnode.p2p.discover")

QueryFunc = Callable[[Node], Awaitable[list[Node]]]


class Lookup:
    """One lookup towards ``target`` (a 32-byte id), seeded with ``initial`` nodes."""

    def __init__(
        self, target: bytes, self_id: bytes, initial: Iterable[Node], query: QueryFunc,
        *, alpha: int = ALPHA, result_size: int = BUCKET_SIZE,
    ) -> None:
        self.target = target
        self._t = int.from_bytes(target, "big")
        self.query = query
        self.alpha = alpha
        self.result_size = result_size
        self.asked: set[bytes] = {self_id}  # never query ourselves
        self.seen: set[bytes] = {self_id}
        self.result: list[Node] = []
        self._keys: list[int] = []  # distances of ``result``, for bisect
        self.queries = 0
        self._add(initial)

    def _add(self, nodes: Iterable[Node]) -> None:
        for n in nodes:
            if n.id in self.seen:
                continue
            self.seen.add(n.id)
            d = n.id_int ^ self._t
            i = bisect.bisect_right(self._keys, d)
            if i >= self.result_size:
                continue
            self._keys.insert(i, d)
            self.result.insert(i, n)
            if len(self.result) > self.result_size:
                self._keys.pop()
                self.result.pop()

    async def run(self) -> list[Node]:
        pending: set[asyncio.Task[list[Node]]] = set()
        try:
            while True:
                for n in self.result:
                    if len(pending) >= self.alpha:
                        break
                    if n.id not in self.asked:
                        self.asked.add(n.id)
                        self.queries += 1
                        pending.add(asyncio.ensure_future(self.query(n)))
                if not pending:
                    return list(self.result)
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if exc is not None:  # a query broke its contract; the lookup goes on without it
                        log.warning("Lookup query failed", extra=kv(err=f"{type(exc).__name__}: {exc}"))
                        continue
                    self._add(task.result())
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


__all__ = ["Lookup", "QueryFunc"]
