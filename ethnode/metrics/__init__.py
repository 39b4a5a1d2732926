"""Metrics primitives: the registry rendered as Prometheus text, and the p2p meters.

Kept low (below p2p) so the hot paths can count without pulling in the node:
``registry`` holds counters, gauges, histograms and scrape-time callbacks, ``p2p`` the
traffic and connection counters the p2p layer updates, ``lag`` the event-loop lag probe.
What serves them and reads the node at scrape time is ``ethnode.monitoring``. Importing
this package stays cheap: the p2p hot path imports ``ethnode.metrics.p2p``.
"""

from ethnode.metrics.registry import DEFAULT_REGISTRY, Counter, Gauge, GaugeFunc, Histogram, Registry

__all__ = ["DEFAULT_REGISTRY", "Registry", "Counter", "Gauge", "GaugeFunc", "Histogram"]
