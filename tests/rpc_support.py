"""Test plumbing for the RPC and metrics tests: a small proof-of-stake dev chain built in memory.

Blocks are assembled by hand (no execution here): a London chain merged from genesis, a
prefunded dev account, DynamicFeeTx transfers, and receipts written as an executing node
would store them (21000 gas per transfer). ``FakeState`` stands in for the execution
layer's StateReader.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

from chain_support import open_chain

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.types.block import Block, derive_tx_root
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.receipt import Log, Receipt, create_bloom, receipts_root
from ethnode.core.types.transaction import DynamicFeeTx, LegacyTx, Transaction
from ethnode.crypto.keys import PrivateKey

CHAIN_ID = 1337  # geth --dev's chain id
DEV_KEY = PrivateKey.from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
DEV_ADDR = bytes.fromhex("71562b71999873db5b286df957af199ec94617f7")  # DEV_KEY's address
OTHER_ADDR = bytes.fromhex("00000000000000000000000000000000000000aa")
DEV_BALANCE = 10**24
GWEI = 10**9
TRANSFER_GAS = 21000
LOG_TOPIC = b"\x11" * 32


def dev_genesis_json() -> dict[str, Any]:
    return {
        "config": {
            "chainId": CHAIN_ID, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
            "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0,
            "berlinBlock": 0, "londonBlock": 0, "terminalTotalDifficulty": 0,
        },
        "difficulty": "0x0",
        "gasLimit": "0x1c9c380",
        "baseFeePerGas": "0x3b9aca00",
        "extraData": "0x",
        "alloc": {"0x" + DEV_ADDR.hex(): {"balance": hex(DEV_BALANCE)}},
    }


def transfer(nonce: int, *, to: bytes | None = OTHER_ADDR, value: int = 1, tip: int = GWEI, fee_cap: int = 3 * GWEI,
             gas: int = TRANSFER_GAS, key: PrivateKey = DEV_KEY) -> Transaction:
    tx = DynamicFeeTx(CHAIN_ID, nonce, tip, fee_cap, gas, to, value, b"", [], 0, 0, 0)
    return tx.sign(key)


def legacy_transfer(nonce: int, gas_price: int = 2 * GWEI) -> Transaction:
    tx = LegacyTx(nonce, gas_price, TRANSFER_GAS, OTHER_ADDR, 5, b"", 0, 0, 0)
    return tx.sign(DEV_KEY, CHAIN_ID)


def _receipts(txs: Sequence[Transaction], with_logs: bool) -> list[Receipt]:
    out, cumulative = [], 0
    for i, tx in enumerate(txs):
        cumulative += TRANSFER_GAS
        logs = [Log(OTHER_ADDR, [LOG_TOPIC], bytes([i]))] if with_logs else []
        out.append(Receipt(tx.type, 1, cumulative, logs))
    return out


def build_block(chain: BlockChain, txs: Sequence[Transaction], *, with_logs: bool = True,
                store_receipts: bool = True) -> Block:
    """A valid child of the head holding ``txs``, inserted as the new head."""
    parent = chain.current_block
    receipts = _receipts(txs, with_logs)
    header = Header(
        parent_hash=parent.hash, uncle_hash=EMPTY_UNCLE_HASH, coinbase=b"\xc0" * 20, state_root=parent.state_root,
        tx_root=derive_tx_root(tx.canonical for tx in txs), receipt_root=receipts_root(receipts),
        bloom=create_bloom(receipts), difficulty=0, number=parent.number + 1, gas_limit=parent.gas_limit,
        gas_used=TRANSFER_GAS * len(txs), time=parent.time + 12, extra=b"", mix_digest=bytes(32),
        nonce=bytes(8), base_fee=calc_base_fee(chain.config, parent),
    )
    block = Block.new(header, txs)
    chain.insert_chain([block])
    if store_receipts:
        chain.write_receipts(block.hash, block.number, receipts)
    return block


def dev_chain(blocks: Sequence[Sequence[Transaction]] = ()) -> BlockChain:
    obj = json.loads(json.dumps(dev_genesis_json()))
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db)
    chain._state_root_warned = True  # no execution: the warning is noise here
    for txs in blocks:
        build_block(chain, txs)
    return chain


class FakeState:
    """A StateReader: nonce and balance per address at the head, and at older block numbers.

    The RPC asks by header for anything but the head; this stand-in files history by block
    number, so it cannot tell a side block from the canonical one (tests/test_rpc_state.py
    checks that against real executed state).
    """

    def __init__(self, chain: BlockChain, accounts: dict[bytes, tuple[int, int]] | None = None) -> None:
        self.chain = chain
        self.head: dict[bytes, tuple[int, int]] = dict(accounts or {})
        self.history: dict[int, dict[bytes, tuple[int, int]]] = {}
        self.calls: list[tuple[str, bytes, int | None]] = []

    def _at(self, what: str, address: bytes, at: Any) -> tuple[int, int] | None:
        number = None if at is None else (at if isinstance(at, int) else at.number)
        self.calls.append((what, address, number))
        accounts = self.head if number is None else self.history.get(number)
        if accounts is None:
            return None
        return accounts.get(address, (0, 0))

    def nonce(self, address: bytes, at: Any = None) -> int | None:
        got = self._at("nonce", address, at)
        return None if got is None else got[0]

    def balance(self, address: bytes, at: Any = None) -> int | None:
        got = self._at("balance", address, at)
        return None if got is None else got[1]

    def code(self, address: bytes, at: Any = None) -> bytes | None:
        return b"" if self._at("code", address, at) is not None else None


async def http_post(port: int, body: Any, *, ctype: str = "application/json", method: str = "POST",
                    path: str = "/", host: str = "localhost") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a fresh connection: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}",
                f"Content-Type: {ctype}", "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await reader.readline()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        data = await reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, data
    finally:
        writer.close()


class RPCNode:
    """A Node on loopback: p2p Server (no discovery), Ethereum service over ``chain``, HTTP RPC, monitoring."""

    def __init__(self, chain: BlockChain, *, modules: Sequence[str] = ("eth", "net", "web3"), state: Any = None,
                 metrics: bool = False, key: PrivateKey | None = None, dev_keys: Sequence[PrivateKey] = (),
                 ws: bool = False, ipc: Any = None, eth_config: Any = None) -> None:
        """``ws``: WebSocket on a port of its own; ``ipc``: the IPC socket's path (None: no IPC);
        ``eth_config``: the Ethereum service's ``EthConfig`` (default: its own default)."""
        from ethnode.commands.flags.p2p import server_factory
        from ethnode.eth.service import EthereumService
        from ethnode.ethapi.accounts import DevAccounts
        from ethnode.ethapi.backend import public_apis
        from ethnode.event import EventBus
        from ethnode.monitoring.service import MetricsConfig, MetricsService
        from ethnode.node import Node, NodeConfig
        from ethnode.node.rpcstack import HTTPConfig, IPCConfig, RPCService, WSConfig
        from ethnode.p2p.config import ServerConfig

        self.bus = EventBus()
        chain.events = self.bus  # the chain posts its head moves on this node's bus, as a node's chain does
        p2p_config = ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True)
        node_config = NodeConfig(nodekey_hex=key.to_hex() if key is not None else None)
        self.node = Node(node_config, server_factory(p2p_config, self.bus), bus=self.bus)
        self.state = state

        def eth(ctx: Any) -> Any:
            svc = EthereumService(ctx, eth_config, chain=chain)
            if state is not None:
                svc.state = state  # what the execution layer's service will provide
                svc.txpool.state = state  # and hand to its pool
            return svc

        def p2p() -> Any:
            return self.node.server

        self.node.register(eth)
        accounts = DevAccounts(dev_keys)  # what rpc_service_constructor builds from run --dev's keys
        ws_config = WSConfig(port=0, modules=tuple(modules)) if ws else None
        ipc_config = IPCConfig(str(ipc), explicit=True) if ipc is not None else None
        self.node.register(lambda ctx: RPCService(ctx, HTTPConfig(port=0, modules=tuple(modules)),
                                                  public_apis(ctx, p2p, accounts), ws=ws_config, ipc=ipc_config))
        self.node.register(lambda ctx: MetricsService(ctx, MetricsConfig(enabled=metrics, port=0), p2p))

    def service(self, kind: type) -> Any:
        return next(s for t, s in self.node.services.items() if issubclass(t, kind))

    @property
    def eth(self) -> Any:
        from ethnode.eth.service import EthereumService

        return self.service(EthereumService)

    @property
    def rpc_port(self) -> int:
        from ethnode.node.rpcstack import RPCService

        return self.service(RPCService).server.port  # type: ignore[no-any-return]

    @property
    def ws_url(self) -> str:
        from ethnode.node.rpcstack import RPCService

        return f"ws://127.0.0.1:{self.service(RPCService).ws_port}"

    @property
    def metrics_port(self) -> int:
        from ethnode.monitoring.service import MetricsService

        return self.service(MetricsService).server.port  # type: ignore[no-any-return]

    async def start(self) -> RPCNode:
        await self.node.start()
        return self

    async def stop(self) -> None:
        await self.node.stop()

    async def call(self, method: str, *params: Any) -> Any:
        """The result, or the error object."""
        status, _, body = await http_post(self.rpc_port, {"jsonrpc": "2.0", "id": 1, "method": method,
                                                          "params": list(params)})
        assert status == 200, body
        reply = json.loads(body)
        return reply["error"] if "error" in reply else reply["result"]


class ThreadedNode:
    """An RPCNode on a private event loop in a daemon thread, for synchronous clients (web3's HTTPProvider)."""

    def __init__(self, node: RPCNode, timeout: float = 10.0) -> None:
        self.node = node
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rpc-node", daemon=True)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    def __enter__(self) -> ThreadedNode:
        self.thread.start()
        self.run(self.node.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.node.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(self.timeout)
            self.loop.close()
