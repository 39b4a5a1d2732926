"""ServerConfig: the p2p Server's settings, with geth's defaults and geth's TOML names.

The fields mirror geth's p2p.Config (``ListenAddr``, ``MaxPeers``, ``StaticNodes`` ...);
``from_toml`` reads the ``[Node.P2P]`` table of a geth-style config file and refuses a
key it does not implement, naming it, as geth does for unknown fields. Timing knobs at
the end exist so tests can run geth's schedules in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.p2p.dial import DEFAULT_MAX_PENDING_PEERS, DIAL_HISTORY_EXPIRATION, MAX_DIAL_BACKOFF
from ethnode.p2p.discover.udp import Config as DiscoveryConfig
from ethnode.p2p.discover.v5_udp import Config as DiscoveryV5Config
from ethnode.p2p.enode import Node, NodeURLError, parse_ip, parse_node
from ethnode.p2p.nat import NAT, NATError, parse_nat
from ethnode.p2p.netutil import INBOUND_THROTTLE_TIME, Netlist
from ethnode.p2p.peer import PING_INTERVAL
from ethnode.p2p.rlpx.transport import HANDSHAKE_TIMEOUT

DEFAULT_PORT = 30303  # geth's default listening port, TCP and UDP
DEFAULT_LISTEN_ADDR = f":{DEFAULT_PORT}"  # geth --port default → ListenAddr ":30303"
DEFAULT_MAX_PEERS = 50  # geth --maxpeers default
DEFAULT_DIAL_RATIO = 3  # a third of the peer slots may be dialed by us; geth defaultDialRatio
LOOKUP_INTERVAL = 1.0  # seconds between discovery lookups feeding the dialer (ours; geth's old lookupInterval 4 s)
CLOSE_TIMEOUT = 4.0  # seconds stop() waits for peers to say goodbye before cancelling them (ours)


class ConfigError(EthnodeError, ValueError):
    """A setting that cannot be used; the message names the setting."""


def split_host_port(addr: str) -> tuple[str, int]:
    """``":30303"`` → ``("", 30303)``; ``"[::1]:0"`` → ``("::1", 0)``; ValueError otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"address {addr!r}: missing port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {addr!r}: an IPv6 host must be in brackets")
    if not (port.isascii() and port.isdigit()) or int(port) > 0xFFFF:
        raise ValueError(f"address {addr!r}: invalid port {port!r}")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_static_node(text: str) -> Node:
    """A node to dial: an ``enode://`` URL or ``enr:`` record with an IP and a TCP port."""
    node = parse_node(text)
    if node.ip is None or node.ip.is_unspecified or node.ip.is_multicast:
        raise NodeURLError("a node to dial needs an IP address")
    if not node.tcp:
        raise NodeURLError("a node to dial needs a TCP port")
    return node


def parse_bootnode(text: str) -> Node:
    """A discovery bootstrap node: IP and UDP port required (geth ValidateComplete)."""
    node = parse_node(text)
    node.validate_complete()
    return node


