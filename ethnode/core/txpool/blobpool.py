"""The blob tx lane (geth ``core/txpool/blobpool``), kept in memory.

Blob txs are big (128 KiB per blob) and only ever pulled, never pushed, so geth holds them
to stricter rules than other txs, followed here: no nonce gaps (every pooled blob tx is
executable in sequence), at most 16 per account, a 100% bump on tip, fee cap and blob fee
cap to replace one, an account's txs are either all blob txs or none (the other lane
refuses it with "address already reserved"), and a cap on the bytes held.

Differences from geth: blobs live in memory (geth: on disk), so the cap is smaller; a
full lane evicts the highest nonce of the account whose cheapest tx pays the lowest tip
at the pending base fee (geth ranks accounts by how many fee jumps away from executable
they are, a finer order); txs included and then reorged out are not re-pooled (geth keeps
them in its "limbo" until finality, because blocks carry no sidecars).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ethnode.core.txpool import errors
from ethnode.core.txpool.config import MAX_BLOB_TXS_PER_ACCOUNT, TxPoolConfig
from ethnode.core.txpool.list import PoolTx, TxList


def blob_replacement_error(old: PoolTx, new: PoolTx, bump: int) -> errors.ReplaceUnderpricedError | None:
    """geth blobpool: each of fee cap, tip and blob fee cap strictly higher and >= old * (100 + bump) / 100."""
    for name, have, queued in (
        ("gas fee cap", new.fee_cap, old.fee_cap),
        ("gas tip cap", new.tip_cap, old.tip_cap),
        ("blob gas fee cap", new.blob_fee_cap, old.blob_fee_cap),
    ):
        if have <= queued:
            return errors.ReplaceUnderpricedError(f"new tx {name} {have} <= {queued} queued")
    for name, have, queued in (
        ("gas fee cap", new.fee_cap, old.fee_cap),
        ("gas tip cap", new.tip_cap, old.tip_cap),
        ("blob gas fee cap", new.blob_fee_cap, old.blob_fee_cap),
    ):
        if have < (100 + bump) * queued // 100:
            return errors.ReplaceUnderpricedError(
                f"new tx {name} {have} < {queued} queued + {bump}% replacement penalty"
            )
    return None


class BlobLane:
    """Blob txs by account, each account's list contiguous (all of them pending)."""

    def __init__(self, config: TxPoolConfig) -> None:
        self.config = config
        self.index: dict[bytes, TxList] = {}
        self.all: dict[bytes, PoolTx] = {}
        self.stored = 0  # bytes of network encodings held

    def __len__(self) -> int:
        return len(self.all)

    def __contains__(self, sender: bytes) -> bool:
        return sender in self.index

    def accounts(self) -> Iterator[tuple[bytes, TxList]]:
        return iter(list(self.index.items()))

    def check(self, ptx: PoolTx, known_nonce: int | None, balance: int | None) -> None:
        """The stateful rules (geth ValidateTransactionWithState with the blob pool's options)."""
        lst = self.index.get(ptx.sender)
        if known_nonce is not None and known_nonce > ptx.nonce:
            raise errors.NonceTooLowError(f"next nonce {known_nonce}, tx nonce {ptx.nonce}")
        if lst:
            gap = lst.last.nonce + 1
            if ptx.nonce > gap:
                raise errors.NonceTooHighError(f"tx nonce {ptx.nonce}, gapped nonce {gap}")
            if known_nonce is None and ptx.nonce < lst.first.nonce - 1:
                raise errors.NonceTooHighError(
                    f"tx nonce {ptx.nonce} leaves a gap below pooled nonce {lst.first.nonce}"
                )
        elif known_nonce is not None and ptx.nonce > known_nonce:
            raise errors.NonceTooHighError(f"tx nonce {ptx.nonce}, gapped nonce {known_nonce}")
        prev = lst.get(ptx.nonce) if lst else None
        if balance is not None:
            spent = lst.total_cost if lst else 0
            need = spent + ptx.cost - (prev.cost if prev else 0)
            if balance < ptx.cost or balance < need:
                raise errors.InsufficientFundsError(f"balance {balance}, queued cost {spent}, tx cost {ptx.cost}")
        if prev is not None:
            if prev.hash == ptx.hash:
                raise errors.AlreadyKnownError()
            err = blob_replacement_error(prev, ptx, self.config.blob_price_bump)
            if err is not None:
                raise err
        elif lst is not None and len(lst) >= MAX_BLOB_TXS_PER_ACCOUNT:
            raise errors.AccountLimitExceededError(f"pooled {len(lst)} txs")

    def insert(self, ptx: PoolTx) -> PoolTx | None:
        """Store a checked tx; returns the tx it replaced."""
        lst = self.index.setdefault(ptx.sender, TxList(strict=True))
        # ``check`` enforced the stricter blob bump, so the generic one (fee cap, tip) holds too.
        inserted, old = lst.add(ptx, self.config.blob_price_bump)
        assert inserted, "blob replacement passed check() but not the list's bump"
        if old is not None:
            self._forget(old)
        self.all[ptx.hash] = ptx
        self.stored += ptx.size
        return old

    def _forget(self, ptx: PoolTx) -> None:
        if self.all.pop(ptx.hash, None) is not None:
            self.stored -= ptx.size

    def remove(self, ptx: PoolTx) -> list[PoolTx]:
        """Drop ``ptx`` and every later tx of its account (they would be gapped); returns all dropped."""
        lst = self.index.get(ptx.sender)
        if lst is None:
            return []
        found, invalids = lst.remove(ptx)
        if not found:
            return []
        dropped = [ptx, *invalids]
        for p in dropped:
            self._forget(p)
        if not lst:
            del self.index[ptx.sender]
        return dropped

    def evict_over_cap(self, base_fee: int | None) -> list[PoolTx]:
        """Drop highest-nonce txs of the worst-paying accounts until under the byte cap."""
        dropped: list[PoolTx] = []
        while self.stored > self.config.blob_datacap and self.index:
            worst = min(
                self.index.items(),
                key=lambda kv: min((p.effective_tip(base_fee), p.blob_fee_cap) for p in kv[1].flatten()),
            )
            dropped += self.remove(worst[1].last)
        return dropped

    def reset(
        self,
        known_nonce: Callable[[bytes], int | None],
        balance: Callable[[bytes], int | None],
        gas_limit: int,
    ) -> list[PoolTx]:
        """After a new head: drop included, unaffordable, oversized and newly gapped txs."""
        dropped: list[PoolTx] = []
        for sender, lst in self.accounts():
            nonce = known_nonce(sender)
            gone = lst.forward(nonce) if nonce is not None else []
            removed, invalids = lst.filter(balance(sender), gas_limit)
            gone += removed + invalids
            if lst and nonce is not None and lst.first.nonce != nonce:
                gone += lst.cap(0)  # a gap in front: none of them can execute (geth drops them too)
            for p in gone:
                self._forget(p)
            dropped += gone
            if not lst:
                del self.index[sender]
        return dropped


__all__ = ["BlobLane", "blob_replacement_error"]
