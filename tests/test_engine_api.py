"""Engine API: HS256 JWT accept/reject as geth's node/jwt_handler.go, forkchoiceUpdated moving the
head over real HTTP, and the Ethereum service wiring (chain from the datadir, generated secret)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chain_support import open_chain
from eth_support import ETHTEST_HEAD, ethtest_blocks, ethtest_chain, genesis_json
from p2p_support import run_checked
from shared_support import shared_path

from ethnode.commands.flags.eth import (
    add_eth_flags,
    authrpc_config_from_args,
    eth_config_from_args,
    eth_service_constructor,
    parse_versions,
)
from ethnode.core.blockchain import setup_genesis
from ethnode.core.events import ChainHeadEvent
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import open_database
from ethnode.eth.catalyst import service as catalyst
from ethnode.eth.catalyst.api import EngineAPI
from ethnode.eth.catalyst.service import CatalystService
from ethnode.eth.service import EthereumService, EthServiceError
from ethnode.event import EventBus
from ethnode.node import Node, NodeConfig
from ethnode.rpc.endpoint import RPCServer
from ethnode.rpc.jwt import (
    JWTError,
    JWTSecretError,
    load_or_create_secret,
    make_token,
    parse_secret,
    verify_authorization,
)

SECRET = bytes.fromhex("7365637265747365637265747365637265747365637265747365637265747365")


# --- JWT ---------------------------------------------------------------------------------------


def test_jwt_accepts_hs256_within_60_seconds() -> None:
    now = time.time()
    for iat in (now, now - 59, now + 59):
        verify_authorization("Bearer " + make_token(SECRET, iat), SECRET, now)
    verify_authorization("bearer " + make_token(SECRET, now), SECRET, now)  # scheme is case-insensitive
    verify_authorization("Bearer " + make_token(SECRET, now, claims={"exp": now + 10}), SECRET, now)


def _bearer(**kwargs: Any) -> Callable[[float], str]:
    """A header built at test time (tokens carry the time they were made)."""
    secret = kwargs.pop("secret", SECRET)
    offset = kwargs.pop("offset", 0)
    return lambda now: "Bearer " + make_token(secret, now + offset, **kwargs)


def _raw_token(secret: bytes, claims_json: str) -> str:
    """A correctly signed token whose claims are exactly ``claims_json`` (for non-standard numbers)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(claims_json.encode())
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing token"),
        ("", "missing token"),
        ("Basic abc", "missing token"),
        ("Bearer ", "missing token"),
        ("Bearer a.b", "invalid number of segments"),
        (_bearer(secret=b"\x01" * 32), "signature is invalid"),
        (_bearer(alg="none"), "signing method none is invalid"),
        (_bearer(alg="HS512"), "signing method HS512 is invalid"),
        (_bearer(offset=-61), "stale token"),
        (_bearer(offset=61), "future token"),
        (_bearer(claims={"exp": 1}), "token is expired"),
        (_bearer(claims={"iat": None}), "missing issued-at"),
        (_bearer(claims={"iat": "now"}), "not a number"),
        ("Bearer !!.??.**", "malformed"),
        # NaN, infinities and out-of-range floats compare false both ways in the 60 s window:
        # accepted forever before; geth's decoder refuses them.
        (_bearer(claims={"iat": float("nan")}), "malformed"),
        (_bearer(claims={"iat": float("inf")}), "malformed"),
        (lambda now: "Bearer " + _raw_token(SECRET, '{"iat":1e400}'), "malformed"),
        (lambda now: "Bearer " + _raw_token(SECRET, f'{{"iat":{int(now)},"exp":NaN}}'), "malformed"),
    ],
)
def test_jwt_rejections(header: Any, message: str) -> None:
    now = time.time()
    value = header(now) if callable(header) else header
    with pytest.raises(JWTError, match=message):
        verify_authorization(value, SECRET, now)


