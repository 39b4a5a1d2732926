"""Importing the ethtest chain (600 blocks, 603 txs): ethnode compiled vs pure, and geth.

Each ethnode case runs in a child process, because the backend is chosen once at import
time (``ETHNODE_NO_EXTENSIONS=1`` for pure). The child times only the import (stream the
file, decode, validate, commit one SQLite transaction per block) and reports it; that
figure is ``extra_info["blocks_per_s"]``, while pytest-benchmark's own numbers are whole
child runs (interpreter start included). ethnode does not execute blocks; geth does, so
its figure includes EVM execution and state commits: compare with that in mind.

geth is the pinned binary from ``tests/gethtools.py``; the case skips unless it has been
built (``PYTHONPATH=. python tests/gethtools.py``), since a build takes minutes.

    PYTHONPATH=. python -m pytest benches/bench_import.py --benchmark-only -q
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

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ETHNODE_SHARED", ROOT.parent / "shared"))
ROUNDS = 3
CHILD_TIMEOUT = 120  # seconds

_CHILD = """
import json, logging, sys, tempfile, time
import ethnode
from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
from ethnode.core.chainfile import BlockReader, open_chain_file
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB, open_database

logging.disable(logging.WARNING)
genesis_path, chain_path, store = sys.argv[1:4]
obj = json.load(open(genesis_path))
with tempfile.TemporaryDirectory() as datadir:
    db = MemoryDB() if store == "memory" else open_database(datadir)
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = BlockChain(db, create_engine(read_chain_config(db), db))
    start = time.perf_counter()
    with open_chain_file(chain_path) as f:
        stats = chain.insert_chain(BlockReader(f))
    seconds = time.perf_counter() - start
    assert chain.current_block.number == 600, chain.current_block.number
    db.close()
print(json.dumps({"seconds": seconds, "blocks": stats.written, "rlp": ethnode.backends()["rlp"]}))
"""


def _ethtest() -> tuple[Path, Path]:
    folder = SHARED / "chains" / "ethtest"
    genesis, chain = folder / "genesis.json", folder / "chain.rlp"
    if not chain.exists():
        pytest.skip(f"{chain} is absent (a fresh clone has no ../shared; set ETHNODE_SHARED)")
    return genesis, chain


@pytest.mark.parametrize("store", ["sqlite", "memory"])
@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_import_ethtest(benchmark: Any, kind: str, store: str) -> None:
    genesis, chain = _ethtest()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ETHNODE_NO_EXTENSIONS", None)
    if kind == "pure":
        env["ETHNODE_NO_EXTENSIONS"] = "1"
    runs: list[dict[str, Any]] = []

    def run() -> None:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(genesis), str(chain), store],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.group = "import ethtest"
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    if kind == "compiled" and runs[0]["rlp"] != "compiled":
        pytest.skip("compiled RLP unavailable")
    best = min(r["seconds"] for r in runs)
    benchmark.extra_info.update(
        impl=kind,
        store=store,
        blocks=runs[0]["blocks"],
        import_seconds=round(best, 4),
        blocks_per_s=round(runs[0]["blocks"] / best),
    )


def _geth_binary() -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import gethtools
    finally:
        sys.path.pop(0)
    folder = gethtools.tools_dir()
    if not gethtools._installed(folder):
        pytest.skip("pinned geth not built: run `PYTHONPATH=. python tests/gethtools.py` (minutes)")
    return folder / "geth"


_SEGMENT = re.compile(r"Imported new chain segment.*blocks=(\d+).*elapsed=([0-9.]+)(ms|s)")


def test_import_ethtest_geth(benchmark: Any) -> None:
    genesis, chain = _ethtest()
    geth = _geth_binary()
    runs: list[tuple[float, float, int]] = []

    def run() -> None:
        with tempfile.TemporaryDirectory() as datadir:
            subprocess.run(
                [str(geth), "--datadir", datadir, "init", str(genesis)],
                capture_output=True,
                check=True,
                timeout=CHILD_TIMEOUT,
            )
            start = time.perf_counter()
            out = subprocess.run(
                [str(geth), "--datadir", datadir, "import", str(chain)],
                capture_output=True,
                text=True,
                check=True,
                timeout=CHILD_TIMEOUT,
            )
            wall = time.perf_counter() - start
        blocks, seconds = 0, 0.0
        for m in _SEGMENT.finditer(out.stderr):  # geth may log several segments
            blocks += int(m.group(1))
            seconds += float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
        runs.append((wall, seconds, blocks))

    benchmark.group = "import ethtest"
    benchmark.pedantic(run, rounds=2, iterations=1)
    wall, seconds, blocks = min(runs)
    assert blocks == 600
    benchmark.extra_info.update(
        impl="geth",
        executes=True,
        blocks=blocks,
        import_seconds=round(seconds, 4),
        blocks_per_s=round(blocks / seconds),
        process_wall_seconds=round(wall, 3),
    )
