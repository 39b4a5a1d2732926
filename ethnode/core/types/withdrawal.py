"""EIP-4895 withdrawals: beacon-chain validator withdrawals pushed into the execution layer."""

from __future__ import annotations

from collections.abc import Iterable

from ethnode.rlp.sedes import Record, address, uint64
from ethnode.trie import ordered_trie_root


class Withdrawal(Record):
    """One withdrawal; ``amount`` is in gwei, as on the beacon chain (geth types.Withdrawal)."""

    __slots__ = ()
    fields = (
        ("withdrawal_index", uint64),  # "index" is taken by tuple.index
        ("validator_index", uint64),
        ("address", address),
        ("amount", uint64),
    )


def withdrawals_root(withdrawals: Iterable[Withdrawal]) -> bytes:
    """The header's withdrawals_root: the ordered trie over each withdrawal's RLP."""
    return ordered_trie_root(w.encode() for w in withdrawals)


__all__ = ["Withdrawal", "withdrawals_root"]
