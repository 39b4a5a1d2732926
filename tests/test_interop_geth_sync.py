"""geth as the judge: the pinned geth (``GETH_VERSION``) holding the ethtest chain and an ethnode peer on
eth/69. ethnode, starting from the genesis, syncs the whole chain from geth (the head geth's Status
names); then a second geth, at its genesis and peered only with that ethnode, is pointed at the head
with an engine forkchoiceUpdated and fetches every header from ethnode (beacon header sync).

geth gets the chain by ``geth import chain.rlp`` (about a second). Post-merge geth syncs only when
a consensus client names the head, which is why the second geth needs the forkchoiceUpdated; ethnode
has no consensus client and follows its best peer's announced head.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_support import ETHTEST_HEAD, STEP, ethtest_chain, genesis_json, start_node
from gethtools import GETH_VERSION, require_geth_tools
from p2p_support import run_checked
from shared_support import shared_path

from ethnode.core.events import ChainHeadEvent
from ethnode.eth.protocols.eth.protocol import ETH69, ETH71
from ethnode.rpc.jwt import make_token

SECRET = bytes(range(32))

pytestmark = [pytest.mark.interop, pytest.mark.subprocess]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Geth:
    """One geth process on loopback, its stderr pumped into ``log`` lines and watched for ``marks``."""

    def __init__(self, binary: Path, datadir: Path, static_enode: str, chain_id: int, jwt: Path,
                 syncmode: str = "full") -> None:
        config = datadir.parent / f"{datadir.name}.toml"
        config.write_text(f'[Node.P2P]\nStaticNodes = ["{static_enode}"]\n')
        self.auth_port = _free_port()
        self.proc = subprocess.Popen(
            [str(binary), "--datadir", str(datadir), "--config", str(config), "--nodiscover", "--nat", "none",
             "--port", str(_free_port()), "--ipcdisable", "--authrpc.addr", "127.0.0.1",
             "--authrpc.port", str(self.auth_port), "--authrpc.jwtsecret", str(jwt), "--networkid", str(chain_id),
             "--syncmode", syncmode, "--cache", "128", "--verbosity", "3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log: list[str] = []
        self.marks: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.auth_ready = self.watch("HTTP server started", "auth=true")  # the engine API is listening
        threading.Thread(target=self._pump, daemon=True).start()

    def watch(self, *needles: str) -> threading.Event:
        """An event set once a log line contains every one of ``needles`` (lines from now on)."""
        event = threading.Event()
        with self._lock:
            self.marks["\0".join(needles)] = event
        return event

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.log.append(line.rstrip())
                for key, event in self.marks.items():
                    if all(n in line for n in key.split("\0")):
                        event.set()

    def tail(self) -> str:
        return "\n".join(self.log[-25:])

    async def engine_call(self, body: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.auth_port)
        writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {make_token(SECRET)}\r\nContent-Length: {len(body)}\r\n".encode()
                     + b"Connection: close\r\n\r\n" + body)
        reply = await asyncio.wait_for(reader.read(), STEP)
        writer.close()
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def _wait(event: threading.Event, timeout: float) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, event.wait, timeout)


@pytest.mark.parametrize("version", [ETH69, ETH71])
def test_ethnode_syncs_from_geth_and_geth_fetches_headers_from_ethnode(tmp_path: Path, version: int) -> None:
    geth_bin = require_geth_tools() / "geth"
    chain_rlp = shared_path("chains", "ethtest", "chain.rlp")
    fcu = shared_path("chains", "ethtest", "headfcu.json").read_bytes()
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(genesis_json()))
    jwt = tmp_path / "jwt.hex"
    jwt.write_text("0x" + SECRET.hex())
    full_dir, fresh_dir = tmp_path / "geth-full", tmp_path / "geth-fresh"
    for datadir in (full_dir, fresh_dir):
        subprocess.run([str(geth_bin), "init", "--datadir", str(datadir), str(genesis)], check=True,
                       capture_output=True, timeout=60)
    subprocess.run([str(geth_bin), "import", "--datadir", str(full_dir), str(chain_rlp)], check=True,
                   capture_output=True, timeout=120)

    async def scenario() -> None:
        local = ethtest_chain(0)
        local.verify_senders = True
        node = await start_node(local, versions=(version,))
        downloader = node.handler.downloader
        node.handler.syncer.min_peers = 1
        heads = node.bus.subscribe(ChainHeadEvent)
        chain_id = local.config.chain_id
        gethes: list[Geth] = []
        try:
            full = Geth(geth_bin, full_dir, node.server.enode, chain_id, jwt)
            gethes.append(full)
            fresh = Geth(geth_bin, fresh_dir, node.server.enode, chain_id, jwt)
            gethes.append(fresh)
            # 1. ethnode syncs from the geth that holds the chain.
            async with asyncio.timeout(60):
                while local.current_block.hash != ETHTEST_HEAD:
                    await heads.get()
            peers: Any = node.handler.peers.all()
            source = max(peers, key=lambda p: p.block_range.latest)
            assert source.version == version and source.channel.peer.client_id.startswith(f"Geth/{GETH_VERSION}")
            assert source.block_range.latest == 600 and downloader.drops == 0
            progress = downloader.progress()
            assert (progress.current_block, progress.highest_block) == (600, 600)
            await asyncio.wait_for(downloader.idle.wait(), STEP)
            assert downloader.last_sync is not None and downloader.last_sync.head == 600
            print(f"geth -> ethnode: 600 blocks at {downloader.last_sync.blocks_per_second:.0f} blocks/s")
            # 2. the fresh geth, pointed at the head, fetches every header from ethnode.
            headers_done = fresh.watch("Syncing beacon headers", "downloaded=599", "left=0")
            accepted = fresh.watch("Forkchoice requested sync to new head")
            for _ in range(50):  # until geth has registered ethnode with its downloader
                assert b" 200 " in await fresh.engine_call(fcu)
                if await _wait(accepted, 0.5):
                    break
            assert accepted.is_set(), fresh.tail()
            assert await _wait(headers_done, 60), fresh.tail()
        finally:
            heads.unsubscribe()
            for geth in gethes:
                await asyncio.get_running_loop().run_in_executor(None, geth.stop)
            await node.stop()

    run_checked(scenario, timeout=240)
