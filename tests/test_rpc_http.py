"""The HTTP transport on aiohttp: what it adds to the request rules of ``test_engine_api`` /
``test_rpc_api`` (gzip as geth's handler stack, keep-alive, ``Expect: 100-continue``, a quick
stop with idle clients, geth's header and body read deadlines against slow clients) and the
dispatcher's batch response limit.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

from p2p_support import run_checked
from rpc_support import http_post

from ethnode.rpc.endpoint import RPCServer
from ethnode.rpc.http import IDLE_TIMEOUT, READ_HEADER_TIMEOUT, READ_TIMEOUT
from ethnode.rpc.jsonrpc import Dispatcher
from ethnode.rpc.jwt import make_token

SECRET = b"\x01" * 32
CALL = b'{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"}'
METHODS = {"web3_clientVersion": lambda: "ethnode/test" * 20}


async def exchange(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, head: list[str],
                   body: bytes = CALL) -> tuple[str, dict[str, str], bytes]:
    writer.write(("\r\n".join([*head, f"Content-Length: {len(body)}"]) + "\r\n\r\n").encode() + body)
    return await read_response(reader)


async def read_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    status = (await reader.readline()).decode().strip()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


def test_gzip_keep_alive_and_expect_continue() -> None:
    async def scenario() -> None:
        public = RPCServer(METHODS)
        auth = RPCServer(METHODS, jwt_secret=SECRET)
        await public.start()
        await auth.start()
        try:
            post = ["POST / HTTP/1.1", "Host: localhost", "Content-Type: application/json"]
            reader, writer = await asyncio.open_connection("127.0.0.1", public.port)
            status, headers, body = await exchange(writer, reader, [*post, "Accept-Encoding: gzip, deflate"])
            assert status == "HTTP/1.1 200 OK" and headers["content-encoding"] == "gzip"  # geth newGzipHandler
            assert json.loads(gzip.decompress(body))["result"] == "ethnode/test" * 20
            # the same connection (keep-alive), no gzip asked: none given
            status, headers, body = await exchange(writer, reader, post)
            assert "content-encoding" not in headers and json.loads(body)["id"] == 1
            # curl's Expect: 100-continue gets its interim reply before the body is sent
            writer.write(("\r\n".join([*post, "Expect: 100-continue", f"Content-Length: {len(CALL)}"])
                          + "\r\n\r\n").encode())
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(CALL)
            assert (await read_response(reader))[0] == "HTTP/1.1 200 OK"
            writer.close()
            # the Engine API's endpoint never compresses (geth: disableGzip on the auth server)
            reader, writer = await asyncio.open_connection("127.0.0.1", auth.port)
            _, headers, body = await exchange(writer, reader, [*post, "Accept-Encoding: gzip",
                                                               f"Authorization: Bearer {make_token(SECRET)}"])
            assert "content-encoding" not in headers and json.loads(body)["result"].startswith("ethnode")
            writer.close()
            # HTTP/1.0 without keep-alive: one answer, then the close
            reader, writer = await asyncio.open_connection("127.0.0.1", public.port)
            status, _, _ = await exchange(writer, reader, ["POST / HTTP/1.0", "Host: localhost",
                                                           "Content-Type: application/json"])
            assert status.startswith("HTTP/1.") and status.endswith("200 OK") and await reader.read() == b""
            writer.close()
            # an idle kept-alive client does not hold up the stop
            reader, writer = await asyncio.open_connection("127.0.0.1", public.port)
            assert (await exchange(writer, reader, post))[0] == "HTTP/1.1 200 OK"
            start = time.monotonic()
            await public.stop()
            assert time.monotonic() - start < 1.0 and await reader.read() == b""
            writer.close()
        finally:
            await auth.stop()
            await public.stop()

    run_checked(scenario, timeout=30)


def test_a_batch_past_the_response_limit_gets_response_too_large() -> None:
    """geth handleBatch: once the replies pass BatchResponseMaxSize the calls not yet run get -32003.

    (geth counts the result's bytes, here the whole reply's: some 35 bytes more per call.)"""
    ran: list[int] = []

    def big(n: int) -> str:
        ran.append(n)
        return "x" * 100

    async def scenario() -> Any:
        dispatcher = Dispatcher({"big": big}, batch_response_size=250)
        batch = [{"jsonrpc": "2.0", "id": i, "method": "big", "params": [i]} for i in range(5)]
        batch.insert(3, {"jsonrpc": "2.0", "method": "big", "params": [99]})  # a notification: no reply owed
        return json.loads(await dispatcher.handle(json.dumps(batch).encode()) or b"null")

    replies = run_checked(scenario)
    assert ran == [0, 1]  # about 135 bytes a reply: the second crossed the limit; nothing ran after it
    assert [r["id"] for r in replies] == [0, 1, 2, 3, 4]
    assert [r.get("error") for r in replies[2:]] == [{"code": -32003, "message": "response too large"}] * 3


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends before it closes the connection (a reset counts as a close)."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


def test_a_slow_loris_is_closed_at_the_header_deadline_and_others_are_served() -> None:
    """A client trickling its headers a byte at a time is closed READ_HEADER_TIMEOUT after its
    first byte (geth's ReadHeaderTimeout, 30 s; shortened here), one trickling its body gets 408
    after READ_TIMEOUT, and neither delays anyone else."""
    assert (READ_HEADER_TIMEOUT, READ_TIMEOUT, IDLE_TIMEOUT) == (30.0, 30.0, 120.0)  # geth DefaultHTTPTimeouts
    deadline = 1.0

    async def trickle(writer: asyncio.StreamWriter, data: bytes, closed: asyncio.Task[bytes]) -> int:
        """One byte per 50 ms, as a slow-loris does, until the server closes; bytes sent."""
        for i in range(len(data)):
            if closed.done():
                return i
            writer.write(data[i:i + 1])
            await asyncio.sleep(0.05)  # the client's pace is the behaviour under test, not a wait
        return len(data)

    async def scenario() -> None:
        server = RPCServer(METHODS)
        server.http.read_header_timeout = deadline
        server.http.read_timeout = deadline
        await server.start()
        loop = asyncio.get_running_loop()
        try:
            # 1. headers that never end
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            closed = asyncio.create_task(_closed(reader))
            start = loop.time()
            slow = asyncio.create_task(trickle(writer, b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 400,
                                               closed))
            for _ in range(5):  # others are served meanwhile, at once
                t0 = loop.time()
                status, _, body = await http_post(server.port, CALL)
                assert status == 200 and json.loads(body)["result"] and loop.time() - t0 < 0.5
            assert await asyncio.wait_for(closed, 5 * deadline) == b""  # closed without a reply, as Go's server
            elapsed = loop.time() - start
            sent = await slow
            assert deadline <= elapsed < deadline + 1.5 and sent < 60, (elapsed, sent)
            writer.close()
            # 2. headers complete, the body trickles: 408 once READ_TIMEOUT passed, then the close
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            closed = asyncio.create_task(_closed(reader))
            start = loop.time()
            slow = asyncio.create_task(trickle(writer, CALL + b" " * 1000, closed))
            reply = await asyncio.wait_for(closed, 5 * deadline)
            assert reply.startswith(b"HTTP/1.1 408 ") and reply.endswith(b"request timeout\n"), reply
            assert deadline <= loop.time() - start < deadline + 1.5
            await slow
            writer.close()
            # 3. a kept-alive client that sends nothing is not a slow-loris: IDLE_TIMEOUT applies
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            status, _, _ = await exchange(writer, reader, ["POST / HTTP/1.1", "Host: localhost",
                                                           "Content-Type: application/json"])
            await asyncio.sleep(2 * deadline)  # past the header deadline, with no request begun
            assert status == "HTTP/1.1 200 OK" and not reader.at_eof()
            assert (await exchange(writer, reader, ["POST / HTTP/1.1", "Host: localhost",
                                                    "Content-Type: application/json"]))[0] == "HTTP/1.1 200 OK"
            writer.close()
        finally:
            await server.stop()

    run_checked(scenario, timeout=30)
