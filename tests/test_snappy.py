"""Snappy for devp2p v5 (EIP-706): round trips, the size bound read before any
allocation, and corrupt input surfacing only as SnappyError."""

from __future__ import annotations

import os

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethnode.errors import EthnodeError
from ethnode.p2p.rlpx.snappy import (
    MAX_UNCOMPRESSED_SIZE,
    PlainMessageTooLargeError,
    SnappyError,
    compress,
    decoded_length,
    decompress,
)


def uvarint(value: int) -> bytes:
    """The little-endian base-128 varint snappy puts at the start of a raw block."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@pytest.fixture
def cramjam_must_not_decompress(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("cramjam was asked to decompress an oversized payload")

    monkeypatch.setattr(cramjam.snappy, "decompress_raw", refuse)
    monkeypatch.setattr(cramjam.snappy, "decompress_raw_into", refuse)


def test_error_classes() -> None:
    assert issubclass(PlainMessageTooLargeError, SnappyError)
    assert issubclass(SnappyError, EthnodeError)
    assert MAX_UNCOMPRESSED_SIZE == 2**24 - 1  # geth: maxUint24


def test_known_encoding() -> None:
    # Raw block: uvarint(5), literal tag (5 - 1) << 2, the bytes; the empty input is uvarint(0).
    assert compress(b"hello") == b"\x05\x10hello"
    assert compress(b"") == b"\x00"
    assert decompress(b"\x00") == b""
    assert decompress(b"\x05\x10hello") == b"hello"


@pytest.mark.parametrize(
    "data",
    [b"x", os.urandom(1000), b"\xf8\x4c" + b"\x00" * 5000, bytes(range(256)) * 4096, os.urandom(1 << 20)],
)
def test_round_trip(data: bytes) -> None:
    packed = compress(data)
    assert isinstance(packed, bytes)
    assert decoded_length(packed) == len(data)
    assert decompress(packed) == data
    assert decompress(bytearray(packed)) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_round_trip_property(data: bytes) -> None:
    assert decompress(compress(data)) == data


def test_maximum_size_round_trips() -> None:
    data = b"\x01" * MAX_UNCOMPRESSED_SIZE
    assert decompress(compress(data)) == data
    with pytest.raises(PlainMessageTooLargeError):
        compress(data + b"\x01")


@pytest.mark.parametrize("declared", [MAX_UNCOMPRESSED_SIZE + 1, 2**32 - 1, 2**63])
def test_oversized_declared_length_rejected_before_allocating(
    cramjam_must_not_decompress: None, declared: int
) -> None:
    # A 20-byte payload that claims more than geth's limit (up to 8 EiB) uncompressed.
    crafted = uvarint(declared) + b"\x00" * 12
    assert decoded_length(crafted) == declared
    with pytest.raises(PlainMessageTooLargeError):
        decompress(crafted)


def test_limit_is_inclusive() -> None:
    # Exactly maxUint24 is allowed through to decompression, which then finds it corrupt.
    with pytest.raises(SnappyError) as info:
        decompress(uvarint(MAX_UNCOMPRESSED_SIZE) + b"\x00" * 12)
    assert not isinstance(info.value, PlainMessageTooLargeError)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no length header
        b"\x80",  # header cut short
        b"\xff" * 11,  # varint never ends
        b"\x05",  # declares 5 bytes, holds none
        b"\x05\x00",  # literal runs past the input
        b"\x05\x10hell",  # truncated literal
        b"\x0b\x10hello\x05\x00",  # copy reaches before the start / past the declared length
        b"\x04\x10hello",  # decodes to more than declared
    ],
)
def test_corrupt_input_is_snappy_error(data: bytes) -> None:
    with pytest.raises(SnappyError):
        decompress(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.binary(max_size=300))
def test_random_input_never_leaks_cramjam_errors(declared: int, body: bytes) -> None:
    try:
        out = decompress(uvarint(declared) + body)
    except SnappyError:
        return
    assert len(out) == declared
