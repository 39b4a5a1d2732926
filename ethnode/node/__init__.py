"""The Node: configuration, datadir, node key and the lifecycle of its services (geth node/)."""

from ethnode.node.config import NodeConfig
from ethnode.node.datadir import DatadirInUseError, DatadirLock
from ethnode.node.events import EventBus
from ethnode.node.lifecycle import DuplicateServiceError, Service, ServiceContext
from ethnode.node.node import Node, NodeError

__all__ = [
    "NodeConfig", "DatadirLock", "DatadirInUseError", "EventBus", "Service", "ServiceContext",
    "DuplicateServiceError", "Node", "NodeError",
]
