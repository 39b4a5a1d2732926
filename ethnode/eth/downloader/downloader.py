"""The downloader: full sync toward the best peer's head (geth ``eth/downloader`` before the beacon sync).

``synchronise(peer)`` runs one sync with ``peer`` as the master:

1. **Remote head**: an eth/69 peer's Status/BlockRangeUpdate names it (number and hash);
   an eth/68 peer's Status only names its hash, so that header is fetched first.
2. **Common ancestor** with the master (``AncestorSearch``).
3. **Headers** by skeleton and fill (``HeaderScheduler``), **bodies** 128 per request from
   every peer (``BodyScheduler``), **import** in order through ``BlockChain.insert_chain``,
   which verifies each header and that each body is the one its header commits to. All
   three run at once: each peer has at most one header and one body request in flight.
4. **Faults**: a request that times out marks its peer a staller and one that answers
   what cannot be true a liar; either is dropped (USELESS_PEER, as geth's removePeer) and
   its work goes to other peers. If the master is the one that fails, the attempt ends
   and the next best peer still ahead of us becomes the master: the blocks imported so
   far stay, so the new attempt starts where the last one stopped.

Post-merge note: geth itself syncs a PoS chain only when the consensus client names the
head (beacon sync). ethnode has no consensus client yet, so it trusts the best peer's
announced head, as pre-merge geth did; ``sync_to`` is the Engine API's way to name one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ethnode.consensus.engine import UnknownAncestorError
from ethnode.core.errors import InvalidBlockError
from ethnode.core.execution.api import ExecutionError
from ethnode.eth.downloader.ancestor import AncestorSearch
from ethnode.eth.downloader.bodies import MAX_BLOCK_FETCH, BodyRequest, BodyScheduler, FetchResult
from ethnode.eth.downloader.errors import BadResponseError, MasterPeerError
from ethnode.eth.downloader.headers import HeaderRequest, HeaderScheduler
from ethnode.eth.downloader.rtt import RoundTrip
from ethnode.eth.protocols.eth.peer import PeerDroppedError, RequestError, RequestTimeoutError
from ethnode.eth.protocols.eth.protocol import ETH68
from ethnode.logctx import kv
from ethnode.p2p.disconnect import DiscReason

log = logging.getLogger("ethnode.eth.downloader")

IMPORT_BATCH = 256  # blocks per insert_chain call between network turns (ours; geth maxResultsProcess 2048)
# With execution a block costs milliseconds, not microseconds (~150 blocks/s on the ethtest chain), so a
# 256-block batch would hold the event loop for seconds: pings, serving and responses wait. Ours.
EXEC_IMPORT_BATCH = 16
STATS_REPORT_INTERVAL = 8.0  # seconds between progress lines; geth statsReportLimit

_HEADERS = "headers"
_BODIES = "bodies"


@dataclass(frozen=True)
class SyncProgress:
    """Where a sync stands (geth ethereum.SyncProgress; eth_syncing reports it)."""

    starting_block: int  # our head when the sync began
    current_block: int  # our head now
    highest_block: int  # the head we are syncing toward


@dataclass(frozen=True)
class SyncStats:
    """What the last ``synchronise`` call did."""

    blocks: int
    seconds: float
    head: int

    @property
    def blocks_per_second(self) -> float:
        return self.blocks / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Inflight:
    peer: Any
    kind: str
    request: HeaderRequest | BodyRequest


class Downloader:
    """Full sync over ``chain`` from the peers ``register_peer`` told it about.

    ``drop_peer`` drops a peer that stalled or lied (the handler's ``remove_peer``; without
    it the peer is disconnected directly). The chain itself posts ``ChainHeadEvent`` for
    what is imported.
    ``request_timeout`` pins the per-request timeout (default: adaptive, geth's 2..20 s
    round trip times 3).
    """

    def __init__(
        self,
        chain: Any,
        *,
        drop_peer: Callable[[Any], None] | None = None,
        request_timeout: float | None = None,
        import_batch: int | None = None,
    ) -> None:
        self.chain = chain
        self._drop_peer = drop_peer
        self.rtt = RoundTrip(request_timeout)
        if import_batch is None:
            import_batch = EXEC_IMPORT_BATCH if getattr(chain, "executor", None) is not None else IMPORT_BATCH
        self.import_batch = import_batch
        self._peers: dict[bytes, Any] = {}
        self._banned: set[bytes] = set()  # dropped during this sync, until their connection ends
        self._syncing = False
        self.idle = asyncio.Event()  # set while no sync runs (await it to see a sync's end)
        self.idle.set()
        self._starting = 0
        self._highest = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_sync: SyncStats | None = None
        self._suspects: dict[int, list[Any]] = {}  # last block of a disputed fill -> its contradictors
        self.drops = 0  # peers dropped for stalling or lying

    # --- peers --------------------------------------------------------------------------

    def register_peer(self, peer: Any) -> None:
        self._peers[peer.id] = peer

    def unregister_peer(self, peer: Any) -> None:
        if self._peers.get(peer.id) is peer:
            del self._peers[peer.id]
        self._banned.discard(peer.id)

    def _usable(self) -> dict[bytes, Any]:
        return {
            pid: p for pid, p in self._peers.items() if pid not in self._banned and not p.closed
        }

    def _drop(self, peer: Any, reason: str) -> None:
        if peer.id in self._banned:
            return
        self._banned.add(peer.id)
        self.drops += 1
        log.warning("Dropping peer from sync", extra=kv(peer=peer.id.hex()[:16], reason=reason))
        if self._drop_peer is not None:
            self._drop_peer(peer)
        else:
            peer.disconnect(DiscReason.USELESS_PEER)

    def _local_td(self) -> int:
        head = self.chain.current_block
        return self.chain.get_td(head.hash, head.number) or 0  # type: ignore[no-any-return]

    def is_ahead(self, peer: Any) -> bool:
        """The peer announces a head we should sync to (geth: more TD; eth/69: a higher head).

        On eth/68 after the merge TDs stop growing, so an equal TD with a head hash we
        do not hold counts too; the remote head header then tells how far ahead it is.
        """
        chain = self.chain
        if peer.version == ETH68:
            if peer.td is None:
                return False
            ours = self._local_td()
            if peer.td != ours:
                return peer.td > ours  # type: ignore[no-any-return]
            head_hash = peer.head_hash
            return head_hash is not None and chain.get_header_by_hash(head_hash) is None
        rng = peer.block_range
        return rng is not None and rng.latest > chain.current_block.number

    def _best(self, exclude: set[bytes]) -> Any:
        peers = [p for p in self._usable().values() if p.id not in exclude and self.is_ahead(p)]
        newer = [p for p in peers if p.version > ETH68]
        if newer:
            return max(newer, key=lambda p: p.block_range.latest)
        return max(peers, key=lambda p: p.td, default=None)

    # --- the public face ----------------------------------------------------------------

    @property
    def syncing(self) -> bool:
        return self._syncing

    def progress(self) -> SyncProgress:
        current = self.chain.current_block.number
        return SyncProgress(self._starting, current, max(self._highest, current))

    async def synchronise(self, peer: Any, head: tuple[int, bytes] | None = None) -> bool:
        """Sync toward ``peer``'s head (or ``head``: (number, hash) it must serve); if it fails
        as master, go on with the next best peer. False if a sync was already running."""
        if self._syncing:
            return False
        self._syncing = True
        self.idle.clear()
        self._banned.clear()
        started = time.monotonic()
        first = self.chain.current_block.number
        self._starting = first
        master, tried = peer, set()
        try:
            while master is not None:
                tried.add(master.id)
                try:
                    await self._sync_with(master, head)
                    break
                except MasterPeerError as exc:
                    log.warning("Synchronisation failed", extra=kv(peer=master.id.hex()[:16], err=exc))
                    if exc.drop:
                        self._drop(master, str(exc))
                if head is not None:
                    master, _ = await self._find_holder(head[1], tried)
                else:
                    master = self._best(tried)
        finally:
            self._syncing = False
            self.idle.set()
            seconds = time.monotonic() - started
            last = self.chain.current_block
            self.last_sync = SyncStats(last.number - first, seconds, last.number)
            if last.number != first:
                log.info("Sync finished", extra=kv(("number", last.number), ("hash", last.hash),
                                                   ("blocks", last.number - first), ("elapsed", f"{seconds:.2f}s"),
                                                   ("blocks/s", round(self.last_sync.blocks_per_second))))
        return True

    def sync_to(self, head_hash: bytes) -> None:
        """Sync toward ``head_hash`` (the Engine API names it) from whichever peer has it, in the background."""
        if self._syncing or self._tasks or self.chain.get_header_by_hash(head_hash) is not None:
            return  # busy (the consensus client repeats itself), or nothing to fetch
        task = asyncio.get_running_loop().create_task(self._sync_to(head_hash), name="eth-sync-to")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync_to(self, head_hash: bytes) -> None:
        master, header = await self._find_holder(head_hash, set())
        if master is None:
            log.info("No peer has the requested head", extra=kv(hash=head_hash))
            return
        await self.synchronise(master, (header.number, header.hash))

    async def _find_holder(self, head_hash: bytes, exclude: set[bytes]) -> tuple[Any, Any]:
        """(peer, header): the first peer (best first) that serves the header ``head_hash``."""
        peers = sorted(self._usable().values(), key=lambda p: not self.is_ahead(p))
        for peer in peers:
            if peer.id in exclude:
                continue
            try:
                headers = await peer.request_headers(head_hash, 1, timeout=self.rtt.timeout())
            except RequestError:
                continue
            if len(headers) == 1 and headers[0].hash == head_hash:
                return peer, headers[0]
        return None, None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- one attempt with one master ----------------------------------------------------

    async def _ask(self, master: Any, origin: bytes | int, amount: int, skip: int = 0) -> list[Any]:
        """A header request to the master; its failures end the attempt."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            headers = await master.request_headers(origin, amount, skip, timeout=self.rtt.timeout())
        except RequestTimeoutError as exc:
            raise MasterPeerError(f"stalling: {exc}") from None
        except PeerDroppedError as exc:
            raise MasterPeerError(f"gone: {exc}", drop=False) from None
        except RequestError as exc:
            raise MasterPeerError(str(exc), drop=False) from None
        self.rtt.update(loop.time() - started)
        return headers  # type: ignore[no-any-return]

    async def _remote_head(self, master: Any) -> tuple[int, bytes]:
        if master.version > ETH68 and master.block_range is not None:
            return master.block_range.latest, master.block_range.latest_hash
        head_hash = master.head_hash
        headers = await self._ask(master, head_hash, 1)
        if len(headers) != 1 or headers[0].hash != head_hash:
            raise MasterPeerError(f"remote head header mismatch: {len(headers)} headers for 0x{head_hash.hex()}")
        return headers[0].number, head_hash

    async def _sync_with(self, master: Any, head: tuple[int, bytes] | None) -> None:
        target_number, target_hash = head if head is not None else await self._remote_head(master)
        chain = self.chain
        local = chain.current_block
        if chain.has_block(target_hash, target_number):
            return  # nothing to fetch (a forkchoice moves the head to it)
        if target_number <= local.number and not (master.version == ETH68 and (master.td or 0) > self._local_td()):
            return
        self._highest = target_number
        search = AncestorSearch(master.id, target_number, local.number, chain.has_block, chain.genesis_hash)
        while not search.done:
            query = search.next_request()
            assert query is not None
            headers = await self._ask(master, query.origin, query.amount, query.skip)
            try:
                search.deliver(headers)
            except BadResponseError as exc:
                raise MasterPeerError(exc.reason) from None
        assert search.number is not None and search.hash is not None
        log.info("Synchronising", extra=kv(peer=master.id.hex()[:16], ancestor=search.number, number=target_number,
                                           hash=target_hash))
        await self._fetch(master, search.number, search.hash, target_number, target_hash)

    async def _fetch(self, master: Any, anchor: int, anchor_hash: bytes, target: int, target_hash: bytes) -> None:
        headers = HeaderScheduler(master.id, anchor, anchor_hash, target, target_hash)
        bodies = BodyScheduler()
        inflight: dict[asyncio.Task[Any], _Inflight] = {}
        busy: set[tuple[bytes, str]] = set()
        self._report = (time.monotonic(), self.chain.current_block.number)
        self._suspects = {}
        loop = asyncio.get_running_loop()

        def spawn(peer: Any, kind: str, req: HeaderRequest | BodyRequest) -> None:
            busy.add((peer.id, kind))
            task = loop.create_task(self._request(peer, kind, req), name=f"eth-sync-{kind}")
            inflight[task] = _Inflight(peer, kind, req)

        try:
            while True:
                for task in [t for t in inflight if t.done()]:
                    entry = inflight.pop(task)
                    busy.discard((entry.peer.id, entry.kind))
                    self._settle(task, entry, master, headers, bodies)
                peers = self._usable()
                if master.id not in peers:
                    raise MasterPeerError("left during the sync", drop=False)
                for chunk, source in headers.take():
                    bodies.add(chunk, source)
                if (master.id, _HEADERS) not in busy:
                    req = headers.master_request(backlog=len(bodies))
                    if req is not None:
                        spawn(master, _HEADERS, req)
                for peer in peers.values():
                    if (peer.id, _HEADERS) not in busy:
                        fill = headers.reserve(peer.id)
                        if fill is not None:
                            spawn(peer, _HEADERS, fill)
                    if (peer.id, _BODIES) not in busy:
                        breq = bodies.reserve(peer.id, MAX_BLOCK_FETCH)
                        if breq is not None:
                            spawn(peer, _BODIES, breq)
                results = bodies.take(self.import_batch)
                if results:
                    self._import(results, master)
                    await asyncio.sleep(0)  # let responses in before the next batch
                    continue
                if headers.done and not len(bodies):
                    break
                if not inflight:
                    ids = set(peers)
                    why = headers.stuck(ids) or bodies.stuck(ids) or "nothing to request"
                    raise MasterPeerError(f"sync stuck: {why}")
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in inflight:
                task.cancel()
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
        self._log_progress(final=True)
        if not self.chain.has_block(target_hash, target):
            raise MasterPeerError(f"head #{target} 0x{target_hash.hex()[:12]} not reached", drop=False)

    async def _request(self, peer: Any, kind: str, req: HeaderRequest | BodyRequest) -> tuple[list[Any], float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        timeout = self.rtt.timeout()
        if isinstance(req, HeaderRequest):
            result = await peer.request_headers(req.origin, req.amount, req.skip, timeout=timeout)
        else:
            result = await peer.request_bodies(req.hashes, timeout=timeout)
        return result, loop.time() - started

    def _settle(
        self, task: asyncio.Task[Any], entry: _Inflight, master: Any, headers: HeaderScheduler, bodies: BodyScheduler
    ) -> None:
        """Feed one finished request to its scheduler; drop the peer if it stalled or lied."""
        peer, req = entry.peer, entry.request
        sched: Any = headers if isinstance(req, HeaderRequest) else bodies
        try:
            result, elapsed = task.result()
        except RequestTimeoutError:
            sched.fail(peer.id, req)
            self._drop(peer, f"stalling: no {entry.kind} within {self.rtt.timeout():g} s")
            if peer is master:
                raise MasterPeerError("stalling", drop=False) from None
            return
        except RequestError as exc:  # gone, or too many requests pending
            sched.fail(peer.id, req)
            if peer is master and isinstance(exc, PeerDroppedError):
                raise MasterPeerError(f"gone: {exc}", drop=False) from None
            return
        self.rtt.update(elapsed)
        try:
            liars = sched.deliver(peer.id, req, result)
        except BadResponseError as exc:
            self._drop(peer, exc.reason)
            if peer is master:
                raise MasterPeerError(exc.reason, drop=False) from None
            return
        if liars:
            assert isinstance(req, HeaderRequest)
            self._suspects[req.origin + req.amount - 1] = liars

    def _import(self, results: list[FetchResult], master: Any) -> None:
        chain = self.chain
        try:
            chain.insert_chain([r.block for r in results])
        except InvalidBlockError as exc:
            if isinstance(exc.cause, UnknownAncestorError):
                raise MasterPeerError(f"import: {exc}", drop=False) from None  # our chain moved meanwhile
            bad = next((r for r in results if r.block.hash == exc.block_hash), None)
            # The header chain is the master's (its skeleton pins every hash), and whoever
            # served this header served the same invalid chain.
            if bad is not None and bad.header_source != master.id:
                other = self._peers.get(bad.header_source)  # type: ignore[call-overload]
                if other is not None:
                    self._drop(other, f"served an invalid chain: {exc}")
            self._drop(master, f"invalid chain: {exc}")
            raise MasterPeerError(f"invalid chain: {exc}", drop=False) from None
        except ExecutionError as exc:  # our node cannot execute (fork unsupported, state missing): not the peer's fault
            log.error("Sync stopped: blocks cannot be executed here", extra=kv(err=exc))
            raise MasterPeerError(f"import: {exc}", drop=False) from None
        for end in [n for n in self._suspects if n <= results[-1].block.number]:
            for liar in self._suspects.pop(end):  # the master's chain imported: they lied about it
                other = self._peers.get(liar)
                if other is not None:
                    self._drop(other, "its headers contradict the valid chain")
        self._log_progress()

    def _log_progress(self, final: bool = False) -> None:
        now = time.monotonic()
        since, first = self._report
        if not final and now - since < STATS_REPORT_INTERVAL:
            return
        head = self.chain.current_block
        blocks = head.number - first
        if blocks <= 0:
            return
        elapsed = now - since
        log.info("Imported new chain segment number=%d hash=0x%s blocks=%d elapsed=%.2fs blocks/s=%.0f target=%d",
                 head.number, head.hash.hex()[:12], blocks, elapsed, blocks / elapsed if elapsed else 0.0,
                 self._highest)
        self._report = (now, head.number)


__all__ = ["Downloader", "SyncProgress", "SyncStats", "IMPORT_BATCH", "EXEC_IMPORT_BATCH", "STATS_REPORT_INTERVAL"]
