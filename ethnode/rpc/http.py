"""A minimal HTTP/1.1 server on asyncio streams, enough for JSON-RPC over POST.

What it does: persistent connections (HTTP/1.1 keep-alive, ``Connection: close``),
``Content-Length`` bodies up to 5 MiB (geth's defaultBodyLimit), bounded header size and
read timeouts, one request at a time per connection. What it does not: chunked request
bodies (411), pipelining beyond sequential reads, TLS. It is written for the Engine API
and small JSON-RPC loads, not as a general web server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger("ethnode.rpc")

MAX_BODY_SIZE = 5 * 1024 * 1024  # bytes; geth rpc defaultBodyLimit
MAX_HEADER_SIZE = 64 * 1024  # request line + headers
READ_HEADER_TIMEOUT = 30.0  # seconds to receive a request's head once it starts; geth ReadHeaderTimeout
IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may sit idle; geth IdleTimeout


@dataclass
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        return cls(status, (message + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer:
    """Serve ``handler`` on ``host:port`` (port 0: any free port, see ``port`` after start)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, *, name: str = "http") -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.name = name
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=MAX_HEADER_SIZE)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        self._conns.clear()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer), name=f"{self.name}-conn")
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    first = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                except (TimeoutError, ConnectionError):
                    return
                except (asyncio.LimitOverrunError, ValueError):  # readline's limit
                    await self._send(writer, Response.text(431, "request header too large"), close=True)
                    return
                if not first:
                    return  # clean close between requests
                try:
                    request = await asyncio.wait_for(self._read_request(first, reader), READ_HEADER_TIMEOUT)
                except _BadRequest as exc:
                    await self._send(writer, Response.text(exc.status, str(exc)), close=True)
                    return
                except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    return
                keep = _keep_alive(request)
                try:
                    response = await self.handler(request)
                except Exception:  # a bug in a handler must not kill the server
                    log.exception("%s handler failed", self.name)
                    response = Response.text(500, "internal server error")
                await self._send(writer, response, close=not keep)
                if not keep:
                    return
        finally:
            writer.close()

    async def _read_request(self, first: bytes, reader: asyncio.StreamReader) -> Request:
        try:
            method, target, version = first.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            raise _BadRequest(400, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise _BadRequest(505, "HTTP version not supported")
        headers: dict[str, str] = {}
        size = len(first)
        while True:
            line = await reader.readline()
            size += len(line)
            if size > MAX_HEADER_SIZE:
                raise _BadRequest(431, "request header too large")
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionError("connection closed inside the request head")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip():
                raise _BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _BadRequest(411, "chunked request bodies are not supported; send Content-Length")
        length_text = headers.get("content-length", "0")
        if not (length_text.isascii() and length_text.isdigit()):
            raise _BadRequest(400, "invalid Content-Length")
        length = int(length_text)
        if length > MAX_BODY_SIZE:
            raise _BadRequest(413, f"content length too large ({length} > {MAX_BODY_SIZE})")
        body = await reader.readexactly(length) if length else b""
        return Request(method, target, version, headers, body)

    async def _send(self, writer: asyncio.StreamWriter, response: Response, *, close: bool) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        head = [f"HTTP/1.1 {response.status} {reason}"]
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        if close:
            headers["Connection"] = "close"
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        try:
            await writer.drain()
        except ConnectionError:
            pass


def _keep_alive(request: Request) -> bool:
    conn = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return conn == "keep-alive"
    return conn != "close"


class HTTPEndpoint:
    """A node service that is one HTTP server (Engine API, JSON-RPC, metrics).

    Subclasses set ``self.http`` and say in ``started()`` what to log once it listens.
    """

    http: HTTPServer

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        return self.http.url

    def started(self) -> None:
        """Called once the server listens (log the endpoint here)."""

    async def start(self) -> None:
        await self.http.start()
        self.started()

    async def stop(self) -> None:
        await self.http.stop()


__all__ = ["HTTPServer", "HTTPEndpoint", "Request", "Response", "Handler", "MAX_BODY_SIZE"]
