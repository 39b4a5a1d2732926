"""geth judges ethnode's discv5: its conformance suite, and a geth that runs discv5 alone.

ethnode runs as the ``discover`` command (discv4 and discv5 on one UDP port, as the
Server runs them) on 127.0.0.1; ``devp2p discv5 test`` gets its record and the two
loopback addresses its tests listen on. The suite is run once per module and reported
as one pytest test per conformance test. The second test starts the pinned geth with
``--discovery.v4=false --discovery.v5`` and ethnode as its only bootnode: geth can only
reach ethnode through discv5.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from geth_support import start_geth, stop_geth
from gethtools import require_geth_tools
from shared_support import subprocess_env

from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover.udp import UDPv4
from ethnode.p2p.discover.v5_udp import Config, UDPv5
from ethnode.p2p.enr import ENR

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(180)]

# cmd/devp2p/internal/v5test AllTests, in the suite's order
SUITE = [
    "Ping", "PingLargeRequestID", "PingMultiIP", "HandshakeResend", "TalkRequest", "FindnodeWrongIP",
    "FindnodeHandshake", "FindnodeZeroDistance", "FindnodeResults", "UnsolicitedNodes",
]
SUITE_TIMEOUT = 150  # seconds; the suite takes ~13 s against ethnode (FindnodeResults waits for revalidation)
GETH_FIND_TIMEOUT = 60.0  # geth's first refresh runs at start-up; ethnode revalidates within seconds


@pytest.fixture(scope="module")
def geth_bin() -> Path:
    return require_geth_tools()


@pytest.fixture(scope="module")
def ethnode_record() -> Iterator[ENR]:
    """``ethnode-fast discover`` (discv4 + discv5) on 127.0.0.1; its record as printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ethnode.commands.discover", "--port", "0", "--listenaddr", "127.0.0.1",
         "--log-interval", "0", "--verbosity", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
    )
    assert proc.stdout is not None
    url, text = proc.stdout.readline().strip(), proc.stdout.readline().strip()
    if not url.startswith("enode://"):
        proc.kill()
        pytest.fail(f"discover did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    try:
        yield ENR.from_text(text)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err[-2000:]


@pytest.fixture(scope="module")
def suite(geth_bin: Path, ethnode_record: ENR) -> tuple[dict[str, str], str]:
    done = subprocess.run(
        [str(geth_bin / "devp2p"), "discv5", "test", "--listen1", "127.0.0.1", "--listen2", "127.0.0.2",
         ethnode_record.to_text()],
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
    assert sorted(results) == sorted(SUITE), output[-4000:]  # the pinned suite still has these 10 tests
    assert "10/10 tests passed." in output, output[-4000:]


def test_geth_with_discv5_alone_finds_ethnode(geth_bin: Path, tmp_path: Path) -> None:
    """geth (v4 off) bootstraps from ethnode's record; only discv5 can carry that contact.

    ethnode runs both protocols on one socket, as its Server does. geth's handshake puts it
    into ethnode's discv5 table; ethnode's revalidation then pings it back over discv5 and
    marks it live, and a FINDNODE at distance 0 returns geth's own record. discv4 sees
    nothing from geth at all.
    """

    async def main() -> None:
        v4 = await UDPv4(PrivateKey.generate()).start("127.0.0.1", 0)
        v5 = UDPv5(v4.key, local=v4.local, db=v4.db, config=Config(ping_interval=1.0)).attach(v4)
        await asyncio.wait_for(v5.initialized.wait(), 10)
        geth = await asyncio.to_thread(
            start_geth, geth_bin, tmp_path / "geth", "--discovery.v4=false", "--discovery.v5",
            "--bootnodes", v5.local.record.to_text(), discovery=True)
        geth_id = keccak256(geth.key.node_id)
        try:
            async def geth_is_live() -> None:
                while True:
                    tn = v5.table.get(geth_id)
                    if tn is not None and tn.is_live:
                        return
                    await asyncio.sleep(0.1)

            started = time.monotonic()
            await asyncio.wait_for(geth_is_live(), GETH_FIND_TIMEOUT)
            assert time.monotonic() - started < GETH_FIND_TIMEOUT
            entry = v5.table.get(geth_id)
            assert entry is not None and entry.node.udp == geth.port
            record = await v5.request_enr(entry.node)
            assert record.id == geth_id and record.record is not None
            assert v5.stats["in:FINDNODE/v5"] >= 1  # geth's lookups asked ethnode
            assert not [k for k in v4.stats if k.startswith("in:")]  # and never spoke discv4
        finally:
            await asyncio.to_thread(stop_geth, geth.proc)
            await v5.close()
            await v4.close()

    p2p_loop.run(main())
