"""JSON-RPC over IPC: a stream of JSON values on a unix socket, mode 0600, gone after stop; the same
dispatcher as HTTP (depth-bounded parsing, batches) plus subscriptions; web3.py's IPCProvider
against a ``run --dev`` child, which serves every API there as geth does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from p2p_support import run_checked
from rpc_support import RPCNode, build_block, dev_chain, http_post
from transport_support import DevNode

from ethnode.commands.flags.rpc import add_rpc_flags, check_ipc_flags, ipc_config_from_args
from ethnode.node.rpcstack import IPCConfig, ipc_endpoint
from ethnode.rpc.ipc import IPCServer, JSONStream, JSONStreamError
from ethnode.rpc.jsonrpc import Dispatcher

TIMEOUT = 30.0


def req(method: str, *params: Any, rid: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}).encode()


def test_the_stream_is_cut_into_values_without_parsing_them() -> None:
    stream = JSONStream()
    text = b'{"a":"x}\\"]{"}\n[1,[2],{"b":"]"}]{"c":1}'
    assert stream.feed(text) == [b'{"a":"x}\\"]{"}', b'[1,[2],{"b":"]"}]', b'{"c":1}']
    one_by_one = JSONStream()  # every chunk boundary, inside strings and escapes too
    got = [value for i in range(len(text)) for value in one_by_one.feed(text[i:i + 1])]
    assert got == stream.feed(b"") + [b'{"a":"x}\\"]{"}', b'[1,[2],{"b":"]"}]', b'{"c":1}']
    deep = JSONStream()
    assert deep.feed(b"[" * 100_000 + b"]" * 100_000) == [b"[" * 100_000 + b"]" * 100_000]  # no recursion here
    garbage = JSONStream()
    assert garbage.feed(b'{"ok":1} hello {"x":1}') == [b'{"ok":1}', b'hello {"x":1}'] and garbage.broken
    assert garbage.feed(b"{}") == []  # nothing after garbage
    small = JSONStream(limit=10)
    with pytest.raises(JSONStreamError):
        small.feed(b'{"a":"' + b"x" * 20)


def _short_path(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    if len(os.fsencode(path)) > 100:  # a unix socket path holds 107 bytes
        pytest.skip("temporary directory path too long for a unix socket")
    return path


def test_the_socket_is_private_and_removed_on_stop(tmp_path: Path) -> None:
    path = _short_path(tmp_path / "sub", "x.ipc")

    async def scenario() -> None:
        path.parent.mkdir()
        path.write_text("leftover of a crashed run")
        server = IPCServer(Dispatcher({"ping": lambda: "pong"}), path)
        await server.start()
        try:
            assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
            reader, writer = await asyncio.open_unix_connection(path)
            # two calls in one write, no separator; one split over writes; a batch; depth-bounded parsing
            writer.write(req("ping", rid=1) + req("ping", rid=2))
            replies = [json.loads(await reader.readline()) for _ in range(2)]
            assert sorted(r["id"] for r in replies) == [1, 2] and {r["result"] for r in replies} == {"pong"}
            call = req("ping", rid=3)
            writer.write(call[:10])
            await writer.drain()
            writer.write(call[10:] + b"\n")
            assert json.loads(await reader.readline())["id"] == 3
            writer.write(b"[" + req("ping", rid=4) + b"," + req("nope", rid=5) + b"]")
            batch = json.loads(await reader.readline())
            assert batch[0]["result"] == "pong" and batch[1]["error"]["code"] == -32601
            writer.write(b"[" * 100_000 + b"]" * 100_000)
            assert json.loads(await reader.readline())["error"] == {"code": -32700, "message": "parse error"}
            writer.write(req("ping", rid=6))  # the stream is still in step
            assert json.loads(await reader.readline())["id"] == 6
            # not JSON: a parse error, then the connection ends (the stream cannot be resynchronised)
            writer.write(b"hello\n")
            assert json.loads(await reader.readline())["error"]["code"] == -32700
            assert await reader.read() == b""
            writer.close()
            # a request sent just before the client closes its side is still answered
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(req("ping", rid=7))
            writer.write_eof()
            assert json.loads(await reader.readline())["id"] == 7
            writer.close()
        finally:
            await server.stop()
        assert not path.exists()

    run_checked(scenario, timeout=TIMEOUT)


def test_subscriptions_over_ipc(tmp_path: Path) -> None:
    path = _short_path(tmp_path, "n.ipc")
    chain = dev_chain()

    async def scenario() -> None:
        node = await RPCNode(chain, ipc=path, modules=("eth",)).start()
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(req("eth_subscribe", "newHeads"))
            sub = json.loads(await reader.readline())["result"]
            block = build_block(chain, [])
            note = json.loads(await reader.readline())
            assert note["method"] == "eth_subscription" and note["params"]["subscription"] == sub
            assert note["params"]["result"]["hash"] == "0x" + block.hash.hex()
            # IPC serves every namespace; HTTP only those of --http.api
            writer.write(req("web3_clientVersion", rid=2))
            assert json.loads(await reader.readline())["result"].startswith("ethnode")
            _, _, body = await http_post(node.rpc_port, json.loads(req("web3_clientVersion")))
            assert json.loads(body)["error"]["code"] == -32601
            writer.close()
        finally:
            await node.stop()
        assert not path.exists()

    run_checked(scenario, timeout=TIMEOUT)


def test_ipc_flags_and_paths(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_rpc_flags(parser)
    assert ipc_config_from_args(parser.parse_args([])) == IPCConfig("ethnode.ipc", explicit=False)
    assert ipc_config_from_args(parser.parse_args(["--ipcdisable"])) is None
    assert ipc_config_from_args(parser.parse_args(["--ipcpath", "/x/y.ipc"])) == IPCConfig("/x/y.ipc", explicit=True)
    assert check_ipc_flags(parser.parse_args(["--ipcdisable", "--ipcpath", "a"])) == (
        "flags --ipcdisable, --ipcpath can't be used at the same time")
    assert ipc_endpoint("ethnode.ipc", tmp_path) == tmp_path / "ethnode.ipc"  # geth: a bare name in the datadir
    assert ipc_endpoint("ethnode.ipc", None).parent == Path(os.environ.get("TMPDIR", "/tmp"))  # type: ignore[union-attr]
    assert ipc_endpoint("/run/node.ipc", tmp_path) == Path("/run/node.ipc")


@pytest.mark.subprocess
def test_web3_ipc_provider_against_a_dev_node(dev_node: DevNode) -> None:
    from web3 import IPCProvider, Web3

    path = dev_node.ipc_path
    assert path == dev_node.datadir / "ethnode.ipc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    w3 = Web3(IPCProvider(str(path), timeout=10))
    assert w3.is_connected()
    assert w3.eth.chain_id == 1337
    head = w3.eth.get_block("latest")
    assert w3.eth.block_number == head["number"]
    assert w3.eth.get_block(head["number"])["hash"] == head["hash"]
    # geth serves every API over IPC, the Engine API included: the socket is the owner's only
    capabilities = w3.provider.make_request("engine_exchangeCapabilities", [[]])["result"]  # type: ignore[arg-type]
    assert "engine_forkchoiceUpdatedV3" in capabilities
    assert w3.provider.make_request("admin_nodeInfo", [])["result"]["name"].startswith("ethnode")  # type: ignore
