"""``ethnode-fast run`` flags for the p2p Server, and the factory that builds it for the Node.

    --port N             network listening port, TCP and UDP (default 30303)
    --listenaddr IP      listening address (default: all interfaces)
    --discovery.port N   UDP port for discovery (default: the --port value)
    --bootnodes URLS     comma-separated enode:// URLs or enr: records
    --maxpeers N         maximum number of network peers (default 50)
    --maxpendpeers N     maximum number of pending connection attempts (default 0: 50)
    --nodiscover         disable peer discovery
    --discovery.v4[=B]   enable discv4 (default true; alias --discv4)
    --discovery.v5[=B]   enable discv5 on the same UDP port (default true; alias --discv5)
    --netrestrict CIDRS  restrict network communication to these IP networks
    --nat SPEC           NAT port mapping: none, extip:IP, any, upnp, pmp (default any)

The values are merged with the TOML file's ``[Node.P2P]`` by ``run`` (a flag wins) into a
``ServerConfig``; ``server_factory`` completes that with what only the Node knows (its
name and datadir) when the Node starts, which is why neither p2p nor node builds it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from ethnode.commands.flags.validators import boolean, non_negative_int
from ethnode.crypto.keys import PrivateKey
from ethnode.event import EventBus
from ethnode.node.config import NodeConfig
from ethnode.p2p.config import DEFAULT_MAX_PEERS, DEFAULT_PORT, ServerConfig
from ethnode.p2p.nat import DEFAULT_NAT
from ethnode.p2p.peer import default_client_id
from ethnode.p2p.protocol import Protocol
from ethnode.p2p.server import NODE_DB_FILE, Server


def add_p2p_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, metavar="N",
                        help=f"network listening port, TCP and UDP (default {DEFAULT_PORT})")
    parser.add_argument("--listenaddr", metavar="IP", help="listening address (default: all interfaces)")
    parser.add_argument("--discovery.port", dest="discovery_port", type=int, metavar="N",
                        help="UDP port for discovery (default: the --port value)")
    parser.add_argument("--bootnodes", metavar="URLS",
                        help="comma-separated enode:// URLs or enr: records for discovery")
    parser.add_argument("--maxpeers", type=non_negative_int, metavar="N",
                        help=f"maximum number of network peers (default {DEFAULT_MAX_PEERS})")
    parser.add_argument("--maxpendpeers", type=non_negative_int, metavar="N",
                        help="maximum number of pending connection attempts (default 0: 50)")
    parser.add_argument("--nodiscover", action="store_true", help="disable peer discovery")
    for version in ("v4", "v5"):
        parser.add_argument(f"--discovery.{version}", f"--disc{version}", dest=f"discovery_{version}", nargs="?",
                            const=True, type=boolean, metavar="BOOL",
                            help=f"enables the {version.upper()} discovery mechanism (default true; "
                            f"--discovery.{version}=false turns it off)")
    parser.add_argument("--netrestrict", metavar="CIDRS",
                        help="restricts network communication to these IP networks")
    parser.add_argument("--nat", metavar="SPEC",
                        help=f"NAT: extip:IP (a known external address), none, or any (default {DEFAULT_NAT}: "
                        "no port mapping here, the address is learned from discovery); upnp, pmp and stun "
                        "are not implemented and refused")


ServerFactory = Callable[[NodeConfig, PrivateKey, list[Protocol]], Server]


def server_factory(p2p: ServerConfig, bus: EventBus | None = None) -> ServerFactory:
    """A Node ``server_factory``: ``p2p`` completed with the node's name and node database path."""

    def build(node_config: NodeConfig, key: PrivateKey, protocols: list[Protocol]) -> Server:
        cfg = replace(p2p)
        if cfg.name is None:
            cfg.name = default_client_id(node_config.identity)
        if cfg.node_database is None:
            cfg.node_database = node_config.resolve_path(NODE_DB_FILE)
        return Server(key, cfg, protocols=protocols, bus=bus)

    return build


__all__ = ["add_p2p_flags", "server_factory", "ServerFactory"]
