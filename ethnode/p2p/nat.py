"""``--nat``: how this node learns the address others should use to reach it (geth p2p/nat).

Implemented: ``extip:IP`` (the address is known; it goes into our record and enode URL)
and ``none``. ``any``, geth's default, maps no ports here: the node behaves as with
``none`` and its endpoint comes from what discovery peers report, which is also geth's
fallback when no gateway answers. Asking for a mechanism by name (``upnp``, ``pmp``,
``stun``) is refused with one line rather than accepted and silently not done.
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode.errors import EthnodeError
from ethnode.p2p.enode import IPAddress, parse_ip

DEFAULT_NAT = "any"  # geth's --nat default


class NATError(EthnodeError, ValueError):
    """A ``--nat`` value that cannot be parsed."""


@dataclass(frozen=True)
class ExtIP:
    """A fixed, known external address (geth nat.ExtIP)."""

    ip: IPAddress

    def external_ip(self) -> IPAddress | None:
        return self.ip

    def __str__(self) -> str:
        return f"extip:{self.ip}"


@dataclass(frozen=True)
class PortMapper:
    """A port-mapping mechanism ethnode recognises but does not implement (UPnP, NAT-PMP, STUN)."""

    mechanism: str
    gateway: IPAddress | None = None

    def external_ip(self) -> IPAddress | None:
        return None

    def __str__(self) -> str:
        return self.mechanism if self.gateway is None else f"{self.mechanism}:{self.gateway}"


NAT = ExtIP | PortMapper


def parse_nat(spec: str) -> NAT | None:
    """geth nat.Parse: ``""``/``none``/``off`` → None, ``extip:IP``, ``any``, ``upnp``, ``pmp[:IP]``, ``stun``."""
    mech, sep, rest = spec.strip().partition(":")
    mech = mech.lower()
    ip: IPAddress | None = None
    if sep and mech != "stun":
        try:
            ip = parse_ip(rest)
        except ValueError:
            raise NATError(f"invalid --nat {spec!r}: invalid IP address") from None
    if mech in ("", "none", "off"):
        return None
    if mech in ("any", "auto", "on"):
        return PortMapper("any")
    if mech in ("extip", "ip"):
        if ip is None:
            raise NATError(f"invalid --nat {spec!r}: missing IP address")
        return ExtIP(ip)
    if mech in ("upnp", "pmp", "natpmp", "nat-pmp", "stun"):
        raise NATError(f"invalid --nat {spec!r}: {mech} port mapping is not implemented in ethnode; "
                       "use extip:IP for a known external address, or none")
    raise NATError(f"invalid --nat {spec!r}: unknown mechanism {mech!r}")


__all__ = ["NAT", "ExtIP", "PortMapper", "NATError", "parse_nat", "DEFAULT_NAT"]
