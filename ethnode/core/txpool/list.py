"""Per-account nonce-sorted tx lists and the price heap (geth ``legacypool/list.go``).

A ``TxList`` holds one account's txs by nonce: strict (the pending list, contiguous, where
removing a tx invalidates every later nonce) or not (the queue, gaps allowed). The
``PricedList`` orders every remote tx by what it pays the next block, so a full pool
evicts the cheapest first; local txs are never in it, hence never evicted.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ethnode.core.types.transaction import BlobTxWithSidecar, Transaction


@dataclass(eq=False, slots=True)
class PoolTx:
    """A validated tx with what the pool asks of it often, computed once."""

    tx: Transaction | BlobTxWithSidecar  # as received; blob txs in their network form
    inner: Transaction
    hash: bytes
    sender: bytes
    nonce: int
    gas: int
    fee_cap: int
    tip_cap: int
    blob_fee_cap: int
    cost: int  # gas * fee cap + value + blob gas * blob fee cap (geth tx.Cost)
    size: int  # bytes on the wire (blob txs: with the sidecar)
    slots: int
    local: bool = False
    added: float = 0.0  # pool clock when it arrived (geth tx.Time)
    type: int = 0

    def effective_tip(self, base_fee: int | None) -> int:
        """What the block producer earns per gas; negative when the fee cap is below the base fee."""
        if base_fee is None:
            return self.tip_cap
        return min(self.tip_cap, self.fee_cap - base_fee)


def replaces(old: PoolTx, new: PoolTx, price_bump: int) -> bool:
    """geth list.Add: both fee cap and tip must exceed the old ones and reach old * (100 + bump) / 100."""
    if old.fee_cap >= new.fee_cap or old.tip_cap >= new.tip_cap:
        return False
    threshold_fee_cap = (100 + price_bump) * old.fee_cap // 100
    threshold_tip = (100 + price_bump) * old.tip_cap // 100
    return new.fee_cap >= threshold_fee_cap and new.tip_cap >= threshold_tip


class TxList:
    """One account's txs keyed by nonce (geth ``list`` over ``sortedMap``)."""

    __slots__ = ("strict", "_txs", "_order", "total_cost")

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self._txs: dict[int, PoolTx] = {}
        self._order: list[int] | None = []  # sorted nonces, None when stale
        self.total_cost = 0  # sum of costs: what the account must afford for all of them

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, nonce: int) -> bool:
        return nonce in self._txs

    def get(self, nonce: int) -> PoolTx | None:
        return self._txs.get(nonce)

    def nonces(self) -> list[int]:
        if self._order is None:
            self._order = sorted(self._txs)
        return self._order

    def flatten(self) -> list[PoolTx]:
        """The txs in nonce order."""
        return [self._txs[n] for n in self.nonces()]

    @property
    def first(self) -> PoolTx:
        return self._txs[self.nonces()[0]]

    @property
    def last(self) -> PoolTx:
        return self._txs[self.nonces()[-1]]

    def add(self, ptx: PoolTx, price_bump: int) -> tuple[bool, PoolTx | None]:
        """Insert, or replace the same nonce if the bump is met; (inserted, replaced tx)."""
        old = self._txs.get(ptx.nonce)
        if old is not None:
            if not replaces(old, ptx, price_bump):
                return False, None
            self.total_cost -= old.cost
        else:
            self._order = None
        self._txs[ptx.nonce] = ptx
        self.total_cost += ptx.cost
        return True, old

    def _pop(self, nonces: Iterable[int]) -> list[PoolTx]:
        out = [self._txs.pop(n) for n in nonces]
        if out:
            self._order = None
            self.total_cost -= sum(p.cost for p in out)
        return out

    def forward(self, threshold: int) -> list[PoolTx]:
        """Remove and return every tx with a nonce below ``threshold`` (already included)."""
        return self._pop([n for n in self.nonces() if n < threshold])

    def filter(self, cost_limit: int | None, gas_limit: int) -> tuple[list[PoolTx], list[PoolTx]]:
        """Remove txs above the gas limit or costing more than ``cost_limit`` (None: unchecked).

        Returns (removed, invalidated): in a strict list every tx after the lowest removed
        nonce can no longer execute and is returned separately, for the queue.
        """
        removed = self._pop(
            [n for n in self.nonces()
             if self._txs[n].gas > gas_limit or (cost_limit is not None and self._txs[n].cost > cost_limit)]
        )
        invalids: list[PoolTx] = []
        if removed and self.strict:
            lowest = min(p.nonce for p in removed)
            invalids = self._pop([n for n in self.nonces() if n > lowest])
        return removed, invalids

    def cap(self, threshold: int) -> list[PoolTx]:
        """Keep the ``threshold`` lowest nonces; remove and return the rest."""
        return self._pop(self.nonces()[max(threshold, 0):])

    def remove(self, ptx: PoolTx) -> tuple[bool, list[PoolTx]]:
        """Remove one tx; in a strict list the later nonces come back as invalidated."""
        if self._txs.get(ptx.nonce) is not ptx:
            return False, []
        self._pop([ptx.nonce])
        invalids = self._pop([n for n in self.nonces() if n > ptx.nonce]) if self.strict else []
        return True, invalids

    def ready(self, start: int) -> list[PoolTx]:
        """Remove and return the contiguous run from the lowest nonce, if that is <= ``start``."""
        order = self.nonces()
        if not order or order[0] > start:
            return []
        run = [order[0]]
        for n in order[1:]:
            if n != run[-1] + 1:
                break
            run.append(n)
        return self._pop(run)


