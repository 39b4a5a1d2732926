"""geth snap-syncs from ethnode: the strongest judge of snap serving there is.

ethnode holds the ethtest chain executed (its state at every block) and is geth's only peer.
A fresh geth (``GETH_VERSION``, ``--syncmode snap``) is pointed at the head with an engine
forkchoiceUpdated: it fetches the headers over eth, picks a pivot 64 blocks below the
head, downloads the pivot's whole state from ethnode over snap/1 (account ranges checked
against their edge proofs, storage ranges, bytecodes; trie nodes to heal), commits the
pivot and executes the rest. The ethtest chain is Prague, so geth syncs with snap/1 (its
snap/2 syncer waits for Amsterdam).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from eth_support import ethtest_chain, genesis_json, start_node
from gethtools import require_geth_tools
from p2p_support import run_checked
from shared_support import shared_path
from test_interop_geth_sync import SECRET, Geth, _wait

from ethnode.eth.protocols.eth.protocol import ETH71

pytestmark = [pytest.mark.interop, pytest.mark.subprocess]

SYNC_BUDGET = 120.0  # seconds for geth's whole snap sync; ~10 s here


def test_geth_snap_syncs_the_state_from_ethnode(tmp_path: Path) -> None:
    geth_bin = require_geth_tools() / "geth"
    fcu = shared_path("chains", "ethtest", "headfcu.json").read_bytes()
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(genesis_json()))
    jwt = tmp_path / "jwt.hex"
    jwt.write_text("0x" + SECRET.hex())
    datadir = tmp_path / "geth-snap"
    subprocess.run([str(geth_bin), "init", "--datadir", str(datadir), str(genesis)], check=True,
                   capture_output=True, timeout=60)
    chain = ethtest_chain(600, execute=True)

    async def scenario() -> None:
        node = await start_node(chain, versions=(ETH71,))
        served = {"accounts": 0}
        snap_server = node.handler.snap
        assert snap_server is not None
        account_range = snap_server.account_range

        def counting(*args: object) -> object:  # how many AccountRange queries geth sent us
            served["accounts"] += 1
            return account_range(*args)  # type: ignore[arg-type]

        snap_server.account_range = counting  # type: ignore[method-assign]
        geth = Geth(geth_bin, datadir, node.server.enode, chain.config.chain_id, jwt, syncmode="snap")
        try:
            accepted = geth.watch("Forkchoice requested sync to new head")
            state_done = geth.watch("State sync phase is completed")
            pivot_done = geth.watch("Disabled snap-sync after pivot commitment")
            assert await _wait(geth.auth_ready, 60), geth.tail()
            for _ in range(50):  # until geth has registered ethnode with its downloader
                assert b" 200 " in await geth.engine_call(fcu)
                if await _wait(accepted, 0.5):
                    break
            assert accepted.is_set(), geth.tail()
            assert await _wait(pivot_done, SYNC_BUDGET), geth.tail()
            assert state_done.is_set(), geth.tail()
            assert served["accounts"] > 0, "geth synced the state without asking ethnode for it"
            assert not any("Failed to" in line and "snap" in line.lower() for line in geth.log), geth.tail()
            milestones = [line for line in geth.log if any(m in line for m in (
                "State sync phase is completed", "State healing phase is completed", "Disabled snap-sync",
                "Syncing: state"))]
            print(f"\ngeth snap sync from ethnode: {served['accounts']} AccountRange queries served\n"
                  + "\n".join(milestones))
        finally:
            await asyncio.get_running_loop().run_in_executor(None, geth.stop)
            await node.stop()

    run_checked(scenario, timeout=SYNC_BUDGET + 60)
