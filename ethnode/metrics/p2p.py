"""p2p traffic and connection counters (geth ``p2p/metrics.go``), updated on the hot path.

geth meters ``p2p/ingress`` and ``p2p/egress`` (every byte on the wire, handshakes
included), per sub-protocol message ``p2p/ingress/<proto>/<version>/<code>`` (wire size,
i.e. after snappy, and a packet count), and ``p2p/dials``, ``p2p/serves`` with their
``/success`` meters. The same numbers are here as Prometheus counters with the protocol,
version and code as labels. Updating them is a few attribute and dict operations per
message, so they are always on; ``--metrics`` only decides whether they are served.
"""

from __future__ import annotations

from collections.abc import Iterable

from ethnode.metrics.registry import DEFAULT_REGISTRY, Family, Labels


class MessageMeter:
    """Packets and bytes per (protocol name, version, relative code), one dict lookup per message."""

    def __init__(self, name: str, direction: str) -> None:
        self.name = name
        self.direction = direction
        self.entries: dict[tuple[str, int, int], list[int]] = {}

    def mark(self, protocol: str, version: int, code: int, size: int) -> None:
        key = (protocol, version, code)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = [0, 0]
        entry[0] += 1
        entry[1] += size

    def get(self, protocol: str, version: int, code: int) -> tuple[int, int]:
        """(packets, bytes) so far, for tests and tools."""
        entry = self.entries.get((protocol, version, code), (0, 0))
        return entry[0], entry[1]

    def collect(self) -> Iterable[Family]:
        packets = Family(f"p2p_{self.direction}_messages_total", "counter",
                         f"{self.direction} sub-protocol messages by protocol, version and message code")
        sizes = Family(f"p2p_{self.direction}_message_bytes_total", "counter",
                       f"{self.direction} sub-protocol message bytes on the wire (after snappy)")
        for (proto, version, code), (n, size) in sorted(self.entries.items()):
            labels: Labels = (("protocol", proto), ("version", str(version)), ("code", f"0x{code:02x}"))
            packets.samples.append((packets.name, labels, n))
            sizes.samples.append((sizes.name, labels, size))
        return [packets, sizes]


INGRESS_BYTES = DEFAULT_REGISTRY.counter("p2p_ingress_bytes_total", "bytes read from RLPx connections (p2p/ingress)")
EGRESS_BYTES = DEFAULT_REGISTRY.counter("p2p_egress_bytes_total", "bytes written to RLPx connections (p2p/egress)")
INGRESS_MESSAGES = MessageMeter("p2p_ingress_messages", "ingress")
EGRESS_MESSAGES = MessageMeter("p2p_egress_messages", "egress")
DEFAULT_REGISTRY.register(INGRESS_MESSAGES)
DEFAULT_REGISTRY.register(EGRESS_MESSAGES)
DIALS = DEFAULT_REGISTRY.counter("p2p_dials_total", "outbound connection attempts (geth p2p/dials)")
DIALS_SUCCESS = DEFAULT_REGISTRY.counter("p2p_dials_success_total", "dialed peers added after Hello")
SERVES = DEFAULT_REGISTRY.counter("p2p_serves_total", "inbound connections accepted (geth p2p/serves)")
SERVES_SUCCESS = DEFAULT_REGISTRY.counter("p2p_serves_success_total", "inbound peers added after Hello")

__all__ = [
    "MessageMeter", "INGRESS_BYTES", "EGRESS_BYTES", "INGRESS_MESSAGES", "EGRESS_MESSAGES", "DIALS", "DIALS_SUCCESS",
    "SERVES", "SERVES_SUCCESS",
]
