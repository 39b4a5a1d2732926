"""The crawl loop (geth ``cmd/devp2p/crawl.go``), plus a dial of every live node for the census.

Sources yield nodes (discv4 random walks, and the input set being revalidated); workers
take them one at a time: a node checked less than ``revalidate_interval`` ago is skipped,
else its record is requested (EIP-868). As in geth, a node that never answered is
skipped as incompatible, an answer adds one to its score and a miss halves it, and a node
whose score falls to 0 leaves the set. A node that answered is then dialed for Hello and
Status (rate limited, ``dials_per_second``) and the result goes to the census.

It ends at ``timeout``, or once ``idle`` seconds and ``IDLE_ROUNDS`` walks pass with no node
added while nothing is left to check (0: never; a random walk never runs dry, so geth has
only the timeout).

Sources are ``NodeSource``s: an async iterator of nodes. discv4 is ``V4Source``, discv5
``V5Source`` (on the same socket); records are asked of either (``FirstAnswer``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from ethnode.crawl.census import Census
from ethnode.crawl.nodeset import NodeEntry, NodeSet, now
from ethnode.crawl.probe import ProbeResult
from ethnode.errors import EthnodeError
from ethnode.logctx import kv
from ethnode.p2p.enode import Node

log = logging.getLogger("ethnode.crawl")

REVALIDATE_INTERVAL = 10 * 60.0  # seconds; geth discv4Crawl revalidateInterval
DEFAULT_PARALLEL = 16  # geth crawlParallelismFlag
DEFAULT_LOG_INTERVAL = 8.0  # seconds; geth's statusTicker
LOOKUP_PACE = 0.2  # seconds at least between the starts of two random lookups of one source
IDLE_ROUNDS = 3  # --idle also waits for this many walks without a new node (a slow walk is not a dry one)
QUEUE_SIZE = 64  # nodes waiting for a worker; a source blocks when it is full (geth: an unbuffered channel)


class CrawlError(EthnodeError):
    """The crawl cannot start; one line for the user."""


class Resolver(Protocol):
    """Fetches a node's current record (discv4 ENRRequest); raises on no answer."""

    async def request_enr(self, node: Node) -> Node: ...


NodeSource = AsyncIterable[Node]  # may count its walks in ``rounds`` (see ``Crawler.run``'s idle rule)
Prober = Callable[[Node], Awaitable[ProbeResult]]


async def iterate(nodes: Iterable[Node]) -> AsyncIterator[Node]:
    """A finite source: the input set, revalidated first as geth's inputIter."""
    for n in nodes:
        yield n


