"""Traced re-execution of a block on revm: the Rust ``RevmTraceBlock`` runs the block's txs on
its parent's state (as geth's ``stateAtTransaction``) and reports the chosen ones' frames and
looked-up state; here they become ``TxTrace`` records, errors worded as geth's ``core/vm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ethnode import rlp
from ethnode.core.execution.api import BlockEnv, CallMessage, ExecutionError
from ethnode.core.execution.revm.call import _halt
from ethnode.core.execution.revm.spec import blob_params
from ethnode.core.execution.tracing import TraceAccount, TraceFrame, TraceLog, TxTrace
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.crypto.keccak import keccak256

if TYPE_CHECKING:
    from ethnode.core.execution.revm.executor import RevmExecutor


def _lookups(tx: object, sender: bytes, coinbase: bytes) -> list[bytes]:
    """geth prestateTracer.OnTxStart: sender, recipient (index 1), coinbase, EIP-7702 authorities."""
    to = getattr(tx, "to", None)
    if not to:  # geth looks up the address the creation will take
        to = keccak256(rlp.encode([sender, tx.nonce]))[12:]  # type: ignore[attr-defined]
    out = [sender, to, coinbase]
    for auth in getattr(tx, "auth_list", None) or ():
        try:
            out.append(auth.authority)
        except Exception:  # noqa: BLE001 - geth skips an authorization whose signer cannot be recovered
            continue
    return out


def _word(b: bytes) -> int:
    return int.from_bytes(b, "big")


# Opcodes whose write protection geth v1.17.10 finds in their gas function, and so words as out of gas.
_GAS_CHECKED_WRITES = {0x55, 0xf0, 0xf5, 0xf1, 0xff}  # SSTORE, CREATE, CREATE2, CALL with value, SELFDESTRUCT


def halt_text(outcome: str, opcode: int, stack_len: int) -> str:
    """A frame's failure worded as geth's tracers see it (``core/vm`` errors)."""
    text = _halt(outcome, opcode, stack_len)[1]
    if outcome == "write_protection" and opcode in _GAS_CHECKED_WRITES:
        return f"out of gas: {text}"
    return text


def _frame(raw: tuple) -> TraceFrame:  # type: ignore[type-arg]
    kind, parent, sender, to, value, gas, used, inp, out, outcome, opcode, stack_len, logs = raw
    error = ""
    if outcome == "revert":
        error = "execution reverted"
    elif outcome:
        error = halt_text(outcome, opcode, stack_len)
        used = gas  # geth: an error other than a revert consumes the frame's gas
    return TraceFrame(
        kind, parent, bytes(sender), bytes(to), None if value is None else _word(value), gas, used, bytes(inp),
        bytes(out), error, bool(error),
        [TraceLog(bytes(a), [bytes(t) for t in ts], bytes(d), i, p) for a, ts, d, i, p in logs],
    )


def trace_block(
    executor: RevmExecutor, parent: Header, block: Block, senders: Sequence[bytes], count: int,
    traced: Sequence[int], fee_recipient: bytes | None, timeout: float | None,
) -> dict[int, TxTrace]:
    """Run ``block``'s first ``count`` txs on ``parent``'s state; the traces of those in ``traced``."""
    from ethnode.core.execution.revm.executor import _rust

    rust = _rust()
    env = BlockEnv.from_header(block.header, fee_recipient, uncles=block.uncles)
    config = executor.config
    txs = list(block.transactions)[:count]
    want = set(traced)
    try:
        runner = rust.RevmTraceBlock(
            executor.state_db.get, parent.state_root, executor._forks, config.chain_id, executor._deposit,
            executor.env_args(env, parent.hash), blob_params(config, env.number, env.time),
            executor.block_hash_source(parent), [u.encode() for u in block.uncles], timeout,
        )
        results = runner.run(
            [tx.canonical for tx in txs], list(senders[:count]), [i in want for i in range(len(txs))],
            [_lookups(tx, s, env.fee_recipient) for tx, s in zip(txs, senders, strict=False)],
        )
    except rust.EvmStateError as exc:
        raise ExecutionError(f"block #{env.number}: state data missing from the database ({exc})") from None
    out: dict[int, TxTrace] = {}
    for index, raw in zip(sorted(want), results, strict=False):
        if isinstance(raw, str):
            raise ExecutionError(raw)
        out[index] = tx_trace(raw)
    return out


def tx_trace(raw: tuple) -> TxTrace:  # type: ignore[type-arg]
    """The Rust report of one traced tx (``tracer.rs`` ``report``) as a ``TxTrace``."""
    status, used, output, frames, accounts, slots, created, destructed, timed_out, halt = raw
    return TxTrace(
        status, used, bytes(output), [_frame(f) for f in frames],
        [TraceAccount(bytes(a), (_word(p[0]), p[1], bytes(p[2]), bytes(p[3])),
                      (_word(q[0]), q[1], bytes(q[2]), bytes(q[3]))) for a, p, q in accounts],
        [(bytes(a), bytes(s), bytes(p), bytes(q)) for a, s, p, q in slots],
        {bytes(a) for a in created}, {bytes(a) for a in destructed}, bool(timed_out),
        halt_text(halt, 0, 0) if halt else "",
    )


def _nonce(executor: RevmExecutor, header: Header, address: bytes) -> int:
    from ethnode.core.state.reader import StateView

    return StateView(executor.state_db, header.state_root).nonce(address)  # type: ignore[no-any-return]


def trace_call(
    executor: RevmExecutor, header: Header, message: CallMessage, fee_recipient: bytes | None,
    deadline: float | None,
) -> TxTrace:
    """``message`` run as eth_call runs it (geth's pre-checks first), traced."""
    from ethnode.core.execution.revm.call import run_call

    raw: list[Any] = []
    if message.to is None:
        nonce = _nonce(executor, header, message.sender)
        raw.append(keccak256(rlp.encode([message.sender, nonce]))[12:])
    run_call(executor, header, message, fee_recipient, deadline, trace=raw)
    return tx_trace(raw[0])


__all__ = ["trace_block", "trace_call", "tx_trace"]
