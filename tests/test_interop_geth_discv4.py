"""geth judges ethnode's discv4: its conformance suite, its client tools, a mixed network.

The pinned ``devp2p`` tool comes from tests/gethtools.py (built once with ``go install``);
the tests skip only where no Go toolchain exists. ethnode runs as the ``discover``
command in a subprocess on 127.0.0.1, exactly as a user would start it. The suite is run
once per module and reported as one pytest test per conformance test, so a failure names
the suite test that failed. Everything stays on loopback: geth's tools are always given
``--bootnodes ""`` (without it they would bootstrap from mainnet).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gethtools import require_geth_tools
from shared_support import subprocess_env

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover.udp import Config, UDPv4
from ethnode.p2p.enode import Node, parse_node
from ethnode.p2p.enr import ENR

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(120)]

# cmd/devp2p/internal/v4test AllTests, in the suite's order
SUITE = [
    "Ping/Basic", "Ping/WrongTo", "Ping/WrongFrom", "Ping/ExtraData", "Ping/ExtraDataWrongFrom",
    "Ping/PastExpiration", "Ping/WrongPacketType", "Ping/BondThenPingWithWrongFrom", "ENRRequest",
    "Findnode/WithoutEndpointProof", "Findnode/BasicFindnode", "Findnode/UnsolicitedNeighbors",
    "Findnode/PastExpiration", "Amplification/InvalidPongHash", "Amplification/WrongIP",
]
SUITE_TIMEOUT = 90  # seconds; the suite itself takes ~2 s against ethnode


@pytest.fixture(scope="module")
def devp2p() -> Path:
    return require_geth_tools() / "devp2p"


@pytest.fixture(scope="module")
def ethnode_node() -> Iterator[tuple[Node, ENR]]:
    """``ethnode-fast discover`` on 127.0.0.1: (its enode as printed, its record)."""
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethnode.commands.discover", "--port", "0", "--listenaddr", "127.0.0.1",
         "--log-interval", "0", "--verbosity", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    url, text = proc.stdout.readline().strip(), proc.stdout.readline().strip()
    if not url.startswith("enode://"):
        proc.kill()
        pytest.fail(f"discover did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    try:
        yield parse_node(url), ENR.from_text(text)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err[-2000:]


@pytest.fixture(scope="module")
def suite(devp2p: Path, ethnode_node: tuple[Node, ENR]) -> tuple[dict[str, str], str]:
    node, _ = ethnode_node
    done = subprocess.run(
        [str(devp2p), "discv4", "test", "--remote", node.enode_url(), "--listen1", "127.0.0.1",
         "--listen2", "127.0.0.2"],
        capture_output=True, text=True, timeout=SUITE_TIMEOUT,
    )
    output = done.stdout + done.stderr
    results = dict((name, status) for status, name in re.findall(r"^-- (OK|FAIL|SKIP) (\S+)", output, re.M))
    return results, output


@pytest.mark.parametrize("name", SUITE)
def test_conformance(suite: tuple[dict[str, str], str], name: str) -> None:
    results, output = suite
    assert results.get(name) == "OK", f"{name}: {results.get(name)}\n{output[-4000:]}"


def test_conformance_summary(suite: tuple[dict[str, str], str]) -> None:
    results, output = suite
    assert sorted(results) == sorted(SUITE), output[-4000:]  # the pinned suite still has these 15 tests
    assert "15/15 tests passed." in output, output[-4000:]


def test_geth_pings_and_fetches_the_record(devp2p: Path, ethnode_node: tuple[Node, ENR]) -> None:
    node, record = ethnode_node
    common = ["--bootnodes", "", "--addr", "127.0.0.1:0"]
    ping = subprocess.run([str(devp2p), "discv4", "ping", *common, node.enode_url()],
                          capture_output=True, text=True, timeout=30)
    assert ping.returncode == 0 and "node responded to ping" in ping.stdout, ping.stdout + ping.stderr
    req = subprocess.run([str(devp2p), "discv4", "requestenr", *common, node.enode_url()],
                         capture_output=True, text=True, timeout=30)
    assert req.returncode == 0, req.stdout + req.stderr
    fetched = ENR.from_text(req.stdout.strip().splitlines()[-1])
    assert fetched == record  # geth verified our signature and returns our exact record


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rpc(port: int, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        reply = json.loads(resp.read())
    assert "error" not in reply, reply
    return reply["result"]


def test_mixed_network_with_a_geth_bootnode(devp2p: Path) -> None:
    """geth's discovery node bootstraps four ethnode nodes; each side must learn the other.

    ethnode nodes only meet each other through geth's Neighbors, and geth only keeps them
    (and revalidates them as live) if it accepts our Pongs and endpoint proofs.
    """
    rpc_port = _free_tcp_port()
    key = PrivateKey.generate()
    geth = subprocess.Popen(
        [str(devp2p), "discv4", "listen", "--bootnodes", "", "--addr", "127.0.0.1:0", "--nodekey", key.to_hex(),
         "--rpc", f"127.0.0.1:{rpc_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert geth.stdout is not None
        boot = parse_node(geth.stdout.readline().strip())
        assert boot.pubkey == key.node_id and boot.udp

        async def main() -> tuple[set[bytes], Any, Any]:
            cfg = Config(bootnodes=[boot], ping_interval=0.5, refresh_interval=2.0)
            nodes = [await UDPv4(PrivateKey.generate(), config=cfg).start("127.0.0.1", 0) for _ in range(4)]
            ids = {n.local.id for n in nodes}
            try:
                async def settled() -> None:
                    while not all({x.id for x in n.table.nodes()} >= (ids - {n.local.id}) | {boot.id}
                                  for n in nodes):
                        await asyncio.sleep(0.1)

                await asyncio.wait_for(settled(), 45)

                async def geth_knows_all() -> Any:
                    while True:
                        buckets = await asyncio.to_thread(_rpc, rpc_port, "discv4_buckets")
                        entries = [e for b in buckets for e in b]
                        if {parse_node(e["node"]).id for e in entries} >= ids:
                            return entries
                        await asyncio.sleep(0.2)

                entries = await asyncio.wait_for(geth_knows_all(), 30)
                found = await asyncio.to_thread(_rpc, rpc_port, "discv4_lookupRandom", 3)
                return ids, entries, found
            finally:
                await asyncio.gather(*(n.close() for n in nodes))

        started = time.monotonic()
        ids, entries, found = p2p_loop.run(main())
        assert {parse_node(e["node"]).id for e in entries} >= ids
        assert len(found) >= 1 and {parse_node(f).id for f in found} <= ids  # geth's lookup walked our nodes
        assert time.monotonic() - started < 60
    finally:
        geth.send_signal(signal.SIGINT)
        try:
            geth.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            geth.kill()
            geth.communicate()
