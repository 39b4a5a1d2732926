"""The ``net_`` namespace (geth ``internal/ethapi.NetAPI``): network id, peer count, listening."""

from __future__ import annotations

from collections.abc import Callable

from ethnode.p2p.server import Server
from ethnode.rpc.hexutil import quantity
from ethnode.rpc.jsonrpc import RPCError

SERVER_ERROR = -32000


class NetAPI:
    """``p2p`` returns the running p2p Server (None before start); ``network_id`` the eth network id."""

    def __init__(self, p2p: Callable[[], Server | None], network_id: Callable[[], int | None]) -> None:
        self._p2p = p2p
        self._network_id = network_id

    def version(self) -> str:
        """The network id as a decimal string, as geth answers (not hex)."""
        network_id = self._network_id()
        if network_id is None:
            raise RPCError(SERVER_ERROR, "network id unknown: the eth protocol is not running")
        return str(network_id)

    def peer_count(self) -> str:
        server = self._p2p()
        return quantity(server.peer_count() if server is not None else 0)

    def listening(self) -> bool:
        return True  # geth: "always listening"


__all__ = ["NetAPI"]
