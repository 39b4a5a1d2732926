"""Blocks and bodies (geth ``core/types/block.go``).

A body's transactions are kept as raw list items (``Raw``): legacy txs are RLP lists and
typed txs RLP strings, so one schema cannot decode both, and most of the time only their
canonical bytes (for the tx root) and hashes are needed. ``transactions`` decodes them on
first use and keeps the result.

Re-encoding a decoded block gives back exactly its input bytes (the codec is strict and
canonical), which is what makes ``export`` byte-identical to the file that was imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

from ethnode import rlp
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.transaction import (
    BlobTxWithSidecar,
    Transaction,
    TransactionError,
    canonical_from_item,
    decode_tx_item,
)
from ethnode.core.types.withdrawal import Withdrawal, withdrawals_root
from ethnode.crypto.keccak import keccak256
from ethnode.rlp.framing import list_header
from ethnode.rlp.sedes import List, Optional, Record, raw
from ethnode.trie import EMPTY_ROOT, ordered_trie_root

_uncles = List(Header)
_withdrawals = List(Withdrawal)


def calc_uncle_hash(uncles: Sequence[Header]) -> bytes:
    """The header's uncle_hash: keccak256 of the RLP list of uncle headers."""
    if not uncles:
        return EMPTY_UNCLE_HASH
    return keccak256(_uncles.encode(list(uncles)))


def derive_tx_root(canonical_txs: Iterable[bytes]) -> bytes:
    """The header's tx_root over canonical tx encodings (geth DeriveSha)."""
    return ordered_trie_root(canonical_txs)


class _HasTxItems(Record):
    """What Body and Block share: decoding and committing to the tx items."""

    @cached_property
    def transactions(self) -> tuple[Transaction | BlobTxWithSidecar, ...]:
        """The decoded txs. A blob tx with a sidecar decodes (so validation can name it)."""
        txs = []
        for i, item in enumerate(self.tx_items):  # type: ignore[attr-defined]
            try:
                txs.append(decode_tx_item(item, allow_sidecar=True))
            except TransactionError as exc:
                raise TransactionError(f"transaction {i}: {exc}") from None
        return tuple(txs)

    def tx_root(self) -> bytes:
        return derive_tx_root(canonical_from_item(item) for item in self.tx_items)  # type: ignore[attr-defined]

    def uncle_hash(self) -> bytes:
        return calc_uncle_hash(self.uncles)  # type: ignore[attr-defined]

    def withdrawals_root(self) -> bytes | None:
        ws = self.withdrawals  # type: ignore[attr-defined]
        return None if ws is None else withdrawals_root(ws)


class Body(_HasTxItems):
    """A block without its header: what eth/68 BlockBodies carries and the database stores."""

    fields = (
        ("tx_items", List(raw)),
        ("uncles", _uncles),
        ("withdrawals", Optional(_withdrawals)),  # Shanghai, EIP-4895
    )


class Block(_HasTxItems):
    """A header and its body. ``hash`` is the header's."""

    fields = (
        ("header", Header),
        ("tx_items", List(raw)),
        ("uncles", _uncles),
        ("withdrawals", Optional(_withdrawals)),
    )

    @classmethod
    def new(
        cls,
        header: Header,
        transactions: Iterable[Transaction] = (),
        uncles: Iterable[Header] = (),
        withdrawals: Iterable[Withdrawal] | None = None,
    ) -> Block:
        """A block from decoded parts (the header is taken as given, roots are not filled in)."""
        txs = tuple(transactions)
        block = cls(
            header,
            [tx.item() for tx in txs],
            list(uncles),
            None if withdrawals is None else list(withdrawals),
        )
        block.__dict__["transactions"] = txs
        return block

    @classmethod
    def from_body(cls, header: Header, body: Body) -> Block:
        return cls(header, body.tx_items, body.uncles, body.withdrawals)

    @property
    def hash(self) -> bytes:
        return self.header.hash  # type: ignore[no-any-return]

    @property
    def number(self) -> int:
        return self.header.number  # type: ignore[no-any-return]

    @property
    def parent_hash(self) -> bytes:
        return self.header.parent_hash  # type: ignore[no-any-return]

    def body(self) -> Body:
        return Body(self.tx_items, self.uncles, self.withdrawals)

    def __repr__(self) -> str:
        return f"Block(#{self.number} 0x{self.hash.hex()[:12]}…, txs={len(self.tx_items)})"


def block_rlp_from_parts(header_rlp: bytes, body_rlp: bytes) -> bytes:
    """The block's RLP from stored header and body RLP, without decoding either.

    A block is ``[header, txs, uncles, withdrawals?]`` and a body ``[txs, uncles,
    withdrawals?]``, so the block is the header followed by the body's list payload.
    """
    _, start, stop = rlp.item_header(body_rlp, 0, len(body_rlp))
    payload_len = len(header_rlp) + (stop - start)
    return list_header(payload_len) + header_rlp + body_rlp[start:stop]


# Header/body consistency, shared by the downloader and the block fetcher.


def has_empty_body(header: Header) -> bool:
    """The header commits to a body with nothing in it (geth Header.EmptyBody)."""
    return (
        header.tx_root == EMPTY_ROOT
        and header.uncle_hash == EMPTY_UNCLE_HASH
        and (header.withdrawals_root is None or header.withdrawals_root == EMPTY_ROOT)
    )


def empty_body(header: Header) -> Body:
    return Body([], [], None if header.withdrawals_root is None else [])


def body_mismatch(header: Header, body: Body) -> str | None:
    """Why ``body`` is not the one ``header`` commits to, or None (geth's body hash check)."""
    if body.uncle_hash() != header.uncle_hash:
        return "uncle hash mismatch"
    if header.withdrawals_root is None:
        if body.withdrawals is not None:
            return "withdrawals present in a pre-Shanghai body"
    elif body.withdrawals is None:
        return "withdrawals missing"
    elif body.withdrawals_root() != header.withdrawals_root:
        return "withdrawals root mismatch"
    if body.tx_root() != header.tx_root:
        return "transaction root mismatch"
    return None


__all__ = [
    "Block", "Body", "calc_uncle_hash", "derive_tx_root", "block_rlp_from_parts", "has_empty_body", "empty_body",
    "body_mismatch",
]
