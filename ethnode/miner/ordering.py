"""Which pending tx goes into a block next (geth ``core/txpool/txorder/ordering.go``).

A block producer wants the best-paying txs first, but an account's txs must run in nonce
order: a tx cannot jump ahead of its sender's lower nonces however much it pays. So the
heap holds only each sender's lowest remaining tx, ordered by what it pays the producer
at the block's base fee (the effective tip); taking it puts the sender's next tx in its
place (``shift``), and a sender whose tx cannot be included loses all its later ones too
(``pop``), since they would be nonce-gapped.

Equal tips go to the tx seen first (geth compares pool arrival times). Without an
``arrival`` function the order in which senders were listed stands in for it: the pool
lists accounts in the order they arrived.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ethnode.core.types.transaction import BlobTxWithSidecar, Transaction


def unwrap(tx: Transaction | BlobTxWithSidecar) -> Transaction:
    """The tx as a block carries it (a pooled blob tx without its sidecar)."""
    return tx.tx if isinstance(tx, BlobTxWithSidecar) else tx


def effective_tip(tx: Transaction, base_fee: int | None) -> int | None:
    """What the producer earns per gas at ``base_fee``; None if the fee cap is below it (geth ErrGasFeeCapTooLow)."""
    tip: int = tx.gas_tip_cap
    if base_fee is None:
        return tip
    fee_cap: int = tx.gas_fee_cap
    if fee_cap < base_fee:
        return None
    return min(tip, fee_cap - base_fee)


class TransactionsByPriceAndNonce:
    """Pending txs handed out best tip first, each sender's in nonce order.

    ``txs`` maps sender -> that sender's executable txs in nonce order (``TxPool.pending``);
    the lists are consumed. A sender whose next tx pays less than the base fee is dropped
    with everything after it, as geth does.
    """

    def __init__(
        self,
        txs: Mapping[bytes, Sequence[Any]],
        base_fee: int | None,
        arrival: Callable[[bytes], float] | None = None,
    ) -> None:
        self.base_fee = base_fee
        self._arrival = arrival
        self._rest: dict[bytes, deque[Any]] = {}
        self._seq = itertools.count()  # a unique last key: the heap never compares txs
        self._heap: list[tuple[int, float, int, bytes, Any, int]] = []
        for sender, account_txs in txs.items():
            if not account_txs:
                continue
            self._rest[sender] = deque(account_txs[1:])
            entry = self._entry(sender, account_txs[0])
            if entry is not None:
                self._heap.append(entry)
        heapq.heapify(self._heap)

    def _entry(self, sender: bytes, tx: Any) -> tuple[int, float, int, bytes, Any, int] | None:
        inner = unwrap(tx)
        tip = effective_tip(inner, self.base_fee)
        if tip is None:
            return None
        seen = self._arrival(inner.hash) if self._arrival is not None else 0.0
        return (-tip, seen, next(self._seq), sender, tx, tip)

    def __len__(self) -> int:
        """Senders with a tx on offer."""
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def peek(self) -> tuple[Any, bytes, int] | None:
        """(tx as pooled, sender, effective tip) of the best tx, or None when nothing is left."""
        if not self._heap:
            return None
        _, _, _, sender, tx, tip = self._heap[0]
        return tx, sender, tip

    def shift(self) -> None:
        """The best tx was taken (or was stale): offer its sender's next one in its place."""
        sender = self._heap[0][3]
        rest = self._rest.get(sender)
        if rest:
            entry = self._entry(sender, rest.popleft())
            if entry is not None:
                heapq.heapreplace(self._heap, entry)
                return
        # Nothing left, or a fee cap under the base fee: nothing after it can be included either.
        heapq.heappop(self._heap)
        self._rest.pop(sender, None)

    def pop(self) -> None:
        """The best tx cannot be included: drop it and every later tx of its sender."""
        sender = heapq.heappop(self._heap)[3]
        self._rest.pop(sender, None)

    def clear(self) -> None:
        self._heap.clear()
        self._rest.clear()


__all__ = ["TransactionsByPriceAndNonce", "effective_tip", "unwrap"]
