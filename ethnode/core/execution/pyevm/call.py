"""eth_call on py-evm: one message on a throwaway ``State`` over a block's post-state.

py-evm's own call path (``costless_execute_transaction``) wants a signed transaction and
validates it like a block would (nonce, fee floor, intrinsic gas as py-evm counts it). A
call is not a transaction, so the checks geth's ``preCheck``/``buyGas`` make in call mode
(no nonce, no EOA check, no fee checks when every fee field is zero) are made here with
geth's texts, and the message then runs through the fork's own transaction executor
(gas purchase, access warming, delegation, refunds, the EIP-7623 floor) fed by an
unsigned stand-in. The ``State`` sits on a fresh ``StateOverlay`` that is never written
and never persisted, so nothing of the call reaches the database.

A deadline is checked on the opcodes that can repeat work (jumps, calls, creates): any
long execution passes through them, and the check stays off the straight-line hot path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    InsufficientFunds,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfBoundsRead,
    OutOfGas,
    ReservedBytesInCode,
    Revert,
    StackDepthLimit,
    WriteProtection,
)
from eth.vm.execution_context import ExecutionContext
from eth.vm.interrupt import EVMMissingData
from eth_utils import to_checksum_address

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import GAS_PER_BLOB
from ethnode.core.execution.api import (
    CallMessage,
    CallPreconditionError,
    CallResult,
    CallTimeoutError,
    ExecutionError,
    IntrinsicGasError,
    VMErrorKind,
)
from ethnode.core.execution.pyevm.db import atomic_db
from ethnode.core.execution.pyevm.forks import SUPPORTED_FORKS, Fork
from ethnode.core.state.database import StateDatabase
from ethnode.core.types.header import Header

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
BLOB_TX_TYPE = 3
DYNAMIC_FEE_TX_TYPE = 2
STACK_LIMIT = 1024

# Opcodes that can make an execution long (loops, nested frames): the deadline is checked there.
# JUMP, JUMPI, CREATE, CALL, CALLCODE, DELEGATECALL, CREATE2, STATICCALL
_DEADLINE_OPCODES = (0x56, 0x57, 0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA)


class _Rules:
    """Which fork rules apply, by name order (geth ``params.Rules``)."""

    def __init__(self, fork: Fork) -> None:
        order = SUPPORTED_FORKS.index(fork.name)

        def at_least(name: str) -> bool:
            return order >= SUPPORTED_FORKS.index(name)

        self.homestead = at_least("homestead")
        self.istanbul = at_least("istanbul")
        self.berlin = at_least("berlin")
        self.london = at_least("london")
        self.shanghai = fork.shanghai
        self.cancun = fork.cancun
        self.prague = fork.prague


def intrinsic_gas(message: CallMessage, rules: _Rules) -> tuple[int, int]:
    """geth ``IntrinsicGas``: (total, the EIP-3860 initcode part py-evm charges inside the frame)."""
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


class _DeadlineExceeded(Exception):
    """Not a py-evm ``VMError``, so no frame swallows it: it unwinds the whole call."""


class _DeadlineOpcode:
    """An opcode that first checks the call's deadline (kept on the throwaway state)."""

    def __init__(self, opcode: Any) -> None:
        self.opcode = opcode
        self.mnemonic = getattr(opcode, "mnemonic", "?")  # py-evm's debug logging reads it

    def __call__(self, computation: Any) -> None:
        deadline = computation.state.call_deadline
        if deadline is not None and time.monotonic() > deadline:
            raise _DeadlineExceeded
        self.opcode(computation=computation)


@cache
def _call_state_class(state_class: Any) -> Any:
    """``state_class`` with the deadline-checking opcodes and an overridable blob base fee."""
    base_computation = state_class.computation_class
    opcodes = dict(base_computation.opcodes)
    for op in _DEADLINE_OPCODES:
        if op in opcodes:
            opcodes[op] = _DeadlineOpcode(opcodes[op])
    computation_class = type(f"Call{base_computation.__name__}", (base_computation,), {"opcodes": opcodes})

    class CallState(state_class):  # type: ignore[misc,valid-type]
        call_deadline: float | None = None
        blob_base_fee_override: int | None = None  # geth zeroes BLOBBASEFEE when the call's blob fee cap is 0

        @property
        def blob_base_fee(self) -> int:
            if self.blob_base_fee_override is not None:
                return self.blob_base_fee_override
            return super().blob_base_fee  # type: ignore[no-any-return]

    CallState.computation_class = computation_class
    CallState.__name__ = CallState.__qualname__ = f"Call{state_class.__name__}"
    return CallState


