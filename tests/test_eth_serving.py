"""Serving GetBlockHeaders / GetBlockBodies / GetReceipts / GetPooledTransactions from the ethtest
chain over loopback, raw (a scripted peer checks the exact replies) and through the request API
(``EthPeer.request_*``) between two ethnodes on eth/68 and eth/69."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import ETHTEST_HEAD, STEP, connect, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

import ethnode.eth.protocols.eth.serve as serve
from ethnode import rlp
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.txpool import TxPool
from ethnode.core.types import DynamicFeeTx, Receipt
from ethnode.core.types.receipt import Log
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.peer import PeerDroppedError, RequestTimeoutError
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_BODIES,
    BLOCK_HEADERS,
    ETH68,
    ETH69,
    ETH72,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    RECEIPTS,
    HeaderQuery,
    encode_origin,
    message,
)
from ethnode.p2p.disconnect import DiscReason

_CHAIN: list[Any] = []
KEY = PrivateKey(bytes.fromhex("46" * 32))


def chain() -> Any:
    """The full ethtest chain plus stored receipts for block 1 (execution does not write them yet)."""
    if not _CHAIN:
        c = ethtest_chain(600)
        block1 = c.get_block_by_number(1)
        logs = [Log(bytes(19) + b"\x11", [b"\x22" * 32], b"log")]
        c.write_receipts(block1.hash, 1, [Receipt(tx.type, 1, 21000 * (i + 1), logs) for i, tx in
                                          enumerate(block1.transactions)])
        _CHAIN.append(c)
    return _CHAIN[0]


def header_rlp(c: Any, n: int) -> bytes:
    h = c.get_canonical_hash(n)
    return rawdb.read_header_rlp(c.db, h, n)  # type: ignore[no-any-return]


async def ask(eth: Any, code: int, value: Any, rid: int = 7, version: int = ETH69) -> tuple[int, list[bytes]]:
    msg = message(version, code)
    assert msg is not None
    await eth.send(code, msg.encode(value, rid))
    reply_code = {GET_BLOCK_HEADERS: BLOCK_HEADERS, GET_BLOCK_BODIES: BLOCK_BODIES, GET_RECEIPTS: RECEIPTS,
                  GET_POOLED_TRANSACTIONS: POOLED_TRANSACTIONS}[code]
    got_rid, items = rlp.decode(await eth.expect(reply_code))
    return int.from_bytes(got_rid, "big"), [rlp.encode(i) for i in items]


HEAD_HASH = ETHTEST_HEAD


def _hash(n: int) -> bytes:
    return chain().get_canonical_hash(n)  # type: ignore[no-any-return]


# (origin, amount, skip, reverse) -> expected block numbers
HEADER_QUERIES = [
    ((0, 5, 0, False), [0, 1, 2, 3, 4]),
    ((10, 3, 0, True), [10, 9, 8]),
    ((598, 10, 0, False), [598, 599, 600]),  # past the head: shorter
    ((2, 5, 0, True), [2, 1, 0]),
    (("h1", 2, 1, False), [1, 3]),  # geth's TestGetBlockHeaders shape
    (("h1", 4, 1, False), [1, 3, 5, 7]),
    (("h600", 3, 1, True), [600, 598, 596]),
    (("h600", 4, 0, True), [600, 599, 598, 597]),
    (("h590", 5, 4, False), [590, 595, 600]),
    ((100, 4, 99, False), [100, 200, 300, 400]),
    ((300, 5, 99, True), [300, 200, 100, 0]),
    ((0, 3, 2**64 - 2, False), [0]),  # skip overflow stops the walk
    (("h5", 3, 2**64 - 2, False), [5]),
    ((2**64 - 1, 1, 0, False), []),  # geth's GetNonexistentBlockHeaders
    ((601, 1, 0, True), []),
    (("unknown", 5, 0, False), []),
    ((5, 0, 0, False), []),
]


@pytest.mark.parametrize("version", [ETH68, ETH69])
def test_headers_by_number_and_hash_with_skip_and_reverse(version: int) -> None:
    async def scenario() -> None:
        c = chain()
        node = await start_node(c)
        scripted = await scripted_peer(node, version)
        try:
            for (origin, amount, skip, reverse), expected in HEADER_QUERIES:
                if isinstance(origin, str):
                    origin = bytes(32) if origin == "unknown" else _hash(int(origin[1:]))
                query = HeaderQuery(encode_origin(origin), amount, skip, reverse)
                rid, items = await ask(scripted.eth, GET_BLOCK_HEADERS, query, 33, version)
                assert rid == 33
                assert items == [header_rlp(c, n) for n in expected], (origin, amount, skip, reverse)
            assert scripted.peer.reason is None  # no query got it dropped
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def test_header_limits_count_and_soft_size(monkeypatch: pytest.MonkeyPatch) -> None:
    c = chain()
    assert len(serve.serve_headers(c, 0, 2000, 0, False)) == 601
    monkeypatch.setattr(serve, "MAX_HEADERS_SERVE", 100)  # geth: 1024
    assert len(serve.serve_headers(c, 0, 200, 0, False)) == 100
    assert len(serve.serve_headers(c, 0, 200, 1, False)) == 100
    monkeypatch.setattr(serve, "SOFT_RESPONSE_LIMIT", 5 * len(header_rlp(c, 300)) - 1)
    assert len(serve.serve_headers(c, 300, 50, 0, False)) == 5  # the item crossing the limit is the last
    assert len(serve.serve_headers(c, _hash(300), 50, 0, True)) == 5
    assert len(serve.serve_headers(c, 300, 50, 2, False)) == 5


def test_zero_and_repeated_request_ids() -> None:
    async def scenario() -> None:
        c = chain()
        node = await start_node(c)
        scripted = await scripted_peer(node, ETH69)
        try:
            msg = message(ETH69, GET_BLOCK_HEADERS)
            assert msg is not None
            await scripted.eth.send(GET_BLOCK_HEADERS, msg.encode(HeaderQuery(b"", 2, 0, False), 0))
            rid, items = rlp.decode(await scripted.eth.expect(BLOCK_HEADERS))
            assert rid == b"" and len(items) == 2
            await scripted.eth.send(GET_BLOCK_HEADERS, msg.encode(HeaderQuery(encode_origin(1), 2, 0, False), 1234))
            await scripted.eth.send(GET_BLOCK_HEADERS, msg.encode(HeaderQuery(encode_origin(33), 3, 0, False), 1234))
            first = rlp.decode(await scripted.eth.expect(BLOCK_HEADERS))
            second = rlp.decode(await scripted.eth.expect(BLOCK_HEADERS))
            assert first[0] == second[0] == (1234).to_bytes(2, "big")
            assert sorted([len(first[1]), len(second[1])]) == [2, 3]
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


@pytest.mark.parametrize("version", [ETH68, ETH69])
def test_bodies_and_receipts(version: int) -> None:
    async def scenario() -> None:
        c = chain()
        node = await start_node(c)
        scripted = await scripted_peer(node, version)
        try:
            hashes = [_hash(55), _hash(76), _hash(1)]
            rid, items = await ask(scripted.eth, GET_BLOCK_BODIES, hashes, 55, version)
            assert rid == 55
            assert items == [rawdb.read_body_rlp(c.db, h, n) for h, n in zip(hashes, (55, 76, 1), strict=True)]
            # Unknown hash: the reply stops there (geth v1.17).
            _, items = await ask(scripted.eth, GET_BLOCK_BODIES, [_hash(2), b"\x01" * 32, _hash(3)], 1, version)
            assert len(items) == 1

            # Receipts: block 1 has stored ones; block 2 has txs but none stored; empty blocks serve [].
            empty = next(n for n in range(2, 600) if not c.get_block_by_number(n).tx_items)
            _, items = await ask(scripted.eth, GET_RECEIPTS, [_hash(1), _hash(empty), _hash(2), _hash(1)], 2,
                                 version)
            assert len(items) == 2 and items[1] == b"\xc0"
            served = rlp.decode(items[0])
            stored = c.get_receipts(_hash(1), 1)
            decode = Receipt.decode_eth68_item if version == ETH68 else Receipt.decode_eth69_item
            assert [decode(rlp.encode(r)) for r in served] == stored
            if version == ETH68:  # consensus form carries the bloom
                assert rlp.encode(served[0]) == stored[0].eth68_item()
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def test_body_and_receipt_count_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    c = chain()
    hashes = [_hash(n) for n in range(1, 40)]
    monkeypatch.setattr(serve, "MAX_BODIES_SERVE", 10)
    monkeypatch.setattr(serve, "MAX_RECEIPTS_SERVE", 10)
    assert len(serve.serve_bodies(c, hashes)) == 10
    empties = [_hash(n) for n in range(1, 600) if not c.get_block_by_number(n).tx_items][:30]
    assert len(serve.serve_receipts(c, empties, ETH69)) == 10
    body = rawdb.read_body_rlp(c.db, hashes[0], 1)
    monkeypatch.setattr(serve, "SOFT_RESPONSE_LIMIT", 2 * len(body))
    assert 2 <= len(serve.serve_bodies(c, hashes)) <= 3


def _pool_with_txs(c: Any, count: int) -> tuple[TxPool, list[Any]]:
    pool = TxPool(c, kzg=None)
    txs = [DynamicFeeTx(c.config.chain_id, n, 10**9, 10**11, 21000, b"\x01" * 20, n, b"", [], 0, 0, 0).sign(KEY)
           for n in range(count)]
    assert pool.add(txs) == [None] * count
    return pool, txs


def test_pooled_transactions_skip_unknown_and_mark_known() -> None:
    async def scenario() -> None:
        c = chain()
        pool, txs = _pool_with_txs(c, 4)
        node = await start_node(c, txpool=pool)
        scripted = await scripted_peer(node, ETH69)
        try:
            wanted = [txs[2].hash, b"\x05" * 32, txs[0].hash, txs[3].hash]
            rid, items = await ask(scripted.eth, GET_POOLED_TRANSACTIONS, wanted, 9)
            assert rid == 9 and items == [txs[2].item(), txs[0].item(), txs[3].item()]
            (peer,) = node.handler.peers.all()
            assert peer.knows_transaction(txs[0].hash) and not peer.knows_transaction(b"\x05" * 32)
            # txsync: the pending txs were announced on connect, so all are known to the peer.
            ann = message(ETH69, NEW_POOLED_TRANSACTION_HASHES).decode(  # type: ignore[union-attr]
                await scripted.eth.expect(NEW_POOLED_TRANSACTION_HASHES)
            )
            assert sorted(ann.hashes) == sorted(t.hash for t in txs)
            assert list(ann.sizes) == [t.size for t in txs] and ann.types == b"\x02" * 4
            served, _ = serve.serve_pooled_txs(pool, [t.hash for t in txs] * 3)
            assert len(served) == 12  # repeats are served, as geth does
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


@pytest.mark.parametrize("version", [ETH68, ETH69])
def test_request_api_between_ethnodes(version: int) -> None:
    async def scenario() -> None:
        c = chain()
        pool, txs = _pool_with_txs(ethtest_chain(0), 3)
        server_node = await start_node(c, versions=(version,), txpool=pool)
        client = await start_node(ethtest_chain(0), versions=(version,))
        try:
            _, peer = await connect(server_node, client)
            headers = await peer.request_headers(HEAD_HASH, 3, 0, True)
            assert [h.number for h in headers] == [600, 599, 598] and headers[0].hash == HEAD_HASH
            headers = await peer.request_headers(100, 2, 9)
            assert [h.number for h in headers] == [100, 110]
            bodies = await peer.request_bodies([_hash(1), _hash(2)])
            assert [b.encode() for b in bodies] == [rawdb.read_body_rlp(c.db, _hash(n), n) for n in (1, 2)]
            receipts = await peer.request_receipts([_hash(1)])
            assert receipts == [c.get_receipts(_hash(1), 1)]
            got = await peer.request_pooled_txs([txs[1].hash, b"\x07" * 32, txs[0].hash])
            assert [t.hash for t in got] == [txs[1].hash, txs[0].hash]
            assert peer.knows_transaction(txs[1].hash)
            assert peer.pending_requests == 0
            many = await asyncio.gather(*(peer.request_headers(n, 1) for n in range(0, 600, 60)))
            assert [h[0].number for h in many] == list(range(0, 600, 60))
        finally:
            await client.stop()
            await server_node.stop()

    run_checked(scenario)


def test_request_timeout_late_answer_and_peer_drop() -> None:
    async def scenario() -> None:
        node = await start_node(ethtest_chain(0))
        scripted = await scripted_peer(node, ETH69)
        try:
            (peer,) = node.handler.peers.all()
            with pytest.raises(RequestTimeoutError):
                await peer.request_headers(0, 1, timeout=0.1)
            payload = await scripted.eth.expect(GET_BLOCK_HEADERS)
            rid = rlp.decode(payload)[0]
            # A late answer to a request whose caller gave up is dropped quietly (still tracked).
            await scripted.eth.send(BLOCK_HEADERS, rlp.encode([rid, []]))
            pending = asyncio.ensure_future(peer.request_bodies([b"\x01" * 32]))
            await scripted.eth.expect(GET_BLOCK_BODIES)
            assert peer.pending_requests == 1 and not pending.done()
            scripted.peer.disconnect(DiscReason.REQUESTED)
            with pytest.raises(PeerDroppedError):
                await asyncio.wait_for(pending, STEP)
            await asyncio.wait_for(node.handler.wait_for_peers(0), STEP)
            with pytest.raises(PeerDroppedError):
                await peer.request_headers(0, 1)
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


# --- geth as the judge ---------------------------------------------------------------------------


class RangeWatcher:
    """A block_fetcher stand-in that only watches eth/69 BlockRangeUpdates."""

    def __init__(self) -> None:
        self.latest = 0
        self.moved = asyncio.Event()

    def notify(self, peer: Any, announcements: Any) -> None: ...

    def enqueue(self, peer: Any, block: Any, td: int) -> None: ...

    def notify_range(self, peer: Any, block_range: Any) -> None:
        self.latest = block_range.latest
        self.moved.set()

    def drop(self, peer: Any) -> None: ...

    async def stop(self) -> None: ...


@pytest.mark.subprocess
@pytest.mark.interop
def test_geth_syncs_the_ethtest_chain_from_ethnode(tmp_path: Any) -> None:
    """The pinned geth (eth/72 with ethnode) peers with ethnode, which holds the ethtest chain; a
    forkchoiceUpdated to geth makes it sync from ethnode: it fetches all 599 headers, then bodies, executes the blocks
    against their state roots and announces its new range back (BlockRangeUpdate every 32 blocks).

    The test stops once geth is past block 128 (a full import is CPU-bound in geth, 1-15 s here).
    """
    import json
    import socket
    import subprocess
    import threading

    from eth_support import genesis_json
    from gethtools import GETH_VERSION, require_geth_tools
    from shared_support import shared_path

    from ethnode.rpc.jwt import make_token

    geth_bin = require_geth_tools() / "geth"
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(genesis_json()))
    fcu = shared_path("chains", "ethtest", "headfcu.json").read_bytes()
    datadir = tmp_path / "geth"
    subprocess.run([str(geth_bin), "init", "--datadir", str(datadir), str(genesis)], check=True,
                   capture_output=True, timeout=60)
    secret = bytes(range(32))
    (tmp_path / "jwt.hex").write_text("0x" + secret.hex())

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    async def scenario() -> None:
        watcher = RangeWatcher()
        node = await start_node(chain(), block_fetcher=watcher)
        (tmp_path / "geth.toml").write_text(f'[Node.P2P]\nStaticNodes = ["{node.server.enode}"]\n')
        auth_port = free_port()
        proc = subprocess.Popen(
            [str(geth_bin), "--datadir", str(datadir), "--config", str(tmp_path / "geth.toml"), "--nodiscover",
             "--nat", "none", "--port", str(free_port()), "--ipcdisable", "--authrpc.addr", "127.0.0.1",
             "--authrpc.port", str(auth_port), "--authrpc.jwtsecret", str(tmp_path / "jwt.hex"),
             "--networkid", str(chain().config.chain_id), "--syncmode", "full", "--cache", "128",
             "--verbosity", "3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        log: list[str] = []
        headers_done, fcu_seen = threading.Event(), threading.Event()
        fcu_results: list[bool] = []

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                log.append(line.rstrip())
                if "Syncing beacon headers" in line and "downloaded=599 left=0" in line:
                    headers_done.set()
                for text, ok in (("Forkchoice requested sync to new head", True),
                                 ("Could not retrieve unknown head", False)):
                    if text in line:
                        fcu_results.append(ok)
                        fcu_seen.set()

        threading.Thread(target=pump, daemon=True).start()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(node.handler.wait_for_peers(1), 60)
            (peer,) = node.handler.peers.all()
            assert peer.version == ETH72 and peer.channel.peer.client_id.startswith(f"Geth/{GETH_VERSION}")
            assert peer.block_range.latest == 0  # type: ignore[union-attr]  # geth is at genesis
            for _ in range(50):  # geth may not have registered us in its downloader yet: then it says so
                fcu_seen.clear()
                reader, writer = await asyncio.open_connection("127.0.0.1", auth_port)
                writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                             + f"Authorization: Bearer {make_token(secret)}\r\nContent-Length: {len(fcu)}\r\n"
                             .encode() + b"Connection: close\r\n\r\n" + fcu)
                assert b" 200 " in await asyncio.wait_for(reader.read(), STEP)
                writer.close()
                assert await loop.run_in_executor(None, fcu_seen.wait, STEP)
                if fcu_results[-1]:
                    break
                await asyncio.sleep(0.1)
            assert await loop.run_in_executor(None, headers_done.wait, 60), "\n".join(log[-20:])
            while watcher.latest < 129:  # bodies served, blocks executed by geth, range announced back
                watcher.moved.clear()
                await asyncio.wait_for(watcher.moved.wait(), 60)
            assert peer.block_range.latest_hash == chain().get_canonical_hash(watcher.latest)  # type: ignore[union-attr]
        finally:
            proc.terminate()
            await loop.run_in_executor(None, proc.wait, 15)
            await node.stop()

    run_checked(scenario, timeout=180)
