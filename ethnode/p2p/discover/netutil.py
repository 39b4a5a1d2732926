"""Address classes discovery cares about: LAN, special-use, relay rules, /24 counting.

Python's ``ipaddress.is_private`` lumps documentation and benchmark ranges in with
RFC 1918, which is not what geth's netutil means by "LAN", so the ranges are spelled
out here to match geth (p2p/netutil/net.go).
"""

from __future__ import annotations

import ipaddress

from ethnode.p2p.enode import IPAddress

_LAN4 = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
))
_LAN6 = tuple(ipaddress.ip_network(n) for n in ("::1/128", "fc00::/7", "fe80::/10"))

# geth netutil special4/special6: RFC 5735, RFC 5156, IANA special-purpose registries
_SPECIAL4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/29", "192.0.0.9/32", "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24",
    "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "255.255.255.255/32",
))
_SPECIAL6 = tuple(ipaddress.ip_network(n) for n in (
    "100::/64", "2001::/32", "2001:1::1/128", "2001:2::/48", "2001:3::/32", "2001:4:112::/48",
    "2001:5::/32", "2001:10::/28", "2001:20::/28", "2001:db8::/32", "2002::/16",
))


def is_lan(ip: IPAddress) -> bool:
    """geth AddrIsLAN: loopback, RFC 1918 / unique-local, or link-local."""
    nets = _LAN4 if ip.version == 4 else _LAN6
    return any(ip in n for n in nets)


def is_special(ip: IPAddress) -> bool:
    """geth AddrIsSpecialNetwork: multicast, broadcast, documentation and similar ranges."""
    if ip.is_multicast:
        return True
    nets = _SPECIAL4 if ip.version == 4 else _SPECIAL6
    return any(ip in n for n in nets)


def check_relay_ip(sender: IPAddress | None, addr: IPAddress | None) -> str | None:
    """Why ``addr`` relayed by ``sender`` is not a valid target, or None when it is.

    geth CheckRelayAddr's rules: special networks never; loopback only from a loopback
    sender; LAN only from a LAN sender; anything else always.
    """
    if addr is None:
        return "invalid IP"
    if addr.is_unspecified:
        return "zero address"
    if is_special(addr):
        return "special network"
    if sender is None:
        return "no sender address"
    if addr.is_loopback and not sender.is_loopback:
        return "loopback address from non-loopback host"
    if is_lan(addr) and not is_lan(sender):
        return "LAN address from WAN host"
    return None


class DistinctNetSet:
    """Counts addresses per subnet and refuses more than ``limit`` in one (geth DistinctNetSet)."""

    __slots__ = ("subnet", "limit", "_members")

    def __init__(self, subnet: int, limit: int) -> None:
        self.subnet = subnet
        self.limit = limit
        self._members: dict[tuple[int, int], int] = {}

    def _key(self, ip: IPAddress) -> tuple[int, int]:
        bits = 32 if ip.version == 4 else 128
        prefix = min(self.subnet, bits)
        return ip.version, int(ip) >> (bits - prefix)

    def add(self, ip: IPAddress) -> bool:
        key = self._key(ip)
        n = self._members.get(key, 0)
        if n >= self.limit:
            return False
        self._members[key] = n + 1
        return True

    def remove(self, ip: IPAddress) -> None:
        key = self._key(ip)
        n = self._members.get(key)
        if n is None:
            return
        if n <= 1:
            del self._members[key]
        else:
            self._members[key] = n - 1

    def contains(self, ip: IPAddress) -> bool:
        return self._key(ip) in self._members

    def __len__(self) -> int:
        return sum(self._members.values())


__all__ = ["is_lan", "is_special", "check_relay_ip", "DistinctNetSet"]