class _CallTx:
    """The transaction fields py-evm's executor reads, for a message that carries no signature."""

    nonce = 0
    r = s = y_parity = 0  # read by py-evm's (eager) debug log lines only

    def __init__(self, message: CallMessage, message_intrinsic_gas: int) -> None:
        self.sender = message.sender
        self.to = CREATE_CONTRACT_ADDRESS if message.to is None else message.to
        self.value = message.value
        self.data = message.data
        self.gas = message.gas
        self.gas_price = message.gas_price
        self.max_fee_per_gas = message.gas_fee_cap
        self.max_priority_fee_per_gas = message.gas_tip_cap
        self.access_list = tuple(
            (address, tuple(int.from_bytes(key, "big") for key in keys)) for address, keys in message.access_list or ()
        )
        self.blob_versioned_hashes = tuple(message.blob_hashes or ())
        self.max_fee_per_blob_gas = message.blob_fee_cap or 0
        self.type_id = BLOB_TX_TYPE if message.blob_hashes else DYNAMIC_FEE_TX_TYPE
        self.intrinsic_gas = message_intrinsic_gas

    def __repr__(self) -> str:
        to = "create" if self.to == CREATE_CONTRACT_ADDRESS else "0x" + self.to.hex()
        return f"CallMessage(from=0x{self.sender.hex()}, to={to}, gas={self.gas})"


def run_call(
    config: ChainConfig,
    state_db: StateDatabase,
    fork: Fork,
    header: Header,
    message: CallMessage,
    prev_hashes: Iterable[bytes],
    fee_recipient: bytes | None = None,
    deadline: float | None = None,
) -> CallResult:
    """Run ``message`` on the state after ``header`` in ``header``'s block context; nothing is kept."""
    rules = _Rules(fork)
    base_fee = header.base_fee
    if base_fee is not None and message.gas_price == 0:
        base_fee = 0  # geth: lower the base fee to 0 so a free call keeps basefee <= feecap
    context = ExecutionContext(
        coinbase=header.coinbase if fee_recipient is None else fee_recipient,
        timestamp=header.time,
        block_number=header.number,
        difficulty=header.difficulty,
        mix_hash=header.mix_digest,
        gas_limit=header.gas_limit,
        prev_hashes=prev_hashes,
        chain_id=config.chain_id,
        base_fee_per_gas=base_fee,
        excess_blob_gas=header.excess_blob_gas,
    )
    state = _call_state_class(fork.state_class)(atomic_db(state_db.new_overlay()), context, header.state_root)
    if message.blob_fee_cap == 0:
        state.blob_base_fee_override = 0
    state.call_deadline = deadline
    try:
        total_intrinsic, initcode_gas = _pre_check(state, rules, message)
        return _execute(state, fork, rules, message, total_intrinsic - initcode_gas)
    except EVMMissingData as exc:
        raise ExecutionError(
            f"call at block #{header.number}: state data missing from the database ({type(exc).__name__}: {exc})"
        ) from None
    except _DeadlineExceeded:
        raise CallTimeoutError(f"call at block #{header.number} ran past its deadline") from None


def _pre_check(state: Any, rules: _Rules, message: CallMessage) -> tuple[int, int]:
    """geth ``preCheck`` + ``buyGas`` + the intrinsic and floor checks, in call mode and in geth's order."""
    sender = to_checksum_address(message.sender)
    fee_cap, tip_cap = message.gas_fee_cap, message.gas_tip_cap
    if rules.london and (fee_cap or tip_cap):  # all-zero fee fields skip the checks (geth NoBaseFee)
        if fee_cap < tip_cap:
            raise CallPreconditionError(
                f"max priority fee per gas higher than max fee per gas: address {sender}, "
                f"maxPriorityFeePerGas: {tip_cap}, maxFeePerGas: {fee_cap}"
            )
        base_fee = state.execution_context.base_fee_per_gas
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
        blob_base_fee = state.blob_base_fee
        if blob_fee_cap < blob_base_fee:
            raise CallPreconditionError(
                f"max fee per blob gas less than block blob gas fee: address {sender} blobGasFeeCap: "
                f"{blob_fee_cap}, blobBaseFee: {blob_base_fee}"
            )
    if message.to is None and rules.shanghai and len(message.data) > MAX_INIT_CODE_SIZE:
        raise CallPreconditionError(
            f"max initcode size exceeded: code size {len(message.data)} limit {MAX_INIT_CODE_SIZE}"
        )
    # buyGas: the balance must cover gas at the fee cap, the value and the blob fee cap.
    want = message.gas * fee_cap + message.value + blob_gas * blob_fee_cap
    paid = message.gas * message.gas_price + blob_gas * (state.blob_base_fee if blob_gas else 0)
    if want > MAX_UINT256 or paid > MAX_UINT256:
        raise CallPreconditionError(
            f"insufficient funds for gas * price + value: address {sender} required balance exceeds 256 bits"
        )
    have = state.get_balance(message.sender)
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


