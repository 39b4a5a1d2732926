"""ethnode's public Python API: build a node, watch what it sees, talk to its peers.

Everything here is a stable name (also importable from the ``ethnode`` root); the rest of
the package is internal and may change. ::

    import asyncio
    from ethnode.api import EthNode, NodeConfig, TxAnnouncement

    async def main() -> None:
        async with EthNode(NodeConfig(genesis="genesis.json", static_nodes=["enode://..."])) as node:
            async with node.subscribe(TxAnnouncement) as stream:
                async for ann in stream:
                    print(ann.peer.client_id, [h.hex() for h in ann.hashes])

    asyncio.run(main())
"""

from ethnode.api.config import ConfigError, NodeConfig
from ethnode.api.events import (
    EVENT_TYPES,
    BlockAnnouncement,
    BlockRangeUpdate,
    EthMessage,
    NodeFound,
    PeerAdded,
    PeerDropped,
    PeerInfo,
    ReceivedTx,
    StatusInfo,
    Transactions,
    TxAnnouncement,
)
from ethnode.api.hub import Callback, EventStream
from ethnode.api.node import EthNode, NodeAPIError
from ethnode.api.subprotocol import SubPeer, SubProtocol, SubProtocolViolation
from ethnode.rlp import sedes

__all__ = [
    "EthNode", "NodeConfig", "ConfigError", "NodeAPIError",
    "PeerInfo", "StatusInfo", "PeerAdded", "PeerDropped", "EthMessage", "TxAnnouncement", "ReceivedTx",
    "Transactions", "BlockAnnouncement", "BlockRangeUpdate", "NodeFound", "EVENT_TYPES",
    "EventStream", "Callback", "SubProtocol", "SubPeer", "SubProtocolViolation", "sedes",
]
