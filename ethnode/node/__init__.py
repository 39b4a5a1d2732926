"""The Node: configuration, datadir, node key and the lifecycle of its services (geth node/).

The bus it hands its services is ``ethnode.event.EventBus``, a leaf so that lower layers
(the chain, the p2p server) post on it without importing the node.
"""

from ethnode.node.config import NodeConfig
from ethnode.node.datadir import DatadirInUseError, DatadirLock
from ethnode.node.lifecycle import DuplicateServiceError, Service, ServiceContext
from ethnode.node.node import Node, NodeError

__all__ = [
    "NodeConfig", "DatadirLock", "DatadirInUseError", "Service", "ServiceContext",
    "DuplicateServiceError", "Node", "NodeError",
]