def _execute(state: Any, fork: Fork, rules: _Rules, message: CallMessage, message_intrinsic_gas: int) -> CallResult:
    """Buy gas, run the frame, settle refunds, as the fork's transaction executor does for a tx."""
    tx = _CallTx(message, message_intrinsic_gas)
    executor = state.get_transaction_executor()
    evm_message = executor.build_evm_message(tx)
    computation = executor.build_computation(evm_message, tx)
    executor.finalize_computation(tx, computation)
    used = message.gas - computation.get_gas_remaining()
    gas_used = used - fork.vm.calculate_net_gas_refund(used, computation.get_gas_refund())
    peak = used
    if rules.prague:  # EIP-7623: a tx pays at least its calldata floor
        floor = floor_data_gas(message.data)
        gas_used, peak = max(gas_used, floor), max(peak, floor)
    output = bytes(computation.output)
    if not computation.is_error:
        return CallResult(output, gas_used, peak)
    stack = getattr(getattr(computation, "_stack", None), "values", ())
    kind, text = vm_error(computation.error, len(stack))
    return CallResult(output, gas_used, peak, kind, text)


_INVALID_OPCODE = re.compile(r"Invalid opcode 0x([0-9a-fA-F]+)")
_STACK_WANTED = re.compile(r"Wanted (\d+) stack items?, (?:only had (\d+)|had none)")
_STACK_FOR_OP = re.compile(r"Insufficient stack items for (SWAP|DUP)(\d+)")


def vm_error(error: Exception, stack_len: int = 0) -> tuple[VMErrorKind, str]:
    """A py-evm frame error as geth's ``core/vm`` error text (what eth_call reports)."""
    text = str(error)
    if isinstance(error, Revert):
        return VMErrorKind.REVERT, "execution reverted"
    if isinstance(error, OutOfGas):
        if "EIP170" in text:
            return VMErrorKind.OTHER, "max code size exceeded"
        if "EIP-3860" in text:
            return VMErrorKind.OTHER, "max initcode size exceeded"
        if "Write contract code" in text:
            return VMErrorKind.OTHER, "contract creation code storage out of gas"
        return VMErrorKind.OUT_OF_GAS, "out of gas"
    if isinstance(error, InvalidJumpDestination) or (
        isinstance(error, InvalidInstruction) and text.startswith("Jump resulted")
    ):
        return VMErrorKind.OTHER, "invalid jump destination"
    if isinstance(error, InvalidInstruction):
        match = _INVALID_OPCODE.search(text)
        op = int(match.group(1), 16) if match else 0xFE
        name = "INVALID" if op == 0xFE else f"opcode {op:#x} not defined"
        return VMErrorKind.INVALID_OPCODE, f"invalid opcode: {name}"
    if isinstance(error, InsufficientStack):
        have, need = stack_len, 1
        if match := _STACK_WANTED.search(text):
            need, have = int(match.group(1)), int(match.group(2) or 0)
        elif match := _STACK_FOR_OP.search(text):
            need = int(match.group(2)) + (1 if match.group(1) == "SWAP" else 0)
        return VMErrorKind.OTHER, f"stack underflow ({have} <=> {need})"
    if isinstance(error, FullStack):
        return VMErrorKind.OTHER, f"stack limit reached {STACK_LIMIT} ({STACK_LIMIT - 1})"
    for cls, geth_text in _PLAIN_ERRORS:
        if isinstance(error, cls):
            return VMErrorKind.OTHER, geth_text
    return VMErrorKind.OTHER, text


_PLAIN_ERRORS = (
    (WriteProtection, "write protection"),
    (OutOfBoundsRead, "return data out of bounds"),
    (ReservedBytesInCode, "invalid code: must not begin with 0xef"),
    (ContractCreationCollision, "contract address collision"),
    (StackDepthLimit, "max call depth exceeded"),
    (InsufficientFunds, "insufficient balance for transfer"),
)


__all__ = ["run_call", "intrinsic_gas", "floor_data_gas", "vm_error"]
