"""Import *with execution*, revm against py-evm against ``geth import``, on three workloads.

One run measures every engine on the same files, so the ratios hold whatever the machine:

- ``ethtest-v1.17.5``: the eth-test chain of geth v1.17.5 (../shared/chains/ethtest, 600
  small Prague blocks). Mostly per-block overhead: header checks, commits, system calls.
- ``ethtest-v1.17.10``: geth v1.17.10's own eth-test chain (Osaka at block 18, Amsterdam from
  36), found with ``go mod download`` as tests/geth_support.py does. py-evm stops at Prague,
  so it runs blocks 1..17 only and revm is timed again on that range for a fair ratio.
- ``heavy``: 200 blocks of ~30 Mgas (transfers, token calls, SSTORE runs, keccak loops and
  contract creations) built by ethnode's own block builder (``benches/workload.py``, cached
  under ~/.cache/ethnode-bench). The ethtest chains are too light to show EVM and state cost.
  py-evm runs its first 50 blocks only (the whole chain takes it over ten minutes).

ethnode runs in a child process per case (a fresh interpreter, as ``ethnode-fast import``
would be): it inits a SQLite datadir, decodes the file, then times only ``insert_chain``:
validate, recover senders, execute, compare the roots, commit one batch per block. geth's
figure is its own "Imported new chain segment" elapsed time, which also excludes decoding
the file (summed over segments: geth logs one every few seconds). Besides Mgas/s and
blocks/s, the revm child reports the store's growth: bytes of state entries (prefix ``S``,
trie nodes and code) and of the SQLite files per imported block.

Quick mode (``benches/report.py --quick``, i.e. ``--benchmark-max-time`` below 0.1 s): blocks
1..100 of the v1.17.5 chain and a 5-block heavy workload on both engines; no geth, no v1.17.10
chain (it needs Go). ``benches/report.py`` prints the figures, the ratios and the targets.

    PYTHONPATH=. python -m pytest benches/bench_execute.py --benchmark-only -q
    PYTHONPATH=. python benches/bench_execute.py [--quick]         # the figures as a table
    PYTHONPATH=. python benches/bench_execute.py --profile [--evm py-evm] [--workload heavy]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload  # noqa: E402  (benches/ is not a package; report.py puts it on the path too)

SHARED = Path(os.environ.get("ETHNODE_SHARED", ROOT.parent / "shared"))
GETH_VERSION = "v1.17.10"  # the judge: newest pinned geth (tests/gethtools.py GETH_VERSION)
FULL_ROUNDS = 2  # rounds of the light chains; the heavy workload runs once per engine
QUICK_BLOCKS = 100  # blocks of the v1.17.5 chain in quick mode
HEAVY_BLOCKS = 200
QUICK_HEAVY_BLOCKS = 5
# py-evm's last block per workload. The v1.17.10 chain enters Osaka at block 18, past py-evm.
# The heavy one is Prague throughout, but py-evm takes over ten minutes for its 6 Ggas (~9 Mgas/s
# as the state grows), so it runs the first 50 blocks (1.5 Ggas), revm again beside it.
PYEVM_LAST_BLOCK = {"ethtest-v1.17.10": 17, "heavy": 50}
WORKLOADS = ("ethtest-v1.17.5", "ethtest-v1.17.10", "heavy")
ENGINES = ("revm", "py-evm", "geth")
CHILD_TIMEOUT = 850  # seconds: under report.py's per-test 900 s (a heavy import takes about a minute)


class Unavailable(Exception):
    """A case cannot run here (no shared chains, no Go, geth not built): the reason is printed."""


_CHILD = """
import json, logging, os, sys, tempfile, time
from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
from ethnode.core.chainfile import read_blocks
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import open_database

logging.disable(logging.WARNING)
genesis_path, chain_path, evm, upto = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
obj = json.load(open(genesis_path))
blocks = read_blocks(open(chain_path, "rb").read())[:upto]

