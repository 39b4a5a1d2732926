"""ethnode: an Ethereum devp2p peer node in Python, shaped like go-ethereum."""

from ethnode._native import Backend, backends
from ethnode.errors import EthnodeError
from ethnode.version import __version__

# isort: split
# Importing the hot-path packages makes every backend choice at import time, so that
# ``backends()`` is complete as soon as ``ethnode`` is imported.
from ethnode import rlp  # noqa: E402,F401
from ethnode.eth.protocols.eth import knowncache  # noqa: E402,F401
from ethnode.eth.protocols.snap import walk  # noqa: E402,F401
from ethnode.p2p.discover.v5wire import crypto as _discv5_crypto  # noqa: E402,F401
from ethnode.p2p.rlpx import frame, handshake  # noqa: E402,F401

# ethnode.api's names (tests/test_api.py holds the two lists equal). Listed here rather than read
# from ethnode.api: ``from ethnode import strictjson`` asks this __getattr__ first while the
# package is still importing, and only a name of the API may trigger importing the API.
_API_NAMES = frozenset({
    "EthNode", "NodeConfig", "ConfigError", "NodeAPIError",
    "PeerInfo", "StatusInfo", "PeerAdded", "PeerDropped", "EthMessage", "TxAnnouncement", "ReceivedTx",
    "Transactions", "BlockAnnouncement", "BlockRangeUpdate", "NodeFound", "EVENT_TYPES",
    "EventStream", "Callback", "SubProtocol", "SubPeer", "SubProtocolViolation", "sedes",
})


def __getattr__(name: str) -> object:
    """The public API (``ethnode.api``) at the root, imported on first use: ``import ethnode``
    stays as light as the backend report needs, and ``ethnode.EthNode`` still works."""
    if name not in _API_NAMES:
        raise AttributeError(f"module 'ethnode' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module("ethnode.api"), name)


__all__ = ["__version__", "backends", "Backend", "EthnodeError"]
