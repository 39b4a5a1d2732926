"""geth as the judge of observer mode: the pinned geth holds the ethtest chain; an ethnode
observer on the same genesis alone learns geth's head from its Status and fetches that
header from geth, imports nothing, and passes geth's eth handshake as any peer would."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from eth_support import ETHTEST_HEAD, genesis_json
from gethtools import GETH_VERSION, require_geth_tools
from p2p_support import run_checked
from shared_support import shared_path
from test_eth_observer import start_observer
from test_interop_geth_sync import SECRET, Geth

pytestmark = [pytest.mark.interop, pytest.mark.subprocess]


def test_observer_follows_geths_head(tmp_path: Path) -> None:
    geth_bin = require_geth_tools() / "geth"
    chain_rlp = shared_path("chains", "ethtest", "chain.rlp")
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(genesis_json()))
    jwt = tmp_path / "jwt.hex"
    jwt.write_text("0x" + SECRET.hex())
    datadir = tmp_path / "geth"
    subprocess.run([str(geth_bin), "init", "--datadir", str(datadir), str(genesis)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run([str(geth_bin), "import", "--datadir", str(datadir), str(chain_rlp)], check=True,
                   capture_output=True, timeout=120)

    async def scenario() -> None:
        node, observer = await start_observer()
        assert observer is not None
        geth = None
        try:
            geth = Geth(geth_bin, datadir, node.server.enode, node.chain.config.chain_id, jwt)
            head = await asyncio.wait_for(observer.wait_head(600), 60)
            assert head.hash == ETHTEST_HEAD
            (peer,) = node.handler.peers.all()
            assert peer.channel.peer.client_id.startswith(f"Geth/{GETH_VERSION}")
            assert node.chain.current_block.number == 0 and observer.progress().highest_block == 600
            assert len(node.handler.peers) == 1, geth.tail()  # geth kept the observer as a peer
        finally:
            if geth is not None:
                await asyncio.get_running_loop().run_in_executor(None, geth.stop)
            await node.stop()

    run_checked(scenario, timeout=120)