class V4Source:
    """Endless discv4 walks: every node any reply named (geth's lookup iterator), then our table.

    Random lookups converge on the few nodes nearest each target, so a node sitting in a
    handful of tables can go unseen for a long time; each node found live is therefore also
    asked for its neighbours of ``EXPLORE_TARGETS`` random targets, which reads most of its
    table. A node seen in this source's last ``REPEAT_AFTER`` rounds is not yielded again.
    """

    REPEAT_AFTER = 16  # rounds
    EXPLORE_TARGETS = 3  # FINDNODE queries per live node
    EXPLORE_PER_ROUND = 16  # live nodes asked between two lookups

    def __init__(self, disc: Any, pace: float = LOOKUP_PACE) -> None:
        self.disc = disc
        self.pace = pace
        self._live: asyncio.Queue[Node] = asyncio.Queue()
        self.rounds = 0  # walks whose every node was taken by the crawler

    def on_live(self, node: Node) -> None:
        """The crawler found ``node`` answering: read its table soon."""
        self._live.put_nowait(node)

    async def _explore(self, node: Node) -> list[Node]:
        found: list[Node] = []
        for _ in range(self.EXPLORE_TARGETS):
            try:
                found += await self.disc.findnode(node, os.urandom(64))
            except (EthnodeError, TimeoutError, OSError):
                break
        return found

    async def _lookup(self, out: asyncio.Queue[list[Node] | None]) -> list[Node]:
        return await self.disc.lookup_random(out.put_nowait)  # type: ignore[no-any-return]

    async def _walk(self, out: asyncio.Queue[list[Node] | None]) -> None:
        """Lookups forever; each reply goes to ``out`` as it arrives, then a round marker."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            found = await self._lookup(out)
            out.put_nowait([*found, *self.disc.table.nodes()])
            live = [self._live.get_nowait() for _ in range(min(self._live.qsize(), self.EXPLORE_PER_ROUND))]
            for more in await asyncio.gather(*(self._explore(n) for n in live)):
                out.put_nowait(more)
            out.put_nowait(None)
            await out.join()  # the crawler keeps up: never more than a round ahead of it
            log.debug("Discovery round done explored=%d took=%.2fs", len(live), loop.time() - started)
            await asyncio.sleep(max(0.0, started + self.pace - loop.time()))

    async def __aiter__(self) -> AsyncIterator[Node]:
        last_seen: dict[bytes, int] = {}
        self_id = self.disc.local.id  # peers name us in their replies once we have pinged them
        self.rounds = 0
        replies: asyncio.Queue[list[Node] | None] = asyncio.Queue()
        walker = asyncio.ensure_future(self._walk(replies))
        try:
            while True:
                batch = await replies.get()
                try:
                    if batch is None:
                        self.rounds += 1
                        continue
                    for n in batch:
                        seen = last_seen.get(n.id, -self.REPEAT_AFTER)
                        if n.id != self_id and self.rounds - seen >= self.REPEAT_AFTER:
                            last_seen[n.id] = self.rounds
                            yield n
                finally:
                    replies.task_done()
        finally:
            walker.cancel()
            await asyncio.gather(walker, return_exceptions=True)


class V5Source(V4Source):
    """The same walk over discv5 (``UDPv5``): its lookups, and a live node's table read by
    FINDNODE at the three farthest distances (where most of a table is)."""

    EXPLORE_DISTANCES = (256, 255, 254)

    async def _explore(self, node: Node) -> list[Node]:
        try:
            return await self.disc.findnode(node, list(self.EXPLORE_DISTANCES))  # type: ignore[no-any-return]
        except (EthnodeError, TimeoutError, OSError):
            return []

    async def _lookup(self, out: asyncio.Queue[list[Node] | None]) -> list[Node]:
        return await self.disc.lookup_random()  # type: ignore[no-any-return]


class FirstAnswer:
    """A resolver over several discovery services: the first record one of them gets (discv4's
    ENRRequest, then discv5's FINDNODE at distance 0), or the last one's error."""

    def __init__(self, *resolvers: Resolver) -> None:
        self.resolvers = resolvers

    async def request_enr(self, node: Node) -> Node:
        error: BaseException | None = None
        for r in self.resolvers:
            try:
                return await r.request_enr(node)
            except (EthnodeError, TimeoutError, OSError) as exc:
                error = exc
        assert error is not None, "FirstAnswer needs a resolver"
        raise error


class RateLimiter:
    """At most ``rate`` acquisitions a second, evenly spaced (0 or less: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = -math.inf

    async def acquire(self) -> None:
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        t = max(self._next, loop.time())
        self._next = t + self.interval
        if t > loop.time():
            await asyncio.sleep(t - loop.time())


@dataclass
class CrawlStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    recent: int = 0
    incompatible: int = 0
    dialed: int = 0
    dial_ok: int = 0
    dial_failed: int = 0


class Crawler:
    """One crawl over ``sources``; ``run`` returns the output set (geth crawler)."""

    def __init__(
        self,
        input_set: NodeSet,
        resolver: Resolver,
        prober: Prober | None,
        *,
        bootnodes: Sequence[Node] = (),
        sources: Sequence[NodeSource] = (),
        census: Census | None = None,
        revalidate_interval: float = REVALIDATE_INTERVAL,
        parallel: int = DEFAULT_PARALLEL,
        dials_per_second: float = 0.0,
        on_save: Callable[[NodeSet, Census], None] | None = None,
        on_live: Sequence[Callable[[Node], None]] = (),
    ) -> None:
        """``on_live``: told of every node that answered a check (``V4Source.on_live`` reads its table)."""
        if not input_set:
            input_set = NodeSet()
            input_set.add(*bootnodes)
        if not input_set:
            raise CrawlError("no input nodes to start crawling")
        self.input = input_set
        self.output = NodeSet(input_set)  # nodes failing revalidation leave it during the run
        self.resolver = resolver
        self.prober = prober
        self.census = census if census is not None else Census()
        self.revalidate = timedelta(seconds=revalidate_interval)
        self.parallel = max(1, parallel)
        self.limiter = RateLimiter(dials_per_second)
        self.on_save = on_save
        self.on_live = list(on_live)
        self.stats = CrawlStats()
        self._sources: list[NodeSource] = [iterate(self.input.nodes()), *sources]
        self._rounds_at_add: list[int] = []
        self._queue: asyncio.Queue[Node] = asyncio.Queue(QUEUE_SIZE)
        self._busy: set[bytes] = set()
        self._added = asyncio.Event()
        self._input_done = False
        self._yielded = False  # a walk has yielded a node: the idle clock runs from then

    async def run(self, timeout: float, *, idle: float = 0.0, log_interval: float = DEFAULT_LOG_INTERVAL) -> NodeSet:
        loop = asyncio.get_running_loop()
        feeders = [loop.create_task(self._feed(aiter(s), i == 0)) for i, s in enumerate(self._sources)]
        workers = [loop.create_task(self._work()) for _ in range(self.parallel)]
        start = loop.time()
        deadline = start + timeout if timeout > 0 else math.inf
        next_log = start + log_interval if log_interval > 0 else math.inf
        last_added = math.inf  # the idle clock starts with the first node a source yields
        try:
            while (t := loop.time()) < deadline:
                wake = min(deadline, next_log, last_added + idle if idle > 0 else math.inf)
                try:
                    await asyncio.wait_for(self._added.wait(), None if wake == math.inf else max(wake - t, 0.0))
                    self._added.clear()
                    if self._yielded:  # the input's nodes do not start the clock: only a walk does
                        last_added = loop.time()
                        self._rounds_at_add = self._rounds()
                except TimeoutError:
                    pass
                t = loop.time()
                if t >= next_log:
                    self._log_progress()
                    self._save()
                    next_log = t + log_interval
                if idle > 0 and t - last_added >= idle and self._drained():
                    log.info("No new nodes, stopping", extra=kv(idle=f"{idle:g}s"))
                    break
        finally:
            for task in (*feeders, *workers):
                task.cancel()
            await asyncio.gather(*feeders, *workers, return_exceptions=True)
        self._log_progress()
        self._save()
        return self.output

    def _rounds(self) -> list[int]:
        return [getattr(s, "rounds", 0) for s in self._sources]

    def _drained(self) -> bool:
        """Nothing left to check, and every walk went round ``IDLE_ROUNDS`` times since the last add."""
        walked = all(now - then >= IDLE_ROUNDS or not hasattr(s, "rounds")
                     for s, now, then in zip(self._sources, self._rounds(), self._rounds_at_add, strict=False))
        return walked and self._input_done and self._queue.empty() and not self._busy

    def _log_progress(self) -> None:
        s = self.stats
        log.info("Crawling in progress", extra=kv(
            ("nodes", len(self.output)), ("added", s.added), ("updated", s.updated), ("removed", s.removed),
            ("ignored(recent)", s.recent), ("ignored(incompatible)", s.incompatible), ("dialed", s.dialed),
            ("dial_ok", s.dial_ok), ("dial_failed", s.dial_failed)))

    def _save(self) -> None:
        if self.on_save is not None:
            self.on_save(self.output, self.census)

    async def _feed(self, source: NodeSource, is_input: bool) -> None:
        try:
            async for node in source:
                await self._queue.put(node)
                if not is_input and not self._yielded:
                    self._yielded = True
                    self._added.set()
        except EthnodeError as exc:
            log.warning("Crawl source failed", extra=kv(err=str(exc)))
        except Exception:
            log.exception("Crawl source broke")
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
            if is_input:
                self._input_done = True
                log.info("Revalidation of input set is done", extra=kv(len=len(self.input)))

    async def _work(self) -> None:
        while True:
            node = await self._queue.get()
            if node.id in self._busy:
                continue
            self._busy.add(node.id)
            try:
                await self.update_node(node)
            except Exception:  # one odd node must not take a worker down with it
                log.exception("Checking node id=%s failed", node.id.hex()[:16])
            finally:
                self._busy.discard(node.id)

    async def update_node(self, n: Node) -> str:
        """Check one node (geth crawler.updateNode), dial it if it answered; returns what happened."""
        entry = self.output.get(n.id)
        if entry is not None and entry.last_check is not None and now() - entry.last_check < self.revalidate:
            self.stats.recent += 1
            return "recent"
        if entry is None:
            entry = NodeEntry(n)
        status = "updated"
        entry.last_check = now()
        responded = False
        try:
            fresh = await self.resolver.request_enr(n)
        except (EthnodeError, TimeoutError, OSError) as exc:
            if entry.score == 0:  # the node does not implement EIP-868 (or never answered)
                log.debug("Skipping node id=%s: %s", n.id.hex()[:16], exc)
                self.stats.incompatible += 1
                return "incompatible"
            entry.score //= 2
        else:
            responded = True
            entry.node = fresh
            entry.score += 1
            if entry.first_response is None:
                entry.first_response = entry.last_check
                status = "added"
            entry.last_response = entry.last_check
        if entry.score <= 0:
            log.debug("Removing node id=%s", n.id.hex()[:16])
            self.output.pop(n.id, None)
            self.census.forget(n.id)
            self.stats.removed += 1
            return "removed"
        self.output[n.id] = entry
        if responded:
            for hook in self.on_live:
                hook(entry.node)
        if status == "added":
            self.stats.added += 1
            self._added.set()
        else:
            self.stats.updated += 1
        if responded and self.prober is not None:
            await self.limiter.acquire()
            self.stats.dialed += 1
            result = await self.prober(entry.node)
            if result.error is None:
                self.stats.dial_ok += 1
            else:
                self.stats.dial_failed += 1
                log.debug("Dial failed id=%s: %s", n.id.hex()[:16], result.error)
            self.census.record(entry.node, result)
        return status


__all__ = ["Crawler", "CrawlError", "CrawlStats", "V4Source", "V5Source", "FirstAnswer",
           "RateLimiter", "Resolver", "NodeSource", "iterate",
           "REVALIDATE_INTERVAL", "DEFAULT_PARALLEL", "DEFAULT_LOG_INTERVAL"]
