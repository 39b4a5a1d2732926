"""newHeads fan-out: how long after a transaction is sent do ``CLIENTS`` WebSocket subscribers all
hear of the block that holds it, ethnode against geth v1.17.10, both ``--dev`` (a block is sealed
for each transaction) in one run.

Each round sends one transfer over HTTP and times, per client, the first ``eth_subscription``
notification after it; the figures are the median over ``ROUNDS`` of the fastest, median and
slowest client. The clients (aiohttp, in this process) share the two cores with the node, so the
spread includes their own reading; the ratio to geth is what ``benches/report.py`` prints.

    PYTHONPATH=. python -m pytest benches/bench_rpc_fanout.py --benchmark-only -q -s
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
import pytest
from bench_rpc import _node, _quick

CLIENTS = 100
ROUNDS, QUICK_ROUNDS = 10, 3
ROUND_TIMEOUT = 20.0


async def _rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    async with session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}) as r:
        reply = await r.json()
    assert "result" in reply, reply
    return reply["result"]


async def _first_head(ws: aiohttp.ClientWebSocketResponse, start: float) -> float:
    """Seconds from ``start`` to this client's next notification."""
    note = json.loads((await ws.receive()).data)
    assert note["method"] == "eth_subscription", note
    return time.perf_counter() - start


async def _fanout(port: int, rounds: int) -> dict[str, float]:
    url, ws_url = f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/"
    # no connector limit: aiohttp's default of 100 would leave the HTTP requests waiting behind the sockets
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await session.ws_connect(ws_url, max_msg_size=0) for _ in range(CLIENTS)]
        try:
            for ws in sockets:
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                              "params": ["newHeads"]}))
                assert "result" in json.loads((await ws.receive()).data)
            (dev,) = await _rpc(session, url, "eth_accounts")
            firsts, medians, lasts = [], [], []
            for _ in range(rounds):
                start = time.perf_counter()

                waiting = [asyncio.create_task(_first_head(ws, start)) for ws in sockets]
                await _rpc(session, url, "eth_sendTransaction", {"from": dev, "to": "0x" + "aa" * 20, "value": "0x1"})
                arrivals = sorted(await asyncio.wait_for(asyncio.gather(*waiting), ROUND_TIMEOUT))
                firsts.append(arrivals[0])
                medians.append(arrivals[len(arrivals) // 2])
                lasts.append(arrivals[-1])
        finally:
            for ws in sockets:
                await ws.close()
    ms = 1000.0
    return {"first_ms": statistics.median(firsts) * ms, "median_ms": statistics.median(medians) * ms,
            "last_ms": statistics.median(lasts) * ms, "spread_ms": statistics.median(
                [last - first for first, last in zip(firsts, lasts, strict=True)]) * ms}


@pytest.mark.parametrize("client", ["ethnode", "geth"])
def test_new_heads_fanout_to_100_websockets(benchmark: pytest.FixtureRequest, client: str) -> None:
    rounds = QUICK_ROUNDS if _quick() or not benchmark.enabled else ROUNDS  # type: ignore[attr-defined]
    extra = ("--ws", "--ws.port", "0", "--ws.origins", "*") if client == "ethnode" else (
        "--ws", "--ws.port", "0", "--ws.api", "eth", "--ws.origins", "*")
    with _node(client, extra) as (port, _pid):
        result: dict[str, float] = {}

        def measure() -> None:
            result.update(asyncio.run(_fanout(port, rounds)))

        benchmark.pedantic(measure, rounds=1, iterations=1)  # type: ignore[attr-defined]
        benchmark.extra_info.update(client=client, fanout_clients=CLIENTS, **result)  # type: ignore[attr-defined]
        print(f"\n{client}: newHeads to {CLIENTS} WebSockets after a tx: first {result['first_ms']:.1f} ms, "
              f"median {result['median_ms']:.1f} ms, last {result['last_ms']:.1f} ms "
              f"(spread {result['spread_ms']:.1f} ms)")
