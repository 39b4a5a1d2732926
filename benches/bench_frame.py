"""RLPx frame round trip (write, read_header, read_body), compiled vs pure, and the
native keccak limit they are measured against.

One group per payload size, so pytest-benchmark prints the two backends side by side
with their ratio. A frame is keccak-bound: per frame and direction it costs
(4 + ⌈(n + 32) / 136⌉) Keccak-f[1600] permutations (header MAC, frame MAC and digests:
4; the 16-byte header-MAC seed, the body and the 16-byte frame-MAC seed absorbed at 136
bytes a permutation). A round trip is one write and one read, so the native limit of a
round trip is twice that times one permutation, measured here natively by
``test_keccak_permutation`` (the permutation the compiled codec uses, in a Rust loop, no
Python per permutation). ``benches/report.py`` prints compiled/pure and compiled/limit.

    PYTHONPATH=. python -m pytest benches/bench_frame.py --benchmark-only -q
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from ethnode.p2p.rlpx.frame import frame_implementation

SIZES = {"100B": 100, "1KiB": 1024, "16KiB": 16 * 1024, "1MiB": 1024 * 1024}
SECRET_AES = bytes(range(32))
SECRET_MAC = bytes(range(32, 64))
PERMUTATIONS_PER_CALL = 2000  # ~0.5 ms a call: the Python call is noise next to it
KECCAK_RATE = 136
FRAME_FIXED_PERMUTATIONS = 4


def permutations_per_frame(size: int) -> int:
    """Keccak-f permutations one frame costs in one direction: the fixed MAC work plus one per 136-byte block."""
    return FRAME_FIXED_PERMUTATIONS + math.ceil((size + 32) / KECCAK_RATE)


@pytest.mark.parametrize("kind", ["compiled", "pure"])
@pytest.mark.parametrize("size", list(SIZES))
def test_frame_round_trip(benchmark: Any, kind: str, size: str) -> None:
    try:
        codec = frame_implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled frame codec unavailable: {exc}")
    sender = codec(SECRET_AES, SECRET_MAC, b"a->b", b"b->a")
    receiver = codec(SECRET_AES, SECRET_MAC, b"b->a", b"a->b")
    payload = os.urandom(SIZES[size])
    write, read_header, read_body = sender.write, receiver.read_header, receiver.read_body

    def round_trip() -> tuple[int, bytes]:
        frame = write(0x10, payload)
        read_header(frame[:32])
        return read_body(frame[32:])  # type: ignore[no-any-return]

    benchmark.group = f"rlpx frame round trip {size}"
    benchmark.extra_info.update(impl=kind, size=size, bytes=SIZES[size])
    assert benchmark(round_trip) == (0x10, payload)


def test_keccak_permutation(benchmark: Any) -> None:
    """Native Keccak-f[1600]: PERMUTATIONS_PER_CALL permutations per call, in Rust."""
    try:
        from ethnode import _rust  # type: ignore[attr-defined]

        run, which = _rust.keccak_f1600_run, _rust.keccak_f1600_implementation()
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"compiled module unavailable: {exc}")
    benchmark.group = "keccak-f1600 permutation (native)"
    benchmark.extra_info.update(impl="native", items=PERMUTATIONS_PER_CALL, permutation=which)
    benchmark(run, PERMUTATIONS_PER_CALL)
