"""Importing the ethtest chain *with execution* (py-evm): blocks/s and Mgas/s, against ``geth import``.

Each ethnode case runs in a child process (the RLP backend is chosen at import time;
``ETHNODE_NO_EXTENSIONS=1`` for pure) that inits a SQLite datadir, then times only the
import: decode, validate, execute every block, compare the roots, commit one batch per
block (state nodes and receipts included). geth's figure is its own "Imported new chain
segment" elapsed time for the same file, which also executes and commits.

Quick mode (``benches/report.py --quick``, i.e. ``--benchmark-max-time`` below 0.1 s)
executes blocks 1..QUICK_BLOCKS only and skips geth.

    PYTHONPATH=. python -m pytest benches/bench_execute.py --benchmark-only -q
    PYTHONPATH=. python benches/bench_execute.py             # the figures as a table
    PYTHONPATH=. python benches/bench_execute.py --profile   # where ethnode's time goes
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ETHNODE_SHARED", ROOT.parent / "shared"))
FULL_ROUNDS = 2
QUICK_BLOCKS = 100
CHILD_TIMEOUT = 180  # seconds

_CHILD = """
import json, logging, sys, tempfile, time
import ethnode
from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
from ethnode.core.chainfile import read_blocks
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB, open_database

logging.disable(logging.WARNING)
genesis_path, chain_path, store, upto = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
obj = json.load(open(genesis_path))
blocks = read_blocks(open(chain_path, "rb").read())[:upto]
with tempfile.TemporaryDirectory() as datadir:
    db = MemoryDB() if store == "memory" else open_database(datadir)
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = BlockChain(db, create_engine(read_chain_config(db), db), execute=True)
    start = time.perf_counter()
    stats = chain.insert_chain(blocks)
    seconds = time.perf_counter() - start
    assert chain.current_block.hash == blocks[-1].hash
    db.close()
print(json.dumps({"seconds": seconds, "blocks": stats.written, "gas": sum(b.header.gas_used for b in blocks),
                  "rlp": ethnode.backends()["rlp"]}))
"""


def _ethtest() -> tuple[Path, Path]:
    folder = SHARED / "chains" / "ethtest"
    return folder / "genesis.json", folder / "chain.rlp"


def run_ethnode(kind: str, upto: int = 600, store: str = "sqlite") -> dict[str, Any]:
    """One child import with execution; returns seconds, blocks, gas and the RLP backend used."""
    genesis, chain = _ethtest()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ETHNODE_NO_EXTENSIONS", None)
    if kind == "pure":
        env["ETHNODE_NO_EXTENSIONS"] = "1"
    out = subprocess.run([sys.executable, "-c", _CHILD, str(genesis), str(chain), store, str(upto)],
                         env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


_SEGMENT = re.compile(r"Imported new chain segment.*blocks=(\d+).*mgas=([0-9.]+).*elapsed=([0-9.]+)(ms|s)")


def geth_binary() -> Path | None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import gethtools
    finally:
        sys.path.pop(0)
    folder = gethtools.tools_dir()
    return folder / "geth" if gethtools._installed(folder) else None


def run_geth(geth: Path) -> dict[str, Any]:
    """``geth import`` of the ethtest chain into a fresh datadir: geth's own elapsed time and gas."""
    genesis, chain = _ethtest()
    with tempfile.TemporaryDirectory() as datadir:
        subprocess.run([str(geth), "--datadir", datadir, "init", str(genesis)], capture_output=True, check=True,
                       timeout=CHILD_TIMEOUT)
        start = time.perf_counter()
        out = subprocess.run([str(geth), "--datadir", datadir, "import", str(chain)], capture_output=True,
                             text=True, check=True, timeout=CHILD_TIMEOUT)
        wall = time.perf_counter() - start
    blocks, mgas, seconds = 0, 0.0, 0.0
    for m in _SEGMENT.finditer(out.stderr):  # geth may log several segments
        blocks += int(m.group(1))
        mgas += float(m.group(2))
        seconds += float(m.group(3)) / (1000 if m.group(4) == "ms" else 1)
    return {"seconds": seconds, "blocks": blocks, "gas": mgas * 1e6, "wall": wall}


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    return {"blocks_per_s": round(r["blocks"] / r["seconds"], 1), "mgas_per_s": round(r["gas"] / r["seconds"] / 1e6, 2)}


