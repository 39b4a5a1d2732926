"""Metrics (Prometheus text at ``--metrics``), structured event lines and the sync progress display.

``registry``: counters, gauges, histograms and scrape-time callbacks; ``p2p``: the traffic
and connection counters the p2p layer updates; ``collectors``: what is read from the node
at scrape time; ``service``: the Node service that serves ``/metrics`` and runs the event
logger, the event-loop lag probe and the sync display. Importing this package stays
cheap: the p2p hot path imports ``ethnode.metrics.p2p``.
"""

from ethnode.metrics.registry import DEFAULT_REGISTRY, Counter, Gauge, GaugeFunc, Histogram, Registry

__all__ = ["DEFAULT_REGISTRY", "Registry", "Counter", "Gauge", "GaugeFunc", "Histogram"]
