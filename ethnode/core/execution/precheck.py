"""What geth checks before a call runs (``preCheck``, ``buyGas``, intrinsic gas), for either engine.

A call is not a transaction: no nonce check, no EOA check, and no fee checks when every
fee field is zero (geth ``NoBaseFee``). The checks that remain are made here, in geth's
order and with geth's texts, against the block's rules, base fee, blob base fee and the
sender's balance as the engine reads them; both engines then run the message with their
own checks relaxed, so they refuse the same calls with the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import GAS_PER_BLOB
from ethnode.core.execution.api import CallMessage, CallPreconditionError, IntrinsicGasError
from ethnode.crypto.keccak import keccak256

# geth params/protocol_params.go
TX_GAS = 21_000
TX_GAS_CONTRACT_CREATION = 53_000  # from Homestead
TX_DATA_ZERO_GAS = 4
TX_DATA_NON_ZERO_GAS_FRONTIER = 68
TX_DATA_NON_ZERO_GAS_EIP2028 = 16  # from Istanbul
INIT_CODE_WORD_GAS = 2  # EIP-3860, from Shanghai
ACCESS_LIST_ADDRESS_GAS = 2_400  # EIP-2930
ACCESS_LIST_STORAGE_KEY_GAS = 1_900
TX_COST_FLOOR_PER_TOKEN = 10  # EIP-7623, from Prague
TX_TOKEN_PER_NON_ZERO_BYTE = 4
MAX_INIT_CODE_SIZE = 49_152  # EIP-3860: 2 * 24576
MAX_UINT256 = 2**256 - 1
BLOB_HASH_VERSION_KZG = 0x01


@dataclass(frozen=True)
class CallRules:
    """The fork rules a call depends on (geth ``params.Rules``, the parts the checks read)."""

    homestead: bool
    istanbul: bool
    berlin: bool
    london: bool
    shanghai: bool
    cancun: bool
    prague: bool

    @classmethod
    def for_block(cls, config: ChainConfig, number: int, time: int) -> CallRules:
        def block(n: int | None) -> bool:
            return n is not None and n <= number

        return cls(
            homestead=block(config.homestead_block),
            istanbul=block(config.istanbul_block),
            berlin=block(config.berlin_block),
            london=config.is_london(number),
            shanghai=config.is_shanghai(number, time),
            cancun=config.is_cancun(number, time),
            prague=config.is_prague(number, time),
        )


def checksum(address: bytes) -> str:
    """EIP-55 mixed case, as geth prints an address in these errors."""
    text = bytes(address).hex()
    digest = keccak256(text.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(text, digest[:40], strict=True))


def intrinsic_gas(message: CallMessage, rules: CallRules) -> tuple[int, int]:
    """geth ``IntrinsicGas``: (total, the EIP-3860 initcode part)."""
    create = message.to is None
    gas = TX_GAS_CONTRACT_CREATION if create and rules.homestead else TX_GAS
    data = message.data
    initcode = 0
    if data:
        zeros = data.count(0)
        non_zero_gas = TX_DATA_NON_ZERO_GAS_EIP2028 if rules.istanbul else TX_DATA_NON_ZERO_GAS_FRONTIER
        gas += (len(data) - zeros) * non_zero_gas + zeros * TX_DATA_ZERO_GAS
        if create and rules.shanghai:
            initcode = (len(data) + 31) // 32 * INIT_CODE_WORD_GAS
            gas += initcode
    for _, keys in message.access_list or ():
        gas += ACCESS_LIST_ADDRESS_GAS + len(keys) * ACCESS_LIST_STORAGE_KEY_GAS
    return gas, initcode


def floor_data_gas(data: bytes) -> int:
    """geth ``FloorDataGas`` (EIP-7623): the least a tx with this calldata pays from Prague on."""
    zeros = data.count(0)
    tokens = zeros + (len(data) - zeros) * TX_TOKEN_PER_NON_ZERO_BYTE
    return TX_GAS + tokens * TX_COST_FLOOR_PER_TOKEN


def pre_check(
    message: CallMessage,
    rules: CallRules,
    base_fee: int,
    blob_base_fee: Callable[[], int],
    balance_of: Callable[[bytes], int],
) -> tuple[int, int]:
    """geth ``preCheck`` + ``buyGas`` + the intrinsic and floor checks, in call mode; returns
    ``intrinsic_gas(message)``. ``CallPreconditionError`` (geth's text) when the call cannot start."""
    sender = checksum(message.sender)
    fee_cap, tip_cap = message.gas_fee_cap, message.gas_tip_cap
    if rules.london and (fee_cap or tip_cap):  # all-zero fee fields skip the checks (geth NoBaseFee)
        if fee_cap < tip_cap:
            raise CallPreconditionError(
                f"max priority fee per gas higher than max fee per gas: address {sender}, "
                f"maxPriorityFeePerGas: {tip_cap}, maxFeePerGas: {fee_cap}"
            )
        if fee_cap < base_fee:
            raise CallPreconditionError(
                f"max fee per gas less than block base fee: address {sender}, maxFeePerGas: {fee_cap}, "
                f"baseFee: {base_fee}"
            )
    if message.access_list is not None and not rules.berlin:
        raise CallPreconditionError(f"transaction type not supported: access list tx (sender {sender})")
    blob_gas = 0
    if message.blob_hashes is not None:
        if not rules.cancun:
            raise CallPreconditionError(f"transaction type not supported: blob tx (sender {sender})")
        if message.to is None:
            raise CallPreconditionError("blob transaction of type create")
        if not message.blob_hashes:
            raise CallPreconditionError("blob transaction missing blob hashes")
        for i, blob_hash in enumerate(message.blob_hashes):
            if blob_hash[:1] != bytes((BLOB_HASH_VERSION_KZG,)):
                raise CallPreconditionError(f"blob {i} has invalid hash version")
        blob_gas = GAS_PER_BLOB * len(message.blob_hashes)
    blob_fee_cap = message.blob_fee_cap or 0
    if blob_gas and blob_fee_cap:
        fee = blob_base_fee()
        if blob_fee_cap < fee:
            raise CallPreconditionError(
                f"max fee per blob gas less than block blob gas fee: address {sender} blobGasFeeCap: "
                f"{blob_fee_cap}, blobBaseFee: {fee}"
            )
    if message.to is None and rules.shanghai and len(message.data) > MAX_INIT_CODE_SIZE:
        raise CallPreconditionError(
            f"max initcode size exceeded: code size {len(message.data)} limit {MAX_INIT_CODE_SIZE}"
        )
    # buyGas: the balance must cover gas at the fee cap, the value and the blob fee cap.
    want = message.gas * fee_cap + message.value + blob_gas * blob_fee_cap
    paid = message.gas * message.gas_price + blob_gas * (blob_base_fee() if blob_gas else 0)
    if want > MAX_UINT256 or paid > MAX_UINT256:
        raise CallPreconditionError(
            f"insufficient funds for gas * price + value: address {sender} required balance exceeds 256 bits"
        )
    have = balance_of(message.sender)
    if have < want:
        raise CallPreconditionError(f"insufficient funds for gas * price + value: address {sender} have {have} "
                                    f"want {want}")
    total, initcode = intrinsic_gas(message, rules)
    if message.gas < total:
        raise IntrinsicGasError(f"intrinsic gas too low: have {message.gas}, want {total}")
    if rules.prague:
        floor = floor_data_gas(message.data)
        if message.gas < floor:
            raise CallPreconditionError(f"insufficient gas for floor data gas cost: have {message.gas}, want {floor}")
    if message.value and have - paid < message.value:
        raise CallPreconditionError(f"insufficient funds for transfer: address {sender}")
    return total, initcode


__all__ = ["CallRules", "intrinsic_gas", "floor_data_gas", "pre_check", "TX_GAS", "MAX_INIT_CODE_SIZE"]
