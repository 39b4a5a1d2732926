"""Load on a real ``ethnode-fast run`` process, compiled against pure in one run.

Three scenarios, each against a node holding the ethtest chain (``--noexec`` import), its
peers ``LightPeer``s in this process (``tests/load_support.py``):

- **hold**: ``--maxpeers 1000`` and 1,000 live eth peers, as geth's dial ratio has them:
  a third dialed by the node (static nodes listening here), two thirds dialing in. Every
  peer sends a request in turn while they are held. Figures: RSS per peer, the node's CPU
  share, its loop-lag histogram (p50/p99/max), request round trips. Run twice: as a node
  holding the chain, and in observer mode (``--observer``: heads named by peers go to the
  head observer, no tx relay, no syncer), the way a node on a network it cannot execute
  holds its peers. ``ETHNODE_HOLD_PEERS`` sets the peer count (default 1,000).
- **churn**: 160 peers held, half replaced per wave, for ten minutes. Figures: RSS before,
  at peak and after a settle period, and how many connections came and went.
- **pipeline**: one peer writes 3,000 GetBlockHeaders(0, 1024) at once while another
  probes ten times a second. Figures: probe round trip p50/p99/max, loop lag p99/max.

Quick runs (``report.py --quick``, or ``ETHNODE_BENCH_QUICK=1``) hold 100 peers, churn for
a few waves and pipeline 300 requests. ``ETHNODE_LOAD_SECONDS`` overrides the churn time.

    PYTHONPATH=. python -m pytest benches/bench_load.py --benchmark-only -q -s
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from load_support import (  # noqa: E402
    LightListener,
    LightPeer,
    NodeProcess,
    child_env,
    connect_many,
    percentile,
    prepare_datadir,
    shared_chain,
)

FULL_PEERS, QUICK_PEERS = 1000, 100
HOLD_SECONDS, QUICK_HOLD_SECONDS = 60.0, 5.0
CHURN_HELD = 160
CHURN_SECONDS, QUICK_CHURN_WAVES = 600.0, 5
SETTLE = 5.0
PIPELINED, QUICK_PIPELINED = 3000, 300
DIAL_RATIO = 3  # geth defaultDialRatio: a third of MaxPeers is dialed


def _quick(benchmark: Any) -> bool:
    return bool(benchmark.disabled or os.environ.get("ETHNODE_BENCH_QUICK") == "1"
                or getattr(benchmark, "_max_time", 1.0) < 0.1)


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chain = shared_chain()
    if chain is None:
        pytest.skip("../shared/chains/ethtest is absent (set ETHNODE_SHARED)")
    path = tmp_path_factory.mktemp("load") / "d"
    prepare_datadir(path, chain)
    return path


def _env(impl: str) -> dict[str, str]:
    return child_env(ETHNODE_NO_EXTENSIONS="1") if impl == "pure" else child_env()


@contextmanager
def _node(datadir: Path, impl: str, *extra: str) -> Iterator[NodeProcess]:
    node = NodeProcess(datadir, "--eth.versions", "69", *extra, env=_env(impl))
    try:
        yield node
    finally:
        node.stop()


def _lag_figures(lag: Any) -> dict[str, float]:
    return {"lag_p50_le_s": lag.quantile_bound(0.5), "lag_p99_le_s": lag.quantile_bound(0.99),
            "lag_max_ms": round(lag.max * 1e3, 1)}


def _rtt_figures(rtts: list[float]) -> dict[str, float]:
    return {"rtt_p50_ms": round(percentile(rtts, 0.5) * 1e3, 2), "rtt_p99_ms": round(percentile(rtts, 0.99) * 1e3, 2),
            "rtt_max_ms": round(max(rtts, default=0.0) * 1e3, 2)}


def _once(benchmark: Any, run: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    benchmark.pedantic(lambda: out.update(asyncio.run(run())), rounds=1, iterations=1)
    return out


@pytest.mark.parametrize("mode", ["node", "observer"])
@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_hold_peers(benchmark: Any, impl: str, mode: str, datadir: Path) -> None:
    benchmark.group = "load hold peers" if mode == "node" else "load hold peers, observer"
    quick = _quick(benchmark)
    count = QUICK_PEERS if quick else int(os.environ.get("ETHNODE_HOLD_PEERS", FULL_PEERS))
    hold = QUICK_HOLD_SECONDS if quick else HOLD_SECONDS

    async def run() -> dict[str, Any]:
        listener = LightListener()
        enodes = await listener.open(count // DIAL_RATIO)
        config = datadir.parent / f"static-{impl}.toml"
        config.write_text("[Node.P2P]\nStaticNodes = [" + ",".join(f'"{e}"' for e in enodes) + "]\n")
        observer = ("--observer",) if mode == "observer" else ()
        with _node(datadir, impl, "--maxpeers", str(count), "--config", str(config), *observer) as node:
            rss_idle = node.rss()
            started = time.perf_counter()
            peers = await connect_many(count - len(enodes), node.port, node.node_id, tolerate=True)
            while node.gauge("eth_peers") < count and time.perf_counter() - started < 120:
                await asyncio.sleep(0.25)
            held = int(node.gauge("eth_peers"))
            connect_s = time.perf_counter() - started
            everyone = peers + listener.peers
            rss_held, cpu0, lag0 = node.rss(), node.cpu_seconds(), node.lag()
            rtts: list[float] = []
            started = time.perf_counter()
            turn = 0
            while time.perf_counter() - started < hold:
                batch = [everyone[(turn + i) % len(everyone)] for i in range(20)]
                turn += 20
                rtts += await asyncio.gather(*(p.probe() for p in batch))
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = node.cpu_seconds() - cpu0
            lag = node.lag().since(lag0)
            still = int(node.gauge("eth_peers"))
            await asyncio.gather(*(p.close() for p in peers))
            await listener.close()
        return {"impl": impl, "mode": mode, "peers": held, "peers_at_end": still, "connect_s": round(connect_s, 1),
                "rss_idle_mb": round(rss_idle / 1e6, 1), "rss_held_mb": round(rss_held / 1e6, 1),
                "rss_per_peer_kb": round((rss_held - rss_idle) / max(held, 1) / 1e3, 1),
                "cpu_share": round(cpu / elapsed, 3), "requests": len(rtts),
                **_rtt_figures(rtts), **_lag_figures(lag)}

    figures = _once(benchmark, run)
    benchmark.extra_info.update(figures)
    print(f"\n  hold [{impl}, {mode}]: {figures['peers']} peers ({figures['peers_at_end']} at the end) in "
          f"{figures['connect_s']} s; RSS {figures['rss_idle_mb']} -> {figures['rss_held_mb']} MB "
          f"({figures['rss_per_peer_kb']} KB/peer); CPU {figures['cpu_share']:.1%}; {figures['requests']} requests, "
          f"RTT p50 {figures['rtt_p50_ms']} ms p99 {figures['rtt_p99_ms']} ms; lag p50 <= {figures['lag_p50_le_s']} s "
          f"p99 <= {figures['lag_p99_le_s']} s max {figures['lag_max_ms']} ms")


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_churn(benchmark: Any, impl: str, datadir: Path) -> None:
    benchmark.group = "load churn"
    quick = _quick(benchmark)
    seconds = float(os.environ.get("ETHNODE_LOAD_SECONDS", 0)) or (0.0 if quick else CHURN_SECONDS)

    async def run() -> dict[str, Any]:
        rng = random.Random(7)
        with _node(datadir, impl, "--maxpeers", str(4 * CHURN_HELD)) as node:
            before = node.rss()
            peers = await connect_many(CHURN_HELD, node.port, node.node_id)
            peak, connections, waves = node.rss(), CHURN_HELD, 0
            started = time.perf_counter()
            while (waves < QUICK_CHURN_WAVES) if not seconds else (time.perf_counter() - started < seconds):
                rng.shuffle(peers)
                leaving, peers = peers[:CHURN_HELD // 2], peers[CHURN_HELD // 2:]
                await asyncio.gather(*(p.close() for p in leaving))
                fresh = await connect_many(CHURN_HELD // 2, node.port, node.node_id, tolerate=True)
                peers += fresh
                connections += len(fresh)
                waves += 1
                peak = max(peak, node.rss())
            elapsed = time.perf_counter() - started
            await asyncio.gather(*(p.close() for p in peers))
            await asyncio.sleep(SETTLE)
            after = node.rss()
        return {"impl": impl, "connections": connections, "waves": waves, "seconds": round(elapsed, 1),
                "rss_before_mb": round(before / 1e6, 1), "rss_peak_mb": round(peak / 1e6, 1),
                "rss_after_mb": round(after / 1e6, 1), "rss_after_over_before": round(after / before, 2)}

    figures = _once(benchmark, run)
    benchmark.extra_info.update(figures)
    print(f"\n  churn [{impl}]: {figures['connections']} connections in {figures['waves']} waves, "
          f"{figures['seconds']} s; RSS before {figures['rss_before_mb']} MB, peak {figures['rss_peak_mb']} MB, "
          f"after {figures['rss_after_mb']} MB ({figures['rss_after_over_before']}x)")


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_pipeline(benchmark: Any, impl: str, datadir: Path) -> None:
    benchmark.group = "load pipelining peer"
    count = QUICK_PIPELINED if _quick(benchmark) else PIPELINED

    async def run() -> dict[str, Any]:
        with _node(datadir, impl) as node:
            prober = await LightPeer.connect(node.port, node.node_id)
            attacker = await LightPeer.connect(node.port, node.node_id)
            attacker.sink = True
            for peer in (prober, attacker):
                peer.start()
            await prober.probe()
            lag0 = node.lag()
            started = time.perf_counter()
            await attacker.pipeline(count)
            rtts: list[float] = []
            while attacker.received < count and time.perf_counter() - started < 300:
                rtts.append(await prober.probe(timeout=60))
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - started
            lag = node.lag().since(lag0)
            await prober.close()
            await attacker.close()
        return {"impl": impl, "requests": count, "served_s": round(elapsed, 1), "probes": len(rtts),
                **_rtt_figures(rtts), **_lag_figures(lag)}

    figures = _once(benchmark, run)
    benchmark.extra_info.update(figures)
    print(f"\n  pipeline [{impl}]: {figures['requests']} x GetBlockHeaders(1024) served in {figures['served_s']} s; "
          f"probe RTT p50 {figures['rtt_p50_ms']} ms p99 {figures['rtt_p99_ms']} ms max {figures['rtt_max_ms']} ms; "
          f"lag p99 <= {figures['lag_p99_le_s']} s max {figures['lag_max_ms']} ms")