def state_bytes(db):
    return sum(len(k) + len(v) for k, v in db.iterate(prefix=b"S"))

def files_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)

with tempfile.TemporaryDirectory() as datadir:
    db = open_database(datadir)
    setup_genesis(db, Genesis.from_json(obj), obj)
    db.close()  # checkpointed: the files hold the genesis and nothing else
    files0 = files_bytes(datadir)
    db = open_database(datadir)
    config = read_chain_config(db)
    chain = BlockChain(db, create_engine(config, db), config=config, execute=True, evm=evm)
    state0 = state_bytes(db)
    start = time.perf_counter()
    stats = chain.insert_chain(blocks)
    seconds = time.perf_counter() - start
    assert chain.current_block.hash == blocks[-1].hash
    state1 = state_bytes(db)
    version = chain.executor.version
    db.close()
    files1 = files_bytes(datadir)
print(json.dumps({"seconds": seconds, "blocks": stats.written, "gas": sum(b.header.gas_used for b in blocks),
                  "state_bytes": state1 - state0, "db_bytes": files1 - files0, "version": version}))
"""


# --- the workloads --------------------------------------------------------------------------


def _ethtest_v1175() -> Path:
    folder = SHARED / "chains" / "ethtest"
    if not (folder / "chain.rlp").exists():
        raise Unavailable(f"{folder} is absent (a fresh clone has no ../shared; set ETHNODE_SHARED)")
    return folder


def _ethtest_v11710() -> Path:
    """geth's eth-test testdata at GETH_VERSION, from the Go module cache (fetched by the proxy if absent)."""
    gethtools = _gethtools()
    go = gethtools.find_go()
    if go is None:
        raise Unavailable("no Go toolchain: geth's v1.17.10 eth-test chain comes with the geth module")
    done = subprocess.run([go, "mod", "download", "-json", f"{gethtools.GETH_MODULE}@{GETH_VERSION}"],
                          capture_output=True, text=True, timeout=600, cwd=Path.home())
    if done.returncode != 0:
        raise Unavailable(f"go mod download failed: {done.stderr.strip()[-300:]}")
    folder = Path(json.loads(done.stdout)["Dir"]) / "cmd" / "devp2p" / "internal" / "ethtest" / "testdata"
    if not (folder / "chain.rlp").exists():
        raise Unavailable(f"{folder} has no chain.rlp")
    return folder


_FOLDERS: dict[tuple[str, bool], Path] = {}


def workload_folder(name: str, quick: bool = False) -> Path:
    """The folder with genesis.json and chain.rlp of workload ``name`` (the heavy one built on first use)."""
    key = (name, quick)
    if key not in _FOLDERS:
        if name == "ethtest-v1.17.5":
            _FOLDERS[key] = _ethtest_v1175()
        elif name == "ethtest-v1.17.10":
            _FOLDERS[key] = _ethtest_v11710()
        else:
            blocks = QUICK_HEAVY_BLOCKS if quick else HEAVY_BLOCKS
            _FOLDERS[key] = workload.ensure(blocks, log=lambda line: print(line, file=sys.stderr, flush=True))
    return _FOLDERS[key]


def chain_length(folder: Path) -> int:
    meta = folder / "meta.json"
    if meta.exists():
        return int(json.loads(meta.read_text())["blocks"])
    return 600  # both eth-test chains


# --- the engines ------------------------------------------------------------------------------


def child_pythonpath() -> str:
    """The ethnode this process imported (the installed one in CI, with its compiled modules; the
    checkout when run from it), first on the child's path: a child must run the same build."""
    import ethnode

    here = str(Path(ethnode.__file__).resolve().parent.parent)
    return os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH", "")]))


