"""JSON-RPC over WebSocket (geth rpc/websocket.go, node/rpcstack.go ``NewWSHandlerStack``).

The handshake is checked the way geth checks it: with a JWT secret (the Engine API's port)
the ``Authorization`` header must carry a valid token, else 401 with geth's reason (the
only check a consensus client's WebSocket gets, as in geth: no vhosts, no CORS); then
the ``Origin`` header against ``--ws.origins`` (geth's wsHandshakeValidator): a request
without one passes (only browsers send it, and for anything else it proves nothing), one
listed (scheme, host and port each compared when the rule names them; ``*`` allows any)
passes, anything else is refused with 403. With no origins configured only
``http://localhost`` and ``http://<this host's name>`` are allowed: a page on another site
cannot script the node through the visitor's browser.

Each frame is one JSON-RPC message (a call or a batch), served by the one dispatcher on
an ``RPCConnection`` that also carries the connection's subscriptions. Frames over
``WS_READ_LIMIT`` close the connection (geth wsDefaultReadLimit). An idle connection is
pinged every ``WS_PING_INTERVAL`` and dropped if the pong does not come (geth: 30 s each).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterable, Sequence

from aiohttp import WSMsgType, web

from ethnode.rpc.conn import RPCConnection
from ethnode.rpc.jsonrpc import Dispatcher
from ethnode.rpc.jwt import JWTError, verify_authorization

log = logging.getLogger("ethnode.rpc")

WS_READ_LIMIT = 32 * 1024 * 1024  # bytes per message; geth wsDefaultReadLimit
WS_PING_INTERVAL = 30.0  # seconds; geth wsPingInterval (aiohttp waits half of it for the pong)
DEFAULT_AUTH_ORIGINS = ("localhost",)  # geth DefaultAuthOrigins: the Engine API's WebSocket
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def parse_origin(origin: str) -> tuple[str, str, str] | None:
    """(scheme, hostname, port) as geth's parseOriginURL reads an origin or a rule; None if unparsable.

    ``https://a.example:8080`` -> ("https", "a.example", "8080"); a rule without ``://`` is
    a host name, optionally with a port: ``localhost`` -> ("", "localhost", "")."""
    text = origin.lower()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if host.startswith("["):
            name, _, tail = host[1:].partition("]")
            return scheme, name, tail[1:] if tail.startswith(":") else ""
        name, _, port = host.partition(":")
        if port and not port.isdigit():
            return None
        return scheme, name, port
    head, sep, tail = text.partition(":")
    if sep and _SCHEME.fullmatch(head):  # Go reads "host:port" as scheme "host", opaque "port"
        return "", head, tail
    if sep:
        return None  # Go: "first path segment in URL cannot contain colon"
    return "", text, ""


def origin_rule_allows(rule: str, origin: str) -> bool:
    """geth ruleAllowsOrigin: the parts the rule names must match."""
    allowed, browser = parse_origin(rule), parse_origin(origin)
    if allowed is None or browser is None:
        return False
    return all(not want or want == got for want, got in zip(allowed, browser, strict=True))


class OriginCheck:
    """geth wsHandshakeValidator over ``--ws.origins``."""

    def __init__(self, origins: Iterable[str]) -> None:
        given = [o for o in origins if o]
        self.any = "*" in given
        self.rules = tuple(given) or ("http://localhost", "http://" + socket.gethostname())

    def __call__(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser
        return self.any or any(origin_rule_allows(rule, origin) for rule in self.rules)


class _WSTransport:
    def __init__(self, ws: web.WebSocketResponse, request: web.BaseRequest) -> None:
        self.ws, self.request = ws, request

    async def messages(self) -> AsyncIterator[bytes | str]:
        async for msg in self.ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                yield msg.data
            elif msg.type == WSMsgType.ERROR:  # a frame over the read limit, a protocol error
                return

    async def send(self, data: bytes) -> None:
        await self.ws.send_frame(data, WSMsgType.TEXT)  # geth writes text frames

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        await asyncio.wait_for(self.ws.close(), 2.0)


class WebSocketHandler:
    """The upgrade handler an ``HTTPServer`` calls for handshakes (``ws_handler``)."""

    def __init__(self, dispatcher: Dispatcher, origins: Sequence[str] = (), jwt_secret: bytes | None = None, *,
                 read_limit: int = WS_READ_LIMIT) -> None:
        self.dispatcher = dispatcher
        self.origin_allowed = OriginCheck(origins)
        self.jwt_secret = jwt_secret
        self.read_limit = read_limit
        self.connections: set[RPCConnection] = set()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.jwt_secret is not None:
            try:
                verify_authorization(request.headers.get("Authorization"), self.jwt_secret)
            except JWTError as exc:
                return web.Response(status=401, text=f"{exc}\n")
        origin = request.headers.get("Origin")
        if not self.origin_allowed(origin):
            log.warning("Rejected WebSocket connection origin=%s", origin.lower() if origin else origin)
            return web.Response(status=403, text="Forbidden\n")  # gorilla's reply to a failed CheckOrigin
        ws = web.WebSocketResponse(max_msg_size=self.read_limit, heartbeat=WS_PING_INTERVAL, compress=False)
        try:
            await ws.prepare(request)
        except web.HTTPException as exc:  # not a valid handshake (version, key)
            return web.Response(status=exc.status, text=f"{exc.reason}\n")
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        conn = RPCConnection(self.dispatcher, _WSTransport(ws, request), "ws", remote)
        self.connections.add(conn)
        try:
            await conn.serve()
        finally:
            self.connections.discard(conn)
        return ws

    def close_all(self) -> None:
        """Drop every connection (the server is stopping)."""
        for conn in list(self.connections):
            conn.abort(None)


__all__ = ["WebSocketHandler", "OriginCheck", "parse_origin", "origin_rule_allows", "WS_READ_LIMIT",
           "WS_PING_INTERVAL", "DEFAULT_AUTH_ORIGINS"]
