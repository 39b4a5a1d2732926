"""The public JSON-RPC endpoint over HTTP (geth ``--http``), as a Node service.

It reuses the stdlib HTTP/1.1 server the Engine API runs on (``ethnode.rpc.http``): the
load is a few clients on loopback, and a third-party web server would add an install
for no gain. Every service built before it offers ``API`` objects from ``apis()``; this
service adds the node's own (``web3``, ``net``, ``admin``), keeps the namespaces listed in
``--http.api`` (default ``eth,net,web3``: ``admin`` and ``txpool`` must be asked for, as in
geth) and never serves an ``authenticated`` API (the Engine API stays on its JWT port). A
method of a namespace left out answers -32601 "the method X does not exist/is not
available", exactly like an unknown one.

Requests: POST with a JSON content type (415 otherwise), single calls and batches (up
to 1000, geth's limit); an empty GET answers 200 for health checks. No CORS, no virtual
host check, no WebSocket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.ethapi.admin import AdminAPI
from ethnode.ethapi.net import NetAPI
from ethnode.ethapi.web3 import Web3API
from ethnode.node.lifecycle import ServiceContext
from ethnode.p2p.peer import default_client_id
from ethnode.rpc.api import API, methods_of
from ethnode.rpc.http import HTTPEndpoint, HTTPServer, Request, Response
from ethnode.rpc.jsonrpc import Dispatcher

log = logging.getLogger("ethnode.rpc")

DEFAULT_HTTP_ADDR = "127.0.0.1"  # geth --http.addr default
DEFAULT_HTTP_PORT = 8545  # geth --http.port default
DEFAULT_HTTP_MODULES = ("eth", "net", "web3")  # geth --http.api default
JSON_CONTENT_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")  # geth's accepted


class RPCServiceError(EthnodeError):
    """The HTTP endpoint cannot start (port in use); one line for the user."""


@dataclass
class HTTPConfig:
    addr: str = DEFAULT_HTTP_ADDR
    port: int = DEFAULT_HTTP_PORT
    modules: tuple[str, ...] = DEFAULT_HTTP_MODULES


def collect_methods(apis: Iterable[API], modules: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """The methods of the public APIs whose namespace is listed (geth node.RegisterApis)."""
    apis = [a for a in apis if not a.authenticated]
    available = sorted({a.namespace for a in apis})
    unavailable = [m for m in modules if m not in available]
    if unavailable:
        log.error("Unavailable modules in HTTP API list unavailable=%s available=%s", unavailable, available)
    allowed = set(modules)
    methods: dict[str, Callable[..., Any]] = {}
    for api in apis:
        if api.namespace in allowed:
            methods.update(methods_of(api))
    return methods


class HTTPRPCServer(HTTPEndpoint):
    """JSON-RPC over plain HTTP on ``host:port`` (port 0: any free port)."""

    def __init__(self, methods: dict[str, Callable[..., Any]], host: str = DEFAULT_HTTP_ADDR,
                 port: int = DEFAULT_HTTP_PORT) -> None:
        self.dispatcher = Dispatcher(methods)
        self.http = HTTPServer(self._handle, host, port, name="http-rpc")

    def started(self) -> None:
        log.info("HTTP server started endpoint=%s:%d auth=false prefix= cors= vhosts=localhost",
                 self.http.host, self.http.port)

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET" and not request.body:
            return Response(200)  # geth answers an empty GET with 200 (health checks)
        if request.method != "POST":
            return Response.text(405, "method not allowed")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_CONTENT_TYPES:
            return Response.text(415, f"invalid content type, only {JSON_CONTENT_TYPES[0]} is supported")
        reply = await self.dispatcher.handle(request.body)
        return Response(200, reply or b"", {"Content-Type": "application/json"})


class RPCService:
    """The ``--http`` endpoint as a Node service; register it after the services it serves.

    ``p2p`` returns the node's running p2p Server (it is created after the services are
    built, so it is looked up when needed, not at construction).
    """

    def __init__(self, ctx: ServiceContext, config: HTTPConfig, p2p: Callable[[], Any]) -> None:
        self.ctx = ctx
        self.config = config
        self._p2p = p2p
        self.server: HTTPRPCServer | None = None

    def _eth(self) -> Any:
        for svc in self.ctx.services.values():
            if hasattr(svc, "network_id") and hasattr(svc, "chain"):
                return svc
        return None

    def _client_version(self) -> str:
        server = self._p2p()
        return server.client_id if server is not None else default_client_id(self.ctx.config.identity)

    def _network_id(self) -> int | None:
        eth = self._eth()
        return None if eth is None else eth.network_id  # type: ignore[no-any-return]

    def protocols(self) -> list[Any]:
        return []

    def apis(self) -> list[API]:
        return [
            API("web3", Web3API(self._client_version)),
            API("net", NetAPI(self._p2p, self._network_id)),
            API("admin", AdminAPI(self._p2p, self._eth)),
        ]

    def all_apis(self) -> list[API]:
        apis = list(self.apis())
        for svc in self.ctx.services.values():
            if svc is self:
                continue
            apis += [a for a in svc.apis() if isinstance(a, API)]
        return apis

    async def start(self) -> None:
        cfg = self.config
        server = HTTPRPCServer(collect_methods(self.all_apis(), cfg.modules), cfg.addr, cfg.port)
        try:
            await server.start()
        except OSError as exc:
            raise RPCServiceError(f"could not start HTTP RPC on {cfg.addr}:{cfg.port}: {exc.strerror or exc}") \
                from None
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


__all__ = [
    "RPCService", "HTTPRPCServer", "HTTPConfig", "RPCServiceError", "collect_methods", "DEFAULT_HTTP_ADDR",
    "DEFAULT_HTTP_PORT", "DEFAULT_HTTP_MODULES",
]
