"""Acceptance: a 3-node dev network on loopback, as a user builds one with the CLI.

Node 1 runs ``run --dev --dev.period 1`` and writes its genesis (``--dev.genesis-out``);
nodes 2 and 3 ``init`` that genesis and ``run --bootnodes <node 1>``, node 2 speaking only
eth/68 (NewBlock / NewBlockHashes) and node 3 only eth/69 (BlockRangeUpdate + fetch).
Checked: both follow node 1's blocks within two periods; a tx sent with web3.py to node 3
is mined by node 1 and its receipt is served by every node; node 2 killed (SIGKILL) and
restarted on its datadir catches up and follows again.

Every node is a real ``python -m ethnode`` process; waits poll JSON-RPC with deadlines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import ENODE_LINE, HOST, RunProcess
from shared_support import subprocess_env

from ethnode.eth.sync import FORCE_SYNC_CYCLE  # a follower with a single peer syncs on this cycle (geth's)

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
web3 = pytest.importorskip("web3", reason="web3.py is a test extra (pip install 'ethnode[test]')")
eth_account = pytest.importorskip("eth_account")

from web3 import Web3  # noqa: E402

PERIOD = 1  # seconds between node 1's blocks
FOLLOW_BOUND = 2 * PERIOD  # followers have each block within two periods
DEV_KEY = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291"  # geth's DeveloperKey
DEV_ADDR = "0x71562b71999873db5b286df957af199ec94617f7"
RECIPIENT = "0x00000000000000000000000000000000000000aa"
HTTP_LINE = r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false"
TIMEOUT = 20.0  # seconds for any one wait (a cold interpreter start included)
MISSED = 3  # blocks node 2 misses while it is down
POLL = 0.05


def rpc(port: int, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise AssertionError(f"{method} on :{port}: {reply['error']}")
    return reply["result"]


def rpc_error(port: int, method: str, *params: Any) -> Any:
    """The error object of a call that must fail."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.loads(response.read())
    assert "error" in reply, f"{method} on :{port} did not fail: {reply}"
    return reply["error"]


def head(port: int) -> int:
    return int(rpc(port, "eth_blockNumber"), 16)


def wait_until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


