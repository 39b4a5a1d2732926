"""Traced re-execution of a block on py-evm: the twin of ``rust/src/evm/tracer.rs``.

The block is opened as ``PyEVMBlockBuilder`` opens it (system calls first) and its txs applied
in order; a traced tx runs with a computation class whose opcodes report to a ``_Tracer`` on
the state, as geth's hooks do: the accounts and slots geth's prestate tracer looks up (read
when looked up, kept only when the opcode paid its gas), the kind and target of each call,
log positions among a frame's calls, SELFDESTRUCT frames. The call frames themselves are read
afterwards from py-evm's computation tree. The result is the engine-neutral ``TxTrace``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cache
from typing import Any

from eth.exceptions import Halt, VMError, WriteProtection

from ethnode import rlp
from ethnode.core.execution.api import BlockEnv, ExecutionError
from ethnode.core.execution.pyevm.call import vm_error
from ethnode.core.execution.tracing import TraceAccount, TraceFrame, TraceLog, TxTrace
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.crypto.keccak import keccak256

_JUMPS = (0x56, 0x57)  # every long execution passes here: the deadline is checked on these and the calls
_CALLS = {0xF1: "CALL", 0xF2: "CALLCODE", 0xF4: "DELEGATECALL", 0xFA: "STATICCALL"}
_CREATES = {0xF0: "CREATE", 0xF5: "CREATE2"}
_SLOTS = (0x54, 0x55)
_ACCOUNTS = (0x31, 0x3B, 0x3C, 0x3F, 0xFF)
_LOGS = (0xA0, 0xA1, 0xA2, 0xA3, 0xA4)
_GAS_CHECKED_WRITES = {0x55, 0xF0, 0xF5, 0xF1, 0xFF}  # see revm/trace.py
DELEGATION_PREFIX = b"\xef\x01\x00"


def _create_address(sender: bytes, nonce: int) -> bytes:
    return keccak256(rlp.encode([sender, nonce]))[12:]


class TraceTimeout(Exception):
    """Not a py-evm ``VMError``, so no frame swallows it: the traced tx ran past geth's ``timeout``."""


