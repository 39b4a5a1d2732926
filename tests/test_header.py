"""Block headers: the 600 headers of geth's ethtest chain decode, re-encode and link up."""

from __future__ import annotations

import pytest
from shared_support import shared_path

from ethnode import rlp
from ethnode.core.types import EMPTY_UNCLE_HASH, Header, HeaderError
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rlp import DecodingError, EncodingError
from ethnode.rlp._pure import item_header
from ethnode.rlp.sedes import List, Optional, Raw, Tuple

# Block 600 of the ethtest chain (../shared/chains/ethtest/README.md, headfcu.json).
HEAD_HASH = "44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a"
CANCUN_TIME, PRAGUE_TIME = 60, 120  # ethtest genesis.json config

# A block as it sits in chain.rlp: [header, txs, uncles, withdrawals (from Shanghai)].
Block = Tuple(Header, List(Raw()), List(Header), Optional(List(Raw())))


def _blocks() -> list[bytes]:
    data = shared_path("chains", "ethtest", "chain.rlp").read_bytes()
    out, pos = [], 0
    while pos < len(data):
        _, _, end = item_header(data, pos, len(data))
        out.append(data[pos:end])
        pos = end
    return out


@pytest.fixture(scope="module")
def blocks() -> list[bytes]:
    return _blocks()


def test_chain_decodes_reencodes_and_links(blocks: list[bytes]) -> None:
    assert len(blocks) == 600
    parent = None
    for n, wire in enumerate(blocks, start=1):
        header, txs, uncles, withdrawals = Block.decode(wire)
        assert isinstance(header, Header)
        assert header.number == n
        assert Block.encode((header, txs, uncles, withdrawals)) == wire
        header_wire = rlp.encode(rlp.decode(wire)[0])
        assert header.encode() == header_wire
        assert Header.decode(header_wire) == header
        assert header.hash == keccak256(header_wire)
        if parent is not None:
            assert header.parent_hash == parent.hash
            assert header.time >= parent.time
        assert header.uncle_hash == keccak256(rlp.encode(rlp.decode(wire)[2])) == EMPTY_UNCLE_HASH
        parent = header
    assert parent is not None and parent.hash.hex() == HEAD_HASH


def test_fork_fields_follow_the_schedule(blocks: list[bytes]) -> None:
    seen = set()
    for wire in blocks:
        header = Block.decode(wire)[0]
        assert header.base_fee is not None and header.withdrawals_root is not None  # London, Shanghai at 0
        cancun = header.time >= CANCUN_TIME
        prague = header.time >= PRAGUE_TIME
        assert (header.blob_gas_used is not None) == cancun
        assert (header.excess_blob_gas is not None) == cancun
        assert (header.parent_beacon_root is not None) == cancun
        assert (header.requests_hash is not None) == prague
        seen.add((cancun, prague))
        header.sanity_check()
    assert seen == {(False, False), (True, False), (True, True)}  # the chain crosses both forks


def test_backends_agree_on_the_chain(blocks: list[bytes]) -> None:
    try:
        compiled = rlp.implementation("compiled")
    except ImportError:
        pytest.skip("compiled RLP codec not available")
    pure = rlp.implementation("pure")
    for wire in blocks[::7]:
        header_wire = rlp.encode(rlp.decode(wire)[0])
        a = Header._sedes.node(compiled).decode(header_wire)
        b = Header._sedes.node(pure).decode(header_wire)
        assert a == b and a.hash == b.hash


def _sample(**changes: object) -> Header:
    base = Header(
        parent_hash=b"\x11" * 32, uncle_hash=EMPTY_UNCLE_HASH, coinbase=b"\x22" * 20, state_root=b"\x33" * 32,
        tx_root=b"\x44" * 32, receipt_root=b"\x55" * 32, bloom=bytes(256), difficulty=131072, number=1,
        gas_limit=30_000_000, gas_used=21_000, time=12, extra=b"ethnode", mix_digest=bytes(32),
        nonce=bytes(8),
    )
    return base.replace(**changes)


