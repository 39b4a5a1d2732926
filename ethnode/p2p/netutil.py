"""Network address rules the p2p Server applies: NetRestrict lists and the inbound throttle.

geth p2p/netutil: a ``Netlist`` of CIDR ranges (``--netrestrict``) bounds whom we dial
and whom we accept; an expiring set remembers recent inbound attempts per source IP so
an Internet host cannot make us run a handshake more than once per
``INBOUND_THROTTLE_TIME``. LAN addresses (loopback included) are exempt, as in geth:
a private network restarting its nodes must not lock itself out.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable, Iterable, Iterator

from ethnode.p2p.discover.netutil import is_lan
from ethnode.p2p.enode import IPAddress, parse_ip

INBOUND_THROTTLE_TIME = 30.0  # seconds between inbound attempts from one IP; geth inboundThrottleTime

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Netlist:
    """A list of IP networks; ``contains`` is what NetRestrict asks (geth netutil.Netlist)."""

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[Network | str] = ()) -> None:
        self.networks: list[Network] = [
            n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False) for n in networks
        ]

    @classmethod
    def parse(cls, text: str) -> Netlist:
        """Comma-separated CIDR masks, whitespace ignored (geth ParseNetlist).

        Host bits may be set (``10.1.2.3/8`` means ``10.0.0.0/8``), as Go's ParsePrefix
        allows; anything else raises ValueError naming the bad mask.
        """
        masks = [m for m in "".join(text.split()).split(",") if m]
        return cls.from_masks(masks)

    @classmethod
    def from_masks(cls, masks: Iterable[str]) -> Netlist:
        nets = []
        for mask in masks:
            if "/" not in mask:
                raise ValueError(f"invalid CIDR mask {mask!r}: no prefix length")
            try:
                nets.append(ipaddress.ip_network(mask.strip(), strict=False))
            except ValueError:
                raise ValueError(f"invalid CIDR mask {mask!r}") from None
        return cls(nets)

    def contains(self, ip: IPAddress | str | None) -> bool:
        if ip is None:
            return False
        addr = parse_ip(ip) if isinstance(ip, str) else ip
        return addr is not None and any(addr.version == n.version and addr in n for n in self.networks)

    def __iter__(self) -> Iterator[Network]:
        return iter(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)

    def __repr__(self) -> str:
        return f"Netlist({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Netlist) and self.networks == other.networks

    __hash__ = None  # type: ignore[assignment]


class ExpiringSet:
    """Keys that each expire at a deadline (geth expHeap); time is whatever the caller passes."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, object]] = []  # the counter keeps unlike keys from being compared
        self._deadline: dict[object, float] = {}
        self._counter = 0

    def add(self, key: object, deadline: float) -> None:
        """Remember ``key`` until ``deadline``; a later deadline replaces an earlier one."""
        if self._deadline.get(key, float("-inf")) >= deadline:
            return
        self._deadline[key] = deadline
        self._counter += 1
        heapq.heappush(self._heap, (deadline, self._counter, key))

    def contains(self, key: object) -> bool:
        return key in self._deadline

    def deadline(self, key: object) -> float | None:
        return self._deadline.get(key)

    def remove(self, key: object) -> None:
        self._deadline.pop(key, None)  # its heap entry is skipped when it surfaces

    def expire(self, now: float, on_expired: Callable[[object], None] | None = None) -> None:
        """Forget every key whose deadline is before or at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._deadline.get(key) == deadline:
                del self._deadline[key]
                if on_expired is not None:
                    on_expired(key)

    def next_expiry(self) -> float | None:
        heap = self._heap
        while heap and self._deadline.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale: removed or replaced by a later deadline
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._deadline)


class InboundThrottle:
    """At most one inbound attempt per source IP per ``throttle_time`` (geth checkInboundConn).

    ``exempt`` decides which addresses are never throttled: geth's AddrIsLAN by default.
    """

    def __init__(self, throttle_time: float = INBOUND_THROTTLE_TIME,
                 exempt: Callable[[IPAddress], bool] = is_lan) -> None:
        self.throttle_time = throttle_time
        self.exempt = exempt
        self._history = ExpiringSet()

    def check(self, ip: IPAddress, now: float) -> str | None:
        """Why an attempt from ``ip`` at ``now`` is refused, or None (then it is recorded)."""
        self._history.expire(now)
        if not self.exempt(ip) and self._history.contains(ip):
            return "too many attempts"
        self._history.add(ip, now + self.throttle_time)
        return None

    def __len__(self) -> int:
        return len(self._history)


__all__ = ["Netlist", "ExpiringSet", "InboundThrottle", "is_lan", "INBOUND_THROTTLE_TIME"]