@dataclass
class ServerConfig:
    """What the p2p Server needs besides its key and protocols (geth p2p.Config)."""

    name: str | None = None  # client id sent in Hello; None: ethnode's default_client_id()
    listen_addr: str | None = DEFAULT_LISTEN_ADDR  # TCP "host:port"; None: do not listen
    disc_addr: str = ""  # UDP "host:port" for discovery; "": the TCP address and port (geth DiscAddr)
    no_discovery: bool = False  # neither discv4 nor discv5 (geth NoDiscovery)
    discovery_v4: bool = True  # geth DiscoveryV4
    discovery_v5: bool = True  # geth DiscoveryV5: on the same UDP socket as discv4
    max_peers: int = DEFAULT_MAX_PEERS
    max_pending_peers: int = 0  # 0: DEFAULT_MAX_PENDING_PEERS (geth: the same zero rule)
    dial_ratio: int = 0  # 0: DEFAULT_DIAL_RATIO
    no_dial: bool = False
    bootnodes: list[Node] = field(default_factory=list)
    static_nodes: list[Node] = field(default_factory=list)
    trusted_nodes: list[Node] = field(default_factory=list)
    net_restrict: Netlist | None = None
    nat: NAT | None = None
    node_database: Path | None = None  # discovery's node DB; None: in memory
    # timing, geth's values by default
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    ping_interval: float = PING_INTERVAL
    dial_history_expiration: float = DIAL_HISTORY_EXPIRATION
    max_dial_backoff: float = MAX_DIAL_BACKOFF
    inbound_throttle_time: float = INBOUND_THROTTLE_TIME
    throttle_lan: bool = False  # also throttle LAN/loopback sources (geth exempts them; tests need it)
    lookup_interval: float = LOOKUP_INTERVAL
    close_timeout: float = CLOSE_TIMEOUT
    discovery: DiscoveryConfig | None = None  # discv4 knobs; its bootnodes are replaced by ``bootnodes``
    discovery_v5_config: DiscoveryV5Config | None = None  # discv5 knobs; bootnodes likewise

    def __post_init__(self) -> None:
        if self.max_peers < 0:
            raise ConfigError(f"MaxPeers must be >= 0, got {self.max_peers}")
        if self.max_pending_peers < 0:
            raise ConfigError(f"MaxPendingPeers must be >= 0, got {self.max_pending_peers}")
        if self.dial_ratio < 0:
            raise ConfigError(f"DialRatio must be >= 0, got {self.dial_ratio}")
        for what, addr in (("ListenAddr", self.listen_addr), ("DiscAddr", self.disc_addr)):
            if addr:
                try:
                    host, _ = split_host_port(addr)
                    if host:
                        parse_ip(host)
                except ValueError as exc:
                    raise ConfigError(f"invalid {what}: {exc}") from None

    # -- derived limits (geth Server.MaxDialedConns / MaxInboundConns) ---------------------
    def max_dialed_conns(self) -> int:
        if self.no_dial or self.max_peers == 0:
            return 0
        return max(self.max_peers // (self.dial_ratio or DEFAULT_DIAL_RATIO), 1)

    def max_inbound_conns(self) -> int:
        return self.max_peers - self.max_dialed_conns()

    def pending_limit(self) -> int:
        return self.max_pending_peers or DEFAULT_MAX_PENDING_PEERS

    # -- geth TOML ---------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, table: Mapping[str, Any], *, where: str = "Node.P2P",
                  base: ServerConfig | None = None) -> ServerConfig:
        """Apply a ``[Node.P2P]`` table on top of ``base`` (or the defaults).

        Raises ConfigError naming the first unknown key or bad value, e.g.
        ``Node.P2P.MaxPeers: expected an integer``.
        """
        cfg = base if base is not None else cls()
        for key, value in table.items():
            setter = _TOML_KEYS.get(key)
            path = f"{where}.{key}"
            if setter is None:
                raise ConfigError(f"field '{path}' is not defined (supported: {', '.join(sorted(_TOML_KEYS))})")
            try:
                setter(cfg, value)
            except (TypeError, ValueError, NodeURLError, NATError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
        cfg.__post_init__()
        return cfg


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return value


def _nodes(parse: Callable[[str], Node]) -> Callable[[Any], list[Node]]:
    def convert(value: Any) -> list[Node]:
        nodes = []
        for text in _strings(value):
            try:
                nodes.append(parse(text))
            except NodeURLError as exc:
                raise ValueError(f"{text[:80]!r}: {exc}") from None
        return nodes

    return convert


def _netlist(value: Any) -> Netlist:
    if isinstance(value, str):  # also accept the flag's comma-separated form
        return Netlist.parse(value)
    return Netlist.from_masks(_strings(value))


def _setter(attr: str, convert: Callable[[Any], Any]) -> Callable[[ServerConfig, Any], None]:
    def apply(cfg: ServerConfig, value: Any) -> None:
        setattr(cfg, attr, convert(value))

    return apply


_TOML_KEYS: dict[str, Callable[[ServerConfig, Any], None]] = {
    "MaxPeers": _setter("max_peers", _int),
    "MaxPendingPeers": _setter("max_pending_peers", _int),
    "DialRatio": _setter("dial_ratio", _int),
    "NoDiscovery": _setter("no_discovery", _bool),
    "DiscoveryV4": _setter("discovery_v4", _bool),
    "DiscoveryV5": _setter("discovery_v5", _bool),
    "NoDial": _setter("no_dial", _bool),
    "BootstrapNodes": _setter("bootnodes", _nodes(parse_bootnode)),
    "StaticNodes": _setter("static_nodes", _nodes(parse_static_node)),
    "TrustedNodes": _setter("trusted_nodes", _nodes(parse_node)),
    "NetRestrict": _setter("net_restrict", _netlist),
    "NAT": _setter("nat", lambda v: parse_nat(_str(v))),
    "ListenAddr": _setter("listen_addr", _str),
    "DiscAddr": _setter("disc_addr", _str),
    "NodeDatabase": _setter("node_database", lambda v: Path(_str(v)) if v else None),
}

__all__ = [
    "ServerConfig", "ConfigError", "split_host_port", "join_host_port", "parse_static_node", "parse_bootnode",
    "DEFAULT_PORT", "DEFAULT_LISTEN_ADDR", "DEFAULT_MAX_PEERS", "DEFAULT_DIAL_RATIO", "DEFAULT_MAX_PENDING_PEERS",
]
