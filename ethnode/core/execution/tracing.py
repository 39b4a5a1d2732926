"""What an engine reports about one traced tx, for the debug_trace* tracers to shape.

Engine-neutral raw facts, so each tracer's JSON is built once (``ethnode/ethapi/tracers.py``)
whichever engine ran the tx: the call frames as geth's ``OnEnter``/``OnExit`` hooks see them,
and the accounts and slots geth's prestate tracer looks up, each with its value before and
after the tx.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TraceLog:
    address: bytes
    topics: list[bytes]
    data: bytes
    index: int  # block-wide, as geth's StateDB numbers logs (a reverted frame's logs give theirs back)
    position: int  # how many child calls the frame had made when it logged


@dataclass
class TraceFrame:
    kind: str  # CALL, CALLCODE, DELEGATECALL, STATICCALL, CREATE, CREATE2
    parent: int  # index into the tx's frames, -1 for the top call
    sender: bytes
    to: bytes
    value: int | None  # None for STATICCALL (geth passes no value)
    gas: int
    gas_used: int
    input: bytes
    output: bytes
    error: str = ""  # geth's text; "" when the frame succeeded
    reverted: bool = False  # geth's "reverted" flag of OnExit (every error reverts since Homestead)
    logs: list[TraceLog] = field(default_factory=list)


@dataclass
class TraceAccount:
    """An account before and after the tx: (balance, nonce, code, code hash) each side."""

    address: bytes
    pre: tuple[int, int, bytes, bytes]
    post: tuple[int, int, bytes, bytes]


@dataclass
class TxTrace:
    status: str  # ok, revert, halt
    gas_used: int  # the receipt's
    output: bytes
    frames: list[TraceFrame]
    accounts: list[TraceAccount]
    slots: list[tuple[bytes, bytes, bytes, bytes]]  # (address, slot, pre, post)
    created: set[bytes]
    destructed: set[bytes]  # accounts that ran SELFDESTRUCT
    timed_out: bool = False
    error: str = ""  # the tx's failure when it halted (revm may halt it before its first frame)


__all__ = ["TraceLog", "TraceFrame", "TraceAccount", "TxTrace"]
