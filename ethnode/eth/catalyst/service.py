"""The Engine API as a Node service on the JWT-authenticated endpoint (geth catalyst.Register, auth server).

The Ethereum service does not know a consensus client drives it: the command line calls
``register(node, config)`` after registering the Ethereum service, as geth's ``makeFullNode``
calls ``catalyst.Register(stack, backend)``. The service this adds finds the Ethereum
service, points an ``EngineAPI`` at its chain (and a forkchoice naming an unknown head at
its downloader) and serves the ``engine_`` methods on ``--authrpc.addr:--authrpc.port``
(default 127.0.0.1:8551) behind HS256 JWT auth, with the JSON-RPC handler the public
endpoint uses, over HTTP and over WebSocket on the same port as geth serves it (the token is
checked at the WebSocket handshake; origins: geth's DefaultAuthOrigins, ``localhost``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ethnode.errors import EthnodeError
from ethnode.eth.catalyst.api import EngineAPI
from ethnode.eth.catalyst.simulated_beacon import DevAPI, SimulatedBeacon
from ethnode.eth.service import EthereumService
from ethnode.miner.builder import MinerConfig
from ethnode.miner.payload_building import PayloadBuilder
from ethnode.node.lifecycle import ServiceContext
from ethnode.node.node import Node
from ethnode.rpc.api import API, methods_of
from ethnode.rpc.endpoint import DEFAULT_VHOSTS, RPCServer
from ethnode.rpc.jwt import JWT_SECRET_FILE, load_or_create_secret
from ethnode.rpc.websocket import DEFAULT_AUTH_ORIGINS

DEFAULT_AUTHRPC_ADDR = "127.0.0.1"  # geth --authrpc.addr default
DEFAULT_AUTHRPC_PORT = 8551  # geth --authrpc.port default
ENGINE_API_BODY_LIMIT = 128 * 1024 * 1024  # geth node engineAPIBodyLimit: payloads with blobs are large


class AuthRPCError(EthnodeError):
    """The Engine API endpoint cannot start (bad secret, port in use); one line for the user."""


@dataclass
class AuthRPCConfig:
    """Where the Engine API listens and which JWT secret it checks (geth --authrpc.*)."""

    addr: str = DEFAULT_AUTHRPC_ADDR
    port: int = DEFAULT_AUTHRPC_PORT
    jwtsecret: Path | None = None  # None: <instance dir>/jwtsecret, created if absent
    vhosts: tuple[str, ...] = DEFAULT_VHOSTS  # geth --authrpc.vhosts


class CatalystService:
    """The Engine API over the Ethereum service built before it; ``server`` while it listens."""

    def __init__(self, ctx: ServiceContext, config: AuthRPCConfig) -> None:
        self.ctx = ctx
        self.config = config
        eth = ctx.service(EthereumService)
        self.api = EngineAPI(eth.chain, getattr(eth, "txpool", None))
        self.api.on_unknown_head = eth.downloader.sync_to  # a forkchoice naming a head we lack
        handler = getattr(eth, "handler", None)
        if handler is not None:
            self.api.on_custody = handler.update_custody
        self.server: RPCServer | None = None

    def protocols(self) -> list[object]:
        return []

    def apis(self) -> list[API]:
        """The Engine API, only behind JWT (geth's Authenticated): the public endpoint leaves it out."""
        return [API("engine", self.api, authenticated=True)]

    async def start(self) -> None:
        cfg = self.config
        path = cfg.jwtsecret or self.ctx.resolve_path(JWT_SECRET_FILE)
        if path is None:
            raise AuthRPCError("--authrpc.jwtsecret is required without a datadir")
        try:
            secret = load_or_create_secret(path)
        except EthnodeError as exc:
            raise AuthRPCError(str(exc)) from None
        methods = {name: fn for api in self.apis() for name, fn in methods_of(api).items()}
        server = RPCServer(methods, cfg.addr, cfg.port, jwt_secret=secret, vhosts=cfg.vhosts, ws=True,
                           ws_origins=DEFAULT_AUTH_ORIGINS, body_limit=ENGINE_API_BODY_LIMIT)
        try:
            await server.start()
        except OSError as exc:
            raise AuthRPCError(f"authrpc {cfg.addr}:{cfg.port}: {exc.strerror or exc}") from None
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


class DevBeaconService:
    """The simulated beacon of ``run --dev`` over the Ethereum service built before it, and the
    ``dev`` namespace (``dev_addWithdrawal``, ``dev_setFeeRecipient``) on the public endpoint."""

    def __init__(self, ctx: ServiceContext, miner: MinerConfig, period: int) -> None:
        eth = ctx.service(EthereumService)
        builder = PayloadBuilder(eth.chain, eth.txpool, miner)
        self.api = EngineAPI(eth.chain, eth.txpool, builder)
        self.beacon = SimulatedBeacon(self.api, ctx.bus, period)

    def protocols(self) -> list[object]:
        return []

    def apis(self) -> list[API]:
        return [API("dev", DevAPI(self.beacon))]

    async def start(self) -> None:
        await self.beacon.start()

    async def stop(self) -> None:
        await self.beacon.stop()


def register(node: Node, config: AuthRPCConfig) -> None:
    """Serve the Engine API of the Ethereum service registered before (geth ``catalyst.Register``)."""
    node.register(lambda ctx: CatalystService(ctx, config))


__all__ = [
    "CatalystService", "DevBeaconService", "AuthRPCConfig", "AuthRPCError", "register", "DEFAULT_AUTHRPC_ADDR",
    "DEFAULT_AUTHRPC_PORT",
]
