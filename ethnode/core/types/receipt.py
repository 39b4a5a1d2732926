"""Receipts and logs (geth ``core/types/receipt.go``, ``bloom9.go``), in each byte form.

- consensus: ``rlp([status, cumulative_gas, bloom, logs])``, prefixed by the tx type for
  typed txs; this is what the receipts trie commits to.
- eth/68 Receipts message: the consensus form, a typed receipt wrapped in an RLP string.
- eth/69 Receipts message (EIP-7642): ``rlp([tx_type, status, cumulative_gas, logs])``,
  no bloom (the receiver recomputes it), the type inline for every receipt.

The database stores the eth/69 form: it is self-contained and 256 bytes smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ethnode import rlp
from ethnode.core.types.header import bloom256
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rlp.sedes import List, Record, Tuple, address, binary, hash32, raw, uint8, uint64
from ethnode.trie import ordered_trie_root

BLOOM_BYTES = 256  # geth types.BloomByteLength
BLOOM_BITS = BLOOM_BYTES * 8
RECEIPT_STATUS_FAILED = 0
RECEIPT_STATUS_SUCCESSFUL = 1
_STATUS_BYTES = {RECEIPT_STATUS_FAILED: b"", RECEIPT_STATUS_SUCCESSFUL: b"\x01"}


class ReceiptError(EthnodeError):
    """A receipt that does not decode."""


class Log(Record):
    """An EVM log: emitting contract, up to four topics, opaque data."""

    __slots__ = ()
    fields = (("address", address), ("topics", List(hash32)), ("data", binary))


_logs = List(Log)
_consensus_payload = Tuple(binary, uint64, bloom256, _logs)
_eth69_item = Tuple(uint8, binary, uint64, _logs)
_raw_list = List(raw)


def bloom_bits(value: bytes) -> int:
    """The three bloom bits of one value as an int mask: the low 11 bits of three keccak byte pairs."""
    h = keccak256(value)
    return (
        (1 << (((h[0] << 8) | h[1]) & 2047))
        | (1 << (((h[2] << 8) | h[3]) & 2047))
        | (1 << (((h[4] << 8) | h[5]) & 2047))
    )


def logs_bloom(logs: Iterable[Log]) -> bytes:
    """The 2048-bit bloom over every log's address and topics (yellow paper M3:2048)."""
    acc = 0
    for log in logs:
        acc |= bloom_bits(log.address)
        for topic in log.topics:
            acc |= bloom_bits(topic)
    return acc.to_bytes(BLOOM_BYTES, "big")


def bloom_contains(bloom: bytes, value: bytes) -> bool:
    """Whether ``value`` may be in the set ``bloom`` summarises (false positives possible)."""
    mask = bloom_bits(value)
    return int.from_bytes(bloom, "big") & mask == mask


