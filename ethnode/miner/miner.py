"""The miner: builds, seals and inserts blocks on a Clique chain (geth ``miner`` before the merge).

One loop, one block at a time, always on the current head:

- **When**: with a period of N seconds the next block is due at parent time + N (Clique's
  rule). The miner waits until just before that (``BUILD_LEAD``), so txs that arrive in
  the meantime are in the block without geth's 3-second recommits, then builds and seals.
  With period 0 it builds as soon as the pool has something; Clique refuses an empty
  block there (``WaitTransactionsError``) and the miner sleeps until the pool posts
  ``NewTxsEvent``.
- **Interruptions**: a new head from a peer (``ChainHeadEvent``) abandons the block being
  sealed (Clique's ``stop_event``) and starts over on the new head. A signer that sealed
  too recently (``SignedRecentlyWaitError``) or is not authorized waits for the next head.
- **Done**: the sealed block goes into the chain with what building it executed
  (``BlockChain.insert_built_block``, geth's ``WriteBlockAndSetHead``: header and body
  checked, the txs not run a second time), which posts ``ChainHeadEvent`` (the pool resets,
  eth/69 peers hear the range); then the miner posts ``NewMinedBlockEvent`` (the handler's
  minedBroadcastLoop sends NewBlock / NewBlockHashes).

Building executes txs on the event loop: fine for a dev chain's few txs per block,
and the block fetcher imports the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ethnode.consensus.clique.errors import (
    SignedRecentlyWaitError,
    UnauthorizedSignerError,
    WaitTransactionsError,
)
from ethnode.core.blockchain import BlockChain
from ethnode.core.errors import InvalidBlockError
from ethnode.core.events import ChainHeadEvent, NewMinedBlockEvent
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError
from ethnode.event import EventBus, Subscription
from ethnode.logctx import kv
from ethnode.miner.builder import BuildError, BuiltBlock, MinerConfig, SealingEngine, build_block

log = logging.getLogger("ethnode.miner")

BUILD_LEAD = 0.25  # seconds before a block is due that it is built (ours: geth rebuilds every 3 s instead)
EVENT_QUEUE = 16  # head and tx events buffered; only "something happened" matters, so dropping old ones is fine
RETRY_DELAY = 1.0  # seconds before retrying after an unexpected build failure


@runtime_checkable
class Sealer(SealingEngine, Protocol):
    """What the miner needs of its engine beyond building: when blocks are due, and the seal (Clique)."""

    name: str
    period: int  # seconds between blocks; 0: a block whenever there are txs

    async def seal(self, chain: BlockChain, block: Block, stop_event: asyncio.Event | None = None) -> Block | None: ...


class Miner:
    """Seals blocks on ``chain`` with ``engine`` (already authorized with the signer's key)."""

    def __init__(
        self,
        chain: BlockChain,
        txpool: Any,
        bus: EventBus,
        config: MinerConfig,
        *,
        engine: Sealer | None = None,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        """``engine`` defaults to the chain's, which must seal (``BuildError`` otherwise)."""
        if engine is None:
            if not isinstance(chain.engine, Sealer):
                raise BuildError(f"the {chain.engine.name} engine does not seal blocks")
            engine = chain.engine
        self.chain = chain
        self.txpool = txpool
        self.bus = bus
        self.config = config
        self.engine = engine
        self.period = engine.period
        self._clock = clock
        self._wake = asyncio.Event()  # a head moved or txs arrived
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.sealed = 0  # blocks this miner sealed and inserted
        self.last: Block | None = None
        self._warned_unauthorized = False

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        heads = self.bus.subscribe(ChainHeadEvent, EVENT_QUEUE)
        txs = self.bus.subscribe(NewTxsEvent, EVENT_QUEUE)
        self._subs = [heads, txs]
        self._tasks = [
            loop.create_task(self._pump(heads), name="miner-heads"),
            loop.create_task(self._pump(txs), name="miner-txs"),
            loop.create_task(self._loop(), name="miner"),
        ]
        log.info("Miner started period=%d etherbase=0x%s gasceil=%d mintip=%d", self.period,
                 self.config.etherbase.hex(), self.config.gas_ceil, self.config.min_tip)

    async def stop(self) -> None:
        """Abandon the block being sealed and stop; nothing half-inserted is left behind."""
        for sub in self._subs:
            sub.unsubscribe()
        self._subs = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tasks:
            log.info("Miner stopped sealed=%d", self.sealed)
        self._tasks = []

    async def _pump(self, sub: Subscription) -> None:
        while True:
            await sub.get()
            self._wake.set()

    # --- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug must not stop the chain for good
                log.exception("Block sealing failed")
                await self._wait(RETRY_DELAY)

    async def _wait(self, timeout: float | None = None) -> bool:
        """Until a head or tx event (True) or ``timeout`` seconds (False)."""
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    async def _wait_for_new_head(self, head: Header) -> None:
        while self.chain.current_block.hash == head.hash:
            self._wake.clear()
            await self._wake.wait()

    async def _round(self) -> None:
        """Build, seal and insert one block on the current head (or find a reason to wait)."""
        head = self.chain.current_block
        if self.period > 0:
            due = head.time + self.period - BUILD_LEAD
            while self._clock() < due:
                self._wake.clear()
                await self._wait(due - self._clock())
                if self.chain.current_block.hash != head.hash:
                    return  # someone else's block arrived first: start over on it
        self._wake.clear()  # what arrived up to here is in the pool, so in this block
        try:
            built = build_block(self.chain, self.txpool, self.config, engine=self.engine, clock=self._clock)
        except BuildError as exc:
            log.error("Cannot build blocks", extra=kv(err=exc))
            await self._wait_for_new_head(head)
            return
        block = await self._seal(built, head)
        if block is not None:
            await self._commit(block, built)

    async def _seal(self, built: BuiltBlock, head: Header) -> Block | None:
        """The sealed block, or None if sealing was refused (and waited on) or abandoned."""
        stop = asyncio.Event()
        sealing = asyncio.ensure_future(self.engine.seal(self.chain, built.block, stop))
        try:
            while not sealing.done():
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sealing, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                if self._wake.is_set() and not sealing.done():
                    self._wake.clear()
                    if self.chain.current_block.hash != head.hash:
                        log.debug("New head while sealing #%d: starting over", built.header.number)
                        stop.set()
            return sealing.result()
        except WaitTransactionsError:
            log.debug("Sealing paused, waiting for transactions")
            await self._wait()
        except SignedRecentlyWaitError:
            log.info("Signed recently, must wait for others number=%d", built.header.number)
            await self._wait_for_new_head(head)
        except UnauthorizedSignerError:
            if not self._warned_unauthorized:
                self._warned_unauthorized = True
                log.warning("Not an authorized signer of this chain: waiting for a vote to add 0x%s",
                            self.config.etherbase.hex())
            await self._wait_for_new_head(head)
        finally:
            stop.set()
            if not sealing.done():
                sealing.cancel()
        return None

    async def _commit(self, block: Block, built: BuiltBlock) -> None:
        """Insert the sealed block (the chain tells the pool of the new head) and tell the peers."""
        header = block.header
        while (early := header.time - self._clock()) > 0:  # asyncio's clock is not the wall clock
            await asyncio.sleep(min(early, 1.0) + 0.001)  # a future block would fail verification
        started = _time.monotonic()
        try:
            self.chain.insert_built_block(block, built.result)
        except (InvalidBlockError, EthnodeError) as exc:
            log.error("Failed to insert sealed block", extra=kv(number=header.number, hash=block.hash, err=exc))
            return
        self.sealed += 1
        self.last = block
        log.info("Successfully sealed new block number=%d hash=0x%s txs=%d gas=%d fees=%d elapsed=%.3fs",
                 header.number, block.hash.hex()[:12], len(block.tx_items), header.gas_used, built.fees,
                 _time.monotonic() - started)
        self.bus.post(NewMinedBlockEvent(block))


__all__ = ["Miner", "BUILD_LEAD"]