# --- pytest-benchmark cases ------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the table and profile modes need no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def _quick(benchmark: Any) -> bool:
        return float(getattr(benchmark, "_max_time", 1.0)) < 0.1

    @pytest.mark.parametrize("kind", ["compiled", "pure"])
    def test_execute_ethtest(benchmark: Any, kind: str) -> None:
        if not _ethtest()[1].exists():
            pytest.skip("../shared/chains/ethtest is absent (set ETHNODE_SHARED)")
        pytest.importorskip("eth", reason="py-evm is not installed")
        upto = QUICK_BLOCKS if _quick(benchmark) else 600
        runs: list[dict[str, Any]] = []
        benchmark.group = "execute ethtest"
        benchmark.pedantic(lambda: runs.append(run_ethnode(kind, upto)), rounds=1 if upto < 600 else FULL_ROUNDS,
                           iterations=1)
        if kind == "compiled" and runs[0]["rlp"] != "compiled":
            pytest.skip("compiled RLP unavailable")
        best = min(runs, key=lambda r: r["seconds"])
        benchmark.extra_info.update(impl=kind, blocks=best["blocks"], import_seconds=round(best["seconds"], 3),
                                    **_figures(best))

    def test_execute_ethtest_geth(benchmark: Any) -> None:
        if not _ethtest()[1].exists():
            pytest.skip("../shared/chains/ethtest is absent (set ETHNODE_SHARED)")
        if _quick(benchmark):
            pytest.skip("quick mode: geth import is measured in the full run only")
        geth = geth_binary()
        if geth is None:
            pytest.skip("pinned geth not built: run `PYTHONPATH=. python tests/gethtools.py` (minutes)")
        runs: list[dict[str, Any]] = []
        benchmark.group = "execute ethtest"
        benchmark.pedantic(lambda: runs.append(run_geth(geth)), rounds=FULL_ROUNDS, iterations=1)
        best = min(runs, key=lambda r: r["seconds"])
        assert best["blocks"] == 600
        benchmark.extra_info.update(impl="geth", blocks=600, import_seconds=round(best["seconds"], 3),
                                    process_wall_seconds=round(best["wall"], 3), **_figures(best))


# --- table and profile -----------------------------------------------------------------------


def _table() -> None:
    rows = []
    for kind in ("compiled", "pure"):
        r = min((run_ethnode(kind) for _ in range(FULL_ROUNDS)), key=lambda r: r["seconds"])
        rows.append((f"ethnode {kind} ({r['rlp']} rlp)", r))
    geth = geth_binary()
    if geth is not None:
        rows.append(("geth v1.17.8 import", min((run_geth(geth) for _ in range(FULL_ROUNDS)),
                                                key=lambda r: r["seconds"])))
    base = rows[0][1]["seconds"]
    print(f"{'':32} {'seconds':>8} {'blocks/s':>9} {'Mgas/s':>8} {'vs compiled':>12}")
    for name, r in rows:
        f = _figures(r)
        print(f"{name:32} {r['seconds']:8.3f} {f['blocks_per_s']:9.1f} {f['mgas_per_s']:8.2f} "
              f"{base / r['seconds']:11.2f}x")


def _profile(top: int = 30) -> None:
    """cProfile of an in-process import (compiled backend, SQLite), by own time and by package."""
    import cProfile
    import logging
    import pstats
    from collections import defaultdict

    sys.path.insert(0, str(ROOT))
    from ethnode.consensus import create_engine
    from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
    from ethnode.core.chainfile import read_blocks
    from ethnode.core.genesis import Genesis
    from ethnode.core.rawdb import open_database

    logging.disable(logging.WARNING)
    genesis, chain_file = _ethtest()
    obj = json.loads(genesis.read_text())
    blocks = read_blocks(chain_file.read_bytes())
    with tempfile.TemporaryDirectory() as datadir:
        db = open_database(datadir)
        setup_genesis(db, Genesis.from_json(obj), obj)
        chain = BlockChain(db, create_engine(read_chain_config(db), db), execute=True)
        prof = cProfile.Profile()
        prof.enable()
        chain.insert_chain(blocks)
        prof.disable()
        db.close()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    for (path, _, _), v in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in path:
            key = path.split("site-packages/")[1].split("/")[0]
        elif "/ethnode/" in path:
            key = "ethnode/" + path.split("/ethnode/")[-1].split("/")[0]
        else:
            key = "stdlib/builtins"
        by_package[key] += v[2]
    print(f"own time by package (total {total:.2f} s under the profiler):")
    for key, t in sorted(by_package.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {t:7.2f} s {100 * t / total:5.1f}%  {key}")
    stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        _profile()
    else:
        _table()
