"""What can go wrong in a sync, and whose fault it is.

The schedulers judge responses without doing I/O, so they cannot drop anyone: they raise
``BadResponseError`` naming the peer, and the asyncio side drops it (geth's errBadPeer,
errInvalidChain, errInvalidBody all end in ``dropPeer``).
"""

from __future__ import annotations

from ethnode.errors import EthnodeError


class SyncError(EthnodeError):
    """A sync attempt ended without reaching its target."""


class BadResponseError(SyncError):
    """A peer answered with data that cannot be true (it lied): drop it."""

    def __init__(self, peer_id: bytes | str, reason: str) -> None:
        label = peer_id.hex()[:8] if isinstance(peer_id, bytes) else str(peer_id)
        super().__init__(f"peer {label}: {reason}")
        self.peer_id = peer_id
        self.reason = reason


class MasterPeerError(SyncError):
    """The peer we sync from stalled, lied or left: the attempt is over; another may follow.

    ``drop`` says whether it earned a disconnect (stall or lie) or simply went away.
    """

    def __init__(self, reason: str, *, drop: bool = True) -> None:
        super().__init__(reason)
        self.drop = drop


__all__ = ["SyncError", "BadResponseError", "MasterPeerError"]
