"""JSON-RPC over WebSocket: subscriptions as geth sends them, the origin check, the Engine API's JWT
handshake, and the bounds that keep misbehaving clients from hurting the others (a client that
never reads, a thousand idle connections, a 10 MB body).

In-process tests run an ``RPCNode`` (the node's real RPC service over a hand-built dev chain)
and read raw frames; the end-to-end ones drive a ``run --dev`` child with web3.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
from typing import Any

import aiohttp
import pytest
from p2p_support import run_checked
from rpc_support import LOG_TOPIC, OTHER_ADDR, RPCNode, build_block, dev_chain, http_post, transfer
from transport_support import HOST, DevNode, RawWebSocket, eventually

from ethnode.core.events import ChainHeadEvent
from ethnode.core.txpool import NewTxsEvent
from ethnode.rpc import conn as conn_mod
from ethnode.rpc.api import API, methods_of
from ethnode.rpc.endpoint import RPCServer
from ethnode.rpc.jwt import make_token
from ethnode.rpc.subscription import Notify, subscription
from ethnode.rpc.websocket import OriginCheck, origin_rule_allows, parse_origin

TIMEOUT = 60.0
ID = re.compile(r"0x(0|[1-9a-f][0-9a-f]{0,31})")  # geth rpc.NewID: 16 bytes, a quantity


def req(method: str, *params: Any, rid: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}


class Client:
    """A WebSocket JSON-RPC client that files notifications by subscription while waiting for replies."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.notes: dict[str, list[Any]] = {}
        self.replies: dict[int, Any] = {}
        self._next = 100

    async def _read_one(self) -> None:
        msg = json.loads((await self.ws.receive()).data)
        if msg.get("method") == "eth_subscription":
            assert set(msg) == {"jsonrpc", "method", "params"} and set(msg["params"]) == {"subscription", "result"}
            self.notes.setdefault(msg["params"]["subscription"], []).append(msg["params"]["result"])
        else:
            self.replies[msg["id"]] = msg

    async def call(self, method: str, *params: Any) -> Any:
        self._next += 1
        rid = self._next
        await self.ws.send_json(req(method, *params, rid=rid))
        while rid not in self.replies:
            await self._read_one()
        reply = self.replies.pop(rid)
        return reply.get("error", reply.get("result"))

    async def notes_for(self, sub: str, count: int) -> list[Any]:
        while len(self.notes.get(sub, [])) < count:
            await self._read_one()
        return self.notes[sub][:count]