def run_ethnode(folder: Path, evm: str, upto: int) -> dict[str, Any]:
    """One child import with execution of blocks 1..``upto``: seconds, blocks, gas, store growth."""
    env = dict(os.environ, PYTHONPATH=child_pythonpath())
    env.pop("ETHNODE_NO_EXTENSIONS", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder / "genesis.json"), str(folder / "chain.rlp"), evm, str(upto)],
        env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    if out.returncode != 0:
        raise RuntimeError(f"ethnode {evm} import of {folder} failed:\n{out.stderr.strip()[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _gethtools() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import gethtools
    finally:
        sys.path.pop(0)
    return gethtools


def geth_binary() -> Path:
    gethtools = _gethtools()
    folder = gethtools.tools_dir(GETH_VERSION)
    if not gethtools._installed(folder):
        raise Unavailable(f"geth {GETH_VERSION} not built: run `PYTHONPATH=. python tests/gethtools.py` (minutes)")
    return folder / "geth"  # type: ignore[no-any-return]


_SEGMENT = re.compile(r"Imported new chain segment.*blocks=(\d+).*mgas=([0-9.]+).*elapsed=([0-9.hmsµ]+)")
_DURATION_PART = re.compile(r"([0-9.]+)(h|ms|µs|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6}


def go_duration(text: str) -> float:
    """Seconds of a Go duration as geth logs it: ``823.7ms``, ``8.198s``, ``1m2.5s``."""
    return sum(float(n) * _UNIT[unit] for n, unit in _DURATION_PART.findall(text))


def run_geth(geth: Path, folder: Path) -> dict[str, Any]:
    """``geth init`` + ``geth import`` into a fresh datadir: geth's own elapsed time and gas."""
    with tempfile.TemporaryDirectory(prefix="ethnode-bench-geth-") as datadir:
        subprocess.run([str(geth), "--datadir", datadir, "init", str(folder / "genesis.json")], capture_output=True,
                       check=True, timeout=CHILD_TIMEOUT)
        start = time.perf_counter()
        out = subprocess.run([str(geth), "--datadir", datadir, "import", str(folder / "chain.rlp")],
                             capture_output=True, text=True, timeout=CHILD_TIMEOUT)
        wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"geth import of {folder} failed:\n{out.stderr.strip()[-3000:]}")
    blocks, mgas, seconds = 0, 0.0, 0.0
    for m in _SEGMENT.finditer(out.stderr):  # geth logs a segment every few seconds: sum them
        blocks += int(m.group(1))
        mgas += float(m.group(2))
        seconds += go_duration(m.group(3))
    return {"seconds": seconds, "blocks": blocks, "gas": mgas * 1e6, "wall": wall, "version": GETH_VERSION}


def figures(r: dict[str, Any]) -> dict[str, Any]:
    """Rates from one run: the units report.py prints."""
    out = {"blocks": r["blocks"], "mgas": round(r["gas"] / 1e6, 3), "import_seconds": round(r["seconds"], 4),
           "blocks_per_s": round(r["blocks"] / r["seconds"], 1),
           "mgas_per_s": round(r["gas"] / r["seconds"] / 1e6, 2)}
    if "state_bytes" in r:
        out["state_bytes_per_block"] = round(r["state_bytes"] / max(r["blocks"], 1))
        out["db_bytes_per_block"] = round(r["db_bytes"] / max(r["blocks"], 1))
    return out


def measure(name: str, engine: str, quick: bool, rounds: int | None = None) -> dict[str, Any]:
    """The best of ``rounds`` runs of ``engine`` on workload ``name``, as extra_info for report.py.

    ``Unavailable`` when the case cannot run here. py-evm stops at its last fork's block; the
    revm figures of that same range come along (``revm_same_range``) for a like-for-like ratio.
    """
    if quick and (engine == "geth" or name == "ethtest-v1.17.10"):
        raise Unavailable("quick mode: geth and the v1.17.10 chain are measured in the full run only")
    if engine == "revm":
        from ethnode.core.execution import compiled_engine_error

        error = compiled_engine_error()
        if error:
            raise Unavailable(f"revm unavailable: {error}")
    if engine == "py-evm":
        try:
            import eth  # noqa: F401
        except ImportError:
            raise Unavailable("py-evm is not installed") from None
    folder = workload_folder(name, quick)
    length = chain_length(folder)
    common = QUICK_BLOCKS if quick and name == "ethtest-v1.17.5" else length  # what revm and geth run
    upto = min(common, PYEVM_LAST_BLOCK.get(name, common)) if engine == "py-evm" else common
    if rounds is None:
        rounds = 1 if quick or name == "heavy" else FULL_ROUNDS
    load = os.getloadavg()[0]  # other processes on the cores skew the ratios: report.py warns
    if engine == "geth":
        geth = geth_binary()
        runs = [run_geth(geth, folder) for _ in range(rounds)]
        if runs[0]["blocks"] != length:
            raise RuntimeError(f"geth imported {runs[0]['blocks']} of {length} blocks of {name}")
    else:
        runs = [run_ethnode(folder, engine, upto) for _ in range(rounds)]
    best = min(runs, key=lambda r: r["seconds"])
    info: dict[str, Any] = {"impl": engine, "workload": name, "engine_version": best["version"],
                            "range": f"1..{best['blocks']}", "chain_blocks": length, **figures(best),
                            "loadavg": round(max(load, os.getloadavg()[0]), 2), "cpus": os.cpu_count()}
    if engine == "geth":
        info["process_wall_seconds"] = round(best["wall"], 3)
    if upto < common:
        info["revm_same_range"] = figures(min((run_ethnode(folder, "revm", upto) for _ in range(rounds)),
                                              key=lambda r: r["seconds"]))
    return info


# --- pytest-benchmark cases ------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the table and profile modes need no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def _quick(benchmark: Any) -> bool:
        return float(getattr(benchmark, "_max_time", 1.0)) < 0.1

    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("name", WORKLOADS)
    def test_execute(benchmark: Any, name: str, engine: str) -> None:
        """pytest-benchmark times the whole case (children included); the figures are in extra_info."""
        benchmark.group = f"execute {name}"
        quick = _quick(benchmark)
        infos: list[dict[str, Any]] = []
        try:
            benchmark.pedantic(lambda: infos.append(measure(name, engine, quick)), rounds=1, iterations=1)
        except Unavailable as exc:
            pytest.skip(str(exc))
        benchmark.extra_info.update(infos[-1])


# --- table and profile -----------------------------------------------------------------------


def _table(quick: bool) -> None:
    """Every case in this process, printed by report.py's own execute section."""
    import report

    benchmarks = []
    for name in WORKLOADS:
        for engine in ENGINES:
            try:
                info = measure(name, engine, quick)
            except Unavailable as exc:
                print(f"skipped {name} [{engine}]: {exc}")
                continue
            benchmarks.append({"group": f"execute {name}", "name": name, "param": engine, "extra_info": info})
    report.print_execute({"benchmarks": benchmarks})


def _profile(evm: str, name: str, top: int = 30) -> None:
    """cProfile of an in-process import (SQLite), by own time and by package."""
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
    folder = workload_folder(name)
    obj = json.loads((folder / "genesis.json").read_text())
    blocks = read_blocks((folder / "chain.rlp").read_bytes())[: PYEVM_LAST_BLOCK.get(name, 10**9)
                                                               if evm == "py-evm" else None]
    with tempfile.TemporaryDirectory() as datadir:
        db = open_database(datadir)
        setup_genesis(db, Genesis.from_json(obj), obj)
        config = read_chain_config(db)
        chain = BlockChain(db, create_engine(config, db), config=config, execute=True, evm=evm)
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
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick-mode cases only")
    ap.add_argument("--profile", action="store_true", help="profile one in-process import instead")
    ap.add_argument("--evm", default="revm", choices=["revm", "py-evm"])
    ap.add_argument("--workload", default="ethtest-v1.17.5", choices=WORKLOADS)
    args = ap.parse_args()
    if args.profile:
        _profile(args.evm, args.workload)
    else:
        _table(args.quick)
