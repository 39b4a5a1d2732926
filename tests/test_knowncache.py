"""The known-hash cache on both backends, and the two compared operation by operation."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethnode.eth.protocols.eth.knowncache import MAX_KNOWN_BLOCKS, MAX_KNOWN_TXS, implementation


@pytest.fixture(params=["compiled", "pure"])
def cache_cls(request: pytest.FixtureRequest) -> Any:
    try:
        return implementation(request.param)
    except ImportError as exc:
        pytest.skip(f"compiled known cache unavailable: {exc}")


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def packed(*ids: int) -> bytes:
    return b"".join(h(i) for i in ids)


def test_geth_limits() -> None:
    assert (MAX_KNOWN_TXS, MAX_KNOWN_BLOCKS) == (32768, 1024)


def test_add_contains_len(cache_cls: Any) -> None:
    c = cache_cls(4)
    assert len(c) == 0 and c.capacity == 4 and h(1) not in c
    c.add(h(1))
    c.add(h(1))
    assert h(1) in c and len(c) == 1


def test_evicts_oldest_first(cache_cls: Any) -> None:
    c = cache_cls(3)
    c.add_many(packed(1, 2, 3))
    c.add(h(2))  # already known: does not refresh its age
    c.add(h(4))
    assert [i for i in range(1, 5) if h(i) in c] == [2, 3, 4]
    c.add_many(packed(5, 6))
    assert [i for i in range(1, 7) if h(i) in c] == [4, 5, 6]
    assert len(c) == 3


def test_filter_unknown_keeps_order(cache_cls: Any) -> None:
    c = cache_cls(100)
    c.add_many(packed(2, 4))
    assert c.filter_unknown(packed(1, 2, 3, 4, 5)) == packed(1, 3, 5)
    assert c.filter_unknown(b"") == b""
    assert c.filter_unknown(bytearray(packed(4))) == b""


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_bad_hash_length(cache_cls: Any, bad: bytes) -> None:
    c = cache_cls(2)
    with pytest.raises(ValueError, match="32 bytes"):
        c.add(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        bad in c  # noqa: B015


def test_bad_packed_length(cache_cls: Any) -> None:
    c = cache_cls(2)
    for op in (c.add_many, c.filter_unknown):
        with pytest.raises(ValueError, match="multiple of 32"):
            op(b"\x00" * 33)


def test_bad_capacity(cache_cls: Any) -> None:
    with pytest.raises(ValueError):
        cache_cls(0)


def test_full_size_cache(cache_cls: Any) -> None:
    c = cache_cls(MAX_KNOWN_TXS)
    hashes = os.urandom(32 * (MAX_KNOWN_TXS + 100))
    c.add_many(hashes)
    assert len(c) == MAX_KNOWN_TXS
    assert hashes[:32] not in c and hashes[-32:] in c
    assert c.filter_unknown(hashes[: 32 * 200]) == hashes[: 32 * 100]


def test_cost_follows_use(cache_cls: Any) -> None:
    """A peer that announces little costs little: nothing is reserved for the full capacity."""
    c = cache_cls(MAX_KNOWN_TXS)
    assert c.nbytes() < 1024
    c.add_many(os.urandom(32 * 100))
    assert c.nbytes() < 64 * 1024


@pytest.mark.parametrize("capacity, rounds", [(MAX_KNOWN_BLOCKS, 40), (MAX_KNOWN_TXS, 12)])
def test_evictions_do_not_grow_a_full_cache(capacity: int, rounds: int) -> None:
    """Tombstones left by evictions are cleared in place: the table stays the size it filled to.

    hashbrown, left alone, doubles the table once they use up its spare room (a block cache
    after ~40 rounds of evictions, a tx cache after ~12), though no more entries are live.
    """
    try:
        c = implementation("compiled")(capacity)
    except ImportError as exc:
        pytest.skip(f"compiled known cache unavailable: {exc}")
    c.add_many(os.urandom(32 * capacity))
    full = c.nbytes()
    for _ in range(rounds):
        c.add_many(os.urandom(32 * capacity))
    assert len(c) == capacity and c.nbytes() == full


def test_backends_agree_through_many_evictions() -> None:
    """Enough evictions to clear the compiled table's tombstones, and the same answers after."""
    try:
        compiled, pure = implementation("compiled")(MAX_KNOWN_BLOCKS), implementation("pure")(MAX_KNOWN_BLOCKS)
    except ImportError as exc:
        pytest.skip(f"compiled known cache unavailable: {exc}")
    hashes = os.urandom(32 * 48 * MAX_KNOWN_BLOCKS)
    for off in range(0, len(hashes), 32 * 256):
        compiled.add_many(hashes[off : off + 32 * 256])
        pure.add_many(hashes[off : off + 32 * 256])
    recent = hashes[-32 * 2 * MAX_KNOWN_BLOCKS :]
    assert compiled.filter_unknown(recent) == pure.filter_unknown(recent) == recent[: 32 * MAX_KNOWN_BLOCKS]
    assert len(compiled) == len(pure) == MAX_KNOWN_BLOCKS


ops = st.lists(
    st.tuples(st.sampled_from(["add", "add_many", "filter", "contains"]), st.lists(st.integers(0, 40), max_size=12)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 16), ops)
def test_backends_agree(capacity: int, script: list[tuple[str, list[int]]]) -> None:
    try:
        compiled, pure = implementation("compiled")(capacity), implementation("pure")(capacity)
    except ImportError as exc:
        pytest.skip(f"compiled known cache unavailable: {exc}")
    for op, ids in script:
        if op == "add" and ids:
            compiled.add(h(ids[0]))
            pure.add(h(ids[0]))
        elif op == "add_many":
            compiled.add_many(packed(*ids))
            pure.add_many(packed(*ids))
        elif op == "filter":
            assert compiled.filter_unknown(packed(*ids)) == pure.filter_unknown(packed(*ids))
        else:
            assert [h(i) in compiled for i in ids] == [h(i) in pure for i in ids]
        assert len(compiled) == len(pure)
    assert [h(i) in compiled for i in range(41)] == [h(i) in pure for i in range(41)]
