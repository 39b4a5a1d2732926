"""``ethnode-fast run`` flags for metrics (geth's names and defaults).

    --metrics            serve metrics in the Prometheus text format
    --metrics.addr IP    listening address (default 127.0.0.1)
    --metrics.port N     port (default 6060; 0 picks a free one)

The monitoring service itself (event lines, terminal sync display) runs either way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ethnode.commands.flags import validators
from ethnode.monitoring.service import DEFAULT_METRICS_ADDR, DEFAULT_METRICS_PORT, MetricsConfig, MetricsService
from ethnode.node.lifecycle import ServiceConstructor, ServiceContext
from ethnode.p2p.server import Server


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Metrics")
    group.add_argument("--metrics", action="store_true", help="enable the metrics endpoint (Prometheus text)")
    group.add_argument("--metrics.addr", dest="metrics_addr", default=DEFAULT_METRICS_ADDR, metavar="IP",
                       help=f"metrics HTTP server listening interface (default {DEFAULT_METRICS_ADDR})")
    group.add_argument("--metrics.port", dest="metrics_port", type=validators.port, default=DEFAULT_METRICS_PORT,
                       metavar="N", help=f"metrics HTTP server listening port (default {DEFAULT_METRICS_PORT})")


def metrics_config_from_args(args: argparse.Namespace) -> MetricsConfig:
    return MetricsConfig(
        enabled=args.metrics,
        addr=args.metrics_addr,
        port=args.metrics_port,
    )


def metrics_service_constructor(args: argparse.Namespace, p2p: Callable[[], Server | None]) -> ServiceConstructor:
    """The monitoring service constructor for ``run``; register it after the eth service."""
    config = metrics_config_from_args(args)

    def construct(ctx: ServiceContext) -> MetricsService:
        return MetricsService(ctx, config, p2p)

    return construct


__all__ = ["add_metrics_flags", "metrics_service_constructor", "metrics_config_from_args"]
