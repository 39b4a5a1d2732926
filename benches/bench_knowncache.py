"""Known-hash cache: batch filter and single lookups, compiled vs pure vs a Python set.

Targets (eth handler issue): ≤ 5 ns/hash filtering a packed 4096-hash payload, ≤ 48 B per
entry, single lookups no worse than 1.5× a Python set. The memory figure rides along in
``extra_info["bytes_per_entry"]``; the report prints it.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

import pytest

from ethnode.eth.protocols.eth.knowncache import MAX_KNOWN_TXS, implementation

N = 4096
KNOWN = [os.urandom(32) for _ in range(MAX_KNOWN_TXS)]
# Half of the payload is known, half is new: a typical re-announcement mix.
PAYLOAD = b"".join(KNOWN[: N // 2]) + os.urandom(32 * (N // 2))
PAYLOAD_HASHES = [PAYLOAD[i : i + 32] for i in range(0, len(PAYLOAD), 32)]


def _filled(kind: str) -> Any:
    if kind == "python-set":
        return set(KNOWN)
    try:
        cls = implementation(kind)
    except ImportError as exc:
        pytest.skip(f"{kind} known cache unavailable: {exc}")
    cache = cls(MAX_KNOWN_TXS)
    cache.add_many(b"".join(KNOWN))
    return cache


def _bytes_per_entry(kind: str) -> float:
    if kind == "compiled":
        return float(_filled(kind).nbytes()) / MAX_KNOWN_TXS
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keys = [k[:16] + k[16:] for k in KNOWN]  # fresh key objects, counted as the cache's own
    obj = set(keys) if kind == "python-set" else implementation("pure")(MAX_KNOWN_TXS)
    if kind == "pure":
        obj.add_many(b"".join(keys))
        del keys
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del obj
    return size / MAX_KNOWN_TXS


@pytest.mark.parametrize("kind", ["compiled", "pure", "python-set"])
def test_filter_4096(benchmark: Any, kind: str) -> None:
    cache = _filled(kind)
    if kind == "python-set":
        def run() -> bytes:
            return b"".join([h for h in PAYLOAD_HASHES if h not in cache])
    else:
        def run() -> bytes:
            return cache.filter_unknown(PAYLOAD)  # type: ignore[no-any-return]
    benchmark.group = "known cache filter 4096 packed hashes"
    benchmark.extra_info.update(impl=kind, items=N, bytes_per_entry=round(_bytes_per_entry(kind), 1))
    assert len(benchmark(run)) == 32 * (N // 2)


@pytest.mark.parametrize("kind", ["compiled", "pure", "python-set"])
def test_single_lookup(benchmark: Any, kind: str) -> None:
    cache = _filled(kind)
    probe = KNOWN[12345]
    benchmark.group = "known cache single lookup"
    benchmark.extra_info.update(impl=kind)
    assert benchmark(cache.__contains__, probe) is True
