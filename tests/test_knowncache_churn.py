"""Peer churn leaves no native memory behind in the known caches.

Every eth peer owns two known caches (tx and block hashes); peers come and go all day.
The compiled cache once preallocated its full capacity (1.3 MiB per tx cache) through
malloc, and glibc kept what the dropped caches freed: 60 waves of 160 peers grew RSS
~30 -> 116 MB and it stayed there (a node with 160 churning peers: 65 MB -> 1.1 GB in
five minutes). This probe runs the same churn in a fresh child process per backend, so
RSS belongs to the churn alone, and holds the compiled cache to what it was before the
churn and to what the pure twin leaves behind.

Run as a script (``python tests/test_knowncache_churn.py [waves]``) it is the child: it
prints one JSON line of RSS figures for whichever backend ethnode selected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

PEERS = 160  # peers held per wave (a busy research node's churn; geth's default maxpeers is 50)
WAVES = 20  # the issue measured 60; retention shows in the first few
FULL_EVERY = 10  # every tenth peer announces more tx hashes than its cache holds
OVERFLOW = 2000  # hashes such a peer announces past MAX_KNOWN_TXS (evictions)
TX_FILL = (1000, 6000)  # hashes a typical peer announces while connected
BLOCK_FILL = (64, 1088)  # block hashes: up to a little past MAX_KNOWN_BLOCKS
ANNOUNCE = 256  # hashes per announcement message: one add_many call each
SETTLE_S = 1.0  # after the last peer is gone, before the last RSS reading
RSS_GROWTH_BOUND = 1.5  # compiled RSS after the churn, over before
VS_PURE_BOUND = 1.5  # compiled RSS over pure RSS, on the same churn
CHILD_TIMEOUT_S = 120


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def churn(waves: int = WAVES, peers: int = PEERS, seed: int = 1) -> dict[str, Any]:
    """Fill and drop ``waves`` waves of ``peers`` peers' caches; RSS before, at peak, after."""
    import gc
    import random

    import ethnode
    from ethnode.eth.protocols.eth.knowncache import MAX_KNOWN_BLOCKS, MAX_KNOWN_TXS, KnownCache

    rng = random.Random(seed)
    # Hashes only need to be distinct within one cache: every peer reads its own window
    # of one shared pool, which keeps the child's own allocations out of the figures.
    windows = 8192
    pool = os.urandom(32 * (MAX_KNOWN_TXS + OVERFLOW + windows))

    def announce(cache: Any, count: int) -> None:
        start = rng.randrange(0, windows) * 32
        for off in range(start, start + 32 * count, 32 * ANNOUNCE):
            cache.add_many(pool[off : min(off + 32 * ANNOUNCE, start + 32 * count)])

    before = rss_mb()
    peak = before
    started = time.perf_counter()
    for _ in range(waves):
        held = []
        for p in range(peers):
            txs, blocks = KnownCache(MAX_KNOWN_TXS), KnownCache(MAX_KNOWN_BLOCKS)
            announce(txs, MAX_KNOWN_TXS + OVERFLOW if p % FULL_EVERY == 0 else rng.randrange(*TX_FILL))
            announce(blocks, rng.randrange(*BLOCK_FILL))
            held.append((txs, blocks))
        peak = max(peak, rss_mb())
        del held
    churn_s = time.perf_counter() - started
    gc.collect()
    time.sleep(SETTLE_S)
    return {
        "backend": str(ethnode.backends()["known_cache"]),
        "waves": waves,
        "peers": peers,
        "before_mb": round(before, 1),
        "peak_mb": round(peak, 1),
        "after_mb": round(rss_mb(), 1),
        "churn_s": round(churn_s, 2),
    }


def run_child(pure: bool, waves: int = WAVES) -> dict[str, Any]:
    """The churn in a fresh interpreter, on the compiled cache or (``pure``) its twin."""
    env = {k: v for k, v in os.environ.items() if k != "ETHNODE_NO_EXTENSIONS"}
    if pure:
        env["ETHNODE_NO_EXTENSIONS"] = "1"
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), str(waves)],
        env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="RSS is read from /proc/self/status")
def test_churn_gives_memory_back() -> None:
    import ethnode

    backend = ethnode.backends()["known_cache"]
    if backend != "compiled":
        pytest.skip(f"compiled known cache not loaded: {backend.describe()}")
    compiled, pure = run_child(pure=False), run_child(pure=True)
    assert (compiled["backend"], pure["backend"]) == ("compiled", "pure")
    figures = f"compiled {compiled}, pure {pure}"
    assert compiled["after_mb"] <= RSS_GROWTH_BOUND * compiled["before_mb"], figures
    assert compiled["after_mb"] <= VS_PURE_BOUND * pure["after_mb"], figures
    assert compiled["peak_mb"] <= VS_PURE_BOUND * pure["peak_mb"], figures


if __name__ == "__main__":
    print(json.dumps(churn(int(sys.argv[1]) if len(sys.argv) > 1 else WAVES)))
