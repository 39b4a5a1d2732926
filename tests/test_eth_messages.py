"""eth/68 and eth/69 message definitions: codes per version, payload schemas, request ids.

Wire vectors are geth's (eth/protocols/eth/protocol_test.go, v1.17.8), copied as facts.
"""

from __future__ import annotations

import pytest

from ethnode import rlp
from ethnode.core.forkid import ForkID
from ethnode.core.types import Block, Body, Header, LegacyTx, Receipt
from ethnode.core.types.receipt import Log
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_BODIES,
    BLOCK_HEADERS,
    BLOCK_RANGE_UPDATE,
    ETH68,
    ETH69,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    MESSAGES,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    PROTOCOL_LENGTHS,
    RECEIPTS,
    STATUS,
    TRANSACTIONS,
    BlockAnnouncement,
    BlockRange,
    HeaderQuery,
    NewBlock,
    PooledHashes,
    ProtocolViolation,
    Status68,
    Status69,
    encode_origin,
    message,
    origin_of,
)
from ethnode.rlp.errors import DecodingError

H1 = bytes.fromhex("00" * 28 + "deadc0de")
H2 = bytes.fromhex("00" * 28 + "feedbeef")


def test_codes_and_lengths_per_version() -> None:
    assert PROTOCOL_LENGTHS == {68: 17, 69: 18, 70: 18, 71: 20, 72: 22}  # geth protocolLengths
    common = {STATUS, TRANSACTIONS, GET_BLOCK_HEADERS, BLOCK_HEADERS, GET_BLOCK_BODIES, BLOCK_BODIES,
              NEW_POOLED_TRANSACTION_HASHES, GET_POOLED_TRANSACTIONS, POOLED_TRANSACTIONS, GET_RECEIPTS, RECEIPTS}
    assert set(MESSAGES[ETH68]) == common | {NEW_BLOCK_HASHES, NEW_BLOCK}
    assert set(MESSAGES[ETH69]) == common | {BLOCK_RANGE_UPDATE}
    assert set(MESSAGES[70]) == common | {BLOCK_RANGE_UPDATE}
    assert set(MESSAGES[71]) == common | {BLOCK_RANGE_UPDATE, 0x12, 0x13}
    assert set(MESSAGES[72]) == common | {BLOCK_RANGE_UPDATE, 0x12, 0x13, 0x14, 0x15}
    for version, table in MESSAGES.items():
        assert all(code < PROTOCOL_LENGTHS[version] for code in table)
    assert message(ETH69, NEW_BLOCK) is None and message(ETH68, BLOCK_RANGE_UPDATE) is None
    assert (NEW_POOLED_TRANSACTION_HASHES, GET_RECEIPTS, RECEIPTS, BLOCK_RANGE_UPDATE) == (0x08, 0x0F, 0x10, 0x11)
    with_ids = {c for c, m in MESSAGES[ETH69].items() if m.request_id}
    assert with_ids == {GET_BLOCK_HEADERS, BLOCK_HEADERS, GET_BLOCK_BODIES, BLOCK_BODIES, GET_POOLED_TRANSACTIONS,
                        POOLED_TRANSACTIONS, GET_RECEIPTS, RECEIPTS}


@pytest.mark.parametrize(
    ("code", "value", "wire"),
    [
        (GET_BLOCK_HEADERS, HeaderQuery(H1, 5, 5, False),
         "e8820457e4a000000000000000000000000000000000000000000000000000000000deadc0de050580"),
        (GET_BLOCK_HEADERS, HeaderQuery(encode_origin(9999), 5, 5, False), "ca820457c682270f050580"),
        (GET_BLOCK_BODIES, [H1, H2],
         "f847820457f842a000000000000000000000000000000000000000000000000000000000deadc0de"
         "a000000000000000000000000000000000000000000000000000000000feedbeef"),
        (GET_RECEIPTS, [], "c4820457c0"),
        (GET_POOLED_TRANSACTIONS, [], "c4820457c0"),
        (BLOCK_BODIES, [], "c4820457c0"),
    ],
)
def test_geth_request_vectors(code: int, value: object, wire: str) -> None:
    msg = message(ETH69, code)
    assert msg is not None
    assert msg.encode(value, 1111).hex() == wire
    assert msg.decode(bytes.fromhex(wire)) == (1111, value)


def test_geth_pooled_transactions_vector() -> None:
    wire = bytes.fromhex(
        "f8d7820457f8d2f867088504a817c8088302e2489435353535353535353535353535353535353535358202008025a064b1702d"
        "9298fee62dfeccc57d322a463ad55ca201256d01f62b45b2e1c21c12a064b1702d9298fee62dfeccc57d322a463ad55ca2012"
        "56d01f62b45b2e1c21c10f867098504a817c809830334509435353535353535353535353535353535353535358202d98025a0"
        "52f8f61201b2b11a78d6e866abc9c3db2ae8631fa656bfe5cb53668255367afba052f8f61201b2b11a78d6e866abc9c3db2a"
        "e8631fa656bfe5cb53668255367afb"
    )
    rid, items = message(ETH69, POOLED_TRANSACTIONS).decode(wire)  # type: ignore[union-attr]
    assert rid == 1111
    txs = [LegacyTx.decode(i) for i in items]
    assert [tx.nonce for tx in txs] == [8, 9]
    assert message(ETH69, POOLED_TRANSACTIONS).encode([tx.item() for tx in txs], 1111) == wire  # type: ignore[union-attr]


