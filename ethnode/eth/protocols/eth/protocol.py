"""The eth wire protocol, declaratively: one ``Message`` per (version, code).

eth/68 and eth/69 share most messages; they differ in Status (68 carries total
difficulty and the head hash, 69 the served block range), in block propagation
(NewBlockHashes and NewBlock exist on 68 only), in the receipt encoding (69 drops the
bloom) and in BlockRangeUpdate (69 on). eth/70 (EIP-7975) lets a receipts request start
inside a block and a reply end inside one (``firstBlockReceiptIndex``,
``lastBlockIncomplete``, both flat beside the request id); eth/71 (EIP-8159) adds
GetBlockAccessLists/BlockAccessLists, where an unavailable list is the empty string;
eth/72 (EIP-8070, the sparse blobpool) adds a custody bitmap to NewPooledTransactionHashes,
sends blob txs without their blobs in PooledTransactions, and fetches blob data as cells
(GetCells/Cells, each ``[request-id, hashes, (cells,) mask]`` flat).
Request/response pairs carry a request id as the first element, ``[request-id, payload]``
(eth/66 on). The tables below are the whole
protocol; nothing else in ethnode knows a message code.

Facts from geth ``eth/protocols/eth/protocol.go`` (v1.16 for eth/68, v1.17.8 for eth/69).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ethnode.core.forkid import ForkID
from ethnode.core.types.block import Block, Body
from ethnode.core.types.cells import CELL_SIZE
from ethnode.core.types.custody import CUSTODY_BITMAP_SIZE
from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError
from ethnode.rlp.sedes import (
    Bytes,
    FixedBytes,
    List,
    Record,
    Sedes,
    Tuple,
    big_endian_int,
    binary,
    boolean,
    hash32,
    raw,
    uint32,
    uint64,
)

PROTOCOL_NAME = "eth"
ETH68 = 68
ETH69 = 69
ETH70 = 70
ETH71 = 71
ETH72 = 72
SUPPORTED_VERSIONS = (ETH72, ETH71, ETH70, ETH69, ETH68)  # what we offer by default, highest first
PROTOCOL_LENGTHS = {ETH68: 17, ETH69: 18, ETH70: 18, ETH71: 20, ETH72: 22}  # codes used; geth protocolLengths
MAX_MESSAGE_SIZE = 10 * 1024 * 1024  # geth maxMessageSize: larger messages drop the peer
MAX_TX_BROADCAST = 5000  # txs in one Transactions message; geth maxTransactionAnnouncements

STATUS = 0x00
NEW_BLOCK_HASHES = 0x01
TRANSACTIONS = 0x02
GET_BLOCK_HEADERS = 0x03
BLOCK_HEADERS = 0x04
GET_BLOCK_BODIES = 0x05
BLOCK_BODIES = 0x06
NEW_BLOCK = 0x07
NEW_POOLED_TRANSACTION_HASHES = 0x08
GET_POOLED_TRANSACTIONS = 0x09
POOLED_TRANSACTIONS = 0x0A
GET_RECEIPTS = 0x0F
RECEIPTS = 0x10
BLOCK_RANGE_UPDATE = 0x11
GET_BLOCK_ACCESS_LISTS = 0x12
BLOCK_ACCESS_LISTS = 0x13
GET_CELLS = 0x14
CELLS = 0x15
UNAVAILABLE_BAL = b"\x80"  # EIP-8159: the empty string stands for a list not served (an empty list is a BAL)

ZERO_HASH = bytes(32)
custody_mask = FixedBytes(CUSTODY_BITMAP_SIZE)  # eth/72 custody bitmap (geth types.CustodyBitmap, [16]byte)


class ProtocolViolation(EthnodeError):
    """A peer broke the eth protocol; its connection ends with SUBPROTOCOL_ERROR, as geth's."""


# --- payload records -----------------------------------------------------------------


class Status68(Record):
    """eth/68 Status: [version, networkid, td, head, genesis, forkid]."""

    fields = (
        ("version", uint32),
        ("network_id", uint64),
        ("td", big_endian_int),
        ("head", hash32),
        ("genesis", hash32),
        ("fork_id", ForkID),
    )


class Status69(Record):
    """eth/69 Status (EIP-7642): TD and head replaced by the block range the peer serves."""

    fields = (
        ("version", uint32),
        ("network_id", uint64),
        ("genesis", hash32),
        ("fork_id", ForkID),
        ("earliest", uint64),
        ("latest", uint64),
        ("latest_hash", hash32),
    )


class BlockRange(Record):
    """BlockRangeUpdate payload, also the range part of an eth/69 Status."""

    fields = (("earliest", uint64), ("latest", uint64), ("latest_hash", hash32))

    def problem(self) -> str | None:
        """Why the range is invalid (geth BlockRangeUpdatePacket.Validate), or None."""
        if self.earliest > self.latest:
            return "earliest > latest"
        if self.latest_hash == ZERO_HASH:
            return "zero latest hash"
        return None


