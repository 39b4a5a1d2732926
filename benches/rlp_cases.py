"""The payloads the RLP benchmarks measure, in every codec's own types.

Four cases from the issue: (a) a signed legacy tx, (b) a signed EIP-1559 tx, (c) a list
of 4096 32-byte hashes (a NewPooledTransactionHashes-sized payload), (d) 192 Prague
headers (one downloader batch). Each case is described once as an ethnode schema and once
as a pyrlp Serializable so that the typed paths do the same work in every codec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ethnode.rlp.sedes import FixedBytes, List, Optional, Record, Tuple, UInt, binary, hash32, uint64, uint256

# The EIP-155 example transaction (EIP-155 "Example"; ../shared/vectors/tx).
LEGACY_TX = bytes.fromhex(
    "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a0"
    "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b"
    "3800ccf555c9f3dc64214b297fb1966a3b6d83"
)


class LegacyTx(Record):
    fields = (
        ("nonce", uint64), ("gas_price", uint256), ("gas", uint64), ("to", FixedBytes(20, nullable=True)),
        ("value", uint256), ("data", binary), ("v", uint256), ("r", uint256), ("s", uint256),
    )


access_tuple = Tuple(FixedBytes(20), List(hash32))


class DynamicFeeTx(Record):
    fields = (
        ("chain_id", uint256), ("nonce", uint64), ("max_priority_fee", uint256), ("max_fee", uint256),
        ("gas", uint64), ("to", FixedBytes(20, nullable=True)), ("value", uint256), ("data", binary),
        ("access_list", List(access_tuple)), ("y_parity", uint256), ("r", uint256), ("s", uint256),
    )


class Header(Record):
    fields = (
        ("parent_hash", hash32), ("uncle_hash", hash32), ("coinbase", FixedBytes(20)),
        ("state_root", hash32), ("tx_root", hash32), ("receipt_root", hash32), ("bloom", FixedBytes(256)),
        ("difficulty", UInt(None)), ("number", UInt(None)), ("gas_limit", uint64), ("gas_used", uint64),
        ("time", uint64), ("extra", binary), ("mix_digest", hash32), ("nonce", FixedBytes(8)),
        ("base_fee", Optional(uint256)), ("withdrawals_root", Optional(hash32)),
        ("blob_gas_used", Optional(uint64)), ("excess_blob_gas", Optional(uint64)),
        ("parent_beacon_root", Optional(hash32)), ("requests_hash", Optional(hash32)),
    )


def _rng_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def dynamic_fee_tx(rng: random.Random) -> DynamicFeeTx:
    return DynamicFeeTx(
        1, 1337, 2 * 10**9, 120 * 10**9, 90_000, _rng_bytes(rng, 20), 3 * 10**17, _rng_bytes(rng, 68),
        [(_rng_bytes(rng, 20), [_rng_bytes(rng, 32), _rng_bytes(rng, 32)]), (_rng_bytes(rng, 20), [])],
        1, rng.getrandbits(256), rng.getrandbits(255),
    )


def header(rng: random.Random, number: int) -> Header:
    return Header(
        _rng_bytes(rng, 32), _rng_bytes(rng, 32), _rng_bytes(rng, 20), _rng_bytes(rng, 32),
        _rng_bytes(rng, 32), _rng_bytes(rng, 32), _rng_bytes(rng, 256), 0, 21_000_000 + number,
        36_000_000, rng.randrange(36_000_000), 1_750_000_000 + 12 * number, b"ethnode-bench",
        _rng_bytes(rng, 32), b"\x00" * 8, rng.randrange(10**11), _rng_bytes(rng, 32), 131072, 0,
        _rng_bytes(rng, 32), _rng_bytes(rng, 32),
    )


@dataclass
class Case:
    """One payload: its ethnode schema, typed value, raw structure and wire bytes."""

    name: str
    sedes: Any
    value: Any
    raw: Any
    wire: bytes
    items: int  # for per-item figures


def _raw(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_raw(v) for v in value]
    if value is None:
        return b""
    return value


def build_cases() -> dict[str, Case]:
    from ethnode.rlp import _pure

    rng = random.Random(2124)
    legacy = LegacyTx._sedes.node(_pure).decode(LEGACY_TX)
    dyn = dynamic_fee_tx(rng)
    hashes = [_rng_bytes(rng, 32) for _ in range(4096)]
    headers = [header(rng, i) for i in range(192)]
    specs = [
        ("legacy_tx", LegacyTx._sedes, legacy, 1),
        ("dynamic_fee_tx", DynamicFeeTx._sedes, dyn, 1),
        ("hashes_4096", List(hash32), hashes, 4096),
        ("headers_192", List(Header), headers, 192),
    ]
    cases = {}
    for name, sedes, value, items in specs:
        wire = sedes.node(_pure).encode(value)
        cases[name] = Case(name, sedes, value, _raw(value), wire, items)
    return cases


def pyrlp_sedes() -> dict[str, Any]:
    """The same schemas in pyrlp (the reference library) terms."""
    import rlp as pyrlp
    from rlp.sedes import Binary, CountableList, big_endian_int
    from rlp.sedes import List as PList

    addr_or_empty = Binary(min_length=0, max_length=20, allow_empty=True)

    class PLegacy(pyrlp.Serializable):
        fields = [
            ("nonce", big_endian_int), ("gas_price", big_endian_int), ("gas", big_endian_int),
            ("to", addr_or_empty), ("value", big_endian_int), ("data", Binary()),
            ("v", big_endian_int), ("r", big_endian_int), ("s", big_endian_int),
        ]

    h32 = Binary.fixed_length(32)

    class PDynamic(pyrlp.Serializable):
        fields = [
            ("chain_id", big_endian_int), ("nonce", big_endian_int), ("max_priority_fee", big_endian_int),
            ("max_fee", big_endian_int), ("gas", big_endian_int), ("to", addr_or_empty),
            ("value", big_endian_int), ("data", Binary()),
            ("access_list", CountableList(PList([Binary.fixed_length(20), CountableList(h32)]))),
            ("y_parity", big_endian_int), ("r", big_endian_int), ("s", big_endian_int),
        ]

    class PHeader(pyrlp.Serializable):
        fields = [
            ("parent_hash", h32), ("uncle_hash", h32), ("coinbase", Binary.fixed_length(20)),
            ("state_root", h32), ("tx_root", h32), ("receipt_root", h32), ("bloom", Binary.fixed_length(256)),
            ("difficulty", big_endian_int), ("number", big_endian_int), ("gas_limit", big_endian_int),
            ("gas_used", big_endian_int), ("time", big_endian_int), ("extra", Binary()), ("mix_digest", h32),
            ("nonce", Binary.fixed_length(8)), ("base_fee", big_endian_int), ("withdrawals_root", h32),
            ("blob_gas_used", big_endian_int), ("excess_blob_gas", big_endian_int),
            ("parent_beacon_root", h32), ("requests_hash", h32),
        ]

    return {
        "legacy_tx": PLegacy,
        "dynamic_fee_tx": PDynamic,
        "hashes_4096": CountableList(h32),
        "headers_192": CountableList(PHeader),
    }
