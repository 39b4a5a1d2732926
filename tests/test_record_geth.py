"""``ethnode-fast record`` on a loopback network of geth v1.17.10 and an ethnode ``run`` node.

The recorder (a process, as a user runs it) keeps both as peers; geth and the ethnode node
peer with each other (geth's admin_addPeer). N signed txs go into geth over its HTTP
``eth_sendRawTransaction``; geth broadcasts or announces them to its peers. The recording
must hold every one of them, once, with its raw bytes, a timestamped row from geth for
each, and load in pandas with one call.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cli_support import ENODE_LINE, HOST, RunProcess, child_env, cli_command
from geth_support import free_port, start_geth, stop_geth
from gethtools import GETH_VERSION, require_geth_tools
from test_api import funded_genesis
from txpool_support import CHAIN_ID, dyn

from ethnode.crypto.keccak import keccak256
from ethnode.record import load

pd = pytest.importorskip("pandas")
pytestmark = [pytest.mark.interop, pytest.mark.subprocess]

N_TXS = 24
TIMEOUT = 60.0


def _rpc(port: int, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(f"http://{HOST}:{port}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        reply = json.loads(resp.read())
    assert "error" not in reply, reply
    return reply["result"]


def test_record_captures_every_tx_geth_sends(tmp_path: Path) -> None:
    tools = require_geth_tools()
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(funded_genesis()))
    subprocess.run([str(tools / "geth"), "init", "--datadir", str(tmp_path / "geth"), str(genesis)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(cli_command("init", str(genesis), "--datadir", str(tmp_path / "en")), check=True,
                   capture_output=True, timeout=60, env=child_env())
    http = free_port()
    geth = start_geth(tools, tmp_path / "geth", "--http", "--http.addr", HOST, "--http.port", str(http),
                      "--http.api", "eth,admin", network_id=CHAIN_ID)
    procs: list[RunProcess] = []
    try:
        node = RunProcess(["--datadir", str(tmp_path / "en"), "--port", "0", "--listenaddr", HOST, "--nodiscover",
                           "--nat", "none", "--eth.versions", "69,70,71", "--ipcdisable", "--verbosity", "4"])
        procs.append(node)
        node_enode = node.wait_for_line(ENODE_LINE).group(1)
        out = tmp_path / "rec.sqlite3"
        rec = RunProcess([], argv=cli_command(
            "record", "--genesis", str(genesis), "--peers", f"{geth.enode},{node_enode}", "--nodiscover",
            "--listenaddr", HOST, "--port", "0", "--out", str(out)))
        procs.append(rec)
        rec.wait_for_line(rf'Recorder peer added .*name="?Geth/{GETH_VERSION}', TIMEOUT)
        rec.wait_for_line(r'Recorder peer added .*name="?ethnode/', TIMEOUT)
        assert _rpc(http, "admin_addPeer", node_enode) is True
        node.wait_for_line(r'Adding p2p peer .*name="?Geth/', TIMEOUT)

        txs = [dyn(k, n) for k in range(4) for n in range(N_TXS // 4)]
        for tx in txs:
            assert _rpc(http, "eth_sendRawTransaction", "0x" + tx.canonical.hex()) == "0x" + tx.hash.hex()
        rec.wait_for_line(rf"Recorded batch .*unique_txs={N_TXS}\b", TIMEOUT)
        code, _ = rec.stop(signal.SIGINT)
        assert code == 0, rec.output
        summary = rec.wait_for_line(r"Recording summary (.*)").group(1)
        assert f"unique_txs={N_TXS}" in summary and "peers=2" in summary, summary
    finally:
        for proc in procs:
            proc.stop(signal.SIGKILL)
        stop_geth(geth.proc)

    recorded = load(out, "txs")
    assert sorted(recorded["hash"]) == sorted(tx.hash.hex() for tx in txs)
    raw = dict(zip(recorded["hash"], recorded["raw"], strict=True))
    assert all(bytes(raw[tx.hash.hex()]) == tx.canonical for tx in txs)
    events = load(out)
    rows = events[events["kind"].isin(["tx_broadcast", "tx_pooled", "tx_announcement"])]
    geth_id = keccak256(geth.key.node_id).hex()
    from_geth = rows[rows["peer"] == geth_id]
    assert set(from_geth["hash"]) == {tx.hash.hex() for tx in txs}  # a timestamped row from geth for every tx
    assert (rows["time_ns"] > 0).all()
    peers = load(out, "peers")
    added = peers[peers["event"] == "add"].set_index("peer")
    assert added.loc[geth_id, "client_id"].startswith(f"Geth/{GETH_VERSION}")
    assert added.loc[geth_id, "network_id"] == CHAIN_ID and added.loc[geth_id, "eth_version"] >= 69
    per_peer = rows.groupby("peer")["hash"].nunique().to_dict()
    print(f"record: {N_TXS} txs; distinct txs seen per peer: {per_peer}; {summary}")