class _Tracer:
    """What one traced tx's opcodes report (geth's OnTxStart/OnOpcode lookups and more)."""

    def __init__(self, state: Any, cancun: bool, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.state = state
        self.cancun = cancun
        self.accounts: dict[bytes, tuple[int, int, bytes, bytes]] = {}
        self.slots: dict[tuple[bytes, bytes], bytes] = {}
        self.created: set[bytes] = set()
        self.destructed: set[bytes] = set()

    def account(self, address: bytes) -> None:
        if address not in self.accounts:
            st = self.state
            self.accounts[address] = (st.get_balance(address), st.get_nonce(address), bytes(st.get_code(address)),
                                      bytes(st.get_code_hash(address)))

    def delegated(self, address: bytes) -> None:
        code = bytes(self.state.get_code(address))
        if len(code) == 23 and code.startswith(DELEGATION_PREFIX):
            self.account(code[3:])

    def slot(self, address: bytes, slot: bytes) -> None:
        if (address, slot) not in self.slots:
            value = self.state.get_storage(address, int.from_bytes(slot, "big"))
            self.slots[(address, slot)] = value.to_bytes(32, "big")


class _TraceOpcode:
    """An opcode that reports to the state's tracer around running (see the module docs)."""

    def __init__(self, opcode: Any, op: int) -> None:
        self.opcode = opcode
        self.op = op
        self.mnemonic = getattr(opcode, "mnemonic", "?")

    def __call__(self, computation: Any) -> None:
        tracer: _Tracer | None = getattr(computation.state, "tracer", None)
        if tracer is None:
            self.opcode(computation=computation)
            return
        if tracer.deadline is not None and time.monotonic() > tracer.deadline:
            raise TraceTimeout
        op, values, msg = self.op, computation._stack.values, computation.msg
        here = bytes(msg.storage_address)
        lookups: list[tuple[str, bytes, bytes]] = []

        def word(i: int) -> bytes:
            v = values[-i]
            return v.to_bytes(32, "big") if isinstance(v, int) else bytes(v).rjust(32, b"\0")

        if op in _SLOTS and values:
            lookups.append(("slot", here, word(1)))
        elif op in _ACCOUNTS and values:
            lookups.append(("account", word(1)[12:], b""))
        elif op in _CALLS and len(values) >= 5:
            lookups.append(("call", word(2)[12:], b""))
        elif op == 0xF0:
            lookups.append(("create", _create_address(here, computation.state.get_nonce(here)), b""))
        elif op == 0xF5 and len(values) >= 4:
            offset, size = int.from_bytes(word(2), "big"), int.from_bytes(word(3), "big")
            memory = bytes(computation._memory._bytes)
            init = memory[offset:offset + size].ljust(size, b"\0") if size < 1 << 24 else b""
            address = keccak256(b"\xff" + here + word(4) + keccak256(init))[12:]
            lookups.append(("create", address, b""))
        # Read the values now (geth reads them when it looks them up), keep them if the opcode paid.
        before = (dict(tracer.accounts), dict(tracer.slots))
        for kind, address, slot in lookups:
            if kind == "slot":
                tracer.slot(address, slot)
            else:
                tracer.account(address)
                if kind == "call" and self._prague(computation):
                    tracer.delegated(address)
        n_children = len(computation.children)
        frames = computation.__dict__.setdefault("trace_extra", [])
        balance = computation.state.get_balance(here) if op == 0xFF else 0
        try:
            self.opcode(computation=computation)
        except Halt:  # SELFDESTRUCT stops the frame this way: it succeeded
            self._after(computation, tracer, op, lookups, n_children, frames, balance, here)
            raise
        except WriteProtection:
            tracer.accounts, tracer.slots = before
            if op in _LOGS or op not in _GAS_CHECKED_WRITES:
                computation.__dict__["trace_plain_write"] = True
            raise
        except VMError:
            tracer.accounts, tracer.slots = before
            raise
        self._after(computation, tracer, op, lookups, n_children, frames, balance, here)

    @staticmethod
    def _after(computation: Any, tracer: _Tracer, op: int, lookups: list[tuple[str, bytes, bytes]], n_children: int,
               frames: list[Any], balance: int, here: bytes) -> None:
        """The opcode ran (or halted its frame as it should): record what it did."""
        for kind, address, _ in lookups:
            if kind == "create":
                tracer.created.add(address)
        if len(computation.children) > n_children:  # the frame this opcode entered
            child = computation.children[-1]
            child.__dict__["trace_kind"] = _CALLS.get(op) or _CREATES.get(op, "CALL")
            if op in _CALLS and lookups:
                child.__dict__["trace_target"] = lookups[0][1]
        if op in _LOGS:
            computation.__dict__.setdefault("trace_log_positions", []).append(
                len(computation.children) + len(frames))
        if op == 0xFF:
            tracer.destructed.add(here)
            frames.append((len(computation.children), here, lookups[0][1] if lookups else bytes(20), balance))

    @staticmethod
    def _prague(computation: Any) -> bool:
        return bool(getattr(computation.state, "trace_prague", False))


@cache
def _tracing_class(computation_class: Any) -> Any:
    opcodes = dict(computation_class.opcodes)
    for op in (*_CALLS, *_CREATES, *_SLOTS, *_ACCOUNTS, *_LOGS, *_JUMPS):
        if op in opcodes:
            opcodes[op] = _TraceOpcode(opcodes[op], op)
    return type(f"Tracing{computation_class.__name__}", (computation_class,), {"opcodes": opcodes})


def _frames(root: Any, top_kind: str, sender: bytes, log_base: int) -> list[TraceFrame]:
    """py-evm's computation tree as geth's frames, in enter order; logs numbered as geth's StateDB."""
    out: list[TraceFrame] = []
    counter = [log_base]

    def error_of(c: Any) -> str:
        if not c.is_error:
            return ""
        text = vm_error(c.error)[1]
        if text == "write protection" and not c.__dict__.get("trace_plain_write"):
            return "out of gas: write protection"
        return text

    def visit(c: Any, parent: int, kind: str, from_: bytes) -> None:
        msg = c.msg
        target = c.__dict__.get("trace_target")
        to = bytes(msg.storage_address)
        if kind in ("DELEGATECALL", "CALLCODE") and target is not None:
            to = target
        value = None if kind == "STATICCALL" else msg.value
        data = bytes(msg.code) if msg.is_create else bytes(msg.data)
        error = error_of(c)
        gas_used = msg.gas - c.get_gas_remaining()
        frame = TraceFrame(kind, parent, from_, to, value, msg.gas, gas_used, data, bytes(c.output), error,
                           bool(error))
        if error and error != "execution reverted":
            frame.gas_used = msg.gas
        index = len(out)
        out.append(frame)
        start = counter[0]
        positions = c.__dict__.get("trace_log_positions", [])
        entries = list(c._log_entries)
        extras = c.__dict__.get("trace_extra", [])
        children = list(c.children)
        slots = len(children) + len(extras)
        logs_at: dict[int, list[Any]] = {}
        for pos, entry in zip(positions, entries, strict=False):
            logs_at.setdefault(pos, []).append(entry)
        child_i = 0
        extra_i = 0
        done = 0
        for slot in range(slots + 1):
            for _, address, topics, data_ in logs_at.get(slot, []):
                frame.logs.append(TraceLog(bytes(address), [t.to_bytes(32, "big") for t in topics], bytes(data_),
                                           counter[0], done))
                counter[0] += 1
            if slot == slots:
                break
            if extra_i < len(extras) and extras[extra_i][0] == child_i:
                _, contract, beneficiary, balance = extras[extra_i]
                out.append(TraceFrame("SELFDESTRUCT", index, contract, beneficiary, balance, 0, 0, b"", b""))
                extra_i += 1
            else:
                child = children[child_i]
                child_i += 1
                ckind = child.__dict__.get("trace_kind", "CALL")
                cfrom = to if ckind == "DELEGATECALL" else bytes(child.msg.sender)
                visit(child, index, ckind, cfrom)
            done += 1
        if c.is_error:
            counter[0] = start

    visit(root, -1, top_kind, sender)
    return out


def _trace_of(tracer: _Tracer, root: Any, state: Any, top_kind: str, sender: bytes, used: int,
              log_base: int) -> TxTrace:
    frames = _frames(root, top_kind, sender, log_base)
    accounts = [
        TraceAccount(a, pre, (state.get_balance(a), state.get_nonce(a), bytes(state.get_code(a)),
                              bytes(state.get_code_hash(a))))
        for a, pre in tracer.accounts.items()
    ]
    slots = [(a, s, pre, state.get_storage(a, int.from_bytes(s, "big")).to_bytes(32, "big"))
             for (a, s), pre in tracer.slots.items()]
    status = "ok" if not root.is_error else ("revert" if frames[0].error == "execution reverted" else "halt")
    return TxTrace(status, used, bytes(root.output), frames, accounts, slots, tracer.created,
                   tracer.destructed, False, frames[0].error if status == "halt" else "")


class CallTracing:
    """``run_call``'s ``tracing`` hook for debug_traceCall: installs the tracer before the message
    runs (geth's OnTxStart lookups), collects the trace after."""

    def __init__(self, message: Any, coinbase: bytes, fork: Any) -> None:
        self.message = message
        self.coinbase = coinbase
        self.fork = fork
        self.tracer: _Tracer | None = None
        self.state: Any = None

    def __call__(self, state: Any) -> None:
        if self.tracer is None:
            msg = self.message
            tracer = _Tracer(state, self.fork.cancun)
            to = msg.to or _create_address(msg.sender, state.get_nonce(msg.sender))
            if msg.to and self.fork.prague:
                tracer.delegated(to)
            for address in (msg.sender, to, self.coinbase):
                tracer.account(address)
            if not msg.to:
                tracer.created.add(to)
            state.computation_class = _tracing_class(state.computation_class)
            state.tracer, state.trace_prague = tracer, self.fork.prague
            self.tracer, self.state = tracer, state
        else:
            state.tracer = None

    def trace(self, result: Any) -> TxTrace:
        state, msg = self.state, self.message
        if self.tracer is None or getattr(state, "last_computation", None) is None:
            raise ExecutionError("the traced call did not run")
        return _trace_of(self.tracer, state.last_computation, state, "CALL" if msg.to else "CREATE", msg.sender,
                         result.gas_used, 0)


def trace_block(
    executor: Any, parent: Header, block: Block, senders: Sequence[bytes], count: int, traced: Sequence[int],
    fee_recipient: bytes | None, timeout: float | None,
) -> dict[int, TxTrace]:
    """As ``revm/trace.py``'s: the first ``count`` txs of ``block`` on ``parent``'s state, ``traced`` ones traced."""
    env = BlockEnv.from_header(block.header, fee_recipient, uncles=block.uncles)
    builder = executor.new_block(parent, env)
    state = builder.state
    cancun, prague = builder.fork.cancun, builder.fork.prague
    want = set(traced)
    out: dict[int, TxTrace] = {}
    log_base = 0
    plain_class = state.computation_class
    for i, tx in enumerate(list(block.transactions)[:count]):
        sender = senders[i]
        if i not in want:
            receipt = builder.apply_transaction(tx, sender)
            log_base += len(receipt.logs)
            continue
        tracer = _Tracer(state, cancun, None if timeout is None else time.monotonic() + timeout)
        to = tx.to or _create_address(sender, tx.nonce)
        if tx.to and prague:
            tracer.delegated(to)
        for address in (sender, to, env.fee_recipient):
            tracer.account(address)
        for auth in getattr(tx, "auth_list", None) or ():
            try:
                tracer.account(auth.authority)
            except Exception:  # noqa: BLE001 - geth skips an authorization whose signer cannot be recovered
                continue
        if not tx.to:
            tracer.created.add(to)
        captured: list[Any] = []

        def capture(evm_tx: Any, apply: Any = state.apply_transaction, into: list[Any] = captured) -> Any:
            computation = apply(evm_tx)
            into.append(computation)
            return computation

        state.computation_class = _tracing_class(plain_class)
        state.tracer, state.trace_prague = tracer, prague
        state.apply_transaction = capture
        try:
            receipt = builder.apply_transaction(tx, sender)
        except TraceTimeout:
            out[i] = TxTrace("halt", 0, b"", [], [], [], set(), set(), True)
            return out
        finally:
            state.computation_class = plain_class
            state.tracer = None
            del state.apply_transaction
        if not captured:
            raise ExecutionError(f"tx {i} of block #{env.number} left no computation")
        root = captured[0]
        earlier = builder.receipts[-2].cumulative_gas_used if len(builder.receipts) > 1 else 0
        used = receipt.cumulative_gas_used - earlier
        out[i] = _trace_of(tracer, root, state, "CALL" if tx.to else "CREATE", sender, used, log_base)
        log_base += len(receipt.logs)
    return out


__all__ = ["trace_block", "CallTracing"]
