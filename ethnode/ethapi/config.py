"""``eth_config`` (EIP-7910): the fork a node runs now, the next scheduled one and the last.

Client teams compare these objects to catch a misconfigured node before a fork, so the
answer must be geth's to the byte: geth v1.17.10 ``BlockChainAPI.Config`` walks the time
forks (Shanghai on; block forks are assumed passed), and for each fork gives its
activation time (0 when at or before genesis), its blob schedule (the nearest BPO /
Prague / Cancun entry at or below it), the chain id, the EIP-2124 fork hash a node at
that time would announce, the active precompiles by geth's names and the system
contracts by EIP name.
"""

from __future__ import annotations

from typing import Any

from ethnode.core.blockchain import BlockChain
from ethnode.core.chainconfig import BlobConfig, ChainConfig
from ethnode.core.execution.system import (
    BEACON_ROOTS_ADDRESS,
    CONSOLIDATION_QUEUE_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_QUEUE_ADDRESS,
)
from ethnode.core.forkid import new_id
from ethnode.rpc.hexutil import data, quantity

# geth params/forks, the time-based part in order (Paris: the last block fork, no timestamp).
TIME_FORKS = ("paris", "shanghai", "cancun", "prague", "osaka", "bpo1", "bpo2", "bpo3", "bpo4", "bpo5",
              "amsterdam", "bogota")
_BLOB_FORKS = ("bpo5", "bpo4", "bpo3", "bpo2", "bpo1", "prague", "cancun")  # geth ChainConfig.BlobConfig
MAX_UINT64 = 2**64 - 1

# EIP-8282 builder request contracts (geth params.BuilderDepositAddress / BuilderExitAddress), from Amsterdam.
BUILDER_DEPOSIT_ADDRESS = bytes.fromhex("0000bff46984e3725691fa540a8c7589300d8282")
BUILDER_EXIT_ADDRESS = bytes.fromhex("000064d678505ad48f8ccb093bc65613800e8282")


def _precompile(n: int) -> bytes:
    return n.to_bytes(20, "big")


# geth core/vm/contracts.go: each precompile's Name(), by the fork that adds it.
_PRECOMPILES_ISTANBUL = {"ECREC": 1, "SHA256": 2, "RIPEMD160": 3, "ID": 4, "MODEXP": 5, "BN254_ADD": 6,
                         "BN254_MUL": 7, "BN254_PAIRING": 8, "BLAKE2F": 9}
_PRECOMPILES_BY_FORK = (
    ("cancun", {"KZG_POINT_EVALUATION": 0x0A}),
    ("prague", {"BLS12_G1ADD": 0x0B, "BLS12_G1MSM": 0x0C, "BLS12_G2ADD": 0x0D, "BLS12_G2MSM": 0x0E,
                "BLS12_PAIRING_CHECK": 0x0F, "BLS12_MAP_FP_TO_G1": 0x10, "BLS12_MAP_FP2_TO_G2": 0x11}),
    ("osaka", {"P256VERIFY": 0x100}),
)


def fork_time(config: ChainConfig, fork: str) -> int | None:
    return None if fork == "paris" else getattr(config, f"{fork}_time")


def latest_fork(config: ChainConfig, time: int) -> str:
    """geth ChainConfig.LatestFork: the newest time fork active at ``time`` (Paris if none)."""
    for fork in reversed(TIME_FORKS[1:]):
        at = fork_time(config, fork)
        if at is not None and at <= time:
            return fork
    return "paris"


def _index(fork: str) -> int:
    return TIME_FORKS.index(fork)


def _blob_config(config: ChainConfig, fork: str) -> BlobConfig | None:
    for name in _BLOB_FORKS:
        if _index(name) <= _index(fork) and name in config.blob_schedule:
            return config.blob_schedule[name]
    return None


def _precompiles(fork: str) -> dict[str, str]:
    active = dict(_PRECOMPILES_ISTANBUL)
    for since, added in _PRECOMPILES_BY_FORK:
        if _index(fork) >= _index(since):
            active.update(added)
    return {name: data(_precompile(n)) for name, n in sorted(active.items())}


def _system_contracts(config: ChainConfig, fork: str) -> dict[str, str]:
    active: dict[str, bytes] = {}
    if _index(fork) >= _index("amsterdam"):
        active["BUILDER_DEPOSIT_CONTRACT_ADDRESS"] = BUILDER_DEPOSIT_ADDRESS
        active["BUILDER_EXIT_CONTRACT_ADDRESS"] = BUILDER_EXIT_ADDRESS
    if _index(fork) >= _index("prague"):
        active["CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS"] = CONSOLIDATION_QUEUE_ADDRESS
        active["DEPOSIT_CONTRACT_ADDRESS"] = config.deposit_contract_address or bytes(20)
        active["HISTORY_STORAGE_ADDRESS"] = HISTORY_STORAGE_ADDRESS
        active["WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS"] = WITHDRAWAL_QUEUE_ADDRESS
    if _index(fork) >= _index("cancun"):
        active["BEACON_ROOTS_ADDRESS"] = BEACON_ROOTS_ADDRESS
    return {name: data(addr) for name, addr in sorted(active.items())}


class ConfigAPI:
    """``eth_config`` over a chain (its config and genesis)."""

    def __init__(self, chain: BlockChain) -> None:
        self.chain = chain

    def _assemble(self, at: int | None) -> dict[str, Any] | None:
        if at is None:
            return None
        config: ChainConfig = self.chain.config
        genesis = self.chain.genesis
        fork = latest_fork(config, at)
        blob = _blob_config(config, fork)
        fork_hash = new_id(config, genesis.hash, genesis.time, MAX_UINT64, at).hash
        return {
            "activationTime": 0 if genesis.time >= at else at,
            "blobSchedule": None if blob is None else {"target": blob.target, "max": blob.max,
                                                       "baseFeeUpdateFraction": blob.update_fraction},
            "chainId": quantity(config.chain_id),
            "forkId": data(fork_hash),
            "precompiles": _precompiles(fork),
            "systemContracts": _system_contracts(config, fork),
        }

    def config(self) -> dict[str, Any]:
        """geth BlockChainAPI.Config: current, next and last (null when no fork is scheduled)."""
        config: ChainConfig = self.chain.config
        current = latest_fork(config, self.chain.current_block.time)
        upcoming = [t for f in TIME_FORKS[_index(current) + 1:] if (t := fork_time(config, f)) is not None]
        last = fork_time(config, latest_fork(config, MAX_UINT64))
        nxt = upcoming[0] if upcoming else None
        return {
            "current": self._assemble(fork_time(config, current)),
            "next": self._assemble(nxt),
            "last": self._assemble(last) if nxt is not None else None,
        }


__all__ = ["ConfigAPI", "latest_fork"]