def test_geth_receipts69_vector() -> None:
    wire = bytes.fromhex(
        "f8da820457f8d5f8d3f866808082014df85ff85d940000000000000000000000000000000000000011f842a000000000000000"
        "0000000000000000000000000000000000000000000000deada0000000000000000000000000000000000000000000000000"
        "000000000000beef830100fff86901018201bcf862f860940000000000000000000000000000000000000022f842a0000000"
        "00000000000000000000000000000000000000000000000000000056 68a0000000000000000000000000000000000000000000"
        "000000000000000000977386020f0f0f0608".replace(" ", "")
    )
    rid, lists = message(ETH69, RECEIPTS).decode(wire)  # type: ignore[union-attr]
    receipts = [Receipt.decode_eth69_item(item) for item in lists[0]]
    assert rid == 1111 and len(receipts) == 2
    assert (receipts[0].type, receipts[0].cumulative_gas_used, receipts[1].type) == (0, 333, 1)
    assert receipts[0].logs[0].address == bytes.fromhex("00" * 19 + "11")
    assert message(ETH69, RECEIPTS).encode([[r.eth69_item() for r in receipts]], 1111) == wire  # type: ignore[union-attr]
    # eth/68 carries the same receipts in consensus form (with the bloom): a different item.
    assert Receipt.decode_eth68_item(receipts[1].eth68_item()) == receipts[1]


def _header(number: int = 7) -> Header:
    return Header(bytes(32), bytes(32), bytes(20), bytes(32), bytes(32), bytes(32), bytes(256), 131072, number,
                  8_000_000, 0, 1000 + number, b"", bytes(32), bytes(8), 7)


def _tx(nonce: int) -> LegacyTx:
    key = PrivateKey(bytes.fromhex("46" * 32))
    return LegacyTx(nonce, 10**9, 21000, bytes(20), 1, b"", 0, 0, 0).sign(key, 1)  # type: ignore[return-value]


def test_status_forms() -> None:
    fid = ForkID(bytes.fromhex("fc64ec04"), 1150000)
    s68 = Status68(68, 1, 17179869184, H1, H2, fid)
    s69 = Status69(69, 1, H2, fid, 0, 600, H1)
    for version, status in ((ETH68, s68), (ETH69, s69)):
        msg = message(version, STATUS)
        assert msg is not None and not msg.request_id
        assert msg.decode(msg.encode(status)) == status
    assert rlp.decode(s68.encode())[2] == (17179869184).to_bytes(5, "big")  # TD as a big integer
    with pytest.raises(DecodingError):  # an eth/68 Status is not an eth/69 one
        message(ETH69, STATUS).decode(s68.encode())  # type: ignore[union-attr]


def test_broadcast_forms_round_trip() -> None:
    header = _header()
    block = Block.new(header, [_tx(0), _tx(1)])
    cases = [
        (ETH68, NEW_BLOCK_HASHES, [BlockAnnouncement(H1, 5), BlockAnnouncement(H2, 6)]),
        (ETH68, NEW_BLOCK, NewBlock(block, 2**70)),
        (ETH69, BLOCK_RANGE_UPDATE, BlockRange(0, 600, H1)),
        (ETH69, NEW_POOLED_TRANSACTION_HASHES, PooledHashes(b"\x00\x02", [120, 4000], [H1, H2])),
        (ETH69, TRANSACTIONS, [_tx(0).item(), _tx(1).item()]),
    ]
    for version, code, value in cases:
        msg = message(version, code)
        assert msg is not None
        assert msg.decode(msg.encode(value)) == value
    bodies = message(ETH69, BLOCK_BODIES)
    assert bodies.decode(bodies.encode([block.body()], 3)) == (3, [block.body()])  # type: ignore[union-attr]
    assert isinstance(bodies.decode(bodies.encode([block.body()], 3))[1][0], Body)  # type: ignore[union-attr]
    headers = message(ETH68, BLOCK_HEADERS)
    assert headers.decode(headers.encode([header], 2**64 - 1)) == (2**64 - 1, [header])  # type: ignore[union-attr]


def test_block_range_validation() -> None:
    assert BlockRange(0, 10, H1).problem() is None
    assert BlockRange(10, 10, H1).problem() is None
    assert BlockRange(11, 10, H1).problem() == "earliest > latest"
    assert BlockRange(0, 10, bytes(32)).problem() == "zero latest hash"


def test_origin_hash_or_number() -> None:
    assert origin_of(H1) == H1
    assert origin_of(b"") == 0
    assert origin_of(b"\x27\x0f") == 9999
    assert origin_of(b"\xff" * 8) == 2**64 - 1
    for bad in (b"\x01" * 9, b"\x01" * 31):
        with pytest.raises(ProtocolViolation, match="invalid input size"):
            origin_of(bad)
    assert encode_origin(0) == b"" and encode_origin(256) == b"\x01\x00"
    with pytest.raises(ValueError):
        encode_origin(2**64)
    msg = message(ETH69, GET_BLOCK_HEADERS)
    with pytest.raises(DecodingError):  # 33-byte origin, over the schema
        msg.decode(rlp.encode([1, [b"\x01" * 33, 1, 0, 0]]))  # type: ignore[union-attr]
    for non_canonical in (b"\x00\x05", b"\x00"):  # fine as bytes, not as geth's uint64
        with pytest.raises(ProtocolViolation, match="non-canonical"):
            origin_of(msg.decode(rlp.encode([1, [non_canonical, 1, 0, 0]]))[1].origin)  # type: ignore[union-attr]
    with pytest.raises(DecodingError):  # reverse must be a geth bool
        msg.decode(rlp.encode([1, [b"", 1, 0, 2]]))  # type: ignore[union-attr]


def test_messages_need_request_ids() -> None:
    with pytest.raises(ValueError):
        message(ETH69, GET_BLOCK_BODIES).encode([H1])  # type: ignore[union-attr]
    log = Log(bytes(20), [H1], b"data")
    assert Receipt(2, 1, 21000, [log]).eth69_item() != Receipt(2, 1, 21000, [log]).eth68_item()