def test_subscriptions_follow_the_chain_and_the_pool() -> None:
    chain = dev_chain()

    async def scenario() -> None:
        node = await RPCNode(chain, ws=True).start()
        bus = node.bus
        heads_before, txs_before = len(bus._subs[ChainHeadEvent]), len(bus._subs[NewTxsEvent])
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(node.ws_url) as ws:
                c = Client(ws)
                heads = await c.call("eth_subscribe", "newHeads")
                logs = await c.call("eth_subscribe", "logs", {"address": "0x" + OTHER_ADDR.hex()})
                nothing = await c.call("eth_subscribe", "logs", {"topics": [["0x" + "22" * 32]]})
                hashes = await c.call("eth_subscribe", "newPendingTransactions")
                full = await c.call("eth_subscribe", "newPendingTransactions", True)
                ids = [heads, logs, nothing, hashes, full]
                assert all(isinstance(i, str) and ID.fullmatch(i) for i in ids) and len(set(ids)) == 5
                assert len(bus._subs[ChainHeadEvent]) == heads_before + 3
                assert len(bus._subs[NewTxsEvent]) == txs_before + 2

                # geth's errors for calls it refuses
                assert await c.call("eth_subscribe", "nope") == {
                    "code": -32601, "message": 'no "nope" subscription in eth namespace'}
                assert await c.call("web3_subscribe", "newHeads") == {
                    "code": -32601, "message": 'no "newHeads" subscription in web3 namespace'}
                assert await c.call("eth_subscribe") == {
                    "code": -32602, "message": "expected subscription name as first argument"}
                assert await c.call("eth_subscribe", "newHeads", 1) == {
                    "code": -32602, "message": "too many arguments, want at most 1"}
                assert await c.call("eth_subscribe", "logs") == {
                    "code": -32602, "message": "missing value for required argument 1"}
                assert await c.call("eth_subscribe", "logs", {"fromBlock": "pending"}) == {
                    "code": -32602, "message": "pending logs are not supported"}
                assert await c.call("eth_subscribe", "newPendingTransactions", "x") == {
                    "code": -32602, "message": "invalid argument 1: json: cannot unmarshal string into Go value of "
                                               "type bool"}
                assert await c.call("eth_chainId") == "0x539"  # plain calls share the connection

                # the pool: one notification per tx, the hash or geth's RPC transaction
                txs = [transfer(0), transfer(1)]
                node.eth.txpool.add_locals(txs)
                assert await c.notes_for(hashes, 2) == ["0x" + tx.hash.hex() for tx in txs]
                objects = await c.notes_for(full, 2)
                assert [(o["hash"], o["blockHash"], o["nonce"]) for o in objects] == [
                    ("0x" + txs[0].hash.hex(), None, "0x0"), ("0x" + txs[1].hash.hex(), None, "0x1")]

                # the chain: geth's types.Header JSON, then the block's logs
                block = build_block(chain, txs)
                (header,) = await c.notes_for(heads, 1)
                rpc_block = await c.call("eth_getBlockByNumber", "0x1", False)
                assert list(header) == [
                    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot", "logsBloom",
                    "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData", "mixHash", "nonce",
                    "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot",
                    "requestsHash", "blockAccessListHash", "slotNumber", "hash"]
                assert header["hash"] == "0x" + block.hash.hex() and header["number"] == "0x1"
                assert {k: v for k, v in header.items() if v is not None} == {
                    k: v for k, v in rpc_block.items() if k in header}
                assert header["withdrawalsRoot"] is None  # a London chain: later fields are null, as geth's
                got_logs = await c.notes_for(logs, 2)
                assert got_logs == await c.call("eth_getLogs", {"blockHash": "0x" + block.hash.hex()})
                assert [lg["topics"] for lg in got_logs] == [["0x" + LOG_TOPIC.hex()]] * 2
                assert all(lg["removed"] is False for lg in got_logs)

                # unsubscribe: true once, then geth's error; the feed lets go of the bus
                assert await c.call("eth_unsubscribe", heads) is True
                assert await c.call("eth_unsubscribe", heads) == {"code": -32000, "message": "subscription not found"}
                assert await c.call("eth_unsubscribe", 7) == {
                    "code": -32602, "message": "invalid argument 0: json: cannot unmarshal number into Go value of "
                                               "type rpc.ID"}
                assert len(bus._subs[ChainHeadEvent]) == heads_before + 2
                again = await c.call("eth_subscribe", "newHeads")
                block2 = build_block(chain, [transfer(2)])
                assert [h["hash"] for h in await c.notes_for(again, 1)] == ["0x" + block2.hash.hex()]
                assert heads not in c.notes or len(c.notes[heads]) == 1
                assert nothing not in c.notes
            # the client left: every feed it had is closed
            await eventually(lambda: len(bus._subs[ChainHeadEvent]) == heads_before
                             and len(bus._subs[NewTxsEvent]) == txs_before)

            # HTTP carries no notifications (geth's -32601), and knows no subscription ids
            status, _, body = await http_post(node.rpc_port, req("eth_subscribe", "newHeads"))
            assert json.loads(body)["error"] == {"code": -32601, "message": "notifications not supported"}
            _, _, body = await http_post(node.rpc_port, req("eth_unsubscribe", "0x1"))
            assert json.loads(body)["error"] == {"code": -32000, "message": "subscription not found"}
        finally:
            await node.stop()

    run_checked(scenario, timeout=TIMEOUT)


def test_a_reorg_sends_the_logs_that_left_the_chain_as_removed() -> None:
    pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
    from eth_support import executed_ethtest_chain
    from test_rpc_filters import _sibling_without_txs, stored_logs

    top = 46  # its tx emits one log
    chain = executed_ethtest_chain(top)
    original = chain.current_block
    side = _sibling_without_txs(chain, top)
    gone = stored_logs(chain, top, top)

    async def scenario() -> None:
        node = await RPCNode(chain, ws=True).start()
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(node.ws_url) as ws:
                c = Client(ws)
                heads = await c.call("eth_subscribe", "newHeads")
                logs = await c.call("eth_subscribe", "logs", {})
                chain.set_canonical(side.hash)  # what a forkchoiceUpdated to the side block does
                assert [h["hash"] for h in await c.notes_for(heads, 1)] == ["0x" + side.hash.hex()]
                assert await c.notes_for(logs, 1) == [{**gone[0], "removed": True}]
                chain.set_canonical(original.hash)
                assert [h["hash"] for h in await c.notes_for(heads, 2)][1] == "0x" + original.hash.hex()
                assert (await c.notes_for(logs, 2))[1] == gone[0]
        finally:
            await node.stop()

    run_checked(scenario, timeout=TIMEOUT)


