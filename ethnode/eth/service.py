"""The Ethereum service (geth ``eth/backend.go``): chain DB, BlockChain, TxPool, handler, sync.

Built by the Node with a ServiceContext. It opens ``<datadir>/ethnode/chaindata``, which
must already hold a chain: unlike geth, which writes the mainnet genesis into an empty
datadir, ethnode asks for ``ethnode-fast init GENESIS.json`` first (it has no mainnet
genesis state to write, and syncing mainnet without a downloader would be pointless).

While running it evicts stale queued txs once a minute (geth evictionInterval) and resets
the pool to every new head (``ChainHeadEvent``, which the chain posts on the node's bus).
What drives or serves it from outside (the Engine API in ``eth.catalyst``, the JSON-RPC
namespaces in ``ethapi``) sits above it and is attached by the command line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config
from ethnode.core.errors import ChainNotInitializedError
from ethnode.core.events import ChainHeadEvent
from ethnode.core.rawdb import chaindata_dir, open_database
from ethnode.core.txpool import TxPool, TxPoolConfig
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.eth.handler import CHAIN_HEAD_CHAN_SIZE, EthHandler
from ethnode.eth.protocols.eth.protocol import SUPPORTED_VERSIONS
from ethnode.logctx import kv
from ethnode.node.lifecycle import ServiceContext

log = logging.getLogger("ethnode.eth")

EVICTION_INTERVAL = 60.0  # seconds between stale-queue sweeps; geth legacypool evictionInterval


class EthServiceError(EthnodeError):
    """The service cannot start (no chain); one line for the user."""


@dataclass
class EthConfig:
    network_id: int | None = None  # None: the genesis chain id (geth's default for custom chains)
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    max_peers: int | None = None
    txpool: TxPoolConfig = field(default_factory=TxPoolConfig)
    noexec: bool = False  # --noexec: blocks are not executed (no state, no receipts, stateless tx pool)
    observer: bool = False  # an ethnode.api observer: noexec by design, said at INFO rather than warned


class EthereumService:
    """The eth protocol and everything behind it, as a Node service."""

    def __init__(
        self, ctx: ServiceContext, config: EthConfig | None = None, *, chain: BlockChain | None = None
    ) -> None:
        self.ctx = ctx
        self.config = config or EthConfig()
        if chain is not None and chain.events is not ctx.bus:
            # Its head moves would never reach the pool, the handler or the filters.
            raise ValueError("the chain given to the Ethereum service must post its events on the node's bus")
        self._own_db = chain is None
        self.chain = chain if chain is not None else self._open_chain(ctx, execute=not self.config.noexec)
        try:
            # With execution the pool checks nonces and balances against the head state.
            self.state = self.chain.head_state_reader() if self.chain.executor is not None else None
            self.txpool = TxPool(self.chain, self.config.txpool, bus=ctx.bus, state=self.state)
            network_id = self.config.network_id or self.chain.config.chain_id
            self.handler = EthHandler(
                self.chain, self.txpool, network_id=network_id, node_id=keccak256(ctx.node_key.node_id),
                bus=ctx.bus, versions=self.config.versions, max_peers=self.config.max_peers,
            )
            self.tx_fetcher = self.handler.tx_fetcher
            self.downloader = self.handler.downloader
            self.block_fetcher = self.handler.block_fetcher
        except BaseException:
            self._close_db()
            raise
        self._tasks: list[asyncio.Task[Any]] = []
        self._head_sub: Any = None

    @staticmethod
    def _open_chain(ctx: ServiceContext, *, execute: bool) -> BlockChain:
        datadir = ctx.config.datadir
        if datadir is None:
            raise EthServiceError("the Ethereum service needs a data directory holding a chain (--datadir)")
        db = open_database(datadir)
        try:
            config = read_chain_config(db)
            return BlockChain(db, create_engine(config, db), config=config, events=ctx.bus, execute=execute)
        except ChainNotInitializedError:
            db.close()
            raise EthServiceError(
                f"no chain in {chaindata_dir(datadir)}: run `ethnode-fast init GENESIS.json --datadir {datadir}` "
                "first (or --eth.versions none for a p2p-only node)"
            ) from None
        except BaseException:
            db.close()
            raise

    def _close_db(self) -> None:
        if self._own_db:
            self.chain.db.close()

    @property
    def network_id(self) -> int:
        return self.handler.network_id  # type: ignore[no-any-return]

    def protocols(self) -> list[Any]:
        return self.handler.protocols()  # type: ignore[no-any-return]

    def apis(self) -> list[Any]:
        """None of its own: ``ethnode.ethapi`` builds the namespaces over this service."""
        return []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        head = self.chain.current_block
        log.info("Initialised chain configuration", extra=kv(
            chain_id=self.chain.config.chain_id, network_id=self.network_id, genesis=self.chain.genesis_hash,
            number=head.number, hash=head.hash))
        if self.config.noexec and self.config.observer:
            log.info("Observer node: blocks are not executed, the tx pool has no account state")
        elif self.config.noexec:
            log.warning("Block execution disabled (--noexec): state roots and receipts are not verified, "
                        "the tx pool has no account state")
        elif self.chain.executor is not None and not self.chain.state_db.has_state(head.state_root):
            log.warning("Head block #%d has no state (imported with --noexec): new blocks cannot be executed; "
                        "re-import with execution or run with --noexec", head.number)
        self._head_sub = self.ctx.bus.subscribe(ChainHeadEvent, CHAIN_HEAD_CHAN_SIZE)
        self._tasks = [
            loop.create_task(self._evict_loop(), name="txpool-evict"),
            loop.create_task(self._head_loop(self._head_sub), name="txpool-head"),
        ]
        await self.handler.start()

    async def stop(self) -> None:
        await self.handler.stop()  # its fetchers and downloader too
        if self._head_sub is not None:
            self._head_sub.unsubscribe()
            self._head_sub = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._close_db()

    async def _evict_loop(self) -> None:
        while True:
            await asyncio.sleep(EVICTION_INTERVAL)
            dropped = self.txpool.evict_stale()
            if dropped:
                log.debug("Evicted %d stale queued transactions", dropped)

    async def _head_loop(self, sub: Any) -> None:
        while True:
            event = await sub.get()
            header = event.header
            block = self.chain.get_block(header.hash, header.number)
            if block is not None:
                self.txpool.set_head(block)
                self.tx_fetcher.chain_head(block)


__all__ = ["EthereumService", "EthConfig", "EthServiceError", "EVICTION_INTERVAL"]
