"""The pool's window on account state: the hook the execution layer fills.

geth checks every tx against the head state: the sender's nonce (lower is "nonce too
low", and pending txs must continue it without a gap) and balance (gas * fee cap + value
+ blob gas * blob fee cap must be covered, for the tx and all pending txs before it).
A node that executes blocks passes ``BlockChain.head_state_reader()``; without execution
(``--noexec``, or a pool built without a reader) the default ``UnknownState`` answers
"unknown" and the pool falls back to what it can know without state:

- nonce: the next nonce after the highest tx of the sender included in a block the pool
  saw (``on_new_head``), else the lowest nonce seen for that sender while it has txs
  pooled. A sender's first tx therefore counts as executable, and a later tx with a lower
  nonce re-bases the account (txs above a gap move back to the queue). A tx already in
  the canonical chain (by hash) is "nonce too low"; a different tx reusing an included
  nonce of a sender the pool has not seen in a block is not caught, and stays until a
  later tx of that sender is included.
- balance: not checked; nothing is dropped for lack of funds.

A ``StateReader`` over the head state (answering ints) turns on geth's checks unchanged:
nonce too low, insufficient funds (alone and cumulated over pending txs), and the drops
of pending txs on a new head. It may answer None for an address at any time (head state
not stored), and the pool then falls back as above.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

NONCE_UNCHECKED = "sender nonce against state (judged from included txs and the lowest pooled nonce)"
BALANCE_UNCHECKED = "sender balance (insufficient funds)"


@runtime_checkable
class StateReader(Protocol):
    """Account facts at the pool's head; None means "not known".

    ``BlockChain.head_state_reader()`` (``ethnode.core.state.HeadState``) implements it
    over the executed head state; ``code`` lets the pool spot EIP-7702 delegated senders.
    """

    def nonce(self, address: bytes) -> int | None: ...

    def balance(self, address: bytes) -> int | None: ...

    def code(self, address: bytes) -> bytes | None: ...


class UnknownState:
    """The stand-in without execution (--noexec): knows nothing."""

    def nonce(self, address: bytes) -> int | None:
        return None

    def balance(self, address: bytes) -> int | None:
        return None

    def code(self, address: bytes) -> bytes | None:
        return None


__all__ = ["StateReader", "UnknownState", "NONCE_UNCHECKED", "BALANCE_UNCHECKED"]
