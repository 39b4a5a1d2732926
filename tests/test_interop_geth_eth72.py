"""geth v1.17.10 as the judge of eth/72 (EIP-8070, the sparse blobpool).

geth holds its own eth-test chain (Osaka at block 18, Amsterdam from 36; ``geth import``).
An ethnode peer, from the genesis, negotiates eth/72 with it and syncs the 600 blocks.
Then blob txs cross both ways as eth/72 moves them, a tx without blobs plus cells:

- a blob tx sent to geth (``eth_sendRawTransaction``) is announced to ethnode with a
  custody mask; ethnode fetches it (PooledTransactions without blobs) and its cells
  (GetCells), checks them against the KZG cell proofs and pools the whole blobs;
- a blob tx put into ethnode's pool is announced to geth; geth fetches it and its cells
  from ethnode and reports it pending (``newPendingTransactions`` on geth's WebSocket).

geth accepts txs from peers only once synced, so it is told its head first (the testdata's
``headfcu.json`` over the engine API), as devp2p's eth-test does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from chain_support import open_chain
from eth_support import STEP, start_node
from geth_support import HOST, ethtest_testdata, free_port, start_geth, stop_geth, suite_head_hash
from gethtools import GETH_VERSION, require_geth_tools
from p2p_support import run_checked

from ethnode.core.blockchain import setup_genesis
from ethnode.core.events import ChainHeadEvent
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.txpool import NewTxsEvent, TxPool
from ethnode.core.txpool.kzg import KzgVerifier, default_verifier
from ethnode.core.types import BlobTx
from ethnode.core.types.transaction import (
    BLOB_SIZE,
    BlobTxSidecar,
    BlobTxWithSidecar,
    address_of,
    kzg_to_versioned_hash,
)
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.protocol import ETH72
from ethnode.rpc.jwt import make_token

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.slow]  # ~40 s: geth import, sync, 2 txs

SECRET = bytes(range(32))
GWEI = 10**9


def open_chain_at_genesis(testdata: Path) -> Any:
    obj = json.loads((testdata / "genesis.json").read_text())
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db, verify_senders=False)


def blob_tx(kzg: KzgVerifier, key: PrivateKey, chain_id: int, nonce: int, seed: int) -> BlobTxWithSidecar:
    """A 1-blob tx with a real version-1 sidecar (cell proofs), fees well above the chain's."""
    raw = bytearray(BLOB_SIZE)
    for i in range(0, BLOB_SIZE, 32):
        raw[i + 1 : i + 4] = (i // 32 * 13 + seed).to_bytes(3, "big")
    blob = bytes(raw)
    commitment = kzg._ckzg.blob_to_kzg_commitment(blob, kzg._setup)
    _, proofs = kzg._ckzg.compute_cells_and_kzg_proofs(blob, kzg._setup)
    tx = BlobTx(chain_id, nonce, GWEI, 100 * GWEI, 21000, b"\x42" * 20, 0, b"", [], 100 * GWEI,
                [kzg_to_versioned_hash(commitment)], 0, 0, 0).sign(key)
    return BlobTxWithSidecar(tx, BlobTxSidecar((blob,), (commitment,), tuple(proofs), 1))  # type: ignore[arg-type]


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body, headers=headers) as resp:
        reply = await resp.json()
    assert "error" not in reply, f"{method}: {reply['error']}"
    return reply["result"]


