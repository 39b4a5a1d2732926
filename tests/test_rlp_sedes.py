"""The typed layer on both backends: schemas, records, bounds, optional fields."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_support import both_rlp_impls

from ethnode import rlp
from ethnode.rlp import DecodingError, EncodingError
from ethnode.rlp.errors import RLPError
from ethnode.rlp.sedes import (
    Boolean,
    Bytes,
    FixedBytes,
    List,
    Optional,
    Raw,
    Record,
    Tuple,
    UInt,
    address,
    binary,
    hash32,
    uint64,
    uint256,
)


class LegacyTx(Record):
    fields = (
        ("nonce", uint64),
        ("gas_price", uint256),
        ("gas", uint64),
        ("to", FixedBytes(20, nullable=True)),
        ("value", uint256),
        ("data", binary),
        ("v", uint256),
        ("r", uint256),
        ("s", uint256),
    )


class MiniHeader(Record):
    fields = (
        ("parent", hash32),
        ("number", UInt(None)),
        ("base_fee", Optional(uint256)),
        ("withdrawals_root", Optional(hash32)),
    )


class Hello(Record):
    fields = (("version", uint64), ("name", Bytes(max_length=64)), ("caps", List(Tuple(binary, uint64))))
    allow_extra = True


# The EIP-155 example transaction (../shared/vectors/tx, from EIP-155 "Example").
EIP155_TX = bytes.fromhex(
    "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a0"
    "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b"
    "3800ccf555c9f3dc64214b297fb1966a3b6d83"
)


def node(sedes: Any, impl: Any) -> Any:
    return sedes.node(impl)


def test_legacy_tx_round_trip(rlp_impl: Any) -> None:
    n = node(LegacyTx._sedes, rlp_impl)
    tx = n.decode(EIP155_TX)
    assert type(tx) is LegacyTx
    assert (tx.nonce, tx.gas_price, tx.gas, tx.value, tx.v) == (9, 20 * 10**9, 21000, 10**18, 37)
    assert tx.to == b"\x35" * 20 and tx.data == b""
    assert n.encode(tx) == EIP155_TX
    assert rlp_impl.encode(tx) == EIP155_TX  # records are tuples: the raw codec encodes them


def test_record_api() -> None:
    tx = LegacyTx(1, 2, 3, None, 4, b"", 5, 6, 7)
    assert tx == LegacyTx(nonce=1, gas_price=2, gas=3, to=None, value=4, data=b"", v=5, r=6, s=7)
    assert tx != (1, 2, 3, None, 4, b"", 5, 6, 7)  # a record equals only its own type
    assert tx.replace(nonce=9).nonce == 9 and tx.nonce == 1
    assert tx.as_dict()["gas"] == 3
    assert LegacyTx.decode(tx.encode()) == tx
    assert "nonce=1" in repr(tx)
    assert hash(tx) == hash(LegacyTx(*tx))
    with pytest.raises(TypeError, match="missing"):
        LegacyTx(1, 2)
    with pytest.raises(TypeError, match="no field"):
        LegacyTx(bogus=1)
    with pytest.raises(TypeError, match="twice"):
        LegacyTx(1, 2, 3, None, 4, b"", 5, 6, 7, nonce=1)
    with pytest.raises(ValueError, match="reserved"):
        type("Bad", (Record,), {"fields": (("encode", uint64),)})
    with pytest.raises(ValueError, match="optional"):
        type("Bad", (Record,), {"fields": (("a", Optional(uint64)), ("b", uint64))})


def test_optional_trailing_fields(rlp_impl: Any) -> None:
    n = node(MiniHeader._sedes, rlp_impl)
    h = MiniHeader(parent=b"\x11" * 32, number=2**70)
    assert rlp_impl.decode(n.encode(h)) == [b"\x11" * 32, (2**70).to_bytes(9, "big")]
    assert n.decode(n.encode(h)) == h and h.base_fee is None
    full = h.replace(base_fee=7, withdrawals_root=b"\x22" * 32)
    assert n.decode(n.encode(full)) == full
    with pytest.raises(EncodingError, match="absent"):
        n.encode(h.replace(withdrawals_root=b"\x22" * 32))  # a gap before a present field
    with pytest.raises(DecodingError, match="at least"):
        n.decode(rlp.encode([b"\x11" * 32]))
    with pytest.raises(DecodingError, match="more than"):
        n.decode(rlp.encode([b"\x11" * 32, 1, 2, b"\x22" * 32, 5]))


def test_allow_extra_skips_trailing_elements(rlp_impl: Any) -> None:
    n = node(Hello._sedes, rlp_impl)
    wire = rlp.encode([5, b"ethnode", [[b"eth", 68]], b"future", [1, [2]]])
    assert n.decode(wire) == Hello(5, b"ethnode", [(b"eth", 68)])
    with pytest.raises(DecodingError):  # the skipped items must still be well-formed
        n.decode(bytes.fromhex("cd") + wire[1:-3] + b"\x81\x00\xc0")


@pytest.mark.parametrize(
    "sedes,wire,error",
    [
        (uint64, "820001", "leading zero"),
        (uint64, "00", "leading zero"),
        (uint64, "89010000000000000000", "exceeds"),
        (UInt(8), "820100", "exceeds"),
        (uint64, "c0", "list"),
        (hash32, "9f" + "00" * 31, "32 bytes"),
        (address, "80", "20 bytes"),
        (Bytes(2, 3), "81ff", "outside"),
        (Bytes(2, 3), "84aabbccdd", "outside"),
        (Boolean(), "02", "boolean"),
        (Boolean(), "00", "boolean"),
        (List(uint64, max_length=2), "c3010203", "longer"),
        (List(uint64), "80", "byte string"),
        (Tuple(uint64, uint64), "c101", "at least"),
        (Raw(), "c2c3", "past"),
    ],
)
def test_typed_decode_errors(rlp_impl: Any, sedes: Any, wire: str, error: str) -> None:
    with pytest.raises(DecodingError, match=error):
        node(sedes, rlp_impl).decode(bytes.fromhex(wire))


@pytest.mark.parametrize(
    "sedes,value,error",
    [
        (uint64, 2**64, "exceeds"),
        (uint64, -1, "negative"),
        (uint64, True, "integer expected"),
        (uint64, b"\x01", "integer expected"),
        (hash32, b"\x00" * 31, "32 bytes"),
        (hash32, None, "bytes-like"),
        (Bytes(max_length=1), b"ab", "outside"),
        (Boolean(), 1, "bool expected"),
        (List(uint64, max_length=1), [1, 2], "longer"),
        (List(uint64), b"ab", "list or tuple"),
        (Tuple(uint64), [1, 2], "more than"),
        (Raw(), b"\x81\x00", "not valid RLP"),
        (Raw(), b"\x01\x02", "more than one"),
        (LegacyTx._sedes, (1, 2, 3, None, 4, b"", 5, 6, 7), "LegacyTx expected"),
    ],
)
def test_typed_encode_errors(rlp_impl: Any, sedes: Any, value: Any, error: str) -> None:
    with pytest.raises(EncodingError, match=error):
        node(sedes, rlp_impl).encode(value)


def test_raw_keeps_the_full_item(rlp_impl: Any) -> None:
    n = node(List(Raw()), rlp_impl)
    items = [rlp.encode([1, 2]), rlp.encode(b"\x02" + b"x" * 60), b"\x05"]
    wire = rlp.encode([rlp.decode(i) for i in items])
    assert n.decode(wire) == items
    assert n.encode(items) == wire


def test_hash_list(rlp_impl: Any) -> None:
    hashes = [bytes([i]) * 32 for i in range(200)]
    wire = rlp.encode(hashes)
    n = node(List(hash32, max_length=4096), rlp_impl)
    assert n.decode(wire) == hashes
    assert n.encode(hashes) == wire == n.encode(tuple(hashes))


# --- differential: typed codec, compiled vs pure --------------------------------------

SCHEMAS = [LegacyTx._sedes, MiniHeader._sedes, Hello._sedes, List(hash32), List(Raw()), Boolean(), UInt(None)]

tx_values = st.builds(
    LegacyTx,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**256 - 1),
    st.integers(0, 2**64 - 1),
    st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
    st.integers(0, 2**256 - 1),
    st.binary(max_size=300),
    st.integers(0, 2**256 - 1),
    st.integers(0, 2**256 - 1),
    st.integers(0, 2**256 - 1),
)
header_values = st.builds(
    lambda p, n, k, bf, wr: MiniHeader(p, n, *([bf, wr][:k] + [None] * (2 - k))),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**100),
    st.integers(0, 2),
    st.integers(0, 2**256 - 1),
    st.binary(min_size=32, max_size=32),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Any) -> Any:
    try:
        return "ok", fn()
    except RLPError as exc:
        return "err", type(exc)


@SETTINGS
@given(st.one_of(tx_values, header_values))
def test_typed_records_agree(value: Any) -> None:
    compiled, pure = both_rlp_impls()
    sedes = type(value)._sedes
    wire = sedes.node(compiled).encode(value)
    assert wire == sedes.node(pure).encode(value)
    assert sedes.node(compiled).decode(wire) == sedes.node(pure).decode(wire) == value


@SETTINGS
@given(st.sampled_from(SCHEMAS), st.data())
def test_typed_decode_agrees_on_corrupt_input(sedes: Any, data: st.DataObject) -> None:
    compiled, pure = both_rlp_impls()
    if sedes is LegacyTx._sedes:
        wire = bytearray(data.draw(tx_values).encode())
    elif sedes is MiniHeader._sedes:
        wire = bytearray(data.draw(header_values).encode())
    else:
        wire = bytearray(data.draw(st.binary(max_size=80)))
    for _ in range(data.draw(st.integers(0, 3))):
        if wire:
            pos = data.draw(st.integers(0, len(wire) - 1))
            wire[pos] = data.draw(st.integers(0, 255))
    wire = bytes(wire)
    c = _outcome(lambda: sedes.node(compiled).decode(wire))
    p = _outcome(lambda: sedes.node(pure).decode(wire))
    assert c == p
    if c[0] == "ok" and sedes is not Hello._sedes:  # allow_extra drops what it skips
        assert sedes.node(compiled).encode(c[1]) == wire