def test_jwt_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "inst" / "jwtsecret"
    secret = load_or_create_secret(path)  # created, like geth, as 0x-hex with mode 0600
    assert len(secret) == 32 and path.read_text() == "0x" + secret.hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    assert parse_secret("  " + SECRET.hex() + "\n") == SECRET
    assert parse_secret("0x" + SECRET.hex()) == SECRET
    for bad in ("0x1234", "zz" * 32, SECRET.hex() + "00"):
        with pytest.raises(JWTSecretError):
            parse_secret(bad)
    bad_file = tmp_path / "bad"
    bad_file.write_text("0x1234")
    with pytest.raises(JWTSecretError, match="32"):
        load_or_create_secret(bad_file)


# --- HTTP ------------------------------------------------------------------------------------------


async def http(port: int, method: str = "POST", body: Any = None, *, token: str | None = "auto",
               ctype: str = "application/json", reader_writer: Any = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request (on a kept-alive connection when ``reader_writer`` is given)."""
    reader, writer = reader_writer or await asyncio.open_connection("127.0.0.1", port)
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = [f"{method} / HTTP/1.1", "Host: localhost", f"Content-Length: {len(data)}", f"Content-Type: {ctype}"]
    if token == "auto":
        token = make_token(SECRET)
    if token is not None:
        headers.append(f"Authorization: Bearer {token}")
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + data)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    payload = await reader.readexactly(length)
    if reader_writer is None:
        writer.close()
    return int(status_line.split()[1]), payload


def fcu(head: bytes, safe: bytes | None = None, finalized: bytes | None = None, version: int = 3) -> dict[str, Any]:
    state = {"headBlockHash": "0x" + head.hex(), "safeBlockHash": "0x" + (safe or head).hex(),
             "finalizedBlockHash": "0x" + (finalized if finalized is not None else head).hex()}
    return {"jsonrpc": "2.0", "id": 7, "method": f"engine_forkchoiceUpdatedV{version}", "params": [state, None]}


def test_forkchoice_updated_moves_the_head_over_authenticated_http() -> None:
    async def scenario() -> None:
        chain = ethtest_chain(600)
        bus = EventBus()
        chain.events = bus
        heads = bus.subscribe(ChainHeadEvent)
        server = RPCServer(EngineAPI(chain).methods(), "127.0.0.1", 0, jwt_secret=SECRET)
        await server.start()
        try:
            port = server.port
            h300 = chain.get_canonical_hash(300)
            status, body = await http(port, body=fcu(h300, finalized=chain.get_canonical_hash(250), version=1))
            reply = json.loads(body)
            assert status == 200 and reply["id"] == 7
            assert reply["result"] == {"payloadStatus": {"status": "VALID", "latestValidHash": "0x" + h300.hex(),
                                                         "validationError": None}, "payloadId": None}
            assert chain.current_block.number == 300
            assert (await asyncio.wait_for(heads.get(), 5)).header.number == 300
            # geth's own call from the eth-test suite (../shared/chains/ethtest/headfcu.json) restores 600.
            call = shared_path("chains", "ethtest", "headfcu.json").read_bytes()
            reader_writer = await asyncio.open_connection("127.0.0.1", port)
            status, body = await http(port, body=call, reader_writer=reader_writer)
            assert status == 200 and json.loads(body)["result"]["payloadStatus"]["status"] == "VALID"
            assert chain.current_block.hash == ETHTEST_HEAD
            # Same connection (keep-alive): unknown head -> SYNCING, zero head -> INVALID, no head move.
            status, body = await http(port, body=fcu(b"\x09" * 32), reader_writer=reader_writer)
            assert json.loads(body)["result"]["payloadStatus"] == {"status": "SYNCING", "latestValidHash": None,
                                                                   "validationError": None}
            status, body = await http(port, body=fcu(bytes(32), version=2), reader_writer=reader_writer)
            assert json.loads(body)["result"]["payloadStatus"]["status"] == "INVALID"
            reader_writer[1].close()
            assert chain.current_block.hash == ETHTEST_HEAD
            # A finalized block off the canonical chain is an invalid forkchoice state.
            _, body = await http(port, body=fcu(ETHTEST_HEAD, finalized=b"\x05" * 32))
            assert json.loads(body)["error"]["code"] == -38002
            # Batch, unknown method, bad params.
            _, body = await http(port, body=[fcu(ETHTEST_HEAD), {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
                                              {"jsonrpc": "2.0", "id": 3, "method": "engine_forkchoiceUpdatedV3",
                                               "params": [{"headBlockHash": "0x12"}]}])
            replies = json.loads(body)
            assert replies[0]["result"]["payloadStatus"]["status"] == "VALID"
            assert replies[1]["error"]["code"] == -32601 and replies[2]["error"]["code"] == -32602
            _, body = await http(port, body=b"{not json")
            assert json.loads(body)["error"]["code"] == -32700
            _, body = await http(port, body={"jsonrpc": "2.0", "id": 1, "method": "engine_exchangeCapabilities",
                                             "params": [[]]})
            assert "engine_forkchoiceUpdatedV3" in json.loads(body)["result"]
        finally:
            heads.unsubscribe()
            await server.stop()

    run_checked(scenario)


def test_http_auth_and_request_rules() -> None:
    async def scenario() -> None:
        server = RPCServer(EngineAPI(ethtest_chain(0)).methods(), "127.0.0.1", 0, jwt_secret=SECRET)
        await server.start()
        try:
            port = server.port
            assert (await http(port, body=fcu(ETHTEST_HEAD), token=None)) == (401, b"missing token\n")
            status, body = await http(port, body=fcu(ETHTEST_HEAD), token=make_token(SECRET, time.time() - 120))
            assert (status, body) == (401, b"stale token\n")
            status, _ = await http(port, body=fcu(ETHTEST_HEAD), token=make_token(b"\x02" * 32))
            assert status == 401
            assert (await http(port, "GET"))[0] == 200
            assert (await http(port, "PUT", body={}))[0] == 405
            assert (await http(port, body=fcu(ETHTEST_HEAD), ctype="text/plain"))[0] == 415
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n")
            assert (await reader.readline()).split()[1] == b"413"
            writer.close()
        finally:
            await server.stop()

    run_checked(scenario)


def test_public_and_authenticated_servers_share_one_handler() -> None:
    """The --http endpoint and the Engine API's are one RPCServer: the same request rules, JWT only on one."""

    async def scenario() -> None:
        methods = {"web3_clientVersion": lambda: "ethnode/test"}
        public = RPCServer(methods, "127.0.0.1", 0)
        auth = RPCServer(methods, "127.0.0.1", 0, jwt_secret=SECRET)
        await public.start()
        await auth.start()
        try:
            call = {"jsonrpc": "2.0", "id": 1, "method": "web3_clientVersion"}
            for token in (None, "auto", "not.a.token"):  # the public server never looks at a token
                status, body = await http(public.port, body=call, token=token)
                assert status == 200 and json.loads(body)["result"] == "ethnode/test"
            assert (await http(auth.port, body=call, token=None)) == (401, b"missing token\n")
            assert json.loads((await http(auth.port, body=call))[1])["result"] == "ethnode/test"
            for server in (public, auth):
                assert (await http(server.port, "GET"))[0] == 200
                assert (await http(server.port, "PUT", body={}))[0] == 405
                assert (await http(server.port, body=call, ctype="text/plain"))[0] == 415
                assert (await http(server.port, body=call, ctype="application/json-rpc; charset=utf-8"))[0] == 200
            assert not public.authenticated and auth.authenticated
        finally:
            await auth.stop()
            await public.stop()

    run_checked(scenario)


# --- the service -----------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_eth_flags(parser)
    return parser.parse_args(list(argv))


def test_flags() -> None:
    args = _args()
    assert args.eth_versions is None and args.networkid is None  # not given: the defaults apply
    assert eth_config_from_args(args).versions == (72, 71, 70, 69, 68)
    assert (args.authrpc_addr, args.authrpc_port, args.authrpc_jwtsecret) == ("127.0.0.1", 8551, None)
    args = _args("--networkid", "5", "--eth.versions", "68", "--authrpc.port", "0", "--authrpc.jwtsecret", "/x")
    assert (args.networkid, args.eth_versions, args.authrpc_port) == (5, (68,), 0)
    assert parse_versions("eth/69, 68") == (69, 68) and parse_versions("none") == ()
    assert eth_service_constructor(_args("--eth.versions", "none")) is None
    for bad in (["--eth.versions", "67"], ["--networkid", "0"], ["--authrpc.port", "70000"]):
        with pytest.raises(SystemExit):
            _args(*bad)


def _init_datadir(datadir: Path, blocks: int) -> None:
    obj = genesis_json()
    db = open_database(datadir)
    try:
        setup_genesis(db, Genesis.from_json(obj), obj)
        chain = open_chain(db, verify_senders=False)
        chain._state_root_warned = True
        chain.insert_chain(ethtest_blocks()[:blocks])
    finally:
        db.close()


def test_the_service_chain_posts_on_the_nodes_bus() -> None:
    """A head the Engine API moves reaches the node's bus once, from the chain itself."""

    async def scenario() -> None:
        chain = ethtest_chain(30)  # built before any node: it posts nowhere yet
        refused = Node(NodeConfig())
        refused.register(lambda ctx: EthereumService(ctx, chain=chain))
        with pytest.raises(ValueError, match="post its events on the node's bus"):
            await refused.start()
        bus = EventBus()
        chain.events = bus
        node = Node(NodeConfig(), bus=bus)
        node.register(lambda ctx: EthereumService(ctx, chain=chain))
        await node.start()
        heads = bus.subscribe(ChainHeadEvent)
        try:
            svc = node.services[EthereumService]
            assert isinstance(svc, EthereumService)
            h20 = chain.get_canonical_hash(20)
            assert h20 is not None
            reply = EngineAPI(svc.chain).forkchoice_updated_v3(fcu(h20)["params"][0])
            assert reply["payloadStatus"]["status"] == "VALID"
            assert heads.queue.qsize() == 1  # posted once, synchronously, by the chain
            assert (await asyncio.wait_for(heads.get(), 5)).header.hash == h20
        finally:
            heads.unsubscribe()
            await node.stop()

    run_checked(scenario)


def test_ethereum_service_in_a_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        empty = Node(NodeConfig(datadir=tmp_path / "empty"))
        constructor = eth_service_constructor(_args("--authrpc.port", "0"))
        assert constructor is not None
        empty.register(constructor)
        with pytest.raises(EthServiceError, match="no chain in .*run `ethnode-fast init GENESIS.json"):
            await empty.start()

        datadir = tmp_path / "full"
        _init_datadir(datadir, 30)
        node = Node(NodeConfig(datadir=datadir))
        args = _args("--authrpc.port", "0", "--networkid", "77")
        node.register(eth_service_constructor(args))  # type: ignore[arg-type]
        catalyst.register(node, authrpc_config_from_args(args))  # as `run` wires it
        await node.start()
        try:
            svc, engine = node.services.values()
            assert isinstance(svc, EthereumService) and isinstance(engine, CatalystService)
            assert svc.network_id == 77 and [(p.name, p.version) for p in svc.protocols()] == [
                ("eth", 72), ("eth", 71), ("eth", 70), ("eth", 69), ("eth", 68), ("snap", 2), ("snap", 1)]
            secret = parse_secret((datadir / "ethnode" / "jwtsecret").read_text())  # generated like geth
            assert engine.server is not None
            h20 = svc.chain.get_canonical_hash(20)
            token = make_token(secret)
            body = json.dumps(fcu(h20)).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", engine.server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\n"
                         + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            response = await reader.read()
            writer.close()
            assert b"200 OK" in response and b'"VALID"' in response
            assert svc.chain.current_block.number == 20
        finally:
            await node.stop()

    run_checked(scenario)
