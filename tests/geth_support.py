"""geth as a peer in tests: start a pinned geth on loopback (no discovery unless asked,
NAT off, loopback-only netrestrict), stop it, and find geth's own eth-test chain."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from gethtools import BUILD_TIMEOUT, GETH_MODULE, find_go

from ethnode.crypto.keys import PrivateKey

HOST = "127.0.0.1"
NETWORK_ID = 12345
GETH_START_TIMEOUT = 60.0
TESTDATA_IN_MODULE = "cmd/devp2p/internal/ethtest/testdata"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class GethNode:
    proc: subprocess.Popen[str]
    key: PrivateKey
    port: int
    log: list[str]
    auth_port: int = 0  # the engine API (JWT) port

    @property
    def enode(self) -> str:
        return f"enode://{self.key.node_id.hex()}@{HOST}:{self.port}"


def start_geth(
    geth_bin: Path, datadir: Path, *extra: str, discovery: bool = False, network_id: int | None = NETWORK_ID
) -> GethNode:
    """geth on loopback; ``network_id`` None leaves it to a network flag in ``extra`` (``--sepolia``)."""
    key = PrivateKey.generate()
    port = free_port()
    auth_port = free_port()
    args = [
        str(geth_bin / "geth"), "--datadir", str(datadir), *([] if discovery else ["--nodiscover"]), "--nat", "none",
        "--netrestrict", "127.0.0.0/8", "--port", str(port), "--maxpeers", "5", "--ipcdisable",
        "--authrpc.addr", HOST, "--authrpc.port", str(auth_port),
        *([] if network_id is None else ["--networkid", str(network_id)]),
        "--nodekeyhex", key.to_hex(), "--cache", "128", "--verbosity", "3", *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    node = GethNode(proc, key, port, [], auth_port)
    started = threading.Event()

    def pump() -> None:  # keep reading so geth never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            node.log.append(line.rstrip())
            if "Started P2P networking" in line:
                started.set()
        started.set()

    threading.Thread(target=pump, daemon=True).start()
    if not started.wait(GETH_START_TIMEOUT) or proc.poll() is not None:
        stop_geth(proc)
        tail = "\n".join(node.log[-20:])
        raise AssertionError(f"geth did not start its P2P server:\n{tail}")
    return node


def stop_geth(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ethtest_testdata(version: str) -> Path:
    """The eth-test chain of the geth module at ``version``, or skip (only) when there is no Go.

    ``go mod download`` finds the module in the Go module cache (building the geth tools
    put it there) or fetches it through the module proxy like any other Go module.
    """
    go = find_go()
    if go is None:
        pytest.skip("no Go toolchain ('go' not on PATH): geth's eth-test testdata comes with the geth module")
    done = subprocess.run([go, "mod", "download", "-json", f"{GETH_MODULE}@{version}"],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=Path.home())
    if done.returncode != 0:
        pytest.fail(f"go mod download {GETH_MODULE}@{version} failed: {done.stderr.strip()[-500:]}",
                    pytrace=False)
    folder = Path(json.loads(done.stdout)["Dir"]) / TESTDATA_IN_MODULE
    if not (folder / "chain.rlp").exists():
        pytest.fail(f"{folder} has no chain.rlp", pytrace=False)
    return folder


def suite_head_hash(testdata: Path) -> bytes:
    """The head the suite expects (its headfcu.json, an engine_forkchoiceUpdated request)."""
    fcu = json.loads((testdata / "headfcu.json").read_text())
    return bytes.fromhex(fcu["params"][0]["headBlockHash"][2:])
