"""geth as the judge of observer mode: the pinned geth holds the ethtest chain; an ethnode
observer on the same genesis alone learns geth's head from its Status and fetches that
header from geth, imports nothing, and passes geth's eth handshake as any peer would."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from eth_support import ETHTEST_HEAD, STEP, genesis_json, start_observer
from geth_support import start_geth, stop_geth
from gethtools import GETH_VERSION, require_geth_tools
from p2p_support import run_checked
from shared_support import shared_path

pytestmark = [pytest.mark.interop, pytest.mark.subprocess]


def test_observer_follows_geths_head(tmp_path: Path) -> None:
    geth_bin = require_geth_tools()
    chain_rlp = shared_path("chains", "ethtest", "chain.rlp")
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(genesis_json()))
    datadir = tmp_path / "geth"
    for command in (["init", "--datadir", str(datadir), str(genesis)],
                    ["import", "--datadir", str(datadir), str(chain_rlp)]):
        subprocess.run([str(geth_bin / "geth"), *command], check=True, capture_output=True, timeout=120)

    async def scenario() -> None:
        node, observer = await start_observer()
        assert observer is not None
        loop = asyncio.get_running_loop()
        geth = await loop.run_in_executor(None, lambda: start_geth(
            geth_bin, datadir, "--syncmode", "full", network_id=node.chain.config.chain_id))
        try:
            await node.server.dial(geth.enode)
            head = await asyncio.wait_for(observer.wait_head(600), STEP)
            assert head.hash == ETHTEST_HEAD
            (peer,) = node.handler.peers.all()
            assert peer.channel.peer.client_id.startswith(f"Geth/{GETH_VERSION}")
            assert node.chain.current_block.number == 0 and observer.progress().highest_block == 600
        finally:
            await loop.run_in_executor(None, stop_geth, geth.proc)
            await node.stop()

    run_checked(scenario, timeout=120)
