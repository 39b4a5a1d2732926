"""EIP-4844 blob gas accounting (geth ``consensus/misc/eip4844``), with EIP-7918 from Osaka.

The per-fork target, maximum and update fraction come from the chain config's
``blobSchedule`` (EIP-7840), newest active fork first.
"""

from __future__ import annotations

from ethnode.core.chainconfig import BlobConfig, ChainConfig
from ethnode.core.eip1559 import HeaderRuleError
from ethnode.core.types.header import Header

GAS_PER_BLOB = 1 << 17  # geth params.BlobTxBlobGasPerBlob
MIN_BLOB_GAS_PRICE = 1  # geth params.BlobTxMinBlobGasprice
BLOB_BASE_COST = 1 << 13  # geth params.BlobBaseCost (EIP-7918 reserve price, execution gas per blob)

# Newest first, as geth's latestBlobConfig walks them: the first active fork with an entry wins.
_SCHEDULE_ORDER = ("bpo5", "bpo4", "bpo3", "amsterdam", "bpo2", "bpo1", "osaka", "prague", "cancun")


def latest_blob_config(config: ChainConfig, time: int) -> BlobConfig | None:
    """The blob parameters in force at ``time``, None before Cancun or without a schedule."""
    if config.london_block is None:
        return None
    for fork in _SCHEDULE_ORDER:
        activation = getattr(config, f"{fork}_time")
        if activation is not None and activation <= time and fork in config.blob_schedule:
            return config.blob_schedule[fork]
    return None


def _require(config: ChainConfig, time: int) -> BlobConfig:
    bcfg = latest_blob_config(config, time)
    if bcfg is None:
        raise HeaderRuleError(f"no blob schedule entry for the fork active at time {time}")
    return bcfg


def fake_exponential(factor: int, numerator: int, denominator: int) -> int:
    """factor * e**(numerator/denominator), by the Taylor series in integers, exactly as the EIP."""
    output = 0
    accum = factor * denominator
    i = 1
    while accum > 0:
        output += accum
        accum = accum * numerator // denominator // i
        i += 1
    return output // denominator


def blob_base_fee(bcfg: BlobConfig, excess_blob_gas: int) -> int:
    return fake_exponential(MIN_BLOB_GAS_PRICE, excess_blob_gas, bcfg.update_fraction)


def calc_blob_fee(config: ChainConfig, header: Header) -> int:
    """The blob base fee a header's blob txs pay."""
    return blob_base_fee(_require(config, header.time), header.excess_blob_gas or 0)


def calc_excess_blob_gas(config: ChainConfig, parent: Header, time: int) -> int:
    """The excess blob gas of a child of ``parent`` at ``time``."""
    bcfg = _require(config, time)
    parent_excess = parent_used = 0
    if parent.excess_blob_gas is not None:  # the first Cancun block's parent has neither field
        parent_excess = parent.excess_blob_gas
        parent_used = parent.blob_gas_used or 0
    excess = parent_excess + parent_used
    target_gas = bcfg.target * GAS_PER_BLOB
    if excess < target_gas:
        return 0
    if config.is_osaka(config.london_block or 0, time):
        # EIP-7918: while blobs cost less than their execution reserve price, the excess only
        # grows (scaled by the fraction of max not counted in the target), never shrinks.
        reserve = BLOB_BASE_COST * (parent.base_fee or 0)
        if reserve > GAS_PER_BLOB * blob_base_fee(bcfg, parent_excess):
            return parent_excess + parent_used * (bcfg.max - bcfg.target) // bcfg.max
    return excess - target_gas


def max_blob_gas_per_block(config: ChainConfig, time: int) -> int:
    bcfg = latest_blob_config(config, time)
    return 0 if bcfg is None else bcfg.max * GAS_PER_BLOB


def verify_eip4844_header(config: ChainConfig, parent: Header, header: Header) -> None:
    """Blob gas fields present, blob gas used within the fork's max, excess exactly as computed."""
    bcfg = _require(config, header.time)
    if header.excess_blob_gas is None:
        raise HeaderRuleError("header is missing excessBlobGas")
    if header.blob_gas_used is None:
        raise HeaderRuleError("header is missing blobGasUsed")
    max_gas = bcfg.max * GAS_PER_BLOB
    if header.blob_gas_used > max_gas:
        raise HeaderRuleError(f"blob gas used {header.blob_gas_used} exceeds maximum allowance {max_gas}")
    if header.blob_gas_used % GAS_PER_BLOB:
        raise HeaderRuleError(
            f"blob gas used {header.blob_gas_used} not a multiple of blob gas per blob {GAS_PER_BLOB}"
        )
    want = calc_excess_blob_gas(config, parent, header.time)
    if header.excess_blob_gas != want:
        raise HeaderRuleError(f"invalid excessBlobGas: have {header.excess_blob_gas}, want {want}")


__all__ = [
    "GAS_PER_BLOB",
    "MIN_BLOB_GAS_PRICE",
    "BLOB_BASE_COST",
    "latest_blob_config",
    "fake_exponential",
    "blob_base_fee",
    "calc_blob_fee",
    "calc_excess_blob_gas",
    "max_blob_gas_per_block",
    "verify_eip4844_header",
]
