"""Consensus engines (geth ``consensus/``): the interface, PoS rules, pre-merge PoW rules.

``create_engine`` picks the engine a chain config asks for, the way geth's
``CreateConsensusEngine`` does: the beacon engine wrapping the pre-merge one.
"""

from ethnode.consensus.beacon import Beacon
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


def create_engine(config: ChainConfig) -> Engine:
    """The engine for ``config``. Clique chains are refused until the Clique engine lands."""
    if config.clique is not None:
        raise ConsensusError(
            "clique consensus is not implemented yet (it arrives with the dev-network issue)"
        )
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
    "EthashNoSeal",
    "create_engine",
]