# --- origins --------------------------------------------------------------------------------------


def test_origin_rules_as_geths() -> None:
    assert parse_origin("https://A.example:8080/x") == ("https", "a.example", "8080")
    assert parse_origin("localhost") == ("", "localhost", "")
    assert parse_origin("localhost:3000") == ("", "localhost", "3000")
    assert parse_origin("127.0.0.1:3000") is None  # Go: first path segment in URL cannot contain colon
    assert origin_rule_allows("http://localhost", "http://localhost:3000")  # no port in the rule: any port
    assert origin_rule_allows("localhost", "https://localhost:1")  # geth's Engine API rule: any scheme and port
    assert not origin_rule_allows("http://localhost", "https://localhost")
    assert not origin_rule_allows("http://localhost:8080", "http://localhost:3000")
    assert not origin_rule_allows("http://localhost", "http://localhost.evil.example")
    default = OriginCheck(())
    assert default(None)  # no Origin: not a browser
    assert default("http://localhost:8000") and not default("https://evil.example") and not default("null")
    listed = OriginCheck(["https://app.example"])
    assert listed("https://app.example") and listed("https://APP.example") and not listed("http://localhost")
    assert OriginCheck(["*"])("https://evil.example")


def test_a_page_on_another_origin_cannot_open_a_websocket() -> None:
    async def scenario() -> None:
        server = RPCServer({"web3_clientVersion": lambda: "x"}, http=False, ws=True, ws_origins=("https://app.example",))
        await server.start()
        try:
            refused = await RawWebSocket.connect(server.port, {"Origin": "https://evil.example"})
            assert refused.status == 403 and refused.head.endswith("\r\n\r\n")
            refused.close()
            for headers in ({"Origin": "https://app.example"}, {}):  # listed; not a browser
                ws = await RawWebSocket.connect(server.port, headers)
                assert ws.status == 101
                ws.send(req("web3_clientVersion"))
                assert (await ws.recv())["result"] == "x"
                ws.close()
            # a WebSocket-only server answers plain HTTP 404, as geth's
            status, _, _ = await http_post(server.port, req("web3_clientVersion"))
            assert status == 404
        finally:
            await server.stop()

    run_checked(scenario, timeout=TIMEOUT)


# --- misbehaving clients --------------------------------------------------------------------------


class _Flood:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def run(self, notify: Notify) -> None:
        chunk = "x" * 65536
        while True:
            notify(chunk)
            await asyncio.sleep(0)

    def close(self) -> None:
        self.closed.set()


class _FloodAPI:
    def __init__(self) -> None:
        self.feeds: list[_Flood] = []
        self.created = asyncio.Event()

    @subscription
    def flood(self) -> _Flood:
        self.feeds.append(_Flood())
        self.created.set()
        return self.feeds[-1]

    def ping(self) -> str:
        return "pong"


def test_a_client_that_does_not_read_is_disconnected_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conn_mod, "MAX_QUEUED_BYTES", 1 << 20)  # 16 notifications of 64 KiB
    api = _FloodAPI()

    async def scenario() -> None:
        server = RPCServer(methods_of(API("test", api)), http=False, ws=True)
        await server.start()
        try:
            stalled = await RawWebSocket.connect(server.port)
            stalled.send(req("test_subscribe", "flood"))  # and never read again
            await asyncio.wait_for(api.created.wait(), 10)
            await asyncio.wait_for(api.feeds[0].closed.wait(), 30)  # dropped: its feed is closed
            assert server.ws is not None
            await eventually(lambda: not server.ws.connections)  # type: ignore[union-attr]
            ws = await RawWebSocket.connect(server.port)  # the server goes on serving
            ws.send(req("test_ping"))
            assert (await ws.recv())["result"] == "pong"
            ws.close()
            stalled.close()
        finally:
            await server.stop()

    run_checked(scenario, timeout=TIMEOUT)


