"""debug_trace*'s tracers: the compiled engine (revm inspectors, rust/src/evm/tracer.rs) and the
pure one (py-evm opcode hooks, core/execution/pyevm/trace.py) report the same traces on the
v1.17.5 eth-test chain (the forks py-evm knows), shaped by geth's callTracer and
prestateTracer; and the trace options as geth parses them. Agreement with geth itself is
``test_rpc_geth_diff.py``'s.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from eth_support import executed_ethtest_chain

from ethnode.core.blockchain import BlockChain
from ethnode.core.execution import compiled_engine_error
from ethnode.core.execution.pyevm import PyEVMExecutor
from ethnode.core.execution.tracing import TraceFrame
from ethnode.ethapi.tracers import TraceConfig, call_tracer, parse_duration, prestate_tracer
from ethnode.rpc.jsonrpc import RPCError

# Blocks with creations (1-3), logs (7-10), a blob tx (9), the EIP-7702 authorization (12),
# requests (13), transfers (14-16) and a delegated call that runs out of gas (59).
BLOCKS = [*range(1, 17), 59]


@pytest.fixture(scope="module")
def executed() -> BlockChain:
    return executed_ethtest_chain(60)


def _shapes(chain: BlockChain, executor: Any, number: int) -> list[Any]:
    block = chain.get_block(chain.get_canonical_hash(number), number)
    parent = chain.get_header(block.header.parent_hash, number - 1)
    senders = [tx.sender for tx in block.transactions]
    n = len(block.transactions)
    traces = executor.trace_block(parent, block, senders, n, list(range(n)), fee_recipient=block.header.coinbase)
    out = []
    for i, tx in enumerate(block.transactions):
        top = TraceFrame("CALL" if tx.to else "CREATE", -1, senders[i], tx.to or bytes(20), tx.value, tx.gas,
                         traces[i].gas_used, tx.data, b"", traces[i].error, True)
        out.append([call_tracer(traces[i], top, {"withLog": True}), prestate_tracer(traces[i], {}, True),
                    prestate_tracer(traces[i], {"diffMode": True}, True)])
    return out


def test_compiled_and_pure_tracers_agree(executed: BlockChain) -> None:
    if compiled_engine_error() is not None:
        pytest.skip(f"the compiled engine is not available: {compiled_engine_error()}")
    from ethnode.core.execution.revm import RevmExecutor

    compiled = RevmExecutor(executed.config, executed.state_db, executed.get_header)
    pure = PyEVMExecutor(executed.config, executed.state_db, executed.get_header)
    traced = 0
    for number in BLOCKS:
        want, got = _shapes(executed, compiled, number), _shapes(executed, pure, number)
        assert got == want, f"block {number}:\nrevm  {json.dumps(want)[:1500]}\npyevm {json.dumps(got)[:1500]}"
        traced += len(want)
    assert traced >= len(BLOCKS)


def test_pure_tracer_sees_creations_logs_and_state(executed: BlockChain) -> None:
    """Not vacuous: the traces hold created code, logs with their block-wide index, storage and diffs."""
    pure = PyEVMExecutor(executed.config, executed.state_db, executed.get_header)
    shapes = [s for n in (1, 7, 12) for s in _shapes(executed, pure, n)]
    calls, prestates, diffs = zip(*shapes, strict=True)
    assert calls[0]["type"] == "CREATE" and calls[0]["output"].startswith("0x60")
    assert any(c.get("logs") for c in calls)
    assert any("post" in d and d["post"] for d in diffs)
    assert all(p for p in prestates)


def test_go_durations() -> None:
    assert parse_duration("5s") == 5.0
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("300ms") == pytest.approx(0.3)
    for bad in ("soon", "", "5"):
        with pytest.raises(RPCError, match=f'time: invalid duration "{bad}"'):
            parse_duration(bad)


def test_trace_config_errors_are_gethish() -> None:
    assert TraceConfig(1, {"tracer": "noSuchTracer"}).error() == \
        "ReferenceError: noSuchTracer is not defined at <eval>:1:2(0)"
    assert TraceConfig(1, {"tracer": "callTracer"}).error() is None
    assert TraceConfig(1, None).timeout == 5.0
    with pytest.raises(RPCError, match="cannot unmarshal"):
        TraceConfig(1, [1])


def _call_shapes(executor: Any, header: Any, message: Any) -> list[Any]:
    trace = executor.trace_call(header, message, fee_recipient=header.coinbase)
    top = TraceFrame("CALL" if message.to else "CREATE", -1, message.sender, message.to or bytes(20), message.value,
                     message.gas, trace.gas_used, message.data, b"", trace.error, True)
    return [call_tracer(trace, top, {"withLog": True}), prestate_tracer(trace, {}, True),
            prestate_tracer(trace, {"diffMode": True}, True)]


def test_compiled_and_pure_trace_calls_agree(executed: BlockChain) -> None:
    """debug_traceCall of the differential test's probe (every kind of frame) and of a revert."""
    if compiled_engine_error() is not None:
        pytest.skip(f"the compiled engine is not available: {compiled_engine_error()}")
    from shared_support import shared_path
    from tracediff_support import probe

    from ethnode.core.execution import CallMessage
    from ethnode.core.execution.revm import RevmExecutor

    info = json.loads(shared_path("chains", "ethtest", "txinfo.json").read_text())
    rich = bytes.fromhex(sorted(json.loads(shared_path("chains", "ethtest", "accounts.json").read_text()))[0][2:])
    callme, callrevert, callenv = (info[f"deploy-{k}"]["contract"] for k in ("callme", "callrevert", "callenv"))
    header = executed.current_block
    compiled = RevmExecutor(executed.config, executed.state_db, executed.get_header)
    pure = PyEVMExecutor(executed.config, executed.state_db, executed.get_header)
    messages = [
        CallMessage(gas=5_000_000, sender=rich, value=5,
                    data=bytes.fromhex(probe(callme, callrevert, callenv, selfdestruct=sd)[2:]))
        for sd in (False, True)
    ] + [CallMessage(gas=100_000, sender=rich, to=bytes.fromhex(callrevert[2:]), data=(1).to_bytes(32, "big"))]
    for message in messages:
        want, got = _call_shapes(compiled, header, message), _call_shapes(pure, header, message)
        assert got == want, f"\nrevm  {json.dumps(want)[:3000]}\npyevm {json.dumps(got)[:3000]}"
    assert len(want[0].get("calls", [])) == 0 and want[0]["revertReason"] == "user error"


@pytest.mark.parametrize("engine", ["compiled", "pure"])
def test_a_trace_past_its_timeout_stops_with_geths_error(executed: BlockChain, engine: str) -> None:
    """geth's ``timeout`` option: an endless loop traced with 50 ms stops as "execution timeout"."""
    from ethnode.core.execution import CallMessage, CallTimeoutError

    if engine == "compiled":
        if compiled_engine_error() is not None:
            pytest.skip(f"the compiled engine is not available: {compiled_engine_error()}")
        from ethnode.core.execution.revm import RevmExecutor

        executor: Any = RevmExecutor(executed.config, executed.state_db, executed.get_header)
    else:
        executor = PyEVMExecutor(executed.config, executed.state_db, executed.get_header)
    loop = bytes.fromhex("5b5f56")  # JUMPDEST PUSH0 JUMP
    message = CallMessage(gas=1_000_000_000, data=loop)
    start = time.monotonic()
    try:
        trace = executor.trace_call(executed.current_block, message, deadline=time.monotonic() + 0.05)
        assert trace.timed_out
    except CallTimeoutError:
        pass
    assert time.monotonic() - start < 10
