"""JSON-RPC over HTTP and WebSocket: one endpoint class for the public servers and the authenticated one.

geth runs the same rpc.Server behind both its ``--http`` endpoint and its auth endpoint
and wraps the latter in a JWT check (node/rpcstack.go); the two differ in nothing else.
Here too: ``RPCHandler`` takes the JWT secret as an option, and ``RPCServer`` is the one
endpoint class, so a rule about requests (content types, health checks, methods) is
written once and cannot drift between the Engine API and the public API. An
``RPCServer`` serves HTTP, WebSocket (``ethnode.rpc.websocket``) or both on its port, as
geth's httpServer does (``--ws.port`` equal to ``--http.port``, and the Engine API's
port, which takes both), each with its own method table.

Requests: POST with a JSON content type (415 otherwise), single calls and batches (the
dispatcher's limits); an empty GET answers 200 for health checks. With a secret, every
request (health checks included) first needs a valid ``Authorization: Bearer`` token,
else 401 with geth's reason. A request whose ``Host`` names a host outside ``vhosts`` gets
403 (geth's virtualHostHandler, its defence against DNS rebinding: a web page on any
origin can make a browser post to 127.0.0.1, but only under its own host name). CORS as
geth's ``--http.corsdomain`` (rs/cors with POST and GET, any request header, a 600 s
preflight cache): only the listed origins (``*``: any) get ``Access-Control-Allow-Origin``;
with none listed a browser page on another origin cannot read the replies. HTTP cannot
carry notifications: ``eth_subscribe`` there answers -32601 "notifications not supported".
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ethnode.rpc.http import MAX_BODY_SIZE, HTTPEndpoint, HTTPServer, Request, Response
from ethnode.rpc.jsonrpc import Dispatcher
from ethnode.rpc.jwt import JWTError, verify_authorization
from ethnode.rpc.websocket import WebSocketHandler

log = logging.getLogger("ethnode.rpc")

JSON_CONTENT_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")  # geth's accepted
DEFAULT_VHOSTS = ("localhost",)  # geth --http.vhosts and --authrpc.vhosts default
CORS_METHODS = ("POST", "GET")  # geth newCorsHandler AllowedMethods
CORS_MAX_AGE = 600  # seconds a preflight may be cached; geth MaxAge


def host_allowed(host_header: str | None, vhosts: Sequence[str]) -> bool:
    """geth virtualHostHandler: no Host, an IP literal, ``*`` or a listed name (any port) passes."""
    if not host_header:
        return True  # a browser always sends one; tools that do not are not the threat
    return _host_allowed(host_header, tuple(vhosts))


@functools.lru_cache(maxsize=256)  # clients send the same few Host values; parsing one costs ~3% of a call
def _host_allowed(host_header: str, vhosts: tuple[str, ...]) -> bool:
    host = host_header
    if host.startswith("["):  # [v6]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    allowed = {v.lower() for v in vhosts}
    return "*" in allowed or host.lower() in allowed


class RPCHandler:
    """An ``HTTPServer`` handler answering JSON-RPC with ``dispatcher``; ``jwt_secret`` turns auth on."""

    def __init__(self, dispatcher: Dispatcher, jwt_secret: bytes | None = None,
                 vhosts: Sequence[str] = DEFAULT_VHOSTS, cors: Sequence[str] = ()) -> None:
        self.dispatcher = dispatcher
        self.jwt_secret = jwt_secret
        self.vhosts = tuple(vhosts)
        self.cors = tuple(cors)

    def _allowed_origin(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        if not origin or not self.cors:
            return None
        if "*" in self.cors:
            return "*"
        return origin if origin.lower() in {c.lower() for c in self.cors} else None

    async def __call__(self, request: Request) -> Response:
        if not host_allowed(request.headers.get("host"), self.vhosts):
            return Response.text(403, "invalid host specified")
        origin = self._allowed_origin(request)
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return self._preflight(request, origin)
        response = await self._serve(request)
        if origin is not None:
            response.headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
        return response

    def _preflight(self, request: Request, origin: str | None) -> Response:
        """A browser asking whether it may post: 204, with the grant only for an allowed origin."""
        response = Response(204, b"", {"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"})
        wanted = request.headers["access-control-request-method"].upper()
        if origin is not None and wanted in CORS_METHODS:
            response.headers.update({
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": wanted,
                "Access-Control-Max-Age": str(CORS_MAX_AGE),
            })
            asked = request.headers.get("access-control-request-headers")
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked  # geth allows any header
        return response

    async def _serve(self, request: Request) -> Response:
        if self.jwt_secret is not None:
            try:
                verify_authorization(request.headers.get("authorization"), self.jwt_secret)
            except JWTError as exc:
                return Response.text(401, str(exc))
        if request.method == "GET" and not request.body:
            return Response(200)  # geth answers an empty GET with 200 (health checks)
        if request.method != "POST":
            return Response.text(405, "method not allowed")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_CONTENT_TYPES:
            return Response.text(415, f"invalid content type, only {JSON_CONTENT_TYPES[0]} is supported")
        reply = await self.dispatcher.handle(request.body)
        return Response(200, reply or b"", {"Content-Type": "application/json"})


class RPCServer(HTTPEndpoint):
    """A JSON-RPC endpoint on ``host:port`` (port 0: any free port), JWT-authenticated with ``jwt_secret``.

    ``http``: answer JSON-RPC over HTTP POST (a WebSocket-only server answers plain HTTP 404,
    as geth's). ``ws``: accept WebSocket handshakes, serving ``ws_methods`` (default:
    ``methods``) to ``ws_origins`` (``ethnode.rpc.websocket``).
    """

    def __init__(self, methods: Mapping[str, Callable[..., Any]], host: str = "127.0.0.1", port: int = 0, *,
                 jwt_secret: bytes | None = None, vhosts: Sequence[str] = DEFAULT_VHOSTS,
                 cors: Sequence[str] = (), http: bool = True, ws: bool = False,
                 ws_methods: Mapping[str, Callable[..., Any]] | None = None, ws_origins: Sequence[str] = (),
                 max_connections: int | None = None, body_limit: int = MAX_BODY_SIZE) -> None:
        dispatcher = Dispatcher(methods)
        self.jwt_secret = jwt_secret
        self.handler = RPCHandler(dispatcher, jwt_secret, vhosts, cors)
        self.serves_http = http
        self.ws: WebSocketHandler | None = None
        if ws:
            ws_dispatcher = dispatcher if ws_methods is None else Dispatcher(ws_methods)
            self.ws = WebSocketHandler(ws_dispatcher, ws_origins, jwt_secret)
        self.http = HTTPServer(self.handler if http else _not_found, host, port,
                               name="http-rpc" if jwt_secret is None else "authrpc", ws_handler=self.ws,
                               max_connections=max_connections, body_limit=body_limit,
                               gzip=jwt_secret is None)  # geth: no gzip on the auth endpoint

    @property
    def authenticated(self) -> bool:
        return self.jwt_secret is not None

    @property
    def ws_url(self) -> str:
        return "ws" + self.http.url.removeprefix("http")

    def started(self) -> None:
        if self.ws is not None:
            log.info("WebSocket enabled url=%s", self.ws_url)
        if self.serves_http:
            log.info("HTTP server started endpoint=%s:%d auth=%s prefix= cors=%s vhosts=%s",
                     self.http.host, self.http.port, "true" if self.authenticated else "false",
                     ",".join(self.handler.cors), ",".join(self.handler.vhosts))

    async def stop(self) -> None:
        if self.ws is not None:
            self.ws.close_all()
        await self.http.stop()


async def _not_found(request: Request) -> Response:
    return Response(404)


__all__ = ["RPCHandler", "RPCServer", "JSON_CONTENT_TYPES", "DEFAULT_VHOSTS", "host_allowed"]
