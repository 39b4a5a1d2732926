"""The monitoring Node service: ``/metrics`` over HTTP, chain event lines, loop lag, sync display.

Registered on every ``run`` (after the Ethereum service): the event lines and the
terminal sync display are wanted with or without ``--metrics``. With ``--metrics`` it
also serves the registry in the Prometheus text format at ``/metrics`` and at geth's
``/debug/metrics/prometheus`` on ``--metrics.addr:--metrics.port`` (default
127.0.0.1:6060, geth's), using the HTTP server the RPC endpoints use (``ethnode.rpc.http``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from ethnode.errors import EthnodeError
from ethnode.eth.service import EthereumService
from ethnode.metrics.lag import LoopLagProbe
from ethnode.metrics.registry import CONTENT_TYPE, DEFAULT_REGISTRY, Registry
from ethnode.monitoring.collectors import register_node_collectors
from ethnode.monitoring.events import EventLogger
from ethnode.monitoring.syncdisplay import SyncDisplay
from ethnode.node.lifecycle import ServiceContext, ServiceNotFoundError
from ethnode.p2p.server import Server
from ethnode.rpc.http import HTTPEndpoint, HTTPServer, Request, Response

log = logging.getLogger("ethnode.metrics")

DEFAULT_METRICS_ADDR = "127.0.0.1"  # geth --metrics.addr (geth: empty means no stand-alone server)
DEFAULT_METRICS_PORT = 6060  # geth --metrics.port default
METRICS_PATHS = ("/metrics", "/debug/metrics/prometheus")  # ours, geth's


class MetricsServiceError(EthnodeError):
    """The metrics endpoint cannot start (port in use); one line for the user."""


@dataclass
class MetricsConfig:
    enabled: bool = False  # serve /metrics
    addr: str = DEFAULT_METRICS_ADDR
    port: int = DEFAULT_METRICS_PORT


class MetricsServer(HTTPEndpoint):
    """The Prometheus scrape endpoint for the process-wide registry plus ``registries``."""

    def __init__(self, *registries: Registry, host: str = DEFAULT_METRICS_ADDR,
                 port: int = DEFAULT_METRICS_PORT) -> None:
        self.registries = registries or (DEFAULT_REGISTRY,)
        self.http = HTTPServer(self._handle, host, port, name="metrics")

    def started(self) -> None:
        log.info("Starting metrics server addr=http://%s:%d/metrics", self.http.host, self.http.port)

    async def _handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path not in METRICS_PATHS:
            return Response.text(404, "404 page not found")
        if request.method not in ("GET", "HEAD"):
            return Response.text(405, "method not allowed")
        first, *rest = self.registries
        body = first.render(*rest).encode()
        return Response(200, b"" if request.method == "HEAD" else body, {"Content-Type": CONTENT_TYPE})


class MetricsService:
    """Node service; ``p2p`` returns the running p2p Server (built after the services).

    The node's gauges live in its own ``registry`` (two nodes in one process must not
    read each other's peers), served together with the process-wide p2p counters.
    """

    def __init__(self, ctx: ServiceContext, config: MetricsConfig, p2p: Callable[[], Server | None], *,
                 stream: TextIO | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self._p2p = p2p
        self.registry = Registry()
        self.server: MetricsServer | None = None
        self.lag = LoopLagProbe(self.registry)
        self.events = EventLogger(ctx.bus, self._syncing)
        self._stream = stream
        self.display: SyncDisplay | None = None

    def _eth(self) -> EthereumService | None:
        """The Ethereum service, None on a p2p-only node."""
        try:
            return self.ctx.service(EthereumService)
        except ServiceNotFoundError:
            return None

    def _syncing(self) -> bool:
        eth = self._eth()
        return eth is not None and eth.downloader.syncing

    def protocols(self) -> list[object]:
        return []

    def apis(self) -> list[object]:
        return []

    async def start(self) -> None:
        register_node_collectors(self.registry, self._p2p, self._eth)
        self.lag.start()
        self.events.start()
        eth = self._eth()
        if eth is not None and eth.observer is None:  # an observer never catches up: no bar stuck at 0%
            self.display = SyncDisplay(eth.downloader, eth.chain, self._stream)
            self.display.start()
        if self.config.enabled:
            server = MetricsServer(DEFAULT_REGISTRY, self.registry, host=self.config.addr, port=self.config.port)
            try:
                await server.start()
            except OSError as exc:
                await self.stop()
                raise MetricsServiceError(f"could not start metrics server on {self.config.addr}:"
                                          f"{self.config.port}: {exc.strerror or exc}") from None
            self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self.display is not None:
            await self.display.stop()
            self.display = None
        await self.events.stop()
        await self.lag.stop()


__all__ = ["MetricsService", "MetricsServer", "MetricsConfig", "MetricsServiceError", "DEFAULT_METRICS_ADDR",
           "DEFAULT_METRICS_PORT"]
