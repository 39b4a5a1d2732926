"""Compiled vs pure RLP over random structures and random corruptions.

Both backends must produce the same bytes, the same decoded values and, on bad input,
the same error class. The compiled codec is the one users run; the pure one is the
reference, so every disagreement is a bug in one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_support import both_rlp_impls

from ethnode.rlp.errors import RLPError
from ethnode.rlp.limits import MAX_DEPTH

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = st.one_of(
    st.binary(max_size=70),
    st.integers(min_value=0, max_value=2**300),
    st.sampled_from([b"", b"\x00", b"\x7f", b"\x80", 0, 127, 128, 255, 256, 2**64 - 1, 2**64]),
)
structures = st.recursive(leaves, lambda c: st.lists(c, max_size=8) | st.tuples(c, c), max_leaves=40)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """('ok', value) or ('err', error class) so two backends can be compared."""
    try:
        return "ok", fn()
    except (RLPError, TypeError) as exc:
        return "err", type(exc)


def _normal(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_normal(i) for i in x]
    if isinstance(x, int):
        return x.to_bytes((x.bit_length() + 7) // 8, "big")
    return bytes(x)


@SETTINGS
@given(structures)
def test_encode_same_bytes_and_round_trip(value: Any) -> None:
    compiled, pure = both_rlp_impls()
    encoded = compiled.encode(value)
    assert encoded == pure.encode(value)
    assert compiled.decode(encoded) == pure.decode(encoded) == _normal(value)


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    _, pure = both_rlp_impls()
    data = bytearray(pure.encode(draw(structures)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "append", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos]
    return bytes(data)


@SETTINGS
@given(st.one_of(corrupted(), st.binary(max_size=64)))
def test_decode_agrees_on_corrupt_input(data: bytes) -> None:
    compiled, pure = both_rlp_impls()
    c, p = outcome(lambda: compiled.decode(data)), outcome(lambda: pure.decode(data))
    assert c == p
    if c[0] == "ok":  # whatever strict decode accepts is the canonical encoding
        assert compiled.encode(c[1]) == data


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_limit_is_the_same(rlp_impl: Any) -> None:
    ok = _nested(MAX_DEPTH)
    encoded = rlp_impl.encode(ok)
    assert rlp_impl.decode(encoded) == ok
    too_deep = b"\xc0"  # MAX_DEPTH + 1 lists, built by hand since encode refuses
    for _ in range(MAX_DEPTH):
        n = len(too_deep)
        header = bytes([0xC0 + n]) if n < 56 else bytes([0xF8 + (n > 255), *n.to_bytes(1 + (n > 255), "big")])
        too_deep = header + too_deep
    with pytest.raises(RLPError, match="nested deeper"):
        rlp_impl.decode(too_deep)
    with pytest.raises(RLPError, match="nested deeper"):
        rlp_impl.encode(_nested(MAX_DEPTH + 1))


def test_hostile_nesting_does_not_crash(rlp_impl: Any) -> None:
    """A megabyte of c1... would overflow a C stack without the depth cap."""
    data = b"\xf9\xff\xff" + b"\xc1" * 100_000
    with pytest.raises(RLPError):
        rlp_impl.decode(data)


@pytest.mark.parametrize(
    "bad",
    ["text", None, 1.5, -1, {"a": 1}, [b"ok", -5], object()],
)
def test_encode_rejects_unencodable(rlp_impl: Any, bad: Any) -> None:
    from ethnode.rlp import EncodingError

    with pytest.raises(EncodingError):
        rlp_impl.encode(bad)


def test_bytes_like_and_int_subclasses(rlp_impl: Any) -> None:
    assert rlp_impl.encode(bytearray(b"dog")) == rlp_impl.encode(memoryview(b"dog")) == b"\x83dog"
    assert rlp_impl.encode(True) == b"\x01" and rlp_impl.encode(False) == b"\x80"
    assert rlp_impl.decode(bytearray(b"\x83dog")) == rlp_impl.decode(memoryview(b"\x83dog")) == b"dog"
    with pytest.raises(TypeError):
        rlp_impl.decode("83646f67")


@pytest.mark.parametrize(
    "hexdata,why",
    [
        ("", "empty input"),
        ("8100", "single byte 0x00 wrapped"),
        ("b80100", "long form for a short string"),
        ("b9000100", "leading zero in length"),
        ("c3c0c0", "list payload shorter than declared"),
        ("c2c3c0c0c0", "child runs past parent"),
        ("80 80".replace(" ", ""), "trailing item"),
        ("bf" + "ff" * 8, "absurd length"),
        ("f9", "length of length past end"),
    ],
)
def test_non_canonical_rejected(rlp_impl: Any, hexdata: str, why: str) -> None:
    from ethnode.rlp import DecodingError

    with pytest.raises(DecodingError):
        rlp_impl.decode(bytes.fromhex(hexdata))


def test_long_lists_and_strings_round_trip(rlp_impl: Any) -> None:
    for n in (55, 56, 255, 256, 65535, 65536, 1 << 20):
        s = b"\xaa" * n
        assert rlp_impl.decode(rlp_impl.encode(s)) == s
        lst = [b"\x01"] * n
        assert rlp_impl.decode(rlp_impl.encode(lst)) == lst


def test_item_header_walks_concatenated_items(rlp_impl: Any) -> None:
    items = [[1, 2], b"dog", b"", [b"x" * 100]]
    data = b"".join(rlp_impl.encode(i) for i in items)
    pos, seen = 0, []
    while pos < len(data):
        is_list, start, stop = rlp_impl.item_header(data, pos, len(data))
        seen.append(rlp_impl.decode(data[pos:stop]))
        pos = stop
    assert seen == rlp_impl.decode(rlp_impl.encode(items))
    with pytest.raises(RLPError):
        rlp_impl.item_header(b"\xb8\x05abc", 0, 5)
    with pytest.raises(ValueError):
        rlp_impl.item_header(b"\x80", 0, 2)