def _descriptors(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def test_a_thousand_idle_websockets_do_not_stop_others_being_served() -> None:
    idle_count = 1000
    _descriptors(2 * idle_count + 256)  # both ends live in this process

    async def scenario() -> None:
        node = await RPCNode(dev_chain(), ws=True).start()
        port = node.rpc_port
        idle: list[RawWebSocket] = []
        try:
            for batch in range(0, idle_count, 100):
                idle += await asyncio.gather(*(RawWebSocket.connect(port) for _ in range(batch, batch + 100)))
            assert {ws.status for ws in idle} == {101}
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert await node.call("eth_chainId") == "0x539"
            async with aiohttp.ClientSession() as session, session.ws_connect(node.ws_url) as ws:
                assert (await Client(ws).call("eth_blockNumber")) == "0x0"
            assert loop.time() - start < 2.0
        finally:
            for ws in idle:
                ws.close()
            await node.stop()

    run_checked(scenario, timeout=TIMEOUT)


def _proc_status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS, ...)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _soft_fd_limit(pid: int) -> int:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no descriptor limit")


WS_RSS_BOUND_KB = 64  # per idle WebSocket; measured ~10-20 kB (aiohttp's protocol, reader, queue, buffers)


@pytest.mark.subprocess
def test_a_thousand_idle_websockets_cost_bounded_memory_in_the_node(dev_node: DevNode) -> None:
    """The node in its own process (``run --dev``): 1000 idle WebSockets fit under its connection
    cap, grow its RSS by less than WS_RSS_BOUND_KB each, and others are served meanwhile and after."""
    idle_count = 1000
    _descriptors(idle_count + 256)
    pid = dev_node.proc.proc.pid
    cap = max(128, min(4096, _soft_fd_limit(pid) // 4))  # ethnode.rpc.http.default_max_connections in the child
    if cap < idle_count + 10:
        pytest.skip(f"the node's descriptor limit gives a connection cap of {cap}")

    async def scenario() -> None:
        warm = await asyncio.gather(*(RawWebSocket.connect(dev_node.ws_port) for _ in range(50)))
        for ws in warm:  # the first connections pay for code paths and pools, not per connection
            ws.close()
        idle: list[RawWebSocket] = []
        try:
            before = _proc_status(pid, "VmRSS")
            for _ in range(0, idle_count, 100):
                idle += await asyncio.gather(*(RawWebSocket.connect(dev_node.ws_port) for _ in range(100)))
            assert {ws.status for ws in idle} == {101}
            idle[-1].send(req("eth_chainId"))  # the last handshake is done and its connection served
            assert (await idle[-1].recv())["result"] == "0x539"
            after = _proc_status(pid, "VmRSS")
            per_connection = (after - before) / idle_count
            print(f"\nnode RSS {before} kB -> {after} kB with {idle_count} idle WebSockets: "
                  f"{per_connection:.1f} kB each (cap {cap})")
            assert per_connection < WS_RSS_BOUND_KB, per_connection
            start = asyncio.get_running_loop().time()
            status, _, body = await http_post(dev_node.http_port, req("eth_blockNumber"))
            assert status == 200 and "result" in json.loads(body)
            assert asyncio.get_running_loop().time() - start < 2.0
        finally:
            for ws in idle:
                ws.close()
        status, _, body = await http_post(dev_node.http_port, req("net_version"))
        assert status == 200 and json.loads(body)["result"] == "1337"

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))


def test_connections_past_the_cap_are_refused_and_the_rest_served() -> None:
    async def scenario() -> None:
        server = RPCServer({"web3_clientVersion": lambda: "x"}, ws=True, max_connections=5)
        await server.start()
        try:
            idle = [await RawWebSocket.connect(server.port) for _ in range(5)]
            assert [ws.status for ws in idle] == [101] * 5
            refused = await RawWebSocket.connect(server.port)
            assert refused.status == 503 and await refused.body() == b"too many connections\n"
            refused.close()
            idle[0].send(req("web3_clientVersion"))  # those in keep being served
            assert (await idle[0].recv())["result"] == "x"
            idle.pop().close()
            await eventually(lambda: server.http.connections < 5)
            status, _, body = await http_post(server.port, req("web3_clientVersion"))
            assert status == 200 and json.loads(body)["result"] == "x"
            assert server.http.refused == 1
            for ws in idle:
                ws.close()
        finally:
            await server.stop()

    run_checked(scenario, timeout=TIMEOUT)


# --- end to end: run --dev ------------------------------------------------------------------------