# A reheap when more than this share of heap entries are stale (geth: 25%).
STALE_REHEAP_DIVISOR = 4


class PricedList:
    """Remote txs by price, cheapest first (geth ``pricedList``), with lazy deletion.

    geth splits the heap into an "urgent" and a "floating" part (4:1) to evict by fee cap
    as well as by the next block's effective tip; one heap ordered by effective tip at the
    pending base fee, then fee cap, then tip (and higher nonce first on ties) keeps the
    "cheapest remote first" rule with less machinery.
    """

    def __init__(self, is_live: Callable[[PoolTx], bool], remotes: Callable[[], Iterable[PoolTx]]) -> None:
        self._is_live = is_live
        self._remotes = remotes
        self._heap: list[tuple[int, int, int, int, int, PoolTx]] = []
        self._seq = itertools.count()
        self.base_fee: int | None = None
        self.stales = 0

    def __len__(self) -> int:
        return len(self._heap)

    def _price(self, ptx: PoolTx) -> tuple[int, int, int]:
        eff = ptx.effective_tip(self.base_fee) if self.base_fee is not None else 0
        return eff, ptx.fee_cap, ptx.tip_cap

    def put(self, ptx: PoolTx) -> None:
        if ptx.local:
            return
        heapq.heappush(self._heap, (*self._price(ptx), -ptx.nonce, next(self._seq), ptx))

    def removed(self, count: int = 1) -> None:
        """Count txs that left the pool; their entries go stale and trigger a reheap past 25%."""
        self.stales += count
        if self.stales > len(self._heap) // STALE_REHEAP_DIVISOR:
            self.reheap()

    def _clean_top(self) -> None:
        while self._heap and not self._is_live(self._heap[0][-1]):
            heapq.heappop(self._heap)
            self.stales = max(self.stales - 1, 0)

    def underpriced(self, ptx: PoolTx) -> bool:
        """Whether ``ptx`` pays no more than the cheapest remote tx (nothing to evict for it)."""
        self._clean_top()
        if not self._heap:
            return False
        return self._heap[0][:3] >= self._price(ptx)

    def discard(self, slots: int, force: bool) -> tuple[list[PoolTx], bool]:
        """Pop the cheapest live remote txs until they free ``slots``; all-or-nothing unless ``force``."""
        drop: list[PoolTx] = []
        while slots > 0 and self._heap:
            entry = heapq.heappop(self._heap)
            ptx = entry[-1]
            if not self._is_live(ptx):
                self.stales = max(self.stales - 1, 0)
                continue
            drop.append(ptx)
            slots -= ptx.slots
        if slots > 0 and not force:
            for ptx in drop:
                self.put(ptx)
            return [], False
        return drop, True

    def set_base_fee(self, base_fee: int | None) -> None:
        self.base_fee = base_fee
        self.reheap()

    def reheap(self) -> None:
        self.stales = 0
        self._heap = [(*self._price(p), -p.nonce, next(self._seq), p) for p in self._remotes() if not p.local]
        heapq.heapify(self._heap)


__all__ = ["PoolTx", "TxList", "PricedList", "replaces"]
