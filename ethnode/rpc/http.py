"""The HTTP server under every endpoint (JSON-RPC, Engine API, metrics): aiohttp's low-level server.

aiohttp does the protocol (HTTP/1.1 parsing, keep-alive, pipelining, chunked bodies,
``Expect: 100-continue``, gzip, the WebSocket upgrade); handlers here stay plain
functions from ``Request`` to ``Response`` (``ethnode.rpc.endpoint``'s rules are tested
without sockets). What this module adds, after geth's node/rpcstack.go and net/http:

- the body limit: a ``Content-Length`` over ``body_limit`` (geth's 5 MiB) is answered 413
  before a byte of the body is read, and a chunked body is cut off at the limit the same
  way; the connection is then closed;
- gzip when the client accepts it (geth's newGzipHandler; off for the Engine API, as geth);
- a connection cap: past ``max_connections`` open connections (WebSockets included) a new
  one gets 503 and is closed at once, so idle clients cannot exhaust the process's file
  descriptors (geth has no cap; the default follows the descriptor limit);
- idle keep-alive connections are closed after ``IDLE_TIMEOUT`` (geth IdleTimeout);
- slow clients: a request's headers must be complete ``READ_HEADER_TIMEOUT`` after its first
  byte and its body ``READ_TIMEOUT`` after the headers (geth ReadHeaderTimeout/ReadTimeout),
  else the connection is closed: a slow-loris client holds one connection for 30 s, not for
  as long as it trickles bytes (aiohttp alone has no header deadline);
- one upgrade hook: a WebSocket handshake goes to ``ws_handler`` (geth's httpServer
  serves HTTP and WebSocket on one port the same way, by looking at ``Upgrade``).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("ethnode.rpc")

MAX_BODY_SIZE = 5 * 1024 * 1024  # bytes; geth rpc defaultBodyLimit
MAX_HEADER_SIZE = 64 * 1024  # one header line; the request line likewise
IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may sit idle; geth IdleTimeout
READ_HEADER_TIMEOUT = 30.0  # seconds from a request's first byte to the end of its headers; geth ReadHeaderTimeout
READ_TIMEOUT = 30.0  # seconds to read a request's body once its headers are in; geth ReadTimeout
STOP_TIMEOUT = 2.0  # seconds requests in flight get to finish when the server stops (geth: 5, the whole node here)
LINGER = 2.0  # seconds spent discarding the rest of a refused body so the client reads the 413; Go: 256 KiB


def default_max_connections() -> int:
    """A quarter of the process's descriptor limit, between 128 and 4096: room for the chain's
    files, the peers and the other endpoints."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(128, min(4096, soft // 4))


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
UpgradeHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

class _ClientErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp logs every malformed request at ERROR; from the network that is noise, not a node fault."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.debug(msg, *args, exc_info=exc_info, **kwargs)


_TOO_MANY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


