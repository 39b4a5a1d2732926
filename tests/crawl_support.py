"""A small discovery network on loopback for the crawler: one process, real sockets.

A discovery-only bootnode (discv4 and discv5 on one socket, no TCP listener) and N ethnode nodes, each a p2p
Server with discovery on (bootstrapping from it) and an ``EthHandler`` over one shared
in-memory chain. The nodes do not dial each other (``no_dial``): they only need to be
findable and to answer a dial with Hello and Status, which keeps 30 of them cheap.
``NodeSpec`` varies what the census should count: network id, eth versions, client name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from txpool_support import make_chain

from ethnode.core.txpool import TxPool
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.handler import EthHandler
from ethnode.eth.protocols.eth.protocol import SUPPORTED_VERSIONS
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.discover.udp import Config as DiscoveryConfig
from ethnode.p2p.discover.udp import UDPv4
from ethnode.p2p.discover.v5_udp import Config as DiscoveryV5Config
from ethnode.p2p.discover.v5_udp import UDPv5
from ethnode.p2p.nat import parse_nat
from ethnode.p2p.server import Server

HOST = "127.0.0.1"
# FindNode answers name every table entry (geth's NoFindnodeLivenessCheck, as its own test
# networks set): by default only entries a revalidation ping proved alive are named, one
# ping per interval, so a fresh 30-node network would take tens of seconds to show whole.
DISCOVERY = DiscoveryConfig(no_findnode_liveness_check=True)
DISCOVERY_V5 = DiscoveryV5Config(no_findnode_liveness_check=True)


@dataclass(frozen=True)
class NodeSpec:
    network_id: int
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    name: str | None = None  # Hello client id; None: ethnode's default
    v4: bool = True  # False: discv5 only (found only by a crawl that walks discv5)


@dataclass
class LoopbackNetwork:
    bootnode: UDPv4
    bootnode_v5: UDPv5
    servers: list[Server] = field(default_factory=list)
    handlers: list[EthHandler] = field(default_factory=list)
    specs: list[NodeSpec] = field(default_factory=list)

    @property
    def bootnode_url(self) -> str:
        return self.bootnode.self_node.enode_url()

    async def stop(self) -> None:
        for h in self.handlers:
            await h.stop()
        await asyncio.gather(*(s.stop() for s in self.servers), return_exceptions=True)
        await self.bootnode_v5.close()
        await self.bootnode.close()


async def start_network(specs: list[NodeSpec]) -> LoopbackNetwork:
    """The bootnode, then every node bootstrapping from it (all on 127.0.0.1, NAT none)."""
    key = PrivateKey.generate()
    boot = UDPv4(key, config=DISCOVERY)
    await boot.start(HOST, 0)
    boot_v5 = UDPv5(key, local=boot.local, db=boot.db, config=DISCOVERY_V5).attach(boot)  # one socket, as geth
    net = LoopbackNetwork(boot, boot_v5)
    chain = make_chain()
    pool = TxPool(chain, kzg=None)
    try:
        for spec in specs:
            key = PrivateKey.generate()
            handler = EthHandler(chain, pool, network_id=spec.network_id, node_id=keccak256(key.node_id),
                                 versions=spec.versions)
            cfg = ServerConfig(name=spec.name, listen_addr=f"{HOST}:0", bootnodes=[boot.self_node], no_dial=True,
                               max_peers=5, nat=parse_nat("none"), discovery=DISCOVERY,
                               discovery_v4=spec.v4, discovery_v5_config=DISCOVERY_V5)
            server = Server(key, cfg, protocols=handler.protocols())
            await server.start()
            await handler.start()
            net.servers.append(server)
            net.handlers.append(handler)
            net.specs.append(spec)
    except BaseException:
        await net.stop()
        raise
    return net


def node_ids(net: LoopbackNetwork) -> set[str]:
    """The enode ids (keccak of the key, hex) as nodes.json keys them."""
    return {keccak256(s.node_id).hex() for s in net.servers}


