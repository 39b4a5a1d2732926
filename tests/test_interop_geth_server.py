"""geth as the judge of ``ethnode-fast run``: it reaches us as a static peer, and the two
find each other through discv4 and connect.

ethnode offers no sub-protocol yet, so geth drops each connection with "useless peer"
right after Hello; reaching Hello (logged by our Server as "Adding p2p peer ... Geth/...")
is what proves the RLPx, Hello and peer-set paths against geth. The geth tools are
pinned and built once (tests/gethtools.py); these tests skip only without Go.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from cli_support import ENODE_LINE, RunProcess
from geth_support import free_port, start_geth, stop_geth
from gethtools import BUILD_TIMEOUT, GETH_VERSION, require_geth_tools

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(BUILD_TIMEOUT + 300)]

STEP = 30.0  # geth's start and first dial, on a busy 2-core machine
GETH_HELLO = r"Adding p2p peer .*name=\"?Geth/" + re.escape(GETH_VERSION)


@pytest.fixture(scope="module")
def geth_bin() -> Path:
    return require_geth_tools()


def test_geth_reaches_ethnode_fast_run_as_a_static_peer(geth_bin: Path, tmp_path: Path) -> None:
    port = free_port()
    run = RunProcess(["--datadir", str(tmp_path / "ethnode"), "--port", str(port), "--verbosity", "4"])
    try:
        enode = run.wait_for_line(ENODE_LINE).group(1)
        assert enode.endswith(f"@127.0.0.1:{port}")  # listening on every interface: geth's fallback IP
        config = tmp_path / "geth.toml"
        config.write_text(f'[Node.P2P]\nStaticNodes = ["{enode}"]\n')
        geth = start_geth(geth_bin, tmp_path / "geth", "--config", str(config))
        try:
            added = run.wait_for_line(GETH_HELLO, timeout=STEP).group(0)
            assert "conn=inbound" in added
            # geth then finds nothing to talk about (we offer no eth yet) and says so
            run.wait_for_line(r'Peer disconnected .*name="?Geth/.*reason="useless peer" +side=remote', timeout=STEP)
        finally:
            stop_geth(geth.proc)
    finally:
        code, took = run.stop(signal.SIGTERM)
    assert code == 0 and took < 5, run.output
    assert "Traceback" not in run.output


def test_geth_and_ethnode_find_each_other_through_discovery(geth_bin: Path, tmp_path: Path) -> None:
    geth = start_geth(geth_bin, tmp_path / "geth", discovery=True)
    try:
        run = RunProcess(["--datadir", str(tmp_path / "ethnode"), "--port", str(free_port()), "--verbosity", "4",
                          "--bootnodes", geth.enode])
        try:
            run.wait_for_line(ENODE_LINE)
            # either side may dial first: we dial geth from our lookups, geth dials us from its own
            added = run.wait_for_line(GETH_HELLO, timeout=STEP).group(0)
            assert "conn=dyndial" in added or "conn=inbound" in added
        finally:
            code, _ = run.stop(signal.SIGTERM)
        assert code == 0, run.output
        assert "Traceback" not in run.output
    finally:
        stop_geth(geth.proc)
