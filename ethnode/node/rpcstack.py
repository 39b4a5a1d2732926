"""The node's JSON-RPC endpoints (geth ``--http``, ``--ws``, IPC; node/rpcstack.go), as one Node service.

Built on ``ethnode.rpc``: one dispatcher core behind every transport, aiohttp for HTTP and
WebSocket, a unix socket for IPC. Every service built before it offers ``API`` objects from
``apis()``; whoever builds the node adds the namespaces no service owns (the command line
passes the node's ``web3``, ``net``, ``admin`` and the eth namespaces from
``ethnode.ethapi``), so the node container serves JSON-RPC without knowing what any
namespace answers.

- HTTP keeps the namespaces listed in ``--http.api`` (default ``eth,net,web3``: ``admin``
  and ``txpool`` must be asked for, as in geth). A method of a namespace left out answers
  -32601 "the method X does not exist/is not available", exactly like an unknown one.
- WebSocket keeps those of ``--ws.api`` (same default), checks ``--ws.origins``, and carries
  subscriptions. With ``--ws.port`` equal to ``--http.port`` both are served on the HTTP
  server's port, as geth's ``wsServerForPort`` does; otherwise on a server of its own.
- IPC serves every API, the authenticated Engine API included, as geth does: the socket
  is mode 0600. ``ipc_path``: a bare name lives in the datadir (in the temp dir without
  one, as geth), anything else is used as given; the default ``ethnode.ipc`` is opened
  only on a node with a datadir. A default path too long for a unix socket is skipped
  with a warning (geth fails to start); a path given explicitly must work.

The public endpoints never serve an ``authenticated`` API over HTTP or WebSocket (the
Engine API stays on its JWT port).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ethnode.errors import EthnodeError
from ethnode.node.lifecycle import ServiceContext
from ethnode.rpc.api import API, all_methods, collect_methods
from ethnode.rpc.endpoint import DEFAULT_VHOSTS, RPCServer
from ethnode.rpc.ipc import UNIX_PATH_MAX, IPCServer
from ethnode.rpc.jsonrpc import Dispatcher

log = logging.getLogger("ethnode.rpc")

DEFAULT_HTTP_ADDR = "127.0.0.1"  # geth --http.addr default
DEFAULT_HTTP_PORT = 8545  # geth --http.port default
DEFAULT_HTTP_MODULES = ("eth", "net", "web3")  # geth --http.api default (net,web3 + eth, cmd/geth/config.go)
DEFAULT_WS_ADDR = "127.0.0.1"  # geth --ws.addr default when --ws is given
DEFAULT_WS_PORT = 8546  # geth --ws.port default
DEFAULT_WS_MODULES = DEFAULT_HTTP_MODULES  # geth --ws.api default
DEFAULT_IPC_NAME = "ethnode.ipc"  # geth: geth.ipc in the datadir


class RPCServiceError(EthnodeError):
    """An endpoint cannot start (port in use, bad IPC path); one line for the user."""


@dataclass
class HTTPConfig:
    addr: str = DEFAULT_HTTP_ADDR
    port: int = DEFAULT_HTTP_PORT
    modules: tuple[str, ...] = DEFAULT_HTTP_MODULES
    vhosts: tuple[str, ...] = DEFAULT_VHOSTS
    cors: tuple[str, ...] = ()  # --http.corsdomain: origins whose pages may read replies


@dataclass
class WSConfig:
    addr: str = DEFAULT_WS_ADDR
    port: int = DEFAULT_WS_PORT
    modules: tuple[str, ...] = DEFAULT_WS_MODULES
    origins: tuple[str, ...] = ()  # --ws.origins; none: http://localhost and this host's name only


@dataclass
class IPCConfig:
    path: str = DEFAULT_IPC_NAME  # --ipcpath
    explicit: bool = False  # given by the user: a path that cannot be used is fatal


def ipc_endpoint(path: str, datadir: Path | None) -> Path | None:
    """geth Config.IPCEndpoint: a bare name in the datadir (temp dir without one), a path as given."""
    if os.path.basename(path) != path:
        return Path(path).expanduser()
    if datadir is None:
        return Path(tempfile.gettempdir()) / path
    return Path(datadir) / path


class RPCService:
    """The JSON-RPC endpoints as a Node service; register it after the services it serves.

    ``http``/``ws``/``ipc``: which endpoints (None: off). ``apis``: the namespaces served
    besides those of the services (geth's ``stack.RegisterAPIs``).
    """

    def __init__(self, ctx: ServiceContext, http: HTTPConfig | None, apis: Sequence[API] = (), *,
                 ws: WSConfig | None = None, ipc: IPCConfig | None = None) -> None:
        self.ctx = ctx
        self.config = http  # the HTTP endpoint's, as before WebSocket and IPC joined
        self.ws_config = ws
        self.ipc_config = ipc
        self._apis = list(apis)
        self.server: RPCServer | None = None  # the HTTP server (with WebSocket on it when the ports match)
        self.ws_server: RPCServer | None = None  # WebSocket on a port of its own
        self.ipc: IPCServer | None = None

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

    @property
    def ws_port(self) -> int | None:
        """Where WebSocket is served (after start), None without ``--ws``."""
        if self.ws_server is not None:
            return self.ws_server.port
        if self.server is not None and self.server.ws is not None:
            return self.server.port
        return None

    async def start(self) -> None:
        apis = self.all_apis()
        try:
            await self._start_ipc(apis)
            await self._start_http_ws(apis)
        except BaseException:
            await self.stop()
            raise

    async def _start_http_ws(self, apis: list[API]) -> None:
        cfg, ws = self.config, self.ws_config
        shared = cfg is not None and ws is not None and ws.port == cfg.port  # geth wsServerForPort
        if cfg is not None:
            server = RPCServer(collect_methods(apis, cfg.modules), cfg.addr, cfg.port, vhosts=cfg.vhosts,
                               cors=cfg.cors, ws=shared,
                               ws_methods=collect_methods(apis, ws.modules) if shared and ws else None,
                               ws_origins=ws.origins if shared and ws else ())
            await self._listen(server, "HTTP RPC", cfg.addr, cfg.port)
            self.server = server
        if ws is not None and not shared:
            server = RPCServer({}, ws.addr, ws.port, http=False, ws=True,
                               ws_methods=collect_methods(apis, ws.modules), ws_origins=ws.origins)
            await self._listen(server, "WebSocket RPC", ws.addr, ws.port)
            self.ws_server = server

    @staticmethod
    async def _listen(server: RPCServer, what: str, addr: str, port: int) -> None:
        try:
            await server.start()
        except OSError as exc:
            raise RPCServiceError(f"could not start {what} on {addr}:{port}: {exc.strerror or exc}") from None

    async def _start_ipc(self, apis: list[API]) -> None:
        cfg = self.ipc_config
        if cfg is None or (not cfg.explicit and self.ctx.config.datadir is None):
            return
        path = ipc_endpoint(cfg.path, self.ctx.config.datadir)
        assert path is not None
        if not cfg.explicit and len(os.fsencode(path)) > UNIX_PATH_MAX:
            log.warning("The ipc endpoint is longer than %d characters, IPC disabled endpoint=%s (--ipcpath "
                        "sets a shorter one)", UNIX_PATH_MAX, path)
            return
        server = IPCServer(Dispatcher(all_methods(apis)), path)
        try:
            await server.start()
        except OSError as exc:
            raise RPCServiceError(f"could not open IPC endpoint {path}: {exc.strerror or exc}") from None
        self.ipc = server

    async def stop(self) -> None:
        for server in (self.server, self.ws_server):
            if server is not None:
                await server.stop()
        self.server = self.ws_server = None
        if self.ipc is not None:
            await self.ipc.stop()
            self.ipc = None


__all__ = [
    "RPCService", "HTTPConfig", "WSConfig", "IPCConfig", "RPCServiceError", "ipc_endpoint", "DEFAULT_HTTP_ADDR",
    "DEFAULT_HTTP_PORT", "DEFAULT_HTTP_MODULES", "DEFAULT_WS_ADDR", "DEFAULT_WS_PORT", "DEFAULT_WS_MODULES",
    "DEFAULT_IPC_NAME",
]
