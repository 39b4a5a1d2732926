"""eth_call on revm: geth's pre-call checks here, the message in the Rust ``RevmCall``.

The block context is the block's own, with geth's call-mode tweaks: the base fee reads 0
for a call that pays no gas price (so a free call keeps basefee <= feecap) and BLOBBASEFEE
reads 0 when the call gives no blob fee cap. Failures are worded as geth's ``core/vm``
errors, which is what eth_call returns.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ethnode.core.eip4844 import blob_base_fee, latest_blob_config
from ethnode.core.execution.api import (
    BlockEnv,
    CallMessage,
    CallResult,
    CallTimeoutError,
    ExecutionError,
    VMErrorKind,
)
from ethnode.core.execution.overrides import BlockOverrides, StateOverride
from ethnode.core.execution.precheck import CallRules, pre_check
from ethnode.core.execution.revm.spec import blob_params
from ethnode.core.types.header import Header

if TYPE_CHECKING:
    from ethnode.core.execution.revm.executor import RevmExecutor

STACK_LIMIT = 1024

# revm halt names (call.rs ``halt_name``) -> (kind, geth's text)
_HALTS = {
    "out_of_gas": (VMErrorKind.OUT_OF_GAS, "out of gas"),
    "invalid_fe": (VMErrorKind.INVALID_OPCODE, "invalid opcode: INVALID"),
    "invalid_jump": (VMErrorKind.OTHER, "invalid jump destination"),
    "stack_overflow": (VMErrorKind.OTHER, f"stack limit reached {STACK_LIMIT} ({STACK_LIMIT - 1})"),
    "out_of_offset": (VMErrorKind.OTHER, "return data out of bounds"),
    "create_collision": (VMErrorKind.OTHER, "contract address collision"),
    "code_size_limit": (VMErrorKind.OTHER, "max code size exceeded"),
    "starts_with_ef": (VMErrorKind.OTHER, "invalid code: must not begin with 0xef"),
    "initcode_size_limit": (VMErrorKind.OTHER, "max initcode size exceeded"),
    "write_protection": (VMErrorKind.OTHER, "write protection"),
    "out_of_funds": (VMErrorKind.OTHER, "insufficient balance for transfer"),
    "call_too_deep": (VMErrorKind.OTHER, "max call depth exceeded"),
    "nonce_overflow": (VMErrorKind.OTHER, "nonce uint64 overflow"),
}


def _stack_inputs(opcode: int) -> int:
    """How many stack items ``opcode`` needs (for geth's "stack underflow (have <=> need)")."""
    from ethnode.core.execution.revm.opcodes import STACK_INPUTS

    return STACK_INPUTS.get(opcode, 1)


def run_call(
    executor: RevmExecutor,
    header: Header,
    message: CallMessage,
    fee_recipient: bytes | None,
    deadline: float | None,
    accesses: list[tuple[bytes, bytes | None]] | None = None,
    state_override: StateOverride | None = None,
    block_override: BlockOverrides | None = None,
    move_precompiles: bool = True,
    trace: list[Any] | None = None,
) -> CallResult:
    """``accesses``: when a list, the call runs under the access-list inspector
    (``rust/src/evm/access_list.rs``) and its accesses are appended, in order. The overrides
    are geth's (``overrides``); BLOCKHASH still reads the real chain below ``header``.
    ``move_precompiles``: apply geth's precompile rule of the overrides (eth_call does;
    geth's estimator and eth_createAccessList run the fork's precompiles as they are).
    ``trace``: when a list, under the tracers' inspector (``rust/src/evm/trace_call.rs``); its
    raw report is appended (no overrides: debug_traceCall refuses them)."""
    from ethnode import _rust

    config = executor.config
    env = BlockEnv.from_header(header, fee_recipient)
    if block_override is not None:
        env = block_override.apply(env)
    rules = CallRules.for_block(config, env.number, env.time)
    base_fee = env.base_fee
    if base_fee is not None and message.gas_price == 0:
        base_fee = 0
    env = replace(env, base_fee=base_fee)
    parent_hash = header.parent_hash
    blob = blob_params(config, env.number, env.time)
    zero_blob_fee = message.blob_fee_cap == 0
    blob_price = None if block_override is None else block_override.blob_base_fee

    def blob_fee() -> int:
        if zero_blob_fee:
            return 0
        if blob_price is not None:
            return blob_price
        bcfg = latest_blob_config(config, env.time)
        return blob_base_fee(bcfg, header.excess_blob_gas or 0) if bcfg else 1

    parent = executor._get_header(parent_hash, header.number - 1) if header.number else None
    hashes = executor.block_hash_source(parent) if parent is not None else (lambda n: None)
    try:
        kind = _rust.RevmCall if accesses is None else _rust.RevmAccessList
        if trace is not None:
            kind = _rust.RevmTraceCall
        call = kind(executor.state_db.get, header.state_root, executor._forks, config.chain_id, hashes)
        for address, account in sorted((state_override or {}).items()):
            storage = account.state if account.state is not None else account.state_diff
            call.override_account(
                address, account.nonce, None if account.balance is None else account.balance.to_bytes(32, "big"),
                account.code, list((storage or {}).items()), account.state is not None,
            )
            if move_precompiles and accesses is None:
                call.override_precompile(address, account.move_precompile_to, bool(account.code))

        def balance_of(address: bytes) -> int:
            return int.from_bytes(call.balance(address), "big")

        pre_check(message, rules, base_fee or 0, blob_fee, balance_of)
        timeout = None if deadline is None else deadline - time.monotonic()
        msg = (
            message.sender, message.to, message.value.to_bytes(32, "big"), message.data, message.gas,
            message.gas_price,
            None if message.access_list is None else [(a, list(keys)) for a, keys in message.access_list],
            None if message.blob_hashes is None else list(message.blob_hashes),
            # Not given: the call pays the block's blob base fee, as py-evm charges it (0 reads as 0).
            message.blob_fee_cap if message.blob_fee_cap is not None else (blob_fee() if message.blob_hashes else 0),
        )
        if trace is not None:
            to = message.to or trace.pop()  # a creation: the address it will take (the caller's to give)
            lookups = [message.sender, to, env.fee_recipient]
            trace.append(call.run(executor.env_args(env, parent_hash), blob, msg, zero_blob_fee, lookups, timeout))
            return CallResult(b"", 0, 0)
        status, output, used, peak, error, opcode, stack_len, *events = call.run(
            executor.env_args(env, parent_hash), blob, msg, zero_blob_fee, timeout, blob_price
        )
        if accesses is not None:
            accesses += [(bytes(a), None if s is None else bytes(s)) for a, s in events[0]]
    except _rust.EvmStateError as exc:
        raise ExecutionError(f"call at block #{header.number}: state data missing from the database ({exc})") from None
    if status == "timeout":
        raise CallTimeoutError(f"call at block #{header.number} ran past its deadline")
    if status == "ok":
        return CallResult(bytes(output), used, peak)
    if status == "revert":
        return CallResult(bytes(output), used, peak, VMErrorKind.REVERT, "execution reverted")
    kind, text = _halt(error, opcode, stack_len)
    return CallResult(b"", used, peak, kind, text)


def _halt(error: str, opcode: int, stack_len: int) -> tuple[VMErrorKind, str]:
    if error == "stack_overflow" and stack_len < _stack_inputs(opcode):
        error = "stack_underflow"  # revm halts DUPn/SWAPn on a short stack as an overflow; geth calls it what it is
    if error in _HALTS:
        return _HALTS[error]
    if error in ("opcode_not_found", "not_activated"):
        return VMErrorKind.INVALID_OPCODE, f"invalid opcode: opcode {opcode:#x} not defined"
    if error == "stack_underflow":
        return VMErrorKind.OTHER, f"stack underflow ({stack_len} <=> {_stack_inputs(opcode)})"
    return VMErrorKind.OTHER, error.removeprefix("other: ")


__all__ = ["run_call"]