def test_hash_is_cached_per_object() -> None:
    header = _sample()
    first = header.hash
    assert header.hash is first
    assert header.__dict__["hash"] == first == keccak256(header.encode())
    changed = header.replace(number=2)
    assert changed.hash != first  # replace() makes a new object with its own hash


def test_legacy_header_has_fifteen_fields_and_prague_twenty_one() -> None:
    legacy = _sample()
    assert len(rlp.decode(legacy.encode())) == 15 and legacy.base_fee is None
    prague = _sample(
        base_fee=7, withdrawals_root=b"\x66" * 32, blob_gas_used=0, excess_blob_gas=0,
        parent_beacon_root=bytes(32), requests_hash=b"\x77" * 32,
    )
    assert len(rlp.decode(prague.encode())) == 21
    assert Header.decode(prague.encode()) == prague


def test_amsterdam_header_has_twenty_three_fields() -> None:
    """geth v1.17.8 appends BlockAccessListHash (EIP-7928) and SlotNumber (EIP-7843)."""
    amsterdam = _sample(
        base_fee=7, withdrawals_root=b"\x66" * 32, blob_gas_used=0, excess_blob_gas=0,
        parent_beacon_root=bytes(32), requests_hash=b"\x77" * 32, block_access_list_hash=b"\x88" * 32, slot_number=5,
    )
    items = rlp.decode(amsterdam.encode())
    assert len(items) == 23 and items[21] == b"\x88" * 32 and items[22] == b"\x05"
    assert Header.decode(amsterdam.encode()) == amsterdam
    # slot 0 is a present field (an empty string), not an absent one
    zero = amsterdam.replace(slot_number=0)
    assert rlp.decode(zero.encode())[22] == b"" and Header.decode(zero.encode()).slot_number == 0


def test_optional_fields_cannot_skip() -> None:
    # withdrawals_root present while base_fee is absent cannot be encoded (geth's rule too).
    with pytest.raises(EncodingError):
        _sample(withdrawals_root=b"\x66" * 32).encode()
    with pytest.raises(EncodingError):  # slot number without the access list hash before it
        _sample(base_fee=7, withdrawals_root=b"\x66" * 32, blob_gas_used=0, excess_blob_gas=0,
                parent_beacon_root=bytes(32), requests_hash=b"\x77" * 32, slot_number=1).encode()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda items: items[:14],  # too few fields
        lambda items: items + [b"\x01"] * 7,  # 22 fields, the 16th+ not shaped as base fee, roots...
        lambda items: items + [b"\x07", b"\x66" * 32, b"\x00", b"\x00", bytes(32), b"\x77" * 32, b"\x88" * 32,
                               b"\x05", b"\x01"],  # 24 fields: one more than Amsterdam
        lambda items: items[:6] + [bytes(255)] + items[7:],  # short bloom
        lambda items: items[:14] + [bytes(9)],  # 9-byte nonce
        lambda items: items[:9] + [(2**64).to_bytes(9, "big")] + items[10:],  # gas limit above uint64
    ],
)
def test_malformed_headers_raise_decoding_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    items = rlp.decode(_sample().encode())
    with pytest.raises(DecodingError):
        Header.decode(rlp.encode(mutate(items)))


def test_non_canonical_difficulty_is_rejected() -> None:
    wire = _sample().encode()
    items = rlp.decode(wire)
    # 131072 = 0x020000; a leading zero byte is a non-canonical integer.
    bad = rlp.encode(items[:7] + [b"\x00\x02\x00\x00"] + items[8:])
    with pytest.raises(DecodingError):
        Header.decode(bad)


def test_big_difficulty_decodes_but_fails_sanity_check() -> None:
    header = Header.decode(_sample(difficulty=2**80).encode())
    assert header.difficulty == 2**80
    with pytest.raises(HeaderError, match="difficulty"):
        header.sanity_check()
    with pytest.raises(HeaderError, match="number"):
        _sample(number=2**64).sanity_check()
    with pytest.raises(HeaderError, match="extradata"):
        _sample(extra=bytes(100 * 1024 + 1)).sanity_check()
    assert issubclass(HeaderError, EthnodeError)
    _sample(difficulty=2**80 - 1, number=2**64 - 1, extra=bytes(100 * 1024)).sanity_check()
