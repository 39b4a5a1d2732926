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
from ethnode.p2p.rlpx import frame, handshake  # noqa: E402,F401

__all__ = ["__version__", "backends", "Backend", "EthnodeError"]
