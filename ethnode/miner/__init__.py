"""Block production for proof-of-authority chains (geth ``miner``): ``builder`` fills a block from the
pool (``ordering``), ``miner`` seals and inserts on a schedule, ``service`` runs it in a Node and ``dev``
makes the ``run --dev`` chain (its flags are in ``ethnode.commands.flags.miner``).

Importing this package stays cheap: py-evm loads only when a chain that executes is opened.
"""

from ethnode.miner.builder import BuildError, BuiltBlock, MinerConfig, build_block, calc_gas_limit
from ethnode.miner.miner import Miner
from ethnode.miner.ordering import TransactionsByPriceAndNonce, effective_tip

__all__ = [
    "Miner",
    "MinerConfig",
    "BuiltBlock",
    "BuildError",
    "build_block",
    "calc_gas_limit",
    "TransactionsByPriceAndNonce",
    "effective_tip",
]