@pytest.mark.subprocess
def test_web3_subscribes_to_new_heads_and_pending_transactions(dev_node: DevNode) -> None:
    from web3 import AsyncWeb3, WebSocketProvider

    async def main() -> None:
        async with AsyncWeb3(WebSocketProvider(dev_node.ws_url)) as w3:
            heads = await w3.eth.subscribe("newHeads")
            pending = await w3.eth.subscribe("newPendingTransactions")
            (dev,) = await w3.eth.accounts
            before = await w3.eth.block_number
            to = AsyncWeb3.to_checksum_address("0x" + "aa" * 20)
            tx_hash = await w3.eth.send_transaction({"from": dev, "to": to, "value": 1})
            seen: dict[str, Any] = {}
            async for message in w3.socket.process_subscriptions():
                seen.setdefault(message["subscription"], message["result"])
                if heads in seen and pending in seen:
                    break
            assert seen[pending] == tx_hash
            assert seen[heads]["number"] == before + 1  # --dev seals a block for the tx
            block = await w3.eth.get_block(before + 1)
            assert seen[heads]["hash"] == block["hash"] and tx_hash in block["transactions"]
            assert await w3.eth.unsubscribe(heads) is True

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


@pytest.mark.subprocess
def test_engine_api_over_websocket_takes_the_jwt_at_the_handshake(dev_node: DevNode) -> None:
    async def main() -> None:
        refused = await RawWebSocket.connect(dev_node.auth_port)
        assert refused.status == 401 and (await refused.body()) == b"missing token\n"
        refused.close()
        evil = await RawWebSocket.connect(dev_node.auth_port, {"Authorization": f"Bearer {make_token(b'x' * 32)}"})
        assert evil.status == 401
        evil.close()
        token = make_token(dev_node.jwt_secret)
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(f"ws://{HOST}:{dev_node.auth_port}", headers={"Authorization": f"Bearer {token}"}) \
                as ws:
            c = Client(ws)
            capabilities = await c.call("engine_exchangeCapabilities", [])
            assert "engine_forkchoiceUpdatedV3" in capabilities and "engine_newPayloadV4" in capabilities
            assert (await c.call("eth_subscribe", "newHeads"))["code"] == -32601  # only engine_ there

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


@pytest.mark.subprocess
def test_a_10mb_body_gets_413_and_the_node_keeps_serving(dev_node: DevNode) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * (10 * 1024 * 1024) + b'"]}'

    async def main() -> None:
        reader, writer = await asyncio.open_connection(HOST, dev_node.http_port)
        writer.write(f"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        writer.write(body)
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 413") and "Connection: close" in head
        writer.close()
        # chunked, so no length to refuse up front: cut off at the limit
        reader, writer = await asyncio.open_connection(HOST, dev_node.http_port)
        writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 1 << 20):
            chunk = body[start:start + (1 << 20)]
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        writer.write(b"0\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 413")
        writer.close()
        status, _, reply = await http_post(dev_node.http_port, req("eth_chainId"))
        assert status == 200 and json.loads(reply)["result"] == "0x539"

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert dev_node.proc.proc.poll() is None


def test_the_syncing_subscription_reports_a_sync_starting_and_ending() -> None:
    """geth DownloaderAPI.Syncing: {"syncing": true, "status": SyncProgress as Go encodes it}, then false."""
    from ethnode.eth.downloader.downloader import SyncProgress
    from ethnode.ethapi.subscriptions import SubscriptionAPI
    from ethnode.event import EventBus

    class Downloader:
        syncing = False
        progress_now = SyncProgress(0, 0, 0)

        def progress(self) -> SyncProgress:
            return self.progress_now

    async def scenario() -> None:
        bus, downloader = EventBus(), Downloader()
        chain = dev_chain()
        feed = SubscriptionAPI(chain, bus, downloader).syncing()
        got: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(feed.run(got.put_nowait))
        try:
            downloader.syncing, downloader.progress_now = True, SyncProgress(3, 5, 100)
            bus.post(ChainHeadEvent(chain.current_block))  # a head move makes the feed look
            note = await asyncio.wait_for(got.get(), 10)
            assert note["syncing"] is True and list(note["status"])[:4] == [
                "StartingBlock", "CurrentBlock", "HighestBlock", "PulledStates"]
            assert (note["status"]["StartingBlock"], note["status"]["CurrentBlock"],
                    note["status"]["HighestBlock"]) == (3, 5, 100)
            downloader.syncing = False
            bus.post(ChainHeadEvent(chain.current_block))
            assert await asyncio.wait_for(got.get(), 10) is False
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            feed.close()
        assert not bus._subs[ChainHeadEvent]

    run_checked(scenario, timeout=TIMEOUT)
