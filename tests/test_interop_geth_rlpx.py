"""geth is the judge: RLPx, Hello, snappy and Disconnect against go-ethereum itself.

- ethnode dials a loopback geth, completes RLPx + Hello, matches eth/69 and reads geth's
  snappy-compressed Status; and, offering nothing, is told "useless peer".
- geth dials a listening ethnode (as a static node) and completes RLPx + Hello.
- ``devp2p rlpx ping <enode>`` against ethnode (in-process and ``ethnode-fast run``)
  prints ethnode's Hello.

The geth tools are pinned and built once (tests/gethtools.py); these tests skip only
where there is no Go toolchain.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import start_run_command, stop_run_command
from geth_support import NETWORK_ID, GethNode, start_geth, stop_geth
from gethtools import BUILD_TIMEOUT, GETH_VERSION, require_geth_tools
from p2p_support import local_server, run_checked

from ethnode import rlp
from ethnode.commands.logformat import plain_text
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.peer import Peer, default_client_id
from ethnode.p2p.protocol import Capability, Protocol, ProtocolChannel

# The first test may have to build geth (minutes); every wait inside is bounded on its own.
pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(BUILD_TIMEOUT + 300)]

HOST = "127.0.0.1"
ETH69_LENGTH = 18  # message codes in eth/69, geth eth/protocols/eth protocolLengths
GETH_START_TIMEOUT = 60.0
STEP = 20.0


@pytest.fixture(scope="module")
def geth_bin() -> Path:
    return require_geth_tools()


@pytest.fixture
def geth(geth_bin: Path, tmp_path: Path) -> Iterator[GethNode]:
    node = start_geth(geth_bin, tmp_path / "geth")
    try:
        yield node
    finally:
        stop_geth(node.proc)


class StatusCatcher:
    """Stands in for eth/69 just far enough to receive geth's Status."""

    def __init__(self, channel: ProtocolChannel) -> None:
        self.channel = channel
        self.messages: list[tuple[int, bytes]] = []
        self.status = asyncio.get_running_loop().create_future()

    async def handle(self, code: int, payload: bytes) -> None:
        self.messages.append((code, payload))
        if code == 0 and not self.status.done():
            self.status.set_result(payload)


ETH69 = Protocol("eth", 69, ETH69_LENGTH, StatusCatcher)


def _check_status(peer: Peer, payload: bytes) -> None:
    status = rlp.decode(payload)  # it arrived snappy-compressed: decoding it proves snappy works
    assert int.from_bytes(status[0], "big") == 69
    assert int.from_bytes(status[1], "big") == NETWORK_ID
    assert len(status[2]) == 32  # genesis hash


def test_ethnode_dials_geth_and_reads_its_status(geth: GethNode) -> None:
    async def scenario() -> None:
        node = local_server([ETH69])
        await node.start()
        try:
            peer = await asyncio.wait_for(node.dial(geth.enode), STEP)
            hello = await asyncio.wait_for(peer.wait_ready(), STEP)
            assert hello.client_name.startswith(f"Geth/{GETH_VERSION}"), hello.client_name
            assert hello.version == 5 and Capability("eth", 69) in hello.caps
            assert bytes(hello.node_id) == geth.key.node_id
            layout = [(m.protocol.name, m.protocol.version, m.offset) for m in peer.matched]
            assert layout == [("eth", 69, 0x10)]
            assert peer.conn.snappy
            catcher = peer.handlers["eth"]
            _check_status(peer, await asyncio.wait_for(catcher.status, STEP))
            peer.disconnect(DiscReason.REQUESTED)
            assert await asyncio.wait_for(peer.wait_ended(), STEP) is DiscReason.REQUESTED
        finally:
            await node.stop()

    run_checked(scenario, timeout=120)
    assert any("Started P2P networking" in line for line in geth.log)


def test_geth_tells_a_useless_peer_so(geth: GethNode) -> None:
    async def scenario() -> None:
        node = local_server()  # offers no protocol at all
        await node.start()
        try:
            peer = await asyncio.wait_for(node.dial(geth.enode), STEP)
            hello = await asyncio.wait_for(peer.wait_ready(), STEP)
            assert hello.client_name.startswith("Geth/")
            assert await asyncio.wait_for(peer.wait_ended(), STEP) is DiscReason.USELESS_PEER
            assert peer.remote_requested
        finally:
            await node.stop()

    run_checked(scenario, timeout=120)


def test_geth_dials_ethnode(geth_bin: Path, tmp_path: Path) -> None:
    """geth's own server as the initiator: our Recipient side against geth's dialer."""

    async def scenario() -> None:
        peers: asyncio.Queue[Peer] = asyncio.Queue(maxsize=4)
        node = local_server([ETH69], on_peer=peers.put_nowait)
        await node.start()
        config = tmp_path / "geth.toml"
        config.write_text(f'[Node.P2P]\nStaticNodes = ["{node.enode}"]\n')
        loop = asyncio.get_running_loop()
        geth = await loop.run_in_executor(
            None, start_geth, geth_bin, tmp_path / "geth", "--config", str(config)
        )
        try:
            peer = await asyncio.wait_for(peers.get(), STEP)
            hello = await asyncio.wait_for(peer.wait_ready(), STEP)
            assert peer.inbound and hello.client_name.startswith(f"Geth/{GETH_VERSION}")
            assert bytes(hello.node_id) == geth.key.node_id
            _check_status(peer, await asyncio.wait_for(peer.handlers["eth"].status, STEP))
        finally:
            await node.stop()
            await loop.run_in_executor(None, stop_geth, geth.proc)

    run_checked(scenario, timeout=180)


def _rlpx_ping(geth_bin: Path, enode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(geth_bin / "devp2p"), "rlpx", "ping", enode], capture_output=True, text=True, timeout=STEP * 2
    )


def test_devp2p_rlpx_ping_prints_our_hello(geth_bin: Path, caplog: Any) -> None:
    async def scenario() -> subprocess.CompletedProcess[str]:
        node = local_server(name=default_client_id("judge"))
        await node.start()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, _rlpx_ping, geth_bin, node.enode)
        finally:
            await node.stop()

    with caplog.at_level("DEBUG", logger="ethnode.p2p"):
        done = run_checked(scenario, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ethnode/judge/v" in done.stdout, done.stdout
    assert "Version:5" in done.stdout.replace(" ", ""), done.stdout
    # devp2p reads our Hello and hangs up: one line on our side, a network error
    ended = [plain_text(r) for r in caplog.records if r.getMessage().startswith("Peer disconnected")]
    assert len(ended) == 1 and "network error" in ended[0], ended


def test_devp2p_rlpx_ping_against_ethnode_fast_run(geth_bin: Path, tmp_path: Path) -> None:
    proc, enode = start_run_command("--nodiscover", "--identity", "cli", datadir=tmp_path)
    try:
        done = _rlpx_ping(geth_bin, enode)
    finally:
        code, rest = stop_run_command(proc)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ethnode/cli/v" in done.stdout, done.stdout
    assert code == 0 and "Traceback" not in rest, rest
