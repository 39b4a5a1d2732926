"""Traced re-execution of a block on revm: the Rust ``RevmTraceBlock`` runs the block's txs on
its parent's state (as geth's ``stateAtTransaction``) and reports the chosen ones' frames and
looked-up state; here they become ``TxTrace`` records, errors worded as geth's ``core/vm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ethnode.core.execution.api import BlockEnv, ExecutionError
from ethnode.core.execution.revm.call import _halt
from ethnode.core.execution.revm.spec import blob_params
from ethnode.core.execution.tracing import TraceAccount, TraceFrame, TraceLog, TxTrace
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header

if TYPE_CHECKING:
    from ethnode.core.execution.revm.executor import RevmExecutor


def _lookups(tx: object, sender: bytes, coinbase: bytes) -> list[bytes]:
    """geth prestateTracer.OnTxStart: sender, recipient (index 1), coinbase, EIP-7702 authorities."""
    to = getattr(tx, "to", None)
    out = [sender, to if to else b"", coinbase]
    for auth in getattr(tx, "auth_list", None) or ():
        try:
            out.append(auth.authority())
        except Exception:  # noqa: BLE001 - geth skips an authorization whose signer cannot be recovered
            continue
    return out


def _word(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _frame(raw: tuple) -> TraceFrame:  # type: ignore[type-arg]
    kind, parent, sender, to, value, gas, used, inp, out, outcome, opcode, stack_len, logs = raw
    error = ""
    if outcome == "revert":
        error = "execution reverted"
    elif outcome:
        error = _halt(outcome, opcode, stack_len)[1]
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
        status, used, output, frames, accounts, slots, created, destructed, timed_out = raw
        out[index] = TxTrace(
            status, used, bytes(output), [_frame(f) for f in frames],
            [TraceAccount(bytes(a), (_word(p[0]), p[1], bytes(p[2]), bytes(p[3])),
                          (_word(q[0]), q[1], bytes(q[2]), bytes(q[3]))) for a, p, q in accounts],
            [(bytes(a), bytes(s), bytes(p), bytes(q)) for a, s, p, q in slots],
            {bytes(a) for a in created}, {bytes(a) for a in destructed}, bool(timed_out),
        )
    return out


__all__ = ["trace_block"]
