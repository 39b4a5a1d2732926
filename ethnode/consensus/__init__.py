"""Consensus engines (geth ``consensus/``): the base class, PoS rules, pre-merge PoW and Clique.

``create_engine`` picks the engine a chain config asks for, the way geth's
``CreateConsensusEngine`` does: the beacon engine wrapping the pre-merge one. Whoever
opens a ``BlockChain`` calls it and hands the chain the result: core only knows the
interface (``ethnode.core.consensus.ConsensusEngine``), never the engines.
"""

from __future__ import annotations

from ethnode.consensus.beacon import Beacon
from ethnode.consensus.clique import Clique
from ethnode.consensus.engine import (
    ChainHeaderReader,
    ChainReader,
    ConsensusError,
    Engine,
    FutureBlockError,
    InvalidNumberError,
    UnknownAncestorError,
)
from ethnode.consensus.ethash import EthashNoSeal
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.rawdb.store import KeyValueStore


def create_engine(config: ChainConfig, db: KeyValueStore | None = None) -> Engine:
    """The engine for ``config``; ``db`` keeps Clique's vote snapshots (in memory if None).

    A Clique chain without a terminal total difficulty (a private PoA network) gets the
    bare ``Clique`` engine, so the miner reaches prepare/seal directly; one that merges
    gets it wrapped in ``Beacon`` as geth does.
    """
    if config.clique is not None:
        clique = Clique(config.clique_config, db)  # type: ignore[arg-type]
        return clique if config.terminal_total_difficulty is None else Beacon(clique)
    return Beacon(EthashNoSeal())


__all__ = [
    "Engine",
    "ChainHeaderReader",
    "ChainReader",
    "ConsensusError",
    "UnknownAncestorError",
    "FutureBlockError",
    "InvalidNumberError",
    "Beacon",
    "Clique",
    "EthashNoSeal",
    "create_engine",
]
