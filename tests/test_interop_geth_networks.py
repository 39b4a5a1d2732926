"""A public network by name, judged by geth v1.17.10 offline: ``geth --sepolia`` (or ``--hoodi``,
``--mainnet``) at genesis with no discovery reaches ``ethnode-fast run --sepolia`` as a static
peer, and both accept each other's eth Status: same genesis, same network id, fork IDs that
pass each other's EIP-2124 filter. Nothing leaves loopback: geth runs with ``--nodiscover``,
``--nat none`` and ``--netrestrict 127.0.0.0/8``, ethnode with ``--nodiscover``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from cli_support import ENODE_LINE, RunProcess
from geth_support import free_port, start_geth, stop_geth
from gethtools import BUILD_TIMEOUT, require_geth_tools

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(BUILD_TIMEOUT + 300)]

STEP = 40.0  # geth's start (writing a network's genesis) and first dial, on a busy 2-core machine


@pytest.fixture(scope="module")
def geth_bin() -> Path:
    return require_geth_tools()


@pytest.mark.parametrize("network", ["sepolia", "hoodi", "mainnet"])
def test_geth_and_ethnode_join_the_same_public_network(geth_bin: Path, tmp_path: Path, network: str) -> None:
    port = free_port()
    run = RunProcess([f"--{network}", "--datadir", str(tmp_path / "ethnode"), "--port", str(port),
                      "--listenaddr", "127.0.0.1", "--nodiscover", "--nat", "none", "--verbosity", "4",
                      "--eth.versions", "71,70,69,68", "--authrpc.port", "0"])
    try:
        enode = run.wait_for_line(ENODE_LINE, timeout=STEP).group(1)
        config = tmp_path / "geth.toml"
        config.write_text(f'[Node.P2P]\nStaticNodes = ["{enode}"]\n')
        geth = start_geth(geth_bin, tmp_path / "geth", f"--{network}", "--config", str(config), network_id=None)
        try:
            # Status accepted both ways: geth would drop us at once on a genesis or fork ID mismatch.
            connected = run.wait_for_line(r"Ethereum peer connected +peer=\w+ +version=(\d+)", timeout=STEP)
            assert int(connected.group(1)) == 71  # geth v1.17.10 speaks 69-72; 71 is our highest
            assert "Removing Ethereum peer" not in run.output
        finally:
            stop_geth(geth.proc)
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output
    assert "Traceback" not in run.output