class BlockAnnouncement(Record):
    """One NewBlockHashes entry."""

    fields = (("hash", hash32), ("number", uint64))


class HeaderQuery(Record):
    """GetBlockHeaders: origin is a 32-byte hash or a number (geth HashOrNumber), see ``origin_of``."""

    fields = (("origin", Bytes(0, 32)), ("amount", uint64), ("skip", uint64), ("reverse", boolean))


class NewBlock(Record):
    """eth/68 NewBlock: [block, td]."""

    fields = (("block", Block), ("td", big_endian_int))


class PooledHashes(Record):
    """NewPooledTransactionHashes (eth/68 on): parallel lists of types, sizes and hashes."""

    fields = (("types", binary), ("sizes", List(uint32)), ("hashes", List(hash32)))


class PooledHashes72(Record):
    """eth/72 NewPooledTransactionHashes: the eth/68 lists plus the custody bitmap of the blob
    txs in it (16 bytes, ``ethnode.core.types.custody``; geth NewPooledTransactionHashesPacket72)."""

    fields = (("types", binary), ("sizes", List(uint32)), ("hashes", List(hash32)), ("mask", custody_mask))


def origin_of(query_origin: bytes) -> bytes | int:
    """A GetBlockHeaders origin as a hash (32 bytes) or a block number (geth HashOrNumber).

    A number must be canonical (no leading zero byte: geth decodes it as a uint64);
    lengths 9..31 are neither a hash nor a uint64.
    """
    n = len(query_origin)
    if n == 32:
        return bytes(query_origin)
    if n <= 8:
        if n and query_origin[0] == 0:
            raise ProtocolViolation("non-canonical integer (leading zero bytes) for origin")
        return int.from_bytes(query_origin, "big")
    raise ProtocolViolation(f"invalid input size {n} for origin")


