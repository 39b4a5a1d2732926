"""Node discovery: discv4 with EIP-868 ENR requests, shaped like geth's p2p/discover.

    v4wire    packets, signing, decoding with every check (sans-IO)
    table     the Kademlia table with IP limits and revalidation lists (no I/O)
    lookup    the iterative α-parallel lookup, over any query coroutine
    nodedb    bonds, failure counts, seeds and the local seq in SQLite
    netutil   LAN / special-network / relay rules, per-subnet counting
    udp       the asyncio service tying them together (UDPv4)

Records and node identities live one level up, in ``ethnode.p2p.enr`` and
``ethnode.p2p.enode``, because RLPx and the dialer use them too.
"""

from ethnode.p2p.discover.lookup import Lookup
from ethnode.p2p.discover.nodedb import NodeDB
from ethnode.p2p.discover.table import Table
from ethnode.p2p.discover.udp import Config, DiscoveryError, DiscoveryTimeout, UDPv4

__all__ = ["UDPv4", "Config", "DiscoveryError", "DiscoveryTimeout", "Table", "NodeDB", "Lookup"]
