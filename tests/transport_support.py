"""Plumbing for the WebSocket and IPC tests: a ``run --dev`` child with every transport on, raw
WebSocket clients (a handshake and masked frames on a bare socket, for clients that must
misbehave: sit idle, never read), and waiting on server-side state.

The child is shared by the tests that take conftest's ``dev_node`` fixture (one interpreter
start with py-evm loaded, several seconds, paid once per session).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_support import HOST, RunProcess

from ethnode.rpc.jwt import parse_secret

WS_LINE = r"WebSocket enabled +url=ws://127\.0\.0\.1:(\d+)"
HTTP_LINE = r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false"
AUTH_LINE = r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=true"
AUTH_WS_LINE = r"WebSocket enabled +url=ws://127\.0\.0\.1:(\d+)"
IPC_LINE = r"IPC endpoint opened +url=(\S+)"


@dataclass
class DevNode:
    proc: RunProcess
    datadir: Path
    http_port: int
    ws_port: int
    auth_port: int
    ipc_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}"

    @property
    def jwt_secret(self) -> bytes:
        return parse_secret((self.datadir / "ethnode" / "jwtsecret").read_text())


@contextlib.contextmanager
def running_dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    """``run --dev`` with HTTP and WebSocket on one port (both 0, as geth shares equal ports), the
    Engine API on its JWT port (HTTP and WebSocket) and IPC in the datadir."""
    pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
    datadir = tmp_path_factory.mktemp("dev")
    proc = RunProcess(["--dev", "--datadir", str(datadir), "--ws", "--ws.port", "0", "--http.port", "0",
                       "--authrpc.port", "0", "--eth.versions", "69"])
    try:
        ipc = Path(proc.wait_for_line(IPC_LINE).group(1))
        auth = int(proc.wait_for_line(AUTH_LINE).group(1))
        http = int(proc.wait_for_line(HTTP_LINE).group(1))
        ws_ports = {int(m) for m in re.findall(WS_LINE, proc.output)}
        assert ws_ports == {auth, http}, proc.output  # the Engine API's WebSocket and the public one
        yield DevNode(proc, datadir, http, http, auth, ipc)
    finally:
        code, seconds = proc.stop()
        assert code == 0 and seconds < 10, proc.output


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for server-side state the test cannot be told about (a task finishing its cleanup)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class RawWebSocket:
    """A WebSocket client on a bare socket: it reads only when told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, head: str) -> None:
        self.reader, self.writer, self.status, self.head = reader, writer, status, head

    @classmethod
    async def connect(cls, port: int, headers: dict[str, str] | None = None, host: str = HOST) -> RawWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET / HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        return cls(reader, writer, int(head.split()[1]), head)

    async def body(self) -> bytes:
        """The body of a refusal (the handshake's answer was not 101)."""
        length = re.search(r"(?i)content-length: (\d+)", self.head)
        return await self.reader.readexactly(int(length.group(1))) if length else await self.reader.read()

    def send(self, obj: Any) -> None:
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        if len(payload) < 126:
            header = bytes([0x81, 0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + len(payload).to_bytes(8, "big")
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def recv(self) -> Any:
        """The next text frame, decoded (control frames skipped)."""
        while True:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            data = await self.reader.readexactly(length)
            if first & 0x0F == 0x1:
                return json.loads(data)
            if first & 0x0F == 0x8:
                raise ConnectionError("closed by the server")

    def close(self) -> None:
        self.writer.close()


__all__ = ["DevNode", "running_dev_node", "eventually", "RawWebSocket", "HOST"]