def encode_origin(origin: bytes | int) -> bytes:
    """The origin field's value for ``HeaderQuery`` (a hash, or a number as minimal bytes)."""
    if isinstance(origin, int):
        if not 0 <= origin < 2**64:
            raise ValueError(f"origin number {origin} out of uint64 range")
        return origin.to_bytes((origin.bit_length() + 7) // 8, "big")
    if len(origin) != 32:
        raise ValueError("origin hash must be 32 bytes")
    return bytes(origin)


# --- message table -------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message: code, name, payload schema, and whether a request id wraps it."""

    code: int
    name: str
    payload: Sedes
    request_id: bool = False
    flat: bool = False  # eth/70: the payload's fields sit beside the request id, ``[id, a, b]``

    @property
    def schema(self) -> Sedes:
        """The wire schema: the payload, ``[request-id, payload]`` or, flat, ``[request-id, *payload]``."""
        if self.flat:
            return _flat(self.payload)
        return _wrapped(self.payload) if self.request_id else self.payload

    def encode(self, value: Any, request_id: int | None = None) -> bytes:
        if self.request_id:
            if request_id is None:
                raise ValueError(f"{self.name} needs a request id")
            if self.flat:
                return self.schema.encode((request_id, *value))
            return self.schema.encode((request_id, value))
        return self.schema.encode(value)

    def decode(self, payload: bytes) -> Any:
        """The payload value, or (request_id, value) for request/response messages (a tuple if flat)."""
        value = self.schema.decode(payload)
        if self.flat:
            return value[0], tuple(value[1:])
        return value


_WRAPPED: dict[int, Sedes] = {}
_FLAT: dict[int, Sedes] = {}


def _flat(payload: Sedes) -> Sedes:
    key = id(payload)
    schema = _FLAT.get(key)
    if schema is None:
        assert isinstance(payload, Tuple), "a flat payload is a Tuple of the fields after the request id"
        schema = _FLAT[key] = Tuple(uint64, *payload.elements)
    return schema


def _wrapped(payload: Sedes) -> Sedes:
    key = id(payload)
    schema = _WRAPPED.get(key)
    if schema is None:
        schema = _WRAPPED[key] = Tuple(uint64, payload)
    return schema


_hashes = List(hash32)
_CELLS72 = (
    Message(GET_CELLS, "GetCells", Tuple(_hashes, custody_mask), True, flat=True),  # [id, hashes, mask]
    # [id, hashes, [[cell, ...] per tx], mask]: a tx's cells index-major (every blob's cell of the first index...)
    Message(CELLS, "Cells", Tuple(_hashes, List(List(FixedBytes(CELL_SIZE))), custody_mask), True, flat=True),
)
_COMMON = (
    Message(TRANSACTIONS, "Transactions", List(raw)),
    Message(GET_BLOCK_HEADERS, "GetBlockHeaders", HeaderQuery._sedes, True),
    Message(BLOCK_HEADERS, "BlockHeaders", List(Header), True),
    Message(GET_BLOCK_BODIES, "GetBlockBodies", _hashes, True),
    Message(BLOCK_BODIES, "BlockBodies", List(Body), True),
    Message(NEW_POOLED_TRANSACTION_HASHES, "NewPooledTransactionHashes", PooledHashes._sedes),
    Message(GET_POOLED_TRANSACTIONS, "GetPooledTransactions", _hashes, True),
    Message(POOLED_TRANSACTIONS, "PooledTransactions", List(raw), True),
    Message(GET_RECEIPTS, "GetReceipts", _hashes, True),
    # Receipt items differ per version (68: consensus encoding, 69: no bloom); kept raw here.
    Message(RECEIPTS, "Receipts", List(List(raw)), True),
)

_COMMON69 = tuple(m for m in _COMMON if m.code not in (GET_RECEIPTS, RECEIPTS))
_RECEIPTS70 = (
    Message(GET_RECEIPTS, "GetReceipts", Tuple(uint64, _hashes), True, flat=True),  # [id, first-index, hashes]
    Message(RECEIPTS, "Receipts", Tuple(boolean, List(List(raw))), True, flat=True),  # [id, incomplete, lists]
)
_BALS71 = (
    Message(GET_BLOCK_ACCESS_LISTS, "GetBlockAccessLists", _hashes, True),
    Message(BLOCK_ACCESS_LISTS, "BlockAccessLists", List(raw), True),
)

MESSAGES: dict[int, dict[int, Message]] = {
    ETH68: {
        m.code: m
        for m in (
            Message(STATUS, "Status", Status68._sedes),
            Message(NEW_BLOCK_HASHES, "NewBlockHashes", List(BlockAnnouncement)),
            Message(NEW_BLOCK, "NewBlock", NewBlock._sedes),
            *_COMMON,
        )
    },
    ETH69: {
        m.code: m
        for m in (
            Message(STATUS, "Status", Status69._sedes),
            Message(BLOCK_RANGE_UPDATE, "BlockRangeUpdate", BlockRange._sedes),
            *_COMMON,
        )
    },
    ETH70: {
        m.code: m
        for m in (
            Message(STATUS, "Status", Status69._sedes),
            Message(BLOCK_RANGE_UPDATE, "BlockRangeUpdate", BlockRange._sedes),
            *_COMMON69,
            *_RECEIPTS70,
        )
    },
    ETH71: {
        m.code: m
        for m in (
            Message(STATUS, "Status", Status69._sedes),
            Message(BLOCK_RANGE_UPDATE, "BlockRangeUpdate", BlockRange._sedes),
            *_COMMON69,
            *_RECEIPTS70,
            *_BALS71,
        )
    },
}

MESSAGES[ETH72] = {
    **MESSAGES[ETH71],
    NEW_POOLED_TRANSACTION_HASHES: Message(NEW_POOLED_TRANSACTION_HASHES, "NewPooledTransactionHashes",
                                           PooledHashes72._sedes),
    **{m.code: m for m in _CELLS72},
}

# Request code -> response code, for the request tracker.
RESPONSE_CODES = {
    GET_BLOCK_HEADERS: BLOCK_HEADERS,
    GET_BLOCK_BODIES: BLOCK_BODIES,
    GET_POOLED_TRANSACTIONS: POOLED_TRANSACTIONS,
    GET_RECEIPTS: RECEIPTS,
    GET_BLOCK_ACCESS_LISTS: BLOCK_ACCESS_LISTS,
    GET_CELLS: CELLS,
}


def message(version: int, code: int) -> Message | None:
    """The message ``code`` means on ``version``, or None if that code is not part of it."""
    table = MESSAGES.get(version)
    return None if table is None else table.get(code)


def message_name(version: int, code: int) -> str:
    m = message(version, code)
    return m.name if m is not None else f"code {code:#x}"


__all__ = [
    "PROTOCOL_NAME", "ETH68", "ETH69", "ETH70", "ETH71", "ETH72", "SUPPORTED_VERSIONS", "GET_CELLS", "CELLS",
    "PooledHashes72", "custody_mask", "GET_BLOCK_ACCESS_LISTS",
    "BLOCK_ACCESS_LISTS", "UNAVAILABLE_BAL", "PROTOCOL_LENGTHS", "MAX_MESSAGE_SIZE",
    "MAX_TX_BROADCAST", "STATUS", "NEW_BLOCK_HASHES", "TRANSACTIONS", "GET_BLOCK_HEADERS", "BLOCK_HEADERS",
    "GET_BLOCK_BODIES", "BLOCK_BODIES", "NEW_BLOCK", "NEW_POOLED_TRANSACTION_HASHES", "GET_POOLED_TRANSACTIONS",
    "POOLED_TRANSACTIONS", "GET_RECEIPTS", "RECEIPTS", "BLOCK_RANGE_UPDATE", "ProtocolViolation", "Status68",
    "Status69", "BlockRange", "BlockAnnouncement", "HeaderQuery", "NewBlock", "PooledHashes", "Message",
    "MESSAGES", "RESPONSE_CODES", "message", "message_name", "origin_of", "encode_origin", "ZERO_HASH",
]
