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

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.execution.api import (
    BlockEnv,
    CallMessage,
    CallResult,
    CallTimeoutError,
    ExecutionError,
    VMErrorKind,
)
from ethnode.core.execution.overrides import BlockOverrides, StateOverride
from ethnode.core.execution.precheck import CallRules, floor_data_gas, intrinsic_gas, pre_check
from ethnode.core.execution.pyevm.db import atomic_db
from ethnode.core.execution.pyevm.forks import SUPPORTED_FORKS, Fork
from ethnode.core.state.database import StateDatabase
from ethnode.core.types.header import Header

BLOB_TX_TYPE = 3
DYNAMIC_FEE_TX_TYPE = 2
STACK_LIMIT = 1024

# Opcodes that can make an execution long (loops, nested frames): the deadline is checked there.
# JUMP, JUMPI, CREATE, CALL, CALLCODE, DELEGATECALL, CREATE2, STATICCALL
_DEADLINE_OPCODES = (0x56, 0x57, 0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA)


def _rules(fork: Fork) -> CallRules:
    """The call rules of a py-evm fork, by name order (geth ``params.Rules``)."""
    order = SUPPORTED_FORKS.index(fork.name)

    def at_least(name: str) -> bool:
        return order >= SUPPORTED_FORKS.index(name)

    return CallRules(
        homestead=at_least("homestead"), istanbul=at_least("istanbul"), berlin=at_least("berlin"),
        london=at_least("london"), shanghai=fork.shanghai, cancun=fork.cancun, prague=fork.prague,
    )


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


# geth AccessListTracer.OnOpcode: which opcodes access what (stack position from the top).
_SLOT_OPCODES = (0x54, 0x55)  # SLOAD, SSTORE: (the frame's storage address, the top word)
_ADDRESS_OPCODES = {0x31: 1, 0x3B: 1, 0x3C: 1, 0x3F: 1, 0xFF: 1,  # BALANCE, EXTCODE*, SELFDESTRUCT: the top
                    0xF1: 2, 0xF2: 2, 0xF4: 2, 0xFA: 2}  # CALL, CALLCODE, DELEGATECALL, STATICCALL: second


def _word(value: int | bytes) -> bytes:
    return value.to_bytes(32, "big") if isinstance(value, int) else bytes(value).rjust(32, b"\0")


class _AccessOpcode:
    """An opcode that first records its access on the state's ``accesses`` list, when tracing
    (the twin of rust/src/evm/access_list.rs's inspector; geth records before the opcode runs,
    in every frame, reverted ones too)."""

    def __init__(self, opcode: Any, op: int) -> None:
        self.opcode = opcode
        self.op = op
        self.mnemonic = getattr(opcode, "mnemonic", "?")

    def __call__(self, computation: Any) -> None:
        accesses = computation.state.accesses
        if accesses is not None:
            values = computation._stack.values
            if self.op in _SLOT_OPCODES:
                if values:
                    accesses.append((bytes(computation.msg.storage_address), _word(values[-1])))
            elif len(values) >= (1 if _ADDRESS_OPCODES[self.op] == 1 else 5):
                accesses.append((_word(values[-_ADDRESS_OPCODES[self.op]])[12:], None))
        self.opcode(computation=computation)


