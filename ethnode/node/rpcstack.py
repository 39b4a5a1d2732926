"""The public JSON-RPC endpoint over HTTP (geth ``--http``, node/rpcstack.go), as a Node service.

It reuses the stdlib HTTP/1.1 server the Engine API runs on (``ethnode.rpc``): the load
is a few clients on loopback, and a third-party web server would add an install for no
gain. Every service built before it offers ``API`` objects from ``apis()``; whoever
builds the node adds the namespaces no service owns (the command line passes the node's
``web3``, ``net``, ``admin`` and the eth namespaces from ``ethnode.ethapi``), so the node
container serves JSON-RPC without knowing what any namespace answers. It keeps the
namespaces listed in ``--http.api`` (default ``eth,net,web3``: ``admin`` and ``txpool``
must be asked for, as in geth) and never serves an ``authenticated`` API (the Engine API
stays on its JWT port). A method of a namespace left out answers -32601 "the method X
does not exist/is not available", exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ethnode.errors import EthnodeError
from ethnode.node.lifecycle import ServiceContext
from ethnode.rpc.api import API, collect_methods
from ethnode.rpc.endpoint import DEFAULT_VHOSTS, RPCServer

DEFAULT_HTTP_ADDR = "127.0.0.1"  # geth --http.addr default
DEFAULT_HTTP_PORT = 8545  # geth --http.port default
DEFAULT_HTTP_MODULES = ("eth", "net", "web3")  # geth --http.api default


class RPCServiceError(EthnodeError):
    """The HTTP endpoint cannot start (port in use); one line for the user."""


@dataclass
class HTTPConfig:
    addr: str = DEFAULT_HTTP_ADDR
    port: int = DEFAULT_HTTP_PORT
    modules: tuple[str, ...] = DEFAULT_HTTP_MODULES
    vhosts: tuple[str, ...] = DEFAULT_VHOSTS
    cors: tuple[str, ...] = ()  # --http.corsdomain: origins whose pages may read replies


class RPCService:
    """The ``--http`` endpoint as a Node service; register it after the services it serves.

    ``apis``: the namespaces served besides those of the services (geth's
    ``stack.RegisterAPIs``).
    """

    def __init__(self, ctx: ServiceContext, config: HTTPConfig, apis: Sequence[API] = ()) -> None:
        self.ctx = ctx
        self.config = config
        self._apis = list(apis)
        self.server: RPCServer | None = None

    def protocols(self) -> list[object]:
        return []

    def apis(self) -> list[API]:
        return list(self._apis)

    def all_apis(self) -> list[API]:
        apis = self.apis()
        for svc in self.ctx.services.values():
            if svc is self:
                continue
            apis += [a for a in svc.apis() if isinstance(a, API)]
        return apis

    async def start(self) -> None:
        cfg = self.config
        server = RPCServer(collect_methods(self.all_apis(), cfg.modules), cfg.addr, cfg.port,
                           vhosts=cfg.vhosts, cors=cfg.cors)
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
    "RPCService", "HTTPConfig", "RPCServiceError", "DEFAULT_HTTP_ADDR", "DEFAULT_HTTP_PORT", "DEFAULT_HTTP_MODULES",
]
