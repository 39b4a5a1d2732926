"""JSON-RPC over HTTP under ``wrk``: requests per second, ethnode against geth v1.17.10, both ``--dev``.

``wrk`` (C, epoll, a Lua script for the POST body) drives ``WRK_CONNECTIONS`` kept-alive
connections from ``WRK_THREADS`` threads for ``WRK_SECONDS``; unlike ``bench_rpc.py``'s
Python client it costs the node little CPU, though on two shared cores the two still
compete. Each node first gets one transfer from its dev account, so block 1 holds a
transaction and ``eth_getBlockByNumber("0x1", true)`` renders a full one. Both nodes run at
once and the wrk runs alternate between them, so the machine's other load falls on both alike;
each client's median run counts. The ratio to geth is printed by ``benches/report.py``
(target: ethnode >= 0.75x geth).

    PYTHONPATH=. python -m pytest benches/bench_rpc_wrk.py --benchmark-only -q -s

Skips when ``wrk`` is not on PATH (``apt-get install wrk``) or geth is not built.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from bench_rpc import _cpu, _node, _quick

WRK_THREADS, WRK_CONNECTIONS = 2, 16
WRK_SECONDS, QUICK_SECONDS = 5, 1
ROUNDS = 3  # alternating runs per client
CASES = {
    "eth_blockNumber": [],
    "eth_getBlockByNumber_full": ["0x1", True],
}
SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


def _wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return found


def _post(port: int, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        reply = json.loads(resp.read())
    assert "result" in reply, reply
    return reply["result"]


def _with_one_transfer(port: int) -> None:
    """Block 1 holds one transfer from the dev account (both dev modes seal a block for a tx)."""
    (dev,) = _post(port, "eth_accounts", [])
    _post(port, "eth_sendTransaction", [{"from": dev, "to": "0x" + "aa" * 20, "value": "0x1"}])
    deadline = time.monotonic() + 30
    while int(_post(port, "eth_blockNumber", []), 16) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("no block sealed for the transfer")
        time.sleep(0.05)  # polling the node's own answer; nothing to subscribe to over HTTP
    assert len(_post(port, "eth_getBlockByNumber", ["0x1", True])["transactions"]) == 1


def run_wrk(port: int, method: str, params: list[Any], seconds: int) -> dict[str, float]:
    """Requests/s and latency of one wrk run; fails on any non-2xx reply or socket error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, separators=(",", ":"))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT.format(body=body))
    try:
        done = subprocess.run([_wrk(), f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
                               "-s", script.name, f"http://127.0.0.1:{port}/"],
                              capture_output=True, text=True, timeout=seconds + 30)
    finally:
        Path(script.name).unlink()
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"req_per_s": rate, "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else float("nan")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrk_requests_per_second(benchmark: pytest.FixtureRequest, case: str) -> None:
    """Both nodes up at once, wrk runs alternating between them (ROUNDS each): the machine's other
    load falls on both alike, and each client's median round is what is reported."""
    _wrk()
    quick = _quick() or not benchmark.enabled  # type: ignore[attr-defined]
    seconds, rounds = (QUICK_SECONDS, 1) if quick else (WRK_SECONDS, ROUNDS)
    method = case.removesuffix("_full")
    with _node("ethnode") as (ours, ours_pid), _node("geth") as (geth, geth_pid):
        nodes = {"ethnode": (ours, ours_pid), "geth": (geth, geth_pid)}
        for port, _ in nodes.values():
            _with_one_transfer(port)
            run_wrk(port, method, CASES[case], 1)  # warm-up
        runs: dict[str, list[dict[str, float]]] = {"ethnode": [], "geth": []}

        def measure() -> None:
            for _ in range(rounds):
                for client, (port, pid) in nodes.items():
                    cpu, start = _cpu(pid), time.monotonic()
                    result = run_wrk(port, method, CASES[case], seconds)
                    result["node_cpu_share"] = (_cpu(pid) - cpu) / (time.monotonic() - start)
                    runs[client].append(result)

        benchmark.pedantic(measure, rounds=1, iterations=1)  # type: ignore[attr-defined]
        medians = {client: sorted(r, key=lambda x: x["req_per_s"])[len(r) // 2] for client, r in runs.items()}
        benchmark.extra_info.update(case=case, threads=WRK_THREADS, connections=WRK_CONNECTIONS,  # type: ignore[attr-defined]
                                    rounds=rounds, **medians)
        for client, m in medians.items():
            each = ", ".join(f"{r['req_per_s']:.0f}" for r in runs[client])
            print(f"\n{client} {case}: {m['req_per_s']:.0f} req/s (median of {rounds}: {each}), "
                  f"p50 {m['p50_ms']:.2f} ms, node CPU {m['node_cpu_share']:.2f}")