class Receipt:
    """The outcome of one tx. Before Byzantium ``post_state`` (a state root) replaces status.

    The bloom is derived from the logs on first use unless it was decoded along with them.
    """

    __slots__ = ("type", "status", "cumulative_gas_used", "logs", "post_state", "_bloom")

    def __init__(
        self,
        type: int,
        status: int,
        cumulative_gas_used: int,
        logs: Sequence[Log] = (),
        post_state: bytes = b"",
        bloom: bytes | None = None,
    ) -> None:
        self.type = type
        self.status = status
        self.cumulative_gas_used = cumulative_gas_used
        self.logs = tuple(logs)
        self.post_state = post_state
        self._bloom = bloom

    @property
    def bloom(self) -> bytes:
        if self._bloom is None:
            self._bloom = logs_bloom(self.logs)
        return self._bloom

    def _status_field(self) -> bytes:
        if self.post_state:
            return self.post_state
        return _STATUS_BYTES[self.status]

    # --- encodings ---------------------------------------------------------------------

    def consensus_encoding(self) -> bytes:
        """What the receipts trie holds: type byte (typed only) + rlp of the four fields."""
        payload = _consensus_payload.encode(
            (self._status_field(), self.cumulative_gas_used, self.bloom, self.logs)
        )
        return payload if self.type == 0 else bytes((self.type,)) + payload

    def eth68_item(self) -> bytes:
        """One element of an eth/68 Receipts list: typed receipts wrapped in an RLP string."""
        enc = self.consensus_encoding()
        return enc if self.type == 0 else rlp.encode(enc)

    def eth69_item(self) -> bytes:
        """One element of an eth/69 Receipts list, also the storage form."""
        return _eth69_item.encode((self.type, self._status_field(), self.cumulative_gas_used, self.logs))

    @classmethod
    def decode_consensus(cls, data: bytes) -> Receipt:
        data = bytes(data)
        if not data:
            raise ReceiptError("empty receipt")
        tx_type = 0
        body: Any = data
        if data[0] < 0x80:
            tx_type = data[0]
            body = memoryview(data)[1:]
        elif data[0] < 0xC0:
            raise ReceiptError("typed receipt expected, got an RLP string")
        try:
            status, gas, bloom, logs = _consensus_payload.decode(body)
        except rlp.DecodingError as exc:
            raise ReceiptError(f"cannot decode receipt: {exc}") from None
        return cls._make(tx_type, status, gas, logs, bloom)

    @classmethod
    def decode_eth68_item(cls, item: bytes) -> Receipt:
        item = bytes(item)
        if item and 0x80 <= item[0] < 0xC0:
            try:
                return cls.decode_consensus(rlp.decode(item))
            except rlp.DecodingError as exc:
                raise ReceiptError(f"cannot decode receipt: {exc}") from None
        return cls.decode_consensus(item)

    @classmethod
    def decode_eth69_item(cls, item: bytes) -> Receipt:
        try:
            tx_type, status, gas, logs = _eth69_item.decode(item)
        except rlp.DecodingError as exc:
            raise ReceiptError(f"cannot decode receipt: {exc}") from None
        return cls._make(tx_type, status, gas, logs, None)

    @classmethod
    def _make(cls, tx_type: int, status: bytes, gas: int, logs: list[Log], bloom: bytes | None) -> Receipt:
        if status == b"":
            return cls(tx_type, RECEIPT_STATUS_FAILED, gas, logs, bloom=bloom)
        if status == b"\x01":
            return cls(tx_type, RECEIPT_STATUS_SUCCESSFUL, gas, logs, bloom=bloom)
        if len(status) == 32:
            return cls(tx_type, RECEIPT_STATUS_FAILED, gas, logs, post_state=status, bloom=bloom)
        raise ReceiptError(f"invalid receipt status {status.hex()}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Receipt):
            return NotImplemented
        return (self.type, self.status, self.cumulative_gas_used, self.logs, self.post_state) == (
            other.type,
            other.status,
            other.cumulative_gas_used,
            other.logs,
            other.post_state,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Receipt(type={self.type}, status={self.status}, "
            f"cumulative_gas_used={self.cumulative_gas_used}, logs={len(self.logs)})"
        )


def receipts_root(receipts: Iterable[Receipt]) -> bytes:
    """The header's receipt_root."""
    return ordered_trie_root(r.consensus_encoding() for r in receipts)


def create_bloom(receipts: Iterable[Receipt]) -> bytes:
    """The header's bloom: the union of every receipt's bloom."""
    acc = 0
    for r in receipts:
        acc |= int.from_bytes(r.bloom, "big")
    return acc.to_bytes(BLOOM_BYTES, "big")


def encode_receipts_eth69(receipts: Iterable[Receipt]) -> bytes:
    """A block's receipts as one eth/69 list (also the database form)."""
    return _rlp_list_of(r.eth69_item() for r in receipts)


def decode_receipts_eth69(data: bytes) -> list[Receipt]:
    return [Receipt.decode_eth69_item(item) for item in _split_list(data)]


def encode_receipts_eth68(receipts: Iterable[Receipt]) -> bytes:
    return _rlp_list_of(r.eth68_item() for r in receipts)


def decode_receipts_eth68(data: bytes) -> list[Receipt]:
    return [Receipt.decode_eth68_item(item) for item in _split_list(data)]


def _rlp_list_of(items: Iterable[bytes]) -> bytes:
    return _raw_list.encode(list(items))


def _split_list(data: bytes) -> list[bytes]:
    try:
        return _raw_list.decode(data)  # type: ignore[no-any-return]
    except rlp.DecodingError as exc:
        raise ReceiptError(f"cannot decode receipts: {exc}") from None


__all__ = [
    "Log",
    "Receipt",
    "ReceiptError",
    "receipts_root",
    "create_bloom",
    "logs_bloom",
    "bloom_contains",
    "encode_receipts_eth69",
    "decode_receipts_eth69",
    "encode_receipts_eth68",
    "decode_receipts_eth68",
    "RECEIPT_STATUS_FAILED",
    "RECEIPT_STATUS_SUCCESSFUL",
]