class DevNode:
    """One ``ethnode-fast run`` process with its HTTP port."""

    def __init__(self, name: str, args: list[str], registry: dict[str, DevNode]) -> None:
        self.name = name
        self.args = args
        self.proc = RunProcess(args)
        registry[name] = self  # killed by the fixture whatever happens next
        self.enode = ""
        self.port = 0

    def ready(self) -> DevNode:
        """Wait until it listens for peers and for JSON-RPC."""
        self.enode = self.proc.wait_for_line(ENODE_LINE, TIMEOUT).group(1)
        self.port = int(self.proc.wait_for_line(HTTP_LINE, TIMEOUT).group(1))
        return self

    def head(self) -> int:
        return head(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        code, _ = self.proc.stop(sig)
        return code


def init(datadir: Path, genesis: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ethnode", "init", str(genesis), "--datadir", str(datadir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def follower_args(datadir: Path, bootnode: str, versions: str) -> list[str]:
    return ["--datadir", str(datadir), "--port", "0", "--listenaddr", HOST, "--bootnodes", bootnode,
            "--eth.versions", versions, "--authrpc.port", "0", "--http", "--http.port", "0"]


@pytest.fixture
def nodes() -> Iterator[dict[str, DevNode]]:
    running: dict[str, DevNode] = {}
    try:
        yield running
    finally:
        for node in running.values():
            node.proc.stop(signal.SIGKILL, timeout=5)
            print(f"--- {node.name} ---\n" + "\n".join(node.proc.lines[-40:]))  # shown if the test failed


def block_seen_latency(block: dict[str, Any], followers: list[DevNode], timeout: float) -> dict[str, float]:
    """Seconds from the block's timestamp (node 1 seals at it) until each follower serves it."""
    number = block["number"]
    left = {n.name: n for n in followers}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while left:
        for name, node in list(left.items()):
            got = rpc(node.port, "eth_getBlockByNumber", number, False)
            if got is not None:
                assert got["hash"] == block["hash"], f"{name} has another block #{int(number, 16)}"
                seen[name] = time.time() - int(block["timestamp"], 16)
                del left[name]
        if left and time.monotonic() > deadline:
            raise AssertionError(f"{sorted(left)} did not get block #{int(number, 16)} within {timeout} s")
        time.sleep(POLL)
    return seen


def check_clique_rpc(node: DevNode) -> None:
    """clique_ over HTTP on the sealing node: the dev key is the one signer and seals every block."""
    wait_until("two sealed blocks", lambda: node.head() >= 2)  # clique_status looks at [1, head)
    assert rpc(node.port, "clique_getSigners") == [DEV_ADDR]
    assert rpc(node.port, "clique_getSigners", "0x0") == [DEV_ADDR]
    head = rpc(node.port, "eth_getBlockByNumber", "latest", False)
    assert rpc(node.port, "clique_getSignersAtHash", head["hash"]) == [DEV_ADDR]
    assert rpc(node.port, "clique_getSigner", head["hash"]) == DEV_ADDR
    assert rpc(node.port, "clique_getSigner", head["number"]) == DEV_ADDR
    snapshot = rpc(node.port, "clique_getSnapshot", "latest")
    assert list(snapshot["signers"]) == [DEV_ADDR] and snapshot["number"] >= 1
    status = rpc(node.port, "clique_status")
    assert status["inturnPercent"] == 100.0 and set(status["sealerActivity"]) == {DEV_ADDR}
    # Dropping a non-signer is never cast as a vote (geth validVote), so this cannot change the signer set.
    assert rpc(node.port, "clique_propose", RECIPIENT, False) is None
    assert rpc(node.port, "clique_proposals") == {RECIPIENT: False}
    assert rpc(node.port, "clique_discard", RECIPIENT) is None and rpc(node.port, "clique_proposals") == {}
    unknown = rpc_error(node.port, "clique_getSignersAtHash", "0x" + "11" * 32)
    assert unknown == {"code": -32000, "message": "unknown block"}, unknown


@pytest.mark.subprocess
def test_three_node_dev_network(tmp_path: Path, nodes: dict[str, DevNode]) -> None:
    genesis = tmp_path / "dev-genesis.json"
    n1 = DevNode("n1", [
        "--dev", "--dev.clique", "--dev.period", str(PERIOD), "--dev.key", DEV_KEY, "--dev.genesis-out", str(genesis),
        "--datadir", str(tmp_path / "n1"), "--port", "0", "--listenaddr", HOST, "--authrpc.port", "0",
        "--eth.versions", "68,69", "--http.port", "0", "--http.api", "eth,net,web3,txpool,admin,clique",
    ], nodes).ready()
    assert json.loads(genesis.read_text())["config"]["clique"]["period"] == PERIOD
    check_clique_rpc(n1)
    inits = [init(tmp_path / name, genesis) for name in ("n2", "n3")]
    for proc in inits:
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
    # Started together: each interpreter start costs a second or two.
    n2 = DevNode("n2", follower_args(tmp_path / "n2", n1.enode, "68"), nodes)
    n3 = DevNode("n3", follower_args(tmp_path / "n3", n1.enode, "69"), nodes)
    followers = [n2.ready(), n3.ready()]

    # Node 1 speaks eth/68 with node 2 and eth/69 with node 3.
    wait_until("both followers peered with n1", lambda: sorted(
        p["protocols"]["eth"]["version"] for p in rpc(n1.port, "admin_peers")
        if isinstance(p["protocols"].get("eth"), dict)) == [68, 69])

    # Both sync up to node 1, then follow: every new block within two periods.
    target = n1.head()
    wait_until("followers synced", lambda: all(n.head() >= target for n in followers))
    latencies: list[float] = []
    for _ in range(3):
        number = n1.head() + 1
        block = wait_until(f"block #{number} on n1",
                           lambda n=number: rpc(n1.port, "eth_getBlockByNumber", hex(n), False))
        seen = block_seen_latency(block, followers, timeout=FOLLOW_BOUND + 1)
        latencies += seen.values()
        assert max(seen.values()) <= FOLLOW_BOUND, seen
    print(f"follow latency: max {max(latencies):.3f} s, mean {sum(latencies) / len(latencies):.3f} s")

    # A tx sent to node 3 (eth/69) reaches node 1 through tx relay, is mined, and every node serves its receipt.
    w3 = Web3(Web3.HTTPProvider(f"http://{HOST}:{n3.port}", request_kwargs={"timeout": 10}))
    account = eth_account.Account.from_key(DEV_KEY)
    assert account.address.lower() == DEV_ADDR
    to = Web3.to_checksum_address(RECIPIENT)
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"), "to": to,
          "value": 10**15, "gas": 21000, "maxFeePerGas": 2 * w3.eth.gas_price,
          "maxPriorityFeePerGas": w3.eth.max_priority_fee, "type": 2}
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=TIMEOUT, poll_latency=POLL)
    assert receipt["status"] == 1
    mined_in = receipt["blockHash"].to_0x_hex()
    for node in (n1, n2, n3):
        got = wait_until(f"receipt on {node.name}", lambda p=node.port: rpc(p, "eth_getTransactionReceipt",
                                                                            tx_hash.to_0x_hex()))
        assert got["blockHash"] == mined_in and got["status"] == "0x1"
        assert int(rpc(node.port, "eth_getBalance", RECIPIENT, "latest"), 16) == 10**15
    assert rpc(n1.port, "eth_getBlockByNumber", hex(receipt["blockNumber"]), False)["hash"] == mined_in

    # Node 2 killed, restarted on its datadir after missing a few blocks: syncs them (with one
    # eth/68 peer that waits for geth's forced sync cycle, 10 s), then follows again.
    assert n2.stop(signal.SIGKILL) == -signal.SIGKILL
    left_at = n1.head()
    wait_until("n1 sealing on while n2 is down", lambda: n1.head() >= left_at + MISSED)
    restarted = time.monotonic()
    n2 = DevNode("n2", n2.args, nodes).ready()
    n2_head = n2.head()
    assert n2_head <= left_at  # what it had on disk
    wait_until("restarted n2 caught up", lambda: n2.head() >= n1.head() > left_at + MISSED,
               timeout=FORCE_SYNC_CYCLE + TIMEOUT)
    print(f"restarted n2 caught up from #{n2_head} in {time.monotonic() - restarted:.1f} s")
    number = n1.head() + 1
    block = wait_until(f"block #{number} on n1", lambda: rpc(n1.port, "eth_getBlockByNumber", hex(number), False))
    assert max(block_seen_latency(block, [n2], timeout=FOLLOW_BOUND + 1).values()) <= FOLLOW_BOUND
    assert rpc(n2.port, "eth_getTransactionReceipt", tx_hash.to_0x_hex())["blockHash"] == mined_in

    print(f"n1 sealed {n1.head()} blocks")
    for name in ("n3", "n2", "n1"):
        code = nodes.pop(name).stop(signal.SIGTERM)
        assert code == 0, f"{name} exited {code}"
