"""JSON-RPC over a unix socket (geth ``--ipcpath``, rpc/ipc_unix.go): a stream of JSON values each way.

geth reads IPC with a streaming JSON decoder, so requests need no separator (clients send
one per line, as web3.py does; both work here). ``JSONStream`` finds where each
top-level value ends without parsing it (brackets counted outside strings), and the body
goes to the one dispatcher, whose ``strictjson`` parse bounds the nesting depth. Anything
that does not start a JSON object or array ends the stream: what is left is handed over
as one last body, which the dispatcher answers -32700, and the connection is closed, as
geth closes a stream it cannot decode. A value larger than ``IPC_READ_LIMIT`` closes the
connection too (geth has no bound).

The socket file: parent directories created, a leftover file from an earlier run removed,
mode 0600 set before the socket listens (geth chmods after listening: a short window in
which anyone could connect), removed again on stop. Serves every API, the authenticated
Engine API included, as geth does: only the file's owner can connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from ethnode.rpc.conn import RPCConnection
from ethnode.rpc.jsonrpc import Dispatcher

log = logging.getLogger("ethnode.rpc")

IPC_READ_LIMIT = 32 * 1024 * 1024  # bytes of one request; as geth's WebSocket read limit (IPC: none)
READ_CHUNK = 64 * 1024
MAX_IPC_CONNECTIONS = 1024  # ours; geth has no bound
UNIX_PATH_MAX = 107  # bytes of a socket path on Linux (108 with the terminating NUL)
_STRUCTURE = re.compile(rb'[][{}"]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # from after an opening quote
_SPACE = b" \t\r\n"


class JSONStreamError(ValueError):
    """A JSON value in the stream is larger than the limit."""


class JSONStream:
    """Splits a byte stream into top-level JSON values (objects and arrays), unparsed."""

    def __init__(self, limit: int = IPC_READ_LIMIT) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._pos = 0  # scanned up to here within the current value
        self._depth = 0

    broken = False  # garbage was found: the last value returned is the rest of the stream, not JSON

    def feed(self, data: bytes) -> list[bytes]:
        """The values completed by ``data``; raises ``JSONStreamError`` for an oversized value."""
        if self.broken:
            return []
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        while True:
            if self._depth == 0:
                start = len(buf) - len(buf.lstrip(_SPACE))  # whitespace between values
                if start:
                    del buf[:start]
                if not buf:
                    break
                if buf[0] not in b"[{":
                    self.broken = True
                    out.append(bytes(buf))
                    buf.clear()
                    break
                self._pos = 0
            match = _STRUCTURE.search(buf, self._pos)
            if match is None:
                self._pos = len(buf)
            else:
                char = match.group()
                if char == b'"':
                    rest = _STRING_REST.match(buf, match.end())
                    if rest is None:  # the string goes on in the next chunk
                        self._pos = match.start()
                    else:
                        self._pos = rest.end()
                        continue
                else:
                    self._depth += 1 if char in b"[{" else -1
                    self._pos = match.end()
                    if self._depth == 0:
                        out.append(bytes(buf[:self._pos]))
                        del buf[:self._pos]
                        self._pos = 0
                        continue
                    continue
            if len(buf) > self.limit:
                raise JSONStreamError(f"request larger than {self.limit} bytes")
            break
        return out


class _IPCTransport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def messages(self) -> AsyncIterator[bytes | str]:
        stream = JSONStream()
        while True:
            data = await self.reader.read(READ_CHUNK)
            if not data:
                return
            try:
                values = stream.feed(data)
            except JSONStreamError as exc:
                log.debug("IPC stream refused: %s", exc)
                return
            for value in values:
                yield value
            if stream.broken:
                return

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def _bind(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, mode 0600 before it accepts anyone (geth ipcListen)."""
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise OSError(f"IPC path is longer than {UNIX_PATH_MAX} characters: {path}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o751)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a leftover of an earlier run (the datadir lock keeps a live node's away)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        os.chmod(path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class IPCServer:
    """Serve ``dispatcher`` on the unix socket at ``path``."""

    def __init__(self, dispatcher: Dispatcher, path: Path, *, max_connections: int = MAX_IPC_CONNECTIONS) -> None:
        self.dispatcher = dispatcher
        self.path = Path(path)
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._conns: dict[RPCConnection, asyncio.Task[None]] = {}

    async def start(self) -> None:
        sock = _bind(self.path)
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, limit=READ_CHUNK)
        log.info("IPC endpoint opened url=%s", self.path)

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= self.max_connections:
            writer.transport.abort()
            return
        conn = RPCConnection(self.dispatcher, _IPCTransport(reader, writer), "ipc", str(self.path))
        task = asyncio.current_task()
        assert task is not None
        self._conns[conn] = task
        try:
            await conn.serve()
        finally:
            self._conns.pop(conn, None)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._server = None
        for conn in list(self._conns):
            conn.abort(None)
        await asyncio.gather(*self._conns.values(), return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        log.info("IPC endpoint closed url=%s", self.path)


__all__ = ["IPCServer", "JSONStream", "JSONStreamError", "IPC_READ_LIMIT", "UNIX_PATH_MAX"]
