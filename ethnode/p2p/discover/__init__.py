"""Node discovery: discv4 with EIP-868 ENR requests and discv5, shaped like geth's p2p/discover.

    v4wire    packets, signing, decoding with every check (sans-IO)
    table     the Kademlia table with IP limits and revalidation lists (no I/O)
    lookup    the iterative α-parallel lookup, over any query coroutine
    nodedb    bonds, failure counts, seeds and the local seq in SQLite
    netutil   LAN / special-network / relay rules, per-subnet counting
    udp       the asyncio service tying them together (UDPv4)
    v5wire/   discv5 packets, handshakes and sessions (sans-IO; crypto compiled, with a pure twin)
    v5_udp    the discv5 service (UDPv5): calls, TALKREQ handlers, its own table; shares
              UDPv4's socket when both run (UDPv4.unhandled)

Records and node identities live one level up, in ``ethnode.p2p.enr`` and
``ethnode.p2p.enode``, because RLPx and the dialer use them too.
"""

from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.nodedb import NodeDB
from ethnode.p2p.discover.table import Table
from ethnode.p2p.discover.udp import Config, DiscoveryError, DiscoveryTimeout, UDPv4
from ethnode.p2p.discover.v5_udp import UDPv5

__all__ = ["UDPv4", "UDPv5", "Config", "DiscoveryError", "DiscoveryTimeout", "Table", "NodeDB", "Lookup"]
