"""The miner as a Node service: the Clique signer of this node, sealing on the Ethereum service's chain.

Registered after the Ethereum service (it finds the chain, the pool and the bus there)
and started after it, so the handler's minedBroadcastLoop already listens when the first
block is sealed.
"""

from __future__ import annotations

from typing import Any

from ethnode.consensus.clique import Clique
from ethnode.core.types.transaction import address_of
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.eth.service import EthereumService
from ethnode.miner.builder import MinerConfig
from ethnode.miner.miner import Miner
from ethnode.node.lifecycle import ServiceContext


class MinerError(EthnodeError):
    """Mining cannot start here (not a Clique chain, no execution); one line for the user."""


class MinerService:
    """Authorizes the Clique engine with ``key`` and runs a ``Miner``."""

    def __init__(self, ctx: ServiceContext, config: MinerConfig, key: PrivateKey) -> None:
        eth = ctx.service(EthereumService)
        chain = eth.chain
        engine = chain.engine
        if not isinstance(engine, Clique):
            raise MinerError(f"mining needs a Clique chain; this chain's engine is {getattr(engine, 'name', engine)}")
        if chain.executor is None:
            raise MinerError("mining needs block execution: run without --noexec")
        signer = address_of(key.node_id)
        config.etherbase = signer  # Clique pays the tips to the signer (geth requires etherbase == signer)
        engine.authorize(signer, key.sign)
        self.miner = Miner(chain, eth.txpool, ctx.bus, config, engine=engine)

    def protocols(self) -> list[Any]:
        return []

    def apis(self) -> list[Any]:
        return []

    async def start(self) -> None:
        await self.miner.start()

    async def stop(self) -> None:
        await self.miner.stop()


__all__ = ["MinerService", "MinerError"]
