"""Every script in ``examples/`` run as a user runs it, against a loopback network: geth v1.17.10
(HTTP for eth_sendRawTransaction and admin_addPeer) and an ethnode ``run`` node peered with it,
both on one genesis. Each script is a child process whose stdout is read line by line; the
test waits for the lines it expects (bounded), never sleeps."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_support import ENODE_LINE, HOST, RunProcess, child_env, cli_command
from geth_support import GethNode, free_port, start_geth, stop_geth
from gethtools import require_geth_tools
from test_api import funded_genesis
from test_record_geth import _rpc
from txpool_support import CHAIN_ID, dyn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60.0


class Script:
    """An example script; stdout read on a thread, waited on by pattern."""

    def __init__(self, name: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-u", str(EXAMPLES / name), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=child_env())
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")
            self._changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = TIMEOUT) -> list[re.Match[str]]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in map(regex.search, self.lines) if m]
                if len(found) >= count:
                    return found
                if self.lines and self.lines[-1] == "" and self.proc.poll() is not None:
                    raise AssertionError(f"script exited ({self.proc.returncode}):\n" + "\n".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count} lines matching {pattern!r}:\n" + "\n".join(self.lines))
                self._changed.wait(left)

    def finish(self, timeout: float = TIMEOUT) -> str:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        with self._changed:
            self._changed.wait_for(lambda: self.lines and self.lines[-1] == "", timeout)
        out = "\n".join(self.lines)
        assert code == 0, out
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Net:
    genesis: Path
    geth: GethNode
    http: int
    ethnode: str


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    tools = require_geth_tools()
    tmp = tmp_path_factory.mktemp("examples")
    genesis = tmp / "genesis.json"
    genesis.write_text(json.dumps(funded_genesis()))
    subprocess.run([str(tools / "geth"), "init", "--datadir", str(tmp / "geth"), str(genesis)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(cli_command("init", str(genesis), "--datadir", str(tmp / "en")), check=True,
                   capture_output=True, timeout=60, env=child_env())
    http = free_port()
    geth = start_geth(tools, tmp / "geth", "--http", "--http.addr", HOST, "--http.port", str(http),
                      "--http.api", "eth,admin,txpool", network_id=CHAIN_ID)
    node = None
    try:
        node = RunProcess(["--datadir", str(tmp / "en"), "--port", "0", "--listenaddr", HOST, "--nodiscover",
                           "--nat", "none", "--eth.versions", "69,70,71", "--ipcdisable", "--verbosity", "4"])
        enode = node.wait_for_line(ENODE_LINE).group(1)
        assert _rpc(http, "admin_addPeer", enode) is True
        node.wait_for_line(r'Adding p2p peer .*name="?Geth/', TIMEOUT)
        yield Net(genesis, geth, http, enode)
    finally:
        if node is not None:
            node.stop(signal.SIGKILL)
        stop_geth(geth.proc)


pytestmark = [pytest.mark.interop, pytest.mark.subprocess]


def _send(net: Net, txs: list) -> None:
    for tx in txs:
        assert _rpc(net.http, "eth_sendRawTransaction", "0x" + tx.canonical.hex()) == "0x" + tx.hash.hex()


def test_announcement_sniffer_prints_what_geth_announces(net: Net) -> None:
    # over 4096 bytes geth never broadcasts a tx in full, it only announces it (txMaxBroadcastSize)
    txs = [dyn(0, n, gas=200_000, data=bytes(5000)) for n in range(3)]
    script = Script("announcement_sniffer.py", "--genesis", str(net.genesis), "--peer", net.geth.enode,
                    "--count", str(len(txs)))
    try:
        script.wait_for(r"^connected Geth/")
        _send(net, txs)
        found = script.wait_for(r"^tx (\d+) Geth 0x([0-9a-f]{64}) type=2 size=(\d+)", len(txs))
        out = script.finish()
    finally:
        script.kill()
    assert {m.group(2) for m in found} == {tx.hash.hex() for tx in txs}, out
    assert all(int(m.group(3)) == len(tx.canonical) for m in found for tx in txs if tx.hash.hex() == m.group(2))


def test_peer_census_counts_geth_and_ethnode(net: Net) -> None:
    script = Script("peer_census.py", "--genesis", str(net.genesis), "--peer", net.geth.enode, "--peer", net.ethnode,
                    "--until", "2", "--duration", "20")
    try:
        out = script.finish()
    finally:
        script.kill()
    assert "peers=2" in out.splitlines(), out
    assert "client Geth 1" in out and "client ethnode 1" in out, out
    assert re.search(r"^version eth/(69|70|71) 2$", out, re.M) or re.search(r"^version eth/", out, re.M), out


def test_propagation_timing_reports_every_tx(net: Net) -> None:
    txs = [dyn(1, n) for n in range(5)]
    # what geth already holds (the other tests' txs) reaches the script too, when it connects
    pending = int(_rpc(net.http, "txpool_status")["pending"], 16)
    total = pending + len(txs)
    script = Script("propagation_timing.py", "--genesis", str(net.genesis), "--peer", net.geth.enode,
                    "--peer", net.ethnode, "--txs", str(total), "--linger", "1", "--duration", str(TIMEOUT))
    try:
        script.wait_for(r"^connected ", 2)
        _send(net, txs)
        out = script.finish()
    finally:
        script.kill()
    pattern = r"^tx 0x([0-9a-f]{64}) peers=(\d+) spread_ms="
    lines = {m.group(1): int(m.group(2)) for m in re.finditer(pattern, out, re.M)}
    assert {tx.hash.hex() for tx in txs} <= set(lines) and len(lines) == total, out
    assert all(n >= 1 for n in lines.values()), out
    assert re.search(rf"^txs={total} median_spread_ms=[\d.]+$", out, re.M), out


def test_custom_subprotocol_round_trips() -> None:
    script = Script("custom_subprotocol.py", "--count", "3")
    try:
        out = script.finish()
    finally:
        script.kill()
    seqs = [int(m.group(1)) for m in re.finditer(r"^pong seq=(\d+) rtt_ms=[\d.]+ from=ethnode$", out, re.M)]
    assert seqs == [0, 1, 2], out
