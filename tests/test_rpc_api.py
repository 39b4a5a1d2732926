"""The public JSON-RPC endpoint: geth's method names, JSON shapes and error codes/messages, over real HTTP
on loopback, against a hand-built dev chain (no execution: account state comes from a fake StateReader)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from p2p_support import run_checked
from rpc_support import (
    CHAIN_ID,
    DEV_ADDR,
    DEV_BALANCE,
    GWEI,
    LOG_TOPIC,
    OTHER_ADDR,
    TRANSFER_GAS,
    FakeState,
    RPCNode,
    build_block,
    dev_chain,
    http_post,
    legacy_transfer,
    transfer,
)

from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.types.transaction import LegacyTx
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.downloader.downloader import SyncProgress
from ethnode.rpc.api import API, camel, collect_methods, methods_of
from ethnode.rpc.endpoint import host_allowed
from ethnode.rpc.hexutil import checksum_address

H = "0x"


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def req(method: str, *params: Any, rid: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}


async def post(node: RPCNode, body: Any, **kw: Any) -> Any:
    status, headers, data = await http_post(node.rpc_port, body, **kw)
    assert status == 200 and headers["content-type"] == "application/json", (status, data)
    return json.loads(data)


# --- wiring -------------------------------------------------------------------------------------


def test_method_names_are_geths_camel_case() -> None:
    assert camel("get_block_by_number") == "getBlockByNumber"
    assert camel("chain_id") == "chainId" and camel("max_priority_fee_per_gas") == "maxPriorityFeePerGas"

    class Fake:
        def client_version(self) -> str:
            return "x"

        @property
        def boom(self) -> str:  # properties are never evaluated or exposed
            raise AssertionError

        def _hidden(self) -> None: ...

    assert list(methods_of(API("web3", Fake()))) == ["web3_clientVersion"]
    apis = [API("web3", Fake()), API("engine", Fake(), authenticated=True)]
    assert list(collect_methods(apis, ["web3", "engine", "nope"])) == ["web3_clientVersion"]
    assert checksum_address(bytes.fromhex("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")) == \
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example


def test_protocol_errors_and_namespaces() -> None:
    async def scenario() -> None:
        node = await RPCNode(dev_chain()).start()
        try:
            port = node.rpc_port
            assert await node.call("web3_clientVersion") == node.node.server.client_id
            assert await node.call("web3_sha3", "0x") == \
                "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
            assert await node.call("net_version") == str(CHAIN_ID)
            assert await node.call("net_listening") is True
            assert await node.call("net_peerCount") == "0x0"
            assert await node.call("eth_chainId") == hex(CHAIN_ID)
            # Not listed in --http.api (admin, txpool) or never public (engine): like an unknown method.
            for method in ("admin_nodeInfo", "txpool_status", "engine_forkchoiceUpdatedV3", "eth_nope"):
                assert await node.call(method) == {
                    "code": -32601, "message": f"the method {method} does not exist/is not available"}
            assert (await post(node, b"{nope"))["error"] == {"code": -32700, "message": "parse error"}
            assert (await post(node, {"id": 3, "method": "eth_chainId"}))["error"]["code"] == -32600
            assert (await post(node, []))["error"] == {"code": -32600, "message": "empty batch"}
            batch = await post(node, [req("eth_chainId", rid=1), req("eth_nope", rid=2), {"jsonrpc": "2.0",
                                      "method": "eth_chainId"}, req("eth_getBalance", rid="x")])
            assert [r["id"] for r in batch] == [1, 2, "x"]  # the notification gets no reply
            assert batch[0]["result"] == hex(CHAIN_ID) and batch[1]["error"]["code"] == -32601
            assert batch[2]["error"] == {"code": -32602, "message": "missing value for required argument 0"}
            assert await node.call("eth_blockNumber", 1) == {"code": -32602,
                                                              "message": "too many arguments, want at most 0"}
            assert await node.call("eth_getBalance", "0x1234") == {
                "code": -32602, "message": "invalid argument 0: hex string has length 4, want 40 for common.Address"}
            assert await node.call("eth_getBlockByNumber", "12", False) == {
                "code": -32602, "message": "invalid argument 0: hex string without 0x prefix"}
            assert (await http_post(port, None, method="GET"))[0] == 200
            assert (await http_post(port, {}, method="PUT"))[0] == 405
            status, _, body = await http_post(port, req("eth_chainId"), ctype="text/plain")
            assert status == 415 and b"application/json" in body
        finally:
            await node.stop()

    run_checked(scenario)


# --- blocks, transactions, receipts ---------------------------------------------------------------


def test_blocks_transactions_and_receipts() -> None:
    async def scenario() -> None:
        chain = dev_chain([[transfer(0), legacy_transfer(1)], []])
        node = await RPCNode(chain).start()
        try:
            assert await node.call("eth_blockNumber") == "0x2"
            b1 = chain.get_block_by_number(1)
            tx0, tx1 = b1.transactions
            block = await node.call("eth_getBlockByNumber", "0x1", False)
            assert block["hash"] == hx(b1.hash) and block["number"] == "0x1"
            assert block["transactions"] == [hx(tx0.hash), hx(tx1.hash)]
            assert block["baseFeePerGas"] == hex(b1.header.base_fee) and block["uncles"] == []
            assert block["size"] == hex(len(b1.encode())) and block["miner"] == "0x" + "c0" * 20
            assert "withdrawals" not in block and "totalDifficulty" not in block  # no Shanghai here; geth 1.14+
            assert await node.call("eth_getBlockByHash", hx(b1.hash), False) == block
            full = await node.call("eth_getBlockByHash", hx(b1.hash), True)
            t0, t1 = full["transactions"]
            assert t0["hash"] == hx(tx0.hash) and t0["blockHash"] == hx(b1.hash) and t0["transactionIndex"] == "0x0"
            assert t0["type"] == "0x2" and t0["from"] == hx(DEV_ADDR) and t0["to"] == hx(OTHER_ADDR)
            effective = min(3 * GWEI, b1.header.base_fee + GWEI)
            assert t0["gasPrice"] == hex(effective) and t0["maxFeePerGas"] == hex(3 * GWEI)
            assert t0["chainId"] == hex(CHAIN_ID) and t0["yParity"] in ("0x0", "0x1") and t0["accessList"] == []
            assert t1["type"] == "0x0" and t1["gasPrice"] == hex(2 * GWEI) and "yParity" not in t1
            assert int(t1["v"], 16) in (2 * CHAIN_ID + 35, 2 * CHAIN_ID + 36)
            assert (await node.call("eth_getBlockByNumber", "latest", False))["number"] == "0x2"
            assert (await node.call("eth_getBlockByNumber", "pending", False))["number"] == "0x2"
            assert (await node.call("eth_getBlockByNumber", "earliest", False))["hash"] == hx(chain.genesis_hash)
            assert await node.call("eth_getBlockByNumber", "0x9", False) is None
            assert await node.call("eth_getBlockByHash", "0x" + "00" * 32, False) is None
            assert await node.call("eth_getBlockByNumber", "finalized", False) == {
                "code": -32000, "message": "finalized block not found"}
            chain.set_safe(b1.hash)
            assert (await node.call("eth_getBlockByNumber", "safe", False))["number"] == "0x1"

            assert await node.call("eth_getTransactionByHash", hx(tx1.hash)) == t1
            receipt = await node.call("eth_getTransactionReceipt", hx(tx1.hash))
            assert receipt["transactionHash"] == hx(tx1.hash) and receipt["transactionIndex"] == "0x1"
            assert receipt["blockHash"] == hx(b1.hash) and receipt["blockNumber"] == "0x1"
            assert receipt["status"] == "0x1" and receipt["type"] == "0x0" and receipt["contractAddress"] is None
            assert receipt["gasUsed"] == hex(TRANSFER_GAS) and receipt["cumulativeGasUsed"] == hex(2 * TRANSFER_GAS)
            assert receipt["effectiveGasPrice"] == hex(2 * GWEI) and receipt["from"] == hx(DEV_ADDR)
            (lg,) = receipt["logs"]
            assert lg["logIndex"] == "0x1" and lg["transactionIndex"] == "0x1" and lg["topics"] == [hx(LOG_TOPIC)]
            assert lg["data"] == "0x01" and lg["removed"] is False and lg["blockHash"] == hx(b1.hash)
            assert len(receipt["logsBloom"]) == 2 + 512
            assert (await node.call("eth_getTransactionReceipt", hx(tx0.hash)))["effectiveGasPrice"] == hex(effective)
            assert await node.call("eth_getTransactionReceipt", "0x" + "11" * 32) is None
            assert await node.call("eth_getTransactionByHash", "0x" + "11" * 32) is None
            # A block whose receipts are not stored (no execution): no receipt yet, as geth.
            b3 = build_block(chain, [transfer(2, to=None)], store_receipts=False)
            assert await node.call("eth_getTransactionReceipt", hx(b3.transactions[0].hash)) is None
        finally:
            await node.stop()

    run_checked(scenario)


# --- account state ----------------------------------------------------------------------------------


def test_state_without_and_with_a_state_reader() -> None:
    async def scenario() -> None:
        chain = dev_chain([[transfer(0)], [transfer(1)]])
        head = chain.current_block
        node = await RPCNode(chain).start()
        try:
            # No execution yet: geth's answer for state it does not have.
            missing = {"code": -32000, "message": f"state 0x{head.state_root.hex()} is not available"}
            assert await node.call("eth_getBalance", hx(DEV_ADDR), "latest") == missing
            assert await node.call("eth_getTransactionCount", hx(DEV_ADDR), "latest") == missing
        finally:
            await node.stop()

        state = FakeState(chain, {DEV_ADDR: (2, DEV_BALANCE - 5)})
        state.history[1] = {DEV_ADDR: (1, DEV_BALANCE - 2)}
        node = await RPCNode(chain, state=state).start()
        try:
            addr = hx(DEV_ADDR)
            assert await node.call("eth_getBalance", addr, "latest") == hex(DEV_BALANCE - 5)
            assert await node.call("eth_getBalance", addr) == hex(DEV_BALANCE - 5)  # the block is optional
            assert await node.call("eth_getTransactionCount", addr, "latest") == "0x2"
            assert await node.call("eth_getTransactionCount", addr, "0x1") == "0x1"
            assert await node.call("eth_getBalance", addr, {"blockNumber": "0x1"}) == hex(DEV_BALANCE - 2)
            b1 = chain.get_header_by_number(1)
            assert await node.call("eth_getBalance", addr, {"blockHash": hx(b1.hash)}) == hex(DEV_BALANCE - 2)
            assert await node.call("eth_getBalance", addr, hx(b1.hash)) == hex(DEV_BALANCE - 2)
            assert await node.call("eth_getBalance", hx(OTHER_ADDR), "latest") == "0x0"  # no account: zero
            assert await node.call("eth_getCode", hx(OTHER_ADDR), "latest") == "0x"
            assert (await node.call("eth_getBalance", addr, "0x0"))["message"].endswith("is not available")
            assert await node.call("eth_getBalance", addr, "0x7") == {"code": -32000, "message": "header not found"}
            assert await node.call("eth_getBalance", addr, {"blockHash": "0x" + "22" * 32}) == {
                "code": -32000, "message": "header for hash not found"}
            both = await node.call("eth_getBalance", addr, {"blockHash": hx(b1.hash), "blockNumber": "0x1"})
            assert both["code"] == -32602 and "cannot specify both" in both["message"]
            assert ("balance", DEV_ADDR, None) in state.calls and ("balance", DEV_ADDR, 1) in state.calls
            # "pending" counts the pool's txs on top of the state nonce.
            assert await node.call("eth_getTransactionCount", addr, "pending") == "0x2"
        finally:
            await node.stop()

    run_checked(scenario)


# --- sending and the pool -----------------------------------------------------------------------------


def test_send_raw_transaction_and_txpool() -> None:
    async def scenario() -> None:
        chain = dev_chain([[transfer(0)]])
        state = FakeState(chain, {DEV_ADDR: (1, DEV_BALANCE)})
        node = await RPCNode(chain, modules=["eth", "txpool"], state=state).start()
        try:
            tx = transfer(1, value=7)
            assert await node.call("eth_sendRawTransaction", hx(tx.canonical)) == hx(tx.hash)
            assert await node.call("txpool_status") == {"pending": "0x1", "queued": "0x0"}
            gapped = transfer(3)
            assert await node.call("eth_sendRawTransaction", hx(gapped.canonical)) == hx(gapped.hash)
            assert await node.call("txpool_status") == {"pending": "0x1", "queued": "0x1"}
            content = await node.call("txpool_content")
            sender = checksum_address(DEV_ADDR)
            assert list(content["pending"]) == [sender] and list(content["pending"][sender]) == ["1"]
            pooled = content["pending"][sender]["1"]
            assert pooled["hash"] == hx(tx.hash) and pooled["blockHash"] is None and pooled["blockNumber"] is None
            assert pooled["gasPrice"] == hex(3 * GWEI) and pooled["value"] == "0x7"
            assert list(content["queued"][sender]) == ["3"]
            assert await node.call("eth_getTransactionByHash", hx(tx.hash)) == pooled
            assert await node.call("eth_getTransactionCount", hx(DEV_ADDR), "pending") == "0x2"
            inspect = await node.call("txpool_inspect")
            assert inspect["pending"][sender]["1"] == \
                f"{checksum_address(OTHER_ADDR)}: 7 wei + {TRANSFER_GAS} gas × {3 * GWEI} wei"
            assert (await node.call("txpool_contentFrom", hx(DEV_ADDR)))["queued"]["3"]["nonce"] == "0x3"

            async def error(raw: bytes) -> Any:
                return await node.call("eth_sendRawTransaction", hx(raw))

            assert await error(tx.canonical) == {"code": -32000, "message": "already known"}
            low = await error(transfer(0, value=2).canonical)
            assert low["code"] == -32000 and low["message"].startswith("nonce too low")
            state.head[DEV_ADDR] = (1, 10)
            poor = await error(transfer(4).canonical)
            assert poor["code"] == -32000 and poor["message"].startswith("insufficient funds for gas * price + value")
            costly = await error(transfer(1, fee_cap=10**18, tip=1, gas=30000).canonical)
            assert costly == {"code": -32000, "message": "tx fee (30000.00 ether) exceeds the configured cap "
                                                         "(1.00 ether)"}
            unprotected = LegacyTx(5, 2 * GWEI, TRANSFER_GAS, OTHER_ADDR, 0, b"", 0, 0, 0).sign(PrivateKey.generate())
            assert await error(unprotected.canonical) == {
                "code": -32000, "message": "only replay-protected (EIP-155) transactions allowed over RPC"}
            other_chain = LegacyTx(0, GWEI, TRANSFER_GAS, OTHER_ADDR, 0, b"", 0, 0, 0).sign(PrivateKey.generate(), 1)
            assert (await error(other_chain.canonical))["message"].startswith("invalid sender")
            assert (await error(b"\x02\x01"))["code"] == -32000
            assert (await node.call("eth_sendRawTransaction", "0xzz"))["code"] == -32602
            assert await node.call("txpool_status") == {"pending": "0x1", "queued": "0x1"}
        finally:
            await node.stop()

    run_checked(scenario)


# --- fees and sync ------------------------------------------------------------------------------------


def test_gas_price_fee_history_and_syncing() -> None:
    async def scenario() -> None:
        chain = dev_chain([[transfer(0, tip=2 * GWEI), transfer(1, tip=5 * GWEI, fee_cap=8 * GWEI)], [],
                           [transfer(2, tip=4 * GWEI, fee_cap=6 * GWEI)]])
        node = await RPCNode(chain).start()
        try:
            head = chain.current_block
            tip = int(await node.call("eth_maxPriorityFeePerGas"), 16)
            assert tip == 2 * GWEI  # 60th percentile of [4, 1 (empty block: the last price), 2, 5] gwei
            assert int(await node.call("eth_gasPrice"), 16) == tip + head.base_fee
            hist = await node.call("eth_feeHistory", "0x2", "latest", [10, 90])
            assert hist["oldestBlock"] == "0x2" and len(hist["gasUsedRatio"]) == 2
            assert hist["baseFeePerGas"] == [hex(chain.get_header_by_number(2).base_fee), hex(head.base_fee),
                                             hex(calc_base_fee(chain.config, head))]
            assert hist["reward"] == [["0x0", "0x0"], [hex(4 * GWEI), hex(4 * GWEI)]]
            assert hist["gasUsedRatio"][1] == TRANSFER_GAS / head.gas_limit
            assert hist["baseFeePerBlobGas"] == ["0x0"] * 3 and hist["blobGasUsedRatio"] == [0.0, 0.0]
            first = await node.call("eth_feeHistory", 1, "0x1", [0, 50, 100])
            b1 = chain.get_header_by_number(1)
            assert first["reward"] == [[hex(min(2 * GWEI, 3 * GWEI - b1.base_fee)), hex(2 * GWEI), hex(5 * GWEI)]]
            assert (await node.call("eth_feeHistory", "10", "latest", []))["oldestBlock"] == "0x0"  # clamped at genesis
            missing = await node.call("eth_feeHistory", "10", "latest")  # geth: the percentiles are required
            assert missing == {"code": -32602, "message": "missing value for required argument 2"}
            assert await node.call("eth_feeHistory", "0x0", "latest", []) == {"oldestBlock": "0x0",
                                                                           "gasUsedRatio": None}
            assert await node.call("eth_feeHistory", "0x1", "latest", [50, 10]) == {
                "code": -32000, "message": "invalid reward percentile: #0:50.000000 >= #1:10.000000"}
            assert (await node.call("eth_feeHistory", "0x1", "latest", [101]))["message"] == \
                "invalid reward percentile: 101.000000"
            assert await node.call("eth_feeHistory", "0x1", "0x10", []) == {
                "code": -32000, "message": "request beyond head block: requested 16, head 3"}

            assert await node.call("eth_syncing") is False
            downloader = node.eth.downloader

            class Busy:
                syncing = True

                @staticmethod
                def progress() -> SyncProgress:
                    return SyncProgress(1, 3, 900)

            node.eth.downloader = Busy()
            status = await node.call("eth_syncing")
            assert status["startingBlock"] == "0x1" and status["currentBlock"] == "0x3"
            assert status["highestBlock"] == "0x384" and status["txIndexRemainingBlocks"] == "0x0"
            node.eth.downloader = downloader
        finally:
            await node.stop()

    run_checked(scenario)


# --- admin --------------------------------------------------------------------------------------------------


def test_admin_node_info_peers_add_and_remove() -> None:
    async def scenario() -> None:
        a = await RPCNode(dev_chain(), modules=["admin", "net"]).start()
        b = await RPCNode(dev_chain(), modules=["admin"]).start()
        try:
            info = await a.call("admin_nodeInfo")
            server = a.node.server
            assert info["enode"] == server.enode and info["id"] == server.id.hex() and info["name"] == server.client_id
            assert info["enr"].startswith("enr:") and info["ip"] == "127.0.0.1"
            assert info["ports"]["listener"] == server.port and info["listenAddr"].endswith(f":{server.port}")
            eth = info["protocols"]["eth"]
            assert eth["network"] == CHAIN_ID and eth["genesis"] == hx(a.eth.chain.genesis_hash)
            assert eth["head"] == hx(a.eth.chain.current_block.hash) and eth["config"]["chainId"] == CHAIN_ID
            assert await a.call("admin_peers") == []
            assert await b.call("admin_addPeer", info["enode"]) is True
            await a.eth.handler.wait_for_peers(1)
            await b.eth.handler.wait_for_peers(1)
            (seen_by_b,) = await b.call("admin_peers")
            assert seen_by_b["id"] == server.id.hex() and seen_by_b["name"] == server.client_id
            assert sorted(seen_by_b["caps"]) == ["eth/68", "eth/69", "eth/70", "eth/71", "eth/72"]
            assert seen_by_b["protocols"]["eth"]["version"] == 72
            net = seen_by_b["network"]
            assert net["inbound"] is False and net["static"] is True and net["trusted"] is False
            assert net["remoteAddress"] == f"127.0.0.1:{server.port}" and net["localAddress"].startswith("127.0.0.1:")
            (seen_by_a,) = await a.call("admin_peers")
            assert seen_by_a["network"]["inbound"] is True and seen_by_a["network"]["static"] is False
            assert await a.call("net_peerCount") == "0x1"
            assert await b.call("admin_removePeer", info["enode"]) is True
            await a.eth.handler.wait_for_peers(0)
            await b.eth.handler.wait_for_peers(0)
            bad = await b.call("admin_addPeer", "enode://nope")
            assert bad["code"] == -32000 and bad["message"].startswith("invalid enode: ")
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario)


def test_virtual_hosts_as_geth() -> None:
    """DNS rebinding: a page at evil.example.com resolving to 127.0.0.1 gets 403 (it was served)."""
    allowed = [("localhost", ["localhost"]), ("LOCALHOST:8545", ["localhost"]), ("127.0.0.1:8545", ["localhost"]),
               ("[::1]:8545", ["localhost"]), (None, ["localhost"]), ("", ["localhost"]),
               ("evil.example.com", ["*"]), ("node.example.org:80", ["node.example.org"])]
    refused = [("evil.example.com", ["localhost"]), ("evil.example.com:8545", ["localhost"]),
               ("localhost.evil.example.com", ["localhost"]), ("localhost", [])]
    for header, vhosts in allowed:
        assert host_allowed(header, vhosts), (header, vhosts)
    for header, vhosts in refused:
        assert not host_allowed(header, vhosts), (header, vhosts)

    async def scenario() -> None:
        node = await RPCNode(dev_chain()).start()
        try:
            body = req("eth_chainId")
            status, _, reply = await http_post(node.rpc_port, body, host="evil.example.com")
            assert (status, reply) == (403, b"invalid host specified\n")
            for host in ("localhost:8545", "127.0.0.1"):
                status, _, reply = await http_post(node.rpc_port, body, host=host)
                assert status == 200 and json.loads(reply)["result"] == hex(CHAIN_ID)
        finally:
            await node.stop()

    run_checked(scenario)


def test_cors_as_geth() -> None:
    """OPTIONS was a 405 and no origin was ever granted; --http.corsdomain lists who may read replies."""
    from ethnode.rpc.endpoint import RPCHandler
    from ethnode.rpc.http import Request
    from ethnode.rpc.jsonrpc import Dispatcher

    dispatcher = Dispatcher({"web3_clientVersion": lambda: "x"})
    body = b'{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"}'

    def post(origin: str) -> Request:
        return Request("POST", "/", "HTTP/1.1", {"host": "localhost", "origin": origin,
                                                 "content-type": "application/json"}, body)

    def preflight(origin: str, method: str = "POST") -> Request:
        return Request("OPTIONS", "/", "HTTP/1.1", {"host": "localhost", "origin": origin,
                                                    "access-control-request-method": method,
                                                    "access-control-request-headers": "content-type"})

    async def scenario() -> None:
        listed = RPCHandler(dispatcher, cors=("https://app.example",))
        granted = await listed(preflight("https://app.example"))
        assert granted.status == 204 and granted.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert granted.headers["Access-Control-Allow-Methods"] == "POST"
        assert granted.headers["Access-Control-Allow-Headers"] == "content-type"
        assert granted.headers["Access-Control-Max-Age"] == "600"
        refused = await listed(preflight("https://evil.example"))
        assert refused.status == 204 and "Access-Control-Allow-Origin" not in refused.headers
        assert "Access-Control-Allow-Origin" not in (await listed(preflight("https://app.example", "PUT"))).headers
        reply = await listed(post("https://app.example"))
        assert reply.status == 200 and reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Access-Control-Allow-Origin" not in (await listed(post("https://evil.example"))).headers
        anyone = RPCHandler(dispatcher, cors=("*",))
        assert (await anyone(post("https://evil.example"))).headers["Access-Control-Allow-Origin"] == "*"
        default = RPCHandler(dispatcher)  # geth's default: no origin granted
        assert "Access-Control-Allow-Origin" not in (await default(preflight("https://app.example"))).headers

    run_checked(scenario)


@pytest.mark.parametrize("argv", [["--http.api", "eth,,admin"], []])
def test_http_flags(argv: list[str]) -> None:
    import argparse

    from ethnode.commands.flags.rpc import add_rpc_flags, http_config_from_args

    parser = argparse.ArgumentParser()
    add_rpc_flags(parser)
    assert http_config_from_args(parser.parse_args(argv)) is None  # --http not given
    cfg = http_config_from_args(parser.parse_args(["--http", *argv]))
    assert cfg is not None and (cfg.addr, cfg.port) == ("127.0.0.1", 8545)
    assert cfg.modules == (("eth", "admin") if argv else ("eth", "net", "web3"))
    assert cfg.vhosts == ("localhost",)  # geth's default, enforced
    vhosts = http_config_from_args(parser.parse_args(["--http", "--http.vhosts", "Node.Example.org, *"]))
    assert vhosts is not None and vhosts.vhosts == ("node.example.org", "*")
    assert cfg.cors == ()  # geth's default: no cross-origin page may read replies
    cors = http_config_from_args(parser.parse_args(["--http", "--http.corsdomain", "https://a.example, *"]))
    assert cors is not None and cors.cors == ("https://a.example", "*")