class _Refuse(asyncio.Protocol):
    """What a connection past the cap gets: a 503, then the close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(_TOO_MANY)  # type: ignore[attr-defined]
        transport.close()


class _SlowClientGuard(RequestHandler):
    """aiohttp's request handler with geth's header deadline: once the first byte of a request
    arrives on an otherwise idle connection, its headers have ``read_header_timeout`` seconds."""

    def __init__(self, manager: Any, *, read_header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = read_header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        busy = self._request_in_progress or bool(self._messages) or self._upgraded
        super().data_received(data)
        if not busy and self._header_timer is None and data and not self._messages and not self._upgraded:
            self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late, self._request_count)

    def _headers_late(self, count: int) -> None:
        self._header_timer = None
        if self._request_count == count and not self._request_in_progress and not self._upgraded:
            log.debug("Closing a client whose request headers took over %.0f s", self._header_timeout)
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)


class _CappedServer(web.Server):
    """aiohttp's low-level server, refusing connections past the cap with a 503.

    Counted when the protocol is made (the loop may accept several connections before any
    of them is told ``connection_made``) and released when aiohttp reports it lost."""

    def __init__(self, handler: Any, max_connections: int, read_header_timeout: float = READ_HEADER_TIMEOUT,
                 **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.read_header_timeout = read_header_timeout
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0

    def __call__(self) -> RequestHandler:
        if self.open >= self.max_connections:
            self.refused += 1
            return _Refuse()  # type: ignore[return-value]
        self.open += 1
        return _SlowClientGuard(self, loop=self._loop, read_header_timeout=self.read_header_timeout, **self._kwargs)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.open -= 1
        super().connection_lost(handler, exc)


def is_websocket(request: web.BaseRequest) -> bool:
    """geth isWebsocket: ``Upgrade: websocket`` and ``Connection`` naming upgrade."""
    return (request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
            and "upgrade" in request.headers.get(hdrs.CONNECTION, "").lower())


class HTTPServer:
    """Serve ``handler`` on ``host:port`` (port 0: any free port, see ``port`` after start)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, *, name: str = "http",
                 ws_handler: UpgradeHandler | None = None, max_connections: int | None = None,
                 body_limit: int = MAX_BODY_SIZE, gzip: bool = True, read_header_timeout: float = READ_HEADER_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT) -> None:
        self.handler = handler
        self.read_header_timeout = read_header_timeout
        self.read_timeout = read_timeout
        self.ws_handler = ws_handler
        self.host = host
        self.port = port
        self.name = name
        self.max_connections = max_connections if max_connections is not None else default_max_connections()
        self.body_limit = body_limit
        self.gzip = gzip
        self._web: _CappedServer | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._web = _CappedServer(self._serve, self.max_connections, self.read_header_timeout,
                                  keepalive_timeout=IDLE_TIMEOUT,
                                  access_log=None, max_line_size=MAX_HEADER_SIZE, max_field_size=MAX_HEADER_SIZE,
                                  lingering_time=LINGER, logger=_ClientErrorLog(log, {}))
        self._server = await asyncio.get_running_loop().create_server(self._web, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Open connections, WebSockets included."""
        return 0 if self._web is None else self._web.open

    @property
    def refused(self) -> int:
        """Connections turned away at the cap since start."""
        return 0 if self._web is None else self._web.refused

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._web is not None:
            self._web.pre_shutdown()  # idle keep-alive connections close now instead of at the timeout
            await self._web.shutdown(STOP_TIMEOUT)
            self._web = None

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.ws_handler is not None and is_websocket(request):
            return await self.ws_handler(request)
        length = request.content_length
        if length is not None and length > self.body_limit:
            return _too_large(f"content length too large ({length}>{self.body_limit})")
        if request.headers.get(hdrs.EXPECT, "").lower() == "100-continue" and request.version == HttpVersion11:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # aiohttp's default expect handler
        content = request.content
        body = bytearray(content.read_nowait())  # usually the whole body came with the headers
        if len(body) > self.body_limit:
            return _too_large(f"request body too large (>{self.body_limit})")
        try:
            if not content.at_eof():
                async with asyncio.timeout(self.read_timeout):
                    while chunk := await content.readany():
                        body += chunk
                        if len(body) > self.body_limit:
                            return _too_large(f"request body too large (>{self.body_limit})")
        except TimeoutError:  # geth ReadTimeout: the body came too slowly
            response = web.Response(status=408, text="request timeout\n")
            response.force_close()
            return response
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            response = await self.handler(Request(request.method, request.raw_path, version, headers, bytes(body)))
        except Exception:  # a bug in a handler must not kill the server
            log.exception("%s handler failed", self.name)
            response = Response.text(500, "internal server error")
        out = web.Response(status=response.status, body=response.body, headers=response.headers)
        if self.gzip and response.body and "gzip" in request.headers.get(hdrs.ACCEPT_ENCODING, ""):
            out.enable_compression(web.ContentCoding.gzip)
        return out


def _too_large(message: str) -> web.Response:
    response = web.Response(status=413, text=message + "\n")
    response.force_close()
    return response


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


__all__ = ["HTTPServer", "HTTPEndpoint", "Request", "Response", "Handler", "UpgradeHandler", "MAX_BODY_SIZE",
           "IDLE_TIMEOUT", "READ_HEADER_TIMEOUT", "READ_TIMEOUT", "default_max_connections", "is_websocket"]
