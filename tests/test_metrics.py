"""Metrics: the text exposition, p2p traffic/peer/dial counters between two live nodes, scrape-time gauges,
event-loop lag, the chain head log line, the terminal sync display, and `run --http --metrics` end to end."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import HOST, RunProcess, child_env, cli_command
from p2p_support import run_checked
from rpc_support import CHAIN_ID, DEV_ADDR, DEV_BALANCE, RPCNode, dev_chain, dev_genesis_json, http_post, transfer

from ethnode.core.events import ChainHeadEvent
from ethnode.eth.downloader.downloader import SyncProgress
from ethnode.event import EventBus
from ethnode.metrics import p2p as p2p_metrics
from ethnode.metrics.lag import LoopLagProbe
from ethnode.metrics.registry import Registry
from ethnode.monitoring.events import EventLogger, pretty_age
from ethnode.monitoring.syncdisplay import SyncDisplay


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_text_exposition_format() -> None:
    reg = Registry()
    c = reg.counter("things_total", "things seen")
    c.inc()
    c.inc(2)
    assert reg.counter("things_total", "again") is c  # get-or-create
    g = reg.gauge("level", 'a "gauge"\nwith a newline')
    g.set(1.5)
    reg.gauge_func("peers_by", "by kind", lambda: {("in",): 2, ('we"ird\\',): 1}, labels=["kind"])
    reg.gauge_func("broken", "raises", lambda: 1 / 0)
    h = reg.histogram("lat_seconds", "latency", [0.1, 1.0])
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v)
    text = reg.render()
    assert "# HELP level a \"gauge\"\\nwith a newline\n# TYPE level gauge\nlevel 1.5\n" in text
    assert "# TYPE things_total counter\nthings_total 3\n" in text
    assert 'peers_by{kind="in"} 2\n' in text and 'peers_by{kind="we\\"ird\\\\"} 1\n' in text
    assert "broken" not in text  # a failing source is skipped, the scrape goes on
    assert ('lat_seconds_bucket{le="0.1"} 2\nlat_seconds_bucket{le="1"} 3\nlat_seconds_bucket{le="+Inf"} 4\n'
            "lat_seconds_sum 3.65\nlat_seconds_count 4\n") in text
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names)


def test_p2p_traffic_peers_dials_and_node_gauges() -> None:
    async def scenario() -> None:
        before = {name: getattr(p2p_metrics, name).value for name in
                  ("DIALS", "DIALS_SUCCESS", "SERVES", "SERVES_SUCCESS", "INGRESS_BYTES", "EGRESS_BYTES")}
        status_in = p2p_metrics.INGRESS_MESSAGES.get("eth", 71, 0)
        status_out = p2p_metrics.EGRESS_MESSAGES.get("eth", 71, 0)
        a = await RPCNode(dev_chain([[transfer(0)]]), metrics=True).start()
        b = await RPCNode(dev_chain(), metrics=True).start()
        try:
            await b.node.server.dial(a.node.server.enode)
            await a.eth.handler.wait_for_peers(1)
            await b.eth.handler.wait_for_peers(1)
            a.eth.txpool.add_locals([transfer(1)])
            after = {name: getattr(p2p_metrics, name).value for name in before}
            assert after["DIALS"] - before["DIALS"] == 1 and after["DIALS_SUCCESS"] - before["DIALS_SUCCESS"] == 1
            assert after["SERVES"] - before["SERVES"] == 1 and after["SERVES_SUCCESS"] - before["SERVES_SUCCESS"] == 1
            assert after["INGRESS_BYTES"] - before["INGRESS_BYTES"] > 400  # two handshakes, Hellos, Statuses
            assert after["EGRESS_BYTES"] - before["EGRESS_BYTES"] == after["INGRESS_BYTES"] - before["INGRESS_BYTES"]
            n_in, size_in = p2p_metrics.INGRESS_MESSAGES.get("eth", 71, 0)
            n_out, size_out = p2p_metrics.EGRESS_MESSAGES.get("eth", 71, 0)
            assert n_in - status_in[0] == 2 and n_out - status_out[0] == 2  # one Status each way
            assert size_in - status_in[1] == size_out - status_out[1] > 0

            status, headers, body = await http_post(a.metrics_port, None, method="GET", path="/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
            got = samples(body.decode())
            assert got["p2p_peers"] == 1 and got["p2p_peers_inbound"] == 1 and got["p2p_peers_outbound"] == 0
            assert got["chain_head_block"] == 1 and got["eth_peers"] == 1
            assert got["txpool_pending"] == 1 and got["txpool_queued"] == 0
            assert got["eth_known_blocks"] >= 0 and "eth_known_txs" in got
            assert got['p2p_ingress_messages_total{protocol="eth",version="71",code="0x00"}'] >= 2
            assert got["eth_downloader_syncing"] == 0 and "event_loop_lag_seconds" in got
            status, _, geth_path = await http_post(a.metrics_port, None, method="GET",
                                                   path="/debug/metrics/prometheus")
            assert status == 200 and b"p2p_dials_total" in geth_path
            assert (await http_post(a.metrics_port, None, method="GET", path="/nope"))[0] == 404
            assert (await http_post(b.metrics_port, None, method="GET", path="/metrics"))[0] == 200
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario)


def test_event_loop_lag_probe() -> None:
    async def scenario() -> None:
        reg = Registry()
        probe = LoopLagProbe(reg, interval=0.01)
        probe.start()
        try:
            await asyncio.wait_for(probe.probed.wait(), 5)
        finally:
            await probe.stop()
        assert probe.hist.count >= 1 and probe.last.value >= 0
        assert "event_loop_lag_seconds_distribution_count" in reg.render()

    run_checked(scenario)


def test_chain_head_line(caplog: Any) -> None:
    chain = dev_chain([[transfer(0)]])
    head = chain.current_block
    assert [pretty_age(s) for s in (0, 59, 61, 3 * 3600 + 120, 9 * 86400)] == ["0s", "59s", "1m1s", "3h2m", "1w2d"]

    async def scenario() -> None:
        bus = EventBus()
        syncing = [False]
        logger = EventLogger(bus, lambda: syncing[0], clock=lambda: head.time + 5)
        logger.start()
        try:
            with caplog.at_level(logging.DEBUG, logger="ethnode.chain"):
                bus.post(ChainHeadEvent(head))
                while not caplog.records:
                    await asyncio.sleep(0)  # the logger task runs on the next turns of the loop
                syncing[0] = True
                logger.log_head(head)
        finally:
            await logger.stop()

    run_checked(scenario)
    first, second = caplog.records
    assert first.levelno == logging.INFO and second.levelno == logging.DEBUG  # quieter while syncing
    assert first.getMessage() == (f"Chain head was updated number=1 hash=0x{head.hash.hex()} "
                                  f"root=0x{head.state_root.hex()} age=5s")


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_sync_display_on_a_terminal_only() -> None:
    chain = dev_chain([[], []])

    class Downloader:
        syncing = True

        @staticmethod
        def progress() -> SyncProgress:
            return SyncProgress(0, 2, 8)

    async def scenario() -> None:
        plain = SyncDisplay(Downloader(), chain, io.StringIO())
        plain.start()
        assert plain._task is None  # not a terminal: the downloader's log lines say it
        tty = _TTY()
        display = SyncDisplay(Downloader(), chain, tty, poll=3600)
        display.start()
        try:
            display.update()
            assert re.search(r"\rSyncing chain \[#{7}\.{23}\]  25\.0% #2 ", tty.getvalue())
            Downloader.syncing = False
            display.update()
            assert tty.getvalue().endswith("\n") and display.progress is None
        finally:
            await display.stop()

    run_checked(scenario)


@pytest.mark.subprocess
def test_run_with_http_and_metrics(tmp_path: Path) -> None:
    """`ethnode-fast run --http --metrics`: JSON-RPC and /metrics on the ports the log lines name."""
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(dev_genesis_json()))
    init = subprocess.run(cli_command("init", str(genesis), "--datadir", str(tmp_path)), capture_output=True, text=True,
                          env=child_env(), timeout=30)
    assert init.returncode == 0, init.stderr
    run = RunProcess(["--datadir", str(tmp_path), "--port", "0", "--listenaddr", HOST, "--nodiscover",
                      "--authrpc.port", "0", "--eth.versions", "69,68", "--http", "--http.port", "0",
                      "--http.api", "eth,net,web3,admin", "--metrics", "--metrics.port", "0"])
    try:
        rpc_port = int(run.wait_for_line(r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false").group(1))
        metrics_port = int(run.wait_for_line(r"Starting metrics server +addr=http://127\.0\.0\.1:(\d+)/").group(1))

        async def probe() -> tuple[Any, Any, Any, bytes]:
            _, _, chain_id = await http_post(rpc_port, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
            _, _, info = await http_post(rpc_port, {"jsonrpc": "2.0", "id": 2, "method": "admin_nodeInfo"})
            _, _, balance = await http_post(rpc_port, {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance",
                                                       "params": ["0x" + DEV_ADDR.hex(), "latest"]})
            _, _, metrics = await http_post(metrics_port, None, method="GET", path="/metrics")
            return json.loads(chain_id), json.loads(info), json.loads(balance), metrics

        chain_id, info, balance, metrics = asyncio.run(probe())
        assert chain_id["result"] == hex(CHAIN_ID)
        assert balance["result"] == hex(DEV_BALANCE)  # the genesis state, read through the execution layer
        assert info["result"]["protocols"]["eth"]["network"] == CHAIN_ID
        assert b"chain_head_block 0\n" in metrics and b"p2p_peers 0\n" in metrics
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in run.output, run.output
