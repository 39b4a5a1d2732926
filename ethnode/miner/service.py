"""The miner as a Node service: the Clique signer of this node, sealing on the Ethereum service's chain.

Registered after the Ethereum service, which it is handed as its ``backend`` (geth's
``miner.Backend``: the chain and the pool), and started after it, so the handler's
minedBroadcastLoop already listens when the first block is sealed.
"""

from __future__ import annotations

from typing import Any, Protocol

from ethnode.consensus.clique import Clique
from ethnode.core.blockchain import BlockChain
from ethnode.core.txpool import TxPool
from ethnode.core.types.transaction import address_of
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.miner.builder import MinerConfig
from ethnode.miner.miner import Miner
from ethnode.node.lifecycle import ServiceContext


class MinerError(EthnodeError):
    """Mining cannot start here (not a Clique chain, no execution); one line for the user."""


class MinerBackend(Protocol):
    """What the miner needs of the Ethereum service (geth ``miner.Backend``)."""

    @property
    def chain(self) -> BlockChain: ...

    @property
    def txpool(self) -> TxPool: ...


class MinerService:
    """Authorizes the Clique engine with ``key`` and runs a ``Miner``."""

    def __init__(self, ctx: ServiceContext, backend: MinerBackend, config: MinerConfig, key: PrivateKey) -> None:
        chain = backend.chain
        engine = chain.engine
        if not isinstance(engine, Clique):
            raise MinerError(f"mining needs a Clique chain; this chain's engine is {engine.name}")
        if chain.executor is None:
            raise MinerError("mining needs block execution: run without --noexec")
        signer = address_of(key.node_id)
        config.etherbase = signer  # Clique pays the tips to the signer (geth requires etherbase == signer)
        engine.authorize(signer, key.sign)
        self.miner = Miner(chain, backend.txpool, ctx.bus, config, engine=engine)

    def protocols(self) -> list[Any]:
        return []

    def apis(self) -> list[Any]:
        return []

    async def start(self) -> None:
        await self.miner.start()

    async def stop(self) -> None:
        await self.miner.stop()


__all__ = ["MinerService", "MinerBackend", "MinerError"]
