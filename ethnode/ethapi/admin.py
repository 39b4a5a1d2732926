"""The ``admin_`` namespace (geth ``node/api.go`` adminAPI): peers and this node's identity.

Served over HTTP only when ``admin`` is listed in ``--http.api``, as in geth: it can add
and drop peers. Shapes are geth's ``p2p.NodeInfo`` and ``p2p.PeerInfo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ethnode.core.rawdb import accessors as rawdb
from ethnode.eth.service import EthereumService
from ethnode.p2p.config import join_host_port, split_host_port
from ethnode.p2p.enode import Node, NodeURLError
from ethnode.p2p.server import Server
from ethnode.rpc.hexutil import data
from ethnode.rpc.jsonrpc import RPCError

SERVER_ERROR = -32000
NODE_STOPPED = "node not started"  # geth ErrNodeStopped


def _addr(addr: tuple[str, int] | None) -> str:
    return join_host_port(addr[0], addr[1]) if addr else ""


class AdminAPI:
    """``p2p`` returns the running Server; ``eth`` the Ethereum service (or None without eth)."""

    def __init__(self, p2p: Callable[[], Server | None], eth: Callable[[], EthereumService | None]) -> None:
        self._p2p = p2p
        self._eth = eth

    def _server(self) -> Server:
        server = self._p2p()
        if server is None or not server.running:
            raise RPCError(SERVER_ERROR, NODE_STOPPED)
        return server

    def _change(self, change: Callable[[Server, str], object], url: Any) -> bool:
        server = self._server()
        if not isinstance(url, str):
            raise RPCError(SERVER_ERROR, "invalid enode: not a string")
        try:
            change(server, url)
        except (NodeURLError, ValueError) as exc:
            raise RPCError(SERVER_ERROR, f"invalid enode: {exc}") from None
        return True

    def add_peer(self, url: Any) -> bool:
        """Dial ``url`` now and whenever it drops (a static peer); true once queued, as geth."""
        return self._change(Server.add_peer, url)

    def remove_peer(self, url: Any) -> bool:
        return self._change(Server.remove_peer, url)

    def add_trusted_peer(self, url: Any) -> bool:
        return self._change(Server.add_trusted_peer, url)

    def remove_trusted_peer(self, url: Any) -> bool:
        return self._change(Server.remove_trusted_peer, url)

    def node_info(self) -> dict[str, Any]:
        server = self._server()
        node: Node = server.self_node
        host = ""
        if server.config.listen_addr:
            host, _ = split_host_port(server.config.listen_addr)
        info: dict[str, Any] = {
            "id": server.id.hex(),
            "name": server.client_id,
            "enode": node.enode_url(),
            "enr": node.record.to_text() if node.record is not None else "",
            "ip": str(node.ip) if node.ip is not None else "",
            "ports": {"discovery": node.udp, "listener": server.port},
            "listenAddr": join_host_port(host or "::", server.port),
            "protocols": {},
        }
        eth = self._eth()
        if eth is not None:
            chain = eth.chain
            info["protocols"]["eth"] = {
                "network": eth.network_id,
                "genesis": data(chain.genesis_hash),
                "config": rawdb.read_chain_config_json(chain.db, chain.genesis_hash),
                "head": data(chain.current_block.hash),
            }
            if eth.handler.snap is not None:
                info["protocols"]["snap"] = {}  # geth's snap NodeInfo has no fields
        return info

    def peers(self) -> list[dict[str, Any]]:
        server = self._server()
        out = []
        for peer in server.peers():
            found = server.peer_node(peer)
            if found is None:
                continue
            node, flags = found
            hello = peer.remote_hello
            info: dict[str, Any] = {}
            if node.record is not None:
                info["enr"] = node.record.to_text()
            info.update({
                "enode": node.enode_url(),
                "id": node.id.hex(),
                "name": peer.client_id or "",
                "caps": [str(c) for c in hello.caps] if hello is not None else [],
                "network": {
                    "localAddress": _addr(peer.conn.local_address),
                    "remoteAddress": _addr(peer.conn.remote_address),
                    "inbound": bool(flags & flags.INBOUND),
                    "trusted": bool(flags & flags.TRUSTED),
                    "static": bool(flags & flags.STATIC_DIALED),
                },
                "protocols": {},
            })
            for name, handler in peer.handlers.items():
                describe = getattr(handler, "info", None)
                ready = getattr(handler, "status", True) is not None
                info["protocols"][name] = describe() if describe is not None and ready else "handshake"
            out.append(info)
        out.sort(key=lambda i: i["id"])
        return out


__all__ = ["AdminAPI", "NODE_STOPPED"]