def test_geth_and_ethnode_on_eth72_sync_and_exchange_blob_txs(tmp_path: Path) -> None:
    bin_dir = require_geth_tools(GETH_VERSION)
    kzg = default_verifier()
    if kzg is None:
        pytest.skip("eth/72 cells need KZG: ckzg or a trusted setup (Go module cache) is missing")
    testdata = ethtest_testdata(GETH_VERSION)
    datadir = tmp_path / "geth"
    for args in (["init", str(testdata / "genesis.json")], ["import", str(testdata / "chain.rlp")]):
        done = subprocess.run([str(bin_dir / "geth"), args[0], "--datadir", str(datadir), args[1]],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    jwt = tmp_path / "jwt.hex"
    jwt.write_text("0x" + SECRET.hex())
    http_port, ws_port = free_port(), free_port()
    accounts = json.loads((testdata / "accounts.json").read_text())
    keys = [PrivateKey(bytes.fromhex(a["key"][2:])) for a in accounts.values()]
    head = suite_head_hash(testdata)
    fcu = (testdata / "headfcu.json").read_text()

    async def scenario() -> None:
        local = open_chain_at_genesis(testdata)
        chain_id = local.config.chain_id
        node = await start_node(local, txpool=TxPool(local, kzg=kzg))
        node.handler.syncer.min_peers = 1
        heads = node.bus.subscribe(ChainHeadEvent)
        arrivals = node.bus.subscribe(NewTxsEvent, 64)
        geth = start_geth(bin_dir, datadir, "--syncmode", "full", "--authrpc.jwtsecret", str(jwt),
                          "--http", "--http.addr", HOST, "--http.port", str(http_port), "--http.api", "eth,txpool",
                          "--ws", "--ws.addr", HOST, "--ws.port", str(ws_port), "--ws.api", "eth",
                          network_id=chain_id)
        http = f"http://{HOST}:{http_port}"
        try:
            # 1. eth/72 negotiated; ethnode syncs geth's chain.
            await node.server.dial(geth.enode)
            async with asyncio.timeout(90):
                while local.current_block.hash != head:
                    await heads.get()
            node.txpool.set_head(local.get_block_by_number(600))  # the node's service does this on each head
            (peer,) = node.handler.peers.all()
            assert peer.version == ETH72 and peer.channel.peer.client_id.startswith(f"Geth/{GETH_VERSION}")
            async with aiohttp.ClientSession() as session:
                # geth takes txs from peers once a consensus client named its head.
                token = make_token(SECRET)
                reply = await rpc(session, f"http://{HOST}:{geth.auth_port}", "engine_forkchoiceUpdatedV4",
                                  *json.loads(fcu)["params"], token=token)
                assert reply["payloadStatus"]["status"] == "VALID", reply
                # 2. geth -> ethnode: announced with a mask, fetched as tx + data cells, whole blobs pooled.
                sender = keys[0]
                nonce = int(await rpc(session, http, "eth_getTransactionCount",
                                      "0x" + address_of(sender.node_id).hex(), "pending"), 16)
                to_ethnode = blob_tx(kzg, sender, chain_id, nonce, 1)
                sent = await rpc(session, http, "eth_sendRawTransaction", "0x" + to_ethnode.network_encoding().hex())
                assert sent == "0x" + to_ethnode.hash.hex()
                async with asyncio.timeout(STEP * 2):
                    while not any(tx.hash == to_ethnode.hash for tx in (await arrivals.get()).txs):
                        pass
                pooled = node.txpool.get(to_ethnode.hash)
                assert type(pooled) is BlobTxWithSidecar and pooled.sidecar == to_ethnode.sidecar
                fetched = node.handler.blob_fetcher.counts
                assert fetched["completed"] == 1 and fetched["requested_cells"] == 64, fetched
                # 3. ethnode -> geth: geth fetches the tx and its cells from ethnode.
                other = keys[1]
                nonce = int(await rpc(session, http, "eth_getTransactionCount",
                                      "0x" + address_of(other.node_id).hex(), "pending"), 16)
                to_geth = blob_tx(kzg, other, chain_id, nonce, 2)
                async with session.ws_connect(f"ws://{HOST}:{ws_port}") as ws:
                    await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                        "params": ["newPendingTransactions"]})
                    assert "result" in await asyncio.wait_for(ws.receive_json(), STEP)
                    assert node.txpool.add([to_geth]) == [None]  # ethnode announces it to geth
                    async with asyncio.timeout(STEP * 2):
                        while True:
                            note = await ws.receive_json()
                            if note.get("params", {}).get("result") == "0x" + to_geth.hash.hex():
                                break
                got = await rpc(session, http, "eth_getTransactionByHash", "0x" + to_geth.hash.hex())
                assert got["blobVersionedHashes"] == ["0x" + h.hex() for h in to_geth.tx.blob_hashes]
            assert len(node.handler.peers) == 1 and node.handler.blob_fetcher.counts["dropped_peers"] == 0
        except BaseException:
            print("\n".join(geth.log[-40:]))
            print("ethnode tx fetcher", node.handler.tx_fetcher.counts, "blob fetcher",
                  node.handler.blob_fetcher.counts, "buffer", node.handler.blob_buffer.results,
                  len(node.handler.blob_buffer.txs), len(node.handler.blob_buffer.cells))
            raise
        finally:
            heads.unsubscribe()
            arrivals.unsubscribe()
            await asyncio.get_running_loop().run_in_executor(None, stop_geth, geth.proc)
            await node.stop()

    run_checked(scenario, timeout=240)
