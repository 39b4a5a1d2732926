"""The set of peers that completed the eth handshake (geth ``eth/peerset.go``).

Registering a peer starts its broadcast task; unregistering stops it. The selection
helpers answer the handler's questions with one known-cache call per peer:
which peers lack a tx or a block, and which peer is best to sync from.
"""

from __future__ import annotations

from collections.abc import Iterator

from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.peer import EthPeer
from ethnode.eth.protocols.eth.protocol import ETH68


class PeerSetError(EthnodeError):
    """Registration refused: the set is closed or the peer is already in it."""


class PeerSet:
    """Active eth peers by enode ID, in registration order."""

    def __init__(self) -> None:
        self._peers: dict[bytes, EthPeer] = {}
        self.closed = False

    def register(self, peer: EthPeer) -> None:
        """Add ``peer`` and start its broadcast task (geth registerPeer + ``go p.broadcast()``)."""
        if self.closed:
            raise PeerSetError("peerset closed")
        if peer.id in self._peers:
            raise PeerSetError("peer already registered")
        self._peers[peer.id] = peer
        peer.start_broadcast()

    def unregister(self, peer: EthPeer) -> bool:
        """Remove ``peer`` (if it is the registered one) and stop its broadcast task."""
        if self._peers.get(peer.id) is not peer:
            return False
        del self._peers[peer.id]
        peer.stop_broadcast()
        return True

    def peer(self, peer_id: bytes | str) -> EthPeer | None:
        if isinstance(peer_id, str):
            try:
                peer_id = bytes.fromhex(peer_id)
            except ValueError:
                return None
        return self._peers.get(peer_id)

    def all(self) -> list[EthPeer]:
        return list(self._peers.values())

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[EthPeer]:
        return iter(list(self._peers.values()))

    def __contains__(self, peer: object) -> bool:
        return isinstance(peer, EthPeer) and self._peers.get(peer.id) is peer

    def peers_without_tx(self, tx_hash: bytes) -> list[EthPeer]:
        return [p for p in self._peers.values() if tx_hash not in p.known_txs]

    def peers_without_block(self, block_hash: bytes) -> list[EthPeer]:
        return [p for p in self._peers.values() if block_hash not in p.known_blocks]

    def best_peer(self) -> EthPeer | None:
        """The peer to sync from: the highest announced head among eth/69 peers, else the
        highest total difficulty among eth/68 peers (geth peerWithHighestTD before eth/69).

        The two kinds cannot be compared (an eth/68 Status has no head number, an eth/69
        one no TD), and eth/69 peers are the post-merge network, so they win.
        """
        best69 = max(
            (p for p in self._peers.values() if p.version > ETH68 and p.block_range is not None),
            key=lambda p: p.block_range.latest,  # type: ignore[union-attr]
            default=None,
        )
        if best69 is not None:
            return best69
        return max(
            (p for p in self._peers.values() if p.version == ETH68 and p.td is not None),
            key=lambda p: p.td,  # type: ignore[arg-type,return-value]
            default=None,
        )

    def close(self) -> list[EthPeer]:
        """Refuse new registrations; returns the peers still in the set (to be disconnected)."""
        self.closed = True
        return self.all()


__all__ = ["PeerSet", "PeerSetError"]
