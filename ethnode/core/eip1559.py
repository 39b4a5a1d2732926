"""EIP-1559 base fee and the gas limit bounds (geth ``consensus/misc/eip1559``, ``gaslimit.go``)."""

from __future__ import annotations

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError

GAS_LIMIT_BOUND_DIVISOR = 1024  # geth params.GasLimitBoundDivisor: max change per block is parent/1024
MIN_GAS_LIMIT = 5000  # geth params.MinGasLimit
MAX_GAS_LIMIT = 0x7FFFFFFFFFFFFFFF  # geth params.MaxGasLimit (2^63-1)
ELASTICITY_MULTIPLIER = 2  # geth params.DefaultElasticityMultiplier: gas target = limit / 2
BASE_FEE_CHANGE_DENOMINATOR = 8  # geth params.DefaultBaseFeeChangeDenominator: at most 12.5% per block
INITIAL_BASE_FEE = 1_000_000_000  # geth params.InitialBaseFee: 1 gwei at the London block


class HeaderRuleError(EthnodeError):
    """A header that breaks a fork rule checked against its parent (consensus-engine independent)."""


def verify_gas_limit(parent_gas_limit: int, gas_limit: int) -> None:
    """The gas limit may move by less than parent/1024 per block and never below 5000."""
    diff = abs(parent_gas_limit - gas_limit)
    limit = parent_gas_limit // GAS_LIMIT_BOUND_DIVISOR
    if diff >= limit:
        raise HeaderRuleError(f"invalid gas limit: have {gas_limit}, want {parent_gas_limit} +/- {limit - 1}")
    if gas_limit < MIN_GAS_LIMIT:
        raise HeaderRuleError(f"invalid gas limit below {MIN_GAS_LIMIT}")


def calc_base_fee(config: ChainConfig, parent: Header) -> int:
    """The base fee of the child of ``parent``: moves toward keeping blocks half full."""
    if not config.is_london(parent.number):
        return INITIAL_BASE_FEE
    target = parent.gas_limit // ELASTICITY_MULTIPLIER
    base_fee = parent.base_fee
    if parent.gas_used == target:
        return base_fee  # type: ignore[no-any-return]
    if parent.gas_used > target:
        delta = base_fee * (parent.gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR
        return base_fee + max(delta, 1)  # type: ignore[no-any-return]
    delta = base_fee * (target - parent.gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR
    return max(base_fee - delta, 0)  # type: ignore[no-any-return]


def verify_eip1559_header(config: ChainConfig, parent: Header, header: Header) -> None:
    """Gas limit bounds (doubled at the fork block, elasticity) and the exact base fee."""
    parent_gas_limit = parent.gas_limit
    if not config.is_london(parent.number):
        parent_gas_limit *= ELASTICITY_MULTIPLIER
    verify_gas_limit(parent_gas_limit, header.gas_limit)
    if header.base_fee is None:
        raise HeaderRuleError("header is missing baseFee")
    want = calc_base_fee(config, parent)
    if header.base_fee != want:
        raise HeaderRuleError(
            f"invalid baseFee: have {header.base_fee}, want {want}, parentBaseFee {parent.base_fee}, "
            f"parentGasUsed {parent.gas_used}"
        )


__all__ = [
    "HeaderRuleError",
    "verify_gas_limit",
    "calc_base_fee",
    "verify_eip1559_header",
    "GAS_LIMIT_BOUND_DIVISOR",
    "MIN_GAS_LIMIT",
    "MAX_GAS_LIMIT",
    "ELASTICITY_MULTIPLIER",
    "BASE_FEE_CHANGE_DENOMINATOR",
    "INITIAL_BASE_FEE",
]