@cache
def _call_state_class(state_class: Any) -> Any:
    """``state_class`` with the deadline-checking opcodes and an overridable blob base fee."""
    base_computation = state_class.computation_class
    opcodes = dict(base_computation.opcodes)
    for op in _DEADLINE_OPCODES:
        if op in opcodes:
            opcodes[op] = _DeadlineOpcode(opcodes[op])
    for op in (*_SLOT_OPCODES, *_ADDRESS_OPCODES):
        if op in opcodes:
            opcodes[op] = _AccessOpcode(opcodes[op], op)
    computation_class = type(f"Call{base_computation.__name__}", (base_computation,), {"opcodes": opcodes})

    class CallState(state_class):  # type: ignore[misc,valid-type]
        call_deadline: float | None = None
        accesses: list[tuple[bytes, bytes | None]] | None = None  # eth_createAccessList's trace
        blob_base_fee_override: int | None = None  # geth zeroes BLOBBASEFEE when the call's blob fee cap is 0
        cold_precompiles: frozenset[bytes] = frozenset()  # moved to an address geth does not warm

        def is_address_warm(self, address: Any) -> bool:
            if address in self.cold_precompiles:
                return self._account_db.is_address_warm(address)  # type: ignore[no-any-return]
            return super().is_address_warm(address)  # type: ignore[no-any-return]

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
    accesses: list[tuple[bytes, bytes | None]] | None = None,
    state_override: StateOverride | None = None,
    block_override: BlockOverrides | None = None,
    move_precompiles: bool = True,
    tracing: Any = None,
) -> CallResult:
    """Run ``message`` on the state after ``header`` in ``header``'s block context; nothing is kept.

    ``accesses``: when a list, geth's AccessListTracer events are appended to it. The
    overrides are geth's (``overrides``); ``fork`` is the one of the overridden context;
    ``move_precompiles`` as revm's ``run_call``. ``tracing``: ``(state) -> None`` called on the
    state before the message runs and again after it, with the root computation on
    ``state.last_computation`` (``pyevm/trace.py``'s hooks)."""
    rules = _rules(fork)
    env = BlockEnv.from_header(header, fee_recipient)
    if block_override is not None:
        env = block_override.apply(env)
    base_fee = env.base_fee
    if base_fee is not None and message.gas_price == 0:
        base_fee = 0  # geth: lower the base fee to 0 so a free call keeps basefee <= feecap
    context = ExecutionContext(
        coinbase=env.fee_recipient,
        timestamp=env.time,
        block_number=env.number,
        difficulty=env.difficulty,
        mix_hash=env.mix_digest,
        gas_limit=env.gas_limit,
        prev_hashes=prev_hashes,
        chain_id=config.chain_id,
        base_fee_per_gas=base_fee,
        excess_blob_gas=header.excess_blob_gas,
    )
    state = _call_state_class(fork.state_class)(atomic_db(state_db.new_overlay()), context, header.state_root)
    if message.blob_fee_cap == 0:
        state.blob_base_fee_override = 0
    elif block_override is not None and block_override.blob_base_fee is not None:
        state.blob_base_fee_override = block_override.blob_base_fee
    if state_override:
        _apply_state_override(state, state_override, relocate=move_precompiles and accesses is None)
    state.call_deadline = deadline
    state.accesses = accesses
    try:
        total_intrinsic, initcode_gas = _pre_check(state, rules, message)
        if tracing is not None:
            tracing(state)
        result = _execute(state, fork, rules, message, total_intrinsic - initcode_gas)
        if tracing is not None:
            tracing(state)
        return result
    except EVMMissingData as exc:
        raise ExecutionError(
            f"call at block #{header.number}: state data missing from the database ({type(exc).__name__}: {exc})"
        ) from None
    except _DeadlineExceeded:
        raise CallTimeoutError(f"call at block #{header.number} ran past its deadline") from None


def _no_code(computation: Any) -> Any:
    """An overridden precompile address without code: calling it runs nothing."""
    return computation


def _apply_state_override(state: Any, overrides: StateOverride, relocate: bool) -> None:
    """geth ``StateOverride.Apply`` on the throwaway state, then ``Finalise``: the overrides read
    as the state before the call (SSTORE's "original" values included). ``relocate``: apply
    geth's precompile rule too (eth_createAccessList does not), warmth as revm's (overlay.rs)."""
    builtin = state.computation_class.get_precompiles()
    precompiles, cold = dict(builtin), set()
    for address in sorted(overrides):
        account = overrides[address]
        if relocate and address in precompiles:  # geth: no longer a precompile (overlay.rs relocate_precompiles)
            moved = precompiles.pop(address)
            cold.discard(address)
            if not account.code:
                precompiles[address] = _no_code
            if account.move_precompile_to is not None:
                precompiles[account.move_precompile_to] = moved
                if account.move_precompile_to not in builtin:
                    cold.add(account.move_precompile_to)
        if account.nonce is not None:
            state.set_nonce(address, account.nonce)
        if account.code is not None:
            state.set_code(address, account.code)
        if account.balance is not None:
            state.set_balance(address, account.balance)
        if account.state is not None:
            state.delete_storage(address)
        for slot, value in (account.state if account.state is not None else account.state_diff or {}).items():
            state.set_storage(address, int.from_bytes(slot, "big"), int.from_bytes(value, "big"))
    state.lock_changes()
    if precompiles != builtin:  # this call's own set
        base = state.computation_class
        state.computation_class = type(base.__name__, (base,), {"_precompiles": precompiles})
        state.cold_precompiles = frozenset(cold)


def _pre_check(state: Any, rules: CallRules, message: CallMessage) -> tuple[int, int]:
    base_fee = state.execution_context.base_fee_per_gas if rules.london else 0  # py-evm raises before London
    return pre_check(message, rules, base_fee or 0, lambda: state.blob_base_fee, state.get_balance)


def _execute(state: Any, fork: Fork, rules: CallRules, message: CallMessage, message_intrinsic_gas: int) -> CallResult:
    """Buy gas, run the frame, settle refunds, as the fork's transaction executor does for a tx."""
    tx = _CallTx(message, message_intrinsic_gas)
    executor = state.get_transaction_executor()
    evm_message = executor.build_evm_message(tx)
    computation = executor.build_computation(evm_message, tx)
    executor.finalize_computation(tx, computation)
    state.last_computation = computation
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
