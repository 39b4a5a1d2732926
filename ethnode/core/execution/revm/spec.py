"""The chain config as revm's block executor takes it: fork schedule, blob parameters, merge.

alloy-evm names forks as geth's ``params.Rules`` do; block forks are given by number, the
Shanghai-and-later ones by timestamp. Whether a block is past the merge is decided from the
block itself (difficulty 0 on a chain with a terminal total difficulty), as geth's
``IsMerge`` is, because the TTD block of a chain is only known after the fact.
"""

from __future__ import annotations

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import BLOB_BASE_COST, latest_blob_config
from ethnode.core.execution.api import BlockEnv

_BLOCK_FORKS = (
    ("homestead", "homestead_block"),
    ("tangerine", "eip150_block"),
    ("spurious_dragon", "eip158_block"),
    ("byzantium", "byzantium_block"),
    ("constantinople", "constantinople_block"),
    ("petersburg", "petersburg_block"),
    ("istanbul", "istanbul_block"),
    ("muir_glacier", "muir_glacier_block"),
    ("berlin", "berlin_block"),
    ("london", "london_block"),
    ("arrow_glacier", "arrow_glacier_block"),
    ("gray_glacier", "gray_glacier_block"),
)
_TIME_FORKS = (
    ("shanghai", "shanghai_time"),
    ("cancun", "cancun_time"),
    ("prague", "prague_time"),
    ("osaka", "osaka_time"),
    ("bpo1", "bpo1_time"),
    ("bpo2", "bpo2_time"),
    ("bpo3", "bpo3_time"),
    ("bpo4", "bpo4_time"),
    ("bpo5", "bpo5_time"),
    ("amsterdam", "amsterdam_time"),
)
# Forks revm 43 has no rules for: a block under one of them is refused, not run as Amsterdam.
UNSUPPORTED_TIME_FORKS = (("bogota", "bogota_time"), ("verkle", "verkle_time"))

# geth params: the blob parameters of a fork whose config has no blobSchedule entry (EIP-7840 defaults).
_DEFAULT_BLOBS = {"cancun": (3, 6, 3338477), "prague": (6, 9, 5007716)}
OSAKA_MAX_BLOBS_PER_TX = 6  # EIP-7594: geth params.BlobTxMaxBlobs from Osaka on


def fork_schedule(config: ChainConfig) -> list[tuple[str, str, int]]:
    """``(fork, "block"|"time", activation)`` for every fork the config schedules."""
    forks: list[tuple[str, str, int]] = [("frontier", "block", 0)]
    if config.dao_fork_block is not None and config.dao_fork_support:
        forks.append(("dao", "block", config.dao_fork_block))
    for name, attr in _BLOCK_FORKS:
        at = getattr(config, attr)
        if at is not None:
            forks.append((name, "block", at))
    if config.london_block is not None:
        for name, attr in _TIME_FORKS:
            at = getattr(config, attr)
            if at is not None:
                forks.append((name, "time", at))
    return forks


def is_merged(config: ChainConfig, env: BlockEnv) -> bool:
    if config.shanghai_time is not None and config.is_shanghai(env.number, env.time):
        return True
    return env.difficulty == 0 and config.terminal_total_difficulty is not None


def blob_params(config: ChainConfig, number: int, time: int) -> tuple[int, int, int, int, int] | None:
    """``(target, max, update_fraction, max_per_tx, base_cost)`` at ``time``; None before Cancun."""
    if not config.is_cancun(number, time):
        return None
    osaka = config.is_osaka(number, time)
    bcfg = latest_blob_config(config, time)
    if bcfg is not None:
        target, most, fraction = bcfg.target, bcfg.max, bcfg.update_fraction
    else:
        target, most, fraction = _DEFAULT_BLOBS["prague" if config.is_prague(number, time) else "cancun"]
    per_tx = min(most, OSAKA_MAX_BLOBS_PER_TX) if osaka else most
    return target, most, fraction, per_tx, BLOB_BASE_COST if osaka else 0


def engine_version() -> str:
    from ethnode import _rust

    return str(_rust.revm_version())


__all__ = ["fork_schedule", "is_merged", "blob_params", "engine_version", "UNSUPPORTED_TIME_FORKS"]
